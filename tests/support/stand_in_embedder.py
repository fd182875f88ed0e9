"""A small deterministic embedder standing in for OpenL3 / PaSST / CLAP in protocol tests.

It implements :class:`t2mbench.metrics.embedders.base.TextEmbedder` exactly: audio ``[B, C, T]`` at any
rate is resampled to its own rate with soxr (``to_rate``), cut into 0.25-s frames, and each
frame's log-magnitude spectrum (64 bins) goes through a seeded random projection. Outputs:

- ``"frames"``: ``[B, n_frames, C * dim]`` (channels joined per frame, as OpenL3's [L ‖ R]);
- ``"logits"``: ``[B, dim]``, the per-frame projections of the channel mean averaged over frames;
- ``"vector"``: ``[B, dim]``, that mean L2-normalised; ``embed_text`` hashes words to seeded
  vectors in the same space, L2-normalised.

``calls`` and ``text_calls`` count invocations, so tests can prove that cached runs do no
embedding work.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from t2mbench.metrics.embedders.base import TextEmbedder

FRAME_SECONDS = 0.25
N_BINS = 64


class StandInEmbedder(TextEmbedder):
    """Deterministic stand-in; ``name`` lets it pose as a registered embedder for cache paths."""

    protocol_version = "stand-in-1"

    def __init__(self, output: str = "frames", *, dim: int = 8, sample_rate: int = 16_000, seed: int = 0,
                 name: str = "stand_in") -> None:
        if output not in ("frames", "logits", "vector"):
            raise ValueError(f"unknown stand-in output {output!r}")
        self.output, self.dim, self.sample_rate, self.name = output, dim, sample_rate, name
        rng = np.random.default_rng(seed)
        self.projection = torch.from_numpy(rng.standard_normal((N_BINS, dim)).astype(np.float32))
        self.weights_sha256 = hashlib.sha256(self.projection.numpy().tobytes()).hexdigest()
        self.seed = seed
        self.calls = 0
        self.text_calls = 0

    def settings(self) -> dict:
        return {**super().settings(), "output": self.output, "dim": self.dim, "seed": self.seed}

    def _frame_features(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, C, T]`` at the embedder's rate → ``[B, C, n_frames, dim]``."""
        n = int(FRAME_SECONDS * self.sample_rate)
        t = audio.shape[-1]
        pad = (-t) % n if t >= n else n - t
        x = torch.nn.functional.pad(audio.float(), (0, pad))
        frames = x.unfold(-1, n, n)  # [B, C, F, n]
        spec = torch.fft.rfft(frames, n=2 * N_BINS - 2).abs()
        return torch.log(spec + 1e-3) @ self.projection

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        self.calls += 1
        feats = self._frame_features(self.to_rate(audio, sample_rate))
        if self.output == "frames":
            b, c, f, d = feats.shape
            return feats.permute(0, 2, 1, 3).reshape(b, f, c * d)
        mean = feats.mean(dim=1).mean(dim=1)
        if self.output == "logits":
            return mean
        return mean / mean.norm(dim=-1, keepdim=True)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        self.text_calls += 1
        out = []
        for text in texts:
            v = np.zeros(self.dim, dtype=np.float64)
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
                v += np.random.default_rng(seed).standard_normal(self.dim)
            out.append(v / max(np.linalg.norm(v), 1e-12))
        return torch.from_numpy(np.asarray(out, dtype=np.float32))
