"""MINT next to its peers in one run on the same test clips: each model through `mint eval` with the same rows, then
one table of the headline numbers (markdown, JSON and a PNG).

    python -m mint.training.compare --out runs/eval/compare --whisper-baseline \
        --model "mint-tiny=models/mint-tiny" --model "dense projector=models/mint-tiny-pooled" \
        --retrieval "mint-tiny=models/mint-tiny-retrieval"
"""

import argparse
import json
from pathlib import Path

from mint.training.evaluate import evaluate


# (row label, path into metrics.json, higher is better, format)
HEADLINE = [
    ("transcription WER, Asterisk (real speech)", ("transcription", "asterisk", "WER"), False, "{:.2f}"),
    ("transcription WER, all English", ("transcription", "all", "WER"), False, "{:.2f}"),
    ("captions accepted", ("captioning", "all", "accepted"), True, "{:.0%}"),
    ("caption CIDEr", ("captioning", "all", "CIDEr"), True, "{:.3f}"),
    ("caption BLEU-4", ("captioning", "all", "BLEU-4"), True, "{:.3f}"),
    ("classification accuracy (generated answer)", ("classification", "all", "accuracy"), True, "{:.1%}"),
    ("spoken word accuracy (generated answer)", ("spoken_word", "all", "accuracy"), True, "{:.1%}"),
    ("language id accuracy (generated answer)", ("language_id", "all", "accuracy"), True, "{:.1%}"),
    ("question answering accuracy", ("question_answering", "all", "accuracy"), True, "{:.1%}"),
    ("audio -> text retrieval R@1", ("embeddings", "retrieval", "audio_to_text/R@1"), True, "{:.1%}"),
    ("zero-shot sound classification", ("embeddings", "zero_shot/classification/all", "accuracy"), True, "{:.1%}"),
    ("zero-shot spoken word", ("embeddings", "zero_shot/spoken_word/ktuberling", "accuracy"), True, "{:.1%}"),
]


# Corpus v2's test slices for the held-out comparison (`--held-out`): real phone prompts, the test speakers of a
# trained game, a whole game no stage saw, sounds of trained sources and a whole sound pack no stage saw.
HELD_OUT_SLICES = {
    "Asterisk prompts": (["transcription"], ["asterisk"]),
    "Queen, test speakers": (["transcription"], ["queen"]),
    "Drascula (held-out game)": (["transcription"], ["drascula"]),
    "sounds of trained sources": (["classification", "captioning"],
                                  ["0ad", "supertuxkart", "tuxpaint", "freedesktop", "instruments"]),
    "MegaGlest (held-out pack)": (["classification", "captioning"], ["megaglest"]),
}
SLICE_METRICS = [("transcription WER", ("transcription", "all", "WER"), "{:.2f}"),
                 ("label accuracy", ("classification", "all", "accuracy"), "{:.1%}"),
                 ("label chance", ("classification", "all", "chance"), "{:.1%}"),
                 ("captions accepted", ("captioning", "all", "accepted"), "{:.0%}"),
                 ("caption CIDEr", ("captioning", "all", "CIDEr"), "{:.3f}")]


EMBEDDING_METRICS = [("zero-shot accuracy (embeddings)", "zero-shot accuracy", "{:.1%}"),
                     ("zero-shot chance", "zero-shot chance", "{:.1%}"),
                     ("audio -> text R@1 (embeddings)", "R@1", "{:.1%}"),
                     ("audio -> text R@1 chance", "R@1 chance", "{:.1%}")]
# The same rankings by the generation model's CTC head (`evaluate.token_bag_metrics`); chance is the same.
TOKEN_BAG_METRICS = [("zero-shot accuracy (CTC word pieces)", "zero-shot accuracy", "{:.1%}"),
                     ("audio -> text R@1 (CTC word pieces)", "R@1", "{:.1%}")]


def embedding_summary(metrics: dict, key: str = "embeddings") -> dict:
    """A slice's ranking metrics (`metrics[key]`: the stage-1 embeddings, or `token_bags`): zero-shot classification
    over the slice's label set (over all its sources) and audio-to-text R@1 over its distinct texts, each with its
    chance."""
    embeddings, summary = metrics.get(key, {}), {}
    zero_shot = {k: v for k, v in embeddings.items() if k.startswith("zero_shot/classification/")}
    if zero_shot:
        overall = zero_shot.get("zero_shot/classification/all") or next(iter(zero_shot.values()))
        summary.update({"zero-shot accuracy": overall["accuracy"], "zero-shot chance": overall["chance"],
                        "zero-shot clips": overall["clips"]})
    if "retrieval" in embeddings:
        retrieval = embeddings["retrieval"]
        summary.update({"R@1": retrieval["audio_to_text/R@1"], "R@1 chance": retrieval["chance/R@1_audio_to_text"],
                        "R@1 clips": retrieval["clips"]})
    return summary


def held_out(models: dict[str, str], data: str, out: Path, max_per_task: int | None,
             retrieval: dict[str, str] | None = None, decoding: dict[str, dict] | None = None,
             slices: list[str] | None = None) -> tuple[str, dict]:
    """Every model on every held-out slice (the same clips for each), Whisper tiny.en's decoder beside the
    transcription slices; models with a retrieval folder in `retrieval` also by their embeddings, and models named in
    `decoding` answer each task with its `generate` keywords (`{task: {...}}`). `slices` keeps those slices alone."""
    unknown = set(slices or []) - set(HELD_OUT_SLICES)
    if unknown:
        raise ValueError(f"no held-out slices {sorted(unknown)}; there are {list(HELD_OUT_SLICES)}")
    retrieval, decoding = retrieval or {}, decoding or {}
    rows, data_out = [], {}
    names = list(models)
    header = ["| slice | metric | " + " | ".join(names) + " | Whisper tiny.en decoder |",
              "|---|---|" + "---|" * (len(names) + 1)]
    for slice_name, (tasks, sources) in HELD_OUT_SLICES.items():
        if slices and slice_name not in slices:
            continue
        results = {}
        for i, (name, model_dir) in enumerate(models.items()):
            folder = out / slice_name.split(" (")[0].replace(" ", "_").replace(",", "") / name.replace(" ", "_")
            results[name] = evaluate(model_dir, data, "test", str(folder), tasks=tasks, languages=["en"],
                                     sources=sources, max_per_task=max_per_task, retrieval_dir=retrieval.get(name),
                                     whisper_baseline=i == 0 and "transcription" in tasks,
                                     task_generate_kwargs=decoding.get(name))
        first = results[names[0]]
        whisper = lookup(first, ("transcription_english", "whisper-tiny.en", "all", "WER"))
        for label, path, fmt in SLICE_METRICS:
            values = {n: lookup(results[n], path) for n in names}
            if all(v is None for v in values.values()):
                continue
            cells = [fmt.format(v) if isinstance(v, (int, float)) else "–" for v in values.values()]
            extra = fmt.format(whisper) if label == "transcription WER" and whisper is not None else "–"
            clips = lookup(first, (path[0], "all", "clips"))
            rows.append(f"| {slice_name} ({clips} clips) | {label} | " + " | ".join(cells) + f" | {extra} |")
            data_out[f"{slice_name}/{label}"] = {**values, **({"whisper": whisper} if extra != "–" else {})}
        for source, metrics in (("embeddings", EMBEDDING_METRICS), ("token_bags", TOKEN_BAG_METRICS)):
            summaries = {n: embedding_summary(results[n], source) for n in names}
            for label, key, fmt in metrics:
                values = {n: summaries[n].get(key) for n in names}
                if all(v is None for v in values.values()):
                    continue
                counted = "R@1 clips" if key.startswith("R@1") else "zero-shot clips"
                clips = next(summaries[n][counted] for n in names if values[n] is not None)
                cells = [fmt.format(v) if v is not None else "–" for v in values.values()]
                rows.append(f"| {slice_name} ({clips} clips) | {label} | " + " | ".join(cells) + " | – |")
                data_out[f"{slice_name}/{label}"] = values
    return "\n".join(header + rows) + "\n", data_out


def lookup(metrics: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(metrics, dict) or key not in metrics:
            return None
        metrics = metrics[key]
    return metrics


def audio_tokens(model_dir: str, seconds: float = 10.0) -> int:
    """LLM prompt tokens the model spends on `seconds` of audio."""
    from modeling_mint import MintProcessor

    processor = MintProcessor.from_pretrained(model_dir)
    return processor.tokens_for_frames(int(seconds * 50))


def table(results: dict[str, dict], whisper: dict | None, tokens: dict[str, int]) -> tuple[str, dict]:
    names = list(results)
    header = ["| | " + " | ".join(names) + (" | Whisper tiny.en decoder |" if whisper else " |"),
              "|---|" + "---|" * (len(names) + bool(whisper))]
    rows, data = [], {}
    rows.append("| audio tokens in the LLM prompt per 10 s | " + " | ".join(str(tokens[n]) for n in names)
                + (" | – |" if whisper else " |"))
    for label, path, higher, fmt in HEADLINE:
        values = {n: lookup(results[n], path) for n in names}
        if whisper and path[0] == "transcription":
            values["Whisper tiny.en decoder"] = lookup(whisper, path)
        present = {k: v for k, v in values.items() if isinstance(v, (int, float))}
        if not present:
            continue
        best = (max if higher else min)(present.values())
        cells = [(f"**{fmt.format(v)}**" if v == best and len(present) > 1 else fmt.format(v))
                 if isinstance(v, (int, float)) else "–" for v in values.values()]
        if whisper and path[0] != "transcription":
            cells.append("–")
        rows.append(f"| {label} {'↑' if higher else '↓'} | " + " | ".join(cells) + " |")
        data[label] = values
    return "\n".join(header + rows) + "\n", data


def plot(data: dict, path: Path):
    from mint.training.plots import bar_panels

    bar_panels({label: {n: v for n, v in values.items() if v is not None} for label, values in data.items()
                if len([v for v in values.values() if v is not None]) > 1}, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="'NAME=DIR' of an assembled model")
    parser.add_argument("--retrieval", action="append", default=[], help="'NAME=DIR' of a model's retrieval folder")
    parser.add_argument("--data", default="data/mint-corpus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--languages", nargs="*", default=["en"])
    parser.add_argument("--any-language-tasks", nargs="*", default=["spoken_word", "language_id"],
                        help="tasks kept in every language (their answers are English labels)")
    parser.add_argument("--max-per-task", type=int, default=None)
    parser.add_argument("--whisper-baseline", action="store_true")
    parser.add_argument("--held-out", action="store_true",
                        help="the corpus v2 test slices of HELD_OUT_SLICES instead of one pass over every task")
    parser.add_argument("--decoding", action="append", default=[],
                        help="'NAME=JSON': how that model decodes each task, e.g. "
                             "'joint={\"transcription\": {\"ctc_weight\": 0.5, \"num_beams\": 4}}'")
    parser.add_argument("--slices", nargs="*", default=None, help="with --held-out: these slices alone")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    models = dict(spec.split("=", 1) for spec in args.model)
    decoding = {name: json.loads(spec) for name, spec in (d.split("=", 1) for d in args.decoding)}
    if set(decoding) - set(models):
        parser.error(f"--decoding names no --model: {sorted(set(decoding) - set(models))}")
    if args.held_out:
        out = Path(args.out)
        markdown, data = held_out(models, args.data, out, args.max_per_task,
                                  dict(spec.split("=", 1) for spec in args.retrieval), decoding, args.slices)
        markdown = (f"Test split of `{args.data}`, English, at most {args.max_per_task} clips per task and slice, the "
                    "same clips for every model (one run of `python -m mint.training.compare --held-out`).\n\n"
                    + markdown)
        out.mkdir(parents=True, exist_ok=True)
        (out / "held_out.md").write_text(markdown)
        (out / "held_out.json").write_text(json.dumps(data, indent=2))
        print(markdown)
        return data
    retrieval = dict(spec.split("=", 1) for spec in args.retrieval)
    out = Path(args.out)
    results, whisper = {}, None
    for i, (name, model_dir) in enumerate(models.items()):
        folder = out / name.replace(" ", "_")
        results[name] = evaluate(model_dir, args.data, args.split, str(folder), tasks=args.tasks,
                                 languages=args.languages, max_per_task=args.max_per_task,
                                 any_language_tasks=tuple(args.any_language_tasks),
                                 retrieval_dir=retrieval.get(name), whisper_baseline=args.whisper_baseline and i == 0,
                                 task_generate_kwargs=decoding.get(name))
        if args.whisper_baseline and i == 0 and "transcription_english" in results[name]:
            whisper = {"transcription": results[name]["transcription_english"]["whisper-tiny.en"]}
    tokens = {name: audio_tokens(model_dir) for name, model_dir in models.items()}
    markdown, data = table(results, whisper, tokens)
    scope = f"languages {', '.join(args.languages)}" if args.languages else "all languages"
    if args.languages and args.any_language_tasks:
        scope += f" ({', '.join(args.any_language_tasks)} in all)"
    markdown = (f"{args.split.capitalize()} split, {scope}, the same clips for every model (one run of "
                f"`python -m mint.training.compare`).\n\n" + markdown)
    (out / "comparison.md").write_text(markdown)
    (out / "comparison.json").write_text(json.dumps({"tokens_per_10s": tokens, "metrics": data}, indent=2))
    plot(data, out / "comparison.png")
    print(markdown)
    return data


if __name__ == "__main__":
    main()
