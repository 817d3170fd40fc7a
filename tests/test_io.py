"""Atomic writes (`mint.io`) and the trained-weight files (`mint.hub.weights`): a failed write leaves the old file or
folder as it was and nothing half-written beside it; weights load back by key prefix, and a file that does not fit
is refused."""

import pathlib

import pytest
import torch
from safetensors.torch import load_file, save_file

from mint.hub import weights
from mint.hub.weights import (
    BRIDGE_NET,
    RETRIEVAL_HEADS,
    TRAINABLE_PREFIXES,
    load_by_prefix,
    load_trained_bridge,
    read_by_prefix,
    read_ctc_head,
    save_state,
    save_trainable,
    trained_state,
)
from mint.io import atomic_file, atomic_folder
from tests.conftest import TINY


def names(folder) -> list[str]:
    return sorted(p.name for p in pathlib.Path(folder).iterdir())


# ---- atomic_file ----------------------------------------------------------------------------------------------
def test_atomic_file_lands_whole(tmp_path):
    path = tmp_path / "sub" / "result.json"
    with atomic_file(path) as tmp:
        assert tmp.parent == path.parent and not path.exists()
        tmp.write_text("new")
    assert path.read_text() == "new" and names(path.parent) == ["result.json"]
    assert path.stat().st_mode & 0o777 == 0o644  # an ordinary file, not mkstemp's private one


def test_atomic_file_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_file(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and names(tmp_path) == ["result.json"]


def test_atomic_file_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "result.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert names(tmp_path) == []


# ---- atomic_folder --------------------------------------------------------------------------------------------
def test_atomic_folder_replaces_the_old_folder_whole(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.bin").write_text("old")
    with atomic_folder(out) as staging:
        assert staging.is_dir() and not any(staging.iterdir())
        (staging / "config.json").write_text("{}")
        assert (out / "stale.bin").is_file()  # the old folder serves readers until the swap
    assert names(out) == ["config.json"] and names(tmp_path) == ["model"]


def test_atomic_folder_failure_keeps_the_old_folder(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as staging:
            (staging / "config.json").write_text("half")
            raise RuntimeError("killed")
    assert (out / "config.json").read_text() == "old" and names(tmp_path) == ["model"]
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "fresh") as staging:
            (staging / "a").write_text("half")
            raise RuntimeError("killed")
    assert names(tmp_path) == ["model"]


def test_atomic_folder_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("old")
    rename = pathlib.Path.rename

    def failing(self, target):
        if self.name == "new":  # the staged folder moving onto `out`
            raise OSError("rename failed")
        return rename(self, target)

    monkeypatch.setattr(pathlib.Path, "rename", failing)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_folder(out) as staging:
            (staging / "config.json").write_text("new")
    assert (out / "config.json").read_text() == "old" and names(tmp_path) == ["model"]


# ---- trained weights ------------------------------------------------------------------------------------------
def tiny_model(seed: int):
    from modeling_mint import MintConfig, MintForConditionalGeneration

    torch.manual_seed(seed)
    return MintForConditionalGeneration(MintConfig.from_pretrained(TINY))


def assert_loaded(model, state):
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value.to(model.state_dict()[key].dtype)), key


def test_trained_state_round_trip(tmp_path):
    trained = tiny_model(1)
    state = trained_state(trained)
    assert state and all(k.startswith(TRAINABLE_PREFIXES) for k in state)
    assert not any(".language_model." in k or ".audio_tower." in k for k in state)  # frozen parts never ship
    save_trainable(trained, tmp_path / "run" / "bridge.safetensors")
    assert names(tmp_path / "run") == ["bridge.safetensors"]
    fresh = tiny_model(2)
    loaded = load_by_prefix(fresh, tmp_path / "run", TRAINABLE_PREFIXES)  # a run folder: its bridge.safetensors
    assert set(loaded) == set(state)
    assert_loaded(fresh, state)

    save_trainable(trained, tmp_path / "half.safetensors", half=True)
    assert {v.dtype for v in load_file(str(tmp_path / "half.safetensors")).values()} == {torch.float16}
    assert load_trained_bridge(tiny_model(3), tmp_path / "half.safetensors") == {}  # no heads in the file


def test_load_by_prefix_reads_only_its_prefixes_of_a_checkpoint(tmp_path):
    trained = tiny_model(1)
    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    full = {k: v.clone() for k, v in trained.state_dict().items()}  # a checkpoint stores tied weights apart
    full["atm_head.weight"] = torch.ones(2, 4)  # not the generation model's: left unread
    save_file(full, str(checkpoint / "model.safetensors"))
    fresh = tiny_model(2)
    loaded = load_by_prefix(fresh, checkpoint, BRIDGE_NET, "Bridge-Net weights")
    assert loaded and all(k.startswith(BRIDGE_NET) for k in loaded)
    assert_loaded(fresh, loaded)
    assert not torch.equal(fresh.model.language_projection.weight, trained.model.language_projection.weight)
    assert set(read_by_prefix(checkpoint, RETRIEVAL_HEADS)) == {"atm_head.weight"}


def test_weights_that_do_not_fit_are_refused(tmp_path):
    model = tiny_model(0)
    save_file({"model.language_model.norm.weight": torch.ones(3)}, str(tmp_path / "llm.safetensors"))
    with pytest.raises(ValueError, match="not Bridge-Net weights"):
        load_trained_bridge(model, tmp_path / "llm.safetensors")
    with pytest.raises(ValueError, match="no Bridge-Net weights found"):
        load_by_prefix(model, tmp_path / "llm.safetensors", TRAINABLE_PREFIXES, "Bridge-Net weights")
    save_file({"model.bridge.no_such_layer.weight": torch.ones(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="weights the model does not have"):
        load_by_prefix(model, tmp_path / "other.safetensors", TRAINABLE_PREFIXES)


def test_trained_weights_on_a_full_disk_keep_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "bridge.safetensors"
    save_state({"model.bridge.x": torch.ones(2)}, path)

    def full_disk(state, filename, metadata=None):
        pathlib.Path(filename).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(weights, "save_file", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        save_trainable(tiny_model(0), path)
    assert names(tmp_path) == ["bridge.safetensors"]
    assert torch.equal(load_file(str(path))["model.bridge.x"], torch.ones(2))


def test_ctc_head_is_read_wherever_the_model_kept_it(tmp_path):
    save_file({"model.ctc_blank": torch.ones(4), "ctc_log_scale": torch.tensor(2.0), "model.bridge.x": torch.ones(1)},
              str(tmp_path / "model.safetensors"))
    head = read_ctc_head(tmp_path / "model.safetensors")
    assert set(head) == {"ctc_blank", "ctc_log_scale"} and torch.equal(head["ctc_blank"], torch.ones(4))
    save_file({"model.bridge.x": torch.ones(1)}, str(tmp_path / "none.safetensors"))
    assert read_ctc_head(tmp_path / "none.safetensors") == {}
