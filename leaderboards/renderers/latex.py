"""The LaTeX renderer: a ``booktabs`` table, one row per system, ``value [ci_low, ci_high]`` per
metric (three significant digits) and the shared rank as a superscript when the board has one.
Every name is escaped (``\\ & % $ # _ { } ~ ^`` and ``<``/``>`` become text), so a system name
cannot break the document; non-ASCII text is kept (UTF-8, the LaTeX default since 2018)."""

from __future__ import annotations

import pandas as pd

_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
}  # fmt: skip


def escape(text: object) -> str:
    """``text`` as LaTeX source that prints it literally."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text).replace("\n", " "))


def _cell(r) -> str:
    if pd.isna(r.value):
        return "--"
    text = f"{r.value:.3g}" if pd.isna(r.ci_low) else f"{r.value:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]"
    rank = getattr(r, "rank", None)
    return text if rank is None or pd.isna(rank) else f"{text}$^{{{int(rank)}}}$"


def render(board: pd.DataFrame, caption: str | None = None) -> str:
    """The board as a LaTeX ``table`` (needs ``\\usepackage{booktabs}``)."""
    metrics = list(dict.fromkeys(board["metric"]))
    systems = list(dict.fromkeys(board["system"]))
    cells = {(r.system, r.metric): _cell(r) for r in board.itertuples()}
    lines = [r"\begin{table}", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{escape(caption)}}}")
    lines += [r"\begin{tabular}{l" + "c" * len(metrics) + "}", r"\toprule",
              " & ".join(["system", *map(escape, metrics)]) + r" \\", r"\midrule"]  # fmt: skip
    for s in systems:
        lines.append(" & ".join([escape(s), *(cells.get((s, m), "--") for m in metrics)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
