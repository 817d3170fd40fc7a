"""Plots for training reports (PNG)."""

from pathlib import Path


def loss_curve(log: list[dict], path: str | Path, title: str, keys=("loss",)):
    """Training (and eval) loss against the step, from a Trainer's `log_history`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for key in (*keys, "eval_loss"):
        points = [(e["step"], e[key]) for e in log if key in e and "step" in e]
        if points:
            ax.plot(*zip(*points), marker="." if key == "eval_loss" else None, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    gaps = [(e["step"], e["eval_audio_gap"]) for e in log if "eval_audio_gap" in e and "step" in e]
    if gaps:  # whether the LLM reads the audio: own vs another clip's audio, on its own axis
        gap_ax = ax.twinx()
        gap_ax.plot(*zip(*gaps), color="black", marker="o", linestyle="--", label="audio gap (nats/token)")
        gap_ax.set_ylabel("audio gap (nats/token)")
        more = gap_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def gap_over_time(stages: dict[str, dict], path: str | Path, title: str):
    """The audio-dependence gap at each evaluation against the training minutes spent so far, over stages run one
    after another (`stages` in order, each with `steps`, `train_seconds` and `audio_gap` as `[(step, gap), ...]`):
    whether the hours went where the LLM learns to read the audio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    start, shaded = 0.0, False
    for name, stage in stages.items():
        minutes = stage["train_seconds"] / 60
        points = [(start + minutes * step / max(stage["steps"], 1), gap) for step, gap in stage.get("audio_gap", [])]
        if points:
            ax.plot(*zip(*points), marker="o", label=name)
        else:  # a stage without the LLM (CTC alignment) spends time and measures no gap
            ax.axvspan(start, start + minutes, color="0.9", label=None if shaded else "no LLM in the loop (no gap)")
            shaded = True
        start += minutes
    ax.set_xlabel("training minutes (2 CPU cores)")
    ax.set_ylabel("audio gap (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def bar_panels(panels: dict[str, dict[str, float | tuple[float, float]]], path: str | Path):
    """One small bar chart per metric, side by side: `{metric: {name: value or (mean, std)}}`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {title: bars for title, bars in panels.items() if bars}
    if not panels:
        return None
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.2), squeeze=False)
    for ax, (title, bars) in zip(axes[0], panels.items()):
        values = [v if isinstance(v, tuple) else (v, 0.0) for v in bars.values()]
        errors = [s for _, s in values]
        ax.bar(range(len(bars)), [m for m, _ in values], yerr=errors if any(errors) else None, capsize=4,
               color=(colours * (1 + len(bars) // len(colours)))[: len(bars)])
        ax.set_xticks(range(len(bars)), list(bars), rotation=30, ha="right", fontsize=7)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
