import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.cli import main


def test_assemble_and_run(tmp_path, wav_file, capsys):
    out = tmp_path / "model"
    assert main(["assemble", "mint-tiny-random", "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file()
    assert main(["run", str(wav_file), str(wav_file), "--model", str(out), "--prompt", "What is it?",
                 "--max-new-tokens", "3", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-2:]]
    assert [r["audio"] for r in lines] == [str(wav_file)] * 2
    assert all(r["prompt"] == "What is it?" and isinstance(r["text"], str) for r in lines)


def test_run_reports_bad_files_and_keeps_going(tiny_model_dir, wav_file, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    code = main(["run", str(broken), str(wav_file), "--model", str(tiny_model_dir), "--max-new-tokens", "2", "--json"])
    assert code == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-2:]]
    assert "could not decode" in lines[0]["error"] and "text" in lines[1]


def test_run_a_folder_in_batches_matches_one_by_one(tiny_model_dir, tmp_path, capsys):
    """A folder expands to its audio files (sorted, non-audio skipped); batches of clips of different lengths and
    rates give the answers each clip gets alone; a bad clip in a batch gets its own error, the rest still answer."""
    import soundfile as sf

    from tests.conftest import tone

    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", tone(0.7, 16000, 300.0), 16000)
    sf.write(folder / "sub" / "b.flac", tone(2.3, 8000, 900.0), 8000)
    sf.write(folder / "c.wav", tone(1.1, 22050, 500.0, channels=2), 22050)
    (folder / "d.wav").write_bytes(b"RIFF\x00\x00")  # a truncated header
    (folder / "notes.txt").write_text("not audio")
    common = ["--model", str(tiny_model_dir), "--max-new-tokens", "4", "--json", "--quiet"]

    assert main(["run", str(folder), "--batch-size", "3", *common]) == 1
    batched = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    names = [Path(r["audio"]).relative_to(folder).as_posix() for r in batched]
    assert names == ["a.wav", "c.wav", "d.wav", "sub/b.flac"]
    assert "error" in batched[2] and all("text" in r for i, r in enumerate(batched) if i != 2)

    for record in batched:
        main(["run", record["audio"], "--batch-size", "1", *common])
        alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert alone == record


def test_run_with_the_audio_tower_in_bf16(tiny_model_dir, wav_file, capsys, monkeypatch):
    """`--audio-tower-dtype` reaches the model's config through the pipeline's `model_kwargs`."""
    import transformers

    seen = []
    original = transformers.pipeline

    def spy(*args, **kwargs):
        pipe = original(*args, **kwargs)
        seen.append({p.dtype for p in pipe.model.model.audio_tower.parameters()})
        return pipe

    monkeypatch.setattr(transformers, "pipeline", spy)
    assert main(["run", str(wav_file), "--model", str(tiny_model_dir), "--audio-tower-dtype", "bfloat16",
                 "--max-new-tokens", "2", "--json", "--quiet"]) == 0
    assert seen == [{torch.bfloat16}]
    assert "text" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_run_refuses_an_empty_folder_and_bad_batch_size(tiny_model_dir, tmp_path):
    with pytest.raises(SystemExit, match="no audio files"):
        main(["run", str(tmp_path), "--model", str(tiny_model_dir)])
    with pytest.raises(SystemExit, match="--batch-size must be at least 1"):
        main(["run", str(tmp_path), "--model", str(tiny_model_dir), "--batch-size", "0"])


def test_assemble_unknown_variant(tmp_path):
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        main(["assemble", "nope", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_console_script_installed(tmp_path):
    exe = shutil.which("mint", path=str(Path(sys.executable).parent)) or shutil.which("mint")
    if exe is None:
        pytest.fail("the `mint` console script is not on PATH: install the project (pip install -e .)")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "assemble" in proc.stdout and "run" in proc.stdout


def test_trained_bridge_weights_round_trip(tmp_path):
    """What a trained MINT ships: the trainable parts only, loaded back over a freshly assembled model."""
    import torch
    from safetensors.torch import save_file

    from hub_configs.assemble import load_trained_bridge, trained_state
    from modeling_mint import MintConfig, MintForConditionalGeneration
    from tests.conftest import TINY

    config = MintConfig.from_pretrained(TINY)
    torch.manual_seed(1)
    trained = MintForConditionalGeneration(config)
    state = trained_state(trained)
    assert state and all(k.startswith(("model.query_tokens.", "model.bridge.", "model.language_projection.")) for k in state)
    save_file(state, tmp_path / "bridge.safetensors")
    torch.manual_seed(2)
    fresh = MintForConditionalGeneration(config)
    load_trained_bridge(fresh, tmp_path / "bridge.safetensors")
    for key, value in state.items():
        assert torch.equal(fresh.state_dict()[key], value), key
    save_file({"model.language_model.norm.weight": torch.ones(3)}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="not Bridge-Net weights"):
        load_trained_bridge(fresh, tmp_path / "bad.safetensors")
