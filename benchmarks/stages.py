"""Every training stage's samples/s and share of the matrix-multiply peak, in one run.

    python -m mint.bench.stages [--model models/mint-tiny-base] [--align-model models/mint-tiny-token-prompt-base]

Stages: stage 1 (ATC + ATM + AGTG, no LLM), the alignment stage of the token prompt (the windowed Bridge-Net's CTC
over the LLM vocabulary, no LLM layer), stage 2 (the LLM's loss through the soft prompt) and instruction tuning
(LoRA on the LLM). One step is what the stage's Trainer does per batch, with the frozen-feature cache (as the recipes
train): collate, forward under bf16 autocast, backward, AdamW. FLOPs are counted once per stage with
`FlopCounterMode` (matrix products, convolutions, attention); the peak is a large square matmul timed in the same run
with the same thread count, so the fractions are lower bounds.
"""

import tempfile

import torch

from mint.bench.common import DEFAULT_BASE, ROOT, interleaved, machine, machine_note, median, parser, setup, table, \
    verdict, write_report
from mint.bench.flops import count_flops, matmul
from mint.bench.training import StageStep, asterisk_rows, recipe_forward


DEFAULT_ALIGN = ROOT / "models" / "mint-tiny-token-prompt-base"


class AlignStep(StageStep):
    """The token prompt's alignment step: CTC of the projected windowed queries over the LLM vocabulary."""

    def __init__(self, model_dir: str, rows: list[dict], cache_root: str):
        super().__init__("stage2", model_dir, rows, cache_root)
        self.stage = "align"
        tokenizer = self.processor.tokenizer
        self.special_ids = torch.tensor(tokenizer.all_special_ids, dtype=torch.long)

    def loss(self, batch: dict, **model_kwargs) -> torch.Tensor:
        from mint.training.pretrain_generative import alignment_ctc_loss

        return alignment_ctc_loss(self.model, batch, self.processor.tokens_for_frames, self.special_ids)


def main(argv=None):
    p = parser(__doc__.splitlines()[0], default_model=DEFAULT_BASE)
    p.add_argument("--align-model", default=str(DEFAULT_ALIGN),
                   help="an assembled token-prompt folder (mint assemble mint-tiny-token-prompt --untrained)")
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args(argv)
    setup(args)
    batch_size = min(args.batch_size, 4) if args.quick else args.batch_size
    rows = asterisk_rows(batch_size)
    info = machine()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        runners = {"stage1": StageStep("stage1", args.model, rows, root),
                   "align (CTC, no LLM)": AlignStep(args.align_model, rows, root),
                   "stage2": StageStep("stage2", args.model, rows, root),
                   "instruct": StageStep("instruct", args.model, rows, root)}
        steps = {name: (lambda r=r: r.step(True, **recipe_forward(r.stage))) for name, r in runners.items()}
        flops = {name: count_flops(step) for name, step in steps.items()}
        n = 256 if args.quick else 2048
        mm, mm_flops = matmul(n, torch.float32)
        times = interleaved({**steps, "fp32 mm": mm}, args.repeats)
        peak = mm_flops / median(times["fp32 mm"]) / 1e9
        for name in steps:
            seconds = median(times[name])
            results[name] = {"step_s": seconds, "samples_per_s": batch_size / seconds, "gflop": flops[name] / 1e9,
                             "gflops": flops[name] / seconds / 1e9, "fraction_of_fp32_peak":
                             flops[name] / seconds / 1e9 / peak, "runs": times[name]}
    stage2 = results["stage2"]["samples_per_s"]
    align = results["align (CTC, no LLM)"]["samples_per_s"] / stage2
    rows_md = [[name, r["step_s"], f"{r['samples_per_s']:.2f}", f"{r['samples_per_s'] / stage2:.2f}x", r["gflop"],
                r["gflops"], f"{r['fraction_of_fp32_peak']:.0%}"] for name, r in results.items()]
    sections = [
        f"The alignment stage (CTC of the token prompt, no LLM layer) trains **{align:.2f}x** the samples/s of a "
        f"stage-2 step through the LLM. Target 3x: {verdict(align, 3)}.",
        "",
        f"Batch {batch_size} real Asterisk clips with their transcripts, frames from the feature cache, bf16 autocast "
        f"as the recipes; median of {args.repeats} interleaved steps per stage after one warm-up step; fp32 matmul "
        f"peak {peak:.1f} GFLOP/s ({n}x{n}, same run, same threads). Models: `{args.model}` (stage 1, stage 2, "
        f"instruct with LoRA rank 8), `{args.align_model}` (align).",
        "",
        table(["stage", "step s", "samples/s", "vs stage 2", "GFLOP counted", "GFLOP/s", "of fp32 peak"], rows_md),
        "",
        machine_note(info),
    ]
    data = {"machine": info, "model": args.model, "align_model": args.align_model, "batch_size": batch_size,
            "peak_fp32_gflops": peak, "align_over_stage2": align, "results": results}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        names = list(results)
        ax.barh(names, [r["samples_per_s"] for r in results.values()], color="C0")
        ax.axvline(3 * stage2, color="C3", linestyle="--", label="3x stage 2")
        ax.set_xlabel("training samples / s")
        ax.invert_yaxis()
        ax.legend()
        fig.tight_layout()
        return fig

    return write_report("stages", args.out, "Samples/s and share of the matmul peak per training stage", sections,
                        data, plot, "python -m mint.bench.stages")


if __name__ == "__main__":
    main()
