"""The `audio-text-to-text` pipeline: audio plus an instruction, or chat messages with audio parts, in; text out.

transformers has no such task. The pipeline follows its `any-to-any` pipeline (same keywords, chat input, the
processor's chat template builds every prompt), and importing this file registers the task, so a model loaded with
remote code finds it without a folder.
"""

import os

from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, GenerationConfig, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.any_to_any import AnyToAnyPipeline, ReturnType
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator
from transformers.utils.chat_template_utils import Chat, is_valid_message

from .processing_mint import MintProcessor, _audio_source


TASK = "audio-text-to-text"
PIPELINE_ENTRY = {"impl": "pipeline_mint.AudioTextToTextPipeline", "pt": ["AutoModelForCausalLM"], "type": "multimodal"}
DEFAULT_PROMPT = "Describe the audio."


def _is_chat(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and is_valid_message(value[0])


def _is_chats(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(_is_chat(chat) for chat in value)


class _Instruction(Chat):
    """One user turn made of a clip and an instruction string; its answers report the string as their input."""

    def __init__(self, audio, instruction: str, audio_token: str):
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("the instruction (text= or prompt=) must be a non-empty string")
        self.instruction = instruction
        before, found, after = instruction.partition(audio_token)  # an explicit placeholder says where the clip goes
        if not found:
            before, after = "", instruction
        parts = [{"type": "text", "text": before.strip()}, {"type": "audio", "audio": audio},
                 {"type": "text", "text": after.strip()}]
        super().__init__([{"role": "user", "content": [p for p in parts if p.get("text", True)]}])


def _collate(items: list[dict]) -> dict:
    """Batches stay raw (conversations with decoded clips): the processor pads them together in `_forward`."""
    return {key: [x for item in items for x in item[key]] for key in items[0]}


class AudioTextToTextPipeline(AnyToAnyPipeline):
    """Generate text about audio.

    ```python
    pipe = pipeline("audio-text-to-text", model="org/mint", trust_remote_code=True)
    pipe("clip.wav", text="What animal is this?")           # {"input_text": ..., "generated_text": "..."}
    pipe({"array": array, "sampling_rate": 8000})           # arrays at any rate, int or float PCM
    pipe(["a.wav", "b.wav"], text=["Caption it.", "Transcribe it."], batch_size=2)
    pipe(KeyDataset(dataset, "audio"), text="Caption it.")  # streams; `datasets` Audio columns decode as needed
    messages = [{"role": "user", "content": [{"type": "audio", "path": "clip.wav"},
                                             {"type": "text", "text": "What animal is this?"}]}]
    pipe(text=messages, max_new_tokens=32)                 # generated_text: the chat with the answer appended
    ```
    Audio: a path, encoded bytes, a numpy array or torch tensor, a dict `{"array" | "raw", "sampling_rate"}`, a
    torchcodec `AudioDecoder`, a list, generator or dataset of those. `text` (alias `prompt`) is the instruction,
    one for all clips or one per clip; it goes to the Bridge-Net and, through the processor's chat template, to the
    LLM. Keywords are those of the `any-to-any` pipeline (`return_full_text`, `return_tensors`, `stop_sequence`,
    `max_new_tokens`, `generate_kwargs`); any other keyword (`num_return_sequences`, `do_sample`, ...) goes to
    `generate`. Each input gives a dict, or a list of dicts with `num_return_sequences` > 1. `generated_text` is
    the answer for an instruction and the chat with the answer appended for chat input, unless `return_full_text`
    says otherwise.
    """

    _load_processor = None  # a model object in memory brings none: `__init__` loads it from where the model came
    _default_generation_config = GenerationConfig(max_new_tokens=64)

    def __init__(self, model, processor=None, **kwargs):
        if processor is None:
            try:
                processor = MintProcessor.from_pretrained(model.name_or_path, trust_remote_code=True)
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"no MINT processor found where the model was loaded from ({model.name_or_path!r}): pass "
                    "processor=MintProcessor.from_pretrained(...)"
                ) from error
        # `AnyToAnyPipeline.__init__` only checks the model against transformers' own multimodal classes
        Pipeline.__init__(self, model, processor=processor, **kwargs)

    def __call__(self, audio=None, text=None, prompt=None, **kwargs):
        """`audio`: one clip or a list (then one dict per clip), a generator or a dataset; `text` / `prompt`: the
        instruction, or chat messages (one chat or a list of chats) carrying their audio as parts."""
        if prompt is not None:
            if text is not None:
                raise ValueError("pass the instruction as text= or prompt=, not both")
            text = prompt
        if text is None and (_is_chat(audio) or _is_chats(audio)):
            audio, text = None, audio
        if _is_chat(text) or _is_chats(text):
            if audio is not None:
                raise ValueError('with chat messages, give the audio inside them: {"type": "audio", "audio": ...}')
            return Pipeline.__call__(self, text, **kwargs)
        if audio is None:
            raise ValueError("pass audio (and an instruction as text=), or chat messages as text=")
        if isinstance(text, (list, tuple)):
            if not isinstance(audio, (list, tuple)) or len(audio) != len(text):
                n = len(audio) if isinstance(audio, (list, tuple)) else 1
                raise ValueError(f"got {len(text)} instructions for {n} clip(s): pass one, or one per clip")
            token = self.processor.audio_token
            return Pipeline.__call__(self, [_Instruction(a, t, token) for a, t in zip(audio, text)], **kwargs)
        if text is not None:
            kwargs["instruction"] = text
        return Pipeline.__call__(self, list(audio) if isinstance(audio, tuple) else audio, **kwargs)

    def _sanitize_parameters(
        self, instruction=None, sampling_rate=None, timeout=None, continue_final_message=None, processor_kwargs=None,
        max_new_tokens=None, generate_kwargs=None, return_full_text=None, return_tensors=None, return_type=None,
        stop_sequence=None, clean_up_tokenization_spaces=None, skip_special_tokens=None, **generate_extra,
    ):
        """The `any-to-any` pipeline's keywords; others go to `generate`, as in the `text-generation` pipeline."""
        preprocess, forward, postprocess = super()._sanitize_parameters(
            max_new_tokens=max_new_tokens, generate_kwargs={**(generate_kwargs or {}), **generate_extra},
            timeout=timeout, return_full_text=return_full_text, return_tensors=return_tensors,
            return_type=return_type, clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            stop_sequence=stop_sequence, continue_final_message=continue_final_message,
            skip_special_tokens=skip_special_tokens, processor_kwargs=processor_kwargs,
        )
        preprocess.pop("timeout", None)
        if instruction is not None:
            preprocess["instruction"] = instruction
        if sampling_rate is not None:
            preprocess["sampling_rate"] = sampling_rate
        postprocess.pop("generation_mode", None)
        if return_type is None and return_full_text is None and return_tensors is None:
            postprocess.pop("return_type", None)  # the default depends on the input: see `postprocess`
        return preprocess, forward, postprocess

    def preprocess(self, inputs, instruction=None, sampling_rate=None, continue_final_message=None,
                   processor_kwargs=None):
        processor = self.processor
        if not isinstance(inputs, Chat):
            inputs = _Instruction(inputs, DEFAULT_PROMPT if instruction is None else instruction, processor.audio_token)
        if continue_final_message is None:
            continue_final_message = inputs.messages[-1]["role"] == "assistant"
        # Decode and check every clip now, so a bad one fails with its own message before any batching; only the
        # audio the model hears is decoded.
        messages, n_clips = [], 0
        for message in inputs.messages:
            content = message["content"]
            if not isinstance(content, str):
                content = [self._decoded(part, sampling_rate, n_clips + i) for i, part in enumerate(content)]
                n_clips += sum(part.get("type") == "audio" for part in content)
            messages.append({**message, "content": content})
        if n_clips != 1:
            raise ValueError(f"MINT hears one clip per conversation; this one has {n_clips} audio parts")
        self._check_length(messages, continue_final_message)
        return {"chat": [inputs], "messages": [messages], "continue_final_message": [continue_final_message],
                "processor_kwargs": [processor_kwargs or {}]}

    def _decoded(self, part: dict, sampling_rate: int | None, index: int) -> dict:
        """An audio part as its decoded clip at the model's rate; `sampling_rate` is the rate of arrays without one."""
        if part.get("type") != "audio":
            return part
        source = _audio_source(part)
        if sampling_rate is not None:
            if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview, dict)):
                source = {"array": source, "sampling_rate": sampling_rate}
            elif isinstance(source, dict) and source.get("sampling_rate") is None:
                source = {**source, "sampling_rate": sampling_rate}
        return {"type": "audio", "audio": self.processor._load_chat_audio(source, index)}

    def _check_length(self, messages: list[dict], continue_final_message: bool) -> None:
        """Refuse (`ValueError`) a prompt that is not text or is longer than the LLM reads, before any batching."""
        processor = self.processor
        text = processor.apply_chat_template(
            messages, add_generation_prompt=not continue_final_message, continue_final_message=continue_final_message
        )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"the prompt is not valid unicode text ({error.reason} at {error.start})") from None
        positions = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        limits = [n for n in (processor.text_token_limit, positions) if n]
        if not limits:
            return
        tokens = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        tokens += processor.tokens_for_frames(0) - 1  # the placeholder expands (at least this much)
        if tokens > min(limits):
            raise ValueError(
                f"the prompt is {tokens} tokens long (audio tokens included); this model reads at most {min(limits)}: "
                "shorten the instruction"
            )

    def _forward(self, model_inputs, generate_kwargs=None):
        continue_final = set(model_inputs["continue_final_message"])
        if len(continue_final) > 1:
            raise ValueError("a batch mixes chats that end with an assistant turn (prefill) and chats that do not")
        continue_final = continue_final.pop()
        inputs = self.processor.apply_chat_template(
            model_inputs["messages"], tokenize=True, return_dict=True, return_tensors="pt",
            add_generation_prompt=not continue_final, continue_final_message=continue_final,
            processor_kwargs=model_inputs["processor_kwargs"][0],
        ).to(self.model.device)
        inputs["input_features"] = inputs["input_features"].to(self.model.dtype)
        generate_kwargs = self._prepare_generate_kwargs(dict(generate_kwargs or {}))
        sequences = self.model.generate(**inputs, **generate_kwargs)
        if not self.model.config.is_encoder_decoder:
            sequences = sequences[:, inputs["input_ids"].shape[1] :]
        batch = inputs["input_ids"].shape[0]
        return {"generated_sequence": sequences.reshape(batch, -1, sequences.shape[-1]), "chat": model_inputs["chat"],
                "continue_final_message": [continue_final] * batch}

    def postprocess(self, model_outputs, return_type=None, skip_special_tokens=None, clean_up_tokenization_spaces=None,
                    continue_final_message=None, **kwargs):
        chat = model_outputs["chat"]
        chat = chat[0] if isinstance(chat, list) else chat
        prefill = model_outputs["continue_final_message"]
        prefill = prefill[0] if isinstance(prefill, list) else prefill
        sequences = model_outputs["generated_sequence"][0]
        is_instruction = isinstance(chat, _Instruction)
        input_text = chat.instruction if is_instruction else chat.messages
        if return_type is None:
            return_type = ReturnType.NEW_TEXT if is_instruction else ReturnType.FULL_TEXT
        if return_type == ReturnType.TENSORS:
            records = [{"input_text": input_text, "generated_token_ids": ids} for ids in sequences]
        else:
            decode = {"skip_special_tokens": True if skip_special_tokens is None else skip_special_tokens}
            if clean_up_tokenization_spaces is not None:
                decode["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
            answers = [a.rstrip() if prefill else a.strip() for a in self.processor.batch_decode(sequences, **decode)]
            if return_type == ReturnType.FULL_TEXT:
                answers = [_with_answer(chat.messages, answer, prefill) for answer in answers]
            records = [{"input_text": input_text, "generated_text": answer} for answer in answers]
        return records[0] if len(records) == 1 else records

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        if isinstance(inputs, list) or hasattr(inputs, "__len__"):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:  # a generator
            dataset = PipelineIterator(inputs, self.preprocess, preprocess_params)
            num_workers = min(num_workers, 1)
        loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=_collate)
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def save_pretrained(self, save_directory, **kwargs):
        """The model's folder (its `save_pretrained` writes the code) naming this pipeline beside the others the
        config names, and the processor, which `Pipeline.save_pretrained` would drop."""
        config = self.model.config
        config.custom_pipelines = {**(getattr(config, "custom_pipelines", None) or {}), TASK: PIPELINE_ENTRY}
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)


def _with_answer(messages: list[dict], answer: str, prefill: bool) -> list[dict]:
    """The chat with the answer as a new assistant turn, or appended to the assistant turn it continues."""
    if not prefill:
        return [*messages, {"role": "assistant", "content": answer}]
    last = dict(messages[-1])
    if isinstance(last["content"], str):
        last["content"] += answer
    else:
        parts = list(last["content"])
        parts[-1] = {**parts[-1], "text": parts[-1].get("text", "") + answer}
        last["content"] = parts
    return [*messages[:-1], last]


if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not AudioTextToTextPipeline:
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=AudioTextToTextPipeline, pt_model=AutoModelForCausalLM, type="multimodal"
    )
