"""Collators that turn corpus rows into MINT model inputs."""

import torch

from mint.training.features import load_frames


def pad_frames(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached encoder frames `(F_i, D)` -> `(B, F, D)` and their mask."""
    longest = max(f.shape[0] for f in frames)
    out = torch.zeros(len(frames), longest, frames[0].shape[1])
    mask = torch.zeros(len(frames), longest, dtype=torch.long)
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f.float()
        mask[i, : f.shape[0]] = 1
    return out, mask


class AudioLanguageCollator:
    """Rows `{"frames_path" | "frames" | "audio", "text", "instruction"}` -> inputs, loss on the answer only.

    The prompt is the processor's chat template around the audio (and the instruction, unless `instruction_in_prompt`
    is off), as at inference; the answer is `text` plus the end-of-turn token. Labels are -100 on the prompt, the
    audio placeholders and the padding. `instruction_in_bridge` also gives the instruction to the Bridge-Net
    (InstructBLIP style), so what the queries extract depends on the task. For encoder-decoder LLMs the prompt goes to
    the encoder and the answer is the decoder's target.

    Args:
        processor: a [`MintProcessor`].
        instruction_in_prompt / instruction_in_bridge: where the instruction goes (stage 2 uses neither).
        max_answer_tokens: longer answers are cut (the end-of-turn token is kept).
        encoder_decoder: the LLM is T5-like.
    """

    def __init__(self, processor, instruction_in_prompt=True, instruction_in_bridge=True, max_answer_tokens=64,
                 encoder_decoder=False):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.instruction_in_prompt = instruction_in_prompt
        self.instruction_in_bridge = instruction_in_bridge
        self.max_answer_tokens = max_answer_tokens
        self.encoder_decoder = encoder_decoder
        self.end = self.tokenizer.eos_token or ""

    def prompt(self, instruction: str) -> str:
        """The prompt the pipeline and `processor.apply_chat_template` make for this clip and instruction."""
        content = [{"type": "audio"}]
        if self.instruction_in_prompt and instruction:
            content.append({"type": "text", "text": instruction})
        return self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def __call__(self, rows: list[dict]) -> dict:
        pad = self.tokenizer.pad_token_id
        batch = self._audio(rows)
        if "audio_frame_mask" in batch:
            counts = [self.processor.tokens_for_frames(n) for n in batch["audio_frame_mask"].sum(1).tolist()]
        else:
            counts = self.processor.audio_tokens_per_clip(batch["feature_attention_mask"].numpy())
        prompts = self.processor._expand([self.prompt(r.get("instruction", "")) for r in rows], len(rows), counts)
        prompt_ids = [self.processor.prompt_ids(p) for p in prompts]
        answer_ids = [self._ids(r["text"])[: self.max_answer_tokens] + self._ids(self.end) for r in rows]
        if self.encoder_decoder:
            batch.update(_pad(prompt_ids, pad, "input_ids", "attention_mask"))
            labels = _pad(answer_ids, -100, "labels", None)["labels"]
            batch["labels"] = labels
        else:
            full = [p + a for p, a in zip(prompt_ids, answer_ids)]
            batch.update(_pad(full, pad, "input_ids", "attention_mask"))
            labels = batch["input_ids"].clone()
            for i, p in enumerate(prompt_ids):
                labels[i, : len(p)] = -100
            labels[batch["attention_mask"] == 0] = -100
            batch["labels"] = labels
        if self.instruction_in_bridge:
            bridge = self.processor.bridge_tokenizer(
                [r.get("instruction", "") for r in rows], padding=True, truncation=True,
                max_length=self.processor.bridge_max_length, return_tensors="pt",
            )
            batch["bridge_input_ids"], batch["bridge_attention_mask"] = bridge["input_ids"], bridge["attention_mask"]
        return batch


    def _audio(self, rows: list[dict]) -> dict:
        """Cached frames when the rows have them, else features from the audio."""
        if "frames_path" in rows[0] or "frames" in rows[0]:
            frames = [load_frames(r["frames_path"]) if "frames_path" in r else r["frames"] for r in rows]
            audio_frames, audio_frame_mask = pad_frames(frames)
            return {"audio_frames": audio_frames, "audio_frame_mask": audio_frame_mask}
        audio = self.processor.prepare_audio([r["audio"] for r in rows])
        return {"input_features": torch.from_numpy(audio["input_features"]),
                "feature_attention_mask": torch.from_numpy(audio["feature_attention_mask"])}


def _pad(sequences: list[list[int]], value: int, ids_key: str, mask_key: str | None) -> dict:
    """Right padding (training)."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), value, dtype=torch.long)
    mask = torch.zeros(len(sequences), longest, dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return {ids_key: ids, **({mask_key: mask} if mask_key else {})}
