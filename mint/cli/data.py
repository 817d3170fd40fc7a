"""`mint data build`: the offline corpus."""

import json

SUMMARY = ("clips", "real_clips", "rendered_clips", "generated_clips", "real_speech_hours", "english_speech_hours",
           "english_speech_sources", "speakers", "english_speakers", "labelled_sound_clips", "sound_labels", "sources",
           "held_out_sources", "build_seconds", "disk_bytes", "missing_sources")


def build(args) -> int:
    from mint.training.corpus import build

    out, stats = build(args.out, max_per_source=args.max_per_source, seed=args.seed, sources=args.sources,
                       verify_budget=args.verify_budget, more_sentences=args.more_sentences)
    print(json.dumps({"out": str(out), **{k: stats[k] for k in SUMMARY}}))
    return 0


def add_parsers(sub) -> None:
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
    b.add_argument("--more-sentences", type=int, default=0, metavar="N",
                   help="add N training-only English sentences read by the synthetic voices, each sentence by one voice "
                   "(more words for the CTC alignment to spell)")
    b.set_defaults(func=build)
