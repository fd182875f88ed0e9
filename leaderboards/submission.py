"""Leaderboard submissions: one JSON evaluation manifest plus the per-clip scores file beside it.

The manifest (schema :data:`SCHEMA_FILE`, version :data:`SCHEMA_VERSION`) records the system
(name, version, code commit), the t2mbench version, the **protocol** (each metric's protocol
version and direction, every embedder weight's sha256, the evaluation set's manifest hash and
clip count, loudness and channel handling, sample rate, clip length, best-of-N), the generation
settings (seeds, sampler and options, steps, CFG), the hardware the timings came from, and the
scores file (a result-schema table, :mod:`t2mbench.core.results`) with its sha256.

A board pins one protocol: :func:`protocol_differences` names every field where a submission's
protocol differs from the board's, and such a submission is refused.
:func:`from_cell` makes a submission from a sweep cell (``t2mbench demo`` / ``sweep`` output).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import read_json, sha256_file, staged_outputs, write_json
from t2mbench.leaderboards.schema_check import check_schema, child, problems

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name(f"submission-{SCHEMA_VERSION}.schema.json")
SUBMISSION_FILE = "submission.json"
SCORES_FILE = "scores.csv"
DEFAULT_LOUDNESS = "none: float32 wav as generated, no normalisation, no clipping"


class SubmissionError(ConfigError):
    """A submission that fails its schema, its scores file or the board's protocol; ``problems``
    holds every ``(json_path, message)``."""

    def __init__(self, source: str, found: list[tuple[str, str]]):
        self.problems = found
        # one line (the CLI's promise for every error), every problem on it with its JSON path
        listed = "; ".join(f"{p}: {m}" for p, m in found)
        super().__init__(f"{source}: {len(found)} problem{'s' if len(found) != 1 else ''}: {listed}")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The submission JSON Schema (checked to use only what :mod:`.schema_check` implements)."""
    s = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    check_schema(s)
    return s


def manifest_path(path: str | os.PathLike) -> Path:
    """A submission's manifest: ``path`` itself, or ``path/submission.json`` for a folder."""
    path = Path(path)
    return path / SUBMISSION_FILE if path.is_dir() else path


def check(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Every problem of the submission at ``path``: JSON syntax, the schema, then the scores file
    (present, sha256 as recorded, and, once the schema holds, a result table with rows for every
    metric whose clip count matches the protocol)."""
    path = manifest_path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        return [("$", f"not JSON: {e.msg} at line {e.lineno} column {e.colno}")]
    found = problems(doc, schema())
    entry = doc.get("scores") if isinstance(doc, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or any(p.startswith("$.scores.file")
                                                                                   for p, _ in found):
        return found
    scores = path.parent / entry["file"]
    where = "$.scores.file"
    if not scores.is_file():
        return [*found, (where, f"{scores.name} is not beside the manifest")]
    if isinstance(entry.get("sha256"), str) and sha256_file(scores) != entry["sha256"]:
        return [*found, ("$.scores.sha256", f"does not match {scores.name} (sha256 {sha256_file(scores)})")]
    if found:
        return found
    try:
        table = results.read(scores)
    except Exception as e:  # noqa: BLE001 - any unreadable table is a problem to report, not a crash
        return [(where, f"{scores.name} is not a result table: {e}")]
    for metric in doc["protocol"]["metrics"]:
        rows = table[table["metric"] == metric]
        clips = rows[rows["kind"] == "clip"]
        if rows.empty:
            found.append((where, f"no rows for metric {metric}"))
        elif not clips.empty and clips["clip_id"].nunique() != doc["protocol"]["eval_set"]["clips"]:
            found.append((where, f"{metric}: {clips['clip_id'].nunique()} clips scored, the protocol says "
                                 f"{doc['protocol']['eval_set']['clips']}"))  # fmt: skip
        elif clips.empty and rows[rows["kind"] == "aggregate"].empty:
            found.append((where, f"{metric}: neither clip nor aggregate rows"))
    return found


def load(path: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest at ``path``; raises :class:`SubmissionError` listing every problem."""
    path = manifest_path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such submission file")
    found = check(path)
    if found:
        raise SubmissionError(str(path), found)
    return json.loads(path.read_text(encoding="utf-8"))


def scores(path: str | os.PathLike, doc: dict[str, Any]) -> pd.DataFrame:
    """The scores table of the submission whose manifest is at ``path``."""
    return results.read(manifest_path(path).parent / doc["scores"]["file"])


def _flatten(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for k in sorted(value):
            _flatten(value[k], child(path, k), out)
    else:
        out[path] = value
    return out


def protocol_differences(board: dict[str, Any], submitted: dict[str, Any]) -> list[tuple[str, str]]:
    """``(json_path, message)`` for every protocol field where ``submitted`` differs from ``board``
    (both the ``protocol`` objects), a field missing on either side included."""
    a, b = _flatten(board, "$.protocol", {}), _flatten(submitted, "$.protocol", {})
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append((key, f"missing; the board pins {json.dumps(a[key])}"))
        elif key not in a:
            out.append((key, f"{json.dumps(b[key])} is not part of the board's protocol"))
        elif a[key] != b[key]:
            out.append((key, f"board pins {json.dumps(a[key])}, submission has {json.dumps(b[key])}"))
    return out


def _channels(n: int) -> str:
    return {1: "mono", 2: "stereo"}.get(n, "as-generated")


def from_cell(cell: str | os.PathLike, out: str | os.PathLike, *, eval_set: str, system: str | None = None,
              loudness: str = DEFAULT_LOUDNESS, best_of_n: int = 1) -> Path:
    """Write ``out/submission.json`` and ``out/scores.csv`` from one scored sweep cell folder."""
    cell = Path(cell)
    need = ["cell.json", "generation.json", "scores/summary.json", "scores/provenance.json", "results.csv"]
    missing = [n for n in need if not (cell / n).is_file()]
    if missing:
        raise ConfigError(f"{cell}: not a scored sweep cell (missing {', '.join(missing)})")
    spec, gen = read_json(cell / "cell.json")["cell"], read_json(cell / "generation.json")
    summary, prov = read_json(cell / "scores/summary.json"), read_json(cell / "scores/provenance.json")
    table = results.read(cell / "results.csv")
    reference = prov.get("inputs", {}).get("reference_manifest") or prov.get("inputs", {}).get("generated_manifest")
    if reference is None:
        raise ConfigError(f"{cell}: the scoring provenance records no evaluation-set manifest")
    manifest = pd.read_parquet(cell / "manifest.parquet") if (cell / "manifest.parquet").is_file() else None
    channels = int(manifest["channels"].iloc[0]) if manifest is not None else 0
    rate = int(manifest["sample_rate"].iloc[0]) if manifest is not None else int(gen["settings"]["sample_rate"])
    metrics = {name: {"protocol_version": str(m["protocol_version"]), "higher_is_better": bool(m["higher_is_better"]),
                      "settings": m.get("settings", {})} for name, m in summary["metrics"].items()}  # fmt: skip
    weights = {k: v for m in summary["metrics"].values() for k, v in sorted(m.get("weights", {}).items())}
    per_clip = table[(table["kind"] == "generation") & (table["metric"] == "seconds_per_clip")]["value"]
    rtf = table[(table["kind"] == "generation") & (table["metric"] == "real_time_factor")]["value"]
    git = prov.get("git") or {}
    doc = {
        "schema_version": SCHEMA_VERSION,
        "system": {"name": system or f"{spec['model']} {spec['sampler']}-{spec['steps']}",
                   "version": f"{spec['model']} weights {_weights_tag(gen.get('weights', {}))}",
                   "code_commit": str(git.get("commit") or "unknown") + ("-dirty" if git.get("dirty") else "")},
        "t2mbench_version": prov["t2mbench_version"],
        "protocol": {
            "metrics": metrics,
            "embedder_weights": weights,
            "eval_set": {"name": eval_set, "manifest_sha256": reference["sha256"],
                         "clips": int(summary["generated"]["clips"])},
            "audio": {"loudness": loudness, "channels": _channels(channels), "sample_rate": rate,
                      "clip_seconds": float(spec["seconds"])},
            "best_of_n": best_of_n,
        },
        "generation": {"seeds": f"seed {spec['seed']} + clip index", "sampler": spec["sampler"],
                       "sampler_options": spec.get("sampler_options") or {}, "steps": int(spec["steps"]),
                       "cfg": float(spec["cfg"]), "model": str(spec["model"]),
                       "weights": {k: str(v) if k != "path" else Path(str(v)).name
                                   for k, v in sorted(gen.get("weights", {}).items())}},
        "hardware": {"device": str(prov.get("device", "cpu")), "cpu": str(prov.get("cpu", "")),
                     "gpu": prov.get("gpu"), "torch": str(prov.get("torch", ""))},
        "timing": {},
        "scores": {"file": SCORES_FILE, "sha256": ""},
    }  # fmt: skip
    if len(per_clip):
        doc["timing"]["seconds_per_clip"] = float(per_clip.mean())
    if len(rtf):
        doc["timing"]["real_time_factor"] = float(rtf.mean())
    keep = table[table["kind"].isin(["clip", "aggregate"]) | (table["metric"] == "seconds_per_clip")]
    keep = keep.assign(run_id=keep["run_id"], cell=keep["cell"].fillna(""), system=doc["system"]["name"])
    keep = results.validate(keep.reset_index(drop=True))
    with staged_outputs(out) as stage:  # the scores and the manifest holding their sha256 appear together
        keep.to_csv(stage / SCORES_FILE, index=False)
        doc["scores"]["sha256"] = sha256_file(stage / SCORES_FILE)
        write_json(stage / SUBMISSION_FILE, doc)
    return Path(out) / SUBMISSION_FILE


def _weights_tag(weights: dict[str, Any]) -> str:
    """The first 12 hex digits of the model weights' sha256 (``weights["sha256"]``)."""
    sha = weights.get("sha256")
    return str(sha)[:12] if isinstance(sha, str) and sha else "unrecorded"
