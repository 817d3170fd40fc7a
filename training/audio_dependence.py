"""How much the soft prompt tells the frozen LLM: the validation answer loss with each clip's own audio against the
same batch with the audio rolled by one clip (every answer paired with another clip's sound). With no gap the LLM
answers from the text alone, and no bridge initialization, stage 1's included, can show in what it generates.

    python -m mint.training.audio_dependence --model models/mint-tiny-base --weights RUN/bridge.safetensors
"""

import argparse
import json

import torch
from transformers import TrainerCallback


def rolled_audio(batch: dict) -> dict:
    """The batch with each clip's audio frames taken from the previous clip, looped or cut to the clip's own
    length, so every prompt keeps its number of audio tokens (a windowed bridge makes one set per window)."""
    frames, mask = batch["audio_frames"], batch["audio_frame_mask"]
    lengths = mask.sum(1).tolist()
    out = torch.zeros_like(frames)
    for i, length in enumerate(lengths):
        source = (i - 1) % len(lengths)
        other = frames[source, : lengths[source]]
        reps = -(-length // max(other.shape[0], 1))
        out[i, :length] = other.repeat(reps, 1)[:length]
    return {**batch, "audio_frames": out}


@torch.no_grad()
def batch_gap(model, batch: dict) -> tuple[float, float, int]:
    """Summed answer loss with own and with rolled audio over one batch, and its answer-token count."""
    n = int((batch["labels"][:, 1:] != -100).sum())
    own = model(**batch).loss.item() * n
    rolled = model(**rolled_audio(batch)).loss.item() * n
    return own, rolled, n


class AudioDependenceCallback(TrainerCallback):
    """At each evaluation, the audio-dependence gap on up to `batches` validation batches, logged as
    `eval_audio_gap` (nats/token) beside `eval_loss`: the curve that says whether the LLM reads the audio."""

    def __init__(self, batches: int = 4):
        self.batches = batches

    def on_evaluate(self, args, state, control, model=None, eval_dataloader=None, metrics=None, **kwargs):
        if model is None or eval_dataloader is None:
            return
        was_training = model.training
        model.eval()
        own = rolled = tokens = 0.0
        for i, batch in enumerate(eval_dataloader):
            if i >= self.batches or "audio_frames" not in batch or batch["labels"].shape[0] < 2:
                break
            batch = {k: v.to(args.device) if hasattr(v, "to") else v for k, v in batch.items()}
            o, r, n = batch_gap(model, batch)
            own, rolled, tokens = own + o, rolled + r, tokens + n
        model.train(was_training)
        if tokens:
            gap = {"eval_audio_gap": round((rolled - own) / tokens, 4), "step": state.global_step}
            state.log_history.append(gap)
            if metrics is not None:
                metrics["eval_audio_gap"] = gap["eval_audio_gap"]


@torch.no_grad()
def audio_dependence(model_dir: str, weights: str | None, data_dir: str, tasks: list[str],
                     languages: list[str] | None = None, clips: int = 64, batch_size: int = 16,
                     instruction: bool = False, seed: int = 0, split: str = "validation",
                     feature_cache_dir: str | None = None) -> dict:
    """Mean answer loss (nats per token) on `clips` rows of `split`, with their own audio and with the batch's
    audio rolled by one; `gap` = rolled - own (> 0: the answers depend on the audio)."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from mint.training.collators import AudioLanguageCollator
    from mint.training.common import feature_cache, frames_dataset, load_stage1_bridge
    from mint.training.data import corpus_rows

    if batch_size < 2:
        raise ValueError("rolling the audio needs batches of at least 2 clips")
    model = MintForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = MintProcessor.from_pretrained(model_dir)
    if weights:
        load_stage1_bridge(model, weights)
    rows = corpus_rows(data_dir, split, tasks, clips, seed, languages)
    data = frames_dataset(rows, feature_cache(model, processor, feature_cache_dir))
    collator = AudioLanguageCollator(processor, instruction_in_prompt=instruction, instruction_in_bridge=instruction,
                                     encoder_decoder=model.config.is_encoder_decoder)
    own = rolled = tokens = 0.0
    for start in range(0, len(data) - 1, batch_size):
        batch = collator([data[i] for i in range(start, min(start + batch_size, len(data)))])
        if batch["labels"].shape[0] < 2:
            break
        o, r, n = batch_gap(model, batch)
        own, rolled, tokens = own + o, rolled + r, tokens + n
    return {"own_audio": own / tokens, "rolled_audio": rolled / tokens, "gap": (rolled - own) / tokens,
            "clips": len(data), "tokens": int(tokens)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an assembled MINT folder")
    parser.add_argument("--weights", default=None, help="a run's bridge.safetensors on top of it")
    parser.add_argument("--data", default="data/mint-corpus")
    parser.add_argument("--tasks", nargs="*", default=["captioning", "transcription"])
    parser.add_argument("--languages", nargs="*", default=["en"])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--instruction", action="store_true", help="the instruction in prompt and bridge")
    args = parser.parse_args(argv)
    result = audio_dependence(args.model, args.weights, args.data, args.tasks, args.languages, args.clips,
                              instruction=args.instruction)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
