"""Diffusion samplers, noise schedules and model-to-denoiser wrappers, one function per sampler.

Four families, by what they step over (``SamplerInfo.space``):
- ``sigma``: k-diffusion's σ-space samplers ``(denoiser, x, sigmas, *, generator, callback)`` (``k_samplers``);
  σs from ``get_sigmas``; models wrapped by ``VDenoiser``/``EpsDenoiser``/``RFDenoiser``/``DiscreteDenoiser``.
- ``discrete``: DDPM/DDIM ``(model, x, alpha_bar, timesteps, ...)`` (``discrete``); ᾱ from ``beta_schedule`` or
  ``v_alpha_bar``, timesteps from ``timesteps``.
- ``v`` and ``rf``: Stable Audio's ``v_ddim``, ``rf_euler``, ``rf_pingpong`` ``(model, x, ts, ...)`` (``stable_audio``).

The registry (``registry``) names them: ``resolve(name, objective)`` gives the sampler for a model objective,
which builds its schedule and calls the function with validated options (``SAMPLERS`` lists the built-ins,
``registered()`` adds the ``t2mbench.samplers`` plugins). ``sample_v``/``sample_rf`` are stable-audio-tools'
``sample_k``/``sample_rf``.

Every sampler counts its model evaluations (wrap the model in ``NFECounter`` to read them; callbacks get ``nfe``),
validates its schedule (ConfigError naming the step) and stops with ``NonFiniteSampleError`` naming the step
where NaN/inf appears. Example::

    from t2mbench.reference_models.samplers import Grid, NFECounter, get_sampler, get_sigmas, resolve, VDenoiser
    d = NFECounter(VDenoiser(v_model))
    sigmas = get_sigmas("polyexponential", 100, 0.3, 500.0, 1.0)
    x0 = get_sampler("dpmpp_3m_sde")(d, torch.randn(1, 64, 1024) * sigmas[0], sigmas, generator=g)
    d.nfe  # 100
    # the same through the registry, with an option:
    x0 = resolve("dpmpp_3m_sde", "v")(v_model, torch.randn(1, 64, 1024), Grid(100), options={"eta": 0.5})
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .common import (
    Callback,
    NFECounter,
    NoiseSampler,
    NonFiniteSampleError,
    ancestral_step,
    batch_of,
    begin,
    noise_source,
    to_d,
)
from .denoisers import DiscreteDenoiser, EpsDenoiser, RFDenoiser, VDenoiser, continuous_time, v_sigma_to_t
from .discrete import ddim, ddpm
from .registry import (
    SAMPLERS,
    Grid,
    Option,
    Runner,
    Sampler,
    SamplerInfo,
    choice,
    discrete_time,
    lookup,
    number,
    registered,
    resolve,
    rf_time,
    sample_rf,
    sample_v,
    sigma_runners,
    sigma_space,
    v_time,
)
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
from .stable_audio import rf_euler, rf_pingpong, v_ddim


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    """The sampler function registered as ``name`` (see ``registered``); ConfigError listing the names otherwise."""
    return lookup(name).fn


__all__ = [
    "SAMPLERS", "Callback", "DiscreteDenoiser", "EpsDenoiser", "Grid", "NFECounter", "NoiseSampler",
    "NonFiniteSampleError", "Option", "RFDenoiser", "Runner", "Sampler", "SamplerInfo", "VDenoiser", "alpha_bar",
    "ancestral_step", "batch_of", "begin", "beta_schedule", "choice", "continuous_time", "ddim", "ddpm",
    "discrete_time", "get_sampler", "get_sigmas", "lookup", "noise_source", "number",
    "registered", "resolve", "rf_euler", "rf_pingpong", "rf_time", "rf_times", "sample_rf", "sample_v",
    "sigma_runners", "sigma_space", "sigma_table", "sigmas_from_alpha_bar", "timesteps", "to_d", "v_alpha_bar",
    "v_ddim", "v_ddim_times", "v_sigma_to_t", "v_time",
]
