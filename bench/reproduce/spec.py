"""The published tables t2mbench reproduces, one spec file each in ``specs/`` (shipped with the package),
and their rendering next to what ran here as Markdown, LaTeX or CSV.

A spec (JSON) holds: ``id`` (the command's TABLE), ``title``, ``paper`` (authors, title, venue, arXiv), ``tables``
(each: ``key``, ``number`` as the paper numbers it, ``metric``, ``conditions``, ``row_fields`` and ``columns``,
``published`` rows with every value as printed, an optional ``note``) and ``here``: what this machine can add,
each entry with ``runs`` (``here``; or what it needs: weights, a GPU, adapters) and the exact ``command``.

A reproduced table is a :class:`Reproduced`: a frame of text cells (``value [CI]``) indexed by row label, its
title and notes. Rows that cannot run here are rendered with their command instead of values.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pandas as pd

from t2mbench.core.errors import ConfigError

FORMATS = ("markdown", "latex", "csv")


def spec_ids() -> list[str]:
    """The shipped spec ids, sorted."""
    folder = resources.files("t2mbench.bench.reproduce") / "specs"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_spec(table_id: str) -> dict[str, Any]:
    """The spec ``table_id``; ConfigError listing the known ids otherwise."""
    ids = spec_ids()
    if table_id not in ids:
        raise ConfigError(f"unknown table {table_id!r}; t2mbench reproduce holds {', '.join(ids)} (see --list)")
    text = (resources.files("t2mbench.bench.reproduce") / "specs" / f"{table_id}.json").read_text(encoding="utf-8")
    return json.loads(text)


def listing() -> str:
    """One line per shipped table: id, title, paper, and whether it runs here."""
    lines = []
    for table_id in spec_ids():
        spec = load_spec(table_id)
        paper = spec["paper"]
        runs = sorted({entry["runs"] for entry in spec.get("here", [])})
        lines.append(f"{table_id:<18} {spec['title']} — {paper['title']} ({paper['venue']}, arXiv {paper['arxiv']}); "
                     f"rows: {', '.join(runs)}")  # fmt: skip
    return "\n".join(lines)


def published_frame(table: Mapping[str, Any]) -> pd.DataFrame:
    """A spec table's published rows: index = the row fields joined by " / ", columns as the paper's."""
    rows = table["published"]
    index = [" / ".join(str(r[f]) for f in table["row_fields"]) for r in rows]
    frame = pd.DataFrame([[r.get(c) for c in table["columns"]] for r in rows], index=index, columns=table["columns"])
    frame.index.name = " / ".join(table["row_fields"])
    return frame


@dataclass
class Reproduced:
    """A table produced here: ``frame`` (text cells, index = row labels), its ``title`` and ``notes``
    (lines printed under it: verdicts, hardware, what a metric is)."""

    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def pending_frame(spec: Mapping[str, Any], ran: Sequence[str] = ()) -> pd.DataFrame:
    """The ``here`` entries that did not run (not in ``ran``): row, what it needs, the exact command."""
    rows = [(e["row"], e["runs"], e["command"]) for e in spec.get("here", []) if e["row"] not in ran
            and e["runs"] != "here"]  # fmt: skip
    frame = pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=["needs", "command"])
    frame.index.name = "not run here"
    return frame


def _text(v: Any, floatfmt: str = "g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return format(v, floatfmt)
    return str(v)


def to_markdown(frame: pd.DataFrame) -> str:
    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(i), *(_text(v) for v in row)]) + " |" for i, row in frame.iterrows()]
    return "\n".join(lines)


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "η": r"$\eta$", "σ̂": r"$\hat\sigma$", "σ": r"$\sigma$", "β": r"$\beta$", "²": r"$^2$",
                  "†": r"$\dagger$", "±": r"$\pm$", "−": "-", "×": r"$\times$", "—": "---"}  # fmt: skip


def latex_escape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i : i + 2] in LATEX_SPECIALS:
            out.append(LATEX_SPECIALS[text[i : i + 2]])
            i += 2
            continue
        out.append(LATEX_SPECIALS.get(text[i], text[i]))
        i += 1
    return "".join(out)


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    cols = "l" + "r" * len(frame.columns)
    header = " & ".join(latex_escape(str(c)) for c in [frame.index.name or "", *frame.columns])
    body = [" & ".join(latex_escape(x) for x in [str(i), *(_text(v) for v in row)]) + r" \\"
            for i, row in frame.iterrows()]  # fmt: skip
    return "\n".join([r"\begin{table}[h]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
                      rf"\begin{{tabular}}{{{cols}}}", r"\toprule", header + r" \\", r"\midrule", *body,
                      r"\bottomrule", r"\end{tabular}", r"\end{table}"])  # fmt: skip


def render(spec: Mapping[str, Any], reproduced: Sequence[Reproduced], fmt: str = "markdown",
           ran: Sequence[str] = ()) -> str:  # fmt: skip
    """The spec's published tables, then each reproduced table (with its notes), then the rows not run
    here with their commands, in ``fmt`` (markdown, latex or csv: long form table,kind,row,column,value)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    paper = spec["paper"]
    source = f"{paper['authors']}, \"{paper['title']}\", {paper['venue']} (arXiv {paper['arxiv']})"
    published = [(f"published: {t['number']}, {t['metric']}", published_frame(t), t) for t in spec["tables"]]
    pending = pending_frame(spec, ran)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["table", "kind", "row", "column", "value"])
        for title, frame, _ in published:
            _csv_rows(w, title, "published", frame)
        for rep in reproduced:
            _csv_rows(w, rep.title, "reproduced", rep.frame)
        _csv_rows(w, "not run here", "pending", pending)
        return buf.getvalue().rstrip("\n")
    if fmt == "latex":
        parts = [f"% {spec['title']}", f"% source: {latex_escape(source)}"]
        parts += [to_latex(frame, title) for title, frame, _ in published]
        for rep in reproduced:
            parts.append(to_latex(rep.frame, rep.title))
            parts += [f"% {latex_escape(n)}" for n in rep.notes]
        if len(pending):
            parts.append(to_latex(pending, "not run here"))
        return "\n\n".join(parts)
    parts = [f"# {spec['title']}", "", f"Source: {source}.", ""]
    for title, frame, table in published:
        parts += [f"## {title}", "", f"Conditions: {table['conditions']}", "", to_markdown(frame), ""]
        if table.get("note"):
            parts += [f"Note: {table['note']}", ""]
    for rep in reproduced:
        parts += [f"## reproduced here: {rep.title}", "", to_markdown(rep.frame), ""]
        parts += [*rep.notes, ""] if rep.notes else []
    if len(pending):
        parts += ["## not run here (each with the command that produces it)", "", to_markdown(pending), ""]
    return "\n".join(parts).rstrip("\n")


def _csv_rows(w: Any, title: str, kind: str, frame: pd.DataFrame) -> None:
    for idx, row in frame.iterrows():
        for col, v in row.items():
            w.writerow([title, kind, idx, col, _text(v)])


__all__ = ["FORMATS", "Reproduced", "latex_escape", "listing", "load_spec", "pending_frame", "published_frame",
           "render", "spec_ids"]
