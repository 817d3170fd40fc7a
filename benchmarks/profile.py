"""Hot paths and the optimizations they point to: where inference and a stage-2 step spend their time
(`torch.profiler`), and each optimization timed off and on, interleaved in the same run.

    python -m mint.bench.profile [--model models/mint-tiny-base]

Optimizations measured (off -> on):
- encoder windows: a clip's windows through Whisper one call per window vs all in one batched call (what
  `encode_audio` does);
- `logits_at_labels=True` (the stage-2 recipe's default): the 49k-way LM head and its loss only at target positions
  in a stage-2 step; loss and gradients equal (`tests/test_performance.py`, `tests/test_training.py`);
- the audio tower in bf16 (`audio_tower_dtype="bfloat16"`, or `"auto"` on CPUs with native bf16; `encode_audio`
  casts its input to the tower's dtype): time to first token on a 30-s clip. It changes the numbers, so it is the
  user's choice, not a default; the largest change of the first token's logits is reported.
"""

import tempfile

import torch
from torch.profiler import ProfilerActivity, profile

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


def top_ops(fn, n: int = 8) -> list[list]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [[e.key, e.count, e.self_cpu_time_total / 1e6, f"{e.self_cpu_time_total / total:.0%}"]
            for e in events[:n]]


def windows_one_by_one(model, features, mask):
    """`encode_audio` as a loop over the clip's windows (the alternative to its batched call)."""
    window = model.config.audio_window_size
    for start in range(0, features.shape[-1], window):
        model.model.encode_audio(features[..., start : start + window], mask[:, start : start + window])


def main(argv=None):
    p = parser(__doc__.splitlines()[0], default_model=DEFAULT_BASE)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args(argv)
    setup(args)
    from mint.bench.training import StageStep, asterisk_rows
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    batch_size = 4 if args.quick else args.batch_size
    model = MintForConditionalGeneration.from_pretrained(args.model).eval()
    processor = MintProcessor.from_pretrained(args.model)
    clip = long_clip(min(args.seconds, processor.audio_window_seconds * processor.max_audio_windows))
    inputs = processor(text=chat_prompt(processor, "Transcribe the audio."), audio=clip)
    features, mask = inputs["input_features"], inputs["feature_attention_mask"]
    bf16_tower = MintForConditionalGeneration.from_pretrained(args.model, audio_tower_dtype="bfloat16").eval()

    def first_token(m):
        with torch.inference_mode():
            return m(**inputs, logits_to_keep=1).logits[:, -1]

    def encode(batched: bool):
        with torch.inference_mode():
            if batched:
                model.model.encode_audio(features, mask)
            else:
                windows_one_by_one(model, features, mask)

    logits_change = float((first_token(bf16_tower) - first_token(model)).abs().max())
    with tempfile.TemporaryDirectory() as root:
        stage2 = StageStep("stage2", args.model, asterisk_rows(batch_size), root)
        hot = {"inference, first token (30-s clip)": top_ops(lambda: first_token(model)),
               f"stage-2 training step (batch {batch_size})": top_ops(lambda: stage2.step(True))}
        with torch.inference_mode():
            frames, frame_mask = model.model.encode_audio(features, mask)
        parts = interleaved({
            "encoder": lambda: encode(True),
            "bridge + LLM prefill": lambda: _prefill_from_frames(model, inputs, frames, frame_mask),
            "windows one by one": lambda: encode(False),
            "stage 2, LM head everywhere": lambda: stage2.step(True),
            "stage 2, logits_at_labels": lambda: stage2.step(True, logits_at_labels=True),
            "first token, fp32 tower": lambda: first_token(model),
            "first token, bf16 tower": lambda: first_token(bf16_tower),
        }, args.repeats)
    t = {k: median(v) for k, v in parts.items()}
    optimizations = [
        ["encoder windows of one clip: loop -> one batched call (already so in `encode_audio`)",
         t["windows one by one"], t["encoder"], t["windows one by one"] / t["encoder"], "same numbers"],
        ["stage-2 step: LM head everywhere -> `logits_at_labels=True` (stage 2 default)",
         t["stage 2, LM head everywhere"],
         t["stage 2, logits_at_labels"], t["stage 2, LM head everywhere"] / t["stage 2, logits_at_labels"],
         "same loss and gradients (tested)"],
        ["first token: fp32 audio tower -> bf16 audio tower (`audio_tower_dtype`)", t["first token, fp32 tower"],
         t["first token, bf16 tower"], t["first token, fp32 tower"] / t["first token, bf16 tower"],
         f"changes numbers: max logit change {logits_change:.3g}"],
    ]
    share = t["encoder"] / (t["encoder"] + t["bridge + LLM prefill"])
    info = machine()
    sections = [
        f"The Whisper encoder is {share:.0%} of MINT's time to first token on a {len(clip) / 16000:g}-s clip; matrix "
        "products dominate both paths. Optimizations, off -> on: "
        + "; ".join(f"{o[0].split(':')[0]} {o[3]:.2f}x" for o in optimizations) + ".",
        "",
        f"Model `{args.model}`. Medians of {args.repeats} interleaved repeats of every row below in one run.",
        "",
        "## Optimizations",
        "",
        table(["change", "before s", "after s", "speedup", "numerics"], optimizations),
        "",
        "Already in place (checked, nothing to change): SDPA attention in the encoder, the Bridge-Net and the LLM "
        "(`config._attn_implementation == 'sdpa'` for all three); the KV cache in `generate` (the audio enters at "
        "prefill only: `input_features` is dropped from later steps, the soft prompt is not recomputed); the "
        "prompt's logits computed for the last position only (`logits_to_keep=1` from `generate`); all-padding "
        "encoder windows skipped. bf16 autocast for training is already in the recipes. `torch.compile` was not "
        "adopted: compiling Whisper tiny.en's encoder (inductor, one thread, measured once on this machine on "
        "2026-11-30, not by this script) took 107 s for the first call, then ran a 10-s window in 0.359 s against "
        "0.377 s eager (1.05x, largest output change 1.2e-5): it would take thousands of windows to pay back.",
        "",
        "## Where the time goes",
        "",
        table(["part of the first token", "s"], [[k, t[k]] for k in ("encoder", "bridge + LLM prefill")]),
        "",
    ]
    for name, rows in hot.items():
        sections += [f"Top operators by self CPU time, {name}:", "",
                     table(["operator", "calls", "self s", "share"], rows), ""]
    sections.append(machine_note(info))
    data = {"machine": info, "model": args.model, "batch_size": batch_size, "times": parts, "medians": t,
            "optimizations": [{"change": o[0], "before_s": o[1], "after_s": o[2], "speedup": o[3], "numerics": o[4]}
                              for o in optimizations], "hot_ops": hot, "encoder_share_of_first_token": share}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        labels = [o[0].split(":")[0] for o in optimizations]
        ax.barh(labels, [o[3] for o in optimizations])
        ax.axvline(1, color="grey", linewidth=1)
        ax.set_xlabel("speedup (before / after)")
        ax.invert_yaxis()
        return fig

    return write_report("profile", args.out, "Hot paths and optimizations", sections, data, plot)


def _prefill_from_frames(model, inputs, frames, frame_mask):
    with torch.inference_mode():
        rest = {k: v for k, v in inputs.items() if k not in ("input_features", "feature_attention_mask")}
        model(**rest, audio_frames=frames, audio_frame_mask=frame_mask, logits_to_keep=1)


if __name__ == "__main__":
    main()
