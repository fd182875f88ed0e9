"""The DDIM table's rows pinned to their definitions (Song et al. 2021, eq. 16 and the σ̂ row):
σ_t(η) = η·√((1 − ᾱ_{t'})/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t'}) for ``ddim(eta=η)``; σ̂_t = √(1 − ᾱ_t/ᾱ_{t'})
(DDPM's larger variance β_t) for ``ddpm(variance="fixed_large")``; the posterior variance (η = 1) for
``ddpm(variance="fixed_small")``. Checked three ways: the step's injected noise against the closed forms,
η = 1 against DDPM's posterior variance trajectory for trajectory, and diffusers' own variances."""

import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from t2mbench.reference_models.samplers import alpha_bar, beta_schedule, ddim, ddpm, timesteps
from t2mbench.reference_models.samplers.schedules import v_alpha_bar

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers")

SHAPE = (4, 8, 64)
T1, T2 = 899, 0  # one step t -> t' = 0, then the last step from t = 0 (the paper's tau ends at t = 0)


def zero_eps(x, t):
    """ε ≡ 0: x0 = x/√ᾱ_t, so the step lands on √ᾱ_{t'}·x0 plus exactly the injected noise σ·z."""
    return torch.zeros_like(x)


def injected_std(sampler, ab, **options):
    """σ of the first step, read back from the output: x_final = x0 + σ·z/√ᾱ_{t'} with z the sampler's first draw."""
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = sampler(zero_eps, x, ab, torch.tensor([T1, T2]), generator=torch.Generator().manual_seed(9), **options)
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x0 = x / math.sqrt(ab[T1])
    ratio = (out - x0) * math.sqrt(ab[T2]) / z
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), atol=1e-9)  # one σ for every element
    return float(ratio.flatten()[0])


def closed_forms(ab):
    a_t, a_p = float(ab[T1]), float(ab[T2])
    sigma_hat = math.sqrt(1 - a_t / a_p)
    return {eta: eta * math.sqrt((1 - a_p) / (1 - a_t)) * sigma_hat for eta in (0.0, 0.2, 0.5, 1.0)}, sigma_hat


@pytest.mark.parametrize("name", ["tiny cosine (v_alpha_bar)", "linear (DDPM, CIFAR10)"])
def test_injected_noise_equals_the_closed_forms(name):
    ab = v_alpha_bar(1000) if name.startswith("tiny") else alpha_bar(beta_schedule("linear", 1000, 1e-4, 0.02))
    ab = ab.to(torch.float64)
    sigma_eta, sigma_hat = closed_forms(ab)
    for eta, expected in sigma_eta.items():
        assert injected_std(ddim, ab, eta=eta) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert injected_std(ddpm, ab, variance="fixed_large") == pytest.approx(sigma_hat, rel=1e-9)
    assert injected_std(ddpm, ab, variance="fixed_small") == pytest.approx(sigma_eta[1.0], rel=1e-9)
    # σ̂ is the larger: by √((1 − ᾱ_t)/(1 − ᾱ_{t'})), which is huge when t' = 0 (ᾱ_0 ≈ 1)
    assert sigma_hat / sigma_eta[1.0] == pytest.approx(math.sqrt((1 - ab[T1]) / (1 - ab[T2])), rel=1e-9)
    assert sigma_hat > 10 * sigma_eta[1.0]


def test_eta_one_is_ddpm_with_the_posterior_variance():
    """Same model, noise and generator on the tiny model's trailing grid: ddim(η=1) and ddpm(fixed_small) are one
    sampler (both draw once per step, the last one included, since the trailing grid ends at t = 99 > 0);
    ddpm(fixed_large) is not."""
    ab = v_alpha_bar(1000).to(torch.float64)
    ts = timesteps("trailing", 10, 1000)

    def model(x, t):
        return torch.tanh(x) * 0.3 + 0.01 * t[:, None, None].to(x.dtype) / 1000

    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    def g():
        return torch.Generator().manual_seed(5)

    run = {"eta1": ddim(model, x, ab, ts, eta=1.0, generator=g()),
           "small": ddpm(model, x, ab, ts, variance="fixed_small", generator=g()),
           "large": ddpm(model, x, ab, ts, variance="fixed_large", generator=g())}  # fmt: skip
    assert torch.allclose(run["eta1"], run["small"], atol=1e-9)
    assert (run["large"] - run["small"]).abs().max() > 0.05
    # the last step of the trailing grid (t = 99 -> clean) injects √(1 − ᾱ_99) under σ̂ and nothing under η = 1
    assert math.sqrt(1 - ab[99]) == pytest.approx(0.1564, abs=1e-4)


def test_diffusers_variances_are_the_table_rows():
    """diffusers' DDPM fixed_large / fixed_small and DDIM's σ² (times η²) are the closed forms on the strided grid."""
    kw = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}
    ab = alpha_bar(beta_schedule("linear", 1000, 1e-4, 0.02)).to(torch.float64)
    t, prev = 900, 800
    a_t, a_p = float(ab[t]), float(ab[prev])
    large = DDPMScheduler(variance_type="fixed_large", **kw)
    small = DDPMScheduler(variance_type="fixed_small", **kw)
    for s in (large, small):
        s.set_timesteps(10)  # leading: 900, 800, ..., 0 (the paper's tau)
    assert list(large.timesteps[:2]) == [900, 800] and int(large.timesteps[-1]) == 0
    assert float(large._get_variance(t, prev)) == pytest.approx(1 - a_t / a_p, rel=1e-5)
    assert float(small._get_variance(t, prev)) == pytest.approx((1 - a_p) / (1 - a_t) * (1 - a_t / a_p), rel=1e-5)
    ddim_s = DDIMScheduler(**kw)
    ddim_s.set_timesteps(10)
    for eta in (0.2, 0.5, 1.0):
        expected = eta * math.sqrt((1 - a_p) / (1 - a_t)) * math.sqrt(1 - a_t / a_p)
        assert eta * math.sqrt(float(ddim_s._get_variance(t, prev))) == pytest.approx(expected, rel=1e-5)


class TimeRecorder:
    """A v-model (v ≡ 0) recording the continuous times it is called at."""

    def __init__(self):
        self.times = []

    def __call__(self, x, t):
        self.times.append(float(t.flatten()[0]))
        return torch.zeros_like(x)


@pytest.mark.parametrize("sampler, options", [("ddim", {"eta": 0.0}), ("ddpm", {"variance": "fixed_large"})])
def test_the_linear_schedule_option_runs_the_papers_levels_at_the_models_own_times(sampler, options):
    from t2mbench.reference_models.samplers.registry import Grid, resolve

    x = torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    linear = alpha_bar(beta_schedule("linear", 1000).double())
    rec = TimeRecorder()
    resolve(sampler, "v")(rec, x, Grid(10), generator=torch.Generator().manual_seed(1),
                          options={**options, "schedule": "linear", "spacing": "leading"})
    levels = [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]  # the paper's τ for S = 10, ending at index 0
    # each level i at the time where the model's own α² = cos²(πt/2) equals the linear table's ᾱ_i
    assert [math.cos(math.pi * t / 2) ** 2 for t in rec.times] == pytest.approx([float(linear[i]) for i in levels],
                                                                                 rel=1e-12)
    rec = TimeRecorder()  # the default: the model's cosine table, trailing from t = 1, t = (i + 1)/1000
    resolve(sampler, "v")(rec, x, Grid(10), generator=torch.Generator().manual_seed(1), options=options)
    assert rec.times == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], abs=1e-12)


def test_sigma_hat_residual_noise_under_each_schedule():
    """What σ̂ leaves in the sample at S = 10 (the step into the last level, never removed): 0.324 on the paper's
    linear βs, 0.156 on the tiny model's cosine table (docs/reproducing_ddim.md)."""
    linear = alpha_bar(beta_schedule("linear", 1000).double())
    assert math.sqrt(1 - linear[100] / linear[0]) == pytest.approx(0.3237, abs=1e-4)
    assert math.sqrt(1 - v_alpha_bar(1000)[99]) == pytest.approx(0.1564, abs=1e-4)
