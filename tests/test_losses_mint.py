"""Stage-1 targets: masks entry by entry, contrastive loss against a brute-force reference, hard negatives,
gradients, and the pre-training model end to end on tiny configs."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from modeling_mint import MintForAudioTextRetrieval, MintForConditionalGeneration
from modeling_mint.losses_mint import (
    audio_text_contrastive_loss,
    bridge_attention_mask,
    contrastive_similarity,
    sample_hard_negatives,
)
from tests.test_modeling_mint import MintModelTester


NQ = 3


def visible(mask):
    return mask == 0


def test_unimodal_mask_entries():
    text_mask = torch.tensor([[1, 1, 0]])
    allowed = visible(bridge_attention_mask(NQ, text_mask, "unimodal"))[0, 0]
    for i, j in itertools.product(range(NQ + 3), repeat=2):
        query_i, query_j = i < NQ, j < NQ
        padded_key = j == NQ + 2
        expected = (query_i == query_j and not padded_key) or i == j
        assert bool(allowed[i, j]) == expected, (i, j)


def test_bidirectional_mask_entries():
    text_mask = torch.tensor([[1, 1, 0]])
    allowed = visible(bridge_attention_mask(NQ, text_mask, "bidirectional"))[0, 0]
    for i, j in itertools.product(range(NQ + 3), repeat=2):
        assert bool(allowed[i, j]) == (j != NQ + 2 or i == j), (i, j)


def test_multimodal_causal_mask_entries():
    text_mask = torch.tensor([[1, 1, 1, 0]])
    allowed = visible(bridge_attention_mask(NQ, text_mask, "multimodal_causal"))[0, 0]
    for i, j in itertools.product(range(NQ + 4), repeat=2):
        if i == j:
            expected = True
        elif j == NQ + 3:  # padding is never a key
            expected = False
        elif i < NQ:  # queries see only queries
            expected = j < NQ
        else:  # text sees every query and the text up to itself
            expected = j < NQ or j <= i
        assert bool(allowed[i, j]) == expected, (i, j)


def test_mask_is_additive_float():
    mask = bridge_attention_mask(2, torch.ones(1, 2, dtype=torch.long), "unimodal", torch.float16)
    assert mask.dtype == torch.float16 and mask.shape == (1, 1, 4, 4)
    assert set(mask.unique().tolist()) == {0.0, torch.finfo(torch.float16).min}
    with pytest.raises(ValueError, match="unknown mask kind"):
        bridge_attention_mask(2, torch.ones(1, 2), "causal")


def test_contrastive_loss_matches_brute_force():
    torch.manual_seed(0)
    batch, queries, dim, temperature = 5, 4, 8, 0.07
    audio = F.normalize(torch.randn(batch, queries, dim), dim=-1)
    text = F.normalize(torch.randn(batch, dim), dim=-1)
    sim_a2t, sim_t2a = contrastive_similarity(audio, text, torch.tensor(temperature))
    for smoothing in (0.0, 0.1):
        loss = audio_text_contrastive_loss(sim_a2t, sim_t2a, smoothing)
        total = 0.0
        for direction in ("a2t", "t2a"):
            for i in range(batch):
                row = []
                for j in range(batch):
                    a, t = (i, j) if direction == "a2t" else (j, i)
                    row.append(max(float(audio[a, q] @ text[t]) for q in range(queries)) / temperature)
                row = torch.tensor(row, dtype=torch.float64)
                logp = row - torch.logsumexp(row, 0)
                target = torch.full((batch,), smoothing / batch, dtype=torch.float64)
                target[i] += 1 - smoothing
                total += float(-(target * logp).sum())
        assert loss.item() == pytest.approx(total / (2 * batch), rel=1e-5)


def test_hard_negatives_never_pick_the_positive_or_same_clip():
    torch.manual_seed(0)
    batch = 6
    # a similarity matrix that strongly prefers the diagonal: negatives must still avoid it
    sim = torch.randn(batch, batch) + 50 * torch.eye(batch)
    groups = torch.tensor([0, 0, 1, 2, 3, 4])  # rows 0 and 1 are two captions of one clip
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        neg_text, neg_audio = sample_hard_negatives(sim, sim.t(), groups, generator=generator)
        for i in range(batch):
            assert groups[neg_text[i]] != groups[i] and groups[neg_audio[i]] != groups[i]
    with pytest.raises(ValueError, match="no possible negative"):
        sample_hard_negatives(sim[:2, :2], sim[:2, :2], torch.tensor([7, 7]))


def test_hard_negatives_follow_similarity():
    sim = torch.tensor([[0.0, 5.0, -5.0], [5.0, 0.0, -5.0], [5.0, -5.0, 0.0]])
    generator = torch.Generator().manual_seed(0)
    picks = torch.stack([sample_hard_negatives(sim, sim, generator=generator)[0] for _ in range(300)])
    assert (picks[:, 0] == 1).float().mean() > 0.95  # the most similar wrong text dominates


def stage1_batch(family=("whisper", "llama"), batch_size=3, seed=0):
    """A tiny stage-1 config and a fixed batch of audio features and bridge-token texts."""
    generator = torch.Generator().manual_seed(seed)
    tester = MintModelTester(*family, batch_size=batch_size)
    config = tester.get_config()
    config.bridge_config.bos_token_id = 5
    config.projection_dim = 16
    torch.manual_seed(seed)
    feats, mask = tester.audio_inputs(config, windows=[1 + i % 2 for i in range(batch_size)])
    ids = torch.randint(6, 60, (batch_size, 7), generator=generator)
    ids[:, 0] = 2  # [CLS]
    text_mask = torch.ones_like(ids)
    text_mask[-1, 5:] = 0
    return config, dict(input_features=feats, feature_attention_mask=mask, input_ids=ids, attention_mask=text_mask)


@pytest.fixture(params=[("whisper", "llama"), ("data2vec-audio", "t5")], ids=lambda f: "+".join(f))
def stage1(request):
    return stage1_batch(request.param)


def test_pretraining_forward_and_gradients(stage1):
    config, inputs = stage1
    model = MintForAudioTextRetrieval(config).train()
    assert not hasattr(model.model, "language_model")  # no LLM in stage 1
    out = model(**inputs, return_loss=True)
    for name in ("loss_atc", "loss_atm", "loss_agtg"):
        assert torch.isfinite(getattr(out, name)), name
    torch.testing.assert_close(out.loss, out.loss_atc + out.loss_atm + out.loss_agtg)
    assert out.logits_per_audio.shape == (3, 3) and out.audio_embeds.shape == (3, config.num_query_tokens, 16)
    out.loss.backward()
    for name, param in model.named_parameters():
        frozen = name.startswith("model.audio_tower.")
        assert param.requires_grad != frozen, name
        if frozen:
            assert param.grad is None, name
    for name in ("model.query_tokens.weight", "temperature", "atm_head.weight", "agtg_head.dense.weight",
                 "audio_projection.weight", "text_projection.weight", "model.bridge.embeddings.word_embeddings.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name


@pytest.mark.slow  # enough optimizer steps for the losses to fall
def test_pretraining_loss_decreases(stage1):
    config, inputs = stage1
    model = MintForAudioTextRetrieval(config).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(15):
        loss = model(**inputs, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


def test_retrieval_api_agrees_with_forward(stage1):
    config, inputs = stage1
    model = MintForAudioTextRetrieval(config).eval()
    with torch.no_grad():
        out = model(**inputs)
        audio = model.get_audio_features(inputs["input_features"], inputs["feature_attention_mask"]).pooler_output
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
        scores = model.atm_scores(**inputs)
    assert out.loss is None
    torch.testing.assert_close(out.audio_embeds, audio)
    torch.testing.assert_close(out.text_embeds, text)
    expected = torch.einsum("aqd,td->atq", audio, text).amax(-1) / 0.07
    torch.testing.assert_close(out.logits_per_audio, expected)
    torch.testing.assert_close(out.logits_per_text, expected.t())
    assert scores.shape == (3,) and ((scores >= 0) & (scores <= 1)).all()


def test_windowed_bridge_retrieves_with_each_query_averaged_over_the_clips_windows():
    """A windowed Bridge-Net (the token prompt's) gets retrieval heads too: each window is read as in generation and
    each query's output averaged over the windows that hold audio, so every clip has Nq embeddings."""
    config, inputs = stage1_batch()
    config.bridge_window_frames = 10
    model = MintForAudioTextRetrieval(config).eval()
    with torch.no_grad():
        frames, frame_mask = model.model.encode_audio(inputs["input_features"], inputs["feature_attention_mask"])
        pooled = model.model.clip_query_output(frames, frame_mask)
        for clip in range(frames.shape[0]):
            valid = int(frame_mask[clip].sum())
            windows = [model.model._query_output(frames[clip : clip + 1, start : min(start + 10, valid)],
                                                 frame_mask[clip : clip + 1, start : min(start + 10, valid)])
                       for start in range(0, valid, 10)]  # this clip alone, no padding windows
            assert len(windows) > 1
            torch.testing.assert_close(pooled[clip], torch.cat(windows).mean(0), rtol=1e-4, atol=1e-5)
        out = model(**inputs)
        audio = model.get_audio_features(inputs["input_features"], inputs["feature_attention_mask"]).pooler_output
    assert audio.shape == (frames.shape[0], config.num_query_tokens, config.projection_dim)
    torch.testing.assert_close(out.audio_embeds, audio)
    loss = model.train()(**inputs, return_loss=True).loss
    loss.backward()
    assert torch.isfinite(loss) and model.audio_projection.weight.grad.abs().sum() > 0


def test_eager_and_sdpa_agree_on_stage1_losses(stage1):
    config, inputs = stage1
    torch.manual_seed(0)
    config._attn_implementation = "sdpa"
    sdpa = MintForAudioTextRetrieval(config).eval()
    config._attn_implementation = "eager"
    eager = MintForAudioTextRetrieval(config).eval()
    eager.load_state_dict(sdpa.state_dict())
    torch.manual_seed(1)
    a = sdpa(**inputs, return_loss=True)
    torch.manual_seed(1)
    b = eager(**inputs, return_loss=True)
    for name in ("loss_atc", "loss_atm", "loss_agtg"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-4, atol=1e-5)


def test_agtg_is_causal(stage1):
    """Changing the last text token leaves the generation logits of earlier positions unchanged."""
    config, inputs = stage1
    model = MintForAudioTextRetrieval(config).eval()
    frames, frame_mask = model.model.encode_audio(inputs["input_features"], inputs["feature_attention_mask"])
    ids = inputs["input_ids"][:1]
    mask = bridge_attention_mask(config.num_query_tokens, torch.ones_like(ids), "multimodal_causal")

    def text_hidden(token_ids):
        queries = model.model.query_tokens(1)
        return model.model.bridge(input_ids=token_ids, attention_mask=mask, query_embeds=queries,
                                  encoder_hidden_states=frames[:1], encoder_attention_mask=frame_mask[:1]).last_hidden_state

    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 60
    with torch.no_grad():
        a, b = text_hidden(ids), text_hidden(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_stage1_checkpoint_loads_into_generation_model(stage1, tmp_path):
    config, _ = stage1
    stage1_model = MintForAudioTextRetrieval(config)
    stage1_model.save_pretrained(tmp_path)
    generator = MintForConditionalGeneration.from_pretrained(tmp_path)
    source = stage1_model.state_dict()
    target = generator.state_dict()
    bridge_keys = [k for k in source if k.startswith(("model.bridge.", "model.query_tokens.", "model.audio_tower."))]
    assert bridge_keys
    for key in bridge_keys:
        torch.testing.assert_close(target[key], source[key], rtol=0, atol=0)


def test_cached_frames_give_the_same_losses(stage1):
    """Stage 1 can read the frozen encoder's outputs from a cache instead of running it."""
    config, inputs = stage1
    model = MintForAudioTextRetrieval(config).eval()
    frames, frame_mask = model.model.encode_audio(inputs["input_features"], inputs["feature_attention_mask"])
    cached = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
              "audio_frames": frames, "audio_frame_mask": frame_mask}
    torch.manual_seed(3)
    a = model(**inputs, return_loss=True)
    torch.manual_seed(3)
    b = model(**cached, return_loss=True)
    torch.testing.assert_close(a.loss, b.loss)
    with pytest.raises(ValueError, match="not both"):
        model(**inputs, audio_frames=frames)
    with pytest.raises(ValueError, match="no audio"):
        model(input_ids=inputs["input_ids"])
