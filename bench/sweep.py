"""Sweeps: a grid of cells run through the cell runner into one result table.

:func:`grid` builds the cells (samplers × steps here; every other field shared), and
:func:`run_sweep` hands them to an executor (:mod:`t2mbench.bench.executors`; ``local`` runs
them in order here, each through :func:`t2mbench.bench.cells.run_cell`), appends each
finished cell's rows to the run folder's store (:mod:`t2mbench.bench.store`) and exports the
sweep's table, every cell's rows in the result schema, to ``<out>/results.parquet`` and
``results.csv``. Finished cells are never run again, and an unfinished one resumes from its
own folder, so a killed sweep continues where it stopped with no row lost or repeated.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from t2mbench.bench.cells import Cell, Scoring
from t2mbench.bench.executors import Executor, get_executor
from t2mbench.bench.store import ResultStore
from t2mbench.core.devices import resolve_device
from t2mbench.core.errors import ConfigError
from t2mbench.core.progress import progress_bar
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
    """Run every cell without a part in ``out``'s store (:class:`~t2mbench.bench.store.ResultStore`)
    on ``executor`` (:mod:`t2mbench.bench.executors`, built with ``executor_options``), append
    each finished cell's rows to the store, and export the cells' rows, in order, to
    ``out/results.parquet|csv``; returns that table. ``on_cell`` is called with each cell's
    rows as they become available (finished cells first, read back from the store).

    ``progress``: a bar of cells done with an ETA, the current cell's key and stage
    (``generating`` with step and batch, ``scoring``) when the executor reports stages.
    """
    cells = list(cells)
    if len({c.key for c in cells}) != len(cells):
        raise ConfigError("the sweep lists a cell twice; every cell of a grid must differ")
    runner = check_run(executor, executor_options, device, cells)
    store = ResultStore(out)
    store.clean()  # one sweep writes a run folder at a time: a temporary part is a killed write's
    pending = [c for c in cells if not store.has(c)]
    if on_cell is not None:
        for cell in cells:
            if store.has(cell):
                on_cell(cell, store.read(cell))
    with SweepProgress(len(cells), len(cells) - len(pending), enabled=progress) as bar:
        kwargs: dict[str, Any] = {"device": device, "progress": progress}
        if "on_stage" in inspect.signature(runner.run).parameters:
            kwargs.update(progress=False, on_stage=bar.stage)  # the sweep's bar, not one per scoring run
        for cell, table in zip(pending, runner.run(pending, scoring, out, **kwargs), strict=True):
            store.append(cell, table)
            bar.cell_done(cell)
            if on_cell is not None:
                on_cell(cell, table)
    return store.export(cells)


def check_run(executor: str, executor_options: Mapping[str, Any] | None, device: str,
              cells: Sequence[Cell] = ()) -> Executor:  # fmt: skip
    """The executor built with its options, the device and the cells' weight files checked (present,
    and their sha256 the published one unless a cell opts out with ``verify=False``), so that a bad
    one is found before any work (one-line ConfigError)."""
    from t2mbench.reference_models.factory import build
    from t2mbench.reference_models.generate import checkpoint_path

    resolve_device(device)
    for model, checkpoint, verify in dict.fromkeys((c.model, c.checkpoint, c.verify) for c in cells):
        checkpoint_path(build(model, device="meta"), model, checkpoint, verify=verify)
    return get_executor(executor, **dict(executor_options or {}))


class SweepProgress:
    """The sweep's bar: cells done of all (ETA from the cells done in this run), and as the
    postfix the current cell's stage, e.g. ``ddim-50-1a2b3c4d5e6f generating 12/50 batch 1/1``."""

    def __init__(self, total: int, done: int, *, enabled: bool = True) -> None:
        self.bar = progress_bar(total=total, initial=done, desc="sweep", unit="cell", disable=not enabled)
        self.current = ""
        self.drawn = 0.0

    def stage(self, stage: str, info: Mapping[str, Any]) -> None:
        """A cell's stage report (``run_cell``'s ``on_stage``); redrawn at most every 0.2 s."""
        text = f"{info.get('cell', '')} {stage}"
        if stage == "generating":
            text += f" {info['step']}/{info['steps']} batch {info['batch']}/{info['batches']}"
        if text != self.current:
            self.current = text
            now = time.monotonic()
            redraw = now - self.drawn >= 0.2 or stage != "generating"
            self.bar.set_postfix_str(text, refresh=redraw)
            if redraw:
                self.drawn = now

    def cell_done(self, cell: Cell) -> None:
        self.bar.set_postfix_str(f"{cell.key} done", refresh=False)
        self.bar.update(1)

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
