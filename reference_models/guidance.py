"""Classifier-free guidance (Ho & Salimans 2022) as stable-audio-tools' DiT applies it, generalised to
several conditions with separate scales.

A guided model is a model ``(x, t) -> out`` in the objective's parametrisation (v or ε − x0), so every
sampler and denoiser wrapper takes it as is. The conditional and unconditional branches run in ONE
forward, concatenated along the batch axis in the order [cond; more conds...; uncond] (stable-audio-tools'
order), so a sampler's NFE counts batched calls.

With branch outputs c (``cond``), c_k (``more``) and u (``uncond``):
    out = u + scale·(c − u) + Σ_k scale_k·(c_k − u)
then, with φ = ``rescale_phi`` > 0 (Lin et al. 2023, "CFG rescale"; std over dim 1, the channels of ``[B, C, L]``):
    out ← φ·out·std(c)/std(out) + (1 − φ)·out.
Guidance is applied only while lo ≤ σ ≤ hi for ``interval = (lo, hi)``, σ in the objective's own scale
(σ = sin(πt/2) for ``v``, σ = t for ``rectified_flow``), read from the first batch element as stable-audio-tools
does (reading t waits for the device, so the default interval (0, 1) skips it); outside it, and when there is
one condition at scale 1, the model runs once on ``cond`` alone.
Several conditions cover nested guidance too: u + s₁(c₁ − u) + s₂(c₁₂ − c₁) is ``scale = s₁ − s₂``
on c₁ with ``more = [(c₁₂, s₂)]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from t2mbench.core.errors import ConfigError

Cond = Mapping[str, torch.Tensor | None]
OBJECTIVES = ("v", "rectified_flow")


def null_condition(cond: Cond, *, negative: torch.Tensor | None = None, negative_mask: torch.Tensor | None = None,
                   drop: Sequence[str] = ("cross_attn_cond",)) -> dict[str, torch.Tensor | None]:
    """The unconditional branch's inputs, as stable-audio-tools builds them.

    The ``drop`` keys (the cross-attention tokens, text and timing) become zeros, or the negative prompt's tokens
    ``negative`` ``[B, S, D]`` when given (with ``negative_mask`` ``[B, S]``: tokens where it is 0 are zeroed);
    every other key (``global_cond``, the timing embedding) is kept as in ``cond``: SAT never drops it.
    """
    out = dict(cond)
    for key in drop:
        value = cond.get(key)
        if value is None:
            continue
        if negative is None:
            out[key] = torch.zeros_like(value)
            continue
        if negative.shape != value.shape:
            raise ConfigError(f"negative conditioning has shape {tuple(negative.shape)}, but {key} has "
                              f"{tuple(value.shape)}: encode the negative prompt with the same batch and token count")
        if negative_mask is not None:
            negative = torch.where(negative_mask.bool().unsqueeze(-1), negative, torch.zeros_like(negative))
        out[key] = negative.to(value.dtype)
    return out


class GuidedModel:
    """``model(x, t, **cond)`` under classifier-free guidance; call as ``guided(x [B, ...], t [B]) -> [B, ...]``.

    ``model``: e.g. the DiT, ``forward(x, t, *, cross_attn_cond, global_cond)``. ``cond``/``uncond``: keyword
    tensors with a batch axis of B (``uncond`` defaults to ``null_condition(cond)``). ``more``: extra (cond, scale)
    pairs, each a full set of keyword tensors. ``forwards`` counts the model's (batched) calls.
    """

    def __init__(self, model: Callable[..., torch.Tensor], cond: Cond, uncond: Cond | None = None, *,
                 scale: float = 1.0, interval: tuple[float, float] = (0.0, 1.0), rescale_phi: float = 0.0,
                 objective: str = "v", more: Sequence[tuple[Cond, float]] = ()):
        if objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        lo, hi = interval
        if not 0 <= lo <= hi <= 1:
            raise ConfigError(f"interval must satisfy 0 <= lo <= hi <= 1 (in sigma of the objective), got {interval}")
        if not 0 <= rescale_phi <= 1:
            raise ConfigError(f"rescale_phi must lie in [0, 1], got {rescale_phi}")
        self.model, self.cond, self.objective = model, dict(cond), objective
        self.interval, self.rescale_phi = (lo, hi), rescale_phi
        uncond = null_condition(cond) if uncond is None else uncond
        self.scales = [scale, *(s for _, s in more)]
        self.guides = len(more) > 0 or scale != 1.0
        self.everywhere = (lo, hi) == (0.0, 1.0)  # σ of both objectives lies in [0, 1]: no need to read t
        self.batched = _concat([cond, *(c for c, _ in more), uncond])
        self.forwards = 0

    def sigma(self, t: torch.Tensor) -> float:
        """The objective's σ for model time t (first batch element): sin(πt/2) for v, t for rectified flow."""
        t0 = t.reshape(-1)[0]
        return float(torch.sin(t0 * math.pi / 2)) if self.objective == "v" else float(t0)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.forwards += 1
        lo, hi = self.interval
        if not (self.guides and (self.everywhere or lo <= self.sigma(t) <= hi)):
            return self.model(x, t, **self.cond)
        k = len(self.scales) + 1
        outs = self.model(torch.cat([x] * k), torch.cat([t] * k), **self.batched).chunk(k)
        uncond = outs[-1]
        out = torch.lerp(uncond, outs[0], self.scales[0])  # u + s·(c − u) in one operation
        for c, s in zip(outs[1:-1], self.scales[1:]):
            out = out.add_(c - uncond, alpha=s)
        if self.rescale_phi:
            ratio = outs[0].std(dim=1, keepdim=True) / out.std(dim=1, keepdim=True)
            out = self.rescale_phi * (out * ratio) + (1 - self.rescale_phi) * out
        return out


def _concat(branches: Sequence[Cond]) -> dict[str, torch.Tensor | None]:
    """Each key's tensors concatenated along the batch axis, branch by branch; a key None everywhere stays None."""
    keys = list(branches[0])
    for b in branches[1:]:
        if set(b) != set(keys):
            raise ConfigError(f"every guidance branch needs the same condition keys; "
                              f"got {sorted(keys)} and {sorted(b)}")
    out: dict[str, torch.Tensor | None] = {}
    for key in keys:
        values = [b[key] for b in branches]
        if all(v is None for v in values):
            out[key] = None
        elif any(v is None for v in values):
            raise ConfigError(f"condition {key!r} is None in some guidance branches and a tensor in others")
        else:
            out[key] = torch.cat(values)
    return out
