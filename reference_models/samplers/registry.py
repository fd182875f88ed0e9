"""The sampler registry: for every sampler name, how it runs on each model objective, its options, and whether it
draws its per-step noise through a ``noise_sampler``. ``resolve(name, objective)`` is the one look-up.

A model's objective (``reference_models.objectives``) is ``"v"``, ``"eps"``, ``"rectified_flow"`` or
``"rf_denoiser"`` (rectified flow, ARC-post-trained). A :class:`SamplerInfo` maps each objective it supports to a
*runner*, one per family, which builds the schedule on the CPU and calls the sampler function:

- ``sigma_space(Denoiser)``: σs = ``get_sigmas("polyexponential", n, σ_min, σ_max, ρ)``, x = noise·σ_0,
  ``fn(Denoiser(model), x, σs)`` (stable-audio-tools' ``sample_k`` for a v model, ρ = 1);
- ``discrete_time(prediction)``: ``fn(continuous_time(model), noise, v_alpha_bar(T), timesteps("trailing", n))``,
  the cosine ᾱ table over T = 1000 levels, t = (i + 1)/T (DDPM / DDIM on a continuous-time model); its options
  ``schedule="linear"`` (the DDIM paper's linear βs) and ``spacing="leading"`` change the table and the grid;
- ``v_time``: ``fn(model, noise, v_ddim_times(n, σ_max))``, t from min(σ_max, 1) to 0 (``v_ddim``);
- ``rf_time``: ``fn(model, noise, rf_times(n, σ_max))``, the logSNR grid from t = min(σ_max, 1) (RF samplers).

Every schedule is computed on the CPU, whatever the device of the sample: the samplers read it as Python floats,
so a run steps through the same levels on every device (a GPU's exp/log can differ in the last bit).

Third-party samplers: a distribution declares an entry point of group ``t2mbench.samplers`` whose object is a
``SamplerInfo``; it is read once, on the first look-up, under the entry point's name (a built-in name is refused)::

    [project.entry-points."t2mbench.samplers"]
    my_euler = "my_pkg.samplers:MY_EULER"   # SamplerInfo(my_euler, "sigma", "...", sigma_runners(), options=...)

The package exports what such a sampler needs: ``SamplerInfo``, the runners, ``Option``/``number``/``choice``, and
the plumbing the built-ins use (``begin`` for the counted model, the validated schedule and the step guard;
``noise_source``, ``batch_of``, ``to_d``, ``ancestral_step``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import torch

from t2mbench.core.errors import ConfigError
from t2mbench.core.plugins import Registry

from .common import Callback, NoiseSampler
from .denoisers import EpsDenoiser, RFDenoiser, VDenoiser, continuous_time, trig_time
from .discrete import VARIANCES, ddim, ddpm
from .k_samplers import dpm_2, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m_sde, euler, euler_ancestral, heun
from .schedules import alpha_bar, beta_schedule, get_sigmas, rf_times, timesteps, v_alpha_bar, v_ddim_times
from .stable_audio import rf_euler, rf_pingpong, v_ddim

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DISCRETE_T = 1000
DISCRETE_SPACING = "trailing"  # starts at full noise (Lin et al. 2023); diffusers' default "leading" does not


@dataclass(frozen=True)
class Grid:
    """The schedule settings of one run: ``steps`` (≥ 1) from ``sigma_max`` down to ``sigma_min`` (σ-space runners,
    polyexponential with exponent ``rho``); the time runners start at t = min(``sigma_max``, 1)."""

    steps: int
    sigma_min: float = 0.3
    sigma_max: float = 500.0
    rho: float = 1.0


class Runner(Protocol):
    """Runs sampler function ``fn`` on ``model`` from unit noise ``[B, C, L]`` over ``grid``; returns x0 ``[B, C, L]``.
    ``kwargs`` (generator, callback, options, noise_sampler) go to ``fn`` unchanged."""

    def __call__(self, fn: Callable[..., torch.Tensor], model: Model, noise: torch.Tensor, grid: Grid,
                 **kwargs: Any) -> torch.Tensor: ...


def sigma_space(denoiser: Callable[[Model], Model]) -> Runner:
    """The runner of a σ-space sampler on a model seen through ``denoiser`` (``VDenoiser``, ``EpsDenoiser``,
    ``RFDenoiser``): σ_i = exp((1 − i/(n−1))^ρ·(ln σ_max − ln σ_min) + ln σ_min), then 0; x = noise·σ_0."""

    def run(fn: Callable[..., torch.Tensor], model: Model, noise: torch.Tensor, grid: Grid,
            **kwargs: Any) -> torch.Tensor:
        sigmas = get_sigmas("polyexponential", grid.steps, grid.sigma_min, grid.sigma_max, grid.rho)
        return fn(denoiser(model), noise * sigmas[0].item(), sigmas, **kwargs)

    return run


def discrete_time(prediction: str) -> Runner:
    """The runner of DDPM / DDIM on a continuous-time model predicting ``prediction`` ("epsilon" or "v"): integer
    timesteps i (``steps`` of T = 1000, ``spacing``) over an ᾱ table; x = noise. It consumes two options:

    - ``schedule="cosine"`` (default): the model's own ᾱ_i = cos²(π(i + 1)/2T), t = (i + 1)/T;
      ``"linear"``: DDPM's linear βs (1e-4 to 0.02 over T = 1000), the DDIM paper's CIFAR10 schedule, each level
      at the model's time t_i = (2/π)·arccos(√ᾱ_i) (:func:`~.denoisers.trig_time`). Under it DDPM's larger
      variance σ̂ leaves √(1 − ᾱ_τ1/ᾱ_0) = 0.324 of noise in the sample at S = 10 (0.156 on the cosine table),
      the residual behind the paper's σ̂ collapse (``docs/reproducing_ddim.md``).
    - ``spacing="trailing"`` (default; starts at t = 1) or ``"leading"`` (diffusers' default and the paper's
      τ, ending at index 0).
    """

    def run(fn: Callable[..., torch.Tensor], model: Model, noise: torch.Tensor, grid: Grid, *,
            schedule: str = "cosine", spacing: str = DISCRETE_SPACING, **kwargs: Any) -> torch.Tensor:  # fmt: skip
        ts = timesteps(spacing, grid.steps, DISCRETE_T)
        if schedule == "cosine":
            table, discrete = v_alpha_bar(DISCRETE_T), continuous_time(model, DISCRETE_T)
        else:
            table = alpha_bar(beta_schedule("linear", DISCRETE_T).double())
            discrete = trig_time(model, table)
        return fn(discrete, noise, table, ts, prediction=prediction, **kwargs)

    return run


def v_time(fn: Callable[..., torch.Tensor], model: Model, noise: torch.Tensor, grid: Grid,
           **kwargs: Any) -> torch.Tensor:
    """The runner of ``v_ddim``: t = linspace(min(σ_max, 1), 0, n + 1); x = noise."""
    return fn(model, noise, v_ddim_times(grid.steps, grid.sigma_max), **kwargs)


def rf_time(fn: Callable[..., torch.Tensor], model: Model, noise: torch.Tensor, grid: Grid,
            **kwargs: Any) -> torch.Tensor:
    """The runner of the rectified-flow samplers: t = sigmoid(−linspace(λ_max, 2, n + 1)) from min(σ_max, 1)
    (``schedules.rf_times``); x = noise."""
    return fn(model, noise, rf_times(grid.steps, grid.sigma_max), **kwargs)


def sigma_runners() -> dict[str, Runner]:
    """A σ-space sampler's runners: every objective, through its denoiser wrapper."""
    rf = sigma_space(RFDenoiser)
    return {"v": sigma_space(VDenoiser), "eps": sigma_space(EpsDenoiser), "rectified_flow": rf, "rf_denoiser": rf}


@dataclass(frozen=True)
class Option:
    """A sampler option: the sampler function's ``default``, ``parse`` (the value in canonical form, or None when
    it is not allowed) and ``allowed``, what it accepts in words (for messages)."""

    default: Any
    parse: Callable[[Any], Any]
    allowed: str


def number(default: float, low: float = 0.0, high: float = math.inf) -> Option:
    """A real option in [``low``, ``high``] (finite), stored as a float."""

    def parse(value: Any) -> float | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
        return float(value) if ok and math.isfinite(value) else None

    allowed = f"a number >= {low:g}" if high == math.inf else f"a number in [{low:g}, {high:g}]"
    return Option(float(default), parse, allowed)


def choice(default: str, values: tuple[str, ...]) -> Option:
    """A string option, one of ``values``."""
    return Option(default, lambda value: value if value in values else None, f"one of {', '.join(values)}")


@dataclass(frozen=True)
class SamplerInfo:
    """A registered sampler.

    ``fn``: the sampler function; ``space``: what it steps over ("sigma", "discrete", "v", "rf": its call signature,
    see the package docstring); ``description``: one line; ``runners``: objective → runner (the objectives it
    fits); ``calls_per_step``: model calls per step; ``takes_noise_sampler``: it draws its per-step noise through a
    ``noise_sampler(σ, σ')`` argument (``generate`` feeds per-clip noise); ``options``: keyword → Option.
    """

    fn: Callable[..., torch.Tensor]
    space: str
    description: str
    runners: Mapping[str, Runner]
    calls_per_step: int = 1
    takes_noise_sampler: bool = False
    options: Mapping[str, Option] = field(default_factory=dict)

    def nfe(self, steps: int) -> int:
        """Model evaluations for ``steps`` steps ending at σ = 0 (2-stage samplers take one Euler step last)."""
        return steps if self.calls_per_step == 1 else 2 * steps - 1


_ETA, _S_NOISE = number(1.0), number(1.0)  # the SDE / ancestral samplers' η and noise scale
_DISCRETE = {"schedule": choice("cosine", ("cosine", "linear")),  # consumed by discrete_time's runner
             "spacing": choice(DISCRETE_SPACING, ("trailing", "leading"))}
SAMPLERS: Mapping[str, SamplerInfo] = MappingProxyType({
    "euler": SamplerInfo(euler, "sigma", "Euler on the probability-flow ODE (Karras et al. 2022, Alg. 2, no churn)",
                         sigma_runners()),
    "euler_ancestral": SamplerInfo(euler_ancestral, "sigma", "Euler steps plus ancestral noise (k-diffusion)",
                                   sigma_runners(), takes_noise_sampler=True,
                                   options={"eta": _ETA, "s_noise": _S_NOISE}),
    "heun": SamplerInfo(heun, "sigma", "Heun 2nd order (Karras et al. 2022, Alg. 1); 2N-1 NFE", sigma_runners(), 2),
    "dpm_2": SamplerInfo(dpm_2, "sigma", "DPM-Solver-2, midpoint in log sigma (Lu et al. 2022); 2N-1 NFE",
                         sigma_runners(), 2),
    "dpmpp_2m": SamplerInfo(dpmpp_2m, "sigma", "DPM-Solver++(2M) multistep (Lu et al. 2022b)", sigma_runners()),
    "dpmpp_2m_sde": SamplerInfo(dpmpp_2m_sde, "sigma", "DPM-Solver++(2M) SDE, midpoint (diffusers' SAO scheduler)",
                                sigma_runners(), takes_noise_sampler=True,
                                options={"eta": _ETA, "s_noise": _S_NOISE,
                                         "solver_type": choice("midpoint", ("midpoint", "heun"))}),
    "dpmpp_3m_sde": SamplerInfo(dpmpp_3m_sde, "sigma", "DPM-Solver++(3M) SDE (Stable Audio Open 1.0's sampler)",
                                sigma_runners(), takes_noise_sampler=True, options={"eta": _ETA, "s_noise": _S_NOISE}),
    "ddpm": SamplerInfo(ddpm, "discrete", "DDPM ancestral sampling (Ho et al. 2020), diffusers' DDPMScheduler",
                        {"v": discrete_time("v"), "eps": discrete_time("epsilon")},
                        options={"variance": choice("fixed_small", VARIANCES), **_DISCRETE}),
    "ddim": SamplerInfo(ddim, "discrete", "DDIM (Song et al. 2021), diffusers' DDIMScheduler",
                        {"v": discrete_time("v"), "eps": discrete_time("epsilon")},
                        options={"eta": number(0.0, high=1.0), **_DISCRETE}),
    "v_ddim": SamplerInfo(v_ddim, "v", "DDIM on a v model over t (stable-audio-tools' v-ddim)", {"v": v_time},
                          options={"eta": number(0.0, high=1.0)}),
    "rf_euler": SamplerInfo(rf_euler, "rf", "Euler on the rectified-flow ODE (stable-audio-tools' RF euler)",
                            {"rectified_flow": rf_time, "rf_denoiser": rf_time}),
    "rf_pingpong": SamplerInfo(rf_pingpong, "rf", "Ping-pong sampling for ARC-distilled RF models (SAO-small)",
                               {"rectified_flow": rf_time, "rf_denoiser": rf_time}, takes_noise_sampler=True),
})
REGISTRY: Registry[SamplerInfo] = Registry("t2mbench.samplers", SAMPLERS, SamplerInfo, "sampler")


def registered() -> Mapping[str, SamplerInfo]:
    """Every sampler by name: the built-ins (``SAMPLERS``), then the ``t2mbench.samplers`` plugins, read once."""
    return MappingProxyType(REGISTRY.entries())


def lookup(name: str) -> SamplerInfo:
    """The entry registered as ``name``; ConfigError listing the names otherwise."""
    return REGISTRY.get(name)


@dataclass(frozen=True)
class Sampler:
    """A sampler resolved for one objective (``resolve``); call it to sample."""

    name: str
    info: SamplerInfo
    objective: str

    def check_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``options`` validated, in canonical form ({} for None); ConfigError naming the sampler and the key."""
        checked = {}
        for key, value in (options or {}).items():
            if key not in self.info.options:
                allowed = ", ".join(self.info.options) or "none"
                raise ConfigError(f"sampler {self.name!r} has no option {key!r}; its options: {allowed}")
            option = self.info.options[key]
            checked[key] = option.parse(value)
            if checked[key] is None:
                raise ConfigError(f"sampler {self.name!r}: option {key}={value!r} must be {option.allowed}")
        return checked

    def __call__(self, model: Model, noise: torch.Tensor, grid: Grid, *, generator: torch.Generator | None = None,
                 callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                 options: Mapping[str, Any] | None = None) -> torch.Tensor:
        """x0 ``[B, C, L]`` from unit ``noise`` ``[B, C, L]``: the runner of the objective calls the sampler with the
        options (defaults filled in), ``generator`` and ``callback``, and ``noise_sampler`` when it takes one."""
        kwargs = {key: option.default for key, option in self.info.options.items()} | self.check_options(options)
        if self.info.takes_noise_sampler and noise_sampler is not None:
            kwargs["noise_sampler"] = noise_sampler
        run = self.info.runners[self.objective]
        return run(self.info.fn, model, noise, grid, generator=generator, callback=callback, **kwargs)


def resolve(name: str, objective: str) -> Sampler:
    """The sampler ``name`` for a model of ``objective``; ConfigError listing the names when it is unknown, or the
    samplers that fit ``objective`` when it does not."""
    info = lookup(name)
    if objective not in info.runners:
        fits = [n for n, entry in registered().items() if objective in entry.runners]
        raise ConfigError(f"sampler {name!r} does not fit a {objective} model; use one of {', '.join(fits)}")
    return Sampler(name, info, objective)


def sample_v(model: Model, noise: torch.Tensor, *, sampler: str = "dpmpp_3m_sde", steps: int = 100,
             sigma_min: float = 0.3, sigma_max: float = 500.0, rho: float = 1.0,
             generator: torch.Generator | None = None, callback: Callback | None = None,
             noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """Sample a v-objective model from N(0, I) ``noise`` ``[B, C, L]`` as stable-audio-tools' ``sample_k`` does.

    σ-space samplers: σs = ``get_sigmas("polyexponential", steps, sigma_min, sigma_max, rho)``, x = noise·σs[0],
    the model wrapped in ``VDenoiser``. ``v_ddim``: t = linspace(min(sigma_max, 1), 0, steps + 1), x = noise.
    (``ddpm``/``ddim`` fit too, over discrete timesteps.) ``noise_sampler`` is used by the samplers that take one.
    Defaults are SAO 1.0's model-card call (use cfg scale 7 in the guided model). Returns x0 ``[B, C, L]``.
    """
    return resolve(sampler, "v")(model, noise, Grid(steps, sigma_min, sigma_max, rho), generator=generator,
                                 callback=callback, noise_sampler=noise_sampler)


def sample_rf(model: Model, noise: torch.Tensor, *, sampler: str = "rf_pingpong", steps: int = 8,
              t_max: float = 1.0, generator: torch.Generator | None = None, callback: Callback | None = None,
              noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
    """Sample a rectified-flow model from N(0, I) ``noise`` ``[B, C, L]`` as stable-audio-tools' ``sample_rf`` does.

    ts = ``rf_times(steps, t_max)`` (the logSNR grid); x = noise. (σ-space samplers fit too, through
    ``RFDenoiser``, reading ``t_max`` as σ_max, down from σ = 0.3.) Defaults are SAO-small's call (8 ping-pong
    steps, no CFG); the RF pre-trained model's default is ``rf_euler`` with 50 steps. Returns x0 ``[B, C, L]``.
    """
    return resolve(sampler, "rectified_flow")(model, noise, Grid(steps, sigma_max=t_max), generator=generator,
                                              callback=callback, noise_sampler=noise_sampler)
