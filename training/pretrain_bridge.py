"""Stage 1: multi-target pre-training of the Bridge-Net (ATC + ATM + AGTG) on frozen audio features, no LLM.

    mint train stage1 --config training/recipes/stage1_mint_tiny.yaml

The audio tower, queries and Bridge-Net come from an assembled MINT folder (`mint assemble mint-tiny`); the LLM in
it is never loaded. The result is a retrieval / zero-shot folder and the bridge weights for stage 2.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments
from trl import TrlParser

from mint.hub.assemble import export_retrieval
from mint.hub.weights import BRIDGE_NET, RETRIEVAL_HEADS, load_by_prefix, save_state, save_trainable, state_by_prefix
from modeling_mint import MintForAudioTextRetrieval
from mint.training.collators import pad_frames
from mint.training.common import (
    feature_cache,
    frames_dataset,
    freeze_bridge_word_embeddings,
    global_batch,
    run_training,
    window_processor,
)
from mint.training.data import corpus_rows
from mint.training.features import load_frames
from mint.training.metrics import retrieval_metrics


@dataclass
class Stage1Recipe:
    """What stage 1 trains on. Optimizer, schedule, logging and checkpoints are `TrainingArguments`."""

    model_dir: str = field(metadata={"help": "an assembled MINT folder (mint assemble VARIANT --out DIR)"})
    data_dir: str = field(default="data/mint-corpus", metadata={"help": "the corpus (mint data build)"})
    tasks: list[str] = field(default_factory=lambda: ["captioning", "transcription"],
                             metadata={"help": "corpus tasks whose texts describe their audio"})
    sources: list[str] = field(default_factory=list, metadata={"help": "corpus sources to keep; empty: all"})
    max_train_clips: int | None = field(default=None, metadata={"help": "a random subset of the train split"})
    max_eval_clips: int | None = field(default=None, metadata={"help": "test clips for retrieval; None: all"})
    max_text_length: int = field(default=64, metadata={"help": "bridge tokens per text"})
    label_smoothing: float = field(default=0.1, metadata={"help": "for ATC and AGTG, as BLIP-2"})
    feature_cache_dir: str | None = field(default=None, metadata={"help": "default: ~/.cache/mint/features"})
    freeze_bridge_word_embeddings: bool = field(default=True, metadata={"help": "keep BERT's word embeddings"})
    bridge_weights: str | None = field(default=None, metadata={
        "help": "queries and Bridge-Net from a later stage (its bridge.safetensors) on top of model_dir"})
    heads_weights: str | None = field(default=None, metadata={
        "help": "heads to start from: a stage-1 run's heads.safetensors or retrieval/model.safetensors"})
    train_heads_only: bool = field(default=False, metadata={
        "help": "freeze queries and Bridge-Net; fit the retrieval, matching and generation heads to them"})
    bridge_window_frames: int | None = field(default=None, metadata={
        "help": "encoder frames per window of a windowed Bridge-Net (as in the generative recipes); None leaves the "
                "model's value"})


def make_parser(prog: str | None = None) -> TrlParser:
    """`--config recipe.yaml` plus `--field value` overrides, into a `Stage1Recipe` and `TrainingArguments`."""
    return TrlParser((Stage1Recipe, TrainingArguments), prog=prog)


class Stage1Collator:
    """Pads cached encoder frames and tokenizes the texts with the bridge tokenizer; texts of one clip group."""

    def __init__(self, tokenizer, max_length: int, label_smoothing: float):
        self.tokenizer, self.max_length, self.label_smoothing = tokenizer, max_length, label_smoothing

    def texts(self, texts: list[str]) -> dict:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def __call__(self, rows: list[dict]) -> dict:
        frames, mask = pad_frames([load_frames(r["frames_path"]) for r in rows])
        text = self.texts([r["text"] for r in rows])
        return {"audio_frames": frames, "audio_frame_mask": mask, "input_ids": text["input_ids"],
                "attention_mask": text["attention_mask"], "group_ids": torch.tensor([r["group"] for r in rows]),
                "return_loss": True, "label_smoothing": self.label_smoothing}


def with_groups(dataset, groups: dict):
    """Rows with the same text (several clips of one prompt) are never each other's hard negatives."""
    return dataset.map(lambda text: {"group": groups[text]}, input_columns="text")


@torch.no_grad()
def evaluate_retrieval(model, collator: Stage1Collator, dataset, batch_size: int = 64) -> dict:
    """R@1/5/10 both ways over the distinct texts of `dataset`."""
    model.eval()
    distinct = sorted(set(dataset["text"]))
    index = {t: i for i, t in enumerate(distinct)}
    audio = []
    for start in range(0, len(dataset), batch_size):
        rows = dataset.select(range(start, min(start + batch_size, len(dataset))))
        frames, mask = pad_frames([load_frames(p) for p in rows["frames_path"]])
        audio.append(model.get_audio_features(audio_frames=frames, audio_frame_mask=mask).pooler_output)
    text = []
    for start in range(0, len(distinct), batch_size):
        tok = collator.texts(distinct[start : start + batch_size])
        text.append(model.get_text_features(tok["input_ids"], tok["attention_mask"]).pooler_output)
    return retrieval_metrics(torch.cat(audio), torch.cat(text), [index[t] for t in dataset["text"]])


def load_split(recipe: Stage1Recipe, split: str, limit, seed: int, cache):
    return frames_dataset(corpus_rows(recipe.data_dir, split, recipe.tasks, limit, seed, sources=recipe.sources), cache)


def main(recipe: Stage1Recipe, args: TrainingArguments):
    args.remove_unused_columns = False  # the collator needs the raw rows
    torch.manual_seed(args.seed)
    windows = {"bridge_window_frames": recipe.bridge_window_frames} if recipe.bridge_window_frames else {}
    model = MintForAudioTextRetrieval.from_pretrained(recipe.model_dir, **windows)
    if recipe.bridge_weights:  # a later stage's queries and Bridge-Net (its projection has no place here)
        load_by_prefix(model, recipe.bridge_weights, BRIDGE_NET, "Bridge-Net weights")
    if recipe.heads_weights:  # a stage-1 run's heads.safetensors or retrieval/model.safetensors
        load_by_prefix(model, recipe.heads_weights, RETRIEVAL_HEADS, "retrieval heads")
    if recipe.freeze_bridge_word_embeddings:
        freeze_bridge_word_embeddings(model)
    if recipe.train_heads_only:
        model.model.requires_grad_(False)
    processor = window_processor(model, recipe.model_dir)
    cache = feature_cache(model, processor, recipe.feature_cache_dir)
    train = load_split(recipe, "train", recipe.max_train_clips, args.seed, cache)
    test = load_split(recipe, "test", recipe.max_eval_clips, args.seed, cache)
    groups = {t: i for i, t in enumerate(sorted(set(train["text"])))}
    train = with_groups(train, groups)
    collator = Stage1Collator(processor.bridge_tokenizer, recipe.max_text_length, recipe.label_smoothing)
    before = evaluate_retrieval(model, collator, test)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    start = time.time()
    run_training(trainer)
    seconds = time.time() - start
    after = evaluate_retrieval(model, collator, test)
    report = {"recipe": asdict(recipe), "train_seconds": seconds, "steps": trainer.state.global_step,
              "world_size": args.world_size, "batch_size": global_batch(args), "learning_rate": args.learning_rate,
              "bf16": args.bf16, "clips": {"train": len(train), "test": len(test)},
              "test_before": before, "test_after": after, "log": trainer.state.log_history}
    if trainer.is_world_process_zero():
        out = Path(args.output_dir)
        export_retrieval(model, processor, out / "retrieval")
        save_trainable(model, out / "bridge.safetensors")
        # the retrieval, matching and generation heads: what `mint.hub.assemble.ship_weights` adds to a bridge
        save_state(state_by_prefix(model, RETRIEVAL_HEADS), out / "heads.safetensors")
        (out / "stage1_report.json").write_text(json.dumps(report, indent=2, default=str))
        print(json.dumps({"test_before": before, "test_after": after, "train_seconds": round(seconds)}, indent=2))
    trainer.accelerator.wait_for_everyone()  # no rank leaves while another is still communicating
    return report


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
