"""The model-to-denoiser wrappers and the continuous-to-discrete bridge, proven by exact identities between
samplers that step in different spaces, and by sampling an exactly known model."""

import math

import pytest
import torch
from support.sampler_models import ToyModel, max_rel_err

from t2mbench.reference_models.samplers import (
    EpsDenoiser,
    RFDenoiser,
    VDenoiser,
    continuous_time,
    ddim,
    ddpm,
    get_sampler,
    rf_euler,
    rf_times,
    sample_v,
    timesteps,
    v_alpha_bar,
    v_ddim,
    v_ddim_times,
)


def collect(states):
    return lambda d: states.append(d["x"])


def test_euler_on_vdenoiser_is_v_ddim():
    """DDIM (η = 0) is Euler on the probability-flow ODE in x/α and σ = tan(πt/2) (Karras et al. 2022, App. B.1)."""
    model, x = ToyModel(3, seed=1), torch.randn(2, 3, 7, dtype=torch.float64)
    t = v_ddim_times(12, t_max=0.9).double()
    ours, theirs = [], []
    v_ddim(model, x, t, callback=collect(theirs))
    sigmas = torch.tan(t * math.pi / 2)
    get_sampler("euler")(VDenoiser(model), x / math.cos(t[0].item() * math.pi / 2), sigmas, callback=collect(ours))
    alphas = torch.cos(t[1:] * math.pi / 2)
    assert max_rel_err(torch.stack([s * a for s, a in zip(ours, alphas)]), torch.stack(theirs)) < 1e-12


def test_euler_on_rfdenoiser_is_rf_euler():
    """For x_t = (1 − t)x0 + tε, Euler in t on x_t equals Euler in σ = t/(1 − t) on x_t/(1 − t)."""
    model, x = ToyModel(3, seed=2), torch.randn(2, 3, 7, dtype=torch.float64)
    t = rf_times(10, t_max=0.95).double()
    ours, theirs = [], []
    rf_euler(model, x, t, callback=collect(theirs))
    get_sampler("euler")(RFDenoiser(model), x / (1 - t[0].item()), t / (1 - t), callback=collect(ours))
    assert max_rel_err(torch.stack([s * (1 - tt) for s, tt in zip(ours, t[1:])]), torch.stack(theirs)) < 1e-12


def test_eps_denoiser_equals_vdenoiser_on_the_matching_v_model():
    """ε and v models that make the same prediction (v = (ε − σ_v·x_t)/α) give the same denoiser."""
    eps = ToyModel(3, seed=5)

    def v_model(x_t, t):
        a, s = torch.cos(t * math.pi / 2).view(-1, 1, 1), torch.sin(t * math.pi / 2).view(-1, 1, 1)
        return (eps(x_t, t) - s * x_t) / a

    x, sigma = torch.randn(4, 3, 5, dtype=torch.float64), torch.tensor([0.01, 0.7, 12.0, 500.0], dtype=torch.float64)
    assert max_rel_err(EpsDenoiser(eps)(x, sigma), VDenoiser(v_model)(x, sigma)) < 1e-10


@pytest.mark.parametrize("steps", [10, 50, 1000])
def test_ddim_on_v_alpha_bar_is_v_ddim(steps):
    """The v-model → ᾱ mapping: DDIM η = 0 with trailing timesteps walks exactly SAT's v-ddim grid."""
    model, x = ToyModel(3, seed=3), torch.randn(1, 3, 5, dtype=torch.float64)
    ours = ddim(continuous_time(model, 1000), x, v_alpha_bar(1000), timesteps("trailing", steps), prediction="v")
    assert max_rel_err(ours, v_ddim(model, x, v_ddim_times(steps).double())) < 1e-9


class GaussianV:
    """The exact v model of data x0 ~ N(0, s²): v̂ = α·E[ε|x_t] − σ·E[x0|x_t], α = cos(πt/2), σ = sin(πt/2)."""

    def __init__(self, s):
        self.s2 = s * s

    def __call__(self, x, t):
        a, sg = torch.cos(t * math.pi / 2).view(-1, 1, 1), torch.sin(t * math.pi / 2).view(-1, 1, 1)
        var = a * a * self.s2 + sg * sg
        return a * (sg * x / var) - sg * (a * self.s2 * x / var)


@pytest.mark.parametrize("name,steps", [("ddpm", 1000), ("ddim", 200), ("ddim_eta1", 500), ("v_ddim", 200),
                                        ("dpmpp_3m_sde", 100), ("heun", 30)])
def test_a_v_model_samples_its_data_distribution_with_every_family(name, steps):
    """A v model trained once (here: the exact one for N(0, 0.5²) data) is sampled correctly by DDPM and DDIM
    through the ᾱ mapping, by SAT's v-ddim and through VDenoiser by the σ-space samplers: sample std ≈ 0.5
    (the step counts keep the discretisation bias under 1.5%; the estimate's own error is 0.4%)."""
    model = GaussianV(0.5)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 8, 250, generator=g, dtype=torch.float64)
    discrete = continuous_time(model, 1000)
    if name == "ddpm":
        out = ddpm(discrete, x, v_alpha_bar(), timesteps("trailing", steps), prediction="v", generator=g)
    elif name.startswith("ddim"):
        out = ddim(discrete, x, v_alpha_bar(), timesteps("trailing", steps), prediction="v",
                   eta=1.0 if name == "ddim_eta1" else 0.0, generator=g)
    elif name == "v_ddim":
        out = v_ddim(model, x, v_ddim_times(steps).double())
    else:
        out = sample_v(model, x, sampler=name, steps=steps, sigma_min=0.01, sigma_max=100.0, generator=g)
    assert out.std().item() == pytest.approx(0.5, rel=0.02)
    assert abs(out.mean().item()) < 0.02
