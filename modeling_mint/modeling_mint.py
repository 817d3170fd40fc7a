"""MINT: a frozen audio encoder, a trainable Bridge-Net (Q-Former) and a frozen LLM.

The layout is transformers' multimodal one: `MintForConditionalGeneration.model` is a `MintModel` backbone that
returns `last_hidden_state`, and the LM head sits beside it, which is what TRL's fused-head `SFTTrainer` expects.
"""

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, GenerationMixin, LogitsProcessorList, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling, ModelOutput
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, cached_file, can_return_tuple, logging
from transformers.models.instructblip.modeling_instructblip import InstructBlipQFormerModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder, _compute_mask_indices

from .configuration_mint import MintBridgeConfig, MintConfig, audio_encoder_facts, audio_hidden_size
from .generation_mint import MintCTCPrefixScorer
from .losses_mint import (
    audio_text_contrastive_loss,
    audio_text_matching_loss,
    bridge_attention_mask,
    contrastive_similarity,
    sample_hard_negatives,
    world,
)
from .pipeline_mint import AudioTextToTextPipeline  # noqa: F401  (registers its task, for remote code too)


logger = logging.get_logger(__name__)


@dataclass
class MintModelOutputWithPast(ModelOutput):
    """Backbone output: the LLM's last hidden state (decoder side for T5) plus the soft prompt that was inserted.

    A decoder-only LLM fills `hidden_states` / `attentions`; T5 fills the `decoder_*`, `cross_attentions` and
    `encoder_*` fields under the names transformers' encoder-decoder outputs use, which `generate` reads.
    """

    last_hidden_state: torch.FloatTensor | None = None
    past_key_values: object | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: torch.FloatTensor | None = None


@dataclass
class MintPretrainingOutput(ModelOutput):
    """Stage-1 output. `loss = loss_atc + loss_atm + loss_agtg` with `return_loss=True`; similarities always.

    `logits_per_audio` `(n_audio, n_text)` and `logits_per_text` are max-over-queries cosines over the temperature;
    `audio_embeds` `(n_audio, Nq, P)` and `text_embeds` `(n_text, P)` are normalized.
    """

    loss: torch.FloatTensor | None = None
    loss_atc: torch.FloatTensor | None = None
    loss_atm: torch.FloatTensor | None = None
    loss_agtg: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None


@dataclass
class MintCausalLMOutputWithPast(ModelOutput):
    """LM output: `loss` is the next-token loss on `labels`; `audio_hidden_states` is the soft prompt [B, Nq, D].
    The hidden states and attentions are named as in [`MintModelOutputWithPast`]."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: object | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: torch.FloatTensor | None = None


class MintQueryTokens(nn.Module):
    """The learned queries [1, Nq, H]. A module, not a bare parameter, so PEFT's `modules_to_save` can hold it.

    With `window_frames`, it also holds where the queries look inside a window: one learned vector per frame
    position `[window_frames, D_audio]`, added to a window's frames. A windowed bridge spells its window's word
    pieces in order, query by query, but the encoder's frames only carry their position in the encoder's own
    30-s window, which differs from one bridge window to the next."""

    def __init__(self, num_query_tokens: int, hidden_size: int, window_frames: int | None = None,
                 frame_width: int | None = None, clip_context: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, num_query_tokens, hidden_size))
        self.window_positions = nn.Parameter(torch.zeros(window_frames, frame_width)) if window_frames else None
        self.context_norm = nn.LayerNorm(3 * frame_width) if clip_context else None
        self.context_projection = nn.Parameter(torch.zeros(3 * frame_width, hidden_size)) if clip_context else None

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.weight.expand(batch_size, -1, -1)

    def clip_context(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor | None:
        """`(B, H)`: the clip's frames pooled (mean, spread and maximum over its audio), normed and projected to the
        queries' width; None without `config.clip_context`. A label is a fact about the whole clip, which a window of
        a quarter second does not see."""
        if self.context_projection is None:
            return None
        mask = frame_mask[..., None].bool()
        frames = frames.float()
        count = mask.sum(1).clamp(min=1)
        mean = frames.masked_fill(~mask, 0).sum(1) / count
        spread = ((frames - mean[:, None]).masked_fill(~mask, 0).square().sum(1) / count).sqrt()
        peak = frames.masked_fill(~mask, torch.finfo(frames.dtype).min).amax(1).masked_fill(~mask.any(1), 0)
        pooled = self.context_norm(torch.cat([mean, spread, peak], -1).to(self.context_norm.weight.dtype))
        return pooled @ self.context_projection

    def locate(self, windows: torch.Tensor) -> torch.Tensor:
        """`(K, window_frames, D_audio)` frames of K windows, with each frame's position in its window added."""
        if self.window_positions is None:
            return windows
        return windows + self.window_positions.to(windows.dtype)


class MintBridgeModel(InstructBlipQFormerModel):
    """The Bridge-Net: transformers' InstructBLIP Q-Former reading audio frames instead of image patches.

    Queries attend to each other and to the instruction tokens (shared self-attention), and to the audio frames
    through cross-attention every `cross_attention_frequency` layers.
    """

    config_class = MintBridgeConfig
    config: MintBridgeConfig


class MintPreTrainedModel(PreTrainedModel):
    config_class = MintConfig
    config: MintConfig
    base_model_prefix = "model"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_attention_backend = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _skip_keys_device_placement = "past_key_values"
    # Empty, not None: `post_init` adds the audio tower's, the Bridge-Net's and the LLM's own `_no_split_modules`.
    _no_split_modules = []

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """Loading replaces the parameters (new ones are trainable), so the pretrained parts are frozen again."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # `output_loading_info=True`: (model, info)
        model.freeze_pretrained_parts()
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        """A folder that loads with remote code alone, however it is saved (`save_pretrained`, `Trainer.save_model`,
        `push_to_hub`, a pipeline's `save_pretrained`): the code files beside the weights and, unless one is already
        there, the processor of the folder the model was loaded from."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True) is False:
            return
        out, code = Path(save_directory), Path(__file__).parent
        for source in code.glob("*.py"):
            if source.name != "__init__.py" and (source.name.endswith("_mint.py") or "_mint_" in source.name):
                shutil.copyfile(source, out / source.name)
        named = [ref.split(".")[0] for ref in (getattr(self.config, "auto_map", None) or {}).values()]
        named += [task["impl"].split(".")[0] for task in (getattr(self.config, "custom_pipelines", None) or {}).values()]
        missing = sorted({f"{name}.py" for name in named if not (out / f"{name}.py").is_file()})
        if not self.name_or_path:  # built here, not loaded: its processor and code come from whoever built it
            return
        for name in missing:  # code this process never imported: from the folder the model came from
            try:
                shutil.copyfile(cached_file(self.name_or_path, name), out / name)
            except OSError:
                logger.warning(f"{out}: the config names {name}, which {self.name_or_path!r} does not have")
        if (out / "processor_config.json").is_file():
            return
        if cached_file(self.name_or_path, "processor_config.json", _raise_exceptions_for_missing_entries=False,
                       _raise_exceptions_for_connection_errors=False):
            from .processing_mint import MintProcessor

            # the model's own code runs already, so the folder it came from is trusted
            MintProcessor.from_pretrained(self.name_or_path, trust_remote_code=True).save_pretrained(out)
        else:
            logger.warning(f"{out} has no processor (none at {self.name_or_path!r}): save yours there too")

    def _get_dtype_plan(self, dtype: torch.dtype) -> dict:
        """The sub-models' fp32 module names matched as whole name components when loading: transformers searches
        them anywhere in a weight's name, where T5's `wo` would also keep the Bridge-Net's `word_embeddings` in fp32."""
        plan = super()._get_dtype_plan(dtype)
        return {rf"(?:^|\.){name}(?:\.|$)" if name.isidentifier() else name: kept for name, kept in plan.items()}

    def _set_gradient_checkpointing(self, enable: bool = True, **kwargs):
        """Also reaches the frozen towers: `train` sets their checkpointed layers' mode (`MintAudioBridgeMixin.train`)."""
        super()._set_gradient_checkpointing(enable=enable, **kwargs)
        self.train(self.training)

    def freeze_pretrained_parts(self):
        """The audio tower and the LLM (with its head) never train; the queries, Bridge-Net and heads do."""
        for module in self.modules():
            if isinstance(module, MintAudioBridgeMixin):
                module.freeze_audio_tower()
            if isinstance(module, MintModel):
                module.freeze_language_model()
        if isinstance(getattr(self, "lm_head", None), nn.Module):
            self.lm_head.requires_grad_(False)
            freeze_retrieval_heads(self)

    @torch.no_grad()
    def _init_weights(self, module):
        """transformers' `initialization` helpers leave a tensor loaded from a checkpoint as it is, so a module that
        gains a parameter (the window positions beside trained queries) keeps the rest."""
        std = self.config.initializer_range
        if isinstance(module, MintQueryTokens):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.window_positions is not None:  # zero: a bridge trained without them reads the same
                init.zeros_(module.window_positions)
            if module.context_projection is not None:  # zero, for the same reason
                init.zeros_(module.context_projection)
        elif isinstance(module, MintBridgeModel):
            init.copy_(module.embeddings.position_ids, torch.arange(module.embeddings.position_ids.shape[-1])[None])
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, MintBridgeLMHead):
            init.zeros_(module.bias)
        if isinstance(getattr(module, "temperature", None), nn.Parameter):
            init.constant_(module.temperature, 0.07)
        if isinstance(getattr(module, "ctc_blank", None), nn.Parameter):  # the token prompt's CTC head
            init.zeros_(module.ctc_blank)
            init.constant_(module.ctc_log_scale, 1.5)
        if isinstance(module, MintCTCContextLayer):  # a new layer is the identity
            init.normal_(module.conv.weight, mean=0.0, std=std)
            init.zeros_(module.conv.bias)
            init.zeros_(module.out_weight)
            init.zeros_(module.out_bias)


# The towers `AudioEncoderFacts.encoder_class` names: an encoder alone where `AutoModel` would build more.
AUDIO_TOWER_CLASSES = {"WhisperEncoder": WhisperEncoder}


def _build_audio_tower(audio_config) -> nn.Module:
    """The encoder alone: Whisper's decoder is never used, the other supported families are encoders already."""
    name = audio_encoder_facts(audio_config).encoder_class
    return AutoModel.from_config(audio_config) if name is None else AUDIO_TOWER_CLASSES[name](audio_config)


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX), where bf16 beats fp32."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def resolve_audio_tower_dtype(name: str | None) -> torch.dtype | None:
    """`config.audio_tower_dtype` as a torch dtype; `None` keeps the tower as it is."""
    if name == "auto":
        return torch.bfloat16 if native_bf16_cpu() else torch.float32
    return None if name is None else getattr(torch, name)


def split_windows(frames: torch.Tensor, frame_mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(B, L, D)` frames and `(B, L)` mask cut into windows of `size` frames, the last padded (masked):
    `(B * n, size, D)`, `(B * n, size)` and `n`, the windows per clip."""
    batch, length, width = frames.shape
    n = -(-length // size)
    frames = nn.functional.pad(frames, (0, 0, 0, n * size - length)).reshape(batch * n, size, width)
    frame_mask = nn.functional.pad(frame_mask, (0, n * size - length)).reshape(batch * n, size)
    return frames, frame_mask, n


CONNECTOR_MODULES = ("query_tokens", "bridge", "language_projection", "multi_modal_projector", "label_head")


def warn_if_connector_frozen(model: nn.Module):
    """Training with the connector (queries, Bridge-Net, projection) frozen while other weights train is almost always
    a PEFT wrap that froze it: `get_peft_model` with LLM target modules trains the adapters alone."""
    connector = [getattr(model, name) for name in CONNECTOR_MODULES if getattr(model, name, None) is not None]
    if not connector or any(p.requires_grad for part in connector for p in part.parameters()):
        return
    if any(p.requires_grad for p in model.parameters()):
        import warnings

        present = [name for name in CONNECTOR_MODULES if getattr(model, name, None) is not None]
        warnings.warn(
            "MINT is training with its Bridge-Net frozen: only other weights (a PEFT adapter?) get gradients. With "
            f"PEFT, add modules_to_save={present} to the LoraConfig (mint.training.sft.mint_lora_config does) to train "
            "the connector too.", stacklevel=2,
        )


class MintAudioBridgeMixin:
    """Audio tower -> learned queries -> Bridge-Net, shared by the LLM model and the stage-1 model."""

    def _build_audio_bridge(self, config: MintConfig):
        self.audio_tower = _build_audio_tower(config.audio_config)
        window = config.bridge_window_frames if config.window_position_embeddings else None
        self.query_tokens = MintQueryTokens(config.num_query_tokens, config.bridge_config.hidden_size, window,
                                            audio_hidden_size(config.audio_config), config.clip_context)
        self.bridge = MintBridgeModel(config.bridge_config)

    def freeze_audio_tower(self):
        """Frozen and in eval mode, in `config.audio_tower_dtype` when one is set (`encode_audio` casts its input
        to the tower's dtype and the bridge casts the frames back to its own)."""
        self.audio_tower.requires_grad_(False)
        self.audio_tower.eval()
        dtype = resolve_audio_tower_dtype(getattr(self.config, "audio_tower_dtype", None))
        if dtype is not None:
            self.audio_tower.to(dtype)

    def train(self, mode: bool = True):
        """Frozen towers (audio, and the LLM where there is one) stay in eval mode, no dropout, while the bridge
        trains. Under gradient checkpointing their checkpointed layers alone follow `mode`: the backward pass runs
        through the frozen LLM, whose activations are what checkpointing saves, and a layer only checkpoints in
        training mode; the modules inside it (dropout, attention) stay in eval mode."""
        super().train(mode)
        if mode:
            warn_if_connector_frozen(self)
        for name in ("audio_tower", "language_model"):
            tower = getattr(self, name, None)
            if tower is not None and not any(p.requires_grad for p in tower.parameters()):
                tower.eval()
        self.checkpoint_frozen_towers()
        return self

    def checkpoint_frozen_towers(self):
        """The checkpointed layers of the towers kept in eval mode follow the model's mode, and only theirs."""
        for name in ("audio_tower", "language_model"):
            tower = getattr(self, name, None)
            if tower is not None and not tower.training:
                for layer in tower.modules():
                    if isinstance(layer, GradientCheckpointingLayer):
                        layer.training = self.training and layer.gradient_checkpointing

    def _frames_per_window(self, valid: torch.Tensor, window_frames: int) -> torch.Tensor:
        """Number of encoder frames produced by `valid` input frames/samples of one window."""
        facts = self.config.audio_encoder_facts
        if facts.output_frames == "strided":
            return facts.strided_frames(valid)
        if facts.output_frames == "whole_window":
            return torch.where(valid > 0, window_frames, 0)
        return self.audio_tower._get_feat_extract_output_lengths(valid).to(valid.dtype)

    def encode_audio(
        self, input_features: torch.Tensor, feature_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the audio tower window by window and concatenate the frames of each clip.

        Args:
            input_features (`torch.Tensor`): `(B, n_mels, T)` for Whisper, `(B, T, n_mels)` for AST, `(B, T)`
                waveform for the wav2vec2 family, with `T` a multiple of `config.audio_window_size`.
            feature_attention_mask (`torch.Tensor`, *optional*): `(B, T)`, 1 on real audio.

        Returns:
            frames `(B, W * F, D)` and their mask `(B, W * F)`.
        """
        output, frame_mask = self._encode_windows(input_features, feature_attention_mask)
        return output.last_hidden_state, frame_mask

    def _encode_windows(self, input_features, feature_attention_mask=None, **tower_kwargs):
        """`encode_audio` as the tower's output (frames as `last_hidden_state`; hidden states laid out like the
        frames, attentions per encoded window) and the frame mask."""
        window = self.config.audio_window_size
        axis = self.config.audio_time_axis % input_features.dim()
        length = input_features.shape[axis]
        if length % window != 0:
            raise ValueError(
                f"input_features has {length} frames along time, not a multiple of the encoder window ({window}); "
                "prepare audio with MintProcessor"
            )
        batch, n_windows = input_features.shape[0], length // window
        if n_windows > self.config.max_audio_windows:
            raise ValueError(
                f"audio spans {n_windows} encoder windows, more than max_audio_windows={self.config.max_audio_windows}"
            )
        # [B, ..., W*win] -> [B*W, ..., win]
        moved = input_features.movedim(axis, -1)
        windows = moved.reshape(*moved.shape[:-1], n_windows, window).movedim(-2, 1)
        windows = windows.reshape(batch * n_windows, *moved.shape[1:-1], window).movedim(-1, axis)
        if feature_attention_mask is None:
            valid = torch.full((batch * n_windows,), window, device=input_features.device, dtype=torch.long)
        else:
            valid = feature_attention_mask.reshape(batch * n_windows, window).long().sum(-1)

        keep = valid > 0  # windows that are all padding are not encoded
        kwargs = {}
        if self.config.audio_encoder_facts.takes_attention_mask:
            kwargs["attention_mask"] = (torch.arange(window, device=valid.device)[None] < valid[keep, None]).long()
        tower_dtype = next(self.audio_tower.parameters()).dtype
        tower = self.audio_tower(windows[keep].to(tower_dtype), return_dict=True, **kwargs, **tower_kwargs)
        frames_per_window = tower.last_hidden_state.shape[1]

        def per_clip(hidden):  # [K, F, D] -> [B, W * F, D], all-padding windows as zeros
            frames = hidden.new_zeros(batch * n_windows, frames_per_window, hidden.shape[-1])
            frames[keep] = hidden
            return frames.reshape(batch, n_windows * frames_per_window, -1)

        n_valid = self._frames_per_window(valid, frames_per_window).clamp(max=frames_per_window)
        frame_mask = torch.arange(frames_per_window, device=valid.device)[None] < n_valid[:, None]
        hidden_states = getattr(tower, "hidden_states", None)
        output = BaseModelOutputWithPooling(
            last_hidden_state=per_clip(tower.last_hidden_state),
            hidden_states=tuple(per_clip(h) for h in hidden_states) if hidden_states is not None else None,
            attentions=getattr(tower, "attentions", None),
        )
        return output, frame_mask.reshape(batch, n_windows * frames_per_window).long()

    def audio_frames(
        self,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder frames `(B, F, D)` and mask: run the frozen tower, or take `audio_frames` cached from it."""
        output, frame_mask = self.audio_tower_output(input_features, feature_attention_mask, audio_frames, audio_frame_mask)
        return output.last_hidden_state, frame_mask

    def audio_tower_output(
        self, input_features=None, feature_attention_mask=None, audio_frames=None, audio_frame_mask=None, **tower_kwargs
    ) -> tuple[BaseModelOutputWithPooling, torch.Tensor]:
        """`audio_frames` with the tower's output around them: `output_hidden_states` / `output_attentions` in
        `tower_kwargs` reach the tower (frames from a cache have none)."""
        if audio_frames is not None:
            if input_features is not None:
                raise ValueError("pass either input_features or precomputed audio_frames, not both")
            if audio_frame_mask is None:
                audio_frame_mask = torch.ones(audio_frames.shape[:2], dtype=torch.long, device=audio_frames.device)
            output = BaseModelOutputWithPooling(last_hidden_state=audio_frames)
        elif input_features is None:
            raise ValueError("no audio: pass input_features (or precomputed audio_frames)")
        else:
            output, audio_frame_mask = self._encode_windows(input_features, feature_attention_mask, **tower_kwargs)
        output.last_hidden_state = self.mask_frames(output.last_hidden_state, audio_frame_mask)
        return output, audio_frame_mask

    def mask_frames(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """SpecAugment on the encoder frames, in training with `config.apply_spec_augment`: spans of frames (within
        each clip's audio) and spans of channels are zeroed, as Whisper and wav2vec2 mask theirs. A frozen encoder
        whose frames come from a cache leaves no earlier place to augment; the cached tensor is not modified."""
        config = self.config
        if not (self.training and config.apply_spec_augment):
            return frames
        batch, length, width = frames.shape
        if config.mask_time_prob > 0:
            spans = _compute_mask_indices((batch, length), config.mask_time_prob, config.mask_time_length,
                                          frame_mask, config.mask_time_min_masks)
            frames = frames.masked_fill(torch.as_tensor(spans, device=frames.device)[..., None], 0)
        if config.mask_feature_prob > 0:
            spans = _compute_mask_indices((batch, width), config.mask_feature_prob, config.mask_feature_length,
                                          min_masks=config.mask_feature_min_masks)
            frames = frames.masked_fill(torch.as_tensor(spans, device=frames.device)[:, None], 0)
        return frames

    def bridge_query_output(
        self,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.Tensor | None = None,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The bridge's outputs at the query positions: `(B, Nq, H)`, or with a windowed bridge
        (`config.bridge_window_frames`) `(sum of windows x Nq, H)` in clip and time order."""
        frames, frame_mask = self.audio_frames(input_features, feature_attention_mask, audio_frames, audio_frame_mask)
        return self._bridge_queries(frames, frame_mask, bridge_input_ids, bridge_attention_mask)

    def _bridge_queries(self, frames, frame_mask, bridge_input_ids=None, bridge_attention_mask=None) -> torch.Tensor:
        if self.config.bridge_window_frames:
            return self._windowed_query_output(frames, frame_mask, bridge_input_ids, bridge_attention_mask)
        return self._query_output(frames, frame_mask, bridge_input_ids, bridge_attention_mask)

    def clip_query_output(self, frames, frame_mask) -> torch.Tensor:
        """One `(B, Nq, H)` unimodal query output per clip, for retrieval and the contrastive target. A windowed
        Bridge-Net reads each window as in generation; each query's outputs are then averaged over the clip's
        windows that hold audio, so a clip has Nq embeddings whatever its duration."""
        if not self.config.bridge_window_frames:
            return self._query_output(frames, frame_mask)
        context = self.query_tokens.clip_context(frames, frame_mask)
        windows, window_mask, n = split_windows(frames, frame_mask, self.config.bridge_window_frames)
        keep = window_mask.any(-1)
        context = None if context is None else context.repeat_interleave(n, dim=0)[keep]
        out = self._query_output(self.query_tokens.locate(windows[keep]), window_mask[keep], context=context)
        per_window = out.new_zeros(keep.shape[0], *out.shape[1:]).index_put((keep.nonzero()[:, 0],), out)
        counts = keep.reshape(frames.shape[0], n).sum(1).clamp(min=1).to(out.dtype)
        return per_window.reshape(frames.shape[0], n, *out.shape[1:]).sum(1) / counts[:, None, None]

    def _windowed_query_output(self, frames, frame_mask, bridge_input_ids=None, bridge_attention_mask=None):
        """Nq queries per window of `bridge_window_frames` frames (SALMONN style): the order of events survives and
        the soft prompt grows with the duration. Windows with no audio are dropped."""
        context = self.query_tokens.clip_context(frames, frame_mask)
        frames, frame_mask, n = split_windows(frames, frame_mask, self.config.bridge_window_frames)
        keep = frame_mask.any(-1)
        if bridge_input_ids is not None:
            bridge_input_ids = bridge_input_ids.repeat_interleave(n, dim=0)[keep]
            if bridge_attention_mask is not None:
                bridge_attention_mask = bridge_attention_mask.repeat_interleave(n, dim=0)[keep]
        if context is not None:
            context = context.repeat_interleave(n, dim=0)[keep]
        out = self._query_output(self.query_tokens.locate(frames[keep]), frame_mask[keep], bridge_input_ids,
                                 bridge_attention_mask, context)
        return out.reshape(-1, out.shape[-1])

    def _query_output(self, frames, frame_mask, bridge_input_ids=None, bridge_attention_mask=None,
                      context=None) -> torch.Tensor:
        batch = frames.shape[0]
        queries = self.query_tokens(batch)
        if context is not None:
            queries = queries + context[:, None].to(queries.dtype)
        attention_mask = None
        if bridge_input_ids is not None:
            if bridge_attention_mask is None:
                bridge_attention_mask = torch.ones_like(bridge_input_ids)
            query_mask = bridge_attention_mask.new_ones(batch, queries.shape[1])
            attention_mask = torch.cat([query_mask, bridge_attention_mask], dim=1)
        out = self.bridge(
            input_ids=bridge_input_ids,
            attention_mask=attention_mask,
            query_embeds=queries,
            encoder_hidden_states=frames.to(queries.dtype),
            encoder_attention_mask=frame_mask,
        )
        return out.last_hidden_state[:, : queries.shape[1]]


class MintPooledProjector(nn.Module):
    """The dense baseline MINT is measured against (LLaVA / Qwen2-Audio style): every `bridge_window_frames` encoder
    frames are averaged and a two-layer MLP maps them to one LLM token, so the prompt grows with the duration."""

    def __init__(self, config: MintConfig):
        super().__init__()
        self.stride = config.bridge_window_frames
        width = config.text_config.hidden_size
        self.linear_1 = nn.Linear(audio_hidden_size(config.audio_config), width)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(width, width)

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """`(sum of windows, D_llm)` in clip and time order; windows with no audio are dropped."""
        frames, mask, _ = split_windows(frames, frame_mask, self.stride)
        mask = mask[..., None].to(frames.dtype)
        counts = mask.sum(1)
        keep = counts[:, 0] > 0
        pooled = (frames * mask).sum(1)[keep] / counts[keep]
        return self.linear_2(self.act(self.linear_1(pooled.to(self.linear_1.weight.dtype))))


class MintCTCContextLayer(nn.Module):
    """LayerNorm -> linear -> GLU -> depthwise convolution over audio tokens -> GELU -> linear, added to its input
    (a Conformer convolution module). The output projection (`out_weight`, `out_bias`) starts at zero, so a new layer
    is the identity."""

    def __init__(self, hidden_size: int, kernel_size: int = 15):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.gate = nn.Linear(hidden_size, 2 * hidden_size)
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=kernel_size // 2, groups=hidden_size)
        self.out_weight = nn.Parameter(torch.zeros(hidden_size, hidden_size))
        self.out_bias = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = nn.functional.glu(self.gate(self.norm(tokens)), dim=-1) * mask[..., None]  # padding reads as silence
        x = nn.functional.gelu(self.conv(x.transpose(1, 2)).transpose(1, 2))
        return tokens + nn.functional.linear(x, self.out_weight.to(x.dtype), self.out_bias.to(x.dtype))


class MintCTCContext(nn.Module):
    """`config.ctc_context_layers` convolution layers over a clip's projected audio tokens `(B, T, D_llm)`, in time
    order, before the CTC head reads them for decoding (`audio_token_log_posteriors`): a window's queries hear 0.24 s,
    while a word piece spans windows. The soft prompt the LLM reads does not pass through them."""

    def __init__(self, config: MintConfig):
        super().__init__()
        self.layers = nn.ModuleList(MintCTCContextLayer(config.text_config.hidden_size)
                                    for _ in range(config.ctc_context_layers))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            tokens = layer(tokens, mask)
        return tokens


class MintModel(MintAudioBridgeMixin, MintPreTrainedModel):
    """Audio tower -> Bridge-Net -> `language_projection` -> soft prompt scattered into the LLM's input embeddings.
    With `config.connector_type == "pooled"` the dense baseline (`multi_modal_projector`) replaces the bridge.

    The audio tower and the LLM are frozen at construction; the queries, the bridge and the projection train.
    """

    def __init__(self, config: MintConfig):
        super().__init__(config)
        if config.connector_type == "pooled":
            self.audio_tower = _build_audio_tower(config.audio_config)
            self.multi_modal_projector = MintPooledProjector(config)
        else:
            self._build_audio_bridge(config)
            self.language_projection = nn.Linear(config.bridge_config.hidden_size, config.text_config.hidden_size)
            if config.token_prompt_mix > 0:
                self.ctc_blank = nn.Parameter(torch.zeros(config.text_config.hidden_size))
                self.ctc_log_scale = nn.Parameter(torch.tensor(1.5))
            if config.ctc_context_layers:
                self.ctc_context = MintCTCContext(config)
            if config.label_prompt_tokens:
                self.label_head = nn.Linear(config.bridge_config.hidden_size, config.num_labels)
                # each label's first word pieces in the LLM vocabulary, padded (`MintProcessor.label_token_ids`)
                self.register_buffer("label_token_ids", torch.zeros(config.num_labels, config.label_prompt_tokens,
                                                                    dtype=torch.long))
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()
        self.freeze_audio_tower()
        self.freeze_language_model()

    # ---- freezing -------------------------------------------------------------------------------------------
    def freeze_language_model(self):
        self.language_model.requires_grad_(False)
        self.language_model.eval()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    @can_return_tuple
    def get_audio_features(
        self,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.Tensor | None = None,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """The soft prompt as `pooler_output` `(B, Nq, D_llm)`: the bridge's query outputs, projected to the LLM
        width (transformers' v5 form of `get_*_features`). `last_hidden_state` holds the encoder frames the bridge
        read `(B, F, D_audio)`; `hidden_states` / `attentions` are the audio tower's, when asked for.

        `bridge_input_ids` (the instruction in the bridge tokenizer) shares self-attention with the queries, so
        what the queries extract depends on the task. `audio_frames` replace `input_features` when the frozen
        encoder's outputs come from a cache. A pooled connector has no place for the instruction and ignores it.
        """
        flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        output, frame_mask = self.audio_tower_output(
            input_features, feature_attention_mask, audio_frames, audio_frame_mask,
            **{k: v for k, v in flags.items() if v is not None},
        )
        frames = output.last_hidden_state
        if self.config.connector_type == "pooled":
            output.pooler_output = self.multi_modal_projector(frames, frame_mask)
        else:
            query_output = self._bridge_queries(frames, frame_mask, bridge_input_ids, bridge_attention_mask)
            output.pooler_output = self.mix_token_prompt(self.language_projection(query_output))
            if self.config.label_prompt_tokens:
                output.pooler_output = self.append_label_prompt(output.pooler_output, frames, frame_mask)
        return output

    def label_logits(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """`(B, num_labels)`: the label classifier on each clip's query outputs, averaged over queries and windows
        (no instruction, as retrieval reads them)."""
        pooled = self.clip_query_output(frames, frame_mask).mean(1)
        return self.label_head(pooled.to(next(self.label_head.parameters()).dtype))

    def label_prompt(self, logits: torch.Tensor) -> torch.Tensor:
        """`(B, label_prompt_tokens, D_llm)`: each label's own LLM token embeddings weighted by the classifier's
        posteriors, so a sure classifier hands the LLM the label as text and an unsure one a faint blend."""
        embeddings = self.get_input_embeddings()(self.label_token_ids)
        posteriors = logits.float().softmax(-1).to(embeddings.dtype)
        return torch.einsum("bn,nld->bld", posteriors, embeddings)

    def append_label_prompt(self, audio_tokens: torch.Tensor, frames: torch.Tensor, frame_mask: torch.Tensor):
        """The windowed soft prompt `(sum of windows x Nq, D_llm)` with each clip's label prompt after its own
        audio tokens, as the processor counts the placeholders."""
        _, window_mask, n = split_windows(frames, frame_mask, self.config.bridge_window_frames)
        counts = window_mask.any(-1).reshape(frames.shape[0], n).sum(1) * self.config.num_query_tokens
        labels = self.label_prompt(self.label_logits(frames, frame_mask)).to(audio_tokens.dtype)
        parts = audio_tokens.split(counts.tolist())
        return torch.cat([token for clip, label in zip(parts, labels) for token in (clip, label)])

    def token_logits(self, projected: torch.Tensor) -> torch.Tensor:
        """CTC logits `(..., V + 1)` of projected audio tokens over the LLM vocabulary and a blank (last), read
        through the LLM's output embeddings with the learned scale."""
        output_embeddings = self.language_model.get_input_embeddings().weight
        if self.config.is_encoder_decoder or not self.config.tie_word_embeddings:
            raise ValueError("the token prompt reads the soft prompt through tied input/output embeddings; this LLM "
                             "does not tie them")
        weight = torch.cat([output_embeddings, self.ctc_blank[None]]).to(projected.dtype)
        return projected @ weight.T * self.ctc_log_scale.exp()

    def token_posteriors(self, projected: torch.Tensor) -> torch.Tensor:
        """CTC posteriors `(..., V + 1)` of projected audio tokens (`token_logits`), the blank last."""
        return self.token_logits(projected).float().softmax(-1)

    def audio_token_log_posteriors(
        self,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`(B, T, V + 1)`: the CTC head's log posteriors over the LLM vocabulary and the blank (last) for each
        clip's audio tokens, the bridge given no instruction (as CTC alignment trains it). A clip with fewer tokens
        than the longest is padded with certain blanks (log 1 on the blank), which leave every CTC score as it was."""
        if not self.config.token_bags:
            raise ValueError("the CTC head's posteriors need the token prompt (token_prompt_mix > 0) on a windowed "
                             "bridge")
        frames, frame_mask = self.audio_frames(input_features, feature_attention_mask, audio_frames, audio_frame_mask)
        tokens, mask = self.ctc_tokens(frames, frame_mask)
        log_posteriors = self.token_logits(tokens).float().log_softmax(-1)
        log_posteriors[~mask] = float("-inf")
        log_posteriors[..., -1][~mask] = 0.0
        return log_posteriors

    def ctc_tokens(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the CTC head reads for decoding: each clip's projected audio tokens `(B, T, D_llm)` in time order,
        through `ctc_context` where the model has one, and their mask `(B, T)` (a shorter clip is padded)."""
        _, window_mask, n = split_windows(frames, frame_mask, self.config.bridge_window_frames)
        counts = (window_mask.any(-1).reshape(frames.shape[0], n).sum(1) * self.config.num_query_tokens).tolist()
        projected = self.language_projection(self._bridge_queries(frames, frame_mask))
        tokens = nn.utils.rnn.pad_sequence(list(projected.split(counts)), batch_first=True)
        mask = torch.arange(tokens.shape[1], device=tokens.device) < torch.tensor(counts, device=tokens.device)[:, None]
        if self.config.ctc_context_layers:
            tokens = self.ctc_context(tokens, mask.to(tokens.dtype))
        return tokens, mask

    def get_audio_token_bags(
        self,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`(B, V)`: how often the CTC head hears each of the LLM's word pieces in each clip (its posteriors summed
        over the clip's audio tokens, the blank left out). Compared by cosine with a text's word-piece counts
        (`get_text_token_bags`), it ranks texts and labels by what the bridge spells, with no stage-1 heads. The
        bridge reads no instruction here, as in CTC alignment."""
        log_posteriors = self.audio_token_log_posteriors(input_features, feature_attention_mask, audio_frames,
                                                         audio_frame_mask)
        return log_posteriors[..., :-1].exp().sum(1)

    def get_text_token_bags(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None):
        """`(B, V)` counts of each LLM word piece in each text (LLM tokenizer ids; padding masked out), the text
        side of `get_audio_token_bags`."""
        vocabulary = self.language_model.get_input_embeddings().weight.shape[0]
        weights = torch.ones_like(input_ids, dtype=torch.float) if attention_mask is None else attention_mask.float()
        return weights.new_zeros(input_ids.shape[0], vocabulary).scatter_add_(1, input_ids, weights)

    def mix_token_prompt(self, projected: torch.Tensor) -> torch.Tensor:
        """`(1 - m) * projected + m * posteriors @ E` with `m = config.token_prompt_mix` (E: the LLM's input
        embeddings; the blank contributes nothing), so the frozen LLM reads its own token embeddings where the head
        is sure and little where it is not."""
        mix = self.config.token_prompt_mix
        if not mix:
            return projected
        embeddings = self.language_model.get_input_embeddings().weight
        tokens = self.token_posteriors(projected)[..., :-1].to(embeddings.dtype) @ embeddings
        return (1 - mix) * projected + mix * tokens.to(projected.dtype)

    def get_placeholder_mask(self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """Boolean `(B, L)` mask of the audio placeholder positions."""
        if self.config.audio_token_index is None:
            raise ValueError("config.audio_token_index is not set: the model does not know where audio goes")
        if input_ids is not None:
            return input_ids == self.config.audio_token_index
        token = torch.tensor(self.config.audio_token_index, device=inputs_embeds.device)
        return (inputs_embeds == self.get_input_embeddings()(token)).all(-1)

    def merge_audio(self, input_ids, inputs_embeds, audio_embeds) -> torch.Tensor:
        """Scatter the soft prompt into the placeholder positions, checking that the counts match."""
        mask = self.get_placeholder_mask(input_ids, inputs_embeds)
        n_tokens = int(mask.sum())
        n_needed = audio_embeds.shape[0] if audio_embeds.dim() == 2 else audio_embeds.shape[0] * audio_embeds.shape[1]
        if n_tokens != n_needed:
            per_clip = "per window" if self.config.bridge_window_frames else "per clip"
            raise ValueError(
                f"audio placeholders and audio clips do not match: the text has {n_tokens} audio tokens but the "
                f"audio needs {n_needed} ({self.config.num_query_tokens} {per_clip})"
            )
        audio_embeds = audio_embeds.to(inputs_embeds.device, inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(mask[..., None], audio_embeds)

    def embed_inputs(
        self,
        input_ids=None,
        inputs_embeds=None,
        input_features=None,
        feature_attention_mask=None,
        bridge_input_ids=None,
        bridge_attention_mask=None,
        audio_frames=None,
        audio_frame_mask=None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """LLM input embeddings with the audio soft prompt in place (the prompt side of the model)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        if input_features is None and audio_frames is None:
            if input_ids is not None and self.config.audio_token_index is not None:
                n = int((input_ids == self.config.audio_token_index).sum())
                if n:  # read as text, as transformers' multimodal models do; most likely a forgotten clip
                    warnings.warn(f"input_ids contain {n} audio placeholder tokens but no input_features were given: "
                                  "they are read as text", stacklevel=3)
            return inputs_embeds, None
        audio_embeds = self.get_audio_features(
            input_features, feature_attention_mask, bridge_input_ids, bridge_attention_mask, audio_frames,
            audio_frame_mask, return_dict=True,
        ).pooler_output
        return self.merge_audio(input_ids, inputs_embeds, audio_embeds), audio_embeds

    def encode_prompt(
        self, input_ids=None, attention_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
        **audio_inputs,
    ) -> BaseModelOutput:
        """Encoder-decoder LLMs (T5): run the LLM encoder over the prompt with the audio in place."""
        inputs_embeds, _ = self.embed_inputs(input_ids=input_ids, inputs_embeds=inputs_embeds, **audio_inputs)
        return self.language_model.get_encoder()(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True,
        )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs=None,
        use_cache: bool | None = None,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MintModelOutputWithPast:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(B, L)`): LLM prompt with `num_query_tokens` audio placeholder
                tokens per clip (the processor expands `<audio>`).
            input_features (`torch.Tensor`): audio encoder input, see [`MintModel.encode_audio`]. Only the first
                forward of a generation needs it.
            feature_attention_mask (`torch.Tensor` of shape `(B, T)`, *optional*): 1 on real audio.
            bridge_input_ids / bridge_attention_mask (`torch.LongTensor` of shape `(B, S)`, *optional*): the
                instruction in the bridge tokenizer.
            decoder_input_ids / decoder_attention_mask / encoder_outputs: encoder-decoder LLMs only.
            audio_frames / audio_frame_mask (`(B, F, D)` / `(B, F)`, *optional*): the frozen audio tower's outputs
                from a feature cache, instead of `input_features`.
        """
        audio = dict(
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            bridge_input_ids=bridge_input_ids,
            bridge_attention_mask=bridge_attention_mask,
            audio_frames=audio_frames,
            audio_frame_mask=audio_frame_mask,
        )
        if self.config.is_encoder_decoder:
            audio_embeds = None
            if encoder_outputs is None:
                inputs_embeds, audio_embeds = self.embed_inputs(input_ids, inputs_embeds, **audio)
                flags = {k: kwargs[k] for k in ("output_attentions", "output_hidden_states") if k in kwargs}
                encoder_outputs = self.language_model.get_encoder()(
                    inputs_embeds=inputs_embeds, attention_mask=attention_mask, return_dict=True, **flags
                )
            elif not isinstance(encoder_outputs, BaseModelOutput):
                encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
            outputs = self.language_model(
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask,
                encoder_outputs=encoder_outputs,
                past_key_values=past_key_values,
                use_cache=use_cache,
                return_dict=True,
                **kwargs,
            )
            return MintModelOutputWithPast(
                last_hidden_state=outputs.last_hidden_state,
                past_key_values=outputs.past_key_values,
                decoder_hidden_states=outputs.decoder_hidden_states,
                decoder_attentions=outputs.decoder_attentions,
                cross_attentions=outputs.cross_attentions,
                encoder_last_hidden_state=encoder_outputs.last_hidden_state,
                encoder_hidden_states=encoder_outputs.hidden_states,
                encoder_attentions=encoder_outputs.attentions,
                audio_hidden_states=audio_embeds,
            )

        # With a filled cache and no audio given, the tokens are text: a decoding step, or a new turn continuing from
        # `past_key_values` whose audio the cache already holds.
        cached = past_key_values is not None and past_key_values.get_seq_length() > 0
        if not cached or input_features is not None or audio_frames is not None:
            inputs_embeds, audio_embeds = self.embed_inputs(input_ids, inputs_embeds, **audio)
        else:
            inputs_embeds = self.get_input_embeddings()(input_ids) if inputs_embeds is None else inputs_embeds
            audio_embeds = None
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        return MintModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            audio_hidden_states=audio_embeds,
        )


AUDIO_INPUTS = ("input_features", "feature_attention_mask", "bridge_input_ids", "bridge_attention_mask", "audio_frames",
                "audio_frame_mask")


class MintForConditionalGeneration(MintPreTrainedModel, GenerationMixin):
    """MINT with the LLM's head: audio + instruction in, text out. Works with decoder-only LLMs and with T5."""

    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: MintConfig):
        super().__init__(config)
        self.model = MintModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        embed = "shared" if config.is_encoder_decoder else "embed_tokens"
        self._tied_weights_keys = {"lm_head.weight": f"model.language_model.{embed}.weight"}
        if config.retrieval_heads:
            add_retrieval_heads(self, config)
        self.post_init()
        self.lm_head.requires_grad_(False)
        freeze_retrieval_heads(self)

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    def get_encoder(self, modality: str | None = None):
        if modality == "audio":
            return self.model.audio_tower
        return super().get_encoder(modality)

    @property
    def audio_tower(self):
        return self.model.audio_tower

    @property
    def bridge(self):
        return getattr(self.model, "bridge", None)

    @property
    def language_model(self):
        return self.model.language_model

    def get_audio_features(self, *args, **kwargs):
        return self.model.get_audio_features(*args, **kwargs)

    def get_audio_token_bags(self, *args, **kwargs):
        return self.model.get_audio_token_bags(*args, **kwargs)

    def get_text_token_bags(self, *args, **kwargs):
        return self.model.get_text_token_bags(*args, **kwargs)

    def _shift_right(self, labels: torch.LongTensor) -> torch.LongTensor:
        """Decoder inputs for teacher forcing in T5: start token, then the labels shifted by one."""
        text = self.config.text_config
        shifted = labels.new_full(labels.shape, text.decoder_start_token_id)
        shifted[:, 1:] = labels[:, :-1]
        return shifted.masked_fill(shifted == -100, text.pad_token_id)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs=None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
        logits_at_labels: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MintCausalLMOutputWithPast:
        r"""
        Args:
            labels (`torch.LongTensor` of shape `(B, L)`, *optional*): next-token targets aligned with `input_ids`
                (decoder-only; -100 is ignored) or the target sequence (T5). Gives `loss`.
            logits_to_keep (`int` or `torch.Tensor`, *optional*): compute logits only for the last positions.
            logits_at_labels (`bool`, defaults to `False`): decoder-only training, opt-in: run the LM head only where
                there is a next-token target (`labels[:, 1:] != -100`), not on the prompt and the audio tokens. The
                loss is the same; `logits` is then `(n_targets, V)`, the targets' rows in order. About a fifth of a
                stage-2 step is the 49k-way head on every position (`python -m mint.bench.profile`).

        The other arguments are those of [`MintModel.forward`].
        """
        if self.config.is_encoder_decoder and labels is not None and decoder_input_ids is None:
            decoder_input_ids = self._shift_right(labels)
        outputs = self.model(
            input_ids=input_ids,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            bridge_input_ids=bridge_input_ids,
            bridge_attention_mask=bridge_attention_mask,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            use_cache=use_cache,
            audio_frames=audio_frames,
            audio_frame_mask=audio_frame_mask,
            return_dict=True,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        passed_on = {k: v for k, v in outputs.items() if k not in ("last_hidden_state", "loss", "logits")}
        if logits_at_labels and labels is not None and not self.config.is_encoder_decoder:
            logits, loss = self._loss_at_labels(hidden_states, labels, **kwargs)
            return MintCausalLMOutputWithPast(loss=loss, logits=logits, **passed_on)
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            hidden_states = hidden_states[:, -logits_to_keep:]
        elif isinstance(logits_to_keep, torch.Tensor):
            hidden_states = hidden_states[:, logits_to_keep]
        if getattr(self.config.text_config, "scale_decoder_outputs", False):  # original T5 ties and rescales
            hidden_states = hidden_states * self.config.text_config.d_model**-0.5
        logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            vocab_size = self.config.text_config.vocab_size
            if self.config.is_encoder_decoder:
                loss = nn.functional.cross_entropy(
                    logits.float().reshape(-1, vocab_size), labels.to(logits.device).reshape(-1), ignore_index=-100
                )
            else:
                loss = self.loss_function(logits=logits, labels=labels, vocab_size=vocab_size, **kwargs)
        return MintCausalLMOutputWithPast(loss=loss, logits=logits, **passed_on)

    def _loss_at_labels(self, hidden_states: torch.Tensor, labels: torch.LongTensor, **kwargs):
        """`(logits, loss)` with the LM head applied to the target positions only (`logits_at_labels`)."""
        targets = labels[:, 1:].to(hidden_states.device)
        keep = targets != -100
        logits = self.lm_head(hidden_states[:, :-1][keep])  # [N, V]
        loss = self.loss_function(logits=logits, labels=None, vocab_size=self.config.text_config.vocab_size,
                                  shift_labels=targets[keep], **kwargs)
        return logits, loss

    def generate(self, *args, ctc_weight: float | None = None, ctc_candidates: int | None = None, **kwargs):
        """transformers' `generate`, with joint CTC/attention decoding where `ctc_weight` (or the generation config's
        `ctc_weight`) is above 0: the token prompt's CTC head scores each of the LLM's `ctc_candidates` (default 8)
        best next tokens against the clip's audio tokens (`MintCTCPrefixScorer`), in greedy and beam search alike."""
        config = kwargs.get("generation_config") or self.generation_config
        weight = getattr(config, "ctc_weight", 0.0) if ctc_weight is None else ctc_weight
        if not weight:
            return super().generate(*args, **kwargs)
        audio = {k: kwargs.get(k) for k in ("input_features", "feature_attention_mask", "audio_frames",
                                            "audio_frame_mask")}
        if audio["input_features"] is None and audio["audio_frames"] is None:
            raise ValueError("joint CTC decoding (ctc_weight > 0) scores answers against the audio: pass "
                             "input_features or audio_frames")
        with torch.no_grad():
            log_posteriors = self.model.audio_token_log_posteriors(**audio)
        candidates = ctc_candidates or getattr(config, "ctc_candidates", None) or 8
        scorer = MintCTCPrefixScorer(log_posteriors, weight, kwargs.get("eos_token_id") or config.eos_token_id,
                                     candidates)
        kwargs["logits_processor"] = LogitsProcessorList([*(kwargs.get("logits_processor") or []), scorer])
        return super().generate(*args, **kwargs)

    def _maybe_prepare_encoder_kwargs_for_generation(self, inputs_tensor, model_kwargs, model_input_name,
                                                      generation_config):
        """T5: `generate` encodes the prompt once, up front, with the audio in place; an assistant MINT model
        encodes its own here from the same inputs. The audio inputs stay in `model_kwargs` for such an assistant;
        the decoder steps ignore them once `encoder_outputs` exist."""
        if not self.config.is_encoder_decoder or model_kwargs.get("encoder_outputs") is not None:
            return super()._maybe_prepare_encoder_kwargs_for_generation(
                inputs_tensor, model_kwargs, model_input_name, generation_config
            )
        prompt = {"inputs_embeds" if model_input_name == "inputs_embeds" else "input_ids": inputs_tensor}
        audio = {k: model_kwargs[k] for k in AUDIO_INPUTS if model_kwargs.get(k) is not None}
        model_kwargs["encoder_outputs"] = self.model.encode_prompt(
            attention_mask=model_kwargs.get("attention_mask"), output_attentions=generation_config.output_attentions,
            output_hidden_states=generation_config.output_hidden_states, **prompt, **audio,
        )
        return model_kwargs

    def prepare_inputs_for_generation(self, input_ids, *args, **kwargs):
        """The audio goes with the forward that starts from an empty cache: the prompt's, and an assistant model's
        first one (which transformers would strip of its `input_features`). With a filled cache the new tokens are
        text: decoding steps, and a new turn continuing from `past_key_values`, which hold the audio already."""
        model_inputs = super().prepare_inputs_for_generation(input_ids, *args, **kwargs)
        if self.config.is_encoder_decoder:
            return model_inputs
        cache = model_inputs.get("past_key_values")
        with_audio = cache is None or cache.get_seq_length() == 0
        for key in AUDIO_INPUTS:
            if with_audio and kwargs.get(key) is not None:
                model_inputs[key] = kwargs[key]
            else:
                model_inputs.pop(key, None)
        return model_inputs


class MintAudioBridgeModel(MintAudioBridgeMixin, MintPreTrainedModel):
    """Audio tower, queries and Bridge-Net without an LLM: the stage-1 backbone. Its weights carry the same names
    as inside [`MintModel`], so a stage-1 checkpoint loads into [`MintForConditionalGeneration`]."""

    def __init__(self, config: MintConfig):
        super().__init__(config)
        self._build_audio_bridge(config)
        self.post_init()
        self.freeze_audio_tower()

    def get_input_embeddings(self):
        return self.bridge.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.bridge.set_input_embeddings(value)


class MintBridgeLMHead(nn.Module):
    """BERT-style prediction head for AGTG; the output matrix is the bridge's word embeddings (tied by use)."""

    def __init__(self, config: MintBridgeConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        hidden_states = self.layer_norm(nn.functional.gelu(self.dense(hidden_states)))
        return nn.functional.linear(hidden_states, word_embeddings, self.bias)


RETRIEVAL_HEAD_NAMES = ("audio_projection", "text_projection", "atm_head", "agtg_head", "temperature")


def add_retrieval_heads(model: nn.Module, config: MintConfig):
    """Stage 1's heads as attributes of `model`: their weights have the same names in the retrieval model and in a
    generation model that carries them (`config.retrieval_heads`), so both read one checkpoint."""
    hidden = config.bridge_config.hidden_size
    model.audio_projection = nn.Linear(hidden, config.projection_dim)
    model.text_projection = nn.Linear(hidden, config.projection_dim)
    model.atm_head = nn.Linear(hidden, 2)
    model.agtg_head = MintBridgeLMHead(config.bridge_config)
    model.temperature = nn.Parameter(torch.tensor(0.07))


def freeze_retrieval_heads(model: nn.Module):
    """In a generation model the heads are carried, not trained: the LLM's loss never reaches them."""
    for name in RETRIEVAL_HEAD_NAMES:
        if hasattr(model, name):
            getattr(model, name).requires_grad_(False)


class MintForAudioTextRetrieval(MintPreTrainedModel):
    """Stage 1, multi-target pre-training of the Bridge-Net on frozen audio features, no LLM loaded.

    Targets: audio-text contrastive (ATC, unimodal mask), audio-text matching (ATM, bidirectional mask, hard
    negatives from the ATC similarities) and audio-grounded text generation (AGTG, multimodal causal mask). Also the
    retrieval / zero-shot model: `get_audio_features`, `get_text_features`, `logits_per_audio`, `atm_scores`.
    """

    main_input_name = "input_ids"  # stage 1 trains on cached frames too, so the captions are what every batch has
    # A generation folder with `retrieval_heads` holds these weights beside the LLM's, which are not read here.
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\.", r"^model\.(language_model|language_projection|ctc_|label_)"]

    def __init__(self, config: MintConfig):
        super().__init__(config)
        if config.connector_type != "bridge":
            raise ValueError(f"retrieval needs the Bridge-Net, not a {config.connector_type} connector")
        self.model = MintAudioBridgeModel(config)
        add_retrieval_heads(self, config)
        self.post_init()
        self.model.freeze_audio_tower()

    @property
    def logit_temperature(self) -> torch.Tensor:
        return self.temperature.clamp(0.001, 0.5)

    def get_input_embeddings(self):
        return self.model.bridge.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.bridge.set_input_embeddings(value)

    @can_return_tuple
    def get_audio_features(
        self, input_features=None, feature_attention_mask=None, audio_frames=None, audio_frame_mask=None,
        output_hidden_states: bool | None = None, output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """Normalized query embeddings `(B, Nq, P)` from the unimodal (queries-only) pass, as `pooler_output`;
        `last_hidden_state` and the rest are the audio tower's, as in [`MintModel.get_audio_features`]."""
        flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        output, frame_mask = self.model.audio_tower_output(
            input_features, feature_attention_mask, audio_frames, audio_frame_mask,
            **{k: v for k, v in flags.items() if v is not None},
        )
        query_output = self.model.clip_query_output(output.last_hidden_state, frame_mask)
        output.pooler_output = nn.functional.normalize(self.audio_projection(query_output), dim=-1)
        return output

    @can_return_tuple
    def get_text_features(
        self, input_ids, attention_mask=None, output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """Normalized [CLS] embeddings `(B, P)` from the unimodal (text-only) pass, as `pooler_output`; the rest is
        the Bridge-Net's output."""
        flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        bridge = self.model.bridge(input_ids=input_ids, attention_mask=attention_mask, return_dict=True,
                                   **{k: v for k, v in flags.items() if v is not None})
        cls = bridge.last_hidden_state[:, 0]
        return BaseModelOutputWithPooling(
            last_hidden_state=bridge.last_hidden_state,
            pooler_output=nn.functional.normalize(self.text_projection(cls), dim=-1),
            hidden_states=bridge.hidden_states,
            attentions=bridge.attentions,
        )

    def _matching_logits(self, frames, frame_mask, input_ids, attention_mask) -> torch.Tensor:
        """ATM logits `(B, 2)`, averaged over the queries, for aligned audio/text pairs."""
        queries = self.model.query_tokens(frames.shape[0])
        mask = bridge_attention_mask(queries.shape[1], attention_mask, "bidirectional", queries.dtype)
        out = self.model.bridge(
            input_ids=input_ids, attention_mask=mask, query_embeds=queries,
            encoder_hidden_states=frames.to(queries.dtype), encoder_attention_mask=frame_mask,
        ).last_hidden_state
        return self.atm_head(out[:, : queries.shape[1]]).mean(dim=1)

    @torch.no_grad()
    def atm_scores(
        self, input_ids, input_features=None, attention_mask=None, feature_attention_mask=None,
        audio_frames=None, audio_frame_mask=None,
    ) -> torch.Tensor:
        """Match probability `(B,)` of each aligned (audio, text) pair, for re-ranking retrieval candidates."""
        frames, frame_mask = self.model.audio_frames(input_features, feature_attention_mask, audio_frames, audio_frame_mask)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self._matching_logits(frames, frame_mask, input_ids, attention_mask).softmax(-1)[:, 1]

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        audio_frames: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
        group_ids: torch.LongTensor | None = None,
        return_loss: bool = False,
        label_smoothing: float = 0.0,
        **kwargs,
    ) -> MintPretrainingOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(B, T)`): the paired texts in the bridge tokenizer ([CLS] first).
            input_features (`torch.Tensor`): audio, as for [`MintModel.encode_audio`]; or instead
            audio_frames / audio_frame_mask (`(B, F, D)` / `(B, F)`): the frozen encoder's outputs, from a cache.
            group_ids (`torch.LongTensor` of shape `(B,)`, *optional*): clip ids; texts of the same clip are never
                drawn as each other's hard negatives (clips with several captions).
            return_loss (`bool`, defaults to `False`): compute the three targets; otherwise only the similarities of
                every audio against every text (as CLAP does, so the batch sizes may differ).
            label_smoothing (`float`, defaults to 0): for the contrastive and generation targets.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        frames, frame_mask = self.model.audio_frames(input_features, feature_attention_mask, audio_frames, audio_frame_mask)
        batch = frames.shape[0]
        queries = self.model.query_tokens(batch)
        frames = frames.to(queries.dtype)

        # ATC: queries and text in separate (unimodal) passes; ATM and AGTG below read the whole clip at once, even
        # with a windowed Bridge-Net, as text and queries share one sequence there
        query_output = self.model.clip_query_output(frames, frame_mask)
        audio_embeds = nn.functional.normalize(self.audio_projection(query_output), dim=-1)
        text_embeds = self.get_text_features(input_ids, attention_mask, return_dict=True).pooler_output
        if not return_loss:
            logits = torch.einsum("aqd,td->atq", audio_embeds, text_embeds).amax(-1) / self.logit_temperature
            return MintPretrainingOutput(
                logits_per_audio=logits, logits_per_text=logits.t(), audio_embeds=audio_embeds, text_embeds=text_embeds
            )
        sim_a2t, sim_t2a = contrastive_similarity(audio_embeds, text_embeds, self.logit_temperature)
        loss_atc = audio_text_contrastive_loss(sim_a2t, sim_t2a, label_smoothing)

        # ATM: positives, then (audio, hard negative text) and (hard negative audio, text)
        all_frames, all_frame_mask = _gather_all(frames.detach()), _gather_all(frame_mask)  # frozen encoder
        all_ids, all_mask = _gather_all(input_ids), _gather_all(attention_mask)
        all_groups = _gather_all(group_ids) if group_ids is not None else None
        # evaluation draws from a fixed seed, so that a model in eval mode gives the same loss every time
        generator = None if self.training else torch.Generator(sim_a2t.device).manual_seed(0)
        neg_text, neg_audio = sample_hard_negatives(sim_a2t, sim_t2a, all_groups, generator)
        frames_, frame_mask_ = _pad_to(frames, all_frames.shape[1]), _pad_to(frame_mask, all_frames.shape[1])
        ids_, mask_ = _pad_to(input_ids, all_ids.shape[1]), _pad_to(attention_mask, all_ids.shape[1])
        atm_logits = self._matching_logits(
            torch.cat([frames_, frames_, all_frames[neg_audio]]),
            torch.cat([frame_mask_, frame_mask_, all_frame_mask[neg_audio]]),
            torch.cat([ids_, all_ids[neg_text], ids_]),
            torch.cat([mask_, all_mask[neg_text], mask_]),
        )
        loss_atm = audio_text_matching_loss(atm_logits, num_positive=batch)

        # AGTG: [DEC] replaces [CLS]; text sees all queries and earlier text
        if self.config.bridge_config.bos_token_id is None:
            raise ValueError("bridge_config.bos_token_id (the [DEC] token that starts AGTG) is not set")
        decoder_ids = input_ids.clone()
        decoder_ids[:, 0] = self.config.bridge_config.bos_token_id
        mask = bridge_attention_mask(queries.shape[1], attention_mask, "multimodal_causal", queries.dtype)
        text_output = self.model.bridge(
            input_ids=decoder_ids, attention_mask=mask, query_embeds=queries,
            encoder_hidden_states=frames, encoder_attention_mask=frame_mask,
        ).last_hidden_state[:, queries.shape[1] :]
        targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
        keep = targets != -100  # the 30k-way head runs only where there is a next token to predict
        logits = self.agtg_head(text_output[:, :-1][keep], self.get_input_embeddings().weight)
        loss_agtg = nn.functional.cross_entropy(logits.float(), targets[keep], label_smoothing=label_smoothing)

        return MintPretrainingOutput(
            loss=loss_atc + loss_atm + loss_agtg,
            loss_atc=loss_atc,
            loss_atm=loss_atm,
            loss_agtg=loss_agtg,
            logits_per_audio=sim_a2t,  # local rows against every rank's columns
            logits_per_text=sim_t2a,
            audio_embeds=audio_embeds,
            text_embeds=text_embeds,
        )


def _pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad dim 1 to `length` (to line up with tensors gathered from other ranks)."""
    if x.shape[1] >= length:
        return x
    return torch.cat([x, x.new_zeros(x.shape[0], length - x.shape[1], *x.shape[2:])], dim=1)


def _gather_all(x: torch.Tensor) -> torch.Tensor:
    """All ranks' `x` concatenated along dim 0, without gradient (ids, masks, frozen-encoder frames).

    Ranks pad their batches to different lengths, so dim 1 is zero-padded to the longest first (zeros are padding
    for frames, masks and BERT ids alike)."""
    _, world_size = world()
    if world_size == 1:
        return x
    x = x.contiguous()
    if x.dim() > 1:
        length = torch.tensor([x.shape[1]], device=x.device)
        lengths = [torch.zeros_like(length) for _ in range(world_size)]
        torch.distributed.all_gather(lengths, length)
        longest = int(torch.stack(lengths).max())
        if longest > x.shape[1]:
            pad = x.new_zeros(x.shape[0], longest - x.shape[1], *x.shape[2:])
            x = torch.cat([x, pad], dim=1)
    parts = [torch.empty_like(x) for _ in range(world_size)]
    torch.distributed.all_gather(parts, x)
    return torch.cat(parts, dim=0)


__all__ = [
    "MintPreTrainedModel",
    "MintAudioBridgeModel",
    "MintForAudioTextRetrieval",
    "MintBridgeModel",
    "MintModel",
    "MintForConditionalGeneration",
]
