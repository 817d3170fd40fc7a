"""Stage 2: generative pre-training. The Bridge-Net's query outputs, projected, are a soft prompt of the frozen LLM;
the loss is the LLM's next-token loss on the text.

    mint train stage2 --config training/recipes/stage2_mint_tiny.yaml
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import Trainer, TrainingArguments
from trl import TrlParser

from mint.hub.weights import read_ctc_head
from mint.training import generative
from mint.training.common import EvaluationInOrder, LossPartsLogging, train_and_report
from mint.training.generative import GenerativeRecipe


@dataclass
class Stage2Recipe(GenerativeRecipe):
    """What stage 2 trains on: audio -> text, no instruction, on the LLM's loss and optionally a soft-prompt CTC
    loss."""

    lm_weight: float = field(default=1.0, metadata={"help": "weight of the LLM's next-token loss; 0 skips the LLM"})
    ctc_weight: float = field(default=0.0, metadata={"help": "weight of the soft-prompt CTC loss (windowed bridge)"})
    logits_at_labels: bool = field(default=True, metadata={
        "help": "run the LLM's head on the answer tokens only: the same loss and gradients, a cheaper step"})
    window_positions_learning_rate: float | None = field(default=None, metadata={
        "help": "learning rate of the window positions (window_position_embeddings), which start at zero beside a "
                "trained Bridge-Net; None: the run's learning rate"})


def make_parser(prog: str | None = None) -> TrlParser:
    """`--config recipe.yaml` plus `--field value` overrides, into a `Stage2Recipe` and `TrainingArguments`."""
    return TrlParser((Stage2Recipe, TrainingArguments), prog=prog)


def soft_prompt_ctc_loss(soft_prompt: torch.Tensor, counts: list[int], output_embeddings: torch.Tensor,
                         blank: torch.Tensor, targets: list[torch.Tensor], log_scale: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """CTC of the transcript's LLM tokens over each clip's audio tokens, read through the LLM's own output
    embeddings plus one blank vector: token t of the soft prompt scores word piece v by `s * <soft_t, E_v>`.
    The learned scale `s = exp(log_scale)` lets the distribution sharpen while the soft tokens keep the norm of
    the LLM's embeddings.

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
    """The blank and scale of an earlier CTC run from one of its checkpoint folders (its `model.safetensors`: a
    head the CTC run added to the top-level model is not in `bridge.safetensors`) or from a weights file such as a
    variant's shipped `bridge.safetensors`, as `ctc_blank` and `ctc_log_scale`; empty if it has none. Only those two
    tensors are read."""
    path = Path(checkpoint)
    path = path if path.is_file() else path / "model.safetensors"
    return read_ctc_head(path) if path.is_file() else {}


def load_ctc_parameters(model, checkpoint: str):
    """The blank and scale of an earlier CTC run, when `checkpoint` is one of its checkpoint folders."""
    found = ctc_parameters(checkpoint)
    blank, log_scale = ctc_head(model)
    with torch.no_grad():
        if "ctc_blank" in found:
            blank.copy_(found["ctc_blank"])
        if "ctc_log_scale" in found:
            log_scale.copy_(found["ctc_log_scale"])


class Stage2Trainer(EvaluationInOrder, Trainer):
    """The Trainer with the LM head on the target positions only (`logits_at_labels`, the model's opt-in): the head
    over the LLM's whole vocabulary, run on the prompt and the audio tokens too, costs much and the loss never reads it.
    Evaluation keeps the loss only (no `compute_metrics`), so the logits' changed shape never reaches it."""

    def __init__(self, *args, logits_at_labels: bool = True, window_positions_lr: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.logits_at_labels = logits_at_labels
        self.window_positions_lr = window_positions_lr

    def create_optimizer(self, model=None):
        """The Trainer's optimizer, with the window positions in a group of their own at `window_positions_lr`
        (no weight decay): added at zero to a trained Bridge-Net, they need a larger step than its weights."""
        optimizer = super().create_optimizer(model)
        if self.window_positions_lr is None:
            return optimizer
        queries = getattr(self.accelerator.unwrap_model(self.model).model, "query_tokens", None)  # none: pooled
        positions = getattr(queries, "window_positions", None)
        if positions is None or not positions.requires_grad:
            return optimizer
        for group in optimizer.param_groups:
            group["params"] = [p for p in group["params"] if p is not positions]
        optimizer.add_param_group({"params": [positions], "lr": self.window_positions_lr, "weight_decay": 0.0})
        return optimizer

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


class SoftPromptCTCTrainer(LossPartsLogging, Stage2Trainer):
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

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mint = self.accelerator.unwrap_model(model)
        outputs, loss, lm_loss = {}, 0.0, None
        if self.lm_weight:
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            lm_loss, loss = loss.detach(), self.lm_weight * loss
        ctc = alignment_ctc_loss(mint, inputs, self.tokens_for_frames, self.special_ids)
        loss = loss + self.ctc_weight * ctc
        if model.training:
            self.record_parts(ctc_loss=ctc.item(), **({} if lm_loss is None else {"lm_loss": lm_loss.item()}))
        return (loss, outputs) if return_outputs else loss


def main(recipe: Stage2Recipe, args: TrainingArguments):
    torch.manual_seed(args.seed)
    model, processor, train, evaluation, collator = generative.setup(recipe, args)
    callbacks = generative.callbacks(model, recipe, runs_llm=bool(recipe.lm_weight))
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
            tokens_for_frames=processor.query_tokens_for_frames, logits_at_labels=recipe.logits_at_labels,
            window_positions_lr=recipe.window_positions_learning_rate, callbacks=callbacks,
        )
        return train_and_report(trainer, recipe, "stage2_report.json")
    if recipe.lm_weight != 1.0:
        raise ValueError("lm_weight other than 1 is only used together with ctc_weight")
    trainer = Stage2Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                            data_collator=collator, logits_at_labels=recipe.logits_at_labels, callbacks=callbacks)
    return train_and_report(trainer, recipe, "stage2_report.json")


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
