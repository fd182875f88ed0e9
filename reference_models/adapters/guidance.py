"""Multi-condition classifier-free guidance for a :class:`~t2mbench.reference_models.adapters.model.ControlledModel`
(MuseControlLite ``pipeline/stable_audio_multi_cfg_pipe*.py``), as a
:class:`~t2mbench.reference_models.guidance.GuidedModel`.

Branches, batched in one forward: b₀ = (∅ text, no control), b₁ = (text, no control) and, per
control group g = 1..G, b_{g+1} = (text, groups 1..g). The output is the chain

    out = b₀ + w_text·(b₁ − b₀) + Σ_g w_g·(b_{g+1} − b_g),

which for one group (all attributes at scale w_c) is MuseControlLite's
ε(∅,∅) + w_t[ε(t,∅) − ε(∅,∅)] + w_c[ε(t,c) − ε(t,∅)], and with the audio as a second group its
four-branch form. It is written in :class:`GuidedModel`'s form u + s₀(c₀ − u) + Σ s_k(c_k − u) by
telescoping: s on b_k is (w_k − w_{k+1}), the last branch keeps its own w.

A dropped control is a zero mask (MuseControlLite zeroes the features after the extractor);
masks given with a control restrict it in time in every branch that carries it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.guidance import Cond, GuidedModel, null_condition

if TYPE_CHECKING:
    from t2mbench.reference_models.adapters.model import ControlledModel


def control_branches(cond: Cond, controls: Mapping[str, torch.Tensor], groups: Sequence[Sequence[str]],
                     frames: int) -> list[dict[str, torch.Tensor | None]]:
    """``[b₀, b₁, b₂, ...]``: keyword inputs of each branch (see the module doc). ``controls``
    holds the features (and optional ``<name>_mask`` ``[B, frames]``) of every name in ``groups``."""
    names = [n for g in groups for n in g]
    batch = next(iter(controls.values())).shape[0] if controls else 1
    device = next(iter(controls.values())).device if controls else None
    zeros = torch.zeros(batch, frames, device=device)

    def with_groups(base: Cond, k: int) -> dict[str, torch.Tensor | None]:
        on = {n for g in groups[:k] for n in g}
        out = dict(base)
        for n in names:
            out[n] = controls[n]
            out[f"{n}_mask"] = controls.get(f"{n}_mask", torch.ones_like(zeros)) if n in on else zeros
        return out

    return [with_groups(null_condition(cond), 0), *(with_groups(cond, k) for k in range(len(groups) + 1))]


def multi_guidance(model, cond: Cond, controls: Mapping[str, torch.Tensor], groups: Sequence[Sequence[str]],
                   text_scale: float, control_scales: Sequence[float], frames: int, **kwargs) -> GuidedModel:
    """A :class:`GuidedModel` computing the chain of the module doc; ``control_scales[g]`` is w_g."""
    if len(control_scales) != len(groups):
        raise ValueError(f"{len(groups)} control groups need {len(groups)} scales, got {len(control_scales)}")
    branches = control_branches(cond, controls, groups, frames)
    weights = [text_scale, *control_scales]
    scales = [w - nxt for w, nxt in zip(weights, weights[1:])] + [weights[-1]]
    uncond, first, *rest = branches
    return GuidedModel(model, first, uncond, scale=scales[0], more=list(zip(rest, scales[1:])), **kwargs)


@dataclass
class ControlInputs:
    """What :func:`t2mbench.reference_models.generate.generate` needs to generate under control:
    ``model`` (whose ``base`` is the generating model), ``features`` (name -> ``[N, C, L]`` on the
    latent grid, one row per prompt; cut or zero-padded, and masked beyond its end, to the
    generated length), optional ``masks`` (name -> ``[N, L]``), and one guidance ``scales`` entry per
    name: each control is its own group of the chain, in ``scales``' order."""

    model: ControlledModel
    features: Mapping[str, torch.Tensor]
    scales: Mapping[str, float]
    masks: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def guided(self, cond: Cond, uncond: Cond | None, rows: slice, length: int, text_scale: float,
               **kwargs) -> GuidedModel:
        """The multi-condition guided model of prompts ``rows`` at ``length`` latent frames."""
        if uncond is not None:
            raise ConfigError("negative prompts are not supported with controls (the null text branch is the empty "
                              "text, as MuseControlLite)")
        controls: dict[str, torch.Tensor] = {}
        for name in self.scales:
            feat = self.features[name][rows]
            have = min(length, feat.shape[-1])
            mask = torch.zeros(feat.shape[0], length)
            mask[:, :have] = 1.0 if name not in self.masks else self.masks[name][rows][:, :have]
            controls[name] = torch.nn.functional.pad(feat[..., :have], (0, length - have))
            controls[f"{name}_mask"] = mask
        groups = [(name,) for name in self.scales]
        return multi_guidance(self.model, cond, controls, groups, text_scale, list(self.scales.values()), length,
                              **kwargs)
