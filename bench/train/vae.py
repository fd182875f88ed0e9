"""Training task for the tiny Oobleck VAE (the ``pretransform`` of a model config).

Data: the corpus's ``train`` split decoded once at the model's rate and channel count. Step
``k`` draws ``batch_size`` clips and a random crop of ``crop_samples`` from each (all from the
step generator), encodes with the sampling bottleneck, decodes, and minimises

    loss = MR-STFT(decoded, input) + mel_weight · mel(decoded, input) + kl_weight · KL

where MR-STFT is :func:`multi_resolution_stft_loss` (spectral convergence + log magnitude,
averaged over FFT sizes, as auraloss's ``MultiResolutionSTFTLoss``), mel is
:func:`multi_scale_mel_loss` (DAC's multi-scale log-mel L1) and KL is the VAE bottleneck's term.
Stable Audio's VAEs add A-weighting, sum/difference channels (stereo only) and an adversarial +
feature-matching loss. The adversarial part is here (a ``discriminator`` block: EnCodec's
multi-scale STFT discriminator, :mod:`t2mbench.bench.train.discriminator`); the shipped config
trains without it, because at equal training time on a CPU it gives a worse VAE. The mel term
costs nothing measurable per step and lowers the autoencoded FD. ``"compile": true`` in the
train block compiles the encoder and decoder (faster steps for a one-off compile at step 0).

Init: with ``"init": "data_dependent"`` (the shipped config) the network starts from
:func:`data_dependent_init` instead of PyTorch's default, which upstream keeps: with the default
init the decoder's output is dominated by its biases and the trained decoder barely uses its
latents. The reasons are in docs/decisions.md, the measurements in docs/timing_history.md.

Command: ``t2mbench train vae --corpus CORPUS --out runs/tiny-vae [--config bench/train/configs/tiny-vae.json]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch

from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.train.discriminator import MultiScaleSTFTDiscriminator, adversarial_losses
from t2mbench.core.dsp.filterbanks import mel_filterbank
from t2mbench.core.dsp.stft import stft_magnitude
from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.autoencoder import (
    OobleckAutoencoder,
    ResidualUnit,
    WNConv1d,
    WNConvTranspose1d,
    vae_posterior,
)
from t2mbench.reference_models.factory import PRETRANSFORMS, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "tiny-vae.json"
DISCRIMINATOR_KEYS = ("ffts", "filters", "adv_weight", "fm_weight")


Spectra = dict[int, tuple[torch.Tensor, torch.Tensor]]


def stft_pairs(estimate: torch.Tensor, target: torch.Tensor, ffts: Sequence[int]) -> Spectra:
    """``{n_fft: (|STFT(estimate)|, |STFT(target)|)}`` (hop = fft/4) of ``[B, C, T]`` signals,
    channels folded into the batch: computed once per FFT size for every loss that needs it."""
    x, y = estimate.flatten(0, 1), target.flatten(0, 1)
    return {n: (stft_magnitude(x, n, n // 4), stft_magnitude(y, n, n // 4)) for n in dict.fromkeys(ffts)}


def multi_resolution_stft_loss(
    estimate: torch.Tensor, target: torch.Tensor, ffts: Sequence[int], spectra: Spectra | None = None
) -> torch.Tensor:
    """Mean over ``ffts`` (hop = fft/4) of SC + LM on ``[B, C, T]`` signals, channels folded
    into the batch: SC = ‖|Y|−|X|‖_F/‖|Y|‖_F, LM = mean |ln|Y| − ln|X||, Y the target.
    ``spectra`` (:func:`stft_pairs` of the same signals) skips recomputing the STFTs."""
    spectra = spectra or stft_pairs(estimate, target, ffts)
    total = estimate.new_zeros(())
    for n in ffts:
        xm, ym = spectra[n]
        sc = torch.linalg.vector_norm(ym - xm) / torch.linalg.vector_norm(ym)
        lm = (torch.log(ym) - torch.log(xm)).abs().mean()
        total = total + sc + lm
    return total / len(ffts)


MEL_FLOOR = 1e-5  # magnitude floor of the mel loss (DAC's clamp_eps)


@cache
def _mel_bank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    return torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)).float()


def multi_scale_mel_loss(
    estimate: torch.Tensor, target: torch.Tensor, sample_rate: int, ffts: Sequence[int], n_mels: Sequence[int],
    spectra: Spectra | None = None,
) -> torch.Tensor:
    """Mean over scales (``ffts[i]`` with ``n_mels[i]`` Slaney mels, hop = fft/4) of
    mean |log10 max(M_x, 1e-5) − log10 max(M_y, 1e-5)| on ``[B, C, T]`` signals at
    ``sample_rate`` Hz, M = mel filterbank · |STFT| (DAC's multi-scale mel loss).
    ``spectra`` (:func:`stft_pairs` of the same signals) skips recomputing the STFTs."""
    spectra = spectra or stft_pairs(estimate, target, ffts)
    total = estimate.new_zeros(())
    for n, m in zip(ffts, n_mels, strict=True):
        bank = _mel_bank(sample_rate, n, m).to(estimate)
        xm, ym = (bank @ mag for mag in spectra[n])
        total = total + (xm.clamp_min(MEL_FLOOR).log10() - ym.clamp_min(MEL_FLOOR).log10()).abs().mean()
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
    """The :class:`t2mbench.bench.train.loop.TrainTask` of a model config's Oobleck VAE."""

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
        self.mel_weight = float(task.get("mel_weight", 0.0))
        self.mel_ffts = tuple(int(n) for n in task.get("mel_ffts", ()))
        self.mel_bins = tuple(int(n) for n in task.get("mel_bins", ()))
        if len(self.mel_ffts) != len(self.mel_bins) or (self.mel_weight and not self.mel_ffts):
            raise ConfigError(f"mel_ffts {list(self.mel_ffts)} and mel_bins {list(self.mel_bins)} must be"
                              " non-empty lists of the same length when mel_weight is set")
        self.init_seed = int(task.get("init_seed", 0))
        self.discriminator = dict(task.get("discriminator") or {})
        missing = [k for k in DISCRIMINATOR_KEYS if k not in self.discriminator]
        if self.discriminator and missing:
            raise ConfigError(f"discriminator block misses {missing}; it needs {list(DISCRIMINATOR_KEYS)}")
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

    def compile(self, model: OobleckAutoencoder) -> None:
        """Compile the encoder and decoder in place (``nn.Module.compile``: state-dict keys unchanged)."""
        model.encoder.compile()
        model.decoder.compile()

    def build_critic(self) -> MultiScaleSTFTDiscriminator | None:
        """The seeded discriminator of the ``discriminator`` block (None without one)."""
        if not self.discriminator:
            return None
        torch.manual_seed(self.init_seed + 1)
        return MultiScaleSTFTDiscriminator(self.discriminator["ffts"], self.discriminator["filters"])

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

    def losses(self, model: OobleckAutoencoder, batch: torch.Tensor, generator: torch.Generator,
               critic: MultiScaleSTFTDiscriminator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        latents, kl = model.encode(batch, generator=generator)
        decoded = model.decode(latents)
        # Under bfloat16 autocast only the VAE runs in bfloat16; STFTs, mel projections, the
        # critic and every loss stay float32.
        with torch.autocast(batch.device.type, enabled=False):
            decoded, kl = decoded.float(), kl.float()
            spectra = stft_pairs(decoded, batch, (*self.ffts, *self.mel_ffts))  # the mel scales reuse MR-STFT's
            stft = multi_resolution_stft_loss(decoded, batch, self.ffts, spectra)
            terms = {"mrstft": stft.detach(), "kl": kl.detach()}
            loss = stft + self.kl_weight * kl
            if self.mel_weight:
                mel = multi_scale_mel_loss(decoded, batch, self.sample_rate, self.mel_ffts, self.mel_bins, spectra)
                loss, terms["mel"] = loss + self.mel_weight * mel, mel.detach()
            if critic is not None:
                adv = adversarial_losses(critic, batch, decoded)
                weights = self.discriminator
                loss = loss + weights["adv_weight"] * adv["adv"] + weights["fm_weight"] * adv["fm"]
                terms.update(critic_loss=adv["disc"], adv=adv["adv"].detach(), fm=adv["fm"].detach())
        return {"loss": loss, **terms}

    @torch.inference_mode()
    def latent_std(self, model: OobleckAutoencoder) -> float:
        """Standard deviation of the posterior means over the whole training split: the
        ``scale`` that gives the DiT unit-variance latents."""
        means = [vae_posterior(model.encoder(a))[0] for a in self.audio.split(8)]
        return float(torch.cat(means).std())
