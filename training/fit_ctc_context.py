"""Fit the CTC head's context layers (`ctc_context_layers`) on a trained token-prompt model. A window's queries hear
0.24 s, so the head spells each window alone, while a word piece spans windows; a few convolution layers over the
clip's projected audio tokens let it read its neighbours. Everything else stays frozen, and the soft prompt the LLM
reads does not pass through the layers: only joint CTC decoding and the head's word-piece bags change.

The bridge runs once over the train split's CTC rows (the tasks and languages of CTC alignment, with no instruction,
as alignment reads them); the layers then train on those tokens by the same CTC loss, for `--minutes`, and the state
with the lowest validation CTC loss is written, with the model's trained Bridge-Net and retrieval heads, as a
`bridge.safetensors` for `mint ship`.

    python -m mint.training.fit_ctc_context --model models/mint-tiny-token-prompt --out runs/ctc_context --layers 3
"""

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from modeling_mint import MintForConditionalGeneration, MintProcessor
from modeling_mint.modeling_mint import MintCTCContext
from mint.hub.weights import BRIDGE_WEIGHTS, RETRIEVAL_HEADS, state_by_prefix, trained_state
from mint.io import atomic_folder
from mint.training.collators import pad_frames
from mint.training.common import feature_cache, frames_dataset, freeze_bridge_word_embeddings
from mint.training.ctc_probe import best_path_text
from mint.training.data import corpus_rows
from mint.training.evaluate import word_error_rate
from mint.training.features import load_frames
from mint.training.pretrain_generative import soft_prompt_ctc_loss

CTC_TASKS = ["transcription", "spoken_word", "classification", "captioning"]  # as CTC alignment trains the head


@torch.no_grad()
def projected_tokens(model, rows: list[dict], batch_size: int = 16, desc: str = "bridge") -> list[torch.Tensor]:
    """Each row's projected audio tokens `(T, D_llm)` before any context layer, as the CTC head reads them."""
    out = []
    for start in tqdm(range(0, len(rows), batch_size), desc=desc):
        frames, mask = pad_frames([load_frames(r["frames_path"]) for r in rows[start : start + batch_size]])
        tokens, token_mask = model.model.ctc_tokens(frames, mask)
        out += [t[m].to(torch.float16) for t, m in zip(tokens, token_mask)]
    return out


def batch_loss(context, head, tokens: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """The CTC loss of `targets` over the clips' tokens after `context`, read as the model's head reads them."""
    padded = torch.nn.utils.rnn.pad_sequence([t.float() for t in tokens], batch_first=True)
    counts = [len(t) for t in tokens]
    mask = torch.arange(padded.shape[1]) < torch.tensor(counts)[:, None]
    out = context(padded, mask.float())
    output_embeddings, blank, log_scale = head
    return soft_prompt_ctc_loss(out[mask], counts, output_embeddings, blank, targets, log_scale)


@torch.no_grad()
def greedy_wer(context, model, tokenizer, tokens: list[torch.Tensor], texts: list[str]) -> float:
    """WER of the head's best path (repeats merged, blanks dropped) after `context`."""
    hypotheses = []
    for t in tokens:
        x = t.float()[None]
        logits = model.model.token_logits(context(x, torch.ones(x.shape[:2]))[0])
        hypotheses.append(best_path_text(tokenizer, logits.argmax(-1), logits.shape[-1] - 1))
    return word_error_rate(texts, hypotheses)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an assembled token-prompt model folder")
    parser.add_argument("--data", default="data/mint-corpus-v2")
    parser.add_argument("--out", required=True, help="written whole: bridge.safetensors, config.json, fit.json")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=60.0, help="training time, after the bridge's pass")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-train-clips", type=int, default=None, help="a seeded sample of the train rows")
    parser.add_argument("--max-validation-clips", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feature-cache", default=None, help="default: ~/.cache/mint/features")
    args = parser.parse_args(argv)
    for name in ("layers", "minutes", "batch_size", "learning_rate"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")

    torch.manual_seed(args.seed)
    model = MintForConditionalGeneration.from_pretrained(args.model).eval()
    if not model.config.token_bags:
        raise ValueError(f"{args.model}: no token prompt CTC head (token_prompt_mix > 0 on a windowed bridge)")
    if model.config.ctc_context_layers:
        raise ValueError(f"{args.model} has context layers already")
    processor = MintProcessor.from_pretrained(args.model)
    cache = feature_cache(model, processor, args.feature_cache)

    def rows(split: str, limit: int | None) -> list[dict]:
        found = corpus_rows(args.data, split, CTC_TASKS, limit, args.seed, ["en"])
        found += corpus_rows(args.data, split, ["spoken_word"], limit, args.seed)  # spoken words in any language
        unique = {(r["clip_id"], r["task"]): r for r in found}
        return frames_dataset(list(unique.values()), cache).to_list()

    train, validation = rows("train", args.max_train_clips), rows("validation", args.max_validation_clips)
    tokenizer = processor.tokenizer
    special = set(tokenizer.all_special_ids)

    def targets(subset):
        ids = tokenizer([r["text"] for r in subset], add_special_tokens=False)["input_ids"]
        return [torch.tensor([i for i in row if i not in special]) for row in ids]

    train_tokens, train_targets = projected_tokens(model, train, desc="bridge, train"), targets(train)
    val_tokens, val_targets = projected_tokens(model, validation, desc="bridge, validation"), targets(validation)
    keep = [i for i, (t, y) in enumerate(zip(train_tokens, train_targets)) if 0 < len(y) <= len(t)]
    speech = [i for i, r in enumerate(validation) if r["task"] == "transcription"]
    if not keep or not validation:
        raise ValueError(f"{args.data}: no train or no validation rows of {CTC_TASKS}")

    model.config.ctc_context_layers = args.layers
    context = MintCTCContext(model.config)
    context.apply(model.model._init_weights)  # the model's own initialisation: the new layers are the identity
    head = (model.lm_head.weight.detach(), model.model.ctc_blank.detach(), model.model.ctc_log_scale.detach())
    optimizer = torch.optim.AdamW(context.parameters(), lr=args.learning_rate, weight_decay=0.01)

    def validate() -> tuple[float, float | None]:
        context.eval()
        with torch.no_grad():
            losses = [batch_loss(context, head, val_tokens[i : i + 32], val_targets[i : i + 32]).item()
                      for i in range(0, len(val_tokens), 32)]
            wer = greedy_wer(context, model, tokenizer, [val_tokens[i] for i in speech],
                             [validation[i]["text"] for i in speech]) if speech else None
        context.train()
        return sum(losses) / len(losses), wer

    start_loss, start_wer = validate()
    history = [{"step": 0, "minutes": 0.0, "validation_ctc_loss": start_loss, "validation_greedy_wer": start_wer}]
    best = (start_loss, {k: v.clone() for k, v in context.state_dict().items()}, 0)
    print(json.dumps(history[-1]), flush=True)
    rng = random.Random(args.seed)
    order = sorted(keep, key=lambda i: len(train_tokens[i]))  # batches of like lengths, in shuffled order
    batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    per_epoch, step, began = len(batches), 0, time.monotonic()
    budget = args.minutes * 60
    context.train()
    with tqdm(total=int(budget), unit="s", desc="context layers") as bar:
        while time.monotonic() - began < budget:
            rng.shuffle(batches)
            for batch in batches:
                elapsed = time.monotonic() - began
                for group in optimizer.param_groups:  # 100 steps of warm-up, then a cosine over the time budget
                    group["lr"] = (args.learning_rate * min(1.0, (step + 1) / 100)
                                   * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget))))
                loss = batch_loss(context, head, [train_tokens[i] for i in batch], [train_targets[i] for i in batch])
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(context.parameters(), 1.0)
                optimizer.step()
                step += 1
                elapsed = time.monotonic() - began
                bar.update(int(elapsed) - bar.n)
                bar.set_postfix(loss=f"{loss.item():.3f}", epoch=f"{step / per_epoch:.2f}")
                if step % per_epoch == 0 or elapsed >= budget:
                    val_loss, wer = validate()
                    history.append({"step": step, "minutes": round(elapsed / 60, 2), "train_ctc_loss": loss.item(),
                                    "validation_ctc_loss": val_loss, "validation_greedy_wer": wer})
                    print(json.dumps(history[-1]), flush=True)
                    if val_loss < best[0]:
                        best = (val_loss, {k: v.clone() for k, v in context.state_dict().items()}, step)
                if elapsed >= budget:
                    break

    context.load_state_dict(best[1])
    model.model.ctc_context = context
    freeze_bridge_word_embeddings(model)  # rebuilt from its pretrained source at assembly, as every stage leaves it
    state = {**trained_state(model), **state_by_prefix(model, RETRIEVAL_HEADS)}
    report = {"model": args.model, "layers": args.layers, "train_clips": len(keep),
              "validation_clips": len(validation), "validation_speech_clips": len(speech), "steps": step,
              "epochs": step / per_epoch, "best_step": best[2], "history": history}
    config = model.config.to_dict()
    with atomic_folder(args.out) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / BRIDGE_WEIGHTS), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "fit.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
