"""MINT configuration: a frozen audio encoder, a trainable Bridge-Net (Q-Former) and a frozen LLM."""

from dataclasses import dataclass
from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


@dataclass(frozen=True)
class AudioEncoderFacts:
    """What MINT needs to know about one audio encoder family. The model, the processor, the feature cache and the
    assembly scripts read this table instead of branching on the encoder's `model_type`."""

    feature_extractor: str
    """Class name of the family's feature extractor: the processor knows the encoder by it."""
    input_key: Literal["input_features", "input_values"]
    """Key under which the feature extractor returns the encoder input."""
    time_axis: int
    """Axis of the encoder input that is time: -1 for Whisper's `(mel, frames)` and raw waveforms, -2 for AST's
    `(frames, mel)`."""
    input_rate: int
    """Input steps per second of audio along `time_axis`: 10-ms mel/fbank frames, or 16-kHz samples."""
    frames_per_second: float | None
    """Encoder output frames per second of audio; `None` for AST, whose patches mix time and frequency."""
    takes_attention_mask: bool
    """The tower reads a padding mask (the wav2vec2 family); Whisper and AST see the padding as input."""
    output_frames: Literal["strided", "whole_window", "tower"]
    """How many output frames the valid inputs of one window make: `"strided"`, one per `input_stride` inputs
    (Whisper's second conv has stride 2); `"whole_window"`, all of them for a window with any audio (AST); `"tower"`,
    the tower's own `_get_feat_extract_output_lengths` (its conv stack)."""
    input_stride: int = 1
    window: int | None = None
    """Default window along `time_axis` when the audio config does not fix one (10 s of 16-kHz samples)."""
    window_attribute: str | None = None
    """Audio-config attribute that fixes the window: the encoder accepts exactly `window_scale` times it."""
    window_scale: int = 1
    feature_window_attribute: str | None = None
    """Feature-extractor attribute holding its window in input steps, where it has a fixed one."""
    feature_mask: bool = True
    """The feature extractor pads each window to the processor's length and returns its padding mask; AST's pads to
    its own fixed length and returns none (every frame counts)."""
    hidden_size_attribute: str = "hidden_size"
    encoder_class: str | None = None
    """The tower is this class alone where `AutoModel` would build more (Whisper's decoder is never used)."""

    def fixed_window(self, audio_config: PreTrainedConfig) -> int | None:
        """The window the encoder's own config fixes, or `None` where MINT chooses it."""
        return None if self.window_attribute is None else self.window_scale * getattr(audio_config, self.window_attribute)

    def strided_frames(self, valid_inputs):
        """Output frames made by `valid_inputs` input steps of one window (ints, numpy or torch), for `"strided"`."""
        return (valid_inputs + self.input_stride - 1) // self.input_stride


_WAVEFORM = AudioEncoderFacts(
    feature_extractor="Wav2Vec2FeatureExtractor", input_key="input_values", time_axis=-1, input_rate=16_000,
    frames_per_second=50, takes_attention_mask=True, output_frames="tower", window=160_000,
)
AUDIO_ENCODERS = {
    "whisper": AudioEncoderFacts(
        feature_extractor="WhisperFeatureExtractor", input_key="input_features", time_axis=-1, input_rate=100,
        frames_per_second=50, takes_attention_mask=False, output_frames="strided", input_stride=2,
        window_attribute="max_source_positions", window_scale=2, feature_window_attribute="nb_max_frames",
        hidden_size_attribute="d_model", encoder_class="WhisperEncoder",
    ),
    "audio-spectrogram-transformer": AudioEncoderFacts(
        feature_extractor="ASTFeatureExtractor", input_key="input_values", time_axis=-2, input_rate=100,
        frames_per_second=None, takes_attention_mask=False, output_frames="whole_window", window_attribute="max_length",
        feature_window_attribute="max_length", feature_mask=False,
    ),
    "data2vec-audio": _WAVEFORM,
    "wav2vec2": _WAVEFORM,
    "hubert": _WAVEFORM,
    "wavlm": _WAVEFORM,
}


def audio_encoder_facts(audio_config: PreTrainedConfig) -> AudioEncoderFacts:
    """The facts of `audio_config`'s encoder family; a clear error for an unsupported one."""
    facts = AUDIO_ENCODERS.get(audio_config.model_type)
    if facts is None:
        raise ValueError(f"unsupported audio encoder '{audio_config.model_type}'; supported: "
                         f"{', '.join(sorted(AUDIO_ENCODERS))}")
    return facts


def feature_extractor_facts(feature_extractor) -> AudioEncoderFacts:
    """The facts of the encoder family a feature extractor (or a subclass of one) serves; the families that share one
    (the wav2vec2 family) agree on everything the processor reads."""
    names = {cls.__name__ for cls in type(feature_extractor).__mro__}
    for facts in AUDIO_ENCODERS.values():
        if facts.feature_extractor in names:
            return facts
    known = sorted({facts.feature_extractor for facts in AUDIO_ENCODERS.values()})
    raise ValueError(f"unsupported feature extractor {type(feature_extractor).__name__}; supported: {', '.join(known)}")


def audio_hidden_size(audio_config: PreTrainedConfig) -> int:
    """Width of the audio encoder's output frames (Whisper calls it `d_model`, the others `hidden_size`)."""
    return getattr(audio_config, audio_encoder_facts(audio_config).hidden_size_attribute)


def _run_validators(config: PreTrainedConfig):
    """`@strict` runs the `validate_*` hooks after `__init__` and before saving, but wraps their `ValueError` in
    huggingface_hub's `StrictDataclassClassValidationError`; running them from `__post_init__` first keeps the
    `ValueError` and its message that callers catch."""
    for check in type(config).__class_validators__:
        check(config)


@strict
class MintBridgeConfig(PreTrainedConfig):
    r"""
    Configuration of the Bridge-Net, a BERT-style Q-Former whose learned queries read the audio encoder's frames
    through cross-attention and share self-attention with instruction tokens (InstructBLIP style).

    Args:
        vocab_size (`int`, *optional*, defaults to 30522):
            Vocabulary of the bridge tokenizer (BERT's by default: the bridge is initialized from a BERT checkpoint).
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the queries and the bridge layers.
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of bridge layers.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads per layer; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Width of the feed-forward layers.
        cross_attention_frequency (`int`, *optional*, defaults to 2):
            A cross-attention to the audio frames is added every `cross_attention_frequency` layers.
        encoder_hidden_size (`int`, *optional*):
            Width of the audio frames. Filled in by [`MintConfig`] from the audio encoder; a different explicit
            value is an error.
        max_position_embeddings (`int`, *optional*, defaults to 512):
            Longest instruction / caption the bridge reads.
        bos_token_id (`int`, *optional*):
            The bridge tokenizer's [DEC] token, which replaces [CLS] as the first token for audio-grounded generation.
    """

    model_type = "mint_bridge"
    base_config_key = "bridge_config"

    # The fields of transformers' InstructBlipQFormerConfig, whose model the Bridge-Net reuses.
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    cross_attention_frequency: int = 2
    encoder_hidden_size: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        _run_validators(self)

    def validate_architecture(self):
        """Part of `@strict` validation: the heads split the width, the cross-attentions fit the layers."""
        super().validate_architecture()
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"bridge hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if not 1 <= self.cross_attention_frequency <= self.num_hidden_layers:
            raise ValueError(
                f"bridge cross_attention_frequency must be in [1, num_hidden_layers={self.num_hidden_layers}], "
                f"got {self.cross_attention_frequency}"
            )


@strict
class MintConfig(PreTrainedConfig):
    r"""
    Configuration of a MINT model.

    Args:
        audio_config (`dict` or `PreTrainedConfig`, *optional*):
            The frozen audio encoder: Whisper, data2vec-audio, wav2vec2, HuBERT, WavLM or AST. Defaults to Whisper.
        bridge_config (`dict` or [`MintBridgeConfig`], *optional*):
            The Bridge-Net.
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            The frozen LLM: a decoder-only model (Llama, Qwen2, SmolLM, ...) or an encoder-decoder T5 / Flan-T5.
        num_query_tokens (`int`, *optional*, defaults to 32):
            Learned queries, hence soft-prompt tokens per audio clip.
        audio_token_index (`int`, *optional*):
            LLM token id of the audio placeholder; each clip fills `num_query_tokens` such positions.
        projection_dim (`int`, *optional*, defaults to 256):
            Size of the audio and text embeddings used for contrastive retrieval (stage 1).
        audio_window_size (`int`, *optional*):
            Length of one encoder window along the time axis of `input_features`: mel frames for Whisper
            (`2 * max_source_positions`) and AST (`max_length`), samples for raw-waveform encoders (160000).
            Longer audio is cut into windows whose frames are concatenated before the bridge.
        max_audio_windows (`int`, *optional*, defaults to 3):
            Most windows one clip may use; the processor truncates longer audio.
        bridge_window_frames (`int`, *optional*):
            A windowed Bridge-Net for speech: `num_query_tokens` queries per window of this many encoder frames
            (Whisper: 50 per second), so time order survives and the soft prompt grows with the duration. `None`:
            one set of queries per clip, as BLIP-2.
        connector_type (`str`, *optional*, defaults to `"bridge"`):
            What joins the encoder to the LLM. `"bridge"`: the Bridge-Net (MINT). `"pooled"`: the dense baseline of
            LLaVA / Qwen2-Audio, each window of `bridge_window_frames` encoder frames averaged and projected by a
            two-layer MLP into one LLM token (`num_query_tokens` must be 1); the prompt grows with the duration.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the normal init of the queries and the new heads.
        audio_tower_dtype (`str`, *optional*):
            Run the frozen audio tower in `"float32"`, `"bfloat16"` or `"float16"` whatever the rest of the model
            uses; `"auto"`: bfloat16 on CPUs with native bf16 matrix units (AVX512-BF16 or AMX), where it is faster
            than float32, else float32. `None` leaves the tower in the model's dtype.
        retrieval_heads (`bool`, *optional*, defaults to `False`):
            The generation model also carries stage 1's retrieval heads (audio/text projections, matching and
            generation heads, temperature), frozen, so one folder serves generation and, read by
            [`MintForAudioTextRetrieval`], embeddings and zero-shot classification.
        token_prompt_mix (`float`, *optional*, defaults to 0.0):
            Share of the soft prompt taken from the LLM's own input embeddings (LegoSLM / Wav2Prompt): each audio
            token is read through the LLM's output embeddings plus a blank (a CTC head over the LLM vocabulary),
            and its posterior-weighted input embedding is mixed in with this weight. A frozen LLM can read that
            part from the first step; training anneals it towards the projected query outputs. 0 turns the head
            off (no extra parameters).
        window_position_embeddings (`bool`, *optional*, defaults to `False`):
            A windowed Bridge-Net adds a learned vector per frame position in its window to the frames it reads
            (zero at first), so its queries can tell the start of a window from its end and spell in order.
        clip_context (`bool`, *optional*, defaults to `False`):
            A windowed Bridge-Net also adds to every query of a clip's windows the whole clip's encoder frames,
            pooled (mean, spread, maximum), normed and projected (zero at first): a window hears a quarter second,
            while a sound's label is a fact about the whole clip.
        label_prompt_tokens (`int`, *optional*, defaults to 0):
            A label prompt after each clip's soft prompt: a linear classifier over `id2label` reads the clip's query
            outputs (averaged over queries and windows, as retrieval reads them), and these many more audio tokens
            hold its posterior-weighted mix of each label's own LLM token embeddings (the label's first word pieces,
            padded). Where the classifier is sure, the LLM reads the label as text and can copy it. 0: none.
        ctc_context_layers (`int`, *optional*, defaults to 0):
            Convolution layers over a clip's projected audio tokens before the token prompt's CTC head reads them
            for decoding and its word-piece bags: a window's queries hear 0.24 s, while a word piece spans windows.
            Each layer is residual with a zero-initialised output, so a new stack starts as the identity; the soft
            prompt the LLM reads does not pass through it. 0: none.
        apply_spec_augment (`bool`, *optional*, defaults to `False`):
            SpecAugment on the encoder frames the Bridge-Net reads, in training only (the frames of a frozen encoder,
            often from a cache, are the only place left to augment): spans of frames and of channels are zeroed.
            The `mask_*` fields below follow [`WhisperConfig`] and wav2vec2's SpecAugment.
        mask_time_prob (`float`, *optional*, defaults to 0.05):
            About this share of each clip's frames is masked, in spans of `mask_time_length` frames.
        mask_time_length (`int`, *optional*, defaults to 10):
            Frames per time mask (Whisper: 50 per second).
        mask_time_min_masks (`int`, *optional*, defaults to 2):
            At least this many time masks per clip.
        mask_feature_prob (`float`, *optional*, defaults to 0.0):
            About this share of the channels is masked over the whole clip, in spans of `mask_feature_length`.
        mask_feature_length (`int`, *optional*, defaults to 10):
            Channels per feature mask.
        mask_feature_min_masks (`int`, *optional*, defaults to 0):
            At least this many feature masks per clip.
    """

    model_type = "mint"
    attribute_map = {"audio_token_id": "audio_token_index"}
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="whisper"),
        "bridge_config": MintBridgeConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    audio_config: dict | PreTrainedConfig | None = None
    bridge_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    num_query_tokens: int = 32
    audio_token_index: int | None = None
    projection_dim: int = 256
    audio_window_size: int | None = None
    max_audio_windows: int = 3
    bridge_window_frames: int | None = None
    # Enumerations stay `str` rather than `Literal`: `@strict` would refuse a bad value in its own error type
    # (not a `ValueError`) before `validate_options` can name the choices.
    connector_type: str = "bridge"
    initializer_range: float = 0.02
    audio_tower_dtype: str | None = None
    retrieval_heads: bool = False
    token_prompt_mix: float | int = 0.0
    window_position_embeddings: bool = False
    clip_context: bool = False
    label_prompt_tokens: int = 0
    ctc_context_layers: int = 0
    apply_spec_augment: bool = False
    mask_time_prob: float | int = 0.05
    mask_time_length: int = 10
    mask_time_min_masks: int = 2
    mask_feature_prob: float | int = 0.0
    mask_feature_length: int = 10
    mask_feature_min_masks: int = 0
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        facts = audio_encoder_facts(self.audio_config)
        width = audio_hidden_size(self.audio_config)
        if self.bridge_config.encoder_hidden_size is None:
            self.bridge_config.encoder_hidden_size = width
        elif self.bridge_config.encoder_hidden_size != width:
            raise ValueError(
                f"bridge_config.encoder_hidden_size ({self.bridge_config.encoder_hidden_size}) does not match the "
                f"audio encoder's output width ({width})"
            )
        fixed = facts.fixed_window(self.audio_config)
        if fixed is not None and self.audio_window_size not in (None, fixed):
            raise ValueError(
                f"audio_window_size ({self.audio_window_size}) must equal the {self.audio_config.model_type} encoder's "
                f"input length ({fixed} frames)"
            )
        self.audio_window_size = fixed or self.audio_window_size or facts.window
        self.is_encoder_decoder = bool(getattr(self.text_config, "is_encoder_decoder", False))
        # Decoder-only checkpoints keep `tie_word_embeddings` in their text config (SmolLM2 ties its head).
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True
        _run_validators(self)

    def validate_sizes(self):
        """Part of `@strict` validation: counts are positive and the audio token is in the LLM vocabulary."""
        for name in ("num_query_tokens", "projection_dim", "max_audio_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.audio_window_size < 1:
            raise ValueError(f"audio_window_size must be positive, got {self.audio_window_size}")
        vocab = self.text_config.vocab_size
        if self.audio_token_index is not None and not 0 <= self.audio_token_index < vocab:
            raise ValueError(
                f"audio_token_index ({self.audio_token_index}) is outside the LLM vocabulary (size {vocab})"
            )
        if self.bridge_window_frames is not None and self.bridge_window_frames < 1:
            raise ValueError(f"bridge_window_frames must be positive, got {self.bridge_window_frames}")
        if self.label_prompt_tokens < 0:
            raise ValueError(f"label_prompt_tokens must not be negative, got {self.label_prompt_tokens}")
        if not 0.0 <= self.token_prompt_mix <= 1.0:
            raise ValueError(f"token_prompt_mix must be in [0, 1], got {self.token_prompt_mix}")
        if self.ctc_context_layers < 0:
            raise ValueError(f"ctc_context_layers must not be negative, got {self.ctc_context_layers}")
        for axis in ("time", "feature"):
            prob, length, least = (getattr(self, f"mask_{axis}_{k}") for k in ("prob", "length", "min_masks"))
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"mask_{axis}_prob must be in [0, 1], got {prob}")
            if length < 1:
                raise ValueError(f"mask_{axis}_length must be at least 1, got {length}")
            if least < 0:
                raise ValueError(f"mask_{axis}_min_masks must not be negative, got {least}")

    def validate_options(self):
        """Part of `@strict` validation: the enumerations, and the options that only work together."""
        if self.audio_tower_dtype not in (None, "auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"audio_tower_dtype must be None, 'auto', 'float32', 'bfloat16' or 'float16', got "
                             f"{self.audio_tower_dtype!r}")
        if self.connector_type not in ("bridge", "pooled"):
            raise ValueError(f"connector_type must be 'bridge' or 'pooled', got {self.connector_type!r}")
        if self.bridge_window_frames is not None and self.audio_encoder_facts.output_frames != "strided":
            raise ValueError("a windowed Bridge-Net (bridge_window_frames) needs a Whisper encoder, whose frames the "
                             f"processor can count, got {self.audio_config.model_type}")
        if self.window_position_embeddings and (self.bridge_window_frames is None or self.connector_type != "bridge"):
            raise ValueError("window_position_embeddings needs a windowed Bridge-Net (bridge_window_frames and the "
                             "bridge connector)")
        if self.clip_context and (self.bridge_window_frames is None or self.connector_type != "bridge"):
            raise ValueError("clip_context needs a windowed Bridge-Net (bridge_window_frames and the bridge connector)")
        if self.label_prompt_tokens and (self.bridge_window_frames is None or self.connector_type != "bridge"):
            raise ValueError("label_prompt_tokens needs a windowed Bridge-Net (bridge_window_frames and the bridge "
                             "connector)")
        labels = list((self.id2label or {}).values())
        if self.label_prompt_tokens and (len(labels) < 2 or labels == ["LABEL_0", "LABEL_1"]):  # PreTrainedConfig's
            raise ValueError("label_prompt_tokens needs id2label: the labels its classifier names, two labels or more, "
                             f"got {labels}")  # placeholder pair counts as none
        if self.retrieval_heads and self.connector_type != "bridge":
            raise ValueError("retrieval heads read the Bridge-Net's outputs; a pooled connector has none")
        if self.ctc_context_layers and not self.token_bags:
            raise ValueError("ctc_context_layers feeds the token prompt's CTC head: it needs token_prompt_mix > 0 on a "
                             "windowed Bridge-Net")
        if self.connector_type == "pooled" and (self.bridge_window_frames is None or self.num_query_tokens != 1):
            raise ValueError("a pooled connector makes one token per window: set bridge_window_frames (frames per "
                             f"token) and num_query_tokens=1, got {self.bridge_window_frames} and {self.num_query_tokens}")

    @property
    def audio_encoder_facts(self) -> AudioEncoderFacts:
        """The facts of the audio encoder family (`AUDIO_ENCODERS`)."""
        return audio_encoder_facts(self.audio_config)

    @property
    def token_bags(self) -> bool:
        """Whether the model ranks texts by the word pieces its CTC head hears (`get_audio_token_bags`): the token
        prompt's head (`token_prompt_mix` > 0) on a windowed Bridge-Net."""
        return self.connector_type == "bridge" and self.token_prompt_mix > 0 and bool(self.bridge_window_frames)

    @property
    def audio_time_axis(self) -> int:
        """Axis of `input_features` along which the audio is cut into encoder windows."""
        return self.audio_encoder_facts.time_axis


__all__ = ["AUDIO_ENCODERS", "AudioEncoderFacts", "MintBridgeConfig", "MintConfig"]
