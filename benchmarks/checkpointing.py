"""Gradient checkpointing: peak memory of a stage-2 training step with and without it, and the loss of each.

    python -m mint.bench.checkpointing [--model models/mint-tiny-base] [--batch-size 16]

Stage 2's backward pass runs through the frozen LLM (SmolLM2-135M's 30 layers in mint-tiny) to reach the soft
prompt, so the LLM's activations are kept for it; checkpointing keeps each layer's input alone and recomputes the
rest in the backward pass. Each side runs in its own process (peak RSS is `VmHWM`): load, one warm-up step (AdamW
allocates its state), then the measured step, on the same batch of real clips with cached encoder frames, bf16
autocast and the LM head on the answer tokens as the stage-2 recipe, from the same seed.
"""

import json
import subprocess
import sys
import tempfile
import time

import torch

from mint.bench.common import DEFAULT_BASE, ROOT, machine, machine_note, parser, setup, table, write_report
from mint.bench.memory import _peak_mb


SIDES = ("plain", "checkpointing")


def child(side: str, model_dir: str, batch_size: int) -> dict:
    """One side, in the subprocess: peak RSS after loading, after the warm-up step and over the measured step."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    from mint.bench.training import StageStep, asterisk_rows, recipe_forward

    with tempfile.TemporaryDirectory() as root:
        runner = StageStep("stage2", model_dir, asterisk_rows(batch_size), root)
        if side == "checkpointing":
            runner.model.activation_checkpointing_enable()
        extra = recipe_forward("stage2")
        loaded = _peak_mb()
        torch.manual_seed(0)
        warmup_loss = runner.step(True, **extra)
        warm = _peak_mb()
        torch.manual_seed(1)
        start = time.perf_counter()
        loss = runner.step(True, **extra)
        seconds = time.perf_counter() - start
        llm = runner.model.model.language_model
        layers = sum(isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing for m in llm.modules())
    return {"side": side, "loaded_mb": loaded, "warm_mb": warm, "peak_mb": _peak_mb(), "step_s": seconds,
            "loss": loss, "warmup_loss": warmup_loss, "checkpointed_llm_layers": layers}


def main(argv=None):
    p = parser(__doc__.splitlines()[0], default_model=DEFAULT_BASE)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--child", choices=SIDES, default=None, help=__import__("argparse").SUPPRESS)
    args = p.parse_args(argv)
    setup(args)
    batch_size = min(args.batch_size, 4) if args.quick else args.batch_size
    if args.child:
        print(json.dumps(child(args.child, args.model, batch_size)))
        return None
    results = {}
    for side in SIDES:
        command = [sys.executable, "-m", "mint.bench.checkpointing", "--child", side, "--model", args.model,
                   "--threads", str(torch.get_num_threads()), "--batch-size", str(batch_size)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"checkpointing side {side} failed:\n{done.stderr[-3000:]}")
        results[side] = json.loads(done.stdout.strip().splitlines()[-1])
    info = machine()
    plain, ckpt = results["plain"], results["checkpointing"]
    step_mb = {s: r["peak_mb"] - r["loaded_mb"] for s, r in results.items()}
    saved = 1 - step_mb["checkpointing"] / step_mb["plain"]
    rows = [[s, f"{r['loaded_mb']:,.0f}", f"**{r['peak_mb']:,.0f}**", f"{step_mb[s]:,.0f}", f"{r['step_s']:.2f}",
             f"{r['loss']:.6f}", r["checkpointed_llm_layers"]] for s, r in results.items()]
    sections = [
        f"Gradient checkpointing cuts the memory a stage-2 step adds on top of the loaded model from "
        f"{step_mb['plain']:,.0f} MB to {step_mb['checkpointing']:,.0f} MB ({saved:.0%} less; peak RSS "
        f"{plain['peak_mb']:,.0f} -> {ckpt['peak_mb']:,.0f} MB) for {ckpt['step_s'] / plain['step_s']:.2f}x the step "
        f"time; the loss is the same ({plain['loss']:.6f} and {ckpt['loss']:.6f}).",
        "",
        f"Model `{args.model}`, fp32 weights; stage 2 at batch {batch_size} real Asterisk clips with their "
        "transcripts, cached encoder frames, bf16 autocast, AdamW, the LM head on the answer tokens "
        "(`logits_at_labels`) as the stage-2 recipe. Each side in its own process: load, one warm-up step, the "
        "measured step (same seed on both sides). Checkpointing is `model.activation_checkpointing_enable()`; the "
        "last column counts the LLM layers it reached (the frozen LLM is where the backward pass keeps most).",
        "",
        table(["side", "after loading MB", "peak MB", "peak - loaded MB", "step s", "loss", "LLM layers checkpointed"],
              rows),
        "",
        machine_note(info),
    ]
    data = {"machine": info, "model": args.model, "batch_size": batch_size, "results": results,
            "step_memory_saved": saved}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.bar(list(SIDES), [results[s]["loaded_mb"] for s in SIDES], label="after loading")
        ax.bar(list(SIDES), [step_mb[s] for s in SIDES], bottom=[results[s]["loaded_mb"] for s in SIDES],
               label="added by the step")
        ax.set_ylabel("peak RSS (MB)")
        ax.set_title("stage-2 step, gradient checkpointing")
        ax.legend()
        return fig

    return write_report("checkpointing", args.out, "Gradient checkpointing in a stage-2 step", sections, data, plot)


if __name__ == "__main__":
    main()
