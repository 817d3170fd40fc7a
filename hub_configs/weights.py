"""The trained part of a MINT model in one place: which keys it is, how it is written and how it is read back by key
prefix. Every stage, the shipped variants and assembly share these names, so a file one of them writes is a file the
others read."""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mint.io import atomic_file


BRIDGE_NET = ("model.query_tokens.", "model.bridge.")
LABEL_PROMPT = ("model.label_head.", "model.label_token_ids")
TRAINABLE_PREFIXES = (*BRIDGE_NET, "model.language_projection.", "model.multi_modal_projector.",
                      "model.ctc_blank", "model.ctc_log_scale", "model.ctc_context.", *LABEL_PROMPT)
RETRIEVAL_HEADS = ("audio_projection.", "text_projection.", "atm_head.", "agtg_head.", "temperature")
CTC_HEAD = ("ctc_blank", "ctc_log_scale")
BRIDGE_WEIGHTS = "bridge.safetensors"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


# ---- what is trained --------------------------------------------------------------------------------------------
def trained_state(model) -> dict[str, torch.Tensor]:
    """What a trained MINT ships: the parameters of the queries, Bridge-Net and projection that were trained (a
    frozen part, such as the bridge word embeddings, is rebuilt from its pretrained source at assembly), and the
    CTC head of a token-prompt model, which later stages keep frozen, and a label prompt's word pieces."""
    state = {k: v.detach().contiguous() for k, v in model.named_parameters()
             if (v.requires_grad or ".ctc_" in k) and k.startswith(TRAINABLE_PREFIXES)}
    state.update({k: v.detach().contiguous() for k, v in model.named_buffers() if k.startswith(LABEL_PROMPT[1])})
    return state


def state_by_prefix(model, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The tensors of `model` whose names start with `prefixes`, trained or not (stage 1's heads)."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if k.startswith(prefixes)}


# ---- writing ----------------------------------------------------------------------------------------------------
def save_state(state: dict[str, torch.Tensor], path: str | Path, half: bool = False) -> Path:
    """`state` written to `path` whole or not at all. `half` stores fp16, what a variant ships; without it the
    tensors keep their dtype, so a later stage starts exactly where this one stopped."""
    if half:
        state = {k: v.to(torch.float16).contiguous() for k, v in state.items()}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    return Path(path)


def save_trainable(model, path: str | Path, half: bool = False) -> Path:
    """The queries, Bridge-Net and projection only (`trained_state`), atomically."""
    return save_state(trained_state(model), path, half)


# ---- reading ----------------------------------------------------------------------------------------------------
def weights_file(source: str | Path) -> Path:
    """A weights file, or the one a run folder keeps: its `bridge.safetensors`, else a checkpoint's
    `model.safetensors` (the key names are shared)."""
    path = Path(source)
    if path.is_dir():
        path = path / BRIDGE_WEIGHTS if (path / BRIDGE_WEIGHTS).is_file() else path / "model.safetensors"
    return path


def read_by_prefix(source: str | Path, prefixes: tuple[str, ...], only: tuple[str, ...] | None = None,
                   what: str = "trained MINT weights") -> dict[str, torch.Tensor]:
    """The tensors of `source` (see `weights_file`) whose names start with `prefixes`. Only those are read, so a
    full checkpoint costs no more than a bridge file. `only` names every prefix the file may hold: a key outside
    them means the file is something else, and it is refused."""
    path = weights_file(source)
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        if only is not None:
            unknown = [k for k in keys if not k.startswith(only)]
            if unknown:
                raise ValueError(f"{path}: not {what}: unknown keys {unknown[:5]}")
        return {k: f.get_tensor(k) for k in keys if k.startswith(prefixes)}


def load_by_prefix(model, source: str | Path, prefixes: tuple[str, ...], what: str = "trained MINT weights",
                   only: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of `source` under `prefixes` loaded into `model` (the rest of the file is not read; see
    `read_by_prefix` for `only`); returns them. A file with none of them, or with one the model does not have, is
    refused: weights silently dropped would train or ship the wrong model."""
    state = read_by_prefix(source, prefixes, only, what)
    if not state:
        raise ValueError(f"{source}: no {what} found")
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{source}: weights the model does not have: {result.unexpected_keys[:5]}")
    return state


def load_trained_bridge(model, path: str | Path) -> dict[str, torch.Tensor]:
    """Trained queries, Bridge-Net and projection (a stage's or a variant's `bridge.safetensors`) into `model`;
    returns the retrieval heads the file also holds. A file with any other key is refused."""
    load_by_prefix(model, path, TRAINABLE_PREFIXES, "Bridge-Net weights", only=TRAINABLE_PREFIXES + RETRIEVAL_HEADS)
    return read_by_prefix(path, RETRIEVAL_HEADS)


def trained_window_frames(path: str | Path) -> int | None:
    """The Bridge-Net window (`bridge_window_frames`) a shipped weights file was trained with, as `ship_weights`
    records it; None where the file records none. A bridge read with other windows than it learnt hears nothing."""
    with safe_open(str(weights_file(path)), framework="pt") as f:
        value = (f.metadata() or {}).get("bridge_window_frames")
    return int(value) if value else None


def trained_labels(path: str | Path | None) -> list[str] | None:
    """The labels of a weights file's label prompt (`id2label` in order, as `ship_weights` records them); None where
    it has none."""
    if path is None:
        return None
    with safe_open(str(weights_file(path)), framework="pt") as f:
        value = (f.metadata() or {}).get("labels")
    return json.loads(value) if value else None


def has_retrieval_heads(path: str | Path | None) -> bool:
    """Whether a shipped weights file holds stage 1's heads beside the Bridge-Net."""
    if path is None:
        return False
    with safe_open(str(weights_file(path)), framework="pt") as f:
        return any(k.startswith(RETRIEVAL_HEADS) for k in f.keys())


def has_clip_context(path: str | Path | None) -> bool:
    """Whether a weights file holds the clip-context projection of a bridge trained with `clip_context`."""
    if path is None:
        return False
    with safe_open(str(weights_file(path)), framework="pt") as f:
        return any(k.startswith("model.query_tokens.context_") for k in f.keys())


def ctc_context_layers(path: str | Path | None) -> int:
    """How many convolution layers a weights file holds before the CTC head (`ctc_context_layers`); 0 if none."""
    if path is None:
        return 0
    with safe_open(str(weights_file(path)), framework="pt") as f:
        return len({k.split(".")[3] for k in f.keys() if k.startswith("model.ctc_context.layers.")})


def read_ctc_head(source: str | Path) -> dict[str, torch.Tensor]:
    """The soft-prompt CTC blank and scale a checkpoint holds, as `ctc_blank` and `ctc_log_scale`, wherever the
    model kept them (its own, `model.ctc_*`, or the ones a CTC run adds to the top-level model); empty if none."""
    state = read_by_prefix(source, CTC_HEAD + tuple(f"model.{name}" for name in CTC_HEAD))
    return {name: state.get(f"model.{name}", state.get(name)) for name in CTC_HEAD
            if name in state or f"model.{name}" in state}
