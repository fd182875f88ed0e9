"""Noise schedules: k-diffusion σ schedules, DDPM beta schedules and ᾱ tables, diffusers timestep
spacings, the bridge from an ᾱ table to σ, and Stable Audio's own time grids.

Conventions:
- σ-space (k-diffusion, EDM): x = x0 + σ·ε. Schedules are decreasing 1-D tensors ending in 0.
- Discrete time (DDPM): x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε for integer t in [0, T); σ_t = √((1−ᾱ_t)/ᾱ_t).
- v objective (Stable Audio 1.0): α = cos(πt/2), σ = sin(πt/2), t ∈ [0, 1]; the k-diffusion σ is tan(πt/2).
- Rectified flow (Stable Audio small): x_t = (1−t)·x0 + t·ε, t ∈ [0, 1].

Schedules are computed as the upstream code computes them (same dtype and operation order), so
that they match k-diffusion, diffusers and stable-audio-tools bit for bit or to float32 rounding.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from t2mbench.core.errors import ConfigError

SIGMA_SCHEDULES = ("karras", "exponential", "polyexponential")
BETA_SCHEDULES = ("linear", "scaled_linear", "cosine")
SPACINGS = ("leading", "trailing", "linspace")


def _check_steps(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"{what}: the number of steps must be an integer >= 1, got {n!r}")


def _append_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_zeros(1)])


def get_sigmas(
    kind: str,
    n: int,
    sigma_min: float,
    sigma_max: float,
    rho: float | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """σ schedule of ``n`` steps from ``sigma_max`` down to ``sigma_min``, then 0: shape ``[n + 1]``.

    kinds (k-diffusion's ``get_sigmas_*``):
    - ``karras`` (Karras et al. 2022, eq. 5; ρ defaults to 7): σ_i = (σmax^(1/ρ) + i/(n−1)·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ.
    - ``exponential``: log-linear, σ_i = exp(linspace(ln σmax, ln σmin, n)_i).
    - ``polyexponential`` (ρ defaults to 1, where it equals ``exponential``):
      σ_i = exp((1 − i/(n−1))^ρ·(ln σmax − ln σmin) + ln σmin).
      Stable Audio 1.0's call is ``get_sigmas("polyexponential", 100, 0.3, 500, 1.0)``.

    Example: ``get_sigmas("karras", 10, 0.002, 80.0)``.
    """
    _check_steps(n, f"get_sigmas({kind!r})")
    if kind not in SIGMA_SCHEDULES:
        raise ConfigError(f"unknown sigma schedule {kind!r}; choose one of {', '.join(SIGMA_SCHEDULES)}")
    if not 0.0 < sigma_min <= sigma_max or (n > 1 and sigma_min == sigma_max):
        raise ConfigError(f"get_sigmas: need 0 < sigma_min < sigma_max, "
                          f"got sigma_min={sigma_min}, sigma_max={sigma_max}")
    if kind == "karras":
        rho = 7.0 if rho is None else rho
        _check_rho(rho)
        ramp = torch.linspace(0, 1, n, dtype=dtype, device=device)
        min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    elif kind == "exponential":
        if rho is not None:
            raise ConfigError("get_sigmas('exponential') takes no rho; use 'polyexponential' for a curved log schedule")
        sigmas = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=dtype, device=device).exp()
    else:
        rho = 1.0 if rho is None else rho
        _check_rho(rho)
        ramp = torch.linspace(1, 0, n, dtype=dtype, device=device) ** rho
        sigmas = torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min))
    return _append_zero(sigmas)


def _check_rho(rho: float) -> None:
    if not rho > 0:
        raise ConfigError(f"get_sigmas: rho must be > 0, got {rho}")


def beta_schedule(kind: str, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM βs, float32 ``[T]``, as diffusers builds them.

    - ``linear``: linspace(β_start, β_end, T) (Ho et al. 2020).
    - ``scaled_linear``: linspace(√β_start, √β_end, T)² (latent diffusion; SD uses 0.00085, 0.012).
    - ``cosine``: Nichol & Dhariwal 2021, ᾱ(s) = cos²((s + 0.008)/1.008·π/2), β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999)
      (diffusers' ``squaredcos_cap_v2``; β_start/β_end are ignored).
    """
    _check_steps(T, "beta_schedule")
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    if kind == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float32) ** 2
    if kind == "cosine":

        def bar(s: float) -> float:
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor([min(1 - bar((i + 1) / T) / bar(i / T), 0.999) for i in range(T)], dtype=torch.float32)
    raise ConfigError(f"unknown beta schedule {kind!r}; choose one of {', '.join(BETA_SCHEDULES)}")


def alpha_bar(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = Π_{s≤t} (1 − β_s), same dtype and shape as ``betas`` ``[T]``."""
    return torch.cumprod(1.0 - betas, dim=0)


def v_alpha_bar(T: int = 1000) -> torch.Tensor:
    """ᾱ table, float64 ``[T]``, that lets DDPM/DDIM sample a continuous-time v-objective model.

    Decision: discrete index i stands for continuous time t = (i + 1)/T, so ᾱ_i = cos²(π(i+1)/(2T)):
    i = T−1 is t = 1 (pure noise, ᾱ ≈ 0) and "one step past i = 0" is t = 0 (ᾱ = 1, which DDPM/DDIM use
    after the last timestep). Wrap the model with ``denoisers.continuous_time(model, T)`` so it sees t.
    With ``timesteps("trailing", n, T)`` (n dividing T) DDIM η=0 then walks t = 1, 1 − 1/n, …, 1/n, 0: exactly
    stable-audio-tools' v-ddim grid. Pass ``prediction="v"`` to ``ddpm``/``ddim``.
    """
    _check_steps(T, "v_alpha_bar")
    t = torch.arange(1, T + 1, dtype=torch.float64) / T
    return torch.cos(t * math.pi / 2) ** 2


def timesteps(spacing: str, n: int, T: int = 1000, *, steps_offset: int = 0) -> torch.Tensor:
    """Decreasing int64 timesteps ``[n]`` in [0, T), as diffusers' DDPMScheduler/DDIMScheduler define them.

    - ``leading`` (diffusers' DDPM/DDIM default): arange(n)·(T//n) + steps_offset, reversed. Never starts at T−1.
    - ``trailing`` (Lin et al. 2023, Table 2): round(arange(T, 0, −T/n)) − 1, starts at T−1. diffusers' float
      arange yields n+1 values (the last −1) for some n (61, 103, … at T = 1000); only the first n are kept.
    - ``linspace``: round(linspace(0, T−1, n)), reversed; includes T−1 and 0.

    DPMSolverMultistepScheduler's spacings equal these with n+1 steps minus the last timestep
    (``timesteps(spacing, n + 1, T)[:-1]``, for ``leading`` and ``linspace``) or equal them (``trailing``).
    Raises ConfigError naming the step when the spacing repeats a timestep (n > T) or leaves [0, T).
    """
    _check_steps(n, f"timesteps({spacing!r})")
    _check_steps(T, "timesteps: T")
    if spacing == "linspace":
        ts = np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
    elif spacing == "leading":
        ts = (np.arange(0, n) * (T // n)).round()[::-1].astype(np.int64) + steps_offset
    elif spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / n))[:n].astype(np.int64) - 1
    else:
        raise ConfigError(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
    out = torch.from_numpy(ts.copy())
    check_timesteps(out, T, hint=f" (spacing {spacing!r} with n={n}, T={T}: use n <= T)")
    return out


def check_timesteps(ts: torch.Tensor, T: int, hint: str = "") -> list[int]:
    """Validates a decreasing integer timestep tensor ``[n]`` for an ᾱ table of length T; returns it as a list."""
    if not isinstance(ts, torch.Tensor) or ts.ndim != 1 or ts.dtype.is_floating_point or ts.dtype == torch.bool:
        raise ConfigError(f"timesteps must be a 1-D integer tensor, got {_describe(ts)}")
    if len(ts) < 1:
        raise ConfigError("timesteps is empty: at least one step is needed")
    vals = ts.tolist()
    for i, (a, b) in enumerate(zip(vals, vals[1:])):
        if b == a:
            raise ConfigError(f"timesteps repeat at step {i + 1}: timesteps[{i}] = timesteps[{i + 1}] = {a}{hint}")
        if b > a:
            raise ConfigError(f"timesteps must decrease, but step {i + 1} goes from {a} up to {b}{hint}")
    if vals[0] > T - 1 or vals[-1] < 0:
        raise ConfigError(f"timesteps must lie in [0, {T - 1}] for an alpha_bar table of length {T}, "
                          f"got {vals[0]} .. {vals[-1]}{hint}")
    return vals


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    return type(x).__name__


def sigma_table(alpha_bar: torch.Tensor) -> torch.Tensor:
    """σ_t = √((1 − ᾱ_t)/ᾱ_t) for every training timestep, same dtype as ``alpha_bar`` ``[T]`` (increasing in t)."""
    return ((1 - alpha_bar) / alpha_bar) ** 0.5


def sigmas_from_alpha_bar(alpha_bar: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """σ schedule for σ-space samplers from an ᾱ table and decreasing (possibly fractional) timesteps ``[n]``.

    σ at fractional t is linearly interpolated in σ (numpy ``interp``, diffusers' EulerDiscrete and
    DPMSolverMultistep convention); a 0 is appended. Returns float32 ``[n + 1]`` on the CPU, as diffusers does
    (the samplers read schedules as Python floats). Pair with ``denoisers.DiscreteDenoiser``, which maps σ back to
    the same t.
    """
    table = sigma_table(alpha_bar.detach().cpu()).numpy()
    sig = np.interp(ts.detach().cpu().numpy(), np.arange(len(table)), table)
    return torch.from_numpy(np.concatenate([sig, [0.0]]).astype(np.float32))


def v_ddim_times(n: int, t_max: float = 1.0) -> torch.Tensor:
    """stable-audio-tools' v-ddim grid: t = linspace(t_max, 0, n + 1), float32 ``[n + 1]`` (t_max is clipped to 1)."""
    _check_steps(n, "v_ddim_times")
    return torch.linspace(min(t_max, 1.0), 0, n + 1)


def rf_times(n: int, t_max: float = 1.0) -> torch.Tensor:
    """stable-audio-tools' rectified-flow grid (``sample_rf``), float32 ``[n + 1]``.

    logSNR = linspace(λ_max, 2, n + 1) with λ_max = −6 when t_max = 1, else ln((1 − t_max)/t_max + 1e−6);
    t = sigmoid(−logSNR), then t[0] = t_max and t[n] = 0. For n = 8: 1, .9933, .9820, .9526, .8808, .7311, .5, .2689, 0.
    """
    _check_steps(n, "rf_times")
    t_max = min(t_max, 1.0)
    logsnr_max = math.log((1 - t_max) / t_max + 1e-6) if t_max < 1 else -6.0
    t = torch.sigmoid(-torch.linspace(logsnr_max, 2, n + 1))
    t[0], t[-1] = t_max, 0.0
    return t
