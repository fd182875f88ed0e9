"""Captions from clip metadata, built the way Stable Audio Open built its prompts from FMA
metadata (Evans et al., 2024): the fields in random order, list-valued fields with their
items shuffled, and, with probability 1/2 per clip, written as ``key: value`` pairs joined by
", " ("composer: J.S. Bach, tempo: 96 bpm, instruments: cello, violin, ...") or else as the
values only ("J.S. Bach, 96 bpm, cello, violin, ...").

Mood words derive from mode and tempo (:data:`MODE_MOOD`, :data:`TEMPO_MOOD`); tempo
buckets: slow < 80 bpm, medium 80-120 bpm, fast > 120 bpm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SLOW_BELOW, FAST_ABOVE = 80, 120
MODE_MOOD = {"major": "bright", "minor": "dark"}
TEMPO_MOOD = {"slow": "calm", "medium": "flowing", "fast": "lively"}
KEY_VALUE, VALUES_ONLY = "key_value", "values_only"

Field = str | Sequence[str]


def tempo_bucket(bpm: float) -> str:
    """``"slow"`` below 80 bpm, ``"fast"`` above 120, else ``"medium"``."""
    if bpm < SLOW_BELOW:
        return "slow"
    return "fast" if bpm > FAST_ABOVE else "medium"


def mood_words(mode: str, bpm: float) -> list[str]:
    """Two mood words: one from the mode, one from the tempo bucket."""
    return [MODE_MOOD[mode], TEMPO_MOOD[tempo_bucket(bpm)]]


def caption(fields: Mapping[str, Field], rng: np.random.Generator) -> tuple[str, str]:
    """Build a caption from ``fields`` (name -> text or list of texts); returns
    ``(caption, style)`` with style ``"key_value"`` or ``"values_only"``.

    The random draws, in order: the style, the field order, then each list field's order
    (in the shuffled field order).
    """
    style = KEY_VALUE if rng.random() < 0.5 else VALUES_ONLY
    names = list(fields)
    order = [names[i] for i in rng.permutation(len(names))]
    parts = []
    for name in order:
        value = fields[name]
        if not isinstance(value, str):
            items = list(value)
            value = ", ".join(items[i] for i in rng.permutation(len(items)))
        parts.append(f"{name}: {value}" if style == KEY_VALUE else value)
    return ", ".join(parts), style
