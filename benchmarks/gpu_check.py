"""GPU check: every stage, batched generation and `accelerate launch` on one CUDA device, in bf16.

    python -m mint.bench.gpu_check             # on a CUDA machine: runs/bench/gpu_check.md (--out DIR elsewhere)
    python -m mint.bench.gpu_check --dry-run   # the same checks on the CPU (CI runs it)

mint-tiny-random (`hub_configs/mint-tiny-random`, random weights) in bf16 with SDPA attention, and again with
flash attention where `flash_attn` is installed: a few AdamW steps of stage 1 (ATC + ATM + AGTG), stage 2 (the LM
loss through the soft prompt) and instruction tuning (the instruction in the Bridge-Net and the prompt), batched
greedy `generate` checked against one clip at a time, and one stage-2 training step under `accelerate launch` on
one process. Needs the repository, torch and transformers (accelerate for the launch; PEFT, where installed, adds
LoRA to the instruction step). Tones stand in for audio, so no audio file or decoder is needed.
"""

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch


ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "hub_configs" / "mint-tiny-random"
OUT = ROOT / "runs" / "bench"  # as the other benchmarks (benchmarks/common.py), without importing them
RATE = 16000
STEPS = 4


def tones(n: int) -> list[np.ndarray]:
    """`n` clips of 0.4-1.6 s at different pitches."""
    return [(0.3 * np.sin(2 * np.pi * (220 + 110 * i) * np.arange(int(RATE * (0.4 + 0.4 * (i % 4)))) / RATE))
            .astype(np.float32) for i in range(n)]


def load(model_class, attn: str, device: str):
    from modeling_mint import MintConfig

    torch.manual_seed(0)
    config = MintConfig.from_pretrained(TINY)
    config._attn_implementation = attn
    return model_class(config).to(device=device, dtype=torch.bfloat16)


def to(batch: dict, device: str) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def lm_batch(processor, instruct: bool, device: str) -> dict:
    """Prompts with one clip each and a short answer; the loss is on the answer only."""
    clips = tones(4)
    prompts = [f"{processor.audio_token}\nDescribe the audio." for _ in clips]
    answers = ["a tone", "a higher tone", "two tones", "a long tone"]
    batch = processor(text=[p + " " + a for p, a in zip(prompts, answers)], audio=clips, sampling_rate=RATE,
                      bridge_text=["Describe the audio."] * len(clips))
    labels = batch["input_ids"].clone()
    answer_tokens = [len(processor.tokenizer(" " + a, add_special_tokens=False)["input_ids"]) for a in answers]
    for row, n in enumerate(answer_tokens):
        labels[row, : labels.shape[1] - n] = -100  # left padding: the answer is at the end
    batch["labels"] = labels
    if not instruct:  # stage 2: no instruction in the Bridge-Net
        batch.pop("bridge_input_ids")
        batch.pop("bridge_attention_mask")
    batch["input_features"] = batch["input_features"].to(torch.bfloat16)
    return to(dict(batch), device)


def stage1_batch(processor, device: str) -> dict:
    clips = tones(4)
    audio = processor.prepare_audio(clips, RATE)
    text = processor.bridge_tokenizer(["a tone", "a higher tone", "two tones", "a long tone"], padding=True,
                                      return_tensors="pt")
    return to({"input_features": torch.from_numpy(audio["input_features"]).to(torch.bfloat16),
               "feature_attention_mask": torch.from_numpy(audio["feature_attention_mask"]),
               "input_ids": text["input_ids"], "attention_mask": text["attention_mask"], "return_loss": True}, device)


def train_steps(model, batch: dict, device: str) -> dict:
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(STEPS):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    if device == "cuda":
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    return {"losses": losses, "seconds": time.perf_counter() - start, "peak_mb": peak,
            "ok": all(math.isfinite(x) for x in losses)}


def with_lora(model):
    """The instruction recipe's LoRA on the LLM's attention projections, the connector trained beside it."""
    if importlib.util.find_spec("peft") is None:
        return model, False
    from peft import LoraConfig, get_peft_model

    targets = r".*language_model.*\.(q_proj|v_proj)"
    config = LoraConfig(r=8, lora_alpha=16, target_modules=targets,
                        modules_to_save=["query_tokens", "bridge", "language_projection"])
    return get_peft_model(model, config), True


def generation(model, processor, device: str) -> dict:
    """Batched greedy generation of clips of different lengths, and each clip alone: the same tokens."""
    model.eval()
    clips = tones(3)
    prompts = [f"{processor.audio_token}\nDescribe the audio."] * len(clips)
    kwargs = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False}
    batch = processor(text=prompts, audio=clips, sampling_rate=RATE)
    batch["input_features"] = batch["input_features"].to(torch.bfloat16)
    start = time.perf_counter()
    with torch.inference_mode():
        batched = model.generate(**to(dict(batch), device), **kwargs)[:, batch["input_ids"].shape[1] :]
        seconds = time.perf_counter() - start
        alone = []
        for clip, prompt in zip(clips, prompts):
            one = processor(text=[prompt], audio=[clip], sampling_rate=RATE)
            one["input_features"] = one["input_features"].to(torch.bfloat16)
            alone.append(model.generate(**to(dict(one), device), **kwargs)[0, one["input_ids"].shape[1] :].tolist())
    same = sum(b == a for b, a in zip(batched.tolist(), alone))
    return {"batch": len(clips), "new_tokens": batched.shape[1], "seconds": seconds, "same_as_alone": same,
            "ok": batched.shape == (len(clips), kwargs["max_new_tokens"])}


def accelerate_worker() -> dict:
    """Runs under `accelerate launch`: stage-2 steps through `Accelerator` (mixed precision from the launcher)."""
    from accelerate import Accelerator

    from modeling_mint import MintForConditionalGeneration, MintProcessor

    accelerator = Accelerator()
    processor = MintProcessor.from_pretrained(TINY)
    model = load(MintForConditionalGeneration, "sdpa", "cpu").float()  # the launcher's mixed precision casts
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    batch = lm_batch(processor, instruct=False, device=str(accelerator.device))
    batch["input_features"] = batch["input_features"].float()
    losses = []
    model.train()
    for _ in range(2):
        loss = model(**batch).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return {"device": str(accelerator.device), "processes": accelerator.num_processes,
            "mixed_precision": accelerator.mixed_precision, "losses": losses,
            "ok": all(math.isfinite(x) for x in losses)}


def launch(device: str) -> dict:
    """`accelerate launch` on one process (`--cpu` in the dry run) of `accelerate_worker`."""
    if importlib.util.find_spec("accelerate") is None:
        return {"ok": False, "error": "accelerate is not installed"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
               "--mixed_precision", "bf16", "--dynamo_backend", "no", *(["--cpu"] if device == "cpu" else []),
               "--module", "mint.bench.gpu_check", "--accelerate-worker"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"ok": False, "error": done.stderr[-2000:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "seconds": time.perf_counter() - start}


def attention_kinds(device: str) -> list[str]:
    kinds = ["sdpa"]
    if device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        kinds.append("flash_attention_2")
    return kinds


def run(device: str) -> dict:
    from modeling_mint import MintForAudioTextRetrieval, MintForConditionalGeneration, MintProcessor

    processor = MintProcessor.from_pretrained(TINY)
    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "attention": {}}
    for attn in attention_kinds(device):
        stages = {"stage 1": train_steps(load(MintForAudioTextRetrieval, attn, device), stage1_batch(processor, device),
                                         device),
                  "stage 2": train_steps(load(MintForConditionalGeneration, attn, device),
                                         lm_batch(processor, False, device), device)}
        model, lora = with_lora(load(MintForConditionalGeneration, attn, device))
        stages["instruct" + (" (LoRA)" if lora else "")] = train_steps(model, lm_batch(processor, True, device), device)
        results["attention"][attn] = {"stages": stages,
                                      "generate": generation(load(MintForConditionalGeneration, attn, device),
                                                             processor, device)}
    results["accelerate"] = launch(device)
    results["ok"] = results["accelerate"]["ok"] and all(
        r["ok"] for a in results["attention"].values() for r in [*a["stages"].values(), a["generate"]])
    return results


def report(results: dict, dry_run: bool) -> str:
    command = "`python -m mint.bench.gpu_check --dry-run`, on the CPU" if dry_run else "`make gpu-check`"
    lines = ["# GPU check", "", f"{command} ({time.strftime('%Y-%m-%d')})", "",
             f"Device: {results['device']}; torch {torch.__version__}. Result: **{'pass' if results['ok'] else 'FAIL'}**.",
             "", "| attention | stage | losses | seconds | peak MB | ok |", "|---|---|---|---|---|---|"]
    for attn, res in results["attention"].items():
        for stage, r in res["stages"].items():
            peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
            lines.append(f"| {attn} | {stage} | {', '.join(f'{x:.3f}' for x in r['losses'])} | {r['seconds']:.2f} "
                         f"| {peak} | {r['ok']} |")
    lines += ["", "| attention | batch | new tokens | seconds | same as one at a time |", "|---|---|---|---|---|"]
    for attn, res in results["attention"].items():
        g = res["generate"]
        lines.append(f"| {attn} | {g['batch']} | {g['new_tokens']} | {g['seconds']:.2f} | {g['same_as_alone']} of "
                     f"{g['batch']} |")
    a = results["accelerate"]
    lines += ["", "`accelerate launch` (one process, bf16): " + (
        f"device {a['device']}, {a['processes']} process, mixed precision {a['mixed_precision']}, losses "
        f"{', '.join(f'{x:.3f}' for x in a['losses'])}, {a['seconds']:.1f} s." if a["ok"] else f"failed: {a['error']}"),
        "", "bf16 end to end: greedy tokens of a batch can differ from one clip at a time where two logits tie in bf16; "
        "the count above says how many clips matched.", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="run the checks on the CPU (no report file unless --out)")
    p.add_argument("--out", default=None, help="report folder (default: runs/bench/ on a GPU; the committed report: "
                   "benchmarks/reports)")
    p.add_argument("--accelerate-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.accelerate_worker:
        print(json.dumps(accelerate_worker()))
        return None
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu-check: no CUDA device here; `python -m mint.bench.gpu_check --dry-run` runs the same "
                         "checks on the CPU")
    device = "cpu" if args.dry_run else "cuda"
    results = run(device)
    text = report(results, args.dry_run)
    out = args.out or (None if args.dry_run else str(OUT))
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_check.md").write_text(text)
        (Path(out) / "gpu_check.json").write_text(json.dumps(results, indent=2))
    print(text)
    if not results["ok"]:
        raise SystemExit("gpu-check failed")
    return results


if __name__ == "__main__":
    main()
