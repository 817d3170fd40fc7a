"""Example clips: real recordings from the test split of the MINT corpus (never seen in training).

They come from the Debian packages in `packages.txt`, so the Space needs no audio of its own; clips whose package
is missing are skipped. The split is the corpus's md5 rule (`mint.training.data.split_of`), fixed here so the Space does
not need the `training` package.
"""

from pathlib import Path


ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")  # asterisk-core-sounds-en-wav, CC-BY-SA-3.0
TUXPAINT = Path("/usr/share/tuxpaint/stamps")  # tuxpaint-stamps-default, GPL-2.0
FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")  # sound-theme-freedesktop

# (clip, task preset, what the clip is: its transcript, caption or event name)
CLIPS = [
    (ASTERISK / "tt-weasels.wav", "Transcribe", "Weasels have eaten our phone system"),
    (ASTERISK / "conf-getpin.wav", "Transcribe", "Please enter the conference pin number."),
    (ASTERISK / "demo-echodone.wav", "Transcribe", "The echo test has been completed."),
    (TUXPAINT / "animals/amphibians/frog.ogg", "Describe", "A frog."),
    (TUXPAINT / "animals/birds/duck.ogg", "Describe", "A duck."),
    (TUXPAINT / "animals/mammals/pig.ogg", "Ask a question", "A pig."),
    (TUXPAINT / "household/kettle.ogg", "Describe", "An electric kettle."),
    (TUXPAINT / "household/tools/hammer.ogg", "Zero-shot classify", "A hammer."),
    (TUXPAINT / "animals/mammals/aquatic/dolphin_desc.ogg", "Transcribe", "A dolphin."),
    (FREEDESKTOP / "phone-outgoing-calling.oga", "Zero-shot classify", "phone outgoing calling"),
    (FREEDESKTOP / "window-attention.oga", "Closest example", "window attention"),
    (FREEDESKTOP / "message.oga", "Closest example", "message"),
]


def available_clips() -> list[tuple[str, str, str]]:
    """The clips whose Debian package is installed, as `(path, task, text)`."""
    return [(str(path), task, text) for path, task, text in CLIPS if path.is_file()]
