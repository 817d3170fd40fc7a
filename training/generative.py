"""What the two generative stages share: stage 2 (`pretrain_generative`) and instruction tuning (`sft`) train the
same model on the same corpus rows through the same collator; they differ in their trainer and loss. Here: the recipe
fields both read, the model, data and collator set-up, and the callbacks both attach."""

import json
import random
from dataclasses import dataclass, field

from transformers import TrainerCallback, TrainingArguments

from modeling_mint import MintForConditionalGeneration
from mint.training.collators import AudioLanguageCollator
from mint.training.common import (feature_cache, frames_dataset, freeze_bridge_word_embeddings, load_stage1_bridge,
                                  window_processor)
from mint.training.data import corpus_rows


@dataclass
class GenerativeRecipe:
    """The data and model fields of stage 2 and instruction tuning. Optimizer, schedule, logging and checkpoints are
    `TrainingArguments` (`SFTConfig` for instruction tuning)."""

    model_dir: str = field(metadata={"help": "an assembled MINT folder (mint assemble VARIANT --out DIR)"})
    data_dir: str = field(default="data/mint-corpus", metadata={"help": "the corpus (mint data build)"})
    tasks: list[str] = field(default_factory=lambda: ["captioning", "transcription"],
                             metadata={"help": "corpus tasks to train on"})
    languages: list[str] = field(default_factory=list, metadata={"help": "keep these languages; empty: all"})
    any_language_tasks: list[str] = field(default_factory=list,
                                          metadata={"help": "tasks kept in every language (labels in English)"})
    stage1_checkpoint: str | None = field(default=None, metadata={
        "help": "start the bridge from an earlier run (its folder, a checkpoint folder or a weights file)"})
    instruction_in_prompt: bool = field(default=False, metadata={"help": "the instruction in the LLM prompt"})
    instruction_in_bridge: bool = field(default=False, metadata={"help": "the instruction in the Bridge-Net too"})
    max_train_clips: int | None = field(default=None, metadata={"help": "a random subset of the train split"})
    max_eval_clips: int = field(default=64, metadata={"help": "validation clips for the periodic eval loss"})
    eval_clips_seed: int | None = field(default=None, metadata={
        "help": "the seed that picks those clips (default: the training seed); runs that continue one another keep "
                "one set of clips, so their curves compare"})
    max_answer_tokens: int = field(default=48, metadata={"help": "longer texts are cut"})
    feature_cache_dir: str | None = field(default=None, metadata={"help": "default: ~/.cache/mint/features"})
    freeze_bridge_word_embeddings: bool = field(default=True, metadata={"help": "keep BERT's word embeddings"})
    task_repeats: dict | str | None = field(default=None, metadata={
        "help": "train rows of these tasks taken this many times (e.g. {classification: 3}), so a task with few rows "
                "gets more of each step; a JSON object on the command line"})
    speed_perturbation: list[float] = field(default_factory=list, metadata={
        "help": "extra copies of every training clip played this much faster (e.g. 0.9 1.1): tempo and pitch change"})
    stop_after_steps: int | None = field(default=None, metadata={
        "help": "end training after this many steps, keeping the learning-rate schedule of max_steps"})
    stop_after_minutes: float | None = field(default=None, metadata={
        "help": "end training after this many minutes of training (same-CPU-time comparisons), keeping the "
                "learning-rate schedule of max_steps"})
    token_prompt_mix_start: float | None = field(default=None, metadata={
        "help": "token-prompt mix at the first step (models with a CTC head); None leaves the model's value"})
    token_prompt_mix_end: float | None = field(default=None, metadata={"help": "the mix reached after the anneal"})
    token_prompt_mix_steps: int | None = field(default=None, metadata={"help": "steps of the linear anneal"})
    window_position_embeddings: bool | None = field(default=None, metadata={
        "help": "a learned vector per frame position in a bridge window (MintConfig.window_position_embeddings; "
                "zero at first, so it can be added to a trained bridge); None leaves the model's value"})
    clip_context: bool | None = field(default=None, metadata={
        "help": "the whole clip's pooled frames added to every window's queries (MintConfig.clip_context; zero at "
                "first, so it can be added to a trained bridge); None leaves the model's value"})
    apply_spec_augment: bool | None = field(default=None, metadata={
        "help": "SpecAugment on the encoder frames while training (MintConfig.apply_spec_augment); None leaves the "
                "model's value"})
    mask_time_prob: float | None = field(default=None, metadata={"help": "share of frames masked (None: the model's)"})
    mask_time_length: int | None = field(default=None, metadata={"help": "frames per time mask"})
    mask_feature_prob: float | None = field(default=None, metadata={"help": "share of channels masked"})
    mask_feature_length: int | None = field(default=None, metadata={"help": "channels per feature mask"})
    bridge_window_frames: int | None = field(default=None, metadata={
        "help": "encoder frames per bridge window (MintConfig.bridge_window_frames, and the processor's, which counts "
                "the audio tokens); a trained windowed bridge loads as it is, its queries then read shorter or longer "
                "windows; None leaves the model's value"})

    def __post_init__(self):
        if isinstance(self.task_repeats, str):  # from the command line
            self.task_repeats = json.loads(self.task_repeats)
        self.task_repeats = dict(self.task_repeats or {})
        for task, times in self.task_repeats.items():
            if task not in self.tasks:
                raise ValueError(f"task_repeats names {task!r}, which is not in tasks {self.tasks}")
            if not isinstance(times, int) or isinstance(times, bool) or times < 1:
                raise ValueError(f"task_repeats[{task!r}] must be a whole number >= 1, got {times!r}")


def rows_of(recipe: GenerativeRecipe, split: str, limit: int | None, seed: int) -> list[dict]:
    """The recipe's tasks in its languages, plus `any_language_tasks` in all of them; a seeded subset if `limit`."""
    filtered = [t for t in recipe.tasks if t not in recipe.any_language_tasks]
    other = [t for t in recipe.tasks if t in recipe.any_language_tasks]
    rows = corpus_rows(recipe.data_dir, split, filtered, None, seed, recipe.languages) if filtered else []
    if other:
        rows += corpus_rows(recipe.data_dir, split, other, None, seed)
    if limit is not None and limit < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), limit))]
    if split == "train" and recipe.task_repeats:
        rows += [r for r in rows for _ in range(recipe.task_repeats.get(r["task"], 1) - 1)]
    if split == "train" and recipe.speed_perturbation:
        rows += [{**r, "audio": speed_perturbed(r["audio"], factor), "clip_id": f"{r['clip_id']}@x{factor}"}
                 for factor in recipe.speed_perturbation for r in rows]
    return rows


def split_rows(recipe: GenerativeRecipe, seed: int) -> dict[str, list[dict]]:
    """The training rows (seeded by the run) and the validation clips of the periodic eval (`eval_clips_seed`, else
    the run's seed)."""
    eval_seed = seed if recipe.eval_clips_seed is None else recipe.eval_clips_seed
    return {"train": rows_of(recipe, "train", recipe.max_train_clips, seed),
            "validation": rows_of(recipe, "validation", recipe.max_eval_clips, eval_seed)}


def speed_perturbed(audio, factor: float, rate: int = 16000):
    """The clip `factor` times faster (Kaldi-style speed perturbation: resampled, then read at the old rate)."""
    import soxr

    from modeling_mint import load_audio

    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    wave = load_audio(audio, None, rate)
    return {"array": soxr.resample(wave, rate, rate / factor).astype("float32"), "sampling_rate": rate}


CONFIG_FIELDS = ("window_position_embeddings", "clip_context", "apply_spec_augment", "mask_time_prob",
                 "mask_time_length", "mask_feature_prob", "mask_feature_length", "bridge_window_frames")


def config_overrides(recipe: GenerativeRecipe) -> dict:
    """The model config fields the recipe sets (window positions, clip context, SpecAugment, window length), for
    `from_pretrained`."""
    return {name: getattr(recipe, name) for name in CONFIG_FIELDS if getattr(recipe, name) is not None}


def setup(recipe: GenerativeRecipe, args: TrainingArguments):
    """The model (with its starting bridge), processor, train and validation datasets of cached frames, and the
    collator."""
    model = MintForConditionalGeneration.from_pretrained(recipe.model_dir, **config_overrides(recipe))
    processor = window_processor(model, recipe.model_dir)
    if recipe.stage1_checkpoint:
        load_stage1_bridge(model, recipe.stage1_checkpoint)
    if recipe.freeze_bridge_word_embeddings:
        freeze_bridge_word_embeddings(model)
    cache = feature_cache(model, processor, recipe.feature_cache_dir)
    rows = split_rows(recipe, args.seed)
    train, evaluation = frames_dataset(rows["train"], cache), frames_dataset(rows["validation"], cache)
    collator = AudioLanguageCollator(
        processor, instruction_in_prompt=recipe.instruction_in_prompt,
        instruction_in_bridge=recipe.instruction_in_bridge,
        max_answer_tokens=recipe.max_answer_tokens, encoder_decoder=model.config.is_encoder_decoder,
    )
    args.remove_unused_columns = False  # the collator needs the raw rows
    args.label_names = ["labels"]
    return model, processor, train, evaluation, collator


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


def token_prompt_schedule(model, recipe: GenerativeRecipe) -> TokenPromptMixSchedule | None:
    """The recipe's mix schedule, checked against the model (a mix needs the model's CTC head)."""
    if recipe.token_prompt_mix_start is None:
        return None
    if not hasattr(model.model, "ctc_blank"):
        raise ValueError("token_prompt_mix_start needs a model built with token_prompt_mix > 0 (its CTC head)")
    end = recipe.token_prompt_mix_start if recipe.token_prompt_mix_end is None else recipe.token_prompt_mix_end
    return TokenPromptMixSchedule(recipe.token_prompt_mix_start, end, recipe.token_prompt_mix_steps or 1)


def callbacks(model, recipe: GenerativeRecipe, runs_llm: bool = True) -> list[TrainerCallback]:
    """The token-prompt schedule (when the recipe has one) and, when the LLM is trained through (`runs_llm`), the
    audio-dependence gap at every evaluation."""
    from mint.training.audio_dependence import AudioDependenceCallback

    schedule = token_prompt_schedule(model, recipe)
    return ([schedule] if schedule else []) + ([AudioDependenceCallback()] if runs_llm else [])
