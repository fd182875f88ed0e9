"""Seeded random LAION-CLAP weights, test clips and an offline RoBERTa-layout tokenizer, shared by
``tools/fixtures/make_clap.py`` (numpy 1.26, loads them into laion-clap) and the tests (numpy 2.x,
loads them into ``t2mbench.metrics.embedders.clap``).

- Weights: every key and shape of the upstream model comes from the committed manifests
  ``tests/fixtures/clap/keys_<variant>.json`` (dumped from laion-clap itself). Float tensors are
  uniform from :func:`support.sat_weights.uniform` (PCG64 raw output, a pure function of
  (seed, key), identical under any numpy), with a centre and spread per kind of tensor
  (:func:`center_spread`) that keeps activations of order one. The Swin buffers
  (``relative_position_index``, shifted-window ``attn_mask``) are computed, not drawn; the
  fixture script checks them against laion-clap's own.
- Clips: music-like int16 signals (integer-Hz partials read from a ``math.sin`` table, linear
  envelopes, a little noise), built with exact float64 arithmetic so both numpy versions agree
  bit for bit; the fixture records each clip's sha256.
- Tokenizer: a small byte-level BPE trained on captions (committed under
  ``tests/fixtures/clap/tokenizer/``) with RoBERTa's special-token ids, its vocabulary padded with
  never-produced entries to roberta-base's 50265 so that it fits the text tower's embedding table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from support.sat_weights import uniform

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clap"
VARIANTS = ("htsat_tiny_fusion", "htsat_base")
ROBERTA_VOCAB = 50265
WINDOW, SHIFT = 8, 4
NOTES_HZ = (196, 220, 247, 262, 294, 330, 349, 392, 440, 494, 523, 587, 659, 698, 784, 880)


def manifest(variant: str) -> list[tuple[str, tuple[int, ...], str]]:
    """laion-clap's state-dict entries of ``variant`` in order: ``[(key, shape, dtype)]``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown CLAP variant {variant!r}; use one of {VARIANTS}")
    rows = json.loads((FIXTURES / f"keys_{variant}.json").read_text())
    return [(k, tuple(s), d) for k, s, d in rows]


def relative_position_index(window: int = WINDOW) -> np.ndarray:
    """Swin's ``[w², w²]`` int64 index into the ``(2w-1)²``-row bias table: (Δh + w-1)(2w-1) + (Δw + w-1)."""
    h, w = np.divmod(np.arange(window * window), window)
    return ((h[:, None] - h[None, :] + window - 1) * (2 * window - 1) + (w[:, None] - w[None, :] + window - 1)).astype(
        np.int64
    )


def shifted_window_mask(resolution: int, window: int = WINDOW, shift: int = SHIFT) -> np.ndarray:
    """Swin's ``[n_windows, w², w²]`` float32 mask after a cyclic shift: 0 within a region, -100 across."""
    edges = [0, resolution - window, resolution - shift, resolution]
    region = np.zeros(resolution, dtype=np.int64)
    for i in range(3):
        region[edges[i] : edges[i + 1]] = i
    label = 3 * region[:, None] + region[None, :]
    n = resolution // window
    windows = label.reshape(n, window, n, window).transpose(0, 2, 1, 3).reshape(n * n, window * window)
    return np.where(windows[:, :, None] == windows[:, None, :], 0.0, -100.0).astype(np.float32)


def derived_buffer(key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The value of a buffer that the architecture fixes, or ``None`` for a drawn tensor."""
    if key.endswith("relative_position_index"):
        return relative_position_index()
    if key.endswith(".attn_mask"):
        n_windows = shape[0]
        return shifted_window_mask(int(round(math.sqrt(n_windows))) * WINDOW)
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    return None


def center_spread(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(centre, half-width) of the uniform distribution of tensor ``key``."""
    last = key.rsplit(".", 1)[-1]
    if key.startswith("audio_branch.bn0.running"):  # log-mel in dB: mean -20, variance 400 bring it to unit scale
        return (-20.0, 5.0) if last == "running_mean" else (400.0, 100.0)
    if last == "running_mean":
        return 0.0, 0.2
    if last == "running_var":
        return 1.0, 0.4
    if last == "weight" and len(shape) == 1:  # LayerNorm and BatchNorm gains
        return 1.0, 0.1
    if len(shape) <= 1:  # biases, logit scales
        return 0.0, 0.05
    if "relative_position_bias_table" in key or "embeddings." in key:
        return 0.0, 0.5
    if key.endswith("logmel_extractor.melW"):  # non-negative filter weights
        return 0.01, 0.01
    return 0.0, float(np.sqrt(3.0 / int(np.prod(shape[1:]))))  # std 1/sqrt(fan-in)


def clap_weights(variant: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded weights ``{key: array}`` for every entry of :func:`manifest` (float32 drawn, buffers computed)."""
    out: dict[str, np.ndarray] = {}
    for key, shape, dtype in manifest(variant):
        value = derived_buffer(key, shape)
        if value is None:
            if dtype != "float32":
                raise ValueError(f"{key}: no rule for a {dtype} tensor")
            center, spread = center_spread(key, shape)
            value = uniform(seed, key, shape) * np.float32(spread)
            if center:
                value += np.float32(center)
        out[key] = np.asarray(value).reshape(shape)
    return out


def clap_clip(name: str, sample_rate: int, channels: int, samples: int, seed: int) -> np.ndarray:
    """A music-like clip ``[channels, samples]`` int16 peaking at -1 dBFS: notes of four integer-Hz
    harmonics with linear attack/decay envelopes over quiet noise; a pure function of its arguments."""
    table = np.array([math.sin(2.0 * math.pi * k / sample_rate) for k in range(sample_rate)])
    n = np.arange(samples, dtype=np.int64)
    out = np.zeros((channels, samples))
    draws = uniform(seed, name, (channels, 64, 3)).astype(np.float64) * 0.5 + 0.5  # in [0, 1)
    for c in range(channels):
        start = 0
        for note, length_u, gain_u in draws[c]:
            if start >= samples:
                break
            length = int(sample_rate * (0.2 + 0.4 * length_u))
            f0 = NOTES_HZ[int(note * len(NOTES_HZ))]
            seg = n[start : start + length]
            env = np.minimum((seg - start) / (0.01 * sample_rate), 1.0) * (1.0 - (seg - start) / length)
            for k in range(1, 5):
                out[c, start : start + length] += (0.3 + 0.7 * gain_u) / k * env * table[(k * f0 * seg) % sample_rate]
            start += length
        out[c] += 0.01 * uniform(seed + 1 + c, name, (samples,)).astype(np.float64)
    out *= 10.0 ** (-1.0 / 20.0) * 32767.0 / np.abs(out).max()
    return np.round(out).astype(np.int16)


def write_tokenizer(dest: str | Path) -> Path:
    """Write the test tokenizer (``vocab.json`` padded to 50265 entries, ``merges.txt``) into ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    vocab = json.loads((FIXTURES / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    vocab.update({f"<t2mbench_unused_{i}>": i for i in range(len(vocab), ROBERTA_VOCAB)})
    (dest / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (dest / "merges.txt").write_bytes((FIXTURES / "tokenizer" / "merges.txt").read_bytes())
    return dest
