"""Stage 2: generative pre-training. The Bridge-Net's query outputs, projected, are a soft prompt of the frozen LLM;
the loss is the LLM's next-token loss on the text.

    mint train stage2 --recipe training/recipes/stage2_mint_tiny.yaml
"""

from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from modeling_mint import MintForConditionalGeneration, MintProcessor
from mint.training.collators import AudioLanguageCollator
from mint.training.common import (
    feature_cache,
    frames_dataset,
    freeze_bridge_word_embeddings,
    load_stage1_bridge,
    parse_recipe,
    train_and_report,
)
from mint.training.data import corpus_rows


@dataclass
class Stage2Recipe:
    """What stage 2 trains on. Optimizer, schedule, logging and checkpoints are `TrainingArguments`."""

    model_dir: str = field(metadata={"help": "an assembled MINT folder (mint assemble VARIANT --out DIR)"})
    data_dir: str = field(default="data/mint-corpus", metadata={"help": "the corpus (mint data build)"})
    tasks: list[str] = field(default_factory=lambda: ["captioning", "transcription"],
                             metadata={"help": "corpus tasks to train on"})
    languages: list[str] = field(default_factory=list, metadata={"help": "keep these languages; empty: all"})
    any_language_tasks: list[str] = field(default_factory=list,
                                          metadata={"help": "tasks kept in every language (labels in English)"})
    stage1_checkpoint: str | None = field(default=None, metadata={"help": "start the bridge from stage 1"})
    instruction_in_prompt: bool = field(default=False, metadata={"help": "stage 2 is audio -> text, no instruction"})
    instruction_in_bridge: bool = field(default=False, metadata={"help": "the instruction in the Bridge-Net too"})
    max_train_clips: int | None = field(default=None, metadata={"help": "a random subset of the train split"})
    max_eval_clips: int = field(default=64, metadata={"help": "validation clips for the periodic eval loss"})
    max_answer_tokens: int = field(default=48, metadata={"help": "longer texts are cut"})
    feature_cache_dir: str | None = field(default=None, metadata={"help": "default: ~/.cache/mint/features"})
    freeze_bridge_word_embeddings: bool = field(default=True, metadata={"help": "keep BERT's word embeddings"})
    speed_perturbation: list[float] = field(default_factory=list, metadata={
        "help": "extra copies of every training clip played this much faster (e.g. 0.9 1.1): tempo and pitch change"})
    stop_after_steps: int | None = field(default=None, metadata={
        "help": "end training after this many steps, keeping the learning-rate schedule of max_steps"})
    lm_weight: float = field(default=1.0, metadata={"help": "weight of the LLM's next-token loss; 0 skips the LLM"})
    ctc_weight: float = field(default=0.0, metadata={"help": "weight of the soft-prompt CTC loss (windowed bridge)"})
    token_prompt_mix_start: float | None = field(default=None, metadata={
        "help": "token-prompt mix at the first step (models with a CTC head); None leaves the model's value"})
    token_prompt_mix_end: float | None = field(default=None, metadata={"help": "the mix reached after the anneal"})
    token_prompt_mix_steps: int | None = field(default=None, metadata={"help": "steps of the linear anneal"})
    logits_at_labels: bool = field(default=True, metadata={
        "help": "run the LLM's head on the answer tokens only: the same loss and gradients, a fifth less per step"})


def rows_of(recipe: Stage2Recipe, split: str, limit: int | None, seed: int) -> list[dict]:
    """The recipe's tasks in its languages, plus `any_language_tasks` in all of them; a seeded subset if `limit`."""
    import random

    filtered = [t for t in recipe.tasks if t not in recipe.any_language_tasks]
    other = [t for t in recipe.tasks if t in recipe.any_language_tasks]
    rows = corpus_rows(recipe.data_dir, split, filtered, None, seed, recipe.languages) if filtered else []
    if other:
        rows += corpus_rows(recipe.data_dir, split, other, None, seed)
    if limit is not None and limit < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), limit))]
    if split == "train" and recipe.speed_perturbation:
        rows += [{**r, "audio": speed_perturbed(r["audio"], factor), "clip_id": f"{r['clip_id']}@x{factor}"}
                 for factor in recipe.speed_perturbation for r in rows]
    return rows


def speed_perturbed(audio, factor: float, rate: int = 16000):
    """The clip `factor` times faster (Kaldi-style speed perturbation: resampled, then read at the old rate)."""
    import soxr

    from modeling_mint import load_audio

    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    wave = load_audio(audio, None, rate)
    return {"array": soxr.resample(wave, rate, rate / factor).astype("float32"), "sampling_rate": rate}


def build(recipe: Stage2Recipe, args: TrainingArguments):
    """Model, processor, datasets and collator shared by stage 2 and instruction tuning."""
    model = MintForConditionalGeneration.from_pretrained(recipe.model_dir)
    processor = MintProcessor.from_pretrained(recipe.model_dir)
    if recipe.stage1_checkpoint:
        load_stage1_bridge(model, recipe.stage1_checkpoint)
    if recipe.freeze_bridge_word_embeddings:
        freeze_bridge_word_embeddings(model)
    cache = feature_cache(model, processor, recipe.feature_cache_dir)
    rows = {split: rows_of(recipe, split, limit, args.seed)
            for split, limit in (("train", recipe.max_train_clips), ("validation", recipe.max_eval_clips))}
    train, evaluation = frames_dataset(rows["train"], cache), frames_dataset(rows["validation"], cache)
    collator = AudioLanguageCollator(
        processor, instruction_in_prompt=recipe.instruction_in_prompt,
        instruction_in_bridge=recipe.instruction_in_bridge,
        max_answer_tokens=recipe.max_answer_tokens, encoder_decoder=model.config.is_encoder_decoder,
    )
    args.remove_unused_columns = False  # the collator needs the raw rows
    args.label_names = ["labels"]
    return model, processor, train, evaluation, collator


def soft_prompt_ctc_loss(soft_prompt: torch.Tensor, counts: list[int], output_embeddings: torch.Tensor,
                         blank: torch.Tensor, targets: list[torch.Tensor], log_scale: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """CTC of the transcript's LLM tokens over each clip's audio tokens, read through the LLM's own output
    embeddings plus one blank vector: token t of the soft prompt scores word piece v by `s * <soft_t, E_v>`.
    The learned scale `s = exp(log_scale)` lets the distribution sharpen while the soft tokens keep the norm of
    the LLM's embeddings (an embedding's dot with itself is about 8 here, with its nearest neighbours about 6).

    Args:
        soft_prompt: `(sum(counts), D)` or `(B, Nq, D)` projected bridge outputs, clips in order.
        counts: audio tokens of each clip.
        output_embeddings: `(V, D)` the LLM's `lm_head` weight; blank: `(D,)`.
        targets: each clip's answer token ids.
    """
    soft_prompt = soft_prompt.reshape(-1, soft_prompt.shape[-1])
    weight = torch.cat([output_embeddings, blank[None]]).to(soft_prompt.dtype)
    logits = soft_prompt @ weight.T
    if log_scale is not None:
        logits = logits * log_scale.exp()
    log_probs = logits.float().log_softmax(-1)
    per_clip = nn.utils.rnn.pad_sequence(list(log_probs.split(counts)))  # (T, B, V + 1)
    return nn.functional.ctc_loss(
        per_clip, torch.cat(targets), torch.tensor(counts), torch.tensor([len(t) for t in targets]),
        blank=weight.shape[0] - 1, zero_infinity=True,
    )


def ctc_parameters(checkpoint: str) -> dict[str, torch.Tensor]:
    """The blank and scale of an earlier CTC run from one of its checkpoint folders, as `ctc_blank` and
    `ctc_log_scale` (empty if it has none); only those two tensors are read."""
    from pathlib import Path

    from safetensors import safe_open

    path = Path(checkpoint) / "model.safetensors"
    if not path.is_file():
        return {}
    with safe_open(str(path), framework="pt") as f:
        found = {}
        for name in ("ctc_blank", "ctc_log_scale"):
            for key in (name, f"model.{name}"):
                if key in f.keys():
                    found[name] = f.get_tensor(key)
        return found


def load_ctc_parameters(model, checkpoint: str):
    """The blank and scale of an earlier CTC run, when `checkpoint` is one of its checkpoint folders."""
    found = ctc_parameters(checkpoint)
    blank, log_scale = ctc_head(model)
    with torch.no_grad():
        if "ctc_blank" in found:
            blank.copy_(found["ctc_blank"])
        if "ctc_log_scale" in found:
            log_scale.copy_(found["ctc_log_scale"])


class Stage2Trainer(Trainer):
    """The Trainer with the LM head on the target positions only (`logits_at_labels`, the model's opt-in): the 49k-way
    head on the prompt and the audio tokens is most of what a stage-2 step spends outside the frozen LLM's layers.
    Evaluation keeps the loss only (no `compute_metrics`), so the logits' changed shape never reaches it."""

    def __init__(self, *args, logits_at_labels: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.logits_at_labels = logits_at_labels

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.logits_at_labels and "labels" in inputs:
            inputs = {**inputs, "logits_at_labels": True}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def ctc_head(mint):
    """The blank and scale of the soft-prompt CTC head: the model's own (`token_prompt_mix` models) or the ones a
    CTC run adds to the top-level model."""
    owner = mint.model if hasattr(mint.model, "ctc_blank") else mint
    return owner.ctc_blank, owner.ctc_log_scale


def alignment_ctc_loss(mint, inputs: dict, tokens_for_frames, special_ids: torch.Tensor) -> torch.Tensor:
    """The soft-prompt CTC loss of a collated batch (cached frames, answer labels): the projected query outputs,
    before any token-prompt mix, spell each clip's answer tokens (special tokens left out). No LLM layer runs."""
    audio = {k: inputs[k] for k in ("audio_frames", "audio_frame_mask", "bridge_input_ids", "bridge_attention_mask")
             if k in inputs}
    projected = mint.model.language_projection(mint.model.bridge_query_output(**audio))
    counts = [tokens_for_frames(n) for n in inputs["audio_frame_mask"].sum(1).tolist()]
    targets = [row[(row != -100)] for row in inputs["labels"]]
    targets = [t[~torch.isin(t, special_ids)] for t in targets]
    blank, log_scale = ctc_head(mint)
    return soft_prompt_ctc_loss(projected, counts, mint.lm_head.weight, blank, targets, log_scale)


class SoftPromptCTCTrainer(Stage2Trainer):
    """Stage 2 with an auxiliary CTC loss on the soft prompt (`ctc_weight`): every audio token, read through the
    LLM's output embeddings, must spell the transcript in time order. It pulls a windowed bridge's tokens towards
    the word pieces they carry, the alignment the frozen LLM's next-token loss alone teaches slowly. With
    `lm_weight` 0 the LLM is never run: a cheap warm-up of the bridge. The CTC loss reads the projected query
    outputs, before any token-prompt mix."""

    def __init__(self, *args, lm_weight: float, ctc_weight: float, tokens_for_frames, **kwargs):
        super().__init__(*args, **kwargs)
        self.lm_weight, self.ctc_weight, self.tokens_for_frames = lm_weight, ctc_weight, tokens_for_frames
        special = self.processing_class.all_special_ids if self.processing_class is not None else []
        self.special_ids = torch.tensor(special, dtype=torch.long)
        self._parts = {"lm_loss": [], "ctc_loss": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mint = self.accelerator.unwrap_model(model)
        outputs, loss, lm_loss = {}, 0.0, None
        if self.lm_weight:
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            lm_loss, loss = loss.detach(), self.lm_weight * loss
        ctc = alignment_ctc_loss(mint, inputs, self.tokens_for_frames, self.special_ids)
        loss = loss + self.ctc_weight * ctc
        if model.training:
            self._parts["ctc_loss"].append(ctc.item())
            if lm_loss is not None:
                self._parts["lm_loss"].append(lm_loss.item())
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs):
        for name, values in self._parts.items():
            if values and "loss" in logs:
                logs[name] = round(sum(values) / len(values), 4)
                values.clear()
        super().log(logs, *args, **kwargs)


class TokenPromptMixSchedule(TrainerCallback):
    """Anneal `config.token_prompt_mix` linearly from `start` to `end` over `steps` optimizer steps (LegoSLM): the
    frozen LLM first reads its own embeddings of the tokens the CTC head hears, then more and more the projected
    query outputs. The value reached is what the saved config keeps for inference."""

    def __init__(self, start: float, end: float, steps: int):
        self.start, self.end, self.steps = start, end, max(steps, 1)

    def value(self, step: int) -> float:
        return self.start + (self.end - self.start) * min(step / self.steps, 1.0)

    def _set(self, model, step: int):
        config = model.config if hasattr(model, "config") else model.module.config
        config.token_prompt_mix = self.value(step)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._set(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self._set(model, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.log_history:  # the entry the Trainer just logged
            state.log_history[-1]["token_prompt_mix"] = round(self.value(state.global_step), 4)


def generative_callbacks(model, recipe) -> list[TrainerCallback]:
    """The token-prompt schedule (when the recipe has one) and, when the LLM is trained through, the audio-dependence
    gap at every evaluation."""
    from mint.training.audio_dependence import AudioDependenceCallback

    schedule = token_prompt_schedule(model, recipe)
    return ([schedule] if schedule else []) + ([AudioDependenceCallback()] if recipe.lm_weight else [])


def token_prompt_schedule(model, recipe) -> TokenPromptMixSchedule | None:
    """The recipe's mix schedule, checked against the model (a mix needs the model's CTC head)."""
    if recipe.token_prompt_mix_start is None:
        return None
    if not hasattr(model.model, "ctc_blank"):
        raise ValueError("token_prompt_mix_start needs a model built with token_prompt_mix > 0 (its CTC head)")
    end = recipe.token_prompt_mix_start if recipe.token_prompt_mix_end is None else recipe.token_prompt_mix_end
    return TokenPromptMixSchedule(recipe.token_prompt_mix_start, end, recipe.token_prompt_mix_steps or 1)


def main(recipe: Stage2Recipe, args: TrainingArguments):
    torch.manual_seed(args.seed)
    model, processor, train, evaluation, collator = build(recipe, args)
    callbacks = generative_callbacks(model, recipe)
    if recipe.ctc_weight:
        if "audio_frames" not in collator([train[0]]):
            raise ValueError("the CTC loss needs cached encoder frames")
        if not hasattr(model.model, "ctc_blank"):
            model.ctc_blank = nn.Parameter(torch.zeros(model.config.text_config.hidden_size))
            model.ctc_log_scale = nn.Parameter(torch.tensor(1.5))
        if recipe.stage1_checkpoint:
            load_ctc_parameters(model, recipe.stage1_checkpoint)
        trainer = SoftPromptCTCTrainer(
            model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collator,
            processing_class=processor.tokenizer, lm_weight=recipe.lm_weight, ctc_weight=recipe.ctc_weight,
            tokens_for_frames=processor.tokens_for_frames, logits_at_labels=recipe.logits_at_labels,
            callbacks=callbacks,
        )
        return train_and_report(trainer, recipe, "stage2_report.json")
    if recipe.lm_weight != 1.0:
        raise ValueError("lm_weight other than 1 is only used together with ctc_weight")
    trainer = Stage2Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                            data_collator=collator, logits_at_labels=recipe.logits_at_labels, callbacks=callbacks)
    return train_and_report(trainer, recipe, "stage2_report.json")


if __name__ == "__main__":
    main(*parse_recipe(Stage2Recipe, TrainingArguments))
