"""Stage 2: generative pre-training. The Bridge-Net's query outputs, projected, are a soft prompt of the frozen LLM;
the loss is the LLM's next-token loss on the text.

    mint train stage2 --recipe training/recipes/stage2_mint_tiny.yaml
"""

from dataclasses import dataclass, field

import torch
from transformers import Trainer, TrainingArguments

from modeling_mint import MintForConditionalGeneration, MintProcessor
from training.collators import AudioLanguageCollator
from training.common import (
    feature_cache,
    frames_dataset,
    freeze_bridge_word_embeddings,
    load_stage1_bridge,
    parse_recipe,
    train_and_report,
)
from training.data import corpus_rows


@dataclass
class Stage2Recipe:
    """What stage 2 trains on. Optimizer, schedule, logging and checkpoints are `TrainingArguments`."""

    model_dir: str = field(metadata={"help": "an assembled MINT folder (mint assemble VARIANT --out DIR)"})
    data_dir: str = field(default="data/mint-corpus", metadata={"help": "the corpus (mint data build)"})
    tasks: list[str] = field(default_factory=lambda: ["captioning", "transcription"],
                             metadata={"help": "corpus tasks to train on"})
    languages: list[str] = field(default_factory=list, metadata={"help": "keep these languages; empty: all"})
    stage1_checkpoint: str | None = field(default=None, metadata={"help": "start the bridge from stage 1"})
    instruction_in_prompt: bool = field(default=False, metadata={"help": "stage 2 is audio -> text, no instruction"})
    max_train_clips: int | None = field(default=None, metadata={"help": "a random subset of the train split"})
    max_eval_clips: int = field(default=64, metadata={"help": "validation clips for the periodic eval loss"})
    max_answer_tokens: int = field(default=48, metadata={"help": "longer texts are cut"})
    feature_cache_dir: str | None = field(default=None, metadata={"help": "default: ~/.cache/mint/features"})
    freeze_bridge_word_embeddings: bool = field(default=True, metadata={"help": "keep BERT's word embeddings"})


def build(recipe: Stage2Recipe, args: TrainingArguments, instruction_in_bridge: bool = False):
    """Model, processor, datasets and collator shared by stage 2 and instruction tuning."""
    model = MintForConditionalGeneration.from_pretrained(recipe.model_dir)
    processor = MintProcessor.from_pretrained(recipe.model_dir)
    if recipe.stage1_checkpoint:
        load_stage1_bridge(model, recipe.stage1_checkpoint)
    if recipe.freeze_bridge_word_embeddings:
        freeze_bridge_word_embeddings(model)
    cache = feature_cache(model, processor, recipe.feature_cache_dir)
    rows = {split: corpus_rows(recipe.data_dir, split, recipe.tasks, limit, args.seed, recipe.languages)
            for split, limit in (("train", recipe.max_train_clips), ("validation", recipe.max_eval_clips))}
    train, evaluation = frames_dataset(rows["train"], cache), frames_dataset(rows["validation"], cache)
    collator = AudioLanguageCollator(
        processor, instruction_in_prompt=recipe.instruction_in_prompt, instruction_in_bridge=instruction_in_bridge,
        max_answer_tokens=recipe.max_answer_tokens, encoder_decoder=model.config.is_encoder_decoder,
    )
    args.remove_unused_columns = False  # the collator needs the raw rows
    args.label_names = ["labels"]
    return model, processor, train, evaluation, collator


def main(recipe: Stage2Recipe, args: TrainingArguments):
    torch.manual_seed(args.seed)
    model, processor, train, evaluation, collator = build(recipe, args)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collator)
    return train_and_report(trainer, recipe, "stage2_report.json")


if __name__ == "__main__":
    main(*parse_recipe(Stage2Recipe, TrainingArguments))
