"""Model tests in the transformers ModelTester pattern, on tiny configs of two families:
Whisper + Llama (decoder-only) and data2vec-audio + T5 (encoder-decoder)."""

import copy

import pytest
import torch
from transformers import TextIteratorStreamer

from modeling_mint import MintConfig, MintForConditionalGeneration, MintModel


AUDIO_TOKEN = 98


class MintModelTester:
    """Builds a tiny config and matching inputs; `audio_type` and `text_type` pick the family."""

    def __init__(self, audio_type="whisper", text_type="llama", batch_size=2, num_query_tokens=4, seq_length=10):
        self.audio_type, self.text_type = audio_type, text_type
        self.batch_size, self.num_query_tokens, self.seq_length = batch_size, num_query_tokens, seq_length
        self.vocab_size = 99

    def get_config(self) -> MintConfig:
        if self.audio_type == "whisper":
            audio = {"model_type": "whisper", "d_model": 16, "encoder_layers": 2, "encoder_attention_heads": 2,
                     "encoder_ffn_dim": 32, "num_mel_bins": 8, "max_source_positions": 25}
            window = None
        else:
            audio = {"model_type": "data2vec-audio", "hidden_size": 16, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "intermediate_size": 32, "conv_dim": [8, 8], "conv_stride": [5, 4],
                     "conv_kernel": [10, 8], "num_conv_pos_embeddings": 4, "num_conv_pos_embedding_groups": 2,
                     "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
                     "feat_proj_dropout": 0.0, "layerdrop": 0.0, "mask_time_prob": 0.0}
            window = 400
        if self.text_type == "llama":
            text = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "intermediate_size": 37, "vocab_size": self.vocab_size,
                    "tie_word_embeddings": True, "pad_token_id": 0, "eos_token_id": 2, "bos_token_id": 1}
        else:
            text = {"model_type": "t5", "d_model": 32, "d_kv": 8, "num_layers": 2, "num_heads": 4, "d_ff": 37,
                    "vocab_size": self.vocab_size, "decoder_start_token_id": 0, "pad_token_id": 0,
                    "eos_token_id": 1, "tie_word_embeddings": False, "dropout_rate": 0.0}
        bridge = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
                  "cross_attention_frequency": 1, "vocab_size": 60, "hidden_dropout_prob": 0.0,
                  "attention_probs_dropout_prob": 0.0}
        return MintConfig(audio_config=audio, bridge_config=bridge, text_config=text,
                          num_query_tokens=self.num_query_tokens, audio_token_index=AUDIO_TOKEN,
                          audio_window_size=window, max_audio_windows=3)

    def audio_inputs(self, config, windows=(1, 2)):
        """Features for clips of `windows[i]` windows each, padded with whole masked windows."""
        batch, window, n_max = len(windows), config.audio_window_size, max(windows)
        shape = (batch, 8, n_max * window) if self.audio_type == "whisper" else (batch, n_max * window)
        feats = torch.randn(shape)
        mask = torch.zeros(batch, n_max * window, dtype=torch.long)
        for i, n in enumerate(windows):
            mask[i, : n * window] = 1
            feats[i, ..., n * window :] = 0
        return feats, mask

    def prepare_config_and_inputs(self):
        config = self.get_config()
        ids = torch.randint(3, 90, (self.batch_size, self.seq_length))
        ids[:, 2 : 2 + self.num_query_tokens] = AUDIO_TOKEN
        feats, mask = self.audio_inputs(config, windows=(1, 2)[: self.batch_size])
        inputs = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "input_features": feats,
            "feature_attention_mask": mask,
            "bridge_input_ids": torch.randint(1, 60, (self.batch_size, 5)),
            "bridge_attention_mask": torch.ones(self.batch_size, 5, dtype=torch.long),
        }
        if self.text_type == "llama":
            labels = ids.clone()
            labels[:, : 2 + self.num_query_tokens] = -100
        else:
            labels = torch.randint(3, 90, (self.batch_size, 6))
        return config, inputs, labels


FAMILIES = [("whisper", "llama"), ("data2vec-audio", "t5")]


@pytest.fixture(params=FAMILIES, ids=lambda f: "+".join(f))
def tester(request):
    return MintModelTester(*request.param)


def make(config, attn="sdpa"):
    config = copy.deepcopy(config)
    config._attn_implementation = attn
    return MintForConditionalGeneration(config).eval()


def test_forward_shapes(tester):
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config)
    out = model(**inputs, labels=labels)
    length = labels.shape[1] if config.is_encoder_decoder else inputs["input_ids"].shape[1]
    assert out.logits.shape == (tester.batch_size, length, tester.vocab_size)
    assert out.audio_hidden_states.shape == (tester.batch_size, tester.num_query_tokens, 32)
    assert torch.isfinite(out.loss)
    backbone = MintModel(config).eval()
    hidden = backbone(**inputs, decoder_input_ids=labels if config.is_encoder_decoder else None)
    assert hidden.last_hidden_state.shape == (tester.batch_size, length, 32)


@pytest.mark.parametrize("loaded", [False, True], ids=["built", "from_pretrained"])
def test_only_trainable_parts_get_gradients(tester, tmp_path, loaded):
    """Built or loaded (loading replaces every parameter), only the queries, bridge and projection train."""
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config)
    if loaded:
        model.save_pretrained(tmp_path)
        model = MintForConditionalGeneration.from_pretrained(tmp_path)
    model.train()
    model(**inputs, labels=labels).loss.backward()
    trainable = ("model.query_tokens.", "model.bridge.", "model.language_projection.")
    for name, param in model.named_parameters():
        if name.startswith(trainable):
            assert param.requires_grad, name
        else:
            assert not param.requires_grad and param.grad is None, name
    # the bridge's cross-attention and the queries do receive signal from the loss
    assert model.model.query_tokens.weight.grad.abs().sum() > 0
    assert model.model.language_projection.weight.grad.abs().sum() > 0
    assert not model.model.audio_tower.training and not model.model.language_model.training


def test_loss_decreases_on_fixed_batch(tester):
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(12):
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05, losses


def test_gradient_checkpointing_reaches_the_frozen_llm(tester):
    """The backward pass runs through the frozen LLM, so its layers are where checkpointing saves memory: each one is
    checkpointed (its dropout still off), and the gradients are those of the plain step."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    config, inputs, labels = tester.prepare_config_and_inputs()
    config.text_config.dropout_rate = config.text_config.attention_dropout = 0.5  # a step with dropout would differ
    model = make(config).train()
    model(**inputs, labels=labels).loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.activation_checkpointing_enable()
    layers = [m for m in model.model.language_model.modules() if isinstance(m, GradientCheckpointingLayer)]
    checkpointed = []
    for layer in layers:
        def counted(function, *args, _func=layer._gradient_checkpointing_func, **kwargs):
            checkpointed.append(function)
            return _func(function, *args, **kwargs)

        layer._gradient_checkpointing_func = counted
    model(**inputs, labels=labels).loss.backward()
    assert len(checkpointed) == len(layers) > 0
    assert not model.model.language_model.training and all(layer.training for layer in layers)
    for name, grad in expected.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad)
    model.activation_checkpointing_disable()
    assert not any(layer.training for layer in layers)


def test_save_load_identical(tester, tmp_path):
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config)
    model.save_pretrained(tmp_path)
    again = MintForConditionalGeneration.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        a, b = model(**inputs, labels=labels), again(**inputs, labels=labels)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    if not config.is_encoder_decoder:
        assert again.lm_head.weight.data_ptr() == again.model.language_model.embed_tokens.weight.data_ptr()


def test_eager_and_sdpa_agree(tester):
    config, inputs, labels = tester.prepare_config_and_inputs()
    sdpa = make(config, "sdpa")
    eager = make(config, "eager")
    eager.load_state_dict(sdpa.state_dict())
    with torch.no_grad():
        a, b = sdpa(**inputs, labels=labels), eager(**inputs, labels=labels)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-4, atol=1e-5)


def test_padded_audio_windows_do_not_change_the_clip(tester):
    """A 1-window clip gives the same soft prompt alone and padded to 2 windows in a batch."""
    config, inputs, _ = tester.prepare_config_and_inputs()
    model = make(config)
    alone = {k: v[:1] for k, v in inputs.items()}
    window = config.audio_window_size
    alone["input_features"] = alone["input_features"][..., :window]
    alone["feature_attention_mask"] = alone["feature_attention_mask"][:, :window]
    audio_keys = ("input_features", "feature_attention_mask", "bridge_input_ids", "bridge_attention_mask")
    with torch.no_grad():
        batched = model.get_audio_features(**{k: inputs[k] for k in audio_keys}).pooler_output[:1]
        single = model.get_audio_features(**{k: alone[k] for k in audio_keys}).pooler_output
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_batched_generation_equals_one_by_one(tester):
    config, inputs, _ = tester.prepare_config_and_inputs()
    model = make(config)
    # ragged prompts: left-pad the second one by two tokens
    inputs["attention_mask"][1, :2] = 0
    inputs["input_ids"][1, :2] = 0
    kwargs = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
    batched = model.generate(**inputs, **kwargs)
    for i in range(tester.batch_size):
        keep = inputs["attention_mask"][i].bool()
        one = {k: v[i : i + 1] for k, v in inputs.items()}
        one["input_ids"] = one["input_ids"][:, keep]
        one["attention_mask"] = one["attention_mask"][:, keep]
        single = model.generate(**one, **kwargs)
        new = batched[i, -single.shape[1] :] if config.is_encoder_decoder else batched[i, inputs["input_ids"].shape[1] :]
        expected = single[0] if config.is_encoder_decoder else single[0, one["input_ids"].shape[1] :]
        assert new.tolist() == expected.tolist()


@pytest.mark.parametrize("mode", ["beam", "sample"])
def test_generate_modes(tester, mode):
    config, inputs, _ = tester.prepare_config_and_inputs()
    model = make(config)
    kwargs = {"beam": dict(num_beams=3), "sample": dict(do_sample=True, top_k=5)}[mode]
    out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, pad_token_id=0, **kwargs)
    prompt = 0 if config.is_encoder_decoder else inputs["input_ids"].shape[1]
    assert out.shape[0] == tester.batch_size and out.shape[1] >= prompt + 4


def test_streaming(tester, tiny_processor):
    config, inputs, _ = tester.prepare_config_and_inputs()
    model = make(config)
    one = {k: v[:1] for k, v in inputs.items()}
    streamer = TextIteratorStreamer(tiny_processor.tokenizer, skip_prompt=not config.is_encoder_decoder)
    import threading

    thread = threading.Thread(target=model.generate, kwargs=dict(**one, max_new_tokens=4, min_new_tokens=4, pad_token_id=0, streamer=streamer))
    thread.start()
    chunks = list(streamer)
    thread.join()
    assert len(chunks) >= 1


def test_placeholder_count_mismatch_raises(tester):
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config)
    inputs["input_ids"][0, 2] = 5  # one audio token fewer
    with pytest.raises(ValueError, match="audio placeholders and audio clips do not match"):
        model(**inputs, labels=labels)
    features = inputs.pop("input_features")
    inputs["input_ids"][0, 2] = AUDIO_TOKEN
    with pytest.warns(UserWarning, match="no input_features were given"):  # read as text, as transformers does
        model(**inputs, labels=labels)
    assert features is not None


def test_too_many_windows_raise(tester):
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config)
    feats, mask = tester.audio_inputs(config, windows=(4, 4))
    inputs.update(input_features=feats, feature_attention_mask=mask)
    with pytest.raises(ValueError, match="max_audio_windows"):
        model(**inputs, labels=labels)


def test_backbone_plus_head_layout(tester):
    """TRL's fused-head loss runs `model.base_model(**inputs).last_hidden_state` through `get_output_embeddings()`:
    that must reproduce the model's own logits."""
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config)
    assert model.base_model is model.model and model.get_output_embeddings() is model.lm_head
    extra = {"decoder_input_ids": model._shift_right(labels)} if config.is_encoder_decoder else {}
    with torch.no_grad():
        hidden = model.base_model(**inputs, **extra).last_hidden_state
        logits = model(**inputs, labels=labels).logits
    torch.testing.assert_close(model.get_output_embeddings()(hidden), logits)


def test_cached_audio_frames_match_input_features(tester):
    """Training can feed the frozen tower's outputs from a cache: same loss, same generation."""
    config, inputs, labels = tester.prepare_config_and_inputs()
    model = make(config)
    frames, frame_mask = model.model.encode_audio(inputs["input_features"], inputs["feature_attention_mask"])
    cached = {k: v for k, v in inputs.items() if k not in ("input_features", "feature_attention_mask")}
    cached.update(audio_frames=frames, audio_frame_mask=frame_mask)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs, labels=labels).loss, model(**cached, labels=labels).loss)
    kwargs = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0)
    assert model.generate(**inputs, **kwargs).tolist() == model.generate(**cached, **kwargs).tolist()


def test_windowed_bridge_keeps_time_order(tiny_processor):
    """With `bridge_window_frames`, each window of frames gets its own queries: the soft prompt grows with the
    duration, the processor expands `<audio>` to match, and the clip's windows stay in time order."""

    from modeling_mint import MintProcessor
    from tests.conftest import TINY, tone

    config = MintConfig.from_pretrained(TINY)
    config.bridge_window_frames = 10  # 0.2 s of Whisper frames
    model = MintForConditionalGeneration(config).eval()
    processor = MintProcessor.from_pretrained(TINY, bridge_window_frames=10)
    clips = [tone(0.3), tone(1.5, freq=880)]  # 15 and 75 encoder frames -> 2 and 8 windows
    inputs = processor(text=["<audio> hi", "<audio> hi"], audio=clips, sampling_rate=16000)
    counts = (inputs["input_ids"] == config.audio_token_index).sum(1).tolist()
    assert counts == [2 * config.num_query_tokens, 8 * config.num_query_tokens]
    with torch.no_grad():
        out = model(**inputs)
        soft = model.get_audio_features(inputs["input_features"], inputs["feature_attention_mask"],
                                        inputs["bridge_input_ids"], inputs["bridge_attention_mask"]).pooler_output
        alone = model.get_audio_features(
            **{k: v[1:] for k, v in inputs.items() if k in ("input_features", "feature_attention_mask",
                                                          "bridge_input_ids", "bridge_attention_mask")}).pooler_output
    assert out.logits.shape[:2] == inputs["input_ids"].shape
    assert soft.shape == (sum(counts), config.text_config.hidden_size)
    torch.testing.assert_close(soft[counts[0]:], alone, rtol=1e-4, atol=1e-5)  # the second clip, in order
    ids = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert ids.shape == (2, inputs["input_ids"].shape[1] + 3)
    with pytest.raises(ValueError, match="needs a Whisper encoder"):
        MintConfig(audio_config={"model_type": "wav2vec2"}, bridge_window_frames=10)


def test_pooled_connector_is_the_dense_baseline(tiny_processor, tmp_path):
    """`connector_type="pooled"`: every `bridge_window_frames` frames averaged and projected to one LLM token (no
    Bridge-Net, no queries); padding never enters a window's mean, and only the projector trains."""
    from modeling_mint import MintProcessor
    from tests.conftest import TINY, tone

    config = MintConfig.from_pretrained(TINY)
    config.connector_type, config.bridge_window_frames, config.num_query_tokens = "pooled", 4, 1
    model = MintForConditionalGeneration(config).eval()
    assert model.bridge is None and not hasattr(model.model, "query_tokens")
    processor = MintProcessor.from_pretrained(TINY, bridge_window_frames=4, num_query_tokens=1)
    clips = [tone(0.3), tone(1.5, freq=880)]  # 15 and 75 encoder frames -> 4 and 19 tokens
    inputs = processor(text=["<audio> hi", "<audio> hi"], audio=clips, sampling_rate=16000)
    counts = (inputs["input_ids"] == config.audio_token_index).sum(1).tolist()
    assert counts == [4, 19]
    frames, mask = model.model.encode_audio(inputs["input_features"], inputs["feature_attention_mask"])
    soft = model.get_audio_features(audio_frames=frames, audio_frame_mask=mask).pooler_output
    projector = model.model.multi_modal_projector
    by_hand = projector.linear_2(projector.act(projector.linear_1(frames[0, 12:15].mean(0))))
    torch.testing.assert_close(soft[3], by_hand)  # the first clip's last window: 3 real frames, 1 of padding
    model.train()
    labels = inputs["input_ids"].clone()
    model(**inputs, labels=labels).loss.backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == {f"model.multi_modal_projector.{n}" for n, _ in projector.named_parameters()}
    model.save_pretrained(tmp_path)
    loaded = MintForConditionalGeneration.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded.get_audio_features(audio_frames=frames, audio_frame_mask=mask).pooler_output, soft)
    with pytest.raises(ValueError, match="one token per window"):
        MintConfig(connector_type="pooled", bridge_window_frames=4)
    with pytest.raises(ValueError, match="'bridge' or 'pooled'"):
        MintConfig(connector_type="dense")
