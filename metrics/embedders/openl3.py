"""OpenL3 audio embeddings (mel256/mel128, 512/6144) in pure PyTorch, framed and resampled as
stable-audio-metrics' FD_openl3 runs them (spec metric_embedders.md §1, metrics_protocols.md §2).

Pipeline of :meth:`OpenL3Embedder.embed` (audio ``[B, C, T]`` at any rate):

1. soxr HQ to 44.1 kHz (:meth:`Embedder.to_rate`; stable-audio-metrics' evaluation rate). Peak
   normalisation is the protocol's step, not the embedder's (the dB front end is scale-invariant
   up to its -80 dB floor).
2. Channels: L = channel 0, R = channel 1; a mono input is duplicated (L = R); channels beyond
   the second are ignored, as stable-audio-metrics' batched path does.
3. Per channel, as ``openl3.get_audio_embedding``: 44.1 -> 48 kHz with resampy ``kaiser_best``
   (:mod:`t2mbench.core.dsp.resample_sinc`, float64); prepend 24000 zeros (``center``); zero-pad the end to
   whole hops (at least one 48000-sample frame: audio shorter than 1 s is padded to one frame,
   as upstream does); cut 48000-sample frames every ``int(hop_size * 48000)`` samples; float32.
4. Front end and CNN per frame; the L and R embeddings of each frame are concatenated
   ``[L ‖ R]``: output ``[B, n_frames, 2 * embedding_size]``.

Front ends (spec §1.1):

- ``"kapre037"`` (default; front end B): openl3 0.4.2 with kapre 0.3.7, what stable-audio-metrics
  runs. STFT with 1964 zeros appended (``tf.signal.stft(pad_end=True)``), periodic Hann 2048,
  hop 242, 199 frames (the bins from 90 % of the input's band edge up by TensorFlow 2.13's float32
  FFT, ``fft="tf213"``); Slaney mel of ``|X|``; ``10·log10(max(S, 1e-10))`` minus its per-example
  maximum, floored at -80.
- ``"kapre014"`` (front end A): torchopenl3 1.0.1 / openl3 <= 0.3.1 (training). TF "same" padding
  982 | 982; mel of ``|X|²`` with the checkpoint's ``speclayer.mel_basis``, then sqrt; same dB.
  torchopenl3 computes the STFT as a conv with its ``[1025, 1, 2048]`` DFT kernels; they are
  checked against the analytic periodic-Hann DFT at load and ``torch.fft.rfft`` is used instead
  (equal to float32 rounding; the conv costs 1.7 GFLOP a frame, 8 % of the CNN). Loading a Keras
  ``.h5`` (no mel buffer) for this front end builds the HTK-scale, Slaney-area-normalised basis
  kapre 0.1.4 trained with (spec §1.3).

CNN (spec §1.5): input batch norm, 7 conv(3×3)+BN+ReLU with 2×2 max pools after conv 2, 4, 6,
``audio_embedding_layer`` with no BN or ReLU, a final max pool, channel-last flatten. Batch norm
eps is 1e-3. For speed, batch norms that follow a conv are folded into it at load (exact up to
float32 rounding; the input batch norm is not: the convolution's zero padding would see its shift),
frames are batched, and on a CPU the convs run on oneDNN's blocked layout (weights converted once).
All of it is float32, as upstream: bfloat16 (AMX) would be several times faster but cannot meet the
1e-4 parity.

Parity (tests/metrics/embedders/test_openl3.py, seeded weights): 2e-6 relative to openl3 0.4.2 and
6e-7 to torchopenl3 on full-band 48 kHz audio. Audio band-limited below 24 kHz (every 44.1 kHz
evaluation) leaves the mel bands above its band edge holding only the FFT's rounding error, which
the -80 dB floor of the dB front end keeps; TensorFlow 2.13's float32 FFT errs ~250x more than an
exact one, so with an exact FFT there (``fft="torch"``) the embeddings differ from openl3's by 7 %
(44.1 kHz) to 20 % (32 kHz) per frame and FD_openl3 by 8-20 %. The default ``fft="tf213"`` computes
those bins with TensorFlow's FFT (:class:`Kapre037MelSpec`): 7.9e-4 and 3.3e-3 per frame, FD to
2.3e-4 (3 + 3 short clips) and 4.2e-3 (32 + 32 clips of 10 s). Other TensorFlow builds (2.15's DUCC,
cuFFT on a GPU) round differently, so the upstream value itself moves with them. The bands below
the edge agree to 5e-3 dB.

Weights: the Keras ``.h5`` files openl3 0.4.x ships (``openl3_audio_<repr>_<content>.h5``, also
gzipped as published), loaded by layer order as Keras does, and torchopenl3's ``.pth.tar`` state
dicts. The CNN tensors are presumably the same in both (UNCERTAIN: the published files could not be
fetched here to compare); the 512 and 6144 models differ only in the final pool.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from t2mbench.core.dsp.eigen_fft import eigen_dft_matrix
from t2mbench.core.dsp.filterbanks import mel_filterbank
from t2mbench.core.dsp.resample_sinc import resample_sinc
from t2mbench.core.errors import AudioError, ChecksumError, ConfigError, MissingWeightsError, WeightsError
from t2mbench.core.torch_files import load_torch_file
from t2mbench.core.weights import WeightFile, check, hash_file, register_all, resolve
from t2mbench.metrics.embedders.base import Embedder, state_dict_mismatch

SAMPLE_RATE = 44_100  # stable-audio-metrics' evaluation rate: inputs are soxr-resampled to it
MODEL_RATE = 48_000  # OpenL3's own rate: every channel is resampy-resampled to it
FRAME = MODEL_RATE  # one 1-s analysis frame
N_FFT, STFT_HOP, N_STFT_FRAMES = 2048, 242, 199
SAME_PAD = (N_STFT_FRAMES - 1) * STFT_HOP + N_FFT - FRAME  # 1964 samples: TF "same" / pad_end padding
FFTS = ("tf213", "torch")
# fft="tf213": TensorFlow's FFT for the bins from this fraction of the input's band edge up (resampy
# kaiser_best passes 94.8 % of the band; soxr HQ ~91 %): everything the bands above can hold is
# attenuated signal or rounding noise
TF_FFT_FROM = 0.9
DB_AMIN, DB_RANGE = 1e-10, 80.0
BN_EPS = 1e-3
FRONTENDS = ("kapre037", "kapre014")
CONTENT_TYPES = ("music", "env")
N_MELS = {"mel256": 256, "mel128": 128}
POOL = {"mel256": {512: (32, 24), 6144: (8, 8)}, "mel128": {512: (16, 24), 6144: (4, 8)}}
# conv2d_1..7 and audio_embedding_layer (in, out) channels; 2x2 max pools follow convs 2, 4 and 6
CONVS = [(1, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
POOLED_AFTER = (1, 3, 5)
PROTOCOL = "openl3-1"

# sha256 of the decompressed .h5 (what openl3's setup.py installs), for explicit checkpoints
_KERAS_H5_SHA256 = {("mel256", "music"): "624ee7b1dd5ff87e18073f66fd8b2052bebb8ac70210e9c0937c0c940c63e9d6"}
_KERAS_GZ_SHA256 = {("mel256", "music"): "e379f41e880b78e157c199ebddac80d3764e6a46282bcccdbe875bcf538f9afd"}
_HASH_NOTE = (
    "upstream publishes no hash; this sha256 (and that of the decompressed .h5, "
    f"{_KERAS_H5_SHA256[('mel256', 'music')]}) is the one a third-party project pins for the file at this URL"
)


_OPENL3_LICENCE = "CC-BY-4.0 (marl/openl3 model weights; the code is MIT)"


def keras_weights(input_repr: str = "mel256", content_type: str = "music") -> WeightFile:
    """The openl3 0.4.x Keras weight file (gzipped, as published) for a repr and content type."""
    name = f"openl3-{input_repr}-{content_type}"
    stem = f"openl3_audio_{input_repr}_{content_type}-v0_4_0.h5.gz"
    sha = _KERAS_GZ_SHA256.get((input_repr, content_type))
    return WeightFile(
        name=name,
        filename=stem,
        url=f"https://github.com/marl/openl3/raw/models/{stem}",
        sha256=sha,
        description=f"OpenL3 audio {input_repr} {content_type} CNN, openl3 0.4.x Keras weights (FD_openl3)",
        note=_HASH_NOTE if sha else "upstream publishes no hash for this file",
        licence=_OPENL3_LICENCE,
    )


def torchopenl3_weights(
    input_repr: str = "mel256", content_type: str = "music", embedding_size: int = 512
) -> WeightFile:
    """The torchopenl3 1.0.1 state dict for a repr, content type and embedding size (OpenL3's
    weights converted to torch)."""
    stem = f"torchopenl3_{input_repr}_{content_type}_{embedding_size}.pth.tar"
    return WeightFile(
        name=f"torchopenl3-{input_repr}-{content_type}-{embedding_size}",
        filename=stem,
        url=f"https://github.com/torchopenl3/torchopenl3-models/raw/master/{stem}",
        sha256=None,
        description=f"OpenL3 audio {input_repr} {content_type} {embedding_size}, torchopenl3 1.0.1 state dict",
        note="upstream publishes no hash (torchopenl3 loads it with torch.hub, unchecked)",
        licence=_OPENL3_LICENCE,
    )


# the weight files this embedder reads (``t2mbench weights`` lists them through the embedder registry)
WEIGHTS = register_all(
    *(keras_weights(r, c) for r in N_MELS for c in CONTENT_TYPES),
    *(torchopenl3_weights(r, c, size) for r in N_MELS for c in CONTENT_TYPES for size in (512, 6144)),
)


# ---------------------------------------------------------------------------------------------
# front ends: frames [N, 48000] float32 -> log-mel [N, 1, n_mels, 199]


def hann_dft_kernels() -> tuple[torch.Tensor, torch.Tensor]:
    """kapre 0.1.4's DFT kernels ``cos(2πkn/2048)·w[n]`` and ``-sin(2πkn/2048)·w[n]`` with a periodic
    Hann ``w``, float32 ``[1025, 1, 2048]`` each (torchopenl3's ``speclayer.dft_*_kernels``)."""
    n = np.arange(N_FFT)
    angle = 2.0 * np.pi * ((np.arange(N_FFT // 2 + 1)[:, None] * n[None, :]) % N_FFT) / N_FFT
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(np.float32)
    real, imag = np.cos(angle) * window, -np.sin(angle) * window
    return tuple(torch.from_numpy(k.astype(np.float32)[:, None, :]) for k in (real, imag))


def _periodic_hann() -> torch.Tensor:
    """Periodic Hann window of 2048 points (tf.signal.hann_window / kapre 0.1.4), float32."""
    return torch.hann_window(N_FFT, periodic=True, dtype=torch.float64).float()


def _stft(frames: torch.Tensor, window: torch.Tensor, left: int) -> torch.Tensor:
    """Windowed real FFT of 199 hops of ``frames [N, 48000]`` zero-padded by ``left`` and
    ``SAME_PAD - left``: complex ``[N, 199, 1025]``."""
    padded = F.pad(frames, (left, SAME_PAD - left))
    return torch.fft.rfft(padded.unfold(-1, N_FFT, STFT_HOP) * window)


def _decibel(mel: torch.Tensor) -> torch.Tensor:
    """kapre 0.1.4 ``amplitude_to_decibel`` of ``[N, 199, n_mels]`` → ``[N, 1, n_mels, 199]``:
    ``10·log10(max(S, 1e-10))`` minus its per-example maximum, floored at -80."""
    db = 10.0 * torch.log10(mel.clamp(min=DB_AMIN))
    db = (db - db.amax(dim=(1, 2), keepdim=True)).clamp(min=-DB_RANGE)
    return db.transpose(1, 2).unsqueeze(1)


class Kapre037MelSpec(nn.Module):
    """Front end B (openl3 0.4.2 + kapre 0.3.7): Slaney mel of ``|STFT|`` with 1964 zeros appended.

    ``fft="tf213"``: the DFT bins from 90 % of the input's band edge up are TensorFlow 2.13's float32 FFT
    (:func:`~t2mbench.core.dsp.eigen_fft.eigen_dft_matrix`, a matmul), the others ``torch.fft.rfft``.
    Above the band edge of band-limited audio (22.05 kHz for every 44.1 kHz evaluation) the exact
    spectrum is ~1e-8 of the frame's peak, below the rounding error of TensorFlow's FFT (~1e-7), and the
    dB front end keeps 8 decades of amplitude: those mel bands show the FFT's rounding, so openl3 as
    stable-audio-metrics runs it (TensorFlow 2.13.1 on the CPU) sees TensorFlow's, and an exact FFT there
    moves every embedding by ~7 % (FD_openl3 by ~20 % on 80 frames). ``fft="torch"``: ``torch.fft.rfft``
    for every bin.
    """

    def __init__(self, n_mels: int, fft: str = "tf213") -> None:
        super().__init__()
        mel = mel_filterbank(MODEL_RATE, N_FFT, n_mels, 0.0, MODEL_RATE / 2, scale="slaney", norm="slaney")
        self.register_buffer("mel_t", torch.from_numpy(mel.T.astype(np.float32)), persistent=False)
        self.register_buffer("window", _periodic_hann(), persistent=False)
        self.fft = fft
        tf_dft = eigen_dft_matrix(N_FFT) if fft == "tf213" else torch.zeros(N_FFT, 0)
        self.register_buffer("tf_dft", tf_dft, persistent=False)

    def forward(self, frames: torch.Tensor, band_hz: float = MODEL_RATE / 2) -> torch.Tensor:
        """Log-mel ``[N, 1, n_mels, 199]`` of ``frames [N, 48000]``; ``band_hz``: the input's band edge
        (half the lowest rate the audio passed through) in Hz."""
        windowed = F.pad(frames, (0, SAME_PAD)).unfold(-1, N_FFT, STFT_HOP) * self.window
        spec = torch.fft.rfft(windowed)
        n_bins = N_FFT // 2 + 1
        first = min(int(TF_FFT_FROM * band_hz * N_FFT / MODEL_RATE), n_bins) if self.fft == "tf213" else n_bins
        if first < n_bins:
            cols = torch.cat([self.tf_dft[:, first:n_bins], self.tf_dft[:, n_bins + first :]], dim=1)
            upper = windowed @ cols
            width = n_bins - first
            spec = torch.cat([spec[..., :first], torch.complex(upper[..., :width], upper[..., width:])], dim=-1)
        return _decibel(spec.abs() @ self.mel_t)


class Kapre014MelSpec(nn.Module):
    """Front end A (torchopenl3 / kapre 0.1.4): ``sqrt(mel_basis @ |STFT|²)`` with 982 | 982 "same" padding.

    ``mel_basis [n_mels, 1025]`` is the checkpoint's buffer (``speclayer.mel_basis``).
    """

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.register_buffer("mel_basis", torch.zeros(n_mels, N_FFT // 2 + 1))
        self.register_buffer("window", _periodic_hann(), persistent=False)

    def forward(self, frames: torch.Tensor, band_hz: float = MODEL_RATE / 2) -> torch.Tensor:
        """Log-mel ``[N, 1, n_mels, 199]`` of ``frames [N, 48000]`` (``band_hz`` unused: torch's FFT throughout)."""
        power = torch.view_as_real(_stft(frames, self.window, SAME_PAD // 2)).square().sum(-1)
        return _decibel(torch.sqrt(power @ self.mel_basis.T))


def kapre014_mel_basis(n_mels: int) -> np.ndarray:
    """The mel matrix kapre 0.1.4 trained with: HTK scale, 0-24 kHz, Slaney area norm, float32 ``[n_mels, 1025]``.
    Used only when a checkpoint carries no ``speclayer.mel_basis`` (Keras ``.h5``)."""
    return mel_filterbank(MODEL_RATE, N_FFT, n_mels, 0.0, MODEL_RATE / 2, scale="htk", norm="slaney").astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the network


def _conv_name(k: int) -> str:
    return "audio_embedding_layer" if k == len(CONVS) - 1 else f"conv2d_{k + 1}"


class OpenL3Net(nn.Module):
    """Front end + CNN: frames ``[N, 48000]`` float32 at 48 kHz → embeddings ``[N, embedding_size]``.

    Parameter names are torchopenl3's (``speclayer.*``, ``batch_normalization_{1..8}``,
    ``conv2d_{1..7}``, ``audio_embedding_layer``), so its state dicts load strictly.
    """

    def __init__(
        self, frontend: str = "kapre037", input_repr: str = "mel256", embedding_size: int = 512, fft: str = "tf213"
    ) -> None:
        super().__init__()
        n_mels = N_MELS[input_repr]
        self.speclayer = Kapre037MelSpec(n_mels, fft) if frontend == "kapre037" else Kapre014MelSpec(n_mels)
        self.pool = POOL[input_repr][embedding_size]
        self.blocked = False  # oneDNN blocked-layout convs, set by for_inference on a CPU
        self.batch_normalization_1 = nn.BatchNorm2d(1, eps=BN_EPS)
        for k, (cin, cout) in enumerate(CONVS):
            setattr(self, _conv_name(k), nn.Conv2d(cin, cout, 3, padding=1))
            if k < len(CONVS) - 1:
                setattr(self, f"batch_normalization_{k + 2}", nn.BatchNorm2d(cout, eps=BN_EPS))

    def forward(self, frames: torch.Tensor, band_hz: float = MODEL_RATE / 2) -> torch.Tensor:
        """``band_hz``: the input's band edge in Hz (see :class:`Kapre037MelSpec`)."""
        x = self.batch_normalization_1(self.speclayer(frames, band_hz))
        x = x.to_mkldnn() if self.blocked else x.contiguous(memory_format=torch.channels_last)
        for k in range(len(CONVS) - 1):
            x = torch.relu_(getattr(self, f"batch_normalization_{k + 2}")(getattr(self, _conv_name(k))(x)))
            if k in POOLED_AFTER:
                x = F.max_pool2d(x, 2)
        x = F.max_pool2d(self.audio_embedding_layer(x), self.pool)
        x = x.to_dense() if self.blocked else x
        return x.permute(0, 2, 3, 1).flatten(1)  # channel-last flatten, as Keras' Flatten

    def for_inference(self, device: str | torch.device = "cpu") -> OpenL3Net:
        """Eval mode on ``device``; each conv's following batch norm folded into it (exact up to float32
        rounding); on a CPU with oneDNN, convs on blocked-layout activations (bit-identical results,
        ~25 % faster than channels-last tensors on the 2-core AVX-512 machine)."""
        self.eval()
        for k in range(len(CONVS) - 1):
            bn = f"batch_normalization_{k + 2}"
            setattr(self, _conv_name(k), fuse_conv_bn_eval(getattr(self, _conv_name(k)), getattr(self, bn)))
            setattr(self, bn, nn.Identity())
        self.to(device)
        if torch.device(device).type == "cpu" and torch.backends.mkldnn.is_available():
            for k in range(len(CONVS)):
                setattr(self, _conv_name(k), BlockedConv(getattr(self, _conv_name(k))))
            self.blocked = True
        return self


class BlockedConv(nn.Module):
    """A stride-1 ``nn.Conv2d`` on oneDNN blocked-layout (``to_mkldnn``) tensors, CPU only."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.register_buffer("weight", conv.weight.detach().contiguous().to_mkldnn())
        self.register_buffer("bias", conv.bias.detach().clone())
        self.padding = conv.padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mkldnn_convolution(x, self.weight, self.bias, self.padding, (1, 1), (1, 1), 1)


def expected_shapes(input_repr: str = "mel256", with_speclayer: bool = True) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a torchopenl3 state dict (without ``num_batches_tracked``); the speclayer's
    three buffers are included when ``with_speclayer``."""
    shapes: dict[str, tuple[int, ...]] = {}
    if with_speclayer:
        shapes["speclayer.dft_real_kernels"] = shapes["speclayer.dft_imag_kernels"] = (N_FFT // 2 + 1, 1, N_FFT)
        shapes["speclayer.mel_basis"] = (N_MELS[input_repr], N_FFT // 2 + 1)
    for j, c in enumerate([1] + [cout for _, cout in CONVS[:-1]]):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"batch_normalization_{j + 1}.{p}"] = (c,)
    for k, (cin, cout) in enumerate(CONVS):
        shapes[f"{_conv_name(k)}.weight"] = (cout, cin, 3, 3)
        shapes[f"{_conv_name(k)}.bias"] = (cout,)
    return shapes


# ---------------------------------------------------------------------------------------------
# checkpoints


def _file_kind(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "h5"
    if head.startswith(b"\x1f\x8b"):
        return "h5.gz"
    return "torch"


def _decode(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def read_keras_h5(path: Path) -> dict[str, np.ndarray]:
    """The CNN of a Keras ``save_weights`` file (plain or gzipped) as a torchopenl3-named state dict.

    Keras loads such files by the order of the weighted layers in the root ``layer_names``
    attribute (names are automatic counters and differ between files); so does this: the 16
    weighted layers must be batch norm / conv alternately, with OpenL3's shapes.

    Raises:
        WeightsError: unreadable, truncated, or not an OpenL3 audio CNN (the message lists what differs).
    """
    import h5py  # runtime dependency for Keras weight files only

    try:
        source = io.BytesIO(gzip.decompress(path.read_bytes())) if _file_kind(path) == "h5.gz" else path
        with h5py.File(source, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            layers = []
            for name in (_decode(n) for n in root.attrs["layer_names"]):
                weights = {}
                for w in (_decode(n) for n in root[name].attrs["weight_names"]):
                    weights[w.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(root[name][w], dtype=np.float32)
                if weights:
                    layers.append((name, weights))
    except (OSError, KeyError, ValueError, EOFError, gzip.BadGzipFile) as e:
        raise WeightsError(
            f"{path}: cannot read it as a Keras HDF5 weight file ({type(e).__name__}: {str(e)[:160]}); the file "
            "is truncated or not an openl3 .h5: download it again"
        ) from None
    expected = expected_shapes(with_speclayer=False)
    problems = []
    if len(layers) != 2 * len(CONVS):
        problems.append(f"{len(layers)} layers with weights, expected {2 * len(CONVS)} (batch norm / conv alternately)")
    state: dict[str, np.ndarray] = {}
    for i, (name, weights) in enumerate(layers[: 2 * len(CONVS)]):
        k = i // 2
        if i % 2 == 0:
            prefix, want = f"batch_normalization_{k + 1}.", ["gamma", "beta", "moving_mean", "moving_variance"]
            ours = [prefix + p for p in ("weight", "bias", "running_mean", "running_var")]
            arrays = [weights.get(n) for n in want]
        else:
            want, ours = ["kernel", "bias"], [f"{_conv_name(k)}.weight", f"{_conv_name(k)}.bias"]
            kernel = weights.get("kernel")
            arrays = [None if kernel is None or kernel.ndim != 4 else kernel.transpose(3, 2, 0, 1), weights.get("bias")]
        if sorted(weights) != sorted(want):
            problems.append(f"layer {i + 1} {name!r} holds {sorted(weights)}, expected {want}")
            continue
        for key, array in zip(ours, arrays):
            if array is None or array.shape != expected[key]:
                got = None if array is None else array.shape
                problems.append(f"layer {i + 1} {name!r} gives {key} of shape {got}, expected {expected[key]}")
            else:
                state[key] = array
    if problems:
        raise WeightsError(f"{path}: not an OpenL3 audio CNN weight file: " + "; ".join(problems[:6]))
    return state


def read_torch_state(path: Path) -> dict[str, np.ndarray]:
    """A torchopenl3 state dict (``torch.save`` of ``PytorchOpenl3.state_dict()``) as float32 arrays,
    ``num_batches_tracked`` entries dropped (present or not)."""
    state = load_torch_file(path, what="it as a torch checkpoint",
                            hint="; the file is truncated or neither a torchopenl3 .pth.tar nor an openl3 .h5: "
                                 "download it again")  # fmt: skip
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: holds a {type(state).__name__}, not a torchopenl3 state dict of tensors")
    return {k: v.float().numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}


def check_state(state: Mapping[str, np.ndarray], input_repr: str, source: str) -> None:
    """Refuse a state dict whose keys or shapes are not OpenL3's (speclayer buffers optional as a set)."""
    expected = expected_shapes(input_repr, with_speclayer=any(k.startswith("speclayer.") for k in state))
    problem = state_dict_mismatch(expected, state)
    if problem:
        hint = ""
        if "speclayer.mel_basis" in state and state["speclayer.mel_basis"].shape[0] in (128, 256):
            n = state["speclayer.mel_basis"].shape[0]
            if n != N_MELS[input_repr]:
                hint = f" (it is a mel{n} checkpoint: pass input_repr='mel{n}')"
        raise WeightsError(f"{source}: not an OpenL3 {input_repr} audio checkpoint{hint}: {problem}")


def _verify(path: Path, kind: str, input_repr: str, content_type: str, embedding_size: int) -> None:
    """Check ``path`` against the published hash of the file it claims to be (when one is known)."""
    if kind == "torch":
        check(torchopenl3_weights(input_repr, content_type, embedding_size), path)
    elif kind == "h5.gz":
        check(keras_weights(input_repr, content_type), path)
    else:
        want = _KERAS_H5_SHA256.get((input_repr, content_type))
        actual = hash_file(path)
        if want is not None and actual != want:
            raise ChecksumError(
                f"{path}: sha256 {actual} does not match openl3_audio_{input_repr}_{content_type}.h5 ({want}); "
                "the file is truncated, corrupt or a different model (pass verify=False to load other weights)"
            )


# ---------------------------------------------------------------------------------------------
# framing and the embedder


def frame_audio(audio48: torch.Tensor, hop_size: float = 0.5, center: bool = True) -> torch.Tensor:
    """openl3's framing of ``[N, T]`` audio at 48 kHz → float32 ``[N, n_frames, 48000]``.

    ``center`` prepends 24000 zeros; the end is zero-padded to at least one frame and to whole hops
    of ``int(hop_size * 48000)``; frame k starts at padded sample ``k * hop``.
    """
    hop = int(hop_size * MODEL_RATE)
    x = F.pad(audio48, (FRAME // 2, 0)) if center else audio48
    n = x.shape[-1]
    extra = FRAME - n if n < FRAME else -(-(n - FRAME) // hop) * hop - (n - FRAME)
    return F.pad(x, (0, extra)).float().unfold(-1, FRAME, hop)


class OpenL3Embedder(Embedder):
    """OpenL3 frames of stereo audio as stable-audio-metrics stacks them for FD_openl3.

    ``embed(audio [B, C, T], sample_rate)`` → float32 ``[B, n_frames, 2 * embedding_size]`` (``[L ‖ R]``
    per frame; n_frames = 1 + ceil((T48 + 24000 - 48000) / hop) for T48 samples at 48 kHz, at least 1).
    ``embed_channels`` gives openl3's per-channel embeddings (``openl3.get_audio_embedding``).
    """

    name = "openl3"
    sample_rate = SAMPLE_RATE

    def __init__(self, net: OpenL3Net, weights_sha256: str, *, options: dict[str, Any], batch_frames: int) -> None:
        if batch_frames < 1:
            raise ConfigError(f"OpenL3 batch_frames must be at least 1, got {batch_frames}")
        self.net = net
        self.weights_sha256 = weights_sha256
        self.options = options
        self.batch_frames = batch_frames
        o = options
        self.protocol_version = (
            f"{PROTOCOL}:{o['frontend']}:{o['input_repr']}:{o['embedding_size']}:hop={o['hop_size']}:center={int(o['center'])}"
            f":fft={o['fft']}"
        )

    @property
    def device(self) -> torch.device:
        return self.net.batch_normalization_1.weight.device

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), **self.options}

    def embed_frames(self, frames: torch.Tensor, band_hz: float = MODEL_RATE / 2) -> torch.Tensor:
        """Embed ``[M, 48000]`` float32 frames at 48 kHz → ``[M, embedding_size]``, ``batch_frames`` at a time;
        ``band_hz``: the audio's band edge in Hz (half the lowest rate it passed through).

        On CUDA the convolutions run in true float32 (TF32 off inside this call only), for parity."""
        out = []
        cudnn = torch.backends.cudnn
        fp32 = cudnn.flags(
            enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic, allow_tf32=False
        )
        with torch.inference_mode(), fp32:
            for start in range(0, frames.shape[0], self.batch_frames):
                out.append(self.net(frames[start : start + self.batch_frames].to(self.device), band_hz))
        return torch.cat(out)

    def embed_channels(self, audio: torch.Tensor, sample_rate: int, band_hz: float | None = None) -> torch.Tensor:
        """openl3's embedding of each row of ``audio [N, T]`` (mono channels) at ``sample_rate`` Hz →
        ``[N, n_frames, embedding_size]``: resampy ``kaiser_best`` to 48 kHz (skipped at 48 kHz), framing, network.
        ``band_hz``: the audio's band edge (default: half of ``sample_rate``, at most 24 kHz)."""
        x = _check_audio(audio, sample_rate, ndim=2).to(self.device, torch.float64)
        if sample_rate != MODEL_RATE:
            x = resample_sinc(x, sample_rate, MODEL_RATE)
        frames = frame_audio(x, self.options["hop_size"], self.options["center"])
        band = band_hz if band_hz is not None else min(sample_rate, MODEL_RATE) / 2
        return self.embed_frames(frames.reshape(-1, FRAME), band).reshape(*frames.shape[:2], -1)

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Stereo frame embeddings ``[B, n_frames, 2 * embedding_size]`` of ``audio [B, C, T]`` (see the module doc)."""
        audio = self.to_rate(_check_audio(audio, sample_rate, ndim=3), sample_rate)
        band = min(sample_rate, self.sample_rate) / 2
        b = audio.shape[0]
        if audio.shape[1] == 1:
            left = self.embed_channels(audio[:, 0], self.sample_rate, band)
            return torch.cat([left, left], dim=-1)
        both = self.embed_channels(torch.cat([audio[:, 0], audio[:, 1]]), self.sample_rate, band)
        return torch.cat([both[:b], both[b:]], dim=-1)


def _check_audio(audio: torch.Tensor, sample_rate: int, ndim: int) -> torch.Tensor:
    shape = "[batch, channels, samples]" if ndim == 3 else "[channels, samples]"
    if not isinstance(audio, torch.Tensor) or audio.ndim != ndim or not audio.is_floating_point():
        got = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
        raise AudioError(f"OpenL3 expects a float tensor of shape {shape}, got {got}")
    if audio.shape[-1] == 0 or 0 in audio.shape[:-1]:
        raise AudioError(f"OpenL3 got empty audio of shape {tuple(audio.shape)}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"OpenL3 needs a positive integer sample rate in Hz, got {sample_rate!r}")
    if not torch.isfinite(audio).all():
        raise AudioError("OpenL3 input contains NaN or Inf samples")
    return audio


def _resolve(
    checkpoint: str | os.PathLike | None, frontend: str, input_repr: str, content_type: str, size: int
) -> Path:
    if checkpoint is None:
        kapre037 = frontend == "kapre037"
        wf = (
            keras_weights(input_repr, content_type) if kapre037 else torchopenl3_weights(input_repr, content_type, size)
        )
        return resolve(wf.name, verify=False)  # load_openl3 verifies
    path = Path(checkpoint)
    if not path.is_file():
        raise MissingWeightsError(f"{path}: no such OpenL3 checkpoint file (an openl3 .h5 or a torchopenl3 .pth.tar)")
    return path


def _check_dft_kernels(spec: Mapping[str, np.ndarray], source: str) -> None:
    """Front end A computes kapre 0.1.4's DFT with an FFT: refuse checkpoint kernels that are not that DFT."""
    if "speclayer.dft_real_kernels" not in spec:
        return
    for key, ours in zip(("speclayer.dft_real_kernels", "speclayer.dft_imag_kernels"), hann_dft_kernels()):
        err = float(np.abs(spec[key] - ours.numpy()).max())
        if err > 1e-5:
            raise WeightsError(
                f"{source}: {key} differs from kapre 0.1.4's periodic-Hann DFT by up to {err:.3g}; "
                "front end 'kapre014' computes that DFT with an FFT and cannot use other kernels"
            )


def _choice(what: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown OpenL3 {what} {value!r}; use one of {', '.join(map(repr, allowed))}")


def load_openl3(
    checkpoint: str | os.PathLike | None = None,
    *,
    frontend: str = "kapre037",
    content_type: str = "music",
    input_repr: str = "mel256",
    embedding_size: int = 512,
    hop_size: float = 0.5,
    center: bool = True,
    device: str | torch.device = "cpu",
    batch_frames: int = 16,
    verify: bool = True,
    fft: str | None = None,
) -> OpenL3Embedder:
    """Build the OpenL3 embedder (defaults: stable-audio-metrics' FD_openl3 settings).

    Args:
        checkpoint: ``None`` for the registered file of ``frontend`` (kapre037: openl3's
            ``openl3_audio_<repr>_<content>-v0_4_0.h5.gz``; kapre014: torchopenl3's
            ``torchopenl3_<repr>_<content>_<size>.pth.tar``) under ``$T2MBENCH_HOME/weights``, or a path
            to either kind of file (plain or gzipped ``.h5``, or ``.pth.tar``; told apart by content).
        frontend: ``"kapre037"`` (openl3 0.4.2, stable-audio-metrics) or ``"kapre014"`` (torchopenl3).
        content_type: ``"music"`` or ``"env"`` (selects the default file only).
        input_repr: ``"mel256"`` or ``"mel128"``. ``embedding_size``: 512 or 6144.
        hop_size: seconds between frames (stable-audio-metrics: 0.5). ``center``: prepend half a frame.
        device: where the network and the 48 kHz resampling run.
        batch_frames: 1-s frames per forward pass (~50 MB of activations each on the CPU).
        verify: check the file's sha256 against the published one where one is known; ``False``
            loads any file in an upstream layout (e.g. seeded random weights), still checking keys and shapes.
        fft: front end B's DFT: ``"tf213"`` (default; TensorFlow 2.13's float32 FFT above 90 % of the
            input's band edge, what stable-audio-metrics' pinned stack computes, see :class:`Kapre037MelSpec`)
            or ``"torch"`` (``torch.fft.rfft`` throughout). Front end A is torchopenl3's: ``"torch"`` only.

    Raises:
        ConfigError: an unknown option (the message lists the valid ones).
        MissingWeightsError: the file is absent (the message says where to get it and put it).
        ChecksumError: its sha256 differs from the published one.
        WeightsError: unreadable or truncated file, or not an OpenL3 audio checkpoint (names what differs).
    """
    _choice("frontend", frontend, FRONTENDS)
    _choice("content_type", content_type, CONTENT_TYPES)
    _choice("input_repr", input_repr, tuple(N_MELS))
    _choice("embedding_size", embedding_size, (512, 6144))
    fft = fft if fft is not None else ("tf213" if frontend == "kapre037" else "torch")
    _choice("fft", fft, FFTS if frontend == "kapre037" else ("torch",))
    if not isinstance(hop_size, (int, float)) or int(hop_size * MODEL_RATE) < 1:
        raise ConfigError(f"OpenL3 hop_size must be at least 1/48000 s, got {hop_size!r}")
    path = _resolve(checkpoint, frontend, input_repr, content_type, embedding_size)
    kind = _file_kind(path)
    if verify:
        _verify(path, kind, input_repr, content_type, embedding_size)
    state = read_torch_state(path) if kind == "torch" else read_keras_h5(path)
    check_state(state, input_repr, str(path))
    spec = {k: state.pop(k) for k in [k for k in state if k.startswith("speclayer.")]}
    if frontend == "kapre014":
        _check_dft_kernels(spec, str(path))
        state["speclayer.mel_basis"] = spec.get("speclayer.mel_basis", kapre014_mel_basis(N_MELS[input_repr]))
    net = OpenL3Net(frontend, input_repr, embedding_size, fft)
    tensors = {k: v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked")}
    tensors.update({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    net.load_state_dict(tensors, strict=True)
    net = net.for_inference(device)
    options = {
        "frontend": frontend,
        "content_type": content_type,
        "input_repr": input_repr,
        "embedding_size": embedding_size,
        "hop_size": float(hop_size),
        "center": bool(center),
        "fft": fft,
    }
    return OpenL3Embedder(net, hash_file(path), options=options, batch_frames=batch_frames)
