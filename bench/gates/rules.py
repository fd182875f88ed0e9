"""Gate rules: per metric a direction, a practical margin and an α; the family-wise α.

File format, JSON (``.json``) or TOML (``.toml``), the same keys::

    alpha = 0.05                  # family-wise (optional; default: the largest metric α)

    [metrics.fd_evaluator]
    direction = "lower"           # "lower" or "higher" is better
    margin = "5%"                 # a regression must exceed 5 % of the baseline value ...
    alpha = 0.05

    [metrics.sisdr]
    margin = 0.5                  # ... or 0.5 in the metric's unit (absolute)

    [metrics.seconds_per_clip]
    skip = true                   # not gated

Defaults for a metric the file does not name: its registry direction
(:attr:`~t2mbench.metrics.base.Metric.higher_is_better` of the metric, or of ``stft`` for the
component ``stft.sc``), generation metrics (``seconds_per_clip`` …) lower-is-better, margin 0,
α 0.05. A metric named in the file is gated even when the defaults would leave it out (a scalar
extra such as ``fd_openl3.fad_inf``, a generation metric).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from t2mbench.core.errors import ConfigError
from t2mbench.core.results import GENERATION_METRICS

DEFAULT_ALPHA = 0.05
_RULE_KEYS = {"direction", "margin", "alpha", "skip"}
_DIRECTIONS = {"lower": False, "lower_is_better": False, "higher": True, "higher_is_better": True}


@dataclass(frozen=True)
class Rule:
    """How one metric is gated. ``margin``: absolute, or relative to the baseline value when
    ``relative`` (0.05 = 5 %); ``higher_is_better`` None: the registry's direction."""

    higher_is_better: bool | None = None
    margin: float = 0.0
    relative: bool = False
    alpha: float = DEFAULT_ALPHA
    skip: bool = False
    named: bool = False  # given in a rules file

    def margin_for(self, baseline: float) -> float:
        """The margin in the metric's unit for a baseline value."""
        return self.margin * abs(baseline) if self.relative else self.margin

    def margin_text(self) -> str:
        return f"{self.margin * 100:g}%" if self.relative else f"{self.margin:g}"


@dataclass(frozen=True)
class Rules:
    """Rules per metric name, plus the family-wise α (None: the largest α of the tested metrics)."""

    metrics: dict[str, Rule] = field(default_factory=dict)
    alpha: float | None = None
    source: str = "defaults"

    def rule(self, metric: str) -> Rule:
        return self.metrics.get(metric, Rule())


def load_rules(path: str | os.PathLike | None) -> Rules:
    """Rules from a ``.json`` or ``.toml`` file (None: the defaults); a bad file is a ConfigError."""
    if path is None:
        return Rules()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such rules file")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(p.read_text())
        elif p.suffix == ".json":
            data = json.loads(p.read_text())
        else:
            raise ConfigError(f"{p}: a rules file is .json or .toml")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: unreadable rules file ({e})") from None
    return parse_rules(data, str(p))


def parse_rules(data: Any, source: str = "rules") -> Rules:
    """Rules from parsed JSON/TOML data (see the module docstring for the keys)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: rules must be a table with 'metrics' (and optionally 'alpha')")
    unknown = sorted(set(data) - {"alpha", "metrics"})
    if unknown:
        raise ConfigError(f"{source}: unknown keys {', '.join(unknown)}; a rules file has alpha, metrics")
    alpha = None if data.get("alpha") is None else _alpha(data["alpha"], f"{source}: alpha")
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ConfigError(f"{source}: 'metrics' must map metric names to rules")
    return Rules({name: _rule(name, spec, source) for name, spec in metrics.items()}, alpha, source)


def _rule(name: str, spec: Any, source: str) -> Rule:
    where = f"{source}: metric {name!r}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: a rule is a table of {', '.join(sorted(_RULE_KEYS))}")
    unknown = sorted(set(spec) - _RULE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}; a rule has {', '.join(sorted(_RULE_KEYS))}")
    direction = spec.get("direction")
    if direction is not None and direction not in _DIRECTIONS:
        raise ConfigError(f"{where}: direction must be 'lower' or 'higher', got {direction!r}")
    margin, relative = _margin(spec.get("margin", 0.0), where)
    skip = spec.get("skip", False)
    if not isinstance(skip, bool):
        raise ConfigError(f"{where}: skip must be true or false, got {skip!r}")
    return Rule(None if direction is None else _DIRECTIONS[direction], margin, relative,
                _alpha(spec.get("alpha", DEFAULT_ALPHA), f"{where}: alpha"), skip, named=True)


def _margin(value: Any, where: str) -> tuple[float, bool]:
    relative = isinstance(value, str) and value.strip().endswith("%")
    try:
        number = float(value.strip()[:-1]) / 100.0 if relative else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ConfigError(f"{where}: margin must be a number >= 0 or a percentage like '5%', got {value!r}")
    return number, relative


def _alpha(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ConfigError(f"{where} must be a number in (0, 1), got {value!r}")
    return float(value)


def default_direction(metric: str) -> bool | None:
    """``higher_is_better`` of a metric from the registry (components and extras: their base
    metric's); generation metrics are lower-is-better; None for a name nobody registered."""
    if metric in GENERATION_METRICS:
        return False
    from t2mbench.metrics.registry import metric_specs

    spec = metric_specs().get(metric.split(".")[0])
    return None if spec is None else bool(spec.factory.higher_is_better)
