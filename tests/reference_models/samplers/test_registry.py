"""The sampler registry: one look-up (``resolve``) with exact error messages, options checked against the
sampler functions, DDPM's fixed_large variance in closed form, schedules built on the CPU, and plugins."""

import inspect
import math
from types import SimpleNamespace

import pytest
import torch
from support.sampler_models import ToyModel

from t2mbench.core import plugins
from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.samplers import (
    SAMPLERS,
    Grid,
    SamplerInfo,
    VDenoiser,
    alpha_bar,
    beta_schedule,
    ddpm,
    get_sigmas,
    registered,
    registry,
    resolve,
    sigma_runners,
    sigma_space,
)

ALL = ", ".join(SAMPLERS)
SIGMA = "euler, euler_ancestral, heun, dpm_2, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m_sde"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: resolve("dpm", "v"), f"unknown sampler 'dpm'; known: {ALL}"),
    (lambda: resolve("v_ddim", "eps"), f"sampler 'v_ddim' does not fit a eps model; use one of {SIGMA}, ddpm, ddim"),
    (lambda: resolve("ddim", "rectified_flow"),
     f"sampler 'ddim' does not fit a rectified_flow model; use one of {SIGMA}, rf_euler, rf_pingpong"),
    (lambda: resolve("ddim", "v").check_options({"etaa": 0.5}),
     "sampler 'ddim' has no option 'etaa'; its options: eta, schedule, spacing"),
    (lambda: resolve("euler", "v").check_options({"eta": 0.5}),
     "sampler 'euler' has no option 'eta'; its options: none"),
    (lambda: resolve("ddpm", "eps").check_options({"variance": "learned"}),
     "sampler 'ddpm': option variance='learned' must be one of fixed_small, fixed_large"),
    (lambda: resolve("ddim", "v").check_options({"eta": 2}), "sampler 'ddim': option eta=2 must be a number in [0, 1]"),
    (lambda: resolve("dpmpp_3m_sde", "v").check_options({"s_noise": float("nan")}),
     "sampler 'dpmpp_3m_sde': option s_noise=nan must be a number >= 0"),
    (lambda: resolve("dpmpp_2m_sde", "v").check_options({"eta": True}),
     "sampler 'dpmpp_2m_sde': option eta=True must be a number >= 0"),
])  # fmt: skip
def test_exact_errors(call, message):
    with pytest.raises(ConfigError) as error:
        call()
    assert str(error.value) == message


def test_options_are_canonical():
    assert resolve("ddim", "v").check_options({"eta": 1}) == {"eta": 1.0}
    assert resolve("ddim", "v").check_options(None) == {}
    assert resolve("dpmpp_2m_sde", "v").check_options({"solver_type": "heun"}) == {"solver_type": "heun"}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_entries_agree_with_their_functions(name):
    """Option defaults are the function's (or, for an option its runner consumes, such as DDPM/DDIM's schedule and
    spacing, the runner's), and a sampler takes a noise sampler exactly when its function does."""
    info = SAMPLERS[name]
    params = inspect.signature(info.fn).parameters
    for runner in info.runners.values():
        consumed = inspect.signature(runner).parameters
        assert {key: option.default for key, option in info.options.items()} == {
            key: (params[key] if key in params else consumed[key]).default for key in info.options
        }
    assert info.takes_noise_sampler == ("noise_sampler" in params)


def test_ddpm_fixed_large_is_beta_on_one_step():
    """One DDPM step t -> t - 1: fixed_large adds √β_t·z, fixed_small √β̃_t·z with β̃_t = β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t);
    the same generator draws the same z, so the two states differ by (√β_t − √β̃_t)·z."""
    betas = beta_schedule("linear", 1000, 1e-4, 0.02).double()  # so that 1 − ᾱ_t/ᾱ_{t−1} is β_t to 1e-13
    ab, t = alpha_bar(betas), 500
    x = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    after = {}
    for variance in ("fixed_small", "fixed_large"):
        ddpm(ToyModel(3, t_scale=1000), x, ab, torch.tensor([t, t - 1]), variance=variance,
             generator=torch.Generator().manual_seed(1),
             callback=lambda d, v=variance: after.setdefault(v, d["x"]))  # fmt: skip
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    beta, beta_tilde = betas[t].item(), (betas[t] * (1 - ab[t - 1]) / (1 - ab[t])).item()
    expected = z * (math.sqrt(beta) - math.sqrt(beta_tilde))
    torch.testing.assert_close(after["fixed_large"] - after["fixed_small"], expected, rtol=1e-7, atol=1e-12)


def test_registry_options_reach_the_sampler():
    model, x = ToyModel(3, t_scale=1.0), torch.randn(2, 3, 6, dtype=torch.float64)

    def run(name, **options):
        return resolve(name, "v")(model, x, Grid(3), generator=torch.Generator().manual_seed(0), options=options)

    assert torch.equal(run("ddim", eta=0.0), run("ddim"))
    assert not torch.equal(run("ddim", eta=1.0), run("ddim"))
    assert not torch.equal(run("ddpm", variance="fixed_large"), run("ddpm"))
    assert torch.equal(run("dpmpp_3m_sde", eta=1.0, s_noise=1.0), run("dpmpp_3m_sde"))
    assert not torch.equal(run("dpmpp_3m_sde", eta=0.5), run("dpmpp_3m_sde"))


def test_sigmas_are_built_on_the_cpu_whatever_the_sample_device():
    seen = {}

    def fake(denoiser, x, sigmas, **kwargs):
        seen.update(sigmas=sigmas, x=x, kwargs=kwargs)
        return x

    noise = torch.empty(1, 3, 4, device="meta")
    sigma_space(VDenoiser)(fake, ToyModel(3), noise, Grid(4, 0.3, 500.0), generator=None)
    assert seen["sigmas"].device.type == "cpu" and seen["x"].device.type == "meta"
    assert torch.equal(seen["sigmas"], get_sigmas("polyexponential", 4, 0.3, 500.0, 1.0))


def _plugins(monkeypatch, **objects):
    points = [SimpleNamespace(name=n, value=f"my_pkg:{n.upper()}", load=lambda o=o: o) for n, o in objects.items()]
    monkeypatch.setattr(plugins, "entry_points", lambda group: points if group == "t2mbench.samplers" else [])
    monkeypatch.setattr(registry.REGISTRY, "_cache", None)


def test_plugin_sampler_is_resolved(monkeypatch):
    mine = SamplerInfo(SAMPLERS["euler"].fn, "sigma", "Euler again, from a plugin", sigma_runners())
    _plugins(monkeypatch, my_euler=mine)
    assert list(registered())[-1] == "my_euler" and resolve("my_euler", "eps").info is mine
    with pytest.raises(ConfigError, match="does not fit a rf_denoiser model; use one of .*, rf_pingpong, my_euler$"):
        resolve("v_ddim", "rf_denoiser")


@pytest.mark.parametrize(("objects", "message"), [
    ({"euler": SAMPLERS["ddim"]}, "sampler plugin 'euler' (my_pkg:EULER) repeats a built-in sampler name; rename it"),
    ({"odd": object()}, "sampler plugin 'odd' (my_pkg:ODD) is a object, not a SamplerInfo"),
])  # fmt: skip
def test_bad_plugins(monkeypatch, objects, message):
    _plugins(monkeypatch, **objects)
    with pytest.raises(ConfigError) as error:
        resolve("euler", "v")
    assert str(error.value) == message
