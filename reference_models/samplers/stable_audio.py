"""Stable Audio's own samplers (stable-audio-tools ``inference/sampling.py``) and its two default calls.

The samplers take the model in its native parametrisation and a time grid, not a denoiser and σs:
- ``v_ddim(model, x, ts)``: v objective, ``model(x, t) -> v``, α = cos(πt/2), σ = sin(πt/2).
- ``rf_euler``/``rf_pingpong(model, x, ts)``: rectified flow, ``model(x, t) -> u ≈ ε − x0``, x_t = (1 − t)·x0 + t·ε.
x ``[B, ...]`` starts as N(0, I) noise (at t = 1); ``ts`` is a strictly decreasing grid in [0, 1] ending in 0
(``schedules.v_ddim_times`` / ``schedules.rf_times``); the model receives t as ``[B]``. Generator, noise
sampler and callback behave as in ``k_samplers`` (times t take the place of σ).

``sample_v`` and ``sample_rf`` reproduce ``sample_k`` and ``sample_rf``: the schedules, the initial scaling and
the dispatch, with Stable Audio Open 1.0's model-card call (``dpmpp_3m_sde``, 100 steps, σ 0.3 to 500, ρ = 1)
and SAO-small's (``rf_pingpong``, 8 steps) as defaults. Pass a guided model (``reference_models.guidance``) for CFG.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from t2mbench.core.errors import ConfigError

from .common import Callback, NoiseSampler, batch_of, begin, noise_source
from .denoisers import VDenoiser
from .k_samplers import K_SAMPLERS
from .schedules import get_sigmas, rf_times, v_ddim_times

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


def sample_v(model: Model, noise: torch.Tensor, *, sampler: str = "dpmpp_3m_sde", steps: int = 100,
             sigma_min: float = 0.3, sigma_max: float = 500.0, rho: float = 1.0,
             generator: torch.Generator | None = None, callback: Callback | None = None,
             noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """Sample a v-objective model from N(0, I) ``noise`` ``[B, C, L]`` as stable-audio-tools' ``sample_k`` does.

    σ-space samplers: σs = ``get_sigmas("polyexponential", steps, sigma_min, sigma_max, rho)``, x = noise·σs[0],
    the model wrapped in ``VDenoiser``. ``v_ddim``: t = linspace(min(sigma_max, 1), 0, steps + 1), x = noise.
    Defaults are SAO 1.0's model-card call (use cfg scale 7 in the guided model). Returns x0 ``[B, C, L]``.
    """
    if sampler == "v_ddim":
        return v_ddim(model, noise, v_ddim_times(steps, sigma_max), generator=generator, callback=callback)
    if sampler not in K_SAMPLERS:
        raise ConfigError(f"sample_v takes 'v_ddim' or a sigma-space sampler "
                          f"({', '.join(K_SAMPLERS)}), got {sampler!r}")
    fn = K_SAMPLERS[sampler]
    # on the CPU whatever the device (stable-audio-tools computes them on the device, whose exp/log can differ in the
    # last bit): the samplers read σ as floats, and the same σs on every device keep runs comparable across devices
    sigmas = get_sigmas("polyexponential", steps, sigma_min, sigma_max, rho)
    extra = {"noise_sampler": noise_sampler} if noise_sampler is not None else {}
    return fn(VDenoiser(model), noise * sigmas[0].item(), sigmas, generator=generator, callback=callback, **extra)


def sample_rf(model: Model, noise: torch.Tensor, *, sampler: str = "rf_pingpong", steps: int = 8,
              t_max: float = 1.0, generator: torch.Generator | None = None, callback: Callback | None = None,
              noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """Sample a rectified-flow model from N(0, I) ``noise`` as stable-audio-tools' ``sample_rf`` does.

    ts = ``rf_times(steps, t_max)`` (the logSNR grid); x = noise. Defaults are SAO-small's call (8 ping-pong steps,
    no CFG); the RF pre-trained model's default is ``rf_euler`` with 50 steps. Returns x0 ``[B, C, L]``.
    """
    if sampler not in ("rf_euler", "rf_pingpong"):
        raise ConfigError(f"sample_rf takes 'rf_euler' or 'rf_pingpong', got {sampler!r}")
    ts = rf_times(steps, t_max)
    if sampler == "rf_euler":
        return rf_euler(model, noise, ts, generator=generator, callback=callback)
    return rf_pingpong(model, noise, ts, generator=generator, callback=callback, noise_sampler=noise_sampler)
