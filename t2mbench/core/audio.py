"""Audio I/O shared by every package: decode, resample, channel policies, normalisation.

Conventions: audio is a float32 numpy array of shape ``[channels, samples]`` with values
nominally in [-1, 1]; sample rates are integers in Hz.

Resampling uses libsoxr at quality ``"HQ"``. That is librosa 0.10's default
(``res_type="soxr_hq"``), which is what stable-audio-metrics' FD-openl3, KL-passt and
CLAP protocols load audio with, so the published protocols are reproduced exactly; a
higher quality (``"VHQ"``) would change their numbers in the last band.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from t2mbench.core.errors import AudioError
from t2mbench.core.files import atomic_path

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8
RESAMPLE_QUALITY = "HQ"

ChannelPolicy = Literal["keep", "mono", "stereo"]


def load_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    channels: ChannelPolicy = "keep",
    min_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode a wav/flac/ogg/mp3 file to float32 ``[C, T]``.

    Args:
        path: audio file.
        sample_rate: resample to this rate (Hz) with soxr HQ; ``None`` keeps the file's.
        channels: ``"keep"``, ``"mono"`` (downmix by mean before resampling, as librosa
            does) or ``"stereo"`` (mono duplicated; more than two channels is an error).
        min_seconds: raise :class:`AudioError` if the clip is shorter than this.

    Returns:
        ``(audio [C, T] float32, sample_rate)``.

    Raises:
        AudioError: naming ``path`` and the problem (unreadable or corrupt, unsupported
            format, zero samples, NaN/Inf, too short, unsupported rate or channels).
    """
    p = Path(path)
    if p.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise AudioError(f"{p}: unsupported audio format {p.suffix!r}; use one of {', '.join(SUPPORTED_EXTENSIONS)}")
    if not p.is_file():
        raise AudioError(f"{p}: no such audio file")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(f"{p}: unreadable or corrupt audio file ({e})") from None
    audio = np.ascontiguousarray(data.T)
    check_audio(audio, sr, source=str(p))
    audio = set_channels(audio, channels, source=str(p))
    if sample_rate is not None:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    if min_seconds is not None:
        require_length(audio, sr, min_seconds, source=str(p))
    return audio, sr


def check_audio(audio: np.ndarray, sample_rate: int, *, source: str = "audio") -> None:
    """Validate ``[C, T]`` audio: supported rate and channel count, samples, all finite."""
    if not isinstance(sample_rate, (int, np.integer)) or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{source}: unsupported sample rate {sample_rate!r} Hz; "
            f"t2mbench reads {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    if audio.ndim != 2:
        raise AudioError(f"{source}: expected audio of shape [channels, samples], got {tuple(audio.shape)}")
    if not 1 <= audio.shape[0] <= MAX_CHANNELS:
        raise AudioError(
            f"{source}: unsupported channel count {audio.shape[0]}; t2mbench reads 1-{MAX_CHANNELS} channels"
        )
    if audio.shape[1] == 0:
        raise AudioError(f"{source}: has zero samples")
    if not np.isfinite(audio).all():
        raise AudioError(f"{source}: contains NaN or Inf samples")


def set_channels(audio: np.ndarray, policy: ChannelPolicy, *, source: str = "audio") -> np.ndarray:
    """Apply a channel policy to ``[C, T]``: keep, downmix to mono, or make stereo."""
    if policy == "keep":
        return audio
    if policy == "mono":
        return audio if audio.shape[0] == 1 else audio.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    if policy == "stereo":
        if audio.shape[0] == 1:
            return np.repeat(audio, 2, axis=0)
        if audio.shape[0] == 2:
            return audio
        raise AudioError(
            f"{source}: has {audio.shape[0]} channels where stereo is expected; downmix it first or use channels='mono'"
        )
    raise ValueError(f"unknown channel policy {policy!r}; use 'keep', 'mono' or 'stereo'")


def resample(audio: np.ndarray, sr_in: int, sr_out: int, *, quality: str = RESAMPLE_QUALITY) -> np.ndarray:
    """Resample ``[C, T]`` from ``sr_in`` to ``sr_out`` Hz with libsoxr (identity when equal).

    Output length is ``ceil(T * sr_out / sr_in)`` (soxr's convention, as librosa).
    """
    if sr_in == sr_out:
        return audio
    for sr in (sr_in, sr_out):
        if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
            raise AudioError(
                f"unsupported sample rate {sr} Hz; t2mbench resamples within {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
            )
    out = soxr.resample(np.ascontiguousarray(audio.T), sr_in, sr_out, quality=quality)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[0]).T)


def require_length(audio: np.ndarray, sample_rate: int, seconds: float, *, source: str = "audio") -> None:
    """Raise :class:`AudioError` if ``audio`` is shorter than ``seconds``."""
    need = int(math.ceil(seconds * sample_rate))
    if audio.shape[-1] < need:
        have = audio.shape[-1] / sample_rate
        raise AudioError(f"{source}: is {have:.3f} s long, shorter than the {seconds:g} s required")


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Crop or zero-pad the last axis to exactly ``n_samples``."""
    t = audio.shape[-1]
    if t >= n_samples:
        return audio[..., :n_samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n_samples - t)]
    return np.pad(audio, pad)


def peak_normalize(audio: np.ndarray, target_db: float = -1.0, *, source: str = "audio") -> np.ndarray:
    """Scale so the peak over all samples and channels is ``target_db`` dBFS.

    This is pyloudnorm's ``normalize.peak`` as stable-audio-metrics applies it (channels
    jointly). Digital silence has no peak: it raises :class:`AudioError` instead of
    producing inf/NaN as the upstream code does.
    """
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0:
        raise AudioError(f"{source}: is digital silence; it cannot be peak-normalised")
    return (audio * (10.0 ** (target_db / 20.0) / peak)).astype(np.float32)


def int16_roundtrip(audio: np.ndarray) -> np.ndarray:
    """Quantise to int16 and back as LAION-CLAP does: clip to [-1, 1], ×32767,
    truncate toward zero, ÷32767."""
    q = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    return (q / 32767.0).astype(np.float32)


def loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4: K-weighting, 400 ms blocks with
    75% overlap, absolute gate -70 LUFS, relative gate -10 LU; channel weights 1)."""
    from scipy.signal import lfilter

    b_shelf, a_shelf, b_hp, a_hp = _k_weighting(sample_rate)
    y = lfilter(b_hp, a_hp, lfilter(b_shelf, a_shelf, audio.astype(np.float64), axis=-1), axis=-1)
    block, step = int(round(0.4 * sample_rate)), int(round(0.1 * sample_rate))
    if y.shape[-1] < block:
        raise AudioError(f"audio of {y.shape[-1] / sample_rate:.3f} s is shorter than one 400 ms loudness block")
    n_blocks = 1 + (y.shape[-1] - block) // step
    idx = np.arange(block)[None, :] + step * np.arange(n_blocks)[:, None]
    z = (y[:, idx] ** 2).mean(axis=-1).sum(axis=0)  # [blocks], summed over channels
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(z)
    z = z[lk > -70.0]
    if z.size == 0:
        return float("-inf")
    rel = -0.691 + 10 * np.log10(z.mean()) - 10.0
    z = z[-0.691 + 10 * np.log10(z) > rel]
    return float(-0.691 + 10 * np.log10(z.mean()))


def loudness_normalize(
    audio: np.ndarray, sample_rate: int, target_lufs: float = -23.0, *, source: str = "audio"
) -> np.ndarray:
    """Scale so the integrated loudness is ``target_lufs``; silence raises :class:`AudioError`."""
    current = loudness(audio, sample_rate)
    if not math.isfinite(current):
        raise AudioError(f"{source}: is silent (below the -70 LUFS gate); it cannot be loudness-normalised")
    return (audio * 10.0 ** ((target_lufs - current) / 20.0)).astype(np.float32)


def _k_weighting(sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BS.1770 K-weighting biquads (high shelf, then high pass) for ``sr``, from the
    bilinear transform of the analogue prototypes whose 48 kHz coefficients BS.1770 tabulates."""
    # stage 1: high shelf, +4 dB above ~1.5 kHz
    g, q, fc = 3.999843853973347, 0.7071752369554196, 1681.974450955533
    k = math.tan(math.pi * fc / sr)
    vh = 10 ** (g / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    b_shelf = np.array([(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0])
    a_shelf = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    # stage 2: RLB high pass at ~38 Hz
    q, fc = 0.5003270373238773, 38.13547087602444
    k = math.tan(math.pi * fc / sr)
    a0 = 1.0 + k / q + k * k
    b_hp = np.array([1.0, -2.0, 1.0])
    a_hp = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return b_shelf, a_shelf, b_hp, a_hp


def float_wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """``[C, T]`` audio as a 32-bit float WAV file (WAVE_FORMAT_IEEE_FLOAT, ``fmt``, ``fact`` and
    ``data`` chunks, little-endian). The bytes depend only on the samples and the rate: libsndfile
    adds a PEAK chunk with a timestamp to float WAVs, so the same audio written twice differed
    and content-keyed caches and manifests missed."""
    channels, frames = audio.shape
    payload = np.ascontiguousarray(audio.T, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHHH", 3, channels, sample_rate, sample_rate * channels * 4, channels * 4, 32, 0)
    chunks = b"".join(tag + struct.pack("<I", len(body)) + body
                      for tag, body in ((b"fmt ", fmt), (b"fact", struct.pack("<I", frames)), (b"data", payload)))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write ``[C, T]`` audio atomically, the format from the suffix.

    ``subtype`` defaults to PCM_16 for wav and flac and to the codec's own for ogg/mp3.
    Values outside [-1, 1] are clipped for integer subtypes; a FLOAT wav keeps them and its
    bytes depend only on its content (:func:`float_wav_bytes`). Returns the final path.
    """
    check_audio(audio, sample_rate, source=str(path))
    if subtype is None and Path(path).suffix.lower() in (".wav", ".flac"):
        subtype = "PCM_16"
    data = np.clip(audio, -1.0, 1.0) if subtype is None or subtype.startswith("PCM") else audio
    with atomic_path(path) as tmp:
        if subtype == "FLOAT" and Path(path).suffix.lower() == ".wav":
            tmp.write_bytes(float_wav_bytes(data, sample_rate))
        else:
            sf.write(str(tmp), np.ascontiguousarray(data.T), sample_rate, subtype=subtype)
    return Path(path)
