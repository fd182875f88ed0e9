"""The whole latent diffusion model as one ``nn.Module``: conditioners, DiT and VAE, laid out
as stable-audio-tools' ``ConditionedDiffusionModelWrapper`` so that its state-dict keys are
the upstream ones: ``model.model.*`` (DiT), ``conditioner.conditioners.<id>.*`` and
``pretransform.model.{encoder,decoder}.*`` (VAE).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from t2mbench.reference_models.autoencoder import AutoencoderPretransform
from t2mbench.reference_models.conditioners import MultiConditioner
from t2mbench.reference_models.dit import DiffusionTransformer
from t2mbench.reference_models.objectives import Objective


@dataclass(frozen=True)
class ModelInfo:
    """What a model is, beside its modules.

    ``sample_size`` is the training window in audio samples (the longest output);
    ``generation`` holds the recommended sampler settings; ``weights`` names the registered
    weight file (:mod:`t2mbench.core.weights`) or is None.
    """

    name: str
    sample_rate: int
    sample_size: int
    audio_channels: int
    cross_attn_cond_ids: tuple[str, ...]
    global_cond_ids: tuple[str, ...]
    weights: str | None = None
    description: str = ""
    generation: Mapping[str, Any] = field(default_factory=dict)


class DiTWrapper(nn.Module):
    """Holds the DiT as ``.model`` (the upstream ``DiTWrapper`` layer, kept for key names)."""

    def __init__(self, model: DiffusionTransformer) -> None:
        super().__init__()
        self.model = model


class LatentDiffusionModel(nn.Module):
    """Text-to-audio latent diffusion: ``conditioner`` -> ``model.model`` (DiT) in the latent
    space of ``pretransform`` (VAE).

    Calling the model runs the DiT: ``model(x [B, C, L], t [B], cross_attn_cond=..., global_cond=...)``
    returns the output in the parametrisation of ``objective``.
    """

    def __init__(
        self,
        dit: DiffusionTransformer,
        conditioner: MultiConditioner,
        pretransform: AutoencoderPretransform,
        objective: Objective,
        info: ModelInfo,
    ) -> None:
        super().__init__()
        self.model = DiTWrapper(dit)
        self.conditioner = conditioner
        self.pretransform = pretransform
        self.objective = objective
        self.info = info
        self.checkpoint: dict[str, str] | None = None  # {"path", "sha256"} once weights are loaded from a file

    @property
    def dit(self) -> DiffusionTransformer:
        return self.model.model

    @property
    def latent_channels(self) -> int:
        return self.dit.io_channels

    @property
    def downsampling_ratio(self) -> int:
        return self.pretransform.downsampling_ratio

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def max_seconds(self) -> float:
        """The longest output the model was trained for (its window)."""
        return self.info.sample_size / self.info.sample_rate

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        *,
        cross_attn_cond: torch.Tensor | None = None,
        global_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.dit(x, t, cross_attn_cond=cross_attn_cond, global_cond=global_cond)

    def condition(
        self, inputs: Mapping[str, Sequence], device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """DiT conditioning from raw inputs by conditioner id (``{"prompt": [...],
        "seconds_start": [...], "seconds_total": [...]}``).

        Returns ``(cross_attn_cond [B, S, D], global_cond [B, G])``: the cross-attention
        tokens of ``cross_attn_cond_ids`` concatenated along the sequence, the first token of
        each ``global_cond_ids`` embedding concatenated along channels.
        """
        tensors = self.conditioner(inputs, device)
        cross = glob = None
        if self.info.cross_attn_cond_ids:
            cross = torch.cat([tensors[k][0] for k in self.info.cross_attn_cond_ids], dim=1)
        if self.info.global_cond_ids:
            glob = torch.cat([tensors[k][0][:, 0, :] for k in self.info.global_cond_ids], dim=-1)
        return cross, glob
