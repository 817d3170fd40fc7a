"""mint-tiny, the offline default, assembled from its real parts and used as a Hub user would."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mint.hub.assemble import assemble
from mint.hub.components import smollm2_135m_instruct, whisper_encoder_window, whisper_tiny_en
from modeling_mint import MintForConditionalGeneration, MintProcessor
from tests.test_remote_code import run_fresh
from mint.training.data import asterisk_pairs


pytestmark = pytest.mark.slow  # the real pretrained parts (SmolLM2-135M, Whisper tiny.en) loaded and run on CPU


@pytest.fixture(scope="module")
def mint_tiny(tmp_path_factory):
    return assemble("mint-tiny", tmp_path_factory.mktemp("models") / "mint-tiny")


def test_parts_are_the_pretrained_ones(tmp_path):
    """Assembled without the trained weights (whose LoRA adapter changes the LLM, see test_mint_tiny_trained)."""
    untrained = assemble("mint-tiny", tmp_path / "mint-tiny", untrained=True)
    model = MintForConditionalGeneration.from_pretrained(untrained).eval()
    processor = MintProcessor.from_pretrained(untrained)
    smol = AutoModelForCausalLM.from_pretrained(smollm2_135m_instruct()).eval()
    tokenizer = AutoTokenizer.from_pretrained(smollm2_135m_instruct())
    ids = tokenizer("The capital of France is", return_tensors="pt")
    inner = model.model.language_model.state_dict()  # the LLM inside MINT is SmolLM2, unchanged
    for key, weight in smol.state_dict().items():  # MINT's embedding table has one more row, for <audio>
        if key.removeprefix("model.") in inner:
            assert torch.equal(inner[key.removeprefix("model.")][: weight.shape[0]], weight), key
    with torch.no_grad():  # text only; the two load paths may pick different fp32 kernels, so not bit for bit
        torch.testing.assert_close(model(**ids).logits[..., : smol.config.vocab_size], smol(**ids).logits,
                                   atol=1e-4, rtol=1e-4)
    _, encoder = whisper_encoder_window(whisper_tiny_en(), 10)
    features = torch.randn(1, 80, 1000)
    with torch.no_grad():
        torch.testing.assert_close(model.model.audio_tower(features).last_hidden_state,
                                   encoder(features).last_hidden_state)
    assert processor.tokenizer.convert_tokens_to_ids("<audio>") == model.config.audio_token_index
    assert model.config.audio_token_index in model.generation_config.suppress_tokens
    assert processor.audio_window_seconds == 10 and model.config.audio_window_size == 1000


def test_pipeline_on_real_speech_in_fresh_process(mint_tiny, tmp_path):
    """The `prompt=` call, chat messages, the stock `any-to-any` pipeline and `generate` give one answer."""
    clip = next(p["audio"] for p in asterisk_pairs() if p["split"] == "test")
    result = run_fresh(
        f"""
        import json
        from transformers import pipeline
        pipe = pipeline("audio-text-to-text", model={str(mint_tiny)!r}, trust_remote_code=True)
        out = pipe({clip!r}, prompt="Transcribe the audio.", max_new_tokens=12)
        # the same clip and instruction as chat messages: through the pipeline, the stock any-to-any pipeline and
        # apply_chat_template -> generate
        messages = [{{"role": "user", "content": [{{"type": "audio", "path": {clip!r}}},
                                                  {{"type": "text", "text": "Transcribe the audio."}}]}}]
        chat = pipe(text=messages, max_new_tokens=12)["generated_text"][-1]
        stock = pipeline("any-to-any", model=pipe.model, processor=pipe.processor)
        stock_out = stock(text=messages, return_full_text=False, generate_kwargs=dict(max_new_tokens=12))
        inputs = pipe.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)
        ids = pipe.model.generate(**inputs, max_new_tokens=12)[0, inputs["input_ids"].shape[1]:]
        print(json.dumps({{"out": out, "cls": type(pipe.model).__name__, "chat": chat,
                          "stock": stock_out[0]["generated_text"],
                          "generate": pipe.processor.decode(ids, skip_special_tokens=True)}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert result["cls"] == "MintForConditionalGeneration"
    answer = result["out"]["generated_text"]
    assert answer.strip()  # SmolLM2 answers in words
    assert "<audio>" not in answer
    assert result["chat"] == {"role": "assistant", "content": answer}
    assert result["stock"].strip() == result["generate"].strip() == answer
    config = json.loads((mint_tiny / "config.json").read_text())
    assert config["text_config"]["model_type"] == "llama" and config["audio_config"]["model_type"] == "whisper"


def test_model_card_metadata_and_body(mint_tiny):
    from huggingface_hub import ModelCard

    card = ModelCard.load(mint_tiny / "README.md")
    assert card.data.pipeline_tag == "audio-text-to-text" and card.data.library_name == "transformers"
    assert card.data.license == "apache-2.0"
    assert {"openai/whisper-tiny.en", "HuggingFaceTB/SmolLM2-135M-Instruct"} <= set(card.data.base_model)
    assert "trust_remote_code=True" in card.text and "trained: the shipped Bridge-Net" in card.text


def test_windowed_variant_on_real_speech(tmp_path):
    """mint-tiny-windowed: the prompt grows with the clip (4 queries per 0.5 s)."""
    import numpy as np

    from modeling_mint import load_audio

    out = assemble("mint-tiny-windowed", tmp_path / "windowed")
    model = MintForConditionalGeneration.from_pretrained(out).eval()
    processor = MintProcessor.from_pretrained(out)
    pairs = sorted(asterisk_pairs(), key=lambda p: p["audio"])
    clip = next(p["audio"] for p in pairs if 2.0 < len(load_audio(p["audio"], None, 16000)) / 16000 < 4.0)
    seconds = len(load_audio(clip, None, 16000)) / 16000
    inputs = processor(text="<audio> Transcribe the audio.", audio=clip)
    tokens = int((inputs["input_ids"] == model.config.audio_token_index).sum())
    assert tokens == 4 * int(np.ceil(np.ceil(seconds * 50) / 25))
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert ids.shape[1] == inputs["input_ids"].shape[1] + 4


def test_pooled_baseline_on_real_speech(tmp_path):
    """mint-tiny-pooled, the dense baseline: one LLM token per 4 encoder frames, 125 for 10 s, against the 32 of
    mint-tiny at any duration."""
    import numpy as np

    from modeling_mint import load_audio

    out = assemble("mint-tiny-pooled", tmp_path / "pooled", untrained=True)
    model = MintForConditionalGeneration.from_pretrained(out).eval()
    processor = MintProcessor.from_pretrained(out)
    assert model.bridge is None and model.config.connector_type == "pooled"
    clip = sorted(p["audio"] for p in asterisk_pairs())[0]
    seconds = len(load_audio(clip, None, 16000)) / 16000
    inputs = processor(text="<audio> Transcribe the audio.", audio=clip)
    tokens = int((inputs["input_ids"] == model.config.audio_token_index).sum())
    assert tokens == int(np.ceil(np.ceil(seconds * 50) / 4))
    ten_seconds = processor(text="<audio>", audio=np.zeros(160000, dtype=np.float32) + 0.01, sampling_rate=16000)
    assert int((ten_seconds["input_ids"] == model.config.audio_token_index).sum()) == 125
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert ids.shape[1] == inputs["input_ids"].shape[1] + 4
