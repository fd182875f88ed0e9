"""Audiobox Aesthetics (``audiobox-aesthetics`` 0.0.4, ``AesPredictor``) in pure PyTorch: per-clip
scores for content enjoyment, content usefulness, production complexity and production quality.

The predictor (``audiobox_aesthetics/infer.py``), per clip:

1. ``torchaudio.functional.resample`` to 16 kHz (its default Hann-windowed sinc, re-implemented in
   :mod:`t2mbench.core.dsp.resample_hann`), then the channel mean (the two commute: both linear);
2. windows of 10 s every 10 s (``make_inference_batch``): ``wav[i : i + 160000]`` for i = 0, 160000, ...,
   the last zero-padded to 160000 with a mask of its real samples; window weight = real samples / 160000;
3. ``AesMultiOutput`` on each window → 4 normalised scores; each is mapped back with the checkpoint's
   ``target_transform`` (``x · std + mean``) and the clip's score is the weight-averaged window score.

``AesMultiOutput`` (``model/aes.py``, ``model/wavlm.py``): a WavLM-base encoder (conv feature
encoder as HuBERT's, LayerNorm(512) on its frames, Linear 512 → 768; padded frames zeroed; the
weight-normed positional conv; LayerNorm; 12 post-LN layers whose attention adds a gated relative
position bias: bucketed relative distances (320 buckets, max distance 800) → layer 0's
``relative_attention_bias`` table, the same ungated bias shared by all layers, each gating it per
query with ``σ(grep_linear(x_h))``: ``a·(b·grep_a − 1) + 2``). The 13 hidden states (after the
first LayerNorm, then each layer) are averaged with ``softmax(layer_weights[axis])``, mean-pooled over
the window's real frames (a frame is padding when all 320 of its samples are), L2-normalised and fed
to the axis's MLP head (``proj_layer[axis]``).

Here the layer average and the time mean are swapped (both linear: the same numbers up to float
rounding), so the 13 hidden states are never stored; attention is ``scaled_dot_product_attention``.
The checkpoint's ``model_cfg["precision"]`` is honoured as upstream does (autocast for "16"/"bf16").
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.dsp.resample_hann import resample_hann
from t2mbench.core.errors import AudioError, ConfigError, WeightsError
from t2mbench.core.torch_files import load_state_file
from t2mbench.core.weights import WeightFile, hash_file, register_all, resolve
from t2mbench.metrics.embedders.base import Embedder, state_dict_mismatch, state_dict_sha256
from t2mbench.metrics.embedders.mert import PositionalConv

SAMPLE_RATE = 16_000
WINDOW = 10 * SAMPLE_RATE  # make_inference_batch(hop_size=10, window_size=10)
AXES = ("CE", "CU", "PC", "PQ")  # upstream's AXES_NAME order; embed() returns the scores in this order
PRECISIONS = {"32": torch.float32, "16": torch.float16, "bf16": torch.bfloat16, "64": torch.float64}

WEIGHTS = register_all(
    WeightFile(
        name="audiobox-aesthetics",
        filename="audiobox-aesthetics/checkpoint.pt",
        url="https://dl.fbaipublicfiles.com/audiobox-aesthetics/checkpoint.pt",
        sha256=None,
        description="Audiobox Aesthetics predictor (CE/CU/PC/PQ), audiobox-aesthetics 0.0.4",
        note=(
            "upstream publishes no hash (also at huggingface.co/facebook/audiobox-aesthetics, checkpoint.pt); "
            "the loader checks every key and shape, the model_cfg and the target_transform instead: add the "
            "sha256 here once a published file has been hashed"
        ),
        licence="CC-BY-4.0 (facebookresearch/audiobox-aesthetics)",
    )
)
CHECKPOINT = WEIGHTS[0]


@dataclass(frozen=True)
class WavLMConfig:
    """WavLM sizes (defaults: ``DEFAULT_AUDIO_CFG`` of ``model/aes.py``, WavLM-base; tests use smaller ones)."""

    dim: int = 768
    layers: int = 12
    heads: int = 12
    ffn: int = 3072
    conv_dim: int = 512
    conv_kernels: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_strides: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    pos_kernel: int = 128
    pos_groups: int = 16
    buckets: int = 320
    max_distance: int = 800


@dataclass(frozen=True)
class HeadConfig:
    """The checkpoint's ``model_cfg`` entries that shape the heads (``AesMultiOutput`` fields)."""

    proj_num_layer: int = 1
    proj_ln: bool = False
    nth_layer: int = 13
    use_weighted_layer_sum: bool = True
    normalize_embed: bool = True
    output_dim: int = 1
    precision: str = "32"

    @classmethod
    def from_model_cfg(cls, cfg: Mapping[str, Any], source: str) -> HeadConfig:
        """Read ``model_cfg``; refuse settings this port does not implement (a different activation,
        a head that is not scalar)."""
        try:
            out = cls(**{k: cfg[k] for k in cls.__dataclass_fields__})
        except KeyError as e:
            raise WeightsError(f"{source}: model_cfg lacks {e.args[0]!r}: not an audiobox-aesthetics file") from None
        if cfg.get("proj_act_fn", "gelu") != "gelu" or out.output_dim != 1 or str(out.precision) not in PRECISIONS:
            raise WeightsError(f"{source}: unsupported model_cfg {dict(cfg)} (this port: gelu heads, output_dim 1)")
        return out


def relative_buckets(length: int, buckets: int, max_distance: int, device: torch.device) -> torch.Tensor:
    """WavLM's bidirectional bucket of ``key - query`` for a ``[length, length]`` grid (int64):
    half the buckets per sign; distances below a quarter of the buckets are exact, larger ones
    log-spaced up to ``max_distance`` (computed in float32, truncated, as upstream)."""
    pos = torch.arange(length, device=device)
    rel = pos[None, :] - pos[:, None]
    half = buckets // 2
    out = (rel > 0).long() * half
    rel = rel.abs()
    exact = half // 2
    large = exact + (torch.log(rel.float() / exact) / math.log(max_distance / exact) * (half - exact)).long()
    large = torch.clamp(large, max=half - 1)
    return out + torch.where(rel < exact, rel, large)


class _Attention(nn.Module):
    """fairseq ``MultiheadAttention`` as WavLM uses it (upstream key names), gated relative bias."""

    def __init__(self, cfg: WavLMConfig, has_bias: bool) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.k_proj, self.v_proj = nn.Linear(cfg.dim, cfg.dim), nn.Linear(cfg.dim, cfg.dim)
        self.q_proj, self.out_proj = nn.Linear(cfg.dim, cfg.dim), nn.Linear(cfg.dim, cfg.dim)
        if has_bias:
            self.relative_attention_bias = nn.Embedding(cfg.buckets, cfg.heads)
        self.grep_linear = nn.Linear(cfg.dim // cfg.heads, 8)
        self.grep_a = nn.Parameter(torch.empty(1, cfg.heads, 1, 1))

    def forward(self, x: torch.Tensor, bias: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """``x [B, T, C]``, ungated ``bias [H, T, T]``, ``pad [B, T]`` (True = padding frame) → ``[B, T, C]``."""
        b, t, c = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, c // self.heads).transpose(1, 2)

        gates = torch.sigmoid(self.grep_linear(split(x)).view(b, self.heads, t, 2, 4).sum(-1))
        gate = gates[..., :1] * (gates[..., 1:] * self.grep_a - 1.0) + 2.0  # [B, H, T, 1]
        mask = gate * bias
        if pad is not None:
            mask = mask.masked_fill(pad[:, None, None, :], float("-inf"))
        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)),
                                             attn_mask=mask)  # fmt: skip
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class _Layer(nn.Module):
    """Post-LN ``TransformerSentenceEncoderLayer`` (LayerNorm eps 1e-5, exact GELU)."""

    def __init__(self, cfg: WavLMConfig, has_bias: bool) -> None:
        super().__init__()
        self.self_attn = _Attention(cfg, has_bias)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.dim)
        self.fc1 = nn.Linear(cfg.dim, cfg.ffn)
        self.fc2 = nn.Linear(cfg.ffn, cfg.dim)
        self.final_layer_norm = nn.LayerNorm(cfg.dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x, bias, pad))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int, norm: bool) -> nn.Sequential:
    """``nn.Sequential(conv, dropout, [GroupNorm], GELU)`` as upstream (index 1, the dropout, is a no-op)."""
    parts: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=False), nn.Identity()]
    if norm:
        parts.append(nn.GroupNorm(c_out, c_out))
    return nn.Sequential(*parts, nn.GELU())


class WavLM(nn.Module):
    """WavLM-base encoder with upstream key names: ``layer_means(wave, frame_pad)`` → ``[L+1, B, C]``."""

    def __init__(self, cfg: WavLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = nn.Module()
        self.feature_extractor.conv_layers = nn.ModuleList(
            _conv_block(1 if i == 0 else cfg.conv_dim, cfg.conv_dim, k, s, norm=i == 0)
            for i, (k, s) in enumerate(zip(cfg.conv_kernels, cfg.conv_strides, strict=True))
        )
        self.layer_norm = nn.LayerNorm(cfg.conv_dim)
        self.post_extract_proj = nn.Linear(cfg.conv_dim, cfg.dim)
        self.mask_emb = nn.Parameter(torch.empty(cfg.dim))  # training only
        self.encoder = nn.Module()
        self.encoder.pos_conv = nn.ModuleList([PositionalConv(cfg.dim, cfg.pos_kernel, cfg.pos_groups)])
        self.encoder.layers = nn.ModuleList(_Layer(cfg, has_bias=i == 0) for i in range(cfg.layers))
        self.encoder.layer_norm = nn.LayerNorm(cfg.dim)

    def frames(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave[:, None]
        for block in self.feature_extractor.conv_layers:
            x = block(x)
        return x.transpose(1, 2)

    def layer_means(self, wave: torch.Tensor, sample_pad: torch.Tensor) -> torch.Tensor:
        """Masked time means of every hidden state: ``wave [B, N]``, ``sample_pad [B, N]`` (True = padding)
        → ``[layers + 1, B, dim]`` (a frame is padding when all its samples are)."""
        x = self.layer_norm(self.frames(wave))
        b, t, _ = x.shape
        n = sample_pad.shape[1]
        pad = sample_pad[:, : n - n % t].reshape(b, t, -1).all(-1)  # WavLM.forward_padding_mask
        x = self.post_extract_proj(x).masked_fill(pad[..., None], 0.0)
        x = self.encoder.layer_norm(x + self.encoder.pos_conv[0](x.transpose(1, 2)).transpose(1, 2))
        keep = (~pad).to(x.dtype)[..., None]
        count = keep.sum(dim=1).clamp(min=1)
        first = self.encoder.layers[0].self_attn.relative_attention_bias
        bias = first(relative_buckets(t, self.cfg.buckets, self.cfg.max_distance, x.device)).permute(2, 0, 1)
        attn_pad = pad if bool(pad.any()) else None
        means = [(x * keep).sum(dim=1) / count]
        for layer in self.encoder.layers:
            x = layer(x, bias, attn_pad)
            means.append((x * keep).sum(dim=1) / count)
        return torch.stack(means)


class AesModel(nn.Module):
    """``AesMultiOutput``: WavLM + per-axis layer weights and MLP heads → normalised scores ``[B, 4]``."""

    def __init__(self, heads: HeadConfig = HeadConfig(), cfg: WavLMConfig = WavLMConfig()) -> None:
        super().__init__()
        if heads.nth_layer != cfg.layers + 1:
            raise WeightsError(f"model_cfg nth_layer {heads.nth_layer}: this port reads all {cfg.layers + 1} states")
        self.heads = heads
        self.wavlm_model = WavLM(cfg)
        self.proj_layer = nn.ModuleDict({axis: self._head(cfg.dim, heads) for axis in AXES})
        if heads.use_weighted_layer_sum:
            self.layer_weights = nn.ParameterDict({axis: nn.Parameter(torch.empty(heads.nth_layer)) for axis in AXES})

    @staticmethod
    def _head(dim: int, heads: HeadConfig) -> nn.Sequential:
        """``create_mlp_block`` (dropout 0): (Linear, [LayerNorm], GELU) × (n - 1), then Linear → 1."""
        parts: list[nn.Module] = []
        for _ in range(heads.proj_num_layer - 1):
            parts += [nn.Linear(dim, dim), *([nn.LayerNorm(dim)] if heads.proj_ln else []), nn.GELU()]
        return nn.Sequential(*parts, nn.Linear(dim, heads.output_dim))

    def forward(self, wave: torch.Tensor, sample_pad: torch.Tensor) -> torch.Tensor:
        """``wave [B, 160000]`` at 16 kHz, ``sample_pad [B, 160000]`` → normalised scores ``[B, 4]`` (AXES order)."""
        dtype = PRECISIONS[str(self.heads.precision)]
        with torch.autocast(wave.device.type, dtype=dtype, enabled=dtype in (torch.float16, torch.bfloat16)):
            means = self.wavlm_model.layer_means(wave, sample_pad)  # [L+1, B, C]
            out = []
            for axis in AXES:
                if self.heads.use_weighted_layer_sum:
                    emb = torch.einsum("lbc,l->bc", means, torch.softmax(self.layer_weights[axis], dim=-1))
                else:
                    emb = means[-1]
                if self.heads.normalize_embed:
                    emb = F.normalize(emb, dim=-1)
                out.append(self.proj_layer[axis](emb)[:, 0])
        return torch.stack(out, dim=1).float()


def windows(wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``make_inference_batch``: mono ``[B, N]`` at 16 kHz → windows ``[B, W, 160000]`` (the last zero-padded),
    their padding masks (True = padding) and weights ``[W]`` (real samples / 160000)."""
    b, n = wave.shape
    w = -(-n // WINDOW)
    padded = F.pad(wave, (0, w * WINDOW - n)).view(b, w, WINDOW)
    real = torch.clamp(n - torch.arange(w) * WINDOW, max=WINDOW)
    pad = torch.arange(WINDOW)[None, :] >= real[:, None]
    return padded, pad.expand(b, w, WINDOW), real.double() / WINDOW


class AestheticsEmbedder(Embedder):
    """Audiobox Aesthetics scores as ``AesPredictor.forward`` computes them.

    ``embed(audio [B, C, T] float, sample_rate) -> [B, 4]`` float32 (CE, CU, PC, PQ on upstream's
    1-10 scale): torchaudio-default resampling to 16 kHz, channel mean, 10 s windows, the network,
    ``score · std + mean`` per axis, weighted mean over the windows.

    Raises:
        AudioError: not ``[B, C, T]``, or non-finite samples.
    """

    name = "audiobox_aesthetics"
    sample_rate = SAMPLE_RATE
    protocol_version = "audiobox-aes-1"

    def __init__(
        self, net: AesModel, target_transform: Mapping[str, Mapping[str, float]], weights_sha256: str,
        *, batch_size: int = 4,
    ) -> None:  # fmt: skip
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"audiobox batch_size must be a positive integer, got {batch_size!r}")
        self.net = net.eval()
        self.mean = torch.tensor([float(target_transform[a]["mean"]) for a in AXES], dtype=torch.float64)
        self.std = torch.tensor([float(target_transform[a]["std"]) for a in AXES], dtype=torch.float64)
        self.weights_sha256 = weights_sha256
        self.batch_size = batch_size

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(), "model": "audiobox-aesthetics AesMultiOutput", "axes": list(AXES),
            "resampler": "torchaudio sinc_interp_hann (width 6, rolloff 0.99)", "window_s": WINDOW / SAMPLE_RATE,
            "hop_s": WINDOW / SAMPLE_RATE, "precision": str(self.net.heads.precision),
            "weights_sha256": self.weights_sha256,
        }  # fmt: skip

    def to_rate(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """torchaudio's default resampler (what ``AesPredictor`` uses), not soxr."""
        flat = audio.reshape(-1, audio.shape[-1]).detach().cpu().numpy()
        out = torch.from_numpy(resample_hann(flat, sample_rate, SAMPLE_RATE))
        return out.reshape(*audio.shape[:-1], -1)

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        if audio.ndim != 3 or 0 in audio.shape:
            raise AudioError(f"audiobox expects audio of shape [batch, channels, samples], got {tuple(audio.shape)}")
        if not torch.isfinite(audio).all():
            raise AudioError("audiobox input contains NaN or Inf samples")
        mono = self.to_rate(audio.float(), sample_rate).mean(dim=1)
        wins, pads, weights = windows(mono)
        b, w, _ = wins.shape
        device = self.net.wavlm_model.mask_emb.device
        with torch.inference_mode():
            flat, flat_pad = wins.reshape(b * w, WINDOW), pads.reshape(b * w, WINDOW)
            scores = torch.cat([
                self.net(x.to(device), p.to(device)).cpu()
                for x, p in zip(flat.split(self.batch_size), flat_pad.split(self.batch_size), strict=True)
            ]).view(b, w, len(AXES))  # fmt: skip
        scores = scores.double() * self.std + self.mean
        return ((scores * weights[None, :, None]).sum(dim=1) / weights.sum()).float()


def config_from_state(state: Mapping[str, Any]) -> WavLMConfig:
    """The WavLM sizes ``state`` (upstream ``state_dict``, ``model.`` prefix removed) holds: width and conv
    width from ``post_extract_proj``, depth from the layers, FFN from ``fc1``, heads and relative-position
    buckets from the first layer's ``relative_attention_bias``, the positional kernel and groups from
    ``weight_v``; the conv kernels and strides and ``max_distance`` are WavLM-base's. WavLM-base's sizes
    when those keys are absent (the strict key check then names what is wrong)."""
    p = "wavlm_model.encoder."
    try:
        proj = tuple(state["wavlm_model.post_extract_proj.weight"].shape)
        bias = tuple(state[p + "layers.0.self_attn.relative_attention_bias.weight"].shape)
        pos = tuple(state[p + "pos_conv.0.weight_v"].shape)
        ffn = int(state[p + "layers.0.fc1.weight"].shape[0])
    except (KeyError, AttributeError, IndexError):
        return WavLMConfig()
    if len(proj) != 2 or len(bias) != 2 or len(pos) != 3 or pos[1] == 0:
        return WavLMConfig()
    layers = sum(1 for k in state if k.startswith(p + "layers.") and k.endswith(".fc1.weight"))
    return WavLMConfig(dim=int(proj[0]), conv_dim=int(proj[1]), layers=layers, heads=int(bias[1]), ffn=ffn,
                       buckets=int(bias[0]), pos_kernel=int(pos[2]), pos_groups=max(1, int(proj[0]) // int(pos[1])))


def build_model(ckpt: Mapping[str, Any], source: str, cfg: WavLMConfig | None = None) -> AesModel:
    """The network of an upstream checkpoint dict (``state_dict`` with its ``model.`` prefix, ``model_cfg``),
    keys and shapes checked strictly; ``cfg=None`` reads the sizes from the shapes (:func:`config_from_state`)."""
    heads = HeadConfig.from_model_cfg(ckpt["model_cfg"], source)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    cfg = config_from_state(state) if cfg is None else cfg
    with torch.device("meta"):
        net = AesModel(heads, cfg)
    problem = state_dict_mismatch({k: tuple(v.shape) for k, v in net.state_dict().items()}, state)
    if problem:
        raise WeightsError(f"{source}: not an audiobox-aesthetics AesMultiOutput checkpoint: {problem}")
    net.load_state_dict({k: v.float().clone() for k, v in state.items()}, strict=True, assign=True)
    for axis in AXES:
        entry = ckpt["target_transform"].get(axis) if isinstance(ckpt["target_transform"], Mapping) else None
        if not isinstance(entry, Mapping) or not {"mean", "std"} <= set(entry) or not np.isfinite(float(entry["std"])):
            raise WeightsError(f"{source}: target_transform lacks the mean/std of axis {axis}")
    return net.eval()


def load_audiobox(
    checkpoint: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    device: str | torch.device = "cpu",
    verify: bool = True,
    batch_size: int = 4,
    config: WavLMConfig | None = None,
) -> AestheticsEmbedder:
    """Build the aesthetics predictor from the published ``checkpoint.pt``.

    Args:
        checkpoint: ``None`` for the registered file (``$T2MBENCH_HOME/weights/audiobox-aesthetics/checkpoint.pt``),
            a path to a file in the upstream layout, or such a dict (``state_dict``, ``model_cfg``,
            ``target_transform``) built in memory.
        device: where the network runs (``embed`` takes and returns CPU tensors).
        verify: check the file's sha256 when one is published (none is recorded yet).
        batch_size: 10 s windows per forward pass.
        config: encoder sizes; ``None`` reads them from the checkpoint's shapes (the published file gives
            WavLM-base, a reduced file in the same layout, e.g. seeded test weights, its own).

    Raises:
        MissingWeightsError: the file is absent (the message says where to get it and put it).
        WeightsError: unreadable file, or not an audiobox-aesthetics checkpoint.
    """
    if isinstance(checkpoint, Mapping):
        source, ckpt = "in-memory checkpoint", checkpoint
        sha = state_dict_sha256(ckpt["state_dict"]) if "state_dict" in ckpt else ""
    else:
        path = resolve(CHECKPOINT.name, checkpoint, verify=verify)
        ckpt = load_state_file(path, "the audiobox-aesthetics checkpoint", CHECKPOINT.url)
        source, sha = str(path), hash_file(path)
    if not {"state_dict", "model_cfg", "target_transform"} <= set(ckpt):
        raise WeightsError(f"{source}: not an audiobox-aesthetics checkpoint (it needs state_dict, model_cfg and "
                           f"target_transform; it has {sorted(ckpt)[:5]})")
    net = build_model(ckpt, source, config)
    return AestheticsEmbedder(net.to(device), ckpt["target_transform"], sha, batch_size=batch_size)
