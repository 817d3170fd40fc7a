"""`make demo`: the model answers three test-split clips, each printed beside its reference, whatever the answers.

    python -m mint.training.demo --model .cache/models/mint-tiny

The clips were fixed by rule before the model was trained: English speech is an Asterisk prompt of the test split;
the sound effect is the first test-split Tux Paint stamp sound by clip id; the instrument is the first test-split
note of the rendered General MIDI set (rendered here with fluidsynth, as `mint data build` does).
"""

import argparse
import json
import tempfile
from pathlib import Path

from mint.training.data import ASTERISK_SOUNDS, split_of
from mint.training.evaluate import task_decoding


def demo_clips(work: Path) -> list[dict]:
    """The three clips with their instruction and reference; one that cannot be made here says why instead."""
    clips = [{"kind": "English speech", "audio": str(ASTERISK_SOUNDS / "agent-loginok.wav"),
              "instruction": "Transcribe the speech.", "reference": "Agent logged in.", "task": "transcription"},
             {"kind": "sound effect", "audio": "/usr/share/tuxpaint/stamps/animals/amphibians/frog.ogg",
              "instruction": "What do you hear?", "reference": "A frog."}]
    try:
        from mint.training.sources.instruments import clip_specs, render

        spec = next(s for s in clip_specs() if split_of(f"instruments/{s['key']}") == "test")
        path = render([spec], work)[0]
        clips.append({"kind": "instrument", "audio": str(path), "instruction": "What is this sound?",
                      "reference": spec["label"]})
    except (FileNotFoundError, OSError) as error:
        clips.append({"kind": "instrument", "audio": None, "instruction": "What is this sound?", "reference": None,
                      "error": str(error)})
    for clip in clips:
        if clip["audio"] and not Path(clip["audio"]).is_file():
            clip["error"] = f"{clip['audio']} is missing: run `make setup` as root to install the Debian packages"
    return clips


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an assembled MINT folder")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--json", action="store_true", help="one JSON object per clip instead of the table")
    args = parser.parse_args(argv)

    from transformers import pipeline

    pipe = pipeline("audio-text-to-text", model=args.model, trust_remote_code=True)
    with tempfile.TemporaryDirectory() as work:
        clips = demo_clips(Path(work))
        for clip in clips:
            if "error" not in clip:
                decoding = task_decoding(args.model, clip.get("task"))
                if decoding:
                    clip["decoding"] = decoding
                answer = pipe(clip["audio"], prompt=clip["instruction"], max_new_tokens=args.max_new_tokens,
                              **decoding)
                clip["answer"] = (answer[0] if isinstance(answer, list) else answer)["generated_text"].strip()
    if args.json:
        for clip in clips:
            print(json.dumps(clip))
        return clips
    print("| clip | instruction | reference | answer |\n|---|---|---|---|")
    for clip in clips:
        answer = clip.get("answer", f"(not run: {clip.get('error')})")
        print(f"| {clip['kind']} | {clip['instruction']} | {clip['reference']} | {answer} |")
    for clip in clips:
        if "decoding" in clip:
            print(f"\n{clip['kind']}: decoded as the model's {clip['task']}_generation_config.json says "
                  f"({', '.join(f'{k} {v}' for k, v in clip['decoding'].items())})")
    return clips


if __name__ == "__main__":
    main()
