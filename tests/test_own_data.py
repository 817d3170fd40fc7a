"""Fine-tuning on your own clips: `mint train STAGE --data PATH` on 8 real recordings, its output folder loaded as a
Hub user loads it, `mint eval` on it; the data loader's formats; PEFT users' LoRA config and the frozen-bridge
warning."""

import csv
import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY
from tests.test_remote_code import run_fresh
from mint.cli import main
from mint.training.data import asterisk_pairs, own_dataset, own_rows


def eight_clips(folder: Path, table: str = "metadata.csv") -> list[dict]:
    """8 Asterisk prompts (real speech, exact transcripts) copied into `folder` with a metadata table of file names;
    the first two with an instruction of their own."""
    try:
        pairs = sorted(asterisk_pairs(), key=lambda p: p["audio"])[:8]
    except FileNotFoundError as error:
        pytest.fail(str(error))
    folder.mkdir(parents=True)
    rows = []
    for i, pair in enumerate(pairs):
        shutil.copy(pair["audio"], folder / Path(pair["audio"]).name)
        rows.append({"audio": Path(pair["audio"]).name, "text": pair["text"],
                     "instruction": "Write down the prompt." if i < 2 else ""})
    if table.endswith(".csv"):
        with open(folder / table, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["audio", "text", "instruction"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        (folder / table).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_own_data_formats_and_validation_split(tmp_path):
    """A folder with a CSV, a JSON-lines table itself and a saved `datasets` Dataset with an Audio column give the
    same rows; a validation split is made (seeded), and `test` falls back to it."""
    from datasets import Audio, Dataset

    rows = eight_clips(tmp_path / "csv")
    eight_clips(tmp_path / "jsonl", "clips.jsonl")
    data = own_dataset(str(tmp_path / "csv"))
    assert sorted(data) == ["train", "validation"] and (len(data["train"]), len(data["validation"])) == (7, 1)
    train = own_rows(str(tmp_path / "csv"), "train")
    texts = {r["audio"]: r["text"] for r in rows}
    for row in train:
        assert Path(row["audio"]).is_file() and row["text"] == texts[Path(row["audio"]).name]
        assert row["task"] == "transcription" and row["source"] == "own"
        expected = "Write down the prompt." if texts[Path(row["audio"]).name] in (rows[0]["text"], rows[1]["text"]) \
            else "Transcribe the speech."
        assert row["instruction"] == expected
    assert own_rows(str(tmp_path / "csv"), "test") == own_rows(str(tmp_path / "csv"), "validation")
    same = [{**r, "audio": r["audio"].replace("/jsonl/", "/csv/")}
            for r in own_rows(str(tmp_path / "jsonl" / "clips.jsonl"), "train")]
    assert same == train  # the table itself, or its folder: the same rows, the same seeded split

    saved = Dataset.from_dict({"audio": [str(tmp_path / "csv" / r["audio"]) for r in rows],
                               "sentence": [r["text"] for r in rows]}).cast_column("audio", Audio(decode=False))
    saved.save_to_disk(tmp_path / "saved")
    from_disk = own_rows(str(tmp_path / "saved"), "train")
    assert len(from_disk) == 7 and {r["text"] for r in from_disk} <= set(texts.values())


def test_own_data_refuses_what_it_cannot_read(tmp_path):
    eight_clips(tmp_path / "clips")
    (tmp_path / "clips" / "activated.wav").unlink()
    with pytest.raises(FileNotFoundError, match="1 audio file.* not found, first .*activated.wav"):
        own_dataset(str(tmp_path / "clips"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "t.csv").write_text("audio,words\nx.wav,hello\n")
    (tmp_path / "bad" / "x.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="no text column"):
        own_dataset(str(tmp_path / "bad"))
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        own_dataset(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="my_clipz: no such file or folder, and no Hub dataset"):
        own_dataset("my_clipz")  # a typo reads as a Hub id; offline, it is refused as missing


@pytest.mark.training
def test_fine_tune_on_eight_clips_in_one_command(tiny_model_dir, tmp_path, capsys):
    """`mint train instruct --data FOLDER` (LoRA on): the output folder is a whole model, LoRA merged, that loads
    with the Auto classes and the pipeline with the package hidden, and `mint eval --model OUT` reads it."""
    from safetensors import safe_open

    clips, out = tmp_path / "clips", tmp_path / "run"
    eight_clips(clips)
    assert main(["train", "instruct", "--data", str(clips), "--model", str(tiny_model_dir), "--out", str(out),
                 "--max-steps", "2", "--per-device-train-batch-size", "4", "--lora-rank", "4",
                 "--feature-cache-dir", str(tmp_path / "cache")]) == 0
    report = json.loads((out / "instruct_report.json").read_text())
    assert report["clips"] == {"train": 7, "validation": 1} and report["steps"] == 2

    with safe_open(str(out / "model.safetensors"), "pt") as tuned, \
            safe_open(str(tiny_model_dir / "model.safetensors"), "pt") as start:
        assert not any("lora_" in k for k in tuned.keys())  # merged, a plain MINT folder
        llm = next(k for k in tuned.keys() if "language_model" in k and k.endswith("q_proj.weight"))
        audio = next(k for k in tuned.keys() if "audio_tower" in k and k.endswith("q_proj.weight"))
        assert not torch.equal(tuned.get_tensor(llm), start.get_tensor(llm))  # the LLM was tuned (LoRA merged)
        assert torch.equal(tuned.get_tensor(audio), start.get_tensor(audio))  # the audio tower was not
    result = run_fresh(
        f"""
        import json
        from transformers import AutoModelForCausalLM, pipeline
        model = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True)
        pipe = pipeline("audio-text-to-text", model={str(out)!r}, trust_remote_code=True)
        answer = pipe({str(clips / 'added.wav')!r}, prompt="Transcribe the speech.", max_new_tokens=3)
        print(json.dumps({{"model": type(model).__name__, "text": answer["generated_text"]}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert result["model"] == "MintForConditionalGeneration" and isinstance(result["text"], str)

    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--data", str(clips), "--out", str(tmp_path / "eval"),
                 "--max-new-tokens", "3"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["transcription"]["all"]["clips"] == 1 and 0 <= metrics["transcription"]["all"]["WER"]


def test_peft_users_lora_config_and_frozen_bridge_warning():
    """`get_peft_model` with plain LLM target modules trains the adapter alone: MINT warns when it starts training
    so. `mint_lora_config` trains the connector beside the adapter, and touches no audio-tower layer."""
    from peft import LoraConfig, get_peft_model

    from modeling_mint import MintConfig, MintForConditionalGeneration
    from mint.training.sft import mint_lora_config

    config = MintConfig.from_pretrained(TINY)
    plain = get_peft_model(MintForConditionalGeneration(config), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with pytest.warns(UserWarning, match="Bridge-Net frozen.*modules_to_save"):
        plain.train()

    model = MintForConditionalGeneration(config)
    lora = get_peft_model(model, mint_lora_config(model, r=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lora.train()
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert any(".bridge." in n for n in trainable) and any(".query_tokens." in n for n in trainable)
    assert any("language_model" in n and "lora_" in n for n in trainable)
    assert not any("audio_tower" in n for n in trainable)
