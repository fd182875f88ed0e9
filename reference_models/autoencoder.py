"""The Oobleck VAE of Stable Audio Open: SnakeBeta activations, weight-normed convolutions,
and a VAE bottleneck, with stable-audio-tools' parameter names (``models/autoencoders.py``,
``models/bottleneck.py``, ``SnakeBeta`` from ``models/blocks.py``).

Audio is ``[B, io_channels, T]`` float at the model's sample rate; latents are
``[B, latent_dim, T / downsampling_ratio]``. The encoder emits ``2·latent_dim`` channels,
read as mean ‖ scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.errors import ConfigError

DILATIONS = (1, 3, 9)


def _snake_beta(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    a = alpha.exp()[None, :, None]
    inv_b = 1.0 / (beta.exp()[None, :, None] + 1e-9)
    return (x * a).sin_().square_().mul_(inv_b).add_(x)  # one buffer instead of four


class _SnakeBetaFunction(torch.autograd.Function):
    """SnakeBeta with a hand-written backward that keeps only ``x``: with a = e^α and
    b⁻¹ = 1/(e^β + 1e-9), dy/dx = 1 + a·b⁻¹·sin(2ax), dy/dα = a·b⁻¹·x·sin(2ax) and
    dy/dβ = −sin²(ax)·e^β/(e^β + 1e-9)². Faster than autograd's graph of the formula, which
    saves four intermediates and makes twice the passes over memory (docs/timing_history.md)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, alpha, beta)
        return _snake_beta(x, alpha, beta)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, alpha, beta = ctx.saved_tensors
        a, e_beta = alpha.exp(), beta.exp()
        inv_b = 1.0 / (e_beta + 1e-9)
        two_ax = x * (2 * a)[None, :, None]
        grad_sin = grad * torch.sin(two_ax)
        grad_x = torch.addcmul(grad, grad_sin, (a * inv_b)[None, :, None])
        grad_alpha = (grad_sin * x).sum((0, 2)) * a * inv_b
        sin_sq = two_ax.cos_().neg_().add_(1.0).mul_(0.5)  # sin²(ax) = (1 − cos 2ax) / 2
        grad_beta = (grad * sin_sq).sum((0, 2)) * (-e_beta * inv_b.square())
        return grad_x, grad_alpha, grad_beta


class SnakeBeta(nn.Module):
    """y = x + 1/(e^β + 1e-9) · sin²(e^α · x), per-channel log-scale ``alpha``, ``beta`` ``[C]``
    (both start at 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return _SnakeBetaFunction.apply(x, self.alpha, self.beta)
        return _snake_beta(x, self.alpha, self.beta)


class WeightNormed:
    """Mixin for a conv layer: weight normalisation over all but dim 0
    (``torch.nn.utils.weight_norm``, dim=0) with the upstream key names. The weight is
    ``weight_g · weight_v / ‖weight_v‖`` and only ``weight_g``, ``weight_v`` and ``bias`` are
    parameters. Call :meth:`_init_weight_norm` after the conv's ``__init__``."""

    def _init_weight_norm(self) -> None:
        v = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(v, dim=tuple(range(1, v.ndim)), keepdim=True))
        self.weight_v = nn.Parameter(v.clone())

    def normed_weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / torch.linalg.vector_norm(v, dim=tuple(range(1, v.ndim)), keepdim=True))


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1×1 Conv1d as one matrix product: ``weight`` ``[out, in, 1]``, x ``[B, in, L]`` ->
    ``[B, out, L]`` (about twice as fast as oneDNN's convolution for it on CPU)."""
    out = torch.matmul(weight[:, :, 0], x)
    return out if bias is None else out.add_(bias[:, None])


class WNConv1d(WeightNormed, nn.Conv1d):
    """Weight-normed Conv1d (keys ``weight_g`` ``[out, 1, 1]``, ``weight_v``, ``bias``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pointwise = self.kernel_size == (1,) and self.stride == (1,) and self.padding == (0,) and self.groups == 1
        if pointwise and not torch.is_grad_enabled():
            # training keeps oneDNN's convolution: the matmul's backward copies its transposes
            # (a tiny-VAE training step is 18% faster with the convolution on this CPU)
            return pointwise_conv(x, self.normed_weight(), self.bias)
        return self._conv_forward(x, self.normed_weight(), self.bias)


class WNConvTranspose1d(WeightNormed, nn.ConvTranspose1d):
    """Weight-normed ConvTranspose1d (keys ``weight_g`` ``[in, 1, 1]``, ``weight_v``, ``bias``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x,
            self.normed_weight(),
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )


class ResidualUnit(nn.Module):
    """x + [Snake, WNConv(k7, dilation d), Snake, WNConv(k1)](x)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            SnakeBeta(channels),
            WNConv1d(channels, channels, kernel_size=7, dilation=dilation, padding=3 * dilation),
            SnakeBeta(channels),
            WNConv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class EncoderBlock(nn.Module):
    """Three residual units (dilations 1, 3, 9), Snake, strided WNConv (k 2s, padding ⌈s/2⌉)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(ResidualUnit(c_in, d) for d in DILATIONS),
            SnakeBeta(c_in),
            WNConv1d(c_in, c_out, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DecoderBlock(nn.Module):
    """Snake, transposed WNConv (k 2s, stride s, padding ⌈s/2⌉), three residual units."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            SnakeBeta(c_in),
            WNConvTranspose1d(c_in, c_out, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
            *(ResidualUnit(c_out, d) for d in DILATIONS),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _widths(channels: int, c_mults: list[int], strides: list[int]) -> list[int]:
    if len(c_mults) != len(strides):
        raise ConfigError(f"oobleck: c_mults {c_mults} and strides {strides} must have the same length")
    if any(s % 2 for s in strides):
        raise ConfigError(f"oobleck: strides {strides} must be even (odd strides change the length)")
    return [channels * m for m in [1, *c_mults]]


class OobleckEncoder(nn.Module):
    """Audio ``[B, in_channels, T]`` -> ``[B, latent_dim, T / prod(strides)]`` (latent_dim is
    2× the VAE latent: mean ‖ scale). Widths ``channels·[1, *c_mults]``."""

    def __init__(
        self, in_channels: int, channels: int, c_mults: list[int], strides: list[int], latent_dim: int
    ) -> None:
        super().__init__()
        w = _widths(channels, c_mults, strides)
        self.strides = list(strides)
        self.layers = nn.Sequential(
            WNConv1d(in_channels, w[0], kernel_size=7, padding=3),
            *(EncoderBlock(w[i], w[i + 1], s) for i, s in enumerate(strides)),
            SnakeBeta(w[-1]),
            WNConv1d(w[-1], latent_dim, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OobleckDecoder(nn.Module):
    """Latents ``[B, latent_dim, L]`` -> audio ``[B, out_channels, L·prod(strides)]``; the last
    conv has no bias, and a Tanh follows only with ``final_tanh``."""

    def __init__(
        self,
        out_channels: int,
        channels: int,
        c_mults: list[int],
        strides: list[int],
        latent_dim: int,
        final_tanh: bool = True,
    ) -> None:
        super().__init__()
        w = _widths(channels, c_mults, strides)
        n = len(strides)
        self.layers = nn.Sequential(
            WNConv1d(latent_dim, w[-1], kernel_size=7, padding=3),
            *(DecoderBlock(w[i], w[i - 1], strides[i - 1]) for i in range(n, 0, -1)),
            SnakeBeta(w[0]),
            WNConv1d(w[0], out_channels, kernel_size=7, padding=3, bias=False),
            nn.Tanh() if final_tanh else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def vae_posterior(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split encoder output ``[B, 2D, L]`` into ``(mean, std)``, std = softplus(scale) + 1e-4."""
    mean, scale = stats.chunk(2, dim=1)
    return mean, F.softplus(scale) + 1e-4


def vae_kl(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL term of the VAE bottleneck as upstream computes it (no factor 1/2): the sum over
    channels of μ² + σ² − log σ² − 1, averaged over batch and latent frames."""
    var = std * std
    return (mean * mean + var - torch.log(var) - 1).sum(1).mean()


class OobleckAutoencoder(nn.Module):
    """Encoder + VAE bottleneck + decoder (the bottleneck has no parameters)."""

    def __init__(self, encoder: OobleckEncoder, decoder: OobleckDecoder, downsampling_ratio: int, io_channels: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.downsampling_ratio = downsampling_ratio
        self.io_channels = io_channels

    def encode(
        self,
        audio: torch.Tensor,
        *,
        sample: bool = True,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(latents, kl)`` for audio ``[B, io_channels, T]`` (T a multiple of the ratio).

        ``sample=False`` returns the posterior mean (deterministic, diffusers' ``mode()``);
        otherwise mean + std·ε with ε = ``noise`` or drawn from ``generator`` (upstream always
        samples, from the global RNG).
        """
        mean, std = vae_posterior(self.encoder(audio))
        kl = vae_kl(mean, std)
        if not sample:
            return mean, kl
        if noise is None:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return noise * std + mean, kl

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, io_channels, L·ratio]`` from latents ``[B, latent_dim, L]``."""
        return self.decoder(latents)


class AutoencoderPretransform(nn.Module):
    """The latent space the DiT works in: ``encode`` = VAE latents / scale, ``decode`` =
    VAE(latents · scale). ``iterate_batch`` runs the VAE one clip at a time (bounded memory,
    as upstream's SAO configs ask)."""

    def __init__(self, model: OobleckAutoencoder, scale: float = 1.0, iterate_batch: bool = False) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.iterate_batch = iterate_batch

    @property
    def downsampling_ratio(self) -> int:
        return self.model.downsampling_ratio

    def encode(self, audio: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None):
        """Latents ``[B, latent_dim, T / ratio]`` of audio ``[B, io_channels, T]``."""
        parts = audio.split(1) if self.iterate_batch else (audio,)
        z = torch.cat([self.model.encode(a, sample=sample, generator=generator)[0] for a in parts])
        return z / self.scale

    def posterior(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE posterior's ``(mean, std)``, each ``[B, latent_dim, T / ratio]``, in the DiT's latent space
        (divided by the scale), for audio ``[B, io_channels, T]``: one encoder pass for as many draws as wanted."""
        parts = audio.split(1) if self.iterate_batch else (audio,)
        stats = [vae_posterior(self.model.encoder(a)) for a in parts]
        return torch.cat([m for m, _ in stats]) / self.scale, torch.cat([s for _, s in stats]) / self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, io_channels, L·ratio]`` of latents ``[B, latent_dim, L]``."""
        z = latents * self.scale
        parts = z.split(1) if self.iterate_batch else (z,)
        return torch.cat([self.model.decode(p) for p in parts])
