"""How much the frozen-feature cache saves: encoding clips through the audio tower vs reading their cached frames,
measured in one run on the same clips.

    python -m benchmarks.feature_cache --model models/mint-tiny --clips 64
"""

import argparse
import tempfile
import time

import torch

from modeling_mint import MintForConditionalGeneration, MintProcessor
from training.common import feature_cache
from training.data import asterisk_pairs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="an assembled MINT folder")
    parser.add_argument("--clips", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = MintForConditionalGeneration.from_pretrained(args.model).eval()
    processor = MintProcessor.from_pretrained(args.model)
    sources = [p["audio"] for p in asterisk_pairs()[: args.clips]]
    with tempfile.TemporaryDirectory() as root:
        cache = feature_cache(model, processor, root)
        start = time.perf_counter()
        cache.index(sources, desc="encoding (cold cache)")
        cold = time.perf_counter() - start
        start = time.perf_counter()
        frames = cache.frames(sources, desc="reading (warm cache)")
        warm = time.perf_counter() - start
    print(f"clips: {len(frames)}  encode: {cold:.2f} s ({len(frames) / cold:.1f} clips/s)  "
          f"cached: {warm:.3f} s ({len(frames) / warm:.0f} clips/s)  speedup: {cold / warm:.0f}x")


if __name__ == "__main__":
    main()
