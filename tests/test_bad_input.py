"""Bad input through every surface: the processor, the pipeline, `mint run` and the Space.

Each input gives a correct result or a `ValueError` (a Space message) naming the problem; the Space keeps serving
afterwards. A full run of this file writes the table `bad_input_matrix.md` (input x surface -> outcome) to a temporary
folder; `make test-reports` rewrites the committed `tests/reports/bad_input_matrix.md`.
"""

import json
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SPEECH, tone


SURFACES = ("processor", "pipeline", "mint run", "Space")
PROMPT = "Describe the audio."
HOUR = 3600


def _write(path: Path, wav: np.ndarray, rate: int = 16000, subtype: str | None = None) -> Path:
    sf.write(path, wav, rate, subtype=subtype)
    return path


def _one_hour(path: Path) -> Path:
    """An hour of 8 kHz 16-bit audio (58 MB), written in blocks so that the test itself stays small."""
    block = (tone(60.0, 8000) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", 8000, 1, "PCM_16") as f:
        for _ in range(HOUR // 60):
            f.write(block)
    return path


def _bytes(data: bytes):
    def write(path: Path) -> Path:
        path.write_bytes(data)
        return path
    return write


def _truncated_header(path: Path) -> Path:
    _write(path, tone(1.0))
    path.write_bytes(path.read_bytes()[:20])
    return path


def _truncated_data(path: Path) -> Path:
    """A header promising 2 s of samples, followed by half of them."""
    _write(path, tone(2.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# name -> (write the audio file, prompt, expected error per surface: None = a correct result; a str for all)
OK = None
NOT_AUDIO = {"processor": "could not decode", "pipeline": "could not decode", "mint run": "could not decode",
             "Space": "could not be read as audio"}
CASES = {
    "empty file (0 bytes)": (_bytes(b""), PROMPT, "empty"),
    "WAV with zero samples": (lambda p: _write(p, np.zeros(0, np.float32)), PROMPT, "empty"),
    "one sample": (lambda p: _write(p, np.full(1, 0.5, np.float32)), PROMPT, OK),
    "one sample at 96 kHz": (lambda p: _write(p, np.full(1, 0.5, np.float32), 96000), PROMPT, OK),
    "pure silence (2 s)": (lambda p: _write(p, np.zeros(32000, np.float32)), PROMPT, OK),
    "NaN samples (float WAV)": (lambda p: _write(p, np.full(16000, np.nan, np.float32), subtype="FLOAT"), PROMPT,
                                "NaN"),
    "Inf samples (float WAV)": (lambda p: _write(p, np.array([0.1, np.inf] * 8000, np.float32), subtype="FLOAT"),
                                PROMPT, "infinite"),
    "clipped float (peaks at 8.0)": (lambda p: _write(p, 8 * tone(1.0) / 0.3, subtype="FLOAT"), PROMPT, OK),
    "clipped int16 (square wave)": (lambda p: _write(p, np.sign(tone(1.0)).astype(np.float32)), PROMPT, OK),
    **{f"{bits} PCM": (lambda p, s=subtype: _write(p, tone(1.0), subtype=s), PROMPT, OK)
       for bits, subtype in (("8-bit", "PCM_U8"), ("16-bit", "PCM_16"), ("24-bit", "PCM_24"), ("32-bit", "PCM_32"),
                             ("float32", "FLOAT"), ("float64", "DOUBLE"))},
    **{f"{rate // 1000 if rate % 1000 == 0 else rate / 1000} kHz": (lambda p, r=rate: _write(p, tone(1.5, r), r),
                                                                    PROMPT, OK)
       for rate in (8000, 11025, 16000, 22050, 44100, 48000, 96000)},
    **{f"{n} channel{'s' * (n > 1)}": (lambda p, n=n: _write(p, tone(1.0, 16000, channels=n) if n > 1 else tone(1.0)),
                                       PROMPT, OK) for n in range(1, 7)},
    "real recording (Asterisk WAV)": (lambda p: _bytes(Path(SPEECH).read_bytes())(p), PROMPT, OK),
    "1-hour file (58 MB)": (_one_hour, PROMPT, {"Space": "maximum file size"}),
    "truncated header (20 bytes)": (_truncated_header, PROMPT, NOT_AUDIO),
    "corrupt header": (_bytes(b"RIFF" + bytes(40) + b"\xff" * 100), PROMPT, NOT_AUDIO),
    "truncated data (half the samples)": (_truncated_data, PROMPT, OK),
    "text file renamed .wav": (_bytes(b"this is text, not a RIFF header\n"), PROMPT, NOT_AUDIO),
    "huge instruction (100k characters)": (lambda p: _write(p, tone(1.0)), "what is this? " * 7200,
                                           {"processor": "tokens long", "pipeline": "tokens long",
                                            "mint run": "tokens long", "Space": "characters long"}),
    "RTL instruction": (lambda p: _write(p, tone(1.0)), "ما هذا الصوت؟ מה הצליל הזה?", OK),
    "emoji instruction": (lambda p: _write(p, tone(1.0)), "🐶🔊 what is this? 👍🏽👨‍👩‍👧", OK),
    "zero-width characters": (lambda p: _write(p, tone(1.0)), "wh\u200bat\u200c is\u200d th\ufeffis\u2060?", OK),
    "control characters": (lambda p: _write(p, tone(1.0)), "\x00\x07\x1b[31mwhat\x7f is\x08 this?\r\n\t", OK),
    # not text at all: no UTF-8 request can carry it, so the Space's client refuses to send it
    "lone surrogate": (lambda p: _write(p, tone(1.0)), "what is \ud800 this?",
                       {s: "not valid unicode" for s in SURFACES[:3]} | {"Space": "surrogates not allowed"}),
}
ROWS: dict[tuple[str, str], str] = {}


def expected(case: str, surface: str) -> str | None:
    expect = CASES[case][2]
    return expect.get(surface) if isinstance(expect, dict) else expect


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_input")
    paths = {}
    for i, (case, (write, _, _)) in enumerate(CASES.items()):
        if case.startswith("real recording") and not Path(SPEECH).is_file():
            continue
        paths[case] = write(folder / f"{i:02d}.wav")
    return paths


@pytest.fixture(scope="module", autouse=True)
def report(reports_dir):
    yield
    if len(ROWS) < len(CASES) * len(SURFACES):  # a partial run (-k, -m, no Space) would leave holes in the table
        return
    lines = ["# Bad-input matrix", "",
             "Written by `make test-reports` (`tests/test_bad_input.py`; the tiny random model for the processor, the",
             "pipeline and `mint run`; the Space on mint-tiny-token-prompt). `ok` is a correct result; otherwise the",
             "error message shown.", "",
             "| input | " + " | ".join(SURFACES) + " |", "|---" * (len(SURFACES) + 1) + "|"]
    for case in CASES:
        cells = [ROWS.get((case, s), "n/a").replace("|", "\\|").replace("\n", " ") for s in SURFACES]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    (reports_dir / "bad_input_matrix.md").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from modeling_mint import MintProcessor

    return MintProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    from transformers import pipeline

    return pipeline("audio-text-to-text", model=str(tiny_model_dir), trust_remote_code=True)


@pytest.fixture(scope="module")
def cli_results(tiny_model_dir, files):
    """`mint run` once over every file with the default prompt, and once per file that has its own prompt."""
    import contextlib
    import io

    from mint.cli import main

    def run(paths, prompt):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["run", *map(str, paths), "--model", str(tiny_model_dir), "--prompt", prompt, "--json", "--quiet",
                  "--max-new-tokens", "2", "--batch-size", "4"])
        return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]

    results = {}
    plain = [c for c in files if CASES[c][1] == PROMPT]
    for case, record in zip(plain, run([files[c] for c in plain], PROMPT)):
        results[case] = record
    for case in files:
        if case not in results:
            [results[case]] = run([files[case]], CASES[case][1])
    return results


def _outcome(error: BaseException | None, result: str = "") -> str:
    if error is None:
        return f"ok ({result})" if result else "ok"
    message = re.sub(r"/\S*/(\d\d\.wav)", r"\1", str(error).splitlines()[0])  # no temporary folders in the table
    return f"{type(error).__name__}: {message[:110]}"


def check(case: str, surface: str, error: BaseException | str | None, result: str = ""):
    if isinstance(error, str):
        error = ValueError(error)
    ROWS[(case, surface)] = _outcome(error, result)
    want = expected(case, surface)
    if want is None:
        assert error is None, f"{case} via {surface}: {error!r}"
    else:
        assert error is not None, f"{case} via {surface}: no error, wanted {want!r}"
        assert isinstance(error, (ValueError, FileNotFoundError)) or surface == "Space", repr(error)
        assert want.lower() in str(error).lower(), f"{case} via {surface}: {error}"


@pytest.mark.parametrize("case", list(CASES))
def test_processor(case, processor, files):
    if case not in files:
        pytest.skip("needs the Debian recordings")
    tracemalloc.start()
    try:
        out = processor(text=f"<audio> {CASES[case][1]}", audio=str(files[case]))
        n = int((out["input_ids"] == processor.audio_token_id).sum())
        assert n == processor.num_query_tokens and out["input_features"].shape[-1] <= 300
        error, result = None, f"{n} audio tokens"
    except (ValueError, TypeError, FileNotFoundError) as raised:
        error, result = raised, ""
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{case}: {peak / 2**20:.0f} MB peak"  # the 1-hour file is not decoded whole
    check(case, "processor", error, result)


@pytest.mark.parametrize("case", list(CASES))
def test_pipeline(case, pipe, files):
    if case not in files:
        pytest.skip("needs the Debian recordings")
    try:
        out = pipe(str(files[case]), prompt=CASES[case][1], max_new_tokens=2)
        assert isinstance(out["generated_text"], str)
        error = None
    except (ValueError, TypeError, FileNotFoundError) as raised:
        error = raised
    check(case, "pipeline", error)


@pytest.mark.parametrize("case", list(CASES))
def test_mint_run(case, cli_results, files):
    if case not in files:
        pytest.skip("needs the Debian recordings")
    record = cli_results[case]
    assert record["audio"] == str(files[case])
    check(case, "mint run", record.get("error"))


@pytest.fixture(scope="module")
def client(space_url):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(space_url, verbose=False)


@pytest.mark.browser
@pytest.mark.parametrize("case", list(CASES))
def test_space(case, client, files):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    if case not in files:
        pytest.skip("needs the Debian recordings")
    try:
        answer, _ = client.predict(handle_file(str(files[case])), "Ask a question", CASES[case][1], "", 2,
                                   api_name="/respond")
        assert isinstance(answer, str)
        error = None
    except (AppError, ValueError) as raised:  # ValueError: gradio_client refusing an upload over the size cap
        error = raised
    check(case, "Space", error)


@pytest.mark.browser
def test_space_still_serves_after_the_matrix(client):
    from gradio_client import handle_file

    answer, _ = client.predict(handle_file(SPEECH), "Transcribe", "Transcribe the speech.", "", 8, api_name="/respond")
    assert answer.strip()


def test_processor_can_refuse_long_audio_instead(processor, files):
    """`truncate_long_audio=False`: audio over `max_audio_windows` windows is refused (its length read from the
    header; only the first windows are decoded)."""
    import copy

    strict = copy.copy(processor)
    strict.truncate_long_audio = False
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"is 3600\.0 s long; the limit is 3\.0 s"):
            strict(text="<audio> x", audio=str(files["1-hour file (58 MB)"]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
    assert strict(text="<audio> x", audio=tone(2.0), sampling_rate=16000)["input_features"].shape[-1] == 200
