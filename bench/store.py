"""The sweep's result store: append-only, one part file per finished cell, and its export.

Layout under a run folder ``out``::

    <out>/store/parts/<cell key>.parquet   one finished cell's rows (result schema), written once
    <out>/results.parquet, results.csv      the export: the sweep's cells' parts, in grid order

Append-only: a part is written once, under its cell's content key, by an atomic rename
(:func:`t2mbench.core.files.atomic_path`), and never rewritten. So a kill leaves either the
whole part or none of it, and the store can never hold one cell twice: resume runs exactly
the cells without a part, and the export concatenates one part per cell (validated by
:func:`t2mbench.core.results.concat`, which refuses a duplicate key). The export is derived
data, rewritten atomically from the parts whenever a sweep ends; cells of other sweeps that
share the folder stay in the store but are not exported.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from t2mbench.bench.cells import RESULTS, Cell, cell_dir
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.core.faults import pause_point
from t2mbench.core.files import atomic_path

STORE = "store"


class ResultStore:
    """The store of run folder ``out`` (created on the first append)."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.parts = self.out / STORE / "parts"

    def part(self, cell: Cell) -> Path:
        """The part file of ``cell``."""
        return self.parts / f"{cell.key}.parquet"

    def has(self, cell: Cell) -> bool:
        """Whether ``cell`` has finished (its part exists)."""
        return self.part(cell).is_file()

    def read(self, cell: Cell) -> pd.DataFrame:
        """The rows of a finished cell."""
        return results.read(self.part(cell))

    def append(self, cell: Cell, table: pd.DataFrame) -> Path:
        """Write ``cell``'s rows as its part; a cell that already has one is refused (ConfigError)."""
        table = results.validate(table)
        if set(table["cell"].dropna()) != {cell.key}:
            raise ConfigError(f"rows for the store's part {cell.key} name cells {sorted(set(table['cell'].dropna()))}")
        path = self.part(cell)
        if path.is_file():
            raise ConfigError(f"the store already holds cell {cell.key} ({path}); parts are written once")
        with atomic_path(path) as tmp:
            table.to_parquet(tmp, index=False)
            pause_point("store")
        return path

    def export(self, cells: Sequence[Cell]) -> pd.DataFrame:
        """The parts of ``cells`` (all finished) in their order as one table, written to
        ``out/results.parquet`` and ``out/results.csv``; returns it."""
        missing = [c.key for c in cells if not self.has(c)]
        if missing:
            raise ConfigError(f"cannot export: cells {', '.join(missing)} have not finished")
        table = results.concat(self.read(c) for c in cells)
        results.write(table, self.out, RESULTS)
        return table

    def clean(self) -> list[Path]:
        """Remove the temporary files of part writes a kill interrupted (``.<key>.parquet.tmp*``);
        call it only when no other sweep writes this folder. Returns what it removed."""
        stale = sorted(self.parts.glob(".*.tmp*")) if self.parts.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def discard(self, cells: Sequence[Cell]) -> None:
        """Forget ``cells``: their parts and their cell folders (``--fresh``). Other cells stay."""
        for cell in cells:
            self.part(cell).unlink(missing_ok=True)
            shutil.rmtree(cell_dir(self.out, cell), ignore_errors=True)
