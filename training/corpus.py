"""The offline corpus: real recordings from Debian packages, plus espeak-ng / sox clips whose content is known exactly,
as a `datasets.DatasetDict` with one schema for every source.

    mint data build --out data/mint-corpus          # every source; --sources to choose

Columns: audio, text, task, instruction, source, license, split, language, clip_id, speaker, held_out. Splits are
deterministic, by source file (a Tux Paint stamp's sound and its spoken descriptions stay together) and, for the
speech of the corpus v2 sources, by speaker; whole held-out sources go to "test". The v2 sources (more languages,
game speech, sound effects, instruments, more synthetic voices) live in `training/sources/`, each optional.
"""

import hashlib
import io
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from mint.io import atomic_folder
from mint.training.data import ASTERISK_SOUNDS, asterisk_pairs, split_of


INSTRUCTIONS = {
    "transcription": ["Transcribe the speech.", "What is being said?", "Write down the spoken words."],
    "captioning": ["Describe the audio.", "Caption the sound.", "What do you hear?"],
    "classification": ["What is this sound?", "Name the sound you hear.", "Classify the audio."],
    "spoken_word": ["Which word is spoken?", "What object is named in the recording?"],
    "letter": ["Which letter or syllable is spoken?", "Say which letter or syllable you hear."],
    "language_id": ["What language is spoken?", "Which language is this?"],
    "question_answering": ["Answer the question about the audio."],  # generated QA rows carry their question
}
LICENSES = {
    "asterisk": "CC-BY-SA-3.0",
    "ktuberling": "GPL-2.0-or-later",
    "klettres": "GPL-2.0-or-later",
    "tuxpaint": "GPL-2.0",
    "freedesktop": "CC-BY-SA-3.0 / CC-BY-3.0 / GPL-2.0-or-later (per file, see the package)",
    "alsa": "GPL-2.0",
    "generated": "CC0-1.0",
}
KTUBERLING = Path("/usr/share/ktuberling/sounds")
KLETTRES = Path("/usr/share/klettres")
TUXPAINT = Path("/usr/share/tuxpaint/stamps")
FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")
ALSA = Path("/usr/share/sounds/alsa")


def pick(options: list[str], key: str) -> str:
    """A deterministic choice, so rebuilding gives the same rows."""
    return options[int(hashlib.md5(key.encode()).hexdigest(), 16) % len(options)]


def row(path, text, task, source, key, language="en", instruction=None, license=None, speaker="") -> dict:
    """One corpus row; `speaker` names an identifiable real speaker ("" when unknown or synthetic)."""
    return {
        "audio": str(path), "text": text, "task": task, "source": source, "license": license or LICENSES[source],
        "split": split_of(f"{source}/{key}"), "language": language, "clip_id": f"{source}/{key}",
        "instruction": instruction or pick(INSTRUCTIONS[task], f"{source}/{key}/{task}"),
        "speaker": speaker, "held_out": False,
    }


# ---- real recordings -------------------------------------------------------------------------------------------
def asterisk_rows() -> list[dict]:
    """The prompts keep the split `asterisk_pairs` gives them, which stage 1 and the Whisper checks also use."""
    return [{**row(p["audio"], p["text"], "transcription", "asterisk",
                   Path(p["audio"]).relative_to(ASTERISK_SOUNDS).as_posix(), speaker="asterisk/allison"),
             "split": p["split"]}
            for p in asterisk_pairs()]


def ktuberling_rows() -> list[dict]:
    rows = []
    for theme in sorted(KTUBERLING.glob("*.soundtheme")):
        root = ET.parse(theme).getroot()
        language = root.get("code", theme.stem)
        for sound in root.iter("sound"):
            path = KTUBERLING / sound.get("file")
            if path.is_file():
                label = sound.get("name").replace("_", " ")
                rows.append(row(path, label, "spoken_word", "ktuberling", sound.get("file"), language))
    return rows


def klettres_rows() -> list[dict]:
    rows = []
    for sounds in sorted(KLETTRES.glob("*/sounds.xml")):
        try:
            root = ET.fromstring(re.sub(r"<!--.*?-->", "", sounds.read_text(encoding="utf-8"), flags=re.S))
        except ET.ParseError:
            continue
        for language in root.iter("language"):
            code = language.get("code")
            for sound in language.iter("sound"):
                path = KLETTRES / sound.get("file")
                if path.is_file():
                    rows.append(row(path, sound.get("name"), "letter", "klettres", sound.get("file"), code))
    return rows


def _tuxpaint_texts(txt: Path) -> dict[str, str]:
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    texts = {"en": lines[0].strip()} if lines else {}
    for line in lines[1:]:
        match = re.match(r"^([\w@]+)\.utf8=(.*)$", line.strip())
        if match and match.group(2).strip():
            texts[match.group(1)] = match.group(2).strip()
    return texts


def tuxpaint_rows() -> list[dict]:
    """Sound effects captioned by the stamp's English text; spoken descriptions transcribed in their language."""
    rows = []
    for txt in sorted(TUXPAINT.rglob("*.txt")):
        texts = _tuxpaint_texts(txt)
        if not texts.get("en"):
            continue
        stamp = txt.relative_to(TUXPAINT).with_suffix("").as_posix()
        effect = txt.with_suffix(".ogg")
        if effect.is_file():
            rows.append(row(effect, texts["en"], "captioning", "tuxpaint", stamp))
        for desc in sorted(txt.parent.glob(f"{txt.stem}_desc*.ogg")):
            language = desc.stem[len(txt.stem) + len("_desc") :].lstrip("_") or "en"
            text = texts.get(language)
            if text:
                rows.append({**row(desc, text, "transcription", "tuxpaint", stamp, language),
                             "clip_id": f"tuxpaint/{stamp}/desc_{language}"})
    return rows


def freedesktop_rows() -> list[dict]:
    rows = []
    for path in sorted(FREEDESKTOP.glob("*.oga")):
        label = path.stem.replace("-", " ")
        rows.append(row(path, label, "classification", "freedesktop", path.name))
    for path in sorted(ALSA.glob("*.wav")):
        if path.stem == "Noise":
            rows.append(row(path, "white noise", "classification", "alsa", path.name))
        else:
            rows.append(row(path, path.stem.replace("_", " "), "transcription", "alsa", path.name))
    return rows


# ---- generated clips with exactly known content --------------------------------------------------------------------
WORDS = ("red blue green yellow black white small large happy quiet loud fast slow dog cat bird horse cow car train "
         "phone door window water coffee music morning evening city river mountain garden kitchen street market "
         "open close call send press wait start stop play read write walk run sleep listen speak please thank you "
         "today tomorrow one two three four five six seven eight nine ten").split()
EN_VOICES = ["en-us", "en-gb", "en+m3", "en+f3", "en-us+f2", "en-gb+m1", "en+f4", "en-gb-scotland"]
LANGUAGES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "nl": "Dutch",
             "pt": "Portuguese", "pl": "Polish"}
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six"]
PITCHES = {220: "low", 440: "medium", 880: "high", 1760: "very high"}
FORTUNES = Path("/usr/share/games/fortunes")
FORTUNE_FILES = ("wisdom", "platitudes", "fortunes", "people", "work", "education", "food", "pets", "kids", "science",
                 "sports", "literature", "humorists", "miscellaneous")
SENTENCES = 1500


def fortune_sentences(limit: int | None = SENTENCES, seed: int = 0,
                      files: tuple[str, ...] = FORTUNE_FILES) -> list[str]:
    """Natural English sentences (Debian's `fortunes`) of 5 to 16 plain words, for espeak-ng to read: the varied
    vocabulary the phone prompts and word lists lack. Empty when the package is not installed."""
    found = set()
    for name in files:
        path = FORTUNES / name
        if not path.is_file():
            continue
        for entry in path.read_text(encoding="utf-8", errors="ignore").split("\n%\n"):
            lines = [line.strip() for line in entry.splitlines()]
            body = " ".join(line for line in lines if line and not line.startswith("--"))
            for sentence in re.split(r"(?<=[.!?])\s+", body):
                if (5 <= len(sentence.split()) <= 16 and re.fullmatch(r"[A-Za-z ,.'!?-]+", sentence)
                        and sentence[0].isupper() and sentence[-1] in ".!?"):
                    found.add(sentence)
    sentences = sorted(found)
    random.Random(seed).shuffle(sentences)
    return sentences[:limit]


def _run(args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _speech(out: Path, text: str, voice: str, speed: int, pitch: int):
    _run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text])


def _tones(out: Path, count: int, freq: int, length: float, gap: float = 0.25):
    parts = []
    for i in range(count):
        parts += [f"|sox -n -r 16000 -c 1 -p synth {length} sine {freq} fade 0.01 {length} 0.01"]
        if i < count - 1:
            parts += [f"|sox -n -r 16000 -c 1 -p trim 0 {gap}"]
    _run(["sox", *parts, str(out)])


def _noise(out: Path, colour: str, seconds: float, gain: float = -6):
    _run(["sox", "-n", "-r", "16000", "-c", "1", str(out), "synth", str(seconds), f"{colour}noise", "gain", str(gain)])


def generated_specs(seed: int = 0) -> list[dict]:
    """What to generate: each spec has a `make` recipe and its row fields."""
    rng = random.Random(seed)
    specs = []
    for i in range(500):  # English speech with its transcript, voice and speed
        words = rng.sample(WORDS, rng.randint(3, 9))
        text = " ".join(words).capitalize() + "."
        voice = rng.choice(EN_VOICES)
        specs.append({"key": f"speech/{i:04d}", "make": ("speech", text, voice, rng.randint(130, 190), rng.randint(30, 70)),
                      "text": text, "task": "transcription", "language": "en"})
    for i in range(240):  # language identification: digits spoken in eight languages
        code = list(LANGUAGES)[i % len(LANGUAGES)]
        digits = " ".join(str(rng.randint(0, 9)) for _ in range(rng.randint(3, 6)))
        specs.append({"key": f"language/{i:04d}", "make": ("speech", digits, code, 150, 50),
                      "text": LANGUAGES[code], "task": "language_id", "language": code})
    for i in range(300):  # tones: how many, how high, how long
        count, freq, length = rng.randint(1, 5), rng.choice(list(PITCHES)), rng.choice([0.15, 0.3, 0.6])
        kind = "short" if length < 0.2 else "long" if length > 0.5 else ""
        noun = "beep" if count == 1 else "beeps"
        caption = f"{NUMBER_WORDS[count].capitalize()} {kind + ' ' if kind else ''}{freq} Hz {noun}."
        task, instruction, text = [
            ("captioning", None, caption),
            ("question_answering", "How many beeps are there?", NUMBER_WORDS[count]),
            ("question_answering", "Is the tone low, medium, high or very high?", PITCHES[freq]),
        ][i % 3]
        specs.append({"key": f"tones/{i:04d}", "make": ("tones", count, freq, length), "text": text, "task": task,
                      "language": "", "instruction": instruction})
    for i in range(120):  # noise colours
        colour = ["white", "pink", "brown"][i % 3]
        specs.append({"key": f"noise/{i:04d}", "make": ("noise", colour, rng.choice([1.0, 2.0, 3.0])),
                      "text": f"{colour} noise", "task": "classification", "language": ""})
    for i in range(240):  # sequences: which comes first, the beep or the voice
        word = rng.choice(WORDS)
        beep_first = rng.random() < 0.5
        freq = rng.choice(list(PITCHES))
        caption = (f"A {freq} Hz beep, then a voice says \"{word}\"." if beep_first
                   else f"A voice says \"{word}\", then a {freq} Hz beep.")
        task, instruction, text = [
            ("question_answering", "Which comes first, the beep or the voice?", "the beep" if beep_first else "the voice"),
            ("captioning", None, caption),
            ("question_answering", "What word does the voice say?", word),
        ][i % 3]
        specs.append({"key": f"sequence/{i:04d}", "make": ("sequence", word, freq, beep_first, rng.choice(EN_VOICES)),
                      "text": text, "task": task, "language": "en", "instruction": instruction})
    for i in range(120):  # mixtures: speech over noise
        word, colour = rng.choice(WORDS), ["white", "pink", "brown"][i % 3]
        specs.append({"key": f"mixture/{i:04d}", "make": ("mixture", word, colour, rng.choice(EN_VOICES)),
                      "text": f"A voice says \"{word}\" over {colour} noise.", "task": "captioning", "language": "en"})
    for i, text in enumerate(fortune_sentences(seed=seed)):  # natural sentences read aloud
        specs.append({"key": f"sentence/{i:04d}", "make": ("speech", text, rng.choice(EN_VOICES), rng.randint(140, 190),
                                                           rng.randint(35, 65)),
                      "text": text, "task": "transcription", "language": "en"})
    return specs


def make_clip(spec: dict, folder: Path) -> Path:
    out = folder / (spec["key"].replace("/", "_") + ".wav")
    kind, *args = spec["make"]
    if kind == "speech":
        _speech(out, *args)
    elif kind == "tones":
        _tones(out, *args)
    elif kind == "noise":
        _noise(out, *args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            speech, other = Path(tmp) / "speech.wav", Path(tmp) / "other.wav"
            if kind == "sequence":
                word, freq, beep_first, voice = args
                _speech(speech, word, voice, 150, 50)
                _run(["sox", str(speech), "-r", "16000", "-c", "1", str(Path(tmp) / "s16.wav")])
                _tones(other, 1, freq, 0.3)
                parts = [str(other), str(Path(tmp) / "s16.wav")]
                _run(["sox", *(parts if beep_first else parts[::-1]), str(out)])
            else:  # mixture
                word, colour, voice = args
                _speech(speech, word, voice, 150, 50)
                _run(["sox", str(speech), "-r", "16000", "-c", "1", str(Path(tmp) / "s16.wav")])
                _noise(other, colour, 1.5, gain=-18)
                _run(["sox", "-m", str(Path(tmp) / "s16.wav"), str(other), str(out)])
    return out


def generated_rows(folder: Path, seed: int = 0, limit: int | None = None) -> list[dict]:
    """Rows of the generated clips, made once into `folder/<digest of the specs>`: in a temporary folder renamed into
    place when whole, so a killed build leaves nothing half made and a second build reuses them."""
    specs = generated_specs(seed)
    if limit is not None:
        specs = specs[:: max(1, len(specs) // limit)][:limit]
    digest = hashlib.md5(json.dumps([[s["key"], *s["make"]] for s in specs]).encode()).hexdigest()[:12]

    def make(work: Path):
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(tqdm(pool.map(lambda s: make_clip(s, work), specs), total=len(specs), desc="generating clips"))

    target = complete_folder(Path(folder), f"generated-{digest}", make)
    return [row(target / (spec["key"].replace("/", "_") + ".wav"), spec["text"], spec["task"], "generated",
                spec["key"], spec["language"], spec.get("instruction")) for spec in specs]


# ---- build --------------------------------------------------------------------------------------------------------
# The corpus v2 sources build their rows with `row` above, so they are imported here, after it.
from mint.training.sources.asterisk import asterisk_language_rows  # noqa: E402
from mint.training.sources.effects import effect_rows  # noqa: E402
from mint.training.sources.instruments import instrument_rows  # noqa: E402
from mint.training.sources.packages import PackageUnavailable, cache_root, complete_folder  # noqa: E402
from mint.training.sources.voices import VOICES, more_voice_rows, voice_rows  # noqa: E402

REAL_SOURCES = {
    "asterisk": asterisk_rows,
    "ktuberling": ktuberling_rows,
    "klettres": klettres_rows,
    "tuxpaint": tuxpaint_rows,
    "freedesktop": freedesktop_rows,
    "asterisk-languages": asterisk_language_rows,
    "0ad": lambda: effect_rows("0ad"),
    "megaglest": lambda: effect_rows("megaglest"),
    "supertuxkart": lambda: effect_rows("supertuxkart"),
    "instruments": instrument_rows,
}
# Whole sources no training stage sees: every row goes to "test", for the tasks named.
HELD_OUT_SOURCES = {
    "drascula": "English transcription: a whole game, its voice actors unheard in training",
    "megaglest": "sound classification and captioning: a whole sound pack",
    "asterisk-it": "transcription and language identification: a whole language's voice",
}
SYNTHETIC_SOURCES = {"generated", "synthetic-voices"}
RENDERED_SOURCES = {"instruments"}  # recorded instrument samples played from written MIDI: labelled, not recordings
SPEECH_TASKS = {"transcription", "spoken_word", "letter", "language_id"}
WORD_SOURCES = {"alsa"}  # spoken channel names ("Front Left"): speech, but not sentences
SOUND_TASKS = {"classification", "captioning"}
ALL_SOURCES = [*REAL_SOURCES, "games", "generated", "synthetic-voices"]
# The first corpus's sources: installed by `make setup`, built in a minute (quick builds and tests).
QUICK_SOURCES = ["asterisk", "ktuberling", "klettres", "tuxpaint", "freedesktop", "generated"]
# An optional source that cannot be fetched or run is reported missing, with the reason, never fatal.
UNAVAILABLE = (PackageUnavailable, FileNotFoundError, OSError, ImportError, RuntimeError,
               subprocess.CalledProcessError)


def speaker_splits(rows: list[dict]) -> None:
    """Game speech goes to splits by speaker, so no voice actor is in two splits: each game's busiest speaker (the
    hero) trains, the others follow the md5 of their name; lines whose speaker the script does not name train."""
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], Counter())[r["speaker"]] += 1
    for r in rows:
        busiest = by_source[r["source"]].most_common(1)[0][0]
        if r["speaker"] == busiest or r["speaker"].endswith("/unidentified"):
            r["split"] = "train"
        else:
            r["split"] = split_of(f"speaker/{r['speaker']}")


def game_rows(verify_budget: float | None = None) -> tuple[list[dict], dict]:
    """Verified voice-acted game speech (`mint.training.sources.games`), split by speaker. `verify_budget` caps the
    seconds of Whisper decoding per game: pairs it does not reach are left out (and counted unchecked) this time."""
    from mint.training.sources.games import game_speech_rows

    found, stats = game_speech_rows(budget_seconds=verify_budget)
    rows = []
    for r in found:
        rows.append({**r, "split": "", "held_out": False, "speaker": r.get("speaker", "")})
    speaker_splits(rows)
    return rows, stats


def collect_rows(max_per_source: int | None = None, seed: int = 0, sources: list[str] | None = None,
                 verify_budget: float | None = None, more_sentences: int = 0) -> tuple[list[dict], list[str], dict]:
    """Rows of the chosen `sources` (all when None), the sources missing, and details: why a source is missing
    and the games' pairing verification. `more_sentences` adds that many training-only sentences read by the
    synthetic voices (`more_voice_rows`)."""
    wanted = set(ALL_SOURCES if sources is None else sources)
    unknown = wanted - set(ALL_SOURCES)
    if unknown:
        raise ValueError(f"unknown corpus sources {sorted(unknown)}; known: {ALL_SOURCES}")
    rows, missing, details = [], [], {"missing_reasons": {}, "games": {}}

    def cap(found):
        if max_per_source is None:
            return found
        return sorted(found, key=lambda r: hashlib.md5(r["clip_id"].encode()).hexdigest())[:max_per_source]

    def unavailable(name, error):
        missing.append(name)
        details["missing_reasons"][name] = f"{type(error).__name__}: {error}"[:300]

    for name, collect in REAL_SOURCES.items():
        if name not in wanted:
            continue
        try:
            found = collect()
        except UNAVAILABLE as error:
            unavailable(name, error)
            continue
        if not found:
            unavailable(name, FileNotFoundError("no clips found"))
        rows += cap(found)
    if "games" in wanted:
        try:
            found, details["games"] = game_rows(verify_budget)
        except UNAVAILABLE as error:
            unavailable("games", error)
        else:
            for game, stats in details["games"].items():
                if "missing" in stats:
                    unavailable(game, FileNotFoundError(stats["missing"]))
            rows += cap(found)
    if "generated" in wanted:
        rows += generated_rows(cache_root(), seed, limit=max_per_source)
        if not any((FORTUNES / name).is_file() for name in FORTUNE_FILES):
            missing.append("fortunes")
    if "synthetic-voices" in wanted:
        try:
            per_voice = None if max_per_source is None else max(1, max_per_source // len(VOICES))
            rows += voice_rows(seed=seed) if per_voice is None else voice_rows(per_voice, seed)
            if more_sentences:
                rows += more_voice_rows(more_sentences, seed)
        except UNAVAILABLE as error:
            unavailable("synthetic-voices", error)
    for r in rows:
        r.setdefault("speaker", "")
        r["held_out"] = r["source"] in HELD_OUT_SOURCES
        if r["held_out"]:
            r["split"] = "test"
    return rows, missing, details


ROWS_PER_PART = 2000
COLUMNS = ("audio", "text", "task", "instruction", "source", "license", "split", "language", "clip_id", "speaker",
           "held_out")


def clip_seconds(data: bytes) -> float | None:
    """Length of an encoded clip, or None when libsndfile (what `load_audio` and training read with) cannot open it:
    such a file never becomes a row."""
    import soundfile as sf

    try:
        return sf.info(io.BytesIO(data)).duration
    except (RuntimeError, sf.LibsndfileError):
        return None


def build(out: str | Path, max_per_source: int | None = None, seed: int = 0, sources: list[str] | None = None,
          verify_budget: float | None = None, more_sentences: int = 0):
    """Build the corpus into `out` (a `DatasetDict.save_to_disk` folder with a dataset card)."""
    from datasets import Audio, Dataset, DatasetDict, concatenate_datasets

    out = Path(out)
    start = time.time()
    rows, missing, details = collect_rows(max_per_source, seed, sources, verify_budget, more_sentences)
    if not rows:
        raise FileNotFoundError("no audio sources found; run `make setup` (as root) to install them")
    durations, undecodable, kept = {}, Counter(), []
    for r in tqdm(rows, desc="reading audio"):
        path = Path(r["audio"])
        data = path.read_bytes()
        if str(path) not in durations:
            durations[str(path)] = clip_seconds(data)
        if durations[str(path)] is None:  # never a label on audio that no reader can open
            undecodable[r["source"]] += 1
            continue
        kept.append({**r, "clip": str(path), "seconds": durations[str(path)],
                     "audio": {"path": path.name, "bytes": data}})
    rows = kept
    if undecodable:
        print(f"left out rows whose audio does not decode: {dict(undecodable)}", file=sys.stderr)
    splits = {}
    for split in ("train", "validation", "test"):
        chosen = [r for r in rows if r["split"] == split]
        # in parts: one Arrow array of every clip's bytes overflows its 32-bit offsets past 2 GB
        parts = [chosen[i : i + ROWS_PER_PART] for i in range(0, len(chosen), ROWS_PER_PART)] or [chosen]
        splits[split] = concatenate_datasets([
            Dataset.from_dict({key: [r[key] for r in part] for key in COLUMNS}).cast_column("audio", Audio())
            for part in parts])
    corpus = DatasetDict(splits)
    with atomic_folder(out) as staging:  # an old corpus is replaced whole, never half-deleted in place
        corpus.save_to_disk(str(staging))
        stats = corpus_stats(rows, missing, time.time() - start, staging, details)
        (staging / "README.md").write_text(dataset_card(stats))
        (staging / "stats.json").write_text(json.dumps(stats, indent=2))
    return out, stats


def _hours(rows) -> float:
    return round(sum({r["clip"]: r["seconds"] for r in rows}.values()) / 3600, 3)


def _named(rows) -> set[str]:
    """The identifiable speakers of `rows` (lines of an unnamed game character are not one speaker)."""
    return {r["speaker"] for r in rows if r["speaker"] and not r["speaker"].endswith("/unidentified")}


def corpus_stats(rows, missing, seconds, folder: Path, details: dict | None = None) -> dict:
    """Counts for the card and the command's JSON line. Rows carry `clip` (the audio file: one clip, whatever number
    of tasks it serves) and `seconds`."""
    details = details or {"missing_reasons": {}, "games": {}}
    real = [r for r in rows if r["source"] not in SYNTHETIC_SOURCES | RENDERED_SOURCES]
    speech = [r for r in real if r["task"] in SPEECH_TASKS]
    english = [r for r in real if r["task"] == "transcription" and r["language"].split("-")[0] == "en"
               and r["source"] not in WORD_SOURCES]
    sounds = [r for r in rows if r["task"] in SOUND_TASKS and r["source"] not in SYNTHETIC_SOURCES]
    per_source = {}
    for source in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == source]
        per_source[source] = {
            "clips": len({r["clip"] for r in mine}), "rows": len(mine), "hours": _hours(mine),
            "speakers": len(_named(mine)),
            "labels": len({r["text"] for r in mine if r["task"] == "classification"}),
            "licenses": sorted({r["license"] for r in mine}),
            "held_out": source in HELD_OUT_SOURCES,
            "splits": {s: len({r["clip"] for r in mine if r["split"] == s}) for s in ("train", "validation", "test")},
        }
    return {
        "clips": len({r["clip"] for r in rows}),
        "rows": len(rows),
        "real_clips": len({r["clip"] for r in real}),
        "rendered_clips": len({r["clip"] for r in rows if r["source"] in RENDERED_SOURCES}),
        "generated_clips": len({r["clip"] for r in rows if r["source"] in SYNTHETIC_SOURCES}),
        "hours": _hours(rows),
        "real_speech_hours": _hours(speech),
        "english_speech_hours": _hours(english),
        "english_speech_sources": sorted({r["source"] for r in english}),
        "speakers": len(_named(real)),
        "english_speakers": len(_named(english)),
        "labelled_sound_clips": len({r["clip"] for r in sounds}),
        "sound_labels": len({r["text"] for r in sounds if r["task"] == "classification"}),
        "sources": sorted(per_source),
        "held_out_sources": {s: why for s, why in HELD_OUT_SOURCES.items() if s in per_source},
        "per_source": per_source,
        "by_source_split": {f"{s}/{p}": n for (s, p), n in sorted(Counter((r["source"], r["split"]) for r in rows).items())},
        "by_task_split": {f"{t}/{p}": n for (t, p), n in sorted(Counter((r["task"], r["split"]) for r in rows).items())},
        "games": details["games"],
        "missing_sources": missing,
        "missing_reasons": details["missing_reasons"],
        "build_seconds": round(seconds, 1),
        "disk_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
    }


def dataset_card(stats: dict) -> str:
    def table(counts: dict) -> str:
        keys = sorted({k.rsplit("/", 1)[0] for k in counts})
        lines = ["| | train | validation | test |", "|---|---|---|---|"]
        for key in keys:
            lines.append(f"| {key} | " + " | ".join(str(counts.get(f"{key}/{s}", 0)) for s in ("train", "validation", "test")) + " |")
        return "\n".join(lines)

    sources = ["| source | clips | hours | speakers | labels | train / validation / test clips | held out | license |",
               "|---|---|---|---|---|---|---|---|"]
    for name, info in stats["per_source"].items():
        splits = " / ".join(str(info["splits"][s]) for s in ("train", "validation", "test"))
        sources.append(f"| {name} | {info['clips']} | {info['hours']} | {info['speakers']} | {info['labels']} | "
                       f"{splits} | {'yes' if info['held_out'] else ''} | {'; '.join(info['licenses'])} |")
    games = ["| game | clips found | pairs made | checked | kept | dropped | unchecked | hours kept | speakers |",
             "|---|---|---|---|---|---|---|---|---|"]
    for game, info in stats["games"].items():
        if "missing" in info:
            games.append(f"| {game} | missing: {info['missing']} |||||||")
            continue
        checked = info["kept"] + info["dropped"]
        games.append(f"| {game} | {info['clips']} | {info['paired']} | {checked} | {info['kept']} | "
                     f"{info['dropped']} | {info['unchecked']} | {info['hours']} | {info['speakers']} |")
    if not stats["games"]:
        why = "its source is missing (below)" if "games" in stats["missing_sources"] else "`--sources` without `games`"
        games = [f"No game speech in this build: {why}."]
    held_out = "\n".join(f"- **{source}**: {why}." for source, why in stats["held_out_sources"].items()) or "- none"
    missing = "\n".join(f"- {name}: {stats['missing_reasons'].get(name, 'not installed')}"
                        for name in stats["missing_sources"]) or "- none"
    return f"""---
license: other
task_categories: [audio-text-to-text, automatic-speech-recognition, audio-classification]
language: [en, fr, es, it, ru, multilingual]
pretty_name: MINT offline audio corpus
---

# MINT offline audio corpus

Real recordings that install from Debian packages (phone prompts in five languages, voice-acted game speech, game
sound effects, words and letters, instruments rendered from a sampled sound font), plus clips generated with
espeak-ng, Flite, Festival and sox whose content is known exactly. Built by `mint data build`.

- {stats['clips']} clips: {stats['real_clips']} real, {stats['rendered_clips']} rendered instruments,
  {stats['generated_clips']} generated; {stats['rows']} rows (a clip
  can serve several tasks); {stats['hours']} hours.
- Real speech: {stats['real_speech_hours']} hours, {stats['speakers']} identifiable speakers.
- English sentences with transcripts (real): {stats['english_speech_hours']} hours from
  {len(stats['english_speech_sources'])} sources ({', '.join(stats['english_speech_sources'])}),
  {stats['english_speakers']} identifiable speakers.
- Labelled sounds (real recordings and rendered instruments): {stats['labelled_sound_clips']} clips,
  {stats['sound_labels']} classification labels.
- Built in {stats['build_seconds']} s; {stats['disk_bytes'] / 1e6:.0f} MB on disk.

## Splits
By source file (md5 of the path), so a clip and every task made from it share a split; speech of the new sources is
split by speaker: game characters by the md5 of their name (each game's hero, and lines whose speaker the script does
not name, train), Asterisk by language voice (French and Spanish train, Russian validation, Italian test). The
English Asterisk prompts keep their split by file (stage 1 and the Whisper checks use it), so their one voice is in
every split. Whole sources held out (all their rows in `test`, `held_out` true; no training stage sees them):
{held_out}

## Columns
`audio` (the original file's bytes; `datasets` Audio decodes and resamples), `text` (transcript, caption, label or
answer), `task`, `instruction`, `source`, `license` (per clip), `split`, `language`, `clip_id`, `speaker` (an
identifiable real speaker, `<source>/<name>`; empty when unknown or synthetic), `held_out`.

## Sources
{chr(10).join(sources)}

## Game speech: pairing verification
Every clip-line pair is transcribed by Whisper tiny.en and kept only when the word error rate of its line against the
transcript is at most 0.5. Pairs with no words, longer than Whisper's 30-s window, or not reached within the decoding
budget (`mint data build --verify-budget`; transcripts are cached, so a later build checks more) are unchecked and left
out.

{chr(10).join(games)}

## Rows per source
{table(stats['by_source_split'])}

## Rows per task
{table(stats['by_task_split'])}

## Sources not built
{missing}

## Where the audio comes from
- asterisk: Debian `asterisk-core-sounds-en-wav` + `asterisk-core-sounds-en` (transcripts), voice of Allison Smith.
- asterisk-fr / -es / -it / -ru: Debian `asterisk-core-sounds-XX(-wav)`, one voice each (June, Allison Smith,
  Carlo, the Russian IVR voice); transcription and language identification.
- queen, drascula: Debian `flight-of-the-amazon-queen`, `drascula` + `scummvm-data`: voice-acted adventure-game
  lines with the game's own text, verified as above.
- ktuberling: Debian `ktuberling-data`, object names spoken in many languages.
- klettres: Debian `klettres-data`, letters and syllables spoken in many languages.
- tuxpaint: Debian `tuxpaint-stamps-default`, sound effects with the stamp's English caption, and spoken
  descriptions with their text.
- freedesktop / alsa: Debian `sound-theme-freedesktop`, `alsa-utils`: event sounds by name, spoken channel names.
- 0ad, megaglest, supertuxkart: Debian `0ad-data`, `megaglest-data`, `supertuxkart-data`: sound effects labelled
  and captioned from their names (`training/sources/effects.py`); unit voice lines, interface sounds and music left
  out.
- instruments: all 128 General MIDI programs and the drum kit of Debian `fluid-soundfont-gm` (sampled instruments),
  rendered by `fluidsynth` at varied pitch, loudness and length: instrument, family and caption.
- generated: espeak-ng speech (word lists, and natural sentences from Debian's `fortunes`) and sox tones, noise,
  sequences and mixtures.
- synthetic-voices: more `fortunes` sentences read by Flite (kal, kal16, awb, rms, slt), Festival (kal, ked, HTS
  slt) and Piper (joe) voices; with `--more-sentences N`, N further sentences (from more `fortunes` files), each
  read by one voice, training only. Synthetic: not counted as real speech.
"""
