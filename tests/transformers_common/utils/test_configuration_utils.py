"""Keyword arguments every `PreTrainedConfig` accepts, each away from its default, for `ConfigTester`'s check that a
config keeps them (`check_config_arguments_init`)."""

config_common_kwargs = {
    "architectures": ["MintForConditionalGeneration"],
    "output_hidden_states": True,
    "return_dict": False,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "is_encoder_decoder": True,
    "id2label": {0: "speech", 1: "music"},
    "label2id": {"speech": 0, "music": 1},
    "problem_type": "single_label_classification",
    "output_attentions": True,
}
