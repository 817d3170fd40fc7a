"""Caption metrics with the COCO caption toolkit (pycocoevalcap; PTB tokenizer and METEOR run on Java): BLEU-1..4,
METEOR, ROUGE-L, CIDEr (CIDEr-D). SPICE, and so SPIDEr, need Stanford CoreNLP: computed when the toolkit finds it,
otherwise reported as unavailable, never as a number."""

import datasets
import evaluate


class MintCaptioning(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of one caption per clip against its references; "
                        "SPICE and SPIDEr when Stanford CoreNLP is available.",
            citation="Chen et al., Microsoft COCO Captions: Data Collection and Evaluation Server, 2015.",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}),
        )

    def _compute(self, predictions, references, spice=True):
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        if not references or any(not r for r in references):
            raise ValueError("every prediction needs at least one reference caption")
        tokenizer = PTBTokenizer()
        refs = tokenizer.tokenize({i: [{"caption": c} for c in r] for i, r in enumerate(references)})
        hyps = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
        scores = {}
        bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
        scores.update({f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)})
        scores["METEOR"] = float(Meteor().compute_score(refs, hyps)[0])
        scores["ROUGE-L"] = float(Rouge().compute_score(refs, hyps)[0])
        scores["CIDEr"] = float(Cider().compute_score(refs, hyps)[0])
        scores["SPICE"] = scores["SPIDEr"] = "unavailable: SPICE needs Stanford CoreNLP"
        if spice:
            try:
                from pycocoevalcap.spice.spice import Spice

                scores["SPICE"] = float(Spice().compute_score(refs, hyps)[0])
                scores["SPIDEr"] = (scores["CIDEr"] + scores["SPICE"]) / 2
            except Exception as error:  # the toolkit downloads CoreNLP at run time; offline it cannot
                scores["SPICE"] = scores["SPIDEr"] = f"unavailable: {type(error).__name__}: {str(error)[:120]}"
        return scores
