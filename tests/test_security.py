"""Security: weights load from safetensors only and MINT never unpickles a file that could run code; remote code runs
only with `trust_remote_code=True`; the Space takes audio only and never reads a server path a request names, and
runs one request at a time behind a bounded queue."""

import ast
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import urllib.request

import pytest
import torch

from tests.conftest import ROOT
from tests.test_remote_code import HIDE_PACKAGE


PACKAGES = ("modeling_mint", "training", "hub_configs", "spaces_demo", "benchmarks", "mint_metrics")


class Payload:
    """Unpickling this runs `touch SENTINEL`: what a planted `.bin` / `.pt` file can do to `torch.load`."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def test_no_mint_code_unpickles_files():
    """Every `torch.load` passes `weights_only=True`; nothing calls pickle loads or `np.load(allow_pickle=True)`."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
                keywords = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                name = f"{owner}.{node.func.attr}"
                if (name == "torch.load" and keywords.get("weights_only") is not True
                        or name in ("pickle.load", "pickle.loads")
                        or name == "np.load" and keywords.get("allow_pickle") is True):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert not offenders, offenders


def test_a_planted_cache_file_cannot_run_code(tmp_path):
    from mint.training.features import load_frames

    sentinel = tmp_path / "pwned"
    path = tmp_path / "ab" / "abcdef.pt"
    path.parent.mkdir()
    torch.save(Payload(sentinel), path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_frames(path)
    assert not sentinel.exists()
    torch.save(torch.ones(3, 4, dtype=torch.float16), path)  # what the cache itself writes still loads
    assert load_frames(path).shape == (3, 4)


@pytest.mark.parametrize("keep_safetensors", [True, False])
def test_pickle_weights_in_a_model_folder_are_ignored_or_refused(tiny_model_dir, tmp_path, keep_safetensors):
    """Beside safetensors, a `pytorch_model.bin` is ignored; alone, it is refused; its payload never runs."""
    from transformers import AutoModelForCausalLM

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    sentinel = tmp_path / "pwned"
    torch.save({"model.lm_head.weight": Payload(sentinel)}, folder / "pytorch_model.bin")
    if keep_safetensors:
        model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
        reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, trust_remote_code=True)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    else:
        (folder / "model.safetensors").unlink()
        with pytest.raises(Exception, match="(?i)weights only load failed|unpickl|safetensors"):
            AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    assert not sentinel.exists()


REFUSE_REMOTE_CODE = """
import json
from transformers import AutoConfig, AutoModelForCausalLM, AutoProcessor, pipeline
results = {}
for name, load in [("AutoConfig", lambda: AutoConfig.from_pretrained(FOLDER)),
                   ("AutoModelForCausalLM", lambda: AutoModelForCausalLM.from_pretrained(FOLDER)),
                   ("AutoProcessor", lambda: AutoProcessor.from_pretrained(FOLDER)),
                   ("pipeline", lambda: pipeline("audio-text-to-text", model=FOLDER))]:
    try:
        load()
        results[name] = "loaded"
    except Exception as error:
        results[name] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


def test_remote_code_runs_only_with_trust_remote_code(tiny_model_dir, tmp_path):
    """Without `trust_remote_code=True`, every entry point stops with transformers' error before importing the
    folder's code (which here would drop a sentinel file on import)."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    sentinel = tmp_path / "code_ran"
    for name in ("configuration_mint.py", "modeling_mint.py", "processing_mint.py", "pipeline_mint.py"):
        with open(folder / name, "a") as f:
            f.write(f"\nimport pathlib\npathlib.Path({str(sentinel)!r}).touch()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    script = HIDE_PACKAGE + f"FOLDER = {str(folder)!r}\n" + textwrap.dedent(REFUSE_REMOTE_CODE)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = proc.stdout.strip().splitlines()[-1]
    results = json.loads(line[line.index("{"):])  # after transformers' "[y/N]" question, answered by EOF
    for name, outcome in results.items():
        assert outcome.startswith("ValueError") and "trust_remote_code=True" in outcome, (name, outcome)
    assert not sentinel.exists()


# ---- the Space -------------------------------------------------------------------------------------------------
def call(url: str, data: list) -> str:
    """The app's `respond` endpoint over plain HTTP, as any client could call it; returns the event stream."""
    request = urllib.request.Request(f"{url}gradio_api/call/respond", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/respond/{event}", timeout=120) as response:
        return response.read().decode()


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/etc/passwd", str(ROOT / "spaces_demo" / "app.py"), "../../../../etc/passwd",
                                  "file:///etc/passwd"])
def test_space_never_reads_a_server_path_a_request_names(space_url, path):
    stream = call(space_url, [{"path": path, "meta": {"_type": "gradio.FileData"}}, "Describe",
                              "Describe the audio.", "", 2])
    assert "event: error" in stream and "root:" not in stream and "import gradio" not in stream, stream[:500]


@pytest.mark.browser
def test_space_typed_text_is_only_text(space_url):
    """Labels that look like paths are scored as labels; no file is opened for them."""
    from gradio_client import Client, handle_file

    from tests.conftest import HAMMER

    client = Client(space_url, verbose=False)
    _, scores = client.predict(handle_file(HAMMER), "Zero-shot classify", "", "/etc/passwd, ~/.ssh/id_rsa", 2,
                               api_name="/respond")
    assert sorted(c["label"] for c in scores["confidences"]) == ["/etc/passwd", "~/.ssh/id_rsa"]


@pytest.mark.browser
def test_space_caps_uploads_and_bounds_its_queue(space_url):
    """20 requests at once: one runs, 16 wait, the rest are turned away with "queue full", none fails otherwise."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    from tests.conftest import SPEECH

    with urllib.request.urlopen(f"{space_url}config", timeout=30) as response:
        assert json.loads(response.read())["max_file_size"] == 10 * 1024**2  # "10mb" as gradio parses it
    client = Client(space_url, verbose=False)

    def ask(_):
        try:
            client.predict(handle_file(SPEECH), "Describe", "Describe the audio.", "", 64, api_name="/respond")
            return "answered"
        except Exception as error:
            return "queue full" if "queue is full" in str(error).lower() else f"error: {error}"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(ask, range(20)))
    assert set(outcomes) == {"answered", "queue full"}, outcomes
    assert outcomes.count("answered") >= 17
