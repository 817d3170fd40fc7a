"""Load: 20 concurrent clients on loopback against the Space (mint-tiny-token-prompt) for 2 minutes.

Every request must be answered or cleanly rejected by the queue ("queue full": one generation at a time, at most 16
waiting); no other error. Writes the numbers (answered, rejected, errors, p50 / p95 latency, throughput) to
`space_load.md` in a temporary folder; `make test-reports` rewrites the committed `tests/reports/space_load.md`.
"""

import os
import threading
import time

import numpy as np
import pytest

from tests.conftest import SPEECH


pytestmark = [pytest.mark.browser, pytest.mark.slow]  # the load alone lasts SECONDS
CLIENTS = 20
SECONDS = 120
MAX_NEW_TOKENS = 4


def client_loop(url: str, stop: float, results: list, lock: threading.Lock):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    while time.monotonic() < stop:
        start = time.monotonic()
        try:
            answer, _ = client.predict(handle_file(SPEECH), "Ask a question", "What is this sound?", "",
                                       MAX_NEW_TOKENS, api_name="/respond")
            outcome = "answered" if isinstance(answer, str) else f"error: {answer!r}"
        except Exception as error:  # sorted below: only "queue full" is an acceptable refusal
            outcome = "rejected" if "queue is full" in str(error).lower() else f"error: {type(error).__name__}: {error}"
        with lock:
            results.append((outcome, time.monotonic() - start))
        if outcome == "rejected":
            time.sleep(1.0)  # a polite client backs off


def test_twenty_clients_for_two_minutes(space_url, reports_dir):
    pytest.importorskip("gradio_client")
    if not os.path.isfile(SPEECH):
        pytest.skip(f"{SPEECH} is missing")
    results, lock = [], threading.Lock()
    load = os.getloadavg()[0]
    start = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(space_url, start + SECONDS, results, lock), daemon=True)
               for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 300)
    wall = time.monotonic() - start
    assert not any(thread.is_alive() for thread in threads), "a client never got its answer"

    answered = [t for o, t in results if o == "answered"]
    rejected = [t for o, t in results if o == "rejected"]
    errors = [o for o, _ in results if o.startswith("error")]
    p50, p95 = (np.percentile(answered, [50, 95]) if answered else (float("nan"),) * 2)
    rows = [("clients", CLIENTS), ("duration", f"{SECONDS} s of requests, {wall:.0f} s until the last answer"),
            ("requests", len(results)), ("answered", len(answered)), ("rejected (queue full)", len(rejected)),
            ("errors", len(errors)), ("latency p50 (answered)", f"{p50:.1f} s"),
            ("latency p95 (answered)", f"{p95:.1f} s"), ("max latency", f"{max(answered, default=0):.1f} s"),
            ("throughput", f"{len(answered) / wall * 60:.1f} answers / min"),
            ("rejection latency p50", f"{np.percentile(rejected, 50):.2f} s" if rejected else "-")]
    (reports_dir / "space_load.md").write_text(
        "# Space under load\n\nWritten by `make test-reports` (`tests/test_space_load.py`): the Space app on mint-tiny-token-prompt "
        f"(`spaces_demo/app.py`, one generation at a time, a queue of 16), {CLIENTS} `gradio_client` clients on "
        f"loopback, each asking about a 3-s Asterisk recording (max_new_tokens={MAX_NEW_TOKENS}) in a loop for "
        f"{SECONDS} s and backing off 1 s after a rejection, on {os.cpu_count()} CPU cores (load average {load:.1f} "
        "at the start).\n\n"
        "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"
        + ("\nErrors:\n\n" + "\n".join(f"- {e}" for e in errors[:10]) + "\n" if errors else ""))
    assert not errors, errors[:5]
    assert answered and len(answered) + len(rejected) == len(results)


def test_the_space_answers_after_the_load(space_url):
    from gradio_client import Client, handle_file

    answer, _ = Client(space_url, verbose=False).predict(handle_file(SPEECH), "Transcribe", "Transcribe the speech.",
                                                         "", 8, api_name="/respond")
    assert answer.strip()
