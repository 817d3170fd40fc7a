"""One Whisper clip through the CTranslate2 runtime and through its transformers conversion, for the parity tests."""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from modeling_mint import load_audio


def encode_both(ct2_folder: Path, converted: Path, clip: str):
    """`(runtime, processor, model, features, expected, got)`: the clip's log-mel features, the encoder frames the
    CTranslate2 runtime gives (`expected`) and those of the converted model (`got`)."""
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is a dev extra; install it for parity")
    runtime = ctranslate2.models.Whisper(str(ct2_folder), device="cpu", compute_type="float32")
    processor = WhisperProcessor.from_pretrained(converted)
    model = WhisperForConditionalGeneration.from_pretrained(converted).eval()
    features = processor.feature_extractor(load_audio(clip, None, 16000), sampling_rate=16000,
                                           return_tensors="np").input_features.astype(np.float32)
    expected = np.array(runtime.encode(ctranslate2.StorageView.from_array(features)))
    with torch.no_grad():
        got = model.get_encoder()(torch.from_numpy(features)).last_hidden_state.numpy()
    return runtime, processor, model, features, expected, got
