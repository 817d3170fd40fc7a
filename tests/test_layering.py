"""The package's layers, low to high: modeling_mint < mint.io < mint.hub, mint.metrics < mint.training < mint.bench,
mint.cli. Every import of every module (function-local ones too) goes to its own layer or a lower one; the remote-code
folder imports no `mint` and only the third-party packages it uses today (torch, transformers and theirs, audio
readers); nothing imports the repository's folder names (`training`, ...), which are not importable once installed."""

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FOLDERS = {  # repository folder -> the package it installs as
    "modeling_mint": "modeling_mint",
    "mint": "mint",
    "hub_configs": "mint.hub",
    "mint_metrics": "mint.metrics",
    "training": "mint.training",
    "benchmarks": "mint.bench",
}
LAYERS = {  # the longest matching prefix decides
    "modeling_mint": 0,
    "mint": 1,
    "mint.io": 1,
    "mint.hub": 2,
    "mint.metrics": 2,
    "mint.training": 3,
    "mint.bench": 4,
    "mint.cli": 4,
}
# what `pip install transformers torch` brings (huggingface_hub: v5 configs' @strict), plus the audio readers
REMOTE_CODE_THIRD_PARTY = {"torch", "transformers", "huggingface_hub", "numpy", "soundfile", "soxr"}
OLD_NAMES = {"training", "benchmarks", "hub_configs", "mint_metrics"}


def modules() -> dict[str, Path]:
    """Every module's dotted name, as installed."""
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts) or "reports" in parts:
                continue
            if package == "mint" and parts[0] in {"hub", "training", "bench", "metrics"}:
                continue  # not a folder of mint/ (installed from the folders above)
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file, relative ones resolved against `name`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # `from mint import io` imports the module mint.io
            found += [(node.lineno, f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module)
                      for alias in node.names]
    return found


def layer(module: str) -> int | None:
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(prefixes, key=len)] if prefixes else None


MODULES = modules()


def test_every_folder_is_found():
    assert {"modeling_mint.modeling_mint", "mint.io", "mint.cli", "mint.cli.train", "mint.hub.assemble",
            "mint.training.common", "mint.training.sft", "mint.bench.latency"} <= set(MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_goes_up_a_layer(name):
    own = layer(name)
    upward = [f"line {line}: {module}" for line, module in imports(name, MODULES[name])
              if (target := layer(module)) is not None and target > own]
    assert not upward, f"{name} (layer {own}) imports from a higher layer: {upward}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_of_the_folder_names(name):
    old = [f"line {line}: {module}" for line, module in imports(name, MODULES[name])
           if module.split(".")[0] in OLD_NAMES]
    assert not old, f"{name} imports a repository folder by its name, not its installed one: {old}"


def test_remote_code_imports_no_mint_and_only_its_third_party_packages():
    seen = set()
    for name, path in MODULES.items():
        if name.startswith("modeling_mint"):
            for line, module in imports(name, path):
                top = module.split(".")[0]
                assert top != "mint", f"{name} line {line}: remote code imports {module}"
                if top != "modeling_mint" and top not in sys.stdlib_module_names:
                    seen.add(top)
    assert seen <= REMOTE_CODE_THIRD_PARTY, f"remote code needs more than it did: {seen - REMOTE_CODE_THIRD_PARTY}"
