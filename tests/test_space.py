"""The Space demo (`spaces_demo/app.py`) on the real mint-tiny-token-prompt, served in a subprocess as on a Space,
driven by a headless Debian Chromium (Playwright) and by `gradio_client`.

Screenshots go to `tests/artifacts/` (git-ignored).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import APP, HAMMER, ROOT, SPEECH


ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"  # Debian's (apt-get install chromium); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a beeping microphone
LABELS = ["a hammer", "a frog", "speech", "a telephone ringing"]


@pytest.fixture(scope="module")
def app_url(space_url):
    """The app on mint-tiny-token-prompt, served once per session (tests/conftest.py) for this file, the bad-input matrix and
    the load test."""
    return space_url


@pytest.fixture(scope="module")
def client(app_url):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def page(app_url):
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install chromium chromium-driver)")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
        page.goto(app_url, wait_until="networkidle")
        yield page
        browser.close()


def respond(client, audio, task, instruction="", labels="", max_new_tokens=16):
    from gradio_client import handle_file

    return client.predict(handle_file(str(audio)), task, instruction, labels, max_new_tokens, api_name="/respond")


def submit_and_wait(page):
    """Click Submit and wait until the answer box is filled and no longer streaming."""
    page.locator("#submit").click()
    page.wait_for_function(
        "() => document.querySelector('#output textarea').value.length > 0"
        " && document.querySelector('#output .wrap').classList.contains('hide')",
        timeout=120_000,
    )


# ---- browser ---------------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_browser_streams_a_description(page):
    page.locator("#audio_in input[type=file]").set_input_files(SPEECH)
    page.locator("#task").get_by_text("Ask a question", exact=True).click()
    page.locator("#task").get_by_text("Describe", exact=True).click()
    page.wait_for_function("() => document.querySelector('#instruction textarea').value === 'Describe the audio.'")
    # every value the answer box shows, sampled in the page while the answer streams in
    page.evaluate("""() => { window.seen = [];
        setInterval(() => window.seen.push(document.querySelector('#output textarea').value), 20); }""")
    submit_and_wait(page)
    answer = page.locator("#output textarea").input_value()
    page.screenshot(path=str(ARTIFACTS / "space_describe.png"), full_page=True)
    shown = list(dict.fromkeys(v for v in page.evaluate("() => window.seen") if v))
    assert answer.strip()
    assert len(shown) >= 2 and all(answer.startswith(v) for v in shown), shown  # it grew word by word


@pytest.mark.browser
def test_browser_reports_a_non_audio_file_and_keeps_serving(page, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is text, not a RIFF header\n")
    page.locator("#audio_in button[aria-label='Clear']").click()
    page.locator("#audio_in input[type=file]").set_input_files(str(fake))
    page.locator("#submit").click()
    toast = page.locator(".toast-body", has_text="could not be read as audio")
    toast.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "space_bad_file.png"), full_page=True)
    page.locator(".toast-close").first.click()
    toast.wait_for(state="hidden")

    page.locator("#audio_in button[aria-label='Clear']").click()
    page.locator("#audio_in input[type=file]").set_input_files(HAMMER)
    page.locator("#task").get_by_text("Zero-shot classify", exact=True).click()
    page.locator("#labels textarea").fill(", ".join(LABELS))
    page.locator("#submit").click()
    page.locator("#scores").get_by_text("a telephone ringing").first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "space_zero_shot.png"), full_page=True)


@pytest.mark.browser
def test_browser_records_from_the_microphone(page):
    page.locator("#audio_in button[aria-label='Clear']").click()
    page.locator("#audio_in button[aria-label='Record audio']").click()
    page.locator("#audio_in button:visible", has_text="Record").first.click()
    page.wait_for_timeout(2000)
    page.locator("#audio_in button:visible", has_text="Stop").first.click()
    page.locator("#audio_in button[aria-label='Play']").wait_for()  # the recording is loaded
    page.locator("#task").get_by_text("Describe", exact=True).click()
    submit_and_wait(page)
    assert page.locator("#output textarea").input_value().strip()
    page.screenshot(path=str(ARTIFACTS / "space_microphone.png"), full_page=True)


@pytest.mark.browser
def test_browser_runs_an_example_clip(page):
    """Example clips are served from the Debian folders (static paths) and fill audio, task and reference."""
    page.get_by_text("hammer.ogg", exact=True).click()
    page.wait_for_function("() => document.querySelector('#reference textarea').value === 'A hammer.'")
    page.locator("#audio_in button[aria-label='Play']").wait_for()
    assert page.locator("#task input[value='Zero-shot classify']").is_checked()
    page.locator("#submit").click()
    page.locator("#scores").get_by_text("a hammer").first.wait_for(timeout=60_000)


# ---- gradio_client ---------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_client_generation_streams_text(client):
    from gradio_client import handle_file

    job = client.submit(handle_file(SPEECH), "Describe", "Describe the audio.", "", 16, api_name="/respond")
    answer, scores = job.result(timeout=120)
    texts = [out[0] for out in job.outputs()]
    assert isinstance(answer, str) and answer.strip()
    assert len(texts) >= 2 and all(answer.startswith(t) for t in texts)  # streamed: each update extends the last
    assert not scores or not scores.get("confidences")


@pytest.mark.browser
def test_client_transcribes_as_the_model_ships_transcription(client, space_model):
    """Transcribe decodes by the model's `transcription_generation_config.json` (joint CTC decoding, 4 beams): the
    answer comes whole, and it is the pipeline's own answer under that config."""
    from gradio_client import handle_file
    from transformers import GenerationConfig, pipeline

    config = GenerationConfig.from_pretrained(space_model, "transcription_generation_config.json")
    assert config.num_beams > 1 and config.ctc_weight > 0
    job = client.submit(handle_file(SPEECH), "Transcribe", "Transcribe the speech.", "", 16, api_name="/respond")
    answer, _ = job.result(timeout=120)
    assert [out[0] for out in job.outputs()] == [answer]  # beam search does not stream

    config.max_new_tokens = 16
    generator = pipeline("audio-text-to-text", model=str(space_model), trust_remote_code=True)
    assert answer.strip()
    assert answer == generator(SPEECH, prompt="Transcribe the speech.", generation_config=config)["generated_text"]


@pytest.mark.browser
def test_client_zero_shot_is_a_distribution_over_the_typed_labels(client):
    answer, scores = respond(client, HAMMER, "Zero-shot classify", labels=" , ".join(LABELS) + ", a frog,")
    confidences = {c["label"]: c["confidence"] for c in scores["confidences"]}
    assert answer == ""
    assert sorted(confidences) == sorted(LABELS)  # blanks and the repeated label dropped
    assert all(0 <= p <= 1 for p in confidences.values()) and abs(sum(confidences.values()) - 1) < 1e-4
    assert scores["label"] == max(confidences, key=confidences.get)


@pytest.mark.browser
def test_client_closest_example_ranks_the_example_clips(client):
    _, scores = respond(client, HAMMER, "Closest example")
    assert len(scores["confidences"]) >= 2 and any("hammer.ogg" in c["label"] for c in scores["confidences"])
    assert abs(sum(c["confidence"] for c in scores["confidences"]) - 1) < 1e-4


def _bad_audio(kind: str, path) -> str:
    """Write a bad upload; return the message the app must show."""
    if kind == "empty":
        path.write_bytes(b"")
        return "The file is empty"
    if kind == "text":
        path.write_text("not audio at all")
        return "could not be read as audio"
    if kind == "corrupt":
        path.write_bytes(open(SPEECH, "rb").read()[:20] + b"\x00" * 9)  # a truncated RIFF header
        return "could not be read as audio"
    if kind == "no_samples":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000)
        return "The audio is empty"
    if kind == "nan":
        sf.write(path, np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
        return "NaN"
    sf.write(path, np.zeros(31 * 8000, dtype=np.int16), 8000)  # too long
    return "the limit is 30 s"


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["empty", "text", "corrupt", "no_samples", "nan", "too_long"])
def test_client_bad_audio_gets_a_message(client, kind, tmp_path):
    from gradio_client.exceptions import AppError

    path = tmp_path / f"{kind}.wav"
    message = _bad_audio(kind, path)
    with pytest.raises(AppError, match=message):
        respond(client, path, "Describe", "Describe the audio.")


@pytest.mark.browser
def test_uploads_over_the_size_limit_are_refused(client, tmp_path):
    path = tmp_path / "big.wav"
    sf.write(path, np.zeros(6_000_000, dtype=np.int16), 16000)  # 12 MB
    with pytest.raises(ValueError, match="maximum file size"):  # launch(max_file_size=...), as the app announces it
        respond(client, path, "Describe", "Describe the audio.")


@pytest.mark.browser
def test_client_still_serves_after_bad_requests(client):
    answer, _ = respond(client, SPEECH, "Ask a question", "What is this sound?", max_new_tokens=8)
    assert answer.strip()


# ---- the Space's files and `mint demo` -------------------------------------------------------------------------
def test_space_card_and_requirements_match_what_is_tested():
    from importlib.metadata import version

    from huggingface_hub import SpaceCard

    card = SpaceCard.load(APP.parent / "README.md").data
    assert (card.sdk, card.app_file, card.license) == ("gradio", "app.py", "apache-2.0")
    assert card.sdk_version == version("gradio")
    assert card.models and len(card.short_description) <= 60  # the Hub's limit
    lines = (APP.parent / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert {name: version(name).split("+")[0] for name in pins} == pins


def test_example_clips_come_from_the_packages_the_space_installs():
    sys.path.insert(0, str(APP.parent))
    try:
        from example_clips import available_clips
    finally:
        sys.path.remove(str(APP.parent))
    clips = [path for path, _, _ in available_clips()]
    assert len(clips) >= 8
    owners = subprocess.run(["dpkg", "-S", *clips], capture_output=True, text=True, check=True).stdout
    packages = set((APP.parent / "packages.txt").read_text().split())
    assert {line.split(":")[0] for line in owners.splitlines()} <= packages


def test_mint_demo_serves_the_app_on_localhost(monkeypatch):
    from mint import cli

    calls = []

    class Server:  # stands in for the app's process: exits at once with status 0
        def __init__(self, command, **kwargs):
            calls.append((command, kwargs))

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Server)
    assert cli.main(["demo", "--model", "gen", "--retrieval", "ret", "--port", "7999"]) == 0
    [(command, kwargs)] = calls
    assert command[1:] == [str(APP), "--model", "gen", "--retrieval", "ret", "--host", "127.0.0.1", "--port", "7999"]
    assert kwargs["cwd"] == APP.parent  # the app imports example_clips from its own folder, as on the Space
