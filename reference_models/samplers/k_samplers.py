"""σ-space samplers in k-diffusion's convention, one function each.

Shared signature: ``sampler(denoiser, x, sigmas, *, generator=None, callback=None, **knobs) -> Tensor``.
- ``denoiser(x, sigma)``: x ``[B, ...]``, sigma ``[B]`` (dtype and device of x) → the clean-sample estimate D,
  shape of x. Wrap v-, eps- or rectified-flow models with ``t2mbench.reference_models.samplers.denoisers``.
- ``x``: the start, noise scaled by ``sigmas[0]`` (x = x0 + σ·ε convention); any float dtype.
- ``sigmas``: strictly decreasing 1-D tensor ending in 0 (``get_sigmas``); n steps = len(sigmas) − 1.
- ``generator``: the torch.Generator the stochastic samplers draw their N(0, I) noise from, one draw per
  noisy step in step order; ``noise_sampler(sigma, sigma_next)`` replaces it (to replay recorded noise, or
  k-diffusion's Brownian-tree noise: i.i.d. noise is equal in distribution for a fixed schedule).
- ``callback``: see ``common``; the denoiser is wrapped in an ``NFECounter`` (pass your own to read ``.nfe``).

Notation: D_i = D(x_i, σ_i); λ = −ln σ (log-SNR/2 in VE form); h = λ_{i+1} − λ_i = ln(σ_i/σ_{i+1}).
Trajectories equal k-diffusion 0.1.1's ``sample_*`` (without churn) to float rounding: see
tests/reference_models/samplers/test_k_samplers.py. Scalars are Python floats, so the per-step overhead is
a handful of tensor operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from t2mbench.core.errors import ConfigError

from .common import (
    Callback,
    NoiseSampler,
    ancestral_step,
    batch_of,
    begin,
    noise_source,
    to_d,
)

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def euler(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, generator: torch.Generator | None = None,
          callback: Callback | None = None) -> torch.Tensor:
    """Euler steps on the probability-flow ODE (Karras et al. 2022, Algorithm 2 without churn). 1 NFE/step.

    d = (x − D_i)/σ_i;  x ← x + d·(σ_{i+1} − σ_i).
    """
    model, s, guard = begin(denoiser, sigmas, callback)
    for i in range(len(s) - 1):
        denoised = model(x, batch_of(x, s[i]))
        x = x + to_d(x, s[i], denoised) * (s[i + 1] - s[i])
        x = guard(x, i, denoised)
    return guard.finish(x)


@torch.no_grad()
def euler_ancestral(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                    generator: torch.Generator | None = None, callback: Callback | None = None, eta: float = 1.0,
                    s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """Ancestral sampling with Euler steps (k-diffusion; DDPM-like for η = 1). 1 NFE/step.

    (σ_down, σ_up) = ancestral_step(σ_i, σ_{i+1}, η);  x ← x + (x − D_i)/σ_i·(σ_down − σ_i) + s_noise·σ_up·z
    (no noise on the last step to σ = 0).
    """
    model, s, guard = begin(denoiser, sigmas, callback)
    noise = noise_source(x, generator, noise_sampler)
    for i in range(len(s) - 1):
        denoised = model(x, batch_of(x, s[i]))
        sigma_down, sigma_up = ancestral_step(s[i], s[i + 1], eta)
        x = x + to_d(x, s[i], denoised) * (sigma_down - s[i])
        if s[i + 1] > 0:
            x = x + noise(s[i], s[i + 1]) * (s_noise * sigma_up)
        x = guard(x, i, denoised)
    return guard.finish(x)


@torch.no_grad()
def heun(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, generator: torch.Generator | None = None,
         callback: Callback | None = None) -> torch.Tensor:
    """Heun's 2nd-order method (Karras et al. 2022, Algorithm 1). 2 NFE/step, the last step is Euler: 2N − 1 NFE.

    d = (x − D_i)/σ_i;  x' = x + d·Δσ;  d' = (x' − D(x', σ_{i+1}))/σ_{i+1};  x ← x + (d + d')/2·Δσ.
    """
    model, s, guard = begin(denoiser, sigmas, callback)
    for i in range(len(s) - 1):
        denoised = model(x, batch_of(x, s[i]))
        d, dt = to_d(x, s[i], denoised), s[i + 1] - s[i]
        if s[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, s[i + 1], model(x_2, batch_of(x, s[i + 1])))
            x = x + (d + d_2) * (dt / 2)
        x = guard(x, i, denoised)
    return guard.finish(x)


@torch.no_grad()
def dpm_2(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, generator: torch.Generator | None = None,
          callback: Callback | None = None) -> torch.Tensor:
    """DPM-Solver-2 in σ (Lu et al. 2022, midpoint in log σ; k-diffusion's ``sample_dpm_2``). 2N − 1 NFE.

    σ_mid = √(σ_i·σ_{i+1});  x' = x + d·(σ_mid − σ_i);  x ← x + (x' − D(x', σ_mid))/σ_mid·(σ_{i+1} − σ_i).
    The last step to σ = 0 is Euler.
    """
    model, s, guard = begin(denoiser, sigmas, callback)
    for i in range(len(s) - 1):
        denoised = model(x, batch_of(x, s[i]))
        d = to_d(x, s[i], denoised)
        if s[i + 1] == 0:
            x = x + d * (s[i + 1] - s[i])
        else:
            log_s = math.log(s[i])
            sigma_mid = math.exp(log_s + 0.5 * (math.log(s[i + 1]) - log_s))
            x_2 = x + d * (sigma_mid - s[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, batch_of(x, sigma_mid)))
            x = x + d_2 * (s[i + 1] - s[i])
        x = guard(x, i, denoised)
    return guard.finish(x)


@torch.no_grad()
def dpmpp_2m(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, generator: torch.Generator | None = None,
             callback: Callback | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2, data prediction). 1 NFE/step.

    x ← (σ_{i+1}/σ_i)·x − (e^{−h} − 1)·D̃, with D̃ = D_i on the first step, else
    r = h_{i−1}/h, D̃ = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}. The step to σ = 0 gives x = D_i.
    """
    model, s, guard = begin(denoiser, sigmas, callback)
    old_denoised, h_last = None, 0.0
    for i in range(len(s) - 1):
        denoised = model(x, batch_of(x, s[i]))
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            if old_denoised is not None:
                r = h_last / h
                d_tilde = denoised * (1 + 1 / (2 * r)) - old_denoised * (1 / (2 * r))
            else:
                d_tilde = denoised
            x = x * (s[i + 1] / s[i]) - d_tilde * math.expm1(-h)
            h_last = h
        old_denoised = denoised
        x = guard(x, i, denoised)
    return guard.finish(x)


@torch.no_grad()
def dpmpp_2m_sde(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                 generator: torch.Generator | None = None, callback: Callback | None = None, eta: float = 1.0,
                 s_noise: float = 1.0, solver_type: str = "midpoint",
                 noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) SDE (Lu et al. 2022b; k-diffusion's ``sample_dpmpp_2m_sde``). 1 NFE/step.

    x ← (σ_{i+1}/σ_i)·e^{−ηh}·x + (1 − e^{−h−ηh})·D_i
        + c·(1/r)·(D_i − D_{i−1})  [r = h_{i−1}/h; c = ½(1 − e^{−h−ηh}) midpoint, (1 − e^{−h−ηh})/(h+ηh) − 1 heun]
        + s_noise·σ_{i+1}·√(1 − e^{−2ηh})·z.   The step to σ = 0 gives x = D_i.
    """
    if solver_type not in ("midpoint", "heun"):
        raise ConfigError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    model, s, guard = begin(denoiser, sigmas, callback)
    noise = noise_source(x, generator, noise_sampler)
    old_denoised, h_last = None, 0.0
    for i in range(len(s) - 1):
        denoised = model(x, batch_of(x, s[i]))
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            eta_h = eta * h
            phi_1 = -math.expm1(-h - eta_h)
            x = x * (s[i + 1] / s[i] * math.exp(-eta_h)) + denoised * phi_1
            if old_denoised is not None:
                c = 0.5 * phi_1 if solver_type == "midpoint" else phi_1 / (-h - eta_h) + 1
                x = x + (denoised - old_denoised) * (c * h / h_last)
            if eta:
                x = x + noise(s[i], s[i + 1]) * (s[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise)
            h_last = h
        old_denoised = denoised
        x = guard(x, i, denoised)
    return guard.finish(x)


@torch.no_grad()
def dpmpp_3m_sde(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                 generator: torch.Generator | None = None, callback: Callback | None = None, eta: float = 1.0,
                 s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """DPM-Solver++(3M) SDE (k-diffusion's ``sample_dpmpp_3m_sde``; Stable Audio 1.0's sampler). 1 NFE/step.

    With h_η = (1 + η)h, φ₂ = (e^{−h_η} − 1)/h_η + 1, φ₃ = φ₂/h_η − ½:
    x ← e^{−h_η}·x + (1 − e^{−h_η})·D_i; then with r0 = h_{i−1}/h, r1 = h_{i−2}/h, d1_0 = (D_i − D_{i−1})/r0,
    d1_1 = (D_{i−1} − D_{i−2})/r1: x += φ₂·(d1_0 + (d1_0 − d1_1)·r0/(r0 + r1)) − φ₃·(d1_0 − d1_1)/(r0 + r1)
    (only x += φ₂·d1_0 with one history point); then x += s_noise·σ_{i+1}·√(1 − e^{−2ηh})·z. Last step: x = D_i.
    """
    model, s, guard = begin(denoiser, sigmas, callback)
    noise = noise_source(x, generator, noise_sampler)
    d_1 = d_2 = None
    h_1 = h_2 = 0.0
    for i in range(len(s) - 1):
        denoised = model(x, batch_of(x, s[i]))
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            h_eta = h * (eta + 1)
            x = x * math.exp(-h_eta) + denoised * -math.expm1(-h_eta)
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if d_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0, d1_1 = (denoised - d_1) / r0, (d_1 - d_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + d1 * phi_2 - d2 * (phi_2 / h_eta - 0.5)
            elif d_1 is not None:
                x = x + (denoised - d_1) * (phi_2 * h / h_1)
            if eta:
                x = x + noise(s[i], s[i + 1]) * (s[i + 1] * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise)
            h_1, h_2 = h, h_1
        d_1, d_2 = denoised, d_1
        x = guard(x, i, denoised)
    return guard.finish(x)

