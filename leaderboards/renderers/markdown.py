"""The Markdown renderer: one row per system, one column per metric, ``value [ci_low, ci_high]``
to three significant digits; a ``|`` in a name is escaped so it cannot split a cell."""

from __future__ import annotations

import pandas as pd


def _cell(value: float, low: float, high: float) -> str:
    if pd.isna(value):
        return "-"
    return f"{value:.3g}" if pd.isna(low) else f"{value:.3g} [{low:.3g}, {high:.3g}]"


def _text(s: str) -> str:
    return str(s).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render(board: pd.DataFrame) -> str:
    """The board as a GitHub Markdown table (systems and metrics in the board's order)."""
    metrics = list(dict.fromkeys(board["metric"]))
    systems = list(dict.fromkeys(board["system"]))
    cells = {(r.system, r.metric): _cell(r.value, r.ci_low, r.ci_high) for r in board.itertuples()}
    lines = ["| system | " + " | ".join(map(_text, metrics)) + " |", "|---" * (len(metrics) + 1) + "|"]
    for s in systems:
        lines.append("| " + " | ".join([_text(s), *(cells.get((s, m), "-") for m in metrics)]) + " |")
    return "\n".join(lines) + "\n"
