"""Classifier-free guidance against stable-audio-tools 0.0.19's DiT CFG path (tests/fixtures/sat_cfg, made by
tools/fixtures/make_sat_cfg.py on the seeded ToyDiT), single calls and whole SAT sampling runs."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from support.sampler_models import ToyDiT, max_rel_err

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.guidance import GuidedModel, null_condition
from t2mbench.reference_models.samplers import NFECounter, sample_rf, sample_v

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "sat_cfg" / "sat_cfg.npz")
C, D, G = 4, 8, 6


def fx(key):
    return torch.from_numpy(FIX[key])


class Recorder:
    """The toy DiT, recording the keyword tensors of every call."""

    def __init__(self):
        self.toy, self.calls = ToyDiT(C, D, G, seed=3), []

    def __call__(self, x, t, **cond):
        self.calls.append({"x": x, "t": t, **cond})
        return self.toy(x, t, **cond)


def cond_dict():
    return {"cross_attn_cond": fx("cond"), "global_cond": fx("global")}


SINGLE = {  # name: GuidedModel keywords matching the SAT call in make_sat_cfg.py
    "scale1": {"scale": 1.0},
    "scale7": {"scale": 7.0},
    "phi07": {"scale": 4.0, "rescale_phi": 0.7},
    "negative": {"scale": 5.0},
    "interval_in": {"scale": 3.0, "interval": (0.2, 0.8)},
    "interval_out": {"scale": 3.0, "interval": (0.2, 0.8)},
    "rf_interval_in": {"scale": 3.0, "interval": (0.3, 0.7), "rescale_phi": 0.2, "objective": "rectified_flow"},
    "rf_interval_out": {"scale": 3.0, "interval": (0.3, 0.7), "objective": "rectified_flow"},
}


@pytest.mark.parametrize("name", SINGLE)
def test_single_call_equals_stable_audio_tools(name):
    model = Recorder()
    uncond = null_condition(cond_dict(), negative=fx("neg"), negative_mask=fx("mask")) if name == "negative" else None
    guided = GuidedModel(model, cond_dict(), uncond, **SINGLE[name])
    t = torch.full((2,), float(FIX[f"single__{name}__t"]), dtype=torch.float64)
    out = guided(fx("x"), t)
    assert max_rel_err(out, FIX[f"single__{name}__out"]) < 1e-12
    # one model call with the very batch SAT built: [cond; uncond] or cond alone, zeros or the masked negative
    assert len(model.calls) == 1 and guided.forwards == 1
    for key, value in model.calls[0].items():
        assert torch.equal(value, fx(f"call__{name}__{key}")), key


def test_uncond_branch_zeroes_tokens_and_keeps_global_cond():
    uncond = null_condition(cond_dict())
    assert torch.equal(uncond["cross_attn_cond"], torch.zeros_like(fx("cond")))
    assert torch.equal(uncond["global_cond"], fx("global"))
    neg = null_condition(cond_dict(), negative=fx("neg"), negative_mask=fx("mask"))["cross_attn_cond"]
    assert torch.equal(neg[0, 3:], torch.zeros(2, D, dtype=torch.float64)) and torch.equal(neg[1], fx("neg")[1])


def test_several_conditions_batched_in_one_call_with_separate_scales():
    model = Recorder()
    c1 = cond_dict()
    c2 = {"cross_attn_cond": fx("neg"), "global_cond": fx("global")}  # a second condition (e.g. text + control)
    guided = GuidedModel(model, c1, scale=2.0, more=[(c2, 1.5)], rescale_phi=0.3)
    x, t = fx("x"), torch.full((2,), 0.4, dtype=torch.float64)
    out = guided(x, t)
    assert len(model.calls) == 1 and model.calls[0]["x"].shape[0] == 6  # [c1; c2; uncond]
    toy = ToyDiT(C, D, G, seed=3)
    y1, y2 = toy(x, t, **c1), toy(x, t, **c2)
    u = toy(x, t, **null_condition(c1))
    cfg = u + 2.0 * (y1 - u) + 1.5 * (y2 - u)
    expected = 0.3 * cfg * y1.std(dim=1, keepdim=True) / cfg.std(dim=1, keepdim=True) + 0.7 * cfg
    assert torch.allclose(out, expected, rtol=1e-12, atol=1e-12)
    # nested guidance u + s1 (c1 - u) + s2 (c12 - c1) is scale s1 - s2 on c1 plus s2 on c12
    nested = GuidedModel(ToyDiT(C, D, G, seed=3), c1, scale=3.0 - 2.0, more=[(c2, 2.0)])(x, t)
    assert torch.allclose(nested, u + 3.0 * (y1 - u) + 2.0 * (y2 - y1), rtol=1e-12, atol=1e-12)


def replay(draws):
    it = iter(torch.from_numpy(draws))
    return lambda sigma, sigma_next: next(it)


SAMPLING = {  # name: (guidance keywords, sampling call)
    "sao_dpmpp_3m_sde": ({"scale": 7.0}, lambda m, n, ns: sample_v(m, n, noise_sampler=ns)),  # the model-card call
    "dpmpp_2m_sde_negative": ({"scale": 6.0, "negative": True}, lambda m, n, ns: sample_v(
        m, n, sampler="dpmpp_2m_sde", steps=30, sigma_min=0.01, sigma_max=100.0, noise_sampler=ns)),
    "heun_karras_like": ({"scale": 3.0, "rescale_phi": 0.5}, lambda m, n, ns: sample_v(
        m, n, sampler="heun", steps=12, sigma_min=0.5, sigma_max=50.0, rho=2.0)),
    "v_ddim": ({"scale": 5.0, "rescale_phi": 0.5, "interval": (0.1, 0.9)}, lambda m, n, ns: sample_v(
        m, n, sampler="v_ddim", steps=20, sigma_max=500.0)),
    "rf_pingpong": ({"scale": 1.0, "objective": "rectified_flow"}, lambda m, n, ns: sample_rf(m, n, noise_sampler=ns)),
    "rf_euler": ({"scale": 4.0, "interval": (0.2, 0.9), "objective": "rectified_flow"}, lambda m, n, ns: sample_rf(
        m, n, sampler="rf_euler", steps=50)),
}


@pytest.mark.parametrize("name", SAMPLING)
def test_sampling_run_equals_stable_audio_tools(name):
    kwargs, run = SAMPLING[name]
    kwargs = dict(kwargs)
    uncond = null_condition(cond_dict(), negative=fx("neg"), negative_mask=fx("mask")) if kwargs.pop(
        "negative", False) else None
    model = NFECounter(ToyDiT(C, D, G, seed=3))
    key = f"sample__{name}__"
    noise_sampler = replay(FIX[key + "draws"]) if key + "draws" in FIX else None
    out = run(GuidedModel(model, cond_dict(), uncond, **kwargs), fx("noise"), noise_sampler)
    assert max_rel_err(out, FIX[key + "out"]) <= 1e-5
    assert model.nfe == int(FIX[key + "nfe"])  # batched CFG calls count once, as SAT's _forward calls


def test_interval_is_in_the_objectives_sigma():
    guided = GuidedModel(ToyDiT(C, D, G), cond_dict(), scale=3.0, interval=(0.2, 0.5))
    assert guided.sigma(torch.tensor([1 / 3])) == pytest.approx(math.sin(math.pi / 6))  # v: sin(pi t / 2)
    rf = GuidedModel(ToyDiT(C, D, G), cond_dict(), scale=3.0, interval=(0.2, 0.5), objective="rectified_flow")
    assert rf.sigma(torch.tensor([0.3])) == pytest.approx(0.3)


@pytest.mark.parametrize("kwargs,match", [
    ({"interval": (0.6, 0.2)}, "interval must satisfy 0 <= lo <= hi <= 1"),
    ({"rescale_phi": 1.5}, r"rescale_phi must lie in \[0, 1\]"),
    ({"objective": "eps"}, "objective must be one of v, rectified_flow"),
    ({"more": [({"cross_attn_cond": None, "global_cond": None}, 2.0)]}, "'cross_attn_cond' is None in some"),
    ({"more": [({"cross_attn_cond": torch.zeros(2, 5, 8)}, 2.0)]}, "the same condition keys"),
])
def test_bad_guidance_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GuidedModel(ToyDiT(C, D, G), cond_dict(), scale=3.0, **kwargs)


def test_negative_of_wrong_shape():
    with pytest.raises(ConfigError, match=r"negative conditioning has shape \(1, 5, 8\), but cross_attn_cond has"):
        null_condition(cond_dict(), negative=torch.zeros(1, 5, 8))
