"""Accuracy of generated labels or answers: exact, and after normalization (lowercase, punctuation removed)."""

import re

import datasets
import evaluate


def normalize(text: str) -> str:
    text = re.sub(r"[^\w' ]+", " ", text.lower().replace("-", " "))
    return " ".join(text.split())


class MintAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Share of predictions equal to the reference: exactly, and after normalization. Chance is "
                        "one over the distinct references.",
            citation="",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        if not references:
            raise ValueError("no references")
        n = len(references)
        return {"accuracy": sum(p == r for p, r in zip(predictions, references)) / n,
                "accuracy_normalized": sum(normalize(p) == normalize(r) for p, r in zip(predictions, references)) / n,
                "labels": len(set(references)), "chance": 1.0 / len(set(references))}
