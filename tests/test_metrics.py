"""The local `evaluate` metric modules in mint_metrics/ load offline and agree with values computed by hand."""

from pathlib import Path

import evaluate
import pytest


METRICS = Path(__file__).resolve().parents[1] / "mint_metrics"


def load(name):
    return evaluate.load(str(METRICS / name))


def test_wer_counts_edits_after_normalization():
    out = load("mint_wer").compute(predictions=["The cat sit on mat."], references=["the cat sat on the mat"])
    # one substitution (sat -> sit), one deletion (the), six reference words
    assert out["wer"] == pytest.approx(2 / 6) and (out["substitutions"], out["deletions"]) == (1, 1)
    with pytest.raises(ValueError, match="non-empty"):
        load("mint_wer").compute(predictions=["x"], references=[""])


def test_accuracy_exact_and_normalized():
    out = load("mint_accuracy").compute(predictions=["Dog", "cat ", "bird"], references=["dog", "cat", "cow"])
    assert out == {"accuracy": 0.0, "accuracy_normalized": pytest.approx(2 / 3), "labels": 3,
                   "chance": pytest.approx(1 / 3)}


def test_retrieval_recall_and_map():
    metric = load("mint_retrieval")
    metric.add_batch(predictions=[[2, 0, 1], [1, 2, 0]], references=[[0], [1]])
    out = metric.compute(predictions=[[0, 1, 2]], references=[[2]])
    # ranks of the correct candidate: 2, 1, 3
    assert out["R@1"] == pytest.approx(1 / 3) and out["R@5"] == 1.0
    assert out["mAP@10"] == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)


@pytest.mark.slow  # the COCO caption toolkit starts Java
def test_captioning_matches_hand_computed_bleu_and_rouge():
    out = load("mint_captioning").compute(predictions=["a dog barks"], references=[["a dog barks loudly"]])
    # BLEU-1: all 3 unigrams match, brevity penalty exp(1 - 4/3); ROUGE-L: LCS 3, P 1, R 3/4, beta 1.2
    assert out["BLEU-1"] == pytest.approx(2.718281828 ** (1 - 4 / 3), rel=1e-3)
    assert out["ROUGE-L"] == pytest.approx(2.44 * 0.75 / (0.75 + 1.44), rel=1e-4)
    assert 0 < out["METEOR"] <= 1 and out["CIDEr"] >= 0
    assert isinstance(out["SPICE"], (str, float))
    if isinstance(out["SPICE"], str):  # offline: no CoreNLP, so no number
        assert out["SPICE"].startswith("unavailable") and out["SPIDEr"] == out["SPICE"]


def test_retrieval_metrics_report_how_far_apart_each_side_is():
    """The spread rows: the mean pairwise cosine of each side, 1.0 when a side maps everything to one point."""
    import torch

    from mint.training.metrics import mean_pairwise_cosine, retrieval_metrics

    rows = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    by_hand = (0.0 + 2 ** -0.5 + 2 ** -0.5) / 3  # the three distinct pairs
    assert mean_pairwise_cosine(rows) == pytest.approx(by_hand)
    assert mean_pairwise_cosine(rows[:1]) == 0.0
    audio = torch.nn.functional.normalize(torch.randn(4, 2, 8), dim=-1)
    collapsed = torch.nn.functional.normalize(torch.ones(4, 8), dim=-1)
    metrics = retrieval_metrics(audio, collapsed, [0, 1, 2, 3])
    assert metrics["spread/text_mean_cosine"] == pytest.approx(1.0)
    assert metrics["spread/audio_mean_cosine"] == pytest.approx(mean_pairwise_cosine(audio.mean(1)))
