"""``--sampler-option KEY=VALUE`` on the command line: parsed into the sampler's keyword options and
validated against the options the sampler declares (:class:`~t2mbench.reference_models.samplers.SamplerInfo`),
so a typo is a one-line :class:`~t2mbench.core.errors.ConfigError` before any model is loaded.

VALUE is read as a number when it parses as one (``eta=0.5``), as ``true``/``false`` booleans, and as text
otherwise (``variance=fixed_large``); the sampler's option then checks its range or choices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.samplers.registry import Sampler, lookup

FLAG = "--sampler-option"


def parse_value(text: str) -> Any:
    """``"0.5"`` → 0.5, ``"3"`` → 3, ``"true"``/``"false"`` → bool, anything else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def parse_pairs(pairs: Iterable[str] | None) -> dict[str, Any]:
    """``["eta=0.5", "variance=fixed_large"]`` → ``{"eta": 0.5, "variance": "fixed_large"}``; a pair
    without ``=``, an empty key or a key given twice is a ConfigError."""
    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{FLAG} takes KEY=VALUE (e.g. eta=0.5), got {pair!r}")
        if key in options:
            raise ConfigError(f"{FLAG} {key} is given twice")
        options[key] = parse_value(value.strip())
    return options


def check(sampler: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` validated for ``sampler`` (unknown sampler, unknown key, bad value: a one-line
    ConfigError naming the sampler's options), in canonical form."""
    info = lookup(sampler)
    return Sampler(sampler, info, "").check_options(options)


def sampler_options(sampler: str | None, pairs: Iterable[str] | None) -> dict[str, Any]:
    """The parsed ``pairs`` checked against ``sampler`` (when known: a model's default sampler is checked
    at generation time)."""
    options = parse_pairs(pairs)
    return check(sampler, options) if sampler is not None else options


__all__ = ["FLAG", "check", "parse_pairs", "parse_value", "sampler_options"]
