"""The `mint` command line.

    mint assemble VARIANT --out DIR [--retrieval] [--untrained]
    mint ship VARIANT --bridge FILE [--heads FILE] [--adapter DIR]
    mint run AUDIO... --model DIR [--prompt TEXT] [--json]
    mint data build --out DIR [--max-per-source N]
    mint train stage1|stage2|instruct --recipe FILE [--key value ...]
    mint eval --model DIR --data DIR --split test --out DIR
"""

import argparse
import json
import sys


def _assemble(args) -> int:
    from hub_configs.assemble import assemble

    out = assemble(args.variant, args.out, seed=args.seed, retrieval=args.retrieval,
                   untrained=args.untrained)
    print(f"assembled {args.variant} -> {out}")
    return 0


def _ship(args) -> int:
    from hub_configs.assemble import ship_weights, variant_dir

    src = variant_dir(args.variant)
    spec = json.loads((src / "variant.json").read_text())
    out = src / spec["trained_weights"]
    adapter_out = src / spec["language_model_adapter"] if spec.get("language_model_adapter") else None
    print(json.dumps({"out": str(out), **ship_weights(args.bridge, args.heads, out, args.adapter, adapter_out)}))
    return 0


def _run(args) -> int:
    from transformers import pipeline

    pipe = pipeline("audio-text-to-text", model=args.model, trust_remote_code=True, device=args.device)
    results = []
    for path in args.audio:
        try:
            answer = pipe(path, prompt=args.prompt, max_new_tokens=args.max_new_tokens)["generated_text"]
            results.append({"audio": path, "prompt": args.prompt, "text": answer})
        except (ValueError, TypeError, FileNotFoundError) as error:
            results.append({"audio": path, "prompt": args.prompt, "error": str(error)})
    for result in results:
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        elif "error" in result:
            print(f"{result['audio']}: error: {result['error']}", file=sys.stderr)
        else:
            print(f"{result['audio']}: {result['text']}")
    return 1 if any("error" in r for r in results) else 0


def _data_build(args) -> int:
    from training.corpus import build

    out, stats = build(args.out, max_per_source=args.max_per_source, seed=args.seed)
    print(json.dumps({"out": str(out), **{k: stats[k] for k in ("clips", "real_clips", "generated_clips",
                                                                  "build_seconds", "disk_bytes", "missing_sources")}}))
    return 0


def _train(args) -> int:
    """Each stage parses its own recipe (YAML) and `TrainingArguments` / `SFTConfig` overrides."""
    import importlib

    module, recipe, config = {
        "stage1": ("training.pretrain_bridge", "Stage1Recipe", "TrainingArguments"),
        "stage2": ("training.pretrain_generative", "Stage2Recipe", "TrainingArguments"),
        "instruct": ("training.sft", "InstructRecipe", "SFTConfig"),
    }[args.stage]
    from training.common import parse_recipe

    script = importlib.import_module(module)
    if config == "SFTConfig":
        from trl import SFTConfig as config_class
    else:
        from transformers import TrainingArguments as config_class
    script.main(*parse_recipe(getattr(script, recipe), config_class, ["--recipe", args.recipe, *args.overrides]))
    return 0


def _eval(args) -> int:
    from training.evaluate import evaluate, markdown_table

    metrics = evaluate(args.model, args.data, args.split, args.out, tasks=args.tasks, languages=args.languages,
                       sources=args.sources, max_per_task=args.max_per_task, instruction=not args.no_instruction,
                       retrieval_dir=args.retrieval, whisper_baseline=args.whisper_baseline,
                       batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, seed=args.seed,
                       weights=args.weights)
    print(markdown_table(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mint", description="MINT audio-language model")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("assemble", help="build a variant from hub_configs/ into a loadable folder")
    p.add_argument("variant", help="a folder name under hub_configs/, e.g. mint-tiny-random")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed for randomly initialized parts")
    p.add_argument("--retrieval", action="store_true",
                   help="the retrieval / zero-shot model (stage 1) with the variant's trained heads")
    p.add_argument("--untrained", action="store_true", help="without the shipped trained weights (to train anew)")
    p.set_defaults(func=_assemble)

    p = sub.add_parser("ship", help="put trained weights (fp16, at most 64 MB) into a variant of hub_configs/")
    p.add_argument("variant", help="a variant with a variant.json, e.g. mint-tiny")
    p.add_argument("--bridge", required=True, help="a generation run's bridge.safetensors")
    p.add_argument("--heads", default=None, help="a stage-1 run's heads.safetensors fitted to that bridge")
    p.add_argument("--adapter", default=None, help="the LLM's LoRA adapter from the same instruction run (llm_adapter/)")
    p.set_defaults(func=_ship)

    p = sub.add_parser("data", help="datasets")
    data = p.add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="build the offline corpus (Debian recordings + generated clips)")
    b.add_argument("--out", required=True, help="output folder (DatasetDict.save_to_disk)")
    b.add_argument("--max-per-source", type=int, default=None, help="cap clips per source (quick builds)")
    b.add_argument("--seed", type=int, default=0, help="seed of the generated clips")
    b.set_defaults(func=_data_build)

    p = sub.add_parser("train", help="train one stage from a recipe; other --key value pairs override it")
    p.add_argument("stage", choices=["stage1", "stage2", "instruct"])
    p.add_argument("--recipe", required=True, help="YAML with recipe and TrainingArguments/SFTConfig fields")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="metrics of a model folder on a corpus split")
    p.add_argument("--model", required=True, help="an assembled or trained MINT folder")
    p.add_argument("--weights", default=None, help="trained weights on top of --model: a run's bridge.safetensors "
                   "or a checkpoint folder")
    p.add_argument("--data", default="data/mint-corpus", help="the corpus (mint data build)")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="folder for metrics.json, metrics.md, predictions.jsonl")
    p.add_argument("--tasks", nargs="*", default=None, help="default: every task of the split")
    p.add_argument("--languages", nargs="*", default=None, help="keep these languages (and language-less sounds)")
    p.add_argument("--sources", nargs="*", default=None, help="keep these corpus sources")
    p.add_argument("--max-per-task", type=int, default=None, help="a seeded random subset of each task")
    p.add_argument("--no-instruction", action="store_true", help="prompt with the audio alone (a stage-2 model)")
    p.add_argument("--retrieval", default=None, help="a stage-1 retrieval folder: retrieval and zero-shot too")
    p.add_argument("--whisper-baseline", action="store_true", help="Whisper tiny.en's decoder on the same speech")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_eval)

    p = sub.add_parser("run", help="answer an instruction about audio files")
    p.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, ...)")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--prompt", default="Describe the audio.", help="the instruction")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--device", default=None, help="e.g. cpu, cuda:0")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    if overrides and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.overrides = overrides
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
