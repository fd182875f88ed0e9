"""Objectives (v, eps, rectified flow), training losses, timestep samplers and CFG dropout."""

import math

import pytest
import torch

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.objectives import (
    TimestepSampler,
    cfg_dropout,
    diffusion_loss,
    get_objective,
    shift_timesteps,
)


@pytest.mark.parametrize("name", ["v", "eps", "rectified_flow", "rf_denoiser"])
def test_target_inverts_to_the_data(name):
    obj = get_objective(name)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    t = torch.tensor([0.1, 0.5, 0.9])
    x_t = obj.add_noise(x0, noise, t)
    torch.testing.assert_close(obj.denoised(x_t, obj.target(x0, noise, t), t), x0, rtol=1e-5, atol=1e-5)


def test_v_objective_values():
    obj = get_objective("v")
    x0, noise, t = torch.full((1, 1, 1), 2.0), torch.full((1, 1, 1), -1.0), torch.tensor([1 / 3])
    a, s = math.cos(math.pi / 6), math.sin(math.pi / 6)  # t = 1/3: α = cos 30°, σ = sin 30°
    assert obj.add_noise(x0, noise, t).item() == pytest.approx(2 * a - s, rel=1e-6)
    assert obj.target(x0, noise, t).item() == pytest.approx(-a - 2 * s, rel=1e-6)
    assert obj.guidance_sigma(t).item() == pytest.approx(s)


def test_rectified_flow_values():
    obj = get_objective("rf_denoiser")
    x0, noise, t = torch.full((1, 1, 1), 2.0), torch.full((1, 1, 1), -1.0), torch.tensor([0.25])
    assert obj.add_noise(x0, noise, t).item() == pytest.approx(0.75 * 2 - 0.25)
    assert obj.target(x0, noise, t).item() == pytest.approx(-3.0)
    assert obj.guidance_sigma(t).item() == 0.25 and obj.name == "rf_denoiser"


def test_unknown_objective():
    with pytest.raises(
        ConfigError, match="unknown diffusion objective 'x0'; valid: v, eps, rectified_flow, rf_denoiser"
    ):
        get_objective("x0")


def test_masked_loss_uses_only_the_unmasked_frames():
    out, target = torch.zeros(1, 2, 4), torch.tensor([[[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]]])
    mask = torch.tensor([[True, True, False, False]])
    assert get_objective("v").loss(out, target, mask).item() == pytest.approx((1 + 4 + 1 + 1) / 4)
    assert get_objective("v").loss(out, target).item() == pytest.approx((1 + 4 + 9 + 16 + 4) / 8)


def test_diffusion_loss_is_zero_for_the_oracle_model():
    obj = get_objective("v")
    x0, noise, t = torch.randn(2, 3, 8), torch.randn(2, 3, 8), torch.tensor([0.3, 0.8])

    def oracle(x_t, tt, cross_attn_cond=None, global_cond=None):
        alpha, sigma = obj.alpha_sigma(tt)
        eps = (x_t - alpha[:, None, None] * x0) / sigma[:, None, None]
        return obj.target(x0, eps, tt)

    assert diffusion_loss(oracle, obj, x0, t=t, noise=noise).item() == pytest.approx(0.0, abs=1e-10)


def test_uniform_sampler_is_a_scrambled_sobol_sequence():
    s = TimestepSampler("uniform", seed=3)
    t = s.draw(8)
    # a (0, 3, 1)-net: each eighth of [0, 1) holds exactly one of the first 8 points
    assert sorted((t * 8).floor().long().tolist()) == list(range(8))
    assert torch.equal(TimestepSampler("uniform", seed=3).draw(8), t)
    assert not torch.equal(TimestepSampler("uniform", seed=4).draw(8), t)


def test_uniform_sampler_resumes():
    full = TimestepSampler("uniform", seed=1)
    first, rest = full.draw(5), full.draw(6)
    resumed = TimestepSampler("uniform", seed=99)
    part = TimestepSampler("uniform", seed=1)
    part.draw(5)
    resumed.load_state_dict(part.state_dict())
    assert torch.equal(resumed.draw(6), rest) and first.shape == (5,)


def test_random_samplers_follow_their_formulas():
    z = torch.randn(1000, generator=torch.Generator().manual_seed(5))
    t = TimestepSampler("logit_normal").draw(1000, torch.Generator().manual_seed(5))
    torch.testing.assert_close(t, torch.sigmoid(z))
    t = TimestepSampler("log_snr").draw(1000, torch.Generator().manual_seed(5))
    torch.testing.assert_close(t, torch.sigmoid(-(z * 2.0 - 1.2)).clamp(1e-4, 1 - 1e-4))
    t = TimestepSampler("trunc_logit_normal").draw(1000, torch.Generator().manual_seed(5))
    order = z.argsort()
    assert (t[order].diff() <= 0).all()  # flipped: larger z, smaller t
    assert 0 <= t.min() and t.max() <= 1


def test_unknown_timestep_sampler():
    with pytest.raises(ConfigError, match="unknown timestep sampler 'beta'; valid: uniform, logit_normal"):
        TimestepSampler("beta")


def test_distribution_shift_values():
    t = torch.tensor([0.5])
    # L = 256: mu = -0.5, t' = 1 - e^-0.5 / (e^-0.5 + 1)
    assert shift_timesteps(t, 256).item() == pytest.approx(1 - math.exp(-0.5) / (math.exp(-0.5) + 1), rel=1e-6)
    assert shift_timesteps(t, 4096).item() == pytest.approx(1 - math.exp(-1.15) / (math.exp(-1.15) + 1), rel=1e-6)


def test_cfg_dropout_drops_whole_samples():
    cond = torch.ones(64, 5, 3)
    out = cfg_dropout(cond, 0.5, torch.Generator().manual_seed(0))
    per_sample = out.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1).all(1)).all()  # all-or-nothing per sample
    assert 16 < (per_sample == 0).all(1).sum() < 48
    assert torch.equal(cfg_dropout(cond, 0.0), cond) and cfg_dropout(cond, 1.0).abs().sum() == 0
    with pytest.raises(ConfigError, match=r"cfg dropout probability must be in \[0, 1\], got 1.5"):
        cfg_dropout(cond, 1.5)
