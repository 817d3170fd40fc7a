"""The offline corpus: schema, deterministic splits by source file, audio decoding, and generated content that is
what its text says."""

import numpy as np
import pytest
from datasets import Audio, load_from_disk

from mint.training.corpus import PITCHES, QUICK_SOURCES, build, generated_specs, make_clip, tuxpaint_rows


COLUMNS = {"audio", "text", "task", "instruction", "source", "license", "split", "language", "clip_id", "speaker",
           "held_out"}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out, stats = build(tmp_path_factory.mktemp("corpus") / "mint-corpus", max_per_source=12, sources=QUICK_SOURCES)
    return load_from_disk(str(out)), stats, out


def test_schema_splits_and_card(small_corpus):
    corpus, stats, out = small_corpus
    assert set(corpus) == {"train", "validation", "test"}
    for split, dataset in corpus.items():
        assert set(dataset.column_names) == COLUMNS
        assert set(dataset["split"]) <= {split}
    sources = set().union(*(set(d["source"]) for d in corpus.values()))
    assert {"asterisk", "ktuberling", "klettres", "tuxpaint", "freedesktop", "generated"} <= sources
    assert stats["missing_sources"] == [] and stats["real_clips"] > stats["generated_clips"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "CC-BY-SA-3.0" in card and f"{stats['clips']} clips" in card


def test_audio_decodes_through_datasets(small_corpus):
    corpus, _, _ = small_corpus
    resampled = corpus["train"].cast_column("audio", Audio(sampling_rate=16000))
    for i in range(0, len(resampled), max(1, len(resampled) // 8)):
        audio = resampled[i]["audio"]
        array = np.asarray(audio["array"])
        assert audio["sampling_rate"] == 16000 and array.size > 0 and np.isfinite(array).all()


def test_splits_are_deterministic_and_written_in_parts_alike(small_corpus, tmp_path, monkeypatch):
    """A second build, its splits written in Arrow parts of 5 rows (a large corpus's bytes overflow one array), holds
    the same rows in the same order."""
    from mint.training import corpus as module

    corpus, _, _ = small_corpus
    monkeypatch.setattr(module, "ROWS_PER_PART", 5)
    again = load_from_disk(str(build(tmp_path / "again", max_per_source=12, sources=QUICK_SOURCES)[0]))
    for split in corpus:
        assert list(corpus[split]["clip_id"]) == list(again[split]["clip_id"])
        assert list(corpus[split]["text"]) == list(again[split]["text"])
    assert len(corpus["train"]) > 5


def test_a_stamp_and_its_descriptions_share_a_split():
    rows = tuxpaint_rows()
    by_stamp = {}
    for r in rows:
        stamp = r["clip_id"].split("/desc_")[0]
        by_stamp.setdefault(stamp, set()).add(r["split"])
    assert len(rows) > 1000 and all(len(splits) == 1 for splits in by_stamp.values())


def bursts(path) -> int:
    import soundfile as sf

    wav, rate = sf.read(path)
    frame = rate // 100
    energy = np.array([np.abs(wav[i : i + frame]).max() for i in range(0, len(wav) - frame, frame)])
    loud = energy > 0.1
    return int(np.sum(loud[1:] & ~loud[:-1]) + loud[0])


def test_generated_tones_have_the_stated_count_and_pitch(tmp_path):
    import soundfile as sf

    specs = [s for s in generated_specs() if s["key"].startswith("tones/")][:12]
    for spec in specs:
        _, count, freq, _ = spec["make"]
        path = make_clip(spec, tmp_path)
        assert bursts(path) == count, spec
        wav, rate = sf.read(path)
        spectrum = np.abs(np.fft.rfft(wav))
        assert abs(np.argmax(spectrum) * rate / len(wav) - freq) < 5, spec
        if spec["task"] == "question_answering" and "low, medium" in spec["instruction"]:
            assert spec["text"] == PITCHES[freq]


def test_sentences_are_natural_read_aloud_and_deterministic(tmp_path):
    import soundfile as sf

    from mint.training.corpus import fortune_sentences

    sentences = fortune_sentences(50)
    assert len(set(sentences)) == 50 and sentences == fortune_sentences(50)
    assert all(5 <= len(s.split()) <= 16 and s[0].isupper() and s[-1] in ".!?" for s in sentences)
    spec = next(s for s in generated_specs() if s["key"].startswith("sentence/"))
    assert spec["task"] == "transcription" and spec["text"] == fortune_sentences()[0]
    wav, rate = sf.read(make_clip(spec, tmp_path))
    assert len(wav) / rate > 0.15 * len(spec["text"].split())  # read aloud, a word at least every 0.15 s


def test_asterisk_rows_share_the_stage1_split():
    from mint.training.corpus import asterisk_rows
    from mint.training.data import asterisk_pairs

    assert [r["split"] for r in asterisk_rows()] == [p["split"] for p in asterisk_pairs()]


def test_a_file_that_does_not_decode_never_becomes_a_row(tmp_path, monkeypatch):
    import mint.training.corpus as corpus

    import soundfile as sf

    good, placed = tmp_path / "bark.wav", tmp_path / "bark.xml"
    sf.write(good, np.zeros(8000, dtype=np.float32), 16000)
    placed.write_text("<actor><sound>bark.wav</sound></actor>")
    row = {"text": "A dog barks.", "task": "captioning", "instruction": "", "source": "effects", "license": "CC0",
           "split": "train", "language": "", "clip_id": "", "speaker": "", "held_out": False}
    rows = [{**row, "audio": str(good), "clip_id": f"good-{split}", "split": split}
            for split in ("train", "validation", "test")] + [{**row, "audio": str(placed), "clip_id": "placed"}]
    monkeypatch.setattr(corpus, "collect_rows", lambda *args: (rows, [], {}))
    monkeypatch.setattr(corpus, "corpus_stats", lambda *args: {"clips": 1})
    monkeypatch.setattr(corpus, "dataset_card", lambda stats: "card")
    out, _ = corpus.build(tmp_path / "corpus")
    assert load_from_disk(str(out))["train"]["clip_id"] == ["good-train"]
    assert corpus.clip_seconds(placed.read_bytes()) is None
    assert corpus.clip_seconds(good.read_bytes()) == pytest.approx(0.5)
