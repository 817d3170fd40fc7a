"""How much of a sound's label the frozen encoder carries, before any Bridge-Net or LLM reads it: a linear probe and
a nearest neighbour on each clip's pooled encoder frames (mean, standard deviation and maximum over time), fitted on
the train split's label rows of some sources and scored on another split's. A label accuracy that the model's answers
stay far under is one the training did not teach, not one the audio lacks. With `--bridge`, the same probe reads what
the LLM is handed instead: the Bridge-Net's query outputs, averaged over queries and windows (as retrieval reads
them), so a loss between the frames and the answers is placed before or after the bridge. A model with a label prompt
also reports its own classifier's top-1 on the scored clips: what its LLM is handed to copy.

    python -m mint.training.label_probe --model models/mint-tiny-token-prompt --data data/mint-corpus-v2 \
        --split validation --sources 0ad supertuxkart tuxpaint freedesktop instruments [--bridge]
"""

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from modeling_mint import MintForConditionalGeneration, MintProcessor
from mint.training.common import feature_cache, frames_dataset
from mint.training.data import corpus_rows
from mint.training.features import load_frames


def pooled(frames: torch.Tensor) -> torch.Tensor:
    """`(F, D)` frames -> `(3 D,)`: mean, standard deviation (zero for one frame) and maximum over time."""
    frames = frames.float()
    spread = frames.std(0) if frames.shape[0] > 1 else torch.zeros(frames.shape[1])
    return torch.cat([frames.mean(0), spread, frames.amax(0)])


def fit_linear_probe(x: torch.Tensor, y: torch.Tensor, classes: int, steps: int = 300, lr: float = 1e-2,
                     weight_decay: float = 1e-2, seed: int = 0) -> torch.nn.Linear:
    """Multinomial logistic regression by full-batch AdamW: a fixed recipe, the same for every encoder."""
    torch.manual_seed(seed)
    probe = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(probe(x), y).backward()
        optimizer.step()
    return probe.eval()


@torch.no_grad()
def probe_labels(train: list[torch.Tensor], train_labels: list[str], test: list[torch.Tensor],
                 test_labels: list[str], steps: int = 300, features=pooled) -> dict:
    """Accuracy of the linear probe and of the cosine nearest neighbour over every label seen in training (a test
    label never trained counts as wrong), standardized by the train split's statistics. `features` turns a clip's
    `(F, D)` frames into the vector probed."""
    labels = sorted(set(train_labels))
    index = {label: i for i, label in enumerate(labels)}
    x_train, x_test = torch.stack([features(f) for f in train]), torch.stack([features(f) for f in test])
    mean, std = x_train.mean(0), x_train.std(0) + 1e-5
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    y_train = torch.tensor([index[label] for label in train_labels])
    y_test = torch.tensor([index.get(label, -1) for label in test_labels])
    with torch.enable_grad():
        probe = fit_linear_probe(x_train, y_train, len(labels), steps)
    linear = probe(x_test).argmax(-1)
    nearest = y_train[(F.normalize(x_test, dim=-1) @ F.normalize(x_train, dim=-1).T).argmax(-1)]
    return {"linear_probe_accuracy": (linear == y_test).float().mean().item(),
            "nearest_neighbour_accuracy": (nearest == y_test).float().mean().item(),
            "chance": 1 / len(labels), "labels": len(labels), "train_clips": len(train), "test_clips": len(test),
            "test_labels_trained": int((y_test >= 0).sum()),
            "predictions": [{"reference": r, "linear_probe": labels[p]} for r, p in zip(test_labels, linear.tolist())]}


@torch.no_grad()
def bridge_features(model, frames: torch.Tensor) -> torch.Tensor:
    """`(F, D)` frames -> `(H,)`: the Bridge-Net's query outputs averaged over queries and windows, what retrieval
    and a label prompt's classifier read."""
    mask = torch.ones(1, frames.shape[0], dtype=torch.long)
    return model.model.clip_query_output(frames[None].float(), mask).mean((0, 1)).float()


@torch.no_grad()
def classifier_accuracy(model, frames: list[torch.Tensor], labels: list[str]) -> float:
    """Top-1 accuracy of the model's own label classifier (its label prompt) on clips given as `(F, D)` frames."""
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    hits = [names[model.model.label_logits(f[None].float(), torch.ones(1, f.shape[0], dtype=torch.long)).argmax()]
            == label for f, label in zip(frames, labels)]
    return sum(hits) / len(hits)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an assembled MINT folder: its frozen encoder is probed")
    parser.add_argument("--data", default="data/mint-corpus-v2")
    parser.add_argument("--split", default="validation", help="the split scored (the probe fits on train)")
    parser.add_argument("--sources", nargs="+", required=True, help="the sound sources whose labels are probed")
    parser.add_argument("--max-clips", type=int, default=48, help="a seeded subset of the scored split")
    parser.add_argument("--task", default="classification")
    parser.add_argument("--bridge", action="store_true",
                        help="probe the Bridge-Net's query outputs (averaged) instead of the pooled encoder frames")
    parser.add_argument("--feature-cache", default=None, help="default: ~/.cache/mint/features")
    parser.add_argument("--out", default=None, help="write the result here as JSON")
    args = parser.parse_args(argv)

    model = MintForConditionalGeneration.from_pretrained(args.model).eval()
    cache = feature_cache(model, MintProcessor.from_pretrained(args.model), args.feature_cache)

    def frames(split, limit):
        rows = frames_dataset(corpus_rows(args.data, split, [args.task], limit, 0, ["en"], args.sources),
                              cache).to_list()
        if not rows:
            raise ValueError(f"no {args.task} rows of {args.sources} in the {split} split of {args.data}")
        return [load_frames(r["frames_path"]) for r in rows], [r["text"] for r in rows]

    def query_outputs(frames: torch.Tensor) -> torch.Tensor:
        return bridge_features(model, frames)

    scored = frames(args.split, args.max_clips)
    result = {"model": args.model, "split": args.split, "sources": args.sources,
              "features": "bridge query outputs" if args.bridge else "pooled encoder frames",
              **probe_labels(*frames("train", None), *scored, features=query_outputs if args.bridge else pooled)}
    if model.config.label_prompt_tokens:
        result["classifier_accuracy"] = classifier_accuracy(model, *scored)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2))
    return result


if __name__ == "__main__":
    main()
