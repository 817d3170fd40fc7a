"""Training throughput of each stage (stage 1, stage 2, instruction tuning) with and without the frozen-feature cache.

    python -m mint.bench.training [--model models/mint-tiny-base] [--batch-size 16]

One step is what the stage's Trainer does per batch: collate the rows, forward under bf16 autocast (the recipes'
`bf16: true`), backward, AdamW step. With the cache the collator loads each clip's stored encoder frames
(`training/features.py`, warm); without it the collator decodes the audio and the processor makes log-mel windows,
and the frozen Whisper encoder runs inside the step (`input_features`), as it would with no cache. The batch is the
same real Asterisk clips and transcripts for both sides.
"""

import tempfile

import torch

from mint.bench.common import (
    DEFAULT_BASE,
    interleaved,
    machine,
    machine_note,
    median,
    parser,
    real_clips,
    setup,
    table,
    verdict,
    write_report,
)


STAGES = ("stage1", "stage2", "instruct")
INSTRUCTION = "Transcribe the audio."
# Larger Whisper encoders' shapes (10-s windows), for `--encoder-shape`: speed only, so random weights serve.
ENCODER_SHAPES = {
    "whisper-small": {"d_model": 768, "encoder_layers": 12, "encoder_attention_heads": 12, "encoder_ffn_dim": 3072},
    "whisper-large-v2": {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20,
                         "encoder_ffn_dim": 5120},
}


def recipe_forward(stage: str) -> dict:
    """What a stage's Trainer adds to the model's forward by default (stage 2: `logits_at_labels`, its recipe's)."""
    if stage != "stage2":
        return {}
    from mint.training.pretrain_generative import Stage2Recipe

    return {"logits_at_labels": Stage2Recipe.__dataclass_fields__["logits_at_labels"].default}


def with_encoder_shape(model, shape: dict):
    """`model` with a random Whisper encoder of another shape (`ENCODER_SHAPES`) in place of its audio tower, and
    the Bridge-Net's cross-attention resized to that width; every other weight is kept. Speed does not depend on the
    encoder's weights, so this measures what the cache saves with an encoder the size of those of Qwen2-Audio or
    SALMONN (Whisper-large), which cannot be installed here."""
    import copy

    config = copy.deepcopy(model.config)
    if config.audio_config.model_type != "whisper":
        raise ValueError(f"--encoder-shape needs a Whisper audio tower, got {config.audio_config.model_type}")
    for key, value in shape.items():
        setattr(config.audio_config, key, value)
    config.bridge_config.encoder_hidden_size = config.audio_config.d_model
    twin = type(model)(config)
    own = twin.state_dict()
    twin.load_state_dict({k: v for k, v in model.state_dict().items() if k in own and own[k].shape == v.shape},
                         strict=False)
    return twin


def asterisk_rows(n: int) -> list[dict]:
    """`n` real clips with their transcripts (tones with a label if the Asterisk package is missing)."""
    try:
        from mint.training.data import asterisk_pairs

        pairs = asterisk_pairs()
        pairs = [pairs[i * len(pairs) // n] for i in range(n)]
        return [{"audio": p["audio"], "text": p["text"], "instruction": INSTRUCTION, "group": i}
                for i, p in enumerate(pairs)]
    except FileNotFoundError:
        return [{"audio": {"array": a, "sampling_rate": 16000}, "text": f"tone {i}", "instruction": INSTRUCTION,
                 "group": i} for i, a in enumerate(real_clips(n))]


class StageStep:
    """One stage's model, optimizer and batch, cached and uncached; `step(cached)` runs one training step."""

    def __init__(self, stage: str, model_dir: str, rows: list[dict], cache_root: str,
                 encoder_shape: dict | None = None):
        from modeling_mint import MintForAudioTextRetrieval, MintForConditionalGeneration, MintProcessor
        from mint.training.collators import AudioLanguageCollator
        from mint.training.common import feature_cache, freeze_bridge_word_embeddings
        from mint.training.pretrain_bridge import Stage1Collator

        self.stage = stage
        self.processor = MintProcessor.from_pretrained(model_dir)
        model_class = MintForAudioTextRetrieval if stage == "stage1" else MintForConditionalGeneration
        model = model_class.from_pretrained(model_dir)
        if encoder_shape:
            model = with_encoder_shape(model, encoder_shape)
        freeze_bridge_word_embeddings(model)
        cache = feature_cache(model, self.processor, cache_root)
        index = cache.index([r["audio"] for r in rows], desc=f"{stage}: caching frames")
        self.cached_rows = [{**{k: v for k, v in r.items() if k != "audio"}, "frames_path": str(e["path"])}
                            for r, e in zip(rows, index)]
        self.raw_rows = rows
        if stage == "stage1":
            self.collator = Stage1Collator(self.processor.bridge_tokenizer, 48, 0.1)
        else:
            in_prompt = stage == "instruct"
            self.collator = AudioLanguageCollator(self.processor, instruction_in_prompt=in_prompt,
                                                  instruction_in_bridge=in_prompt, max_answer_tokens=40)
        if stage == "instruct":
            model = self._lora(model)
        self.model = model.train()
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    @staticmethod
    def _lora(model):
        """The instruct recipe's LoRA (rank 8 on the LLM's linear layers, the connector trained beside it)."""
        from peft import get_peft_model

        from mint.training.sft import freeze_peft_bridge_word_embeddings, llm_lora_config

        model = get_peft_model(model, llm_lora_config(model, rank=8, alpha=16))
        freeze_peft_bridge_word_embeddings(model)
        return model

    def batch(self, cached: bool) -> dict:
        if cached:
            return self.collator(self.cached_rows)
        if self.stage != "stage1":
            return self.collator(self.raw_rows)
        audio = self.processor.prepare_audio([r["audio"] for r in self.raw_rows])
        text = self.collator.texts([r["text"] for r in self.raw_rows])
        return {"input_features": torch.from_numpy(audio["input_features"]),
                "feature_attention_mask": torch.from_numpy(audio["feature_attention_mask"]),
                "input_ids": text["input_ids"], "attention_mask": text["attention_mask"],
                "group_ids": torch.arange(len(self.raw_rows)), "return_loss": True, "label_smoothing": 0.1}

    def encode(self):
        """What the cache saves per batch: decoding, log-mel windows and the frozen encoder on them."""
        audio = self.processor.prepare_audio([r["audio"] for r in self.raw_rows])
        mint = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            mint.model.encode_audio(torch.from_numpy(audio["input_features"]),
                                    torch.from_numpy(audio["feature_attention_mask"]))

    def loss(self, batch: dict, **model_kwargs) -> torch.Tensor:
        return self.model(**batch, **model_kwargs).loss

    def step(self, cached: bool = True, **model_kwargs) -> float:
        batch = self.batch(cached)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = self.loss(batch, **model_kwargs)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())


def main(argv=None):
    p = parser(__doc__.splitlines()[0], default_model=DEFAULT_BASE)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    p.add_argument("--encoder-shape", choices=sorted(ENCODER_SHAPES), default=None,
                   help="replace the audio tower by a random encoder of this shape (speed only); report "
                        "training-SHAPE.md")
    args = p.parse_args(argv)
    setup(args)
    batch_size = min(args.batch_size, 4) if args.quick else args.batch_size
    rows = asterisk_rows(batch_size)
    info = machine()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for stage in args.stages:
            runner = StageStep(stage, args.model, rows, root, ENCODER_SHAPES.get(args.encoder_shape))
            extra = recipe_forward(stage)
            encoder_params = sum(p.numel() for n, p in runner.model.named_parameters() if "audio_tower" in n)
            times = interleaved({"cache": lambda: runner.step(True, **extra),
                                 "no cache": lambda: runner.step(False, **extra),
                                 "encoder": runner.encode}, args.repeats)
            cached, raw = median(times["cache"]), median(times["no cache"])
            results[stage] = {"cache_s": cached, "no_cache_s": raw, "cache_samples_per_s": batch_size / cached,
                              "no_cache_samples_per_s": batch_size / raw, "ratio": raw / cached,
                              "encoder_s": median(times["encoder"]), "runs": times}
    worst = min(r["ratio"] for r in results.values())
    shape_note = ""
    if args.encoder_shape:
        shape_note = (f" The audio tower is replaced by a random encoder of {args.encoder_shape}'s shape "
                      f"({encoder_params / 1e6:.0f}M parameters, 10-s windows) and the Bridge-Net's cross-attention "
                      "resized to its width (`--encoder-shape`): timing only, the weights do not change the speed. "
                      "The LLM and the rest of the Bridge-Net are the model's.")
    rows_md = [[s, r["cache_s"], r["no_cache_s"], r["encoder_s"], f"{r['cache_samples_per_s']:.2f}",
                f"{r['no_cache_samples_per_s']:.2f}", f"**{r['ratio']:.2f}x**", verdict(r["ratio"], 4)]
               for s, r in results.items()]
    sections = [
        "Training samples/s with the frozen-feature cache over without it: "
        + ", ".join(f"{s} {r['ratio']:.2f}x" for s, r in results.items()) + f". Target 4x for every stage: "
        f"{verdict(worst, 4)} (the lowest shown); per stage in the table.",
        "",
        f"Model `{args.model}`; batch {batch_size} real Asterisk clips (mean "
        f"{sum(len(c) for c in real_clips(batch_size)) / batch_size / 16000:.1f} s) with their transcripts; bf16 "
        f"autocast as the recipes; median of {args.repeats} interleaved steps per side after one warm-up step. "
        "Stage 1 is ATC + ATM + AGTG without the LLM; stage 2 the frozen LLM's loss through the soft prompt "
        "(the LM head on the answer tokens only, `logits_at_labels`, as its recipe); "
        "instruct adds the instruction to bridge and prompt and LoRA rank 8 on the LLM." + shape_note,
        "",
        table(["stage", "step s, cache", "step s, no cache", "encoder s per batch", "samples/s with cache",
               "samples/s without", "ratio", "target 4x"], rows_md),
        "",
        "What the cache removes from a step: decoding the audio, the log-mel windows and the frozen Whisper encoder "
        "(a full 10-s window per clip, however short the clip; timed alone in the `encoder s per batch` column, bf16 "
        "autocast as in the step), and its frames are cropped to the clip's length, so the Bridge-Net's "
        "cross-attention reads fewer frames. The ratio is bounded by (step with cache + encoder) / (step with "
        "cache): where the trainable part's forward and backward (the frozen LLM's, through the soft prompt, in "
        "stage 2 and instruct) costs more than the encoder, no cache can give 4x. "
        "`python -m mint.bench.feature_cache` times encoding against reading the frames alone, without a step.",
        "",
        machine_note(info),
    ]
    data = {"machine": info, "model": args.model, "batch_size": batch_size, "repeats": args.repeats,
            "encoder_shape": args.encoder_shape, "results": results}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(6, 3.4))
        xs = list(range(len(results)))
        ax.bar([x - 0.2 for x in xs], [r["cache_samples_per_s"] for r in results.values()], 0.4, label="cache")
        ax.bar([x + 0.2 for x in xs], [r["no_cache_samples_per_s"] for r in results.values()], 0.4,
               label="encoder in the step")
        ax.set_ylim(0, 1.15 * max(r["cache_samples_per_s"] for r in results.values()))
        for x, r in zip(xs, results.values()):
            ax.text(x, r["cache_samples_per_s"], f"{r['ratio']:.1f}x", ha="center", va="bottom")
        ax.set_xticks(xs, list(results))
        ax.set_ylabel("samples / s")
        ax.set_title("training throughput")
        ax.legend()
        return fig

    name, title = "training", "Training throughput with and without the feature cache"
    if args.encoder_shape:
        name, title = f"training-{args.encoder_shape}", f"{title}, with a {args.encoder_shape}-sized encoder"
    command = "python -m mint.bench.training" + (f" --encoder-shape {args.encoder_shape}" if args.encoder_shape else "")
    return write_report(name, args.out, title, sections, data, plot, command)


if __name__ == "__main__":
    main()
