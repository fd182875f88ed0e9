"""Clip sets: the manifest every stage reads and writes, and external sets users bring.

A clip set is one of:

- a t2mbench output folder holding ``manifest.jsonl`` (and a pandas-readable
  ``manifest.parquet`` beside it), one JSON object per clip with at least ``id`` and
  ``path`` (relative to the folder), usually ``caption``, ``seconds``, ``sample_rate``,
  ``channels``, ``sha256``, ``split``, ``attributes`` and ``truth``;
- an external set: a folder of audio plus a CSV or JSONL file with columns ``id``,
  ``caption`` and optionally ``path`` (relative to the folder, or absolute). Without
  ``path`` the file is ``<folder>/<id>.<ext>`` for ext in wav, flac, ogg, mp3 — the
  ``<id>.wav`` naming stable-audio-metrics uses for MusicCaps and Song Describer;
- a plain folder of audio files: ids are the file stems, no captions.

Missing, duplicate or unmatched ids are errors that list them.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from t2mbench.core.audio import SUPPORTED_EXTENSIONS
from t2mbench.core.errors import ManifestError
from t2mbench.core.files import atomic_path, write_jsonl

MANIFEST_JSONL = "manifest.jsonl"
MANIFEST_PARQUET = "manifest.parquet"
_LIST_LIMIT = 10


@dataclass
class ClipRecord:
    """One clip of a set. ``path`` is absolute once loaded; ``truth`` is an optional
    ground-truth file (``.npz``) and ``attributes`` free-form metadata."""

    id: str
    path: Path
    caption: str | None = None
    seconds: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    sha256: str | None = None
    split: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    truth: Path | None = None

    def to_row(self, root: Path) -> dict[str, Any]:
        """JSON-ready dict with paths relative to ``root`` where possible."""
        row = asdict(self)
        row["path"] = _relative(self.path, root)
        row["truth"] = _relative(self.truth, root) if self.truth else None
        return row


@dataclass
class ClipSet:
    """An ordered set of clips with unique ids; ``source`` is the file or folder it came from."""

    clips: list[ClipRecord]
    source: Path

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.clips]

    def by_id(self) -> dict[str, ClipRecord]:
        return {c.id: c for c in self.clips}

    def subset(self, ids: Sequence[str]) -> ClipSet:
        """The clips with ``ids``, in that order."""
        table = self.by_id()
        missing = [i for i in ids if i not in table]
        if missing:
            raise ManifestError(f"{self.source}: ids not in the set: {_listing(missing)}")
        return ClipSet([table[i] for i in ids], self.source)


def load_clipset(path: str | os.PathLike, *, check_files: bool = True) -> ClipSet:
    """Load a clip set from a t2mbench folder, a manifest file (``.jsonl``, ``.csv``,
    ``.parquet``) or a plain folder of audio (see the module docstring).

    Raises:
        ManifestError: unreadable manifest, missing ``id`` column, duplicate ids, listed
            clips whose audio file is missing, audio files in the folder that no row names
            (external sets only), or an empty set. Each message lists the offending ids.
    """
    p = Path(path)
    if p.is_dir():
        if (p / MANIFEST_JSONL).is_file():
            return load_clipset(p / MANIFEST_JSONL, check_files=check_files)
        tables = sorted(q for q in p.iterdir() if q.suffix.lower() in (".csv", ".jsonl") and q.is_file())
        if len(tables) == 1:
            return load_clipset(tables[0], check_files=check_files)
        if len(tables) > 1:
            raise ManifestError(f"{p}: several caption tables ({_listing([t.name for t in tables])}); pass one of them")
        audio = sorted(q for q in p.iterdir() if q.suffix.lower() in SUPPORTED_EXTENSIONS)
        if not audio:
            kinds = ", ".join(SUPPORTED_EXTENSIONS)
            raise ManifestError(f"{p}: no manifest.jsonl, caption table or audio files ({kinds})")
        rows = [{"id": q.stem, "path": q.name} for q in audio]
        return _from_rows(rows, p / MANIFEST_JSONL, check_files=check_files)
    if not p.is_file():
        raise ManifestError(f"{p}: no such manifest file or folder")
    suffix = p.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = _jsonl_rows(p)
        elif suffix == ".csv":
            with open(p, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM before the header is read, not kept
                rows = list(csv.DictReader(f))
        elif suffix == ".parquet":
            import pandas as pd

            rows = pd.read_parquet(p).to_dict(orient="records")
        else:
            raise ManifestError(f"{p}: unsupported manifest type {suffix!r}; use .jsonl, .csv or .parquet")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error, ValueError) as e:
        if isinstance(e, ManifestError):
            raise
        raise ManifestError(f"{p}: unreadable manifest ({e})") from None
    external = p.name != MANIFEST_JSONL
    return _from_rows(rows, p, check_files=check_files, external=external)


def _jsonl_rows(path: Path) -> list[dict]:
    """The objects of a JSONL manifest; a line that is not a JSON object names its line number."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}: line {n} is not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"{path}: line {n} is a JSON {type(row).__name__}, not an object")
            rows.append(row)
    return rows


def _from_rows(rows: list[dict], source: Path, *, check_files: bool, external: bool = False) -> ClipSet:
    root = source.parent
    if not rows:
        raise ManifestError(f"{source}: the set is empty")
    if any("id" not in r or r["id"] in (None, "") for r in rows):
        bad = [str(i + 1) for i, r in enumerate(rows) if "id" not in r or r["id"] in (None, "")]
        raise ManifestError(f"{source}: rows without an id (rows {_listing(bad)}); every row needs 'id'")
    ids = [str(r["id"]) for r in rows]
    dups = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dups:
        raise ManifestError(f"{source}: duplicate ids: {_listing(dups)}")
    clips, missing = [], []
    for r in rows:
        cid = str(r["id"])
        audio = _audio_path(root, cid, r.get("path"))
        if audio is None or (check_files and not audio.is_file()):
            missing.append(cid)
            continue
        try:
            clips.append(
                ClipRecord(
                    id=cid,
                    path=audio,
                    caption=_opt_str(r.get("caption")),
                    seconds=_opt(r, "seconds", float),
                    sample_rate=_opt(r, "sample_rate", int),
                    channels=_opt(r, "channels", int),
                    sha256=_opt_str(r.get("sha256")),
                    split=_opt_str(r.get("split")),
                    attributes=_attributes(r.get("attributes")),
                    truth=(root / str(r["truth"])) if r.get("truth") else None,
                )
            )
        except ValueError as e:
            raise ManifestError(f"{source}: clip {cid!r}: {e}") from None
    if missing:
        raise ManifestError(f"{source}: ids listed without an audio file in {root}: {_listing(missing)}")
    if external and check_files:
        named = {c.path.resolve() for c in clips}
        unmatched = sorted(
            q.name for q in root.iterdir() if q.suffix.lower() in SUPPORTED_EXTENSIONS and q.resolve() not in named
        )
        if unmatched:
            raise ManifestError(f"{source}: audio files in {root} that no row names: {_listing(unmatched)}")
    return ClipSet(clips, source)


def match_ids(generated: ClipSet, reference: ClipSet) -> list[str]:
    """The common ids of two sets, in ``generated``'s order; any id in one set and not the
    other is an error listing both differences (paired metrics need identical id sets)."""
    g, r = set(generated.ids), set(reference.ids)
    if g != r:
        only_g, only_r = sorted(g - r), sorted(r - g)
        parts = []
        if only_g:
            parts.append(f"only in generated ({generated.source}): {_listing(only_g)}")
        if only_r:
            parts.append(f"only in reference ({reference.source}): {_listing(only_r)}")
        raise ManifestError("generated and reference ids differ; " + "; ".join(parts))
    return generated.ids


def write_manifest(out_dir: str | os.PathLike, clips: Iterable[ClipRecord]) -> Path:
    """Write ``manifest.jsonl`` and ``manifest.parquet`` into ``out_dir`` atomically;
    returns the JSONL path."""
    import pandas as pd

    root = Path(out_dir)
    rows = [c.to_row(root) for c in clips]
    path = write_jsonl(root / MANIFEST_JSONL, rows)
    table = pd.DataFrame(rows)
    if "attributes" in table:
        # Parquet keeps nested dicts as structs only when every row agrees; store JSON text
        table["attributes"] = [json.dumps(a, sort_keys=True) for a in table["attributes"]]
    with atomic_path(root / MANIFEST_PARQUET) as tmp:
        table.to_parquet(tmp, index=False)
    return path


def _audio_path(root: Path, cid: str, path: Any) -> Path | None:
    if path not in (None, ""):
        p = Path(str(path))
        return p if p.is_absolute() else root / p
    for ext in SUPPORTED_EXTENSIONS:
        if (root / f"{cid}{ext}").is_file():
            return root / f"{cid}{ext}"
    return None


def _attributes(value: Any) -> dict[str, Any]:
    """A row's ``attributes``: an object, or its JSON text (CSV); ValueError naming the field otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"attributes {value!r} is not JSON ({e.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"attributes must be an object, got {type(value).__name__} {value!r}")
    return dict(value)


def _opt(row: dict, key: str, kind: type) -> Any:
    """Field ``key`` of ``row`` as ``kind`` (empty: None); ValueError naming the field otherwise."""
    value = row.get(key)
    if value is None or value == "":
        return None
    want = "a number" if kind is float else "an integer"
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} {value!r} is not {want}") from None
    if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{key} {value!r} is not {want}")
    if kind is float and not math.isfinite(number):
        raise ValueError(f"{key} {value!r} is not a finite number")
    return number


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _relative(p: Path, root: Path) -> str:
    """``p`` relative to ``root`` when under it, else absolute (a reader resolves a relative
    path against the manifest's folder, not the writer's working directory)."""
    try:
        return str(Path(p).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(Path(p).resolve())


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = len(items) - _LIST_LIMIT
    return f"{shown} (and {more} more)" if more > 0 else shown
