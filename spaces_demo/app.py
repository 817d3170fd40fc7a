"""MINT demo: audio plus an instruction in, text out (streamed where the decoding is greedy); zero-shot labels and the
closest example clip from the retrieval model.

    python app.py [--model DIR_OR_HUB_ID] [--retrieval DIR_OR_HUB_ID] [--host 127.0.0.1] [--port 7860]

Models default to `$MINT_MODEL` / `$MINT_RETRIEVAL_MODEL`, else the Hub repo below, which serves both: the token
prompt's CTC head scores labels and texts by the word pieces it hears. A task decodes as the model ships it for that
task (`{task}_generation_config.json`): mint-tiny-token-prompt transcribes by joint CTC decoding with 4 beams, and
beam search answers whole, since transformers' streamers follow one sequence.
"""

import argparse
import os
from threading import Thread

import gradio as gr
import numpy as np
import soundfile as sf
import soxr
import torch
from transformers import GenerationConfig, TextIteratorStreamer, pipeline

from example_clips import available_clips


MODEL = os.environ.get("MINT_MODEL", "mint-org/mint-tiny-token-prompt")
RETRIEVAL_MODEL = os.environ.get("MINT_RETRIEVAL_MODEL", MODEL)
MAX_SECONDS = 30  # the model hears 3 windows of 10 s: refuse longer clips rather than cut them silently
MAX_FILE_SIZE = "10mb"  # 30 s of 48 kHz stereo 16-bit WAV is 5.8 MB
MAX_LABELS = 20
MAX_NEW_TOKENS = 64
MAX_TEXT_CHARS = 500  # an instruction or the label list; longer is refused, not cut
PRESETS = {  # task -> instruction (the corpus's own wording); None: the task does not generate
    "Describe": "Describe the audio.",
    "Transcribe": "Transcribe the speech.",
    "Ask a question": "What is this sound?",
    "Zero-shot classify": None,
    "Closest example": None,
}
TASK_DECODING = {"Transcribe": "transcription"}  # preset -> the task whose decoding the model may ship
DEFAULT_LABELS = "speech, a telephone ringing, a hammer, an animal, a bell"


def read_audio(path: str | None) -> tuple[np.ndarray, int]:
    """Decode the upload here, so a bad file gets a message instead of a traceback from inside the model."""
    if path is None:
        raise gr.Error("Upload or record a clip first.")
    if os.path.getsize(path) == 0:
        raise gr.Error("The file is empty.")
    try:
        info = sf.info(path)
    except Exception as error:  # libsndfile reports a bad file as several error types
        raise gr.Error("This file could not be read as audio (WAV, FLAC, OGG or MP3). Is it corrupt?") from error
    if info.duration > MAX_SECONDS:  # from the header: a long file is refused before it is decoded
        raise gr.Error(f"The clip is {info.duration:.0f} s long; the limit is {MAX_SECONDS} s.")
    try:
        wav, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as error:
        raise gr.Error("This file could not be read as audio (WAV, FLAC, OGG or MP3). Is it corrupt?") from error
    if wav.size == 0:
        raise gr.Error("The audio is empty.")
    if not np.isfinite(wav).all():
        raise gr.Error("The audio contains NaN or infinite samples.")
    return wav.mean(axis=1), rate


def check_text(text: str, what: str) -> str:
    if len(text or "") > MAX_TEXT_CHARS:
        raise gr.Error(f"The {what} is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}.")
    return (text or "").strip()


def shipped_decoding(model: str, task: str) -> GenerationConfig | None:
    """The decoding `model` ships for `task` (`{task}_generation_config.json`), or None: then it decodes greedily."""
    try:
        return GenerationConfig.from_pretrained(model, f"{task}_generation_config.json")
    except OSError:
        return None


def parse_labels(text: str) -> list[str]:
    text = check_text(text, "label list")
    labels = list(dict.fromkeys(label.strip() for label in text.split(",") if label.strip()))
    if not 2 <= len(labels) <= MAX_LABELS:
        raise gr.Error(f"Type between 2 and {MAX_LABELS} different labels, separated by commas.")
    return labels


class Mint:
    """The two models, loaded once; the handlers only read them, so concurrent requests are safe."""

    def __init__(self, model: str, retrieval: str, clips: list[tuple[str, str, str]]):
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.generator = pipeline("audio-text-to-text", model=model, trust_remote_code=True, device=device)
        self.classifier = pipeline(
            "zero-shot-audio-classification", model=retrieval, trust_remote_code=True, device=device
        )
        self.clips = clips
        self.decodings = {preset: config for preset, task in TASK_DECODING.items()
                          if (config := shipped_decoding(model, task)) is not None}

    def generate(self, wav: np.ndarray, rate: int, instruction: str, max_new_tokens: int, task: str | None = None):
        """Yield the answer so far: `generate` runs in a thread and feeds a streamer; with the task's shipped beam
        search, the whole answer at once."""
        audio = {"raw": wav, "sampling_rate": rate}
        config = self.decodings.get(task)
        if config is not None:
            config = GenerationConfig.from_dict({**config.to_dict(), "max_new_tokens": max_new_tokens})
            if config.num_beams > 1:
                try:
                    yield self.generator(audio, prompt=instruction, generation_config=config)["generated_text"]
                except Exception as error:
                    raise gr.Error(f"Generation failed: {error}") from error
                return
        decoding = {"generation_config": config} if config is not None else {"max_new_tokens": max_new_tokens}
        streamer = TextIteratorStreamer(self.generator.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors = []

        def run():
            try:
                self.generator(audio, prompt=instruction, streamer=streamer, **decoding)
            except Exception as error:  # re-raised below; ending the stream keeps the loop from waiting forever
                errors.append(error)
                streamer.end()

        thread = Thread(target=run)
        thread.start()
        text = ""
        for piece in streamer:
            text += piece
            yield text
        thread.join()
        if errors:
            raise gr.Error(f"Generation failed: {errors[0]}")

    def classify(self, wav: np.ndarray, rate: int, labels: list[str]) -> dict[str, float]:
        """The softmax of the audio-text similarities over the typed labels (as CLAP does)."""
        wav = self._resample(wav, rate)
        return {row["label"]: row["score"] for row in self.classifier(wav, candidate_labels=labels)}

    def closest(self, wav: np.ndarray, rate: int) -> dict[str, float]:
        """Audio-to-text retrieval over the example clips' own texts, scored as in training (no template)."""
        if not self.clips:
            raise gr.Error("No example clips are installed on this server.")
        names = {text: f"{text} ({os.path.basename(path)})" for path, _, text in self.clips}
        rows = self.classifier(self._resample(wav, rate), candidate_labels=list(names), hypothesis_template="{}")
        return {names[row["label"]]: row["score"] for row in rows}

    def _resample(self, wav: np.ndarray, rate: int) -> np.ndarray:
        """The zero-shot pipeline takes arrays at the feature extractor's rate only."""
        target = self.classifier.feature_extractor.sampling_rate
        return wav if rate == target else soxr.resample(wav, rate, target).astype(np.float32)


def build_demo(mint: Mint) -> gr.Blocks:
    def respond(audio, task, instruction, labels, max_new_tokens):
        """One button for every task: text tasks fill the answer box (streamed where greedy), the others the
        scores."""
        wav, rate = read_audio(audio)
        if task == "Zero-shot classify":
            yield "", mint.classify(wav, rate, parse_labels(labels))
        elif task == "Closest example":
            yield "", mint.closest(wav, rate)
        else:
            instruction = check_text(instruction, "instruction")
            if not instruction:
                raise gr.Error("Type an instruction.")
            max_new_tokens = min(max(int(max_new_tokens), 1), MAX_NEW_TOKENS)  # the API is not bound by the slider
            for text in mint.generate(wav, rate, instruction, max_new_tokens, task):
                yield text, None

    def show_task(task):
        preset = PRESETS[task]
        return gr.update(value=preset, visible=preset is not None), gr.update(visible=task == "Zero-shot classify")

    with gr.Blocks(title="MINT audio-language demo") as demo:
        gr.Markdown("# MINT\nA frozen Whisper encoder, a Q-Former bridge and a small LLM: ask about a sound.")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio", elem_id="audio_in")
                task = gr.Radio(list(PRESETS), value="Describe", label="Task", elem_id="task")
                instruction = gr.Textbox(PRESETS["Describe"], label="Instruction", elem_id="instruction",
                                         max_length=MAX_TEXT_CHARS)
                labels = gr.Textbox(DEFAULT_LABELS, label="Labels (comma-separated)", visible=False, elem_id="labels")
                max_new = gr.Slider(1, MAX_NEW_TOKENS, value=32, step=1, label="Max new tokens",
                                    elem_id="max_new_tokens")
                submit = gr.Button("Submit", variant="primary", elem_id="submit")
            with gr.Column():
                answer = gr.Textbox(label="Answer", lines=4, elem_id="output")
                scores = gr.Label(label="Scores", elem_id="scores")
                reference = gr.Textbox(label="What the example clip is", interactive=False, elem_id="reference")
        task.change(show_task, task, [instruction, labels], queue=False, api_visibility="private")
        audio.upload(lambda: "", None, reference, queue=False, api_visibility="private")
        submit.click(respond, [audio, task, instruction, labels, max_new], [answer, scores], api_name="respond")
        if mint.clips:
            gr.Examples([list(clip) for clip in mint.clips], [audio, task, reference],
                        label="Test-split clips (never seen in training)", examples_per_page=len(mint.clips),
                        cache_examples=False)
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="generation model: folder or Hub id")
    parser.add_argument("--retrieval", default=RETRIEVAL_MODEL, help="retrieval model: folder or Hub id")
    parser.add_argument("--host", default=None, help="default: gradio's (127.0.0.1, or 0.0.0.0 on a Space)")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    clips = available_clips()
    gr.set_static_paths([path for path, _, _ in clips])  # serve only these files, uncopied
    demo = build_demo(Mint(args.model, args.retrieval, clips))
    demo.queue(default_concurrency_limit=1, max_size=16)  # one CPU-bound generation at a time
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE)


if __name__ == "__main__":
    main()
