"""The metric registry: names, one-line descriptions, and the settings behind each name.

A name is a metric class plus default settings, so a new embedder reuses a protocol with one
line (e.g. ``fd_evaluator`` = :class:`~t2mbench.metrics.frechet.FrechetMetric` with
``embedder="evaluator"``). Settings passed to :func:`get_metric` override the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from t2mbench.metrics.base import Metric
from t2mbench.metrics.clap_score import ClapScoreMetric
from t2mbench.metrics.frechet import FrechetMetric
from t2mbench.metrics.kl import KLMetric
from t2mbench.metrics.melody import MelodyAccuracy
from t2mbench.metrics.pitch import PitchAccuracy
from t2mbench.metrics.sisdr import SISDR
from t2mbench.metrics.spectral import SpectralDistance

from t2mbench.core.errors import ConfigError

FD_OPENL3 = {"embedder": "openl3", "sample_rate": 44_100, "channels": 2, "peak_stage": "native"}
KL_PASST = {"embedder": "passt", "sample_rate": 32_000, "channels": 1, "peak_stage": "resampled"}
CLAP = {"embedder": "clap", "sample_rate": 48_000, "channels": 1, "peak_stage": "resampled"}  # int16 in the embedder
# the corpus evaluator at its own rate (32 kHz), mono, SAM's peak normalisation; its KL and CLAP
# vectors are its attribute logits and joint-space clip embeddings
EVALUATOR = {"embedder": "evaluator", "sample_rate": None, "channels": 1, "peak_stage": "resampled"}


@dataclass(frozen=True)
class MetricSpec:
    """A registered name: the class, its default settings and a one-line description."""

    factory: Callable[..., Metric]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


_METRICS: dict[str, MetricSpec] = {
    "fd_openl3": MetricSpec(FrechetMetric, "Fréchet distance of OpenL3 frames, SAM FD_openl3 (stereo)", FD_OPENL3),
    "kl_passt": MetricSpec(KLMetric, "KL(generated||reference) of PaSST AudioSet probabilities, SAM", KL_PASST),
    "clap": MetricSpec(ClapScoreMetric, "LAION-CLAP audio-caption cosine, SAM CLAP score", CLAP),
    "stft": MetricSpec(SpectralDistance, "STFT distance (auraloss STFTLoss defaults, SAT eval)", {"mel": False}),
    "mel": MetricSpec(SpectralDistance, "mel distance (auraloss MelSTFTLoss defaults, SAT eval)", {"mel": True}),
    "sisdr": MetricSpec(SISDR, "SI-SDR in dB (auraloss SISDRLoss, negated; SAT eval)"),
    "melody_acc": MetricSpec(MelodyAccuracy, "MuseControlLite chroma melody accuracy vs the reference audio"),
    "pitch_acc": MetricSpec(PitchAccuracy, "mir_eval raw pitch/chroma and overall accuracy vs the truth melody"),
    "fd_evaluator": MetricSpec(FrechetMetric, "Fréchet distance of the corpus evaluator's windows", EVALUATOR),
    "kl_evaluator": MetricSpec(KLMetric, "KL of the corpus evaluator's attribute logits",
                               {**EVALUATOR, "audio_output": "attribute_logits"}),
    "clap_evaluator": MetricSpec(ClapScoreMetric, "corpus evaluator audio-caption cosine",
                                 {**EVALUATOR, "audio_output": "clip_embedding"}),
}


def available() -> dict[str, str]:
    """Metric names with one-line descriptions."""
    return {name: spec.description for name, spec in _METRICS.items()}


def get_metric(name: str, **settings: Any) -> Metric:
    """A fresh metric ``name`` with ``settings`` over its defaults (``update`` / ``compute``).

    Embedding metrics load their embedder on first use or in ``prepare()``; pass
    ``embedder=<Embedder instance>`` to use one already built.

    Raises:
        ConfigError: unknown name or setting (the message lists the valid ones).
    """
    if name not in _METRICS:
        raise ConfigError(f"unknown metric {name!r}; available: {', '.join(_METRICS)}")
    spec = _METRICS[name]
    try:
        metric = spec.factory(**{**spec.defaults, **settings})
    except TypeError as e:
        raise ConfigError(f"metric {name!r}: bad settings ({e}); given: {', '.join(sorted(settings))}") from None
    metric.name = name
    return metric
