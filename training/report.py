"""The training report of a trained variant: per stage the recipe, data, wall time and loss curve; then the test-split
metrics of `mint eval`.

    python -m mint.training.report --name mint-tiny --out training/reports \
        --stage "stage 1=training/recipes/stage1_mint_tiny.yaml:runs/stage1_mint_tiny" ... \
        --eval "mint-tiny=runs/eval/mint-tiny" ...
"""

import argparse
import hashlib
import json
import re
from pathlib import Path

import yaml

from mint.training.plots import gap_over_time, loss_curve


REPORTS = ("stage1_report.json", "stage2_report.json", "instruct_report.json")


def corpus_sha256(data_dir: str | Path) -> str:
    """sha256 over the corpus' Arrow data files (all splits, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(Path(data_dir).glob("*/data-*.arrow")):
        digest.update(path.parent.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def stage_summary(recipe_path: str, run_dir: str) -> dict:
    run = Path(run_dir)
    report = next(json.loads((run / name).read_text()) for name in REPORTS if (run / name).is_file())
    recipe = yaml.safe_load(Path(recipe_path).read_text())
    log = report["log"]
    train = [e for e in log if "loss" in e]
    evals = [e for e in log if "eval_loss" in e]
    batch = report.get("batch_size") or recipe.get("per_device_train_batch_size", 0) * report.get("world_size", 1)
    summary = {
        "recipe": recipe_path, "run": run_dir, "steps": report["steps"], "batch_size": batch,
        "samples": report["steps"] * batch, "train_seconds": round(report["train_seconds"]),
        "clips": report.get("clips", {}), "first_loss": train[0]["loss"] if train else None,
        "last_loss": train[-1]["loss"] if train else None,
        "eval_loss": sorted({e["step"]: round(e["eval_loss"], 3) for e in evals}.items()),
        "audio_gap": sorted({e["step"]: round(e["eval_audio_gap"], 3) for e in log if "eval_audio_gap" in e}.items()),
        "cpu_hours": round(report["train_seconds"] * report.get("torch_threads", 1) / 3600, 2),
        "learning_rate": recipe.get("learning_rate"),
    }
    for key in ("test_before", "test_after"):
        if key in report:
            summary[key] = report[key]
    return summary, log


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def render(name: str, stages: dict, evals: dict, data_sha: str, command: str, findings: str = "",
           gap_plot: str | None = None) -> str:
    lines = [f"# {name}: training report", ""]
    total = sum(s["train_seconds"] for s in stages.values())
    lines += [f"Trained on 2 CPU cores, {total / 60:.0f} min of training in all. Corpus sha256 `{data_sha[:16]}`.",
              "", "Reproduce (after `make setup`):", "", f"    {command}", "", "## Stages", "",
              "| stage | recipe | steps x batch | train clips | wall time | CPU hours | loss first -> last | eval loss "
              "| audio gap (nats/token) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for stage, s in stages.items():
        evals_text = ", ".join(f"{v} @ {k}" for k, v in s["eval_loss"]) or "-"
        first = f"{s['first_loss']:.2f}" if s["first_loss"] is not None else "-"
        last = f"{s['last_loss']:.2f}" if s["last_loss"] is not None else "-"
        gaps = ", ".join(f"{v} @ {k}" for k, v in s.get("audio_gap", [])) or "-"
        lines.append(f"| {stage} | `{s['recipe']}` | {s['steps']} x {s['batch_size']} | {s['clips'].get('train', '-')} "
                     f"| {s['train_seconds'] / 60:.1f} min | {s.get('cpu_hours', '-')} | {first} -> {last} | "
                     f"{evals_text} | {gaps} |")
    lines.append("")
    for stage, s in stages.items():
        lines.append(f"![{stage}]({s['plot']})")
    if gap_plot:
        lines.append(f"![audio gap over training time]({gap_plot})")
    lines.append("")
    for stage, s in stages.items():
        if "test_after" in s:
            before, after = s["test_before"], s["test_after"]
            lines += [f"{stage}, retrieval on its test clips (chance R@1 {_pct(after['chance/R@1_audio_to_text'])}): "
                      f"audio -> text R@1 {_pct(before['audio_to_text/R@1'])} -> **{_pct(after['audio_to_text/R@1'])}**"
                      f", text -> audio R@1 {_pct(before['text_to_audio/R@1'])} -> {_pct(after['text_to_audio/R@1'])}"
                      + (f"; mean cosine between the test texts' embeddings {after['spread/text_mean_cosine']:.4f}, "
                         f"between the clips' {after['spread/audio_mean_cosine']:.4f}"
                         if "spread/text_mean_cosine" in after else "") + ".",
                      ""]
    if findings:
        lines += [findings.strip(), ""]
    for model, metrics in evals.items():
        table = metrics.get("_markdown") or (Path(metrics["_dir"]) / "metrics.md").read_text()
        lines += [f"## Test split: {model}", "", table]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", default="training/reports")
    parser.add_argument("--data", default="data/mint-corpus")
    parser.add_argument("--stage", action="append", default=[], help="'NAME=RECIPE.yaml:RUN_DIR'")
    parser.add_argument("--eval", action="append", default=[], help="'NAME=EVAL_DIR' (mint eval --out)")
    parser.add_argument("--command", default="make train-mint-tiny")
    parser.add_argument("--findings", default=None, help="a markdown file of conclusions, placed before the tables")
    parser.add_argument("--previous", default=None, help="an earlier report's JSON: its stages and test tables (whose "
                        "runs may not be kept) come first, as they were summarised, with their plots")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = args.name.replace("-", "_")
    previous = json.loads(Path(args.previous).read_text()) if args.previous else {}
    stages = previous.get("stages", {})
    for spec in args.stage:
        stage, paths = spec.split("=", 1)
        recipe, run = paths.split(":", 1)
        summary, log = stage_summary(recipe, run)
        plot = f"{slug}_{re.sub(r'[^A-Za-z0-9-]+', '_', stage).strip('_')}_loss.png"
        loss_curve(log, out / plot, f"{args.name}: {stage}",
                   keys=("loss", "lm_loss", "ctc_loss", "stage1_loss", "label_loss"))
        summary["plot"] = plot
        stages[stage] = summary
    evals = previous.get("eval", {})
    for spec in args.eval:  # the table is kept in the JSON too, so a later report can carry it without the run
        model, directory = spec.split("=", 1)
        evals[model] = {**json.loads((Path(directory) / "metrics.json").read_text()), "_dir": directory,
                        "_markdown": (Path(directory) / "metrics.md").read_text()}
    data_sha = corpus_sha256(args.data)
    findings = Path(args.findings).read_text() if args.findings else ""
    gap_plot = None
    if any(s.get("audio_gap") for s in stages.values()):
        gap_plot = gap_over_time(stages, out / f"{slug}_audio_gap.png", f"{args.name}: audio gap over training").name
    (out / f"{slug}.md").write_text(render(args.name, stages, evals, data_sha, args.command, findings, gap_plot))
    (out / f"{slug}.json").write_text(json.dumps({"stages": stages, "eval": evals, "corpus_sha256": data_sha},
                                                 indent=2, default=str))
    print(out / f"{slug}.md")


if __name__ == "__main__":
    main()
