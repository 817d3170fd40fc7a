"""Optimizations keep the numbers (tiny configs, ModelTester pattern), and every benchmark runs end to end on the
tiny random model (`--quick`). Timings are never asserted: the benchmarks report them."""

import importlib
import json

import numpy as np
import pytest
import torch

from tests.conftest import ROOT
from tests.test_modeling_mint import MintModelTester, make


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("num_items", [None, 7])
def test_logits_at_labels_gives_the_same_loss_and_gradients(num_items):
    """The LM head on target positions only: same loss and gradients, logits equal to the full logits' rows."""
    tester = MintModelTester("whisper", "llama")
    config, inputs, labels = tester.prepare_config_and_inputs()
    labels[0, -2:] = -100  # a padded answer
    model = make(config).train()
    extra = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    full = model(**inputs, labels=labels, **extra)
    full.loss.backward()
    full_grads = _grads(model)
    model.zero_grad()
    fast = model(**inputs, labels=labels, logits_at_labels=True, **extra)
    fast.loss.backward()
    torch.testing.assert_close(fast.loss, full.loss)
    keep = labels[:, 1:] != -100
    torch.testing.assert_close(fast.logits, full.logits[:, :-1][keep])
    fast_grads = _grads(model)
    assert fast_grads.keys() == full_grads.keys() and fast_grads
    for name, grad in full_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, msg=name)


def test_logits_at_labels_is_ignored_without_labels():
    tester = MintModelTester("whisper", "llama")
    config, inputs, _ = tester.prepare_config_and_inputs()
    model = make(config)
    torch.testing.assert_close(model(**inputs, logits_at_labels=True).logits, model(**inputs).logits)


BENCHMARKS = ["latency", "batching", "training", "feature_cache", "memory", "flops", "profile"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_quick(name, tiny_model_dir, tmp_path):
    module = importlib.import_module(f"mint.bench.{name}")
    paths = module.main(["--model", str(tiny_model_dir), "--quick", "--threads", "1", "--out", str(tmp_path)])
    for kind in ("md", "json", "png"):
        assert (tmp_path / f"{name}.{kind}").stat().st_size > 0, kind
    assert paths["md"].endswith(f"{name}.md")
    assert json.loads((tmp_path / f"{name}.json").read_text())["machine"]["torch_threads"] == 1


def test_benchmarks_leave_the_committed_reports_alone_by_default():
    """Reports go to runs/bench/ unless `--out` names another folder (benchmarks/reports for the committed ones)."""
    from benchmarks import gpu_check
    from benchmarks.common import parser

    assert parser("x").parse_args([]).out == str(ROOT / "runs" / "bench") == str(gpu_check.OUT)
    assert parser("x").parse_args(["--out", "benchmarks/reports"]).out == "benchmarks/reports"


def test_mint_bench_command(tiny_model_dir, tmp_path):
    from mint.cli import main

    assert main(["bench", "flops", "--model", str(tiny_model_dir), "--quick", "--threads", "1",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "flops.md").is_file()
    with pytest.raises(SystemExit, match="unknown benchmark"):
        main(["bench", "nope"])


def test_training_benchmark_swaps_in_an_encoder_of_another_shape(tiny_model_dir):
    """`--encoder-shape`: a random encoder of another width in the audio tower, the Bridge-Net's cross-attention
    resized to it, every other weight kept, and the frames still flow to the queries."""
    from mint.bench.training import with_encoder_shape
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    model = MintForConditionalGeneration.from_pretrained(tiny_model_dir)
    shape = {"d_model": 48, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64}
    twin = with_encoder_shape(model, shape)
    assert twin.model.audio_tower.config.d_model == 48 and len(twin.model.audio_tower.layers) == 1
    assert twin.config.bridge_config.encoder_hidden_size == 48
    assert not any(p.requires_grad for p in twin.model.audio_tower.parameters())
    kept = [k for k in model.state_dict() if "audio_tower" not in k and "crossattention" not in k]
    assert kept and all(torch.equal(twin.state_dict()[k], model.state_dict()[k]) for k in kept)
    processor = MintProcessor.from_pretrained(tiny_model_dir)
    audio = processor.prepare_audio([np.zeros(16000, dtype=np.float32)])
    with torch.no_grad():
        tokens = twin.model.get_audio_features(torch.from_numpy(audio["input_features"]),
                                               torch.from_numpy(audio["feature_attention_mask"])).pooler_output
    assert tokens.shape[-1] == model.config.text_config.hidden_size and torch.isfinite(tokens).all()


@pytest.mark.parametrize("name, expected", [("bfloat16", torch.bfloat16), ("float32", torch.float32),
                                            ("auto", None)])
def test_audio_tower_dtype_survives_loading_and_keeps_the_answer_close(tiny_model_dir, name, expected):
    """`audio_tower_dtype` puts the frozen encoder in its dtype after `from_pretrained` (which replaces the
    parameters); the rest stays float32, and the first token's logits move little."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from modeling_mint.modeling_mint import native_bf16_cpu

    expected = expected or (torch.bfloat16 if native_bf16_cpu() else torch.float32)
    reference = MintForConditionalGeneration.from_pretrained(tiny_model_dir).eval()
    model = MintForConditionalGeneration.from_pretrained(tiny_model_dir, audio_tower_dtype=name).eval()
    assert model.config.audio_tower_dtype == name
    assert {p.dtype for p in model.model.audio_tower.parameters()} == {expected}
    assert {p.dtype for n, p in model.named_parameters() if "audio_tower" not in n} == {torch.float32}
    processor = MintProcessor.from_pretrained(tiny_model_dir)
    inputs = processor(text=f"{processor.audio_token} Describe.", audio=np.sin(np.arange(32000) / 9).astype(np.float32),
                       sampling_rate=16000)
    with torch.no_grad():
        fast, slow = model(**inputs).logits[:, -1], reference(**inputs).logits[:, -1]
    assert fast.dtype == torch.float32 and torch.isfinite(fast).all()
    torch.testing.assert_close(fast, slow, atol=0.1, rtol=0.05)


def test_audio_tower_dtype_unset_keeps_the_loading_dtype(tiny_model_dir):
    from modeling_mint import MintForConditionalGeneration

    model = MintForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_memory_peak_is_the_childs_own_not_its_parents():
    """The memory benchmark measures each case in a child process; a parent that has touched 1.5 GB must not lift
    the child's reported peak (`ru_maxrss` carries it across fork and exec, `VmHWM` does not)."""
    import subprocess
    import sys

    block = np.ones(1_500_000_000, dtype=np.uint8)  # touched pages: resident in this process
    code = "import mint.bench.memory as m; print(m._peak_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(ROOT)).stdout
    assert block[-1] == 1 and float(out.split()[-1]) < 1000


def test_other_cpu_busy_sees_another_process_spinning():
    import os
    import subprocess
    import sys

    from mint.bench.common import other_cpu_busy

    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        busy = other_cpu_busy(1.0)
    finally:
        spinner.wait()
    assert busy is not None and 0.6 / os.cpu_count() <= busy <= 1.0
