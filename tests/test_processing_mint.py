
import copy

import numpy as np
import pytest
import torch

from modeling_mint import MintProcessor, load_audio
from tests.conftest import tone


def test_inputs_of_every_form_agree(tiny_processor, wav_file):
    """Path, bytes, dict, int16 and float arrays, torch tensors and channel layouts give the same audio."""
    stereo_8k = tone(1.5, 8000, channels=2)
    reference = load_audio(wav_file, None, 16000)
    assert reference.dtype == np.float32 and reference.ndim == 1 and len(reference) == 24000
    forms = {
        "bytes": wav_file.read_bytes(),
        "dict": {"array": stereo_8k, "sampling_rate": 8000},
        "raw dict": {"raw": stereo_8k[:, 0], "sampling_rate": 8000},
        "channels first": stereo_8k.T.copy(),
        "torch": torch.from_numpy(stereo_8k),
        "int16": (stereo_8k * 32767).astype(np.int16),
    }
    for name, value in forms.items():
        wav = load_audio(value, 8000, 16000, name)
        assert wav.shape == reference.shape, name
        assert np.abs(wav - reference).max() < 2e-3, name


def test_batch_outputs_and_window_padding(tiny_processor):
    clips = [tone(0.5), tone(2.5)]  # 1 and 3 one-second windows
    out = tiny_processor(text=["<audio> describe", "what is <audio> ?"], audio=clips, sampling_rate=16000)
    assert out["input_features"].shape == (2, 8, 300)
    assert out["feature_attention_mask"].shape == (2, 300)
    assert out["feature_attention_mask"][0, 50:].sum() == 0 and out["feature_attention_mask"][0, :50].all()
    audio_id = tiny_processor.audio_token_id
    assert ((out["input_ids"] == audio_id).sum(1) == tiny_processor.num_query_tokens).all()
    assert out["bridge_input_ids"].shape[0] == 2
    decoded = tiny_processor.bridge_tokenizer.decode(out["bridge_input_ids"][0], skip_special_tokens=True)
    assert "describe" in decoded and "audio" not in decoded


def test_resampling_and_long_audio_truncation(tiny_processor):
    out = tiny_processor(audio=tone(10.0, 22050), sampling_rate=22050)  # 10 s > 3 windows of 1 s
    assert out["input_features"].shape == (1, 8, 300)
    assert out["feature_attention_mask"].sum() == 300


def test_silent_audio_is_valid(tiny_processor):
    out = tiny_processor(text="<audio> hi", audio=np.zeros(16000, dtype=np.float32), sampling_rate=16000)
    assert torch.isfinite(out["input_features"]).all()


@pytest.mark.parametrize(
    "audio, error, message",
    [
        (np.zeros(0, dtype=np.float32), ValueError, "empty"),
        (np.full(1600, np.nan, dtype=np.float32), ValueError, "NaN or infinite"),
        (np.array([0.0, np.inf] * 800, dtype=np.float32), ValueError, "NaN or infinite"),
        (object(), TypeError, "unsupported audio of type object"),
        ("no/such/file.wav", FileNotFoundError, "no audio file"),
        (b"RIFF\x00\x00garbage-not-a-wav", ValueError, "could not decode"),
        (b"", ValueError, "empty bytes"),
        (np.zeros((2, 2, 100), dtype=np.float32), ValueError, "expected 1-D"),
        (np.zeros(100, dtype=np.complex64), TypeError, "unsupported sample type"),
        ({"foo": 1}, ValueError, "dict audio needs"),
    ],
)
def test_bad_audio_raises_naming_the_problem(tiny_processor, audio, error, message):
    with pytest.raises(error, match=message):
        tiny_processor(text="<audio> x", audio=audio, sampling_rate=16000)


def test_corrupt_file_on_disk(tiny_processor, tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF" + bytes(40) + b"\xff" * 100)
    with pytest.raises(ValueError, match="could not decode"):
        tiny_processor(text="<audio> x", audio=str(path))


def test_bad_sampling_rate(tiny_processor):
    with pytest.raises(ValueError, match="sampling_rate must be a positive integer"):
        tiny_processor(text="<audio> x", audio=tone(0.5), sampling_rate=-5)


@pytest.mark.parametrize(
    "text, n_audio, message",
    [
        ("no placeholder", 1, "has 0 '<audio>' placeholders"),
        ("<audio><audio> twice", 1, "has 2 '<audio>' placeholders"),
        (["<audio> a", "<audio> b"], 1, "got 2 text"),
        ("<audio> but no audio", 0, "no audio was given"),
    ],
)
def test_placeholder_mismatch_raises(tiny_processor, text, n_audio, message):
    audio = [tone(0.5)] * n_audio if n_audio else None
    with pytest.raises(ValueError, match=message):
        tiny_processor(text=text, audio=audio, sampling_rate=16000)


def test_empty_clip_list(tiny_processor):
    with pytest.raises(ValueError, match="list of clips is empty"):
        tiny_processor(audio=[])


def test_save_and_reload(tiny_processor, tmp_path):
    tiny_processor.save_pretrained(tmp_path)
    again = MintProcessor.from_pretrained(tmp_path)
    assert again.num_query_tokens == tiny_processor.num_query_tokens
    assert again.max_audio_windows == tiny_processor.max_audio_windows
    assert again.audio_window_seconds == tiny_processor.audio_window_seconds
    a = tiny_processor(text="<audio> hello", audio=tone(1.2), sampling_rate=16000)
    b = again(text="<audio> hello", audio=tone(1.2), sampling_rate=16000)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert again.tokenizer.chat_template == tiny_processor.tokenizer.chat_template


def test_other_feature_extractors(tiny_processor):
    """The windowing works for waveform (wav2vec2-family) and fbank (AST) front ends too."""
    from transformers import ASTFeatureExtractor, Wav2Vec2FeatureExtractor

    kw = dict(tokenizer=tiny_processor.tokenizer, bridge_tokenizer=tiny_processor.bridge_tokenizer, num_query_tokens=4)
    wav2vec = MintProcessor(feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True), audio_window_seconds=1.0, **kw)
    out = wav2vec(audio=[tone(0.5), tone(1.5)], sampling_rate=16000)
    assert out["input_features"].shape == (2, 32000)
    assert out["feature_attention_mask"][0].sum() == 8000 and out["feature_attention_mask"][1].sum() == 24000
    ast = MintProcessor(feature_extractor=ASTFeatureExtractor(max_length=100, num_mel_bins=16), **kw)
    out = ast(audio=[tone(0.5), tone(1.5)], sampling_rate=16000)
    assert ast.audio_window_seconds == pytest.approx(1.0)
    assert out["input_features"].shape == (2, 200, 16)


def _chat(audio_part: dict, question: str = "What is it?") -> list[dict]:
    return [{"role": "system", "content": "Answer in a few words."},
            {"role": "user", "content": [audio_part, {"type": "text", "text": question}]}]


def test_chat_template_renders_audio_parts_as_the_placeholder(tiny_processor):
    """A chat with an audio part renders as the LLM's own template does the string prompt the model was trained on;
    string content is unchanged, and the tokenizer saved beside the processor shares the template."""
    parts = tiny_processor.apply_chat_template(_chat({"type": "audio"}), add_generation_prompt=True)
    plain = [{"role": "system", "content": "Answer in a few words."},
             {"role": "user", "content": "<audio>\nWhat is it?"}]
    assert parts == tiny_processor.apply_chat_template(plain, add_generation_prompt=True)
    assert parts == ("<|im_start|>system\nAnswer in a few words.<|im_end|>\n<|im_start|>user\n<audio>\nWhat is it?"
                     "<|im_end|>\n<|im_start|>assistant\n")
    assert tiny_processor.tokenizer.apply_chat_template(_chat({"type": "audio"}), tokenize=False,
                                                        add_generation_prompt=True) == parts


def test_apply_chat_template_returns_model_inputs_from_every_audio_form(tiny_processor, wav_file):
    """Path, bytes, an array with its rate, a `{"array", "sampling_rate"}` dict and a torchcodec `AudioDecoder` (a
    `datasets` Audio column) all give the inputs of the direct call; the Bridge-Net reads the user's text only."""
    from torchcodec.decoders import AudioDecoder

    stereo_8k = tone(1.5, 8000, channels=2)
    forms = {
        "path": {"type": "audio", "path": str(wav_file)},
        "bytes": {"type": "audio", "audio": wav_file.read_bytes()},
        "array": {"type": "audio", "audio": stereo_8k, "sampling_rate": 8000},
        "dict": {"type": "audio", "audio": {"array": stereo_8k, "sampling_rate": 8000}},
        "decoder": {"type": "audio", "audio": AudioDecoder(str(wav_file))},
    }
    prompt = tiny_processor.apply_chat_template(_chat({"type": "audio"}), add_generation_prompt=True)
    direct = tiny_processor(text=prompt, audio=str(wav_file), bridge_text="What is it?")
    for name, part in forms.items():
        out = tiny_processor.apply_chat_template(_chat(part), add_generation_prompt=True, tokenize=True,
                                                 return_dict=True, return_tensors="pt")
        assert set(out) == set(direct), name
        for key in ("input_ids", "attention_mask", "feature_attention_mask", "bridge_input_ids"):
            assert torch.equal(out[key], direct[key]), (name, key)
        torch.testing.assert_close(out["input_features"], direct["input_features"], atol=2e-3, rtol=0)
    bridge = tiny_processor.bridge_tokenizer.decode(direct["bridge_input_ids"][0], skip_special_tokens=True)
    assert bridge == "what is it?"  # not the system prompt


def test_chat_batch_and_text_only(tiny_processor):
    chats = [_chat({"type": "audio", "audio": tone(0.5), "sampling_rate": 16000}),
             _chat({"type": "audio", "audio": tone(2.5), "sampling_rate": 16000}, "How long is it?")]
    out = tiny_processor.apply_chat_template(chats, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert out["input_features"].shape[0] == 2 and out["input_ids"].shape[0] == 2
    assert (out["input_ids"] == tiny_processor.audio_token_id).sum(1).tolist() == [4, 4]
    text = tiny_processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                                              tokenize=True, return_dict=True)
    assert "input_features" not in text and text["input_ids"].shape[0] == 1


def test_llm_without_chat_template_gets_a_plain_one(tiny_processor):
    """Flan-T5 has no chat template: the prompt is the turns' contents, the audio part as the placeholder."""
    tokenizer = copy.deepcopy(tiny_processor.tokenizer)  # the processor sets its template on the tokenizer
    tokenizer.chat_template = None
    processor = MintProcessor(tiny_processor.feature_extractor, tokenizer, tiny_processor.bridge_tokenizer,
                              num_query_tokens=4, chat_template=None)
    assert tokenizer.chat_template == processor.chat_template
    messages = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "What is it?"}]}]
    assert processor.apply_chat_template(messages, add_generation_prompt=True) == "<audio>\nWhat is it?"


def test_collator_prompt_is_the_processor_s(tiny_processor):
    """Training prompts are the ones inference builds: the collator's prompt tokens are `apply_chat_template`'s."""
    from mint.training.collators import AudioLanguageCollator

    collator = AudioLanguageCollator(tiny_processor)
    batch = collator([{"audio": {"array": tone(1.0), "sampling_rate": 16000}, "text": "a tone",
                       "instruction": "What is it?"}])
    messages = [{"role": "user", "content": [{"type": "audio", "audio": tone(1.0), "sampling_rate": 16000},
                                             {"type": "text", "text": "What is it?"}]}]
    inputs = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    prompt_length = int((batch["labels"][0] == -100).sum())
    assert torch.equal(batch["input_ids"][0, :prompt_length], inputs["input_ids"][0])
    assert torch.equal(batch["bridge_input_ids"], inputs["bridge_input_ids"])
