"""Third-party plugins through Python entry points, the ecosystem's way.

A distribution adds a metric, an embedder, a sampler, an executor, a board renderer or a
subcommand by declaring an entry point in one of the groups below (``pyproject.toml``)::

    [project.entry-points."t2mbench.metrics"]
    loudness_lufs = "my_pkg.loudness:LOUDNESS"      # a MetricSpec

Each registry is a :class:`Registry`: its group is read once, on first use, through
:func:`with_plugins`, the one place that loads plugins. A plugin name that repeats a built-in
one is refused (a plugin cannot silently replace a metric), and so is an object of the wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Generic, TypeVar

from t2mbench.core.errors import ConfigError

GROUPS = ("t2mbench.metrics", "t2mbench.embedders", "t2mbench.samplers", "t2mbench.executors",
          "t2mbench.renderers", "t2mbench.commands")  # fmt: skip
T = TypeVar("T")


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group``, sorted by name (so registration is deterministic)."""
    if group not in GROUPS:
        raise ValueError(f"unknown plugin group {group!r}; known: {', '.join(GROUPS)}")
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def with_plugins(group: str, built_in: Mapping[str, T], kind: type, what: str) -> dict[str, T]:
    """``built_in`` followed by the plugins of ``group``, each loaded and checked to be a ``kind``.

    Raises:
        ConfigError: ``"<what> plugin 'NAME' (module:object) repeats a built-in <what> name;
            rename it"`` or ``"... is a TYPE, not a KIND"``.
    """
    found = dict(built_in)
    for ep in entry_points(group):
        if ep.name in built_in:
            raise ConfigError(f"{what} plugin {ep.name!r} ({ep.value}) repeats a built-in {what} name; rename it")
        obj = ep.load()
        if not isinstance(obj, kind):
            raise ConfigError(
                f"{what} plugin {ep.name!r} ({ep.value}) is a {type(obj).__name__}, not a {kind.__name__}"
            )
        found[ep.name] = obj
    return found


class Registry(Generic[T]):
    """The entries of one kind: ``built_in`` followed by the plugins of ``group``, read once on
    first use (:func:`with_plugins`); ``what`` names the kind in messages."""

    def __init__(self, group: str, built_in: Mapping[str, T], kind: type, what: str) -> None:
        self.group, self.built_in, self.kind, self.what = group, built_in, kind, what
        self._cache: dict[str, T] | None = None

    def entries(self) -> dict[str, T]:
        """Every entry by name (built-ins first)."""
        if self._cache is None:
            self._cache = with_plugins(self.group, self.built_in, self.kind, self.what)
        return dict(self._cache)

    def get(self, name: str) -> T:
        """Entry ``name``; ConfigError ``"unknown <what> 'NAME'; known: ..."`` otherwise."""
        entries = self.entries()
        if name not in entries:
            raise ConfigError(f"unknown {self.what} {name!r}; known: {', '.join(entries)}")
        return entries[name]
