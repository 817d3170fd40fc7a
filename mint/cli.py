"""The `mint` command line.

    mint assemble VARIANT --out DIR [--retrieval] [--untrained]
    mint ship VARIANT --bridge FILE [--heads FILE] [--adapter DIR]
    mint push DIR --repo-id ORG/NAME [--private] [--token T] [--commit-message M]
    mint run AUDIO|FOLDER... --model DIR [--prompt TEXT] [--batch-size N] [--json]
    mint data build --out DIR [--max-per-source N]
    mint train stage1|stage2|instruct [--data PATH] [--model DIR] [--out DIR] [--recipe FILE] [--recipe-field value ...]
    mint eval --model DIR --data PATH --split test --out DIR
    mint demo [--model DIR] [--retrieval DIR] [--port N]
    mint bench [NAME ...] [--model DIR] [--quick]
    mint --version

Flags are dashed everywhere; a recipe field (`max_steps` in YAML) is `--max-steps` on the command line.
"""

import argparse
import json
import re
import sys
from pathlib import Path

HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def existing(path: str, what: str, command: str, hub: bool = False) -> str:
    """`path` if it exists (or, with `hub`, reads as a Hub id), else one line naming what is missing."""
    if Path(path).exists() or (hub and HUB_ID.match(path) and not path.startswith(".")):
        return path
    raise SystemExit(f"mint {command}: {what} {path} does not exist" + (" (nor is it a Hub id)" if hub else ""))


def _assemble(args) -> int:
    from mint.hub.assemble import assemble

    out = assemble(args.variant, args.out, seed=args.seed, retrieval=args.retrieval,
                   untrained=args.untrained)
    print(f"assembled {args.variant} -> {out}")
    return 0


def _ship(args) -> int:
    from mint.hub.assemble import ship_weights, variant_dir

    src = variant_dir(args.variant)
    spec = json.loads((src / "variant.json").read_text())
    out = src / spec["trained_weights"]
    adapter_out = src / spec["language_model_adapter"] if spec.get("language_model_adapter") else None
    print(json.dumps({"out": str(out), **ship_weights(args.bridge, args.heads, out, args.adapter, adapter_out)}))
    return 0


def _push(args) -> int:
    from mint.hub.push import push

    print(push(args.folder, args.repo_id, private=args.private, token=args.token, commit_message=args.commit_message))
    return 0


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".au", ".webm"}


def audio_files(paths: list[str]) -> list[str]:
    """Files as given (whatever their suffix: a bad one gets its own error); folders expand to the audio files
    under them, sorted."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(str(f) for f in path.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise SystemExit(f"mint run: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {path}")
            files += found
        else:
            files.append(str(path))
    return files


def _answers(pipe, batch: list[str], prompt: str, max_new_tokens: int) -> list[dict]:
    """One batch through the pipeline; if a clip in it is bad, each clip alone, so only that one gets an error."""
    try:
        outputs = pipe(batch, prompt=prompt, batch_size=len(batch), max_new_tokens=max_new_tokens)
        return [{"audio": a, "prompt": prompt, "text": o["generated_text"]} for a, o in zip(batch, outputs)]
    except (ValueError, TypeError, OSError):
        if len(batch) > 1:
            return [r for a in batch for r in _answers(pipe, [a], prompt, max_new_tokens)]
    try:
        return [{"audio": batch[0], "prompt": prompt,
                 "text": pipe(batch[0], prompt=prompt, max_new_tokens=max_new_tokens)["generated_text"]}]
    except (ValueError, TypeError, OSError) as error:
        return [{"audio": batch[0], "prompt": prompt, "error": str(error)}]


def _run(args) -> int:
    from tqdm.auto import tqdm
    from transformers import pipeline

    if args.batch_size < 1:
        raise SystemExit(f"mint run: --batch-size must be at least 1, got {args.batch_size}")
    existing(args.model, "model", "run", hub=True)
    files = audio_files(args.audio)
    model_kwargs = {"audio_tower_dtype": args.audio_tower_dtype} if args.audio_tower_dtype else {}
    pipe = pipeline("audio-text-to-text", model=args.model, trust_remote_code=True, device=args.device,
                    model_kwargs=model_kwargs)
    failed = 0
    with tqdm(total=len(files), unit="clip", desc="mint run", disable=len(files) < 2 or args.quiet) as bar:
        for start in range(0, len(files), args.batch_size):
            for result in _answers(pipe, files[start : start + args.batch_size], args.prompt, args.max_new_tokens):
                failed += "error" in result
                if args.json:
                    bar.write(json.dumps(result, ensure_ascii=False), file=sys.stdout)
                elif "error" in result:
                    bar.write(f"{result['audio']}: error: {result['error']}", file=sys.stderr)
                else:
                    bar.write(f"{result['audio']}: {result['text']}", file=sys.stdout)
                bar.update()
    return 1 if failed else 0


def _data_build(args) -> int:
    from mint.training.corpus import build

    out, stats = build(args.out, max_per_source=args.max_per_source, seed=args.seed, sources=args.sources,
                       verify_budget=args.verify_budget)
    keys = ("clips", "real_clips", "rendered_clips", "generated_clips", "real_speech_hours", "english_speech_hours",
            "english_speech_sources", "speakers", "english_speakers", "labelled_sound_clips", "sound_labels", "sources",
            "held_out_sources", "build_seconds", "disk_bytes", "missing_sources")
    print(json.dumps({"out": str(out), **{k: stats[k] for k in keys}}))
    return 0


STAGES = {
    "stage1": ("mint.training.pretrain_bridge", "Stage1Recipe", "TrainingArguments"),
    "stage2": ("mint.training.pretrain_generative", "Stage2Recipe", "TrainingArguments"),
    "instruct": ("mint.training.sft", "InstructRecipe", "SFTConfig"),
}
OWN_DATA_RECIPE = Path(__file__).parent / "recipes" / "own_data.yaml"


def _stage(stage: str):
    """The stage's script module, recipe class and arguments class (`TrainingArguments` or TRL's `SFTConfig`)."""
    import importlib

    module, recipe, config = STAGES[stage]
    script = importlib.import_module(module)
    if config == "SFTConfig":
        from trl import SFTConfig as config_class
    else:
        from transformers import TrainingArguments as config_class
    return script, getattr(script, recipe), config_class


def _train_help(parser: argparse.ArgumentParser, stage: str):
    """The train command's own flags, then every field of the stage's recipe and of its training arguments."""
    from transformers import HfArgumentParser

    _, recipe_class, config_class = _stage(stage)
    parser.print_help()
    for title, cls in ((f"{recipe_class.__name__} (the recipe)", recipe_class),
                       (f"{config_class.__name__} (transformers/TRL)", config_class)):
        print(f"\n{title} fields, as --field-name value (YAML: field_name: value):")
        text = HfArgumentParser(cls, prog=f"mint train {stage}", add_help=False).format_help()
        print(text.split("\n", 2)[2] if text.startswith("usage:") else text)


def _train(args) -> int:
    """Each stage parses its recipe (YAML; your own data: `--data` on the defaults of `recipes/own_data.yaml`) and
    command-line overrides of recipe and `TrainingArguments` / `SFTConfig` fields."""
    from mint.training.common import parse_recipe

    if args.help and args.stage is None:
        args.parser.print_help()
        return 0
    if args.stage is None:
        raise SystemExit(f"mint train: give a stage: {', '.join(STAGES)}")
    if args.help:
        _train_help(args.parser, args.stage)
        return 0
    if args.recipe is None and args.data is None:
        raise SystemExit(f"mint train {args.stage}: give --data PATH (your clips) or --recipe FILE")
    recipe = existing(args.recipe, "recipe", "train") if args.recipe else str(OWN_DATA_RECIPE)
    own = []
    if args.data:
        own += ["--data_dir", existing(args.data, "data", "train", hub=True)]
    if args.model:
        own += ["--model_dir", existing(args.model, "model", "train", hub=True)]
    if args.out:
        own += ["--output_dir", args.out]
    script, recipe_class, config_class = _stage(args.stage)
    try:
        parsed = parse_recipe(recipe_class, config_class, ["--recipe", recipe, *own, *args.overrides])
    except ValueError as error:  # a field value the recipe or the training arguments refuse
        raise SystemExit(f"mint train {args.stage}: {error}")
    existing(parsed[0].model_dir, "model", "train", hub=True)
    script.main(*parsed)
    print(f"mint train {args.stage}: wrote {parsed[1].output_dir}")
    return 0


def _eval(args) -> int:
    from mint.training.evaluate import evaluate, markdown_table

    existing(args.model, "model", "eval", hub=True)
    existing(args.data, "data", "eval", hub=True)
    metrics = evaluate(args.model, args.data, args.split, args.out, tasks=args.tasks, languages=args.languages,
                       sources=args.sources, max_per_task=args.max_per_task, instruction=not args.no_instruction,
                       retrieval_dir=args.retrieval, whisper_baseline=args.whisper_baseline,
                       batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, seed=args.seed,
                       weights=args.weights)
    print(markdown_table(metrics))
    return 0


def _demo(args) -> int:
    """The Space's app (spaces_demo/app.py) run locally, as the Space runs it: its own process, its own imports."""
    import os
    import subprocess

    from mint.hub.assemble import assemble

    root = Path(__file__).resolve().parents[1]
    app = root / "spaces_demo" / "app.py"
    if not app.is_file():
        raise SystemExit(f"mint demo: {app} is missing (it is in the git checkout, not in the wheel)")
    model = args.model or root / ".cache" / "models" / "mint-tiny"
    for given in (args.model, args.retrieval):
        if given:
            existing(given, "model", "demo", hub=True)
    if not args.model and not (model / "config.json").is_file():
        assemble("mint-tiny", model)
    retrieval = args.retrieval or model  # the generation folder carries the retrieval heads too
    env = {"GRADIO_ANALYTICS_ENABLED": "False", **os.environ}
    server = subprocess.Popen(
        [sys.executable, str(app), "--model", str(model), "--retrieval", str(retrieval), "--host", "127.0.0.1",
         "--port", str(args.port)],
        cwd=app.parent, env=env,
    )
    return serve_until_ended(server)


def serve_until_ended(server) -> int:
    """Wait for `server`; if this process is ended (SIGTERM, SIGINT), end the server first, so no orphan keeps the
    port. Returns the server's exit status, or 128 + the signal when ended."""
    import signal
    import subprocess

    ended = []

    def end(signum, frame):
        ended.append(signum)
        server.terminate()

    previous = {s: signal.signal(s, end) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 + ended[0] if ended else code


BENCHMARKS = ("latency", "batching", "training", "stages", "feature_cache", "memory", "checkpointing", "flops", "profile",
              "paper_size")


def _bench(args) -> int:
    """Each benchmark module in turn (`python -m benchmarks.NAME`); reports go to benchmarks/reports/."""
    import importlib

    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"mint bench: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in args.names or BENCHMARKS:
        argv = ["--out", args.out, *(["--model", args.model] if args.model else []),
                *(["--quick"] if args.quick else []), *(["--threads", str(args.threads)] if args.threads else []),
                *(["--repeats", str(args.repeats)] if args.repeats else [])]
        paths = importlib.import_module(f"benchmarks.{name}").main(argv)
        print(f"{name}: {paths['md']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    from mint.hub.assemble import variants

    try:
        installed = version("mint-audio")
    except PackageNotFoundError:  # a checkout run without installing
        installed = "not installed"
    parser = argparse.ArgumentParser(prog="mint", description="MINT audio-language model")
    parser.add_argument("--version", action="version", version=f"mint {installed}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("assemble", help="build a variant from hub_configs/ into a loadable folder")
    p.add_argument("variant", choices=variants(), metavar="VARIANT",
                   help=f"a folder name under hub_configs/: {', '.join(variants())}")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed for randomly initialized parts")
    p.add_argument("--retrieval", action="store_true",
                   help="the retrieval / zero-shot model (stage 1) with the variant's trained heads")
    p.add_argument("--untrained", action="store_true", help="without the shipped trained weights (to train anew)")
    p.set_defaults(func=_assemble)

    p = sub.add_parser("ship", help="put trained weights (fp16, at most 64 MB) into a variant of hub_configs/")
    p.add_argument("variant", choices=variants(), metavar="VARIANT", help="a variant with a variant.json, e.g. mint-tiny")
    p.add_argument("--bridge", required=True, help="a generation run's bridge.safetensors")
    p.add_argument("--heads", default=None, help="a stage-1 run's heads.safetensors fitted to that bridge")
    p.add_argument("--adapter", default=None, help="the LLM's LoRA adapter from the same instruction run (llm_adapter/)")
    p.set_defaults(func=_ship)

    p = sub.add_parser("push", help="check an assembled folder and upload it to the Hugging Face Hub")
    p.add_argument("folder", help="a folder made by `mint assemble`")
    p.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--token", default=None, help="a write token (default: HF_TOKEN or `hf auth login`)")
    p.add_argument("--commit-message", default=None)
    p.set_defaults(func=_push)

    p = sub.add_parser("data", help="datasets")
    data = p.add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="build the offline corpus (Debian recordings + generated clips)")
    b.add_argument("--out", required=True, help="output folder (DatasetDict.save_to_disk)")
    b.add_argument("--max-per-source", type=int, default=None, help="cap clips per source (quick builds)")
    b.add_argument("--seed", type=int, default=0, help="seed of the generated clips")
    b.add_argument("--sources", nargs="+", default=None,
                   help="build only these sources (default all: see mint.training.corpus.ALL_SOURCES)")
    b.add_argument("--verify-budget", type=float, default=None, metavar="SECONDS",
                   help="cap Whisper's check of the game speech at SECONDS of decoding per game; pairs not reached "
                   "are left out this time (the transcripts are cached, so the next build goes further)")
    b.set_defaults(func=_data_build)

    p = sub.add_parser("train", add_help=False,
                       help="train one stage on your data or from a recipe; other --field value pairs override it")
    p.add_argument("stage", nargs="?", choices=list(STAGES))
    p.add_argument("-h", "--help", action="store_true", help="this help; after a stage, every field of its recipe")
    p.add_argument("--data", default=None, help="your clips: a folder of audio with a CSV/JSONL of audio,text"
                   "[,instruction], such a table, a saved `datasets` dataset or a Hub dataset id (with an Audio "
                   "column); a validation split is made if there is none. Default: the recipe's data_dir")
    p.add_argument("--model", default=None, help="the MINT folder to start from (the recipe's model_dir)")
    p.add_argument("--out", default=None, help="output folder (the recipe's output_dir): a whole model, loadable with "
                   "from_pretrained, the pipeline and mint eval")
    p.add_argument("--recipe", default=None, help="YAML of recipe and TrainingArguments/SFTConfig fields (default "
                   "with --data: training/recipes/own_data.yaml)")
    p.set_defaults(func=_train, parser=p)

    p = sub.add_parser("eval", help="metrics of a model folder on a corpus split")
    p.add_argument("--model", required=True, help="an assembled or trained MINT folder")
    p.add_argument("--weights", default=None, help="trained weights on top of --model: a run's bridge.safetensors "
                   "or a checkpoint folder")
    p.add_argument("--data", default="data/mint-corpus", help="the corpus (mint data build), or your own data as "
                   "for mint train --data (its test split, else its validation split)")
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
    p.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, ...) or folders of them")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--prompt", default="Describe the audio.", help="the instruction")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--device", default=None, help="e.g. cpu, cuda:0")
    p.add_argument("--batch-size", type=int, default=8, help="clips generated together")
    p.add_argument("--audio-tower-dtype", choices=["auto", "bfloat16", "float32"], default=None,
                   help="the audio encoder's dtype (auto: bfloat16 on CPUs with native bf16, faster to the first "
                        "token; default: the model's config)")
    p.add_argument("--json", action="store_true", help="one JSON object per line (JSON lines), as each batch ends")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

    p = sub.add_parser("demo", help="the Gradio demo (the Space's app) on mint-tiny, at http://127.0.0.1:PORT")
    p.add_argument("--model", default=None, help="generation model folder (default: mint-tiny, assembled once "
                   "into .cache/models/)")
    p.add_argument("--retrieval", default=None, help="zero-shot / retrieval model (default: the --model folder, "
                   "which carries the retrieval heads)")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=_demo)

    p = sub.add_parser("bench", help="benchmarks measuring ratios in one run; markdown + JSON + PNG reports")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    p.add_argument("--model", default=None, help="an assembled MINT folder (default: each benchmark's own)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one repeat (a smoke test)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per side")
    p.add_argument("--out", default="benchmarks/reports", help="report folder")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    if overrides and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.overrides = overrides
    try:
        return args.func(args)
    except FileNotFoundError as error:  # a path found missing deep in a command: still one line, not a traceback
        raise SystemExit(f"mint {args.command}: {error}")


if __name__ == "__main__":
    sys.exit(main())
