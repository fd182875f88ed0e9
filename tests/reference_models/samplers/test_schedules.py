"""Stable Audio's time grids, the v-objective ᾱ table and the schedule argument checks."""

import math

import pytest
import torch

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.samplers import (
    beta_schedule,
    get_sigmas,
    rf_times,
    sigma_table,
    timesteps,
    v_alpha_bar,
    v_ddim_times,
)


def test_rf_times_is_the_sao_logsnr_grid():
    # reference_models.md section 4: sample_rf with N = 8
    expected = [1, 0.9933, 0.9820, 0.9526, 0.8808, 0.7311, 0.5, 0.2689, 0]
    assert rf_times(8).tolist() == pytest.approx(expected, abs=5e-5)
    logsnr = torch.linspace(-6, 2, 101)
    inner = torch.sigmoid(-logsnr)[1:-1]
    assert torch.equal(rf_times(100)[1:-1], inner)


def test_rf_times_below_one_starts_at_t_max():
    t = rf_times(10, t_max=0.8)
    assert t[0].item() == pytest.approx(0.8) and t[-1].item() == 0
    # logSNR starts at ln((1 - t_max)/t_max + 1e-6), so t[1] sits one grid step below it
    lam = torch.linspace(math.log(0.25 + 1e-6), 2, 11)
    assert t[1].item() == pytest.approx(torch.sigmoid(-lam[1]).item(), rel=1e-6)


def test_v_ddim_times():
    assert v_ddim_times(4).tolist() == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert v_ddim_times(2, t_max=500.0).tolist() == pytest.approx([1.0, 0.5, 0.0])  # SAT clips sigma_max to 1


def test_v_alpha_bar_maps_index_i_to_t_equal_i_plus_1_over_T():
    ab = v_alpha_bar(1000)
    assert ab.dtype == torch.float64 and ab.shape == (1000,)
    assert ab[999].item() < 1e-30  # t = 1: pure noise
    assert ab[499].item() == pytest.approx(math.cos(math.pi * 0.5 / 2) ** 2)  # t = 0.5
    assert ab[0].item() == pytest.approx(math.cos(math.pi / 2000) ** 2)
    # sigma of the k-diffusion view is tan(pi t / 2)
    assert sigma_table(ab)[249].item() == pytest.approx(math.tan(math.pi * 0.25 / 2))


@pytest.mark.parametrize("call,match", [
    (lambda: get_sigmas("karras", 0, 0.1, 10.0), r"get_sigmas\('karras'\): the number of steps must be an integer"),
    (lambda: get_sigmas("cosine", 10, 0.1, 10.0), "unknown sigma schedule 'cosine'; choose one of karras, expo"),
    (lambda: get_sigmas("karras", 10, 10.0, 0.1), "need 0 < sigma_min < sigma_max"),
    (lambda: get_sigmas("exponential", 10, 0.1, 10.0, rho=2.0), "takes no rho"),
    (lambda: get_sigmas("polyexponential", 10, 0.1, 10.0, rho=0.0), "rho must be > 0"),
    (lambda: timesteps("leading", 0), r"timesteps\('leading'\): the number of steps must be an integer >= 1"),
    (lambda: timesteps("uniform", 10), "unknown timestep spacing 'uniform'; choose one of leading, trailing"),
    (lambda: timesteps("leading", 1500), r"timesteps repeat at step 1: timesteps\[0\] = timesteps\[1\] = 0 \(spacing "
                                         r"'leading' with n=1500, T=1000: use n <= T\)"),
    (lambda: timesteps("linspace", 1200), r"timesteps repeat at step \d+"),
    (lambda: timesteps("leading", 1000, steps_offset=1), r"timesteps must lie in \[0, 999\]"),
    (lambda: beta_schedule("sigmoid"), "unknown beta schedule 'sigmoid'; choose one of linear, scaled_linear, cosine"),
    (lambda: rf_times(0), "rf_times: the number of steps must be an integer >= 1"),
    (lambda: v_ddim_times(2.5), "v_ddim_times: the number of steps must be an integer >= 1"),
])
def test_bad_schedule_arguments(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
