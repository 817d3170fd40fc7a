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
    """Rows of the offline corpus (`mint data build`) with the audio as encoded bytes (decoded later, once); any
    other `data_dir` is your own data (`own_rows`).

    `languages` keeps rows in those languages (plus language-less sounds, ""); `sources` keeps those sources.
    `limit` draws a seeded random subset of what is left."""
    import random

    from datasets import Audio, load_from_disk

    if not is_corpus(data_dir):
        return own_rows(data_dir, split, tasks, limit, seed)
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


# ---- your own data ---------------------------------------------------------------------------------------------
TABLE_SUFFIXES = {".csv": "csv", ".jsonl": "json", ".json": "json"}
AUDIO_COLUMNS = ("audio", "file_name", "path")
TEXT_COLUMNS = ("text", "transcription", "sentence", "caption")
DEFAULT_TASK = "transcription"


def is_corpus(data: str) -> bool:
    """The offline corpus (`mint data build`): a saved DatasetDict whose rows carry a task and a clip id."""
    import json

    path = Path(data)
    if not (path / "dataset_dict.json").is_file():
        return False
    split = json.loads((path / "dataset_dict.json").read_text())["splits"][0]
    info = path / split / "dataset_info.json"
    return info.is_file() and {"task", "clip_id"} <= set(json.loads(info.read_text()).get("features", {}))


def _table(path: Path):
    """A CSV or JSON-lines file of `audio,text[,instruction][,task]` as a Dataset, audio paths made absolute
    (relative ones are read from the file's folder) and checked."""
    from datasets import Value, load_dataset

    table = load_dataset(TABLE_SUFFIXES[path.suffix.lower()], data_files=str(path), split="train")
    column = next((c for c in AUDIO_COLUMNS if c in table.column_names), None)
    if column is None:
        raise ValueError(f"{path}: no audio column (one of {', '.join(AUDIO_COLUMNS)}); columns: {table.column_names}")
    if column != "audio":
        table = table.rename_column(column, "audio")
    table = table.map(lambda audio: {"audio": str((path.parent / audio).resolve())}, input_columns="audio")
    table = table.cast_column("audio", Value("string"))  # CSV gives large_string, which `Audio` does not cast from
    missing = [a for a in table["audio"] if not Path(a).is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: {len(missing)} audio file(s) not found, first {missing[0]}")
    return table


def own_dataset(data: str, seed: int = 0, validation_fraction: float = 0.1):
    """Your clips as a `DatasetDict` of `audio` (an undecoded `Audio` column), `text`, `instruction`, `task`, with a
    validation split (a seeded `validation_fraction` of train, at least one clip) when the data has none.

    `data` is a folder of audio files with one metadata table (CSV or JSON lines: `audio` or `file_name`, `text`,
    optional `instruction` and `task`), such a table itself, a `datasets` Dataset or DatasetDict saved to disk, or a
    Hub dataset id, whose audio column is an `Audio` feature. Rows without a task are transcripts (`text` is what
    is said); `task` may be any of the corpus' tasks (captioning, classification, ...)."""
    from datasets import Audio, Dataset, DatasetDict, load_dataset, load_from_disk

    path = Path(data)
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()):
        dataset = load_from_disk(str(path))
    elif path.is_dir():
        tables = sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
        if len(tables) != 1:
            found = ", ".join(p.name for p in tables) or "none"
            raise ValueError(f"{path}: expected one metadata table (.csv or .jsonl) beside the audio, found {found}")
        dataset = _table(tables[0])
    elif path.is_file():
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise ValueError(f"{path}: not a metadata table (.csv, .jsonl) or a dataset folder")
        dataset = _table(path)
    elif path.is_absolute() or data.startswith((".", "~")) or data.count("/") > 1:
        raise FileNotFoundError(f"{data}: no such file or folder")
    else:
        try:
            dataset = load_dataset(data)  # a Hub dataset id
        except (FileNotFoundError, ConnectionError) as error:
            raise FileNotFoundError(f"{data}: no such file or folder, and no Hub dataset of that id ({error})") from error
    dataset = dataset if isinstance(dataset, DatasetDict) else DatasetDict({"train": dataset})
    if "train" not in dataset:
        raise ValueError(f"{data}: no train split (splits: {', '.join(dataset)})")
    columns = dataset["train"].column_names
    if "audio" not in columns:
        raise ValueError(f"{data}: no audio column; columns: {columns}")
    text = next((c for c in TEXT_COLUMNS if c in columns), None)
    if text is None:
        raise ValueError(f"{data}: no text column (one of {', '.join(TEXT_COLUMNS)}); columns: {columns}")
    if text != "text":
        dataset = dataset.rename_column(text, "text")
    dataset = dataset.cast_column("audio", Audio(decode=False))
    if "validation" not in dataset:
        train = dataset["train"]
        if len(train) < 2:
            raise ValueError(f"{data}: {len(train)} clip(s); at least 2 are needed (one is kept for validation)")
        parts = train.train_test_split(test_size=max(1, round(validation_fraction * len(train))), seed=seed)
        dataset["train"], dataset["validation"] = parts["train"], parts["test"]
    return dataset


def own_rows(data: str, split: str, tasks: list[str] | None = None, limit: int | None = None, seed: int = 0
             ) -> list[dict]:
    """Rows of your own data shaped as `corpus_rows`' (see `own_dataset`); `test` falls back to `validation` when
    the data has no test split."""
    import random

    from mint.training.corpus import INSTRUCTIONS

    dataset = own_dataset(data, seed)
    split = split if split in dataset else "validation" if split == "test" else split
    if split not in dataset:
        raise ValueError(f"{data}: no {split} split (splits: {', '.join(dataset)})")
    rows = []
    for i, row in enumerate(dataset[split]):
        task = row.get("task") or DEFAULT_TASK
        audio = row["audio"]["bytes"] or row["audio"]["path"]
        name = Path(row["audio"]["path"]).stem if row["audio"]["path"] else f"{split}-{i}"
        rows.append({"audio": audio, "text": row["text"], "task": task, "clip_id": f"own/{name}",
                     "instruction": row.get("instruction") or INSTRUCTIONS[task][0], "source": "own",
                     "language": row.get("language") or ""})
    if tasks:
        rows = [r for r in rows if r["task"] in tasks]
    if limit is not None and limit < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), limit))]
    return rows
