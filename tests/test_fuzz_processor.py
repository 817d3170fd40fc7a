"""Property tests (hypothesis) of the processor: random dtypes, shapes, channel layouts, rates, lengths and values.

Whatever comes in, the processor either raises one of its documented errors (`ValueError`, `TypeError`) or returns
inputs the model accepts: features and masks of consistent shapes, and as many `<audio>` tokens per clip as the
model's Bridge-Net produces (checked by running the tiny model on them). Bounded by `max_examples`, not by time.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


DTYPES = ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "complex64", "bfloat16"]
RATES = st.one_of(st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000]), st.integers(1, 400_000),
                  st.sampled_from([0, -16000, 16000.0, None]))
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def clips(draw):
    """One clip: an array or tensor of a drawn dtype, layout, length and content."""
    dtype = draw(st.sampled_from(DTYPES))
    length = draw(st.one_of(st.integers(0, 8), st.integers(9, 40_000)))
    channels = draw(st.sampled_from([None, 1, 2, 6]))
    layout = draw(st.sampled_from(["samples_first", "channels_first", "3d"]))
    content = draw(st.sampled_from(["noise", "silence", "loud", "nan", "inf"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (length,) if channels is None else (length, channels)
    wav = {"noise": rng.uniform(-1, 1, shape), "silence": np.zeros(shape), "loud": rng.uniform(-1e4, 1e4, shape),
           "nan": rng.uniform(-1, 1, shape), "inf": rng.uniform(-1, 1, shape)}[content]
    if content in ("nan", "inf") and wav.size:
        wav.flat[rng.integers(wav.size)] = np.nan if content == "nan" else -np.inf
    if channels is not None and layout == "channels_first":
        wav = wav.T
    if layout == "3d" and channels is not None:
        wav = wav[None]
    if dtype == "bfloat16":
        return torch.from_numpy(wav.astype(np.float32)).to(torch.bfloat16)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        unit = (np.clip(np.nan_to_num(wav), -1, 1) + 1) / 2  # [0, 1], spread over the type's whole range
        return (info.min + unit * (0.999 * (float(info.max) - float(info.min)))).astype(dtype)
    return wav.astype(dtype)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    model = MintForConditionalGeneration.from_pretrained(tiny_model_dir).eval()
    return MintProcessor.from_pretrained(tiny_model_dir), model


@pytest.fixture(scope="module")
def windowed(tiny_model_dir, tmp_path_factory):
    """The tiny model with a windowed Bridge-Net, where the number of audio tokens depends on the audio's length."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from tests.test_training import windowed_copy

    folder = windowed_copy(tiny_model_dir, tmp_path_factory.mktemp("fuzz") / "windowed")
    return MintProcessor.from_pretrained(folder), MintForConditionalGeneration.from_pretrained(folder).eval()


def check_inputs(processor, model, audio, rate, text):
    """Process `audio`; if it is accepted, the shapes agree and the model takes the inputs as they are."""
    try:
        out = processor(text=text, audio=audio, sampling_rate=rate)
    except (ValueError, TypeError) as error:
        assert str(error), "errors name the problem"
        return
    n_clips = len(audio) if isinstance(audio, list) else 1
    feats, mask = out["input_features"], out["feature_attention_mask"]
    frames = processor._frames_per_window()
    assert feats.shape[0] == mask.shape[0] == out["input_ids"].shape[0] == out["bridge_input_ids"].shape[0] == n_clips
    assert feats.shape[-1] == mask.shape[-1] and mask.shape[-1] % frames == 0
    assert 1 <= mask.shape[-1] // frames <= processor.max_audio_windows
    assert torch.isfinite(feats).all() and (mask.sum(-1) > 0).all()
    tokens = (out["input_ids"] == processor.audio_token_id).sum(-1).tolist()
    assert tokens == processor.audio_tokens_per_clip(mask.numpy())
    with torch.no_grad():  # the model checks the placeholder count against what its bridge produces, and raises
        logits = model(**out).logits
    assert logits.shape[:2] == out["input_ids"].shape and torch.isfinite(logits).all()


@FUZZ
@given(audio=clips(), rate=RATES)
def test_one_clip_never_crashes_and_fits_the_model(tiny, audio, rate):
    check_inputs(*tiny, audio, rate, "<audio> what is it?")


@FUZZ
@given(audio=st.lists(clips(), min_size=1, max_size=3), rate=RATES)
def test_batches_on_a_windowed_bridge(windowed, audio, rate):
    check_inputs(*windowed, audio, rate, ["<audio> what is it?"] * len(audio))


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=300))
def test_any_instruction_text(tiny, text):
    processor, _ = tiny
    try:
        out = processor(text=f"<audio>{text}", audio=np.zeros(1600, np.float32), sampling_rate=16000)
    except ValueError as error:
        assert "unicode" in str(error) or "placeholder" in str(error) or "tokens long" in str(error)
        return
    assert (out["input_ids"] == processor.audio_token_id).sum() == processor.num_query_tokens
