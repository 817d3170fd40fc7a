"""Public corpora read into the corpus schema from small fixtures in each dataset's released file layout, from a
local folder and from a Hub dataset repo (the local mock Hub)."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests import mockhub
from tests.conftest import ROOT, tone
from mint.training.public_corpora import load_public, to_dataset_dict


def wav(path, seconds=0.5, freq=440):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, 16000, freq), 16000)


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def make_esc50(root):
    rows = []
    for i, (fold, category) in enumerate([(1, "dog"), (2, "rain"), (4, "crying_baby"), (5, "door_wood_knock")]):
        name = f"{fold}-10{i}-A-{i}.wav"
        wav(root / "audio" / name)
        rows.append([name, fold, i, category, "False", f"10{i}", "A"])
    rows.append(["5-999-A-9.wav", 5, 9, "missing", "False", "999", "A"])  # listed, but no audio file
    write_csv(root / "meta" / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"], rows)


def make_clotho(root):
    for part in ("development", "validation", "evaluation"):
        wav(root / part / f"{part} clip.wav")
        write_csv(root / f"clotho_captions_{part}.csv", ["file_name"] + [f"caption_{i}" for i in range(1, 6)],
                  [[f"{part} clip.wav"] + [f"{part} caption {i}" for i in range(1, 6)]])


def make_clotho_aqa(root):
    wav(root / "audio_files" / "birds.wav")
    for part in ("train", "val", "test"):
        write_csv(root / f"clotho_aqa_{part}.csv", ["file_name", "QuestionText", "answer", "confidence"],
                  [["birds.wav", "Are birds singing?", "yes", "yes"], ["birds.wav", "Is it raining?", "no", "maybe"]])


def make_audiocaps(root):
    for part, (cap_id, yt) in {"train": (91139, "r1nicOVtvkQ"), "val": (97151, "vfY_TJq7n_U"),
                               "test": (103549, "7fmOlUlwoNg")}.items():
        wav(root / "audio" / part / f"{yt}.wav")
        write_csv(root / "dataset" / f"{part}.csv", ["audiocap_id", "youtube_id", "start_time", "caption"],
                  [[cap_id, yt, 30, f"A {part} sound plays"]])


def make_wavcaps(root):
    entries = [{"id": f"{i}", "caption": f"Sound number {i}.", "duration": 1.0} for i in range(6)]
    (root / "json_files" / "SoundBible").mkdir(parents=True)
    (root / "json_files" / "SoundBible" / "sb_final.json").write_text(json.dumps({"data": entries}))
    (root / "json_files" / "BBC_Sound_Effects").mkdir(parents=True)
    (root / "json_files" / "BBC_Sound_Effects" / "bbc_final.json").write_text(
        json.dumps([{"id": "07001001", "caption": "A door slams.", "audio": "wav_path"}]))
    for i in range(6):
        wav(root / "SoundBible_flac" / f"{i}.flac")
    wav(root / "BBC_flac" / "07001001.flac")


FIXTURES = {"esc50": make_esc50, "clotho": make_clotho, "clotho_aqa": make_clotho_aqa, "audiocaps": make_audiocaps,
            "wavcaps": make_wavcaps}
EXPECTED_ROWS = {"esc50": 4, "clotho": 15, "clotho_aqa": 6, "audiocaps": 3, "wavcaps": 7}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_local_folder(name, tmp_path):
    FIXTURES[name](tmp_path)
    rows, report = load_public(name, tmp_path)
    assert len(rows) == EXPECTED_ROWS[name]
    assert all(r["source"] == name and r["text"] and r["instruction"] and os.path.isfile(r["audio"]) for r in rows)
    if name in ("esc50", "clotho", "clotho_aqa", "audiocaps"):  # the released splits are kept
        assert set(report["rows"]) == {"train", "validation", "test"}
    dataset = to_dataset_dict(rows)
    split = next(iter(dataset.values()))
    assert np.asarray(split[0]["audio"]["array"]).size > 0
    if name == "esc50":
        assert {r["text"] for r in rows if r["split"] == "test"} == {"door wood knock"}
    if name == "clotho_aqa":
        assert {(r["instruction"], r["text"]) for r in rows} == {("Are birds singing?", "yes"), ("Is it raining?", "no")}


def test_unknown_corpus_and_missing_audio(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus"):
        load_public("librispeech", tmp_path)
    (tmp_path / "meta").mkdir()
    with pytest.raises(FileNotFoundError, match="no audio files"):
        load_public("esc50", tmp_path)


def test_from_hub_dataset_repo(tmp_path):
    make_clotho(tmp_path / "hub" / "datasets" / "mint-test" / "clotho")
    with mockhub.running(tmp_path / "hub") as url:
        code = ("import json\n"
                "from mint.training.public_corpora import load_public\n"
                "rows, report = load_public('clotho', 'mint-test/clotho')\n"
                "print(json.dumps(report))")
        env = {**os.environ, "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["rows"] == {"train": 5, "validation": 5, "test": 5}
