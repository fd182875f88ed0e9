"""Does ``fd_evaluator`` rise as audio gets worse? The FAD paper's validation, on the corpus.

The test-split clips are degraded, one condition at a time, and compared by Fréchet distance
with the clean train-split clips (a different set of pieces, so the clean baseline is > 0):

- additive white Gaussian noise at SNR 40, 30, 20 and 10 dB (noise power = the clip's mean
  power over all samples and channels / 10^(SNR/10); one seeded numpy generator per clip);
- low-pass at 8, 4, 2 and 1 kHz: 8th-order Butterworth, zero-phase (``sosfiltfilt``, so the
  attenuation is that of a 16th-order filter), at the file's rate.

Each degraded clip is made mono at 32 kHz, peak-normalised to -1 dBFS and embedded, as the
``fd_evaluator`` metric feeds it, and the registered metric (``t2mbench.metrics.registry.get_metric``)
stacks every window of every clip and computes the distance.

Command: ``t2mbench evidence degradation --corpus CORPUS --out DIR`` writes
``degradation.json`` (rows and the monotonicity verdict), ``degradation.csv`` and ``degradation.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import butter, sosfiltfilt

from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.plots import pyplot, save_figure
from t2mbench.core.audio import load_audio
from t2mbench.core.errors import AudioError
from t2mbench.core.files import atomic_path, write_json
from t2mbench.core.manifest import ClipRecord
from t2mbench.core.progress import progress_bar
from t2mbench.metrics.embedders.evaluator import SAMPLE_RATE, EvaluatorEmbedder, load_evaluator, protocol_input
from t2mbench.metrics.registry import get_metric

NOISE_SNRS_DB = (40.0, 30.0, 20.0, 10.0)
LOWPASS_HZ = (8000.0, 4000.0, 2000.0, 1000.0)
LOWPASS_ORDER = 8


@dataclass(frozen=True)
class Condition:
    """One degradation: ``kind`` is ``"clean"``, ``"noise"`` (``value`` = SNR in dB) or
    ``"lowpass"`` (``value`` = cut-off in Hz)."""

    kind: str
    value: float | None = None

    @property
    def label(self) -> str:
        if self.kind == "noise":
            return f"noise {self.value:g} dB SNR"
        if self.kind == "lowpass":
            return f"low-pass {self.value / 1000:g} kHz"
        return "clean"


CONDITIONS = (Condition("clean"), *(Condition("noise", s) for s in NOISE_SNRS_DB),
              *(Condition("lowpass", f) for f in LOWPASS_HZ))  # fmt: skip


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``[C, T]`` float32 plus white Gaussian noise at ``snr_db`` relative to its mean power."""
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    if power == 0.0:
        raise AudioError("cannot set an SNR for digital silence")
    noise = rng.standard_normal(audio.shape) * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (audio + noise).astype(np.float32)


def low_pass(audio: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """``[C, T]`` through an 8th-order Butterworth low-pass at ``cutoff_hz``, forward and backward."""
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cut-off {cutoff_hz} Hz must lie between 0 and Nyquist ({sample_rate / 2} Hz)")
    sos = butter(LOWPASS_ORDER, cutoff_hz, btype="low", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, audio.astype(np.float64), axis=-1).astype(np.float32)


def degrade(audio: np.ndarray, sample_rate: int, condition: Condition, rng: np.random.Generator) -> np.ndarray:
    """Apply ``condition`` to ``[C, T]`` audio at ``sample_rate`` Hz."""
    if condition.kind == "noise":
        return add_noise(audio, condition.value, rng)
    if condition.kind == "lowpass":
        return low_pass(audio, sample_rate, condition.value)
    return audio


def window_embeddings(
    embedder: EvaluatorEmbedder,
    clips: Sequence[ClipRecord],
    transforms: Sequence[Callable[[np.ndarray, int, int], np.ndarray]],
    *,
    progress: bool = True,
) -> list[list[np.ndarray]]:
    """For each transform ``f(audio, sr, clip_index)``, the window embeddings ``[W, D]`` of every
    transformed clip, fed as the metric feeds it. Each clip is decoded once."""
    out: list[list[np.ndarray]] = [[] for _ in transforms]
    for i, record in enumerate(progress_bar(clips, desc="degradations", unit="clip", disable=not progress)):
        audio, sr = load_audio(record.path)
        for rows, transform in zip(out, transforms):
            x = protocol_input(transform(audio, sr, i), sr, source=str(record.path))
            rows.append(embedder.embed(x, SAMPLE_RATE)[0].numpy())
    return out


def fd_evaluator(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """The registered ``fd_evaluator`` metric (no bootstrap CI) over per-clip window embeddings
    ``[W, D]`` (given as arrays, so the metric loads no embedder)."""
    metric = get_metric("fd_evaluator", ci_resamples=0)
    for frames in reference:
        metric.update(frames, side="reference")
    for i, frames in enumerate(generated):
        metric.update(frames, side="generated", clip_id=str(i))
    return metric.compute().value


def degradation_table(
    corpus: str | Path,
    *,
    reference_split: str = "train",
    eval_split: str = "test",
    max_reference: int | None = 256,
    max_eval: int | None = None,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    verify: bool = True,
) -> dict[str, Any]:
    """FD between the clean reference split and each degradation of the evaluated split
    (``verify=False``: load a ``checkpoint`` that is not the shipped evaluator, on purpose)."""
    embedder = load_evaluator(checkpoint, verify=verify)  # a file of one's own loads with verify=False
    reference = split_clips(corpus, reference_split, need_captions=True)[:max_reference]
    evaluated = split_clips(corpus, eval_split, need_captions=True)[:max_eval]

    def transform(condition: Condition) -> Callable[[np.ndarray, int, int], np.ndarray]:
        return lambda audio, sr, i: degrade(audio, sr, condition, np.random.default_rng([seed, i]))

    (ref,) = window_embeddings(embedder, reference, [transform(CONDITIONS[0])], progress=progress)
    evals = window_embeddings(embedder, evaluated, [transform(c) for c in CONDITIONS], progress=progress)
    rows = [
        {"condition": c.label, "kind": c.kind, "value": c.value, "fd_evaluator": fd_evaluator(e, ref)}
        for c, e in zip(CONDITIONS, evals)
    ]
    return {
        "reference": {"split": reference_split, "clips": len(reference), "windows": sum(len(f) for f in ref)},
        "evaluated": {"split": eval_split, "clips": len(evaluated), "windows": sum(len(f) for f in evals[0])},
        "weights_sha256": embedder.weights_sha256,
        "seed": seed,
        "rows": rows,
        "monotonic": {kind: is_rising(rows, kind) for kind in ("noise", "lowpass")},
    }


def is_rising(rows: Sequence[dict[str, Any]], kind: str) -> bool:
    """Whether FD strictly rises from clean through the ``kind`` conditions in order of severity."""
    clean = [r["fd_evaluator"] for r in rows if r["kind"] == "clean"]
    series = clean + [r["fd_evaluator"] for r in rows if r["kind"] == kind]
    return all(a < b for a, b in zip(series, series[1:]))


def write_outputs(table: dict[str, Any], out: str | Path) -> Path:
    """``table`` (:func:`degradation_table`) as ``out/degradation.json``, ``degradation.csv`` and
    ``degradation.png``; returns the JSON file."""
    out = Path(out)
    write_json(out / "degradation.json", table)
    with atomic_path(out / "degradation.csv") as tmp:
        lines = [f"{r['condition']},{r['fd_evaluator']:.6g}" for r in table["rows"]]
        tmp.write_text("\n".join(["condition,fd_evaluator", *lines]) + "\n")
    plot(table, out / "degradation.png")
    return out / "degradation.json"


def plot(table: dict[str, Any], png: str | Path) -> Path:
    """Two panels: FD against SNR and against cut-off, the clean FD as a dashed line."""
    plt = pyplot()

    rows = table["rows"]
    clean = next(r["fd_evaluator"] for r in rows if r["kind"] == "clean")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, kind, xlabel in ((axes[0], "noise", "SNR (dB)"), (axes[1], "lowpass", "low-pass cut-off (kHz)")):
        sel = [r for r in rows if r["kind"] == kind]
        x = [r["value"] / (1000 if kind == "lowpass" else 1) for r in sel]
        ax.plot(x, [r["fd_evaluator"] for r in sel], "o-", color="tab:red")
        ax.axhline(clean, ls="--", color="gray", label="clean")
        ax.invert_xaxis()
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fd_evaluator")
        ax.grid(alpha=0.3)
        ax.legend()
    ref, ev = table["reference"], table["evaluated"]
    fig.suptitle(f"fd_evaluator: {ev['split']} ({ev['clips']} clips) degraded vs clean {ref['split']} ({ref['clips']})")
    fig.tight_layout()
    return save_figure(fig, png)
