"""Assemble a MINT variant into a standard Hugging Face folder (weights, config with `auto_map` and
`custom_pipelines`, processor, and the remote-code files), loadable with `trust_remote_code=True`.

A variant is a folder in `hub_configs/` holding either
- `config.json` + processor files: random weights (tests), or
- `variant.json`: which pretrained parts to join. A part is an offline component name (see `components.py`) or
  `hf:<repo id>`, loaded with `from_pretrained` from the Hub (or `HF_ENDPOINT`), plus optional trained Bridge-Net
  weights shipped beside it.
"""

import copy
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GenerationConfig,
    WhisperFeatureExtractor,
)

import modeling_mint
from mint.hub import components
from mint.hub.model_card import model_card
from mint.hub.weights import (
    ADAPTER_WEIGHTS,
    CTC_HEAD,
    LABEL_PROMPT,
    RETRIEVAL_HEADS,
    TRAINABLE_PREFIXES,
    ctc_context_layers,
    has_clip_context,
    has_retrieval_heads,
    load_trained_bridge,
    read_by_prefix,
    trained_labels,
    trained_window_frames,
)
from mint.io import atomic_file, atomic_folder
from modeling_mint import MintConfig, MintForAudioTextRetrieval, MintForConditionalGeneration, MintProcessor
from modeling_mint import audio_encoder_facts


VARIANTS_DIR = Path(__file__).parent
CODE_DIR = Path(modeling_mint.__file__).parent
OFFLINE = {
    "whisper-tiny.en": components.whisper_tiny_en,
    "whisper-base": components.whisper_base,
    "all-MiniLM-L6-v2": components.minilm_path,
    "smollm2-135m-instruct": components.smollm2_135m_instruct,
}
MAX_SHIPPED_BYTES = 64 * 2**20


def variants() -> list[str]:
    return sorted(p.name for p in VARIANTS_DIR.iterdir() if (p / "config.json").is_file() or (p / "variant.json").is_file())


def variant_dir(variant: str) -> Path:
    path = VARIANTS_DIR / variant
    if not ((path / "config.json").is_file() or (path / "variant.json").is_file()):
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(variants())}")
    return path


def resolve(part: str) -> str:
    """An offline component name -> its local folder; `hf:<repo id>` -> the repo id for `from_pretrained`."""
    if part.startswith("hf:"):
        return part[3:]
    if part not in OFFLINE:
        raise ValueError(f"unknown component {part!r}; use one of {sorted(OFFLINE)} or hf:<repo id>")
    return str(OFFLINE[part]())


# ---- writing --------------------------------------------------------------------------------------------------
def _write_atomically(out: str | Path, write) -> Path:
    """`write(tmp_dir)` plus the remote-code files, swapped into `out` whole: a half-written folder never replaces a
    good one."""
    with atomic_folder(out) as tmp:
        write(tmp)
        for name in modeling_mint.REMOTE_CODE_FILES:
            shutil.copy2(CODE_DIR / name, tmp / name)
    return Path(out)


def _save_processor(processor: MintProcessor, folder: Path):
    processor.save_pretrained(folder)
    processor_config = folder / "processor_config.json"
    data = json.loads(processor_config.read_text())
    data["auto_map"] = {"AutoProcessor": "processing_mint.MintProcessor"}
    processor_config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def task_generation_config(model: MintForConditionalGeneration, task: str, kwargs: dict) -> GenerationConfig:
    """The model's generation config with one task's decoding on top (e.g. joint CTC decoding and beam search for
    transcription), checked: a CTC weight needs the token prompt's CTC head."""
    if not kwargs:
        raise ValueError(f"the {task} decoding sets nothing")
    if kwargs.get("ctc_weight") and not model.config.token_bags:
        raise ValueError(f"the {task} decoding sets ctc_weight, but the model has no token prompt CTC head")
    if not 0 <= kwargs.get("ctc_weight", 0) <= 1:
        raise ValueError(f"the {task} decoding's ctc_weight must be in [0, 1], got {kwargs['ctc_weight']}")
    config = copy.deepcopy(model.generation_config)
    config._from_model_config = False  # else loading it keeps only what a model config could have said
    for key, value in kwargs.items():
        setattr(config, key, value)
    config.validate(strict=True)
    return config


def save_folder(model: MintForConditionalGeneration, processor: MintProcessor, folder: str | Path, card=None,
                decoding: dict[str, dict] | None = None) -> Path:
    """Write the generation model, its processor and the remote-code files (and a `ModelCard`, if given) into
    `folder`, beside what it holds (a training run's checkpoints and reports stay). With `config.retrieval_heads`
    the same folder also serves embeddings and zero-shot classification. Each task of `decoding` gets its own
    `{task}_generation_config.json` (`GenerationConfig.from_pretrained(folder, "transcription_generation_config.json")`)."""
    configs = {task: task_generation_config(model, task, kwargs) for task, kwargs in (decoding or {}).items()}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if card is not None:
        card.save(folder / "README.md")
    model.config.auto_map = dict(modeling_mint.AUTO_MAP)
    model.config.custom_pipelines = dict(modeling_mint.CUSTOM_PIPELINES)
    if model.config.retrieval_heads:
        model.config.auto_map.update(modeling_mint.RETRIEVAL_AUTO_MAP)
        model.config.custom_pipelines.update(modeling_mint.ZERO_SHOT_PIPELINE)
    if model.config.token_bags:  # zero-shot by the CTC head's word pieces
        model.config.custom_pipelines.update(modeling_mint.TOKEN_BAG_ZERO_SHOT_PIPELINE)
    model.config.architectures = ["MintForConditionalGeneration"]
    model.save_pretrained(folder)
    _save_processor(processor, folder)
    for name in modeling_mint.REMOTE_CODE_FILES:
        shutil.copy2(CODE_DIR / name, folder / name)
    for task, config in configs.items():
        config.save_pretrained(folder, config_file_name=f"{task}_generation_config.json")
    return folder


def export(model: MintForConditionalGeneration, processor: MintProcessor, out: str | Path, card=None,
           decoding: dict[str, dict] | None = None) -> Path:
    """`save_folder` into a fresh `out`, swapped in whole."""
    with atomic_folder(out) as tmp:
        save_folder(model, processor, tmp, card, decoding)
    return Path(out)


def export_retrieval(model: MintForAudioTextRetrieval, processor: MintProcessor, out: str | Path, card=None) -> Path:
    """Write a stage-1 model alone (no LLM), CLAP-like: `AutoModel` is the retrieval model and
    `zero-shot-audio-classification` runs through the folder's pipeline class, with the processor's Bridge-Net
    tokenizer and every audio window; `preprocessor_config.json` serves `AutoFeatureExtractor` users."""

    def write(tmp: Path):
        if card is not None:
            card.save(tmp / "README.md")
        model.config.auto_map = {
            "AutoConfig": "configuration_mint.MintConfig",
            "AutoModel": "modeling_mint.MintForAudioTextRetrieval",
            **modeling_mint.RETRIEVAL_AUTO_MAP,
        }
        model.config.custom_pipelines = dict(modeling_mint.ZERO_SHOT_PIPELINE)
        model.config.architectures = ["MintForAudioTextRetrieval"]
        model.save_pretrained(tmp)
        _save_processor(processor, tmp)
        processor.feature_extractor.save_pretrained(tmp)

    return _write_atomically(out, write)


# ---- building from parts --------------------------------------------------------------------------------------
def _audio_part(source: str, window_seconds: int):
    """Audio config, encoder state dict and feature extractor. Whisper is cut to a `window_seconds` window."""
    config = AutoConfig.from_pretrained(source)
    if config.model_type == "whisper":
        encoder = AutoModel.from_pretrained(source).get_encoder()
        config, state = components.cut_whisper_window(config, encoder.state_dict(), window_seconds)
        features = WhisperFeatureExtractor.from_pretrained(source, chunk_length=window_seconds)
        return config, state, features
    model = AutoModel.from_pretrained(source)
    return config, model.state_dict(), AutoFeatureExtractor.from_pretrained(source)


def _bridge_part(source: str, **overrides):
    """Bridge config, BERT-initialized bridge state dict and the bridge tokenizer with [DEC]."""
    bert_config = AutoConfig.from_pretrained(source).to_dict()
    bridge_config = components.bridge_config_from_bert_dict(bert_config, **overrides)
    bert = AutoModel.from_pretrained(source, add_pooling_layer=False)
    tokenizer = AutoTokenizer.from_pretrained(source)
    state = components.bert_to_bridge_state_dict(bert.state_dict(), cls_id=tokenizer.cls_token_id)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    if tokenizer.bos_token_id != bridge_config.bos_token_id:
        raise ValueError(f"{source}: [DEC] got id {tokenizer.bos_token_id}, expected {bridge_config.bos_token_id}")
    return bridge_config, state, tokenizer


def _language_part(source: str):
    """LLM config, its weights split into backbone and head, and its tokenizer with the `<audio>` token."""
    config = AutoConfig.from_pretrained(source)
    auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    lm = auto.from_pretrained(source, dtype=torch.float32)
    head = lm.get_output_embeddings().weight.detach().clone()
    backbone = lm.model.state_dict() if hasattr(lm, "model") else {k: v for k, v in lm.state_dict().items() if not k.startswith("lm_head.")}
    tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<audio>"]})
    return lm.config, backbone, head, tokenizer


def build_from_parts(spec: dict, trained: Path | None = None) -> tuple[MintForConditionalGeneration, MintProcessor]:
    """Join pretrained parts as `spec` (a `variant.json`) says; load trained Bridge-Net weights if given."""
    learnt = trained_window_frames(trained) if trained is not None else None
    if learnt is not None and learnt != spec.get("bridge_window_frames"):
        raise ValueError(f"{trained}: the Bridge-Net was trained on windows of {learnt} frames, but variant.json says "
                         f"bridge_window_frames={spec.get('bridge_window_frames')}")
    window = spec.get("audio_window_seconds", 10)
    audio_config, audio_state, features = _audio_part(resolve(spec["audio_encoder"]), window)
    facts = audio_encoder_facts(audio_config)  # where the audio config does not fix the window, MINT sets it
    bridge_config, bridge_state, bridge_tokenizer = _bridge_part(
        resolve(spec["bridge_init"]), cross_attention_frequency=spec.get("cross_attention_frequency", 2),
        encoder_hidden_size=None,
    )
    text_config, lm_state, lm_head, tokenizer = _language_part(resolve(spec["language_model"]))
    heads = has_retrieval_heads(trained) and spec.get("connector_type", "bridge") == "bridge"
    labels = trained_labels(trained)
    label_tokens = read_by_prefix(trained, LABEL_PROMPT[1:])[LABEL_PROMPT[1]].shape[1] if labels else 0
    audio_token = tokenizer.convert_tokens_to_ids("<audio>")
    text_config.vocab_size = max(text_config.vocab_size, len(tokenizer))
    config = MintConfig(
        audio_config=audio_config.to_dict(), bridge_config=bridge_config.to_dict(), text_config=text_config.to_dict(),
        num_query_tokens=spec.get("num_query_tokens", 32), audio_token_index=audio_token,
        projection_dim=spec.get("projection_dim", 256), max_audio_windows=spec.get("max_audio_windows", 3),
        audio_window_size=None if facts.window_attribute else window * facts.input_rate,
        bridge_window_frames=spec.get("bridge_window_frames"), connector_type=spec.get("connector_type", "bridge"),
        retrieval_heads=heads,
        token_prompt_mix=spec.get("token_prompt_mix", 0.0),
        clip_context=spec.get("clip_context", False) or has_clip_context(trained),
        ctc_context_layers=spec.get("ctc_context_layers", 0) or ctc_context_layers(trained),
        label_prompt_tokens=label_tokens, id2label=dict(enumerate(labels)) if labels else None,
    )
    model = MintForConditionalGeneration(config)
    model.model.audio_tower.load_state_dict(audio_state)
    if model.bridge is not None:
        model.model.bridge.load_state_dict(bridge_state, strict=False)
    _load_language_model(model, lm_state, lm_head)
    if trained is not None:
        head_state = load_trained_bridge(model, trained)
        if heads:  # one folder for generation and retrieval
            model.load_state_dict(head_state, strict=False)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.suppress_tokens = [audio_token]  # the placeholder is never an answer
    processor = MintProcessor(
        feature_extractor=features, tokenizer=tokenizer, bridge_tokenizer=bridge_tokenizer,
        num_query_tokens=config.num_query_tokens, max_audio_windows=config.max_audio_windows,
        audio_window_seconds=window, bridge_window_frames=config.bridge_window_frames,
        max_text_tokens=getattr(config.text_config, "max_position_embeddings", None),
        chat_template=getattr(tokenizer, "chat_template", None), label_prompt_tokens=config.label_prompt_tokens,
    )
    return model, processor


def _load_language_model(model: MintForConditionalGeneration, backbone: dict, head: torch.Tensor):
    """Copy the LLM weights in; rows added for `<audio>` start at the mean embedding (they are always replaced)."""
    rows = model.get_input_embeddings().weight.shape[0]
    for key, value in list(backbone.items()):
        if key.endswith(("embed_tokens.weight", "shared.weight")) and value.shape[0] < rows:
            backbone[key] = torch.cat([value, value.mean(0, keepdim=True).expand(rows - value.shape[0], -1)])
    result = model.model.language_model.load_state_dict(backbone, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"LLM weights do not fit: unexpected {result.unexpected_keys[:5]}")
    if head.shape[0] < rows:
        head = torch.cat([head, head.mean(0, keepdim=True).expand(rows - head.shape[0], -1)])
    with torch.no_grad():
        model.lm_head.weight.copy_(head)


def ship_weights(bridge: str | Path, heads: str | Path | None, out: str | Path, adapter: str | Path | None = None,
                 adapter_out: str | Path | None = None) -> dict:
    """What a trained variant ships: a generation model's trained queries, Bridge-Net and projection, plus the
    retrieval heads fitted to that bridge (a stage-1 folder's `heads.safetensors`), in fp16, written atomically to
    `out`; and, when the LLM was tuned with LoRA, the adapter folder (`adapter`, from instruction tuning) in fp16 to
    `adapter_out`. Refuses more than `MAX_SHIPPED_BYTES` in all."""
    state = read_by_prefix(bridge, TRAINABLE_PREFIXES)
    window = run_window_frames(bridge)
    if heads is not None:
        state.update(read_by_prefix(heads, RETRIEVAL_HEADS))
    state = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    labels = run_labels(bridge)
    lora = {}
    if adapter is not None:
        if adapter_out is None:
            raise ValueError("the variant names no place for an LLM adapter (language_model_adapter in variant.json)")
        lora = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(Path(adapter) / ADAPTER_WEIGHTS)).items()}
        if not lora or not all(".lora_" in k and ".language_model." in k for k in lora):
            raise ValueError(f"{adapter}: not a LoRA adapter of the LLM")
    size = sum(v.numel() * v.element_size() for v in [*state.values(), *lora.values()])
    if size > MAX_SHIPPED_BYTES:
        raise ValueError(f"{size / 2**20:.1f} MB of trained weights is over the {MAX_SHIPPED_BYTES / 2**20:.0f} MB cap")
    out = Path(out)
    with atomic_file(out) as tmp:  # a failed write (a full disk) leaves the shipped files as they were
        recorded = {"bridge_window_frames": str(window)} if window else {}
        if labels:
            recorded["labels"] = json.dumps(labels)
        save_file(state, str(tmp), metadata={"format": "pt", **recorded})
        if adapter is not None:
            with atomic_folder(adapter_out) as tmp_dir:
                shutil.copy2(Path(adapter) / "adapter_config.json", tmp_dir / "adapter_config.json")
                save_file(lora, str(tmp_dir / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        elif adapter_out is not None and Path(adapter_out).exists():
            shutil.rmtree(adapter_out)  # a bridge trained without LoRA must not be joined to an old adapter
    files = [out] + ([Path(adapter_out) / ADAPTER_WEIGHTS] if lora else [])
    return {"tensors": len(state) + len(lora), "parameters": sum(v.numel() for v in [*state.values(), *lora.values()]),
            "bytes": sum(f.stat().st_size for f in files), "bridge_window_frames": window}


def run_window_frames(bridge: str | Path) -> int | None:
    """The Bridge-Net window of the run that wrote `bridge` (its folder's `config.json`, which a recipe's
    `bridge_window_frames` sets), or the one a shipped file records; None for a bridge without windows."""
    config = Path(bridge).parent / "config.json"
    if config.is_file():
        return json.loads(config.read_text()).get("bridge_window_frames")
    return trained_window_frames(bridge)


def run_labels(bridge: str | Path) -> list[str] | None:
    """The labels of the run that wrote `bridge`, in order (its folder's `config.json`, where a label prompt puts
    `id2label`), or the ones a shipped file records; None without a label prompt."""
    config = Path(bridge).parent / "config.json"
    if config.is_file():
        config = json.loads(config.read_text())
        if not config.get("label_prompt_tokens"):
            return None
        return [label for _, label in sorted(config["id2label"].items(), key=lambda item: int(item[0]))]
    return trained_labels(bridge)


def merge_llm_adapter(model: MintForConditionalGeneration, adapter: Path) -> MintForConditionalGeneration:
    """LoRA from instruction tuning merged into the LLM's weights (PEFT), so the assembled folder needs no PEFT."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()


def assemble(variant: str, out: str | Path, seed: int = 0, retrieval: bool = False, untrained: bool = False) -> Path:
    """Build `variant` into `out`. Random variants get seeded random weights. `retrieval` writes the stage-1 model
    instead (audio-text retrieval and zero-shot classification) with the variant's trained heads; `untrained`
    leaves the shipped trained weights out (the starting point of training)."""
    src = variant_dir(variant)
    torch.manual_seed(seed)
    if (src / "variant.json").is_file():
        spec = json.loads((src / "variant.json").read_text())
        trained = src / spec["trained_weights"] if spec.get("trained_weights") else None
        trained = trained if trained and trained.is_file() and not untrained else None
        model, processor = build_from_parts(spec, trained)
        adapter = src / spec["language_model_adapter"] if spec.get("language_model_adapter") else None
        lora = trained is not None and adapter is not None and (adapter / ADAPTER_WEIGHTS).is_file()
        if lora:
            model = merge_llm_adapter(model, adapter)
        if not retrieval:
            return export(model, processor, out, model_card(variant, spec, trained is not None, lora,
                                                            model.config.retrieval_heads), spec.get("decoding"))
        if trained is None and not untrained:
            raise ValueError(f"{variant} has no trained weights yet; --retrieval needs them (or --untrained)")
        if trained is not None and not model.config.retrieval_heads:
            raise ValueError(f"{variant} ships no retrieval heads fitted to its Bridge-Net; --retrieval needs them")
        heads = load_trained_bridge(model, trained) if trained else {}
        retrieval_model = MintForAudioTextRetrieval(model.config)
        retrieval_model.model.load_state_dict(  # the LLM side stays behind: its projection and the token prompt's head
            {k: v for k, v in model.model.state_dict().items()
             if not k.startswith(("language_model.", "language_projection.", "label_")) and k not in CTC_HEAD})
        retrieval_model.load_state_dict(heads, strict=False)
        return export_retrieval(retrieval_model, processor, out, model_card(variant, spec, trained is not None, lora,
                                                                            True, retrieval_only=True))
    if retrieval:
        raise ValueError(f"{variant} has no trained retrieval heads")
    config = MintConfig.from_pretrained(src)
    config.retrieval_heads = config.connector_type == "bridge"  # random heads: every path of a shipped folder
    processor = MintProcessor.from_pretrained(src)
    processor.max_text_tokens = getattr(config.text_config, "max_position_embeddings", None)
    model = MintForConditionalGeneration(config)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return export(model, processor, out)
