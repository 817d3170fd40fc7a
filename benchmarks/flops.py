"""Distance to the machine's limit: achieved GFLOP/s of a stage-2 training step and of inference, against the fp32
matrix-multiply peak measured in the same run with the same thread count.

    python -m mint.bench.flops [--model models/mint-tiny-base]

FLOPs are counted once per workload with `torch.utils.flop_counter.FlopCounterMode` (matrix products, convolutions
and attention; element-wise work is not counted, so achieved GFLOP/s is a lower bound). The peak is a large square
`torch.mm` in fp32 (and, for reference, in bf16); all are timed interleaved and the medians divided.
"""

import tempfile

import torch
from torch.utils.flop_counter import FlopCounterMode

from mint.bench.common import (
    DEFAULT_BASE,
    chat_prompt,
    interleaved,
    long_clip,
    machine,
    machine_note,
    median,
    parser,
    setup,
    table,
    write_report,
)


def count_flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def matmul(n: int, dtype: torch.dtype):
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return (lambda: torch.mm(a, b)), 2 * n**3


def main(argv=None):
    p = parser(__doc__.splitlines()[0], default_model=DEFAULT_BASE)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0, help="inference clip length")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--matmul-size", type=int, default=2048)
    args = p.parse_args(argv)
    setup(args)
    from mint.bench.training import StageStep, asterisk_rows, recipe_forward
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    batch_size, new_tokens = (4, 4) if args.quick else (args.batch_size, args.new_tokens)
    size = 256 if args.quick else args.matmul_size
    model = MintForConditionalGeneration.from_pretrained(args.model).eval()
    processor = MintProcessor.from_pretrained(args.model)
    clip = long_clip(min(args.seconds, processor.audio_window_seconds * processor.max_audio_windows))
    inputs = processor(text=chat_prompt(processor, "Transcribe the audio."), audio=clip)

    def generate(n):
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)

    with tempfile.TemporaryDirectory() as root:
        stage2 = StageStep("stage2", args.model, asterisk_rows(batch_size), root)
        workloads = {
            "stage-2 training step (bf16 autocast)": lambda: stage2.step(True, **recipe_forward("stage2")),
            "inference: prefill + first token": lambda: generate(1),
            f"inference: {new_tokens} new tokens": lambda: generate(new_tokens),
        }
        flops = {name: count_flops(fn) for name, fn in list(workloads.items())[:1]}
        model.requires_grad_(False)  # FlopCounterMode's module tracker trips on trainable leaves in inference mode
        flops.update({name: count_flops(fn) for name, fn in list(workloads.items())[1:]})
        mm32, mm32_flops = matmul(size, torch.float32)
        mm16, mm16_flops = matmul(size, torch.bfloat16)
        calls = {**workloads, "fp32 mm": mm32, "bf16 mm": mm16}
        times = interleaved(calls, args.repeats)
    peak32 = mm32_flops / median(times["fp32 mm"]) / 1e9
    peak16 = mm16_flops / median(times["bf16 mm"]) / 1e9
    results = {}
    for name in workloads:
        achieved = flops[name] / median(times[name]) / 1e9
        results[name] = {"gflop": flops[name] / 1e9, "seconds": median(times[name]), "gflops": achieved,
                         "fraction_of_fp32_peak": achieved / peak32, "runs": times[name]}
    step = results["stage-2 training step (bf16 autocast)"]["fraction_of_fp32_peak"]
    prefill = results["inference: prefill + first token"]["fraction_of_fp32_peak"]
    info = machine()
    sections = [
        f"Stage-2 training step: {step:.0%} of the fp32 matmul peak ({peak32:.1f} GFLOP/s; it runs in bf16 under "
        f"autocast, {results['stage-2 training step (bf16 autocast)']['gflops'] / peak16:.0%} of the bf16 peak); "
        "inference prefill "
        f"{prefill:.0%}. Target 30%: training **{'met' if step >= 0.3 else 'not met'}**, inference prefill "
        f"**{'met' if prefill >= 0.3 else 'not met'}**.",
        "",
        f"Model `{args.model}`; stage-2 step at batch {batch_size} on cached frames (bf16 autocast and the LM head "
        f"on the answer tokens only, as the recipe); inference on one {len(clip) / 16000:g}-s real clip, fp32. "
        f"Peak: `torch.mm` of two {size}x{size} "
        f"matrices; fp32 {peak32:.1f} GFLOP/s, bf16 {peak16:.1f} GFLOP/s. Median of {args.repeats} interleaved "
        "repeats.",
        "",
        table(["workload", "GFLOP counted", "s", "GFLOP/s", "of fp32 peak"],
              [[n, r["gflop"], r["seconds"], r["gflops"], f"**{r['fraction_of_fp32_peak']:.0%}**"]
               for n, r in results.items()]),
        "",
        "Decoding one token at a time is a matrix-vector product per layer: it reads every weight once per token "
        "and is bound by memory bandwidth, not by the FLOP peak, so the whole-generation figure sits far below the "
        "prefill's. The training step runs in bf16 under autocast; its fraction is taken against the fp32 peak as "
        "the task asks (against the bf16 peak it is "
        f"{results['stage-2 training step (bf16 autocast)']['gflops'] / peak16:.0%}).",
        "",
        machine_note(info),
    ]
    data = {"machine": info, "model": args.model, "peak_fp32_gflops": peak32, "peak_bf16_gflops": peak16,
            "matmul_size": size, "results": results}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(7, 3.4))
        names = ["fp32 mm peak", "bf16 mm peak", *results]
        values = [peak32, peak16, *(r["gflops"] for r in results.values())]
        ax.barh(names, values, color=["grey", "lightgrey"] + ["C0"] * len(results))
        ax.axvline(0.3 * peak32, color="C3", linestyle="--", label="30% of fp32 peak")
        ax.set_xlabel("GFLOP/s")
        ax.invert_yaxis()
        ax.legend(fontsize=8)
        return fig

    return write_report("flops", args.out, "Achieved GFLOP/s against the machine's peak", sections, data, plot)


if __name__ == "__main__":
    main()
