"""The embedding protocols of stable-audio-metrics (SAM), on any embedder: FD, KL, CLAP score.

Each metric here is the preprocessing and aggregation of a published protocol; the embedder
(``t2mbench.metrics.embedders.<name>``) does the network-specific part. A protocol is parameterised by
the embedder's name, so ``fd_openl3`` and a later ``fd_evaluator`` are the same class with
different settings (see :mod:`t2mbench.metrics.registry`).

Preprocessing (:class:`EmbeddingProtocol`), per clip:

- ``fd_openl3`` (SAM ``openl3_fd``, batched path): peak-normalise to −1 dBFS over all channels
  of the file at its *native* rate, resample to 44.1 kHz with soxr HQ, channels L = 0 and R = 1
  (a mono file gives L = R; further channels are ignored, as SAM does), embed [1, 2, T]; the
  embedder returns per-channel frames joined as [L ‖ R]. The gain is applied after the shared
  resample (resampling is linear, so this equals normalising first to float32 rounding).
- ``kl_passt`` (SAM ``passt_kld``): mono (channel mean) at 32 kHz, then peak-normalise the
  resampled signal; logits averaged over 10-s windows inside the embedder.
- ``clap`` (SAM ``clap_score``): mono at 48 kHz, peak-normalise the resampled signal; the CLAP
  embedder then does SAM's int16 round trip (clip, ×32767, truncate, ÷32767) itself; the caption
  is embedded as is.

Policies: digital silence cannot be peak-normalised (SAM produces NaN): it raises
:class:`~t2mbench.core.errors.AudioError` naming the file. Embeddings (and caption embeddings) are
cached by content (:mod:`t2mbench.metrics.cache`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from t2mbench.metrics.base import ClipMeanMetric, Metric, MetricError, MetricResult, ScoringItem
from t2mbench.metrics.bootstrap import CONFIDENCE, FD_RESAMPLES, fd_ci
from t2mbench.metrics.cache import EmbeddingCache, entry_key
from t2mbench.metrics.clap_score import clap_score
from t2mbench.metrics.embedders import Embedder, get_embedder
from t2mbench.metrics.frechet import (
    METHODS,
    GaussianStats,
    Method,
    StatsAccumulator,
    fad_inf,
    frechet_distance_from_stats,
    per_song_fd,
)
from t2mbench.metrics.kl import KINDS, Kind, kl_divergence

from t2mbench.core.errors import AudioError, ConfigError
from t2mbench.core.files import sha256_bytes

if TYPE_CHECKING:
    from t2mbench.metrics.clip_audio import ClipAudio

PeakStage = Literal["native", "resampled"]
PEAK_DB = -1.0


class EmbeddingProtocol:
    """Loads an embedder once, preprocesses clips as SAM does, and caches the embeddings.

    Args:
        embedder: registry name, or an :class:`~t2mbench.metrics.embedders.Embedder` instance (tests).
        sample_rate: rate the embedder is fed at (``None``: the embedder's own rate).
        channels: 2 (L, R; mono duplicated) or 1 (channel mean).
        peak_stage: normalise on the ``"native"``-rate file or on the ``"resampled"`` signal;
            ``peak_db=None`` skips normalisation.
        audio_output / text_output: the embedder methods that give the protocol's vectors
            (``embed`` and ``embed_text``; the evaluator uses others).
        checkpoint, embedder_options: passed to :func:`t2mbench.metrics.embedders.get_embedder`.
    """

    version = "sam-1"

    def __init__(
        self,
        *,
        embedder: str | Embedder,
        sample_rate: int | None = None,
        channels: int = 1,
        peak_stage: PeakStage = "resampled",
        peak_db: float | None = PEAK_DB,
        audio_output: str = "embed",
        text_output: str = "embed_text",
        checkpoint: str | None = None,
        embedder_options: dict[str, Any] | None = None,
    ) -> None:
        if channels not in (1, 2):
            raise ConfigError(f"channels must be 1 or 2, got {channels!r}")
        if peak_stage not in ("native", "resampled"):
            raise ConfigError(f"peak_stage must be 'native' or 'resampled', got {peak_stage!r}")
        self._instance = embedder if isinstance(embedder, Embedder) else None
        self.embedder_name = embedder.name if isinstance(embedder, Embedder) else str(embedder)
        self.sample_rate = sample_rate
        self.channels = channels
        self.peak_stage = peak_stage
        self.peak_db = peak_db
        self.audio_output = audio_output
        self.text_output = text_output
        self.checkpoint = checkpoint
        self.embedder_options = dict(embedder_options or {})
        self.embedder: Embedder | None = self._instance
        self.cache: EmbeddingCache | None = None

    def settings(self) -> dict[str, Any]:
        out = {
            "embedder": self.embedder_name, "sample_rate": self.rate, "channels": self.channels,
            "peak_db": self.peak_db, "peak_stage": self.peak_stage,
            "resampler": "soxr_hq", "audio_output": self.audio_output, "protocol": self.version,
        }
        if self.embedder is not None:
            out["embedder_settings"] = self.embedder.settings()
        return out

    @property
    def rate(self) -> int | None:
        if self.sample_rate is not None:
            return int(self.sample_rate)
        return None if self.embedder is None else int(self.embedder.sample_rate)

    def prepare(self, cache: EmbeddingCache | None) -> None:
        """Load the embedder (raises the weights error when its file is missing)."""
        if self.embedder is None:
            self.embedder = get_embedder(self.embedder_name, self.checkpoint, **self.embedder_options)
        self.cache = cache

    def weights(self) -> dict[str, str]:
        return {} if self.embedder is None else {self.embedder_name: self.embedder.weights_sha256}

    def audio(self, clip: ClipAudio) -> np.ndarray:
        """The protocol's input for ``clip``: float32 ``[channels, T]`` at :attr:`rate`."""
        self._loaded()
        rate = int(self.rate)
        if self.channels == 2:
            x = clip.at(rate)
            x = np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x[:2]
        else:
            x = clip.mono(rate)
        if self.peak_db is not None:
            peak = clip.peak() if self.peak_stage == "native" else float(np.max(np.abs(x)))
            if peak == 0.0:
                raise AudioError(f"{clip.source}: is digital silence; it cannot be peak-normalised")
            x = (x * (10.0 ** (self.peak_db / 20.0) / peak)).astype(np.float32)
        return x

    def embedding(self, clip: ClipAudio) -> np.ndarray:
        """The embedder's output for ``clip`` (numpy, batch axis removed), from the cache when present."""
        embedder = self._loaded()
        key = self._key(audio_sha256=clip.content_sha256())
        cached = self.cache.get(self.embedder_name, key) if self.cache is not None else None
        if cached is not None:
            return cached
        audio = torch.from_numpy(self.audio(clip)[None])
        out = getattr(embedder, self.audio_output)(audio, self.rate)
        array = _numpy(out)[0]
        if self.cache is not None:
            self.cache.put(self.embedder_name, key, array)
        return array

    def text_embedding(self, caption: str) -> np.ndarray:
        """The caption's text embedding ``[D]`` (cached by the caption's sha256)."""
        embedder = self._loaded()
        key = self._key(text_sha256=sha256_bytes(caption.encode("utf-8")))
        cached = self.cache.get(self.embedder_name, key) if self.cache is not None else None
        if cached is not None:
            return cached
        array = _numpy(getattr(embedder, self.text_output)([caption]))[0]
        if self.cache is not None:
            self.cache.put(self.embedder_name, key, array)
        return array

    def _key(self, **content: str) -> str:
        e = self._loaded()
        return entry_key(
            **content, embedder=self.embedder_name, weights_sha256=e.weights_sha256,
            embedder_protocol=e.protocol_version, embedder_settings=e.settings(),
            protocol=self.version, preprocessing={k: v for k, v in self.settings().items() if k != "embedder_settings"},
            text_output=self.text_output if "text_sha256" in content else None,
        )

    def _loaded(self) -> Embedder:
        if self.embedder is None:
            raise ConfigError(f"embedder {self.embedder_name!r} is not loaded: call prepare() first")
        return self.embedder


def _numpy(out: torch.Tensor | np.ndarray) -> np.ndarray:
    array = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    return np.ascontiguousarray(array, dtype=np.float32)


def frames_of(embedding: np.ndarray) -> np.ndarray:
    """Embedding frames ``[F, D]`` of one clip's embedder output: ``[F, D]`` as is, ``[C, F, D]``
    joined along features (SAM's [L ‖ R]), ``[D]`` as one frame."""
    e = np.asarray(embedding)
    if e.ndim == 1:
        return e[None]
    if e.ndim == 2:
        return e
    if e.ndim == 3:
        return np.concatenate(list(e), axis=-1)
    raise MetricError(f"cannot read embedding frames from an output of shape {e.shape}")


class FrechetMetric(Metric):
    """Fréchet distance between the embedding frames of the generated and reference sets.

    Frames of all clips are stacked (longer clips weigh more, as SAM). Statistics stream
    (:class:`~t2mbench.metrics.frechet.StatsAccumulator`); the generated clips' frames are also kept
    (float32, N_frames × D × 4 bytes) when the bootstrap CI, per-song FD or FAD-∞ needs them.
    ``reference_stats`` (an ``.npz`` with ``mu_ref``/``sigma_ref`` as SAM ships, or
    ``mu``/``sigma``) replaces reference audio.

    ``update(frames [F, D], side="generated" | "reference", clip_id=...)`` for arrays.

    Policies: fewer than 2 frames on a side is an error; fewer frames than dimensions (a
    rank-deficient covariance) is scored exactly (``method="cholesky"``) with a warning.
    """

    higher_is_better = False
    protocol_version = "sam-fd-1"

    def __init__(
        self,
        *,
        method: Method = "cholesky",
        ci_resamples: int = FD_RESAMPLES,
        confidence: float = CONFIDENCE,
        seed: int = 0,
        per_song: bool = False,
        fad_inf: bool = False,
        fad_inf_min_n: int = 500,
        fad_inf_steps: int = 25,
        reference_stats: str | None = None,
        **protocol: Any,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown FD method {method!r}; use one of {', '.join(METHODS)}")
        self.protocol = EmbeddingProtocol(**protocol)
        self.method, self.ci_resamples, self.confidence, self.seed = method, int(ci_resamples), confidence, int(seed)
        self.per_song, self.fad_inf = per_song, fad_inf
        self.fad_inf_min_n, self.fad_inf_steps = fad_inf_min_n, fad_inf_steps
        self.reference_stats = reference_stats
        self.needs_reference = reference_stats is None
        self._fixed_reference = _load_stats(reference_stats) if reference_stats else None
        self.reset()

    def reset(self) -> None:
        self.generated, self.reference = StatsAccumulator(), StatsAccumulator()
        self.clip_ids: set[str] = set()
        self.clip_frames: dict[str, np.ndarray] = {}

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "method": self.method, "ci_resamples": self.ci_resamples,
                "confidence": self.confidence, "seed": self.seed, "per_song": self.per_song, "fad_inf": self.fad_inf,
                "fad_inf_min_n": self.fad_inf_min_n, "fad_inf_steps": self.fad_inf_steps,
                "reference_stats": self.reference_stats, "statistics": "float64 mean, unbiased covariance over frames"}

    def prepare(self, cache: EmbeddingCache | None = None) -> None:
        self.protocol.prepare(cache)

    def weights(self) -> dict[str, str]:
        return self.protocol.weights()

    def update(self, frames: np.ndarray, *, side: str = "generated", clip_id: str | None = None) -> None:
        """Add one clip's frames ``[F, D]`` to the ``generated`` or ``reference`` statistics."""
        x = np.asarray(frames, dtype=np.float32)
        if side == "generated":
            cid = clip_id if clip_id is not None else str(len(self.clip_ids))
            if cid in self.clip_ids:
                raise MetricError(f"{self.name}: clip id {cid!r} was added twice")
            self.generated.update(x)
            self.clip_ids.add(cid)
            if self.ci_resamples or self.per_song or self.fad_inf:
                self.clip_frames[cid] = x
        elif side == "reference":
            if self._fixed_reference is not None:
                raise MetricError(f"{self.name}: reference statistics come from {self.reference_stats}")
            self.reference.update(x)
        else:
            raise ValueError(f"side must be 'generated' or 'reference', got {side!r}")

    def feed(self, item: ScoringItem) -> None:
        if item.generated is not None:
            self.update(frames_of(self.protocol.embedding(item.generated)), side="generated", clip_id=item.clip_id)
        if item.reference is not None and self._fixed_reference is None:
            self.update(frames_of(self.protocol.embedding(item.reference)), side="reference")

    def compute(self) -> MetricResult:
        gen = self._stats(self.generated, "generated")
        ref = self._fixed_reference if self._fixed_reference is not None else self._stats(self.reference, "reference")
        if gen.dim != ref.dim:
            raise MetricError(f"{self.name}: generated frames are {gen.dim}-d, reference {ref.dim}-d")
        result = MetricResult(self.name, frechet_distance_from_stats(gen, ref, method=self.method),
                              n_clips=len(self.clip_ids))
        for side, s in (("generated", gen), ("reference", ref)):
            if 0 < s.n <= s.dim:  # n = 0: statistics loaded from a file, count unknown
                result.warnings.append(
                    f"{side} set has {s.n} frames for {s.dim} dimensions: its covariance is rank-deficient; FD is "
                    "computed exactly for these statistics but is biased upward at this size (see fad_inf)"
                )
        if self.ci_resamples:
            result.ci_low, result.ci_high = fd_ci(list(self.clip_frames.values()), ref, resamples=self.ci_resamples,
                                                  confidence=self.confidence, seed=self.seed)
        if self.per_song:
            short = [cid for cid, f in self.clip_frames.items() if len(f) < 2]
            if short:
                listing = ", ".join(short[:10])
                raise MetricError(f"{self.name}: per-song FD needs >= 2 frames per clip; too short: {listing}")
            result.per_clip = per_song_fd(self.clip_frames, ref)
        if self.fad_inf:
            inf = fad_inf(np.concatenate(list(self.clip_frames.values())), ref, min_n=self.fad_inf_min_n,
                          steps=self.fad_inf_steps, seed=self.seed, method=self.method)
            result.extra.update({"fad_inf": inf.score, "fad_inf_slope": inf.slope, "fad_inf_r2": inf.r2})
        result.extra.update({"generated_frames": float(gen.n), "reference_frames": float(ref.n)})
        return result

    def _stats(self, acc: StatsAccumulator, side: str) -> GaussianStats:
        if acc.n < 2:
            raise MetricError(
                f"{self.name}: the {side} set gave {acc.n} embedding frames; a covariance needs at least 2"
            )
        return acc.stats()


def _load_stats(path: str) -> GaussianStats:
    try:
        with np.load(path) as data:
            keys = ("mu_ref", "sigma_ref") if "mu_ref" in data else ("mu", "sigma")
            mu, sigma = (np.asarray(data[k], dtype=np.float64) for k in keys)
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(f"{path}: not a statistics file with mu_ref/sigma_ref or mu/sigma ({e})") from None
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ConfigError(f"{path}: mu must be [D] and sigma [D, D], got {mu.shape} and {sigma.shape}")
    return GaussianStats(mu, sigma, n=0)


class KLMetric(ClipMeanMetric):
    """KL(generated ‖ reference) of classifier outputs per id (:func:`t2mbench.metrics.kl.kl_divergence`),
    mean over pairs. ``update(gen_logits [B, C], ref_logits [B, C], ids)`` for arrays."""

    paired = True
    protocol_version = "sam-kld-1"

    def __init__(self, *, kind: Kind = "softmax", ci_resamples: int | None = None, confidence: float = CONFIDENCE,
                 seed: int = 0, **protocol: Any) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown KL kind {kind!r}; use one of {', '.join(KINDS)}")
        self.kind = kind
        self.protocol = EmbeddingProtocol(**protocol)
        super().__init__(**_ci(ci_resamples, confidence, seed))

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "kind": self.kind, "direction": "KL(generated || reference)",
                "reference_eps": 1e-6, "reduction": "mean over pairs", **self.ci_settings()}

    def prepare(self, cache: EmbeddingCache | None = None) -> None:
        self.protocol.prepare(cache)

    def weights(self) -> dict[str, str]:
        return self.protocol.weights()

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


class ClapScoreMetric(ClipMeanMetric):
    """Cosine of each generated clip's audio embedding with its caption's text embedding, mean
    over clips. Needs captions, not reference audio. ``update(audio_emb [B, D], text_emb [B, D], ids)``."""

    higher_is_better = True
    needs_reference = False
    protocol_version = "sam-clap-1"

    def __init__(self, *, ci_resamples: int | None = None, confidence: float = CONFIDENCE, seed: int = 0,
                 **protocol: Any) -> None:
        self.protocol = EmbeddingProtocol(**protocol)
        super().__init__(**_ci(ci_resamples, confidence, seed))

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "text_output": self.protocol.text_output, "caption": "as given",
                "cosine_eps": 1e-8, **self.ci_settings()}

    def prepare(self, cache: EmbeddingCache | None = None) -> None:
        self.protocol.prepare(cache)

    def weights(self) -> dict[str, str]:
        return self.protocol.weights()

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


def _ci(resamples: int | None, confidence: float, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"confidence": confidence, "seed": seed}
    if resamples is not None:
        out["ci_resamples"] = resamples
    return out
