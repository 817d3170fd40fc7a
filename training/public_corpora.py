"""Public audio-text corpora in the offline corpus' schema, from a local folder in each dataset's released layout or
from a Hub dataset repo that mirrors it (downloaded with `snapshot_download`, then read the same way).

| name | layout read | task |
|---|---|---|
| esc50 | `meta/esc50.csv` (filename, fold, target, category, ...) + `audio/*.wav`; fold 5 test, fold 4 validation | classification |
| clotho | `clotho_captions_{development,validation,evaluation}.csv` (file_name, caption_1..5) + `{split}/*.wav` | captioning |
| clotho_aqa | `clotho_aqa_{train,val,test}.csv` (file_name, QuestionText, answer, confidence) + `audio_files/` | question_answering |
| audiocaps | `{train,val,test}.csv` (audiocap_id, youtube_id, start_time, caption) + audio named by youtube or audiocap id | captioning |
| wavcaps | `json_files/<subset>/*.json` (a list, or {"data": [...]}, of {"id", "caption", ...}) + audio named by id | captioning |

Audio is matched by file stem anywhere under the folder (`.wav`, `.flac`, `.mp3`, `.ogg`); rows whose audio is
missing are dropped and counted, never invented.
"""

import csv
import json
from collections import Counter
from pathlib import Path

from mint.training.corpus import INSTRUCTIONS, pick


AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg"}
LICENSES = {
    "esc50": "CC-BY-NC-3.0",
    "clotho": "Tampere University license (audio: Freesound, CC-BY / CC0 per clip)",
    "clotho_aqa": "Tampere University license (audio: Freesound, CC-BY / CC0 per clip)",
    "audiocaps": "MIT (captions); audio from YouTube",
    "wavcaps": "CC-BY-4.0 (captions), per-source audio licenses, academic use",
}


def _audio_index(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()}


def _row(name, audio, text, task, split, clip, instruction=None) -> dict:
    return {"audio": str(audio), "text": text, "task": task, "source": name, "license": LICENSES[name],
            "split": split, "language": "en", "clip_id": f"{name}/{clip}",
            "instruction": instruction or pick(INSTRUCTIONS[task], f"{name}/{clip}")}


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def esc50(root: Path, audio: dict) -> list[dict]:
    rows = []
    for r in _csv(root / "meta" / "esc50.csv"):
        stem = Path(r["filename"]).stem
        if stem in audio:
            split = {"5": "test", "4": "validation"}.get(r["fold"], "train")
            rows.append(_row("esc50", audio[stem], r["category"].replace("_", " "), "classification", split, stem))
    return rows


def clotho(root: Path, audio: dict) -> list[dict]:
    rows = []
    for part, split in (("development", "train"), ("validation", "validation"), ("evaluation", "test")):
        file = root / f"clotho_captions_{part}.csv"
        if not file.is_file():
            continue
        for r in _csv(file):
            stem = Path(r["file_name"]).stem
            if stem not in audio:
                continue
            for i in range(1, 6):
                caption = (r.get(f"caption_{i}") or "").strip()
                if caption:
                    rows.append(_row("clotho", audio[stem], caption, "captioning", split, f"{stem}#{i}"))
    return rows


def clotho_aqa(root: Path, audio: dict) -> list[dict]:
    rows = []
    for part, split in (("train", "train"), ("val", "validation"), ("test", "test")):
        file = root / f"clotho_aqa_{part}.csv"
        if not file.is_file():
            continue
        for i, r in enumerate(_csv(file)):
            stem = Path(r["file_name"]).stem
            question = r.get("QuestionText") or r.get("question")
            if stem in audio and question and r.get("answer"):
                rows.append(_row("clotho_aqa", audio[stem], r["answer"].strip(), "question_answering", split,
                                 f"{stem}#{i}", instruction=question.strip()))
    return rows


def audiocaps(root: Path, audio: dict) -> list[dict]:
    rows = []
    for part, split in (("train", "train"), ("val", "validation"), ("test", "test")):
        files = list(root.rglob(f"{part}.csv"))
        for file in files[:1]:
            for r in _csv(file):
                stem = next((s for s in (r["youtube_id"], r["audiocap_id"], f"Y{r['youtube_id']}") if s in audio), None)
                if stem is not None:
                    rows.append(_row("audiocaps", audio[stem], r["caption"].strip(), "captioning", split,
                                     r["audiocap_id"]))
    return rows


def wavcaps(root: Path, audio: dict) -> list[dict]:
    from mint.training.data import split_of

    rows = []
    for file in sorted((root / "json_files").rglob("*.json")):
        if "blacklist" in file.parts:
            continue
        data = json.loads(file.read_text(encoding="utf-8"))
        for entry in data["data"] if isinstance(data, dict) else data:
            stem = Path(str(entry["id"])).stem
            if stem in audio and entry.get("caption"):
                clip = f"{file.parent.name}/{stem}"
                rows.append(_row("wavcaps", audio[stem], entry["caption"].strip(), "captioning",
                                 split_of(f"wavcaps/{clip}"), clip))
    return rows


LOADERS = {"esc50": esc50, "clotho": clotho, "clotho_aqa": clotho_aqa, "audiocaps": audiocaps, "wavcaps": wavcaps}


def load_public(name: str, source: str | Path) -> tuple[list[dict], dict]:
    """Rows of corpus `name` from a local folder, or from a Hub dataset repo id (`org/name`).

    Returns the rows and a report: rows per split, and how many entries had no audio file.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(sorted(LOADERS))}")
    root = Path(source)
    if not root.is_dir():
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(str(source), repo_type="dataset"))
    audio = _audio_index(root)
    if not audio:
        raise FileNotFoundError(f"{root}: no audio files (.wav/.flac/.mp3/.ogg) found; extract the archives first")
    rows = LOADERS[name](root, audio)
    used = {Path(r["audio"]).stem for r in rows}
    report = {"rows": dict(Counter(r["split"] for r in rows)), "audio_files": len(audio),
              "audio_files_unused": len(set(audio) - used)}
    return rows, report


def to_dataset_dict(rows: list[dict]):
    """The rows as a `DatasetDict` with the corpus columns, audio decoded lazily by `datasets`."""
    from datasets import Audio, Dataset, DatasetDict

    splits = {}
    for split in ("train", "validation", "test"):
        chosen = [r for r in rows if r["split"] == split]
        if chosen:
            columns = {key: [r[key] for r in chosen] for key in chosen[0]}
            splits[split] = Dataset.from_dict(columns).cast_column("audio", Audio())
    return DatasetDict(splits)
