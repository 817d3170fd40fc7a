"""`mint bench`: the benchmark modules of `mint.bench`, each measuring ratios in one run; markdown, JSON and PNG
reports."""

import importlib

BENCHMARKS = ("latency", "batching", "training", "stages", "feature_cache", "memory", "checkpointing", "flops",
              "profile", "paper_size")  # modules of mint.bench, each with a `main(argv)`


def bench(args) -> int:
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"mint bench: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    argv = ["--out", args.out, *(["--model", args.model] if args.model else []), *(["--quick"] if args.quick else []),
            *(["--threads", str(args.threads)] if args.threads else []),
            *(["--repeats", str(args.repeats)] if args.repeats else [])]
    for name in args.names or BENCHMARKS:
        paths = importlib.import_module(f"mint.bench.{name}").main(list(argv))
        print(f"{name}: {paths['md']}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks measuring ratios in one run; markdown + JSON + PNG reports")
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    p.add_argument("--model", default=None, help="an assembled MINT folder (default: each benchmark's own)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one repeat (a smoke test)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per side")
    p.add_argument("--out", default="runs/bench", help="report folder (the committed reports: benchmarks/reports)")
    p.set_defaults(func=bench)
