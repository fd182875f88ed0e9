"""AP-Adapter: an audio prompt through decoupled cross-attention (Tsai et al., ISMIR 2024, arXiv 2407.16564;
code fundwotsai2001/AP-adapter @ 2e0e38c, ``APadapter/ap_adapter/attention_processor.py``,
``audio_encoder/AudioMAE.py``; spec ``control_adapters.md`` §4).

Per adapted cross-attention with (normed) queries Q ``[B, H, N, d]``, text context c and audio-prompt
tokens a ``[B, S, Dc]``:

    A_txt   = softmax(Q·(c W_k)ᵀ/√d)·(c W_v)            (the frozen layer)
    A_audio = softmax(Q·(a W'_k)ᵀ/√d)·(a W'_v)          (W'_k, W'_v: Dc -> Dc, no bias)
    out     = W_o·(A_txt + λ·A_audio)

W'_k and W'_v are **copies** of the layer's ``to_k``/``to_v`` at initialisation (here the two halves
of the fused ``to_kv``); there is no zero-initialised output, so an untrained adapter already
moves the output by λ·A_audio. Only W'_k, W'_v are trainable. The layer's k-norm (``qk_norm="ln"``
models), frozen, is applied to the new keys as to the text keys, so that the copied branch is
the text branch on the same tokens (the upstream base, AudioLDM2, has no k-norm).

Layer selection. Upstream adds the branch only to the AudioLDM2 cross-attentions whose context
is the 768-d GPT-2 ("LOA") stream (the processor dimension cycle [–, –, 768, 768, 1024, 1024,
–, –]), because the audio tokens replace part of that stream's context (its first 8 tokens stay
on the frozen K/V, the AudioMAE tokens go to W'_k, W'_v), while the T5 layers see another
context. The rule is "every cross-attention whose context carries the prompt tokens". The DiT
(SAO-style) has a single cross-attention context per block, the one carrying the prompt, so
the rule selects **every block's cross-attention** here.

Audio features (:class:`AudioPromptEncoder`): a frozen encoder gives tokens on a time × frequency
patch grid, pooled with kernel = stride = (r, r) as ½(avg + max) (:func:`pool_grid`), then mapped
to the context width. Upstream uses AudioMAE ViT-B (512 patch tokens = 64 time × 8 freq, 768-d,
16 kHz Kaldi fbank, 128 mel, normalised (x + 4.268)/(2·4.569)); its weights cannot be obtained
here, so the product's encoder (:class:`t2mbench.bench.audio_prompt.EvaluatorPatchEncoder`, in
``bench`` because the evaluator is a metric, a layer above the models) uses the frozen convolutional
stages of t2mbench's shipped evaluator on the same 10.24-s window: a
grid of 82 time × 8 frequency cells of 64 channels (pool rates 1, 2, 4, 8 fit, as upstream's).
Because 64 ≠ the context width, the pooled tokens go through a fixed, frozen random projection
(seeded, N(0, 1/64)); with AudioMAE on a 768-d context none is needed. The unconditional branch
is the encoder on an **all-zero input feature map**, not zero tokens: upstream's pipeline runs
AudioMAE on a zero tensor shaped like the normalised fbank (``pipeline/pipeline_audioldm2.py``; the
encoder's own ``get_unconditional_condition``, zero tokens, is not what inference uses).
Negative prompts work as upstream's presets use them: the unconditional branch is (negative
text, null audio).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.errors import ConfigError, WeightsError
from t2mbench.reference_models.adapters.musecontrollite import token_heads
from t2mbench.reference_models.guidance import Cond, GuidedModel, null_condition
from t2mbench.reference_models.model import LatentDiffusionModel
from t2mbench.reference_models.transformer import Attention, ContinuousTransformer

DEFAULT_SCALE = 0.5  # the spec's timbre-transfer and accompaniment presets: λ 0.5, pooling 2×2
DEFAULT_POOL = 2
PROJECTION_SEED = 0


def pool_grid(tokens: torch.Tensor, grid: tuple[int, int], rate: int) -> torch.Tensor:
    """Pool tokens ``[B, T·F, D]`` on a time-major grid ``(T, F)`` (token ``t·F + f``) with kernel =
    stride = ``(rate, rate)``: ½(average + maximum) per cell, remainders dropped (floor) ->
    ``[B, (T//rate)·(F//rate), D]``, time-major again (upstream's ``AvgPool2d``/``MaxPool2d`` pair)."""
    b, n, d = tokens.shape
    t, f = grid
    if n != t * f:
        raise ValueError(f"{n} tokens are not a {t}x{f} grid")
    if not 1 <= rate <= min(t, f):
        raise ConfigError(f"pooling rate {rate} does not fit the {t}x{f} (time x frequency) feature grid")
    x = tokens.transpose(1, 2).reshape(b, d, t, f)
    pooled = (F.avg_pool2d(x, rate, rate) + F.max_pool2d(x, rate, rate)) / 2
    return pooled.flatten(2).transpose(1, 2)


class AudioPromptEncoder(Protocol):
    """A frozen audio encoder for the prompt: ``inputs`` gives its network input from audio, ``grid``
    runs the network on it. The unconditional tokens are ``grid(zeros_like(inputs(...)))``."""

    width: int  # feature channels D

    def inputs(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Float audio ``[B, C, T]`` at ``sample_rate`` Hz -> the network input (batch first)."""

    def grid(self, inputs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Network input -> tokens ``[B, T·F, D]`` time-major, and the grid ``(T, F)``."""


class APProcessor(nn.Module):
    """One cross-attention's W'_k, W'_v (``to_k_ip``, ``to_v_ip``: the context width to itself, no bias),
    copied from the layer's ``to_kv`` halves."""

    def __init__(self, attn: Attention) -> None:
        super().__init__()
        width = attn.kv_heads * attn.dim_heads
        like = {"device": attn.to_kv.weight.device, "dtype": attn.to_kv.weight.dtype}
        self.to_k_ip = nn.Linear(width, width, bias=False, **like)
        self.to_v_ip = nn.Linear(width, width, bias=False, **like)
        with torch.no_grad():
            w_k, w_v = attn.to_kv.weight.chunk(2, dim=0)
            self.to_k_ip.weight.copy_(w_k)
            self.to_v_ip.weight.copy_(w_v)

    def attend(self, q: torch.Tensor, tokens: torch.Tensor, k_norm: nn.Module | None) -> torch.Tensor:
        """A_audio ``[B, N, H·d]`` for normed queries ``[B, H, N, d]`` and audio tokens ``[B, S, Dc]``."""
        b, h, n, d = q.shape
        k, v = token_heads(tokens, self.to_k_ip, self.to_v_ip, h, d)
        if k_norm is not None:
            k = k_norm(k)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, h * d)


class APAdapter(nn.Module):
    """The trainable part (one :class:`APProcessor` per block, ``processors.<i>``) plus the frozen
    projection ``proj`` ``[Dc, feature_width]`` of the encoder's pooled tokens to the context width."""

    def __init__(self, transformer: ContinuousTransformer, feature_width: int, scale: float = DEFAULT_SCALE) -> None:
        super().__init__()
        attns = [layer.cross_attn for layer in transformer.layers if layer.cross_attend]
        if not attns:
            raise ConfigError("an audio prompt needs a model with cross-attention")
        self.scale = scale
        self.k_norms = [a.k_norm if a.qk_norm == "ln" else None for a in attns]  # frozen, the base's
        self.processors = nn.ModuleList(APProcessor(a) for a in attns)
        width = attns[0].kv_heads * attns[0].dim_heads
        g = torch.Generator().manual_seed(PROJECTION_SEED)
        proj = torch.randn(width, feature_width, generator=g) / feature_width**0.5
        self.register_buffer("proj", proj.to(attns[0].to_kv.weight.device))

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled encoder tokens ``[B, S, feature_width]`` -> audio tokens ``[B, S, Dc]``."""
        return features.to(self.proj.dtype) @ self.proj.T


class APAdapterHook:
    """The :class:`~t2mbench.reference_models.transformer.BlockControl` of one forward: adds
    λ·A_audio of ``tokens`` ``[B, S, Dc]`` inside every block's cross-attention."""

    def __init__(self, adapter: APAdapter, tokens: torch.Tensor) -> None:
        self.adapter, self.tokens = adapter, tokens

    def residuals(self, x, context, rope) -> Sequence[torch.Tensor]:
        return ()

    def cross_attention(self, block: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
        p, k_norm = self.adapter.processors[block], self.adapter.k_norms[block]

        def extra(q: torch.Tensor) -> torch.Tensor:
            return self.adapter.scale * p.attend(q, self.tokens.to(q.dtype), k_norm)

        return extra


class AudioPromptedModel(nn.Module):
    """``base`` (frozen) plus an :class:`APAdapter`, callable as the DiT with one more keyword:
    ``model(x [B, C, L], t [B], cross_attn_cond=..., global_cond=..., audio_prompt=[B, S, Dc])``."""

    def __init__(self, base: LatentDiffusionModel, adapter: APAdapter) -> None:
        super().__init__()
        self.base, self.adapter = base, adapter
        base.requires_grad_(False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, *, cross_attn_cond: torch.Tensor | None = None,
                global_cond: torch.Tensor | None = None, audio_prompt: torch.Tensor) -> torch.Tensor:
        return self.base.dit(x, t, cross_attn_cond=cross_attn_cond, global_cond=global_cond,
                             control=APAdapterHook(self.adapter, audio_prompt))


def load_adapter_weights(adapter: APAdapter, path: str | Path) -> None:
    """Load W'_k, W'_v from ``path``: a training run's ``ema.safetensors`` (keys ``adapter.processors.*``) or
    the adapter's own state dict (``processors.*``); the fixed projection is not read (it is seeded).

    Raises:
        WeightsError: unreadable, or without exactly this model's processor weights and shapes.
    """
    from t2mbench.reference_models.checkpoints import read_state_dict

    state = {k.removeprefix("adapter."): v for k, v in read_state_dict(path).items()}
    state = {k: v for k, v in state.items() if k.startswith("processors.")}
    want = {k: tuple(v.shape) for k, v in adapter.state_dict().items() if k.startswith("processors.")}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != want:
        missing = sorted(set(want) - set(got))
        detail = f"missing {missing[0]}" if missing else "other keys or shapes than this model's"
        raise WeightsError(f"{path}: not an AP-Adapter for this model ({detail})")
    ref = adapter.processors[0].to_k_ip.weight
    adapter.load_state_dict({**adapter.state_dict(), **{k: v.to(ref) for k, v in state.items()}})


def ap_adapter(base: LatentDiffusionModel, feature_width: int, scale: float = DEFAULT_SCALE) -> AudioPromptedModel:
    """A copy-initialised AP-Adapter on every cross-attention of ``base`` (module doc)."""
    return AudioPromptedModel(base, APAdapter(base.dit.transformer, feature_width, scale))


def encode_prompt(encoder: AudioPromptEncoder, audio: torch.Tensor, sample_rate: int,
                  rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled encoder tokens of ``audio`` ``[B, C, T]`` and of the all-zero input (the unconditional
    branch), each ``[B, S, D]``, at pooling ``rate``."""
    with torch.no_grad():
        inputs = encoder.inputs(audio, sample_rate)
        cond, grid = encoder.grid(inputs)
        null, _ = encoder.grid(torch.zeros_like(inputs))
    return pool_grid(cond, grid, rate), pool_grid(null, grid, rate)


@dataclass
class AudioPromptInputs:
    """What :func:`t2mbench.reference_models.generate.generate` takes as ``control`` to generate with
    an audio prompt: ``model``, and audio tokens ``[1, S, Dc]`` of the prompt and of the null input, used for
    every prompt. Guidance is AP-Adapter's single CFG: (text, audio) against (negative or empty text,
    null audio) at the text scale."""

    model: AudioPromptedModel
    tokens: torch.Tensor
    null: torch.Tensor

    def guided(self, cond: Cond, uncond: Cond | None, rows: slice, length: int, text_scale: float,
               **kwargs) -> GuidedModel:
        """The guided model of one batch (``rows`` and ``length`` are unused: the prompt is global)."""
        batch = next(v for v in cond.values() if v is not None).shape[0]
        uncond = null_condition(cond) if uncond is None else uncond
        return GuidedModel(self.model, {**cond, "audio_prompt": self.tokens.expand(batch, -1, -1)},
                           {**uncond, "audio_prompt": self.null.expand(batch, -1, -1)}, scale=text_scale, **kwargs)


def check_knobs(scale: float, pool: int, max_pool: int | None = None) -> None:
    """λ must be a finite number >= 0; the pooling rate a power of two (upstream's 1, 2, 4, 8), at most
    ``max_pool`` (the smaller side of the feature grid) when given."""
    if not (math.isfinite(scale) and scale >= 0):
        raise ConfigError(f"audio-prompt scale must be >= 0, got {scale:g}")
    if pool < 1 or pool & (pool - 1) or (max_pool is not None and pool > max_pool):
        most = f" from 1 to {max_pool} (the feature grid's frequency cells)" if max_pool is not None else ""
        raise ConfigError(f"audio-prompt pooling rate must be a power of two{most}, got {pool}")


def audio_prompt_inputs(model: LatentDiffusionModel, audio: torch.Tensor, sample_rate: int,
                        encoder: AudioPromptEncoder, scale: float = DEFAULT_SCALE, pool: int = DEFAULT_POOL,
                        weights: str | Path | None = None) -> AudioPromptInputs:
    """:class:`AudioPromptInputs` for ``audio`` ``[1, C, T]`` at ``sample_rate`` Hz: an adapter with λ = ``scale``
    on ``model``, copy-initialised or loaded from ``weights`` (:func:`load_adapter_weights`), and pooling rate
    ``pool`` (a power of two); ``encoder`` gives the prompt's feature grid (the product's is
    :class:`t2mbench.bench.audio_prompt.EvaluatorPatchEncoder`)."""
    check_knobs(scale, pool)
    feats, null = encode_prompt(encoder, audio, sample_rate, pool)
    adapted = ap_adapter(model, encoder.width, scale)
    dtype = model.dit.preprocess_conv.weight.dtype
    device = model.dit.preprocess_conv.weight.device
    adapted.adapter.to(device=device, dtype=dtype)
    if weights is not None:
        load_adapter_weights(adapted.adapter, weights)
    return AudioPromptInputs(adapted.eval(), adapted.adapter.tokens(feats.to(device)),
                             adapted.adapter.tokens(null.to(device)))
