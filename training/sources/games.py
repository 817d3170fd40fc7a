"""Voice-acted English speech with its script, from two freeware adventure games that Debian packages.

- `flight-of-the-amazon-queen`: one archive, `queen.1c`, indexed by a `QTBL` table. Its `*.SB` entries are MP3 speech
  clips; the lines they speak are in the dialogue trees (`*.DOG`), the cutaway scripts (`*.CUT`) and Joe's
  descriptions (`QUEEN2.JAS`). A clip's name encodes where its line is, the way the game builds it when it plays
  the line: `TTHHHHJn` / `TTHHHHPn` (dialogue `TT`, node `HHHH` in hex, Joe or the other person, segment `n`),
  `CUTNAMEkkn` (cutaway object `kk`) and `JOEddddn` (Joe's response or object description `dddd`).
- `drascula` (+ `scummvm-data`): `*.ALS` clips, raw unsigned 8-bit at 11,025 Hz; clip `<prefix><N>.ALS` speaks line
  `N` of the text block of the character the prefix names, in the English block of `drascula.dat`.

The formats were learnt from ScummVM's `engines/queen`, `engines/drascula` and `devtools/create_drascula` (GPL);
no code was taken from them. Every pair is checked by Whisper tiny.en's own decoder (`verify_pairs`): a pair is kept
only when its word error rate against the line is at most `MAX_WER`, so a mispaired clip never becomes a label.

    rows, stats = game_speech_rows()      # decoded clips cached as 16-bit WAV under cache_root()/clips/<game>/
"""

import gzip
import hashlib
import json
import re
import struct
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mint.io import atomic_file
from mint.training.sources.packages import PackageUnavailable, cache_root, debian_package


MAX_WER = 0.5
SAMPLING_RATE = 16000
MAX_SECONDS = 30.0  # Whisper's window: a longer clip cannot be checked whole
SHIPPED_HYPOTHESES = Path(__file__).with_name("whisper_tiny_en_hypotheses.json.gz")  # clip sha1 -> transcript
LICENSES = {
    "queen": "Flight of the Amazon Queen license (freeware: free redistribution and modification, "
             "attribution kept; Debian main)",
    "drascula": "Drascula license (freeware: free redistribution and modification, attribution kept; Debian main)",
}
QUEEN_ARCHIVE = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
DRASCULA_CLIPS = "usr/share/scummvm/drascula/en"


@dataclass
class Pair:
    """One speech clip and the line the game shows while it plays."""

    game: str
    key: str  # the clip's file name in the game data
    speaker: str  # "<game>/<character>", "<game>/unidentified" when the script does not say who speaks
    text: str
    audio: bytes  # encoded (Queen: MP3) or raw samples (Drascula)
    seconds: float = 0.0
    path: Path | None = None


# ---- Flight of the Amazon Queen ---------------------------------------------------------------------------------
QUEEN_HEADER = 15  # "QTBL", 6-byte version, 2 unused bytes, compression byte, entry count (uint16)
QUEEN_ENTRY = struct.Struct(">12sBII")  # name, bundle, offset, size
QUEEN_SCRIPT_HEADER = 20  # DOG, CUT and QUEEN.JAS start with a 20-byte header the engine skips
JOE_RESPONSES = 40  # Joe's generic responses come before the object descriptions in the JOEdddd numbering
# Dialogue files are named after the person Joe talks to; the names match the cutaways' object names.
QUEEN_DIALOGUE_SPEAKERS = {
    "AND": "anderson", "APE": "gorilla", "BOB": "trader bob", "BUD": "bud", "CHEF": "chef", "CHIEF": "chief",
    "DEATH": "death", "DOG": "guard dog", "FAYE": "faye", "FRANK": "frank", "HENRY": "henry", "IAN": "ian",
    "JIM": "jimmy", "JOHN": "john", "KLUNK": "klunk", "LARIS": "bellboy", "LOLA": "lola", "LOU": "lou",
    "MAN": "man", "NAOMI": "naomi", "ORACLE": "oracle", "PRIN": "princess azura", "SEC": "secretary",
    "SHOWERAM": "showering amazon", "SPARKY": "sparky", "TALLPYG": "tall pygmy", "TAM": "mary-lou",
    "WEDGE": "wedgewood", "WITCH": "witch doctor", "ZOMBIE": "zombie woman",
}
# Cutaway objects that speak under a prop's name (the game renames the person object at run time): who they are is
# not in the script, so these lines are kept with an unidentified speaker.
QUEEN_PROP_NAMES = {"note", "path", "smoke", "telephone", "torch", "door", "rock", "buttons", "lily pad",
                    "azura obj"}


def queen_index(data: bytes) -> dict[str, tuple[int, int]]:
    """Name -> (offset, size) of every entry of a `queen.1c` archive."""
    if data[:4] != b"QTBL":
        raise ValueError(f"not a rebuilt Flight of the Amazon Queen archive: starts {data[:4]!r}, expected b'QTBL'")
    (count,) = struct.unpack_from(">H", data, QUEEN_HEADER - 2)
    end = QUEEN_HEADER + count * QUEEN_ENTRY.size
    if end > len(data):
        raise ValueError(f"queen archive index of {count} entries runs past the end of the file ({len(data)} bytes)")
    index = {}
    for position in range(QUEEN_HEADER, end, QUEEN_ENTRY.size):
        name, _bundle, offset, size = QUEEN_ENTRY.unpack_from(data, position)
        if offset + size > len(data):
            raise ValueError(f"queen archive entry {name!r} runs past the end of the file")
        index[name.rstrip(b"\0").decode("ascii")] = (offset, size)
    return index


def _string(data: bytes, offset: int, align: int = 2) -> tuple[str, int]:
    """A length-prefixed string of the Queen scripts and the offset after it (padded to `align`)."""
    length = data[offset]
    offset += 1
    text = data[offset : offset + length].decode("latin-1")
    if length:
        offset = (offset + length + align - 1) & ~(align - 1)
    return text, offset


def _segments(sentence: str) -> list[tuple[int, str]]:
    """(index, text) of the spoken segments of a Queen line. `*` starts a two-letter command (a face, a pause, an
    animation number); each command closes a segment, and segment `i` plays clip `<prefix><i + 1 in hex>`."""
    segments, start, index, i = [], 0, 0, 0
    while i < len(sentence):
        if sentence[i] != "*":
            i += 1
            continue
        command = sentence[i + 1 : i + 3]
        if command not in ("GD", "GM"):  # Joe's grab commands play nothing
            segments.append((index, sentence[start:i]))
        i += 3 + (11 if command == "XY" else 0)  # *XY00(237,112) walks somewhere
        index += 1
        start = i
    if start < len(sentence):
        segments.append((index, sentence[start:]))
    return segments


def _voice(prefix: str, index: int) -> str:
    return (prefix + format(index + 1, "x")).replace(" ", "0").upper()


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def queen_lines(data: bytes, index: dict[str, tuple[int, int]]) -> dict[str, tuple[str, str]]:
    """Clip name -> (speaker, line) for every line the scripts give a voice file name."""

    def entry(name):
        offset, size = index[name]
        return data[offset : offset + size]

    lines = {}

    def add(prefix, sentence, speaker):
        for i, text in _segments(sentence):
            lines[_voice(prefix, i)] = (speaker, text)

    # Joe's descriptions: the first uint16s of QUEEN.JAS count rooms, names, objects and descriptions, and
    # QUEEN2.JAS lists descriptions, object names, room names, 12 verbs, then Joe's responses, one per line.
    jas = entry("QUEEN.JAS")[QUEEN_SCRIPT_HEADER:]
    rooms, names, objects, descriptions = struct.unpack_from(">4H", jas, 0)
    text = entry("QUEEN2.JAS").decode("latin-1").split("\n")
    text = [line.rstrip("\r") for line in text]
    object_names = text[descriptions : descriptions + names]
    responses = text[descriptions + names + rooms + 12 :][:JOE_RESPONSES]
    for number, sentence in enumerate(responses, 1):
        add(f"JOE{number:04d}", sentence, "joe")
    for number, sentence in enumerate(text[:descriptions], 1):
        add(f"JOE{number + JOE_RESPONSES:04d}", sentence, "joe")

    # Dialogue trees: Joe's options and the other person's answers, each a (id, string) list.
    for name in sorted(n for n in index if n.endswith(".DOG")):
        dog = entry(name)[QUEEN_SCRIPT_HEADER:]
        levels, _unique, key, joe_count, person_count = struct.unpack_from(">5h", dog, 0)
        person_offset, _cutaway, person2_offset = struct.unpack_from(">3H", dog, 22)
        person = QUEEN_DIALOGUE_SPEAKERS.get(re.sub(r"\d+$", "", name[:-4]), "unidentified")
        for offset, count, who, mark in ((32 + abs(levels) * 96, joe_count, "joe", "J"),
                                         (person_offset, person_count, person, "P")):
            for _ in range(count):
                (ident,) = struct.unpack_from(">h", dog, offset + 2)
                sentence, offset = _string(dog, offset + 4, align=4)
                if ident > 0:
                    add(f"{key:2d}{ident:4x}{mark}", sentence, who)
                elif ident == 0 and who == "joe":  # Joe's opening line
                    add(f"{key:2d}SSSSJ", sentence, "joe")
        again, offset = _string(dog, person2_offset)  # what each says when they meet again
        add(f"{key:2d}XXXXP", again, person)
        add(f"{key:2d}XXXXJ", _string(dog, offset)[0], "joe")

    # Cutaways: object k speaks sentence k; its record says who it is (0: Joe, > 0: an object of QUEEN.JAS).
    def object_record(number):  # name, x, y, description, entry, room, state, image (8 int16 per object)
        return struct.unpack_from(">hHHHhHHh", jas, 8 + (number - 1) * 16)

    for name in sorted(n for n in index if n.endswith(".CUT")):
        cut = entry(name)[QUEEN_SCRIPT_HEADER:]
        count = abs(struct.unpack_from(">h", cut, 2)[0])
        sentence_offset = struct.unpack_from(">H", cut, 8)[0]
        _entry, sentence_offset = _string(cut, sentence_offset)
        offset = 12
        base = (name[:-4] + "_____")[:5]
        for k in range(1, count + 1):
            record = struct.unpack_from(">17h", cut, offset)
            offset += 34
            number, animations, execute, from_object = record[0], record[4], record[5], record[12]
            people = struct.unpack_from(">h", cut, offset)[0]
            offset += 2 + 2 * people
            sentence, sentence_offset = _string(cut, sentence_offset)
            number = 0 if number == -1 else number  # a room fade is Joe's
            kind = "animation"
            if number == 0 and not animations:
                kind = "person"
            elif number > 0 and not animations and number <= objects and object_record(number)[7] in (-3, -4):
                kind = "person"
            if from_object > 0:
                kind = "none"
            if number in (-2, -3):
                kind = "spoken text"
            elif number == -4:
                kind = "none"  # shown, not spoken
            if kind == "animation" and not execute:
                kind = "none"
            if kind == "animation":  # frames of 9 int16 after a header, until a -2 header
                while struct.unpack_from(">h", cut, offset)[0] != -2:
                    offset += 20
                offset += 2
            if kind == "person":
                who = "joe" if number == 0 else object_names[abs(object_record(number)[0]) - 1].lower()
                who = "joe" if who == "joe king" else "unidentified" if who in QUEEN_PROP_NAMES else who
                add(f"{base}{k:02d}", sentence, who)
            elif kind == "spoken text":
                lines[_voice(f"{base}{k:02d}", 0)] = ("unidentified", sentence)
    return lines


def queen_pairs(root: Path) -> tuple[list[Pair], int]:
    """The paired speech clips of an unpacked `flight-of-the-amazon-queen`, and how many clips it has (sound effects,
    named `...SSSS`, have no line)."""
    data = (root / QUEEN_ARCHIVE).read_bytes()
    index = queen_index(data)
    lines = queen_lines(data, index)
    clips = sorted(name for name in index if name.endswith(".SB"))
    pairs = []
    for name in clips:
        if name[:-3] in lines:
            speaker, text = lines[name[:-3]]
            offset, size = index[name]
            pairs.append(Pair("queen", name, f"queen/{_slug(speaker)}", text, data[offset : offset + size]))
    return pairs, len(clips)


# ---- Drascula: The Vampire Strikes Back -------------------------------------------------------------------------
DRASCULA_TABLES = (4, 4, 4, 2, 4, 2, 4, 2, 2, 20, 20, 10, 8)  # record sizes of the tables before the texts
DRASCULA_TEXTS = ("text", "textd", "textb", "textbj", "texte", "texti", "textl", "textp", "textt", "textvb",
                  "textsys", "texthis", "textverbs", "textmisc", "textd1")
DRASCULA_ENGLISH = 0
DRASCULA_RAW_HEADER = 32  # the engine skips 32 bytes at each end of a clip
DRASCULA_RAW_RATE = 11025
# Clip prefix -> (text block, speaker). "D" clips hold Drascula's lines, then (by number) John Hacker's and the
# blind man's conversation, and one line of the bartender's.
DRASCULA_PREFIXES = {
    "": ("text", "john hacker"), "B": ("textb", "drunk"), "BJ": ("textbj", "bj"), "E": ("texte", "mus"),
    "I": ("texti", "igor"), "L": ("textl", "werewolf"), "P": ("textp", "pianist"), "T": ("textt", "bartender"),
    "VB": ("textvb", "von braun"), "D": ("textd", None),
}
DRASCULA_NAMES = ("igor", "drascula", "john", "hacker", "bj", "b.j.", "von braun", "transylvania", "transilvania",
                  "stevie wonder", "woody allen", "johnny", "frankenstein", "dracula")


def _drascula_d_speaker(number: int) -> str:
    if number < 56:
        return "drascula"
    if number < 68:
        return "john hacker"
    if number == 82:
        return "bartender"
    return "blind man" if number < 79 else "unidentified"


def drascula_texts(data: bytes, language: int = DRASCULA_ENGLISH) -> dict[str, list[str]]:
    """The text blocks of `drascula.dat` in one language: name -> lines, numbered from 0."""
    if data[:8] != b"DRASCULA":
        raise ValueError(f"not a drascula.dat file: starts {data[:8]!r}, expected b'DRASCULA'")
    offset = 9  # after the magic and a version byte
    for size in DRASCULA_TABLES:
        (count,) = struct.unpack_from(">H", data, offset)
        offset += 2 + count * size
    (languages,) = struct.unpack_from(">H", data, offset)
    offset += 2
    if not 0 <= language < languages:
        raise ValueError(f"drascula.dat has {languages} languages, no language {language}")
    texts = {}
    for name in DRASCULA_TEXTS:
        (count,) = struct.unpack_from(">H", data, offset)
        offset += 2
        for lang in range(languages):
            (length,) = struct.unpack_from(">H", data, offset)
            block, offset = data[offset + 2 : offset + 2 + length], offset + 2 + length
            if lang == language:  # 2 bytes of padding, then entries: uint16 size (itself included), string, NULs
                lines, position = [], 2
                for _ in range(count):
                    (size,) = struct.unpack_from(">H", block, position)
                    lines.append(block[position + 2 : position + size].split(b"\0")[0].decode("latin-1"))
                    position += size
                texts[name] = lines
    if offset != len(data):
        raise ValueError(f"drascula.dat: {len(data) - offset} unread bytes after the texts")
    return texts


def drascula_text(line: str) -> str:
    """The game's all-capitals line in sentence case, with names and "I" capitalised."""
    text = line.strip().lower()
    text = re.sub(r"(^|[.!?]\s+|\")([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    text = re.sub(r"\bi\b", "I", text)
    for name in DRASCULA_NAMES:
        text = re.sub(rf"(?<![a-z]){re.escape(name)}(?![a-z])", name.title().replace("Bj", "BJ"), text)
    return text


def drascula_pairs(clips_dir: Path, dat: Path) -> tuple[list[Pair], int]:
    """The paired speech clips of the unpacked `drascula` package, and how many clips it has (`S*` and `F*` clips
    are sound effects, without a line)."""
    texts = drascula_texts(dat.read_bytes())
    clips = sorted(clips_dir.glob("*.ALS"), key=lambda p: p.name)
    pairs = []
    for path in clips:
        match = re.fullmatch(r"([A-Z]*)(\d+)\.ALS", path.name)
        if match is None or match.group(1) not in DRASCULA_PREFIXES:
            continue
        prefix, number = match.group(1), int(match.group(2))
        block, speaker = DRASCULA_PREFIXES[prefix]
        lines = texts[block]
        if number >= len(lines) or not lines[number].strip():
            continue
        speaker = speaker or _drascula_d_speaker(number)
        pairs.append(Pair("drascula", path.name, f"drascula/{_slug(speaker)}", drascula_text(lines[number]),
                          path.read_bytes()))
    return pairs, len(clips)


# ---- clips as WAV files ------------------------------------------------------------------------------------------
def clean_text(text: str) -> str:
    """A line with its whitespace collapsed and no dashes or spaces at its ends (segment boundaries leave them)."""
    text = " ".join(text.replace("\t", " ").split())
    return text.strip(" -")


def _samples(pair: Pair) -> np.ndarray:
    from modeling_mint import load_audio

    if pair.game == "drascula":
        raw = np.frombuffer(pair.audio, dtype=np.uint8)[DRASCULA_RAW_HEADER:-DRASCULA_RAW_HEADER]
        if raw.size == 0:
            raise ValueError(f"drascula clip {pair.key} holds no samples")
        return load_audio((raw.astype(np.float32) - 128.0) / 128.0, DRASCULA_RAW_RATE, SAMPLING_RATE, pair.key)
    return load_audio(pair.audio, None, SAMPLING_RATE, pair.key)


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLING_RATE):
    """16-bit mono WAV, written to a temporary file and renamed, so a reader never sees half a file."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with atomic_file(path) as temporary, wave.open(str(temporary), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def materialise(pairs: list[Pair], folder: Path) -> list[Pair]:
    """Each pair's clip decoded once to `folder/<game>/<key>.wav` (16 kHz); a second call reuses the files."""
    for pair in pairs:
        pair.path = folder / pair.game / (Path(pair.key).stem + ".wav")
        if not pair.path.is_file():
            write_wav(pair.path, _samples(pair))
        with wave.open(str(pair.path)) as clip:
            pair.seconds = clip.getnframes() / clip.getframerate()
    return pairs


# ---- verification by Whisper tiny.en ------------------------------------------------------------------------------
def clip_hash(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def whisper_transcribe(paths: list[Path], batch_size: int = 16, progress: bool = True):
    """Yields (path, hypothesis) with Whisper tiny.en's own decoder, greedy over the 30-s window as
    `mint.training.evaluate.whisper_wer` runs it; in bf16 on CPUs with native bf16 (as `audio_tower_dtype="auto"`),
    where it is faster and, checked on sampled pairs, keeps and drops the same pairs as fp32."""
    import torch
    from tqdm.auto import tqdm
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from mint.hub.components import whisper_tiny_en
    from modeling_mint import load_audio
    from modeling_mint.modeling_mint import native_bf16_cpu

    dtype = torch.bfloat16 if native_bf16_cpu() else torch.float32
    folder = whisper_tiny_en()
    processor = WhisperProcessor.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder, dtype=dtype).eval()
    batches = range(0, len(paths), batch_size)
    for start in tqdm(batches, desc="whisper tiny.en", disable=not progress):
        batch = paths[start : start + batch_size]
        waves = [load_audio(str(p), None, SAMPLING_RATE) for p in batch]
        features = processor.feature_extractor(waves, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        with torch.inference_mode():
            ids = model.generate(features.input_features.to(dtype), max_new_tokens=100)
        yield from zip(batch, (h.strip() for h in processor.batch_decode(ids, skip_special_tokens=True)))


def pair_wer(reference: str, hypothesis: str) -> float:
    """WER of one pair after the project's WER normalisation (`mint_metrics/mint_wer`)."""
    import jiwer

    from mint.metrics.mint_wer.mint_wer import normalize

    reference, hypothesis = normalize(reference), normalize(hypothesis)
    if not reference:
        raise ValueError("the reference has no words after normalisation")
    return float(jiwer.wer(reference, hypothesis))


def verification_cache() -> Path:
    """The user cache of Whisper's transcripts. A machine without one starts from `SHIPPED_HYPOTHESES`, the transcripts
    corpus v2 was built from, so its first build decodes only the clips they lack (from nothing the check took 33
    minutes on 2 cores) and keeps the same pairs as the build they came from."""
    cache = cache_root() / "clips" / "whisper-tiny.en-hypotheses.json"
    if not cache.is_file() and SHIPPED_HYPOTHESES.is_file():
        with atomic_file(cache) as temporary:
            temporary.write_bytes(gzip.decompress(SHIPPED_HYPOTHESES.read_bytes()))
    return cache


def verify_pairs(pairs: list[Pair], cache: Path | None = None, batch_size: int = 16, save_every: int = 64,
                 budget_seconds: float | None = None) -> list[float | None]:
    """The WER of each pair's line against Whisper tiny.en's transcript of its clip, or None for a clip left
    undecoded when `budget_seconds` of decoding ran out. Transcripts are cached by the clip's hash (the line is not
    part of the key, so a corrected line costs no decoding); the cache is saved as it grows, so an interrupted or
    budgeted run resumes where it stopped."""
    cache = cache or verification_cache()
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    hashes = [clip_hash(p.path) for p in pairs]
    # clips of similar length share a batch, so no batch waits long on one long line
    todo = sorted({h: p for h, p in zip(hashes, pairs) if h not in known}.items(), key=lambda item: item[1].seconds)
    todo = [(h, p.path) for h, p in todo]

    def save():  # merged with what another build may have saved meanwhile, then renamed into place
        if cache.is_file():
            known.update({h: t for h, t in json.loads(cache.read_text()).items() if h not in known})
        with atomic_file(cache) as temporary:
            temporary.write_text(json.dumps(known, indent=0, sort_keys=True))

    if todo and budget_seconds != 0:
        by_path, started = {path: h for h, path in todo}, time.time()
        for done, (path, hypothesis) in enumerate(whisper_transcribe([p for _, p in todo], batch_size), 1):
            known[by_path[path]] = hypothesis
            if done % save_every == 0:
                save()
            if budget_seconds is not None and done % batch_size == 0 and time.time() - started > budget_seconds:
                break
        save()
    return [pair_wer(p.text, known[h]) if h in known else None for p, h in zip(pairs, hashes)]


def verified(pairs: list[Pair], max_wer: float = MAX_WER, cache: Path | None = None, batch_size: int = 16,
             budget_seconds: float | None = None) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(kept, dropped, unchecked): kept pairs have a WER of at most `max_wer` against Whisper tiny.en's transcript.
    Unchecked pairs have no words to compare, are longer than Whisper's window, or were not reached within
    `budget_seconds`; they are not kept either."""
    from mint.metrics.mint_wer.mint_wer import normalize

    checkable = [p for p in pairs if normalize(p.text) and p.seconds <= MAX_SECONDS]
    unchecked = [p for p in pairs if not (normalize(p.text) and p.seconds <= MAX_SECONDS)]
    errors = verify_pairs(checkable, cache, batch_size, budget_seconds=budget_seconds)
    kept = [p for p, error in zip(checkable, errors) if error is not None and error <= max_wer]
    dropped = [p for p, error in zip(checkable, errors) if error is not None and error > max_wer]
    unchecked += [p for p, error in zip(checkable, errors) if error is None]
    return kept, dropped, unchecked


# ---- rows ----------------------------------------------------------------------------------------------------------
def game_pairs() -> tuple[dict[str, list[Pair]], dict[str, dict]]:
    """The pairs of each game whose packages could be fetched, and per game the clips found and pairs made (or why
    the game is missing)."""
    found, stats = {}, {}
    loaders = {
        "drascula": lambda: _drascula(),
        "queen": lambda: queen_pairs(debian_package("flight-of-the-amazon-queen")),
    }
    for game, load in loaders.items():
        try:
            pairs, clips = load()
        except (PackageUnavailable, FileNotFoundError) as error:
            stats[game] = {"missing": str(error)}
            continue
        for pair in pairs:
            pair.text = clean_text(pair.text)
        found[game] = pairs
        stats[game] = {"clips": clips, "paired": len(pairs)}
    return found, stats


def _drascula() -> tuple[list[Pair], int]:
    root = debian_package("drascula")
    dat = root / DRASCULA_CLIPS / "drascula.dat"
    if not dat.is_file():  # older drascula packages leave the text file to scummvm-data
        dat = debian_package("scummvm-data") / "usr/share/scummvm/drascula.dat"
    return drascula_pairs(root / DRASCULA_CLIPS, dat)


def game_speech_rows(max_wer: float = MAX_WER, batch_size: int = 16,
                     budget_seconds: float | None = None) -> tuple[list[dict], dict]:
    """Corpus rows (task "transcription") of the verified game speech, and per game: clips found, pairs made, pairs
    kept and dropped by the Whisper check, pairs left unchecked (no words, longer than Whisper's window, or not
    reached within `budget_seconds` of decoding per game), hours kept, identifiable speakers and the seconds the
    check took. With every transcript cached the check takes seconds; from nothing it decodes about 0.3 CPU-seconds
    per clip (bf16). A game whose package cannot be fetched is reported with `missing`. Rows carry `speaker`; their
    split is the caller's to assign."""
    from mint.training.corpus import INSTRUCTIONS, pick

    games, stats = game_pairs()
    folder = cache_root() / "clips"
    rows = []
    for game, pairs in games.items():
        started = time.time()
        kept, dropped, unchecked = verified(materialise(pairs, folder), max_wer, batch_size=batch_size,
                                            budget_seconds=budget_seconds)
        speakers = sorted({p.speaker for p in kept if not p.speaker.endswith("/unidentified")})
        stats[game].update({
            "unchecked": len(unchecked), "kept": len(kept), "dropped": len(dropped),
            "hours": round(sum(p.seconds for p in kept) / 3600, 3), "speakers": len(speakers),
            "speaker_names": speakers, "max_wer": max_wer, "check_seconds": round(time.time() - started, 1),
        })
        for pair in kept:
            clip_id = f"{game}/{Path(pair.key).stem}"
            rows.append({
                "audio": str(pair.path), "text": pair.text, "task": "transcription",
                "instruction": pick(INSTRUCTIONS["transcription"], f"{clip_id}/transcription"),
                "source": game, "license": LICENSES[game], "language": "en", "clip_id": clip_id,
                "speaker": pair.speaker,
            })
    return rows, stats
