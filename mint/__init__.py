"""MINT: a frozen audio encoder, a trainable Bridge-Net (Q-Former) and a frozen LLM, as a transformers model.

The model itself is `modeling_mint` (the remote code a Hub folder ships); everything else lives here:
`mint.hub` (variants, assembly, shipping, push), `mint.training` (corpus, stages, evaluation), `mint.bench`
(benchmarks), `mint.metrics` (local `evaluate` modules) and `mint.cli` (the `mint` command).
"""
