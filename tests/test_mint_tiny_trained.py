"""The shipped, trained weights (hub_configs/*/bridge.safetensors) on recordings the training never saw."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoTokenizer

from mint.hub.assemble import MAX_SHIPPED_BYTES, assemble, variant_dir
from modeling_mint import MintForAudioTextRetrieval, MintForConditionalGeneration, load_audio
from mint.training.data import asterisk_pairs
from mint.training.metrics import retrieval_metrics


pytestmark = pytest.mark.slow  # every test assembles and runs a real variant


@pytest.fixture(scope="module")
def held_out():
    """The Asterisk prompts of the test split: real speech with exact transcripts."""
    return sorted((p for p in asterisk_pairs() if p["split"] == "test"), key=lambda p: p["audio"])


@pytest.mark.parametrize("variant", ["mint-tiny", "mint-tiny-windowed"])
def test_shipped_weights_are_small_fp16_and_loaded(variant, tmp_path):
    path = variant_dir(variant) / "bridge.safetensors"
    shipped = load_file(str(path))
    assert path.stat().st_size <= MAX_SHIPPED_BYTES and {v.dtype for v in shipped.values()} == {torch.float16}
    model = MintForConditionalGeneration.from_pretrained(assemble(variant, tmp_path / variant))
    state = model.state_dict()
    for key in ("model.query_tokens.weight", "model.language_projection.weight",
                "model.bridge.encoder.layer.0.crossattention.attention.query.weight"):
        torch.testing.assert_close(state[key], shipped[key].float())
    assert all(not p.requires_grad for n, p in model.named_parameters() if "language_model" in n)
    check_llm_adapter_merged(variant, model, tmp_path)


def check_llm_adapter_merged(variant, model, tmp_path):
    """Where the variant ships a LoRA adapter, the assembled LLM is SmolLM2 plus exactly (alpha / r) B A."""
    import json

    adapter = variant_dir(variant) / "llm_adapter"
    if not (adapter / "adapter_model.safetensors").is_file():
        return
    lora = load_file(str(adapter / "adapter_model.safetensors"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    untrained = MintForConditionalGeneration.from_pretrained(assemble(variant, tmp_path / "untrained", untrained=True))
    for key in [k for k in lora if k.endswith("lora_A.weight")][:3]:
        name = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        delta = lora[key.replace("lora_A", "lora_B")].float() @ lora[key].float() * config["lora_alpha"] / config["r"]
        merged, base = model.get_submodule(name).weight, untrained.get_submodule(name).weight
        torch.testing.assert_close(merged - base, delta, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(model.get_input_embeddings().weight, untrained.get_input_embeddings().weight)


def test_shipped_retrieval_finds_held_out_prompts(tmp_path, held_out):
    """`mint assemble mint-tiny --retrieval`: each held-out prompt's audio against all 71 transcripts, well above
    chance (the measured recall: training/reports/mint_tiny.md); the bounds guard that the shipped heads and bridge
    still fit together."""
    folder = assemble("mint-tiny", tmp_path / "retrieval", retrieval=True)
    model = MintForAudioTextRetrieval.from_pretrained(folder).eval()
    features = AutoFeatureExtractor.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="bridge_tokenizer")  # the processor's, beside the LLM's
    texts = [p["text"] for p in held_out]
    audio = []
    with torch.no_grad():
        for start in range(0, len(held_out), 16):
            waves = [load_audio(p["audio"], None, 16000) for p in held_out[start : start + 16]]
            batch = features(waves, sampling_rate=16000, return_attention_mask=True, return_tensors="pt")
            audio.append(model.get_audio_features(input_features=batch["input_features"],
                                                  feature_attention_mask=batch["attention_mask"]).pooler_output)
        tok = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        text = model.get_text_features(tok["input_ids"], tok["attention_mask"]).pooler_output
    audio = torch.cat(audio)
    metrics = retrieval_metrics(audio, text, list(range(len(texts))))
    chance = metrics["chance/R@1_audio_to_text"]
    assert metrics["audio_to_text/R@1"] > 3 * chance and metrics["audio_to_text/R@10"] > 1.25 * 10 * chance, metrics


def test_token_prompt_retrieval_folder_takes_its_heads_and_leaves_the_llm_side_behind(tmp_path, monkeypatch):
    """The token prompt ships retrieval heads beside its Bridge-Net: its stage-1 folder holds that Bridge-Net and
    those heads, and neither the LLM's projection nor the CTC head (which only the soft prompt reads). The same
    variant shipped without heads is refused by name, and nothing is written."""
    import shutil

    from mint.hub import assemble as hub

    shipped = variant_dir("mint-tiny-token-prompt") / "bridge.safetensors"
    model = MintForAudioTextRetrieval.from_pretrained(assemble("mint-tiny-token-prompt", tmp_path / "ret", retrieval=True))
    state, weights = model.state_dict(), load_file(str(shipped))
    assert "atm_head.weight" in weights, "the token prompt ships its heads (make train-mint-tiny-token-prompt)"
    assert not any("ctc_" in k or "language_" in k for k in state)
    for key in ("model.query_tokens.weight", "model.bridge.encoder.layer.0.crossattention.attention.query.weight",
                "audio_projection.weight", "atm_head.weight"):
        torch.testing.assert_close(state[key], weights[key].float())

    variants = tmp_path / "variants"
    shutil.copytree(variant_dir("mint-tiny-token-prompt"), variants / "mint-tiny-token-prompt")
    hub.ship_weights(shipped, None, variants / "mint-tiny-token-prompt" / "bridge.safetensors")
    monkeypatch.setattr(hub, "VARIANTS_DIR", variants)
    with pytest.raises(ValueError, match="ships no retrieval heads"):
        assemble("mint-tiny-token-prompt", tmp_path / "refused", retrieval=True)
    assert not (tmp_path / "refused").exists()


def test_shipping_records_the_bridge_window_and_assembly_keeps_it(tmp_path, monkeypatch):
    """A bridge learns one window length: `mint ship` records the one its run trained (the run folder's config)
    in the weights and in variant.json, and assembly refuses a variant.json that disagrees, before building."""
    import json
    import shutil

    from mint.cli import main
    from mint.hub import assemble as hub
    from mint.hub.weights import trained_window_frames

    variants, run = tmp_path / "variants", tmp_path / "run"
    shutil.copytree(variant_dir("mint-tiny-token-prompt"), variants / "mint-tiny-token-prompt")
    monkeypatch.setattr(hub, "VARIANTS_DIR", variants)
    source = variants / "mint-tiny-token-prompt"
    run.mkdir()
    shutil.copy2(source / "bridge.safetensors", run / "bridge.safetensors")
    shutil.copytree(source / "llm_adapter", run / "llm_adapter")
    (run / "config.json").write_text(json.dumps({"bridge_window_frames": 12}))

    assert main(["ship", "mint-tiny-token-prompt", "--bridge", str(run / "bridge.safetensors"),
                 "--adapter", str(run / "llm_adapter")]) == 0
    spec = json.loads((source / "variant.json").read_text())
    assert spec["bridge_window_frames"] == 12 == trained_window_frames(source / "bridge.safetensors")
    assert hub.ship_weights(source / "bridge.safetensors", None, tmp_path / "again.safetensors")[
        "bridge_window_frames"] == 12  # a shipped file keeps its record when shipped on

    (source / "variant.json").write_text(json.dumps({**spec, "bridge_window_frames": 25}))
    with pytest.raises(ValueError, match="trained on windows of 12 frames.*bridge_window_frames=25"):
        assemble("mint-tiny-token-prompt", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_a_shipped_label_prompt_assembles_into_config_processor_and_generation(tmp_path, monkeypatch):
    """A run with a label prompt ships its classifier, its labels' word pieces (exact integers) and the labels
    themselves; assembly gives the config `id2label` and `label_prompt_tokens`, the processor the placeholders, and
    the model reads them in generation; the retrieval folder leaves the classifier behind with the LLM side."""
    import json
    import shutil

    from safetensors.torch import save_file

    from mint.cli import main
    from mint.hub import assemble as hub
    from modeling_mint import MintProcessor

    variants, run = tmp_path / "variants", tmp_path / "run"
    shutil.copytree(variant_dir("mint-tiny-token-prompt"), variants / "mint-tiny-token-prompt")
    monkeypatch.setattr(hub, "VARIANTS_DIR", variants)
    source = variants / "mint-tiny-token-prompt"
    labels = ["dog barking", "rain", "acoustic grand piano"]
    processor = MintProcessor.from_pretrained(assemble("mint-tiny-token-prompt", tmp_path / "plain"),
                                              label_prompt_tokens=5)
    state = load_file(str(source / "bridge.safetensors"))
    width = state["model.query_tokens.weight"].shape[-1]
    torch.manual_seed(0)
    state.update({"model.label_head.weight": torch.randn(3, width), "model.label_head.bias": torch.tensor([0, 9, 0.]),
                  "model.label_token_ids": processor.label_token_ids(labels)})
    run.mkdir()
    save_file(state, str(run / "bridge.safetensors"))
    shutil.copytree(source / "llm_adapter", run / "llm_adapter")
    (run / "config.json").write_text(json.dumps({"bridge_window_frames": 12, "label_prompt_tokens": 5,
                                                 "id2label": dict(enumerate(labels))}))
    assert main(["ship", "mint-tiny-token-prompt", "--bridge", str(run / "bridge.safetensors"), "--heads",
                 str(run / "bridge.safetensors"), "--adapter", str(run / "llm_adapter")]) == 0

    folder = assemble("mint-tiny-token-prompt", tmp_path / "labelled")
    model = MintForConditionalGeneration.from_pretrained(folder)
    assert model.config.label_prompt_tokens == 5 and list(model.config.id2label.values()) == labels
    assert torch.equal(model.model.label_token_ids, processor.label_token_ids(labels))
    assert processor.tokenizer.decode(model.model.label_token_ids[1, -1:]) == "\n"  # "rain", padded by line breaks
    loaded = MintProcessor.from_pretrained(folder)
    assert loaded.label_prompt_tokens == 5 and loaded.tokens_for_frames(50) == loaded.query_tokens_for_frames(50) + 5
    wave = torch.randn(16000).numpy() * 0.1
    batch = loaded.apply_chat_template([{"role": "user", "content": [
        {"type": "audio", "audio": wave}, {"type": "text", "text": "What is this sound?"}]}],
        add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
    assert model.generate(**batch, max_new_tokens=3, do_sample=False).shape[1] > batch["input_ids"].shape[1]
    retrieval = MintForAudioTextRetrieval.from_pretrained(
        assemble("mint-tiny-token-prompt", tmp_path / "retrieval", retrieval=True))
    assert not any("label_" in k for k in retrieval.state_dict())
