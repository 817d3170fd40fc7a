"""What every benchmark shares: arguments, interleaved timing, real clips, the machine's description and the
report (markdown + JSON + PNG under `runs/bench/`; `--out benchmarks/reports` rewrites the committed reports).

Every headline is a ratio of two sides timed in the same process, interleaved (A B B A ...) and repeated; the
median of each side is reported, so a load that changes during the run hits both sides alike.
"""

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "bench"  # not the committed benchmarks/reports/: a run overwrites them only when asked to
DEFAULT_MODEL = ROOT / ".cache" / "models" / "mint-tiny"
DEFAULT_BASE = ROOT / "models" / "mint-tiny-base"
RATE = 16000

logger = logging.getLogger("benchmarks")


def parser(description: str, default_model: Path = DEFAULT_MODEL) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=str(default_model), help="an assembled MINT folder")
    p.add_argument("--quick", action="store_true", help="a few small repeats (smoke test, e.g. on mint-tiny-random)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per side (default 5, --quick 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--out", default=str(OUT), help="report folder (default runs/bench/; the committed reports: "
                   "benchmarks/reports)")
    return p


def setup(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    torch.manual_seed(0)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(sides: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each side's call, `repeats` times, the order reversed every round (A B, B A, ...) so that
    neither side always runs first; `warmup` untimed rounds first."""
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    times = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            times[name].append(timed(sides[name]))
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def other_cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of all cores busy with other processes over `seconds` (from `/proc/stat`, this process's own time
    taken out): whether the machine was idle when a benchmark started. The load average cannot tell, as it still
    counts the previous benchmark of the same run for a minute after it ends."""
    import time

    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4], sum(os.times()[:2])

    try:
        total0, idle0, own0 = sample()
        time.sleep(seconds)
        total1, idle1, own1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (total1 - total0) - (idle1 - idle0) - (own1 - own0) * ticks
    return round(max(0.0, busy / max(total1 - total0, 1)), 3)


def machine() -> dict:
    """CPU model, cores, threads used, how busy the machine was when the run started, library versions."""
    cpu = platform.processor()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), cpu)
        flags = next(ln for ln in lines if ln.startswith("flags"))
        isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    except (OSError, StopIteration):
        isa = []
    import transformers

    return {"cpu": cpu, "isa": isa, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "other_cpu_busy": other_cpu_busy(),
            "torch": torch.__version__, "transformers": transformers.__version__}


def machine_note(info: dict) -> str:
    other = info.get("other_cpu_busy")
    if other is None:  # reports written before it was measured
        busy, state = info["load_average"][0] >= 0.5 * info["cores"], f"load average {info['load_average'][0]}"
    else:
        busy, state = other > 0.25, f"{other:.0%} of the cores busy with other processes"
    return (f"Machine: {info['cpu']} ({', '.join(info['isa'])}), {info['cores']} cores, {info['torch_threads']} torch "
            f"thread(s), {state} at the start; torch {info['torch']}, transformers {info['transformers']}. "
            + ("Other work was running on the machine: absolute numbers are low and noisy, the ratios (all sides "
               "interleaved in one run, medians of the repeats) are what to read." if busy else
               "Nothing else was running. The ratios (all sides interleaved in one run, medians of the repeats) "
               "are what carries to other machines; the seconds are this machine's."))


def real_clips(n: int, max_seconds: float = 10.0) -> list[np.ndarray]:
    """`n` Asterisk prompts (real speech, test and train alike), decoded at 16 kHz, cut to `max_seconds`; tones of
    1-3 s if the Debian package is missing."""
    from modeling_mint import load_audio

    try:
        from mint.training.data import asterisk_pairs

        pairs = asterisk_pairs()
    except FileNotFoundError:
        pairs = []
    if not pairs:
        t = np.arange(RATE * 3) / RATE
        return [(0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t[: RATE * (1 + i % 3)])).astype(np.float32)
                for i in range(n)]
    pairs = [pairs[i * len(pairs) // n] for i in range(n)] if n < len(pairs) else pairs[:n]
    return [load_audio(p["audio"], None, RATE)[: int(max_seconds * RATE)] for p in pairs]


def long_clip(seconds: float) -> np.ndarray:
    """Real speech of exactly `seconds`: Asterisk prompts one after another."""
    pieces, total, need = [], 0, int(seconds * RATE)
    clips = real_clips(200)
    i = 0
    while total < need:
        pieces.append(clips[i % len(clips)])
        total += len(pieces[-1])
        i += 1
    return np.concatenate(pieces)[:need]


def chat_prompt(processor, instruction: str) -> str:
    """The prompt the pipeline builds: the processor's chat template around the audio and the instruction."""
    messages = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": instruction}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def table(header: list[str], rows: list[list]) -> str:
    def cell(x):
        return f"{x:,.3g}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(name: str, out: str | Path, title: str, sections: list[str], data: dict, plot,
                 command: str | None = None) -> dict:
    """`NAME.md`, `NAME.json` and `NAME.png` (drawn by `plot(ax_or_fig_factory)`) in `out`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{name}.{k}" for k in ("md", "json", "png")}
    fig = plot(plt)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=110)
    plt.close(fig)
    command = command or f"python -m mint.bench.{name}"
    body = [f"# {title}", "", f"`{command}` ({time.strftime('%Y-%m-%d')})", "", *sections, "",
            f"![{name}]({name}.png)", ""]
    paths["md"].write_text("\n".join(body))
    paths["json"].write_text(json.dumps(data, indent=2, default=float))
    for line in sections[:1]:
        logger.info(line)
    logger.info("report: %s", paths["md"])
    return {k: str(v) for k, v in paths.items()}


def verdict(value: float, target: float) -> str:
    return f"**met** ({value:.2f}x >= {target:g}x)" if value >= target else f"**not met** ({value:.2f}x < {target:g}x)"
