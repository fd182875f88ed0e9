"""What the embedding metrics (FD, KL, CLAP score) share: stable-audio-metrics' (SAM) clip preprocessing
and the embedder behind it (:class:`EmbeddingProtocol`), and their base class (:class:`EmbeddingMetric`).

Each embedding metric is the preprocessing here plus the aggregation of a published protocol
(:class:`~t2mbench.metrics.frechet.FrechetMetric`, :class:`~t2mbench.metrics.kl.KLMetric`,
:class:`~t2mbench.metrics.clap_score.ClapScoreMetric`); the embedder
(``t2mbench.metrics.embedders.<name>``) does the network-specific part. A protocol is parameterised by
the embedder's name, so ``fd_openl3`` and ``fd_evaluator`` are the same class with
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

Sharing between the metrics of one run (e.g. ``fd_openl3`` and ``kad_openl3``): after
:func:`share_embedders`, protocols that name the same embedder, checkpoint and options load it once
and share the instance; an embedding computed for a clip is kept for that clip's
:class:`~t2mbench.metrics.clip_audio.ClipAudio` object (until it goes), under its cache key, so
the embedder runs once per clip and protocol whether or not the on-disk cache is on.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from t2mbench.core.errors import AudioError, ConfigError
from t2mbench.core.files import sha256_bytes
from t2mbench.metrics.base import Metric, keyword_parameters
from t2mbench.metrics.cache import EmbeddingCache, entry_key
from t2mbench.metrics.clip_audio import RESAMPLERS, Resampler
from t2mbench.metrics.embedders import Embedder, embedder_spec
from t2mbench.metrics.setting_checks import integer, number, one_of

if TYPE_CHECKING:
    from t2mbench.metrics.clip_audio import ClipAudio

PeakStage = Literal["native", "resampled"]
PEAK_STAGES: tuple[str, ...] = ("native", "resampled")
PEAK_DB = -1.0
# per-clip embeddings, by clip object then cache key
_CLIP_EMBEDDINGS: weakref.WeakKeyDictionary[Any, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


class EmbeddingProtocol:
    """Loads an embedder once, preprocesses clips as SAM does, and caches the embeddings.

    Args:
        embedder: registry name, or an :class:`~t2mbench.metrics.embedders.Embedder` instance (tests).
        sample_rate: rate in Hz the embedder is fed at (``None``: the embedder's own rate).
        channels: 2 (L, R; mono duplicated) or 1 (channel mean).
        peak_stage: normalise on the ``"native"``-rate file or on the ``"resampled"`` signal;
            ``peak_db=None`` skips normalisation.
        audio_output / text_output: the embedder methods that give the protocol's vectors
            (``embed`` and ``embed_text``; the evaluator uses others): one of the registry entry's
            ``audio_outputs`` (checked here) / ``text_outputs`` (checked by :meth:`require_text`).
        resampler: ``"soxr_hq"`` (librosa's loader, the SAM protocols) or ``"sinc_hann"`` (torchaudio's
            default, e.g. audiobox-aesthetics).
        checkpoint, embedder_options: passed to the embedder's factory
            (:meth:`~t2mbench.metrics.embedders.EmbedderSpec.load`).
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
        resampler: Resampler = "soxr_hq",
        checkpoint: str | None = None,
        embedder_options: dict[str, Any] | None = None,
    ) -> None:
        if channels not in (1, 2):
            raise ConfigError(f"channels must be 1 or 2, got {channels!r}")
        one_of("peak_stage", peak_stage, PEAK_STAGES)
        one_of("resampler", resampler, RESAMPLERS)
        if sample_rate is not None:
            integer("sample_rate", sample_rate, minimum=1)
        if peak_db is not None:
            number("peak_db", peak_db)
        if not isinstance(embedder, (str, Embedder)):
            raise ConfigError(f"embedder must be a registered name or an Embedder, got {embedder!r}")
        self._spec = None if isinstance(embedder, Embedder) else embedder_spec(embedder)
        if self._spec is not None:
            one_of("audio_output", audio_output, self._spec.audio_outputs)
        elif not callable(getattr(embedder, audio_output, None)):
            raise ConfigError(f"unknown audio_output {audio_output!r}: embedder {embedder.name!r} has no such method")
        self._instance = embedder if isinstance(embedder, Embedder) else None
        self.embedder_name = embedder.name if isinstance(embedder, Embedder) else str(embedder)
        self.sample_rate = sample_rate
        self.channels = channels
        self.peak_stage = peak_stage
        self.peak_db = peak_db
        self.audio_output = audio_output
        self.text_output = text_output
        self.resampler = resampler
        self.checkpoint = checkpoint
        self.embedder_options = dict(embedder_options or {})
        self.embedder: Embedder | None = self._instance
        self.cache: EmbeddingCache | None = None
        self.shared_with: EmbeddingProtocol = self  # set by share_embedders

    def settings(self) -> dict[str, Any]:
        out = {
            "embedder": self.embedder_name, "sample_rate": self.rate, "channels": self.channels,
            "peak_db": self.peak_db, "peak_stage": self.peak_stage,
            "resampler": self.resampler, "audio_output": self.audio_output, "protocol": self.version,
        }
        if self.embedder is not None:
            out["embedder_settings"] = self.embedder.settings()
        return out

    @property
    def rate(self) -> int | None:
        if self.sample_rate is not None:
            return int(self.sample_rate)
        return None if self.embedder is None else int(self.embedder.sample_rate)

    def require_text(self) -> None:
        """Check that the embedder has the text tower ``text_output`` (metrics that embed captions
        call this when they are built, before any clip is read)."""
        if self._spec is None:
            if not callable(getattr(self._instance, self.text_output, None)):
                raise ConfigError(
                    f"unknown text_output {self.text_output!r}: embedder {self.embedder_name!r} has no such method"
                )
        elif not self._spec.text_outputs:
            raise ConfigError(f"embedder {self.embedder_name!r} has no text tower; a caption metric needs one")
        else:
            one_of("text_output", self.text_output, self._spec.text_outputs)

    def prepare(self, cache: EmbeddingCache | None) -> None:
        """Load the embedder (raises the weights error when its file is missing)."""
        if self.embedder is None:
            owner = self.shared_with
            if owner is not self and owner.embedder is None:
                owner.prepare(owner.cache)
            self.embedder = owner.embedder if owner is not self else self._spec.load(
                self.checkpoint, **self.embedder_options)
        self.cache = cache

    def load_key(self) -> tuple[str, str | None, str]:
        """What makes two protocols' embedders the same instance: name, checkpoint and options."""
        return self.embedder_name, self.checkpoint, json.dumps(self.embedder_options, sort_keys=True, default=str)

    def weights(self) -> dict[str, str]:
        return {} if self.embedder is None else {self.embedder_name: self.embedder.weights_sha256}

    def audio(self, clip: ClipAudio) -> np.ndarray:
        """The protocol's input for ``clip``: float32 ``[channels, T]`` at :attr:`rate`."""
        self._loaded()
        rate = int(self.rate)
        if self.channels == 2:
            x = clip.at(rate, self.resampler)
            x = np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x[:2]
        else:
            x = clip.mono(rate, self.resampler)
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
        memo = _CLIP_EMBEDDINGS.setdefault(clip, {})
        if key in memo:
            return memo[key]
        cached = self.cache.get(self.embedder_name, key) if self.cache is not None else None
        if cached is not None:
            memo[key] = cached
            return cached
        audio = torch.from_numpy(self.audio(clip)[None])
        out = getattr(embedder, self.audio_output)(audio, self.rate)
        array = memo[key] = _numpy(out)[0]
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


class EmbeddingMetric(Metric):
    """Base of the metrics computed from an embedder's outputs: ``self.protocol`` (an
    :class:`EmbeddingProtocol`, built by the subclass from its ``**protocol`` settings) loads the
    embedder in :meth:`prepare` and names its weights."""

    protocol: EmbeddingProtocol

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The metric's own settings, then the :class:`EmbeddingProtocol` ones it passes on."""
        return tuple(dict.fromkeys([*super().setting_names(), *keyword_parameters(EmbeddingProtocol.__init__)]))

    def prepare(self, cache: EmbeddingCache | None = None) -> None:
        self.protocol.prepare(cache)

    def weights(self) -> dict[str, str]:
        return self.protocol.weights()


def share_embedders(metrics: Iterable[Metric]) -> None:
    """Make the registered embedders of ``metrics`` load once per (name, checkpoint, options): each
    protocol after the first with the same :meth:`EmbeddingProtocol.load_key` takes the first's
    instance in ``prepare()``. Metrics given an Embedder instance keep it."""
    first: dict[tuple[str, str | None, str], EmbeddingProtocol] = {}
    for m in metrics:
        protocol = getattr(m, "protocol", None)
        if isinstance(protocol, EmbeddingProtocol) and protocol._spec is not None:
            protocol.shared_with = first.setdefault(protocol.load_key(), protocol)


def load_unverified(metrics: Iterable[Metric]) -> None:
    """Let the registered embedders of ``metrics`` load weight files whose sha256 is not the published
    one (``verify=False`` to their factories: a fine-tune, a conversion, seeded test weights); keys and
    shapes are still checked, and the run's ``summary.json`` marks such weights ``"unpublished"``."""
    for m in metrics:
        protocol = getattr(m, "protocol", None)
        if isinstance(protocol, EmbeddingProtocol) and protocol._spec is not None:
            protocol.embedder_options["verify"] = False
