"""Pieces every stage script shares: recipes from YAML, the feature cache for a model, trainable weights."""

import hashlib
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import HfArgumentParser, TrainerCallback

from mint.hub.assemble import TRAINABLE_PREFIXES, save_folder, trained_state
from mint.hub.components import cache_dir
from mint.training.features import FrozenFeatureCache


def parse_recipe(recipe_class, args_class, argv: list[str] | None = None):
    """`--recipe FILE.yaml` gives defaults; any other `--key value` on the command line overrides them."""
    import yaml

    argv = list(sys.argv[1:] if argv is None else argv)
    values = []
    if "--recipe" in argv:
        i = argv.index("--recipe")
        data = yaml.safe_load(Path(argv[i + 1]).read_text()) or {}
        del argv[i : i + 2]
        for key, value in data.items():
            if isinstance(value, bool):
                values += [f"--{key}", str(value).lower()]
            elif isinstance(value, list):
                if value:  # an empty list is the field's default
                    values += [f"--{key}", *map(str, value)]
            elif value is not None:
                values += [f"--{key}", str(value)]
    return HfArgumentParser((recipe_class, args_class)).parse_args_into_dataclasses(args=values + argv)


def encoder_id(model) -> str:
    """Names the frozen audio tower by its weights, so cached frames never outlive a change of encoder."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.model.audio_tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return f"{model.config.audio_config.model_type}-{digest.hexdigest()[:16]}"


def feature_cache(model, processor, root: str | None = None) -> FrozenFeatureCache:
    return FrozenFeatureCache(Path(root) if root else cache_dir() / "features", model.model.audio_tower,
                              processor.feature_extractor, encoder_id(model))


def frames_dataset(rows: list[dict], cache: FrozenFeatureCache):
    """Corpus rows as a `datasets.Dataset` whose audio is replaced by the path of its cached encoder frames (the
    collator loads them), so every trainer, TRL's included, sees a plain dataset. `length` (frames) lets
    `group_by_length` batch clips of similar length: padding every batch to its longest clip is most of the cost."""
    from datasets import Dataset

    index = cache.index([r["audio"] for r in rows])
    return Dataset.from_list([{**{k: v for k, v in r.items() if k != "audio"}, "frames_path": str(e["path"]),
                               "length": e["frames"]} for r, e in zip(rows, index)])


def save_trainable(model, path: str | Path):
    """The queries, Bridge-Net and projection only (what a trained MINT ships)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        save_file(trained_state(model), str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no partial file


def load_stage1_bridge(model, checkpoint: str | Path):
    """Queries and Bridge-Net from stage 1 (its `bridge.safetensors`, a checkpoint folder or a weights file; the
    key names are shared) into a generation model."""
    from safetensors.torch import load_file

    path = Path(checkpoint)
    if path.is_dir():
        path = path / "bridge.safetensors" if (path / "bridge.safetensors").is_file() else path / "model.safetensors"
    state = load_file(str(path))
    state = {k: v for k, v in state.items() if k.startswith(TRAINABLE_PREFIXES)}
    if not state:
        raise ValueError(f"{checkpoint}: no Bridge-Net weights found")
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{checkpoint}: unexpected keys {result.unexpected_keys[:5]}")
    return sorted({k.split(".")[1] for k in state})


class StopAfterSteps(TrainerCallback):
    """Ends training (with a checkpoint) after `steps` optimizer steps; the schedule stays the one of `max_steps`."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
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


def run_training(trainer):
    """`trainer.train()`, resuming from `--resume_from_checkpoint` (checked whole first); a checkpoint whose save
    fails is removed, so no partial one is left for a later resume."""
    resume = trainer.args.resume_from_checkpoint
    if resume and Path(resume).is_dir():  # a missing folder gets the Trainer's own error
        complete_checkpoint(resume)
    save = trainer._save_checkpoint

    def save_or_remove(model, trial=None):
        folder = Path(trainer.args.output_dir) / f"checkpoint-{trainer.state.global_step}"
        try:
            save(model, trial)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    trainer._save_checkpoint = save_or_remove
    return trainer.train(resume_from_checkpoint=resume)


def global_batch(args) -> int:
    return args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps


def train_and_report(trainer, recipe, report_name: str, trained_model=None, **extra) -> dict:
    """Train (resuming if asked), evaluate, and on rank 0 write the trainable weights and a JSON report; every rank
    waits for the others before returning, so none leaves while another is still communicating. The output folder
    is also a whole model (LoRA merged), loadable with `from_pretrained`, the pipeline and `mint eval --model`."""
    import json
    import time
    from dataclasses import asdict

    args = trainer.args
    if getattr(recipe, "stop_after_steps", None):
        trainer.add_callback(StopAfterSteps(recipe.stop_after_steps))
    start = time.time()
    run_training(trainer)
    report = {"recipe": asdict(recipe), "train_seconds": time.time() - start, "steps": trainer.state.global_step,
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
        from modeling_mint import MintProcessor

        save_folder(model, MintProcessor.from_pretrained(recipe.model_dir), out)
        (out / report_name).write_text(json.dumps(report, indent=2, default=str))
    trainer.accelerator.wait_for_everyone()
    return report


def freeze_bridge_word_embeddings(model):
    """Keep the bridge's word embeddings (BERT's, 30k x H) as initialized: they are a third of the Bridge-Net, and
    leaving them frozen keeps the shipped weights small. (A pooled connector has no bridge.)"""
    if getattr(model.model, "bridge", None) is not None:
        model.model.bridge.embeddings.word_embeddings.requires_grad_(False)
