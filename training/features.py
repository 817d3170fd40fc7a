"""Frozen-encoder feature cache: each clip is encoded once and stored on disk, keyed by encoder and audio content."""

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mint.io import atomic_file
from modeling_mint import load_audio


# What an entry holds, named in the cache path so that no entry written under another layout is ever read:
# "v2", every window of the clip through the model's own `encode_audio`. Entries written before (the first window
# only, straight from the tower) sit directly under the root.
LAYOUT = "v2"


def load_frames(path: str | Path) -> torch.Tensor:
    """One cached clip's frames. `weights_only=True`: the unpickler builds tensors and plain containers only, so a
    planted or corrupted cache file cannot run code (it raises `pickle.UnpicklingError` instead)."""
    return torch.load(path, map_location="cpu", weights_only=True)


class FrozenFeatureCache:
    """The frozen encoder's frames of each clip, as the model computes them live: the processor's windows (up to
    `max_audio_windows`) through the model's `encode_audio`, cut to the clip's real frames, one fp16 `.pt` file
    per clip. The collator pads them again and masks the padding, as the model's own frame mask does.

    Entries land whole or not at all (`mint.io.atomic_file`); the key covers the decoded audio the model hears and
    the folder the encoder (`encoder_id`), so a changed file or encoder is recomputed.

    Args:
        root: the cache folder; entries go under `root/LAYOUT/encoder_id`.
        model: a MINT backbone with `encode_audio` (`MintModel`, `MintAudioBridgeModel`).
        processor: the model's [`MintProcessor`]; its windows are the model's.
        encoder_id: names the encoder, its window and its dtype (`mint.training.common.encoder_id`).
    """

    def __init__(self, root: str | Path, model, processor, encoder_id: str):
        self.root = Path(root) / LAYOUT / encoder_id
        self.root.mkdir(parents=True, exist_ok=True)
        self.model, self.processor = model, processor

    def key(self, audio: np.ndarray) -> str:
        return hashlib.sha256(audio.tobytes()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    @torch.no_grad()
    def _encode(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        """`(F_i, D)` fp16 frames of each clip: its real frames, which lead every window's padding (only the last
        window of a clip is partial)."""
        audio = self.processor.prepare_audio(waves, sampling_rate=self.processor.sampling_rate)
        device = next(self.model.parameters()).device
        frames, mask = self.model.encode_audio(torch.from_numpy(audio["input_features"]).to(device),
                                               torch.from_numpy(audio["feature_attention_mask"]).to(device))
        counts = mask.sum(-1).clamp(min=1).tolist()
        return [f[:n].to(torch.float16).cpu().clone() for f, n in zip(frames, counts)]

    def _waves(self, sources: list) -> list[np.ndarray]:
        """Each clip as the model hears it: decoded, resampled, cut to `max_audio_windows` windows."""
        rate, limit = self.processor.sampling_rate, self.processor.window_samples * self.processor.max_audio_windows
        return [load_audio(s, None, rate, name=f"clip {i}")[:limit] for i, s in enumerate(sources)]

    def frames(self, sources: list, batch_size: int = 16, desc: str = "encoding audio") -> list[torch.Tensor]:
        """Encoder frames `(F_i, D)` for every clip (path, bytes, array or dict), computing only what is missing."""
        return [load_frames(entry["path"]) for entry in self.index(sources, batch_size, desc)]

    def index(self, sources: list, batch_size: int = 16, desc: str = "encoding audio") -> list[dict]:
        """`{"path", "frames"}` of every clip's cache file and frame count, computing only what is missing."""
        waves = self._waves(sources)
        keys = [self.key(w) for w in waves]
        counts = {}
        missing = list({k: i for i, k in enumerate(keys) if not self.path(k).is_file()}.values())  # one per key
        for start in tqdm(range(0, len(missing), batch_size), desc=desc, disable=not missing):
            chunk = missing[start : start + batch_size]
            for i, frames in zip(chunk, self._encode([waves[i] for i in chunk])):
                with atomic_file(self.path(keys[i])) as tmp:
                    torch.save(frames, tmp)
                counts[keys[i]] = frames.shape[0]
        for k in keys:
            if k not in counts:  # memory-mapped: only the header is read
                counts[k] = torch.load(self.path(k), map_location="cpu", weights_only=True, mmap=True).shape[0]
        return [{"path": self.path(k), "frames": counts[k]} for k in keys]
