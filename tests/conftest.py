import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TINY = ROOT / "hub_configs" / "mint-tiny-random"
APP = ROOT / "spaces_demo" / "app.py"
# Test-split recordings (never trained on): speech and a sound effect, from Debian packages.
SPEECH = "/usr/share/asterisk/sounds/en_US_f_Allison/tt-weasels.wav"
HAMMER = "/usr/share/tuxpaint/stamps/household/tools/hammer.ogg"


# Tiers of tests in files whose other tests stay in the fast tier (see [tool.pytest.ini_options] markers).
TIERS = {
    "test_cli.py::test_demo_ends_its_server_when_ended": "browser",
    "test_cli.py::test_console_script_installed": "slow",
    "test_training.py::test_two_process_run": "distributed",
    "test_faults.py::test_training_killed_with_sigkill_resumes_onto_the_same_curve": "slow",
    "test_faults.py::test_feature_cache_killed_midway_leaves_no_entry_a_later_run_reads": "slow",
    "test_faults.py::test_corpus_build_killed_midway_leaves_the_old_corpus": "slow",
    "test_modeling_mint.py::test_loss_decreases_on_fixed_batch": "slow",
    "test_fuzz_processor.py::test_one_clip_never_crashes_and_fits_the_model": "slow",
    "test_fuzz_processor.py::test_batches_on_a_windowed_bridge": "slow",
    "test_fuzz_processor.py::test_any_instruction_text": "slow",
}


def pytest_collection_modifyitems(items):
    for item in items:
        tier = TIERS.get(f"{item.path.name}::{item.originalname}")
        if tier:
            item.add_marker(tier)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine tone; (samples,) or (samples, channels)."""
    t = np.arange(int(seconds * rate)) / rate
    wav = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wav if channels == 1 else np.stack([wav] * channels, axis=1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def tiny_processor():
    from modeling_mint import MintProcessor

    return MintProcessor.from_pretrained(TINY)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """mint-tiny-random assembled once per session into a complete folder."""
    from mint.hub.assemble import assemble

    return assemble("mint-tiny-random", tmp_path_factory.mktemp("models") / "mint-tiny-random")


@pytest.fixture(scope="session")
def wav_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "tone_8k_stereo.wav"
    sf.write(path, tone(1.5, 8000, channels=2), 8000)
    return path


@pytest.fixture(scope="session")
def reports_dir(tmp_path_factory) -> Path:
    """Where tests write their reports: a temporary folder, or with MINT_WRITE_REPORTS=1 the committed
    `tests/reports/` that the README cites (`make test-reports`)."""
    if os.environ.get("MINT_WRITE_REPORTS") == "1":
        return ROOT / "tests" / "reports"
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="session")
def space_model(tmp_path_factory) -> Path:
    """The Space's model, mint-tiny-token-prompt (generation, and zero-shot and retrieval by its CTC head), assembled
    once."""
    for clip in (SPEECH, HAMMER):
        if not os.path.isfile(clip):
            pytest.skip(f"{clip} is missing (see DEBIAN_PACKAGES in the Makefile)")
    from mint.hub.assemble import assemble

    return assemble("mint-tiny-token-prompt", tmp_path_factory.mktemp("space_models") / "mint-tiny-token-prompt")


@pytest.fixture(scope="session")
def space_url(space_model):
    """The app on `space_model` (for generation and retrieval alike), served on a free port."""
    model = retrieval = space_model
    models = space_model.parent
    port = free_port()
    log = open(models / "app.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, str(APP), "--model", str(model), "--retrieval", str(retrieval), "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=APP.parent, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited with {proc.returncode}:\n{(models / 'app.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer within 180 s:\n{(models / 'app.log').read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
