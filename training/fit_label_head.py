"""Fit a label prompt's classifier to convergence on a trained Bridge-Net. The classifier trained in the loop trails
the bridge it reads (each step moves both), so it names fewer labels than a probe fitted to the final bridge. This
fits multinomial logistic regression (`label_probe`'s fixed recipe) on the query outputs, averaged over queries and
windows, of every train classification clip, over the model's own labels (`id2label`), and writes the run's bridge
file with that classifier beside the run's config, for `mint ship` or a next round's `stage1_checkpoint`.
`--task-labels` (a next round's `task_labels`) grows the classifier by those labels, fitted on a sample of their
tasks' rows, so the round starts with a classifier that already names them.

    python -m mint.training.fit_label_head --run runs/token_prompt_instruct_label_prompt_18 \
        --out runs/token_prompt_label_head_18
    python -m mint.training.fit_label_head --run runs/token_prompt_instruct_label_prompt_19 \
        --out runs/token_prompt_label_head_19 \
        --task-labels '{"transcription": "speech", "spoken_word": "speech", "language_id": "speech"}'
"""

import argparse
import json
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
from mint.training.sft import with_task_labels


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
    parser.add_argument("--task-labels", type=json.loads, default={}, help="the next round's task_labels, as JSON "
                        "(e.g. '{\"transcription\": \"speech\"}'): the classifier grows by their labels, fitted on a "
                        "sample of those tasks' rows")
    parser.add_argument("--max-task-clips", type=int, default=1000, help="train rows of those tasks (a seeded sample)")
    parser.add_argument("--max-validation-clips", type=int, default=48, help="clips the report scores on")
    parser.add_argument("--feature-cache", default=None, help="default: ~/.cache/mint/features")
    args = parser.parse_args(argv)

    run = Path(args.run)
    model = MintForConditionalGeneration.from_pretrained(run).eval()
    if not model.config.label_prompt_tokens:
        raise ValueError(f"{run}: the model has no label prompt (label_prompt_tokens 0)")
    processor = MintProcessor.from_pretrained(run)
    cache = feature_cache(model, processor, args.feature_cache)
    labels = with_task_labels([model.config.id2label[i] for i in range(model.config.num_labels)], args.task_labels)
    index = {label: i for i, label in enumerate(labels)}

    def features(split: str, tasks: list[str], limit: int | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The split's clips of `tasks`, labelled by their text (classification) or by `--task-labels`; a label the
        model lacks is -1 and counts as wrong."""
        rows = frames_dataset(corpus_rows(args.data, split, tasks, limit, 0, args.languages), cache).to_list()
        if not rows:
            return None
        named = [args.task_labels.get(r["task"], r["text"]) for r in rows]
        frames = [load_frames(r["frames_path"]) for r in rows]
        return torch.stack([bridge_features(model, f) for f in frames]), torch.tensor([index.get(n, -1) for n in named])

    train = features("train", ["classification"], None)
    if train is None or not (train[1] >= 0).any():
        raise ValueError(f"no classification rows of the model's labels in the train split of {args.data}")
    x, y = train[0][train[1] >= 0], train[1][train[1] >= 0]
    tasks = features("train", sorted(args.task_labels), args.max_task_clips) if args.task_labels else None
    if tasks is not None:
        x, y = torch.cat([x, tasks[0]]), torch.cat([y, tasks[1]])
    unseen = sorted(set(labels) - {labels[i] for i in y.unique().tolist()})
    if unseen:  # say a run's task_labels: a fit that never sees a label would never name it
        raise ValueError(f"{run}: labels without train rows: {unseen[:5]} (give their tasks with --task-labels)")
    head = fit_label_head(x, y, len(labels))
    classification = y < model.config.num_labels  # the rows the classifier trained in the loop can name
    trained = {k: getattr(model.model.label_head, k).detach() for k in ("weight", "bias")}
    validation = features("validation", ["classification"], args.max_validation_clips)
    report = {"run": str(run), "labels": len(labels), "train_clips": int(classification.sum()),
              "task_clips": 0 if tasks is None else len(tasks[1]),
              "validation_clips": 0 if validation is None else len(validation[1])}
    for name, weights in (("trained_in_the_loop", trained), ("fitted", head)):
        report[name] = {"train": accuracy(weights, x[classification], y[classification]),
                        "validation": None if validation is None else accuracy(weights, *validation)}
    if args.task_labels:
        held = features("validation", sorted(args.task_labels), args.max_validation_clips)
        report["fitted"]["task_train"] = accuracy(head, x[~classification], y[~classification])
        report["fitted"]["task_validation"] = None if held is None else accuracy(head, *held)
    state = load_file(str(run / BRIDGE_WEIGHTS))
    dtype = state["model.label_head.weight"].dtype
    state.update({f"model.label_head.{k}": v.to(dtype).contiguous() for k, v in head.items()})
    state["model.label_token_ids"] = processor.label_token_ids(labels)
    config = json.loads((run / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    with atomic_folder(args.out) as tmp:
        save_file(state, str(tmp / BRIDGE_WEIGHTS), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "fit.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
