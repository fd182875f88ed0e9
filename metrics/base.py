"""The streaming metric interface: ``update(...)`` accumulates, ``compute()`` finishes.

Every metric keeps explicit running state (sums and counts, or streaming statistics) and
never a mean of batch means. Two families:

- :class:`ClipMeanMetric`: one score per clip (per pair for paired metrics); the aggregate is
  the arithmetic mean over clips, ``total / count``, with a seeded bootstrap CI from the
  per-clip scores. A metric may report several named components per clip (e.g. pitch
  accuracy's raw pitch, raw chroma and overall accuracy); the first is the main one.
- set-level metrics (Fréchet distance) that stream statistics and report one value.

The scoring engine (:mod:`t2mbench.metrics.scoring`) drives metrics through :meth:`Metric.prepare`
(load weights: fails before any clip is read) and :meth:`Metric.feed` (one
:class:`ScoringItem` per clip id, sharing decoded audio); users can call each metric's own
``update`` with arrays instead.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from t2mbench.core.errors import T2MBenchError
from t2mbench.metrics.bootstrap import CONFIDENCE, MEAN_RESAMPLES, mean_ci
from t2mbench.metrics.setting_checks import bootstrap

if TYPE_CHECKING:
    from t2mbench.metrics.cache import EmbeddingCache
    from t2mbench.metrics.clip_audio import ClipAudio


class MetricError(T2MBenchError, ValueError):
    """Input a metric cannot score: too few frames or clips, mismatched shapes, duplicate ids."""


@dataclass
class ScoringItem:
    """What the engine hands every metric for one clip id.

    ``generated`` / ``reference`` are ``None`` when the id is only in the other set (only
    set-level metrics see such items); ``truth`` is the ground-truth ``.npz`` of the prompt.
    """

    clip_id: str
    generated: ClipAudio | None
    reference: ClipAudio | None
    caption: str | None = None
    truth: Path | None = None


@dataclass
class MetricResult:
    """A metric's aggregate and, where it has them, per-clip scores.

    ``components`` are further named results of the same metric (``name.component`` in the
    results table); ``extra`` holds scalar by-products (e.g. FAD-∞'s slope and R²).
    """

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    per_clip: dict[str, float] = field(default_factory=dict)
    n_clips: int = 0
    components: list[MetricResult] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Metric(ABC):
    """Base of every metric. Subclasses set the class attributes and implement
    :meth:`feed`, :meth:`compute` and :meth:`reset`, plus a typed ``update``.

    Attributes:
        name: registry name (set by :func:`t2mbench.metrics.registry.get_metric`).
        protocol_version: changes whenever the numbers would change.
        higher_is_better: the metric's direction.
        paired: needs the generated and reference clip of every id.
        needs_reference: reads the reference set at all.
    """

    name: str = ""
    protocol_version: str = "1"
    higher_is_better: bool = False
    paired: bool = False
    needs_reference: bool = True

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The settings the constructor takes (what :func:`~t2mbench.metrics.registry.get_metric`
        accepts): its keyword arguments and those of the base-class constructors it passes
        ``**kwargs`` on to."""
        names: list[str] = []
        for klass in cls.__mro__[:-1]:  # object's constructor takes no settings
            init = vars(klass).get("__init__")
            if init is None:
                continue
            names += keyword_parameters(init)
            if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
                break
        return tuple(dict.fromkeys(names))

    def settings(self) -> dict[str, Any]:
        """The settings that define the numbers (recorded with every result)."""
        return {}

    def prepare(self, cache: EmbeddingCache | None = None) -> None:  # noqa: B027 - optional hook
        """Load what the metric needs (weights) before any clip is read; raise if it cannot."""

    def weights(self) -> dict[str, str]:
        """Name → sha256 of every weight file the metric's numbers depend on."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays the engine saves beside the scores after :meth:`compute` (``scores/arrays/<name>.npz``),
        e.g. the per-clip embedding frames that a later paired comparison of a set-level metric
        needs (:mod:`t2mbench.bench.gates`); none by default."""
        return {}

    @abstractmethod
    def feed(self, item: ScoringItem) -> None:
        """Accumulate one clip id from the engine."""

    @abstractmethod
    def compute(self) -> MetricResult:
        """The result over everything accumulated so far."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated."""

    def state(self) -> dict[str, Any]:
        """What :meth:`feed` accumulated, as plain picklable data (no model), for another instance's
        :meth:`merge_state`: a worker scores a shard of the clips and hands this back (sharded scoring,
        :func:`t2mbench.metrics.scoring.score` with ``shards``)."""
        raise MetricError(f"{self.name or type(self).__name__} keeps no mergeable state; it cannot be scored in shards")

    def merge_state(self, state: dict[str, Any]) -> None:
        """Fold in the :meth:`state` of an instance with the same settings that was fed other clip ids.
        Merging the shards of a run in clip order gives what feeding all clips here would give."""
        raise MetricError(f"{self.name or type(self).__name__} keeps no mergeable state; it cannot be scored in shards")


def keyword_parameters(function: Callable[..., Any]) -> list[str]:
    """Names of the parameters of ``function`` that can be passed by keyword (``self`` excluded)."""
    params = inspect.signature(function).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]


class ClipMeanMetric(Metric):
    """A metric whose aggregate is the mean over clips of per-clip scores, with a bootstrap CI.

    Args:
        ci_resamples: bootstrap resamples for the CI (0 disables it).
        confidence: CI level.
        seed: bootstrap seed.
    """

    components: tuple[str, ...] = ("",)

    def __init__(self, *, ci_resamples: int = MEAN_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0) -> None:
        self.ci_resamples, self.confidence, self.seed = bootstrap(ci_resamples, confidence, seed)
        self.reset()

    def reset(self) -> None:
        self.ids: list[str] = []
        self._id_set: set[str] = set()
        self.values: dict[str, list[float]] = {c: [] for c in self.components}
        self.total: dict[str, float] = {c: 0.0 for c in self.components}
        self.count = 0
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        """Note something the user should see beside the result (reported once, in the summary)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def ci_settings(self) -> dict[str, Any]:
        return {"ci_resamples": self.ci_resamples, "confidence": self.confidence, "seed": self.seed}

    def add(self, clip_id: str, **scores: float) -> None:
        """Record one clip's scores (one keyword per component; the main one is ``value``)."""
        if clip_id in self._id_set:
            raise MetricError(f"{self.name or type(self).__name__}: clip id {clip_id!r} was scored twice")
        named = {("" if k == "value" else k): float(v) for k, v in scores.items()}
        if set(named) != set(self.components):
            raise ValueError(f"expected scores {self.components}, got {tuple(named)}")
        bad = [k or "value" for k, v in named.items() if not math.isfinite(v)]
        if bad:
            who = self.name or type(self).__name__
            raise MetricError(f"{who}: clip {clip_id!r} gave a non-finite {', '.join(bad)}")
        self.ids.append(clip_id)
        self._id_set.add(clip_id)
        for k, v in named.items():
            self.values[k].append(v)
            self.total[k] += v
        self.count += 1

    def state(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "values": {c: list(v) for c, v in self.values.items()},
                "warnings": list(self.warnings)}

    def merge_state(self, state: dict[str, Any]) -> None:
        """Add the shard's clips in its order (so the totals are summed as one process sums them)."""
        for i, clip_id in enumerate(state["ids"]):
            self.add(clip_id, **{(c or "value"): state["values"][c][i] for c in self.components})
        for message in state["warnings"]:
            self.warn(message)

    def compute(self) -> MetricResult:
        if self.count == 0:
            raise MetricError(f"{self.name or type(self).__name__}: no clips were scored")
        results = [self._result(c) for c in self.components]
        main = results[0]
        main.components = results[1:]
        main.warnings = list(self.warnings)
        return main

    def _result(self, component: str) -> MetricResult:
        name = self.name if not component else f"{self.name}.{component}"
        values = np.asarray(self.values[component])
        low = high = None
        if self.ci_resamples:
            low, high = mean_ci(values, resamples=self.ci_resamples, confidence=self.confidence, seed=self.seed)
        return MetricResult(
            name=name,
            value=self.total[component] / self.count,
            ci_low=low,
            ci_high=high,
            per_clip=dict(zip(self.ids, values.tolist())),
            n_clips=self.count,
        )
