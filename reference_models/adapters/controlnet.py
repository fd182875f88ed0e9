"""ControlNet for the DiT (Hou et al., ICASSP 2025; layout of EmilianPostolache/stable-audio-controlnet
@ cbc37e6, ``main/controlnet/controlnet.py``): a trainable copy of the first N blocks of the
frozen transformer, zero-initialised projections in and out.

Forward, given block 0's input tokens x ``[B, P + T, D]`` (prepended global token, then the
patch tokens) and a condition ``[B, C, L]`` on the latent grid:

1. the extractor (:mod:`.extractors`, ``L -> T`` tokens) embeds the condition; ``conv_in`` (a
   bias-free linear ``D_e -> D``, **zero-initialised**) maps it into the model width; the copy's
   input is h = x + [0 ; conv_in(e)] (nothing added to the prepended token);
2. h runs through the copied blocks (same context and RoPE as the frozen ones);
3. copy block i's output goes through its own ``conv_outs[i]`` (bias-free linear ``D -> D``,
   **zero-initialised**) and is added to the frozen stream **before** frozen block i, as
   stable-audio-controlnet does (Hou et al. and PixArt-δ add it after block i instead).

Decisions: the control enters in token space (a zero linear before the copy's blocks) rather than
as stable-audio-controlnet's VAE latent through a zero 1x1 ``conv_in`` before ``project_in``;
both are a zero-initialised linear map of the condition added to the copy's input. The copy
shares the frozen model's timestep/text embedders (upstream copies them too, frozen weights
equal at initialisation); only the blocks, the extractor and the zero maps are trained.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from t2mbench.reference_models.adapters.extractors import ConvExtractor, Layer
from t2mbench.reference_models.transformer import ContinuousTransformer


class ControlNet(nn.Module):
    """Trainable copy of the first ``n_blocks`` blocks of ``transformer`` plus zero maps in and out."""

    def __init__(self, transformer: ContinuousTransformer, n_blocks: int, extractor: Sequence[Layer]) -> None:
        super().__init__()
        if not 0 < n_blocks <= len(transformer.layers):
            raise ValueError(f"n_blocks must lie in 1..{len(transformer.layers)}, got {n_blocks}")
        dim = transformer.project_in.out_features
        self.layers = nn.ModuleList(copy.deepcopy(transformer.layers[i]) for i in range(n_blocks))
        self.extractor = ConvExtractor(extractor)
        self.conv_in = nn.Linear(self.extractor.out_channels, dim, bias=False)
        self.conv_outs = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(n_blocks))
        for lin in (self.conv_in, *self.conv_outs):
            nn.init.zeros_(lin.weight)


class ControlNetHook:
    """The :class:`~t2mbench.reference_models.transformer.BlockControl` of one forward; ``embedded``
    is the extractor output ``[B, D_e, T]`` (masked)."""

    def __init__(self, net: ControlNet, embedded: torch.Tensor) -> None:
        self.net, self.embedded = net, embedded

    def residuals(self, x: torch.Tensor, context, rope) -> Sequence[torch.Tensor]:
        control = self.net.conv_in(self.embedded.transpose(1, 2).to(x.dtype))
        prepended = x.shape[1] - control.shape[1]
        h = torch.cat((x[:, :prepended], x[:, prepended:] + control), dim=1)
        out = []
        for layer, conv in zip(self.net.layers, self.net.conv_outs):
            h = layer(h, context, rope)
            out.append(conv(h))
        return out

    def cross_attention(self, block: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None
