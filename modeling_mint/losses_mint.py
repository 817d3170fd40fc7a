"""Stage-1 (multi-target pre-training) losses and attention masks for the Bridge-Net.

Pure functions: audio-text contrastive (ATC), audio-text matching (ATM) with hard negatives, the three masks
(unimodal for ATC, bidirectional for ATM, multimodal causal for audio-grounded text generation, AGTG) and a gather
that keeps gradients across ranks. transformers has none of them.
"""

import torch
import torch.nn.functional as F


# ---- distributed ---------------------------------------------------------------------------------------------
def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) without an initialized process group, so nothing here needs one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every rank along dim 0; gradients flow back to each rank's own slice.

    Gather everything a loss needs in one call: the backward of each gather is a collective, and the autograd
    engine may run two of them in different orders on different ranks, which silently mixes their gradients.
    """
    _, world_size = world()
    if world_size == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


# ---- masks ---------------------------------------------------------------------------------------------------
def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean "may attend" -> additive float mask (0 / most negative). Boolean 4-D masks are wrong under eager."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


def bridge_attention_mask(
    num_query_tokens: int, text_mask: torch.Tensor, kind: str, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Self-attention mask `(B, 1, Nq + T, Nq + T)` over [queries; text] for one stage-1 target.

    kind:
        "unimodal" (ATC): queries see queries, text sees text; the two streams never mix.
        "bidirectional" (ATM): everything sees everything.
        "multimodal_causal" (AGTG): queries see queries; text sees all queries and the text up to itself.
    Padded text positions are never attended to.
    """
    batch, length = text_mask.shape
    q, total = num_query_tokens, num_query_tokens + length
    is_query = torch.arange(total, device=text_mask.device) < q
    if kind == "unimodal":
        allowed = is_query[:, None] == is_query[None, :]
    elif kind == "bidirectional":
        allowed = torch.ones(total, total, dtype=torch.bool, device=text_mask.device)
    elif kind == "multimodal_causal":
        causal = torch.ones(total, total, dtype=torch.bool, device=text_mask.device).tril()
        allowed = (is_query[:, None] & is_query[None, :]) | (~is_query[:, None] & (is_query[None, :] | causal))
    else:
        raise ValueError(f"unknown mask kind {kind!r}; use unimodal, bidirectional or multimodal_causal")
    key_ok = torch.cat([text_mask.new_ones(batch, q), text_mask], dim=1).bool()  # [B, L]
    allowed = allowed[None] & key_ok[:, None, :]
    allowed = allowed | torch.eye(total, dtype=torch.bool, device=text_mask.device)[None]  # padded rows see self
    return _additive(allowed[:, None], dtype)


# ---- ATC -----------------------------------------------------------------------------------------------------
def contrastive_similarity(
    audio_embeds: torch.Tensor, text_embeds: torch.Tensor, temperature: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-over-queries cosine similarities, local rows against all ranks' columns.

    Args:
        audio_embeds: `(B, Nq, D)` normalized query embeddings of this rank's clips.
        text_embeds: `(B, D)` normalized [CLS] embeddings of this rank's texts.
        temperature: scalar.
    Returns:
        `sim_a2t (B, B * world)` and `sim_t2a (B, B * world)`, divided by the temperature.
    """
    batch, queries, dim = audio_embeds.shape
    packed = gather_with_grad(torch.cat([audio_embeds.reshape(batch, queries * dim), text_embeds], dim=1))
    all_audio, all_text = packed[:, : queries * dim].reshape(-1, queries, dim), packed[:, queries * dim :]
    sim_a2t = torch.einsum("bqd,nd->bnq", audio_embeds, all_text).amax(-1) / temperature
    sim_t2a = torch.einsum("bd,nqd->bnq", text_embeds, all_audio).amax(-1) / temperature
    return sim_a2t, sim_t2a


def audio_text_contrastive_loss(
    sim_a2t: torch.Tensor, sim_t2a: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Symmetric cross-entropy; the positive of local row i is global column `rank * B + i`."""
    rank, _ = world()
    targets = rank * sim_a2t.shape[0] + torch.arange(sim_a2t.shape[0], device=sim_a2t.device)
    return (
        F.cross_entropy(sim_a2t, targets, label_smoothing=label_smoothing)
        + F.cross_entropy(sim_t2a, targets, label_smoothing=label_smoothing)
    ) / 2


# ---- ATM -----------------------------------------------------------------------------------------------------
def sample_hard_negatives(
    sim_a2t: torch.Tensor,
    sim_t2a: torch.Tensor,
    group_ids: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One negative text per audio and one negative audio per text, drawn from softmax(similarity).

    The positive (and, with `group_ids` over the global batch, any pair from the same clip) has weight zero and is
    never drawn. Returns global indices `(neg_text_for_audio, neg_audio_for_text)`, each `(B,)`.
    """
    rank, _ = world()
    batch, columns = sim_a2t.shape
    rows = rank * batch + torch.arange(batch, device=sim_a2t.device)
    forbidden = torch.zeros(batch, columns, dtype=torch.bool, device=sim_a2t.device)
    forbidden[torch.arange(batch), rows] = True
    if group_ids is not None:
        forbidden |= group_ids[rows][:, None] == group_ids[None, :]
    if bool(forbidden.all(dim=1).any()):
        raise ValueError("a row has no possible negative: the global batch needs at least two different clips")

    def draw(sim):
        weights = torch.softmax(sim.detach().float(), dim=1).masked_fill(forbidden, 0.0)
        weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, (~forbidden).float())  # underflow guard
        return torch.multinomial(weights, 1, generator=generator).squeeze(1)

    return draw(sim_a2t), draw(sim_t2a)


def audio_text_matching_loss(logits: torch.Tensor, num_positive: int) -> torch.Tensor:
    """2-way cross-entropy on `[positives; negatives]`: the first `num_positive` rows are matches (label 1)."""
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    labels[:num_positive] = 1
    return F.cross_entropy(logits, labels)


__all__ = [
    "audio_text_contrastive_loss",
    "audio_text_matching_loss",
    "bridge_attention_mask",
    "contrastive_similarity",
    "gather_with_grad",
    "sample_hard_negatives",
    "world",
]
