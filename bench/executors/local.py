"""The local executor: every cell in order, in this process (the default)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import pandas as pd

from t2mbench.bench.cells import Cell, Scoring, StageCallback, run_cell


class LocalExecutor:
    """Runs each cell with :func:`~t2mbench.bench.cells.run_cell` here, one after another (stage
    reports go to ``on_stage``)."""

    def run(self, cells: Sequence[Cell], scoring: Scoring, out: str | os.PathLike, *, device: str = "cpu",
            progress: bool = True, on_stage: StageCallback | None = None) -> Iterator[pd.DataFrame]:  # fmt: skip
        for cell in cells:
            yield run_cell(cell, scoring, out, device=device, progress=progress, on_stage=on_stage)
