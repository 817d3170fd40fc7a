"""Push an assembled MINT folder (`mint assemble`) to the Hugging Face Hub.

The folder is checked first, without touching the network: a repo that users load with `trust_remote_code=True` must
carry every file its `auto_map` names, only safetensors weights (a pickle runs code on load), and a model card with the
metadata the Hub indexes. Anything missing is reported at once, before a repo is created.
"""

import json
import re
from pathlib import Path

import yaml
from huggingface_hub import HfApi, ModelCard


PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
AUTO_CLASSES = ("AutoConfig", "AutoModel", "AutoModelForCausalLM")
PIPELINE_TASK = "audio-text-to-text"
RETRIEVAL_TASK = "zero-shot-audio-classification"  # a retrieval-only folder (`mint assemble --retrieval`)
RETRIEVAL_AUTO_CLASSES = ("AutoConfig", "AutoModel")
CARD_METADATA = {"license": None, "pipeline_tag": PIPELINE_TASK, "library_name": "transformers", "base_model": None}
RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.(\w+)\s+import", re.MULTILINE)


def _code_problems(folder: Path, reference: str, owner: str) -> list[str]:
    """`module.Class` must be a file of the folder defining `Class`, whose relative imports are there too (transformers
    copies exactly these files into its module cache)."""
    module, _, name = reference.rpartition(".")
    path = folder / f"{module}.py"
    if not module or not path.is_file():
        return [f"{owner} names {reference!r} but {module or reference}.py is not in the folder"]
    source = path.read_text()
    problems = [] if re.search(rf"^class {re.escape(name)}\b", source, re.MULTILINE) else [
        f"{owner} names {reference!r} but {path.name} defines no class {name}"]
    problems += [f"{path.name} imports .{dep} but {dep}.py is not in the folder"
                 for dep in sorted(set(RELATIVE_IMPORT.findall(source))) if not (folder / f"{dep}.py").is_file()]
    return problems


def _read_json(path: Path, problems: list[str]) -> dict:
    if not path.is_file():
        problems.append(f"{path.name} is missing")
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        problems.append(f"{path.name} is not valid JSON: {error}")
        return {}


def _task(folder: Path) -> str:
    """The folder's main pipeline task: a retrieval-only folder classifies, the others generate."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return PIPELINE_TASK
    return RETRIEVAL_TASK if config.get("architectures") == ["MintForAudioTextRetrieval"] else PIPELINE_TASK


def _config_problems(folder: Path) -> list[str]:
    problems: list[str] = []
    config = _read_json(folder / "config.json", problems)
    task = _task(folder)
    auto_map = config.get("auto_map") or {}
    if config and not auto_map:
        problems.append("config.json has no auto_map (assemble the folder with `mint assemble`)")
    elif auto_map:
        required = RETRIEVAL_AUTO_CLASSES if task == RETRIEVAL_TASK else AUTO_CLASSES
        problems += [f"config.json auto_map has no {name}" for name in required if name not in auto_map]
    for name, reference in auto_map.items():
        problems += _code_problems(folder, reference, f"config.json auto_map[{name!r}]")
    pipelines = config.get("custom_pipelines") or {}
    if config and task not in pipelines:
        problems.append(f"config.json has no custom_pipelines[{task!r}]")
    for name, pipeline in pipelines.items():
        problems += _code_problems(folder, pipeline.get("impl", ""), f"custom_pipelines[{name!r}]")
    processor = _read_json(folder / "processor_config.json", problems).get("auto_map", {}).get("AutoProcessor")
    if processor:
        problems += _code_problems(folder, processor, "processor_config.json auto_map['AutoProcessor']")
    elif (folder / "processor_config.json").is_file():
        problems.append("processor_config.json has no auto_map['AutoProcessor']")
    # one missing file is one problem, however many auto_map entries or imports reach it
    named = {p.rsplit(" but ", 1)[1] for p in problems if " names " in p and p.endswith("is not in the folder")}
    return [p for p in dict.fromkeys(problems) if " imports ." not in p or p.rsplit(" but ", 1)[1] not in named]


def _weight_problems(folder: Path) -> list[str]:
    pickles = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    problems = [f"pickle weight files are refused (they run code when loaded), use safetensors: {', '.join(pickles)}"
                ] if pickles else []
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text())["weight_map"].values())
        problems += [f"{index.name} names {s} but it is not in the folder" for s in sorted(shards)
                     if not (folder / s).is_file()]
    elif not (folder / "model.safetensors").is_file():
        problems.append("model.safetensors is missing")
    return problems


def _card_problems(folder: Path) -> list[str]:
    readme = folder / "README.md"
    if not readme.is_file():
        return ["README.md (the model card) is missing"]
    try:
        data = ModelCard.load(readme).data
    except (ValueError, yaml.YAMLError) as error:
        return [f"README.md metadata does not parse: {error}"]
    problems = []
    for key, expected in {**CARD_METADATA, "pipeline_tag": _task(folder)}.items():
        value = getattr(data, key, None)
        if not value:
            problems.append(f"README.md metadata has no {key}")
        elif expected is not None and value != expected:
            problems.append(f"README.md metadata has {key}: {value}, expected {expected}")
    return problems


def check_folder(folder: str | Path) -> list[str]:
    """Everything that keeps `folder` from being a loadable remote-code repo with a complete card; [] when ready."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    return _config_problems(folder) + _weight_problems(folder) + _card_problems(folder)


def push(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None,
         commit_message: str | None = None) -> str:
    """Check `folder`, create `repo_id` if needed and upload the folder in one commit; returns the commit URL."""
    problems = check_folder(folder)
    if problems:
        raise ValueError(f"{folder} is not ready to push:\n- " + "\n- ".join(problems))
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=folder,
                             commit_message=commit_message or f"Upload {Path(folder).name} with `mint push`")
    return info.commit_url
