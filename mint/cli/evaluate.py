"""`mint eval`: metrics of a model folder on a corpus split (or your own data)."""

from mint.cli.decoding import add_decoding_arguments, decoding_kwargs
from mint.cli.paths import existing


def evaluate(args) -> int:
    from mint.training.evaluate import evaluate, markdown_table

    existing(args.model, "model", "eval", hub=True)
    existing(args.data, "data", "eval", hub=True)
    metrics = evaluate(args.model, args.data, args.split, args.out, tasks=args.tasks, languages=args.languages,
                       sources=args.sources, max_per_task=args.max_per_task, instruction=not args.no_instruction,
                       retrieval_dir=args.retrieval, whisper_baseline=args.whisper_baseline,
                       batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, seed=args.seed,
                       weights=args.weights, generate_kwargs=decoding_kwargs(args))
    print(markdown_table(metrics))
    return 0


def add_parsers(sub) -> None:
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
    add_decoding_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=evaluate)
