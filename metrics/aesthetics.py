"""Audiobox Aesthetics scores as per-clip metrics: ``aesthetics_pq`` (production quality), ``_pc``
(production complexity), ``_ce`` (content enjoyment), ``_cu`` (content usefulness).

Each clip's score is ``AesPredictor``'s (:mod:`t2mbench.metrics.embedders.audiobox`): the file as
decoded, resampled to 16 kHz with torchaudio's default resampler, channel mean, no peak
normalisation; the dataset score is the mean over clips (higher is better; upstream's scale is 1-10).
The four metrics share one embedder and its cache entry, so a clip runs through the network once.
No reference set and no caption are needed.
"""

from __future__ import annotations

from typing import Any

from t2mbench.core.errors import ConfigError
from t2mbench.metrics.base import ClipMeanMetric, ScoringItem
from t2mbench.metrics.bootstrap import CONFIDENCE, MEAN_RESAMPLES
from t2mbench.metrics.embedding_metric import EmbeddingMetric, EmbeddingProtocol

AUDIOBOX = {"embedder": "audiobox_aesthetics", "sample_rate": 16_000, "channels": 1, "peak_db": None,
            "resampler": "sinc_hann"}  # fmt: skip


class AestheticsMetric(EmbeddingMetric, ClipMeanMetric):
    """Mean over generated clips of one Audiobox Aesthetics axis (``axis``: CE, CU, PC or PQ)."""

    higher_is_better = True
    needs_reference = False
    protocol_version = "audiobox-aes-1"

    def __init__(self, *, axis: str, ci_resamples: int = MEAN_RESAMPLES, confidence: float = CONFIDENCE,
                 seed: int = 0, **protocol: Any) -> None:  # fmt: skip
        from t2mbench.metrics.embedders.audiobox import AXES  # the network module, imported only when used

        if axis not in AXES:
            raise ConfigError(f"unknown aesthetics axis {axis!r}; use one of {', '.join(AXES)}")
        self.axis, self.index = axis, AXES.index(axis)
        self.protocol = EmbeddingProtocol(**protocol)
        super().__init__(ci_resamples=ci_resamples, confidence=confidence, seed=seed)

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "axis": self.axis, **self.ci_settings()}

    def feed(self, item: ScoringItem) -> None:
        if item.generated is None:
            return
        scores = self.protocol.embedding(item.generated)  # [4] in AXES order
        self.add(item.clip_id, value=float(scores[self.index]))
