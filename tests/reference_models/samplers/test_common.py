"""Bad input and numerical failure, for every sampler family: each a clear error naming the step."""

import math

import pytest
import torch
from support.sampler_models import ToyModel

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.samplers import (
    SAMPLERS,
    NFECounter,
    NonFiniteSampleError,
    VDenoiser,
    alpha_bar,
    ancestral_step,
    beta_schedule,
    ddim,
    ddpm,
    get_sampler,
    get_sigmas,
    rf_pingpong,
    rf_times,
    timesteps,
    v_ddim,
)
from t2mbench.reference_models.samplers.common import StepGuard

K_NAMES = [n for n, info in SAMPLERS.items() if info.space == "sigma"]
X = torch.randn(1, 3, 4)
DEN = VDenoiser(ToyModel(3, dtype=torch.float32))


@pytest.mark.parametrize("name", K_NAMES)
@pytest.mark.parametrize("sigmas,match", [
    (torch.tensor([10.0, 5.0, 6.0, 0.0]), "sigmas must decrease strictly, but step 1 goes from 5 to 6"),
    (torch.tensor([10.0, 5.0, 5.0, 0.0]), "sigmas must decrease strictly, but step 1 goes from 5 to 5"),
    (torch.tensor([10.0, 5.0, 1.0]), r"sigmas must end in 0 .*got sigmas\[2\] = 1; append a zero"),
    (torch.tensor([10.0]), r"sigmas holds 1 value\(s\): at least 2 \(one step\) are needed \(steps must be >= 1\)"),
    (torch.tensor([10.0, float("nan"), 0.0]), r"sigmas\[1\] = nan is not finite \(step 1\)"),
    (torch.ones(2, 3), "sigmas must be a 1-D tensor, got Tensor of shape"),
])
def test_bad_sigmas(name, sigmas, match):
    with pytest.raises(ConfigError, match=match):
        get_sampler(name)(DEN, X * 10, sigmas)


@pytest.mark.parametrize("call,match", [
    (lambda: v_ddim(ToyModel(3), X, torch.tensor([1.5, 0.5, 0.0])), r"ts\[0\] = 1.5 exceeds 1"),
    (lambda: rf_pingpong(ToyModel(3), X, torch.tensor([1.0, 0.2, 0.4, 0.0])), "ts must decrease strictly, but step 1"),
    (lambda: ddpm(ToyModel(3), X, alpha_bar(beta_schedule("linear")), torch.tensor([900, 500, 500, 0])),
     r"timesteps repeat at step 2: timesteps\[1\] = timesteps\[2\] = 500"),
    (lambda: ddim(ToyModel(3), X, alpha_bar(beta_schedule("linear")), torch.tensor([500, 900, 0])),
     "timesteps must decrease, but step 1 goes from 500 up to 900"),
    (lambda: ddim(ToyModel(3), X, alpha_bar(beta_schedule("linear")), torch.tensor([], dtype=torch.long)),
     "timesteps is empty"),
    (lambda: ddim(ToyModel(3), X, alpha_bar(beta_schedule("linear")), torch.tensor([999.0, 0.0])),
     "timesteps must be a 1-D integer tensor"),
    (lambda: ddpm(ToyModel(3), X, alpha_bar(beta_schedule("linear")), torch.tensor([1000, 0])),
     r"timesteps must lie in \[0, 999\]"),
    (lambda: ddpm(ToyModel(3), X, alpha_bar(beta_schedule("linear")), timesteps("leading", 10), variance="learned"),
     "variance must be one of fixed_small, fixed_large"),
    (lambda: ddim(ToyModel(3), X, alpha_bar(beta_schedule("linear")), timesteps("leading", 10), prediction="x0"),
     "prediction must be one of epsilon, v"),
    (lambda: ddim(ToyModel(3), X, alpha_bar(beta_schedule("linear")), timesteps("leading", 10), eta=2.0),
     r"eta must lie in \[0, 1\]"),
    (lambda: get_sampler("dpmpp_4m"), "unknown sampler 'dpmpp_4m'; known: euler, euler_ancestral, heun"),
])
def test_bad_input_other_families(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def nan_below(level, model):
    """A model that returns NaN once its noise level / time input falls below ``level``."""
    def broken(x, t):
        out = model(x, t)
        return out * float("nan") if t[0].item() < level else out
    return broken


@pytest.mark.parametrize("name", K_NAMES)
def test_nan_from_the_model_names_the_step(name):
    sigmas = get_sigmas("karras", 10, 0.01, 10.0)
    # VDenoiser passes t = atan(sigma)·2/π; sigmas[4] is the first below sigma = 1 (t = 0.5)
    first_bad = int((sigmas < 1.0).nonzero()[0])
    den = VDenoiser(nan_below(0.5, ToyModel(3, dtype=torch.float32)))
    if SAMPLERS[name].calls_per_step == 2:  # the second model call of step first_bad - 1 is already below sigma 1
        step, source = first_bad - 1, "estimate at the start of the step was finite, so the update \\(or a later"
    else:
        step, source = first_bad, "already non-finite"
    with pytest.raises(NonFiniteSampleError, match=rf"NaN or inf at step {step} of 10 \(sigma "
                                                   rf"{sigmas[step].item():g} -> .*{source}"):
        get_sampler(name)(den, X * 10, sigmas)


def test_overflow_in_the_update_is_told_apart():
    with pytest.raises(NonFiniteSampleError, match="at step 0 of 2 .*start of the step was finite, so the update"):
        get_sampler("euler")(lambda x, s: torch.full_like(x, 3e38), X, torch.tensor([1e-3, 1e-4, 0.0]))


@pytest.mark.parametrize("call,match", [
    (lambda: v_ddim(nan_below(0.45, ToyModel(3, dtype=torch.float32)), X, torch.linspace(1, 0, 11)),
     r"at step 6 of 10 \(t 0.4 -> 0.3\)"),
    (lambda: rf_pingpong(nan_below(0.5, ToyModel(3, dtype=torch.float32)), X, rf_times(8)),
     r"at step 7 of 8 \(t 0.268941 -> 0\)"),
    (lambda: ddim(nan_below(300, ToyModel(3, t_scale=1000, dtype=torch.float32)), X,
                  alpha_bar(beta_schedule("linear")), timesteps("leading", 10)),
     r"at step 7 of 10 \(timestep 200 -> 100\)"),
    (lambda: ddpm(nan_below(300, ToyModel(3, t_scale=1000, dtype=torch.float32)), X,
                  alpha_bar(beta_schedule("linear")), timesteps("leading", 10)),
     r"at step 7 of 10 \(timestep 200 -> 100\)"),
])
def test_nan_names_the_step_in_other_families(call, match):
    with pytest.raises(NonFiniteSampleError, match=match):
        call()


def test_ancestral_step_splits_the_variance():
    down, up = ancestral_step(2.0, 1.0)
    assert down**2 + up**2 == pytest.approx(1.0)
    assert up == pytest.approx(math.sqrt(1.0 * (4.0 - 1.0) / 4.0))
    assert ancestral_step(2.0, 1.0, eta=0.0) == (1.0, 0.0)


def test_stable_audio_stochastic_samplers_follow_the_generator():
    model = ToyModel(3, dtype=torch.float32)
    runs = [rf_pingpong(model, X, rf_times(8), generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])
    t = torch.linspace(1, 0, 9)
    runs = [v_ddim(model, X, t, eta=1.0, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])


def test_lagged_check_reads_each_flag_one_step_late_and_names_the_step():
    """The accelerator path (lag=True): step i's flag is read at the end of step i + 1 or by finish()."""
    levels, ok, bad = [4.0, 3.0, 2.0, 1.0, 0.0], torch.zeros(2), torch.tensor([0.0, float("nan")])
    seen = []
    guard = StepGuard(levels, NFECounter(ToyModel(3)), lambda d: seen.append(d["i"]), lag=True)
    guard(ok, 0, ok)
    guard(bad, 1, ok)  # not read yet
    with pytest.raises(NonFiniteSampleError, match=r"at step 1 of 4 \(sigma 3 -> 2\); the model's estimate at the "
                                                   r"start of the step was finite"):
        guard(ok, 2, ok)
    assert seen == [0, 1]
    last = StepGuard(levels, NFECounter(ToyModel(3)), None, lag=True)
    for i in range(3):
        last(ok, i, ok)
    assert last(bad, 3, bad) is bad
    with pytest.raises(NonFiniteSampleError, match=r"at step 3 of 4 \(sigma 1 -> 0\); .*already non-finite"):
        last.finish(bad)
