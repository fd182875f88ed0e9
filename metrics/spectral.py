"""STFT distance and mel distance: auraloss ``STFTLoss`` / ``MelSTFTLoss`` at their defaults.

These are the "STFT distance" and "MEL distance" of stable-audio-tools' (SAT) autoencoder
evaluation (``eval_loss_config`` keys ``stft`` and ``mel`` with an empty config), computed on
the decoded/generated audio (estimate x) against the original (target y), both ``[B, C, T]``,
channels folded into the batch (stereo is scored as L and R separately):

- |X| = sqrt(max(Re² + Im², 1e-8)) of ``torch.stft`` (n_fft 1024, hop 256, win 1024, periodic
  Hann, centred with reflect padding), in float32 as auraloss;
- mel: |X| multiplied by ``librosa.filters.mel(sr, n_fft=1024, n_mels=128)`` (Slaney scale and
  area norm, 0–sr/2; :func:`t2mbench.core.dsp.filterbanks.mel_filterbank` cast to float32);
- distance = SC + LM with SC = ‖|Y| − |X|‖_F / ‖|Y|‖_F and LM = mean |ln|X| − ln|Y||.

SC scope (``sc_scope``):

- ``"signal"`` (default): SC per (clip, channel), then the mean — the copy vendored in
  stable-audio-tools' ``training/losses/auraloss.py``, which is the code that has these eval
  metrics (SAT ≥ 0.0.17). It does not depend on how clips are batched.
- ``"batch"``: one Frobenius ratio over all the signals passed together — PyPI auraloss 0.4.0
  (pinned by SAT 0.0.12–0.0.16). Per clip here means a batch of one clip (its channels
  together); the value of a batch of B clips is that of one item holding all B·C signals.

Both give the same number for a mono clip. LM is a mean over all elements in both. Per-clip
values are reduced in float64 (auraloss reduces in float32: differences ~1e-6 relative). The
dataset value is the mean over clips (SAT averages per-batch values; with batch size 1 or equal
batches that is the same). UNCERTAIN (spec §5.3): the SA2/SAO papers' own settings, test set and
stereo handling are not stated in their code; these are SAT's defaults at 44.1 kHz.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch

from t2mbench.core.dsp.filterbanks import mel_filterbank
from t2mbench.core.dsp.stft import stft_magnitude
from t2mbench.metrics.base import ClipMeanMetric, ScoringItem
from t2mbench.metrics.pairs import paired_signals
from t2mbench.metrics.setting_checks import flag, integer, one_of

ScScope = Literal["signal", "batch"]
SC_SCOPES: tuple[str, ...] = ("signal", "batch")
MAG_EPS = 1e-8


def stft_distance(
    estimate: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    *,
    sc_scope: ScScope = "signal",
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: int = 1024,
) -> np.ndarray:
    """auraloss ``STFTLoss()(estimate, target)`` per item: float ``[B, C, T]`` (or ``[C, T]``) → float64 ``[B]``."""
    sc, lm = spectral_terms(
        estimate, target, sc_scope=sc_scope, n_fft=n_fft, hop_length=hop_length, win_length=win_length
    )
    return sc + lm


def mel_distance(
    estimate: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    sample_rate: int,
    *,
    n_mels: int = 128,
    sc_scope: ScScope = "signal",
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: int = 1024,
) -> np.ndarray:
    """auraloss ``MelSTFTLoss(sample_rate)(estimate, target)`` per item, float64 ``[B]``."""
    sc, lm = spectral_terms(
        estimate, target, sc_scope=sc_scope, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
        mel=(sample_rate, n_mels),
    )
    return sc + lm


def spectral_terms(
    estimate: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    *,
    sc_scope: ScScope = "signal",
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: int = 1024,
    mel: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(SC, LM)`` per item, float64 ``[B]`` each; ``mel=(sample_rate, n_mels)`` for the mel variant."""
    one_of("sc_scope", sc_scope, SC_SCOPES)
    x, y = _batch(estimate, "estimate"), _batch(target, "target")
    if x.shape != y.shape:
        raise ValueError(f"estimate {x.shape} and target {y.shape} must have the same shape")
    b, c, t = x.shape
    if t <= n_fft // 2:
        raise ValueError(f"signals of {t} samples are too short for a reflect-padded {n_fft}-point STFT")
    x_mag = _magnitude(x.reshape(b * c, t), n_fft, hop_length, win_length)
    y_mag = _magnitude(y.reshape(b * c, t), n_fft, hop_length, win_length)
    if mel is not None:
        bank = _mel_bank(mel[0], n_fft, mel[1])
        x_mag, y_mag = bank @ x_mag, bank @ y_mag
    x64 = x_mag.astype(np.float64).reshape(b, c, -1)
    y64 = y_mag.astype(np.float64).reshape(b, c, -1)
    num = np.sum((y64 - x64) ** 2, axis=-1)  # [B, C]
    den = np.sum(y64**2, axis=-1)
    if sc_scope == "signal":
        sc = (np.sqrt(num) / np.sqrt(den)).mean(axis=1)
    else:
        sc = np.sqrt(num.sum(axis=1)) / np.sqrt(den.sum(axis=1))
    lm = np.abs(np.log(x64) - np.log(y64)).mean(axis=(1, 2))
    return sc, lm


def _batch(a: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    x = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"{what} must be [B, C, T] or [C, T], got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or Inf")
    return x


def _magnitude(x: np.ndarray, n_fft: int, hop_length: int, win_length: int) -> np.ndarray:
    """float32 ``[N, F, frames]`` magnitudes sqrt(max(|X|², 1e-8)) (``dsp.stft.stft_magnitude``)."""
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(x))
        return stft_magnitude(x, n_fft, hop_length, MAG_EPS, win_length).numpy()


@lru_cache(maxsize=8)
def _mel_bank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    return mel_filterbank(sample_rate, n_fft, n_mels).astype(np.float32)


class SpectralDistance(ClipMeanMetric):
    """Per-clip STFT (``mel=False``) or mel (``mel=True``) distance of generated vs reference,
    paired by id, at ``sample_rate`` (soxr HQ); components ``sc`` and ``log_mag``.

    ``update(generated [B, C, T], reference [B, C, T], ids)`` for arrays already aligned.
    """

    paired = True
    protocol_version = "sat-auraloss-1"
    components = ("", "sc", "log_mag")

    def __init__(
        self,
        *,
        mel: bool = False,
        sample_rate: int = 44_100,
        sc_scope: ScScope = "signal",
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        n_mels: int = 128,
        **ci: Any,
    ) -> None:
        self.mel, self.sc_scope = flag("mel", mel), one_of("sc_scope", sc_scope, SC_SCOPES)
        self.sample_rate = integer("sample_rate", sample_rate, minimum=1)
        self.n_fft, self.hop_length, self.win_length, self.n_mels = (
            integer(k, v, minimum=1)
            for k, v in (("n_fft", n_fft), ("hop_length", hop_length), ("win_length", win_length), ("n_mels", n_mels))
        )
        super().__init__(**ci)

    def settings(self) -> dict[str, Any]:
        out = {"sample_rate": self.sample_rate, "sc_scope": self.sc_scope, "n_fft": self.n_fft,
               "hop_length": self.hop_length, "win_length": self.win_length, "window": "hann (periodic)",
               "resampler": "soxr_hq", "channels": "folded into the batch", **self.ci_settings()}
        if self.mel:
            out.update(n_mels=self.n_mels, mel_scale="slaney", mel_norm="slaney")
        return out

    def update(self, generated: np.ndarray, reference: np.ndarray, ids: list[str]) -> None:
        """Score aligned pairs ``[B, C, T]`` (same shapes) with clip ``ids`` [B]."""
        sc, lm = spectral_terms(
            generated, reference, sc_scope=self.sc_scope, n_fft=self.n_fft, hop_length=self.hop_length,
            win_length=self.win_length, mel=(self.sample_rate, self.n_mels) if self.mel else None,
        )
        if len(ids) != len(sc):
            raise ValueError(f"got {len(ids)} ids for {len(sc)} clips")
        for cid, s, m in zip(ids, sc, lm):
            self.add(cid, value=s + m, sc=s, log_mag=m)

    def feed(self, item: ScoringItem) -> None:
        gen, ref = paired_signals(item, self.sample_rate, min_samples=self.n_fft // 2 + 1, warn=self.warn)
        self.update(gen[None], ref[None], [item.clip_id])
