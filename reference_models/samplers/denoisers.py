"""Wrappers that turn a model in its training parametrisation into a k-diffusion denoiser
``D(x, sigma) -> x0 estimate`` (x = x0 + σ·ε), and a continuous-time model into a discrete-time one.

Shapes: x ``[B, ...]`` (``[B, C, L]`` latents for the DiT), sigma ``[B]``; every wrapper returns a tensor
shaped like x. The wrapped model is called once per denoiser call, with the batch as given.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from t2mbench.core.errors import ConfigError

from .schedules import sigma_table

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _per_sample(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(sigma.shape + (1,) * (x.ndim - sigma.ndim))


def v_sigma_to_t(sigma: torch.Tensor) -> torch.Tensor:
    """v-objective time for a k-diffusion σ: t = atan(σ)·2/π (σ = tan(πt/2) = σ_v/α_v)."""
    return sigma.atan() * (2 / math.pi)


class VDenoiser:
    """A v-objective model ``v(x_t, t)`` (α = cos(πt/2), σ_v = sin(πt/2)) as a denoiser: k-diffusion's
    ``external.VDenoiser`` with σ_data = 1, which stable-audio-tools' ``sample_k`` uses.

    D(x, σ) = c_skip·x + c_out·v(c_in·x, atan(σ)·2/π), c_skip = 1/(σ² + 1), c_out = −σ/√(σ² + 1), c_in = 1/√(σ² + 1).
    """

    def __init__(self, model: Model):
        self.model = model

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = _per_sample(sigma, x)
        c_in = torch.rsqrt(s * s + 1)  # few, fused operations: on a GPU each costs a kernel launch per step
        return torch.addcmul(x * (c_in * c_in), self.model(x * c_in, v_sigma_to_t(sigma)), -s * c_in)


class EpsDenoiser:
    """A continuous-time ε model ``ε(x_t, t)`` on the same cosine schedule (α = cos(πt/2), σ_v = sin(πt/2)) as a
    denoiser: with σ = σ_v/α, x_t = x/√(σ² + 1) and t = atan(σ)·2/π, D(x, σ) = x − σ·ε(x_t, t).

    (For the discrete-time ε models of DDPM use ``DiscreteDenoiser``.)
    """

    def __init__(self, model: Model):
        self.model = model

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = _per_sample(sigma, x)
        return torch.addcmul(x, self.model(x * torch.rsqrt(s * s + 1), v_sigma_to_t(sigma)), -s)


class RFDenoiser:
    """A rectified-flow model ``u(x_t, t) ≈ ε − x0`` (x_t = (1 − t)·x0 + t·ε) as a denoiser.

    σ = t/(1 − t), so t = σ/(1 + σ) and x_t = x/(1 + σ); D(x, σ) = x_t − t·u(x_t, t). The σ-space samplers need a
    finite σ_max (t < 1); stable-audio-tools' own RF samplers (``stable_audio.rf_euler``, ``rf_pingpong``) start
    at t = 1.
    """

    def __init__(self, model: Model):
        self.model = model

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        t = sigma / (1 + sigma)
        x_t = x * _per_sample(1 - t, x)
        return x_t - self.model(x_t, t) * _per_sample(t, x)


class DiscreteDenoiser:
    """A discrete-time DDPM model ``model(x_vp, t)`` (ε or v prediction, ᾱ table ``[T]``) as a denoiser.

    x_vp = x/√(σ² + 1); ε-prediction D = x − σ·ε(x_vp, t); v-prediction uses VDenoiser's scalings.
    t is the (fractional) timestep whose σ, linearly interpolated in the table σ_t = √((1 − ᾱ_t)/ᾱ_t), equals σ:
    the inverse of ``schedules.sigmas_from_alpha_bar`` (diffusers' EulerDiscrete/DPMSolverMultistep convention;
    k-diffusion's DiscreteSchedule interpolates in log σ instead, which differs between table entries). It is
    exact on table entries, so integer timesteps come back as integers (as float). Clamped to [0, T − 1].
    """

    def __init__(self, model: Model, alpha_bar: torch.Tensor, prediction: str = "epsilon"):
        if prediction not in ("epsilon", "v"):
            raise ConfigError(f"prediction must be 'epsilon' or 'v', got {prediction!r}")
        self.model, self.prediction = model, prediction
        self.table = sigma_table(alpha_bar).double()

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional timestep ``[B]`` (float64) for σ ``[B]``."""
        if self.table.device != sigma.device:
            self.table = self.table.to(sigma.device)
        table, s = self.table, sigma.double()
        hi = torch.searchsorted(table, s).clamp(1, len(table) - 1)
        lo = hi - 1
        w = ((s - table[lo]) / (table[hi] - table[lo])).clamp(0, 1)
        return lo + w

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = _per_sample(sigma, x)
        c_in = torch.rsqrt(s * s + 1)
        out = self.model(x * c_in, self.sigma_to_t(sigma).to(x.dtype))
        if self.prediction == "epsilon":
            return torch.addcmul(x, out, -s)
        return torch.addcmul(x * (c_in * c_in), out, -s * c_in)


def trig_time(model: Model, alpha_bar: torch.Tensor) -> Model:
    """A continuous-time model on the cosine schedule (α = cos(πt/2)) seen as a discrete-time one over another ᾱ
    table ``[T]``: index i is the time t_i = (2/π)·arccos(√ᾱ_i), where the model's own α² equals ᾱ_i, so a DDPM/DDIM
    step over ``alpha_bar`` sees the model at exactly the noise level it assumes (``prediction="v"`` or ``"epsilon"``).
    """
    times = (2 / math.pi) * torch.arccos(alpha_bar.detach().double().cpu().clamp(0, 1).sqrt())

    def discrete(x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return model(x, times[i.cpu()].to(device=x.device, dtype=x.dtype))

    return discrete


def continuous_time(model: Model, T: int = 1000) -> Model:
    """A continuous-time model ``model(x, t ∈ [0, 1])`` seen as a discrete-time one ``(x, i)`` with t = (i + 1)/T.

    Pair with ``schedules.v_alpha_bar(T)`` to sample a v-objective model with ``ddpm``/``ddim`` (``prediction="v"``).
    """

    def discrete(x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return model(x, (i.to(x.dtype) + 1) / T)

    return discrete
