"""transformers' `zero-shot-audio-classification` pipeline for MINT folders."""

import torch
from torch import nn
from transformers.pipelines.zero_shot_audio_classification import ZeroShotAudioClassificationPipeline

# Cosines of word-piece bags -> logits: a temperature fitted on 96 validation clips of the corpus's sound labels (the
# labels' negative log-likelihood is lowest near 10 among 1-100: 2.5 nats; at CLIP's 100, 11.9), so scores are not
# all 1.0 for the best label.
TOKEN_BAG_LOGIT_SCALE = 10.0


class MintZeroShotAudioClassificationPipeline(ZeroShotAudioClassificationPipeline):
    """The stock pipeline (same call, same scores: the softmax of `logits_per_audio`), fed by [`MintProcessor`].

    A MINT folder's own tokenizer is the LLM's, so the labels go through the processor's Bridge-Net tokenizer; and
    the audio is cut into every encoder window the model hears (`max_audio_windows`) rather than cropped to the
    first, as the bare feature extractor would. Audio may be a path, bytes, an array or a `{"array",
    "sampling_rate"}` dict, as for the `audio-text-to-text` pipeline.

    A token-prompt folder (a CTC head over the LLM vocabulary) is served by its generation model: a label scores by
    the cosine between the word pieces the head hears in the clip and the label's own (`get_audio_token_bags`), the
    label alone unless a `hypothesis_template` is given, and the scores are the softmax of `TOKEN_BAG_LOGIT_SCALE`
    times the cosines.

    ```python
    >>> classifier = pipeline("zero-shot-audio-classification", model="org/mint", trust_remote_code=True)
    >>> classifier("clip.wav", candidate_labels=["a dog barking", "speech"])
    ```
    """

    _load_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # what the stock pipeline's users read: the rate audio is taken at, and the tokenizer of the labels
        self.feature_extractor = self.processor.feature_extractor
        self.tokenizer = self.processor.bridge_tokenizer

    def preprocess(self, audio, candidate_labels=None, hypothesis_template=None):
        if not candidate_labels:
            raise ValueError("zero-shot classification needs candidate_labels")
        # a bare array is at the feature extractor's rate, as the stock pipeline takes it; dicts and files carry theirs
        features = self.processor.prepare_audio(audio, self.processor.sampling_rate)
        if self.token_bags:
            sequences = [(hypothesis_template or "{}").format(label) for label in candidate_labels]
            text = self.processor.tokenizer(sequences, add_special_tokens=False, padding=True, return_tensors="pt")
        else:
            sequences = [(hypothesis_template or "This is a sound of {}.").format(label) for label in candidate_labels]
            text = self.processor.bridge_tokenizer(sequences, padding=True, truncation=True,
                                                   max_length=self.processor.bridge_max_length, return_tensors="pt")
        return {
            "input_features": torch.from_numpy(features["input_features"]).to(self.model.dtype),
            "feature_attention_mask": torch.from_numpy(features["feature_attention_mask"]),
            "text_inputs": dict(text),
            "candidate_labels": candidate_labels,
        }

    @property
    def token_bags(self) -> bool:
        return hasattr(self.model, "get_audio_token_bags")

    def _forward(self, model_inputs):
        candidate_labels = model_inputs.pop("candidate_labels")
        text = model_inputs.pop("text_inputs")
        if not self.token_bags:
            return {"candidate_labels": candidate_labels, "logits": self.model(**text, **model_inputs).logits_per_audio}
        audio = nn.functional.normalize(self.model.get_audio_token_bags(**model_inputs), dim=-1)
        labels = self.model.get_text_token_bags(text["input_ids"], text["attention_mask"])
        logits = TOKEN_BAG_LOGIT_SCALE * audio @ nn.functional.normalize(labels, dim=-1).T
        return {"candidate_labels": candidate_labels, "logits": logits}
