"""Real audio-text pairs that install from Debian packages."""

import gzip
import hashlib
import re
from pathlib import Path


ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def split_of(key: str, validation: int = 10, test: int = 15) -> str:
    """Deterministic split by source file: md5 of the key, in percent."""
    bucket = int(hashlib.md5(key.encode()).hexdigest(), 16) % 100
    return "test" if bucket < test else "validation" if bucket < test + validation else "train"


def asterisk_pairs() -> list[dict]:
    """Asterisk English prompts (CC-BY-SA-3.0, Allison Smith) with their exact transcripts.

    Needs Debian `asterisk-core-sounds-en-wav` and `asterisk-core-sounds-en`. Entries in brackets (tones) are
    skipped: they describe sounds, not speech.
    """
    if not ASTERISK_TRANSCRIPTS.is_file() or not ASTERISK_SOUNDS.is_dir():
        raise FileNotFoundError(
            "Asterisk prompts are missing: apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav"
        )
    pairs = []
    for line in gzip.open(ASTERISK_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace"):
        match = re.match(r"^([\w/.-]+):\s*(.+?)\s*$", line)
        if match is None or match.group(2).startswith("["):
            continue
        name, text = match.groups()
        path = ASTERISK_SOUNDS / f"{name}.wav"
        if path.is_file():
            pairs.append({"audio": str(path), "text": text, "source": "asterisk", "split": split_of(name)})
    return pairs


def corpus_rows(data_dir: str, split: str, tasks: list[str] | None = None, limit: int | None = None,
                seed: int = 0, languages: list[str] | None = None, sources: list[str] | None = None) -> list[dict]:
    """Rows of the offline corpus (`mint data build`) with the audio as encoded bytes (decoded later, once).

    `languages` keeps rows in those languages (plus language-less sounds, ""); `sources` keeps those sources.
    `limit` draws a seeded random subset of what is left."""
    import random

    from datasets import Audio, load_from_disk

    dataset = load_from_disk(data_dir)[split].cast_column("audio", Audio(decode=False))
    if tasks:
        dataset = dataset.filter(lambda task: task in tasks, input_columns="task")
    if languages:
        keep = set(languages) | {""}
        dataset = dataset.filter(lambda language: language in keep, input_columns="language")
    if sources:
        dataset = dataset.filter(lambda source: source in sources, input_columns="source")
    indices = list(range(len(dataset)))
    if limit is not None and limit < len(indices):
        indices = sorted(random.Random(seed).sample(indices, limit))
    rows = []
    for row in dataset.select(indices):
        rows.append({"audio": row["audio"]["bytes"], "text": row["text"], "instruction": row["instruction"],
                     "task": row["task"], "clip_id": row["clip_id"], "source": row["source"],
                     "language": row["language"]})
    return rows
