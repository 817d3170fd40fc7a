"""The `audio-text-to-text` pipeline: audio plus an instruction in, text out.

transformers has no such task, so a saved MINT folder carries this file and names it in `custom_pipelines`.
"""

import torch
from torch.utils.data import DataLoader
from transformers import GenerationConfig, Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

from .processing_mint import load_audio


DEFAULT_PROMPT = "Describe the audio."


def _collate(items: list[dict]) -> dict:
    """Batches stay raw (audio + strings): the processor pads them together in `_forward`."""
    return {key: [x for item in items for x in item[key]] for key in items[0]}


class AudioTextToTextPipeline(Pipeline):
    """Generate text about audio.

    ```python
    pipe = pipeline("audio-text-to-text", model="org/mint", trust_remote_code=True)
    pipe("clip.wav", prompt="What animal is this?")          # [{"generated_text": "..."}]
    pipe({"raw": array, "sampling_rate": 8000})              # arrays at any rate, int or float PCM
    pipe(["a.wav", "b.wav"], prompt="Caption it.", batch_size=2)
    ```
    Inputs: a path, encoded bytes, a numpy array or torch tensor, a dict `{"raw" | "array", "sampling_rate"}`, or a
    list of those. `prompt` is the instruction; it goes to the Bridge-Net and into the LLM's chat template.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _pipeline_calls_generate = True
    _default_generation_config = GenerationConfig(max_new_tokens=64)

    def _sanitize_parameters(self, prompt=None, sampling_rate=None, max_new_tokens=None, generate_kwargs=None, **kwargs):
        preprocess = {}
        if prompt is not None:
            preprocess["prompt"] = prompt
        if sampling_rate is not None:
            preprocess["sampling_rate"] = sampling_rate
        forward = dict(generate_kwargs or {})
        forward.update(kwargs)
        if max_new_tokens is not None:
            forward["max_new_tokens"] = max_new_tokens
        return preprocess, forward, {}

    def __call__(self, audio, prompt: str | None = None, **kwargs):
        """`audio`: one clip or a list of clips; returns one dict per clip (a list for a list)."""
        if prompt is not None:
            kwargs["prompt"] = prompt
        return super().__call__(audio, **kwargs)

    def _format_prompt(self, prompt: str) -> str:
        token = self.processor.audio_token
        content = prompt if token in prompt else f"{token}\n{prompt}"
        tokenizer = self.processor.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
            )
        return content

    def _check_prompt(self, prompt: str) -> str:
        """The formatted prompt, refused (`ValueError`) if it is empty, not text, or longer than the LLM reads."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"prompt is not valid unicode text ({error.reason} at {error.start})") from None
        text = self._format_prompt(prompt)
        processor = self.processor
        positions = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        limits = [n for n in (processor.text_token_limit, positions) if n]
        if limits:
            tokens = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
            tokens += processor.tokens_for_frames(0) - 1  # the placeholder expands (at least this much)
            if tokens > min(limits):
                raise ValueError(
                    f"the prompt is {tokens} tokens long (audio tokens included); this model reads at most "
                    f"{min(limits)}: shorten the instruction"
                )
        return text

    def preprocess(self, audio, prompt: str = DEFAULT_PROMPT, sampling_rate: int | None = None):
        text = self._check_prompt(prompt)
        if isinstance(audio, dict) and "sampling_rate" not in audio and sampling_rate is not None:
            audio = {**audio, "sampling_rate": sampling_rate}
        # Decode and check now, so a bad clip fails with its own message before any batching; only the audio the
        # model hears is decoded.
        processor = self.processor
        wav = load_audio(audio, sampling_rate, processor.sampling_rate, max_seconds=processor.max_audio_seconds,
                         truncate=processor.truncate_long_audio)
        bridge = prompt.replace(processor.audio_token, " ").strip()
        return {"audio": [wav], "text": [text], "bridge_text": [bridge]}

    def _forward(self, model_inputs, **generate_kwargs):
        inputs = self.processor(
            text=model_inputs["text"],
            audio=model_inputs["audio"],
            sampling_rate=self.processor.sampling_rate,
            bridge_text=model_inputs["bridge_text"],
            return_tensors="pt",
        ).to(self.model.device)
        inputs["input_features"] = inputs["input_features"].to(self.model.dtype)
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs)
        with torch.no_grad():
            sequences = self.model.generate(**inputs, **generate_kwargs)
        if not self.model.config.is_encoder_decoder:
            sequences = sequences[:, inputs["input_ids"].shape[1] :]
        return {"generated_ids": sequences}

    def postprocess(self, model_outputs):
        text = self.processor.batch_decode(model_outputs["generated_ids"], skip_special_tokens=True)[0]
        return {"generated_text": text.strip()}

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=_collate)
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)
