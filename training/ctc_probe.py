"""What a windowed Bridge-Net spells by itself: greedy CTC decoding of its soft prompt through the LLM's output
embeddings (the reading the CTC loss trains), scored by WER on English transcription clips. It tells whether the
audio tokens carry the words before any LLM is asked to read them.

    python -m mint.training.ctc_probe --model models/mint-tiny-windowed-base \
        --checkpoint runs/stage2_windowed_ctc_warmup/checkpoint-2000 --split test --sources asterisk
"""

import argparse
import json
import random
from pathlib import Path

import torch

from modeling_mint import MintForConditionalGeneration, MintProcessor
from mint.training.collators import pad_frames
from mint.training.common import feature_cache, frames_dataset, load_stage1_bridge
from mint.training.data import corpus_rows
from mint.training.features import load_frames
from mint.training.pretrain_generative import ctc_parameters


@torch.no_grad()
def greedy_ctc(model, processor, rows: list[dict], blank: torch.Tensor, log_scale: torch.Tensor,
               batch_size: int = 16, blank_penalty: float = 0.0) -> list[str]:
    """Best path of every clip's audio tokens over the LLM's vocabulary plus the blank: repeats merged, blanks
    dropped, word pieces detokenized. `blank_penalty` (nats) is taken off the blank's logit: if deletions turn into
    hits as it grows, the words were the runners-up of a blank that won."""
    weight = torch.cat([model.lm_head.weight, blank[None]])
    blank_id, texts = weight.shape[0] - 1, []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        frames, mask = pad_frames([load_frames(r["frames_path"]) for r in batch])
        soft_prompt = model.model.get_audio_features(audio_frames=frames, audio_frame_mask=mask).pooler_output
        counts = [processor.tokens_for_frames(n) for n in mask.sum(1).tolist()]
        logits = soft_prompt.reshape(-1, soft_prompt.shape[-1]) @ weight.T * log_scale.exp()
        logits[:, blank_id] -= blank_penalty
        best = logits.argmax(-1)
        texts += [best_path_text(processor.tokenizer, path, blank_id) for path in best.split(counts)]
    return texts


def best_path_text(tokenizer, best: torch.Tensor, blank_id: int) -> str:
    """A clip's best CTC path `(T,)` as text: repeats merged, blanks dropped, word pieces detokenized."""
    path = torch.unique_consecutive(best)
    return tokenizer.decode(path[path != blank_id], skip_special_tokens=True).strip()


def per_source_subset(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    """At most `n` rows of each source, drawn by a fixed seed from the rows in clip order, so every model that is
    probed reads the same clips."""
    by_source: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["clip_id"]):
        by_source.setdefault(row["source"], []).append(row)
    return [r for source in sorted(by_source) for r in (
        by_source[source] if len(by_source[source]) <= n else random.Random(seed).sample(by_source[source], n))]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the assembled windowed variant the run started from")
    parser.add_argument("--checkpoint", required=True, help="a CTC run's checkpoint folder (bridge, blank, scale)")
    parser.add_argument("--data", default="data/mint-corpus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--sources", nargs="*", default=["asterisk"])
    parser.add_argument("--max-clips", type=int, default=None,
                        help="a seeded subset of this many clips per source (the same for every model)")
    parser.add_argument("--feature-cache", default=None, help="default: ~/.cache/mint/features")
    parser.add_argument("--blank-penalty", type=float, default=0.0,
                        help="nats taken off the blank's logit before the best path (0: the path the model prefers)")
    parser.add_argument("--out", default=None, help="write the metrics and transcripts here as JSON")
    args = parser.parse_args(argv)

    from mint.training.evaluate import metric, word_error_rate

    model = MintForConditionalGeneration.from_pretrained(args.model).eval()
    processor = MintProcessor.from_pretrained(args.model)
    load_stage1_bridge(model, args.checkpoint)
    state = ctc_parameters(args.checkpoint)
    if "ctc_blank" not in state:
        raise ValueError(f"{args.checkpoint}: no CTC blank: not a checkpoint of a run with ctc_weight > 0")
    rows = [r for r in corpus_rows(args.data, args.split, ["transcription"], None, 0, ["en"])
            if not args.sources or r["source"] in args.sources]
    if args.max_clips is not None:
        rows = per_source_subset(rows, args.max_clips)
    rows = frames_dataset(rows, feature_cache(model, processor, args.feature_cache)).to_list()
    texts = greedy_ctc(model, processor, rows, state["ctc_blank"], state["ctc_log_scale"],
                       blank_penalty=args.blank_penalty)
    errors = metric("mint_wer").compute(predictions=texts, references=[r["text"] for r in rows])
    result = {"checkpoint": args.checkpoint, "blank_penalty": args.blank_penalty, "split": args.split,
              "sources": args.sources, "clips": len(rows),
              "wer": errors["wer"],
              "errors": {kind: errors[kind] for kind in ("substitutions", "deletions", "insertions")},
              "reference_words": errors["reference_words"],
              "wer_by_source": {source: word_error_rate([r["text"] for r in rows if r["source"] == source],
                                                        [t for r, t in zip(rows, texts) if r["source"] == source])
                                for source in sorted({r["source"] for r in rows})},
              "examples": [{"clip_id": r["clip_id"], "reference": r["text"], "ctc": t} for r, t in zip(rows, texts)]}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
