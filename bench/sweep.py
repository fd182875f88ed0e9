"""Sampler × step-count sweeps: generate one clip set per cell with the same prompts and seeds,
score every cell against the same reference set, and collect one long results table.

Each cell lives in ``<out>/cells/<sampler>-<steps>/`` (audio, manifest, ``generation.json``,
provenance) with its scores in ``scores/`` (the scoring engine's folder). A cell whose scores
exist is not redone, so a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from t2mbench.bench.generation import PromptRow, write_generation
from t2mbench.metrics.scoring import score
from t2mbench.reference_models import generate
from t2mbench.reference_models.model import LatentDiffusionModel

from t2mbench.core.errors import ConfigError
from t2mbench.core.files import read_json
from t2mbench.core.manifest import ClipSet

SUMMARY = "summary.json"


@dataclass(frozen=True)
class Cell:
    """One sweep cell: a sampler at a step count."""

    sampler: str
    steps: int

    @property
    def name(self) -> str:
        return f"{self.sampler}-{self.steps}"


def parse_cells(samplers: Sequence[str], steps: Sequence[int]) -> list[Cell]:
    """The grid ``samplers × steps`` (validated: known samplers, steps ≥ 1)."""
    from t2mbench.reference_models.samplers import registered

    known = registered()
    unknown = [s for s in samplers if s not in known]
    if unknown:
        raise ConfigError(f"unknown samplers {', '.join(unknown)}; known: {', '.join(known)}")
    bad = [n for n in steps if n < 1]
    if bad:
        raise ConfigError(f"steps must be >= 1, got {bad}")
    return [Cell(s, n) for s in samplers for n in steps]


def run_sweep(
    model: LatentDiffusionModel,
    prompts: Sequence[PromptRow],
    reference: ClipSet | str | Path,
    cells: Sequence[Cell],
    out: str | Path,
    *,
    metrics: Sequence[str],
    cfg_scale: float,
    seconds: float,
    seed: int,
    batch_size: int,
    progress: bool = True,
    on_cell: Callable[[Cell, dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Generate and score every cell; returns one row per (cell, metric) with the aggregate
    value, its bootstrap CI, and the cell's NFE and generation seconds per clip."""
    out = Path(out)
    ref = reference.source.parent if isinstance(reference, ClipSet) else Path(reference)
    rows = []
    for cell in cells:
        cell_dir = out / "cells" / cell.name
        scores_dir = cell_dir / "scores"
        if not (scores_dir / SUMMARY).is_file():
            t0 = time.perf_counter()
            result = generate(
                model, [p.prompt for p in prompts], sampler=cell.sampler, steps=cell.steps, cfg_scale=cfg_scale,
                seconds=seconds, seed=seed, batch_size=batch_size,
            )
            write_generation(
                cell_dir, prompts, result, model, seconds=seconds, seed=seed, prompts_source=ref,
                attributes={"sampler": cell.sampler, "steps": cell.steps, "cfg": cfg_scale},
            )
            score(cell_dir, ref, metrics, scores_dir, system=f"{model.info.name} {cell.name}", progress=progress)
            if on_cell is not None:
                on_cell(cell, {"seconds": time.perf_counter() - t0})
        rows.extend(_cell_rows(cell, cell_dir, scores_dir, len(prompts)))
    table = pd.DataFrame(rows)
    return table


def _cell_rows(cell: Cell, cell_dir: Path, scores_dir: Path, n_clips: int) -> list[dict[str, Any]]:
    generation = read_json(cell_dir / "generation.json")
    summary = read_json(scores_dir / SUMMARY)
    per_clip = generation["timings_seconds"]["total"] / n_clips
    base = {"sampler": cell.sampler, "steps": cell.steps, "nfe": generation["nfe"], "seconds_per_clip": per_clip}
    return [
        {**base, "metric": name, "value": m["value"], "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high")}
        for name, m in summary["metrics"].items()
    ]


def pivot(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``sampler × steps`` grid of ``metric``'s values."""
    return table[table["metric"] == metric].pivot(index="sampler", columns="steps", values="value")
