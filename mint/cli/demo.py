"""`mint demo`: the Space's app (spaces_demo/app.py) run locally, as the Space runs it: its own process, its own
imports."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from mint.cli.paths import existing

ROOT = Path(__file__).resolve().parents[2]  # the git checkout (spaces_demo/ is not in the wheel)
DEFAULT_VARIANT = "mint-tiny-token-prompt"  # the Space's model, and `make demo`'s (assembled into the same folder)


def demo(args) -> int:
    from mint.hub.assemble import assemble

    app = ROOT / "spaces_demo" / "app.py"
    if not app.is_file():
        raise SystemExit(f"mint demo: {app} is missing (it is in the git checkout, not in the wheel)")
    model = args.model or ROOT / ".cache" / "models" / DEFAULT_VARIANT
    for given in (args.model, args.retrieval):
        if given:
            existing(given, "model", "demo", hub=True)
    if not args.model and not (model / "config.json").is_file():
        assemble(DEFAULT_VARIANT, model)
    retrieval = args.retrieval or model  # the token prompt's CTC head scores labels and texts too
    env = {"GRADIO_ANALYTICS_ENABLED": "False", **os.environ}
    server = subprocess.Popen(
        [sys.executable, str(app), "--model", str(model), "--retrieval", str(retrieval), "--host", "127.0.0.1",
         "--port", str(args.port)],
        cwd=app.parent, env=env,
    )
    return serve_until_ended(server)


def serve_until_ended(server) -> int:
    """Wait for `server`; if this process is ended (SIGTERM, SIGINT), end the server first, so no orphan keeps the
    port. Returns the server's exit status, or 128 + the signal when ended."""
    ended = []

    def end(signum, frame):
        ended.append(signum)
        server.terminate()

    previous = {s: signal.signal(s, end) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 + ended[0] if ended else code


def add_parsers(sub) -> None:
    p = sub.add_parser("demo", help="the Gradio demo (the Space's app) on mint-tiny-token-prompt, at "
                       "http://127.0.0.1:PORT")
    p.add_argument("--model", default=None, help="generation model folder (default: mint-tiny-token-prompt, "
                   "assembled once into .cache/models/)")
    p.add_argument("--retrieval", default=None, help="zero-shot / retrieval model (default: the --model folder; "
                   "a token-prompt folder scores by the word pieces its CTC head hears)")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=demo)
