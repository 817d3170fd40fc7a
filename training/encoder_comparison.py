"""Which frozen encoder feeds the Bridge-Net better for the same CPU time: one CTC-alignment recipe (no LLM) per
encoder, each stopped on the clock by its `stop_after_minutes`, then what the Bridge-Net spells by itself (the CTC
probe) on held-out speech, and the validation CTC loss against training minutes. Runs already trained are reused.

    python -m mint.training.encoder_comparison --out training/reports \
        --run "Whisper tiny.en=training/recipes/encoder_ctc_whisper_tiny_en.yaml" \
        --run "Whisper base=training/recipes/encoder_ctc_whisper_base.yaml"
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import yaml

from mint.training.report import REPORTS

PROBE_SOURCES = {"Asterisk prompts": "asterisk", "Queen, test speakers": "queen", "Drascula (held-out game)": "drascula"}


def last_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint (the one saved when the clock stopped the run)."""
    done = [p for p in run_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    if not done:
        raise FileNotFoundError(f"{run_dir}: no complete checkpoint to probe")
    return max(done, key=lambda p: int(p.name.split("-")[1]))


def train(recipe_path: str) -> dict:
    """Train the recipe unless its run finished before; the wall time of the whole command (corpus, frame cache,
    training) is kept beside the Trainer's report."""
    from mint.training import pretrain_generative
    from mint.training.common import stage_arguments

    recipe = yaml.safe_load(Path(recipe_path).read_text())
    run_dir = Path(recipe["output_dir"])
    timing = run_dir / "command_seconds.json"
    if not timing.is_file():
        start = time.time()
        pretrain_generative.main(*stage_arguments(pretrain_generative, recipe_path))
        timing.write_text(json.dumps({"command_seconds": time.time() - start}))
    report = next(json.loads((run_dir / n).read_text()) for n in REPORTS if (run_dir / n).is_file())
    return {"recipe": recipe_path, "run_dir": str(run_dir), "model_dir": recipe["model_dir"],
            "data_dir": recipe["data_dir"], "steps": report["steps"], "train_seconds": report["train_seconds"],
            "command_seconds": json.loads(timing.read_text())["command_seconds"],
            "validation_ctc": [(e["step"], e["eval_loss"]) for e in report["log"] if "eval_loss" in e],
            "final_validation_ctc": report["eval"]["eval_loss"]}


def probe(run: dict, sources: dict[str, str], max_clips: int) -> dict[str, dict]:
    from mint.training import ctc_probe

    checkpoint = str(last_checkpoint(Path(run["run_dir"])))
    return {name: ctc_probe.main(["--model", run["model_dir"], "--checkpoint", checkpoint, "--data", run["data_dir"],
                                  "--split", "test", "--sources", source, "--max-clips", str(max_clips)])
            for name, source in sources.items()}


def render(runs: dict[str, dict]) -> str:
    sources = list(next(iter(runs.values()))["probe"])
    lines = ["| encoder | set-up and frame cache (min) | training (min) | steps | validation CTC (first eval -> end) | "
             + " | ".join(f"CTC-probe WER, {name}" for name in sources) + " |",
             "|---" * (5 + len(sources)) + "|"]
    for name, run in runs.items():
        setup = (run["command_seconds"] - run["train_seconds"]) / 60
        first = run["validation_ctc"][0][1] if run["validation_ctc"] else float("nan")
        wers = " | ".join(f"{run['probe'][s]['wer']:.2f} ({run['probe'][s]['clips']} clips)" for s in sources)
        lines.append(f"| {name} | {setup:.1f} | {run['train_seconds'] / 60:.1f} | {run['steps']} | "
                     f"{first:.2f} -> {run['final_validation_ctc']:.2f} | {wers} |")
    return "\n".join(lines)


def plot(runs: dict[str, dict], path: Path):
    """Validation CTC loss against training minutes, one line per encoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for name, run in runs.items():
        per_step = run["train_seconds"] / 60 / max(run["steps"], 1)
        points = [(step * per_step, loss) for step, loss in run["validation_ctc"]]
        if points:
            ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xlabel("training minutes (this machine)")
    ax.set_ylabel("validation CTC loss")
    ax.set_title("CTC alignment of the token prompt, per frozen encoder")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def pair(spec: str, flag: str, form: str) -> tuple[str, str]:
    name, _, value = spec.partition("=")
    if not name or not value:
        raise ValueError(f"{flag} wants '{form}', got {spec!r}")
    return name, value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="'ENCODER NAME=RECIPE.yaml' (mint train stage2)")
    parser.add_argument("--probe", action="append", default=[],
                        help="'SLICE NAME=SOURCE': a corpus source whose test clips the probe transcribes; default: "
                             + ", ".join(PROBE_SOURCES.values()))
    parser.add_argument("--max-clips", type=int, default=96, help="test clips per held-out source for the probe")
    parser.add_argument("--out", default="training/reports")
    args = parser.parse_args(argv)

    specs = [pair(spec, "--run", "NAME=RECIPE.yaml") for spec in args.run]
    sources = dict(pair(spec, "--probe", "NAME=SOURCE") for spec in args.probe) or PROBE_SOURCES
    runs = {name: train(recipe) for name, recipe in specs}
    for run in runs.values():
        run["probe"] = probe(run, sources, args.max_clips)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(runs, out / "encoder_comparison.png")
    command = "python -m mint.training.encoder_comparison " + shlex.join(sys.argv[1:] if argv is None else argv)
    table = render(runs)
    (out / "encoder_comparison.md").write_text(
        "# Encoder comparison at the same CPU time\n\n"
        "The token prompt's CTC alignment (no LLM), from the untrained Bridge-Net, with one recipe per encoder that "
        "differs only in the assembled model; each run stops on the clock (`stop_after_minutes`). The CTC probe "
        "decodes the Bridge-Net's soft prompt by itself (greedy CTC over the LLM's vocabulary) on test clips of "
        f"held-out sources and speakers, at most {args.max_clips} per source, the same clips for each encoder.\n\n"
        f"{table}\n\n![validation CTC loss against training minutes](encoder_comparison.png)\n\n"
        f"Reproduce: `{command}`\n")
    (out / "encoder_comparison.json").write_text(json.dumps(runs, indent=2))
    print(table)
    return runs


if __name__ == "__main__":
    main()
