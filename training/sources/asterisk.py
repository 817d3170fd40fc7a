"""Asterisk's phone prompts in four more languages, each read by one professional voice, with exact transcripts.

Debian `asterisk-core-sounds-XX` holds the texts (`core-sounds-XX.txt.gz`, `name: text`), `-wav` the 8 kHz clips.
Each language is one speaker, so a speaker-disjoint split puts a whole language in one split: Italian is the held-out
voice (test only), Russian the validation voice.
"""

import gzip
import re
from pathlib import Path

from mint.training.sources.packages import debian_package


# language: (voice folder, speaker, split); es_MX "Allison" is Allison Smith, the voice of the English prompts.
VOICES = {
    "fr": ("fr_CA_f_June", "asterisk/june", "train"),
    "es": ("es_MX_f_Allison", "asterisk/allison", "train"),
    "ru": ("ru_RU_f_IvrvoiceRU", "asterisk/ivrvoice-ru", "validation"),
    "it": ("it_IT_m_Carlo", "asterisk/carlo", "test"),
}
LANGUAGE_NAMES = {"fr": "French", "es": "Spanish", "ru": "Russian", "it": "Italian"}
LICENSE = "CC-BY-SA-3.0"


def prompts(language: str) -> list[tuple[str, Path, str]]:
    """(prompt name, path of the clip, transcript) for every prompt of `language` whose clip exists; bracketed or
    parenthesised entries describe tones (`[ascending tones]`, `(ahooga)`), not speech, and are left out."""
    voice = VOICES[language][0]
    texts = debian_package(f"asterisk-core-sounds-{language}") / "usr/share/doc" / f"asterisk-core-sounds-{language}"
    sounds = debian_package(f"asterisk-core-sounds-{language}-wav") / "usr/share/asterisk/sounds" / voice
    found = []
    for transcript in sorted(texts.glob(f"core-sounds-{language}.txt*")):
        opener = gzip.open if transcript.suffix == ".gz" else open
        with opener(transcript, "rt", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                match = re.match(r"^([\w/.-]+):\s*(.+?)\s*$", line)
                if match is None or match.group(2)[0] in "[(" or not re.search(r"\w", match.group(2)):
                    continue
                path = sounds / f"{match.group(1)}.wav"
                if path.is_file():
                    found.append((match.group(1), path, match.group(2)))
        break
    return found


def asterisk_language_rows() -> list[dict]:
    """Transcription in the prompt's language, and language identification of the same clip."""
    from mint.training.corpus import row

    rows = []
    for language, (_, speaker, split) in VOICES.items():
        source = f"asterisk-{language}"
        for name, path, text in prompts(language):
            fields = {"source": source, "key": name, "language": language, "license": LICENSE, "speaker": speaker}
            rows.append({**row(path, text, "transcription", **fields), "split": split})
            rows.append({**row(path, LANGUAGE_NAMES[language], "language_id", **fields), "split": split})
    return rows
