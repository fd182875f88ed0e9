"""Metrics: Fréchet distance, KL, CLAP score, STFT/mel distance, SI-SDR, melody and pitch accuracy.

Entry points:

- :func:`frechet_distance` (``t2mbench.metrics.frechet``) for embedding arrays [N, D] and [M, D];
- :func:`get_metric` / :func:`available` (``t2mbench.metrics.registry``): streaming metrics by name;
- :func:`score` (``t2mbench.metrics.scoring``): the engine behind ``t2mbench score``;
- :func:`compare_runs` (``t2mbench.metrics.compare``): paired difference of two scored runs, with its CI;
- :func:`get_embedder` (``t2mbench.metrics.embedders``): the embedding networks.

The registry and the engine are imported on first use, so ``import metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from t2mbench.metrics.embedders import get_embedder
from t2mbench.metrics.frechet import frechet_distance

_LAZY = {
    "get_metric": "t2mbench.metrics.registry",
    "available": "t2mbench.metrics.registry",
    "score": "t2mbench.metrics.scoring",
    "compare_runs": "t2mbench.metrics.compare",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'metrics' has no attribute {name!r}")


__all__ = ["available", "compare_runs", "frechet_distance", "get_embedder", "get_metric", "score"]
