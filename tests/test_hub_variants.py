"""Variants that name Hub repos assemble through the real download code, against a local mock Hub that serves tiny
random checkpoints under the same repo ids."""

import json
import os
import subprocess
import sys

import pytest

from mint.hub.assemble import variants
from tests import mockhub
from tests.conftest import ROOT
from tests.hub_fixtures import build_tiny_hub
from tests.test_remote_code import run_fresh


@pytest.fixture(scope="module")
def mock_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    build_tiny_hub(root)
    with mockhub.running(root) as url:
        yield url


def assemble_from_hub(variant, out, endpoint, hf_home):
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_XET": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mint.cli", "assemble", variant, "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_variants_are_listed():
    assert {"mint-tiny", "mint-tiny-random", "mint-tiny-windowed", "mint-paper",
            "mint-whisper-small-qwen2.5-0.5b"} <= set(variants())


@pytest.mark.slow  # builds each variant at its full architecture from the mock Hub
@pytest.mark.parametrize("variant, audio, text", [
    ("mint-paper", "data2vec-audio", "t5"),
    ("mint-whisper-small-qwen2.5-0.5b", "whisper", "qwen2"),
])
def test_assemble_from_hub_ids(mock_hub, tmp_path, variant, audio, text):
    out = tmp_path / variant
    assemble_from_hub(variant, out, mock_hub, tmp_path / "hf_home")
    spec = json.loads((ROOT / "hub_configs" / variant / "variant.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["audio_config"]["model_type"] == audio and config["text_config"]["model_type"] == text
    assert config["num_query_tokens"] == spec["num_query_tokens"]
    assert config["bridge_config"]["cross_attention_frequency"] == spec["cross_attention_frequency"]
    result = run_fresh(
        f"""
        import json, numpy as np
        from transformers import pipeline
        pipe = pipeline("audio-text-to-text", model={str(out)!r}, trust_remote_code=True)
        wav = (0.2 * np.sin(np.arange(24000) / 16000 * 2 * np.pi * 300)).astype(np.float32)
        out = pipe({{"raw": wav, "sampling_rate": 16000}}, prompt="describe the audio", max_new_tokens=3)
        print(json.dumps({{"text": out["generated_text"], "enc_dec": pipe.model.config.is_encoder_decoder}}))
        """,
        tmp_path, tmp_path / "hf_home_fresh",
    )
    assert isinstance(result["text"], str) and result["enc_dec"] == (text == "t5")
