"""KL divergence between classifier outputs of generated and reference clips paired by id.

The convention is stable-audio-metrics' ``passt_kld`` (SAM), which the published
Stable Audio / Stable Audio Open / MuseControlLite KL_passt numbers use:

    KL_i = Σ_c p_c · (ln p_c − ln(q_c + 1e-6)),   p = softmax(generated logits),
                                                  q = softmax(reference logits)

i.e. KL(generated ‖ reference), with ε = 1e-6 added to the **reference** only (PyTorch
``kl_div(log(q + 1e-6), p, reduction="sum")``), and terms with p_c = 0 counted as 0. The
dataset value is the arithmetic mean of KL_i over pairs. When a clip is longer than the
classifier's window, the logits are averaged over windows *before* the softmax (the
embedder does that).

``kind="sigmoid"`` applies the same sum, direction and ε to element-wise sigmoids
(audioldm_eval's "KL_Sigmoid" idea: not normalised distributions, no (1 − p) term). Note that
audioldm_eval and audiocraft use the opposite direction, KL(reference ‖ generated) with ε on
the generated side; their numbers are not comparable with these.

:class:`KLMetric` is the streaming metric (``kl_passt``, ``kl_evaluator``) on an embedder's logits,
with SAM's preprocessing (:mod:`t2mbench.metrics.embedding_metric`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.special import expit, log_softmax, xlogy

from t2mbench.metrics.base import ClipMeanMetric, ScoringItem
from t2mbench.metrics.bootstrap import CONFIDENCE, MEAN_RESAMPLES
from t2mbench.metrics.embedding_metric import EmbeddingMetric, EmbeddingProtocol
from t2mbench.metrics.setting_checks import one_of

Kind = Literal["softmax", "sigmoid"]
KINDS: tuple[str, ...] = ("softmax", "sigmoid")
REFERENCE_EPS = 1e-6


def kl_divergence(gen_logits: np.ndarray, ref_logits: np.ndarray, *, kind: Kind = "softmax") -> np.ndarray:
    """Per-pair KL(generated ‖ reference) from logits ``[B, C]`` (rows paired), float64 ``[B]``.

    >>> round(float(kl_divergence(np.array([[2.0, 0.0]]), np.array([[0.0, 0.0]]))[0]), 6)
    0.327811
    """
    gen = _logits(gen_logits, "generated logits")
    ref = _logits(ref_logits, "reference logits")
    if gen.shape != ref.shape:
        raise ValueError(f"generated logits {gen.shape} and reference logits {ref.shape} must have the same shape")
    if kind == "softmax":
        return kl_from_probabilities(np.exp(log_softmax(gen, axis=-1)), np.exp(log_softmax(ref, axis=-1)))
    if kind == "sigmoid":
        return kl_from_probabilities(expit(gen), expit(ref))
    raise ValueError(f"unknown KL kind {kind!r}; use one of {', '.join(KINDS)}")


def kl_from_probabilities(p_gen: np.ndarray, p_ref: np.ndarray) -> np.ndarray:
    """Σ_c p·(ln p − ln(q + 1e-6)) per row, for probabilities ``p_gen``, ``p_ref`` ``[B, C]``
    (e.g. SAM's stored reference probabilities)."""
    p = np.asarray(p_gen, dtype=np.float64)
    q = np.asarray(p_ref, dtype=np.float64)
    return np.sum(xlogy(p, p) - p * np.log(q + REFERENCE_EPS), axis=-1)


def _logits(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must have shape [B, classes], got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or Inf")
    return x


class KLMetric(EmbeddingMetric, ClipMeanMetric):
    """KL(generated ‖ reference) of classifier outputs per id (:func:`kl_divergence`),
    mean over pairs. ``update(gen_logits [B, C], ref_logits [B, C], ids)`` for arrays."""

    paired = True
    protocol_version = "sam-kld-1"

    def __init__(self, *, kind: Kind = "softmax", ci_resamples: int = MEAN_RESAMPLES, confidence: float = CONFIDENCE,
                 seed: int = 0, **protocol: Any) -> None:
        self.kind = one_of("kind", kind, KINDS)
        self.protocol = EmbeddingProtocol(**protocol)
        super().__init__(ci_resamples=ci_resamples, confidence=confidence, seed=seed)

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "kind": self.kind, "direction": "KL(generated || reference)",
                "reference_eps": 1e-6, "reduction": "mean over pairs", **self.ci_settings()}

    def update(self, gen_logits: np.ndarray, ref_logits: np.ndarray, ids: list[str]) -> None:
        values = kl_divergence(gen_logits, ref_logits, kind=self.kind)
        if len(ids) != len(values):
            raise ValueError(f"got {len(ids)} ids for {len(values)} pairs")
        for cid, v in zip(ids, values):
            self.add(cid, value=v)

    def feed(self, item: ScoringItem) -> None:
        gen = self.protocol.embedding(item.generated).reshape(1, -1)
        ref = self.protocol.embedding(item.reference).reshape(1, -1)
        self.update(gen, ref, [item.clip_id])
