"""Fit a label prompt's classifier to convergence on a trained Bridge-Net. The classifier trained in the loop trails
the bridge it reads (each step moves both), so it names fewer labels than a probe fitted to the final bridge. This
fits multinomial logistic regression (`label_probe`'s fixed recipe) on the query outputs, averaged over queries and
windows, of every train classification clip, over the model's own labels (`id2label`), and writes the run's bridge
file with that classifier beside the run's config, for `mint ship`.

    python -m mint.training.fit_label_head --run runs/token_prompt_instruct_label_prompt_18 \
        --out runs/token_prompt_label_head_18
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from modeling_mint import MintForConditionalGeneration, MintProcessor
from mint.hub.weights import BRIDGE_WEIGHTS
from mint.io import atomic_folder
from mint.training.common import feature_cache, frames_dataset
from mint.training.data import corpus_rows
from mint.training.features import load_frames
from mint.training.label_probe import bridge_features, fit_linear_probe


def fit_label_head(x: torch.Tensor, y: torch.Tensor, classes: int) -> dict[str, torch.Tensor]:
    """`label_head` weights from features `x` and label ids `y`: the probe fits standardized features, and the
    standardization is folded into its weights, so the head reads the raw features as the model hands them."""
    mean, std = x.mean(0), x.std(0) + 1e-5
    with torch.enable_grad():
        probe = fit_linear_probe((x - mean) / std, y, classes)
    with torch.no_grad():
        weight = probe.weight / std
        return {"weight": weight, "bias": probe.bias - weight @ mean}


def accuracy(head: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 of a `label_head` state on features `x` (a label id of -1, one the model lacks, counts as wrong)."""
    return ((x @ head["weight"].T + head["bias"]).argmax(-1) == y).float().mean().item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="an instruction run with a label prompt (its output folder)")
    parser.add_argument("--data", default="data/mint-corpus-v2")
    parser.add_argument("--out", required=True, help="written whole: bridge.safetensors, config.json, fit.json")
    parser.add_argument("--languages", nargs="+", default=["en"], help="the train rows' languages, as the run's")
    parser.add_argument("--max-validation-clips", type=int, default=48, help="clips the report scores on")
    parser.add_argument("--feature-cache", default=None, help="default: ~/.cache/mint/features")
    args = parser.parse_args(argv)

    run = Path(args.run)
    model = MintForConditionalGeneration.from_pretrained(run).eval()
    if not model.config.label_prompt_tokens:
        raise ValueError(f"{run}: the model has no label prompt (label_prompt_tokens 0)")
    cache = feature_cache(model, MintProcessor.from_pretrained(run), args.feature_cache)
    index = {label: i for i, label in model.config.id2label.items()}

    def features(split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The split's classification clips of the model's labels (a label it lacks counts as wrong)."""
        rows = frames_dataset(corpus_rows(args.data, split, ["classification"], limit, 0, args.languages),
                              cache).to_list()
        if not rows:
            return None
        frames = [load_frames(r["frames_path"]) for r in rows]
        return torch.stack([bridge_features(model, f) for f in frames]), torch.tensor([index.get(r["text"], -1) for r in rows])

    train = features("train", None)
    if train is None or not (train[1] >= 0).any():
        raise ValueError(f"no classification rows of the model's labels in the train split of {args.data}")
    x, y = train[0][train[1] >= 0], train[1][train[1] >= 0]
    unseen = sorted(set(index) - {model.config.id2label[i] for i in y.unique().tolist()})
    if unseen:  # a task's label (the run's task_labels): a fit on classification rows alone would never name it
        raise ValueError(f"{run}: labels without train classification rows: {unseen[:5]}; this fits those rows alone")
    head = fit_label_head(x, y, model.config.num_labels)
    trained = {k: getattr(model.model.label_head, k).detach() for k in ("weight", "bias")}
    validation = features("validation", args.max_validation_clips)
    report = {"run": str(run), "train_clips": len(y), "validation_clips": 0 if validation is None else len(validation[1])}
    for name, weights in (("trained_in_the_loop", trained), ("fitted", head)):
        report[name] = {"train": accuracy(weights, x, y),
                        "validation": None if validation is None else accuracy(weights, *validation)}
    state = load_file(str(run / BRIDGE_WEIGHTS))
    dtype = state["model.label_head.weight"].dtype
    state.update({f"model.label_head.{k}": v.to(dtype).contiguous() for k, v in head.items()})
    with atomic_folder(args.out) as tmp:
        save_file(state, str(tmp / BRIDGE_WEIGHTS), metadata={"format": "pt"})
        shutil.copy2(run / "config.json", tmp / "config.json")
        (tmp / "fit.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
