"""Scale-invariant signal-to-distortion ratio, as auraloss ``SISDRLoss`` (negated: higher is better).

stable-audio-tools' autoencoder evaluation reports ``-SISDRLoss()(decoded, original)`` with the
defaults ``zero_mean=True, eps=1e-8``; per (clip, channel) over time, estimate x̂, target x:

    x̂ ← x̂ − mean(x̂),  x ← x − mean(x)          (zero_mean)
    α = ⟨x̂, x⟩ / (‖x‖² + ε),  s = α x,  e = x̂ − s
    SI-SDR = 10 · log10(‖s‖² / (‖e‖² + ε) + ε)   dB

then the mean over channels (per clip) and over clips. Computed in float64 (auraloss works in
the input's float32: differences ~1e-5 dB). SI-SDR is very sensitive to any sample offset, so
the generated clip must be time-aligned with its reference (lengths are trimmed to the shorter).
A silent reference gives α = 0 and 10·log10(ε) = −80 dB; a silent estimate gives the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2mbench.metrics.base import ClipMeanMetric, ScoringItem
from t2mbench.metrics.pairs import paired_signals
from t2mbench.metrics.setting_checks import flag, integer, number

EPS = 1e-8


def si_sdr(estimate: np.ndarray, target: np.ndarray, *, zero_mean: bool = True, eps: float = EPS) -> np.ndarray:
    """SI-SDR in dB per item: float ``[B, C, T]`` (or ``[C, T]``) → float64 ``[B]`` (mean over channels).

    >>> t = np.sin(np.arange(1000) / 10.0)[None]
    >>> round(float(si_sdr(t + 0.1 * np.cos(np.arange(1000) / 3.0)[None], t)[0]), 2)
    20.01
    """
    x_hat = np.asarray(estimate, dtype=np.float64)
    x = np.asarray(target, dtype=np.float64)
    if x_hat.ndim == 2:
        x_hat, x = x_hat[None], x[None]
    if x_hat.ndim != 3 or x_hat.shape != x.shape:
        raise ValueError(f"estimate {x_hat.shape} and target {x.shape} must both be [B, C, T]")
    if not (np.isfinite(x_hat).all() and np.isfinite(x).all()):
        raise ValueError("SI-SDR inputs contain NaN or Inf")
    if zero_mean:
        x_hat = x_hat - x_hat.mean(axis=-1, keepdims=True)
        x = x - x.mean(axis=-1, keepdims=True)
    alpha = np.sum(x_hat * x, axis=-1) / (np.sum(x * x, axis=-1) + eps)
    s = alpha[..., None] * x
    e = x_hat - s
    per_channel = 10.0 * np.log10(np.sum(s * s, axis=-1) / (np.sum(e * e, axis=-1) + eps) + eps)
    return per_channel.mean(axis=-1)


class SISDR(ClipMeanMetric):
    """Per-clip SI-SDR (dB) of generated vs reference, paired by id, at ``sample_rate`` (soxr HQ).

    ``update(generated [B, C, T], reference [B, C, T], ids)`` for arrays already aligned.
    """

    paired = True
    higher_is_better = True
    protocol_version = "sat-auraloss-1"

    def __init__(self, *, sample_rate: int = 44_100, zero_mean: bool = True, eps: float = EPS, **ci: Any) -> None:
        self.sample_rate = integer("sample_rate", sample_rate, minimum=1)
        self.zero_mean, self.eps = flag("zero_mean", zero_mean), number("eps", eps, above=0.0)
        super().__init__(**ci)

    def settings(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "zero_mean": self.zero_mean, "eps": self.eps, "resampler": "soxr_hq",
                "channels": "per channel, then mean", **self.ci_settings()}

    def update(self, generated: np.ndarray, reference: np.ndarray, ids: list[str]) -> None:
        """Score aligned pairs ``[B, C, T]`` with clip ``ids`` [B]."""
        values = si_sdr(generated, reference, zero_mean=self.zero_mean, eps=self.eps)
        if len(ids) != len(values):
            raise ValueError(f"got {len(ids)} ids for {len(values)} clips")
        for cid, v in zip(ids, values):
            self.add(cid, value=v)

    def feed(self, item: ScoringItem) -> None:
        gen, ref = paired_signals(item, self.sample_rate, warn=self.warn)
        self.update(gen[None], ref[None], [item.clip_id])
