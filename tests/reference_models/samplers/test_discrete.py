"""DDPM, DDIM and the σ-space samplers on discrete-time models against diffusers' schedulers, run live
(diffusers 0.42 is a test dependency): same toy model, same noise, same generator, trajectories ≤ 1e-5."""

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
)
from support.sampler_models import ToyModel, max_rel_err

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.samplers import (
    DiscreteDenoiser,
    NFECounter,
    alpha_bar,
    beta_schedule,
    ddim,
    ddpm,
    get_sampler,
    sigmas_from_alpha_bar,
    timesteps,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers")  # numpy 2's __array__ notice

SHAPE = (2, 3, 6)
BETAS = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012), "cosine": (1e-4, 0.02)}
DIFFUSERS_BETA = {"linear": "linear", "scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2"}


def scheduler(cls, kind, **config):
    start, end = BETAS[kind]
    return cls(num_train_timesteps=1000, beta_schedule=DIFFUSERS_BETA[kind], beta_start=start, beta_end=end, **config)


def table(kind):
    return alpha_bar(beta_schedule(kind, 1000, *BETAS[kind]))


def start_noise(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def collect(states):
    return lambda d: states.append(d["x"])


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "cosine"])
def test_beta_schedules_and_alpha_bar_equal_diffusers(kind):
    ref = scheduler(DDPMScheduler, kind)
    assert torch.equal(beta_schedule(kind, 1000, *BETAS[kind]), ref.betas)
    assert torch.equal(table(kind), ref.alphas_cumprod)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_timestep_spacings_equal_diffusers(spacing):
    for n in [1, 2, 3, 7, 10, 48, 50, 61, 100, 103, 250, 333, 999, 1000]:
        for cls in (DDPMScheduler, DDIMScheduler):
            ref = cls(timestep_spacing=spacing)
            ref.set_timesteps(n)
            # diffusers' trailing arange overshoots to n + 1 values (the last -1) for some n: we keep the first n
            assert torch.equal(timesteps(spacing, n), ref.timesteps[:n]), (spacing, n)
        # DPMSolverMultistep: our spacing with n + 1 steps minus its last timestep (leading, linspace), or ours
        dpm = DPMSolverMultistepScheduler(timestep_spacing=spacing)
        dpm.set_timesteps(n)
        if (dpm.timesteps[1:] < dpm.timesteps[:-1]).all():
            ours = timesteps(spacing, n) if spacing == "trailing" else timesteps(spacing, n + 1)[:-1]
            assert torch.equal(ours, dpm.timesteps[:n]), (spacing, n)
        else:  # diffusers' own grid repeats timesteps here (linspace n > 500, leading n = 1000): we refuse
            with pytest.raises(ConfigError, match="timesteps repeat at step"):
                timesteps(spacing, n + 1)


DDPM_CASES = [  # (steps, spacing, beta kind, variance, prediction)
    (10, "leading", "linear", "fixed_small", "epsilon"),
    (50, "trailing", "scaled_linear", "fixed_large", "epsilon"),
    (1000, "leading", "linear", "fixed_small", "epsilon"),
    (10, "linspace", "cosine", "fixed_small", "v"),
    (50, "leading", "linear", "fixed_large", "v"),
]


def in_float64(ref):
    """diffusers computes its coefficients from float32 ᾱ in float32; in float64 both sides do the same maths, so
    the comparison isolates the update equations (float32 agrees to ~1e-7 per step, see the float32 case)."""
    ref.alphas_cumprod = ref.alphas_cumprod.double()
    ref.one = ref.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return ref


@pytest.mark.parametrize("steps,spacing,kind,variance,prediction", DDPM_CASES)
def test_ddpm_matches_diffusers(steps, spacing, kind, variance, prediction, dtype=torch.float64):
    model = ToyModel(SHAPE[1], seed=1, t_scale=1000, dtype=dtype)
    ref = scheduler(DDPMScheduler, kind, clip_sample=False, variance_type=variance, timestep_spacing=spacing,
                    prediction_type="epsilon" if prediction == "epsilon" else "v_prediction")
    ref.set_timesteps(steps)
    if dtype == torch.float64:
        ref = in_float64(ref)
    x, g, ref_states = start_noise().to(dtype), torch.Generator().manual_seed(5), []
    for t in ref.timesteps:
        x = ref.step(model(x, t.expand(SHAPE[0])), t, x, generator=g).prev_sample
        ref_states.append(x)
    states, counter = [], NFECounter(model)
    out = ddpm(counter, start_noise().to(dtype), table(kind).to(dtype), timesteps(spacing, steps), variance=variance,
               prediction=prediction, generator=torch.Generator().manual_seed(5), callback=collect(states))
    assert max_rel_err(torch.stack(states), torch.stack(ref_states)) <= 1e-5
    assert max_rel_err(out, ref_states[-1]) <= 1e-5
    assert counter.nfe == steps


def test_ddpm_matches_diffusers_in_float32():
    test_ddpm_matches_diffusers(50, "leading", "linear", "fixed_small", "epsilon", dtype=torch.float32)


DDIM_CASES = [  # (steps, spacing, beta kind, eta, prediction)
    (10, "leading", "linear", 0.0, "epsilon"),
    (50, "leading", "scaled_linear", 0.0, "epsilon"),
    (1000, "leading", "linear", 0.0, "epsilon"),
    (10, "trailing", "linear", 1.0, "epsilon"),
    (50, "trailing", "cosine", 0.5, "v"),
    (1000, "trailing", "scaled_linear", 1.0, "v"),
]


@pytest.mark.parametrize("steps,spacing,kind,eta,prediction", DDIM_CASES)
def test_ddim_matches_diffusers(steps, spacing, kind, eta, prediction, dtype=torch.float64):
    model = ToyModel(SHAPE[1], seed=2, t_scale=1000, dtype=dtype)
    ref = scheduler(DDIMScheduler, kind, clip_sample=False, timestep_spacing=spacing,
                    prediction_type="epsilon" if prediction == "epsilon" else "v_prediction")
    ref.set_timesteps(steps)
    if dtype == torch.float64:
        ref = in_float64(ref)
    x, g, ref_states = start_noise(1).to(dtype), torch.Generator().manual_seed(6), []
    for t in ref.timesteps:
        x = ref.step(model(x, t.expand(SHAPE[0])), t, x, eta=eta, generator=g).prev_sample
        ref_states.append(x)
    states = []
    out = ddim(model, start_noise(1).to(dtype), table(kind).to(dtype), timesteps(spacing, steps), eta=eta,
               prediction=prediction, generator=torch.Generator().manual_seed(6), callback=collect(states))
    assert max_rel_err(torch.stack(states), torch.stack(ref_states)) <= 1e-5
    assert max_rel_err(out, ref_states[-1]) <= 1e-5


def test_ddim_matches_diffusers_in_float32():
    test_ddim_matches_diffusers(50, "trailing", "linear", 1.0, "epsilon", dtype=torch.float32)


@pytest.mark.parametrize("steps,spacing,kind", [(10, "linspace", "linear"), (50, "linspace", "scaled_linear"),
                                                (1000, "trailing", "linear"), (25, "leading", "cosine")])
def test_dpmpp_2m_matches_dpm_solver_multistep(steps, spacing, kind):
    """diffusers' default DPMSolverMultistep (dpmsolver++, order 2, midpoint, final sigma 0) is dpmpp_2m in σ-space."""
    model = ToyModel(SHAPE[1], seed=3, t_scale=1000, dtype=torch.float32)
    ref = scheduler(DPMSolverMultistepScheduler, kind, timestep_spacing=spacing)
    ref.set_timesteps(steps)
    x, ref_states = start_noise(2), []  # diffusers steps the VP state x_vp = x / sqrt(sigma^2 + 1)
    for t in ref.timesteps:
        x = ref.step(model(x, t.expand(SHAPE[0])), t, x).prev_sample
        ref_states.append(x)
    ts = timesteps(spacing, steps) if spacing == "trailing" else timesteps(spacing, steps + 1)[:-1]
    sigmas = sigmas_from_alpha_bar(table(kind), ts)
    assert torch.equal(sigmas, ref.sigmas)
    states = []
    denoiser = NFECounter(DiscreteDenoiser(model, table(kind)))
    get_sampler("dpmpp_2m")(denoiser, start_noise(2) * (sigmas[0] ** 2 + 1) ** 0.5, sigmas, callback=collect(states))
    vp = torch.stack([s / (sig**2 + 1) ** 0.5 for s, sig in zip(states, sigmas[1:])])
    assert max_rel_err(vp, torch.stack(ref_states)) <= 1e-5
    assert denoiser.nfe == steps


@pytest.mark.parametrize("steps,spacing,kind,prediction", [
    (10, "linspace", "linear", "epsilon"),
    (50, "linspace", "scaled_linear", "epsilon"),  # fractional timesteps: sigma interpolated, t recovered from it
    (1000, "linspace", "linear", "epsilon"),
    (50, "leading", "linear", "v"),
])
def test_euler_matches_euler_discrete(steps, spacing, kind, prediction):
    model = ToyModel(SHAPE[1], seed=4, t_scale=1000, dtype=torch.float32)
    ref = scheduler(EulerDiscreteScheduler, kind, timestep_spacing=spacing,
                    prediction_type="epsilon" if prediction == "epsilon" else "v_prediction")
    ref.set_timesteps(steps)
    x, ref_states = start_noise(3) * ref.init_noise_sigma, []
    for t in ref.timesteps:
        x = ref.step(model(ref.scale_model_input(x, t), t.expand(SHAPE[0])), t, x).prev_sample
        ref_states.append(x)
    if spacing == "linspace":  # EulerDiscrete's linspace is not rounded: fractional timesteps
        ts = torch.from_numpy(np.linspace(0, 999, steps, dtype=np.float32)[::-1].copy())
    else:
        ts = timesteps(spacing, steps)
    sigmas = sigmas_from_alpha_bar(table(kind), ts)
    assert torch.equal(sigmas, ref.sigmas)
    scale = sigmas[0] if spacing == "linspace" else (sigmas[0] ** 2 + 1) ** 0.5  # diffusers' init_noise_sigma
    states = []
    get_sampler("euler")(DiscreteDenoiser(model, table(kind), prediction), start_noise(3) * scale, sigmas,
                         callback=collect(states))
    assert max_rel_err(torch.stack(states), torch.stack(ref_states)) <= 1e-5


def test_discrete_denoiser_recovers_integer_and_fractional_timesteps():
    den = DiscreteDenoiser(ToyModel(3), table("linear"))
    ts = torch.tensor([999.0, 500.0, 20.387755, 0.0])
    sig = sigmas_from_alpha_bar(table("linear"), ts)[:-1]
    t = den.sigma_to_t(sig)
    assert torch.equal(t[[0, 1, 3]], torch.tensor([999.0, 500.0, 0.0], dtype=torch.float64))
    assert abs(t[2].item() - 20.387755) < 1e-4
