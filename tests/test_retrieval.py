"""Distributed contrastive loss, and zero-shot classification through transformers' own pipeline."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from modeling_mint import MintConfig, MintForAudioTextRetrieval
from tests.conftest import ROOT, TINY, tone
from tests.test_losses_mint import stage1_batch
from tests.conftest import free_port
from tests.test_remote_code import run_fresh


@pytest.mark.distributed
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


def _two_sounds(path) -> np.ndarray:
    """A tone, then noise: 2.5 s, so three encoder windows of the tiny model (1 s each); the stock feature
    extractor would keep the first second only."""
    wav = np.concatenate([tone(1.0), 0.3 * np.random.default_rng(0).standard_normal(24000).astype(np.float32)])
    np.save(path, wav)
    return wav


def _expected_scores(model, processor, wav, labels) -> dict:
    """The softmax of the model's own audio-to-text logits, on every window of the clip."""
    features = processor.prepare_audio(wav)
    text = processor.bridge_tokenizer([f"This is a sound of {label}." for label in labels], padding=True,
                                      return_tensors="pt")
    with torch.no_grad():
        logits = model(input_features=torch.from_numpy(features["input_features"]),
                       feature_attention_mask=torch.from_numpy(features["feature_attention_mask"]),
                       **text).logits_per_audio[0]
    return dict(zip(labels, logits.softmax(0).tolist()))


def _check_scores(rows, expected):
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-5
    for row in rows:
        assert abs(row["score"] - expected[row["label"]]) < 1e-4


def test_zero_shot_audio_classification_pipeline(tmp_path):
    """The retrieval-only folder: transformers' `zero-shot-audio-classification` call runs the stage-1 model as it
    runs CLAP, on all of a long clip; the folder has its processor and model card and passes `mint push`'s check."""
    from mint.hub.assemble import export_retrieval
    from mint.hub.model_card import model_card
    from mint.hub.push import check_folder
    from modeling_mint import MintProcessor

    processor = MintProcessor.from_pretrained(TINY)
    torch.manual_seed(0)
    model = MintForAudioTextRetrieval(MintConfig.from_pretrained(TINY)).eval()
    spec = json.loads((ROOT / "hub_configs" / "mint-tiny" / "variant.json").read_text())
    card = model_card("mint-tiny-random", spec, False, False, True, retrieval_only=True)
    folder = export_retrieval(model, processor, tmp_path / "retrieval", card)
    assert check_folder(folder) == []
    wav = _two_sounds(tmp_path / "wav.npy")
    labels = ["a dog barking", "a telephone ringing", "speech"]
    result = run_fresh(
        f"""
        import json, numpy as np
        from transformers import AutoProcessor, pipeline
        clf = pipeline("zero-shot-audio-classification", model={str(folder)!r}, trust_remote_code=True)
        wav = np.load({str(tmp_path / 'wav.npy')!r})
        out = clf(wav, candidate_labels={labels!r})
        heard = int(clf.preprocess(wav, candidate_labels=["x"])["feature_attention_mask"].sum())
        at_8k = {{"array": wav[::2], "sampling_rate": 8000}}  # an Audio-column dict at its own rate
        heard_8k = int(clf.preprocess(at_8k, candidate_labels=["x"])["feature_attention_mask"].sum())
        processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        print(json.dumps({{"out": out, "model": type(clf.model).__name__, "processor": type(processor).__name__,
                          "heard": heard, "heard_8k": heard_8k}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert result["model"] == "MintForAudioTextRetrieval" and result["processor"] == "MintProcessor"
    assert result["heard"] == len(wav) // processor.feature_extractor.hop_length  # all 2.5 s, not the first window
    assert result["heard_8k"] == result["heard"]
    _check_scores(result["out"], _expected_scores(model, processor, wav, labels))


@pytest.mark.slow  # three routes (zero-shot, embeddings, generation), each in a fresh process
def test_one_folder_generates_embeds_and_classifies(tiny_model_dir, tmp_path):
    """The default folder carries the retrieval heads: the stock zero-shot call, CLAP-style embeddings
    (`AutoModelForPreTraining`, reading the same weights) and generation all load from it, the package hidden."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    wav = _two_sounds(tmp_path / "wav.npy")
    labels = ["a dog barking", "a telephone ringing", "speech"]
    result = run_fresh(
        f"""
        import json, numpy as np, torch
        from transformers import AutoModelForPreTraining, AutoProcessor, pipeline
        d, wav = {str(tiny_model_dir)!r}, np.load({str(tmp_path / 'wav.npy')!r})
        clf = pipeline("zero-shot-audio-classification", model=d, trust_remote_code=True)
        out = clf(wav, candidate_labels={labels!r})
        heard = int(clf.preprocess(wav, candidate_labels=["x"])["feature_attention_mask"].sum())
        model = AutoModelForPreTraining.from_pretrained(d, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained(d, trust_remote_code=True)
        features = {{k: torch.from_numpy(v) for k, v in processor.prepare_audio(wav).items()}}
        with torch.no_grad():
            audio = model.get_audio_features(**features)
            text = model.get_text_features(**processor.bridge_tokenizer(["speech"], return_tensors="pt"))
        audio, text = (getattr(x, "pooler_output", x) for x in (audio, text))  # transformers 5 style: an output
        pipe = pipeline("audio-text-to-text", model=d, trust_remote_code=True)
        answer = pipe(wav, prompt="Describe the audio.", max_new_tokens=3)
        print(json.dumps({{"out": out, "classifier": type(clf.model).__name__, "embedder": type(model).__name__,
                          "audio": list(audio.shape), "text": list(text.shape),
                          "generated": isinstance(answer["generated_text"], str), "heard": heard}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    config = MintConfig.from_pretrained(tiny_model_dir)
    assert config.retrieval_heads
    assert result["classifier"] == result["embedder"] == "MintForAudioTextRetrieval"
    assert result["audio"] == [1, config.num_query_tokens, config.projection_dim]
    assert result["text"] == [1, config.projection_dim] and result["generated"]
    # the heads the generation model carries are the ones the retrieval model reads
    generation = MintForConditionalGeneration.from_pretrained(tiny_model_dir)
    retrieval = MintForAudioTextRetrieval.from_pretrained(tiny_model_dir).eval()
    torch.testing.assert_close(retrieval.text_projection.weight, generation.text_projection.weight)
    assert not any(p.requires_grad for n, p in generation.named_parameters() if not n.startswith("model."))
    processor = MintProcessor.from_pretrained(tiny_model_dir)
    assert result["heard"] == len(wav) // processor.feature_extractor.hop_length
    _check_scores(result["out"], _expected_scores(retrieval, processor, wav, labels))


def test_token_prompt_folder_classifies_by_the_word_pieces_its_ctc_head_hears(tmp_path):
    """A token-prompt folder's stock zero-shot call runs its generation model: the softmax of the scaled cosines
    between the word pieces its CTC head hears in the whole clip and each label's own, the label alone by default."""
    from mint.hub.assemble import export
    from mint.hub.model_card import model_card
    from mint.hub.push import check_folder
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from modeling_mint.pipeline_mint_zero_shot import TOKEN_BAG_LOGIT_SCALE

    config = MintConfig.from_pretrained(TINY, bridge_window_frames=5, token_prompt_mix=1.0)
    processor = MintProcessor.from_pretrained(TINY, bridge_window_frames=5)
    torch.manual_seed(0)
    model = MintForConditionalGeneration(config).eval()
    spec = {**json.loads((ROOT / "hub_configs" / "mint-tiny" / "variant.json").read_text()),
            "bridge_window_frames": 5, "token_prompt_mix": 1.0}
    folder = export(model, processor, tmp_path / "token-prompt", model_card("mint-tiny-token-prompt-random", spec,
                                                                            False, False, heads=False))
    assert check_folder(folder) == []
    card = (folder / "README.md").read_text()
    assert "get_audio_token_bags" in card and "AutoModelForPreTraining" not in card
    wav = _two_sounds(tmp_path / "wav.npy")
    labels = ["a dog barking", "a telephone ringing", "speech"]
    result = run_fresh(
        f"""
        import json, numpy as np
        from transformers import pipeline
        clf = pipeline("zero-shot-audio-classification", model={str(folder)!r}, trust_remote_code=True)
        wav = np.load({str(tmp_path / 'wav.npy')!r})
        templated = clf(wav, candidate_labels={labels!r}, hypothesis_template="the sound of {{}}")
        print(json.dumps({{"out": clf(wav, candidate_labels={labels!r}), "model": type(clf.model).__name__,
                          "templated": templated}}))
        """,
        tmp_path, tmp_path / "hf_home",
    )
    assert result["model"] == "MintForConditionalGeneration"
    features = {k: torch.from_numpy(v) for k, v in processor.prepare_audio(wav).items()}
    audio = torch.nn.functional.normalize(model.get_audio_token_bags(**features), dim=-1)

    def expected(texts):
        tok = processor.tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        bags = torch.nn.functional.normalize(model.get_text_token_bags(tok["input_ids"], tok["attention_mask"]), dim=-1)
        return dict(zip(labels, (TOKEN_BAG_LOGIT_SCALE * audio @ bags.T)[0].softmax(0).tolist()))

    _check_scores(result["out"], expected(labels))
    _check_scores(result["templated"], expected([f"the sound of {label}" for label in labels]))
