"""The model card (README.md) of an assembled variant: Hub metadata from the variant's parts, and a body whose
results come from the committed reports (never typed in by hand)."""

import json
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData


REPORTS = Path(__file__).resolve().parent.parent / "training" / "reports"
BASE_MODELS = {  # offline component -> the Hub repo it is a copy of
    "whisper-tiny.en": "openai/whisper-tiny.en",
    "whisper-base": "openai/whisper-base",
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}


def base_models(spec: dict) -> list[str]:
    parts = [spec.get(k) for k in ("audio_encoder", "bridge_init", "language_model")]
    repos = [p[3:] if p.startswith("hf:") else BASE_MODELS.get(p) for p in parts if p]
    return [r for r in repos if r]


def results_section(variant: str) -> str:
    """The variant's comparison table and training report, when they have been produced."""
    slug = variant.replace("-", "_")
    parts = []
    comparison = REPORTS / f"{slug}_comparison.md"
    if comparison.is_file():
        parts += ["## Results", "", comparison.read_text().strip(), ""]
    report = REPORTS / f"{slug}.json"
    if report.is_file():
        data = json.loads(report.read_text())
        stages = data["stages"]
        minutes = sum(s["train_seconds"] for s in stages.values()) / 60
        parts += ["## Training", "",
                  f"{len(stages)} stages, {minutes:.0f} min of training on 2 CPU cores, reproduced by "
                  "`make train-mint-tiny` in the MINT repository, which runs `mint train` on each recipe:", "",
                  "| stage | recipe | steps x batch | wall time |", "|---|---|---|---|"]
        parts += [f"| {name} | `{s['recipe']}` | {s['steps']} x {s['batch_size']} | {s['train_seconds'] / 60:.1f} min |"
                  for name, s in stages.items()]
        parts += ["", f"Data: the offline corpus of `mint data build` (sha256 `{data['corpus_sha256'][:12]}`), "
                  "built from Debian packages' recordings and generated clips, no Hub dataset. Every clip carries "
                  "its source's license; the corpus card (its README.md) lists them per source.", ""]
    return "\n".join(parts)


ZERO_SHOT_USE = """
```python
import torch
from transformers import AutoModelForPreTraining, AutoProcessor, pipeline

classifier = pipeline("zero-shot-audio-classification", model="PATH_OR_REPO", trust_remote_code=True)
classifier("clip.wav", candidate_labels=["a dog barking", "speech", "a telephone ringing"])

# CLAP-style embeddings from the same weights (the stage-1 model)
model = AutoModelForPreTraining.from_pretrained("PATH_OR_REPO", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("PATH_OR_REPO", trust_remote_code=True)
features = {k: torch.from_numpy(v) for k, v in processor.prepare_audio("clip.wav").items()}
audio = model.get_audio_features(**features).pooler_output  # (1, queries, dim): a clip scores a text by its best query
text = model.get_text_features(**processor.bridge_tokenizer(["speech"], return_tensors="pt")).pooler_output
```

Zero-shot scores are the softmax of the audio-text similarities (as CLAP's); audio up to `max_audio_windows`
encoder windows is heard whole.
"""


TOKEN_BAG_USE = """
```python
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoProcessor, pipeline

classifier = pipeline("zero-shot-audio-classification", model="PATH_OR_REPO", trust_remote_code=True)
classifier("clip.wav", candidate_labels=["a dog barking", "speech", "a telephone ringing"])

model = AutoModelForCausalLM.from_pretrained("PATH_OR_REPO", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("PATH_OR_REPO", trust_remote_code=True)
features = {k: torch.from_numpy(v) for k, v in processor.prepare_audio("clip.wav").items()}
heard = model.get_audio_token_bags(**features)  # (1, vocabulary): the word pieces the CTC head hears
texts = processor.tokenizer(["speech"], add_special_tokens=False, return_tensors="pt")
similarity = F.normalize(heard, dim=-1) @ F.normalize(model.get_text_token_bags(**texts), dim=-1).T
```

Zero-shot scores are the softmax of 10 x the cosines between the word pieces the CTC head hears in the whole clip
and each label's own; the label goes in alone unless a `hypothesis_template` is given.
"""


def use_section(retrieval_only: bool, heads: bool, token_bags: bool = False, decoding: dict | None = None) -> str:
    generation = """```python
from transformers import pipeline

pipe = pipeline("audio-text-to-text", model="PATH_OR_REPO", trust_remote_code=True)
pipe("clip.wav", prompt="Describe the audio.", max_new_tokens=32)
```
"""
    if "transcription" in (decoding or {}):
        generation += """
Transcribe with the decoding this folder ships for it (`transcription_generation_config.json`: joint CTC decoding,
the CTC head scoring each next word piece beside the LLM, in a beam search):

```python
from transformers import GenerationConfig

transcribe = GenerationConfig.from_pretrained("PATH_OR_REPO", "transcription_generation_config.json")
pipe("speech.wav", prompt="Transcribe the speech.", generation_config=transcribe, max_new_tokens=48)
```
"""
    if retrieval_only:
        return "The retrieval (stage-1) model alone, without the LLM:\n" + ZERO_SHOT_USE
    if token_bags:
        heads_too = ("\nThe folder also carries stage 1's retrieval heads (`AutoModelForPreTraining`, CLAP-style "
                     "embeddings).\n" if heads else "")
        return (generation + "\nIts CTC head also ranks texts and labels by the word pieces it hears:\n"
                + TOKEN_BAG_USE + heads_too)
    if heads:
        return generation + "\nThe same folder also carries the retrieval heads:\n" + ZERO_SHOT_USE
    return generation


def model_card(variant: str, spec: dict, trained: bool, lora_merged: bool, heads: bool = False,
               retrieval_only: bool = False) -> ModelCard:
    """`heads`: the folder also serves zero-shot classification and embeddings; `retrieval_only`: the stage-1
    model alone. A variant with the token prompt's CTC head on a windowed bridge serves zero-shot by its word
    pieces."""
    token_bags = not retrieval_only and spec.get("token_prompt_mix", 0) > 0 and bool(spec.get("bridge_window_frames"))
    data = ModelCardData(
        license="apache-2.0", library_name="transformers",
        pipeline_tag="zero-shot-audio-classification" if retrieval_only else "audio-text-to-text",
        base_model=base_models(spec) or None, tags=["audio", "audio-language-model", "q-former", "mint", "custom_code"],
        metrics=["wer", "bleu", "meteor", "rouge", "cider", "accuracy", "recall"], language=["en"],
    )
    status = "untrained (the starting point of training)"
    if trained:
        status = "trained: the shipped Bridge-Net" + (", with its LoRA adapter merged into the LLM" if lora_merged else "")
    body = f"""
# {variant}

{spec.get("description", "")}

This folder is {status}. It is MINT: a frozen pretrained audio encoder, a trainable Bridge-Net (a Q-Former trained
by multi-target pre-training: audio-text contrastive, matching and audio-grounded generation) and a frozen LLM,
then generative pre-training and instruction tuning.

## Use

{use_section(retrieval_only, heads, token_bags, spec.get("decoding"))}
`trust_remote_code=True` runs the Python files of this repository (`configuration_mint.py`, `modeling_mint.py`,
`processing_mint.py`, `pipeline_mint.py`) on your machine: read them first, or pin a revision you have read. Weights
are safetensors only.

## Intended use and limits

For research on audio-language models and as a small, fully offline reference. It was trained on a few thousand
short clips (phone prompts, spoken words, synthetic speech, tones and sound effects) on CPUs; it is not an ASR or
captioning system to rely on, and its answers can be fluent and wrong. English prompts and answers; spoken-word and
language identification cover the corpus' 25 languages. The results below say how far it is from its targets.

{results_section(variant)}
## Citation

MINT: Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning (INTERSPEECH 2024;
arXiv:2402.07485).
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
