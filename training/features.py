"""Frozen-encoder feature cache: each clip is encoded once and stored on disk, keyed by encoder and audio content."""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from modeling_mint import load_audio


def load_frames(path: str | Path) -> torch.Tensor:
    """One cached clip's frames. `weights_only=True`: the unpickler builds tensors and plain containers only, so a
    planted or corrupted cache file cannot run code (it raises `pickle.UnpicklingError` instead)."""
    return torch.load(path, map_location="cpu", weights_only=True)


class FrozenFeatureCache:
    """Whisper-style encoder outputs cropped to the clip's real length, one fp16 `.pt` file per clip.

    Files are written to a temporary name and renamed into place, so an interrupted run never leaves a partial
    entry; the key covers the encoder id and the decoded audio, so a changed file or encoder is recomputed.
    """

    def __init__(self, root: str | Path, encoder, feature_extractor, encoder_id: str, frames_per_second: int = 50):
        self.root = Path(root) / encoder_id
        self.root.mkdir(parents=True, exist_ok=True)
        self.encoder, self.feature_extractor = encoder, feature_extractor
        self.frames_per_second = frames_per_second

    def key(self, audio: np.ndarray) -> str:
        return hashlib.sha256(audio.tobytes()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    @torch.no_grad()
    def _encode(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        rate = self.feature_extractor.sampling_rate
        inputs = self.feature_extractor(waves, sampling_rate=rate, return_tensors="pt")
        hidden = self.encoder(inputs["input_features"]).last_hidden_state
        lengths = [min(hidden.shape[1], self.n_frames(w)) for w in waves]
        return [h[:n].to(torch.float16).clone() for h, n in zip(hidden, lengths)]

    def n_frames(self, wave: np.ndarray) -> int:
        """Encoder frames kept for a clip: its real length, not the window's padding."""
        return max(1, int(np.ceil(len(wave) / self.feature_extractor.sampling_rate * self.frames_per_second)))

    def _store(self, path: Path, frames: torch.Tensor):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(frames, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def frames(self, sources: list, batch_size: int = 16, desc: str = "encoding audio") -> list[torch.Tensor]:
        """Encoder frames `(F_i, D)` for every clip (path, bytes, array or dict), computing only what is missing."""
        return [load_frames(entry["path"]) for entry in self.index(sources, batch_size, desc)]

    def index(self, sources: list, batch_size: int = 16, desc: str = "encoding audio") -> list[dict]:
        """`{"path", "frames"}` of every clip's cache file and frame count, computing only what is missing."""
        rate = self.feature_extractor.sampling_rate
        window = self.feature_extractor.n_samples
        waves = [load_audio(s, None, rate, name=f"clip {i}")[:window] for i, s in enumerate(sources)]
        keys = [self.key(w) for w in waves]
        missing = [i for i, k in enumerate(keys) if not self.path(k).is_file()]
        for start in tqdm(range(0, len(missing), batch_size), desc=desc, disable=not missing):
            chunk = missing[start : start + batch_size]
            for i, frames in zip(chunk, self._encode([waves[i] for i in chunk])):
                self._store(self.path(keys[i]), frames)
        return [{"path": self.path(k), "frames": self.n_frames(w)} for k, w in zip(keys, waves)]
