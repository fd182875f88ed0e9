"""Executors decide where the cells of a run go; the cell runner decides what a cell does.

An executor is an object with ``run(cells, scoring, out, *, device, progress)`` that yields each
cell's result rows (:func:`t2mbench.bench.cells.run_cell`'s table) in the order of ``cells``.
An executor whose ``run`` also takes ``on_stage`` gets the cells' stage reports for the
sweep's progress bar (:func:`t2mbench.bench.cells.run_cell`); one without it still works.
Since a cell is plain data, an executor may run it in this process, in another process or on
another machine; the rows it yields are the same.

Built in: ``local`` (:mod:`.local`: in order, in this process) and ``ray`` (:mod:`.ray`: cells as
Ray tasks). Third-party executors join
through the entry-point group ``t2mbench.executors``: each entry loads an :class:`ExecutorSpec`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from t2mbench.bench.cells import Cell, Scoring
from t2mbench.core.errors import ConfigError
from t2mbench.core.plugins import Registry


class Executor(Protocol):
    """Runs cells somewhere and yields their rows in the order given."""

    def run(self, cells: Sequence[Cell], scoring: Scoring, out: str | os.PathLike, *, device: str,
            progress: bool) -> Iterator[pd.DataFrame]: ...  # fmt: skip


@dataclass(frozen=True)
class ExecutorSpec:
    """A registered executor: ``factory`` (``module:attribute``) called with the user's options
    (e.g. an address) returns an :class:`Executor`; ``description`` is one line."""

    factory: str
    description: str

    def build(self, **options: Any) -> Executor:
        module, _, attribute = self.factory.partition(":")
        return getattr(importlib.import_module(module), attribute)(**options)


_BUILT_IN = {
    "local": ExecutorSpec("t2mbench.bench.executors.local:LocalExecutor", "every cell in order, in this process"),
    "ray": ExecutorSpec("t2mbench.bench.executors.ray:RayExecutor", "every cell a Ray task (the ray extra)"),
}
REGISTRY: Registry[ExecutorSpec] = Registry("t2mbench.executors", _BUILT_IN, ExecutorSpec, "executor")


def executors() -> dict[str, ExecutorSpec]:
    """Every registered executor by name: the built-in ones, then the plugins' (read once)."""
    return REGISTRY.entries()


def get_executor(name: str, **options: Any) -> Executor:
    """Executor ``name`` built with ``options``; an unknown name lists the known ones (ConfigError)."""
    spec = REGISTRY.get(name)
    try:
        return spec.build(**options)
    except TypeError as e:
        raise ConfigError(f"executor {name!r}: bad options ({e})") from None


__all__ = ["Executor", "ExecutorSpec", "executors", "get_executor"]
