"""Named metric lists (``t2mbench score --preset NAME``) and the weights check that runs before a scoring run.

A preset is a tuple of registered metric names. It resolves against the registry of this install
(:func:`resolve_preset`): names not registered (a metric another extra or a later release adds)
are returned apart, so the caller fails on them or, asked to, warns about each; never a silent gap.

:func:`drop_missing_weights` loads every metric's embedder before any clip is read (the scoring
engine's ``prepare``) and collects each missing weight file with the command that fetches it, so a
run either stops with one error that lists them all or, with ``skip_missing``, drops those metrics
with one warning each.
"""

from __future__ import annotations

from collections.abc import Sequence

from t2mbench.core.errors import ConfigError, MissingWeightsError
from t2mbench.metrics.base import Metric
from t2mbench.metrics.embedding_metric import share_embedders

# The metrics 2026 text-to-music papers report (issue 20): the Stability triple, FAD on
# CLAP-music and MERT, KAD, MAD and the Audiobox Aesthetics axes.
PRESETS: dict[str, tuple[str, ...]] = {
    "paper-2026": (
        "fd_openl3", "kl_passt", "clap", "fad_clap_music", "fad_mert", "kad_openl3", "kad_clap_music", "kad_mert",
        "mad", "aesthetics_pq", "aesthetics_pc", "aesthetics_ce", "aesthetics_cu",
    ),
}  # fmt: skip


def resolve_preset(name: str) -> tuple[list[str], list[str]]:
    """``(registered, not_registered)`` metric names of preset ``name``, in the preset's order.

    Raises:
        ConfigError: unknown preset (the message lists the known ones).
    """
    from t2mbench.metrics.registry import available

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    names = available()
    return [m for m in PRESETS[name] if m in names], [m for m in PRESETS[name] if m not in names]


def drop_missing_weights(metrics: Sequence[Metric], *, skip_missing: bool) -> tuple[list[Metric], list[str]]:
    """Load each metric's weights (``prepare()``, no cache); ``(metrics that loaded, warnings)``.

    Embedders shared between metrics load once. With ``skip_missing`` a metric whose weight file is
    absent is dropped with a warning naming the file and the fetch command.

    Raises:
        MissingWeightsError: without ``skip_missing``, one message listing, per metric, the missing
            file and the command that fetches it (one metric: its message as the loader words it).
    """
    share_embedders(metrics)
    kept: list[Metric] = []
    missing: list[tuple[str, str]] = []
    for m in metrics:
        try:
            m.prepare(None)
        except MissingWeightsError as e:
            missing.append((m.name, str(e)))
            continue
        kept.append(m)
    if len(missing) == 1 and not skip_missing:
        name, message = missing[0]
        raise MissingWeightsError(f"{message} [metric {name}; pass --skip-missing to run the others]")
    if missing and not skip_missing:
        listing = " | ".join(f"{name}: {message}" for name, message in missing)
        raise MissingWeightsError(
            f"{len(missing)} metrics lack weight files (pass --skip-missing to run the others): {listing}"
        )
    return kept, [f"skipped {name}: {message}" for name, message in missing]


__all__ = ["PRESETS", "drop_missing_weights", "resolve_preset"]
