"""The one small interface every embedding network implements.

An embedder owns its sample rate: callers may pass audio at any rate and it is resampled
with soxr HQ (the loader the published protocols use) before the network's own front end.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from t2mbench.core.audio import resample


class Embedder(ABC):
    """An embedding network behind ``embed(audio, sample_rate)``.

    Attributes:
        name: registry name (``openl3``, ``passt``, ``clap``, ``evaluator``).
        sample_rate: rate in Hz that :meth:`embed` works at; other rates are resampled.
        protocol_version: changes whenever the numbers it produces would change; part of
            the embedding-cache key.
        weights_sha256: sha256 of the checkpoint file loaded (or of the state dict for
            weights built in memory); part of the cache key and of the provenance record.
    """

    name: str
    sample_rate: int
    protocol_version: str
    weights_sha256: str

    @abstractmethod
    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Embed float audio ``[B, C, T]`` at ``sample_rate`` Hz (see each subclass for the output)."""

    def settings(self) -> dict[str, Any]:
        """The settings that define the embedding (recorded with every result)."""
        return {"name": self.name, "sample_rate": self.sample_rate, "protocol_version": self.protocol_version}

    def to_rate(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Resample ``[B, C, T]`` to :attr:`sample_rate` with soxr HQ (identity when equal)."""
        if sample_rate == self.sample_rate:
            return audio
        flat = audio.reshape(-1, audio.shape[-1]).detach().cpu().numpy().astype(np.float32)
        out = resample(flat, sample_rate, self.sample_rate)
        return torch.from_numpy(out).reshape(*audio.shape[:-1], -1).to(audio.device)


class TextEmbedder(Embedder):
    """An embedder with a text tower in the same space (CLAP, the evaluator)."""

    @abstractmethod
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """Embed captions; returns ``[B, D]`` L2-normalised."""


def state_dict_mismatch(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any]) -> str | None:
    """``None`` when ``state`` has exactly the ``expected`` keys with those shapes; else what
    differs ("N keys missing [...], M unexpected [...], K of the wrong shape: k is (..), expected (..)")."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} is {tuple(state[k].shape) if hasattr(state[k], 'shape') else type(state[k]).__name__}, expected {shape}"
        for k, shape in expected.items()
        if k in state and (not hasattr(state[k], "shape") or tuple(state[k].shape) != tuple(shape))
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} keys missing {missing[:3]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected {unexpected[:3]}")
    if wrong:
        parts.append(f"{len(wrong)} of the wrong shape: " + "; ".join(wrong[:3]))
    return ", ".join(parts) or None


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the keys, dtypes, shapes and bytes of a state dict (weights built in memory)."""
    h = hashlib.sha256()
    for key, t in state.items():
        t = t.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()
