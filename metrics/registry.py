"""The metric registry: names, one-line descriptions, and the settings behind each name.

A name is a metric class plus default settings, so a new embedder reuses a protocol with one
line (e.g. ``fd_evaluator`` = :class:`~t2mbench.metrics.frechet.FrechetMetric` with
``embedder="evaluator"``). Settings passed to :func:`get_metric` override the defaults; the
metric is built, and so every setting checked, before the scoring engine reads any clip.

Third-party metrics join through the entry-point group ``t2mbench.metrics`` (each entry loads a
:class:`MetricSpec`), read once, on first use; a plugin cannot reuse a built-in name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from t2mbench.core.errors import ConfigError
from t2mbench.core.plugins import Registry
from t2mbench.metrics.aesthetics import AUDIOBOX, AestheticsMetric
from t2mbench.metrics.base import Metric
from t2mbench.metrics.clap_score import ClapScoreMetric
from t2mbench.metrics.frechet import FrechetMetric
from t2mbench.metrics.kad import KadMetric
from t2mbench.metrics.kl import KLMetric
from t2mbench.metrics.mauve import MadMetric
from t2mbench.metrics.melody import MelodyAccuracy
from t2mbench.metrics.pitch import PitchAccuracy
from t2mbench.metrics.sisdr import SISDR
from t2mbench.metrics.spectral import SpectralDistance

GROUP = "t2mbench.metrics"

FD_OPENL3 = {"embedder": "openl3", "sample_rate": 44_100, "channels": 2, "peak_stage": "native"}
KL_PASST = {"embedder": "passt", "sample_rate": 32_000, "channels": 1, "peak_stage": "resampled"}
CLAP = {"embedder": "clap", "sample_rate": 48_000, "channels": 1, "peak_stage": "resampled"}  # int16 in the embedder
# the corpus evaluator at its own rate (32 kHz), mono, SAM's peak normalisation; its KL and CLAP
# vectors are its attribute logits and joint-space clip embeddings
# fadtk 1.1.0: the file as decoded (int16 / 32768), mono at the model's rate, no peak normalisation
FAD_MERT = {"embedder": "mert", "sample_rate": 24_000, "channels": 1, "peak_db": None}
# mad-metric 0.0.6: librosa.load(sr=24000) (channel mean, soxr HQ), no peak normalisation, max over time
MAD_MERT = {"embedder": "mert_330m", "sample_rate": 24_000, "channels": 1, "peak_db": None, "aggregation": "max"}
FAD_CLAP_MUSIC = {"embedder": "clap_music", "sample_rate": 48_000, "channels": 1, "peak_db": None}
EVALUATOR = {"embedder": "evaluator", "sample_rate": None, "channels": 1, "peak_stage": "resampled"}


@dataclass(frozen=True)
class MetricSpec:
    """A registered name: the metric class (a :class:`~t2mbench.metrics.base.Metric` subclass whose
    constructor takes the settings as keywords and raises ConfigError on a bad value), a one-line
    description and its default settings."""

    factory: type[Metric]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


_BUILT_IN: dict[str, MetricSpec] = {
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
    "fad_mert": MetricSpec(FrechetMetric, "Fréchet distance of MERT-v1-95M layer-12 frames, fadtk MERT-v1-95M",
                           FAD_MERT),
    "fad_clap_music": MetricSpec(FrechetMetric, "Fréchet distance of LAION-CLAP music 10 s/1 s chunks, fadtk "
                                 "clap-laion-music", FAD_CLAP_MUSIC),
    **{f"aesthetics_{axis.lower()}": MetricSpec(AestheticsMetric, f"Audiobox Aesthetics {what} ({axis}), mean over "
                                                "clips", {**AUDIOBOX, "axis": axis})
       for axis, what in [("PQ", "production quality"), ("PC", "production complexity"),
                          ("CE", "content enjoyment"), ("CU", "content usefulness")]},
    "kad_openl3": MetricSpec(KadMetric, "Kernel audio distance (kadtk) of OpenL3 frames, SAM preprocessing", FD_OPENL3),
    "kad_clap": MetricSpec(KadMetric, "Kernel audio distance (kadtk) of LAION-CLAP clip embeddings", CLAP),
    "kad_evaluator": MetricSpec(KadMetric, "Kernel audio distance (kadtk) of the corpus evaluator's windows",
                                EVALUATOR),
    "kad_mert": MetricSpec(KadMetric, "Kernel audio distance (kadtk) of MERT-v1-95M layer-12 frames", FAD_MERT),
    "kad_clap_music": MetricSpec(KadMetric, "Kernel audio distance (kadtk) of LAION-CLAP music chunks", FAD_CLAP_MUSIC),
    "mad": MetricSpec(MadMetric, "MAD (-ln MAUVE, mad-metric 0.0.6) of MERT-v1-330M layer-24 frames, max-pooled "
                      "per clip", MAD_MERT),
    "mad_evaluator": MetricSpec(MadMetric, "MAD (-ln MAUVE, mad-metric) of the corpus evaluator's windows, max-pooled",
                                EVALUATOR),
}


REGISTRY: Registry[MetricSpec] = Registry(GROUP, _BUILT_IN, MetricSpec, "metric")


def metric_specs() -> dict[str, MetricSpec]:
    """Every registered metric by name: the built-in ones, then the plugins' (read once).

    Raises:
        ConfigError: a plugin repeats a built-in name or does not load a :class:`MetricSpec`.
    """
    return REGISTRY.entries()


def available() -> dict[str, str]:
    """Metric names with one-line descriptions."""
    return {name: spec.description for name, spec in metric_specs().items()}


def get_metric(name: str, **settings: Any) -> Metric:
    """A fresh metric ``name`` with ``settings`` over its defaults (``update`` / ``compute``).

    Every setting is checked here: an unknown key, or a value its constructor refuses (a choice
    not offered, a number out of range, an embedder output the embedder does not have).
    Embedding metrics load their embedder on first use or in ``prepare()``; pass
    ``embedder=<Embedder instance>`` to use one already built.

    Raises:
        ConfigError: unknown name or setting (the message lists the valid ones), or a bad value
            (the message names the metric, the key, the value and what is allowed).
    """
    spec = REGISTRY.get(name)
    valid = spec.factory.setting_names()
    unknown = [key for key in settings if key not in valid]
    if unknown:
        raise ConfigError(
            f"metric {name!r}: bad settings (unexpected keyword argument {unknown[0]!r}); valid: {', '.join(valid)}"
        )
    try:
        metric = spec.factory(**{**spec.defaults, **settings})
    except ConfigError as e:
        raise ConfigError(f"metric {name!r}: {e}") from None
    metric.name = name
    return metric
