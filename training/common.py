"""Pieces every stage script shares: the feature cache for a model, trainable weights, the training run and its
report."""

import hashlib
import json
import shutil
import time
from pathlib import Path

import torch
import yaml
from transformers import TrainerCallback

from mint.hub.assemble import save_folder
from mint.hub.components import cache_dir
from mint.hub.weights import LABEL_PROMPT, TRAINABLE_PREFIXES, load_by_prefix, save_trainable
from mint.io import atomic_file
from mint.training.features import FrozenFeatureCache


def encoder_id(model) -> str:
    """Names the frozen audio tower by what its frames depend on: its weights, its window and the dtype it runs in,
    so cached frames never outlive a change of any."""
    tower = model.model.audio_tower
    digest = hashlib.sha256(f"window={model.config.audio_window_size} dtype={next(tower.parameters()).dtype}".encode())
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return f"{model.config.audio_config.model_type}-{digest.hexdigest()[:16]}"


def feature_cache(model, processor, root: str | None = None) -> FrozenFeatureCache:
    """The cache of `model`'s frozen encoder frames, computed as the model computes them (`encode_audio`)."""
    return FrozenFeatureCache(Path(root) if root else cache_dir() / "features", model.model, processor,
                              encoder_id(model))


def frames_dataset(rows: list[dict], cache: FrozenFeatureCache):
    """Corpus rows as a `datasets.Dataset` whose audio is replaced by the path of its cached encoder frames (the
    collator loads them), so every trainer, TRL's included, sees a plain dataset. `length` (frames) lets
    `group_by_length` batch clips of similar length: padding every batch to its longest clip is most of the cost."""
    from datasets import Dataset

    index = cache.index([r["audio"] for r in rows])
    return Dataset.from_list([{**{k: v for k, v in r.items() if k != "audio"}, "frames_path": str(e["path"]),
                               "length": e["frames"]} for r, e in zip(rows, index)])


def window_processor(model, model_dir: str | Path):
    """The processor of `model_dir`, counting audio tokens by `model`'s bridge window and label prompt, which a recipe
    may change."""
    from modeling_mint import MintProcessor

    processor = MintProcessor.from_pretrained(model_dir)
    processor.bridge_window_frames = model.config.bridge_window_frames
    processor.label_prompt_tokens = model.config.label_prompt_tokens
    return processor


def load_stage1_bridge(model, checkpoint: str | Path):
    """Queries and Bridge-Net from stage 1 (its `bridge.safetensors`, a checkpoint folder or a weights file; the
    key names are shared) into a generation model; the rest of a checkpoint is not read, a label prompt neither
    (instruction tuning adds it with its labels). Returns the parts loaded."""
    prefixes = tuple(p for p in TRAINABLE_PREFIXES if p not in LABEL_PROMPT)
    state = load_by_prefix(model, checkpoint, prefixes, "Bridge-Net weights")
    return sorted({k.split(".")[1] for k in state})


class StopAfterSteps(TrainerCallback):
    """Ends training (with a checkpoint) after `steps` optimizer steps; the schedule stays the one of `max_steps`."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_training_stop = True
            control.should_save = True


class StopAfterMinutes(TrainerCallback):
    """Ends training (with a checkpoint) once this process has trained for `minutes` of wall time, evaluations
    included: runs that compare encoders or recipes at the same CPU time stop on the clock, each keeping the
    learning-rate schedule of its `max_steps`."""

    def __init__(self, minutes: float, clock=time.monotonic):
        if minutes <= 0:
            raise ValueError(f"stop_after_minutes must be positive, got {minutes}")
        self.seconds, self.clock, self.start = minutes * 60, clock, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.clock()

    def on_step_end(self, args, state, control, **kwargs):
        if self.clock() - self.start >= self.seconds:
            control.should_training_stop = True
            control.should_save = True


def complete_checkpoint(folder: str | Path) -> Path:
    """`folder` if it is a whole checkpoint: the Trainer writes `trainer_state.json` last, so a checkpoint cut short
    (a killed run, a full disk) lacks it and is refused here rather than resumed half-loaded."""
    folder = Path(folder)
    if not (folder / "trainer_state.json").is_file():
        raise ValueError(f"{folder} is not a complete checkpoint (no trainer_state.json): its save was interrupted; "
                         "resume from an earlier checkpoint")
    return folder


class TrainSeconds(TrainerCallback):
    """A run's training time over every chunk it resumed through: each checkpoint records the seconds trained up to
    it (`train_seconds.json`) and a run resumed from one counts on from them, so a report gives the run's time, not
    its last chunk's. A checkpoint without the record (an older one) counts from zero."""

    FILE = "train_seconds.json"

    def __init__(self, resume_from=None, clock=time.monotonic):
        self.clock, self.start = clock, clock()
        record = Path(resume_from) / self.FILE if isinstance(resume_from, (str, Path)) else None
        self.earlier = json.loads(record.read_text())["train_seconds"] if record and record.is_file() else 0.0

    def seconds(self) -> float:
        return self.earlier + self.clock() - self.start

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            with atomic_file(folder / self.FILE) as tmp:
                tmp.write_text(json.dumps({"train_seconds": self.seconds()}))


def run_training(trainer):
    """`trainer.train()`, resuming from `--resume_from_checkpoint` (checked whole first). If training fails, the
    checkpoints it began and did not finish (a save cut short by a full disk) are removed, so a later resume never
    meets one. The failure is the place to do it: a callback's `on_save` only runs after a save that succeeded."""
    resume = trainer.args.resume_from_checkpoint
    if resume and Path(resume).is_dir():  # a missing folder gets the Trainer's own error
        complete_checkpoint(resume)
    out = Path(trainer.args.output_dir)
    before = set(out.glob("checkpoint-*"))
    try:
        return trainer.train(resume_from_checkpoint=resume)
    except BaseException:
        if trainer.args.should_save:  # the process that writes checkpoints
            for folder in set(out.glob("checkpoint-*")) - before:
                if not (folder / "trainer_state.json").is_file():
                    shutil.rmtree(folder, ignore_errors=True)
        raise


class EvaluationInOrder:
    """Mixed into a Trainer: evaluation batches in dataset order. With `train_sampling_strategy: group_by_length` the
    Trainer also groups the evaluation batches by length, with a generator seeded by the run's seed, so runs with
    other seeds measured the evaluation loss (a mean of batch means) and the gap (its first batches) on other
    groupings of the same clips, and their curves did not join."""

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or self.args.world_size > 1:  # several processes: accelerate shards in order
            return None
        return torch.utils.data.SequentialSampler(eval_dataset)


class LossPartsLogging:
    """Mixed into a Trainer whose loss is a sum: each part recorded while training (`record_parts`) is logged beside
    the loss as its mean over the steps since the last log."""

    def record_parts(self, **parts):
        recorded = self.__dict__.setdefault("_parts", {})
        for name, value in parts.items():
            recorded.setdefault(name, []).append(float(value))

    def log(self, logs: dict, *args, **kwargs):
        for name, values in self.__dict__.get("_parts", {}).items():
            if values and "loss" in logs:
                logs[name] = round(sum(values) / len(values), 4)
                values.clear()
        super().log(logs, *args, **kwargs)


def cpu_precision(args):
    """The training arguments, with bf16 turned off on a CPU that lacks native bf16 matrix units (AVX512-BF16 or
    AMX): there autocast emulates bf16 and a step takes several times longer than in float32. A recipe keeps
    `bf16: true` for the CPUs where it is the faster choice."""
    import dataclasses

    from modeling_mint.modeling_mint import native_bf16_cpu

    if not (args.use_cpu and args.bf16) or native_bf16_cpu():
        return args
    print("this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 autocast is several times slower than "
          "float32: training in float32")
    return dataclasses.replace(args, bf16=False)


def global_batch(args) -> int:
    return args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps


def train_and_report(trainer, recipe, report_name: str, trained_model=None, **extra) -> dict:
    """Train (resuming if asked), evaluate, and on rank 0 write the trainable weights and a JSON report; every rank
    waits for the others before returning, so none leaves while another is still communicating. The output folder
    is also a whole model (LoRA merged), loadable with `from_pretrained`, the pipeline and `mint eval --model`."""
    from dataclasses import asdict

    args = trainer.args
    if getattr(recipe, "stop_after_steps", None):
        trainer.add_callback(StopAfterSteps(recipe.stop_after_steps))
    if getattr(recipe, "stop_after_minutes", None):
        trainer.add_callback(StopAfterMinutes(recipe.stop_after_minutes))
    clock = TrainSeconds(args.resume_from_checkpoint)
    trainer.add_callback(clock)
    run_training(trainer)
    report = {"recipe": asdict(recipe), "train_seconds": clock.seconds(), "steps": trainer.state.global_step,
              "world_size": args.world_size, "batch_size": global_batch(args), "learning_rate": args.learning_rate,
              "bf16": args.bf16, "torch_threads": torch.get_num_threads(), **extra}
    if trainer.eval_dataset is not None:
        report["clips"] = {"train": len(trainer.train_dataset), "validation": len(trainer.eval_dataset)}
        report["eval"] = trainer.evaluate()
    report["log"] = trainer.state.log_history
    if trainer.is_world_process_zero():
        out = Path(args.output_dir)
        model = trained_model(trainer.model) if trained_model else trainer.model
        save_trainable(model, out / "bridge.safetensors")
        save_folder(model, window_processor(model, recipe.model_dir), out)
        (out / report_name).write_text(json.dumps(report, indent=2, default=str))
    trainer.accelerator.wait_for_everyone()
    return report


def freeze_bridge_word_embeddings(model):
    """Keep the bridge's word embeddings (BERT's, 30k x H) as initialized: they are a third of the Bridge-Net, and
    leaving them frozen keeps the shipped weights small. (A pooled connector has no bridge.)"""
    if getattr(model.model, "bridge", None) is not None:
        model.model.bridge.embeddings.word_embeddings.requires_grad_(False)


def stage_arguments(script, config: str, **fields):
    """A stage's recipe and training arguments: its YAML `config` with `fields` on top, as `--config FILE --field
    value` on the command line gives them."""
    parser = script.make_parser()
    unknown = parser.set_defaults_with_config(**{**(yaml.safe_load(Path(config).read_text()) or {}), **fields})
    if unknown:
        raise ValueError(f"{config}: {', '.join(unknown[::2])}: not fields of this stage")
    return parser.parse_args_into_dataclasses(args=[])
