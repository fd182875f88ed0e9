"""Training task for the tiny Oobleck VAE (the ``pretransform`` of a model config).

Data: the corpus's ``train`` split decoded once at the model's rate and channel count. Step
``k`` draws ``batch_size`` clips and a random crop of ``crop_samples`` from each (all from the
step generator), encodes with the sampling bottleneck, decodes, and minimises

    loss = MR-STFT(decoded, input) + kl_weight · KL

where MR-STFT is :func:`multi_resolution_stft_loss` (spectral convergence + log magnitude,
averaged over FFT sizes, as auraloss's ``MultiResolutionSTFTLoss``) and KL is the VAE
bottleneck's term. Stable Audio's VAEs add A-weighting, sum/difference channels (stereo only)
and an adversarial + feature-matching loss; the tiny VAE is trained without the adversarial
part: the sweep's discriminator costs 4.4x per step on this 2-core CPU (1.53 s against 0.34 s),
which does not fit the one-hour budget. On an H100 it gave a better VAE (autoencoded
fd_evaluator 117 against 145 without it), the lead that docs/evidence/README.md records.

Init: with ``"init": "data_dependent"`` (the shipped config) the network starts from
:func:`data_dependent_init` instead of PyTorch's default, which upstream keeps. With the default
init the decoder's output is dominated by its biases: decoding zero latents and random latents
differ by 1.5% of the output's std, and after 4000 steps the decoder barely uses its latents
(MR-STFT on 16 test clips: 2.12 from their own latents, 2.50 from another clip's, 2.56 from
zeros). The same 4000 steps from the data-dependent init give 1.84 / 2.64 / 3.56. The H100
sweep that chose it is docs/measurements/h100_vae_init_sweep_2026-11-25.jsonl.

Command: ``t2mbench train vae --corpus CORPUS --out runs/tiny-vae [--config bench/train/configs/tiny-vae.json]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.train.data import load_split_audio, split_clips
from reference_models.autoencoder import (
    OobleckAutoencoder,
    ResidualUnit,
    WNConv1d,
    WNConvTranspose1d,
    vae_posterior,
)
from reference_models.factory import PRETRANSFORMS, load_config
from t2mbench.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "tiny-vae.json"


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, eps: float = 1e-8) -> torch.Tensor:
    """``sqrt(max(|STFT|², eps))`` of ``[N, T]`` with a periodic Hann of ``n_fft``, centred (reflect)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, n_fft, window, center=True, pad_mode="reflect", return_complex=True)
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=eps))


def multi_resolution_stft_loss(estimate: torch.Tensor, target: torch.Tensor, ffts: Sequence[int]) -> torch.Tensor:
    """Mean over ``ffts`` (hop = fft/4) of SC + LM on ``[B, C, T]`` signals, channels folded
    into the batch: SC = ‖|Y|−|X|‖_F/‖|Y|‖_F, LM = mean |ln|Y| − ln|X||, Y the target."""
    x, y = estimate.flatten(0, 1), target.flatten(0, 1)
    total = x.new_zeros(())
    for n in ffts:
        xm, ym = stft_magnitude(x, n, n // 4), stft_magnitude(y, n, n // 4)
        sc = torch.linalg.vector_norm(ym - xm) / torch.linalg.vector_norm(ym)
        lm = (torch.log(ym) - torch.log(xm)).abs().mean()
        total = total + sc + lm
    return total / len(ffts)


RESIDUAL_BRANCH_STD = 0.1  # a residual unit starts close to the identity


@torch.no_grad()
def data_dependent_init(model: OobleckAutoencoder, audio: torch.Tensor) -> None:
    """Weight normalisation's data-dependent init (Salimans & Kingma 2016), layer by layer in
    forward order: biases 0, then each conv's gain ``weight_g`` is rescaled so that its output
    has standard deviation 1 on ``audio`` ``[B, C, T]``; a residual unit's last conv gets
    ``RESIDUAL_BRANCH_STD`` and the decoder's output conv the std of ``audio``. The decoder's
    input is the posterior mean of ``audio``, so its output starts as a function of the latents."""
    convs = [m for m in model.modules() if isinstance(m, (WNConv1d, WNConvTranspose1d))]
    branch_ends = {id(m.layers[-1]) for m in model.modules() if isinstance(m, ResidualUnit)}
    decoder_convs = {id(m) for m in model.decoder.modules()}
    output_conv = convs[-1]
    for conv in convs:
        if conv.bias is not None:
            conv.bias.zero_()
    for conv in convs:
        if conv is output_conv:
            target = float(audio.std())
        else:
            target = RESIDUAL_BRANCH_STD if id(conv) in branch_ends else 1.0
        std = _output_std(model, conv, audio, through_decoder=id(conv) in decoder_convs)
        if not std > 0:
            raise ConfigError(
                "data-dependent init: the init batch is silent (the first crop_samples of 16 train clips);"
                " raise crop_samples or set the task's init to 'default'"
            )
        conv.weight_g.mul_(target / std)


def _output_std(
    model: OobleckAutoencoder, conv: torch.nn.Module, audio: torch.Tensor, *, through_decoder: bool
) -> torch.Tensor:
    """Std (0-d tensor) of ``conv``'s output when ``audio`` is encoded (and its posterior mean decoded)."""
    seen: list[torch.Tensor] = []
    hook = conv.register_forward_hook(lambda _m, _i, out: seen.append(out.std()))
    try:
        stats = model.encoder(audio)
        if through_decoder:
            model.decoder(vae_posterior(stats)[0])
    finally:
        hook.remove()
    return seen[0]


class VaeTask:
    """The :class:`bench.train.loop.TrainTask` of a model config's Oobleck VAE."""

    name = "vae"

    def __init__(self, corpus: str | Path, task: dict[str, Any], model: dict[str, Any], *, progress: bool = True):
        _, config = load_config(model["config"])
        self.block = config["model"]["pretransform"]
        self.sample_rate, self.channels = int(config["sample_rate"]), int(config["audio_channels"])
        ratio = int(self.block["config"]["downsampling_ratio"])
        self.crop = int(task["crop_samples"])
        if self.crop % ratio:
            raise ConfigError(f"crop_samples {self.crop} must be a multiple of the VAE's downsampling ratio {ratio}")
        self.batch_size = int(task["batch_size"])
        self.kl_weight = float(task["kl_weight"])
        self.ffts = tuple(int(n) for n in task["ffts"])
        self.init_seed = int(task.get("init_seed", 0))
        self.init = task.get("init", "default")
        if self.init not in ("default", "data_dependent"):
            raise ConfigError(f"init must be 'default' or 'data_dependent', got {self.init!r}")
        clips = split_clips(corpus, task.get("split", "train"))
        seconds = max(c.seconds or 0.0 for c in clips)
        n = max(self.crop, round(seconds * self.sample_rate))
        self.audio = load_split_audio(clips, self.sample_rate, self.channels, n, progress=progress)
        self.clips = clips

    def build(self) -> OobleckAutoencoder:
        torch.manual_seed(self.init_seed)
        model = PRETRANSFORMS[self.block["type"]](self.block, "vae").model
        if self.init == "data_dependent":
            data_dependent_init(model, self.init_batch())
        return model

    def init_batch(self, n: int = 16) -> torch.Tensor:
        """The first ``crop_samples`` of ``n`` clips evenly spaced over the split: ``[n, C, crop]``."""
        idx = torch.linspace(0, len(self.audio) - 1, min(n, len(self.audio))).round().long()
        return self.audio[idx, :, : self.crop]

    def batch(self, step: int, generator: torch.Generator) -> torch.Tensor:
        """``[batch_size, C, crop_samples]`` random crops of random clips."""
        n, _, t = self.audio.shape
        idx = torch.randint(n, (self.batch_size,), generator=generator)
        start = torch.randint(t - self.crop + 1, (self.batch_size,), generator=generator)
        return torch.stack([self.audio[i, :, s : s + self.crop] for i, s in zip(idx.tolist(), start.tolist())])

    def losses(self, model: OobleckAutoencoder, batch: torch.Tensor, generator: torch.Generator):
        latents, kl = model.encode(batch, generator=generator)
        stft = multi_resolution_stft_loss(model.decode(latents), batch, self.ffts)
        return {"loss": stft + self.kl_weight * kl, "mrstft": stft.detach(), "kl": kl.detach()}

    @torch.inference_mode()
    def latent_std(self, model: OobleckAutoencoder) -> float:
        """Standard deviation of the posterior means over the whole training split: the
        ``scale`` that gives the DiT unit-variance latents."""
        means = [vae_posterior(model.encoder(a))[0] for a in self.audio.split(8)]
        return float(torch.cat(means).std())
