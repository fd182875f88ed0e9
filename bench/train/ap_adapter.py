"""Training task for an AP-Adapter (:mod:`t2mbench.reference_models.adapters.ap_adapter`) on the shipped
``tiny`` model: AP-Adapter's recipe (spec control_adapters.md §4, Training) reduced to the corpus.

Before step 0: every ``train`` clip's VAE posterior (mean, std) at the model's rate and its encoder grid
tokens (the audio prompt is the clip itself, as upstream trains on AudioSet clips prompting themselves),
the encoder's grid tokens of the all-zero input (the null audio), and every caption through the frozen
text encoder.

Step ``k`` (all draws from the step generator): ``batch_size`` clips; one pooling rate for the batch from
{1, 2, 4, 8} (upstream's per-batch draw, the same for time and frequency); per sample, with probability 5%
each, the text is dropped (zero tokens), the audio is the null audio, or both; t uniform in [0, 1);
x_t = cos(πt/2)·x0 + sin(πt/2)·ε; loss = MSE(model(x_t, t), v). Only W'_k, W'_v train.

Command: ``t2mbench train ap-adapter --corpus CORPUS --out RUN [--steps N]`` (config
``bench/train/configs/tiny-ap-adapter.json``; no weights are shipped: the checkpoint budget is spent;
``RUN/ema.safetensors`` holds the trained adapter, which ``t2mbench evidence ap-adapter`` measures and
``t2mbench generate --audio-prompt-weights`` loads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from t2mbench.bench.audio_prompt import EvaluatorPatchEncoder
from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.train.dit import CachedTextEncoder, DitTask
from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.adapters.ap_adapter import (
    AudioPromptedModel,
    ap_adapter,
    pool_grid,
)
from t2mbench.reference_models.generate import latent_length, load_model

POOL_RATES = (1, 2, 4, 8)
DROP = 0.05  # each of: text only, audio only, both (upstream's 5% / 5% / 5%)


def dropouts(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample ``(drop_text, drop_audio)`` booleans ``[batch]``: one uniform draw u per sample, text only
    dropped for u in [0, .05), audio only for [.05, .1), both for [.1, .15)."""
    u = torch.rand(batch, generator=generator)
    return (u < DROP) | ((u >= 2 * DROP) & (u < 3 * DROP)), (u >= DROP) & (u < 3 * DROP)


class APAdapterTask:
    """The :class:`t2mbench.bench.train.loop.TrainTask` of an AP-Adapter on the shipped ``tiny``."""

    name = "ap_adapter"

    def __init__(self, corpus: str | Path, batch_size: int = 8, progress: bool = True) -> None:
        from t2mbench.metrics.embedders.evaluator import load_evaluator

        self.batch_size = batch_size
        base = load_model("tiny")
        self.scale = base.pretransform.scale
        clips = split_clips(corpus, "train")
        self.captions = [c.caption or "" for c in clips]
        self.seconds = [float(c.seconds or 0.0) for c in clips]
        frames = latent_length(base, max(self.seconds))
        audio = load_split_audio(clips, base.sample_rate, base.info.audio_channels, frames * base.downsampling_ratio,
                                 progress=progress)
        self.mean, self.std = DitTask._posterior(base, audio, progress)
        self.encoder = EvaluatorPatchEncoder(load_evaluator().net)
        with torch.no_grad():
            inputs = torch.cat([self.encoder.inputs(a[None], base.sample_rate) for a in audio])
            self.grid_tokens, self.grid = self.encoder.grid(inputs)
            self.null_tokens, _ = self.encoder.grid(torch.zeros_like(inputs[:1]))
        prompt = base.conditioner.conditioners["prompt"]
        self.text = CachedTextEncoder(prompt.encoder, self.captions, prompt.max_length, progress=progress)
        self.n_clips = len(clips)

    @classmethod
    def from_block(cls, corpus: str | Path, block: dict[str, Any], model_block: dict[str, Any],
                   progress: bool = True) -> APAdapterTask:
        """The task of a training config's ``task`` block (``batch_size``: clips per step) and ``model`` block
        (``base``: ``"tiny"``, the only base with shipped weights)."""
        if model_block != {"base": "tiny"}:
            raise ConfigError(f"the model block must be {{\"base\": \"tiny\"}}, got {model_block}")
        unknown = sorted(set(block) - {"batch_size"})
        if unknown:
            raise ConfigError(f"task.{unknown[0]}: unknown; the task block takes batch_size")
        batch_size = block.get("batch_size", 8)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"task.batch_size must be a positive integer, got {batch_size!r}")
        return cls(corpus, batch_size, progress)

    def build(self) -> AudioPromptedModel:
        base = load_model("tiny")
        base.conditioner.conditioners["prompt"].encoder = self.text
        return ap_adapter(base, self.encoder.width, scale=1.0)

    def batch(self, step: int, generator: torch.Generator) -> dict[str, Any]:
        b = self.batch_size
        idx = torch.randint(self.n_clips, (b,), generator=generator)
        eps = torch.randn(self.mean[idx].shape, generator=generator)
        rate = POOL_RATES[int(torch.randint(len(POOL_RATES), (1,), generator=generator))]
        drop_text, drop_audio = dropouts(b, generator)
        grid = torch.where(drop_audio[:, None, None], self.null_tokens.expand(b, -1, -1), self.grid_tokens[idx])
        return {
            "x0": (self.mean[idx] + self.std[idx] * eps) / self.scale,
            "t": torch.rand(b, generator=generator),
            "noise": torch.randn(self.mean[idx].shape, generator=generator),
            "features": pool_grid(grid, self.grid, rate),
            "drop_text": drop_text,
            "inputs": {"prompt": [self.captions[i] for i in idx.tolist()], "seconds_start": [0.0] * b,
                       "seconds_total": [self.seconds[i] for i in idx.tolist()]},
        }

    def losses(self, model: AudioPromptedModel, batch: dict[str, Any], generator: torch.Generator):
        base = model.base
        cross, glob = base.condition(batch["inputs"])
        cross = cross * (~batch["drop_text"]).to(cross.dtype)[:, None, None]
        x0, noise, t = batch["x0"], batch["noise"], batch["t"]
        x_t = base.objective.add_noise(x0, noise, t)
        out = model(x_t, t, cross_attn_cond=cross, global_cond=glob,
                    audio_prompt=model.adapter.tokens(batch["features"]))
        return {"loss": base.objective.loss(out, base.objective.target(x0, noise, t), None)}
