"""transformers' own common tests (`ModelTesterMixin`, `ConfigTester`, from its 5.23.0 source distribution, see
`tests/transformers_common/`) and MINT's generation checks, on tiny configs of both families (Whisper + Llama,
data2vec-audio + T5) and on the stage-1 retrieval model.

The only tests skipped are those transformers itself skips for BLIP-2, InstructBLIP or Qwen2-Audio, for the same
reason, each named where it is skipped.
"""

import copy
import unittest
from unittest import mock

import pytest
import torch
from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES
from transformers_common.generation.test_utils import GenerationTesterMixin
from transformers_common.test_configuration_common import ConfigTester
from transformers_common.test_modeling_common import ModelTesterMixin, floats_tensor, ids_tensor

from modeling_mint import (
    MintBridgeConfig,
    MintConfig,
    MintForAudioTextRetrieval,
    MintForConditionalGeneration,
    MintModel,
)


# Hundreds of small tests, each well under a second, that together outlast the fast tier's whole budget.
pytestmark = pytest.mark.slow
AUDIO_TOKEN = 98
AUDIO_CONFIGS = {
    "whisper": {"model_type": "whisper", "d_model": 16, "encoder_layers": 2, "encoder_attention_heads": 2,
                "encoder_ffn_dim": 32, "num_mel_bins": 8, "max_source_positions": 25, "decoder_layers": 1},
    "data2vec-audio": {"model_type": "data2vec-audio", "hidden_size": 16, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "intermediate_size": 32, "conv_dim": [8, 8], "conv_stride": [5, 4],
                       "conv_kernel": [10, 8], "num_conv_pos_embeddings": 4, "num_conv_pos_embedding_groups": 2,
                       "mask_time_prob": 0.0, "layerdrop": 0.0, "hidden_dropout": 0.0},
}
TEXT_CONFIGS = {
    "llama": {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 37, "vocab_size": 99, "max_position_embeddings": 64,
              "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    "t5": {"model_type": "t5", "d_model": 32, "d_kv": 8, "num_layers": 2, "num_heads": 4, "d_ff": 37, "vocab_size": 99,
           "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1, "relative_attention_num_buckets": 8},
}
BRIDGE_CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
                 "cross_attention_frequency": 1, "vocab_size": 60, "max_position_embeddings": 32, "bos_token_id": 5}


class MintModelTester:
    """Tiny MINT configs and inputs in the shape transformers' common tests expect: `batch_size` clips of one encoder
    window, a prompt of `seq_length` LLM tokens holding the `num_query_tokens` audio placeholders, an instruction
    for the Bridge-Net. Seven clips: the eager-vs-SDPA tests run a batch of seven and pad smaller inputs with random
    rows, which would pair clips with prompts that have no placeholders."""

    def __init__(self, parent, audio_type="whisper", text_type="llama", batch_size=7, seq_length=10,
                 num_query_tokens=4, is_training=True):
        self.parent, self.audio_type, self.text_type = parent, audio_type, text_type
        self.batch_size, self.seq_length, self.num_query_tokens = batch_size, seq_length, num_query_tokens
        self.encoder_seq_length = seq_length
        self.decoder_seq_length = 6
        self.is_training = is_training
        self.audio_config, self.text_config = AUDIO_CONFIGS[audio_type], TEXT_CONFIGS[text_type]
        self.num_hidden_layers, self.hidden_size, self.num_attention_heads, self.vocab_size = 2, 32, 4, 99

    def get_config(self) -> MintConfig:
        return MintConfig(audio_config=copy.deepcopy(self.audio_config), bridge_config=dict(BRIDGE_CONFIG),
                          text_config=copy.deepcopy(self.text_config), num_query_tokens=self.num_query_tokens,
                          audio_token_index=AUDIO_TOKEN, projection_dim=16,
                          audio_window_size=None if self.audio_type == "whisper" else 400, max_audio_windows=2)

    def audio_inputs(self, config) -> dict:
        window = config.audio_window_size
        shape = [self.batch_size, 8, window] if self.audio_type == "whisper" else [self.batch_size, window]
        return {"input_features": floats_tensor(shape),
                "feature_attention_mask": torch.ones(self.batch_size, window, dtype=torch.long)}

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        input_ids = ids_tensor([self.batch_size, self.seq_length], 90) + 3  # no special ids, no placeholder
        input_ids[:, 2 : 2 + self.num_query_tokens] = AUDIO_TOKEN
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), **self.audio_inputs(config),
                  "bridge_input_ids": ids_tensor([self.batch_size, 5], 50) + 6,
                  "bridge_attention_mask": torch.ones(self.batch_size, 5, dtype=torch.long)}
        if config.is_encoder_decoder:
            inputs["decoder_input_ids"] = ids_tensor([self.batch_size, self.decoder_seq_length], 90) + 3
        return config, inputs

    def labels(self, inputs: dict) -> torch.Tensor:
        """Next-token targets: the text after the audio (decoder-only), the decoder's tokens (T5)."""
        if "decoder_input_ids" in inputs:
            return inputs["decoder_input_ids"].clone()
        labels = inputs["input_ids"].clone()
        labels[:, : 2 + self.num_query_tokens] = -100
        return labels


class MintCommonTests(ModelTesterMixin, GenerationTesterMixin):
    """The mixins on [`MintModel`] and [`MintForConditionalGeneration`]; each family subclasses it."""

    all_model_classes = (MintModel, MintForConditionalGeneration)
    additional_model_inputs = ["input_features", "feature_attention_mask", "bridge_input_ids", "bridge_attention_mask"]
    _is_composite = True
    # BLIP-2's own tests turn these off: the LLM's vocabulary lives in `text_config`, which the resize tests do not
    # look in.
    test_resize_embeddings = False
    audio_type = text_type = None

    @classmethod
    def setUpClass(cls):
        # MINT's auto class registration as transformers' own models have it, so the common tests know `MintModel`
        # for the base model (no loss, no training tests) as they know `Blip2Model` or `LlavaModel`.
        cls._registered = mock.patch.dict(MODEL_MAPPING_NAMES, {"mint": "MintModel"})
        cls._registered.start()

    @classmethod
    def tearDownClass(cls):
        cls._registered.stop()

    def setUp(self):
        self.model_tester = MintModelTester(self, self.audio_type, self.text_type)
        self.config_tester = ConfigTester(self, config_class=MintConfig, has_text_modality=False)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if return_labels and model_class is MintForConditionalGeneration:
            inputs["labels"] = self.model_tester.labels(inputs)
        return inputs

    def test_config(self):
        self.config_tester.run_common_tests()


class MintWhisperLlamaTest(MintCommonTests, unittest.TestCase):
    audio_type, text_type = "whisper", "llama"


class MintData2VecT5Test(MintCommonTests, unittest.TestCase):
    audio_type, text_type = "data2vec-audio", "t5"
    is_encoder_decoder = True

    @unittest.skip(reason="BLIP-2's tests turn it off: the output length it counts is a plain seq2seq model's, without "
                          "the soft prompt (the attentions themselves are checked in generation)")
    def test_attention_outputs(self):
        pass

    @unittest.skip(reason="Retain_grad is tested in individual model tests (as BLIP-2's tests skip it)")
    def test_retain_grad_hidden_states_attentions(self):
        pass


class MintRetrievalModelTester(MintModelTester):
    """Stage 1: clips and their captions in the bridge tokenizer ([CLS] first)."""

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        input_ids = ids_tensor([self.batch_size, 7], 50) + 6
        input_ids[:, 0] = 2  # [CLS]
        return config, {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                        **self.audio_inputs(config)}


class MintRetrievalTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (MintForAudioTextRetrieval,)
    additional_model_inputs = ["input_features", "feature_attention_mask"]
    _is_composite = True
    # BLIP-2's own tests turn this off for its composite models.
    test_resize_embeddings = False

    def setUp(self):
        # The paper's stage 1: data2vec-audio frames, no LLM loaded (its config is carried, unused).
        self.model_tester = MintRetrievalModelTester(self, "data2vec-audio", "t5")
        self.config_tester = ConfigTester(self, config_class=MintConfig, has_text_modality=False)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if return_labels:
            inputs["return_loss"] = True
        return inputs

    @unittest.skip(reason="Hidden_states is tested in individual model tests (as BLIP-2's tests skip it)")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="BLIP-2's tests turn it off: the stage-1 output carries similarities and losses, the "
                          "attentions are the Bridge-Net's and the audio tower's own")
    def test_attention_outputs(self):
        pass

    @unittest.skip(reason="Retain_grad is tested in individual model tests (as BLIP-2's tests skip it)")
    def test_retain_grad_hidden_states_attentions(self):
        pass


class MintBridgeConfigTest(unittest.TestCase):
    def test_config(self):
        ConfigTester(self, config_class=MintBridgeConfig, hidden_size=36, num_attention_heads=6).run_common_tests()
