"""Local `evaluate` metric modules: `evaluate.load("mint_metrics/mint_wer")` works offline."""
