"""Condition extractors: stacks of Conv1d (kernel 3) with SiLU between them (none after the
last), MuseControlLite's ``utils/feature_extractor.py`` shape, keys ``conv1d_1 ... conv1d_n``.

A layer is ``(in_channels, out_channels, stride, padding)``. The published SAO-1.0 sets:

- ``MELODY_MONO`` (attribute set, 4097 CQT frames -> 192 x 1024): 128->128 (s2, p0) -> 192 (s2) -> 192;
- ``MELODY_FULL_MONO`` (melody-only model, -> 768 x 1024): 128->256 (s2, p0) -> 256 -> 512 (s2) -> 512 -> 768;
- ``RHYTHM`` (2 x 4756 madmom activations -> 192 x 1189): 2->16 -> 64 -> 128 (s2) -> 128 -> 192 (s2);
- ``DYNAMICS`` (1 x 13108 -> 192 x 1639): 1->16 (s2) -> 16 -> 128 (s2) -> 128 -> 192 (s2).

The output is interpolated linearly (``align_corners=False``) to the number of condition tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Layer = tuple[int, int, int, int]

MELODY_MONO: tuple[Layer, ...] = ((128, 128, 2, 0), (128, 192, 2, 1), (192, 192, 1, 1))
MELODY_FULL_MONO: tuple[Layer, ...] = ((128, 256, 2, 0), (256, 256, 1, 1), (256, 512, 2, 1), (512, 512, 1, 1),
                                       (512, 768, 1, 1))
RHYTHM: tuple[Layer, ...] = ((2, 16, 1, 1), (16, 64, 1, 1), (64, 128, 2, 1), (128, 128, 1, 1), (128, 192, 2, 1))
DYNAMICS: tuple[Layer, ...] = ((1, 16, 2, 1), (16, 16, 1, 1), (16, 128, 2, 1), (128, 128, 1, 1), (128, 192, 2, 1))


def latent_rate_layers(channels: int, width: int, hidden: int = 128, patch_size: int = 1) -> tuple[Layer, ...]:
    """A three-layer extractor for features already on the latent grid: ``channels -> hidden ->
    width (stride patch_size) -> width``, so ``L`` latent frames give ``L / patch_size`` tokens."""
    return ((channels, hidden, 1, 1), (hidden, width, patch_size, 1), (width, width, 1, 1))


class ConvExtractor(nn.Module):
    """``[B, C_in, T]`` features -> ``[B, C_out, T']`` (see the module doc)."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layers = tuple(layers)
        for i, (cin, cout, stride, pad) in enumerate(layers, start=1):
            setattr(self, f"conv1d_{i}", nn.Conv1d(cin, cout, kernel_size=3, stride=stride, padding=pad))

    @property
    def out_channels(self) -> int:
        return self.layers[-1][1]

    def forward(self, x: torch.Tensor, tokens: int | None = None) -> torch.Tensor:
        """Extract, then interpolate linearly to ``tokens`` frames when given."""
        n = len(self.layers)
        for i in range(1, n + 1):
            x = getattr(self, f"conv1d_{i}")(x)
            if i < n:
                x = F.silu(x)
        if tokens is not None and x.shape[-1] != tokens:
            x = F.interpolate(x, size=tokens, mode="linear", align_corners=False)
        return x
