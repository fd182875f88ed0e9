"""CLAP score: cosine similarity of each clip's audio embedding with its caption's text embedding.

As stable-audio-metrics ``clap_score``: ``torch.nn.functional.cosine_similarity(a, t, eps=1e-8)``
per clip, i.e. a·t / (max(‖a‖, 1e-8)·max(‖t‖, 1e-8)), and the dataset score is the arithmetic
mean over every clip (LAION-CLAP embeddings are already unit-norm, so this is a·t).

:class:`ClapScoreMetric` is the streaming metric (``clap``, ``clap_evaluator``) on an embedder's audio
and text towers, with SAM's preprocessing (:mod:`t2mbench.metrics.embedding_metric`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2mbench.metrics.base import ClipMeanMetric, MetricError, ScoringItem
from t2mbench.metrics.bootstrap import CONFIDENCE, MEAN_RESAMPLES
from t2mbench.metrics.embedding_metric import EmbeddingMetric, EmbeddingProtocol

COSINE_EPS = 1e-8


def clap_score(audio_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Per-clip cosine similarity of ``audio_emb`` and ``text_emb`` ``[B, D]`` (rows paired), float64 ``[B]``.

    >>> clap_score(np.array([[3.0, 4.0]]), np.array([[1.0, 0.0]])).tolist()
    [0.6]
    """
    a = np.asarray(audio_emb, dtype=np.float64)
    t = np.asarray(text_emb, dtype=np.float64)
    if a.ndim != 2 or a.shape != t.shape:
        raise ValueError(f"audio and text embeddings must both be [B, D]; got {a.shape} and {t.shape}")
    if not (np.isfinite(a).all() and np.isfinite(t).all()):
        raise ValueError("embeddings contain NaN or Inf")
    na = np.maximum(np.linalg.norm(a, axis=-1), COSINE_EPS)
    nt = np.maximum(np.linalg.norm(t, axis=-1), COSINE_EPS)
    return np.sum((a / na[:, None]) * (t / nt[:, None]), axis=-1)


class ClapScoreMetric(EmbeddingMetric, ClipMeanMetric):
    """Cosine of each generated clip's audio embedding with its caption's text embedding, mean
    over clips. Needs captions, not reference audio. ``update(audio_emb [B, D], text_emb [B, D], ids)``."""

    higher_is_better = True
    needs_reference = False
    protocol_version = "sam-clap-1"

    def __init__(self, *, ci_resamples: int = MEAN_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0,
                 **protocol: Any) -> None:
        self.protocol = EmbeddingProtocol(**protocol)
        self.protocol.require_text()
        super().__init__(ci_resamples=ci_resamples, confidence=confidence, seed=seed)

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "text_output": self.protocol.text_output, "caption": "as given",
                "cosine_eps": 1e-8, **self.ci_settings()}

    def update(self, audio_emb: np.ndarray, text_emb: np.ndarray, ids: list[str]) -> None:
        values = clap_score(audio_emb, text_emb)
        if len(ids) != len(values):
            raise ValueError(f"got {len(ids)} ids for {len(values)} clips")
        for cid, v in zip(ids, values):
            self.add(cid, value=v)

    def feed(self, item: ScoringItem) -> None:
        if item.generated is None:
            return
        if not item.caption:
            raise MetricError(f"{self.name}: clip {item.clip_id!r} has no caption (the manifest's 'caption' field)")
        audio = self.protocol.embedding(item.generated).reshape(1, -1)
        text = self.protocol.text_embedding(item.caption).reshape(1, -1)
        self.update(audio, text, [item.clip_id])
