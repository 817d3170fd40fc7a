"""Faults during training and data writing: a run killed with SIGKILL resumes from its last checkpoint onto the same
loss curve; a feature-cache or corpus build killed midway leaves nothing partial that a later run would read; a full
disk (ENOSPC) surfaces as that error and leaves no partial file (feature cache, checkpoints, shipped weights, corpus).
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_training import common, recipe, small_corpus  # noqa: F401  (small_corpus is a fixture)
from mint.cli import main
from mint.training.corpus import QUICK_SOURCES


ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def partial_then_full(path_arg: int = 1):
    """A writer that puts a few bytes at its target, as a filling disk does, then fails with ENOSPC."""
    def write(*args, **kwargs):
        Path(args[path_arg]).write_bytes(b"\x00" * 10)
        disk_full()
    return write


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=ENV, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def kill_when(proc: subprocess.Popen, ready, log: Path, timeout: float = 300) -> None:
    """SIGKILL `proc` (a process this test started) as soon as `ready()` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended ({proc.returncode}) before it could be killed:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"not ready within {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def losses(out: Path) -> list[float]:
    log = json.loads((out / "stage2_report.json").read_text())["log"]
    return [round(e["loss"], 5) for e in log if "loss" in e]


def last_complete_checkpoint(out: Path) -> Path:
    from mint.training.common import complete_checkpoint

    for folder in sorted(out.glob("checkpoint-*"), key=lambda p: -int(p.name.split("-")[1])):
        try:
            return complete_checkpoint(folder)
        except ValueError:
            continue
    pytest.fail(f"no complete checkpoint in {out}")


# ---- SIGKILL ---------------------------------------------------------------------------------------------------
@pytest.mark.training
def test_training_killed_with_sigkill_resumes_onto_the_same_curve(tiny_model_dir, small_corpus, tmp_path):  # noqa: F811
    cache = tmp_path / "features"
    full = tmp_path / "full"
    main(["train", "stage2", "--recipe", recipe(tmp_path, "full", **common(
        tiny_model_dir, small_corpus, full, cache, max_steps=8, save_strategy="no"))])

    killed = tmp_path / "killed"
    settings = common(tiny_model_dir, small_corpus, killed, cache, max_steps=8, save_strategy="steps", save_steps=2)
    log = tmp_path / "killed.log"
    proc = start(["-m", "mint.cli", "train", "stage2", "--recipe", recipe(tmp_path, "killed", **settings)], log)
    kill_when(proc, lambda: any(killed.glob("checkpoint-*/trainer_state.json")), log)
    assert not (killed / "stage2_report.json").exists()  # it died mid-run
    checkpoint = last_complete_checkpoint(killed)
    assert int(checkpoint.name.split("-")[1]) < 8

    settings.update(resume_from_checkpoint=str(checkpoint))
    main(["train", "stage2", "--recipe", recipe(tmp_path, "resumed", **settings)])
    assert losses(killed)[-1] == losses(full)[-1]
    assert json.loads((killed / "stage2_report.json").read_text())["steps"] == 8


def test_resuming_a_checkpoint_cut_short_is_refused(tiny_model_dir, small_corpus, tmp_path):  # noqa: F811
    half = tmp_path / "run" / "checkpoint-2"
    half.mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"\x00" * 10)  # killed before trainer_state.json was written
    settings = common(tiny_model_dir, small_corpus, tmp_path / "run", tmp_path / "features", max_steps=4,
                      resume_from_checkpoint=str(half))
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        main(["train", "stage2", "--recipe", recipe(tmp_path, "r", **settings)])


CACHE_BUILD = """
import sys, numpy as np, torch
from modeling_mint import MintForConditionalGeneration, MintProcessor
from mint.training.features import FrozenFeatureCache
model_dir, root, mode = sys.argv[1:4]
model, processor = MintForConditionalGeneration.from_pretrained(model_dir), MintProcessor.from_pretrained(model_dir)
cache = FrozenFeatureCache(root, model.model, processor, "tiny")
if mode == "hang":  # stop for good halfway through writing the first entry
    real = torch.save
    def save(obj, path):
        open(path, "wb").write(b"half a tensor")
        print("writing", flush=True)
        import time; time.sleep(600)
    torch.save = save
clips = [np.random.default_rng(i).uniform(-0.5, 0.5, 4000 + 100 * i).astype(np.float32) for i in range(400)]
cache.index([{"array": c, "sampling_rate": 16000} for c in clips], batch_size=1)
"""


def clips(n: int) -> list[dict]:
    return [{"array": np.random.default_rng(i).uniform(-0.5, 0.5, 4000 + 100 * i).astype(np.float32),
             "sampling_rate": 16000} for i in range(n)]


@pytest.mark.parametrize("mode", ["random", "hang"])
def test_feature_cache_killed_midway_leaves_no_entry_a_later_run_reads(tiny_model_dir, tmp_path, mode):
    """`random`: killed after some entries; `hang`: killed while writing one (the write never finishes)."""
    import torch

    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from mint.training.features import FrozenFeatureCache, load_frames

    root, log = tmp_path / "cache", tmp_path / "build.log"
    proc = start(["-c", CACHE_BUILD, str(tiny_model_dir), str(root), mode], log)
    if mode == "hang":
        kill_when(proc, lambda: "writing" in log.read_text(), log)
        assert list(root.rglob("*.tmp")) and not list(root.rglob("*.pt"))  # the half-written file never got a name
    else:
        kill_when(proc, lambda: len(list(root.rglob("*.pt"))) >= 5, log)
    model = MintForConditionalGeneration.from_pretrained(tiny_model_dir)
    processor = MintProcessor.from_pretrained(tiny_model_dir)
    cache = FrozenFeatureCache(root, model.model, processor, "tiny")
    sources = clips(40)
    entries = cache.index(sources, batch_size=8)  # a later run: reads what is there, computes what is not
    fresh = cache._encode([s["array"] for s in sources[:8]])
    for entry, frames in zip(entries, fresh):
        torch.testing.assert_close(load_frames(entry["path"]), frames)  # every named entry is whole
    assert all(load_frames(e["path"]).shape[0] == e["frames"] for e in entries)


def test_corpus_build_killed_midway_leaves_the_old_corpus(small_corpus, tmp_path):  # noqa: F811
    from datasets import load_from_disk

    out = tmp_path / "corpus"
    shutil.copytree(small_corpus, out)
    before = {split: len(ds) for split, ds in load_from_disk(str(out)).items()}
    log = tmp_path / "build.log"
    proc = start(["-m", "mint.cli", "data", "build", "--out", str(out), "--max-per-source", "6", "--sources",
                  *QUICK_SOURCES], log)
    kill_when(proc, lambda: "reading audio" in log.read_text() or any(tmp_path.glob(".mint-corpus-*/generated/*")),
              log)
    assert {split: len(ds) for split, ds in load_from_disk(str(out)).items()} == before


# ---- a full disk -----------------------------------------------------------------------------------------------
def test_feature_cache_on_a_full_disk(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from mint.training.features import FrozenFeatureCache

    model = MintForConditionalGeneration.from_pretrained(tiny_model_dir)
    processor = MintProcessor.from_pretrained(tiny_model_dir)
    cache = FrozenFeatureCache(tmp_path, model.model, processor, "tiny")
    monkeypatch.setattr(torch, "save", partial_then_full())
    with pytest.raises(OSError, match="No space left on device"):
        cache.index(clips(3))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.training
def test_checkpoint_on_a_full_disk(tiny_model_dir, small_corpus, tmp_path, monkeypatch):  # noqa: F811
    from transformers import Trainer

    def optimizer_on_full_disk(self, output_dir):
        partial_then_full(0)(Path(output_dir) / "optimizer.pt")

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", optimizer_on_full_disk)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="No space left on device"):
        main(["train", "stage2", "--recipe", recipe(tmp_path, "r", **common(
            tiny_model_dir, small_corpus, out, tmp_path / "features", max_steps=2, save_strategy="steps",
            save_steps=1))])
    assert not list(out.glob("checkpoint-*"))  # the half-written checkpoint-1 was removed


def test_shipped_weights_on_a_full_disk(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file, save_file

    from mint.hub import assemble

    bridge = tmp_path / "bridge.safetensors"
    save_file({"model.bridge.x": torch.ones(4)}, str(bridge))
    out = tmp_path / "variant" / "bridge.safetensors"
    assemble.ship_weights(bridge, None, out)
    monkeypatch.setattr(assemble, "save_file", partial_then_full())
    with pytest.raises(OSError, match="No space left on device"):
        assemble.ship_weights(bridge, None, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["bridge.safetensors"]  # no .tmp left
    assert torch.equal(load_file(str(out))["model.bridge.x"], torch.ones(4, dtype=torch.float16))


def test_corpus_on_a_full_disk(small_corpus, tmp_path, monkeypatch):  # noqa: F811
    from datasets import DatasetDict, load_from_disk

    from mint.training.corpus import build

    out = tmp_path / "corpus"
    shutil.copytree(small_corpus, out)

    def save_to_disk(self, path, **kwargs):
        Path(path).mkdir(parents=True, exist_ok=True)
        partial_then_full(0)(Path(path) / "dataset_dict.json")

    monkeypatch.setattr(DatasetDict, "save_to_disk", save_to_disk)
    with pytest.raises(OSError, match="No space left on device"):
        build(out, max_per_source=2, sources=QUICK_SOURCES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # no work folder left
    assert load_from_disk(str(out))["train"].num_rows > 0
