"""MINT configuration: a frozen audio encoder, a trainable Bridge-Net (Q-Former) and a frozen LLM."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


# How each supported audio encoder family reads its input: which axis of `input_features` is time, and
# the default length of one encoder window along it (None: derived from the audio config).
AUDIO_ENCODER_LAYOUTS = {
    "whisper": {"time_axis": -1, "window": None},  # log-mel (mel, frames); window = 2 * max_source_positions
    "audio-spectrogram-transformer": {"time_axis": -2, "window": None},  # fbank (frames, mel); window = max_length
    "data2vec-audio": {"time_axis": -1, "window": 160_000},  # raw 16 kHz waveform; 10-s windows
    "wav2vec2": {"time_axis": -1, "window": 160_000},
    "hubert": {"time_axis": -1, "window": 160_000},
    "wavlm": {"time_axis": -1, "window": 160_000},
}


def audio_hidden_size(audio_config: PreTrainedConfig) -> int:
    """Width of the audio encoder's output frames (Whisper calls it `d_model`, the others `hidden_size`)."""
    return audio_config.d_model if audio_config.model_type == "whisper" else audio_config.hidden_size


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
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    cross_attention_frequency: int = 2
    encoder_hidden_size: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
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
            uses; `"auto"`: bfloat16 on CPUs with native bf16 matrix units (AVX512-BF16 or AMX), where Whisper
            tiny.en's encoder runs about 1.7x faster and the first token's logits move by a few hundredths, else
            float32. `None` leaves the tower in the model's dtype.
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
    connector_type: str = "bridge"
    initializer_range: float = 0.02
    audio_tower_dtype: str | None = None
    retrieval_heads: bool = False
    token_prompt_mix: float = 0.0
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        audio_type = self.audio_config.model_type
        if audio_type not in AUDIO_ENCODER_LAYOUTS:
            raise ValueError(
                f"unsupported audio encoder '{audio_type}'; supported: {', '.join(sorted(AUDIO_ENCODER_LAYOUTS))}"
            )
        width = audio_hidden_size(self.audio_config)
        if self.bridge_config.encoder_hidden_size is None:
            self.bridge_config.encoder_hidden_size = width
        elif self.bridge_config.encoder_hidden_size != width:
            raise ValueError(
                f"bridge_config.encoder_hidden_size ({self.bridge_config.encoder_hidden_size}) does not match the "
                f"audio encoder's output width ({width})"
            )
        if self.num_query_tokens < 1:
            raise ValueError(f"num_query_tokens must be at least 1, got {self.num_query_tokens}")
        if self.projection_dim < 1:
            raise ValueError(f"projection_dim must be at least 1, got {self.projection_dim}")
        if self.max_audio_windows < 1:
            raise ValueError(f"max_audio_windows must be at least 1, got {self.max_audio_windows}")
        vocab = self.text_config.vocab_size
        if self.audio_token_index is not None and not 0 <= self.audio_token_index < vocab:
            raise ValueError(
                f"audio_token_index ({self.audio_token_index}) is outside the LLM vocabulary (size {vocab})"
            )
        self._check_audio_window()
        if self.bridge_window_frames is not None:
            if self.bridge_window_frames < 1:
                raise ValueError(f"bridge_window_frames must be positive, got {self.bridge_window_frames}")
            if audio_type != "whisper":
                raise ValueError("a windowed Bridge-Net (bridge_window_frames) needs a Whisper encoder, whose frames "
                                 "the processor can count")
        if self.audio_tower_dtype not in (None, "auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"audio_tower_dtype must be None, 'auto', 'float32', 'bfloat16' or 'float16', got "
                             f"{self.audio_tower_dtype!r}")
        if not 0.0 <= self.token_prompt_mix <= 1.0:
            raise ValueError(f"token_prompt_mix must be in [0, 1], got {self.token_prompt_mix}")
        if self.connector_type not in ("bridge", "pooled"):
            raise ValueError(f"connector_type must be 'bridge' or 'pooled', got {self.connector_type!r}")
        if self.retrieval_heads and self.connector_type != "bridge":
            raise ValueError("retrieval heads read the Bridge-Net's outputs; a pooled connector has none")
        if self.connector_type == "pooled" and (self.bridge_window_frames is None or self.num_query_tokens != 1):
            raise ValueError("a pooled connector makes one token per window: set bridge_window_frames (frames per "
                             f"token) and num_query_tokens=1, got {self.bridge_window_frames} and {self.num_query_tokens}")
        self.is_encoder_decoder = bool(getattr(self.text_config, "is_encoder_decoder", False))
        # Decoder-only checkpoints keep `tie_word_embeddings` in their text config (SmolLM2 ties its head).
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True

    def _check_audio_window(self):
        audio_type = self.audio_config.model_type
        if audio_type == "whisper":
            fixed = 2 * self.audio_config.max_source_positions  # HF Whisper accepts exactly this many mel frames
        elif audio_type == "audio-spectrogram-transformer":
            fixed = self.audio_config.max_length
        else:
            fixed = None
        if fixed is not None and self.audio_window_size not in (None, fixed):
            raise ValueError(
                f"audio_window_size ({self.audio_window_size}) must equal the {audio_type} encoder's input length "
                f"({fixed} frames)"
            )
        window = fixed or self.audio_window_size or AUDIO_ENCODER_LAYOUTS[audio_type]["window"]
        if window < 1:
            raise ValueError(f"audio_window_size must be positive, got {window}")
        self.audio_window_size = window

    @property
    def audio_time_axis(self) -> int:
        """Axis of `input_features` along which the audio is cut into encoder windows."""
        return AUDIO_ENCODER_LAYOUTS[self.audio_config.model_type]["time_axis"]


__all__ = ["MintBridgeConfig", "MintConfig"]
