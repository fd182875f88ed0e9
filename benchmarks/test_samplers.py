"""Sampler overhead per step, excluding the model, against one forward of the tiny model (CPU).

    pytest benchmarks/test_samplers.py --benchmark-enable --benchmark-only
    T2MBENCH_UPSTREAM_PYTHON=/work/fixenv/t291/bin/python pytest benchmarks/test_samplers.py --benchmark-enable \\
        --benchmark-only -k k_diffusion      # k-diffusion's own overhead, timed in a subprocess

The overhead run replaces the network by a free model that returns a precomputed output, so it times the
sampler, the denoiser wrapper and the batched classifier-free guidance (concatenation, split, combination):
everything a real run adds to the model. The tiny model's step is the DiT alone, one unguided clip
(batch 1: the smallest step, so the strictest bound). Requirement: overhead per step < 1% of that step.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import torch

import t2mbench.reference_models as rm
from t2mbench.reference_models.guidance import GuidedModel
from t2mbench.reference_models.samplers import (
    SAMPLERS,
    VDenoiser,
    alpha_bar,
    beta_schedule,
    continuous_time,
    get_sampler,
    get_sigmas,
    rf_times,
    timesteps,
    v_alpha_bar,
    v_ddim_times,
)

STEPS = 50
SIGMA_NAMES = [n for n, info in SAMPLERS.items() if info.space == "sigma"]


def best_of(fn, repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls, in seconds (the least disturbed run on a shared machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@pytest.fixture(scope="module")
def tiny():
    """The tiny model's DiT (random weights: the cost does not depend on them), its latents and conditioning."""
    model = rm.build("tiny")
    torch.manual_seed(0)
    x = torch.randn(1, 32, 320)  # 10.24 s at 31.25 latent frames per second
    cond = {"cross_attn_cond": torch.randn(1, 66, 384), "global_cond": torch.randn(1, 768)}
    return model.dit, x, cond


@pytest.fixture(scope="module")
def model_step(tiny):
    dit, x, cond = tiny
    t = torch.full((1,), 0.5)
    with torch.inference_mode():
        dit(x, t, **cond)
        return best_of(lambda: dit(x, t, **cond), 5)


def test_tiny_model_step(benchmark, tiny):
    dit, x, cond = tiny
    t = torch.full((1,), 0.5)
    with torch.inference_mode():
        benchmark.pedantic(lambda: dit(x, t, **cond), rounds=5, warmup_rounds=1)


def free_guided(x: torch.Tensor, cond: dict) -> GuidedModel:
    """CFG (scale 5, batched) around a network that costs nothing: returns a precomputed [2, C, L] output."""
    out = torch.randn(2, *x.shape[1:])
    return GuidedModel(lambda x, t, **c: out[: x.shape[0]], cond, scale=5.0)


def run_for(name: str, x: torch.Tensor, cond: dict):
    """A zero-argument call sampling ``STEPS`` steps with sampler ``name`` on the free guided model."""
    guided, g = free_guided(x, cond), torch.Generator().manual_seed(0)
    space, fn = SAMPLERS[name].space, get_sampler(name)
    if space == "sigma":
        sigmas = get_sigmas("polyexponential", STEPS, 0.3, 500.0, 1.0)
        return lambda: fn(VDenoiser(guided), x * 500.0, sigmas, generator=g)
    if space == "discrete":
        if name == "ddpm":
            ab = alpha_bar(beta_schedule("linear"))
            return lambda: fn(continuous_time(guided), x, ab, timesteps("trailing", STEPS), generator=g, prediction="v")
        return lambda: fn(continuous_time(guided), x, v_alpha_bar(), timesteps("trailing", STEPS), prediction="v")
    ts = v_ddim_times(STEPS) if space == "v" else rf_times(STEPS)
    return lambda: fn(guided, x, ts, generator=g)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_overhead_per_step(benchmark, tiny, model_step, name):
    _, x, cond = tiny
    run = run_for(name, x, cond)
    with torch.inference_mode():
        benchmark.pedantic(run, rounds=5, warmup_rounds=1)
        overhead = best_of(run, 5) / STEPS
    benchmark.extra_info.update({"overhead_per_step_s": overhead, "tiny_model_step_s": model_step,
                                 "ratio": overhead / model_step})
    print(f"{name}: {overhead * 1e6:.0f} us/step = {100 * overhead / model_step:.3f}% of {model_step * 1e3:.0f} ms")
    assert overhead < 0.01 * model_step, (
        f"{name}: {overhead * 1e6:.0f} us per step is {100 * overhead / model_step:.2f}% of a tiny-model step "
        f"({model_step * 1e3:.1f} ms)")


UPSTREAM = r"""
import json, sys, time, torch, k_diffusion as K
steps, names = int(sys.argv[1]), sys.argv[2].split(",")
torch.manual_seed(0)
x = torch.randn(1, 32, 320)
out = torch.randn(1, 32, 320)
den = K.external.VDenoiser(lambda x, t: out)
sigmas = K.sampling.get_sigmas_polyexponential(steps, 0.3, 500.0, 1.0)
res = {}
with torch.inference_mode():
    for name in names:
        fn, times = getattr(K.sampling, "sample_" + name), []
        for _ in range(5):
            start = time.perf_counter()
            fn(den, x * 500.0, sigmas, disable=True)
            times.append(time.perf_counter() - start)
        res[name] = min(times) / steps
print(json.dumps(res))
"""


@pytest.mark.parametrize("name", SIGMA_NAMES)
def test_overhead_vs_k_diffusion(benchmark, tiny, name):
    """Ours and k-diffusion 0.1.1's per-step overhead without CFG (k-diffusion's dpmpp_*_sde use a torchsde
    Brownian tree by default, ours i.i.d. noise: that is part of the comparison)."""
    python = os.environ.get("T2MBENCH_UPSTREAM_PYTHON")
    if not python:
        pytest.skip("T2MBENCH_UPSTREAM_PYTHON is not set: k-diffusion's side is skipped")
    _, x, _ = tiny
    out = torch.randn_like(x)
    den, sigmas = VDenoiser(lambda x, t: out), get_sigmas("polyexponential", STEPS, 0.3, 500.0, 1.0)
    fn, g = get_sampler(name), torch.Generator().manual_seed(0)
    with torch.inference_mode():
        benchmark.pedantic(lambda: fn(den, x * 500.0, sigmas, generator=g), rounds=5, warmup_rounds=1)
        ours = best_of(lambda: fn(den, x * 500.0, sigmas, generator=g), 5) / STEPS
    proc = subprocess.run([python, "-c", UPSTREAM, str(STEPS), name], capture_output=True, text=True, check=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    upstream = json.loads(proc.stdout.strip().splitlines()[-1])[name]
    benchmark.extra_info.update({"ours_per_step_s": ours, "k_diffusion_per_step_s": upstream})
    print(f"{name}: ours {ours * 1e6:.0f} us/step, k-diffusion {upstream * 1e6:.0f} us/step")
