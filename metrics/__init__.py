"""Metrics: Fréchet distance, KL, CLAP score, STFT/mel distance, SI-SDR, melody and pitch accuracy.

Entry points:

- :func:`frechet_distance` (``metrics.frechet``) for embedding arrays [N, D] and [M, D];
- :func:`get_metric` / :func:`available` (``metrics.registry``): streaming metrics by name;
- :func:`score` (``metrics.scoring``): the engine behind ``t2mbench score``;
- :func:`compare_runs` (``metrics.compare``): paired difference of two scored runs, with its CI;
- :func:`get_embedder` (``metrics.embedders``): the embedding networks.

The registry and the engine are imported on first use, so ``import metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from metrics.embedders import get_embedder
from metrics.frechet import frechet_distance

_LAZY = {
    "get_metric": "metrics.registry",
    "available": "metrics.registry",
    "score": "metrics.scoring",
    "compare_runs": "metrics.compare",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'metrics' has no attribute {name!r}")


__all__ = ["available", "compare_runs", "frechet_distance", "get_embedder", "get_metric", "score"]
