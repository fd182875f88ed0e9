"""Stable Audio's own samplers (stable-audio-tools ``inference/sampling.py``) and its two default calls.

The samplers take the model in its native parametrisation and a time grid, not a denoiser and σs:
- ``v_ddim(model, x, ts)``: v objective, ``model(x, t) -> v``, α = cos(πt/2), σ = sin(πt/2).
- ``rf_euler``/``rf_pingpong(model, x, ts)``: rectified flow, ``model(x, t) -> u ≈ ε − x0``, x_t = (1 − t)·x0 + t·ε.
x ``[B, ...]`` starts as N(0, I) noise (at t = 1); ``ts`` is a strictly decreasing grid in [0, 1] ending in 0
(``schedules.v_ddim_times`` / ``schedules.rf_times``); the model receives t as ``[B]``. Generator, noise
sampler and callback behave as in ``k_samplers`` (times t take the place of σ).

Stable Audio's two default calls, ``sample_k`` and ``sample_rf``, are ``registry.sample_v`` and ``registry.sample_rf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .common import Callback, NoiseSampler, batch_of, begin, noise_source

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def v_ddim(model: Model, x: torch.Tensor, ts: torch.Tensor, *, generator: torch.Generator | None = None,
           callback: Callback | None = None, eta: float = 0.0) -> torch.Tensor:
    """DDIM on a v-objective model (Song et al. 2021; Salimans & Ho 2022), stable-audio-tools' ``v-ddim``. 1 NFE/step.

    x0 = α_i·x − σ_i·v, ε = σ_i·x + α_i·v; s = η·(σ_{i+1}/σ_i)·√(1 − α_i²/α_{i+1}²);
    x ← α_{i+1}·x0 + √(σ_{i+1}² − s²)·ε + s·z. The step to t = 0 returns x0.
    """
    model, t, guard = begin(model, ts, callback, "ts", "t", t_max=1.0)
    noise = noise_source(x, generator, None)
    for i in range(len(t) - 1):
        a, s = math.cos(t[i] * math.pi / 2), math.sin(t[i] * math.pi / 2)
        v = model(x, batch_of(x, t[i]))
        pred = x * a - v * s
        if t[i + 1] == 0:
            x = pred
        else:
            a_next, s_next = math.cos(t[i + 1] * math.pi / 2), math.sin(t[i + 1] * math.pi / 2)
            ddim_sigma = eta * (s_next / s) * math.sqrt(1 - a**2 / a_next**2)
            x = pred * a_next + (x * s + v * a) * math.sqrt(s_next**2 - ddim_sigma**2)
            if eta:
                x = x + noise(t[i], t[i + 1]) * ddim_sigma
        x = guard(x, i, pred)
    return guard.finish(x)


@torch.no_grad()
def rf_euler(model: Model, x: torch.Tensor, ts: torch.Tensor, *, generator: torch.Generator | None = None,
             callback: Callback | None = None) -> torch.Tensor:
    """Euler steps on the rectified-flow ODE dx/dt = u(x, t) (stable-audio-tools' RF ``euler``). 1 NFE/step.

    x ← x + (t_{i+1} − t_i)·u(x, t_i). (The callback's ``denoised`` is x_i − t_i·u.)
    """
    model, t, guard = begin(model, ts, callback, "ts", "t", t_max=1.0)
    for i in range(len(t) - 1):
        u = model(x, batch_of(x, t[i]))
        denoised = x - u * t[i]
        x = x + u * (t[i + 1] - t[i])
        x = guard(x, i, denoised)
    return guard.finish(x)


@torch.no_grad()
def rf_pingpong(model: Model, x: torch.Tensor, ts: torch.Tensor, *, generator: torch.Generator | None = None,
                callback: Callback | None = None, noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """Ping-pong sampling for distilled RF models (Novack et al. 2025, ARC; SAO-small). 1 NFE/step.

    D = x − t_i·u(x, t_i);  x ← (1 − t_{i+1})·D + t_{i+1}·z with fresh z ~ N(0, I); the last step returns D
    (stable-audio-tools draws a z there too and multiplies it by 0).
    """
    model, t, guard = begin(model, ts, callback, "ts", "t", t_max=1.0)
    noise = noise_source(x, generator, noise_sampler)
    for i in range(len(t) - 1):
        denoised = x - model(x, batch_of(x, t[i])) * t[i]
        x = denoised if t[i + 1] == 0 else denoised * (1 - t[i + 1]) + noise(t[i], t[i + 1]) * t[i + 1]
        x = guard(x, i, denoised)
    return guard.finish(x)
