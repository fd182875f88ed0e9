"""HTSAT, LAION-CLAP's audio tower (laion-clap ``clap_module/htsat.py``), in pure PyTorch.

Input: log-mel ``[B, C, 1001, 64]`` (C = 4 fusion views, or 1) at 48 kHz / hop 480 → output:
the 8D-wide clip embedding ``[B, 8D]`` (D = 96 for HTSAT-tiny, 128 for HTSAT-base).

1. ``bn0``: BatchNorm over the 64 mel bins (running statistics).
2. Bicubic (``align_corners=True``) resize of time 1001 → 1024, then the 4 time blocks of 256
   frames are stacked along frequency: ``img[64 j + m, c] = mel[m, 256 j + c]`` → ``[B, C, 256, 256]``.
3. Patch embedding: 4×4/stride-4 conv of view 0 → ``[B, D, 64, 64]``; for fusion items longer than
   10 s, the three local views go through a (4, 12)/stride-(4, 12) conv, are laid side by side
   along width (63 columns, zero-padded to 64) and fused into the global map by AFF. LayerNorm.
4. Four Swin stages (window 8, shift 4 on odd blocks while the map is larger than the window,
   relative position bias, shifted-window mask of -100, exact GELU MLP ×4, LayerNorm eps 1e-5),
   patch merging after stages 1-3 (concatenation order (0,0), (1,0), (0,1), (1,1)). Tokens are
   gathered once per block into the order of its (shifted) windows instead of upstream's
   roll/partition/reverse/roll: the same numbers with one copy instead of four.
5. Final LayerNorm; the embedding is the mean over the 64 tokens. The clip-wise head (``tscam_conv``,
   ``head``) only produces AudioSet outputs and is not built.

Non-fusion checkpoints compute the log-mel inside the tower from the checkpoint's torchlibrosa
DFT kernels and ``melW`` (:meth:`HTSAT.logmel`); fusion front ends live in ``t2mbench.metrics.embedders.clap``.
Module names follow the upstream state dict, so checkpoints load without renaming.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 64
FRAMES = 1001  # 10 s at hop 480, centred
SPEC = 256  # Swin input is SPEC × SPEC
FREQ_RATIO = 4  # time blocks stacked along frequency
WINDOW, SHIFT = 8, 4
HEADS = (4, 8, 16, 32)


class AFF(nn.Module):
    """Attentional feature fusion (2-D): ``w = σ(local(g + l) + global(g + l))``, ``out = 2 g w + 2 l (1 - w)``."""

    def __init__(self, dim: int, ratio: int = 4) -> None:
        super().__init__()
        inner = dim // ratio

        def bottleneck() -> list[nn.Module]:
            return [
                nn.Conv2d(dim, inner, 1),
                nn.BatchNorm2d(inner),
                nn.ReLU(),
                nn.Conv2d(inner, dim, 1),
                nn.BatchNorm2d(dim),
            ]

        self.local_att = nn.Sequential(*bottleneck())
        self.global_att = nn.Sequential(nn.AdaptiveAvgPool2d(1), *bottleneck())

    def forward(self, g: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
        xa = g + l
        w = torch.sigmoid(self.local_att(xa) + self.global_att(xa))
        return 2 * g * w + 2 * l * (1 - w)


class PatchEmbed(nn.Module):
    """``[B, C, 256, 256]`` → tokens ``[B, 4096, D]`` (local views fused into ``longer`` items)."""

    def __init__(self, dim: int, fusion: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=4, stride=4)
        self.norm = nn.LayerNorm(dim)
        if fusion:
            self.mel_conv2d = nn.Conv2d(1, dim, kernel_size=(4, 12), stride=(4, 12))
            self.fusion_model = AFF(dim)

    def forward(self, img: torch.Tensor, longer: torch.Tensor) -> torch.Tensor:
        g = self.proj(img[:, :1])
        idx = torch.nonzero(longer).flatten()
        if hasattr(self, "mel_conv2d") and idx.numel():
            local = self.mel_conv2d(img[idx, 1:].reshape(-1, 1, SPEC, SPEC))  # [3L, D, 64, 21]
            local = local.view(idx.numel(), -1, *local.shape[1:]).permute(0, 2, 3, 1, 4).flatten(3)  # [L, D, 64, 63]
            local = F.pad(local, (0, g.shape[-1] - local.shape[-1]))
            g = g.index_copy(0, idx, self.fusion_model(g[idx], local))
        return self.norm(g.flatten(2).transpose(1, 2))


class WindowAttention(nn.Module):
    """Multi-head attention inside 8×8 windows with Swin's relative position bias (upstream key names)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * WINDOW - 1) ** 2, heads))
        self.register_buffer("relative_position_index", torch.empty(WINDOW**2, WINDOW**2, dtype=torch.long))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x [B, nW, 64, C]``, ``mask [nW, 64, 64]`` or ``None`` → ``[B, nW, 64, C]``."""
        b, nw, n, c = x.shape
        h = self.heads
        q, k, v = self.qkv(x).view(b, nw, n, 3, h, c // h).permute(3, 0, 1, 4, 2, 5).unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, h).permute(2, 0, 1)
        if mask is not None:
            bias = bias + mask[:, None]  # [nW, h, 64, 64]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # softmax(q kᵀ / sqrt(d) + bias) v
        return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))


def window_order(resolution: int, shift: int | None) -> torch.Tensor:
    """Row-major token indices ``[R²]`` listed window by window (8×8 windows row-major, tokens row-major
    inside) after a cyclic shift of the map by ``-shift``; ``shift=None`` is the row-major order itself."""
    if shift is None:
        return torch.arange(resolution * resolution)
    n = resolution // WINDOW
    a, b, i, j = torch.meshgrid(*(torch.arange(k) for k in (n, n, WINDOW, WINDOW)), indexing="ij")
    return (((a * WINDOW + i + shift) % resolution) * resolution + (b * WINDOW + j + shift) % resolution).flatten()


@functools.lru_cache(maxsize=64)
def reorder_index(resolution: int, src: int | None, dst: int | None, device: torch.device) -> torch.Tensor | None:
    """Gather index taking tokens from ``window_order(src)`` to ``window_order(dst)``; ``None`` if equal."""
    index = torch.argsort(window_order(resolution, src))[window_order(resolution, dst)]
    return None if torch.equal(index, torch.arange(index.numel())) else index.to(device)


class SwinBlock(nn.Module):
    """``x += W-MSA(LN1 x)`` (cyclically shifted windows when ``shift``), ``x += MLP(LN2 x)``.

    Tokens arrive already in :func:`window_order` for this block's shift, so the windows are
    contiguous runs of 64 tokens: LayerNorm and MLP act per token, and the roll/partition/reverse/roll
    of the upstream block reduce to the one gather :class:`Stage` does between blocks.
    """

    def __init__(self, dim: int, heads: int, resolution: int, shifted: bool) -> None:
        super().__init__()
        self.shift = SHIFT if shifted and resolution > WINDOW else 0  # a single window is never shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, 4 * dim))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(4 * dim, dim))
        n_windows = (resolution // WINDOW) ** 2
        self.attn_mask: torch.Tensor | None
        if self.shift:
            self.register_buffer("attn_mask", torch.empty(n_windows, WINDOW**2, WINDOW**2))
        else:
            self.attn_mask = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, R², C]`` in this block's window order → the same shape and order."""
        b, length, c = x.shape
        y = self.attn(self.norm1(x).view(b, length // WINDOW**2, WINDOW**2, c), self.attn_mask)
        x = x + y.view(b, length, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2×2 neighbours concatenated in the order (0,0), (1,0), (0,1), (1,1) → LN(4C) → Linear(4C → 2C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, resolution, resolution, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Stage(nn.Module):
    """``depth`` Swin blocks at one resolution, then patch merging (except the last stage)."""

    def __init__(self, dim: int, heads: int, resolution: int, depth: int, merge: bool) -> None:
        super().__init__()
        self.resolution = resolution
        self.blocks = nn.ModuleList(SwinBlock(dim, heads, resolution, shifted=i % 2 == 1) for i in range(depth))
        self.downsample = PatchMerging(dim) if merge else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, R², C]`` row-major → ``[B, R²/4, 2C]`` (merged) or ``[B, R², C]`` (last stage)."""
        order = None
        for block in self.blocks:
            x = self._reorder(x, order, block.shift)
            order = block.shift
            x = block(x)
        x = self._reorder(x, order, None)
        return x if self.downsample is None else self.downsample(x, self.resolution)

    def _reorder(self, x: torch.Tensor, src: int | None, dst: int | None) -> torch.Tensor:
        index = reorder_index(self.resolution, src, dst, x.device)
        return x if index is None else x.index_select(1, index)


class HTSAT(nn.Module):
    """HTSAT Swin tower: log-mel ``[B, C, 1001, 64]`` + ``longer [B]`` bool → embedding ``[B, 8 dim]``.

    ``dim`` 96 with ``depths`` (2, 2, 6, 2) is HTSAT-tiny; 128 with (2, 2, 12, 2) is HTSAT-base.
    """

    def __init__(self, dim: int, depths: tuple[int, ...], fusion: bool) -> None:
        super().__init__()
        if not fusion:  # torchlibrosa front end, its constants stored in the checkpoint
            self.spectrogram_extractor = nn.Module()
            self.spectrogram_extractor.stft = nn.Module()
            self.spectrogram_extractor.stft.conv_real = nn.Conv1d(1, 513, 1024, stride=480, bias=False)
            self.spectrogram_extractor.stft.conv_imag = nn.Conv1d(1, 513, 1024, stride=480, bias=False)
            self.logmel_extractor = nn.Module()
            self.logmel_extractor.melW = nn.Parameter(torch.empty(513, N_MELS))
        self.bn0 = nn.BatchNorm2d(N_MELS)
        self.patch_embed = PatchEmbed(dim, fusion)
        grid = SPEC // 4
        self.layers = nn.ModuleList(
            Stage(dim * 2**i, HEADS[i], grid >> i, depth, merge=i < len(depths) - 1) for i, depth in enumerate(depths)
        )
        self.norm = nn.LayerNorm(dim * 2 ** (len(depths) - 1))

    def logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """torchlibrosa ``Spectrogram`` + ``LogmelFilterBank`` (non-fusion): ``[B, 480000]`` → ``[B, 1, 1001, 64]``.

        Reflect-pad 512 per side, DFT as a stride-480 conv with the checkpoint's kernels, power,
        ``@ melW``, ``10 log10(max(·, 1e-10))`` (ref 1, no top_db).
        """
        stft = self.spectrogram_extractor.stft
        x = F.pad(wave[:, None], (512, 512), mode="reflect")
        power = stft.conv_real(x).square() + stft.conv_imag(x).square()  # [B, 513, frames]
        mel = power.transpose(1, 2) @ self.logmel_extractor.melW
        return 10.0 * torch.log10(mel.clamp_min(1e-10))[:, None]

    def forward(self, mel: torch.Tensor, longer: torch.Tensor) -> torch.Tensor:
        x = self.bn0(mel.transpose(1, 3)).transpose(1, 3)
        x = F.interpolate(x, (SPEC * FREQ_RATIO, N_MELS), mode="bicubic", align_corners=True)  # time 1001 → 1024
        b, c = x.shape[:2]
        x = x.view(b, c, FREQ_RATIO, SPEC, N_MELS).transpose(3, 4).reshape(b, c, SPEC, SPEC)
        x = self.patch_embed(x, longer)
        for stage in self.layers:
            x = stage(x)
        return self.norm(x).mean(dim=1)
