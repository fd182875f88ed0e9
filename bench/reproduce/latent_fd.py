"""``fd_latent``: the Fréchet distance in the DiT's own latent space.

The DDIM paper's FID is measured on the diffusion model's output space (pixels). For a latent
diffusion model that space is the latent the DiT samples, *before* the VAE decoder: the decoder
and the audio evaluator both smooth away part of what a sampler does to the latents (see
``docs/reproducing_ddim.md``). So next to the audio FD (``fd_evaluator``) each cell gets
``fd_latent``:

- generated: the sampler's output x0 of every clip (``latents.npy``, written by
  :func:`t2mbench.bench.generation.write_generation`; captured at generation, not re-encoded
  from the decoded audio, which would pass the sample through decoder and encoder and filter
  exactly the noise the σ̂ row adds);
- reference: the prompt clips (the corpus test clips) at the model's rate, zero-padded to the
  generated latent length, encoded by the model's VAE as the DiT was trained on them: a
  posterior sample (mean + std·ε, seeded) divided by the pretransform scale;
- statistics: every latent frame (``latent_channels``-dimensional, 31.25 Hz for ``tiny``) of
  every clip is one row, as an embedder's frames are for FD; FD by
  :func:`t2mbench.metrics.frechet.frechet_distance_from_stats`; CI by
  :func:`t2mbench.metrics.frechet.fd_ci` (bootstrap over generated clips, reference fixed: the
  method ``metrics/frechet.py`` offers at the time of writing);
- floor: FD between two independent posterior samples of the same reference clips.

Never called FD-openl3 or FD-evaluator: its name is ``fd_latent`` and it compares only runs of one
model (a latent space is the model's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from t2mbench.bench.cells import Cell, cell_dir
from t2mbench.bench.corpus.splits import load_split_audio
from t2mbench.bench.generation import LATENTS_FILE
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import atomic_path, read_json, write_json
from t2mbench.core.manifest import load_clipset
from t2mbench.metrics.frechet import (
    GaussianStats,
    embedding_stats,
    fd_ci,
    fd_difference_ci,
    frechet_distance_from_stats,
)
from t2mbench.reference_models.generate import latent_length
from t2mbench.reference_models.model import LatentDiffusionModel

METRIC = "fd_latent"
REFERENCE_FILE = "reference_latents.npz"
CELL_FILE = "fd_latent.json"
PAIRED = f"{METRIC}.minus_baseline"  # FD(cell) − FD(baseline cell, same steps), paired bootstrap over prompts
ENCODE_SEED = 0
BATCH = 8


def frames(latents: np.ndarray) -> list[np.ndarray]:
    """Per-clip frame rows ``[L, C]`` of latents ``[N, C, L]``."""
    return [np.ascontiguousarray(x.T, dtype=np.float64) for x in np.asarray(latents)]


@torch.inference_mode()
def encode_reference(model: LatentDiffusionModel, prompts: str | Path, clips: int, seconds: float,
                     seed: int = ENCODE_SEED) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Two independent posterior samples ``[N, C, L]`` (float32) of the first ``clips`` clips of the
    clip set ``prompts``, in the DiT's latent space (VAE latent / scale), L = the generated length."""
    records = list(load_clipset(prompts))[:clips]
    if len(records) < clips:
        raise ConfigError(f"{prompts} has {len(records)} clips; fd_latent needs {clips}")
    length = latent_length(model, seconds)
    audio = load_split_audio(records, model.sample_rate, model.info.audio_channels,
                             length * model.downsampling_ratio, progress=False)  # fmt: skip
    posteriors = [model.pretransform.posterior(a) for a in audio.split(BATCH)]  # one encoder pass, two draws
    draws = []
    for k in range(2):
        g = torch.Generator().manual_seed(seed + k)
        draws.append(torch.cat([m + s * torch.randn(m.shape, generator=g, dtype=m.dtype) for m, s in posteriors]))
    return draws[0].float().numpy(), draws[1].float().numpy()


def reference(out: str | Path, model: LatentDiffusionModel, prompts: str | Path, clips: int,
              seconds: float) -> tuple[GaussianStats, float]:  # fmt: skip
    """The reference statistics and the floor (FD of a second posterior draw against them), cached
    in ``out/reference_latents.npz``."""
    path = Path(out) / REFERENCE_FILE
    key = np.asarray([clips, seconds, ENCODE_SEED], dtype=np.float64)
    if path.is_file():
        held = np.load(path)
        if np.array_equal(held["key"], key):
            first, second = held["first"], held["second"]
        else:
            path.unlink()
    if not path.is_file():
        first, second = encode_reference(model, prompts, clips, seconds)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # a killed write never leaves a torn cache file
            np.savez(tmp, first=first, second=second, key=key)
    stats = embedding_stats(np.concatenate(frames(first)))
    floor = frechet_distance_from_stats(embedding_stats(np.concatenate(frames(second))), stats)
    return stats, float(floor)


def cell_fd(out: str | Path, cell: Cell, ref: GaussianStats, *, resamples: int = 100) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high"}`` of ``fd_latent`` for a generated cell (cached in the cell folder)."""
    folder = cell_dir(out, cell)
    cache = folder / CELL_FILE
    fingerprint = [float(ref.mu.sum()), float(np.trace(ref.sigma)), int(ref.n), int(resamples)]
    if cache.is_file():
        held = read_json(cache)
        if held.get("reference") == fingerprint:
            return held["fd"]
    if not (folder / LATENTS_FILE).is_file():
        raise ConfigError(f"{folder} has no {LATENTS_FILE}; regenerate the cell (delete its folder) for fd_latent")
    clips = frames(np.load(folder / LATENTS_FILE))
    value = frechet_distance_from_stats(embedding_stats(np.concatenate(clips)), ref)
    low, high = fd_ci(clips, ref, resamples=resamples)
    fd = {"value": float(value), "ci_low": float(low), "ci_high": float(high)}
    write_json(cache, {"metric": METRIC, "reference": fingerprint, "fd": fd})
    return fd


def paired_difference(out: str | Path, cell: Cell, baseline: Cell, ref: GaussianStats,
                      *, resamples: int = 100) -> dict[str, float]:  # fmt: skip
    """FD(cell) − FD(baseline) with a paired bootstrap CI: the same prompts (and so the same initial
    noise) drawn for both cells (:func:`t2mbench.metrics.frechet.fd_difference_ci`)."""
    a = frames(np.load(cell_dir(out, cell) / LATENTS_FILE))
    b = frames(np.load(cell_dir(out, baseline) / LATENTS_FILE))
    diff, low, high = fd_difference_ci({str(i): x for i, x in enumerate(a)}, {str(i): x for i, x in enumerate(b)},
                                       ref, resamples=resamples)  # fmt: skip
    return {"value": diff, "ci_low": low, "ci_high": high}


def _base(cell: Cell) -> dict[str, object]:
    return {"run_id": cell.key, "cell": cell.key, "system": f"{cell.model} {cell.sampler}-{cell.steps}",
            "model": cell.model, "sampler": cell.sampler, "steps": cell.steps, "cfg": cell.cfg, "seed": cell.seed,
            "sampler_options": results.canonical_options(cell.sampler_options), "kind": "aggregate"}  # fmt: skip


def latent_rows(out: str | Path, cells: Sequence[Cell], ref: GaussianStats,
                baselines: dict[str, Cell] | None = None) -> pd.DataFrame:  # fmt: skip
    """One ``fd_latent`` aggregate row per cell, in the result schema; with ``baselines`` (cell key → the
    baseline cell at its steps) also a ``fd_latent.minus_baseline`` row (paired difference and CI)."""
    rows = []
    for cell in cells:
        rows.append({**_base(cell), "metric": METRIC, **cell_fd(out, cell, ref)})
        base = (baselines or {}).get(cell.key)
        if base is not None and base.key != cell.key:
            rows.append({**_base(cell), "metric": PAIRED, **paired_difference(out, cell, base, ref)})
    return results.frame(rows)


def save_reference_summary(out: str | Path, stats: GaussianStats, floor: float) -> None:
    write_json(Path(out) / "fd_latent_reference.json",
               {"frames": int(stats.n), "dim": stats.dim, "floor_second_posterior_draw": floor})  # fmt: skip


__all__ = ["METRIC", "cell_fd", "encode_reference", "frames", "latent_rows", "reference"]
