"""`mint train STAGE`: one training stage. Each stage script parses its recipe dataclass and its training arguments
(`TrainingArguments`, TRL's `SFTConfig` for instruction tuning) with TRL's `TrlParser`: `--config FILE.yaml` gives
the values, `--field value` on the command line overrides them. `--data`, `--model` and `--out` name the recipe's
`data_dir`, `model_dir` and the `output_dir`; with `--data` and no `--config`, training/recipes/own_data.yaml gives a
short run's defaults."""

from pathlib import Path

from mint.cli.paths import existing

STAGES = ("stage1", "stage2", "instruct")


def stage_script(stage: str):
    """The stage's script module, with its `make_parser` and `main`; imported only when a stage runs, so `mint --help`
    never loads transformers or TRL."""
    if stage == "stage1":
        from mint.training import pretrain_bridge as script
    elif stage == "stage2":
        from mint.training import pretrain_generative as script
    else:
        from mint.training import sft as script
    return script


def own_data_config() -> Path:
    import mint.training

    return Path(mint.training.__file__).parent / "recipes" / "own_data.yaml"


def print_help(args, parser):
    """The train command's own flags, then every field of the stage's recipe and training arguments."""
    args.parser.print_help()
    print(f"\nRecipe and training fields of {args.stage}, as --field-name value (YAML: field_name: value):")
    text = parser.format_help()
    print(text.split("\n\n", 1)[1] if text.startswith("usage:") else text)


def train(args) -> int:
    if args.stage is None:
        if args.help:
            args.parser.print_help()
            return 0
        raise SystemExit(f"mint train: give a stage: {', '.join(STAGES)}")
    if not args.help and args.config is None and args.data is None:
        raise SystemExit(f"mint train {args.stage}: give --data PATH (your clips) or --config FILE")
    argv = ["--config", existing(args.config, "config", "train") if args.config else str(own_data_config())]
    if args.data:
        argv += ["--data_dir", existing(args.data, "data", "train", hub=True)]
    if args.model:
        argv += ["--model_dir", existing(args.model, "model", "train", hub=True)]
    if args.out:
        argv += ["--output_dir", args.out]
    script = stage_script(args.stage)
    parser = script.make_parser(prog=f"mint train {args.stage}")
    if args.help:
        print_help(args, parser)
        return 0
    try:
        recipe, training_args = parser.parse_args_and_config([*argv, *args.overrides])
    except ValueError as error:  # a field the stage does not have, or a value it refuses
        raise SystemExit(f"mint train {args.stage}: {error}")
    existing(recipe.model_dir, "model", "train", hub=True)
    from mint.training.common import cpu_precision

    training_args = cpu_precision(training_args)
    script.main(recipe, training_args)
    print(f"mint train {args.stage}: wrote {training_args.output_dir}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("train", add_help=False,
                       help="train one stage on your data or from a recipe; other --field value pairs override it")
    p.add_argument("stage", nargs="?", choices=STAGES)
    p.add_argument("-h", "--help", action="store_true", help="this help; after a stage, every field of its recipe")
    p.add_argument("--data", default=None, help="your clips: a folder of audio with a CSV/JSONL of audio,text"
                   "[,instruction], such a table, a saved `datasets` dataset or a Hub dataset id (with an Audio "
                   "column); a validation split is made if there is none. Default: the recipe's data_dir")
    p.add_argument("--model", default=None, help="the MINT folder to start from (the recipe's model_dir)")
    p.add_argument("--out", default=None, help="output folder (the recipe's output_dir): a whole model, loadable with "
                   "from_pretrained, the pipeline and mint eval")
    p.add_argument("--config", "--recipe", default=None, help="YAML of recipe and TrainingArguments/SFTConfig fields "
                   "(--recipe: its older name; default with --data: training/recipes/own_data.yaml)")
    p.set_defaults(func=train, parser=p)
