"""The result schema: the one table shape every run writes and every table, gate and board reads.

A long table, one row per (run, cell, clip, metric, kind):

- ``kind == "clip"``: a metric's value on one clip (``clip_id`` set);
- ``kind == "aggregate"``: a metric over the run (``clip_id`` empty), with its CI when it has one;
  components (``stft.sc``) and extras (``fd_openl3.fad_inf``) are aggregate rows of their own;
- ``kind == "generation"``: how the cell's audio was made, per clip: ``nfe``, ``seconds_per_clip``,
  ``text_encoding_seconds``, ``denoising_seconds``, ``decoding_seconds``, ``real_time_factor``.

``run_id`` names the scoring run; ``cell`` is the cell runner's content key (empty outside it);
``model``, ``sampler``, ``sampler_options`` (canonical JSON), ``steps``, ``cfg`` and ``seed``
describe what generated the audio (empty when unknown, e.g. an external set).

Versions: 1 is this layout. Version 0 is the scoring table written before the schema existed
(``scores.parquet`` without ``schema_version``, ``cell``, ``model`` and ``sampler_options``,
run attributes as text); :func:`read` upgrades it. A table from a newer version, or one that
is not a result table, is refused with a message naming both versions.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.core.errors import T2MBenchError
from t2mbench.core.files import atomic_path

SCHEMA_VERSION = 1

# column -> pandas dtype (nullable extension types, so an empty field stays empty through CSV)
COLUMNS: dict[str, str] = {
    "schema_version": "Int64",
    "run_id": "string",
    "cell": "string",
    "system": "string",
    "model": "string",
    "sampler": "string",
    "sampler_options": "string",
    "steps": "Int64",
    "cfg": "Float64",
    "seed": "Int64",
    "clip_id": "string",
    "metric": "string",
    "kind": "string",
    "value": "Float64",
    "ci_low": "Float64",
    "ci_high": "Float64",
}
KEY = ("run_id", "cell", "clip_id", "metric", "kind")
KINDS = ("clip", "aggregate", "generation")
REQUIRED = ("run_id", "metric", "kind")
# the metrics of the kind == "generation" rows (t2mbench.bench.cells.generation_rows)
GENERATION_METRICS = (
    "nfe", "seconds_per_clip", "text_encoding_seconds", "denoising_seconds", "decoding_seconds", "real_time_factor",
)  # fmt: skip
# the scoring table before the schema (version 0): these columns, run attributes as text
V0_COLUMNS = ("run_id", "system", "sampler", "steps", "cfg", "seed", "clip_id", "metric", "kind", "value", "ci_low",
              "ci_high")  # fmt: skip
FORMATS = (".parquet", ".csv")


class SchemaError(T2MBenchError):
    """A table that does not hold to the result schema (the message names the column or row)."""


def canonical_options(options: Mapping[str, Any] | None) -> str:
    """Sampler options as canonical JSON (sorted keys, no spaces): ``{}`` when none."""
    return json.dumps(dict(options or {}), sort_keys=True, separators=(",", ":"))


def frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows (dicts keyed by column; a missing column is empty) as a validated table."""
    records = [{**dict.fromkeys(COLUMNS), **row, "schema_version": SCHEMA_VERSION} for row in rows]
    extra = sorted({k for r in records for k in r} - set(COLUMNS))
    if extra:
        raise SchemaError(f"unknown result columns {', '.join(extra)}; the schema has {', '.join(COLUMNS)}")
    return validate(pd.DataFrame(records, columns=list(COLUMNS)))


def _coerce(table: pd.DataFrame, column: str, dtype: str) -> pd.Series:
    series = table[column]
    if dtype == "string":
        return series.astype("object").where(series.notna(), None).astype("string")
    numeric = pd.to_numeric(series.astype("object").where(series.notna(), None), errors="coerce")
    bad = series.notna() & numeric.isna() & ~series.astype("string").str.lower().isin(["nan"])
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise SchemaError(f"column {column!r} row {i}: {_show(series.iloc[i])} is not a number")
    if dtype == "Int64":
        frac = numeric.notna() & (numeric.fillna(0) % 1 != 0)
        if frac.any():
            i = int(frac.to_numpy().nonzero()[0][0])
            raise SchemaError(f"column {column!r} row {i}: {_show(series.iloc[i])} is not an integer")
    return numeric.astype(dtype)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def validate(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the schema's columns, order and dtypes, checked; raises :class:`SchemaError`
    naming the first problem: a missing or unknown column, a value of the wrong type, an empty
    required field, an unknown ``kind``, a clip row without ``clip_id``, a duplicate key."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise SchemaError(f"result table lacks columns {', '.join(missing)}")
    extra = [c for c in table.columns if c not in COLUMNS]
    if extra:
        raise SchemaError(f"unknown result columns {', '.join(map(str, extra))}; the schema has {', '.join(COLUMNS)}")
    out = pd.DataFrame({c: _coerce(table, c, dtype) for c, dtype in COLUMNS.items()})
    out.index = pd.RangeIndex(len(out))
    versions = set(out["schema_version"].dropna().tolist())
    if versions != {SCHEMA_VERSION} and len(out):
        raise SchemaError(f"schema_version {sorted(versions)} in a version-{SCHEMA_VERSION} table")
    for c in REQUIRED:
        empty = out[c].isna() | (out[c] == "")
        if empty.any():
            raise SchemaError(f"column {c!r} row {int(empty.to_numpy().nonzero()[0][0])} is empty")
    kinds = set(out["kind"].tolist()) - set(KINDS)
    if kinds:
        raise SchemaError(f"unknown kind {sorted(kinds)[0]!r}; kinds are {', '.join(KINDS)}")
    clipless = (out["kind"] == "clip") & out["clip_id"].isna()
    if clipless.any():
        raise SchemaError(f"row {int(clipless.to_numpy().nonzero()[0][0])}: a clip row without clip_id")
    dup = out.duplicated(list(KEY), keep="first")
    if dup.any():
        row = out.loc[dup.idxmax(), list(KEY)]
        raise SchemaError(f"duplicate result key {dict(row.astype(object).where(row.notna(), None))}")
    return out


def upgrade(table: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """An older or current result table as a current one; :class:`SchemaError` for a newer
    version or a table that is not a result table, naming both versions."""
    if "schema_version" in table.columns:
        found = pd.to_numeric(table["schema_version"], errors="coerce").dropna().unique().tolist()
        version = int(max(found)) if found else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"{source} has result schema version {version}; this t2mbench reads versions 0 to "
                f"{SCHEMA_VERSION}: upgrade t2mbench"
            )
        return validate(table)
    if tuple(table.columns) == V0_COLUMNS:
        return frame(r for r in _v0_rows(table))
    raise SchemaError(
        f"{source} is not a t2mbench result table (no schema_version; columns {', '.join(map(str, table.columns))}); "
        f"this t2mbench reads result schema versions 0 to {SCHEMA_VERSION}"
    )


def _v0_rows(table: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Version-0 rows: run attributes were text (JSON for non-strings); numbers parse back."""
    for row in table.astype(object).where(table.notna(), None).to_dict("records"):
        for k in ("steps", "cfg", "seed"):
            v = row[k]
            if isinstance(v, str):
                try:
                    v = json.loads(v)
                except ValueError:
                    v = None
            row[k] = v if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None
        yield row


def read(path: str | os.PathLike) -> pd.DataFrame:
    """A result table from ``.parquet`` or ``.csv``, upgraded to this version."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise SchemaError(f"{path}: a result table is .parquet or .csv")
    if not path.is_file():
        raise SchemaError(f"{path}: no such result table")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:  # every field as text, empty fields empty: the schema's coercion types them
            table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as e:
        raise SchemaError(f"{path}: unreadable result table ({e})") from None
    return upgrade(table, str(path))


def write(table: pd.DataFrame, folder: str | os.PathLike, name: str = "results") -> tuple[Path, Path]:
    """Validate ``table`` and write ``folder/name.parquet`` and ``folder/name.csv`` (each atomically)."""
    table = validate(table)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"{name}.parquet", folder / f"{name}.csv"
    with atomic_path(paths[0]) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(paths[1]) as tmp:
        table.to_csv(tmp, index=False)
    return paths


def concat(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Tables of this version stacked into one (validated: keys stay unique)."""
    tables = list(tables)
    if not tables:
        return frame([])
    return validate(pd.concat(tables, ignore_index=True))
