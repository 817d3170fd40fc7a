"""Stage scripts run end to end on the tiny random model and a small corpus: a few steps each, the expected files,
and resuming from a checkpoint continues the same loss curve."""

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mint.cli import main
from mint.training.corpus import QUICK_SOURCES, build

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out, _ = build(tmp_path_factory.mktemp("corpus") / "corpus", max_per_source=8, sources=QUICK_SOURCES)
    return out


def recipe(tmp_path, name, **fields):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(fields))
    return str(path)


def common(model_dir, corpus, out, cache, **extra):
    settings = dict(model_dir=str(model_dir), data_dir=str(corpus), output_dir=str(out), feature_cache_dir=str(cache),
                    per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, report_to="none",
                    use_cpu=True, seed=0, max_eval_clips=8)
    settings.update(extra)
    return settings


def test_stage1_then_stage2_then_instruct(tiny_model_dir, small_corpus, tmp_path):
    cache = tmp_path / "features"
    stage1 = tmp_path / "stage1"
    settings = common(tiny_model_dir, small_corpus, stage1, cache, max_steps=3, save_strategy="no",
                      train_sampling_strategy="group_by_length")
    settings.pop("max_eval_clips")
    main(["train", "stage1", "--config", recipe(tmp_path, "s1", **settings)])
    report = json.loads((stage1 / "stage1_report.json").read_text())
    assert report["steps"] == 3 and "audio_to_text/R@1" in report["test_after"]
    assert (stage1 / "retrieval" / "config.json").is_file() and (stage1 / "bridge.safetensors").is_file()
    stage2 = tmp_path / "stage2"
    main(["train", "stage2", "--config", recipe(tmp_path, "s2", **common(
        tiny_model_dir, small_corpus, stage2, cache, max_steps=3, save_strategy="no",
        stage1_checkpoint=str(stage1)))])
    report = json.loads((stage2 / "stage2_report.json").read_text())
    assert report["steps"] == 3 and (stage2 / "bridge.safetensors").is_file()
    assert report["eval"]["eval_loss"] > 0
    assert any(p.suffix == ".pt" for p in cache.rglob("*"))  # frames were cached once
    for lora in (0, 4):
        out = tmp_path / f"instruct-lora{lora}"
        main(["train", "instruct", "--config", recipe(tmp_path, f"it{lora}", **common(
            tiny_model_dir, small_corpus, out, cache, max_steps=2, save_strategy="no", bf16=False,
            stage2_weights=str(stage2 / "bridge.safetensors"), lora_rank=lora))])
        report = json.loads((out / "instruct_report.json").read_text())
        assert report["steps"] == 2 and (out / "bridge.safetensors").is_file()
        shipped = load_file(str(out / "bridge.safetensors"))
        assert "model.language_projection.weight" in shipped and "model.query_tokens.weight" in shipped
        assert "model.bridge.embeddings.word_embeddings.weight" not in shipped  # frozen, rebuilt at assembly
        assert (out / "llm_adapter").is_dir() == bool(lora)
    check_llm_adapter_ships_and_merges(tmp_path, settings, tmp_path / "instruct-lora4")
    check_heads_refit_and_shipping(tmp_path, settings, stage1, tmp_path / "instruct-lora0" / "bridge.safetensors")


def check_llm_adapter_ships_and_merges(tmp_path, settings, run):
    """The LoRA matrices of the LLM ship beside the bridge (fp16) and assembly merges them: W + (alpha / r) B A."""
    import torch

    from mint.hub.assemble import merge_llm_adapter, ship_weights
    from mint.hub.weights import load_trained_bridge
    from modeling_mint import MintForConditionalGeneration

    lora = load_file(str(run / "llm_adapter" / "adapter_model.safetensors"))
    assert lora and all(".language_model." in k and ".lora_" in k for k in lora)  # no bridge copies
    shipped = tmp_path / "lora-shipped"
    with pytest.raises(ValueError, match="no place for an LLM adapter"):
        ship_weights(run / "bridge.safetensors", None, shipped / "bridge.safetensors", run / "llm_adapter", None)
    assert not shipped.exists() or not any(shipped.iterdir())  # refused before anything was written
    report = ship_weights(run / "bridge.safetensors", None, shipped / "bridge.safetensors", run / "llm_adapter",
                          shipped / "llm_adapter")
    assert report["tensors"] == len(load_file(str(shipped / "bridge.safetensors"))) + len(lora)
    half = load_file(str(shipped / "llm_adapter" / "adapter_model.safetensors"))
    assert {v.dtype for v in half.values()} == {torch.float16}
    model = MintForConditionalGeneration.from_pretrained(settings["model_dir"])
    load_trained_bridge(model, shipped / "bridge.safetensors")
    key = next(k for k in half if k.endswith("q_proj.lora_A.weight"))
    name = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
    before = model.get_submodule(name).weight.detach().clone()
    config = json.loads((shipped / "llm_adapter" / "adapter_config.json").read_text())
    delta = half[key.replace("lora_A", "lora_B")].float() @ half[key].float() * config["lora_alpha"] / config["r"]
    assert delta.abs().max() > 0  # two steps moved B off its zero start
    merged = merge_llm_adapter(model, shipped / "llm_adapter")
    assert type(merged) is MintForConditionalGeneration
    torch.testing.assert_close(merged.get_submodule(name).weight, before + delta, rtol=1e-4, atol=1e-5)
    ship_weights(run / "bridge.safetensors", None, shipped / "bridge.safetensors", None, shipped / "llm_adapter")
    assert not (shipped / "llm_adapter").exists()  # a bridge without LoRA never meets an old adapter


def check_heads_refit_and_shipping(tmp_path, settings, stage1, bridge):
    """Stage-1 heads refit on a frozen, later-stage bridge; the bridge and heads then ship as one fp16 file."""
    import torch

    from mint.hub.assemble import MAX_SHIPPED_BYTES, ship_weights
    from mint.hub.weights import load_trained_bridge
    from modeling_mint import MintForConditionalGeneration

    heads = tmp_path / "heads"
    main(["train", "stage1", "--config", recipe(tmp_path, "heads", **{
        **settings, "output_dir": str(heads), "bridge_weights": str(bridge), "train_heads_only": True,
        "heads_weights": str(stage1 / "retrieval" / "model.safetensors")})])
    fitted, trained = load_file(str(heads / "retrieval" / "model.safetensors")), load_file(str(bridge))
    before = load_file(str(stage1 / "heads.safetensors"))
    assert all(torch.equal(fitted[k], v) for k, v in trained.items() if k.startswith("model.bridge."))
    assert not torch.equal(fitted["audio_projection.weight"], before["audio_projection.weight"])
    report = ship_weights(bridge, heads / "heads.safetensors", tmp_path / "shipped.safetensors")
    shipped = load_file(str(tmp_path / "shipped.safetensors"))
    assert report["bytes"] < MAX_SHIPPED_BYTES and {v.dtype for v in shipped.values()} == {torch.float16}
    assert "temperature" in shipped and "model.language_projection.weight" in shipped
    model = MintForConditionalGeneration.from_pretrained(settings["model_dir"])
    returned = load_trained_bridge(model, tmp_path / "shipped.safetensors")
    assert set(returned) == {k for k in shipped if not k.startswith("model.")}
    assert torch.equal(model.model.language_projection.weight.half(), shipped["model.language_projection.weight"])


def test_resume_continues_the_same_loss_curve(tiny_model_dir, small_corpus, tmp_path):
    cache = tmp_path / "features"

    def losses(out):
        log = json.loads((out / "stage2_report.json").read_text())["log"]
        return [round(e["loss"], 5) for e in log if "loss" in e]

    full = tmp_path / "full"
    main(["train", "stage2", "--config", recipe(tmp_path, "full", **common(
        tiny_model_dir, small_corpus, full, cache, max_steps=4, save_strategy="no"))])
    part = tmp_path / "part"
    settings = common(tiny_model_dir, small_corpus, part, cache, max_steps=4, save_strategy="steps", save_steps=2)
    main(["train", "stage2", "--config", recipe(tmp_path, "part", **settings), "--max_steps", "4"])
    checkpoint = part / "checkpoint-2"
    assert checkpoint.is_dir()
    resumed = tmp_path / "resumed"
    settings.update(output_dir=str(resumed), resume_from_checkpoint=str(checkpoint))
    main(["train", "stage2", "--config", recipe(tmp_path, "resumed", **settings)])
    assert losses(resumed)[-2:] == losses(full)[-2:]


def test_stop_after_minutes_ends_on_the_clock_with_a_checkpoint(tiny_model_dir, small_corpus, tmp_path):
    """Runs compared at the same CPU time stop on the clock; the callback reads an injected clock here."""
    from transformers import TrainerControl, TrainerState

    from mint.training.common import StopAfterMinutes

    now = [0.0]
    stop, state = StopAfterMinutes(2, clock=lambda: now[0]), TrainerState()
    stop.on_train_begin(None, state, TrainerControl())
    for seconds, stops in ((60.0, False), (119.9, False), (120.0, True)):
        now[0], control = seconds, TrainerControl()
        stop.on_step_end(None, state, control)
        assert (control.should_training_stop, control.should_save) == (stops, stops)
    with pytest.raises(ValueError, match="stop_after_minutes must be positive"):
        StopAfterMinutes(0)

    out = tmp_path / "timed"  # a budget shorter than any step: one step, then a checkpoint and the report
    main(["train", "stage2", "--config", recipe(tmp_path, "timed", **common(
        tiny_model_dir, small_corpus, out, tmp_path / "features", max_steps=50, stop_after_minutes=1e-6,
        save_strategy="no"))])
    assert json.loads((out / "stage2_report.json").read_text())["steps"] == 1
    assert (out / "checkpoint-1" / "trainer_state.json").is_file()
    recorded = json.loads((out / "checkpoint-1" / "train_seconds.json").read_text())["train_seconds"]
    assert 0 < recorded <= json.loads((out / "stage2_report.json").read_text())["train_seconds"]


def test_train_seconds_count_on_from_the_checkpoint_a_run_resumes(tmp_path):
    """A resumed run's report counts the chunks before it: each checkpoint records the seconds trained up to it, and
    a run resumed from one counts on from them (an older checkpoint without the record, from zero)."""
    from types import SimpleNamespace

    from transformers import TrainerControl, TrainerState

    from mint.training.common import TrainSeconds

    now = [100.0]
    first = TrainSeconds(None, clock=lambda: now[0])
    now[0] = 160.0
    (tmp_path / "checkpoint-4").mkdir()
    first.on_save(SimpleNamespace(output_dir=str(tmp_path)), TrainerState(global_step=4), TrainerControl())
    assert json.loads((tmp_path / "checkpoint-4" / "train_seconds.json").read_text()) == {"train_seconds": 60.0}
    resumed = TrainSeconds(tmp_path / "checkpoint-4", clock=lambda: now[0])
    now[0] = 190.0
    assert resumed.seconds() == 90.0
    assert TrainSeconds(tmp_path / "older", clock=lambda: now[0]).seconds() == 0.0


def test_stage2_head_on_targets_only_trains_the_same(tiny_model_dir, small_corpus, tmp_path):
    """The recipe's `logits_at_labels` (on by default) changes the cost of a step, not what is learned."""
    cache, runs = tmp_path / "features", {}
    for flag in (True, False):
        out = tmp_path / f"at_labels_{flag}"
        main(["train", "stage2", "--config", recipe(tmp_path, f"at_labels_{flag}", **common(
            tiny_model_dir, small_corpus, out, cache, max_steps=3, save_strategy="no", logits_at_labels=flag))])
        report = json.loads((out / "stage2_report.json").read_text())
        runs[flag] = ([e["loss"] for e in report["log"] if "loss" in e], report["eval"]["eval_loss"],
                      load_file(str(out / "bridge.safetensors")))
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-4) and len(runs[True][0]) == 3
    assert runs[True][1] == pytest.approx(runs[False][1], rel=1e-4)
    for name, weight in runs[False][2].items():
        torch.testing.assert_close(runs[True][2][name].float(), weight.float(), atol=2e-3, rtol=1e-2, msg=name)


@pytest.mark.parametrize("stage, report", [
    ("stage1", "stage1_report.json"), ("stage2", "stage2_report.json"), ("instruct", "instruct_report.json")])
def test_two_process_run(tiny_model_dir, small_corpus, tmp_path, stage, report):
    """`accelerate launch` with the shipped 2-process CPU config (DDP over gloo) trains a few steps."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import ROOT
    from tests.conftest import free_port

    out = tmp_path / "out"
    settings = common(tiny_model_dir, small_corpus, out, tmp_path / "features", max_steps=2, save_strategy="no",
                      per_device_train_batch_size=2)
    if stage == "instruct":
        settings["bf16"] = False
    if stage == "stage1":
        settings.pop("max_eval_clips")
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(accelerate), "launch", "--config_file", str(ROOT / "training/accelerate/cpu_ddp.yaml"),
                           "--main_process_port", str(free_port()),
                           "-m", "mint.cli", "train", stage, "--config", recipe(tmp_path, stage, **settings)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    errors = [line for line in proc.stderr.splitlines() if "Error" in line or "Traceback" in line]
    assert proc.returncode == 0, "\n".join(errors[:40]) + proc.stderr[-2000:]
    result = json.loads((out / report).read_text())
    assert result["world_size"] == 2 and result["steps"] == 2


def test_soft_prompt_ctc_loss_rewards_tokens_that_spell_the_transcript():
    import torch

    from mint.training.pretrain_generative import soft_prompt_ctc_loss

    torch.manual_seed(0)
    embeddings = torch.randn(50, 16)
    blank = torch.randn(16)
    targets = [torch.tensor([3, 7, 7, 9]), torch.tensor([11])]
    spelled = torch.stack([embeddings[3], blank, embeddings[7], blank, embeddings[7], embeddings[9]]) * 4
    short = torch.stack([embeddings[11], blank, blank]) * 4
    counts = [6, 3]
    good = soft_prompt_ctc_loss(torch.cat([spelled, short]), counts, embeddings, blank, targets)
    shuffled = soft_prompt_ctc_loss(torch.cat([spelled.flip(0), short]), counts, embeddings, blank, targets)
    noise = torch.randn(9, 16, requires_grad=True)
    loss = soft_prompt_ctc_loss(noise, counts, embeddings, blank, targets)
    loss.backward()
    assert good < 0.1 < shuffled and loss > good and noise.grad.abs().sum() > 0
    # a transcript longer than its audio tokens can spell is dropped, not infinite
    assert torch.isfinite(soft_prompt_ctc_loss(short, [3], embeddings, blank, [torch.arange(10)]))


def windowed_copy(model_dir, out, window_frames: int = 5):
    """The tiny random model with a windowed Bridge-Net (4 queries per `window_frames` encoder frames)."""
    import shutil

    shutil.copytree(model_dir, out)
    for name in ("config.json", "processor_config.json"):
        config = json.loads((out / name).read_text())
        config["bridge_window_frames"] = window_frames
        (out / name).write_text(json.dumps(config))
    return out


def test_stage2_with_ctc_warm_up_and_auxiliary_loss(tiny_model_dir, small_corpus, tmp_path):
    cache = tmp_path / "features"
    tiny_model_dir = windowed_copy(tiny_model_dir, tmp_path / "windowed")
    clips = []
    warm_up = tmp_path / "warmup" / "checkpoint-2"
    for name, lm_weight in (("warmup", 0.0), ("joint", 1.0)):
        out = tmp_path / name
        main(["train", "stage2", "--config", recipe(tmp_path, name, **common(
            tiny_model_dir, small_corpus, out, cache, save_strategy="no" if lm_weight else "steps", save_steps=2,
            tasks=["transcription"], lm_weight=lm_weight, ctc_weight=0.5, prediction_loss_only=True,
            eval_strategy="steps", eval_steps=2, speed_perturbation=[0.9, 1.1] if lm_weight else [],
            max_steps=4 if lm_weight else 2, stop_after_steps=2 if lm_weight else None,
            stage1_checkpoint=str(warm_up) if lm_weight else None))])
        report = json.loads((out / "stage2_report.json").read_text())
        clips.append(report["clips"]["train"])
        logged = [e for e in report["log"] if "loss" in e]
        assert report["steps"] == 2 and all(e["ctc_loss"] > 0 for e in logged), logged  # stopped at 2 of 4
        assert all(("lm_loss" in e) == bool(lm_weight) for e in logged) and report["eval"]["eval_loss"] > 0
        assert "model.language_projection.weight" in load_file(str(out / "bridge.safetensors"))
    assert clips[1] == 3 * clips[0]  # two speed-perturbed copies of every training clip
    check_ctc_parameters_carry_over_and_probe(tiny_model_dir, small_corpus, cache, warm_up)


def check_ctc_parameters_carry_over_and_probe(model_dir, corpus, cache, checkpoint):
    """Stage 2 starts from a warm-up checkpoint's CTC blank and scale, and the probe spells with them."""
    import math

    import torch
    from torch import nn

    from modeling_mint import MintForConditionalGeneration
    from mint.training import ctc_probe
    from mint.training.pretrain_generative import load_ctc_parameters

    saved = load_file(str(checkpoint / "model.safetensors"))
    model = MintForConditionalGeneration.from_pretrained(model_dir)
    model.ctc_blank = nn.Parameter(torch.zeros(model.config.text_config.hidden_size))
    model.ctc_log_scale = nn.Parameter(torch.tensor(1.5))
    load_ctc_parameters(model, str(checkpoint))
    assert saved["ctc_blank"].abs().sum() > 0  # two steps moved it off zero
    assert torch.equal(model.ctc_blank.data, saved["ctc_blank"]) and torch.equal(model.ctc_log_scale.data, saved["ctc_log_scale"])
    result = ctc_probe.main(["--model", str(model_dir), "--checkpoint", str(checkpoint), "--data", str(corpus),
                             "--split", "train", "--sources", "--feature-cache", str(cache)])
    assert result["clips"] > 0 and math.isfinite(result["wer"]) and result["wer"] >= 0
    assert result["wer_by_source"] and all(math.isfinite(w) for w in result["wer_by_source"].values())
    assert len(result["examples"]) == result["clips"] and all(e["clip_id"] for e in result["examples"])
    errors = result["errors"]
    assert set(errors) == {"substitutions", "deletions", "insertions"} and result["reference_words"] > 0
    assert result["wer"] == pytest.approx(sum(errors.values()) / result["reference_words"])
    with pytest.raises(ValueError, match="no CTC blank"):
        ctc_probe.main(["--model", str(model_dir), "--checkpoint", str(model_dir), "--data", str(corpus)])


def pooled_copy(model_dir, out):
    """The tiny model with the dense-projector connector (one token per 4 frames) instead of the bridge."""
    shutil.copytree(model_dir, out)
    for name, fields in (("config.json", {"connector_type": "pooled", "retrieval_heads": False}),
                         ("processor_config.json", {})):
        config = json.loads((out / name).read_text())
        config.update(fields, num_query_tokens=1, bridge_window_frames=4)
        (out / name).write_text(json.dumps(config))
    return out


def test_compare_evaluates_peers_on_the_same_clips(tiny_model_dir, small_corpus, tmp_path):
    from mint.training import compare

    pooled = pooled_copy(tiny_model_dir, tmp_path / "pooled-model")
    out = tmp_path / "compare"
    data = compare.main(["--model", f"bridge={tiny_model_dir}", "--model", f"dense projector={pooled}",
                         "--data", str(small_corpus), "--split", "train", "--tasks", "transcription", "captioning",
                         "--max-per-task", "3", "--out", str(out)])
    clips = [[json.loads(line)["clip_id"] for line in open(out / name / "predictions.jsonl")]
             for name in ("bridge", "dense_projector")]
    assert clips[0] == clips[1] and clips[0]
    assert set(data["transcription WER, all English"]) == {"bridge", "dense projector"}
    text = (out / "comparison.md").read_text()
    assert "| | bridge | dense projector |" in text and "audio tokens in the LLM prompt per 10 s | 4 | 125 |" in text
    assert json.loads((out / "comparison.json").read_text())["tokens_per_10s"] == {"bridge": 4, "dense projector": 125}


def test_compare_held_out_slices_use_the_same_clips_for_every_model(tiny_model_dir, small_corpus, tmp_path,
                                                                    monkeypatch):
    from mint.training import compare

    monkeypatch.setattr(compare, "HELD_OUT_SLICES", {  # slices the small corpus's test split holds
        "Asterisk prompts": (["transcription"], ["asterisk"]),
        "sounds (held-out pack)": (["classification"], ["freedesktop"])})
    from mint.hub.assemble import export_retrieval
    from modeling_mint import MintConfig, MintForAudioTextRetrieval, MintProcessor

    retrieval = export_retrieval(MintForAudioTextRetrieval(MintConfig.from_pretrained(tiny_model_dir)),
                                 MintProcessor.from_pretrained(tiny_model_dir), tmp_path / "retrieval")
    out = tmp_path / "held_out"
    data = compare.main(["--held-out", "--model", f"first={tiny_model_dir}", "--model", f"second={tiny_model_dir}",
                         "--retrieval", f"first={retrieval}",
                         "--data", str(small_corpus), "--max-per-task", "2", "--out", str(out)])
    rows = [[json.loads(line) for line in open(out / "Asterisk_prompts" / name / "predictions.jsonl")]
            for name in ("first", "second")]
    clips = [[r["clip_id"] for r in model_rows if "system" not in r] for model_rows in rows]  # Whisper's beside
    assert clips[0] == clips[1] and clips[0]
    wer = data["Asterisk prompts/transcription WER"]
    assert set(wer) == {"first", "second", "whisper"} and wer["first"] == wer["second"]  # the same weights
    text = (out / "held_out.md").read_text()
    assert "| slice | metric | first | second | Whisper tiny.en decoder |" in text
    assert "| sounds (held-out pack) (1 clips) | label accuracy |" in text and "| label chance |" in text
    recall = data["Asterisk prompts/audio -> text R@1 (embeddings)"]  # only the model with a retrieval folder
    assert 0 <= recall["first"] <= 1 and recall["second"] is None
    chance = data["Asterisk prompts/audio -> text R@1 chance"]["first"]
    assert "| Asterisk prompts (1 clips) | audio -> text R@1 (embeddings) | " in text and 0 < chance <= 1


def test_pooled_baseline_trains_with_the_same_scripts(tiny_model_dir, small_corpus, tmp_path):
    """The dense-projector baseline goes through stage 2 and instruction tuning (LoRA) unchanged; what it ships is
    its projector."""
    cache = tmp_path / "features"
    pooled = pooled_copy(tiny_model_dir, tmp_path / "pooled-model")
    stage2, instruct = tmp_path / "stage2", tmp_path / "instruct"
    main(["train", "stage2", "--config", recipe(tmp_path, "s2", **common(
        pooled, small_corpus, stage2, cache, max_steps=2, save_strategy="no"))])
    main(["train", "instruct", "--config", recipe(tmp_path, "it", **common(
        pooled, small_corpus, instruct, cache, max_steps=2, save_strategy="no", bf16=False, lora_rank=4,
        instruction_in_bridge=False, stage2_weights=str(stage2 / "bridge.safetensors")))])
    for run in (stage2, instruct):
        shipped = load_file(str(run / "bridge.safetensors"))
        assert shipped and all(k.startswith("model.multi_modal_projector.") for k in shipped), list(shipped)
    assert (instruct / "llm_adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("native", [True, False])
def test_bf16_recipes_train_in_float32_on_cpus_without_native_bf16(native, monkeypatch, tmp_path, capsys):
    from transformers import TrainingArguments
    from trl import SFTConfig

    from modeling_mint import modeling_mint
    from mint.training.common import cpu_precision

    monkeypatch.setattr(modeling_mint, "native_bf16_cpu", lambda: native)
    for kind in (TrainingArguments, SFTConfig):
        args = cpu_precision(kind(output_dir=str(tmp_path), use_cpu=True, bf16=True, learning_rate=3e-4))
        assert isinstance(args, kind) and args.learning_rate == 3e-4
        assert args.bf16 is native and args.mixed_precision == ("bf16" if native else "no")
    assert ("no native bf16" in capsys.readouterr().out) is not native


def test_speed_perturbation_changes_tempo(wav_file):
    from modeling_mint import load_audio
    from mint.training.generative import speed_perturbed

    wave = load_audio(str(wav_file), None, 16000)
    faster = speed_perturbed(str(wav_file), 1.25)
    assert faster["sampling_rate"] == 16000 and abs(len(faster["array"]) - len(wave) / 1.25) <= 2
    with pytest.raises(ValueError, match="positive"):
        speed_perturbed(str(wav_file), 0)


def test_eval_writes_every_task_metric(tiny_model_dir, small_corpus, tmp_path):
    from mint.training.evaluate import evaluate

    from mint.training.data import corpus_rows

    from mint.hub.assemble import export_retrieval
    from modeling_mint import MintConfig, MintForAudioTextRetrieval, MintProcessor

    retrieval = export_retrieval(MintForAudioTextRetrieval(MintConfig.from_pretrained(tiny_model_dir)),
                                 MintProcessor.from_pretrained(tiny_model_dir), tmp_path / "retrieval")
    tasks = {r["task"] for r in corpus_rows(str(small_corpus), "train")}
    metrics = evaluate(str(tiny_model_dir), str(small_corpus), "train", str(tmp_path / "eval"), max_new_tokens=4,
                       max_per_task=3, retrieval_dir=str(retrieval))
    assert 0 <= metrics["embeddings"]["retrieval"]["audio_to_text/R@1"] <= 1
    assert any(k.startswith("zero_shot/") for k in metrics["embeddings"])
    assert {"transcription", "spoken_word"} <= tasks <= set(metrics)
    assert 0 <= metrics["transcription"]["all"]["WER"]
    if "captioning" in tasks:
        assert "CIDEr" in metrics["captioning"]["all"] and 0 <= metrics["captioning"]["all"]["accepted"] <= 1
    assert all(0 <= v["all"]["accuracy"] <= 1 for k, v in metrics.items() if k in ("spoken_word", "letter"))
    lines = (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == sum(v["all"].get("clips", 0) for k, v in metrics.items() if isinstance(v, dict) and "all" in v)
    assert "| transcription | all | WER |" in (tmp_path / "eval" / "metrics.md").read_text()
    assert (tmp_path / "eval" / "metrics.png").stat().st_size > 0


@pytest.mark.parametrize("reference, prediction, accepted", [
    ("Three 880 Hz beeps.", "Three short 440 Hz beeps.", True),
    ("Three 880 Hz beeps.", "Two 880 Hz beeps.", False),
    ('A voice says "river", then a 1760 Hz beep.', 'A voice says "river", then a beep.', True),
    ('A voice says "river", then a 1760 Hz beep.', 'A beep, then a voice says "river".', False),
    ('A voice says "dog" over white noise.', 'A voice says "dog" over pink noise.', False),
    ("A frog.", "A frog croaking.", True),
    ("An electric kettle.", "A kettle.", False),
])
def test_caption_acceptance_rule(reference, prediction, accepted):
    from mint.training.evaluate import caption_accepted

    assert caption_accepted(reference, prediction) is accepted


def test_caption_scores_with_the_coco_toolkit():
    from mint.training.evaluate import caption_scores

    refs = {"a": ["A dog barks twice.", "A dog is barking."], "b": ["Three short beeps."]}
    same = caption_scores(refs, {"a": "A dog barks twice.", "b": "Three short beeps."})
    other = caption_scores(refs, {"a": "A cat meows.", "b": "A voice says hello."})
    assert same["ROUGE-L"] == 1.0 and same["BLEU-1"] > 0.99 and same["METEOR"] > 0.9
    assert all(other[k] < v for k, v in same.items() if isinstance(v, float)) and other["BLEU-1"] >= 0


def test_continuing_runs_keep_one_set_of_eval_clips(small_corpus):
    from mint.training.generative import GenerativeRecipe, split_rows

    recipe = GenerativeRecipe(model_dir="unused", data_dir=str(small_corpus), max_eval_clips=1, eval_clips_seed=7)
    first, second = split_rows(recipe, seed=0), split_rows(recipe, seed=5)
    assert len(first["validation"]) == 1
    assert [r["clip_id"] for r in first["validation"]] == [r["clip_id"] for r in second["validation"]]
    assert [r["clip_id"] for r in split_rows(GenerativeRecipe(model_dir="unused", data_dir=str(small_corpus),
                                                              max_eval_clips=1), seed=7)["validation"]] == \
        [r["clip_id"] for r in first["validation"]]  # without it, the run's own seed picks them


def test_evaluation_batches_keep_dataset_order_whatever_the_runs_seed(tmp_path):
    """With `group_by_length` the stock Trainer groups evaluation batches too, seeded by the run's seed, so two runs
    measured the same clips in other batches (other means of batch means, another gap); MINT's trainers evaluate in
    dataset order."""
    from torch import nn
    from transformers import Trainer, TrainingArguments

    from mint.training.common import EvaluationInOrder
    from mint.training.pretrain_generative import Stage2Trainer
    from mint.training.sft import InstructTrainer, MultiTargetSFTTrainer

    clips = [{"input_ids": [0] * n} for n in (3, 40, 7, 25, 1, 60, 12, 33, 5, 18, 50, 2)]

    def order(trainer_class, seed):
        args = TrainingArguments(output_dir=str(tmp_path / f"{trainer_class.__name__}{seed}"), use_cpu=True,
                                 seed=seed, train_sampling_strategy="group_by_length", report_to="none")
        return list(trainer_class(model=nn.Linear(1, 1), args=args)._get_eval_sampler(clips))

    assert order(Trainer, 1) != order(Trainer, 2)  # the stock grouping moves with the seed
    assert order(Stage2Trainer, 1) == order(Stage2Trainer, 2) == list(range(len(clips)))
    assert issubclass(InstructTrainer, EvaluationInOrder) and issubclass(MultiTargetSFTTrainer, EvaluationInOrder)


def test_task_repeats_take_a_tasks_train_rows_more_often_and_leave_validation_alone(small_corpus):
    from collections import Counter

    from mint.training.generative import GenerativeRecipe, split_rows
    from mint.training.sft import make_parser

    plain = GenerativeRecipe(model_dir="unused", data_dir=str(small_corpus), max_eval_clips=4, eval_clips_seed=1)
    repeated = GenerativeRecipe(model_dir="unused", data_dir=str(small_corpus), max_eval_clips=4, eval_clips_seed=1,
                                task_repeats={"captioning": 3})
    before, after = split_rows(plain, seed=0), split_rows(repeated, seed=0)
    counts, more = Counter(r["task"] for r in before["train"]), Counter(r["task"] for r in after["train"])
    assert counts["captioning"] > 0 and more["captioning"] == 3 * counts["captioning"]
    assert more["transcription"] == counts["transcription"]
    assert Counter(r["clip_id"] for r in after["train"] if r["task"] == "captioning") == \
        Counter({r["clip_id"]: 3 for r in before["train"] if r["task"] == "captioning"})
    assert [r["clip_id"] for r in after["validation"]] == [r["clip_id"] for r in before["validation"]]
    # from the command line as JSON, as TrainingArguments' dict fields are
    recipe, _ = make_parser().parse_args_and_config(["--model_dir", "unused", "--output_dir", "unused",
                                                     "--use_cpu", "--task_repeats", '{"captioning": 2}'])
    assert recipe.task_repeats == {"captioning": 2}
    with pytest.raises(ValueError, match="'letter', which is not in tasks"):
        GenerativeRecipe(model_dir="unused", task_repeats={"letter": 2})
    with pytest.raises(ValueError, match="whole number >= 1"):
        GenerativeRecipe(model_dir="unused", task_repeats={"captioning": 0})


def test_training_report_from_runs(tmp_path):
    from mint.training.report import main as report

    run, evaluation, data = tmp_path / "run", tmp_path / "eval", tmp_path / "corpus" / "train"
    for folder in (run, evaluation, data):
        folder.mkdir(parents=True)
    (data / "data-00000-of-00001.arrow").write_bytes(b"rows")
    log = [{"step": 10, "loss": 5.0, "lm_loss": 4.0}, {"step": 20, "loss": 3.0}, {"step": 20, "eval_loss": 3.5},
           {"step": 20, "eval_audio_gap": 0.25}]
    (run / "stage2_report.json").write_text(json.dumps({"steps": 20, "train_seconds": 600, "batch_size": 16,
                                                         "clips": {"train": 100}, "log": log, "torch_threads": 2}))
    (tmp_path / "recipe.yaml").write_text("learning_rate: 0.001\nper_device_train_batch_size: 16\n")
    (evaluation / "metrics.json").write_text(json.dumps({"transcription": {"all": {"WER": 0.5}}}))
    (evaluation / "metrics.md").write_text("| transcription | all | WER | 0.500 |\n")
    (tmp_path / "findings.md").write_text("## Findings\nWords.\n")
    report(["--name", "mint-x", "--out", str(tmp_path / "reports"), "--data", str(tmp_path / "corpus"),
            "--stage", f"stage 2={tmp_path / 'recipe.yaml'}:{run}", "--eval", f"mint-x={evaluation}",
            "--findings", str(tmp_path / "findings.md")])
    text = (tmp_path / "reports" / "mint_x.md").read_text()
    assert "| stage 2 |" in text and "20 x 16" in text and "10.0 min" in text and "5.00 -> 3.00" in text
    assert "3.5 @ 20" in text and "## Findings" in text and "| transcription | all | WER | 0.500 |" in text
    assert "| 0.33 |" in text and "0.25 @ 20" in text  # CPU hours (600 s on 2 threads) and the audio gap
    assert (tmp_path / "reports" / "mint_x_stage_2_loss.png").stat().st_size > 1000
    assert "![audio gap over training time](mint_x_audio_gap.png)" in text

    # a later report keeps the earlier stages and test tables (their runs need not be here) and adds its own stages
    shutil.rmtree(evaluation)
    report(["--name", "mint-x", "--out", str(tmp_path / "reports"), "--data", str(tmp_path / "corpus"),
            "--previous", str(tmp_path / "reports" / "mint_x.json"), "--stage", f"stage 3={tmp_path / 'recipe.yaml'}:{run}"])
    stages = json.loads((tmp_path / "reports" / "mint_x.json").read_text())["stages"]
    assert list(stages) == ["stage 2", "stage 3"] and stages["stage 2"]["plot"] == "mint_x_stage_2_loss.png"
    text = (tmp_path / "reports" / "mint_x.md").read_text()
    assert "| stage 2 |" in text and "| stage 3 |" in text and "20 min of training in all" in text
    assert "| transcription | all | WER | 0.500 |" in text  # the earlier test table, without its eval folder
    assert (tmp_path / "reports" / "mint_x_audio_gap.png").stat().st_size > 1000


def test_ablation_runs_matched_pipelines_and_tabulates(tiny_model_dir, small_corpus, tmp_path):
    """Three of the four pipelines, two seeds: the same samples each, stages chained, shared prefixes trained once,
    mean and std per metric."""
    from mint.training import ablation

    cache = tmp_path / "features"
    base = dict(feature_cache_dir=str(cache), learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True,
                max_eval_clips=8, bf16=False)
    fields = {
        "stage1_recipe": recipe(tmp_path, "s1", **base, tasks=["captioning", "transcription"]),
        "stage2_recipe": recipe(tmp_path, "s2", **base, tasks=["captioning", "transcription"]),
        "instruct_recipe": recipe(tmp_path, "it", **base, tasks=["captioning", "transcription"]),
        "model_dir": str(tiny_model_dir), "data_dir": str(small_corpus), "out": str(tmp_path / "ablation"),
        "results": str(tmp_path / "results"), "seeds": [0, 1], "stage1_samples": 8, "stage2_samples": 8, "instruct_samples": 8, "batch_size": 4,
        "eval_tasks": ["captioning", "transcription"], "eval_clips_per_task": 4, "eval_split": "train",
    }
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump(fields))
    table = ablation.main(["--config", str(path), "--pipelines", "a", "c", "d"])
    report = lambda *parts: json.loads(tmp_path.joinpath("ablation", "seed0", *parts).read_text())["steps"]  # noqa: E731
    assert report("stage2-6", "stage2_report.json") == 6  # (a): all 24 samples on stage 2
    assert [report("stage1-2", "stage1_report.json"), report("stage1-2", "stage2-2", "stage2_report.json"),
            report("stage1-2", "stage2-2", "instruct-2-bridge", "instruct_report.json")] == [2, 2, 2]
    # (d) shares (c)'s stage 1 and stage 2 (same seed, steps and settings) and trains only its own instruct stage.
    assert sorted(p.name for p in (tmp_path / "ablation" / "seed0").iterdir()) == ["stage1-2", "stage2-6"]
    assert sorted(p.name for p in (tmp_path / "ablation" / "seed0" / "stage1-2" / "stage2-2").iterdir()
                  if p.is_dir() and p.name.startswith("instruct")) == ["instruct-2-bridge", "instruct-2-llm"]
    for pipeline in ("a", "c", "d"):
        wer = table[pipeline]["transcription WER"]
        assert len(wer["values"]) == 2 and wer["std"] >= 0 and "captioning CIDEr" in table[pipeline]
    assert "(c) stage 1 + 2 + instruct" in (tmp_path / "results" / "ablation.md").read_text()
    assert (tmp_path / "results" / "ablation.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "results").glob("*_seed*.json")) == [
        "a_seed0.json", "a_seed1.json", "c_seed0.json", "c_seed1.json", "d_seed0.json", "d_seed1.json"]
    # On another machine (no run folders), the kept metrics give the same table without training anything.
    shutil.rmtree(tmp_path / "ablation")
    assert ablation.main(["--config", str(path), "--pipelines", "a", "c", "d"]) == table
    assert not (tmp_path / "ablation").exists()
    # A run cut short: the table shows what is kept, with its seed count, and trains nothing.
    (tmp_path / "results" / "c_seed1.json").unlink()
    partial = ablation.main(["--config", str(path), "--pipelines", "a", "c", "d", "--table-only"])
    assert partial["a"]["seeds"] == 2 and partial["c"]["seeds"] == 1 and not (tmp_path / "ablation").exists()
    assert "| (c) stage 1 + 2 + instruct (instruction in Bridge-Net and LLM) | 1 |" in (
        tmp_path / "results" / "ablation.md").read_text()
    one_seed = ablation.main(["--config", str(path), "--pipelines", "a", "--seeds", "1", "--table-only"])
    assert one_seed["a"]["transcription WER"]["values"] == table["a"]["transcription WER"]["values"][1:]


def test_audio_dependence_is_zero_when_the_soft_prompt_ignores_the_audio(tiny_model_dir, small_corpus, tmp_path):
    """Own vs rolled audio: a bridge whose projection is zero hands the LLM the same soft prompt for every clip, so
    the gap is exactly 0; the random bridge's prompt depends on the clip, so its losses differ."""
    import torch
    from safetensors.torch import load_file, save_file

    from mint.training.audio_dependence import audio_dependence

    kwargs = dict(data_dir=str(small_corpus), tasks=["captioning", "transcription"], clips=6, batch_size=3,
                  split="train", feature_cache_dir=str(tmp_path / "features"))
    random = audio_dependence(str(tiny_model_dir), None, **kwargs)
    assert random["clips"] == 6 and random["tokens"] > 0
    assert random["gap"] == pytest.approx(random["rolled_audio"] - random["own_audio"])
    assert random["own_audio"] != random["rolled_audio"]
    weights = load_file(str(tiny_model_dir / "model.safetensors"))
    deaf = {k: torch.zeros_like(v) for k, v in weights.items() if k.startswith("model.language_projection.")}
    save_file(deaf, str(tmp_path / "deaf.safetensors"))
    assert audio_dependence(str(tiny_model_dir), str(tmp_path / "deaf.safetensors"), **kwargs)["gap"] == 0


def test_encoder_comparison_trains_each_recipe_on_the_clock_and_probes_the_same_clips(tiny_model_dir, small_corpus,
                                                                                      tmp_path):
    from mint.training import encoder_comparison

    model_dir = windowed_copy(tiny_model_dir, tmp_path / "windowed")
    runs = []
    for name in ("first", "second"):
        runs.append(f"{name}=" + recipe(tmp_path, name, **common(
            model_dir, small_corpus, tmp_path / name, tmp_path / "features", tasks=["transcription"], lm_weight=0.0,
            ctc_weight=1.0, max_steps=50, stop_after_minutes=1e-6, eval_strategy="steps", eval_steps=1,
            prediction_loss_only=True, save_strategy="no")))
    out = tmp_path / "report"
    argv = [*sum((["--run", r] for r in runs), []), "--probe", "prompts=asterisk", "--max-clips", "2", "--out", str(out)]
    result = encoder_comparison.main(argv)
    assert set(result) == {"first", "second"}
    for run in result.values():
        assert run["steps"] == 1 and run["command_seconds"] >= run["train_seconds"] > 0
        assert 0 < run["probe"]["prompts"]["clips"] <= 2
    assert [e["reference"] for e in result["first"]["probe"]["prompts"]["examples"]] == \
        [e["reference"] for e in result["second"]["probe"]["prompts"]["examples"]]
    report = (out / "encoder_comparison.md").read_text()
    assert "| first |" in report and "CTC-probe WER, prompts" in report and (out / "encoder_comparison.png").is_file()
    again = encoder_comparison.main(argv)  # trained runs are reused, not retrained
    assert again["first"]["command_seconds"] == result["first"]["command_seconds"]
    with pytest.raises(ValueError, match="--run wants"):
        encoder_comparison.main(["--run", "no-recipe"])


def test_probe_subset_is_per_source_and_the_same_whatever_the_row_order():
    from mint.training.ctc_probe import per_source_subset

    rows = [{"clip_id": f"{source}/{i}", "source": source} for source in ("a", "b") for i in range(5)]
    rows.append({"clip_id": "c/0", "source": "c"})
    subset = per_source_subset(rows, 2)
    assert [sum(r["source"] == s for r in subset) for s in "abc"] == [2, 2, 1]
    assert subset == per_source_subset(rows[::-1], 2)


def test_label_probe_reads_labels_the_frames_carry_and_not_ones_they_lack():
    from mint.training.label_probe import probe_labels

    generator = torch.Generator().manual_seed(0)
    centres = {label: torch.randn(8, generator=generator) * 3 for label in ("bark", "bell", "horn")}

    def clips(labels, carry=True):
        return [(centres[label] if carry else torch.zeros(8)) + torch.randn(5, 8, generator=generator)
                for label in labels]

    train_labels, test_labels = ["bark", "bell", "horn"] * 6, ["bark", "bell", "horn", "whistle"]
    heard = probe_labels(clips(train_labels), train_labels, clips(test_labels[:3]) + clips(["bark"]), test_labels)
    assert heard["linear_probe_accuracy"] == heard["nearest_neighbour_accuracy"] == 0.75  # the untrained label misses
    assert heard["labels"] == 3 and heard["chance"] == pytest.approx(1 / 3) and heard["test_labels_trained"] == 3
    blind = probe_labels(clips(train_labels), train_labels, clips(test_labels[:3] * 10), test_labels[:3] * 10,
                         features=lambda frames: torch.randn(8, generator=generator))  # reads noise, not the clip
    assert blind["linear_probe_accuracy"] < 0.6
    silent = probe_labels(clips(train_labels, carry=False), train_labels, clips(test_labels[:3] * 10, carry=False),
                          test_labels[:3] * 10)
    assert silent["linear_probe_accuracy"] < 0.6


def test_label_probe_command_scores_a_split_with_a_probe_fitted_on_train(tiny_model_dir, small_corpus, tmp_path):
    from mint.training.label_probe import main

    out = tmp_path / "probe.json"
    result = main(["--model", str(tiny_model_dir), "--data", str(small_corpus), "--split", "train",
                   "--sources", "ktuberling", "tuxpaint", "freedesktop", "--max-clips", "6",
                   "--feature-cache", str(tmp_path / "features"), "--out", str(out)])
    assert 0 < result["test_clips"] <= 6 and result["test_labels_trained"] == result["test_clips"]
    assert 0 <= result["linear_probe_accuracy"] <= 1 and result["labels"] >= 2
    assert json.loads(out.read_text())["predictions"][0].keys() == {"reference", "linear_probe"}
    bridge = main(["--model", str(tiny_model_dir), "--data", str(small_corpus), "--split", "train", "--bridge",
                   "--sources", "ktuberling", "tuxpaint", "freedesktop", "--max-clips", "6",
                   "--feature-cache", str(tmp_path / "features")])
    assert bridge["features"] == "bridge query outputs" and result["features"] == "pooled encoder frames"
    assert bridge["test_clips"] == result["test_clips"] and 0 <= bridge["linear_probe_accuracy"] <= 1
    with pytest.raises(ValueError, match="no classification rows"):
        main(["--model", str(tiny_model_dir), "--data", str(small_corpus), "--sources", "no-such-source",
              "--feature-cache", str(tmp_path / "features")])
