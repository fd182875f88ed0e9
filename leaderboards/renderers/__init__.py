"""Board renderers: a board (:func:`t2mbench.leaderboards.board.board`) in, a document out.

A renderer is a function ``render(board: pd.DataFrame) -> str``. Built in: ``markdown``
(:mod:`.markdown`) and ``latex`` (:mod:`.latex`). Third-party renderers join through the entry-point group
``t2mbench.renderers``: each entry loads a :class:`RendererSpec`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from t2mbench.core.plugins import Registry


@dataclass(frozen=True)
class RendererSpec:
    """A registered renderer: ``function`` (``module:attribute``), the file suffix it writes and one line."""

    function: str
    suffix: str
    description: str

    def load(self) -> Callable[[pd.DataFrame], str]:
        module, _, attribute = self.function.partition(":")
        return getattr(importlib.import_module(module), attribute)


_BUILT_IN = {
    "markdown": RendererSpec("t2mbench.leaderboards.renderers.markdown:render", ".md",
                             "GitHub Markdown: one row per system, value [CI] per metric"),
    "latex": RendererSpec("t2mbench.leaderboards.renderers.latex:render", ".tex",
                          "LaTeX booktabs table: one row per system, value [CI] and shared rank per metric"),
}  # fmt: skip
REGISTRY: Registry[RendererSpec] = Registry("t2mbench.renderers", _BUILT_IN, RendererSpec, "renderer")


def renderers() -> dict[str, RendererSpec]:
    """Every registered renderer by name: the built-in ones, then the plugins' (read once)."""
    return REGISTRY.entries()


def get_renderer(name: str) -> RendererSpec:
    """Renderer ``name``; an unknown name lists the known ones (ConfigError)."""
    return REGISTRY.get(name)


__all__ = ["RendererSpec", "get_renderer", "renderers"]
