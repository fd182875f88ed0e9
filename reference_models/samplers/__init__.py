"""Diffusion samplers, noise schedules and model-to-denoiser wrappers, one function per sampler.

Four families, by the space they step in (``SAMPLERS[name].space``):
- ``sigma``: k-diffusion's σ-space samplers ``(denoiser, x, sigmas, *, generator, callback)`` (``k_samplers``);
  σs from ``get_sigmas``; models wrapped by ``VDenoiser``/``EpsDenoiser``/``RFDenoiser``/``DiscreteDenoiser``.
- ``discrete``: DDPM/DDIM ``(model, x, alpha_bar, timesteps, ...)`` (``discrete``); ᾱ from ``beta_schedule`` or
  ``v_alpha_bar``, timesteps from ``timesteps``.
- ``v`` and ``rf``: Stable Audio's ``v_ddim``, ``rf_euler``, ``rf_pingpong`` ``(model, x, ts, ...)`` (``stable_audio``).

Every sampler counts its model evaluations (wrap the model in ``NFECounter`` to read them; callbacks get ``nfe``),
validates its schedule (ConfigError naming the step) and stops with ``NonFiniteSampleError`` naming the step
where NaN/inf appears. Example::

    from t2mbench.reference_models.samplers import get_sampler, get_sigmas, VDenoiser, NFECounter
    d = NFECounter(VDenoiser(v_model))
    sigmas = get_sigmas("polyexponential", 100, 0.3, 500.0, 1.0)
    x0 = get_sampler("dpmpp_3m_sde")(d, torch.randn(1, 64, 1024) * sigmas[0], sigmas, generator=g)
    d.nfe  # 100
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from t2mbench.core.errors import ConfigError

from .common import NFECounter, NonFiniteSampleError, ancestral_step, to_d
from .denoisers import DiscreteDenoiser, EpsDenoiser, RFDenoiser, VDenoiser, continuous_time, v_sigma_to_t
from .discrete import ddim, ddpm
from .k_samplers import K_SAMPLERS
from .schedules import (
    alpha_bar,
    beta_schedule,
    get_sigmas,
    rf_times,
    sigma_table,
    sigmas_from_alpha_bar,
    timesteps,
    v_alpha_bar,
    v_ddim_times,
)
from .stable_audio import rf_euler, rf_pingpong, sample_rf, sample_v, v_ddim


@dataclass(frozen=True)
class SamplerInfo:
    """A registered sampler: its function, the space it steps in, a one-line description, model calls per step."""

    fn: Callable[..., torch.Tensor]
    space: str
    description: str
    calls_per_step: int = 1

    def nfe(self, steps: int) -> int:
        """Model evaluations for ``steps`` steps ending at σ = 0 (2-stage samplers take one Euler step last)."""
        return steps if self.calls_per_step == 1 else 2 * steps - 1


_DESCRIPTIONS = {
    "euler": ("sigma", "Euler on the probability-flow ODE (Karras et al. 2022, Alg. 2, no churn)", 1),
    "euler_ancestral": ("sigma", "Euler steps plus ancestral noise (k-diffusion)", 1),
    "heun": ("sigma", "Heun 2nd order (Karras et al. 2022, Alg. 1); 2N-1 NFE", 2),
    "dpm_2": ("sigma", "DPM-Solver-2, midpoint in log sigma (Lu et al. 2022); 2N-1 NFE", 2),
    "dpmpp_2m": ("sigma", "DPM-Solver++(2M) multistep (Lu et al. 2022b)", 1),
    "dpmpp_2m_sde": ("sigma", "DPM-Solver++(2M) SDE, midpoint (diffusers' SAO scheduler)", 1),
    "dpmpp_3m_sde": ("sigma", "DPM-Solver++(3M) SDE (Stable Audio Open 1.0's sampler)", 1),
}
SAMPLERS: dict[str, SamplerInfo] = {
    **{name: SamplerInfo(K_SAMPLERS[name], *spec) for name, spec in _DESCRIPTIONS.items()},
    "ddpm": SamplerInfo(ddpm, "discrete", "DDPM ancestral sampling (Ho et al. 2020), diffusers' DDPMScheduler"),
    "ddim": SamplerInfo(ddim, "discrete", "DDIM (Song et al. 2021), diffusers' DDIMScheduler"),
    "v_ddim": SamplerInfo(v_ddim, "v", "DDIM on a v model over t (stable-audio-tools' v-ddim)"),
    "rf_euler": SamplerInfo(rf_euler, "rf", "Euler on the rectified-flow ODE (stable-audio-tools' RF euler)"),
    "rf_pingpong": SamplerInfo(rf_pingpong, "rf", "Ping-pong sampling for ARC-distilled RF models (SAO-small)"),
}


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    """The sampler function registered as ``name`` (see ``SAMPLERS``); ConfigError listing the names otherwise."""
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name].fn


__all__ = [
    "SAMPLERS", "DiscreteDenoiser", "EpsDenoiser", "NFECounter", "NonFiniteSampleError", "RFDenoiser", "SamplerInfo",
    "VDenoiser", "alpha_bar", "ancestral_step", "beta_schedule", "continuous_time", "ddim", "ddpm", "get_sampler",
    "get_sigmas", "rf_euler", "rf_pingpong", "rf_times", "sample_rf", "sample_v", "sigma_table",
    "sigmas_from_alpha_bar", "timesteps", "to_d", "v_alpha_bar", "v_ddim", "v_ddim_times", "v_sigma_to_t",
]
