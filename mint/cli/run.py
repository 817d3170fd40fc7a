"""`mint run`: answer an instruction about audio files."""

import json
import sys
from pathlib import Path

from mint.cli.decoding import add_decoding_arguments, decoding_kwargs
from mint.cli.paths import existing

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


def answers(pipe, batch: list[str], prompt: str, **generate_kwargs) -> list[dict]:
    """One batch through the pipeline; if a clip in it is bad, each clip alone, so only that one gets an error."""
    try:
        outputs = pipe(batch, prompt=prompt, batch_size=len(batch), **generate_kwargs)
        return [{"audio": a, "prompt": prompt, "text": o["generated_text"]} for a, o in zip(batch, outputs)]
    except (ValueError, TypeError, OSError):
        if len(batch) > 1:
            return [r for a in batch for r in answers(pipe, [a], prompt, **generate_kwargs)]
    try:
        return [{"audio": batch[0], "prompt": prompt,
                 "text": pipe(batch[0], prompt=prompt, **generate_kwargs)["generated_text"]}]
    except (ValueError, TypeError, OSError) as error:
        return [{"audio": batch[0], "prompt": prompt, "error": str(error)}]


def shipped_decoding(args) -> dict:
    """`--decoding TASK`: the decoding the model ships for that task (`{task}_generation_config.json`)."""
    if args.decoding is None:
        return {}
    from mint.training.evaluate import task_decoding

    decoding = task_decoding(args.model, args.decoding)
    if not decoding:
        raise SystemExit(f"mint run: {args.model} ships no {args.decoding} decoding "
                         f"({args.decoding}_generation_config.json)")
    return decoding


def run(args) -> int:
    from tqdm.auto import tqdm
    from transformers import pipeline

    if args.batch_size < 1:
        raise SystemExit(f"mint run: --batch-size must be at least 1, got {args.batch_size}")
    existing(args.model, "model", "run", hub=True)
    files = audio_files(args.audio)
    model_kwargs = {"audio_tower_dtype": args.audio_tower_dtype} if args.audio_tower_dtype else {}
    pipe = pipeline("audio-text-to-text", model=args.model, trust_remote_code=True, device=args.device,
                    model_kwargs=model_kwargs)
    generate_kwargs = {"max_new_tokens": args.max_new_tokens, **shipped_decoding(args), **decoding_kwargs(args)}
    failed = 0
    with tqdm(total=len(files), unit="clip", desc="mint run", disable=len(files) < 2 or args.quiet) as bar:
        for start in range(0, len(files), args.batch_size):
            for result in answers(pipe, files[start : start + args.batch_size], args.prompt, **generate_kwargs):
                failed += "error" in result
                if args.json:
                    bar.write(json.dumps(result, ensure_ascii=False), file=sys.stdout)
                elif "error" in result:
                    bar.write(f"{result['audio']}: error: {result['error']}", file=sys.stderr)
                else:
                    bar.write(f"{result['audio']}: {result['text']}", file=sys.stdout)
                bar.update()
    return 1 if failed else 0


def add_parsers(sub) -> None:
    p = sub.add_parser("run", help="answer an instruction about audio files")
    p.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, ...) or folders of them")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--prompt", default="Describe the audio.", help="the instruction")
    p.add_argument("--max-new-tokens", type=int, default=64)
    add_decoding_arguments(p)
    p.add_argument("--decoding", default=None, metavar="TASK",
                   help="decode as the model ships it for TASK (e.g. transcription: its joint CTC decoding)")
    p.add_argument("--device", default=None, help="e.g. cpu, cuda:0")
    p.add_argument("--batch-size", type=int, default=8, help="clips generated together")
    p.add_argument("--audio-tower-dtype", choices=["auto", "bfloat16", "float32"], default=None,
                   help="the audio encoder's dtype (auto: bfloat16 on CPUs with native bf16, faster to the first "
                        "token; default: the model's config)")
    p.add_argument("--json", action="store_true", help="one JSON object per line (JSON lines), as each batch ends")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
