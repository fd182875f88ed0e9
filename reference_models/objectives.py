"""Diffusion objectives (v, eps, rectified flow): noising, training targets, the x0
estimate, the loss, plus the training-time timestep samplers and CFG dropout of
stable-audio-tools (``training/diffusion.py``, ``inference/sampling.py``).

Time t is in [0, 1] (1 = pure noise). ``x0`` is data, ``noise`` is ε ~ N(0, I), both
``[B, C, L]``; ``t`` is ``[B]``.

- ``v`` (SAO-1.0): α = cos(πt/2), σ = sin(πt/2); x_t = α·x0 + σ·ε; target v = α·ε − σ·x0.
- ``eps``: the same α, σ; target ε (ᾱ(t) = α² for discrete-time samplers).
- ``rectified_flow`` / ``rf_denoiser`` (SAO-small, ARC post-trained): x_t = (1−t)·x0 + t·ε;
  target ε − x0; the two names train identically.
"""

from __future__ import annotations

import math

import torch

from t2mbench.core.errors import ConfigError


def _b(t: torch.Tensor) -> torch.Tensor:
    return t[:, None, None]


class Objective:
    """One parametrisation of the model output; subclasses give α(t), σ(t) and the target."""

    name = ""

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(α, σ)`` ``[B]`` with x_t = α·x0 + σ·ε."""
        raise NotImplementedError

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = α(t)·x0 + σ(t)·ε, ``[B, C, L]``."""
        alpha, sigma = self.alpha_sigma(t)
        return x0 * _b(alpha) + noise * _b(sigma)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the model learns to output at (x_t, t)."""
        raise NotImplementedError

    def denoised(self, x_t: torch.Tensor, output: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The x0 estimate from the model ``output`` at (x_t, t)."""
        raise NotImplementedError

    def guidance_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """The noise level upstream compares with ``cfg_interval``: σ(t)."""
        return self.alpha_sigma(t)[1]

    @staticmethod
    def loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """MSE over all elements, or over the frames where ``mask`` ``[B, L]`` is true."""
        err = (output - target) ** 2
        if mask is not None:
            err = err[mask[:, None, :].expand_as(err)]
        return err.mean()


class VObjective(Objective):
    """v-prediction on the cosine (trigonometric) schedule; x0 = α·x_t − σ·v."""

    name = "v"

    def alpha_sigma(self, t):
        return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)

    def target(self, x0, noise, t):
        alpha, sigma = self.alpha_sigma(t)
        return noise * _b(alpha) - x0 * _b(sigma)

    def denoised(self, x_t, output, t):
        alpha, sigma = self.alpha_sigma(t)
        return x_t * _b(alpha) - output * _b(sigma)


class EpsObjective(VObjective):
    """ε-prediction on the cosine schedule; x0 = (x_t − σ·ε̂)/α (α floored at 1e-4)."""

    name = "eps"

    def target(self, x0, noise, t):
        return noise

    def denoised(self, x_t, output, t):
        alpha, sigma = self.alpha_sigma(t)
        return (x_t - output * _b(sigma)) / _b(alpha.clamp(min=1e-4))


class RectifiedFlowObjective(Objective):
    """Rectified flow: velocity ε − x0; x0 = x_t − t·v."""

    name = "rectified_flow"

    def alpha_sigma(self, t):
        return 1 - t, t

    def target(self, x0, noise, t):
        return noise - x0

    def denoised(self, x_t, output, t):
        return x_t - output * _b(t)


OBJECTIVES: dict[str, type[Objective]] = {
    "v": VObjective,
    "eps": EpsObjective,
    "rectified_flow": RectifiedFlowObjective,
    "rf_denoiser": RectifiedFlowObjective,
}


def get_objective(name: str) -> Objective:
    """The objective called ``name`` (``rf_denoiser`` is rectified flow, named so upstream for
    the ARC post-trained few-step models)."""
    try:
        obj = OBJECTIVES[name]()
    except KeyError:
        raise ConfigError(f"unknown diffusion objective {name!r}; valid: {', '.join(OBJECTIVES)}") from None
    obj.name = name
    return obj


TIMESTEP_SAMPLERS = ("uniform", "logit_normal", "trunc_logit_normal", "log_snr")


class TimestepSampler:
    """Training timesteps t ``[n]`` in (0, 1).

    - ``uniform`` (upstream default): a scrambled 1-D Sobol sequence (low discrepancy within
      and across batches), scrambled from ``seed``; resumable through :meth:`state_dict`.
    - ``logit_normal``: sigmoid(N(0, 1)).
    - ``trunc_logit_normal``: the logit-normal truncated below at ``left_trunc`` (0.075),
      rescaled to [0, 1) and flipped (t → 1 − t), as upstream.
    - ``log_snr``: t = sigmoid(−λ), λ ~ N(mean_logsnr, std_logsnr) (−1.2, 2.0), clamped to
      [1e-4, 1 − 1e-4].
    """

    def __init__(
        self,
        kind: str = "uniform",
        *,
        seed: int = 0,
        mean_logsnr: float = -1.2,
        std_logsnr: float = 2.0,
        left_trunc: float = 0.075,
    ) -> None:
        if kind not in TIMESTEP_SAMPLERS:
            raise ConfigError(f"unknown timestep sampler {kind!r}; valid: {', '.join(TIMESTEP_SAMPLERS)}")
        self.kind, self.seed = kind, seed
        self.mean_logsnr, self.std_logsnr, self.left_trunc = mean_logsnr, std_logsnr, left_trunc
        self._sobol = torch.quasirandom.SobolEngine(1, scramble=True, seed=seed)

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` timesteps, float32 (the random kinds draw from ``generator``)."""
        if self.kind == "uniform":
            return self._sobol.draw(n, dtype=torch.float32)[:, 0]
        z = torch.randn(n, generator=generator)
        if self.kind == "logit_normal":
            return torch.sigmoid(z)
        if self.kind == "log_snr":
            return torch.sigmoid(-(z * self.std_logsnr + self.mean_logsnr)).clamp(1e-4, 1 - 1e-4)
        normal = torch.distributions.Normal(0.0, 1.0)
        lower = normal.cdf(torch.logit(torch.tensor(self.left_trunc)))
        u = lower + (1 - lower) * normal.cdf(z)
        s = torch.sigmoid(normal.icdf(u))
        return 1 - (s - self.left_trunc) / (1 - self.left_trunc)

    def state_dict(self) -> dict[str, int]:
        """How far the Sobol sequence has run (for resuming a training run)."""
        return {"seed": self.seed, "num_generated": int(self._sobol.num_generated)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the Sobol sequence where ``state`` left it."""
        self.seed = int(state["seed"])
        self._sobol = torch.quasirandom.SobolEngine(1, scramble=True, seed=self.seed)
        self._sobol.fast_forward(int(state["num_generated"]))


def shift_timesteps(
    t: torch.Tensor,
    seq_len: int,
    *,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
    min_length: int = 256,
    max_length: int = 4096,
) -> torch.Tensor:
    """Length-dependent time shift of rectified-flow models (upstream ``DistributionShift``):
    μ = −(base + (max − base)·(L − min)/(max − min)), t' = 1 − e^μ / (e^μ + 1/(1 − t) − 1)."""
    mu = -(base_shift + (max_shift - base_shift) * (seq_len - min_length) / (max_length - min_length))
    return 1 - math.exp(mu) / (math.exp(mu) + (1 / (1 - t) - 1))


def cfg_dropout(cross_attn_cond: torch.Tensor, prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training-time classifier-free-guidance dropout: each sample's whole cross-attention
    tensor ``[B, S, D]`` (text and timing tokens) is zeroed with probability ``prob``. The
    global (timing) conditioning is never dropped, as upstream."""
    if not 0.0 <= prob <= 1.0:
        raise ConfigError(f"cfg dropout probability must be in [0, 1], got {prob}")
    drop = torch.rand(cross_attn_cond.shape[0], generator=generator) < prob
    keep = (~drop).to(device=cross_attn_cond.device, dtype=cross_attn_cond.dtype)
    return cross_attn_cond * keep[:, None, None]


def diffusion_loss(
    model: torch.nn.Module,
    objective: Objective,
    x0: torch.Tensor,
    *,
    t: torch.Tensor,
    noise: torch.Tensor,
    cross_attn_cond: torch.Tensor | None = None,
    global_cond: torch.Tensor | None = None,
    cfg_dropout_prob: float = 0.0,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The training loss of one batch: noise ``x0`` to time ``t``, run the DiT (its
    cross-attention conditioning dropped per :func:`cfg_dropout`) and take the MSE to the
    objective's target."""
    x_t = objective.add_noise(x0, noise, t)
    if cross_attn_cond is not None and cfg_dropout_prob > 0:
        cross_attn_cond = cfg_dropout(cross_attn_cond, cfg_dropout_prob, generator)
    output = model(x_t, t, cross_attn_cond=cross_attn_cond, global_cond=global_cond)
    return objective.loss(output, objective.target(x0, noise, t), mask)
