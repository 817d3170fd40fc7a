"""Retrieval metrics computed from embeddings."""

import torch


def recall_at_k(similarity: torch.Tensor, positives: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """R@k for each query row of `similarity (Q, C)`; `positives (Q, C)` marks the correct candidates."""
    order = similarity.argsort(dim=1, descending=True)
    hit_rank = positives.gather(1, order).float().argmax(dim=1)  # rank of the first correct candidate
    return {f"R@{k}": float((hit_rank < k).float().mean()) for k in ks}


def retrieval_metrics(audio_embeds: torch.Tensor, text_embeds: torch.Tensor, text_of_audio: list[int]) -> dict:
    """Audio-to-text and text-to-audio recall.

    Args:
        audio_embeds: `(A, Nq, P)` normalized query embeddings; similarity is the max over queries.
        text_embeds: `(T, P)` normalized text embeddings of the distinct candidate texts.
        text_of_audio: for each audio, the index of its text.
    """
    similarity = torch.einsum("aqd,td->atq", audio_embeds, text_embeds).amax(-1)
    positives = torch.zeros_like(similarity, dtype=torch.bool)
    positives[torch.arange(len(text_of_audio)), torch.tensor(text_of_audio)] = True
    a2t = recall_at_k(similarity, positives)
    t2a = recall_at_k(similarity.t(), positives.t())
    metrics = {f"audio_to_text/{k}": v for k, v in a2t.items()}
    metrics.update({f"text_to_audio/{k}": v for k, v in t2a.items()})
    metrics["chance/R@1_audio_to_text"] = 1.0 / similarity.shape[1]
    # How far apart the embeddings are: near 1, one side maps everything to one point and no head can rank it.
    metrics["spread/audio_mean_cosine"] = mean_pairwise_cosine(audio_embeds.mean(1))
    metrics["spread/text_mean_cosine"] = mean_pairwise_cosine(text_embeds)
    return metrics


def mean_pairwise_cosine(embeds: torch.Tensor) -> float:
    """Mean cosine similarity over the distinct pairs of rows of `(N, D)`; 0.0 for fewer than two rows."""
    if embeds.shape[0] < 2:
        return 0.0
    unit = torch.nn.functional.normalize(embeds.float(), dim=-1)
    n = unit.shape[0]
    total = (unit.sum(0) @ unit.sum(0)) - n  # the sum over all ordered pairs i != j
    return float(total / (n * (n - 1)))
