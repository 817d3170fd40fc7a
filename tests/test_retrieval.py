"""Distributed contrastive loss, and zero-shot classification through transformers' own pipeline."""

import json
import os
import subprocess
import sys

import numpy as np
import torch

from modeling_mint import MintConfig, MintForAudioTextRetrieval
from tests.conftest import ROOT, TINY, tone
from tests.test_losses_mint import stage1_batch
from tests.conftest import free_port
from tests.test_remote_code import run_fresh


def test_two_process_contrastive_loss_equals_one_process(tmp_path):
    out = tmp_path / "dist.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         str(ROOT / "tests" / "dist_stage1.py"), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["columns"] == 4  # each rank's rows are scored against the gathered global batch

    config, inputs = stage1_batch(batch_size=4)
    torch.manual_seed(0)
    model = MintForAudioTextRetrieval(config).eval()
    loss = model(**inputs, return_loss=True).loss_atc
    loss.backward()
    assert abs(result["loss_atc"] - loss.item()) < 1e-5
    grad = model.model.query_tokens.weight.grad.flatten()
    # DDP averages gradients over ranks; with the gather, that equals the one-process gradient of the mean loss
    torch.testing.assert_close(torch.tensor(result["grad"]), grad, rtol=1e-3, atol=1e-5)


def test_zero_shot_audio_classification_pipeline(tmp_path):
    """transformers' own `zero-shot-audio-classification` pipeline runs the stage-1 model as it runs CLAP."""
    from hub_configs.assemble import export_retrieval
    from modeling_mint import MintProcessor

    processor = MintProcessor.from_pretrained(TINY)
    torch.manual_seed(0)
    model = MintForAudioTextRetrieval(MintConfig.from_pretrained(TINY)).eval()
    folder = export_retrieval(model, processor, tmp_path / "retrieval")
    wav = tone(0.8)
    np.save(tmp_path / "wav.npy", wav)
    labels = ["a dog barking", "a telephone ringing", "speech"]
    result = run_fresh(
        f"""
        import json, numpy as np
        from transformers import pipeline
        clf = pipeline("zero-shot-audio-classification", model={str(folder)!r}, trust_remote_code=True)
        out = clf(np.load({str(tmp_path / 'wav.npy')!r}), candidate_labels={labels!r})
        print(json.dumps({{"out": out, "model": type(clf.model).__name__}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert result["model"] == "MintForAudioTextRetrieval"
    # the pipeline's scores are the softmax of the model's own audio-to-text logits
    texts = [f"This is a sound of {label}." for label in labels]
    text = processor.bridge_tokenizer(texts, padding=True, return_tensors="pt")
    features = processor.feature_extractor([wav], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_features=features["input_features"], **text).logits_per_audio[0]
    expected = dict(zip(labels, logits.softmax(0).tolist()))
    scores = [r["score"] for r in result["out"]]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-5
    for row in result["out"]:
        assert abs(row["score"] - expected[row["label"]]) < 1e-4
