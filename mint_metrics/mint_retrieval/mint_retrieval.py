"""Retrieval recall R@1/5/10 and mAP@10 from ranked candidates."""

import datasets
import evaluate


class MintRetrieval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="For each query, `predictions` are candidate ids ranked best first and `references` the ids "
                        "of its correct candidates. R@k: share of queries with a correct candidate in the top k. "
                        "mAP@10: mean over queries of the average precision of the top 10.",
            citation="",
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64")),
                                        "references": datasets.Sequence(datasets.Value("int64"))}),
        )

    def _compute(self, predictions, references, ks=(1, 5, 10)):
        if not references:
            raise ValueError("no queries")
        recall = {k: 0.0 for k in ks}
        average_precision = 0.0
        for ranked, correct in zip(predictions, references):
            correct = set(correct)
            hits = [c in correct for c in ranked]
            for k in ks:
                recall[k] += any(hits[:k])
            found, precision_sum = 0, 0.0
            for rank, hit in enumerate(hits[:10], start=1):
                if hit:
                    found += 1
                    precision_sum += found / rank
            average_precision += precision_sum / min(len(correct), 10) if correct else 0.0
        n = len(references)
        return {**{f"R@{k}": recall[k] / n for k in ks}, "mAP@10": average_precision / n}
