"""Third-party plugins through Python entry points, the ecosystem's way.

A distribution adds a metric, an embedder, a sampler or a subcommand by declaring an entry
point in one of the groups below (``pyproject.toml``)::

    [project.entry-points."t2mbench.metrics"]
    loudness_lufs = "my_pkg.loudness:LOUDNESS"      # a MetricSpec

Each registry (metrics, embedders, samplers, CLI) reads its group once, on first use, and a
plugin name that repeats a built-in one is refused: a plugin cannot silently replace a metric.
"""

from __future__ import annotations

from importlib import metadata

GROUPS = ("t2mbench.metrics", "t2mbench.embedders", "t2mbench.samplers", "t2mbench.commands")


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group``, sorted by name (so registration is deterministic)."""
    if group not in GROUPS:
        raise ValueError(f"unknown plugin group {group!r}; known: {', '.join(GROUPS)}")
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)
