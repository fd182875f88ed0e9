"""A board: the systems of one or more result tables side by side, metric by metric.

The board reads result tables (:mod:`t2mbench.core.results`) and never computes a metric: each
cell of the board is an aggregate row as the scoring engine wrote it, with its CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from t2mbench.core import results
from t2mbench.core.errors import ConfigError

COLUMNS = ["system", "metric", "value", "ci_low", "ci_high"]
TABLE_NAMES = ("results.parquet", "scores.parquet")  # a sweep or cell folder, a score folder


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """A result table from a file, or from a folder holding ``results.parquet`` or ``scores.parquet``."""
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in TABLE_NAMES if (path / name).is_file()]
        if not found:
            raise ConfigError(f"{path}: no {' or '.join(TABLE_NAMES)} in this folder")
        path = found[0]
    return results.read(path)


def board(tables: Iterable[pd.DataFrame], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (system, metric) with the aggregate value and CI (columns :data:`COLUMNS`),
    systems in order of first appearance, metrics in ``metrics`` order (default: every metric
    with an aggregate row, in order of appearance). A metric that no table holds is an error."""
    rows = pd.concat([t[t["kind"] == "aggregate"] for t in tables], ignore_index=True)
    present = list(dict.fromkeys(rows["metric"]))
    wanted = list(metrics) if metrics else present
    missing = [m for m in wanted if m not in present]
    if missing:
        raise ConfigError(f"no aggregate rows for {', '.join(missing)}; the tables hold {', '.join(present)}")
    rows = rows[rows["metric"].isin(wanted)]
    order = {m: i for i, m in enumerate(wanted)}
    systems = {s: i for i, s in enumerate(dict.fromkeys(rows["system"].fillna("")))}
    rows = rows.assign(system=rows["system"].fillna(""))
    rows = rows.sort_values(by=["system", "metric"], key=lambda c: c.map(systems if c.name == "system" else order))
    return rows[COLUMNS].reset_index(drop=True)
