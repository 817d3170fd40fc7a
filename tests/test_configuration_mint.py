import json

import pytest

from modeling_mint import MintBridgeConfig, MintConfig
from tests.conftest import TINY


AUDIO = {
    "whisper": {"model_type": "whisper", "d_model": 24, "max_source_positions": 50},
    "data2vec-audio": {"model_type": "data2vec-audio", "hidden_size": 24},
    "wav2vec2": {"model_type": "wav2vec2", "hidden_size": 24},
    "hubert": {"model_type": "hubert", "hidden_size": 24},
    "audio-spectrogram-transformer": {"model_type": "audio-spectrogram-transformer", "hidden_size": 24, "max_length": 200},
}


@pytest.mark.parametrize("audio_type", sorted(AUDIO))
@pytest.mark.parametrize("text_type", ["llama", "qwen2", "t5"])
def test_round_trip_and_sync(audio_type, text_type, tmp_path):
    config = MintConfig(audio_config=AUDIO[audio_type], text_config={"model_type": text_type}, num_query_tokens=8)
    assert config.bridge_config.encoder_hidden_size == 24  # the bridge reads the encoder's width
    assert config.is_encoder_decoder == (text_type == "t5")
    assert MintConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()
    config.save_pretrained(tmp_path)
    again = MintConfig.from_pretrained(tmp_path)
    assert again.to_dict() == config.to_dict()
    assert again.audio_config.model_type == audio_type and again.text_config.model_type == text_type
    assert isinstance(again.bridge_config, MintBridgeConfig)


def test_window_derived_per_encoder():
    assert MintConfig(audio_config=AUDIO["whisper"]).audio_window_size == 100
    assert MintConfig(audio_config=AUDIO["audio-spectrogram-transformer"]).audio_window_size == 200
    assert MintConfig(audio_config=AUDIO["wav2vec2"]).audio_window_size == 160_000
    assert MintConfig(audio_config=AUDIO["wav2vec2"], audio_window_size=32_000).audio_window_size == 32_000


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bridge_config": {"encoder_hidden_size": 5}}, "does not match the audio encoder's output width"),
        ({"bridge_config": {"hidden_size": 10, "num_attention_heads": 3}}, "multiple of num_attention_heads"),
        ({"bridge_config": {"num_hidden_layers": 2, "cross_attention_frequency": 3}}, "cross_attention_frequency"),
        ({"num_query_tokens": 0}, "num_query_tokens"),
        ({"max_audio_windows": 0}, "max_audio_windows"),
        ({"audio_token_index": 10**9}, "outside the LLM vocabulary"),
        ({"audio_config": {"model_type": "whisper", "max_source_positions": 50}, "audio_window_size": 64}, "must equal"),
        ({"audio_config": {"model_type": "bert"}}, "unsupported audio encoder"),
        ({"audio_tower_dtype": "int8"}, "audio_tower_dtype"),
        ({"window_position_embeddings": True}, "window_position_embeddings needs a windowed Bridge-Net"),
        ({"clip_context": True}, "clip_context needs a windowed Bridge-Net"),
        ({"mask_time_prob": 1.5}, "mask_time_prob must be in"),
        ({"mask_feature_length": 0}, "mask_feature_length must be at least 1"),
        ({"mask_time_min_masks": -1}, "mask_time_min_masks must not be negative"),
    ],
)
def test_inconsistent_sizes_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MintConfig(**kwargs)


def test_tiny_random_variant_config():
    config = MintConfig.from_pretrained(TINY)
    raw = json.loads((TINY / "config.json").read_text())
    assert raw["model_type"] == "mint"
    assert config.audio_token_index is not None
    assert config.tie_word_embeddings  # inherited from the Llama text config
