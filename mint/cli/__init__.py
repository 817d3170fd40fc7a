"""The `mint` command line: one module per command group, each adding its subcommands to the parser.

    mint assemble VARIANT --out DIR [--retrieval] [--untrained]                    (hub)
    mint ship VARIANT --bridge FILE [--heads FILE] [--adapter DIR]                 (hub)
    mint push DIR --repo-id ORG/NAME [--private] [--token T] [--commit-message M]  (hub)
    mint data build --out DIR [--max-per-source N]                                 (data)
    mint train stage1|stage2|instruct [--config FILE] [--data PATH] [--model DIR] [--out DIR] [--field value ...]
    mint eval --model DIR --data PATH --split test --out DIR                       (evaluate)
    mint run AUDIO|FOLDER... --model DIR [--prompt TEXT] [--batch-size N] [--json]
    mint demo [--model DIR] [--retrieval DIR] [--port N]
    mint bench [NAME ...] [--model DIR] [--quick]
    mint --version

Flags are dashed everywhere; a recipe field (`max_steps` in YAML) is `--max-steps` on the command line. A command
imports what it runs when it runs, so `mint --help` loads no training code.
"""

import argparse

from mint.cli import bench, data, demo, evaluate, hub, run, train


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("mint-audio")
    except PackageNotFoundError:  # a checkout run without installing
        installed = "not installed"
    parser = argparse.ArgumentParser(prog="mint", description="MINT audio-language model")
    parser.add_argument("--version", action="version", version=f"mint {installed}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (hub, data, train, evaluate, run, demo, bench):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    if overrides and args.command != "train":  # only a stage's recipe and training fields pass through
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.overrides = overrides
    try:
        return args.func(args)
    except FileNotFoundError as error:  # a path found missing deep in a command: still one line, not a traceback
        raise SystemExit(f"mint {args.command}: {error}")
