"""Metrics: Fréchet distance, KL, CLAP score, spectral distances, SI-SDR, melody accuracy.

Entry points: :func:`frechet_distance` for embedding arrays, :func:`get_embedder` for the
embedding networks. Heavy modules (networks, the scoring engine) are imported lazily.
"""

from __future__ import annotations

from metrics.embedders import get_embedder
from metrics.frechet import frechet_distance

__all__ = ["frechet_distance", "get_embedder"]
