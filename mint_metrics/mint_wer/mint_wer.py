"""Word error rate after MINT's text normalization (lowercase, punctuation removed), with jiwer."""

import re

import datasets
import evaluate
import jiwer


def normalize(text: str) -> str:
    text = re.sub(r"[^\w' ]+", " ", text.lower().replace("-", " "))
    return " ".join(text.split())


class MintWer(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Word error rate over the corpus (errors / reference words) after lowercasing and removing "
                        "punctuation; empty references are skipped.",
            citation="",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        pairs = [(normalize(r), normalize(p)) for p, r in zip(predictions, references)]
        pairs = [(r, p) for r, p in pairs if r]
        if not pairs:
            raise ValueError("no non-empty references")
        out = jiwer.process_words([r for r, _ in pairs], [p for _, p in pairs])
        return {"wer": float(out.wer), "substitutions": out.substitutions, "deletions": out.deletions,
                "insertions": out.insertions, "reference_words": sum(len(r.split()) for r, _ in pairs)}
