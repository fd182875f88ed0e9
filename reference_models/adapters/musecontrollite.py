"""MuseControlLite adapters (Tsai et al., ICML 2025; code fundwotsai2001/MuseControlLite @ 308bec3,
``MuseControlLite_setup.py`` ``StableAudioAttnProcessor2_0_rotary`` / ``_rotary_double``): a
decoupled cross-attention on time-varying condition tokens in the cross-attention of every
block, beside the frozen text attention.

Per block with normed queries Q ``[B, H, N, 64]`` (the frozen ``to_q``, after any q-norm) and
condition tokens c ``[B, S, Dc]``:

    K' = c·W'_k, V' = c·W'_v   (bias-free, Dc -> kv_heads·64, heads repeated like the GQA keys)
    A  = softmax(R(Q)·R(K')ᵀ/√64)·R(V')
    attention output += λ·Z(A)           (Z: 1x1 Conv1d D -> D, bias-free, zero-initialised)

before the frozen ``to_out``. Rotary positions: keys/values ``0..S−1``, queries ``i·S/N``
(``i = 0..N−1``, the prepended global token included, so the query grid is stretched onto the
condition's length). The audio adapter (in/outpainting) is a second such branch with its own
W''_k, W''_v, Z'' added without λ.

Decision on the rotary embedding (spec §1.7): the **shipped variant** is reproduced, because the
published checkpoints were trained with it: cos/sin tables are LlamaRotaryEmbedding's
half-split ``[θ_0..θ_31, θ_0..θ_31]`` (base 10000, 64 dims), but ``rotate_half`` pairs
channels (2k, 2k+1): ``[x0, x1, x2, ...] -> [-x1, -x3, ..., x0, x2, ...]``. It is applied to Q, K'
and V'. It is not norm-preserving and not relative; tests pin it.

State-dict layout (published SAO-1.0 checkpoints): ``transformer_blocks.<i>.attn2.processor.
{to_k_ip,to_v_ip,conv_out}.weight`` (+ ``{to_k_ip,to_v_ip,conv_out}_audio.weight`` with the
audio branch), the diffusers attention-processor names; the condition extractors are separate
files with ``conv1d_<n>`` keys (:mod:`.extractors`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.reference_models.adapters.extractors import ConvExtractor, Layer
from t2mbench.reference_models.transformer import ContinuousTransformer

ROPE_DIM = 64
ROPE_BASE = 10000.0


def shipped_rotary(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """MuseControlLite's rotary map of ``x`` ``[B, H, N, 64]`` at float ``positions`` ``[N]`` (see module doc)."""
    inv_freq = 1.0 / (ROPE_BASE ** (torch.arange(0, ROPE_DIM, 2, dtype=torch.float32, device=x.device) / ROPE_DIM))
    freqs = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    rotated = torch.cat((-pairs[..., 1], pairs[..., 0]), dim=-1)
    return x * cos + rotated * sin


def token_heads(tokens: torch.Tensor, to_k: nn.Module, to_v: nn.Module, heads: int,
                dim_head: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A decoupled branch's keys and values ``[B, heads, S, dim_head]`` from tokens ``[B, S, Dc]``:
    ``to_k``/``to_v`` give ``kv_heads·dim_head`` channels, split into heads and each KV head
    repeated for the consecutive query heads it serves (the cross-attention's grouping)."""
    b, s, _ = tokens.shape
    k = to_k(tokens).view(b, s, -1, dim_head).transpose(1, 2)
    v = to_v(tokens).view(b, s, -1, dim_head).transpose(1, 2)
    if k.shape[1] != heads:
        k, v = k.repeat_interleave(heads // k.shape[1], dim=1), v.repeat_interleave(heads // v.shape[1], dim=1)
    return k, v


class DecoupledAttention(nn.Module):
    """One block's adapter branch(es); parameter names are the upstream processor's."""

    def __init__(self, dim: int, cond_dim: int, kv_dim: int, audio: bool = False, attributes: bool = True,
                 audio_dim: int | None = None) -> None:
        super().__init__()
        if attributes:
            self.to_k_ip = nn.Linear(cond_dim, kv_dim, bias=False)
            self.to_v_ip = nn.Linear(cond_dim, kv_dim, bias=False)
            self.conv_out = nn.Conv1d(dim, dim, 1, bias=False)
            nn.init.zeros_(self.conv_out.weight)
        if audio:
            self.to_k_ip_audio = nn.Linear(audio_dim or cond_dim, kv_dim, bias=False)
            self.to_v_ip_audio = nn.Linear(audio_dim or cond_dim, kv_dim, bias=False)
            self.conv_out_audio = nn.Conv1d(dim, dim, 1, bias=False)
            nn.init.zeros_(self.conv_out_audio.weight)

    @staticmethod
    def attend(q: torch.Tensor, tokens: torch.Tensor, to_k: nn.Linear, to_v: nn.Linear,
               conv: nn.Conv1d) -> torch.Tensor:
        """Z(A) ``[B, N, D]`` for queries ``[B, H, N, d]`` and tokens ``[B, S, Dc]``."""
        b, h, n, d = q.shape
        s = tokens.shape[1]
        k, v = token_heads(tokens, to_k, to_v, h, d)
        key_pos = torch.arange(s, device=q.device, dtype=torch.float32)
        query_pos = torch.arange(n, device=q.device, dtype=torch.float32) * (s / n)
        out = F.scaled_dot_product_attention(shipped_rotary(q, query_pos), shipped_rotary(k, key_pos),
                                             shipped_rotary(v, key_pos))
        out = out.transpose(1, 2).reshape(b, n, h * d)
        return conv(out.transpose(1, 2)).transpose(1, 2)


class _Slot(nn.Module):
    """A named level of the upstream key path (``transformer_blocks.<i>.attn2.processor``)."""

    def __init__(self, **children: nn.Module) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)


class MuseControlLite(nn.Module):
    """The trainable part: per-block decoupled attention plus one extractor per condition.

    Args:
        transformer: the base model's transformer (its width, depth and cross-attention heads are read).
        extractors: condition name -> extractor layers (:mod:`.extractors`); their outputs are
            concatenated along channels in this order into tokens of width ``cond_dim``
            (MuseControlLite's attribute slots; missing width is zero-padded, as its empty 4th slot).
        cond_dim: condition-token width (768 for SAO-1.0).
        scale: λ (``ap_scale``, 1.0).
        audio: add the audio (in/outpainting) branch; its tokens are the clean latent
            ``[B, C, L]`` patched like the DiT's input (``C·patch`` channels per token) and
            channels repeat-interleaved to ``audio_dim`` (SAO-1.0: patch 1, 64 channels ×12 = 768).
        audio_dim: the audio tokens' width (default ``cond_dim``, the published layout). With no
            extractors (an audio-only adapter) the attribute branch (``to_k_ip``, ``to_v_ip``,
            ``conv_out``) is not built: it would never see a token.
    """

    def __init__(self, transformer: ContinuousTransformer, extractors: Mapping[str, Sequence[Layer]], cond_dim: int,
                 scale: float = 1.0, audio: bool = False, audio_dim: int | None = None) -> None:
        super().__init__()
        first = transformer.layers[0].cross_attn
        dim = first.num_heads * first.dim_heads
        kv_dim = first.kv_heads * first.dim_heads
        self.scale, self.cond_dim, self.audio = scale, cond_dim, audio
        self.audio_dim = audio_dim or cond_dim
        self.transformer_blocks = nn.ModuleList(
            _Slot(attn2=_Slot(processor=DecoupledAttention(dim, cond_dim, kv_dim, audio, bool(extractors),
                                                           self.audio_dim)))
            for _ in transformer.layers
        )
        self.extractors = nn.ModuleDict({name: ConvExtractor(layers) for name, layers in extractors.items()})
        width = sum(e.out_channels for e in self.extractors.values())
        if width > cond_dim:
            raise ValueError(f"extractor outputs ({width} channels) exceed the condition width {cond_dim}")

    def processor(self, block: int) -> DecoupledAttention:
        return self.transformer_blocks[block].attn2.processor

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """The attention-processor weights alone, under the published checkpoint's names."""
        return {k: v for k, v in self.state_dict().items() if k.startswith("transformer_blocks.")}

    def tokens(self, features: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor | None],
               n_tokens: int) -> torch.Tensor | None:
        """Condition tokens ``[B, n_tokens, cond_dim]`` (None without extractors): each extractor's
        output interpolated to ``n_tokens``, multiplied by its mask (``[B, n_tokens]``, 1 keep / 0 drop; MuseControlLite
        masks after the extractor, so a dropped condition is all-zero tokens), concatenated."""
        if not self.extractors:
            return None
        parts = []
        for name, extractor in self.extractors.items():
            out = extractor(features[name], n_tokens)
            mask = masks.get(name)
            if mask is not None:
                out = out * mask[:, None, :].to(out.dtype)
            parts.append(out)
        x = torch.cat(parts, dim=1)
        if x.shape[1] < self.cond_dim:
            x = F.pad(x, (0, 0, 0, self.cond_dim - x.shape[1]))
        return x.transpose(1, 2)

    def audio_tokens(self, latents: torch.Tensor, mask: torch.Tensor | None, n_tokens: int) -> torch.Tensor:
        """Audio-branch tokens ``[B, n_tokens, audio_dim]`` from clean latents ``[B, C, n_tokens·patch]``:
        token j holds frames ``j·patch .. j·patch + patch − 1`` (``C·patch`` channels, frame-major),
        channels repeat-interleaved to ``audio_dim``; ``mask`` ``[B, n_tokens]``
        zeroes tokens. Decision: upstream (SAO-1.0, patch 1) repeats the latent channels ×12; with patch
        p > 1 a token takes its p frames whole instead of an average, so no frame is lost."""
        b, c, frames = latents.shape
        x = latents.reshape(b, c, n_tokens, frames // n_tokens).permute(0, 3, 1, 2).reshape(b, -1, n_tokens)
        x = x.repeat_interleave(self.audio_dim // x.shape[1], dim=1)
        if mask is not None:
            x = x * mask[:, None, :].to(x.dtype)
        return x.transpose(1, 2)


class MuseControlLiteHook:
    """The :class:`~t2mbench.reference_models.transformer.BlockControl` of one forward."""

    def __init__(self, adapter: MuseControlLite, tokens: torch.Tensor | None, audio: torch.Tensor | None) -> None:
        self.adapter, self.tokens, self.audio = adapter, tokens, audio

    def residuals(self, x, context, rope) -> Sequence[torch.Tensor]:
        return ()

    def cross_attention(self, block: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
        p = self.adapter.processor(block)

        def extra(q: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(q.shape[0], q.shape[2], q.shape[1] * q.shape[3], dtype=q.dtype, device=q.device)
            if self.tokens is not None:
                out = out + self.adapter.scale * p.attend(q, self.tokens.to(q.dtype), p.to_k_ip, p.to_v_ip, p.conv_out)
            if self.audio is not None:
                out = out + p.attend(q, self.audio.to(q.dtype), p.to_k_ip_audio, p.to_v_ip_audio, p.conv_out_audio)
            return out

        return extra
