"""Write `hub_configs/mint-tiny-random/`: a tiny Whisper + Llama MINT config with tokenizers trained offline.

Run once (`python -m mint.hub.build_tiny_random`); the output is committed and used by the tests and CI.
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor

from modeling_mint import MintConfig, MintProcessor


OUT = Path(__file__).parent / "mint-tiny-random"
CORPUS = [
    "Describe the audio.", "Transcribe the speech.", "What animal is making this sound?",
    "How many beeps are there?", "A dog barks twice, then a car passes by.", "the quick brown fox jumps over the lazy dog",
    "Please enter your conference number followed by the pound key.", "A lion roars.", "Rain falls on a tin roof.",
    "Which sound comes first?", "one two three four five six seven eight nine ten", "yes no maybe",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def llm_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<audio>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>", unk_token="<unk>",
        extra_special_tokens={"audio_token": "<audio>"}, padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def bridge_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", extra_special_tokens={"bos_token": "[DEC]"},
    )


def main(out: Path = OUT):
    tokenizer, bridge_tok = llm_tokenizer(), bridge_tokenizer()
    # 1-s windows of 8 log-mel bins: Whisper needs 2 * max_source_positions = 100 frames per window.
    features = WhisperFeatureExtractor(feature_size=8, chunk_length=1)
    config = MintConfig(
        audio_config={
            "model_type": "whisper", "d_model": 16, "encoder_layers": 2, "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32, "num_mel_bins": 8, "max_source_positions": 50,
            "decoder_layers": 1, "decoder_attention_heads": 2, "decoder_ffn_dim": 32, "vocab_size": 64,
            "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 1,
        },
        bridge_config={
            "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
            "cross_attention_frequency": 1, "vocab_size": len(bridge_tok), "max_position_embeddings": 64,
            "bos_token_id": bridge_tok.bos_token_id,
        },
        text_config={
            "model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 37, "vocab_size": len(tokenizer),
            "max_position_embeddings": 256, "tie_word_embeddings": True,
            "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        num_query_tokens=4,
        audio_token_index=tokenizer.convert_tokens_to_ids("<audio>"),
        projection_dim=16,
        max_audio_windows=3,
    )
    processor = MintProcessor(
        feature_extractor=features, tokenizer=tokenizer, bridge_tokenizer=bridge_tok,
        num_query_tokens=config.num_query_tokens, max_audio_windows=config.max_audio_windows, bridge_max_length=32,
    )
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    processor.save_pretrained(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
