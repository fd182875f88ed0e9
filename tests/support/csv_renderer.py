"""A board renderer as a plugin would ship one (the README's Extending recipe): one function and
its :class:`RendererSpec`, registered with an entry point of group ``t2mbench.renderers``."""

import pandas as pd

from t2mbench.leaderboards.renderers import RendererSpec


def render(board: pd.DataFrame) -> str:
    """One ``system,metric,value`` line per board cell."""
    return "".join(f"{r.system},{r.metric},{r.value:g}\n" for r in board.itertuples())


SPEC = RendererSpec("support.csv_renderer:render", ".csv", "system,metric,value lines (test plugin)")
