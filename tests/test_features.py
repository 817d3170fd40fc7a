"""The frozen-feature cache holds exactly the frames the model computes live, for every window of a clip."""

import pytest
import torch

from tests.conftest import tone


def live_frames(model, processor, clip) -> torch.Tensor:
    """The real frames of one clip as the model computes them from the processor's features."""
    audio = processor.prepare_audio([clip], sampling_rate=16000)
    frames, mask = model.model.audio_frames(torch.from_numpy(audio["input_features"]),
                                            torch.from_numpy(audio["feature_attention_mask"]))
    return frames[0][mask[0].bool()]


def assert_fp16_close(cached: torch.Tensor, live: torch.Tensor):
    assert cached.dtype == torch.float16
    torch.testing.assert_close(cached.float(), live.float(), rtol=1e-3, atol=1e-3)  # one fp16 rounding apart


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    return MintForConditionalGeneration.from_pretrained(tiny_model_dir).eval(), MintProcessor.from_pretrained(
        tiny_model_dir)


def test_cached_frames_are_the_live_frames_for_every_window(tiny, tmp_path):
    from mint.training.collators import pad_frames
    from mint.training.common import feature_cache

    model, processor = tiny
    window = processor.audio_window_seconds
    clips = [tone(0.4 * window), tone(2.5 * window, freq=220.0)]  # part of one window; two and a half windows
    assert 2.5 * window <= processor.max_audio_seconds
    cache = feature_cache(model, processor, tmp_path)
    entries = cache.index(clips)
    cached = cache.frames(clips)
    for clip, entry, frames in zip(clips, entries, cached):
        live = live_frames(model, processor, clip)
        assert entry["frames"] == frames.shape[0] == live.shape[0]
        assert_fp16_close(frames, live)
    one_window = model.model.audio_frames(torch.zeros(1, model.config.audio_config.num_mel_bins,
                                                      model.config.audio_window_size))[0].shape[1]
    assert cached[0].shape[0] < one_window < 2 * one_window < cached[1].shape[0]  # the later windows are kept

    # What the model makes of the cached frames is what it makes of the audio.
    audio = processor.prepare_audio(clips, sampling_rate=16000)
    with torch.no_grad():
        from_audio = model.get_audio_features(input_features=torch.from_numpy(audio["input_features"]),
                                              feature_attention_mask=torch.from_numpy(audio["feature_attention_mask"]))
        frames, mask = pad_frames(cached)
        from_cache = model.get_audio_features(audio_frames=frames, audio_frame_mask=mask)
    torch.testing.assert_close(from_cache.pooler_output, from_audio.pooler_output, rtol=1e-2, atol=1e-2)


def test_a_second_call_reads_the_cache(tiny, tmp_path, monkeypatch):
    from mint.training.common import feature_cache

    model, processor = tiny
    clips = [tone(0.3), tone(1.7, freq=330.0), {"array": tone(0.3), "sampling_rate": 16000}]  # the third repeats the first
    cache = feature_cache(model, processor, tmp_path)
    calls = []
    encode = cache._encode
    monkeypatch.setattr(cache, "_encode", lambda waves: calls.append(len(waves)) or encode(waves))
    first = cache.index(clips)
    assert calls == [2]  # the repeated clip is encoded once
    assert first[0]["path"] == first[2]["path"]
    again = feature_cache(model, processor, tmp_path)
    monkeypatch.setattr(again, "_encode", lambda waves: pytest.fail("a cached clip was encoded again"))
    assert again.index(clips) == first


def test_entries_are_kept_apart_per_encoder_and_layout(tiny, tmp_path):
    import copy

    from mint.training.common import encoder_id, feature_cache
    from mint.training.features import LAYOUT, load_frames

    model, processor = tiny
    clip = tone(0.6)
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.model.audio_tower.parameters()).add_(0.5)
    assert encoder_id(other) != encoder_id(model)
    mine, theirs = feature_cache(model, processor, tmp_path), feature_cache(other, processor, tmp_path)
    assert mine.root != theirs.root and mine.root.parent == tmp_path / LAYOUT
    path, other_path = mine.index([clip])[0]["path"], theirs.index([clip])[0]["path"]
    assert path != other_path
    assert not torch.allclose(load_frames(path).float(), load_frames(other_path).float())
    assert_fp16_close(load_frames(other_path), live_frames(other, processor, clip))

    # An entry where the earlier layout kept it (the first window, under `root/encoder_id`) is never read.
    fresh = tmp_path / "fresh"
    key = feature_cache(model, processor, fresh).key(clip)
    old = fresh / encoder_id(model) / key[:2] / f"{key}.pt"
    old.parent.mkdir(parents=True)
    torch.save(torch.zeros(3, 16, dtype=torch.float16), old)
    entry = feature_cache(model, processor, fresh).index([clip])[0]
    assert entry["path"] != old
    assert_fp16_close(load_frames(entry["path"]), live_frames(model, processor, clip))


def test_waveform_encoder_frames_match_live(tiny_processor, tmp_path):
    """A wav2vec2-family encoder (its tower reads a padding mask and counts frames through its conv stack)."""
    from transformers import Wav2Vec2FeatureExtractor

    from modeling_mint import MintConfig, MintForConditionalGeneration, MintProcessor
    from mint.training.common import feature_cache
    from tests.test_modeling_mint import MintModelTester

    config = MintModelTester("data2vec-audio", "llama").get_config().to_dict()
    model = MintForConditionalGeneration(MintConfig.from_dict({**config, "audio_window_size": 16000})).eval()
    processor = MintProcessor(feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True),
                              tokenizer=tiny_processor.tokenizer, bridge_tokenizer=tiny_processor.bridge_tokenizer,
                              num_query_tokens=4, audio_window_seconds=1.0, max_audio_windows=3)
    clips = [tone(0.5), tone(2.2, freq=250.0)]
    cache = feature_cache(model, processor, tmp_path)
    for clip, entry in zip(clips, cache.index(clips, batch_size=2)):
        live = live_frames(model, processor, clip)
        cached = torch.load(entry["path"], weights_only=True)
        assert entry["frames"] == cached.shape[0] == live.shape[0]
        assert_fp16_close(cached, live)
