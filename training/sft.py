"""Instruction tuning with TRL's `SFTTrainer`: multi-task instructions go into the Bridge-Net (shared self-attention
with the queries) and into the LLM prompt; optional LoRA on the LLM only.

    mint train instruct --config training/recipes/instruct_mint_tiny.yaml
"""

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from trl import SFTConfig, SFTTrainer, TrlParser

from safetensors.torch import load_file

from mint.hub.weights import (
    ADAPTER_WEIGHTS,
    LABEL_PROMPT,
    RETRIEVAL_HEADS,
    load_by_prefix,
    load_trained_bridge,
    read_by_prefix,
    save_state,
)
from mint.io import atomic_folder
from mint.training import generative
from mint.training.common import EvaluationInOrder, LossPartsLogging, freeze_bridge_word_embeddings, train_and_report
from mint.training.pretrain_generative import alignment_ctc_loss
from mint.training.generative import GenerativeRecipe
from mint.training.multi_target import (
    DESCRIBING_TASKS,
    STAGE1_INPUTS,
    Stage1TextCollator,
    head_parameters,
    save_heads,
    stage1_loss,
    stage1_model,
)


HEADS_FILE = "heads.safetensors"
LABEL_HEAD_FILE = "label_head.safetensors"
LABEL_INPUTS = ("clip_label_ids", "clip_task_labelled")
LLM_LINEAR = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|q|k|v|o|wi|wi_0|wi_1|wo)"


@dataclass
class InstructRecipe(GenerativeRecipe):
    """What instruction tuning trains on: every task with its instruction, on the LLM's loss, optionally with LoRA
    on the LLM."""

    tasks: list[str] = field(default_factory=lambda: [
        "captioning", "transcription", "classification", "spoken_word", "letter", "language_id", "question_answering"])
    instruction_in_prompt: bool = field(default=True, metadata={"help": "the instruction in the LLM prompt"})
    instruction_in_bridge: bool = field(default=True, metadata={"help": "the instruction in the Bridge-Net"})
    stage2_weights: str | None = field(default=None, metadata={"help": "bridge.safetensors from stage 2"})
    lora_rank: int = field(default=0, metadata={"help": "LoRA rank on the LLM's linear layers; 0: no LoRA"})
    lora_alpha: int = field(default=16)
    llm_adapter: str | None = field(default=None, metadata={
        "help": "continue training this LoRA adapter folder (an earlier stage's llm_adapter/) instead of a new one"})
    stage1_weight: float = field(default=0.0, metadata={
        "help": "weight of stage 1's targets (ATC + ATM + AGTG) on each batch's describing rows, trained with the "
                "LLM's loss so the Bridge-Net keeps its text pass; 0: the LLM's loss alone"})
    stage1_tasks: list[str] = field(default_factory=lambda: list(DESCRIBING_TASKS), metadata={
        "help": "tasks whose answers are stage-1 texts"})
    heads_weights: str | None = field(default=None, metadata={
        "help": "stage-1 heads to start from (a stage-1 run's heads.safetensors); else new ones"})
    ctc_weight: float = field(default=0.0, metadata={
        "help": "weight of the token prompt's CTC loss on the describing rows (`stage1_tasks`), read without the "
                "instruction as zero-shot reads it: instruction steps then move the bridge without unlearning the "
                "head's spelling; 0: none"})

    label_weight: float = field(default=0.0, metadata={
        "help": "weight of a label loss on the classification rows: a linear classifier over the train split's labels "
                "reads each clip's query outputs (averaged over queries and windows, as retrieval reads them), so the "
                "Bridge-Net hands on the label that its pooled frames hold; the classifier only trains (it ships "
                "only as a label prompt's, `label_prompt_tokens`); 0: none"})
    label_head_learning_rate: float = field(default=1e-3, metadata={
        "help": "the classifier's learning rate: it starts new or from an earlier round, the bridge from a fit"})
    label_head_weights: str | None = field(default=None, metadata={
        "help": "start the classifier from an earlier run's label_head.safetensors (the same train split's labels); "
                "else from random"})
    label_prompt_tokens: int = field(default=0, metadata={
        "help": "give the model a label prompt of this many tokens (`MintConfig.label_prompt_tokens`) over the train "
                "split's labels: the classifier then ships in the model, and the LLM reads its posterior-weighted "
                "label embeddings after each clip's soft prompt; 0: none"})
    task_labels: dict | str | None = field(default=None, metadata={
        "help": "one label for every row of a task, e.g. {transcription: speech}: the classifier learns it beside the "
                "classification labels (after them, so an earlier round's classifier grows by a row), and a label "
                "prompt names what a speech clip holds instead of the sound it most resembles; as JSON on the "
                "command line"})

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.task_labels, str):  # from the command line
            self.task_labels = json.loads(self.task_labels)
        self.task_labels = dict(self.task_labels or {})
        for task, label in self.task_labels.items():
            if task == "classification" or task not in self.tasks or not isinstance(label, str) or not label.strip():
                raise ValueError(f"task_labels maps a trained task other than classification to a label; got "
                                 f"{task!r}: {label!r} (tasks: {self.tasks})")
        if self.task_labels and not (self.label_weight or self.label_prompt_tokens):
            raise ValueError("task_labels labels rows for the classifier: it needs label_weight or "
                             "label_prompt_tokens")
        if min(self.ctc_weight, self.stage1_weight, self.label_weight, self.label_prompt_tokens) < 0:
            raise ValueError(f"ctc_weight, stage1_weight, label_weight and label_prompt_tokens must be >= 0, got "
                             f"{self.ctc_weight}, {self.stage1_weight}, {self.label_weight}, {self.label_prompt_tokens}")


def make_parser(prog: str | None = None) -> TrlParser:
    """`--config recipe.yaml` plus `--field value` overrides, into an `InstructRecipe` and TRL's `SFTConfig`."""
    return TrlParser((InstructRecipe, SFTConfig), prog=prog)


def mint_lora_config(model, r: int = 8, lora_alpha: int = 16, **kwargs):
    """The PEFT `LoraConfig` for a MINT model: LoRA on the LLM's linear layers only (not the audio tower's, whose
    attention layers share their names), with the connector (queries, Bridge-Net, projection) trained beside the
    adapter. A bare `LoraConfig(target_modules=[...])` would leave the Bridge-Net frozen.

    ```python
    >>> from peft import get_peft_model
    >>> model = get_peft_model(model, mint_lora_config(model, r=8))
    ```
    Other `LoraConfig` arguments (`lora_dropout`, ...) pass through."""
    from peft import LoraConfig

    from modeling_mint.modeling_mint import CONNECTOR_MODULES

    connector = [name for name in CONNECTOR_MODULES if hasattr(model.model, name)]
    return LoraConfig(r=r, lora_alpha=lora_alpha, target_modules=LLM_LINEAR, modules_to_save=connector, **kwargs)


def llm_lora_config(model, rank: int, alpha: int):
    """LoRA on the LLM's linear layers; the connector (queries, Bridge-Net, projection) trains beside the adapter."""
    return mint_lora_config(model, r=rank, lora_alpha=alpha)


def freeze_peft_bridge_word_embeddings(model):
    """PEFT's trainable copy of the bridge unfreezes BERT's word embeddings: freeze them again."""
    for name, parameter in model.named_parameters():
        if ".bridge." in name and ".word_embeddings." in name:
            parameter.requires_grad_(False)


def with_llm_adapter(model, adapter: Path):
    """`model` wrapped by PEFT with the LoRA adapter of an earlier stage, trainable, the connector training beside it
    (as `llm_lora_config` sets up a new adapter)."""
    import json

    import re

    from peft import get_peft_model
    from safetensors.torch import load_file

    if not (adapter / ADAPTER_WEIGHTS).is_file():
        raise FileNotFoundError(f"{adapter}: no {ADAPTER_WEIGHTS} (an llm_adapter/ folder of an earlier run)")
    saved = json.loads((adapter / "adapter_config.json").read_text())
    model = get_peft_model(model, llm_lora_config(model, saved["r"], saved["lora_alpha"]))
    # saved without the adapter's name (`save_llm_adapter`); in the wrapped model it sits before `.weight`
    state = {re.sub(r"\.(lora_[AB])\.weight$", r".\1.default.weight", k): v
             for k, v in load_file(str(adapter / ADAPTER_WEIGHTS)).items()}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if ".lora_" in k]
    if result.unexpected_keys or missing:
        raise ValueError(f"{adapter}: does not fit the model: unexpected {result.unexpected_keys[:3]}, "
                         f"missing {missing[:3]}")
    return model


def save_llm_adapter(model, out: Path):
    """The LoRA matrices alone as a PEFT adapter folder (`PeftModel.from_pretrained` loads it onto a MINT model):
    the bridge copies PEFT trains beside them ship in the bridge file instead. The folder is replaced whole, so its
    config and matrices always belong together."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    config = copy.deepcopy(model.peft_config["default"])
    config.modules_to_save = None
    state = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items() if ".lora_" in k}
    with atomic_folder(out) as tmp:
        config.save_pretrained(str(tmp))
        save_file(state, str(tmp / ADAPTER_WEIGHTS), metadata={"format": "pt"})


class ClipLabelCollator:
    """A collator's batch plus `clip_label_ids`: each row's index in `labels`, by its text when its task is `task`,
    by `task_labels` for the tasks it names, else -100 (also for a label outside the list); and
    `clip_task_labelled`, true for the rows `task_labels` labels."""

    def __init__(self, collator, labels: list[str], task: str = "classification",
                 task_labels: dict[str, str] | None = None):
        self.collator, self.task, self.task_labels = collator, task, dict(task_labels or {})
        self.index = {label: i for i, label in enumerate(labels)}

    def label_id(self, row: dict) -> int:
        task = row.get("task")
        label = row["text"] if task == self.task else self.task_labels.get(task)
        return self.index.get(label, -100)

    def __call__(self, rows: list[dict]) -> dict:
        batch = self.collator(rows)
        batch["clip_label_ids"] = torch.tensor([self.label_id(row) for row in rows])
        batch["clip_task_labelled"] = torch.tensor([row.get("task") in self.task_labels for row in rows])
        return batch


def train_labels(train, task: str = "classification", task_labels: dict[str, str] | None = None) -> list[str]:
    """The labels of the train split's `task` rows, sorted, so a resumed run rebuilds the same classifier; then the
    labels `task_labels` adds (sorted, those not among them), so a classifier over the first list grows by rows. A
    task it names must have train rows."""
    columns = train.select_columns(["task", "text"]).to_dict()
    missing = sorted(set(task_labels or {}) - set(columns["task"]))
    if missing:
        raise ValueError(f"task_labels names tasks without train rows: {missing}")
    return with_task_labels(sorted({text for t, text in zip(columns["task"], columns["text"]) if t == task}),
                            task_labels)


def with_task_labels(labels: list[str], task_labels: dict[str, str] | None) -> list[str]:
    """`labels`, then the labels `task_labels` adds that they lack, sorted: the one order a classifier grows in."""
    return labels + sorted(set((task_labels or {}).values()) - set(labels))


def load_label_head(head: torch.nn.Linear, path) -> None:
    """`head` set from a `label_head.safetensors`, which must be over as many labels (the same train split's)."""
    state = load_file(str(path))
    if state["weight"].shape != head.weight.shape:
        raise ValueError(f"{path}: a classifier over {state['weight'].shape[0]} labels of width "
                         f"{state['weight'].shape[1]}; this run's train split has {head.weight.shape[0]} labels and its "
                         f"bridge width {head.weight.shape[1]}")
    head.load_state_dict(state)


def add_label_prompt(model, processor, labels: list[str], length: int, start: str | None = None):
    """`model` and `processor` given a label prompt of `length` tokens over `labels` (a new classifier), unless the
    model has one over the same labels already; `start` (a run's bridge.safetensors or checkpoint) holding a label
    prompt sets the classifier from it."""
    config, mint = model.config, model.model
    if config.label_prompt_tokens:
        if [config.id2label[i] for i in range(config.num_labels)] != labels or config.label_prompt_tokens != length:
            raise ValueError(f"the model's label prompt ({config.num_labels} labels, {config.label_prompt_tokens} "
                             f"tokens) is not this run's ({len(labels)} labels, {length} tokens)")
    else:
        config.id2label, config.label2id = dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}
        config.label_prompt_tokens = length
        config.validate_options()  # a windowed Bridge-Net, two labels or more
    processor.label_prompt_tokens = length
    if not hasattr(mint, "label_head"):
        mint.label_head = torch.nn.Linear(config.bridge_config.hidden_size, len(labels))
        mint.register_buffer("label_token_ids", processor.label_token_ids(labels))
    state = read_by_prefix(start, LABEL_PROMPT) if start is not None else None
    if state:
        load_label_prompt(mint, state, start)
    return model


def load_label_prompt(mint, state: dict[str, torch.Tensor], source) -> None:
    """`mint`'s classifier set from an earlier label prompt's `state`: the same labels, or the first of them (their
    word pieces tell, as they tell the labels apart), whose rows it takes while the rows after them keep their
    start."""
    state = {k.removeprefix("model."): v for k, v in state.items()}
    ids, old = mint.label_token_ids, state["label_token_ids"]
    if old.shape[0] > ids.shape[0] or old.shape[1] != ids.shape[1] or not torch.equal(old, ids[: old.shape[0]]):
        raise ValueError(f"{source}: its label prompt ({old.shape[0]} labels, {old.shape[1]} tokens) is not over this "
                         f"run's labels ({ids.shape[0]}, {ids.shape[1]} tokens) or their first ones")
    with torch.no_grad():
        for name in ("weight", "bias"):
            getattr(mint.label_head, name)[: old.shape[0]] = state[f"label_head.{name}"]


class InstructTrainer(EvaluationInOrder, SFTTrainer):
    """TRL's `SFTTrainer`, evaluating in dataset order."""


class MultiTargetSFTTrainer(LossPartsLogging, InstructTrainer):
    """TRL's `SFTTrainer` with stage 1's targets (`stage1_weight`) and the token prompt's CTC loss (`ctc_weight`)
    added to the LLM's loss on each batch's describing rows while training; the heads join the optimizer and every
    checkpoint (`heads.safetensors`), so a resumed run goes on with them. Evaluation keeps the LLM's loss alone, so
    its curve compares with runs without them."""

    def __init__(self, *args, retrieval, stage1_weight: float, ctc_weight: float = 0.0, tokens_for_frames=None,
                 label_head: torch.nn.Linear | None = None, label_weight: float = 0.0,
                 label_head_learning_rate: float = 1e-3, **kwargs):
        super().__init__(*args, **kwargs)
        self.retrieval, self.stage1_weight, self.ctc_weight = retrieval, stage1_weight, ctc_weight
        self.label_head, self.label_weight = label_head, label_weight
        self.label_head_learning_rate = label_head_learning_rate
        self.tokens_for_frames = tokens_for_frames
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        self.special_ids = torch.tensor(tokenizer.all_special_ids, dtype=torch.long)

    def create_optimizer(self, *args, **kwargs):
        optimizer = super().create_optimizer(*args, **kwargs)
        if self.retrieval is not None:
            optimizer.add_param_group({"params": head_parameters(self.retrieval), "weight_decay": 0.0})
        head = self.classifier(self.model)
        if self.label_weight and head is not None:  # the classifier at its own rate, out of the other groups
            params = [p for p in head.parameters() if p.requires_grad]
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if all(p is not q for q in params)]
            optimizer.add_param_group({"params": params, "weight_decay": 0.0, "lr": self.label_head_learning_rate})
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        stage1 = {k: inputs.pop(k) for k in STAGE1_INPUTS if k in inputs}
        labelled = {k: inputs.pop(k) for k in LABEL_INPUTS if k in inputs}
        result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if not (model.training and (stage1 or labelled)):
            return result
        loss, outputs = result if return_outputs else (result, None)
        share = 1.0  # of the accumulated step; the LLM's loss already is one when it is a mean over the whole step's
        if self.model_accepts_loss_kwargs and num_items_in_batch is not None:  # tokens (the Trainer leaves it alone)
            share = 1.0 / self.current_gradient_accumulation_steps
        self.record_parts(lm_loss=loss.item() / share)
        if self.stage1_weight:
            self.retrieval.train()
            out = stage1_loss(self.retrieval, {**inputs, **stage1})
            self.record_parts(stage1_loss=out.loss.item(), loss_atc=out.loss_atc.item(),
                              loss_atm=out.loss_atm.item(), loss_agtg=out.loss_agtg.item())
            loss = loss + self.stage1_weight * share * out.loss
        if self.ctc_weight and stage1:
            ctc = self.describing_rows_ctc(model, inputs, stage1["stage1_rows"])
            self.record_parts(ctc_loss=ctc.item())
            loss = loss + self.ctc_weight * share * ctc
        if self.label_weight and (labelled["clip_label_ids"] >= 0).any():
            label_loss, right = self.clip_label_loss(model, inputs, labelled["clip_label_ids"])
            self.record_parts(label_loss=label_loss.item())
            by_task = labelled["clip_task_labelled"][labelled["clip_label_ids"] >= 0]
            for name, rows in (("label_accuracy", ~by_task), ("task_label_accuracy", by_task)):
                if rows.any():  # the classification rows' top-1 apart from the rows a task labels
                    self.record_parts(**{name: right[rows].float().mean().item()})
            loss = loss + self.label_weight * share * label_loss
        return (loss, outputs) if return_outputs else loss

    def base_model(self, model):
        """The MINT model inside the accelerate and PEFT wrappers (PEFT's trainable copies still in place)."""
        mint = self.accelerator.unwrap_model(model)
        return mint.get_base_model() if hasattr(mint, "get_base_model") else mint

    def classifier(self, model):
        """The label classifier: the model's own (a label prompt) or the one this trainer adds."""
        head = getattr(self.base_model(model).model, "label_head", None)
        return self.label_head if head is None else head

    def clip_label_loss(self, model, inputs: dict, label_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of the classifier on the labelled rows' query outputs (no instruction, as retrieval reads
        them), and whether it names each of them."""
        rows = label_ids >= 0
        frames, frame_mask = inputs["audio_frames"][rows], inputs["audio_frame_mask"][rows]
        queries = self.base_model(model).model.clip_query_output(frames, frame_mask)
        logits = self.classifier(model)(queries.mean(1).float())
        return torch.nn.functional.cross_entropy(logits, label_ids[rows]), logits.argmax(-1) == label_ids[rows]

    def describing_rows_ctc(self, model, inputs: dict, rows: torch.Tensor) -> torch.Tensor:
        """The token prompt's CTC loss on the describing rows' answers, the bridge given no instruction (as
        `get_audio_token_bags` reads it)."""
        described = {k: inputs[k][rows] for k in ("audio_frames", "audio_frame_mask", "labels")}
        return alignment_ctc_loss(self.base_model(model), described, self.tokens_for_frames, self.special_ids)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        super().save_model(output_dir, _internal_call)
        if self.retrieval is not None and self.is_world_process_zero():
            save_heads(self.retrieval, Path(output_dir or self.args.output_dir) / HEADS_FILE)
        if self.label_head is not None and self.is_world_process_zero():
            save_state(self.label_head.state_dict(), Path(output_dir or self.args.output_dir) / LABEL_HEAD_FILE)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if self.retrieval is not None:
            load_by_prefix(self.retrieval, Path(resume_from_checkpoint) / HEADS_FILE, RETRIEVAL_HEADS,
                           "retrieval heads")
        if self.label_head is not None:
            load_label_head(self.label_head, Path(resume_from_checkpoint) / LABEL_HEAD_FILE)


def main(recipe: InstructRecipe, args: SFTConfig):
    torch.manual_seed(args.seed)
    args.dataset_kwargs = {"skip_prepare_dataset": True}  # rows are collated from audio, not tokenized by TRL
    # TRL turns activation checkpointing on by default (`gradient_checkpointing` is only its deprecated alias now);
    # the frozen LLM's activations fit in memory here, and recomputing them would slow every step
    args.activation_checkpointing = args.gradient_checkpointing = False
    model, processor, train, evaluation, collator = generative.setup(recipe, args)
    if recipe.stage2_weights:
        load_trained_bridge(model, Path(recipe.stage2_weights))
    if recipe.ctc_weight and not hasattr(model.model, "ctc_blank"):
        raise ValueError("ctc_weight trains the token prompt's CTC head: the model has none (token_prompt_mix 0)")
    labels = []
    if recipe.label_weight or recipe.label_prompt_tokens:
        labels = train_labels(train, task_labels=recipe.task_labels)
    label_head = None
    if recipe.label_weight and len(labels) < 2:
        raise ValueError(f"label_weight needs classification rows of two labels or more in the train split; it has "
                         f"{len(labels)}")
    if recipe.label_prompt_tokens:  # before any PEFT wrapping, as the classifier's start
        add_label_prompt(model, processor, labels, recipe.label_prompt_tokens, recipe.stage1_checkpoint)
    elif recipe.label_weight:  # a classifier beside the model, for the label loss alone
        label_head = torch.nn.Linear(model.config.bridge_config.hidden_size, len(labels))
    classifier = model.model.label_head if recipe.label_prompt_tokens else label_head
    if recipe.label_head_weights and classifier is not None:
        load_label_head(classifier, recipe.label_head_weights)
    callbacks = generative.callbacks(model, recipe)
    peft_config = llm_lora_config(model, recipe.lora_rank, recipe.lora_alpha) if recipe.lora_rank else None
    if recipe.llm_adapter:
        model, peft_config = with_llm_adapter(model, Path(recipe.llm_adapter)), None
    common = dict(args=args, train_dataset=train, eval_dataset=evaluation, processing_class=processor,
                  peft_config=peft_config, callbacks=callbacks)
    if recipe.stage1_weight or recipe.ctc_weight or recipe.label_weight:  # before any PEFT wrapping: PEFT swaps
        retrieval = None  # shared modules in place; the heads only where their targets train them
        if recipe.stage1_weight:
            retrieval = stage1_model(model.get_base_model() if recipe.llm_adapter else model, recipe.heads_weights)
        collator = Stage1TextCollator(collator, processor.bridge_tokenizer, recipe.stage1_tasks,
                                      recipe.max_answer_tokens)
        if recipe.label_weight:
            collator = ClipLabelCollator(collator, labels, task_labels=recipe.task_labels)
        trainer = MultiTargetSFTTrainer(model=model, data_collator=collator, retrieval=retrieval,
                                        stage1_weight=recipe.stage1_weight, ctc_weight=recipe.ctc_weight,
                                        tokens_for_frames=processor.query_tokens_for_frames, label_head=label_head,
                                        label_weight=recipe.label_weight,
                                        label_head_learning_rate=recipe.label_head_learning_rate, **common)
    else:
        trainer = InstructTrainer(model=model, data_collator=collator, **common)
    lora = peft_config is not None or recipe.llm_adapter is not None
    if lora and recipe.freeze_bridge_word_embeddings:
        freeze_peft_bridge_word_embeddings(trainer.model)

    def merged(model):
        """The adapter saved for shipping, then LoRA merged into the LLM; PEFT's trainable copy of the bridge keeps
        the word embeddings frozen."""
        save_llm_adapter(model, Path(args.output_dir) / "llm_adapter")
        model = model.merge_and_unload()
        if recipe.freeze_bridge_word_embeddings:
            freeze_bridge_word_embeddings(model)
        return model

    report = train_and_report(trainer, recipe, "instruct_report.json", trained_model=merged if lora else None)
    if recipe.stage1_weight and trainer.is_world_process_zero():
        save_heads(trainer.retrieval, Path(args.output_dir) / HEADS_FILE)
    if recipe.label_weight and trainer.label_head is not None and trainer.is_world_process_zero():
        save_state(trainer.label_head.state_dict(), Path(args.output_dir) / LABEL_HEAD_FILE)
    return report


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
