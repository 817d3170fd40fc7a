import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TINY = ROOT / "hub_configs" / "mint-tiny-random"


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine tone; (samples,) or (samples, channels)."""
    t = np.arange(int(seconds * rate)) / rate
    wav = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wav if channels == 1 else np.stack([wav] * channels, axis=1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def tiny_processor():
    from modeling_mint import MintProcessor

    return MintProcessor.from_pretrained(TINY)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """mint-tiny-random assembled once per session into a complete folder."""
    from hub_configs.assemble import assemble

    return assemble("mint-tiny-random", tmp_path_factory.mktemp("models") / "mint-tiny-random")


@pytest.fixture(scope="session")
def wav_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "tone_8k_stereo.wav"
    sf.write(path, tone(1.5, 8000, channels=2), 8000)
    return path
