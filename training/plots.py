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
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
