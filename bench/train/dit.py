"""Training task for the tiny DiT on the trained VAE's latents (v objective, as SAO-1.0).

Before step 0 (exact precomputations; nothing trained sits before them):

- every clip of the ``train`` split is decoded at the model's rate, padded to whole latent
  frames and DiT patches (:func:`t2mbench.reference_models.generate.latent_length`) and encoded by the
  trained VAE into its posterior (mean, std); a step samples z = mean + std·ε, as
  stable-audio-tools encodes through its sampling bottleneck each step;
- every caption goes through the frozen text encoder (all-MiniLM-L6-v2 for ``tiny``) once.

Step ``k`` (all draws from the step generator; t from a scrambled Sobol sequence advanced to
``k·batch_size``, stable-audio-tools' default ``uniform`` timestep sampler): ``batch_size``
clips, x0 = z / scale, x_t = cos(πt/2)·x0 + sin(πt/2)·ε, conditioning {prompt, seconds_start
= 0, seconds_total = clip seconds}, the whole cross-attention tensor zeroed for a sample with
probability ``cfg_dropout`` (0.1, SAT's default; the global timing embedding is never dropped),
loss = MSE(DiT(x_t, t), v).

The trained module is the whole model minus the frozen text encoder (VAE frozen, DiT and
number conditioners trained), so ``ema.safetensors`` is a complete ``tiny`` checkpoint in
stable-audio-tools' key layout.

Command: ``t2mbench train dit --corpus CORPUS --out runs/tiny-dit --vae runs/tiny-vae/ema.safetensors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.train.ship import ship
from t2mbench.core.errors import ConfigError
from t2mbench.core.progress import progress_bar
from t2mbench.reference_models import build
from t2mbench.reference_models.autoencoder import vae_posterior
from t2mbench.reference_models.checkpoints import load_vae_state, read_state_dict
from t2mbench.reference_models.generate import latent_length
from t2mbench.reference_models.model import LatentDiffusionModel
from t2mbench.reference_models.objectives import TimestepSampler, diffusion_loss
from t2mbench.reference_models.text_encoders import TextEncoder

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "tiny-dit.json"
_ENCODE_CHUNK = 32


class CachedTextEncoder(TextEncoder):
    """A frozen text encoder's outputs for a fixed list of captions, looked up by caption."""

    def __init__(self, encoder: TextEncoder, texts: Sequence[str], max_length: int, *, progress: bool = True):
        super().__init__()
        self.dim = encoder.dim
        unique = list(dict.fromkeys(texts))
        chunks = [unique[i : i + _ENCODE_CHUNK] for i in range(0, len(unique), _ENCODE_CHUNK)]
        parts = [encoder.encode(c, max_length) for c in progress_bar(chunks, desc="text", disable=not progress)]
        self.states = torch.cat([p[0] for p in parts])
        self.mask = torch.cat([p[1] for p in parts])
        self.row = {t: i for i, t in enumerate(unique)}
        self.max_length = max_length

    def encode(self, texts: Sequence[str], max_length: int, device: torch.device | str = "cpu"):
        if max_length != self.max_length:
            raise ConfigError(f"cached text was encoded to {self.max_length} tokens, asked for {max_length}")
        idx = [self.row[t] for t in texts]
        return self.states[idx].to(device), self.mask[idx].to(device)


class DitTask:
    """The :class:`t2mbench.bench.train.loop.TrainTask` of a model config's DiT on a trained VAE."""

    name = "dit"

    def __init__(
        self, corpus: str | Path, task: dict[str, Any], model: dict[str, Any], *, vae: str | Path, progress: bool = True
    ):
        self.config_name = model["config"]
        self.batch_size = int(task["batch_size"])
        self.cfg_dropout = float(task.get("cfg_dropout", 0.1))
        self.init_seed = int(task.get("init_seed", 0))
        self.sobol_seed = int(task.get("sobol_seed", 0))
        self.vae_path = Path(vae)
        self.vae_state = read_state_dict(vae)
        ref = self._fresh()
        self.scale = ref.pretransform.scale
        clips = split_clips(corpus, task.get("split", "train"))
        self.captions = [c.caption or "" for c in clips]
        self.seconds = torch.tensor([float(c.seconds or 0.0) for c in clips])
        frames = latent_length(ref, float(self.seconds.max()))
        audio = load_split_audio(
            clips, ref.sample_rate, ref.info.audio_channels, frames * ref.downsampling_ratio, progress=progress
        )
        self.mean, self.std = self._posterior(ref, audio, progress)
        prompt = ref.conditioner.conditioners["prompt"]
        self.text = CachedTextEncoder(prompt.encoder, self.captions, prompt.max_length, progress=progress)
        self.clips = clips

    def _fresh(self) -> LatentDiffusionModel:
        torch.manual_seed(self.init_seed)
        model = build(self.config_name)
        load_vae_state(model, self.vae_state, self.vae_path, self.config_name)
        return model

    @staticmethod
    @torch.inference_mode()
    def _posterior(model: LatentDiffusionModel, audio: torch.Tensor, progress: bool) -> tuple[torch.Tensor, ...]:
        """The VAE posterior ``(mean, std)`` ``[N, latent_dim, frames]`` of every clip."""
        encoder = model.pretransform.model.encoder
        batches = progress_bar(audio.split(8), desc="latents", disable=not progress)
        stats = [vae_posterior(encoder(a)) for a in batches]
        return torch.cat([s[0] for s in stats]), torch.cat([s[1] for s in stats])

    def build(self) -> LatentDiffusionModel:
        model = self._fresh()
        model.conditioner.conditioners["prompt"].encoder = self.text
        model.requires_grad_(False)
        model.model.requires_grad_(True)
        for cid, cond in model.conditioner.conditioners.items():
            if cid != "prompt":
                cond.requires_grad_(True)
        return model

    def batch(self, step: int, generator: torch.Generator) -> dict[str, Any]:
        idx = torch.randint(len(self.clips), (self.batch_size,), generator=generator)
        eps = torch.randn(self.mean[idx].shape, generator=generator)
        sampler = TimestepSampler("uniform", seed=self.sobol_seed)
        sampler.load_state_dict({"seed": self.sobol_seed, "num_generated": step * self.batch_size})
        return {
            "x0": (self.mean[idx] + self.std[idx] * eps) / self.scale,
            "t": sampler.draw(self.batch_size),
            "noise": torch.randn(self.mean[idx].shape, generator=generator),
            "inputs": {
                "prompt": [self.captions[i] for i in idx.tolist()],
                "seconds_start": [0.0] * self.batch_size,
                "seconds_total": self.seconds[idx].tolist(),
            },
        }

    def losses(self, model: LatentDiffusionModel, batch: dict[str, Any], generator: torch.Generator):
        cross, glob = model.condition(batch["inputs"])
        loss = diffusion_loss(
            model, model.objective, batch["x0"], t=batch["t"], noise=batch["noise"], cross_attn_cond=cross,
            global_cond=glob, cfg_dropout_prob=self.cfg_dropout, generator=generator,
        )
        return {"loss": loss}

    def ship(self, model: LatentDiffusionModel, ship_dir: str | Path, info: dict[str, Any]) -> Path:
        """The complete checkpoint (VAE, DiT, number conditioners) in stable-audio-tools' key
        layout, stored as float16 (half the bytes; loaded back to the model's dtype)."""
        return ship(model.state_dict(), ship_dir, "model.safetensors", info=info, dtype=torch.float16)
