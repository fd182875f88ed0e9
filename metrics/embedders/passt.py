"""PaSST-S AudioSet tagger (``passt_s_swa_p16_128_ap476``, hear21passt 0.0.26) in pure PyTorch,
windowed as stable-audio-metrics' KL_passt protocol does.

The network and its eval-mode front end follow ``hear21passt.models.{preprocess,passt}``:

- front end (``AugmentMelSTFT`` in eval mode): pre-emphasis ``y[n] = x[n+1] - 0.97 x[n]``;
  ``torch.stft`` (n_fft 1024, hop 320, symmetric Hann 800 centred in the 1024 FFT, reflect-centred
  frames); power; Kaldi mel banks (128 bands, 0-15000 Hz, plus a zero column for the Nyquist bin);
  ``ln(mel + 1e-5)``; ``(x + 4.5) / 5``;
- network (DeiT-distilled ViT-B): 16×16 patches with stride 10 → ``[768, 12, T']``; time
  position embedding cropped to ``T'``; frequency position embedding; cls and dist tokens;
  12 pre-norm blocks (LayerNorm eps 1e-6, 12 heads, exact GELU); final LayerNorm (1e-6);
  logits = ``head(mean(cls, dist))`` with ``head`` = LayerNorm(eps 1e-5) + Linear(768 → 527).
  ``head_dist`` is in the checkpoint but unused upstream, and here.

Speed (same numbers up to float rounding): windows are batched, attention uses
``scaled_dot_product_attention``, and the last block updates only the two tokens that are read.

The published checkpoint ``passt-s-f128-p16-s10-ap.476-swa.pt`` loads unchanged (strict keys
and shapes, sha256 checked).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.dsp.filterbanks import kaldi_mel_banks
from t2mbench.core.errors import AudioError, ConfigError, WeightsError
from t2mbench.core.torch_files import load_state_file
from t2mbench.core.weights import WeightFile, hash_file, register_all, resolve
from t2mbench.metrics.embedders.base import Embedder, state_dict_mismatch, state_dict_sha256

SAMPLE_RATE = 32_000
WINDOW = 10 * SAMPLE_RATE  # stable-audio-metrics: 10 s analysis windows ...
STEP = 5 * SAMPLE_RATE  # ... every 5 s
PAD_ABOVE = int(WINDOW * 0.15)  # a window longer than 1.5 s is zero-padded to 10 s; a shorter one is not
# The shortest input PaSST accepts: reflect padding needs more than 512 samples after the
# pre-emphasis, and the 16-frame patch needs 1 + (N - 1) // 320 >= 16 frames, so N >= 4801
# (0.15 s). The second limit is the binding one (checked against hear21passt by the fixture).
MIN_SAMPLES = 15 * 320 + 1
N_CLASSES = 527
Collect = Literal["mean", "max"]

# the weight files this embedder reads (``t2mbench weights`` lists them through the embedder registry)
WEIGHTS = register_all(
    WeightFile(
        name="passt",
        filename="passt-s-f128-p16-s10-ap.476-swa.pt",
        url="https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
        sha256="302903fa8c4aee817b11dc982da0b29aaf8d11a3e722420476d0a12c9db70c2c",
        size=344_665_734,
        description="PaSST-S passt_s_swa_p16_128_ap476 AudioSet tagger (KL_passt), hear21passt 0.0.26",
        note=(
            "upstream publishes no hash (hear21passt downloads it with check_hash=False); this sha256 and "
            "size are the ones pinned identically by several independent projects that verify the file "
            "downloaded from this URL, and the size agrees with the 86.15 M float32 parameters"
        ),
        licence="Apache-2.0 (kkoutini/PaSST)",
    )
)
CHECKPOINT = WEIGHTS[0]


class MelFrontEnd(nn.Module):
    """hear21passt ``AugmentMelSTFT`` in eval mode: waveform ``[B, N]`` at 32 kHz → ``[B, 128, 1 + (N-1)//320]``.

    Holds only non-persistent buffers, so the checkpoint's keys are the network's alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(800, periodic=False), persistent=False)
        # eval band: fmin 0, fmax = sr/2 - fmax_aug_range/2 = 15000 Hz; torchaudio pads the Nyquist bin with 0
        bank = np.pad(kaldi_mel_banks(128, 1024, SAMPLE_RATE, 0.0, 15_000.0), ((0, 0), (0, 1)))
        self.register_buffer("mel_bank", torch.from_numpy(bank.astype(np.float32)), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave[:, 1:] - 0.97 * wave[:, :-1]
        spec = torch.stft(
            x, 1024, hop_length=320, win_length=800, window=self.window,
            center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
        )  # fmt: skip
        power = spec.real.square() + spec.imag.square()
        return (torch.log(self.mel_bank @ power + 1e-5) + 4.5) / 5.0


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (upstream key names)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, n_queries: int | None = None) -> torch.Tensor:
        """``x [B, N, C]`` → ``[B, n_queries or N, C]``: only the first ``n_queries`` tokens attend."""
        b, n, c = x.shape
        h, d = self.heads, c // self.heads
        if n_queries is None:
            q, k, v = self.qkv(x).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            w, bias = self.qkv.weight, self.qkv.bias
            q = F.linear(x[:, :n_queries], w[:c], bias[:c]).view(b, n_queries, h, d).transpose(1, 2)
            k, v = F.linear(x, w[c:], bias[c:]).view(b, n, 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / sqrt(d)) v
        return self.proj(out.transpose(1, 2).reshape(b, -1, c))


class Block(nn.Module):
    """Pre-norm transformer block: ``x += attn(LN1 x); x += mlp(LN2 x)``, LayerNorm eps 1e-6."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, hidden))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        """``[B, N, C]`` → ``[B, n_out or N, C]`` (the first ``n_out`` tokens only, when given)."""
        y = self.attn(self.norm1(x), n_out)
        x = (x if n_out is None else x[:, :n_out]) + y
        return x + self.mlp(self.norm2(x))


class PaSST(nn.Module):
    """PaSST-S with its front end: waveform ``[B, N]`` at 32 kHz (4801 ≤ N ≤ 321600) → logits ``[B, 527]``.

    Parameter names and shapes are those of hear21passt's ``PaSST`` (the published checkpoint).
    """

    def __init__(self, dim: int = 768, depth: int = 12, heads: int = 12, classes: int = N_CLASSES) -> None:
        super().__init__()
        self.mel = MelFrontEnd()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, dim, 12, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, dim, 1, 99))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, dim, kernel_size=16, stride=10)
        self.blocks = nn.ModuleList(Block(dim, heads, 4 * dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(dim, eps=1e-5), nn.Linear(dim, classes))
        self.head_dist = nn.Linear(dim, classes)  # in the checkpoint; unused, as upstream

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(self.mel(wave).unsqueeze(1))  # [B, 768, 12, T']
        x = x + self.time_new_pos_embed[..., : x.shape[-1]] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token, self.dist_token], dim=1) + self.new_pos_embed
        x = torch.cat([tokens.expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.blocks[:-1]:
            x = block(x)
        x = self.norm(self.blocks[-1](x, n_out=2))  # only the cls and dist tokens are read
        return self.head(x.mean(dim=1))


def sam_windows(wave: torch.Tensor) -> torch.Tensor:
    """stable-audio-metrics' analysis windows of mono ``[B, N]`` at 32 kHz → ``[B, n_windows, L]``.

    Starts ``0, 160000, ...`` while below ``max(160000, N - 160000)``; each window is
    ``wave[s : s + 320000]``, zero-padded to 320000 when longer than 48000 samples (1.5 s) and
    passed unpadded otherwise. Only a clip of at most 1.5 s has such a window (its only one), so
    all windows of a clip share one length ``L``.
    """
    n = wave.shape[-1]
    if n <= PAD_ABOVE:
        return wave[:, None, :]
    n_windows = -(-max(STEP, n - STEP) // STEP)
    total = (n_windows - 1) * STEP + WINDOW  # >= n: the last window reaches the end
    return F.pad(wave, (0, total - n)).unfold(-1, WINDOW, STEP)


class PasstEmbedder(Embedder):
    """PaSST AudioSet logits with the stable-audio-metrics KL_passt windowing.

    ``embed(audio [B, C, T] float, sample_rate) -> logits [B, 527]`` float32 on the CPU:

    1. downmix to mono by the channel mean (before resampling, as ``librosa.load(mono=True)``);
    2. resample to 32 kHz with soxr HQ when ``sample_rate`` differs (librosa's default loader);
    3. cut the 10 s / 5 s-step windows of :func:`sam_windows`;
    4. logits per window, then their mean (``collect="mean"``, the shipped references) or
       element-wise max (``collect="max"``) over the windows. No softmax.

    Peak normalisation to -1 dBFS is part of the KL_passt protocol but not of the embedder:
    ``embed`` expects audio already normalised (the ``kl_passt`` metric does it after loading).

    Raises:
        AudioError: not ``[B, C, T]``, non-finite samples, or shorter than 4801 samples at 32 kHz.
    """

    name = "passt"
    sample_rate = SAMPLE_RATE
    protocol_version = "sam-passt-kld-1"

    def __init__(
        self, net: PaSST, weights_sha256: str, *, collect: Collect = "mean", batch_size: int = 4
    ) -> None:
        if collect not in ("mean", "max"):
            raise ConfigError(f"unknown PaSST collect {collect!r}; use 'mean' or 'max'")
        if batch_size < 1:
            raise ConfigError(f"PaSST batch_size must be at least 1, got {batch_size}")
        self.net = net.eval()
        self.weights_sha256 = weights_sha256
        self.collect = collect
        self.batch_size = batch_size

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "model": "passt_s_swa_p16_128_ap476",
            "window_s": WINDOW / SAMPLE_RATE,
            "step_s": STEP / SAMPLE_RATE,
            "pad_above_s": PAD_ABOVE / SAMPLE_RATE,
            "collect": self.collect,
            "weights_sha256": self.weights_sha256,
        }

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        return self.pool(self.window_logits(audio, sample_rate))

    def window_logits(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Logits of every analysis window: ``[B, C, T]`` at ``sample_rate`` → ``[B, n_windows, 527]`` (CPU)."""
        if audio.ndim != 3 or 0 in audio.shape:
            raise AudioError(f"PaSST expects audio of shape [batch, channels, samples], got {tuple(audio.shape)}")
        if not torch.isfinite(audio).all():
            raise AudioError("PaSST input contains NaN or Inf samples")
        mono = self.to_rate(audio.float().mean(dim=1, keepdim=True), sample_rate)[:, 0]
        if mono.shape[-1] < MIN_SAMPLES:
            raise AudioError(
                f"PaSST needs at least {MIN_SAMPLES} samples ({MIN_SAMPLES / SAMPLE_RATE:.3f} s) at {SAMPLE_RATE} Hz; "
                f"got {mono.shape[-1]} ({audio.shape[-1]} at {sample_rate} Hz): pad or drop the clip"
            )
        windows = sam_windows(mono)
        b, n_windows, length = windows.shape
        device = self.net.time_new_pos_embed.device
        with torch.inference_mode():
            flat = windows.reshape(b * n_windows, length)
            logits = torch.cat([self.net(chunk.to(device)) for chunk in flat.split(self.batch_size)])
        return logits.view(b, n_windows, -1).float().cpu()

    def pool(self, logits: torch.Tensor) -> torch.Tensor:
        """Pool window logits ``[B, n_windows, 527]`` → ``[B, 527]`` by ``collect`` (mean or max)."""
        return logits.mean(dim=1) if self.collect == "mean" else logits.amax(dim=1)


def sizes_from_state(state: Mapping[str, Any]) -> dict[str, int]:
    """``PaSST(**sizes)`` for the network ``state`` (upstream layout) holds: width from ``cls_token``, depth
    from the blocks (the 527 AudioSet classes stay: ``kl_passt`` is defined on them); the heads are not
    in the shapes: 12 at PaSST-S's width 768, otherwise one per 64 channels (at least one). PaSST-S's
    sizes when ``cls_token`` or the blocks are absent (the strict key check then names what is wrong)."""
    try:
        dim = int(state["cls_token"].shape[-1])
    except (KeyError, AttributeError, IndexError):
        return {}
    depth = sum(1 for k in state if k.startswith("blocks.") and k.endswith(".norm1.weight"))
    if depth == 0:
        return {}
    return {"dim": dim, "depth": depth, "heads": 12 if dim == 768 else max(1, dim // 64)}


def _check_state_dict(net: PaSST, state: Mapping[str, Any], source: str) -> None:
    """Refuse a state dict whose keys or shapes are not PaSST-S's, naming what differs."""
    problem = state_dict_mismatch({k: tuple(v.shape) for k, v in net.state_dict().items()}, state)
    if problem:
        raise WeightsError(
            f"{source}: not a PaSST-S passt_s_swa_p16_128_ap476 checkpoint: {problem}; "
            f"use {CHECKPOINT.filename} from {CHECKPOINT.url}"
        )


def load_passt(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
    *,
    device: str | torch.device = "cpu",
    verify: bool = True,
    collect: Collect = "mean",
    batch_size: int = 4,
) -> PasstEmbedder:
    """Build the PaSST embedder from the published checkpoint.

    Args:
        checkpoint: ``None`` for the registered file (``$T2MBENCH_HOME/weights/passt-s-f128-p16-s10-ap.476-swa.pt``),
            a path to a file in the upstream layout, or a state dict built in memory.
        device: where the network runs (``embed`` still takes and returns CPU-side tensors).
        verify: check the file's sha256 against the published one; ``False`` loads any file in
            the upstream layout (e.g. seeded random weights), still checking keys and shapes. The
            sizes (width, depth) are read from the shapes (:func:`sizes_from_state`): the
            published file gives PaSST-S, a reduced file in the same layout its own sizes.
        collect: how window logits are pooled, ``"mean"`` (published) or ``"max"``.
        batch_size: windows per forward pass (memory ~40 MB per window on the CPU).

    Raises:
        MissingWeightsError: the file is absent (the message says where to get it and put it).
        ChecksumError: its sha256 differs from the published one (``verify=True``).
        WeightsError: unreadable or truncated file, or not a PaSST-S state dict.
    """
    if isinstance(checkpoint, Mapping):
        state, source = checkpoint, "in-memory state dict"
        sha = state_dict_sha256(state)
    else:
        path = resolve(CHECKPOINT.name, checkpoint, verify=verify)
        state, source = load_state_file(path, "the PaSST checkpoint", CHECKPOINT.url), str(path)
        sha = hash_file(path)
    net = PaSST(**sizes_from_state(state))
    _check_state_dict(net, state, source)
    net.load_state_dict(state, strict=True)
    return PasstEmbedder(net.to(device), sha, collect=collect, batch_size=batch_size)
