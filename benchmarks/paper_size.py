"""Paper size: the paper-faithful variant at full size, its parameters per part and one training step per stage.

    python -m mint.bench.paper_size

`hub_configs/mint-paper` (data2vec-audio-base, a bert-base-uncased Bridge-Net with cross-attention every 2nd layer
and 32 queries, Flan-T5-XL) needs the Hub for its weights; its architecture does not. The configs below are those
checkpoints' published ones, so the model is built at full size with random weights: first on the meta device (no
memory) for the parameter count, then materialised in bf16 for one training step of stage 1 (ATC + ATM + AGTG, no
LLM) and of stage 2 (the frozen LLM's loss through the soft prompt), AdamW on the trainable parts, each stage in its
own process so that its peak RSS (`VmHWM`) is its own.
"""

import json
import subprocess
import sys
import time

import torch

from mint.bench.common import ROOT, machine, machine_note, parser, setup, table, write_report
from mint.bench.memory import _peak_mb


# The published configs of facebook/data2vec-audio-base, google-bert/bert-base-uncased and google/flan-t5-xl.
AUDIO = {"model_type": "data2vec-audio", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
         "intermediate_size": 3072}
BRIDGE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
          "vocab_size": 30522, "cross_attention_frequency": 2, "bos_token_id": 1}  # [DEC]: an unused BERT id
TEXT = {"model_type": "t5", "d_model": 2048, "d_ff": 5120, "d_kv": 64, "num_heads": 32, "num_layers": 24,
        "num_decoder_layers": 24, "vocab_size": 32128, "feed_forward_proj": "gated-gelu",
        "tie_word_embeddings": False, "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}
AUDIO_TOKEN = 32100  # past Flan-T5's 32100 tokenizer entries, inside its 32128-row embedding
PARTS = {"audio tower (data2vec-audio-base)": ("audio_tower.",), "queries": ("query_tokens.",),
         "Bridge-Net (bert-base-uncased + cross-attention)": ("bridge.",), "language projection": ("language_projection.",),
         "LLM (Flan-T5-XL, with its head)": ("language_model.", "lm_head.")}
CASES = ("count", "stage1", "stage2")


def paper_config():
    from modeling_mint import MintConfig

    return MintConfig(audio_config=AUDIO, bridge_config=BRIDGE, text_config=TEXT, num_query_tokens=32,
                      audio_token_index=AUDIO_TOKEN, projection_dim=256, max_audio_windows=3)


def count() -> dict:
    """Parameters per part of the stage-2 model and of the stage-1 heads, built on the meta device."""
    from modeling_mint import MintForAudioTextRetrieval, MintForConditionalGeneration

    config = paper_config()
    with torch.device("meta"):
        model = MintForConditionalGeneration(config)
        retrieval = MintForAudioTextRetrieval(config)
    names = [(n.removeprefix("model."), p) for n, p in model.named_parameters()]
    parts = {part: sum(p.numel() for n, p in names if n.startswith(prefixes)) for part, prefixes in PARTS.items()}
    heads = sum(p.numel() for n, p in retrieval.named_parameters() if not n.startswith("model."))
    parts["stage-1 heads (projections, ATM, AGTG)"] = heads
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert total == sum(v for k, v in parts.items() if not k.startswith("stage-1")), "a part is missing"
    return {"parts": parts, "total_stage2": total, "trainable_stage2": trainable,
            "trainable_stage1": sum(p.numel() for p in retrieval.parameters() if p.requires_grad)}


def step(stage: str, batch: int, text_length: int) -> dict:
    """One training step of `stage` in bf16 on `batch` 10-s clips."""
    from modeling_mint import MintForAudioTextRetrieval, MintForConditionalGeneration

    config = paper_config()
    torch.set_default_dtype(torch.bfloat16)
    start = time.perf_counter()
    model_class = MintForAudioTextRetrieval if stage == "stage1" else MintForConditionalGeneration
    model = model_class(config).train()
    torch.set_default_dtype(torch.float32)
    built_s, loaded = time.perf_counter() - start, _peak_mb()
    audio = {"input_features": torch.randn(batch, config.audio_window_size, dtype=torch.bfloat16),
             "feature_attention_mask": torch.ones(batch, config.audio_window_size, dtype=torch.long)}
    text = torch.randint(1000, 30000, (batch, text_length))
    if stage == "stage1":
        text[:, 0] = 101  # [CLS]
        inputs = {**audio, "input_ids": text, "return_loss": True}
    else:
        prompt = torch.cat([torch.full((batch, config.num_query_tokens), AUDIO_TOKEN), text], dim=1)
        inputs = {**audio, "input_ids": prompt, "attention_mask": torch.ones_like(prompt),
                  "labels": torch.randint(1000, 30000, (batch, text_length))}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    start = time.perf_counter()
    loss = model(**inputs).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"stage": stage, "build_s": built_s, "step_s": time.perf_counter() - start, "loss": float(loss),
            "loaded_mb": loaded, "peak_mb": _peak_mb(), "batch": batch, "text_tokens": text_length,
            "dtype": "bfloat16"}


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--text-tokens", type=int, default=24)
    p.add_argument("--child", choices=CASES, default=None, help=__import__("argparse").SUPPRESS)
    args = p.parse_args(argv)
    setup(args)
    if args.child:
        out = count() if args.child == "count" else step(args.child, args.batch_size, args.text_tokens)
        print(json.dumps(out))
        return None
    info = machine()
    results = {}
    for case in CASES:
        command = [sys.executable, "-m", "mint.bench.paper_size", "--child", case, "--threads",
                   str(torch.get_num_threads()), "--batch-size", str(args.batch_size), "--text-tokens",
                   str(args.text_tokens)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"paper-size case {case} failed:\n{done.stderr[-3000:]}")
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
    counts = results.pop("count")
    rows = [[part, f"{n / 1e6:,.1f}M"] for part, n in counts["parts"].items()]
    rows.append(["**total (stage 2 model)**", f"**{counts['total_stage2'] / 1e9:.3f}B**"])
    step_rows = [[s, f"{r['build_s']:.0f}", f"{r['step_s']:.1f}", f"{r['loaded_mb'] / 1024:.2f}",
                  f"**{r['peak_mb'] / 1024:.2f}**", f"{r['loss']:.3f}"] for s, r in results.items()]
    sections = [
        f"Paper-faithful MINT at full size: {counts['total_stage2'] / 1e9:.2f}B parameters, of which "
        f"{counts['trainable_stage2'] / 1e6:.0f}M train in stage 2; one bf16 training step on CPU peaks at "
        + ", ".join(f"{s} {r['peak_mb'] / 1024:.1f} GB" for s, r in results.items()) + ".",
        "",
        "Architecture of `hub_configs/mint-paper` from the published configs of its three checkpoints (random "
        "weights: no Hub here), counted on the meta device:",
        "",
        table(["part", "parameters"], rows),
        "",
        f"Trainable: stage 1 {counts['trainable_stage1'] / 1e6:.0f}M (queries, Bridge-Net, heads), stage 2 "
        f"{counts['trainable_stage2'] / 1e6:.0f}M (queries, Bridge-Net, projection); the audio tower and the LLM "
        "are frozen.",
        "",
        f"One training step, materialised in bf16 (weights, activations and AdamW state), batch {args.batch_size} "
        f"clips of 10 s (one data2vec window each) and {args.text_tokens} text tokens; stage 2's prompt is the "
        "32 audio tokens and the text, its target as long. Each stage in its own process; peak RSS is `VmHWM`; "
        "build time includes the random initialisation.",
        "",
        table(["stage", "build s", "step s", "after build GB", "peak GB", "loss"], step_rows),
        "",
        "The losses are those of random weights and show only that each step ran through (stage 2's is large: T5 "
        "initialises the embedding its head shares with standard deviation 1). transformers 5.23 builds T5 with the "
        "head tied to that embedding, which the count follows; Flan-T5-XL's checkpoint stores a separate head "
        f"({TEXT['vocab_size'] * TEXT['d_model'] / 1e6:.1f}M more).",
        "",
        machine_note(info),
    ]
    data = {"machine": info, "counts": counts, "steps": results}

    def plot(plt):
        fig, ax = plt.subplots(figsize=(6, 3.4))
        parts = counts["parts"]
        ax.barh(list(parts), [v / 1e6 for v in parts.values()])
        ax.set_xscale("log")
        ax.set_xlabel("parameters (millions, log scale)")
        ax.set_title("mint-paper at full size")
        return fig

    return write_report("paper_size", args.out, "The paper-faithful variant at full size", sections, data, plot)


if __name__ == "__main__":
    main()
