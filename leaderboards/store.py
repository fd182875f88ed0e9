"""A board folder: its pinned protocol, its submissions, its listening results and its build.

    BOARD/board.json                      title, pinned protocol, plot axes, ranking settings
    BOARD/submissions/<id>/submission.json + scores.csv    one folder per submission, never rewritten
    BOARD/listening/*.json                ``t2mbench listen analyze`` output (its own columns)
    BOARD/published.json                  optional reference rows from papers, marked "published"
    BOARD/rendered/                       board.md, board.tex, ranking.json, site/ (``build``)

:func:`add` checks everything before it writes: a malformed submission, or one whose protocol
differs from the board's, changes nothing on disk. Adding the same submission again is a no-op;
a different submission under an existing id is refused (a submission is never rewritten).
:func:`build` is a pure function of the folder: re-running it writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.core.errors import ConfigError
from t2mbench.core.files import atomic_path, read_json, write_json
from t2mbench.leaderboards import ranking, submission

BOARD_FILE = "board.json"
BOARD_VERSION = 1


def slug(text: str) -> str:
    """A file-name-safe ASCII form of ``text`` (letters, digits, dashes)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60] or "system"


def submission_id(doc: dict[str, Any]) -> str:
    """``<slug of the name>-<8 hex of sha256(name, version)>``: stable, and distinct for
    names that slug alike."""
    key = json.dumps([doc["system"]["name"], doc["system"]["version"]], ensure_ascii=False)
    return f"{slug(doc['system']['name'])}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def read_board(board: str | os.PathLike) -> dict[str, Any]:
    path = Path(board) / BOARD_FILE
    if not path.is_file():
        raise ConfigError(f"{board}: not a board folder (no {BOARD_FILE}; make one with `t2mbench leaderboard init`)")
    return read_json(path)


def init(board: str | os.PathLike, from_submission: str | os.PathLike, *, title: str,
         quality_metric: str | None = None, latency_metric: str = "seconds_per_clip") -> Path:
    """Create ``board/board.json`` pinning the protocol of a valid submission."""
    doc = submission.load(from_submission)
    board = Path(board)
    if (board / BOARD_FILE).is_file():
        if read_board(board)["protocol"] == doc["protocol"]:
            return board / BOARD_FILE
        raise ConfigError(f"{board}: already a board with another protocol; it is never rewritten")
    metrics = list(doc["protocol"]["metrics"])
    spec = {"board_version": BOARD_VERSION, "title": title, "protocol": doc["protocol"],
            "quality_metric": quality_metric or metrics[0], "latency_metric": latency_metric,
            "ranking": {"resamples": ranking.RESAMPLES, "seed": 0, "confidence": 0.95}}  # fmt: skip
    if spec["quality_metric"] not in metrics:
        raise ConfigError(f"quality metric {spec['quality_metric']!r} is not in the protocol: {', '.join(metrics)}")
    board.mkdir(parents=True, exist_ok=True)
    return write_json(board / BOARD_FILE, spec)


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def add(board: str | os.PathLike, path: str | os.PathLike) -> tuple[str, str]:
    """Add the submission at ``path``; returns ``(id, "added" | "unchanged")``. Raises
    :class:`~t2mbench.leaderboards.submission.SubmissionError` (nothing written) for a malformed
    submission or a protocol that differs from the board's, naming every field."""
    spec = read_board(board)
    manifest = submission.manifest_path(path)
    doc = submission.load(manifest)
    diffs = submission.protocol_differences(spec["protocol"], doc["protocol"])
    if diffs:
        raise submission.SubmissionError(f"{manifest}: refused, its protocol differs from the board's", diffs)
    sid = submission_id(doc)
    target = Path(board) / "submissions" / sid
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".incoming-") as tmp:
        staged = Path(tmp) / sid
        staged.mkdir()
        shutil.copyfile(manifest, staged / submission.SUBMISSION_FILE)
        shutil.copyfile(manifest.parent / doc["scores"]["file"], staged / doc["scores"]["file"])
        if target.exists():
            if _same_files(staged, target):
                return sid, "unchanged"
            raise ConfigError(f"{sid}: a different submission with this system name and version is already on "
                              f"the board; submissions are never rewritten (change system.version)")  # fmt: skip
        os.rename(staged, target)
    return sid, "added"


def entries(board: str | os.PathLike) -> list[tuple[str, dict[str, Any], pd.DataFrame]]:
    """``(id, manifest, scores)`` of every submission, in id order, each re-checked (schema,
    scores hash, the board's protocol): a hand-edited submission fails the build, naming it."""
    root = Path(board) / "submissions"
    pinned = read_board(board)["protocol"]
    out = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".")):
        doc = submission.load(folder)
        diffs = submission.protocol_differences(pinned, doc["protocol"])
        if diffs:
            raise submission.SubmissionError(f"{folder}: its protocol differs from the board's", diffs)
        out.append((folder.name, doc, submission.scores(folder, doc)))
    return out


def listening(board: str | os.PathLike) -> list[dict[str, Any]]:
    """Every listening-test result in ``board/listening/``, in file-name order."""
    return [read_json(p) for p in sorted((Path(board) / "listening").glob("*.json"))]


def ranked(board: str | os.PathLike) -> dict[str, Any]:
    """The board's content as plain data (what every renderer and the site read)."""
    spec = read_board(board)
    items = entries(board)
    if not items:
        raise ConfigError(f"{board}: no submissions yet (add one with `t2mbench leaderboard add`)")
    names = [doc["system"]["name"] for _, doc, _ in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{board}: several submissions are named {', '.join(map(repr, dupes))}")
    tables = {doc["system"]["name"]: t for _, doc, t in items}
    directions = {m: v["higher_is_better"] for m, v in spec["protocol"]["metrics"].items()}
    opts = spec.get("ranking", {})
    kw = {"resamples": opts.get("resamples", ranking.RESAMPLES), "seed": opts.get("seed", 0),
          "confidence": opts.get("confidence", 0.95)}  # fmt: skip
    per_metric = pd.concat([ranking.rank_metric(tables, m, hib, **kw) for m, hib in directions.items()])
    total = ranking.overall(tables, directions, **kw)
    systems = []
    for sid, doc, _ in items:
        name = doc["system"]["name"]
        cells = {r.metric: {"value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "rank": int(r.rank),
                            "n_clips": None if pd.isna(r.n_clips) else int(r.n_clips), "source": r.source}
                 for r in per_metric[per_metric["system"] == name].itertuples()}  # fmt: skip
        o = total[total["system"] == name].iloc[0]
        systems.append({"id": sid, "name": name, "submission": doc, "metrics": cells,
                        "overall": {"mean_rank": float(o.mean_rank), "ci_low": float(o.ci_low),
                                    "ci_high": float(o.ci_high), "rank": int(o["rank"])},
                        "latency": (doc.get("timing") or {}).get(spec.get("latency_metric", "seconds_per_clip")),
                        "listening": {}})  # fmt: skip
    by_name = {s["name"]: s for s in systems}
    columns = []
    for result in listening(board):
        for column in result.get("columns", []):
            columns.append({k: column[k] for k in ("key", "label", "higher_is_better")})
            for name, cell in column["systems"].items():
                if name in by_name:
                    by_name[name]["listening"][column["key"]] = cell
    systems.sort(key=lambda s: (s["overall"]["mean_rank"], s["name"]))
    published = read_json(Path(board) / "published.json") if (Path(board) / "published.json").is_file() else None
    return {"title": spec["title"], "protocol": spec["protocol"], "quality_metric": spec.get("quality_metric"),
            "latency_metric": spec.get("latency_metric"), "metrics": directions, "listening_columns": columns,
            "systems": systems, "published": published, "ranking": kw}  # fmt: skip


def frame(data: dict[str, Any]) -> pd.DataFrame:
    """The ranked board as a renderer frame: ``system, metric, value, ci_low, ci_high, rank``
    (overall mean rank first, then the metrics, then the listening columns)."""
    rows = []
    for s in data["systems"]:
        o = s["overall"]
        rows.append([s["name"], "mean rank", o["mean_rank"], o["ci_low"], o["ci_high"], o["rank"]])
        for m in data["metrics"]:
            c = s["metrics"][m]
            rows.append([s["name"], m, c["value"], c["ci_low"], c["ci_high"], c["rank"]])
        for col in data["listening_columns"]:
            c = s["listening"].get(col["key"])
            if c is not None:
                rows.append([s["name"], col["label"], c["value"], c.get("ci_low"), c.get("ci_high"), c.get("rank")])
    out = pd.DataFrame(rows, columns=["system", "metric", "value", "ci_low", "ci_high", "rank"])
    return out.astype({"value": float, "ci_low": float, "ci_high": float})


def build(board: str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    """Write ``board.md``, ``board.tex``, ``ranking.json`` and ``site/`` into ``out`` (default
    ``board/rendered``); the same folder always gives the same bytes. Returns the files written."""
    from t2mbench.leaderboards import site
    from t2mbench.leaderboards.renderers.latex import render as latex
    from t2mbench.leaderboards.renderers.markdown import render as markdown

    data = ranked(board)
    out = Path(out) if out is not None else Path(board) / "rendered"
    out.mkdir(parents=True, exist_ok=True)
    table = frame(data)
    docs = {
        "board.md": f"# {data['title']}\n\n" + markdown(table) + _published_md(data),
        "board.tex": latex(table, caption=data["title"]),
        "ranking.json": json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=_json) + "\n",
    }
    written = []
    for name, text in docs.items():
        written.append(_write_if_changed(out / name, text))
    written += [_write_if_changed(out / "site" / rel, text) for rel, text in site.pages(data).items()]
    return written


def _json(obj: Any) -> Any:
    if pd.isna(obj):
        return None
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _write_if_changed(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _published_md(data: dict[str, Any]) -> str:
    from t2mbench.leaderboards.renderers.markdown import _text

    pub = data.get("published")
    if not pub:
        return ""
    parts = ["\n## Published reference results (not comparable: other protocols)\n\n", _text(pub.get("note", "")), "\n"]
    for table in pub["tables"]:
        parts.append(f"\n### {_text(table['title'])} — published\n\nSource: {_text(table['source'])}\n\n")
        parts.append("| " + " | ".join(_text(c) for c in table["columns"]) + " |\n")
        parts.append("|---" * len(table["columns"]) + "|\n")
        for row in table["rows"]:
            parts.append("| " + " | ".join(_text("-" if v is None else v) for v in row) + " |\n")
    return "".join(parts)
