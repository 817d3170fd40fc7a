"""Evaluate a MINT folder on a split of the corpus: every task the split has, by generation, plus retrieval and
zero-shot classification by embeddings when a stage-1 retrieval folder is given, and by the word pieces its CTC
head hears when the model has one (the token prompt).

    mint eval --model models/mint-tiny --data data/mint-corpus --split test --out runs/eval/mint-tiny

Writes `metrics.json`, `metrics.md` and `predictions.jsonl` to `--out`.
"""

import functools
import json
import re
from collections import defaultdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

import mint.metrics
from mint.metrics.mint_wer.mint_wer import normalize  # the text both sides of WER and accuracy see

from mint.training.collators import AudioLanguageCollator, pad_frames
from mint.training.common import feature_cache, frames_dataset
from mint.training.data import corpus_rows
from mint.training.features import load_frames


GENERATION_TASKS = ("transcription", "captioning", "classification", "spoken_word", "letter", "language_id",
                    "question_answering")
LABEL_TASKS = ("classification", "spoken_word", "letter", "language_id")


METRICS = Path(mint.metrics.__file__).parent


@functools.cache
def metric(name: str):
    """A local `evaluate` module of mint_metrics/ (Hub metrics cannot load offline)."""
    import evaluate

    return evaluate.load(str(METRICS / name))


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    return metric("mint_wer").compute(predictions=hypotheses, references=references)["wer"]


def caption_scores(references: dict[str, list[str]], hypotheses: dict[str, str]) -> dict:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr (and SPICE / SPIDEr, or why not) of one caption per clip."""
    keys = list(references)
    return metric("mint_captioning").compute(predictions=[hypotheses[k] for k in keys],
                                             references=[references[k] for k in keys])


NUMBER_WORDS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "zero"}
SOUND_WORDS = {"white", "pink", "brown", "noise", "beep", "beeps", "voice", "says", "short", "long", "hz", "then",
               "over", "sound", "of", "the", "a", "an", "and", "with", "is", "in", "or"}


def caption_accepted(reference: str, prediction: str) -> bool:
    """Would a listener accept the caption? A fixed, inspectable rule: what the reference says is heard must be in
    the caption: the spoken word (in quotes), the number of beeps, the noise colour, which comes first ("X, then
    Y"), and otherwise every content word of the reference (the animal or object). The pitch in Hz and "short" or
    "long" are details a listener forgives."""
    ref, pred = normalize(reference), normalize(prediction)
    pred_words = set(pred.split())
    quoted = [normalize(q) for q in re.findall(r'"([^"]+)"', reference)]
    keys = quoted + [w for w in ref.split() if w in NUMBER_WORDS | {"white", "pink", "brown"}]
    if not keys:
        keys = [w for w in ref.split() if w not in SOUND_WORDS and not w.isdigit()]
    if not all(k in pred_words or (" " in k and k in pred) for k in keys):
        return False
    if " then " in f" {ref} ":  # order of the voice and the beep
        first = "voice" if ref.index("voice") < ref.index("beep") else "beep"
        if "voice" in pred and "beep" in pred:
            return first == ("voice" if pred.index("voice") < pred.index("beep") else "beep")
    return True


def task_decoding(model: str, task: str | None) -> dict:
    """The `generate` keywords of the decoding a model folder ships for `task` (its `{task}_generation_config.json`,
    e.g. joint CTC decoding for transcription) where they differ from its own generation config; {} where it ships
    none."""
    from transformers import GenerationConfig

    if task is None:
        return {}
    try:
        shipped = GenerationConfig.from_pretrained(model, f"{task}_generation_config.json").to_diff_dict()
    except OSError:
        return {}
    try:
        own = GenerationConfig.from_pretrained(model).to_diff_dict()
    except OSError:
        own = {}
    return {k: v for k, v in shipped.items() if not k.startswith("_") and k != "transformers_version" and own.get(k) != v}


class Generator:
    """Greedy answers of a MINT generation model for corpus rows, reading cached encoder frames.

    `instruction` puts each row's instruction in the LLM prompt and the Bridge-Net (as instruction tuning does);
    without it the prompt is the audio alone (a stage-2 model)."""

    def __init__(self, model, processor, instruction: bool = True, max_new_tokens: int = 48, batch_size: int = 16):
        self.model, self.processor = model.eval(), processor
        self.collator = AudioLanguageCollator(processor, instruction_in_prompt=instruction,
                                              instruction_in_bridge=instruction)
        self.instruction, self.max_new_tokens, self.batch_size = instruction, max_new_tokens, batch_size

    @torch.no_grad()
    def __call__(self, rows: list[dict], desc: str = "generating", **generate_kwargs) -> list[str]:
        """The answers to `rows`; `generate_kwargs` go to `generate` on top of the model's generation config (e.g.
        `{"ctc_weight": 0.5}` for joint CTC decoding)."""
        tokenizer = self.processor.tokenizer
        answers = []
        for start in tqdm(range(0, len(rows), self.batch_size), desc=desc):
            batch_rows = rows[start : start + self.batch_size]
            frames, frame_mask = pad_frames([load_frames(r["frames_path"]) for r in batch_rows])
            counts = [self.processor.tokens_for_frames(n) for n in frame_mask.sum(1).tolist()]
            prompts = self.processor._expand([self.collator.prompt(r["instruction"]) for r in batch_rows],
                                             len(batch_rows), counts)
            ids = {"input_ids": [self.processor.prompt_ids(p) for p in prompts]}  # as training and inference do
            inputs = tokenizer.pad(ids, padding=True, padding_side="left", return_tensors="pt")
            if self.instruction:
                bridge = self.processor.bridge_tokenizer([r["instruction"] for r in batch_rows], padding=True,
                                                         truncation=True, return_tensors="pt")
                inputs["bridge_input_ids"], inputs["bridge_attention_mask"] = bridge["input_ids"], bridge["attention_mask"]
            out = self.model.generate(**inputs, audio_frames=frames, audio_frame_mask=frame_mask, do_sample=False,
                                      max_new_tokens=self.max_new_tokens, **generate_kwargs)
            if not self.model.config.is_encoder_decoder:
                out = out[:, inputs["input_ids"].shape[1] :]
            answers += [a.strip() for a in tokenizer.batch_decode(out, skip_special_tokens=True)]
        return answers


def label_accuracy(rows: list[dict], answers: list[str]) -> dict:
    """Exact and normalized accuracy; chance is one over the labels of the rows' own label set."""
    scores = metric("mint_accuracy").compute(predictions=answers, references=[r["text"] for r in rows])
    return {**scores, "clips": len(rows)}


def by_source(rows: list[dict]) -> dict[str, list[int]]:
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r["source"]].append(i)
    return dict(groups)


def generation_metrics(task: str, rows: list[dict], answers: list[str]) -> dict:
    """Each task's metric, over all its rows and per source."""
    def score(idx):
        sub_rows, sub_answers = [rows[i] for i in idx], [answers[i] for i in idx]
        if task == "transcription":
            return {"WER": word_error_rate([r["text"] for r in sub_rows], sub_answers), "clips": len(idx)}
        if task == "captioning":
            refs = defaultdict(list)
            for r in sub_rows:
                refs[r["clip_id"]].append(r["text"])
            hyps = {r["clip_id"]: a for r, a in zip(sub_rows, sub_answers)}
            accepted = sum(caption_accepted(r["text"], a) for r, a in zip(sub_rows, sub_answers)) / len(sub_rows)
            return {**caption_scores(refs, hyps), "accepted": accepted, "clips": len(refs)}
        return label_accuracy(sub_rows, sub_answers)

    groups = by_source(rows)
    metrics = {"all": score(range(len(rows)))}
    if len(groups) > 1:
        metrics.update({source: score(idx) for source, idx in sorted(groups.items())})
    return metrics


def ranking_metrics(rows: list[dict], audio_embeds, text_embeds) -> dict:
    """Audio-to-text retrieval over the distinct texts of the describing tasks, and zero-shot classification
    (argmax similarity over each label task's own label set, per source). `audio_embeds(rows)` gives `(A, Nq, P)`
    and `text_embeds(texts)` `(T, P)`, both normalized; a clip's similarity to a text is its best query's."""
    from mint.training.metrics import retrieval_metrics

    metrics = {}
    describing = [r for r in rows if r["task"] in ("captioning", "transcription") and r["language"] in ("en", "")]
    if describing:
        texts = sorted({r["text"] for r in describing})
        index = {t: i for i, t in enumerate(texts)}
        metrics["retrieval"] = {**retrieval_metrics(audio_embeds(describing), text_embeds(texts),
                                                    [index[r["text"]] for r in describing]),
                                "clips": len(describing), "texts": len(texts)}
    for task in LABEL_TASKS:
        task_rows = [r for r in rows if r["task"] == task]
        groups = by_source(task_rows)
        if len(groups) > 1:
            groups["all"] = list(range(len(task_rows)))
        task_audio = audio_embeds(task_rows) if task_rows else None  # once per task; sources are slices of it
        for source, idx in sorted(groups.items()):
            subset = [task_rows[i] for i in idx]
            labels = sorted({r["text"] for r in subset})
            if len(labels) < 2:
                continue
            similarity = torch.einsum("aqd,td->atq", task_audio[idx], text_embeds(labels)).amax(-1)
            predicted = [labels[i] for i in similarity.argmax(1).tolist()]
            metrics[f"zero_shot/{task}/{source}"] = label_accuracy(subset, predicted)
    return metrics


@torch.no_grad()
def embedding_metrics(retrieval_dir: str, rows: list[dict], batch_size: int = 64) -> dict:
    """`ranking_metrics` by the embeddings of a stage-1 retrieval folder (contrastive heads)."""
    from transformers import AutoTokenizer

    from modeling_mint import MintForAudioTextRetrieval

    model = MintForAudioTextRetrieval.from_pretrained(retrieval_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(retrieval_dir, subfolder="bridge_tokenizer")  # the processor's

    def audio_embeds(subset):
        out = []
        for start in range(0, len(subset), batch_size):
            frames, mask = pad_frames([load_frames(r["frames_path"]) for r in subset[start : start + batch_size]])
            out.append(model.get_audio_features(audio_frames=frames, audio_frame_mask=mask).pooler_output)
        return torch.cat(out)

    def text_embeds(texts):
        out = []
        for start in range(0, len(texts), batch_size):
            tok = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=64,
                            return_tensors="pt")
            out.append(model.get_text_features(tok["input_ids"], tok["attention_mask"]).pooler_output)
        return torch.cat(out)

    return ranking_metrics(rows, audio_embeds, text_embeds)


@torch.no_grad()
def token_bag_metrics(model, processor, rows: list[dict], batch_size: int = 16) -> dict:
    """`ranking_metrics` by the generation model's own CTC head: a clip is the word pieces it hears
    (`get_audio_token_bags`), a text its word pieces as the CTC targets tokenize them (the answer's, no special
    tokens), compared by cosine."""
    def audio_embeds(subset):
        out = []
        for start in range(0, len(subset), batch_size):
            frames, mask = pad_frames([load_frames(r["frames_path"]) for r in subset[start : start + batch_size]])
            bags = model.get_audio_token_bags(audio_frames=frames, audio_frame_mask=mask)
            out.append(torch.nn.functional.normalize(bags, dim=-1)[:, None])
        return torch.cat(out)

    def text_embeds(texts):
        tok = processor.tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        return torch.nn.functional.normalize(model.get_text_token_bags(tok["input_ids"], tok["attention_mask"]), dim=-1)

    return ranking_metrics(rows, audio_embeds, text_embeds)


def whisper_wer(rows: list[dict], batch_size: int = 16) -> dict:
    """Whisper tiny.en's own decoder (greedy, 30-s window) on the same English transcription clips."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from mint.hub.components import whisper_tiny_en
    from modeling_mint import load_audio

    path = whisper_tiny_en()
    processor = WhisperProcessor.from_pretrained(path)
    model = WhisperForConditionalGeneration.from_pretrained(path).eval()
    hypotheses = []
    for start in tqdm(range(0, len(rows), batch_size), desc="whisper tiny.en"):
        waves = [load_audio(r["audio"], None, 16000) for r in rows[start : start + batch_size]]
        features = processor.feature_extractor(waves, sampling_rate=16000, return_tensors="pt").input_features
        ids = model.generate(features, max_new_tokens=100)
        hypotheses += [h.strip() for h in processor.batch_decode(ids, skip_special_tokens=True)]
    return {"WER": word_error_rate([r["text"] for r in rows], hypotheses), "clips": len(rows),
            "hypotheses": hypotheses}


def markdown_table(metrics: dict) -> str:
    """One row per number: task, subset (nested keys joined by " / "), metric, value."""
    lines = ["| task | subset | metric | value |", "|---|---|---|---|"]

    def walk(task, path, values):
        for name, value in values.items():
            if isinstance(value, dict):
                walk(task, [*path, name], value)
            elif isinstance(value, float):
                lines.append(f"| {task} | {' / '.join(path)} | {name} | {value:.3f} |")

    for task, groups in metrics.items():
        if isinstance(groups, dict):
            walk(task, [], groups)
    return "\n".join(lines) + "\n"


PLOTTED = {"transcription": "WER", "captioning": "CIDEr", "classification": "accuracy", "spoken_word": "accuracy",
           "letter": "accuracy", "language_id": "accuracy", "question_answering": "accuracy"}


def plot_metrics(metrics: dict, path: Path):
    """One panel per task: its headline metric per source (and over all), chance drawn beside accuracies."""
    from mint.training.plots import bar_panels

    panels = {}
    for task, name in PLOTTED.items():
        groups = metrics.get(task, {})
        bars = {source: values[name] for source, values in groups.items() if isinstance(values.get(name), float)}
        if "chance" in groups.get("all", {}):
            bars["chance"] = groups["all"]["chance"]
        panels[f"{task} {name}"] = bars
    return bar_panels(panels, path)


def evaluate(model_dir: str, data_dir: str, split: str, out: str, tasks: list[str] | None = None,
             languages: list[str] | None = None, sources: list[str] | None = None, max_per_task: int | None = None,
             instruction: bool = True, retrieval_dir: str | None = None, whisper_baseline: bool = False,
             batch_size: int = 16, max_new_tokens: int = 48, seed: int = 0, weights: str | None = None,
             any_language_tasks: tuple[str, ...] = (), generate_kwargs: dict | None = None,
             task_generate_kwargs: dict[str, dict] | None = None) -> dict:
    """`languages` filters every task but `any_language_tasks` (kept in all languages, e.g. language id);
    each task decodes as the model folder ships it (`task_decoding`), `generate_kwargs` on top for every task and
    `task_generate_kwargs[task]` on top of those for one (e.g. `{"transcription": {"ctc_weight": 0}}`)."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from mint.training.common import load_stage1_bridge

    model = MintForConditionalGeneration.from_pretrained(model_dir)
    if weights:  # a run's bridge.safetensors or checkpoint folder on top of the assembled model
        load_stage1_bridge(model, weights)
    processor = MintProcessor.from_pretrained(model_dir)
    cache = feature_cache(model, processor)
    rows = []
    for task in tasks or GENERATION_TASKS:
        task_languages = None if task in any_language_tasks else languages
        task_rows = corpus_rows(data_dir, split, [task], max_per_task, seed, task_languages, sources)
        rows += task_rows
    audio = [r["audio"] for r in rows]
    rows = frames_dataset(rows, cache).to_list()
    for r, a in zip(rows, audio):
        r["audio"] = a

    generator = Generator(model, processor, instruction, max_new_tokens, batch_size)
    decoding = {task: {**task_decoding(model_dir, task), **(generate_kwargs or {}),
                       **(task_generate_kwargs or {}).get(task, {})} for task in tasks or GENERATION_TASKS}
    decoding = {task: kwargs for task, kwargs in decoding.items() if kwargs}
    metrics = {"model": model_dir, "weights": weights, "split": split, **({"decoding": decoding} if decoding else {})}
    predictions = []
    for task in tasks or GENERATION_TASKS:
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        answers = generator(task_rows, desc=task, **decoding.get(task, {}))
        metrics[task] = generation_metrics(task, task_rows, answers)
        predictions += [{"clip_id": r["clip_id"], "task": task, "source": r["source"], "instruction": r["instruction"],
                         "reference": r["text"], "prediction": a} for r, a in zip(task_rows, answers)]
        if task == "transcription" and whisper_baseline:
            english = [r for r in task_rows if r["language"] == "en"]
            baseline = whisper_wer(english, batch_size)
            mint_english = {r["clip_id"]: a for r, a in zip(task_rows, answers)}
            metrics["transcription_english"] = {
                "whisper-tiny.en": generation_metrics("transcription", english, baseline["hypotheses"]),
                "mint": generation_metrics("transcription", english, [mint_english[r["clip_id"]] for r in english]),
            }
            for r, h in zip(english, baseline["hypotheses"]):
                predictions.append({"clip_id": r["clip_id"], "task": "transcription", "source": r["source"],
                                    "system": "whisper-tiny.en", "reference": r["text"], "prediction": h})
    if retrieval_dir:
        metrics["embeddings"] = embedding_metrics(retrieval_dir, rows)
    if model.config.token_bags:
        metrics["token_bags"] = token_bag_metrics(model, processor, rows)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out_dir / "metrics.md").write_text(markdown_table(metrics))
    plot_metrics(metrics, out_dir / "metrics.png")
    with open(out_dir / "predictions.jsonl", "w") as f:
        for p in predictions:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    return metrics
