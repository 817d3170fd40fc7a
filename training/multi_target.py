"""Stage 1's targets (ATC + ATM + AGTG) in the same steps as a generative stage's loss.

Only stage 1 trains the Bridge-Net's text-only pass. A Bridge-Net trained afterwards through the LLM alone lets that
pass drift until every text embeds alike, and retrieval falls to chance (`token_prompt_findings.md`, item 7). With
the three targets on every batch's own clips and answers, one Bridge-Net serves the LLM and retrieval.
"""

import torch

from mint.hub.weights import RETRIEVAL_HEADS, load_by_prefix, save_state, state_by_prefix
from modeling_mint import MintForAudioTextRetrieval

STAGE1_INPUTS = ("stage1_rows", "stage1_input_ids", "stage1_attention_mask", "stage1_group_ids")
DESCRIBING_TASKS = ("captioning", "transcription", "classification", "spoken_word")


class Stage1TextCollator:
    """A generative collator's batch plus stage 1's text inputs: the answers of the rows whose task describes the
    audio (a caption, a transcript, a label; not an answer to a question) in the bridge tokenizer, and which rows
    they are. Rows with the same answer share a group, so they are never each other's hard negatives.

    Args:
        collator: the stage's collator (an `AudioLanguageCollator` on cached frames).
        bridge_tokenizer: the processor's `bridge_tokenizer`.
        tasks: the tasks whose answers are stage-1 texts.
        max_length: bridge tokens per text.
    """

    def __init__(self, collator, bridge_tokenizer, tasks=DESCRIBING_TASKS, max_length: int = 48):
        self.collator, self.tokenizer, self.tasks, self.max_length = collator, bridge_tokenizer, set(tasks), max_length

    def __call__(self, rows: list[dict]) -> dict:
        batch = self.collator(rows)
        keep = [row.get("task") in self.tasks for row in rows]
        texts = [row["text"] for row, k in zip(rows, keep) if k]
        if len(set(texts)) < 2:  # the contrastive target needs two different texts
            return batch
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        groups = {text: i for i, text in enumerate(dict.fromkeys(texts))}
        batch.update(stage1_rows=torch.tensor(keep), stage1_input_ids=tokens["input_ids"],
                     stage1_attention_mask=tokens["attention_mask"],
                     stage1_group_ids=torch.tensor([groups[t] for t in texts]))
        return batch


def stage1_model(mint, heads_weights: str | None = None) -> MintForAudioTextRetrieval:
    """A retrieval model whose audio tower, queries and Bridge-Net are `mint.model`'s own modules, shared, not
    copied (under PEFT, its trainable copies): the heads are its only parameters of its own. `heads_weights` (a
    stage-1 run's `heads.safetensors`) starts them from a fit; otherwise they start as stage 1's do."""
    retrieval = MintForAudioTextRetrieval(mint.config)
    retrieval.model = mint.model
    if heads_weights:
        load_by_prefix(retrieval, heads_weights, RETRIEVAL_HEADS, "retrieval heads")
    return retrieval


def head_parameters(retrieval: MintForAudioTextRetrieval) -> list[torch.nn.Parameter]:
    """The heads' parameters, which no generative loss reaches: they join the optimizer beside the model's."""
    shared = {id(p) for p in retrieval.model.parameters()}
    return [p for p in retrieval.parameters() if id(p) not in shared]


def stage1_loss(retrieval: MintForAudioTextRetrieval, inputs: dict, label_smoothing: float = 0.1):
    """Stage 1's output on the batch's describing rows, or None when the batch has fewer than two such texts."""
    if "stage1_rows" not in inputs:
        return None
    rows = inputs["stage1_rows"]
    return retrieval(
        input_ids=inputs["stage1_input_ids"], attention_mask=inputs["stage1_attention_mask"],
        audio_frames=inputs["audio_frames"][rows], audio_frame_mask=inputs["audio_frame_mask"][rows],
        group_ids=inputs["stage1_group_ids"], return_loss=True, label_smoothing=label_smoothing,
    )


def save_heads(retrieval: MintForAudioTextRetrieval, path) -> None:
    """The heads alone, as a stage-1 run writes them (`mint ship --heads` reads this file)."""
    save_state(state_by_prefix(retrieval, RETRIEVAL_HEADS), path)
