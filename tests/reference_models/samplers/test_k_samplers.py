"""σ-space samplers against k-diffusion 0.1.1 trajectories (tests/fixtures/kdiffusion, made by
tools/fixtures/make_kdiffusion.py), with k-diffusion's recorded noise replayed."""

from pathlib import Path

import numpy as np
import pytest
import torch
from support.sampler_models import ToyModel, max_rel_err

from t2mbench.reference_models.samplers import SAMPLERS, NFECounter, VDenoiser, get_sampler, get_sigmas

FIX = np.load(Path(__file__).parents[2] / "fixtures" / "kdiffusion" / "kdiffusion.npz")
K_NAMES = ["euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde"]
STOCHASTIC = {"euler_ancestral", "dpmpp_2m_sde", "dpmpp_3m_sde"}


def replay(draws: np.ndarray, dtype: torch.dtype = torch.float64):
    """A noise sampler returning the recorded draws in order; ``calls`` counts them."""
    it = iter(torch.from_numpy(draws).to(dtype))

    def sampler(sigma, sigma_next):
        sampler.calls += 1
        return next(it)

    sampler.calls = 0
    return sampler


@pytest.mark.parametrize("steps", [10, 50, 1000])
@pytest.mark.parametrize("seed,name", list(enumerate(K_NAMES)))
def test_trajectory_matches_k_diffusion(name, seed, steps):
    key = f"{name}__{steps}__"
    sigmas = torch.from_numpy(FIX[key + "sigmas"])
    x = torch.from_numpy(FIX[key + "x_init"])
    states = []
    denoiser = NFECounter(VDenoiser(ToyModel(x.shape[1], seed=seed)))
    kwargs = {"noise_sampler": replay(FIX[key + "noise"])} if name in STOCHASTIC else {}
    out = get_sampler(name)(denoiser, x, sigmas, callback=lambda d: states.append(d["x"]), **kwargs)
    traj = torch.stack([states[i] for i in FIX[key + "idx"]])
    assert max_rel_err(traj, FIX[key + "traj"]) <= 1e-5
    assert max_rel_err(out, FIX[key + "traj"][-1]) <= 1e-5
    assert torch.equal(out, states[-1])
    # NFE: k-diffusion's count, the registry's formula (Heun and DPM-2: 2N - 1), and the callback's running count
    assert denoiser.nfe == int(FIX[key + "nfe"]) == SAMPLERS[name].nfe(steps)
    if name in STOCHASTIC:  # every recorded draw consumed (no noise on the last step to sigma = 0)
        assert kwargs["noise_sampler"].calls == len(FIX[key + "noise"]) == steps - 1


def test_heun_nfe_is_2n_minus_1_and_callback_reports_it():
    seen = []
    sigmas = get_sigmas("karras", 7, 0.1, 10.0)
    denoiser = VDenoiser(ToyModel(3, dtype=torch.float32))
    get_sampler("heun")(denoiser, torch.randn(1, 3, 4) * 10, sigmas, callback=lambda d: seen.append(d["nfe"]))
    assert seen == [2, 4, 6, 8, 10, 12, 13]


@pytest.mark.parametrize("kind,key,args", [
    ("karras", "karras_10", (10, 0.002, 80.0)),
    ("karras", "karras_1000", (1000, 0.002, 80.0)),
    ("karras", "karras_rho3_7", (7, 0.1, 14.6, 3.0)),
    ("exponential", "exponential_50", (50, 0.1, 50.0)),
    ("polyexponential", "polyexponential_100", (100, 0.3, 500.0, 1.0)),
    ("polyexponential", "polyexponential_rho2_25", (25, 0.05, 20.0, 2.0)),
])
def test_sigma_schedules_equal_k_diffusion(kind, key, args):
    ours = get_sigmas(kind, *args)
    ref = FIX[f"schedule__{key}"]
    assert ours.dtype == torch.float32 and ours.shape == ref.shape
    # equal to the float32 ulp: torch's vectorised exp rounds the last bit differently on
    # AVX2 and AVX-512 CPUs (1 ulp in 2 of 50 entries, measured); computing in float64 and
    # casting, as a port might, is 3 ulps off
    ulps = (ours.view(torch.int32).long() - torch.from_numpy(ref).view(torch.int32).long()).abs()
    assert ulps.max() <= 1


def test_sao_schedule_endpoints():
    sigmas = get_sigmas("polyexponential", 100, 0.3, 500.0, 1.0).double()
    assert sigmas[0].item() == pytest.approx(500.0, rel=1e-6) and sigmas[99].item() == pytest.approx(0.3, rel=1e-6)
    ratio = sigmas[1:100] / sigmas[:99]  # log-linear: constant ratio 0.9278 (h = 0.0749), spec section 4
    assert torch.allclose(ratio, torch.full_like(ratio, (0.3 / 500) ** (1 / 99)), rtol=1e-5)
    assert (0.3 / 500) ** (1 / 99) == pytest.approx(0.9278, abs=1e-4)


def test_vdenoiser_matches_k_diffusion():
    x, sigma = torch.from_numpy(FIX["vdenoiser__x"]), torch.from_numpy(FIX["vdenoiser__sigma"])
    assert max_rel_err(VDenoiser(ToyModel(3, seed=11))(x, sigma), FIX["vdenoiser__out"]) < 1e-12


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_stochastic_samplers_are_deterministic_per_generator_seed(name):
    sigmas = get_sigmas("karras", 8, 0.05, 20.0)
    x = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0)) * 20
    fn, den = get_sampler(name), VDenoiser(ToyModel(3, dtype=torch.float32))
    a = fn(den, x, sigmas, generator=torch.Generator().manual_seed(1))
    b = fn(den, x, sigmas, generator=torch.Generator().manual_seed(1))
    c = fn(den, x, sigmas, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    # the generator's draws are the i.i.d. N(0, I) noise, one per noisy step in step order
    g = torch.Generator().manual_seed(1)
    draws = np.stack([torch.randn(x.shape, generator=g).numpy() for _ in range(7)])
    assert torch.allclose(fn(den, x, sigmas, noise_sampler=replay(draws, torch.float32)), a, atol=0, rtol=0)


def test_float32_trajectory_close_to_float64():
    key = "dpmpp_3m_sde__50__"
    sigmas, x = torch.from_numpy(FIX[key + "sigmas"]), torch.from_numpy(FIX[key + "x_init"])
    den = VDenoiser(ToyModel(3, seed=6, dtype=torch.float32))
    noise = replay(FIX[key + "noise"], torch.float32)
    out = get_sampler("dpmpp_3m_sde")(den, x.float(), sigmas.float(), noise_sampler=noise)
    assert out.dtype == torch.float32
    assert max_rel_err(out, FIX[key + "traj"][-1]) < 1e-4
