"""Voice-acted game speech: the Drascula and Flight of the Amazon Queen loaders on the real Debian packages, and the
Whisper check keeping a real clip with its own line while refusing the same clip given another line.

The packages (26 and 35 MB) are fetched by name once into the user cache, as `make setup` reaches the Debian archive:
a miniature Queen archive would only test the loader against its own reading of the format, the real one tests it
against the game (every dialogue, cutaway and description line, counted)."""

import gzip
import json
import wave

import pytest

from mint.training.sources import games
from mint.training.sources.packages import debian_package


@pytest.fixture(scope="module")
def drascula():
    root = debian_package("drascula")
    pairs, clips = games.drascula_pairs(root / games.DRASCULA_CLIPS, root / games.DRASCULA_CLIPS / "drascula.dat")
    return {p.key: p for p in pairs}, clips


@pytest.fixture(scope="module")
def queen():
    pairs, clips = games.queen_pairs(debian_package("flight-of-the-amazon-queen"))
    return {p.key: p for p in pairs}, clips


def test_drascula_text_blocks_in_english():
    texts = games.drascula_texts((debian_package("drascula") / games.DRASCULA_CLIPS / "drascula.dat").read_bytes())
    assert set(texts) == set(games.DRASCULA_TEXTS)
    assert texts["text"][1] == "THAT'S THE SECOND BIGGEST DOOR I'VE SEEN IN MY LIFE"
    assert texts["textd"][1] == "HEY IGOR, HOW IS EVERYTHING GOING?"
    assert texts["textb"][1] == "I'M HERE, DRINKING"
    assert len(texts["text"]) == 501 and len(texts["textd"]) == 84
    with pytest.raises(ValueError, match="DRASCULA"):
        games.drascula_texts(b"NOTDRASCULA" + bytes(64))


def test_drascula_pairs_each_clip_with_its_line_and_speaker(drascula, tmp_path):
    pairs, clips = drascula
    assert clips == 783 and len(pairs) == 742  # S*/F* clips are sound effects; some lines are empty in the script
    assert pairs["1.ALS"].text == "That's the second biggest door I've seen in my life"
    assert pairs["1.ALS"].speaker == "drascula/john-hacker"
    assert pairs["D1.ALS"].text == "Hey Igor, how is everything going?"
    assert pairs["D1.ALS"].speaker == "drascula/drascula"
    assert pairs["D70.ALS"].speaker == "drascula/blind-man" and pairs["D57.ALS"].speaker == "drascula/john-hacker"
    assert pairs["B1.ALS"].speaker == "drascula/drunk" and pairs["VB1.ALS"].speaker == "drascula/von-braun"
    assert not any(key.startswith(("S", "F")) for key in pairs)
    clip = games.materialise([pairs["B1.ALS"]], tmp_path)[0]
    raw = (debian_package("drascula") / games.DRASCULA_CLIPS / "B1.ALS").stat().st_size
    with wave.open(str(clip.path)) as out:
        assert (out.getframerate(), out.getsampwidth(), out.getnchannels()) == (16000, 2, 1)
        expected = (raw - 2 * games.DRASCULA_RAW_HEADER) / games.DRASCULA_RAW_RATE
        assert abs(out.getnframes() / 16000 - expected) < 0.01 and clip.seconds == pytest.approx(expected, abs=0.01)


def test_queen_archive_index_and_lines(queen):
    pairs, clips = queen
    assert clips == 6745 and len(pairs) == 6587  # the 158 unpaired clips are sound effects ("...SSSS")
    assert not any(key.endswith("SSSS.SB") for key in pairs)
    # Joe's responses, a dialogue line of each side and a cutaway line, as the game plays them
    assert (pairs["JOE00011.SB"].speaker, pairs["JOE00011.SB"].text) == ("queen/joe", "It doesn't seem to open")
    assert pairs["190007J1.SB"].text == "Can you speak English?" and pairs["190007J1.SB"].speaker == "queen/joe"
    assert pairs["640008P1.SB"].speaker == "queen/henry"
    assert pairs["C21I_012.SB"].text == "Excuse me, I'd like to buy this alcohol."
    # "*01*01Ooop oop!": two commands before the words, so the words play segment 3
    assert pairs["030001P3.SB"].text == "Ooop oop!" and pairs["030001P3.SB"].speaker == "queen/gorilla"
    assert "*" not in "".join(p.text for p in pairs.values())
    speakers = {p.speaker for p in pairs.values()}
    assert len(speakers - {"queen/unidentified"}) >= 30
    assert pairs["640008P1.SB"].audio[:2] == b"\xff\xe3"  # MP3 frames from the first byte: no header to skip
    with pytest.raises(ValueError, match="QTBL"):
        games.queen_index(b"NOPE" + bytes(32))


def test_segments_follow_the_engine():
    assert games._segments("No thanks.*14I'm a wild eyed loner...*03") == [(0, "No thanks."),
                                                                          (1, "I'm a wild eyed loner...")]
    assert games._segments("*XY00(237,112)Over here") == [(0, ""), (1, "Over here")]
    assert games._segments("Hm.*GDGot it") == [(1, "Got it")]  # a grab command: the line before it is not spoken


def test_whisper_check_keeps_the_right_line_and_refuses_a_wrong_one(drascula, tmp_path, monkeypatch):
    pairs, _ = drascula
    clip = games.materialise([pairs["302.ALS"]], tmp_path)[0]  # "I want to become a pirate"
    wrong = games.Pair("drascula", clip.key, clip.speaker, pairs["107.ALS"].text, clip.audio, clip.seconds, clip.path)
    cache = tmp_path / "hypotheses.json"
    kept, dropped, unchecked = games.verified([clip, wrong], cache=cache)
    assert kept == [clip] and dropped == [wrong] and unchecked == []
    # the transcript is cached by the clip's hash: a second check decodes nothing
    monkeypatch.setattr(games, "whisper_transcribe", None)
    assert games.verify_pairs([clip], cache=cache)[0] <= games.MAX_WER
    short = games.Pair("drascula", "x", "drascula/igor", "...", b"", 1.0, clip.path)
    assert games.verified([short], cache=cache)[2] == [short]  # no words: never checked, never kept


def test_pairs_beyond_the_decoding_budget_are_unchecked_not_kept(drascula, tmp_path, monkeypatch):
    clip = games.materialise([drascula[0]["302.ALS"]], tmp_path)[0]
    monkeypatch.setattr(games, "whisper_transcribe", None)  # nothing may be decoded
    assert games.verified([clip], cache=tmp_path / "none.json", budget_seconds=0) == ([], [], [clip])


def test_a_new_machine_starts_from_the_shipped_transcripts(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped.json.gz"
    shipped.write_bytes(gzip.compress(json.dumps({"0" * 40: "agent logged in"}).encode()))
    monkeypatch.setattr(games, "SHIPPED_HYPOTHESES", shipped)
    monkeypatch.setenv("MINT_DATA_CACHE", str(tmp_path / "cache"))
    cache = games.verification_cache()
    assert json.loads(cache.read_text()) == {"0" * 40: "agent logged in"}
    cache.write_text(json.dumps({"1" * 40: "grown here"}))  # a user cache that exists is the one kept
    assert json.loads(games.verification_cache().read_text()) == {"1" * 40: "grown here"}


def test_the_shipped_transcripts_are_the_clips_this_machine_decodes(drascula, tmp_path, monkeypatch):
    """The shipped transcripts are keyed by the hash of each decoded clip, so they hold only if this machine decodes
    the game's audio to the same bytes: a Drascula line, checked with no decoding allowed."""
    shipped = json.loads(gzip.decompress(games.SHIPPED_HYPOTHESES.read_bytes()))
    assert len(shipped) > 5000
    clip = games.materialise([drascula[0]["302.ALS"]], tmp_path)[0]  # "I want to become a pirate"
    cache = tmp_path / "hypotheses.json"
    cache.write_text(json.dumps(shipped))
    monkeypatch.setattr(games, "whisper_transcribe", None)
    assert games.verified([clip], cache=cache, budget_seconds=0) == ([clip], [], [])
