"""Memory: peak resident set size of inference and of one training step of each stage, each in its own process.

    python -m mint.bench.memory [--model models/mint-tiny-base]

Each case runs in a fresh subprocess and reports its peak RSS (`VmHWM` of `/proc/self/status`) after loading the
model and again at the end (the peak over the whole process). Inference: generate exactly `--new-tokens` tokens for
one 30-s clip. Training: one step of the stage at batch `--batch-size` on cached encoder frames (as the stages train),
bf16 autocast, AdamW.
"""

import json
import resource
import subprocess
import sys
import tempfile

import torch

from mint.bench.common import DEFAULT_BASE, ROOT, machine, machine_note, parser, setup, table, write_report


CASES = ("inference", "stage1", "stage2", "instruct")


def _peak_mb() -> float:
    """This process's peak RSS. `VmHWM` belongs to the process's own address space; `ru_maxrss` would carry the
    peak of the process that forked it (a `mint bench` that ran other benchmarks first) across the exec."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(case: str, model_dir: str, batch_size: int, new_tokens: int, seconds: float) -> dict:
    """Runs in the subprocess: one case, its peak RSS after loading and at the end."""
    start = _peak_mb()
    if case == "inference":
        from mint.bench.common import chat_prompt, long_clip
        from modeling_mint import MintForConditionalGeneration, MintProcessor

        model = MintForConditionalGeneration.from_pretrained(model_dir).eval()
        processor = MintProcessor.from_pretrained(model_dir)
        loaded = _peak_mb()
        clip = long_clip(min(seconds, processor.audio_window_seconds * processor.max_audio_windows))
        inputs = processor(text=chat_prompt(processor, "Transcribe the audio."), audio=clip)
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    else:
        from mint.bench.training import StageStep, asterisk_rows

        with tempfile.TemporaryDirectory() as root:
            rows = asterisk_rows(batch_size)
            runner = StageStep(case, model_dir, rows, root)
            loaded = _peak_mb()
            runner.step(cached=True)
    return {"case": case, "start_mb": start, "loaded_mb": loaded, "peak_mb": _peak_mb()}


def main(argv=None):
    p = parser(__doc__.splitlines()[0], default_model=DEFAULT_BASE)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--seconds", type=float, default=30.0, help="inference clip length")
    p.add_argument("--child", choices=CASES, default=None, help=argparse_hidden())
    args = p.parse_args(argv)
    setup(args)
    batch_size, new_tokens = (4, 4) if args.quick else (args.batch_size, args.new_tokens)
    if args.child:
        print(json.dumps(child(args.child, args.model, batch_size, new_tokens, args.seconds)))
        return None
    results = {}
    for case in CASES:
        command = [sys.executable, "-m", "mint.bench.memory", "--child", case, "--model", args.model,
                   "--threads", str(torch.get_num_threads()), "--batch-size", str(batch_size), "--new-tokens",
                   str(new_tokens), "--seconds", str(args.seconds)] + (["--quick"] if args.quick else [])
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"memory case {case} failed:\n{done.stderr[-3000:]}")
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
    info = machine()
    rows = [[c, f"{r['start_mb']:,.0f}", f"{r['loaded_mb']:,.0f}", f"**{r['peak_mb']:,.0f}**",
             f"{r['peak_mb'] - r['loaded_mb']:,.0f}"] for c, r in results.items()]
    sections = [
        "Peak RSS: " + ", ".join(f"{c} {r['peak_mb'] / 1024:.2f} GB" for c, r in results.items()) + ".",
        "",
        f"Model `{args.model}`, fp32 weights. Inference: one {args.seconds:g}-s real clip, exactly {new_tokens} new "
        f"tokens. Training: one step at batch {batch_size} on cached frames, bf16 autocast, AdamW (the optimizer "
        "state is allocated on the first step). Each case in its own process; peak RSS is `VmHWM`.",
        "",
        table(["case", "after imports MB", "after loading MB", "peak MB", "peak - loaded MB"], rows),
        "",
        "After loading: the weights (and, for training, the batch's frames written to a temporary cache). Peak minus "
        "loaded: what the generate call or the training step added (activations kept for the backward pass, "
        "gradients, AdamW state, bf16 weight copies of autocast, the allocator's free lists); it is not broken down "
        "further here.",
        "",
        machine_note(info),
    ]
    data = {"machine": info, "model": args.model, "batch_size": batch_size, "results": results}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        names = list(results)
        ax.bar(names, [r["loaded_mb"] for r in results.values()], label="after loading")
        ax.bar(names, [r["peak_mb"] - r["loaded_mb"] for r in results.values()],
               bottom=[r["loaded_mb"] for r in results.values()], label="step / generate")
        ax.set_ylabel("peak RSS (MB)")
        ax.set_title("memory per case (own process)")
        ax.legend()
        return fig

    return write_report("memory", args.out, "Peak memory of inference and training", sections, data, plot)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
