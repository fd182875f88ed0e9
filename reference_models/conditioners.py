"""Conditioners: prompt text and numbers (seconds_start, seconds_total) to tokens, with
stable-audio-tools' parameter names (``models/conditioners.py``, ``NumberEmbedder`` of
``models/adp.py``).

Each conditioner maps a batch of values to ``(embeddings [B, S, D], mask [B, S] bool)``;
:class:`MultiConditioner` runs them all by id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.text_encoders import TextEncoder


class LearnedPositionalEmbedding(nn.Module):
    """Random Fourier features of a scalar v in [0, 1]: ``[v, sin 2πvw, cos 2πvw]`` with
    ``weights`` w ``[dim/2]`` (N(0, 1) at init); output ``[B, dim + 1]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, None]
        freqs = x * self.weights[None, :] * 2 * math.pi
        return torch.cat((x, freqs.sin(), freqs.cos()), dim=-1)


class NumberEmbedder(nn.Module):
    """``embedding = Sequential(LearnedPositionalEmbedding(256), Linear(257, features))``."""

    def __init__(self, features: int, dim: int = 256) -> None:
        super().__init__()
        self.embedding = nn.Sequential(LearnedPositionalEmbedding(dim), nn.Linear(dim + 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


class NumberConditioner(nn.Module):
    """A number clamped to [min_val, max_val], scaled to [0, 1], embedded as one token."""

    def __init__(self, output_dim: int, min_val: float = 0.0, max_val: float = 1.0) -> None:
        super().__init__()
        if not max_val > min_val:
            raise ConfigError(f"number conditioner: max_val {max_val} must exceed min_val {min_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)
        self.embedder = NumberEmbedder(output_dim)

    def forward(
        self, values: Sequence[float] | torch.Tensor, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings [B, 1, D], mask [B, 1] all true)`` for ``values`` (e.g. seconds)."""
        v = torch.as_tensor([float(x) for x in values], dtype=torch.float32, device=device)
        v = (v.clamp(self.min_val, self.max_val) - self.min_val) / (self.max_val - self.min_val)
        emb = self.embedder(v.to(self.embedder.embedding[1].weight.dtype))[:, None, :]
        return emb, torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device)


class TextConditioner(nn.Module):
    """Prompt tokens from a frozen :class:`TextEncoder` (padding zeroed), then ``proj_out``
    (a Linear when the encoder width differs from ``output_dim`` or ``project_out``, else
    Identity)."""

    def __init__(self, encoder: TextEncoder, output_dim: int, max_length: int, project_out: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.max_length = max_length
        need = encoder.dim != output_dim or project_out
        self.proj_out = nn.Linear(encoder.dim, output_dim) if need else nn.Identity()

    def forward(self, texts: Sequence[str], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings [B, max_length, output_dim], mask [B, max_length])`` float32."""
        states, mask = self.encoder.encode(texts, self.max_length, device)
        if isinstance(self.proj_out, nn.Linear):
            states = self.proj_out(states.to(self.proj_out.weight.dtype))
        return states * mask[..., None].to(states.dtype), mask


class MultiConditioner(nn.Module):
    """Conditioners by id (``conditioners.<id>`` in the state dict)."""

    def __init__(self, conditioners: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict(dict(conditioners))

    def forward(
        self, inputs: Mapping[str, Sequence], device: torch.device | str = "cpu"
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run every conditioner on ``inputs[id]`` (a batch of strings or numbers)."""
        missing = [k for k in self.ids if k not in inputs]
        if missing:
            raise ConfigError(
                f"conditioning inputs missing {', '.join(missing)}; this model needs {', '.join(self.ids)}"
            )
        return {k: c(inputs[k], device) for k, c in self.conditioners.items()}

    @property
    def ids(self) -> list[str]:
        """The conditioner ids, in config order."""
        return list(self.conditioners)
