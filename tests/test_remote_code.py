"""A saved folder loads in a fresh process where the package is not importable, offline, through the Auto
classes and the `audio-text-to-text` pipeline."""

import json
import os
import subprocess
import sys
import textwrap

import pytest


HIDE_PACKAGE = """
import importlib.abc, sys
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"modeling_mint", "hub_configs", "training"}:
            raise ImportError(f"{name} is hidden in this test")
sys.meta_path.insert(0, _Hide())
"""


def run_fresh(code: str, cwd, hf_home) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(hf_home))
    script = HIDE_PACKAGE + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_folder_contents(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "chat_template.jinja",
            "bridge_tokenizer", "configuration_mint.py", "modeling_mint.py", "processing_mint.py",
            "pipeline_mint.py"} <= names
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert {"AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForMultimodalLM"} <= set(config["auto_map"])
    assert config["custom_pipelines"]["audio-text-to-text"]["impl"] == "pipeline_mint.AudioTextToTextPipeline"
    processor = json.loads((tiny_model_dir / "processor_config.json").read_text())
    assert processor["auto_map"]["AutoProcessor"] == "processing_mint.MintProcessor"


def test_auto_classes_in_fresh_process(tiny_model_dir, tmp_path):
    result = run_fresh(
        f"""
        import json, numpy as np, torch
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMultimodalLM, AutoProcessor
        d = {str(tiny_model_dir)!r}
        cfg = AutoConfig.from_pretrained(d, trust_remote_code=True)
        base = AutoModel.from_pretrained(d, trust_remote_code=True)
        model = AutoModelForCausalLM.from_pretrained(d, trust_remote_code=True)
        mm = AutoModelForMultimodalLM.from_pretrained(d, trust_remote_code=True)
        proc = AutoProcessor.from_pretrained(d, trust_remote_code=True)
        wav = (0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
        inputs = proc(text=["<audio> describe"], audio=[wav], sampling_rate=16000)
        out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
        print(json.dumps({{"config": type(cfg).__name__, "base": type(base).__name__, "model": type(model).__name__,
                          "mm": type(mm).__name__, "proc": type(proc).__name__, "module": type(model).__module__,
                          "new_tokens": out.shape[1] - inputs["input_ids"].shape[1]}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert result["config"] == "MintConfig" and result["base"] == "MintModel"
    assert result["model"] == result["mm"] == "MintForConditionalGeneration"
    assert result["proc"] == "MintProcessor"
    assert result["module"].startswith("transformers_modules.")  # the copied code, not the package
    assert result["new_tokens"] == 3


@pytest.mark.slow  # generation in a fresh process that imports transformers anew
def test_pipeline_in_fresh_process(tiny_model_dir, wav_file, tmp_path):
    result = run_fresh(
        f"""
        import json, numpy as np, soundfile as sf
        from transformers import pipeline
        pipe = pipeline("audio-text-to-text", model={str(tiny_model_dir)!r}, trust_remote_code=True)
        wav, rate = sf.read({str(wav_file)!r}, dtype="float32")
        kw = dict(max_new_tokens=4, min_new_tokens=4)
        single = pipe({str(wav_file)!r}, prompt="Describe the sound.", **kw)
        array = pipe(wav[:, 0].copy(), sampling_rate=rate, **kw)
        raw = pipe({{"raw": wav, "sampling_rate": rate}}, **kw)
        batched = pipe([{str(wav_file)!r}, {{"raw": wav, "sampling_rate": rate}}], batch_size=2, **kw)
        looped = [pipe(x, **kw) for x in [{str(wav_file)!r}, {{"raw": wav, "sampling_rate": rate}}]]
        print(json.dumps({{"task": pipe.task, "single": single, "array": array, "raw": raw, "batched": batched,
                          "looped": looped, "cls": type(pipe).__name__}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert result["task"] == "audio-text-to-text" and result["cls"] == "AudioTextToTextPipeline"
    for key in ("single", "array", "raw"):
        assert isinstance(result[key]["generated_text"], str), key
    assert len(result["batched"]) == 2
    assert result["batched"] == result["looped"]  # batching does not change answers
    assert result["array"] == result["raw"]  # a channel of the file and the whole stereo file are the same sound
