"""Tiny random checkpoints saved under the real repo ids the Hub variants name, for the mock Hub."""

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizerFast,
    Data2VecAudioConfig,
    Data2VecAudioModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
    Wav2Vec2FeatureExtractor,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)


WORDS = "the a dog cat barks meows rain falls on roof what is this sound describe audio transcribe speech one two".split()
CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _bpe(specials, **kwargs) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=specials[0]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([" ".join(WORDS)] * 3, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def build_tiny_hub(root: Path) -> dict[str, Path]:
    """Save the tiny checkpoints; returns repo id -> folder."""
    torch.manual_seed(0)
    repos = {}

    def save(repo_id, *objects):
        path = root / repo_id
        for obj in objects:
            obj.save_pretrained(path)
        repos[repo_id] = path

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    bert_tok = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)})
    bert = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=37, max_position_embeddings=64))
    save("google-bert/bert-base-uncased", bert, bert_tok)

    d2v = Data2VecAudioModel(Data2VecAudioConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=[8, 8],
        conv_stride=[5, 4], conv_kernel=[10, 8], num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2))
    save("facebook/data2vec-audio-base", d2v, Wav2Vec2FeatureExtractor(return_attention_mask=True))

    whisper = WhisperForConditionalGeneration(WhisperConfig(
        d_model=24, encoder_layers=2, encoder_attention_heads=2, decoder_layers=1, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=1500, vocab_size=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1))
    save("openai/whisper-small", whisper, WhisperFeatureExtractor(feature_size=80))

    t5_tok = _bpe(["<unk>", "<pad>", "</s>"], unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    t5 = T5ForConditionalGeneration(T5Config(
        vocab_size=len(t5_tok), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, decoder_start_token_id=1,
        pad_token_id=1, eos_token_id=2, tie_word_embeddings=False))
    save("google/flan-t5-xl", t5, t5_tok)

    qwen_tok = _bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], unk_token="<|endoftext|>",
                    pad_token="<|endoftext|>", eos_token="<|im_end|>")
    qwen_tok.chat_template = CHAT
    qwen = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(qwen_tok) + 8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=37, tie_word_embeddings=True))
    save("Qwen/Qwen2.5-0.5B-Instruct", qwen, qwen_tok)
    return repos
