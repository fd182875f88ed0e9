"""Discrete-time samplers in DDPM's convention: DDPM ancestral sampling and DDIM.

Shared arguments:
- ``model(x, t) -> Tensor``: x ``[B, ...]``, t ``[B]`` int64 timesteps; returns the predicted noise ε
  (``prediction="epsilon"``) or v = √ᾱ·ε − √(1−ᾱ)·x0 (``prediction="v"``), shape of x. A continuous-time
  v model is used through ``denoisers.continuous_time`` with the ``schedules.v_alpha_bar`` table.
- ``x``: the start, pure noise N(0, I) (diffusers' ``init_noise_sigma`` is 1 for both).
- ``alpha_bar``: the training schedule's ᾱ, ``[T]`` (``schedules.alpha_bar(beta_schedule(...))``).
- ``timesteps``: strictly decreasing integer tensor in [0, T) (``schedules.timesteps``). After the last one the
  sampler steps to ᾱ = 1 (diffusers' ``set_alpha_to_one``); callbacks and errors call that level −1.

Both match diffusers 0.42's DDPMScheduler / DDIMScheduler with ``clip_sample=False`` (diffusers' default
clamps x0 to [−1, 1], wrong for latents; there is no clipping here). One difference: diffusers' DDIM steps
from t to t − T//n whatever the spacing, while here it steps to the next element of ``timesteps`` (as
diffusers' DDPM does). They agree for ``leading`` spacing and for ``trailing`` when n divides T; for
``linspace`` diffusers' DDIM jumps to timesteps that are not on its own grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from t2mbench.core.errors import ConfigError

from .common import Callback, NFECounter, StepGuard, counted, gaussian
from .schedules import check_timesteps

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PREDICTIONS = ("epsilon", "v")
VARIANCES = ("fixed_small", "fixed_large")


def _clean_and_noise(out: torch.Tensor, x: torch.Tensor, a_t: float, prediction: str) -> tuple[torch.Tensor, ...]:
    """(x0, ε) from the model output.

    ε-prediction: x0 = (x − √(1−ᾱ)ε)/√ᾱ; v-prediction: x0 = √ᾱx − √(1−ᾱ)v, ε = √ᾱv + √(1−ᾱ)x.
    """
    if prediction == "epsilon":
        return (x - out * math.sqrt(1 - a_t)) / math.sqrt(a_t), out
    return x * math.sqrt(a_t) - out * math.sqrt(1 - a_t), out * math.sqrt(a_t) + x * math.sqrt(1 - a_t)


def _prepare(model: Model, alpha_bar: torch.Tensor, timesteps: torch.Tensor, prediction: str,
             callback: Callback | None) -> tuple[NFECounter, list[float], list[int], StepGuard]:
    """The counted model, ᾱ and the timesteps (then −1) as Python numbers, and the step guard."""
    if prediction not in PREDICTIONS:
        raise ConfigError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")
    if not isinstance(alpha_bar, torch.Tensor) or alpha_bar.ndim != 1:
        raise ConfigError("alpha_bar must be a 1-D tensor (the training schedule's cumulative product of 1 - beta)")
    ab = alpha_bar.tolist()
    if not all(0 <= a <= 1 for a in ab):
        raise ConfigError("alpha_bar values must lie in [0, 1]")
    ts = check_timesteps(timesteps, len(ab)) + [-1]
    model = counted(model)
    return model, ab, ts, StepGuard(ts, model, callback, unit="timestep")


def _steps(ab: list[float], ts: list[int]) -> Iterator[tuple[int, int, float, float]]:
    """(i, t, ᾱ_t, ᾱ_{t'}) for each step from t to the next timestep t' (ᾱ = 1 past the last one)."""
    for i in range(len(ts) - 1):
        yield i, ts[i], ab[ts[i]], (ab[ts[i + 1]] if ts[i + 1] >= 0 else 1.0)


@torch.no_grad()
def ddpm(model: Model, x: torch.Tensor, alpha_bar: torch.Tensor, timesteps: torch.Tensor, *,
         variance: str = "fixed_small", prediction: str = "epsilon", generator: torch.Generator | None = None,
         callback: Callback | None = None) -> torch.Tensor:
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), generalised to skipped steps as diffusers does.

    From t to t' (the next timestep, ᾱ_{t'} = 1 after the last): β'_t = 1 − ᾱ_t/ᾱ_{t'};
    μ = √ᾱ_{t'}·β'_t/(1 − ᾱ_t)·x0 + √(1 − β'_t)·(1 − ᾱ_{t'})/(1 − ᾱ_t)·x_t (eq. 7);
    x_{t'} = μ + std·z for t > 0, with variance ``fixed_small`` = max((1 − ᾱ_{t'})/(1 − ᾱ_t)·β'_t, 1e−20)
    (the posterior's) or ``fixed_large`` = β'_t. No noise is added when t = 0. 1 NFE per timestep.
    """
    if variance not in VARIANCES:
        raise ConfigError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
    model, ab, ts, guard = _prepare(model, alpha_bar, timesteps, prediction, callback)
    for i, t, a_t, a_prev in _steps(ab, ts):
        beta = 1 - a_t / a_prev
        x0, _ = _clean_and_noise(model(x, x.new_full((x.shape[0],), t, dtype=torch.long)), x, a_t, prediction)
        mean = x0 * (math.sqrt(a_prev) * beta / (1 - a_t)) + x * (math.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t))
        if t > 0:
            var = max((1 - a_prev) / (1 - a_t) * beta, 1e-20) if variance == "fixed_small" else beta
            mean = mean + gaussian(x, generator) * math.sqrt(var)
        x = guard(mean, i, x0)
    return guard.finish(x)


@torch.no_grad()
def ddim(model: Model, x: torch.Tensor, alpha_bar: torch.Tensor, timesteps: torch.Tensor, *, eta: float = 0.0,
         prediction: str = "epsilon", generator: torch.Generator | None = None,
         callback: Callback | None = None) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12 and 16). η = 0 is deterministic; η = 1 has DDPM's marginals.

    σ_t = η·√((1 − ᾱ_{t'})/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t'});  x_{t'} = √ᾱ_{t'}·x0 + √(1 − ᾱ_{t'} − σ_t²)·ε + σ_t·z.
    With η > 0 one N(0, I) draw per timestep (the last too, where σ_t = 0), as diffusers draws. 1 NFE per timestep.
    """
    if not 0 <= eta <= 1:
        raise ConfigError(f"eta must lie in [0, 1], got {eta}")
    model, ab, ts, guard = _prepare(model, alpha_bar, timesteps, prediction, callback)
    for i, t, a_t, a_prev in _steps(ab, ts):
        x0, eps = _clean_and_noise(model(x, x.new_full((x.shape[0],), t, dtype=torch.long)), x, a_t, prediction)
        std = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        x_next = x0 * math.sqrt(a_prev) + eps * math.sqrt(max(1 - a_prev - std**2, 0.0))
        if eta > 0:
            x_next = x_next + gaussian(x, generator) * std
        x = guard(x_next, i, x0)
    return guard.finish(x)
