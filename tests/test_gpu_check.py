"""The GPU check's CPU dry run (`python -m mint.bench.gpu_check --dry-run`): the code `make gpu-check` runs on a CUDA
machine, every stage, batched generation and `accelerate launch`, in bf16 on the CPU."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.distributed  # `accelerate launch` in a subprocess, beside a few training steps of every stage
def test_gpu_check_dry_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mint.bench.gpu_check", "--dry-run", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert results["ok"] and results["device"] == "cpu"
    checks = results["attention"]["sdpa"]
    assert {"stage 1", "stage 2"} <= set(checks["stages"]) and any(s.startswith("instruct") for s in checks["stages"])
    for stage in checks["stages"].values():
        assert len(stage["losses"]) == 4 and stage["ok"]
    assert checks["generate"]["new_tokens"] == 8 and checks["generate"]["batch"] == 3
    launched = results["accelerate"]
    assert launched["ok"] and launched["processes"] == 1 and launched["mixed_precision"] == "bf16"
    assert "Result: **pass**" in (tmp_path / "gpu_check.md").read_text()
