"""The paper's claim at our scale: does multi-target pre-training (stage 1) and the instruction in the Bridge-Net help?
Four pipelines on the same data and the same number of training samples, each with several seeds, evaluated on the
same test clips; mean and standard deviation per metric.

    python -m mint.training.ablation --config training/recipes/ablation_mint_tiny.yaml

(a) stage 2 only; (b) stage 1 + stage 2; (c) stage 1 + 2 + instruction tuning with the instruction in the Bridge-Net
and the LLM prompt; (d) as (c) with the instruction in the LLM prompt only. Compute is matched in training samples:
(a) spends stage 1's and instruction tuning's samples on stage 2, (b) spends instruction tuning's on stage 2.
Every run is a folder under `out`; a finished run's metrics also go to `results` (committed with the reports), so the
command resumes where it stopped, on this machine or another.
"""

import argparse
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mint.io import atomic_file
from mint.training.common import stage_arguments


@dataclass
class AblationRecipe:
    stage1_recipe: str = "training/recipes/stage1_mint_tiny.yaml"
    stage2_recipe: str = "training/recipes/stage2_mint_tiny.yaml"
    instruct_recipe: str = "training/recipes/instruct_mint_tiny.yaml"
    model_dir: str = "models/mint-tiny-base"
    data_dir: str = "data/mint-corpus"
    out: str = "runs/ablation"
    results: str | None = None  # finished runs' metrics, kept apart from `out` (e.g. committed) so a run is never redone
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    stage1_samples: int = 1280
    stage2_samples: int = 640
    instruct_samples: int = 640
    batch_size: int = 16
    eval_tasks: list[str] = field(default_factory=lambda: [
        "captioning", "transcription", "classification", "spoken_word", "question_answering"])
    eval_clips_per_task: int = 48
    eval_split: str = "test"


PIPELINES = {
    "a": "stage 2 only",
    "b": "stage 1 + stage 2",
    "c": "stage 1 + 2 + instruct (instruction in Bridge-Net and LLM)",
    "d": "stage 1 + 2 + instruct (instruction in LLM only)",
}
HEADLINE = {  # (task, metric, higher is better)
    "transcription": ("WER", False),
    "captioning": ("CIDEr", True),
    "classification": ("accuracy", True),
    "spoken_word": ("accuracy", True),
    "question_answering": ("accuracy", True),
}


def stages(pipeline: str, r: AblationRecipe) -> list[tuple[str, str, dict]]:
    """(stage, base recipe, overrides) in order; steps from samples at the shared batch size."""
    steps = lambda samples: max(1, samples // r.batch_size)  # noqa: E731
    s1, s2, it = steps(r.stage1_samples), steps(r.stage2_samples), steps(r.instruct_samples)
    plan = {"a": [("stage2", s1 + s2 + it)], "b": [("stage1", s1), ("stage2", s2 + it)],
            "c": [("stage1", s1), ("stage2", s2), ("instruct", it)], "d": [("stage1", s1), ("stage2", s2), ("instruct", it)]}
    recipes = {"stage1": r.stage1_recipe, "stage2": r.stage2_recipe, "instruct": r.instruct_recipe}
    out = []
    for stage, n in plan[pipeline]:
        overrides = {"max_steps": n, "per_device_train_batch_size": r.batch_size, "model_dir": r.model_dir,
                     "data_dir": r.data_dir, "save_strategy": "no", "eval_strategy": "no", "lr_scheduler_type": "cosine",
                     "warmup_steps": max(1, n // 10)}
        if stage == "stage1":
            overrides["max_eval_clips"] = 64
        if stage == "instruct":
            overrides.update(instruction_in_bridge=pipeline == "c", instruction_in_prompt=True, lora_rank=0)
        out.append((stage, recipes[stage], overrides))
    return out


def run_pipeline(pipeline: str, seed: int, r: AblationRecipe) -> Path:
    """Train one pipeline with one seed; each stage starts from the previous one's weights. A stage's folder is
    nested in the one it starts from and named by its settings, so a prefix that pipelines share (the same stages
    and steps with the same seed: (b), (c) and (d) share stage 1, (c) and (d) stage 2) is trained once."""
    from mint.training import pretrain_bridge, pretrain_generative, sft

    scripts = {"stage1": (pretrain_bridge, "stage1_report.json"), "stage2": (pretrain_generative, "stage2_report.json"),
               "instruct": (sft, "instruct_report.json")}
    previous = None
    for stage, config, overrides in stages(pipeline, r):
        name = f"{stage}-{overrides['max_steps']}"
        if stage == "instruct":
            name += "-bridge" if overrides["instruction_in_bridge"] else "-llm"
        out = (previous or Path(r.out) / f"seed{seed}") / name
        script, report = scripts[stage]
        if stage == "stage2":  # from the stage-1 run, or (pipeline a) from the untrained bridge
            overrides["stage1_checkpoint"] = str(previous) if previous else None
        elif stage == "instruct":
            overrides["stage2_weights"] = str(previous / "bridge.safetensors")
        if not (out / report).is_file():
            script.main(*stage_arguments(script, config, **overrides, output_dir=str(out), seed=seed))
        previous = out
    return previous


def evaluate_run(pipeline: str, seed: int, last: Path, r: AblationRecipe) -> dict:
    from mint.training.evaluate import evaluate

    out = Path(r.out) / pipeline / f"seed{seed}" / "eval"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    return evaluate(r.model_dir, r.data_dir, r.eval_split, str(out), tasks=r.eval_tasks, languages=["en"],
                    max_per_task=r.eval_clips_per_task, instruction=pipeline in ("c", "d"),
                    weights=str(last / "bridge.safetensors"))


def result_path(pipeline: str, seed: int, r: AblationRecipe) -> Path | None:
    return Path(r.results) / f"{pipeline}_seed{seed}.json" if r.results else None


def run(pipeline: str, seed: int, r: AblationRecipe) -> dict:
    """One pipeline and seed, trained and evaluated unless its metrics are already in `results`, where they are
    then written (atomically: a killed run leaves no file there)."""
    kept = result_path(pipeline, seed, r)
    if kept is not None and kept.is_file():
        return json.loads(kept.read_text())
    metrics = evaluate_run(pipeline, seed, run_pipeline(pipeline, seed, r), r)
    if kept is not None:
        with atomic_file(kept) as tmp:
            tmp.write_text(json.dumps(metrics, indent=1))
    return metrics


def summarize(results: dict[str, list[dict]]) -> dict:
    """Mean and standard deviation over seeds of each pipeline's headline metrics."""
    table = {}
    for pipeline, runs in results.items():
        if not runs:
            continue
        row = {"seeds": len(runs)}
        for task, (metric, _) in HEADLINE.items():
            values = [run[task]["all"][metric] for run in runs if task in run]
            if values:
                row[f"{task} {metric}"] = {"mean": statistics.mean(values),
                                           "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                           "values": values}
        table[pipeline] = row
    return table


def markdown(table: dict, r: AblationRecipe) -> str:
    columns = [f"{task} {metric}" for task, (metric, _) in HEADLINE.items()]
    arrows = {f"{t} {m}": ("↑" if up else "↓") for t, (m, up) in HEADLINE.items()}
    lines = [f"{r.eval_split.capitalize()} split, English, {r.eval_clips_per_task} clips per task; mean ± std over "
             f"seeds; {r.stage1_samples + r.stage2_samples + r.instruct_samples} training samples per pipeline.", "",
             "| pipeline | seeds | " + " | ".join(f"{c} {arrows[c]}" for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for pipeline, row in table.items():
        cells = [f"{row[c]['mean']:.3f} ± {row[c]['std']:.3f}" if c in row else "–" for c in columns]
        lines.append(f"| ({pipeline}) {PIPELINES[pipeline]} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path):
    from mint.training.plots import bar_panels

    columns = [f"{task} {metric}" for task, (metric, _) in HEADLINE.items()]
    bar_panels({c: {f"({p})": (table[p][c]["mean"], table[p][c]["std"]) for p in table if c in table[p]}
                for c in columns}, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", "--recipe", default=None, help="YAML with AblationRecipe fields")
    parser.add_argument("--pipelines", nargs="*", default=list(PIPELINES))
    parser.add_argument("--seeds", nargs="*", type=int, default=None,
                        help="run only these of the recipe's seeds (e.g. one per machine); the table covers them")
    parser.add_argument("--table-only", action="store_true",
                        help="tabulate the runs already kept in `results`, train nothing")
    args = parser.parse_args(argv)
    fields = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    recipe = AblationRecipe(**(fields or {}))
    if args.table_only and not recipe.results:
        parser.error("--table-only needs a recipe with `results`")
    if args.seeds is not None:
        unknown = sorted(set(args.seeds) - set(recipe.seeds))
        if unknown:
            parser.error(f"--seeds {unknown} are not in the recipe's seeds {recipe.seeds}")
        recipe.seeds = [s for s in recipe.seeds if s in args.seeds]
    results = {pipeline: [] for pipeline in args.pipelines}
    for seed in recipe.seeds:  # seed by seed, so a run cut short still compares every pipeline
        for pipeline in args.pipelines:
            kept = result_path(pipeline, seed, recipe)
            if args.table_only and not kept.is_file():
                continue
            results[pipeline].append(run(pipeline, seed, recipe))
    table = summarize(results)
    out = Path(recipe.results or recipe.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps(table, indent=2))
    (out / "ablation.md").write_text(markdown(table, recipe))
    plot(table, out / "ablation.png")
    print(markdown(table, recipe))
    return table


if __name__ == "__main__":
    main()
