"""Sweeps: a grid of cells run through the cell runner into one result table.

:func:`grid` builds the cells (samplers × steps here; every other field shared), and
:func:`run_sweep` hands them to an executor (:mod:`t2mbench.bench.executors`; ``local`` runs
them in order here, each through :func:`t2mbench.bench.cells.run_cell`) and writes the
sweep's table, every cell's rows in the result schema, to ``<out>/results.parquet`` and
``results.csv``. Each cell resumes from its own folder, so a killed sweep continues where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from t2mbench.bench.cells import RESULTS, Cell, Scoring
from t2mbench.bench.executors import get_executor
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.samplers import registered


def grid(
    model: str,
    samplers: Sequence[str],
    steps: Sequence[int],
    *,
    cfg: float,
    seed: int,
    clips: int,
    seconds: float,
    batch_size: int = 16,
    sampler_options: Mapping[str, Any] | None = None,
    checkpoint: str | None = None,
) -> list[Cell]:
    """The cells ``samplers × steps`` (sampler-major) with the other fields shared; unknown
    sampler names are a ConfigError listing the known ones."""
    known = registered()
    unknown = [s for s in samplers if s not in known]
    if unknown:
        raise ConfigError(f"unknown samplers {', '.join(unknown)}; known: {', '.join(known)}")
    return [
        Cell(model, s, int(n), cfg, seed, clips, seconds, dict(sampler_options or {}), checkpoint, batch_size)
        for s in samplers for n in steps
    ]  # fmt: skip


def run_sweep(
    cells: Sequence[Cell],
    scoring: Scoring,
    out: str | os.PathLike,
    *,
    executor: str = "local",
    executor_options: Mapping[str, Any] | None = None,
    device: str = "cpu",
    progress: bool = True,
    on_cell: Callable[[Cell, pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Run every cell on ``executor`` (:mod:`t2mbench.bench.executors`, built with
    ``executor_options``) and write ``out/results.parquet|csv``; returns the table.
    ``on_cell`` is called after each cell with its rows."""
    runner = get_executor(executor, **dict(executor_options or {}))
    tables = []
    for cell, table in zip(cells, runner.run(cells, scoring, out, device=device, progress=progress), strict=True):
        tables.append(table)
        if on_cell is not None:
            on_cell(cell, table)
    table = results.concat(tables)
    results.write(table, out, RESULTS)
    return table
