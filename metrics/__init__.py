"""Metrics: Fréchet distance, KAD, MAD, KL, CLAP score, STFT/mel distance, SI-SDR, melody and pitch accuracy.

Layout: the scoring engine and the registry at the top (``scoring``, ``registry``, ``base``,
``cache``, ``compare``, ``bootstrap``, ``clip_audio``, ``pairs``, ``setting_checks``); each metric
class beside its function (``frechet``, ``kad``, ``mauve``, ``kl``, ``clap_score``, ``spectral``, ``sisdr``, ``melody``,
``pitch``; the embedding ones share ``embedding_metric``); the networks in ``embedders/``; signal
helpers in ``dsp/``; parity with the upstream packages in ``upstream/``.

Entry points:

- :func:`frechet_distance` (``t2mbench.metrics.frechet``) for embedding arrays [N, D] and [M, D];
  :func:`kernel_audio_distance` (``kad``, reference first) and :func:`music_audio_distance` (``mauve``,
  one vector per clip) likewise; named metric lists (``t2mbench score --preset``) in ``presets``;
- :func:`get_metric` / :func:`available` (``t2mbench.metrics.registry``): streaming metrics by name;
- :func:`score` (``t2mbench.metrics.scoring``): the engine behind ``t2mbench score``;
- :func:`compare_runs` (``t2mbench.metrics.compare``): paired difference of two scored runs, with its CI;
- :func:`get_embedder` (``t2mbench.metrics.embedders``): the embedding networks.

For plugin authors (entry-point groups ``t2mbench.metrics`` and ``t2mbench.embedders``):
:class:`MetricSpec` (what a metric entry point loads), the bases :class:`Metric`,
:class:`ClipMeanMetric` and :class:`EmbeddingMetric` with :class:`ScoringItem` and
:class:`MetricResult`; :class:`EmbedderSpec` (what an embedder entry point loads), the bases
:class:`Embedder` and :class:`TextEmbedder`, and :class:`WeightFile` / :func:`register_all` for the
module's ``WEIGHTS`` declaration.

The registry and the engine are imported on first use, so ``import metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from t2mbench.core.weights import WeightFile, register_all
from t2mbench.metrics.base import ClipMeanMetric, Metric, MetricResult, ScoringItem
from t2mbench.metrics.embedders import Embedder, EmbedderSpec, TextEmbedder, get_embedder
from t2mbench.metrics.embedding_metric import EmbeddingMetric
from t2mbench.metrics.frechet import frechet_distance
from t2mbench.metrics.kad import kernel_audio_distance
from t2mbench.metrics.mauve import music_audio_distance

_LAZY = {
    "MetricSpec": "t2mbench.metrics.registry",
    "get_metric": "t2mbench.metrics.registry",
    "available": "t2mbench.metrics.registry",
    "score": "t2mbench.metrics.scoring",
    "compare_runs": "t2mbench.metrics.compare",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'metrics' has no attribute {name!r}")


__all__ = [
    "ClipMeanMetric",
    "Embedder",
    "EmbedderSpec",
    "EmbeddingMetric",
    "Metric",
    "MetricResult",
    "MetricSpec",
    "ScoringItem",
    "TextEmbedder",
    "WeightFile",
    "available",
    "compare_runs",
    "frechet_distance",
    "get_embedder",
    "get_metric",
    "kernel_audio_distance",
    "music_audio_distance",
    "register_all",
    "score",
]
