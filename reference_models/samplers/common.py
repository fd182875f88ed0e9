"""Maths and plumbing shared by every sampler: the ODE slope, the ancestral split, model-call
(NFE) counting, schedule validation, Gaussian noise, and the per-step finiteness check and callback.

Callbacks: every sampler calls ``callback(info)`` once per step, after the update, with
``info = {"i": step index, "x": state after the step, "sigma": noise level at the start of the step,
"sigma_next": noise level at its end, "denoised": the model's clean-sample estimate at the start of
the step, "nfe": model evaluations so far}``. Noise levels are in the sampler's own unit (σ for the
σ-space samplers, t for Stable Audio's, the integer timestep for DDPM/DDIM). Unlike k-diffusion,
whose callback sees the state before the update, ``x`` here is the state after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from t2mbench.core.errors import ConfigError, T2MBenchError

Callback = Callable[[dict[str, Any]], None]
NoiseSampler = Callable[[float, float], torch.Tensor]


class NonFiniteSampleError(T2MBenchError, FloatingPointError):
    """A sampler produced NaN or inf; the message names the step and whether the model output was already bad."""


class NFECounter:
    """A model or denoiser that counts its calls (network function evaluations) in ``nfe``.

    A batched classifier-free-guidance call counts once. Wrap your model to read the count after
    sampling: ``m = NFECounter(denoiser); euler(m, x, sigmas); m.nfe``.
    """

    def __init__(self, fn: Callable[..., torch.Tensor]):
        self.fn = fn
        self.nfe = 0

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.nfe += 1
        return self.fn(*args, **kwargs)


def counted(fn: Callable[..., torch.Tensor]) -> NFECounter:
    """``fn`` itself if it already counts its calls, else a new ``NFECounter`` around it."""
    return fn if isinstance(fn, NFECounter) else NFECounter(fn)


def to_d(x: torch.Tensor, sigma: float, denoised: torch.Tensor) -> torch.Tensor:
    """Slope of the probability-flow ODE in σ (Karras et al. 2022, eq. 3 with σ(t) = t): dx/dσ = (x − D)/σ."""
    return (x - denoised) / sigma


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split the step σ → σ' into a deterministic step down to σ_down and fresh noise of std σ_up.

    σ_up = min(σ', η·√(σ'²(σ² − σ'²)/σ²)), σ_down = √(σ'² − σ_up²), so σ_down² + σ_up² = σ'².
    """
    if not eta:
        return sigma_next, 0.0
    sigma_up = min(sigma_next, eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
    return math.sqrt(sigma_next**2 - sigma_up**2), sigma_up


def gaussian(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` drawn from ``generator`` (the global RNG when None)."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def noise_source(x: torch.Tensor, generator: torch.Generator | None,
                 noise_sampler: NoiseSampler | None) -> NoiseSampler:
    """``noise_sampler(sigma, sigma_next)`` if given (e.g. to replay recorded noise), else i.i.d. N(0, I) per step."""
    if noise_sampler is not None:
        return noise_sampler
    return lambda sigma, sigma_next: gaussian(x, generator)


def batch_of(x: torch.Tensor, value: float) -> torch.Tensor:
    """The per-sample noise level or time the model receives: shape ``[B]``, dtype and device of ``x``."""
    return x.new_full((x.shape[0],), value)


def check_schedule(values: torch.Tensor, name: str = "sigmas", t_max: float | None = None) -> list[float]:
    """Validates a decreasing noise schedule ending in 0; returns it as Python floats.

    ``values``: 1-D tensor of n + 1 levels for n >= 1 steps, strictly decreasing, finite, last one 0;
    ``t_max`` bounds the first level (1 for times in [0, 1]). Raises ConfigError naming the bad step.
    """
    if not isinstance(values, torch.Tensor) or values.ndim != 1:
        raise ConfigError(f"{name} must be a 1-D tensor, got {type(values).__name__}"
                          + (f" of shape {tuple(values.shape)}" if isinstance(values, torch.Tensor) else ""))
    s = values.tolist()
    if len(s) < 2:
        raise ConfigError(f"{name} holds {len(s)} value(s): at least 2 (one step) are needed (steps must be >= 1)")
    for i, v in enumerate(s):
        if not math.isfinite(v):
            raise ConfigError(f"{name}[{i}] = {v} is not finite (step {i})")
    for i in range(len(s) - 1):
        if not s[i + 1] < s[i]:
            raise ConfigError(f"{name} must decrease strictly, but step {i} goes from {s[i]:g} to {s[i + 1]:g}")
    if s[-1] != 0:
        raise ConfigError(f"{name} must end in 0 (the last step lands on the clean sample), "
                          f"got {name}[{len(s) - 1}] = {s[-1]:g}; append a zero (get_sigmas does)")
    if t_max is not None and s[0] > t_max:
        raise ConfigError(f"{name}[0] = {s[0]:g} exceeds {t_max:g}: times must lie in [0, {t_max:g}]")
    return s


class StepGuard:
    """Ends each step: checks the new state for NaN/inf, then calls the callback; ``finish`` ends the run.

    ``levels``: the schedule as floats (step i goes from ``levels[i]`` to ``levels[i+1]``); ``unit`` names them
    in messages. Raises NonFiniteSampleError naming the step, its levels and whether the model's estimate at the
    start of the step was already non-finite. On the CPU the check is immediate. On an accelerator, reading the
    flag waits for the device, so (``lag`` None = by device) step i's flag is read at the end of step i + 1, once
    that step's work is queued: the device's queue never runs dry for it (which matters when the model keeps the
    GPU busy; the tiny DiT is launch-bound and showed no difference on an H100). The error comes one step late
    but names the step where it happened.
    """

    def __init__(self, levels: list[float], model: NFECounter, callback: Callback | None, unit: str = "sigma",
                 lag: bool | None = None):
        self.levels, self.model, self.callback, self.unit, self.lag = levels, model, callback, unit, lag
        self.pending: tuple[torch.Tensor, int, torch.Tensor] | None = None

    def __call__(self, x: torch.Tensor, i: int, denoised: torch.Tensor) -> torch.Tensor:
        """``x`` after step ``i``, unchanged; ``denoised`` is the model's estimate at the start of the step."""
        finite = torch.isfinite(x).all()
        if not (x.device.type != "cpu" if self.lag is None else self.lag):
            self._check(finite, i, denoised)
        else:
            if self.pending is not None:
                self._check(*self.pending)
            self.pending = (finite, i, denoised)
        if self.callback is not None:
            self.callback({"i": i, "x": x, "sigma": self.levels[i], "sigma_next": self.levels[i + 1],
                           "denoised": denoised, "nfe": self.model.nfe})
        return x

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The final state, after the last pending check."""
        if self.pending is not None:
            self._check(*self.pending)
            self.pending = None
        return x

    def _check(self, finite: torch.Tensor, i: int, denoised: torch.Tensor) -> None:
        if bool(finite):
            return
        source = "the model's estimate was already non-finite" if not bool(torch.isfinite(denoised).all()) \
            else "the model's estimate at the start of the step was finite, so the update (or a later model call " \
            "within the step) produced it"
        raise NonFiniteSampleError(
            f"sampling produced NaN or inf at step {i} of {len(self.levels) - 1} "
            f"({self.unit} {self.levels[i]:g} -> {self.levels[i + 1]:g}); "
            f"{source}. Check the model and its inputs at this noise level."
        )


def begin(model: Callable[..., torch.Tensor], values: torch.Tensor, callback: Callback | None, name: str = "sigmas",
          unit: str = "sigma", t_max: float | None = None) -> tuple[NFECounter, list[float], StepGuard]:
    """A sampler's start: the counted model, the validated schedule as floats (``check_schedule``), its StepGuard."""
    levels = check_schedule(values, name, t_max)
    model = counted(model)
    return model, levels, StepGuard(levels, model, callback, unit)
