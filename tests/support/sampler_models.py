"""Seeded toy models for the sampler and guidance parity tests and their fixture scripts
(tools/fixtures/make_kdiffusion.py, make_sat_cfg.py): deterministic, smooth, nonlinear in every input, so that
a wrong coefficient, time mapping or branch order changes the output. Weights come from
``numpy.random.default_rng(seed)`` in float64 and are cast to the requested dtype.
"""

from __future__ import annotations

import numpy as np
import torch


def _normal(rng: np.random.Generator, *shape: int, scale: float = 1.0, dtype: torch.dtype = torch.float64):
    return torch.tensor(rng.standard_normal(shape) * scale, dtype=dtype)


class ToyModel:
    """``model(x [B, C, L], t [B]) -> [B, C, L]``: tanh(W·x + b + w_t·t/t_scale) + 0.1·x, W a seeded channel mixer.

    Used as a v model (t in [0, 1], t_scale 1), an RF model, or a DDPM ε model (t in [0, T), t_scale = T).
    """

    def __init__(self, channels: int, seed: int = 0, t_scale: float = 1.0, dtype: torch.dtype = torch.float64):
        rng = np.random.default_rng(seed)
        self.w = _normal(rng, channels, channels, scale=channels**-0.5, dtype=dtype)
        self.b = _normal(rng, channels, 1, scale=0.3, dtype=dtype)
        self.wt = _normal(rng, channels, 1, dtype=dtype)
        self.t_scale = t_scale

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = (t.to(x.dtype) / self.t_scale).reshape(-1, 1, 1)
        return torch.tanh(torch.einsum("oc,bcl->bol", self.w, x) + self.b + self.wt * t) + 0.1 * x


class ToyDiT:
    """A DiT stand-in with the DiT's call: ``(x [B, C, L], t [B], *, cross_attn_cond [B, S, D] | None,
    global_cond [B, G] | None) -> [B, C, L]``. Each token is projected and gated by the input (a crude
    cross-attention), the global vector shifts the channels, and all of it passes a tanh.
    """

    def __init__(self, channels: int, cond_dim: int, global_dim: int, seed: int = 0,
                 dtype: torch.dtype = torch.float64):
        rng = np.random.default_rng(seed)
        self.core = ToyModel(channels, seed, dtype=dtype)
        self.proj = _normal(rng, cond_dim, channels, scale=cond_dim**-0.5, dtype=dtype)
        self.glob = _normal(rng, global_dim, channels, scale=global_dim**-0.5, dtype=dtype)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, *, cross_attn_cond: torch.Tensor | None = None,
                 global_cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.core(x, t)
        if cross_attn_cond is not None:
            tokens = torch.tanh(cross_attn_cond.to(x.dtype) @ self.proj)  # [B, S, C]
            gate = torch.softmax(torch.einsum("bsc,bcl->bsl", tokens, x), dim=1)  # [B, S, L]
            h = h + torch.einsum("bsc,bsl->bcl", tokens, gate)
        if global_cond is not None:
            h = h + (global_cond.to(x.dtype) @ self.glob).unsqueeze(-1)
        return torch.tanh(h) + 0.05 * x


def max_rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours − ref| / max(1, max |ref|): absolute error for O(1) tensors, relative for large ones."""
    ref = torch.as_tensor(ref, dtype=torch.float64)
    return float((ours.double() - ref).abs().max() / max(1.0, float(ref.abs().max())))
