"""How much the frozen-feature cache saves by itself: encoding clips through the audio tower (decoding, log-mel
windows, the encoder, writing the frames) against reading their cached frames, on the same real clips in one run.

    python -m mint.bench.feature_cache [--model .cache/models/mint-tiny] [--clips 64]

A whole training step gains less, since the rest of the step is unchanged: see `python -m mint.bench.training`.
"""

import tempfile

from mint.bench.common import interleaved, machine, machine_note, median, parser, setup, table, write_report


def main(argv=None):
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from mint.bench.training import asterisk_rows
    from mint.training.common import feature_cache
    from mint.training.features import load_frames

    p = parser(__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=64)
    args = p.parse_args(argv)
    setup(args)
    n = min(args.clips, 4) if args.quick else args.clips
    model = MintForConditionalGeneration.from_pretrained(args.model).eval()
    processor = MintProcessor.from_pretrained(args.model)
    sources = [row["audio"] for row in asterisk_rows(n)]
    info = machine()
    with tempfile.TemporaryDirectory() as root:
        counter = iter(range(10**6))

        def encode():  # a fresh cache folder every time: a cold cache
            cache = feature_cache(model, processor, f"{root}/cold-{next(counter)}")
            cache.index(sources, desc="encoding (cold cache)")

        warm = feature_cache(model, processor, f"{root}/warm")
        entries = warm.index(sources, desc="filling the warm cache")
        times = interleaved({
            "encode": encode,
            "look up": lambda: warm.index(sources, desc="looking up (warm)"),
            "read": lambda: [load_frames(e["path"]) for e in entries],
        }, args.repeats)
    cold, lookup, read = (median(times[k]) for k in ("encode", "look up", "read"))
    ratio = cold / read
    sections = [
        f"Reading {n} clips' cached encoder frames is {ratio:.0f}x faster than encoding them "
        f"({n / cold:.1f} clips/s encoding, {n / read:,.0f} clips/s reading).",
        "",
        f"Model `{args.model}`; {n} real Asterisk clips. Encode: decode, log-mel windows, the frozen encoder in "
        "batches of 16, frames written as fp16 files (a cold cache). Look up: decode and hash each clip to find its "
        "entry (once per run, when a stage builds its dataset). Read: load the frames files (what the collator does "
        f"for every batch of every epoch). Median of {args.repeats} interleaved repeats.",
        "",
        table(["", "s for all clips", "clips/s"], [["encode (cold)", cold, f"{n / cold:.1f}"],
                                                   ["look up (warm)", lookup, f"{n / lookup:,.0f}"],
                                                   ["read frames", read, f"{n / read:,.0f}"]]),
        "",
        machine_note(info),
    ]
    data = {"machine": info, "model": args.model, "clips": n, "repeats": args.repeats, "encode_s": cold,
            "lookup_s": lookup, "read_s": read, "ratio": ratio, "runs": times}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.bar(["encode (cold)", "look up (warm)", "read frames"], [n / cold, n / lookup, n / read],
               color=["tab:orange", "tab:green", "tab:blue"])
        ax.set_yscale("log")
        ax.set_ylabel("clips / s (log)")
        ax.set_title(f"feature cache: {ratio:.0f}x")
        return fig

    return write_report("feature_cache", args.out, "The frozen-feature cache: encoding against reading", sections,
                        data, plot)


if __name__ == "__main__":
    main()
