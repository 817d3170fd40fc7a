"""Stage scripts run end to end on the tiny random model and a small corpus: a few steps each, the expected files,
and resuming from a checkpoint continues the same loss curve."""

import json

import pytest
import yaml
from safetensors.torch import load_file

from training.cli import main
from training.corpus import build


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out, _ = build(tmp_path_factory.mktemp("corpus") / "corpus", max_per_source=8)
    return out


def recipe(tmp_path, name, **fields):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(fields))
    return str(path)


def common(model_dir, corpus, out, cache, **extra):
    settings = dict(model_dir=str(model_dir), data_dir=str(corpus), output_dir=str(out), feature_cache_dir=str(cache),
                    per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, report_to="none",
                    use_cpu=True, seed=0, max_eval_clips=8)
    settings.update(extra)
    return settings


def test_stage1_then_stage2_then_instruct(tiny_model_dir, small_corpus, tmp_path):
    cache = tmp_path / "features"
    stage1 = tmp_path / "stage1"
    settings = common(tiny_model_dir, small_corpus, stage1, cache, max_steps=3, save_strategy="no",
                      train_sampling_strategy="group_by_length")
    settings.pop("max_eval_clips")
    main(["train", "stage1", "--recipe", recipe(tmp_path, "s1", **settings)])
    report = json.loads((stage1 / "stage1_report.json").read_text())
    assert report["steps"] == 3 and "audio_to_text/R@1" in report["test_after"]
    assert (stage1 / "retrieval" / "config.json").is_file() and (stage1 / "bridge.safetensors").is_file()
    stage2 = tmp_path / "stage2"
    main(["train", "stage2", "--recipe", recipe(tmp_path, "s2", **common(
        tiny_model_dir, small_corpus, stage2, cache, max_steps=3, save_strategy="no",
        stage1_checkpoint=str(stage1)))])
    report = json.loads((stage2 / "stage2_report.json").read_text())
    assert report["steps"] == 3 and (stage2 / "bridge.safetensors").is_file()
    assert report["eval"]["eval_loss"] > 0
    assert any(p.suffix == ".pt" for p in cache.rglob("*"))  # frames were cached once
    for lora in (0, 4):
        out = tmp_path / f"instruct-lora{lora}"
        main(["train", "instruct", "--recipe", recipe(tmp_path, f"it{lora}", **common(
            tiny_model_dir, small_corpus, out, cache, max_steps=2, save_strategy="no", bf16=False,
            stage2_weights=str(stage2 / "bridge.safetensors"), lora_rank=lora))])
        report = json.loads((out / "instruct_report.json").read_text())
        assert report["steps"] == 2 and (out / "bridge.safetensors").is_file()
        shipped = load_file(str(out / "bridge.safetensors"))
        assert "model.language_projection.weight" in shipped and "model.query_tokens.weight" in shipped
        assert "model.bridge.embeddings.word_embeddings.weight" not in shipped  # frozen, rebuilt at assembly


def test_resume_continues_the_same_loss_curve(tiny_model_dir, small_corpus, tmp_path):
    cache = tmp_path / "features"

    def losses(out):
        log = json.loads((out / "stage2_report.json").read_text())["log"]
        return [round(e["loss"], 5) for e in log if "loss" in e]

    full = tmp_path / "full"
    main(["train", "stage2", "--recipe", recipe(tmp_path, "full", **common(
        tiny_model_dir, small_corpus, full, cache, max_steps=4, save_strategy="no"))])
    part = tmp_path / "part"
    settings = common(tiny_model_dir, small_corpus, part, cache, max_steps=4, save_strategy="steps", save_steps=2)
    main(["train", "stage2", "--recipe", recipe(tmp_path, "part", **settings), "--max_steps", "4"])
    checkpoint = part / "checkpoint-2"
    assert checkpoint.is_dir()
    resumed = tmp_path / "resumed"
    settings.update(output_dir=str(resumed), resume_from_checkpoint=str(checkpoint))
    main(["train", "stage2", "--recipe", recipe(tmp_path, "resumed", **settings)])
    assert losses(resumed)[-2:] == losses(full)[-2:]


@pytest.mark.parametrize("stage, report", [
    ("stage1", "stage1_report.json"), ("stage2", "stage2_report.json"), ("instruct", "instruct_report.json")])
def test_two_process_run(tiny_model_dir, small_corpus, tmp_path, stage, report):
    """`accelerate launch` with the shipped 2-process CPU config (DDP over gloo) trains a few steps."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import ROOT
    from tests.test_hub_variants import free_port

    out = tmp_path / "out"
    settings = common(tiny_model_dir, small_corpus, out, tmp_path / "features", max_steps=2, save_strategy="no",
                      per_device_train_batch_size=2)
    if stage == "instruct":
        settings["bf16"] = False
    if stage == "stage1":
        settings.pop("max_eval_clips")
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(accelerate), "launch", "--config_file", str(ROOT / "training/accelerate/cpu_ddp.yaml"),
                           "--main_process_port", str(free_port()),
                           "-m", "training.cli", "train", stage, "--recipe", recipe(tmp_path, stage, **settings)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    errors = [line for line in proc.stderr.splitlines() if "Error" in line or "Traceback" in line]
    assert proc.returncode == 0, "\n".join(errors[:40]) + proc.stderr[-2000:]
    result = json.loads((out / report).read_text())
    assert result["world_size"] == 2 and result["steps"] == 2
