"""The diffusion transformer (DiT) of Stable Audio Open, with stable-audio-tools' parameter
names (``models/dit.py``, ``DiffusionTransformer``; prepend global conditioning, timestep
conditioning "global").

Forward (x ``[B, C, L]`` latents, t ``[B]`` in [0, 1]):
1. timestep features [cos 2πtW, sin 2πtW] (W ``[128, 1]``, fixed random) -> MLP -> ``[B, D]``;
2. cross-attention tokens -> ``to_cond_embed`` (bias-free MLP); global vector ->
   ``to_global_embed`` (bias-free MLP) + timestep embedding, prepended as ONE token;
3. x + preprocess_conv(x) (1x1, zero-initialised) -> tokens of ``patch_size`` frames each
   (``b c (t p) -> b t (c p)``, as upstream) -> transformer -> drop the prepended token ->
   frames again -> out + postprocess_conv(out) (1x1, zero-initialised).

There is no cross-attention mask: padded text tokens are zero vectors that still take part
in attention, as upstream. Classifier-free guidance is not done here: the caller batches
``[cond; uncond]`` (see :mod:`t2mbench.reference_models.guidance`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from t2mbench.reference_models.autoencoder import pointwise_conv
from t2mbench.reference_models.transformer import BlockControl, ContinuousTransformer

TIMESTEP_FEATURES = 256


class FourierFeatures(nn.Module):
    """``[cos 2π·x·Wᵀ, sin 2π·x·Wᵀ]`` with ``weight`` ``[out/2, in]`` drawn from N(0, 1)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x @ self.weight.T
        return torch.cat((f.cos(), f.sin()), dim=-1)


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[B, C, T·p]`` frames -> ``[B, T, C·p]`` tokens; token ``t``'s feature ``c·p + j`` is frame
    ``t·p + j`` of channel ``c`` (stable-audio-tools' ``b (t p) c -> b t (c p)``)."""
    b, c, frames = x.shape
    if frames % patch_size:
        raise ValueError(f"{frames} latent frames do not split into patches of {patch_size}")
    return x.reshape(b, c, frames // patch_size, patch_size).permute(0, 2, 1, 3).reshape(b, -1, c * patch_size)


def unpatchify(tokens: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[B, T, C·p]`` -> ``[B, C, T·p]``."""
    b, t, cp = tokens.shape
    return tokens.reshape(b, t, cp // patch_size, patch_size).permute(0, 2, 1, 3).reshape(b, cp // patch_size, -1)


def _mlp(dim_in: int, dim_out: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_out, bias=bias), nn.SiLU(), nn.Linear(dim_out, dim_out, bias=bias))


class DiffusionTransformer(nn.Module):
    """DiT over latents ``[B, io_channels, L]``.

    Args:
        io_channels: latent channels.
        embed_dim, depth, num_heads: transformer width, blocks and query heads (head size
            ``embed_dim / num_heads``; RoPE rotates ``max(head / 2, 32)`` channels of each head,
            so heads need at least 32 channels).
        cond_token_dim: width of the cross-attention tokens (0: no cross-attention).
        project_cond_tokens: project the tokens to ``embed_dim`` (else they keep
            ``cond_token_dim``, and the cross-attention has ``cond_token_dim / head`` KV heads).
        global_cond_dim: width of the global conditioning vector (0: none).
        qk_norm: ``"none"`` or ``"ln"``.
        ff_mult: feed-forward inner width as a multiple of ``embed_dim``.
        patch_size: latent frames per transformer token (the frame count must be a multiple).
    """

    def __init__(
        self,
        io_channels: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        cond_token_dim: int = 0,
        project_cond_tokens: bool = True,
        global_cond_dim: int = 0,
        qk_norm: str = "none",
        ff_mult: float = 4,
        patch_size: int = 1,
    ) -> None:
        super().__init__()
        self.io_channels = io_channels
        self.patch_size = patch_size
        self.timestep_features = FourierFeatures(1, TIMESTEP_FEATURES)
        self.to_timestep_embed = _mlp(TIMESTEP_FEATURES, embed_dim, bias=True)
        context_dim = None
        if cond_token_dim > 0:
            context_dim = embed_dim if project_cond_tokens else cond_token_dim
            self.to_cond_embed = _mlp(cond_token_dim, context_dim, bias=False)
        if global_cond_dim > 0:
            self.to_global_embed = _mlp(global_cond_dim, embed_dim, bias=False)
        self.transformer = ContinuousTransformer(
            embed_dim,
            depth,
            embed_dim // num_heads,
            dim_in=io_channels * patch_size,
            dim_out=io_channels * patch_size,
            dim_context=context_dim,
            qk_norm=qk_norm,
            ff_mult=ff_mult,
        )
        self.preprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        nn.init.zeros_(self.preprocess_conv.weight)
        nn.init.zeros_(self.postprocess_conv.weight)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        *,
        cross_attn_cond: torch.Tensor | None = None,
        global_cond: torch.Tensor | None = None,
        control: BlockControl | None = None,
    ) -> torch.Tensor:
        """Model output in the objective's parametrisation.

        Args:
            x: ``[B, io_channels, L]`` noisy latents, ``L`` a multiple of ``patch_size``.
            t: ``[B]`` diffusion time in [0, 1].
            cross_attn_cond: ``[B, S, cond_token_dim]`` tokens (text, then one per number).
            global_cond: ``[B, global_cond_dim]`` (channel-concatenated number embeddings).
            control: an adapter's hook into the blocks (:mod:`t2mbench.reference_models.adapters`);
                with it every row runs the cross-attention (a row with null text may still
                carry a control).

        Returns:
            ``[B, io_channels, L]``.
        """
        dtype = self.preprocess_conv.weight.dtype
        x = x.to(dtype)
        context = rows = None
        if cross_attn_cond is not None:
            # all-zero token sets (CFG's null condition) add nothing through the bias-free
            # to_cond_embed and cross-attention: run it on the other rows only (exact)
            active = cross_attn_cond.flatten(1).ne(0).any(1)
            if control is None and not bool(active.all()):
                rows = active.nonzero()[:, 0]
                cross_attn_cond = cross_attn_cond[rows]
            context = self.to_cond_embed(cross_attn_cond.to(dtype))
        glob = self.to_timestep_embed(self.timestep_features(t.to(dtype)[:, None]))
        if global_cond is not None:
            glob = self.to_global_embed(global_cond.to(dtype)) + glob
        x = pointwise_conv(x, self.preprocess_conv.weight) + x
        tokens = patchify(x, self.patch_size)
        out = self.transformer(tokens, prepend=glob[:, None, :], context=context, rows=rows, control=control)
        out = unpatchify(out[:, 1:, :], self.patch_size)
        return pointwise_conv(out, self.postprocess_conv.weight) + out
