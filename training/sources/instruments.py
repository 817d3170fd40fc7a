"""Notes and short phrases of every General MIDI instrument, rendered from the sampled FluidR3 sound font.

Debian `fluid-soundfont-gm` (`FluidR3_GM.sf2`, MIT: recorded samples of real instruments) rendered by `fluidsynth`.
Every clip's instrument, family, pitch, loudness and length are known exactly because the MIDI is written here. All
clips are rendered in one `fluidsynth` run (the font is loaded once) and cut into slots; the
clips are cached, so a second build only reads them.
"""

import hashlib
import json
import random
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mint.training.sources.packages import cache_root, complete_folder


SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
LICENSE = "MIT (FluidR3_GM sound font)"
RATE = 16000
# The 128 General MIDI programs, in program order; families are the standard groups of eight.
PROGRAMS = (
    "acoustic grand piano", "bright acoustic piano", "electric grand piano", "honky-tonk piano", "electric piano",
    "FM electric piano", "harpsichord", "clavinet",
    "celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone", "tubular bells", "dulcimer",
    "drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ", "accordion", "harmonica",
    "tango accordion",
    "nylon-string guitar", "steel-string guitar", "jazz guitar", "clean electric guitar", "muted electric guitar",
    "overdriven guitar", "distortion guitar", "guitar harmonics",
    "acoustic bass", "fingered electric bass", "picked electric bass", "fretless bass", "slap bass", "slap bass 2",
    "synth bass", "synth bass 2",
    "violin", "viola", "cello", "contrabass", "tremolo strings", "pizzicato strings", "orchestral harp", "timpani",
    "string ensemble", "slow string ensemble", "synth strings", "synth strings 2", "choir aahs", "voice oohs",
    "synth choir", "orchestra hit",
    "trumpet", "trombone", "tuba", "muted trumpet", "French horn", "brass section", "synth brass", "synth brass 2",
    "soprano saxophone", "alto saxophone", "tenor saxophone", "baritone saxophone", "oboe", "English horn", "bassoon",
    "clarinet",
    "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi", "whistle", "ocarina",
    "square lead synth", "sawtooth lead synth", "calliope lead synth", "chiff lead synth", "charang lead synth",
    "voice lead synth", "fifths lead synth", "bass and lead synth",
    "new age pad", "warm pad", "polysynth pad", "choir pad", "bowed pad", "metallic pad", "halo pad", "sweep pad",
    "rain synth effect", "soundtrack synth effect", "crystal synth effect", "atmosphere synth effect",
    "brightness synth effect", "goblins synth effect", "echoes synth effect", "sci-fi synth effect",
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai",
    "tinkle bell", "agogo", "steel drums", "woodblock", "taiko drum", "melodic tom", "synth drum", "reverse cymbal",
    "guitar fret noise", "breath noise", "seashore", "bird tweet", "telephone ring", "helicopter", "applause",
    "gunshot",
)
FAMILIES = ("piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass", "reed", "pipe",
            "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects")
# Key range (MIDI notes) that sounds natural per family.
RANGES = {"bass": (28, 55), "piano": (36, 84), "chromatic percussion": (60, 96), "pipe": (60, 96), "brass": (48, 79),
          "reed": (48, 79), "strings": (40, 84)}
DRUMS = {35: "bass drum", 36: "bass drum", 37: "side stick", 38: "snare drum", 39: "hand clap", 40: "snare drum",
         41: "floor tom", 42: "closed hi-hat", 43: "floor tom", 44: "pedal hi-hat", 45: "tom-tom", 46: "open hi-hat",
         47: "tom-tom", 48: "tom-tom", 49: "crash cymbal", 50: "tom-tom", 51: "ride cymbal", 52: "Chinese cymbal",
         53: "ride bell", 54: "tambourine", 55: "splash cymbal", 56: "cowbell", 57: "crash cymbal", 58: "vibraslap",
         59: "ride cymbal", 60: "bongo", 61: "bongo", 62: "conga", 63: "conga", 64: "conga", 65: "timbale",
         66: "timbale", 67: "agogo bell", 68: "agogo bell", 69: "cabasa", 70: "maracas", 71: "whistle",
         72: "whistle", 73: "guiro", 74: "guiro", 75: "claves", 76: "woodblock", 77: "woodblock", 78: "cuica",
         79: "cuica", 80: "triangle", 81: "triangle"}
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
TICKS = 480  # per beat; at the default 120 bpm a beat is 0.5 s
RELEASE = 1.5  # seconds left after the last note for the release and reverb tail
PER_PROGRAM = 10


def family_of(program: int) -> str:
    return FAMILIES[program // 8]


def register(note: int) -> str:
    return "low" if note < 48 else "high" if note >= 72 else "middle"


def note_name(note: int) -> str:
    return f"{NOTE_NAMES[note % 12]}{note // 12 - 1}"


def clip_specs(per_program: int = PER_PROGRAM, seed: int = 0) -> list[dict]:
    """What to render: per program, single notes and short phrases at varied pitch, loudness and length; per drum
    sound, single hits and a short roll. Each spec says what the clip is."""
    rng = random.Random(seed)
    specs = []
    for program, name in enumerate(PROGRAMS):
        family = family_of(program)
        low, high = RANGES.get(family, (48, 84))
        for i in range(per_program):
            loud = rng.random() < 0.5
            velocity = rng.randint(96, 120) if loud else rng.randint(40, 64)
            if i % 3 == 2:  # a phrase: a rising or falling run of four to six notes
                start = rng.randint(low, high - 12)
                steps = [0, 2, 4, 5, 7, 9][: rng.randint(4, 6)]
                rising = rng.random() < 0.5
                notes = [start + s for s in (steps if rising else steps[::-1])]
                beats = [0.5] * len(notes)
                direction, how = "rising" if rising else "falling", "loudly" if loud else "softly"
                caption = f"A short {direction} phrase played {how} on a {name}."
            else:
                note = rng.randint(low, high)
                long = rng.random() < 0.5
                notes, beats = [note], [rng.choice([3, 4]) if long else rng.choice([0.5, 1])]
                caption = (f"A {'loud' if loud else 'soft'}, {'long' if long else 'short'} {register(note)} note "
                           f"({note_name(note)}) played on a {name}.")
            specs.append({"key": f"{program:03d}/{i:02d}", "channel": 0, "program": program, "notes": notes,
                          "beats": beats, "velocity": velocity, "label": name, "family": family, "caption": caption})
    for note, name in sorted(DRUMS.items()):
        for i in range(3):
            loud = i != 1
            hits = [note] * (4 if i == 2 else 1)
            caption = (f"A {'loud' if loud else 'soft'} {name} roll." if len(hits) > 1
                       else f"A single {'loud' if loud else 'soft'} {name} hit.")
            specs.append({"key": f"drums/{note}/{i}", "channel": 9, "program": 0, "notes": hits,
                          "beats": [0.25] * len(hits), "velocity": 112 if loud else 52, "label": name,
                          "family": "drum kit", "caption": caption})
    return specs


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file(specs: list[dict], slot_beats: list[float]) -> bytes:
    """A type-0 standard MIDI file playing each spec in its slot (start times in beats)."""
    events, now = bytearray(), 0
    for spec, start in zip(specs, slot_beats):
        channel, t = spec["channel"], int(start * TICKS)
        events += _vlq(t - now) + bytes([0xC0 | channel, spec["program"]])
        now = t
        for note, beats in zip(spec["notes"], spec["beats"]):
            length = int(beats * TICKS)
            events += _vlq(0) + bytes([0x90 | channel, note, spec["velocity"]])
            events += _vlq(length) + bytes([0x80 | channel, note, 0])
            now += length
    events += _vlq(0) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) + b"MTrk" + struct.pack(">I", len(events)) + bytes(events)


def render(specs: list[dict], folder: Path) -> list[Path]:
    """Render all specs in one fluidsynth run and cut them into mono 16 kHz WAV files in `folder`."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None or not SOUND_FONT.is_file():
        raise FileNotFoundError("instruments need Debian fluidsynth and fluid-soundfont-gm")
    starts, beat = [], 0.0
    for spec in specs:
        starts.append(beat)
        beat += sum(spec["beats"]) + RELEASE * 2  # 120 bpm: two beats a second
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp) / "all.mid", Path(tmp) / "all.wav"
        midi.write_bytes(midi_file(specs, starts))
        subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(wav), "-r", str(RATE), "-g", "0.6", str(SOUND_FONT),
                        str(midi)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        audio, rate = sf.read(wav, dtype="float32")
    audio = audio.mean(axis=1) if audio.ndim == 2 else audio
    paths = []
    for spec, start in zip(specs, starts):
        begin = int(start / 2 * rate)
        end = int((start / 2 + sum(spec["beats"]) / 2 + RELEASE) * rate)
        clip = audio[begin:end]
        audible = np.flatnonzero(np.abs(clip) > 1e-3)
        clip = clip[: audible[-1] + rate // 20] if audible.size else clip
        path = folder / (spec["key"].replace("/", "_") + ".wav")
        sf.write(path, clip, rate, subtype="PCM_16")
        paths.append(path)
    return paths


def rendered_clips(seed: int = 0) -> list[tuple[dict, Path]]:
    """(spec, path) of every clip, rendered once into the data cache (keyed by the specs and the font)."""
    specs = clip_specs(seed=seed)
    digest = hashlib.md5(json.dumps(specs, sort_keys=True).encode() + str(SOUND_FONT.stat().st_size).encode()
                         if SOUND_FONT.is_file() else b"").hexdigest()[:12]
    folder = complete_folder(cache_root(), f"rendered-instruments-{digest}", lambda work: render(specs, work))
    return [(spec, folder / (spec["key"].replace("/", "_") + ".wav")) for spec in specs]


def instrument_rows(seed: int = 0) -> list[dict]:
    """Classification (the instrument or drum), captioning, and a question on the instrument family, split by clip."""
    from mint.training.corpus import row

    rows = []
    for spec, path in rendered_clips(seed):
        fields = {"source": "instruments", "key": spec["key"], "language": "", "license": LICENSE}
        rows += [row(path, spec["label"], "classification", **fields),
                 row(path, spec["caption"], "captioning", **fields)]
        if spec["family"] != "drum kit":
            rows.append(row(path, spec["family"], "question_answering", **fields,
                            instruction="Which family of instruments is playing?"))
    return rows
