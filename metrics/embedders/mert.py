"""MERT-v1-95M (``m-a-p/MERT-v1-95M``) frame embeddings in pure PyTorch, with fadtk's ``MERTModel`` defaults.

Upstream's model code is Hugging Face remote code (``modeling_MERT.py`` / ``configuration_MERT.py`` in
the hub repo, identical to ``yizhilll/MERT`` ``scripts/mert_hf/``): ``MERTModel`` subclasses
transformers' ``HubertModel``. The 95M model's config switches off every MERT extension
(``feature_extractor_cqt`` false, ``deepnorm`` false, ``attention_relax`` -1,
``do_stable_layer_norm`` false), so the network is a HuBERT-base:

- feature encoder (``feat_extract_norm="group"``): 7 bias-free Conv1d of 512 channels, kernels
  (10, 3, 3, 3, 3, 2, 2), strides (5, 2, 2, 2, 2, 2, 2), exact GELU after each; the first also has a
  GroupNorm with one group per channel (statistics over time, eps 1e-5) between conv and GELU.
  320 samples per frame: 75 frames/s at 24 kHz; ``T = 1 + (N - 400) // 320`` frames for N ≥ 400;
- feature projection: LayerNorm(512, eps 1e-5) (``feat_proj_layer_norm``) → Linear(512 → 768);
- positional conv: Conv1d(768, 768, kernel 128, padding 64, 16 groups) with weight norm over
  dim 2 (``weight_g`` [1, 1, 128], ``weight_v`` [768, 48, 128]), its last output frame dropped,
  exact GELU, added to the input; then LayerNorm (eps 1e-5);
- 12 post-LN transformer layers (12 heads, FFN 3072, exact GELU, LayerNorm eps 1e-5):
  ``x = LN1(x + attn(x)); x = LN2(x + ffn(x))``.

``hidden_states[0]`` is the output of that LayerNorm, ``hidden_states[i]`` that of layer i; fadtk's
``MERT-v1-95M`` reads layer 12 (``MERT-v1-95M-<i>`` reads layer i). Only layers up to the one read
are computed. ``masked_spec_embed`` is in the checkpoint but used only in training.

MERT-v1-330M (``MertConfig.stable_layer_norm``; its hub ``config.json``: ``do_stable_layer_norm``
true, hidden 1024, 24 layers, FFN 4096, the same conv stack, group norm and feature-projection
LayerNorm) uses transformers' ``HubertEncoderStableLayerNorm``: pre-LN layers
``x = x + attn(LN1(x)); x = x + ffn(LN2(x))``, the positional conv added *without* a LayerNorm
after it, and the encoder LayerNorm applied after the last layer. So ``hidden_states[0]`` is the
input plus the positional conv, ``hidden_states[i]`` (i < 24) the raw output of layer i, and
``hidden_states[24]`` the LayerNorm of layer 24's output. Its ``attention_relax`` (32.0) is read only
by ``HubertEncoder_extend`` (``deepnorm``), never by the stable-layer-norm encoder, so it changes
nothing. The key layout is the 95M's (the same module names). The network, its weights entry and
mad-metric's settings for it live in :mod:`t2mbench.metrics.embedders.mert_330m`.

fadtk (``fadtk/model_loader.py`` ``MERTModel``, ``ModelLoader.get_embedding``), per clip:

1. mono at 24 kHz (fadtk converts the file with ffmpeg; here the caller's soxr HQ resampler);
2. truncated to 6 minutes (``limit_minutes=6``);
3. ``Wav2Vec2FeatureExtractor``: ``(x - mean) / sqrt(var + 1e-7)`` over the clip (``do_normalize``);
   UNCERTAIN: the hub's ``preprocessor_config.json`` could not be read here. Decided: it is recalled
   as ``do_normalize: true, return_attention_mask: true, sampling_rate: 24000``, and an independent
   conversion's model card (``khersh/MERT-v1-95M-apple-silicon``) also documents the input as
   "24kHz, zero-mean unit-variance normalized"; the fixture runs transformers' extractor with exactly
   those settings. (MERT's fairseq pre-training config has ``normalize: false``; ``normalize=False``
   reproduces an extractor without normalisation.)
   The all-ones attention mask the extractor returns changes nothing in the network;
4. the whole clip in one forward pass (no windowing), layer ``layer``'s frames ``[T, 768]``;
5. stored as float16 (fadtk's ``get_embedding`` casts float32 embeddings to float16): ``embed``
   returns those values as float32 (``float16=False`` keeps the network's float32).

Speed and memory (same numbers up to float rounding): the conv feature encoder runs in chunks of
250 frames, its first GroupNorm from float64 statistics of the whole clip (:meth:`Mert.features`);
attention is ``scaled_dot_product_attention``; the weight-normed positional kernel is computed once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.errors import AudioError, ConfigError, WeightsError
from t2mbench.core.torch_files import load_state_file
from t2mbench.core.weights import WeightFile, hash_file, register_all, resolve
from t2mbench.metrics.embedders.base import Embedder, state_dict_mismatch, state_dict_sha256

SAMPLE_RATE = 24_000
HOP = 320  # product of the conv strides
RECEPTIVE = 400  # the conv stack's receptive field: the shortest input giving one frame
LIMIT_SAMPLES = 6 * 60 * SAMPLE_RATE  # fadtk's limit_minutes=6
NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm
CHUNK_FRAMES = 250  # frames (3.3 s) per pass of the conv feature encoder

WEIGHTS = register_all(
    WeightFile(
        name="mert-v1-95m",
        filename="MERT-v1-95M/pytorch_model.bin",
        url="https://huggingface.co/m-a-p/MERT-v1-95M/resolve/main/pytorch_model.bin",
        sha256=None,
        description="MERT-v1-95M self-supervised music model (fad_mert), m-a-p",
        note=(
            "the sha256 of this Git LFS file on huggingface.co could not be retrieved when this entry was "
            "written (no network); the loader checks every key and shape instead: add the published LFS sha256 here"
        ),
        # the current model card's licence (its earliest revisions said MIT)
        licence="CC-BY-NC-4.0 (m-a-p/MERT-v1-95M): non-commercial use only",
    )
)
CHECKPOINT = WEIGHTS[0]


@dataclass(frozen=True)
class MertConfig:
    """The network's sizes (defaults: MERT-v1-95M's ``config.json``; tests use smaller ones)."""

    hidden: int = 768
    layers: int = 12
    heads: int = 12
    ffn: int = 3072
    conv_dim: int = 512
    conv_kernels: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_strides: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    pos_kernel: int = 128
    pos_groups: int = 16
    eps: float = 1e-5
    stable_layer_norm: bool = False  # pre-LN encoder (MERT-v1-330M's do_stable_layer_norm)


class _Conv(nn.Module):
    """One feature-encoder layer (HF ``Hubert*ConvLayer`` key names): conv, [GroupNorm], GELU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=False)
        if norm:
            self.layer_norm = nn.GroupNorm(c_out, c_out, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if hasattr(self, "layer_norm"):
            x = self.layer_norm(x)
        return F.gelu(x)


class PositionalConv(nn.Module):
    """Weight-normed grouped positional convolution + GELU (HuBERT/WavLM; ``weight_g``/``weight_v`` as published)."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.kernel, self.groups = kernel, groups
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel))
        self.bias = nn.Parameter(torch.empty(dim))
        self._weight: torch.Tensor | None = None

    def weight(self) -> torch.Tensor:
        """``g · v / ‖v‖`` with the norm over dims 0 and 1 (weight norm with ``dim=2``), computed once."""
        if self._weight is None or self._weight.device != self.weight_v.device:
            with torch.no_grad():
                self._weight = torch._weight_norm(self.weight_v, self.weight_g, 2)
        return self._weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T]`` → ``[B, C, T]``: padded by kernel/2 on both sides, last frame dropped (even kernel)."""
        y = F.conv1d(x, self.weight(), self.bias, padding=self.kernel // 2, groups=self.groups)
        return F.gelu(y[..., : x.shape[-1]] if self.kernel % 2 == 0 else y)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class _Layer(nn.Module):
    """Encoder layer (HF ``HubertEncoderLayer`` key names): post-LN, or pre-LN with ``stable_layer_norm``
    (``HubertEncoderLayerStableLayerNorm``, the same key names)."""

    def __init__(self, cfg: MertConfig) -> None:
        super().__init__()
        self.attention = _Attention(cfg.hidden, cfg.heads)
        self.layer_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.feed_forward = nn.Module()
        self.feed_forward.intermediate_dense = nn.Linear(cfg.hidden, cfg.ffn)
        self.feed_forward.output_dense = nn.Linear(cfg.ffn, cfg.hidden)
        self.final_layer_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.pre_ln = cfg.stable_layer_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ff = self.feed_forward
        if self.pre_ln:
            x = x + self.attention(self.layer_norm(x))
            return x + ff.output_dense(F.gelu(ff.intermediate_dense(self.final_layer_norm(x))))
        x = self.layer_norm(x + self.attention(x))
        return self.final_layer_norm(x + ff.output_dense(F.gelu(ff.intermediate_dense(x))))


class Mert(nn.Module):
    """MERT (HuBERT-style) network with the published checkpoint's key names.

    ``forward(wave [B, N] normalised, at 24 kHz, layer)`` → hidden state ``layer`` ``[B, T, hidden]``
    (0: the encoder input after its LayerNorm; i: the output of transformer layer i; pre-LN
    (``stable_layer_norm``): 0 is the input without a LayerNorm, and only the last layer's output
    goes through the encoder LayerNorm, as transformers' ``hidden_states`` are).
    """

    def __init__(self, cfg: MertConfig = MertConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = nn.Module()
        self.feature_extractor.conv_layers = nn.ModuleList(
            _Conv(1 if i == 0 else cfg.conv_dim, cfg.conv_dim, k, s, norm=i == 0)
            for i, (k, s) in enumerate(zip(cfg.conv_kernels, cfg.conv_strides, strict=True))
        )
        self.feature_projection = nn.Module()
        self.feature_projection.layer_norm = nn.LayerNorm(cfg.conv_dim, eps=cfg.eps)
        self.feature_projection.projection = nn.Linear(cfg.conv_dim, cfg.hidden)
        self.encoder = nn.Module()
        self.encoder.pos_conv_embed = nn.Module()
        self.encoder.pos_conv_embed.conv = PositionalConv(cfg.hidden, cfg.pos_kernel, cfg.pos_groups)
        self.encoder.layer_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.encoder.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))
        self.masked_spec_embed = nn.Parameter(torch.empty(cfg.hidden))  # training only

    def features(self, wave: torch.Tensor, chunk_frames: int = CHUNK_FRAMES) -> torch.Tensor:
        """Conv feature encoder: ``[B, N]`` → ``[B, T, conv_dim]``, ``T = 1 + (N - 400) // 320``.

        The convolutions are unpadded, so frames ``[j0, j1)`` depend only on samples
        ``[320·j0, 320·(j1 - 1) + 400)`` and the stack runs ``chunk_frames`` frames at a time; only the
        first layer's GroupNorm (per channel, over the whole clip) needs the whole clip: its mean and
        variance are accumulated in float64 over the same chunks first. Peak memory is then that of one
        chunk instead of three copies of the first layer's ``[B, 512, N/5]`` output.
        """
        layers = self.feature_extractor.conv_layers
        first = layers[0]
        hop, field = math.prod(self.cfg.conv_strides), _receptive_field(self.cfg)
        k0, s0 = self.cfg.conv_kernels[0], self.cfg.conv_strides[0]
        n_frames = 1 + (wave.shape[-1] - field) // hop
        spans = [(j, min(j + chunk_frames, n_frames)) for j in range(0, n_frames, chunk_frames)]
        total = torch.zeros(wave.shape[0], self.cfg.conv_dim, 2, dtype=torch.float64, device=wave.device)
        n0 = 1 + (wave.shape[-1] - k0) // s0  # first-layer outputs
        step = chunk_frames * hop // s0
        for i in range(0, n0, step):
            y = first.conv(wave[:, None, i * s0 : (min(i + step, n0) - 1) * s0 + k0]).double()
            total += torch.stack([y.sum(-1), y.square().sum(-1)], dim=-1)
        mean = total[..., 0] / n0
        var = (total[..., 1] / n0 - mean.square()).clamp_min(0.0)
        norm = first.layer_norm
        scale = (norm.weight.double() / torch.sqrt(var + norm.eps)).float()  # [B, C]
        shift = (norm.bias.double() - mean * scale.double()).float()
        out = []
        for j0, j1 in spans:
            x = first.conv(wave[:, None, j0 * hop : (j1 - 1) * hop + field])
            x = F.gelu(torch.addcmul(shift[..., None], x, scale[..., None]))
            for layer in layers[1:]:
                x = layer(x)
            out.append(x.transpose(1, 2))
        return torch.cat(out, dim=1)

    def forward(self, wave: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        layer = self.cfg.layers if layer is None else layer
        proj = self.feature_projection
        x = proj.projection(proj.layer_norm(self.features(wave)))
        x = x + self.encoder.pos_conv_embed.conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.cfg.stable_layer_norm:
            x = self.encoder.layer_norm(x)
        for block in self.encoder.layers[:layer]:
            x = block(x)
        if self.cfg.stable_layer_norm and layer == self.cfg.layers:
            x = self.encoder.layer_norm(x)
        return x


def _receptive_field(cfg: MertConfig) -> int:
    """Input samples behind one output frame of the conv stack (400 for MERT's)."""
    field = 1
    for k, s in zip(reversed(cfg.conv_kernels), reversed(cfg.conv_strides), strict=True):
        field = (field - 1) * s + k
    return field


def normalise(wave: torch.Tensor) -> torch.Tensor:
    """Wav2Vec2FeatureExtractor's ``do_normalize``: per row ``(x - mean) / sqrt(var + 1e-7)``
    (population variance), statistics in float64; ``[B, N]`` → float32 ``[B, N]``."""
    w = wave.double()
    mean = w.mean(dim=-1, keepdim=True)
    var = (w - mean).square().mean(dim=-1, keepdim=True)
    return ((w - mean) / torch.sqrt(var + NORM_EPS)).float()


class MertEmbedder(Embedder):
    """MERT-v1-95M frames as fadtk computes them (see the module doc).

    ``embed(audio [B, C, T] float, sample_rate) -> [B, n_frames, 768]`` float32 on the CPU, 75 frames
    per second at 24 kHz: mono by channel mean, soxr HQ to 24 kHz, the first 6 minutes, per-clip
    normalisation, hidden state ``layer`` (fadtk: 12), float16-rounded (``float16``).

    Raises:
        AudioError: not ``[B, C, T]``, non-finite samples, or shorter than 400 samples at 24 kHz.
    """

    name = "mert"
    sample_rate = SAMPLE_RATE
    protocol_version = "fadtk-mert-1"

    def __init__(
        self, net: Mert, weights_sha256: str, *, layer: int | None = None, normalize: bool = True,
        float16: bool = True, model: str = "MERT-v1-95M", limit_samples: int | None = LIMIT_SAMPLES,
        name: str = "mert", protocol_version: str = "fadtk-mert-1",
    ) -> None:
        layer = net.cfg.layers if layer is None else layer
        if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer <= net.cfg.layers:
            raise ConfigError(f"MERT layer must be an integer from 0 to {net.cfg.layers}, got {layer!r}")
        self.net = net.eval()
        self.weights_sha256 = weights_sha256
        self.layer = layer
        self.normalize = bool(normalize)
        self.float16 = bool(float16)
        self.model = model
        self.limit_samples = limit_samples
        self.name, self.protocol_version = name, protocol_version

    def settings(self) -> dict[str, Any]:
        limit = None if self.limit_samples is None else self.limit_samples / SAMPLE_RATE
        return {
            **super().settings(), "model": self.model, "layer": self.layer, "normalize": self.normalize,
            "float16": self.float16, "limit_s": limit, "weights_sha256": self.weights_sha256,
        }  # fmt: skip

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        if audio.ndim != 3 or 0 in audio.shape:
            raise AudioError(f"MERT expects audio of shape [batch, channels, samples], got {tuple(audio.shape)}")
        if not torch.isfinite(audio).all():
            raise AudioError("MERT input contains NaN or Inf samples")
        mono = self.to_rate(audio.float().mean(dim=1, keepdim=True), sample_rate)[:, 0, : self.limit_samples]
        if mono.shape[-1] < RECEPTIVE:
            raise AudioError(
                f"MERT needs at least {RECEPTIVE} samples ({RECEPTIVE / SAMPLE_RATE * 1000:.1f} ms) at "
                f"{SAMPLE_RATE} Hz; got {mono.shape[-1]}: pad or drop the clip"
            )
        wave = normalise(mono) if self.normalize else mono
        device = self.net.masked_spec_embed.device
        with torch.inference_mode():
            out = self.net(wave.to(device), self.layer).float().cpu()
        return out.half().float() if self.float16 else out


_PARAMETRIZED = {
    "encoder.pos_conv_embed.conv.parametrizations.weight.original0": "encoder.pos_conv_embed.conv.weight_g",
    "encoder.pos_conv_embed.conv.parametrizations.weight.original1": "encoder.pos_conv_embed.conv.weight_v",
}


def canonical_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """The published key layout: a ``mert_model.`` prefix stripped, and torch's parametrized
    weight-norm names (what recent transformers' ``state_dict()`` writes) mapped back to
    ``weight_g``/``weight_v`` (what ``pytorch_model.bin`` holds)."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("mert_model.")
        out[_PARAMETRIZED.get(key, key)] = value
    return out


def config_from_state(state: Mapping[str, Any], flags: MertConfig = MertConfig()) -> MertConfig:
    """The sizes of the network ``state`` (published layout) holds, read from its shapes; the
    architecture flags (pre/post-LN, conv kernels and strides, eps) come from ``flags``.

    Widths, depth, FFN and the positional kernel and groups are all in the shapes; the number of
    attention heads is not: it is ``flags.heads`` when the width is ``flags.hidden``, otherwise one
    head per 64 channels (MERT's head width: 768/12 and 1024/16), at least one. A state without
    the keys read here is left to :func:`build_net`'s strict check (``flags`` unchanged).
    """
    state = canonical_state_dict(state)
    try:
        proj = tuple(state["feature_projection.projection.weight"].shape)
        pos = tuple(state["encoder.pos_conv_embed.conv.weight_v"].shape)
        ffn = int(state["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0])
    except (KeyError, AttributeError, IndexError):
        return flags
    if len(proj) != 2 or len(pos) != 3 or pos[1] == 0:
        return flags
    hidden, conv_dim = int(proj[0]), int(proj[1])
    layers = sum(1 for k in state if k.startswith("encoder.layers.") and k.endswith(".attention.q_proj.weight"))
    heads = flags.heads if hidden == flags.hidden else max(1, hidden // 64)
    return replace(flags, hidden=hidden, conv_dim=conv_dim, layers=layers, ffn=ffn, heads=heads,
                   pos_kernel=int(pos[2]), pos_groups=max(1, hidden // int(pos[1])))


def build_net(state: Mapping[str, Any], source: str, cfg: MertConfig = MertConfig(),
              weight_file: WeightFile = CHECKPOINT) -> Mert:
    """The network holding ``state``'s tensors as float32, keys and shapes checked strictly."""
    state = canonical_state_dict(state)
    with torch.device("meta"):
        net = Mert(cfg)
    problem = state_dict_mismatch({k: tuple(v.shape) for k, v in net.state_dict().items()}, state)
    if problem:
        raise WeightsError(
            f"{source}: not a MERT checkpoint of config {asdict(cfg)}: {problem}; "
            f"use {weight_file.filename} from {weight_file.url}"
        )
    net.load_state_dict({k: v.float().clone() for k, v in state.items()}, strict=True, assign=True)
    return net.eval()


def load_network(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] | None, weight_file: WeightFile,
    config: MertConfig | None, flags: MertConfig, *, verify: bool,
) -> tuple[Mert, str]:
    """``(network, weights sha256)`` from ``checkpoint`` (``None``: ``weight_file``'s default place);
    ``config=None`` reads the sizes from the checkpoint's shapes (:func:`config_from_state`, with
    ``flags``' architecture), an explicit ``config`` must match them exactly."""
    if isinstance(checkpoint, Mapping):
        state, source, sha = checkpoint, "in-memory state dict", state_dict_sha256(checkpoint)
    else:
        path = resolve(weight_file.name, checkpoint, verify=verify)
        state, source = load_state_file(path, "the MERT checkpoint", weight_file.url), str(path)
        sha = hash_file(path)
    cfg = config_from_state(state, flags) if config is None else config
    return build_net(state, source, cfg, weight_file), sha


def load_mert(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
    *,
    device: str | torch.device = "cpu",
    verify: bool = True,
    layer: int | None = None,
    normalize: bool = True,
    float16: bool = True,
    config: MertConfig | None = None,
) -> MertEmbedder:
    """Build the MERT embedder from the published checkpoint.

    Args:
        checkpoint: ``None`` for the registered file (``$T2MBENCH_HOME/weights/MERT-v1-95M/pytorch_model.bin``),
            a path to a state dict in the upstream layout, or a state dict built in memory.
        device: where the network runs (``embed`` takes and returns CPU tensors).
        verify: check the file's sha256 when one is published (none is recorded yet: keys and shapes
            are always checked).
        layer: hidden state read, 0-12; ``None``: the last (fadtk ``MERT-v1-95M``: 12; ``MERT-v1-95M-<i>``: i).
        normalize: the feature extractor's per-clip zero-mean unit-variance normalisation.
        float16: round the frames to float16 as fadtk stores them.
        config: network sizes; ``None`` reads them from the checkpoint's shapes (MERT-v1-95M's
            post-LN architecture; the published file gives MERT-v1-95M's sizes, a reduced file in the
            same layout, e.g. seeded test weights, its own).

    Raises:
        MissingWeightsError: the file is absent (the message says where to get it and put it).
        WeightsError: unreadable file, or keys/shapes that are not MERT's.
        ConfigError: ``layer`` out of range.
    """
    net, sha = load_network(checkpoint, CHECKPOINT, config, MertConfig(), verify=verify)
    return MertEmbedder(net.to(device), sha, layer=layer, normalize=normalize, float16=float16)
