"""MintProcessor: audio loading and windowing, the audio encoder's feature extractor, the LLM tokenizer (with its
chat template) and the Bridge-Net tokenizer, in one object that saves and reloads."""

import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin
from transformers.utils import logging

from .configuration_mint import AudioEncoderFacts, feature_extractor_facts


try:  # optional at import time so that remote-code loading does not require them; needed to decode files
    import soundfile
except ImportError:
    soundfile = None
try:
    import soxr
except ImportError:
    soxr = None


logger = logging.get_logger(__name__)


def _to_float_pcm(array: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM to float in [-1, 1]; float stays float; anything else is refused."""
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    raise TypeError(f"{name}: unsupported sample type {array.dtype}; pass integer or float PCM")


def _downmix(array: np.ndarray, name: str) -> np.ndarray:
    """Mono from 1-D audio or 2-D audio with channels on its shorter axis."""
    if array.ndim == 1:
        return array
    if array.ndim == 2:
        return array.mean(axis=int(np.argmin(array.shape)))
    raise ValueError(f"{name}: expected 1-D (samples) or 2-D (channels x samples) audio, got shape {array.shape}")


def _decode(source, name: str, max_seconds: float | None) -> tuple[np.ndarray, int, float]:
    """Mono float32 samples of a file or file-like object, decoding at most `max_seconds` of it (memory stays bounded
    whatever the file's length); also returns its rate and its whole duration from the header."""
    if soundfile is None:
        raise ImportError("decoding audio files needs the `soundfile` package: pip install soundfile")
    try:
        with soundfile.SoundFile(source) as f:
            rate, total = f.samplerate, f.frames
            frames = total if max_seconds is None else min(total, int(np.ceil(max_seconds * rate)))
            data = f.read(frames, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile reports corrupt data as several error types
        raise ValueError(f"{name}: could not decode audio ({error})") from error
    return data.mean(axis=1), rate, total / rate


def _is_audio_decoder(audio) -> bool:
    return hasattr(audio, "get_samples_played_in_range") and hasattr(audio, "metadata")


def _array(audio) -> np.ndarray:
    if type(audio).__module__.startswith("torch"):
        audio = audio.detach().cpu()
        return (audio.float() if str(audio.dtype) == "torch.bfloat16" else audio).numpy()  # numpy has no bfloat16
    return audio


def _resample(array: np.ndarray, rate: int, target_rate: int, name: str) -> np.ndarray:
    if soxr is None:
        raise ImportError("resampling audio needs the `soxr` package: pip install soxr")
    try:
        out = soxr.resample(array, int(rate), target_rate)
    except Exception as error:
        raise ValueError(f"{name}: could not resample from {rate} Hz to {target_rate} Hz ({error})") from error
    return out if out.size else array[:1]  # under one output sample: keep one rather than nothing


def load_audio(
    audio, sampling_rate: int | None, target_rate: int, name: str = "audio", max_seconds: float | None = None,
    truncate: bool = True,
) -> np.ndarray:
    """One clip as float32 mono at `target_rate`.

    Accepts a path, encoded bytes, a numpy array or torch tensor (int or float PCM, any channel count), a dict
    `{"array" | "raw": ..., "sampling_rate": ...}` / `{"path": ...}` / `{"bytes": ...}`, or a torchcodec
    `AudioDecoder`, as `datasets` Audio columns yield.
    Audio longer than `max_seconds` is cut to it with a warning (files are decoded only that far), or, with
    `truncate=False`, refused. Bad input raises `ValueError` naming the problem (empty, NaN, could not decode, ...),
    `TypeError` for an unsupported type, `FileNotFoundError` for a missing file.
    """
    if isinstance(audio, dict):
        rate = audio.get("sampling_rate", sampling_rate)
        for key in ("array", "raw", "bytes", "path"):
            if audio.get(key) is not None:
                return load_audio(audio[key], rate, target_rate, name, max_seconds, truncate)
        raise ValueError(
            f"{name}: dict audio needs an 'array', 'raw', 'bytes' or 'path' entry, got keys {sorted(audio)}"
        )
    seconds = None
    if _is_audio_decoder(audio):  # what a `datasets` Audio column yields (torchcodec), decoded only as far as kept
        seconds = audio.metadata.duration_seconds
        samples = audio.get_samples_played_in_range(0.0, max_seconds) if max_seconds else audio.get_all_samples()
        array, sampling_rate = samples.data.numpy(), samples.sample_rate
        seconds = len(array[0]) / sampling_rate if seconds is None else seconds
    elif isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no audio file at {str(path)!r}")
        if path.stat().st_size == 0:
            raise ValueError(f"{name} ({path.name}): the file is empty (0 bytes)")
        array, sampling_rate, seconds = _decode(str(path), f"{name} ({path.name})", max_seconds)
    elif isinstance(audio, (bytes, bytearray, memoryview)):
        if len(audio) == 0:
            raise ValueError(f"{name}: empty bytes")
        array, sampling_rate, seconds = _decode(io.BytesIO(bytes(audio)), name, max_seconds)
    elif isinstance(audio, np.ndarray) or type(audio).__module__.startswith("torch"):
        array = _array(audio)
    else:
        raise TypeError(
            f"{name}: unsupported audio of type {type(audio).__name__}; pass a path, bytes, a numpy array, "
            "a torch tensor, an AudioDecoder or a dict with 'array' and 'sampling_rate'"
        )
    array = _to_float_pcm(np.asarray(array), name)
    if array.size == 0:
        raise ValueError(f"{name}: audio is empty (0 samples)")
    array = _downmix(array, name)
    if sampling_rate is None:
        logger.warning_once(f"no sampling_rate given for an audio array: assuming the model's {target_rate} Hz")
        sampling_rate = target_rate
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
        raise ValueError(f"{name}: sampling_rate must be a positive integer, got {sampling_rate!r}")
    seconds = len(array) / sampling_rate if seconds is None else seconds
    if max_seconds is not None and seconds > max_seconds:
        if not truncate:
            raise ValueError(f"{name}: audio is {seconds:.1f} s long; the limit is {max_seconds:.1f} s")
        logger.warning(f"{name} is {seconds:.1f} s long; keeping the first {max_seconds:.1f} s")
        array = array[: int(np.ceil(max_seconds * sampling_rate))]  # before resampling: only what is kept
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: audio contains NaN or infinite samples")
    if sampling_rate != target_rate:
        array = _resample(array, sampling_rate, target_rate, name)
    return np.ascontiguousarray(array, dtype=np.float32)


CHAT_TEMPLATE_MARK = "{#- mint: audio parts -#}"
PLAIN_CHAT_TEMPLATE = (  # for LLMs without a chat template (Flan-T5): the turns' contents, one per line
    "{%- for message in messages -%}{{ message['content'] }}{% if not loop.last %}{{ '\\n' }}{% endif %}{%- endfor -%}"
)


def audio_chat_template(template: str | None, audio_token: str) -> str:
    """The LLM's chat template (or a plain one) behind a prelude that flattens content given as parts: an `audio`
    part becomes `audio_token`, text parts keep their text, one part per line. String content passes unchanged, so
    prompts stay what the LLM's own template makes of them."""
    template = template or PLAIN_CHAT_TEMPLATE
    if CHAT_TEMPLATE_MARK in template:
        return template
    token = json.dumps(audio_token)
    prelude = (
        CHAT_TEMPLATE_MARK
        + "{%- set mint = namespace(messages=[]) -%}"
        "{%- for message in messages -%}"
        "{%- if message['content'] is string -%}"
        "{%- set mint.messages = mint.messages + [message] -%}"
        "{%- else -%}"
        "{%- set parts = namespace(text=[]) -%}"
        "{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'audio' -%}{%- set parts.text = parts.text + [" + token + "] -%}"
        "{%- elif part['type'] == 'text' -%}{%- set parts.text = parts.text + [part['text']] -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- set mint.messages = mint.messages + [{'role': message['role'], 'content': parts.text | join('\\n')}] -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- set messages = mint.messages -%}"
    )
    return prelude + template


def _audio_source(part: dict):
    """The clip a chat `audio` part names: `audio`, `path` or `url`, or the part itself when it holds `array`."""
    for key in ("audio", "path", "url"):
        if part.get(key) is not None:
            source = part[key]
            if isinstance(source, (np.ndarray, list)) and part.get("sampling_rate") is not None:
                return {"array": np.asarray(source), "sampling_rate": part["sampling_rate"]}
            return source
    if part.get("array") is not None:
        return {"array": part["array"], "sampling_rate": part.get("sampling_rate")}
    raise ValueError(f"a chat audio part needs an 'audio', 'path', 'url' or 'array' entry, got keys {sorted(part)}")


def _is_single_clip(audio) -> bool:
    return not isinstance(audio, (list, tuple))


class MintProcessor(ProcessorMixin):
    r"""
    Turns audio + text into MINT inputs.

    Args:
        feature_extractor: the audio encoder's feature extractor (Whisper log-mel, AST fbank, or wav2vec2 waveform).
        tokenizer: the LLM tokenizer; it must know `audio_token` as one token.
        bridge_tokenizer: the Bridge-Net (BERT-style) tokenizer for the instruction.
        num_query_tokens (`int`, defaults to 32): how many placeholder tokens one `<audio>` expands to.
        audio_token (`str`, defaults to `"<audio>"`): the placeholder in prompts.
        max_audio_windows (`int`, defaults to 3): longer audio is truncated to this many encoder windows (files are
            decoded only that far, so memory stays bounded for any length).
        truncate_long_audio (`bool`, defaults to `True`): `False` refuses audio longer than `max_audio_windows`
            windows with a `ValueError` instead of truncating it.
        max_text_tokens (`int`, *optional*): longest LLM prompt in tokens (audio tokens included); a longer one is
            refused with a `ValueError`. Defaults to the tokenizer's `model_max_length` when it has a real one.
        audio_window_seconds (`float`, *optional*): one encoder window; derived from the feature extractor.
        bridge_max_length (`int`, defaults to 128): longest instruction given to the bridge.
        bridge_window_frames (`int`, *optional*): the model's windowed Bridge-Net: `<audio>` then expands to
            `num_query_tokens` per window of this many encoder frames, counted from the audio's length.
        label_prompt_tokens (`int`, defaults to 0): the model's label prompt (`MintConfig.label_prompt_tokens`):
            this many more placeholders after each clip's windows.
    """

    _auto_class = "AutoProcessor"  # a saved processor names its code and carries it, wherever it was imported from

    def __init__(
        self,
        feature_extractor=None,
        tokenizer=None,
        bridge_tokenizer=None,
        num_query_tokens: int = 32,
        audio_token: str = "<audio>",
        max_audio_windows: int = 3,
        audio_window_seconds: float | None = None,
        bridge_max_length: int = 128,
        bridge_window_frames: int | None = None,
        truncate_long_audio: bool = True,
        max_text_tokens: int | None = None,
        chat_template: str | None = None,
        label_prompt_tokens: int = 0,
        **kwargs,
    ):
        self.num_query_tokens = num_query_tokens
        self.label_prompt_tokens = label_prompt_tokens
        self.bridge_window_frames = bridge_window_frames
        self.audio_token = audio_token
        self.max_audio_windows = max_audio_windows
        self.bridge_max_length = bridge_max_length
        self.truncate_long_audio = truncate_long_audio
        self.max_text_tokens = max_text_tokens
        if audio_window_seconds is None:
            audio_window_seconds = self._default_window_seconds(feature_extractor)
        self.audio_window_seconds = float(audio_window_seconds)
        if chat_template is None:
            chat_template = getattr(tokenizer, "chat_template", None)  # the LLM's own; Flan-T5 has none
        if isinstance(chat_template, dict):
            chat_template = {name: audio_chat_template(t, audio_token) for name, t in chat_template.items()}
        else:
            chat_template = audio_chat_template(chat_template, audio_token)
            tokenizer.chat_template = chat_template  # one file in a saved folder holds both: they agree from the start
        super().__init__(feature_extractor, tokenizer, bridge_tokenizer, chat_template=chat_template, **kwargs)
        self.audio_token_id = tokenizer.convert_tokens_to_ids(audio_token)
        if self.audio_token_id is None or self.audio_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the LLM tokenizer has no single token for the audio placeholder {audio_token!r}")

    @staticmethod
    def _default_window_seconds(feature_extractor) -> float:
        """The feature extractor's own window where it has one (Whisper's chunk, AST's fbank length), else the
        family's default."""
        facts = feature_extractor_facts(feature_extractor)
        if facts.feature_window_attribute is not None:
            return getattr(feature_extractor, facts.feature_window_attribute) / facts.input_rate
        return facts.window / facts.input_rate

    @property
    def audio_encoder_facts(self) -> AudioEncoderFacts:
        """The facts of the audio encoder family its feature extractor serves (`AUDIO_ENCODERS`)."""
        return feature_extractor_facts(self.feature_extractor)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    @property
    def window_samples(self) -> int:
        return int(round(self.audio_window_seconds * self.sampling_rate))

    @property
    def max_audio_seconds(self) -> float:
        """The longest audio the model hears: `max_audio_windows` encoder windows."""
        return self.window_samples * self.max_audio_windows / self.sampling_rate

    @property
    def text_token_limit(self) -> int | None:
        if self.max_text_tokens:
            return int(self.max_text_tokens)
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if limit and limit < 1e9 else None  # transformers' "no limit" is 1e30

    # ---- audio --------------------------------------------------------------------------------------------------
    def _features(self, windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        """Feature-extract equal-length windows; returns features, a per-frame mask and the time axis."""
        facts = self.audio_encoder_facts
        padding = {"padding": "max_length", "max_length": self.window_samples, "return_attention_mask": True}
        out = self.feature_extractor(windows, sampling_rate=self.sampling_rate, return_tensors="np",
                                     **(padding if facts.feature_mask else {}))
        values = out[facts.input_key]
        mask = out.get("attention_mask") if facts.feature_mask else None
        if mask is None:  # every step counts
            mask = np.ones((len(values), values.shape[facts.time_axis]), dtype=np.int64)
        return values, mask, facts.time_axis

    def prepare_audio(self, audio, sampling_rate: int | None = None) -> dict[str, np.ndarray]:
        """Load clips, cut each into encoder windows (at most `max_audio_windows`), extract features.

        Returns `input_features` with the windows of a clip concatenated along time, padded to the longest clip,
        and `feature_attention_mask` (1 on real audio).
        """
        clips = [audio] if _is_single_clip(audio) else list(audio)
        if not clips:
            raise ValueError("no audio given: the list of clips is empty")
        window, limit = self.window_samples, self.window_samples * self.max_audio_windows
        per_clip = []
        for i, clip in enumerate(clips):
            wav = load_audio(clip, sampling_rate, self.sampling_rate, f"audio clip {i}", self.max_audio_seconds,
                             self.truncate_long_audio)[:limit]
            per_clip.append([wav[start : start + window] for start in range(0, len(wav), window)])
        flat = [w for windows in per_clip for w in windows]
        feats, mask, axis = self._features(flat)
        n_max = max(len(w) for w in per_clip)
        out_feats, out_mask, k = [], [], 0
        for windows in per_clip:
            n = len(windows)
            f = np.concatenate(list(feats[k : k + n]), axis=axis)
            m = np.concatenate(list(mask[k : k + n]), axis=-1)
            k += n
            if n < n_max:  # pad with whole empty windows
                pad_f = [(0, 0)] * f.ndim
                pad_f[axis] = (0, (n_max - n) * feats.shape[axis])
                f = np.pad(f, pad_f)
                m = np.pad(m, (0, (n_max - n) * mask.shape[-1]))
            out_feats.append(f)
            out_mask.append(m)
        return {"input_features": np.stack(out_feats), "feature_attention_mask": np.stack(out_mask).astype(np.int64)}

    # ---- text ---------------------------------------------------------------------------------------------------
    def tokens_for_frames(self, n_frames: int) -> int:
        """Placeholder tokens for a clip of `n_frames` encoder frames: its query tokens, then its label prompt."""
        return self.query_tokens_for_frames(n_frames) + (self.label_prompt_tokens if self.bridge_window_frames else 0)

    def query_tokens_for_frames(self, n_frames: int) -> int:
        """The Bridge-Net's tokens for a clip of `n_frames` encoder frames (what its CTC head spells)."""
        if not self.bridge_window_frames:
            return self.num_query_tokens
        return max(1, -(-int(n_frames) // self.bridge_window_frames)) * self.num_query_tokens

    def label_token_ids(self, labels: list[str]) -> torch.Tensor:
        """`(len(labels), label_prompt_tokens)` LLM token ids of each label (its first word pieces, no special
        tokens), padded with line breaks, so a label prompt reads as a line of text before the instruction (the
        pad token where a line break is no single token): the model's `label_token_ids`."""
        if self.label_prompt_tokens < 1:
            raise ValueError("label_token_ids needs label_prompt_tokens >= 1")
        newline = self.tokenizer("\n", add_special_tokens=False)["input_ids"]
        pad = newline[0] if len(newline) == 1 else self.tokenizer.pad_token_id
        length = self.label_prompt_tokens
        ids = [self.tokenizer(label, add_special_tokens=False)["input_ids"][:length] for label in labels]
        return torch.tensor([row + [pad] * (length - len(row)) for row in ids], dtype=torch.long)

    def audio_tokens_per_clip(self, feature_attention_mask: np.ndarray) -> list[int]:
        """Placeholder tokens for each clip, from its feature mask, its encoder frames counted per window as the model
        counts them (a windowed bridge needs an encoder whose frames follow from its features: Whisper's halve them)."""
        if not self.bridge_window_frames:
            return [self.num_query_tokens] * len(feature_attention_mask)
        mask = np.asarray(feature_attention_mask)
        valid = mask.reshape(len(mask), -1, self._frames_per_window()).sum(-1)
        return [self.tokens_for_frames(self.audio_encoder_facts.strided_frames(v).sum()) for v in valid]

    def _frames_per_window(self) -> int:
        """Feature steps in one encoder window."""
        return int(round(self.audio_window_seconds * self.audio_encoder_facts.input_rate))

    def _expand(self, texts: list[str], n_clips: int | None, counts: list[int] | None = None) -> list[str]:
        if n_clips is not None and len(texts) != n_clips:
            raise ValueError(
                f"got {len(texts)} text(s) for {n_clips} audio clip(s): each text takes exactly one clip and one "
                f"{self.audio_token!r} placeholder"
            )
        expanded = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} must be a string, got {type(text).__name__}")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                raise ValueError(f"text {i} is not valid unicode text ({error.reason} at {error.start})") from None
            count = text.count(self.audio_token)
            if n_clips is not None and count != 1:
                raise ValueError(
                    f"text {i} has {count} {self.audio_token!r} placeholders; each text takes exactly one, where its "
                    "audio clip goes"
                )
            if n_clips is None and count:
                raise ValueError(f"text {i} has an {self.audio_token!r} placeholder but no audio was given")
            tokens = counts[i] if counts is not None else self.num_query_tokens
            expanded.append(text.replace(self.audio_token, self.audio_token * tokens))
        return expanded

    def prompt_ids(self, prompt: str) -> list[int]:
        """A rendered prompt (placeholders expanded) tokenized as `apply_chat_template` tokenizes it: with the
        tokenizer's special tokens (Flan-T5's `</s>`) unless the template wrote the BOS itself."""
        bos = self.tokenizer.bos_token
        return self.tokenizer(prompt, add_special_tokens=not (bos and prompt.startswith(bos)))["input_ids"]

    def _check_length(self, input_ids) -> None:
        limit = self.text_token_limit
        longest = max((len(ids) for ids in input_ids), default=0)
        if limit is not None and longest > limit:
            raise ValueError(
                f"the prompt is {longest} tokens long (audio tokens included); this model reads at most {limit} "
                "(max_text_tokens): shorten the instruction"
            )

    def __call__(
        self,
        text: str | list[str] | None = None,
        audio=None,
        sampling_rate: int | None = None,
        bridge_text: str | list[str] | None = None,
        return_tensors: str | None = "pt",
        padding: bool | str = True,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            text: prompt(s), each with one `<audio>` placeholder per clip.
            audio: one clip or a list of clips (see [`load_audio`] for the accepted forms).
            sampling_rate: rate of array inputs; files carry their own. Audio is resampled to the model's rate.
            bridge_text: instruction(s) for the Bridge-Net; defaults to the text without its placeholder.
        """
        if text is None and audio is None:
            raise ValueError("pass text, audio or both")
        data = {}
        n_clips = None
        if audio is not None:
            data.update(self.prepare_audio(audio, sampling_rate))
            n_clips = data["input_features"].shape[0]
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            counts = self.audio_tokens_per_clip(data["feature_attention_mask"]) if audio is not None else None
            data.update(self.tokenizer(self._expand(texts, n_clips, counts), padding=padding, **kwargs))
            self._check_length(data["input_ids"])
            if audio is not None:
                if bridge_text is None:
                    bridge_text = [t.replace(self.audio_token, " ").strip() for t in texts]
                bridge = [bridge_text] if isinstance(bridge_text, str) else list(bridge_text)
                if len(bridge) != len(texts):
                    raise ValueError(f"got {len(bridge)} bridge text(s) for {len(texts)} text(s)")
                tok = self.bridge_tokenizer(bridge, padding=True, truncation=True, max_length=self.bridge_max_length)
                data["bridge_input_ids"] = tok["input_ids"]
                data["bridge_attention_mask"] = tok["attention_mask"]
        return BatchFeature(data=dict(data), tensor_type=return_tensors)

    # ---- chat ---------------------------------------------------------------------------------------------------
    def _multimodal_inputs_from_conversations(self, conversations, audio_loading_params, load_audio_from_video=False):
        """`apply_chat_template`'s hook: the clips of `audio` parts, loaded as [`load_audio`] does (path, bytes, array,
        `{"array", "sampling_rate"}`, `AudioDecoder`), and the Bridge-Net instruction of each conversation: the text
        parts of its user turns (the system prompt and earlier answers are not the task)."""
        clips, bridge_text = [], []
        for conversation in conversations:
            instruction = []
            for message in conversation:
                content = message.get("content")
                if isinstance(content, str):
                    if message.get("role") == "user":
                        instruction.append(content.replace(self.audio_token, " ").strip())
                    continue
                for part in content or []:
                    if part.get("type") == "audio":
                        clips.append(self._load_chat_audio(_audio_source(part), len(clips)))
                    elif part.get("type") == "text" and message.get("role") == "user":
                        instruction.append(part["text"].strip())
            bridge_text.append(" ".join(t for t in instruction if t))
        return [], [], clips, ({"bridge_text": bridge_text} if clips else {})

    def _load_chat_audio(self, source, index: int) -> dict:
        """One chat clip at the model's rate; URLs go through transformers' loader."""
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            from transformers.audio_utils import load_audio as load_url

            source = {"array": load_url(source, sampling_rate=self.sampling_rate), "sampling_rate": self.sampling_rate}
        wav = load_audio(source, None, self.sampling_rate, f"audio clip {index}", self.max_audio_seconds,
                         self.truncate_long_audio)
        return {"array": wav, "sampling_rate": self.sampling_rate}  # carries its rate past any `sampling_rate` kwarg

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    def post_process_multimodal_output(self, generated_outputs, skip_special_tokens=True, **kwargs):
        return self.tokenizer.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens)

    @property
    def model_input_names(self) -> list[str]:
        return [
            "input_ids", "attention_mask", "input_features", "feature_attention_mask",
            "bridge_input_ids", "bridge_attention_mask",
        ]


__all__ = ["MintProcessor", "audio_chat_template", "load_audio"]
