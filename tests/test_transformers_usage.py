"""MINT used as transformers users use multimodal models: chat messages through the processor and the pipelines,
the pipeline's keywords and input kinds, and folders saved by any route that load again. Each runs in a fresh process
where the package is hidden, as a Hub user loads the model."""

import pytest

from tests import mockhub
from tests.test_push import TOKEN, run_online
from tests.test_remote_code import run_fresh


pytestmark = pytest.mark.slow  # each test loads the model in fresh processes
GEN = "dict(max_new_tokens=6, min_new_tokens=6, do_sample=False)"


def test_chat_routes_give_the_prompt_call_s_answer(tiny_model_dir, wav_file, tmp_path):
    """`apply_chat_template` -> `generate`, `pipe(text=messages)` and the stock `any-to-any` pipeline generate what
    `pipe(clip, prompt=...)` does on the same clip."""
    result = run_fresh(
        f"""
        import json, soundfile as sf
        from transformers import AutoProcessor, pipeline
        folder, path = {str(tiny_model_dir)!r}, {str(wav_file)!r}
        gen = {GEN}
        wav, rate = sf.read(path, dtype="float32")
        messages = [{{"role": "user", "content": [{{"type": "audio", "audio": {{"array": wav, "sampling_rate": rate}}}},
                                                  {{"type": "text", "text": "What is it?"}}]}}]
        pipe = pipeline("audio-text-to-text", model=folder, trust_remote_code=True)
        prompt_call = pipe(path, prompt="What is it?", return_tensors=True, **gen)["generated_token_ids"].tolist()
        prompt_text = pipe(path, prompt="What is it?", **gen)["generated_text"]
        chat = pipe(text=messages, return_tensors=True, **gen)["generated_token_ids"].tolist()
        chat_text = pipe(text=messages, **gen)["generated_text"][1:]  # the chat after its user turn
        stock = pipeline("any-to-any", model=folder, trust_remote_code=True)
        stock_ids = stock(text=messages, return_tensors=True, generate_kwargs=gen)[0]["generated_token_ids"].tolist()
        stock_text = stock(text=messages, return_full_text=False, generate_kwargs=gen)[0]["generated_text"]
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        generated = pipe.model.generate(**inputs, **gen)[0, inputs["input_ids"].shape[1]:]
        print(json.dumps({{"prompt_call": prompt_call, "prompt_text": prompt_text, "chat": chat, "chat_text": chat_text,
                          "stock": stock_ids[-6:], "stock_text": stock_text, "generate": generated.tolist(),
                          "generate_text": processor.decode(generated, skip_special_tokens=True)}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert len(result["prompt_call"]) == 6
    assert result["chat"] == result["stock"] == result["generate"] == result["prompt_call"]
    assert result["chat_text"] == [{"role": "assistant", "content": result["prompt_text"]}]
    assert result["stock_text"].strip() == result["generate_text"].strip() == result["prompt_text"]


def test_pipeline_keywords_and_inputs(tiny_model_dir, wav_file, tmp_path):
    """`text=`, `return_full_text`, `return_tensors`, `stop_sequence`, `num_return_sequences`, one instruction per
    clip, generators, `KeyDataset` over a `datasets` Audio column (torchcodec `AudioDecoder`s) and its undecoded
    dicts."""
    result = run_fresh(
        f"""
        import json, soundfile as sf
        from datasets import Audio, Dataset
        from transformers import pipeline
        from transformers.pipelines.pt_utils import KeyDataset
        folder, path = {str(tiny_model_dir)!r}, {str(wav_file)!r}
        gen = {GEN}
        pipe = pipeline("audio-text-to-text", model=folder, trust_remote_code=True)
        ids = lambda out: [o["generated_token_ids"].tolist() for o in (out if isinstance(out, list) else [out])]
        ask = lambda clip, text="What is it?", **kw: ids(pipe(clip, text=text, return_tensors=True, **gen, **kw))
        wav, rate = sf.read(path, dtype="float32")
        reference = ids(pipe(path, prompt="What is it?", return_tensors=True, **gen))
        other = ids(pipe(path, prompt="Describe the audio.", return_tensors=True, **gen))
        full = pipe(path, text="What is it?", return_full_text=True, **gen)
        new = pipe(path, text="What is it?", return_full_text=False, **gen)
        long = pipe(path, text="What is it?", max_new_tokens=8, do_sample=False, return_tensors=True)
        stop = pipe.processor.decode(long["generated_token_ids"][:1])
        stopped = pipe(path, text="What is it?", max_new_tokens=8, do_sample=False, return_tensors=True,
                       stop_sequence=stop)
        sampled = pipe(path, text="What is it?", num_return_sequences=2, do_sample=True, max_new_tokens=4)
        per_clip = ask([path, {{"array": wav, "sampling_rate": rate}}], text=["What is it?", "Describe the audio."],
                       batch_size=2)
        generator = [ids(o)[0] for o in pipe((c for c in [path, path]), text="What is it?", return_tensors=True,
                                             **gen)]
        column = Dataset.from_dict({{"audio": [path, path]}}).cast_column("audio", Audio())
        decoded = [ids(o)[0] for o in pipe(KeyDataset(column, "audio"), text="What is it?", batch_size=2,
                                           return_tensors=True, **gen)]
        undecoded = ask(list(column.cast_column("audio", Audio(decode=False))["audio"]))
        print(json.dumps({{
            "reference": reference, "other": other, "text": ask(path), "full": full["generated_text"],
            "new": new["generated_text"], "long": len(long["generated_token_ids"]), "stop": stop,
            "stopped": len(stopped["generated_token_ids"]), "sampled": len(sampled), "per_clip": per_clip,
            "generator": generator, "decoder_type": type(column[0]["audio"]).__name__, "decoded": decoded,
            "undecoded": undecoded, "input_text": new["input_text"],
        }}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    reference, other = result["reference"][0], result["other"][0]
    assert result["text"] == [reference]
    assert [m["role"] for m in result["full"]] == ["user", "assistant"]
    assert result["full"][-1]["content"] == result["new"] and result["input_text"] == "What is it?"
    assert result["stopped"] < result["long"] == 8, result["stop"]
    assert result["sampled"] == 2
    assert result["per_clip"] == [reference, other]
    assert result["generator"] == [reference, reference]
    assert result["decoder_type"] == "AudioDecoder"
    assert result["decoded"] == [reference, reference] and result["undecoded"] == [reference, reference]


ROUTES = ("model", "trainer", "pipeline")
REPO = "mint-org/pushed-by-model"


def test_saved_folders_load_in_a_fresh_process(tiny_model_dir, wav_file, tmp_path):
    """A remote-code model saved by `save_pretrained`, `Trainer.save_model`, the pipeline's `save_pretrained` and
    `push_to_hub` (to the mock Hub), in a process without the package (its pipeline took the model object itself),
    loads in another such process, from each folder and by repo id, and answers as before."""
    with mockhub.running(tmp_path / "hub") as url:
        saved = run_online(
            f"""
            import json
            from transformers import AutoModelForCausalLM, Trainer, TrainingArguments, pipeline
            out = {str(tmp_path)!r}
            model = AutoModelForCausalLM.from_pretrained({str(tiny_model_dir)!r}, trust_remote_code=True)
            pipe = pipeline("audio-text-to-text", model=model)
            answer = pipe({str(wav_file)!r}, return_tensors=True, **{GEN})["generated_token_ids"].tolist()
            model.save_pretrained(out + "/model")
            args = TrainingArguments(output_dir=out + "/run", report_to=[], use_cpu=True)
            Trainer(model=model, args=args).save_model(out + "/trainer")
            pipe.save_pretrained(out + "/pipeline")
            model.push_to_hub({REPO!r}, token={TOKEN!r})
            print(json.dumps({{"answer": answer}}))
            """,
            url, tmp_path / "hf_home", tmp_path, hide_package=True,
        )
        sources = {route: str(tmp_path / route) for route in ROUTES} | {"hub": REPO}
        for source in [*(tmp_path / route for route in ROUTES), tmp_path / "hub" / REPO]:
            names = {p.name for p in source.iterdir()}
            assert {"configuration_mint.py", "modeling_mint.py", "losses_mint.py", "processing_mint.py",
                    "pipeline_mint.py", "processor_config.json", "tokenizer.json", "chat_template.jinja",
                    "bridge_tokenizer"} <= names, source
        loaded = run_online(
            f"""
            import json
            from transformers import AutoProcessor, pipeline
            result = {{}}
            for route, source in {sources!r}.items():
                pipe = pipeline("audio-text-to-text", model=source, trust_remote_code=True)
                answer = pipe({str(wav_file)!r}, return_tensors=True, **{GEN})["generated_token_ids"].tolist()
                processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
                result[route] = {{"answer": answer, "processor": type(processor).__name__}}
            print(json.dumps(result))
            """,
            url, tmp_path / "hf_home_fresh", tmp_path, hide_package=True,
        )
    assert set(loaded) == set(sources)
    for route, result in loaded.items():
        assert result == {"answer": saved["answer"], "processor": "MintProcessor"}, route
