"""The continuous transformer inside the DiT: pre-norm blocks of self-attention (partial
RoPE), cross-attention (grouped KV heads, no mask) and a SwiGLU feed-forward.

Module and parameter names follow stable-audio-tools' ``models/transformer.py`` so that its
checkpoints load as they are (``layers.N.self_attn.to_qkv.weight``, ``...ff.ff.0.proj``,
LayerNorm ``gamma`` plus a saved zero ``beta`` buffer, ``rotary_pos_emb.inv_freq``).

Shapes: tokens are ``[B, N, D]`` float tensors; heads are split as ``[B, H, N, D/H]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.errors import ConfigError

QK_NORMS = ("none", "ln")


class BlockControl(Protocol):
    """What an adapter gives :meth:`ContinuousTransformer.forward` (see ``reference_models/adapters``)."""

    def residuals(self, x: torch.Tensor, context: torch.Tensor | None,
                  rope: tuple[torch.Tensor, torch.Tensor]) -> Sequence[torch.Tensor]:
        """Terms ``[B, P + N, D]`` added to the stream before blocks 0, 1, ... (given block 0's input)."""

    def cross_attention(self, block: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The ``extra`` of block ``block``'s cross-attention (:meth:`Attention.forward`), or None."""


class LayerNorm(nn.Module):
    """Bias-free LayerNorm (eps 1e-5): a learned ``gamma`` and a zero ``beta`` kept as a
    saved buffer, as stable-audio-tools stores it."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta, self.eps)


class RotaryEmbedding(nn.Module):
    """Rotary position frequencies (base 10000) for the first ``dim`` channels of each head.

    ``inv_freq`` ``[dim/2]`` is a saved buffer (it is in the upstream checkpoints)."""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` of the angles position·inv_freq, float32 ``[seq_len, dim/2]``."""
        t = torch.arange(seq_len, device=self.inv_freq.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.float())
        return freqs.cos(), freqs.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``2·cos.shape[-1]`` channels of ``x`` ``[..., N, d]`` in float32 with the
    concatenated-halves convention: channel j pairs with j + h (h = ``cos.shape[-1]``) and
    (x_j, x_{j+h}) -> (x_j cos − x_{j+h} sin, x_{j+h} cos + x_j sin), upstream's
    ``x·cos([f, f]) + rotate_half(x)·sin([f, f])``; channels past 2h pass through."""
    h = cos.shape[-1]
    out = x.clone(memory_format=torch.contiguous_format)
    # dense copies of the two halves: elementwise maths on the strided head views of a
    # fused qkv projection is an order of magnitude slower on CPU
    x1 = out[..., :h].to(torch.float32, copy=True)
    x2 = out[..., h : 2 * h].to(torch.float32, copy=True)
    out[..., :h] = x1 * cos - x2 * sin
    out[..., h : 2 * h] = x2 * cos + x1 * sin
    return out


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``dim_context`` is None, else cross-attention
    whose keys/values have ``dim_context / dim_heads`` heads (grouped: each KV head serves
    consecutive query heads, as ``repeat_interleave``).

    ``to_out`` starts at zero (a zero residual branch). ``qk_norm="ln"`` adds affine
    LayerNorms (eps 1e-6) over each head's q and k, applied before RoPE.
    """

    def __init__(self, dim: int, dim_heads: int, dim_context: int | None = None, qk_norm: str = "none") -> None:
        super().__init__()
        if qk_norm not in QK_NORMS:
            raise ConfigError(f"qk_norm {qk_norm!r} is not supported; use one of {', '.join(QK_NORMS)}")
        self.dim_heads = dim_heads
        self.num_heads = dim // dim_heads
        dim_kv = dim if dim_context is None else dim_context
        self.kv_heads = dim_kv // dim_heads
        if self.num_heads % self.kv_heads:
            raise ConfigError(
                f"cross-attention: {self.num_heads} query heads cannot share {self.kv_heads} key/value heads "
                f"(context width {dim_kv}, head size {dim_heads}); make the context width a multiple of the head size "
                "that divides the model width"
            )
        if dim_context is None:
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        else:
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(dim_kv, dim_kv * 2, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.to_out.weight)
        self.qk_norm = qk_norm
        if qk_norm == "ln":
            self.q_norm = nn.LayerNorm(dim_heads, eps=1e-6)
            self.k_norm = nn.LayerNorm(dim_heads, eps=1e-6)

    def _heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, heads, self.dim_heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        extra: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``x`` ``[B, N, D]``; ``context`` ``[B, S, Dc]`` for cross-attention; ``rope`` the
        ``(cos, sin)`` of :class:`RotaryEmbedding` for self-attention; ``extra`` maps the
        (normed) queries ``[B, H, N, D/H]`` to a term ``[B, N, D]`` added to the attention
        output before ``to_out`` (a decoupled cross-attention adapter). Returns ``[B, N, D]``."""
        if context is None:
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = (self._heads(t, self.num_heads) for t in (q, k, v))
        else:
            q = self._heads(self.to_q(x), self.num_heads)
            k, v = self.to_kv(context).chunk(2, dim=-1)
            k, v = self._heads(k, self.kv_heads), self._heads(v, self.kv_heads)
        if self.qk_norm == "ln":
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        out = F.scaled_dot_product_attention(q, k, v, enable_gqa=self.kv_heads != self.num_heads)
        b, _, n, _ = out.shape
        out = out.transpose(1, 2).reshape(b, n, -1)
        if extra is not None:
            out = out + extra(q)
        return self.to_out(out)


class GLU(nn.Module):
    """``proj`` to twice the width, split as [x, gate]; returns x·SiLU(gate) (SwiGLU)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.silu(gate)


class FeedForward(nn.Module):
    """SwiGLU feed-forward ``D -> mult·D -> D`` with biases; the output layer starts at zero.
    Kept as ``ff = Sequential(GLU, Identity, Linear)`` for the upstream key names."""

    def __init__(self, dim: int, mult: float = 4) -> None:
        super().__init__()
        inner = int(dim * mult)
        out = nn.Linear(inner, dim)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.ff = nn.Sequential(GLU(dim, inner), nn.Identity(), out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class TransformerBlock(nn.Module):
    """Pre-norm block: x += SA(norm x); x += CA(norm x, ctx); x += FF(norm x)."""

    def __init__(
        self, dim: int, dim_heads: int, dim_context: int | None, qk_norm: str = "none", ff_mult: float = 4
    ) -> None:
        super().__init__()
        self.pre_norm = LayerNorm(dim)
        self.self_attn = Attention(dim, dim_heads, qk_norm=qk_norm)
        self.cross_attend = dim_context is not None
        if self.cross_attend:
            self.cross_attend_norm = LayerNorm(dim)
            self.cross_attn = Attention(dim, dim_heads, dim_context=dim_context, qk_norm=qk_norm)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, mult=ff_mult)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None,
        rope: tuple[torch.Tensor, torch.Tensor],
        rows: torch.Tensor | None = None,
        extra: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``rows``: when given, ``context`` belongs to these batch rows only and the others
        have no cross-attention term (see :class:`ContinuousTransformer`); ``extra``: see
        :meth:`Attention.forward` (only without ``rows``)."""
        x = x + self.self_attn(self.pre_norm(x), rope=rope)
        if self.cross_attend and context is not None:
            if rows is None:
                x = x + self.cross_attn(self.cross_attend_norm(x), context=context, extra=extra)
            elif len(rows):
                x = x.index_add(0, rows, self.cross_attn(self.cross_attend_norm(x[rows]), context=context))
        return x + self.ff(self.ff_norm(x))


class ContinuousTransformer(nn.Module):
    """``project_in`` -> [prepended tokens ; x] -> blocks -> ``project_out`` (all tokens kept;
    the caller drops the prepended ones). RoPE covers ``max(head/2, 32)`` channels of each
    head and every position, the prepended tokens included."""

    def __init__(
        self,
        dim: int,
        depth: int,
        dim_heads: int,
        dim_in: int,
        dim_out: int,
        dim_context: int | None,
        qk_norm: str = "none",
        ff_mult: float = 4,
    ) -> None:
        super().__init__()
        # `layers` first: upstream registers it first, so its keys lead the state dict
        self.layers = nn.ModuleList(
            TransformerBlock(dim, dim_heads, dim_context, qk_norm=qk_norm, ff_mult=ff_mult) for _ in range(depth)
        )
        self.project_in = nn.Linear(dim_in, dim, bias=False)
        self.project_out = nn.Linear(dim, dim_out, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(max(dim_heads // 2, 32))

    def forward(
        self,
        x: torch.Tensor,
        prepend: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
        control: BlockControl | None = None,
    ) -> torch.Tensor:
        """``x`` ``[B, N, dim_in]``, ``prepend`` ``[B, P, D]``, ``context`` ``[B, S, Dc]``;
        returns ``[B, P + N, dim_out]``. ``control`` (an adapter, :class:`BlockControl`) adds
        residuals before blocks and terms inside their cross-attention.

        ``rows`` (int64 ``[R]``) marks the batch rows that ``context`` ``[R, S, Dc]`` belongs to;
        the other rows skip cross-attention. That is exact for rows whose context would be all
        zeros: their keys are constant (zero, or the k-norm bias) and their values zero, so
        the attention output, and ``to_out`` of it (no bias), are zero. The unconditional
        half of a classifier-free-guidance batch is such a row.
        """
        x = self.project_in(x)
        if prepend is not None:
            x = torch.cat((prepend, x), dim=1)
        rope = self.rotary_pos_emb(x.shape[1])
        residuals = control.residuals(x, context, rope) if control is not None else ()
        for i, layer in enumerate(self.layers):
            if i < len(residuals):
                x = x + residuals[i]
            x = layer(x, context, rope, rows, None if control is None else control.cross_attention(i))
        return self.project_out(x)
