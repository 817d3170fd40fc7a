"""Assemble a MINT variant into a standard Hugging Face folder (weights, config with `auto_map` and
`custom_pipelines`, processor, and the remote-code files), loadable with `trust_remote_code=True`."""

import json
import shutil
import tempfile
from pathlib import Path

import torch

import modeling_mint
from modeling_mint import MintConfig, MintForAudioTextRetrieval, MintForConditionalGeneration, MintProcessor


VARIANTS_DIR = Path(__file__).parent
CODE_DIR = Path(modeling_mint.__file__).parent


def variants() -> list[str]:
    return sorted(p.name for p in VARIANTS_DIR.iterdir() if (p / "config.json").is_file())


def variant_dir(variant: str) -> Path:
    path = VARIANTS_DIR / variant
    if not (path / "config.json").is_file():
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(variants())}")
    return path


def _write_atomically(out: str | Path, write) -> Path:
    """Run `write(tmp_dir)`, then swap the result into `out`: a half-written folder never replaces a good one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        for name in modeling_mint.REMOTE_CODE_FILES:
            shutil.copy2(CODE_DIR / name, tmp / name)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export(model: MintForConditionalGeneration, processor: MintProcessor, out: str | Path) -> Path:
    """Write the generation model and its processor to `out` as a remote-code folder."""

    def write(tmp: Path):
        model.config.auto_map = dict(modeling_mint.AUTO_MAP)
        model.config.custom_pipelines = dict(modeling_mint.CUSTOM_PIPELINES)
        model.config.architectures = ["MintForConditionalGeneration"]
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        processor_config = tmp / "processor_config.json"
        data = json.loads(processor_config.read_text())
        data["auto_map"] = {"AutoProcessor": "processing_mint.MintProcessor"}
        processor_config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    return _write_atomically(out, write)


def export_retrieval(model: MintForAudioTextRetrieval, processor: MintProcessor, out: str | Path) -> Path:
    """Write a stage-1 model as a CLAP-like folder: `AutoModel` is the retrieval model, the feature extractor is
    `preprocessor_config.json` and the root tokenizer is the bridge tokenizer, which is what transformers'
    `zero-shot-audio-classification` pipeline loads."""

    def write(tmp: Path):
        model.config.auto_map = {
            "AutoConfig": "configuration_mint.MintConfig",
            "AutoModel": "modeling_mint.MintForAudioTextRetrieval",
        }
        model.config.architectures = ["MintForAudioTextRetrieval"]
        model.save_pretrained(tmp)
        processor.feature_extractor.save_pretrained(tmp)
        processor.bridge_tokenizer.save_pretrained(tmp)

    return _write_atomically(out, write)


def assemble(variant: str, out: str | Path, seed: int = 0) -> Path:
    """Build `variant` into `out`. Random variants get seeded random weights."""
    src = variant_dir(variant)
    config = MintConfig.from_pretrained(src)
    processor = MintProcessor.from_pretrained(src)
    torch.manual_seed(seed)
    model = MintForConditionalGeneration(config)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return export(model, processor, out)
