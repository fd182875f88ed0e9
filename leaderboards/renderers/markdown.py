"""The Markdown renderer: one row per system, one column per metric, ``value [ci_low, ci_high]``
to three significant digits, then ``(#rank)`` when the board has a ``rank`` column (shared
ranks: systems whose CIs overlap share one); a ``|`` in a name is escaped so it cannot split a
cell, and ``<``, ``>``, ``&`` become entities so a name cannot inject HTML into a rendered page."""

from __future__ import annotations

import pandas as pd


def _cell(value: float, low: float, high: float, rank: object = None) -> str:
    if pd.isna(value):
        return "-"
    text = f"{value:.3g}" if pd.isna(low) else f"{value:.3g} [{low:.3g}, {high:.3g}]"
    return text if rank is None or pd.isna(rank) else f"{text} (#{int(rank)})"


def _text(s: str) -> str:
    text = str(s).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(board: pd.DataFrame) -> str:
    """The board as a GitHub Markdown table (systems and metrics in the board's order)."""
    metrics = list(dict.fromkeys(board["metric"]))
    systems = list(dict.fromkeys(board["system"]))
    cells = {(r.system, r.metric): _cell(r.value, r.ci_low, r.ci_high, getattr(r, "rank", None))
             for r in board.itertuples()}
    lines = ["| system | " + " | ".join(map(_text, metrics)) + " |", "|---" * (len(metrics) + 1) + "|"]
    for s in systems:
        lines.append("| " + " | ".join([_text(s), *(cells.get((s, m), "-") for m in metrics)]) + " |")
    return "\n".join(lines) + "\n"
