"""`make demo`'s three test-split clips: fixed by rule, all present after `make setup`, each with its reference."""

import soundfile as sf

from mint.training.data import split_of
from mint.training.demo import demo_clips


def test_demo_clips_are_real_test_split_clips_with_references(tmp_path):
    clips = demo_clips(tmp_path)
    assert [c["kind"] for c in clips] == ["English speech", "sound effect", "instrument"]
    assert all("error" not in c and c["reference"] for c in clips), clips
    assert split_of("agent-loginok") == "test"  # the Asterisk prompts' split key is the prompt's name
    assert split_of("tuxpaint/animals/amphibians/frog") == "test"
    for clip in clips:
        audio, rate = sf.read(clip["audio"])
        assert len(audio) / rate > 0.3, clip
