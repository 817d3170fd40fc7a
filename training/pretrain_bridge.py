"""Stage 1: multi-target pre-training of the Bridge-Net (ATC + ATM + AGTG) on frozen audio features, no LLM.

    python -m training.pretrain_bridge --output_dir runs/stage1 --max_steps 300
"""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset
from transformers import AutoTokenizer, HfArgumentParser, Trainer, TrainingArguments, WhisperFeatureExtractor

from hub_configs.components import (
    SMOLLM2_135M,
    bridge_config_from_bert,
    init_bridge_from_bert,
    minilm_path,
    whisper_encoder_window,
    whisper_tiny_en,
    cache_dir,
)
from modeling_mint import MintConfig, MintForAudioTextRetrieval
from training.data import asterisk_pairs
from training.features import FrozenFeatureCache
from training.metrics import retrieval_metrics


@dataclass
class Stage1Recipe:
    """What stage 1 trains and on what. Optimizer, schedule and logging are `TrainingArguments`."""

    num_query_tokens: int = field(default=32, metadata={"help": "learned queries (soft-prompt length later)"})
    cross_attention_frequency: int = field(default=1, metadata={"help": "cross-attention every N bridge layers"})
    projection_dim: int = field(default=256, metadata={"help": "contrastive embedding size"})
    bridge_init: str = field(default="minilm", metadata={"help": "'minilm' (BERT weights) or 'random'"})
    max_text_length: int = field(default=64, metadata={"help": "bridge tokens per caption / transcript"})
    label_smoothing: float = field(default=0.1, metadata={"help": "for ATC and AGTG, as BLIP-2"})
    window_seconds: int = field(default=10, metadata={"help": "Whisper encoder window"})
    metrics_file: str = field(default="stage1_metrics.json", metadata={"help": "written into output_dir"})


class PairDataset(Dataset):
    def __init__(self, frames: list[torch.Tensor], texts: list[str], groups: list[int]):
        self.frames, self.texts, self.groups = frames, texts, groups

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, i):
        return {"frames": self.frames[i], "text": self.texts[i], "group": self.groups[i]}


class Stage1Collator:
    """Pads cached encoder frames and tokenizes the texts with the bridge tokenizer."""

    def __init__(self, tokenizer, max_length: int, label_smoothing: float):
        self.tokenizer, self.max_length, self.label_smoothing = tokenizer, max_length, label_smoothing

    def __call__(self, items: list[dict]) -> dict:
        longest = max(item["frames"].shape[0] for item in items)
        width = items[0]["frames"].shape[1]
        frames = torch.zeros(len(items), longest, width)
        mask = torch.zeros(len(items), longest, dtype=torch.long)
        for i, item in enumerate(items):
            frames[i, : item["frames"].shape[0]] = item["frames"].float()
            mask[i, : item["frames"].shape[0]] = 1
        text = self.tokenizer([item["text"] for item in items], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt")
        return {"audio_frames": frames, "audio_frame_mask": mask, "input_ids": text["input_ids"],
                "attention_mask": text["attention_mask"], "group_ids": torch.tensor([i["group"] for i in items]),
                "return_loss": True, "label_smoothing": self.label_smoothing}


def build_model(recipe: Stage1Recipe):
    whisper = whisper_tiny_en()
    audio_config, encoder = whisper_encoder_window(whisper, recipe.window_seconds)
    bridge_config = bridge_config_from_bert(minilm_path(), cross_attention_frequency=recipe.cross_attention_frequency)
    config = MintConfig(audio_config=audio_config.to_dict(), bridge_config=bridge_config.to_dict(),
                        text_config=SMOLLM2_135M, num_query_tokens=recipe.num_query_tokens,
                        projection_dim=recipe.projection_dim)
    model = MintForAudioTextRetrieval(config)
    model.model.audio_tower.load_state_dict(encoder.state_dict())
    if recipe.bridge_init == "minilm":
        init_bridge_from_bert(model.model.bridge, minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    if tokenizer.bos_token_id != config.bridge_config.bos_token_id:
        raise ValueError("the bridge tokenizer's [DEC] id does not match the bridge config")
    return model, tokenizer, encoder, WhisperFeatureExtractor.from_pretrained(whisper, chunk_length=recipe.window_seconds)


@torch.no_grad()
def evaluate_retrieval(model, collator, dataset: PairDataset, batch_size: int = 64) -> dict:
    """R@k over the distinct texts of `dataset`."""
    model.eval()
    distinct = sorted(set(dataset.texts))
    index = {t: i for i, t in enumerate(distinct)}
    audio = []
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        audio.append(model.get_audio_features(audio_frames=batch["audio_frames"], audio_frame_mask=batch["audio_frame_mask"]))
    text = []
    for start in range(0, len(distinct), batch_size):
        tok = collator.tokenizer(distinct[start : start + batch_size], padding=True, truncation=True,
                                 max_length=collator.max_length, return_tensors="pt")
        text.append(model.get_text_features(tok["input_ids"], tok["attention_mask"]))
    return retrieval_metrics(torch.cat(audio), torch.cat(text), [index[t] for t in dataset.texts])


def main(recipe: Stage1Recipe, args: TrainingArguments):
    args.remove_unused_columns = False  # the collator needs the raw frames and texts
    torch.manual_seed(args.seed)
    model, tokenizer, encoder, features = build_model(recipe)
    pairs = asterisk_pairs()
    cache = FrozenFeatureCache(cache_dir() / "features", encoder, features, f"whisper-tiny.en-{recipe.window_seconds}s")
    frames = cache.frames([p["audio"] for p in pairs])
    group_of = {t: i for i, t in enumerate(sorted({p["text"] for p in pairs}))}
    splits = {}
    for name in ("train", "validation", "test"):
        chosen = [i for i, p in enumerate(pairs) if p["split"] == name]
        splits[name] = PairDataset([frames[i] for i in chosen], [pairs[i]["text"] for i in chosen],
                                   [group_of[pairs[i]["text"]] for i in chosen])
    collator = Stage1Collator(tokenizer, recipe.max_text_length, recipe.label_smoothing)
    before = evaluate_retrieval(model, collator, splits["test"])
    trainer = Trainer(model=model, args=args, train_dataset=splits["train"], data_collator=collator)
    start = time.time()
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    seconds = time.time() - start
    after = evaluate_retrieval(model, collator, splits["test"])
    report = {"recipe": asdict(recipe), "train_seconds": seconds, "steps": trainer.state.global_step,
              "pairs": {k: len(v) for k, v in splits.items()}, "test_before": before, "test_after": after,
              "log": trainer.state.log_history}
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / recipe.metrics_file).write_text(json.dumps(report, indent=2))
    trainer.save_model(str(out / "final"))
    tokenizer.save_pretrained(out / "final")
    print(json.dumps({"test_before": before, "test_after": after, "train_seconds": round(seconds)}, indent=2))
    return report


if __name__ == "__main__":
    recipe, args = HfArgumentParser((Stage1Recipe, TrainingArguments)).parse_args_into_dataclasses()
    main(recipe, args)
