"""MINT for transformers. Importing this package registers the Auto classes and the `audio-text-to-text` pipeline."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
    AutoModelForPreTraining,
    AutoProcessor,
    AutoModelForSeq2SeqLM,
)

from .configuration_mint import AUDIO_ENCODERS, AudioEncoderFacts, MintBridgeConfig, MintConfig, audio_encoder_facts
from .generation_mint import MintCTCPrefixScorer
from .modeling_mint import (
    MintAudioBridgeModel,
    MintBridgeModel,
    MintForAudioTextRetrieval,
    MintForConditionalGeneration,
    MintModel,
    MintPreTrainedModel,
)
from .pipeline_mint import AudioTextToTextPipeline
from .processing_mint import MintProcessor, load_audio


AUTO_MAP = {
    "AutoConfig": "configuration_mint.MintConfig",
    "AutoModel": "modeling_mint.MintModel",
    "AutoModelForCausalLM": "modeling_mint.MintForConditionalGeneration",
    "AutoModelForSeq2SeqLM": "modeling_mint.MintForConditionalGeneration",
    "AutoModelForMultimodalLM": "modeling_mint.MintForConditionalGeneration",
    "AutoModelForImageTextToText": "modeling_mint.MintForConditionalGeneration",
}
# Where the config carries the retrieval heads: the stage-1 model reads the same weights, and transformers' stock
# `zero-shot-audio-classification` call runs through the folder's own pipeline class.
RETRIEVAL_AUTO_MAP = {"AutoModelForPreTraining": "modeling_mint.MintForAudioTextRetrieval"}
ZERO_SHOT_PIPELINE = {
    "zero-shot-audio-classification": {
        "impl": "pipeline_mint_zero_shot.MintZeroShotAudioClassificationPipeline",
        "pt": ["AutoModelForPreTraining"],
        "type": "multimodal",
    }
}
# A token-prompt folder (a CTC head over the LLM vocabulary) scores labels by the word pieces its head hears, with the
# generation model itself.
TOKEN_BAG_ZERO_SHOT_PIPELINE = {
    "zero-shot-audio-classification": {**ZERO_SHOT_PIPELINE["zero-shot-audio-classification"],
                                       "pt": ["AutoModelForCausalLM"]}
}
CUSTOM_PIPELINES = {
    "audio-text-to-text": {
        "impl": "pipeline_mint.AudioTextToTextPipeline",
        "pt": ["AutoModelForCausalLM"],
        "type": "multimodal",
    }
}
REMOTE_CODE_FILES = (
    "configuration_mint.py",
    "modeling_mint.py",
    "losses_mint.py",
    "generation_mint.py",
    "processing_mint.py",
    "pipeline_mint.py",
    "pipeline_mint_zero_shot.py",
)


def _register():
    AutoConfig.register("mint", MintConfig, exist_ok=True)
    AutoConfig.register("mint_bridge", MintBridgeConfig, exist_ok=True)
    AutoModel.register(MintConfig, MintModel, exist_ok=True)
    for auto in (AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForMultimodalLM, AutoModelForImageTextToText):
        auto.register(MintConfig, MintForConditionalGeneration, exist_ok=True)
    AutoModelForPreTraining.register(MintConfig, MintForAudioTextRetrieval, exist_ok=True)
    AutoProcessor.register(MintConfig, MintProcessor, exist_ok=True)  # the pipeline registers itself on import


_register()

__all__ = [
    "AUDIO_ENCODERS",
    "AUTO_MAP",
    "CUSTOM_PIPELINES",
    "REMOTE_CODE_FILES",
    "RETRIEVAL_AUTO_MAP",
    "ZERO_SHOT_PIPELINE",
    "AudioEncoderFacts",
    "AudioTextToTextPipeline",
    "MintBridgeConfig",
    "MintCTCPrefixScorer",
    "MintAudioBridgeModel",
    "MintBridgeModel",
    "MintForAudioTextRetrieval",
    "MintConfig",
    "MintForConditionalGeneration",
    "MintModel",
    "MintPreTrainedModel",
    "MintProcessor",
    "audio_encoder_facts",
    "load_audio",
]
