"""An executor as a plugin would ship one (the README's Extending recipe): each cell runs in a
fresh Python process that receives only the cell's and the scoring's JSON, so nothing but
plain data crosses the seam."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

import pandas as pd

from t2mbench.bench.cells import RESULTS, Cell, Scoring, cell_dir
from t2mbench.bench.executors import ExecutorSpec
from t2mbench.core import results

CHILD = (
    "import json, sys; from t2mbench.bench.cells import Cell, Scoring, run_cell; "
    "a = json.loads(sys.argv[1]); run_cell(Cell.from_dict(a['cell']), Scoring.from_dict(a['scoring']), a['out'], "
    "device=a['device'], progress=False)"
)


class SubprocessExecutor:
    """One ``python -c`` per cell; ``python`` is the interpreter to use."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.launched = 0

    def run(self, cells: Sequence[Cell], scoring: Scoring, out: str | os.PathLike, *, device: str = "cpu",
            progress: bool = True) -> Iterator[pd.DataFrame]:  # fmt: skip
        for cell in cells:
            payload = {"cell": cell.to_dict(), "scoring": scoring.to_dict(), "out": str(out), "device": device}
            subprocess.run([self.python, "-c", CHILD, json.dumps(payload)], check=True)
            self.launched += 1
            yield results.read(cell_dir(out, cell) / f"{RESULTS}.parquet")


SPEC = ExecutorSpec("support.subprocess_executor:SubprocessExecutor", "one Python process per cell (test plugin)")
