"""Corpus v2 sources: each loader on real files (small packages fetched by name; the large sound packs as miniature
copies of their exact on-disk layout holding real clips), the label tables, rendered instruments that are what their
labels say, and splits disjoint by speaker and source file with held-out sources only in "test"."""

import shutil
import sys
import types
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mint.training.corpus import HELD_OUT_SOURCES, SENTENCES, build, collect_rows, fortune_sentences, speaker_splits
from mint.training.sources import effects, instruments, voices
from mint.training.sources.asterisk import VOICES, asterisk_language_rows, prompts
from mint.training.sources.packages import PackageUnavailable, debian_package


REAL_OGG = Path("/usr/share/tuxpaint/stamps/animals/mammals/badger.ogg")  # Tux Paint stamps: installed by setup
REAL_WAV = Path("/usr/share/sounds/alsa/Noise.wav")


def splits_per(rows, key) -> dict:
    found = defaultdict(set)
    for r in rows:
        found[key(r)].add(r["split"])
    return found


# ---- Asterisk in four more languages (real packages, a few MB each) -------------------------------------------------
def test_asterisk_languages_pair_real_prompts_with_their_text():
    french = dict((name, text) for name, _, text in prompts("fr"))
    assert len(french) > 400 and french["agent-loginok"] == "Vous êtes maintenant en ligne."
    assert not any(text[0] in "[(" for text in french.values())
    rows = asterisk_language_rows()
    assert {r["source"] for r in rows} == {f"asterisk-{code}" for code in VOICES}
    assert {r["task"] for r in rows} == {"transcription", "language_id"}
    assert all(Path(r["audio"]).is_file() and r["license"] == "CC-BY-SA-3.0" for r in rows[::50])
    assert {r["text"] for r in rows if r["task"] == "language_id"} == {"French", "Spanish", "Russian", "Italian"}
    by_voice = splits_per(rows, lambda r: r["speaker"])  # one voice per language, whole in one split
    assert len(by_voice) == 4 and all(len(s) == 1 for s in by_voice.values())
    assert by_voice["asterisk/carlo"] == {"test"}
    wav, rate = sf.read(rows[0]["audio"])
    assert rate == 8000 and len(wav) > rate // 4


# ---- labelled sound effects ----------------------------------------------------------------------------------------
def test_label_tables():
    assert effects.zero_ad_label("audio/ambient/weather/rain_2.ogg") == ("rain", "Rain falls.")
    assert effects.zero_ad_label("audio/actor/singlesteps/fs_snow_3.ogg") == ("footsteps on snow",
                                                                            "A footstep on snow.")
    assert effects.zero_ad_label("audio/attack/impact/arrow_metal_4.ogg") == ("arrow hitting metal",
                                                                            "An arrow strikes metal.")
    assert effects.zero_ad_label("audio/ambient/water/river_raging.ogg")[1] == "A raging river flows."
    for skipped in ("audio/music/peace/Calm_Before_the_Storm.ogg", "audio/voice/greek/civ/civ_male_attack_1.ogg",
                    "audio/interface/alarm/alarmvictory.ogg", "audio/attack/fire/c_1.ogg",
                    "audio/actor/fauna/animal/camel.xml", "audio/actor/fauna/animal/camel.xml.cached.xmb"):
        assert effects.zero_ad_label(skipped) is None, skipped
    assert effects.megaglest_label("archer", "archer_attack2") == ("bow shot", "An arrow is loosed from a bow.")
    assert effects.megaglest_label("", "swordman_attack11")[0] == "sword strike"
    assert effects.megaglest_label("cow", "cow_ack1") == ("cow", "A cow moos.")  # an animal's acknowledgement: its call
    assert effects.megaglest_label("princess", "princess_die2")[1] == "A woman screams as she is struck down."
    assert effects.megaglest_label("catapult", "die")[0] == "machine destroyed"
    for unit, stem in (("archer", "archer_ack1"), ("swordman", "swordman_select3"), ("", "click_a"),
                       ("", "intro_music"), ("tower", "tower_attack1")):
        assert effects.megaglest_label(unit, stem) is None, stem  # voice lines, interface, music, unknown weapon
    labels = {label for label, _ in effects.SUPERTUXKART.values()}
    assert {"thunder", "rain", "car horn", "explosion", "engine"} <= labels


def miniature(cache: Path, package: str, files: dict[str, Path]) -> Path:
    """A package unpacked in the data cache the way `debian_package` leaves it, holding real clips."""
    root = cache / f"deb-{package}"
    for relative, clip in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / relative)
    (root / ".complete").write_text("")
    return root


@pytest.fixture
def sound_packs(tmp_path, monkeypatch):
    """0 A.D.'s `public.zip`, MegaGlest's unit folders and SuperTuxKart's sfx folder, in miniature, in a data cache
    that shares the Asterisk packages fetched once for every test."""
    shared = [debian_package(f"asterisk-core-sounds-{code}{kind}") for code in VOICES for kind in ("", "-wav")]
    monkeypatch.setenv("MINT_DATA_CACHE", str(tmp_path))
    for package in shared:
        (tmp_path / package.name).symlink_to(package)
    zipped = tmp_path / "public.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for member in ("audio/ambient/weather/rain_1.ogg", "audio/resource/mining/mine_stone_3.ogg",
                       "audio/actor/fauna/animal/sheep1.ogg", "audio/music/peace/theme.ogg",
                       "audio/voice/latin/civ/civ_male_gather_1.ogg", "art/textures/skies/sky.png"):
            archive.write(REAL_OGG, member)
    miniature(tmp_path, "0ad-data", {"usr/share/games/0ad/mods/public/public.zip": zipped})
    units = "usr/share/games/megaglest/techs/megapack/factions/norsemen/units"
    miniature(tmp_path, "megaglest-data", {
        f"{units}/archer/sounds/archer_attack2.wav": REAL_WAV, f"{units}/archer/sounds/archer_ack1.wav": REAL_WAV,
        f"{units}/cow/sounds/cow_die1.wav": REAL_WAV,
        "usr/share/games/megaglest/tilesets/autumn/sounds/rain.ogg": REAL_OGG,
        "usr/share/games/megaglest/data/core/menu/sound/click_a.wav": REAL_WAV})
    miniature(tmp_path, "supertuxkart-data", {
        "usr/share/games/supertuxkart/data/sfx/thunder.ogg": REAL_OGG,
        "usr/share/games/supertuxkart/data/sfx/gp_end.ogg": REAL_OGG,
        "usr/share/games/supertuxkart/data/music/race.ogg": REAL_OGG})
    return tmp_path


def test_sound_pack_loaders_on_their_layouts(sound_packs):
    zero_ad = effects.effect_rows("0ad")
    assert sorted({r["text"] for r in zero_ad if r["task"] == "classification"}) == ["quarrying stone", "rain",
                                                                                    "sheep"]
    assert {r["task"] for r in zero_ad} == {"classification", "captioning"}
    clip = Path(next(r["audio"] for r in zero_ad if r["text"] == "rain"))
    assert clip.read_bytes() == REAL_OGG.read_bytes()  # read out of the zip into the cache, whole
    assert clip.is_relative_to(sound_packs)
    assert effects.effect_rows("0ad")[0]["audio"] == zero_ad[0]["audio"]  # a second build reuses the clips
    mega = {r["text"]: r for r in effects.effect_rows("megaglest") if r["task"] == "classification"}
    assert set(mega) == {"bow shot", "cow", "rain"}
    assert mega["bow shot"]["license"] == "CC-BY-SA-3.0"
    kart = effects.effect_rows("supertuxkart")
    assert [r["text"] for r in kart] == ["thunder", "Thunder rumbles."]
    assert all(len(splits) == 1 for splits in splits_per(zero_ad + kart, lambda r: r["audio"]).values())


def test_a_missing_pack_is_reported_not_fatal(tmp_path, monkeypatch):
    def unavailable(name):
        raise PackageUnavailable(f"Debian package {name!r} could not be downloaded")

    monkeypatch.setattr(effects, "debian_package", unavailable)
    rows, missing, details = collect_rows(sources=["supertuxkart", "freedesktop"])
    assert missing == ["supertuxkart"] and "could not be downloaded" in details["missing_reasons"]["supertuxkart"]
    assert rows and {r["source"] for r in rows} == {"freedesktop", "alsa"}


# ---- instruments ---------------------------------------------------------------------------------------------------
def test_instrument_specs_cover_general_midi():
    specs = instruments.clip_specs()
    assert len(instruments.PROGRAMS) == 128 and len({s["program"] for s in specs if s["channel"] == 0}) == 128
    assert instruments.family_of(40) == "strings" and instruments.family_of(127) == "sound effects"
    assert {s["label"] for s in specs if s["channel"] == 9} == set(instruments.DRUMS.values())
    assert {s["velocity"] > 90 for s in specs} == {True, False}
    assert len({(s["label"], tuple(s["notes"])) for s in specs}) > 0.9 * len(specs)


def test_rendered_notes_are_what_their_labels_say(tmp_path):
    specs = {s["key"]: s for s in instruments.clip_specs()}
    assert specs["073/00"]["label"] == "flute"
    flute = {**specs["073/00"], "notes": [69], "beats": [2], "key": "flute-a4"}  # a long A4 on the flute
    loud = {**flute, "velocity": 120, "key": "loud"}
    soft = {**flute, "velocity": 40, "key": "soft"}
    paths = instruments.render([flute, loud, soft, specs["drums/49/0"], specs["000/00"], specs["000/02"]], tmp_path)
    wav, rate = sf.read(paths[0])
    assert rate == 16000 and wav.ndim == 1 and 1.0 < len(wav) / rate < 3.0  # the note, its release, no neighbour
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    assert abs(np.argmax(spectrum) * rate / len(wav) - 440) < 8  # the flute's A4
    rms = [np.sqrt(np.mean(sf.read(p)[0] ** 2)) for p in paths[1:3]]
    assert rms[0] > 2 * rms[1]  # loud is louder than soft
    assert all(np.abs(sf.read(p)[0]).max() > 0.01 for p in paths)


# ---- more synthetic voices -----------------------------------------------------------------------------------------
def test_flite_festival_and_piper_voices_read_unseen_sentences(tmp_path):
    sentences = voices.voice_sentences(per_voice=2)
    espeak = set(fortune_sentences(SENTENCES))
    assert all(not (set(s) & espeak) for s in sentences.values())
    assert len({text for s in sentences.values() for text in s}) == 2 * len(voices.VOICES)
    assert set(voices.available_voices()) == set(voices.VOICES)
    for voice in ("flite-slt", "festival-kal", "piper-joe"):
        (path,) = voices.synthesise(voice, sentences[voice][:1], tmp_path / voice)
        wav, rate = sf.read(path)
        assert len(wav) / rate > 0.15 * len(sentences[voice][0].split()) and np.abs(wav).max() > 0.05


def test_more_sentences_are_new_training_only_and_dealt_one_voice_each(tmp_path, monkeypatch):
    monkeypatch.setattr(voices, "cache_root", lambda: tmp_path)
    read = set(fortune_sentences(SENTENCES)) | {t for s in voices.voice_sentences().values() for t in s}
    unread = voices.unread_sentences()
    assert len(unread) > 5000 and not set(unread) & read and len(set(unread)) == len(unread)
    rows = voices.more_voice_rows(len(voices.VOICES))
    assert len(rows) == len(voices.VOICES) and {r["split"] for r in rows} == {"train"}
    assert [r["text"] for r in sorted(rows, key=lambda r: list(voices.VOICES).index(r["clip_id"].split("/")[1]))] \
        == unread[: len(voices.VOICES)]
    assert all(r["clip_id"].endswith("/more-00000") and r["source"] == "synthetic-voices" for r in rows)
    assert all(sf.info(r["audio"]).duration > 0.5 for r in rows)
    with pytest.raises(ValueError, match="unread fortunes sentences"):
        voices.more_voice_rows(len(unread) + 1)


# ---- splits ------------------------------------------------------------------------------------------------------
def game_like(speakers: dict[str, int], source="queen") -> list[dict]:
    return [{"audio": f"{speaker}-{i}.wav", "source": source, "speaker": f"{source}/{speaker}", "split": "",
             "task": "transcription", "clip_id": f"{source}/{speaker}{i}"}
            for speaker, count in speakers.items() for i in range(count)]


def test_game_speech_is_split_by_speaker():
    rows = game_like({"joe": 50, "unidentified": 9, **{f"person{i}": 3 for i in range(40)}})
    speaker_splits(rows)
    by_speaker = splits_per(rows, lambda r: r["speaker"])
    assert all(len(s) == 1 for s in by_speaker.values())
    assert by_speaker["queen/joe"] == {"train"} and by_speaker["queen/unidentified"] == {"train"}
    assert {"train", "validation", "test"} <= set().union(*by_speaker.values())


def test_games_are_integrated_split_and_held_out(tmp_path, monkeypatch):
    """The games module's rows (its loaders and Whisper check have their own tests) are split and held out here."""
    games = types.ModuleType("mint.training.sources.games")
    monkeypatch.setitem(sys.modules, "mint.training.sources.games", games)
    found = game_like({"joe": 20, "anderson": 4, "frank": 4}) + game_like({"hero": 10, "igor": 5}, "drascula")
    stats = {"queen": {"clips": 30, "paired": 28, "kept": 28}, "drascula": {"clips": 15, "paired": 15, "kept": 15},
             "sky": {"missing": "Debian package 'beneath-a-steel-sky' could not be downloaded"}}
    games.game_speech_rows = lambda budget_seconds: ([{k: v for k, v in r.items() if k != "split"} for r in found],
                                                     stats)
    rows, missing, details = collect_rows(sources=["games"])
    assert missing == ["sky"] and details["games"]["queen"]["kept"] == 28
    assert all(len(s) == 1 for s in splits_per(rows, lambda r: r["speaker"]).values())
    assert {r["split"] for r in rows if r["source"] == "drascula"} == {"test"}
    assert all(r["held_out"] == (r["source"] in HELD_OUT_SOURCES) for r in rows)

    def broken(budget_seconds):
        raise ImportError("no module named 'jiwer'")

    games.game_speech_rows = broken
    assert collect_rows(sources=["games"])[1] == ["games"]


def test_built_corpus_keeps_held_out_sources_in_test_and_clips_in_one_split(sound_packs, tmp_path):
    from datasets import load_from_disk

    out, stats = build(tmp_path / "corpus", max_per_source=40, sources=["asterisk-languages", "megaglest",
                                                                          "supertuxkart", "0ad"])
    corpus = load_from_disk(str(out))
    assert stats["missing_sources"] == [] and set(stats["held_out_sources"]) == {"megaglest", "asterisk-it"}
    for split, dataset in corpus.items():
        held = {s for s, h in zip(dataset["source"], dataset["held_out"]) if h}
        assert held <= ({"megaglest", "asterisk-it"} if split == "test" else set())
    rows = [r for d in corpus.values() for r in d.remove_columns("audio")]
    assert all(len(s) == 1 for s in splits_per(rows, lambda r: r["clip_id"]).values())
    assert all(len(s) == 1 for s in splits_per([r for r in rows if r["speaker"]], lambda r: r["speaker"]).values())
    assert stats["labelled_sound_clips"] == 7 and stats["sound_labels"] == 6  # 3 + 3 + 1 clips, 6 labels
    assert stats["speakers"] == 4 and stats["per_source"]["asterisk-it"]["splits"]["train"] == 0
    card = (out / "README.md").read_text()
    assert "megaglest**: sound classification" in card and "| asterisk-fr |" in card


def test_stats_count_only_real_speech_and_named_speakers(tmp_path):
    from mint.training.corpus import corpus_stats

    def clip(source, task, seconds, language="en", speaker="", text="x", path=None):
        return {"source": source, "task": task, "seconds": seconds, "language": language, "speaker": speaker,
                "text": text, "clip": path or f"{source}/{len(rows)}", "clip_id": f"{source}/{len(rows)}",
                "split": "train", "license": "L"}

    rows = []
    for r in [("queen", "transcription", 3600, "en", "queen/joe"), ("queen", "transcription", 1800, "en", "queen/lola"),
              ("queen", "transcription", 1800, "en", "queen/unidentified"),
              ("asterisk-fr", "transcription", 900, "fr", "asterisk/june"), ("alsa", "transcription", 360),
              ("synthetic-voices", "transcription", 7200), ("generated", "classification", 60, "", "", "pink noise"),
              ("instruments", "classification", 36, "", "", "cello"), ("0ad", "classification", 36, "", "", "rain")]:
        rows.append(clip(*r))
    rows.append({**rows[-1], "task": "captioning", "text": "Rain falls."})  # one clip, two tasks
    stats = corpus_stats(rows, [], 1.0, tmp_path)
    assert stats["clips"] == 9 and stats["rows"] == 10
    assert stats["real_clips"] == 6 and stats["rendered_clips"] == 1 and stats["generated_clips"] == 2
    assert stats["english_speech_hours"] == 2.0 and stats["english_speech_sources"] == ["queen"]  # not alsa's words
    assert stats["real_speech_hours"] == 2.35 and stats["speakers"] == 3 and stats["english_speakers"] == 2
    assert stats["labelled_sound_clips"] == 2 and stats["sound_labels"] == 2  # cello and rain, not generated noise
