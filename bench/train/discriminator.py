"""The VAE's adversary: EnCodec's multi-scale complex-STFT discriminator, as stable-audio-tools'
``EncodecDiscriminator`` uses it for Stable Audio's VAEs, and its hinge and feature-matching losses.

One scale (:class:`STFTDiscriminator`) takes the complex STFT of a mono signal (periodic Hann
window of ``n_fft``, hop ``n_fft/4``, not centred, scaled by 1/sqrt(Σ window²) as
``torchaudio.transforms.Spectrogram(normalized=True)``), stacks real and imaginary parts as two
input channels laid out ``[B, 2, frames, bins]``, and runs weight-normed 2-D convolutions with
LeakyReLU(0.2) between: (3, 9) from 2 to ``filters`` channels; one (3, 9) conv per dilation
(1, 2, 4 along time) with stride 2 along frequency; a (3, 3) conv; and a (3, 3) output conv to
one logit channel. Every activation before the output conv is a feature map for feature
matching. Upstream (audiocraft's ``MultiScaleSTFTDiscriminator``) runs three scales of 32
filters; the tiny VAE's config chooses fewer filters so the adversarial steps fit the CPU hour.

Losses over scales (the mean over scales of each term, as stable-audio-tools' ``get_hinge_losses``):

- discriminator: relu(1 − D(real)) + relu(1 + D(fake)), each the mean over logits;
- generator adversarial: relu(1 − D(fake)) mean;
- feature matching: for each feature map, mean |f_real − f_fake| / mean |f_real| (EnCodec's
  relative L1), averaged over the maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.reference_models.autoencoder import WeightNormed

LEAK = 0.2
DILATIONS = (1, 2, 4)


class WNConv2d(WeightNormed, nn.Conv2d):
    """Weight-normed Conv2d (keys ``weight_g`` ``[out, 1, 1, 1]``, ``weight_v``, ``bias``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normed_weight(), self.bias)


def _same(kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    return ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)


class STFTDiscriminator(nn.Module):
    """One scale: mono ``[N, T]`` → logits ``[N, 1, frames, bins']`` and the feature maps."""

    def __init__(self, n_fft: int, filters: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        k, square = (3, 9), (3, 3)
        convs = [WNConv2d(2, filters, k, padding=_same(k))]
        for d in DILATIONS:
            convs.append(WNConv2d(filters, filters, k, stride=(1, 2), dilation=(d, 1), padding=_same(k, (d, 1))))
        convs.append(WNConv2d(filters, filters, square, padding=_same(square)))
        self.convs = nn.ModuleList(convs)
        self.post = WNConv2d(filters, 1, square, padding=_same(square))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x, self.n_fft, self.n_fft // 4, window=self.window, center=False, return_complex=True)
        spec = spec / self.window.square().sum().sqrt()
        h = torch.stack([spec.real, spec.imag], 1).transpose(2, 3)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), LEAK)
            features.append(h)
        return self.post(h), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """One :class:`STFTDiscriminator` per FFT size, on ``[B, C, T]`` audio with channels folded
    into the batch."""

    def __init__(self, ffts: Sequence[int], filters: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList(STFTDiscriminator(int(n), int(filters)) for n in ffts)

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        x = audio.flatten(0, 1)
        return [scale(x) for scale in self.scales]


def adversarial_losses(
    discriminator: MultiScaleSTFTDiscriminator, real: torch.Tensor, fake: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``{"disc", "adv", "fm"}`` for ``[B, C, T]`` real and decoded audio, ready to be summed
    into one backward pass: ``disc`` reaches only the discriminator's parameters (it sees
    ``fake`` detached), ``adv`` and ``fm`` only the generator's (the discriminator's parameters
    are frozen while they are computed)."""
    real_out = discriminator(real)
    fake_out = discriminator(fake.detach())
    disc = torch.stack([F.relu(1 - r).mean() + F.relu(1 + f).mean()
                        for (r, _), (f, _) in zip(real_out, fake_out)]).mean()  # fmt: skip
    discriminator.requires_grad_(False)
    try:
        gen_out = discriminator(fake)
    finally:
        discriminator.requires_grad_(True)
    adv = torch.stack([F.relu(1 - f).mean() for f, _ in gen_out]).mean()
    fm = torch.stack([(a - b.detach()).abs().mean() / b.detach().abs().mean().clamp_min(1e-8)
                      for (_, fa), (_, fr) in zip(gen_out, real_out) for a, b in zip(fa, fr)]).mean()  # fmt: skip
    return {"disc": disc, "adv": adv, "fm": fm}
