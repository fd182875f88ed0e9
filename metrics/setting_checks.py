"""Checks of metric setting values, run by the metric constructors.

A metric is built (:func:`t2mbench.metrics.registry.get_metric`) before the scoring engine reads
any clip, so a bad value stops a run there as one :class:`~t2mbench.core.errors.ConfigError`
(the registry prefixes the metric's name). Each check returns the value, converted where the
conversion is exact (``int``/``float``/``bool``), and its message names the key, the value and
what is allowed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeVar

from t2mbench.core.errors import ConfigError

T = TypeVar("T")


def one_of(key: str, value: T, allowed: Sequence[Any]) -> T:
    """``value`` when it is one of ``allowed``; else ``unknown KEY VALUE; use one of A, B``."""
    if value not in allowed:
        raise ConfigError(f"unknown {key} {value!r}; use one of {', '.join(str(a) for a in allowed)}")
    return value


def integer(key: str, value: Any, *, minimum: int) -> int:
    """``value`` as an int when it is an integer (not a bool) ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def number(key: str, value: Any, *, above: float | None = None, below: float | None = None,
           minimum: float | None = None) -> float:  # fmt: skip
    """``value`` as a float when it is a finite real number strictly inside (``above``, ``below``)
    and not under ``minimum``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (above is None or value > above) and (below is None or value < below)
    ok = ok and (minimum is None or value >= minimum)
    if not ok:
        bounds = [f"{sign} {bound:g}" for sign, bound in ((">=", minimum), (">", above), ("<", below))
                  if bound is not None]  # fmt: skip
        raise ConfigError(f"{key} must be a finite number{' ' if bounds else ''}{' and '.join(bounds)}, got {value!r}")
    return float(value)


def bootstrap(ci_resamples: Any, confidence: Any, seed: Any) -> tuple[int, float, int]:
    """The settings of a bootstrap CI, checked: ``ci_resamples`` ≥ 0 (0: no CI), ``confidence``
    in (0, 1), ``seed`` ≥ 0."""
    return (
        integer("ci_resamples", ci_resamples, minimum=0),
        number("confidence", confidence, above=0.0, below=1.0),
        integer("seed", seed, minimum=0),
    )


def flag(key: str, value: Any) -> bool:
    """``value`` when it is a bool."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value
