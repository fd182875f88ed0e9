"""Seeded random weights for stable-audio-tools-layout models (and the T5 / BERT encoders
used beside them), shared by ``tools/fixtures/make_sat_models.py`` (numpy 1.26, loads them
into stable-audio-tools) and the tests (numpy 2.x, loads them into ``reference_models``).

Both sides must draw the very same float32 numbers, so values come from PCG64's raw 64-bit
output (fixed by the algorithm, unlike ``Generator`` methods), seeded per tensor from
``(seed, crc32(key))`` so that a key's values do not depend on the other keys. Each tensor
is uniform with a mean and spread chosen from its name so that random networks keep
activations of order one (weight-norm gains near 0.7, linear weights ~ 1/sqrt(fan-in),
LayerNorm gains near 1, small biases).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

import numpy as np

# Buffers computed from the architecture, never randomised.
DERIVED = ("inv_freq",)


def uniform(seed: int, key: str, shape: Iterable[int]) -> np.ndarray:
    """Float32 uniform in [-1, 1) of ``shape``, a pure function of (seed, key)."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape)) if shape else 1
    words = np.random.PCG64([seed, zlib.crc32(key.encode())]).random_raw((n + 1) // 2).view(np.uint32)[:n]
    x = (words >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-23) - np.float32(1.0)
    return x.reshape(shape)


def _fan_in(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]


def center_spread(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(center, half-width) of the uniform distribution of tensor ``key``."""
    last = key.rsplit(".", 1)[-1]
    if last == "weight_g":  # deeper residual stacks explode above ~0.8
        return 0.7, 0.1
    if last in ("alpha", "beta") and "norm" not in key:  # SnakeBeta log-scale parameters
        return 0.0, 0.5
    if last in ("gamma",) or (last == "weight" and ("norm" in key or "layer_norm" in key or "LayerNorm" in key)):
        return 1.0, 0.1
    if last in ("beta", "bias"):
        return 0.0, 0.05
    if last == "weights" or key.endswith("timestep_features.weight"):  # random Fourier frequencies
        return 0.0, 1.7
    if "relative_attention_bias" in key:
        return 0.0, 0.5
    if len(shape) == 2 and any(name in key for name in ("shared.", "word_embeddings", "embed_tokens")):
        return 0.0, 1.0
    return 0.0, float(np.sqrt(3.0 / _fan_in(shape)))


def seeded_state_dict(shapes: Mapping[str, Iterable[int]], seed: int) -> dict[str, np.ndarray]:
    """Seeded float32 arrays for every key of ``shapes`` except the derived buffers."""
    out = {}
    for key, shape in shapes.items():
        if key.endswith(DERIVED):
            continue
        shape = tuple(int(s) for s in shape)
        center, spread = center_spread(key, shape)
        x = uniform(seed, key, shape) * np.float32(spread)
        out[key] = x + np.float32(center) if center else x
    return out
