import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mint.cli import main


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


def test_assemble_unknown_variant(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["assemble", "nope", "--out", str(tmp_path / "x")])
    assert exit.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def one_line_exit(argv: list[str]) -> str:
    """The message of the `SystemExit` that `argv` ends with: one line, which Python prints without a traceback."""
    with pytest.raises(SystemExit) as exit:
        main(argv)
    message = exit.value.code
    assert isinstance(message, str) and "\n" not in message, message
    return message


def test_missing_paths_are_one_line(tmp_path, wav_file):
    missing = str(tmp_path / "nope")
    assert one_line_exit(["run", str(wav_file), "--model", missing]) == f"mint run: model {missing} does not exist " \
        "(nor is it a Hub id)"
    assert one_line_exit(["train", "instruct", "--data", missing]).startswith(f"mint train: data {missing} does not")
    assert one_line_exit(["train", "stage2", "--config", missing]) == f"mint train: config {missing} does not exist"
    assert one_line_exit(["train", "stage2", "--recipe", missing]) == f"mint train: config {missing} does not exist"
    assert "give --data PATH" in one_line_exit(["train", "stage1"])
    assert one_line_exit(["eval", "--model", missing, "--out", str(tmp_path / "e")]).startswith("mint eval: model")
    assert one_line_exit(["demo", "--model", missing]).startswith("mint demo: model")


def test_version_and_train_help_list_the_recipe_fields(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out.strip() == f"mint {version('mint-audio')}"
    assert main(["train", "instruct", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--data", "--config", "--lora-rank", "--instruction-in-bridge", "--max-train-clips", "--max-steps",
                 "--learning-rate", "--output-dir"):
        assert flag in out, flag
    assert main(["train", "stage1", "--help"]) == 0
    assert "--train-heads-only" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    assert "stage1,stage2,instruct" in capsys.readouterr().out


def test_train_refuses_fields_its_stage_does_not_have(tmp_path):
    """Each stage's recipe has only the fields it reads: instruction tuning always runs the LLM, so stage 2's
    `lm_weight` in its config (or on the command line) is refused before anything loads, in one line."""
    config = tmp_path / "instruct.yaml"
    config.write_text("model_dir: nowhere\nuse_cpu: true\nbf16: false\nlm_weight: 0.5\n")
    assert "lm_weight" in one_line_exit(["train", "instruct", "--config", str(config)])
    config.write_text("model_dir: nowhere\nuse_cpu: true\nbf16: false\n")
    assert "--lm-weight" in one_line_exit(["train", "instruct", "--config", str(config), "--lm-weight", "0.5"])


def test_every_committed_recipe_parses_with_its_stage():
    """Each recipe in training/recipes names its command (`mint train STAGE --config ...`); its fields are all ones
    that stage has, so none fails on a field only when its turn in a long chain comes."""
    import re

    from mint.cli.train import stage_script

    recipes = sorted((Path(__file__).parents[1] / "training" / "recipes").glob("*.yaml"))
    parsed = 0
    for path in recipes:
        command = re.search(r"mint train (stage1|stage2|instruct) --config", path.read_text())
        if command is None:
            continue
        recipe, args = stage_script(command[1]).make_parser().parse_args_and_config(["--config", str(path)])
        assert recipe.model_dir and args.output_dir, path.name
        parsed += 1
    assert parsed


def test_console_script_installed(tmp_path):
    exe = shutil.which("mint", path=str(Path(sys.executable).parent)) or shutil.which("mint")
    if exe is None:
        pytest.fail("the `mint` console script is not on PATH: install the project (pip install -e .)")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "assemble" in proc.stdout and "run" in proc.stdout
    module = subprocess.run([sys.executable, "-m", "mint.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert module.returncode == 0 and module.stdout == proc.stdout
    proc = subprocess.run([exe, "run", "clip.wav", "--model", str(tmp_path / "nope")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"mint run: model {tmp_path / 'nope'} does not exist (nor is it a Hub id)"


def test_demo_ends_its_server_when_ended(tiny_model_dir, tmp_path):
    """SIGTERM to `mint demo` ends the app's server process too (no orphan keeps the port)."""
    import os
    import signal
    import time
    import urllib.request

    from tests.conftest import ROOT, free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    demo = subprocess.Popen([sys.executable, "-m", "mint.cli", "demo", "--model", str(tiny_model_dir),
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "demo.log", "w"))
    try:
        deadline = time.time() + 240
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                assert demo.poll() is None and time.time() < deadline, (tmp_path / "demo.log").read_text()[-3000:]
                time.sleep(2)
        children = Path(f"/proc/{demo.pid}/task/{demo.pid}/children").read_text().split()
        assert len(children) == 1
        server = int(children[0])
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 128 + signal.SIGTERM
        with pytest.raises(ProcessLookupError):
            os.kill(server, 0)
    finally:
        if demo.poll() is None:
            demo.kill()


def test_trained_bridge_weights_round_trip(tmp_path):
    """What a trained MINT ships: the trainable parts only, loaded back over a freshly assembled model."""
    import torch
    from safetensors.torch import save_file

    from mint.hub.weights import load_trained_bridge, trained_state
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
