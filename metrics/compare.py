"""Paired comparison of two scored runs on the same prompts (the CI of the difference).

:func:`compare_runs` reads the per-clip rows of two result tables (``scores.parquet`` from
:func:`t2mbench.metrics.scoring.score`, or the DataFrames themselves) and, for every metric that has
per-clip scores in both, gives mean(a) − mean(b) over the clip ids with a seeded paired
bootstrap CI (:func:`t2mbench.metrics.bootstrap.paired_difference_ci`: the same resampled prompts for
both systems). Set-level FD has no per-clip scores: compare FD with
:func:`t2mbench.metrics.frechet.fd_difference_ci` on the two systems' embedding frames.
"""

from __future__ import annotations

import os

import pandas as pd

from t2mbench.core import results as results_schema
from t2mbench.core.errors import ManifestError
from t2mbench.metrics.bootstrap import CONFIDENCE, MEAN_RESAMPLES, paired_difference_ci

COLUMNS = ["metric", "system_a", "system_b", "n_clips", "mean_a", "mean_b", "difference", "ci_low", "ci_high"]


def compare_runs(
    a: str | os.PathLike | pd.DataFrame,
    b: str | os.PathLike | pd.DataFrame,
    *,
    resamples: int = MEAN_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per metric scored per clip in both runs: means, a − b and its paired bootstrap CI.

    Raises:
        ManifestError: a metric whose clip ids differ between the runs (the comparison must
            be on the same prompts), or no metric in common.
    """
    clips_a, clips_b = _clip_rows(a), _clip_rows(b)
    rows = []
    for metric in [m for m in clips_a.metric.unique() if m in set(clips_b.metric)]:
        sa = clips_a[clips_a.metric == metric].set_index("clip_id").value
        sb = clips_b[clips_b.metric == metric].set_index("clip_id").value
        if set(sa.index) != set(sb.index):
            only_a, only_b = sorted(set(sa.index) - set(sb.index)), sorted(set(sb.index) - set(sa.index))
            raise ManifestError(
                f"{metric}: the runs scored different clips (only in a: {', '.join(only_a[:10]) or '-'}; "
                f"only in b: {', '.join(only_b[:10]) or '-'}); a paired comparison needs the same prompts"
            )
        sb = sb.loc[sa.index]
        diff, low, high = paired_difference_ci(sa.to_numpy(), sb.to_numpy(), resamples=resamples,
                                               confidence=confidence, seed=seed)
        rows.append([metric, _system(clips_a), _system(clips_b), len(sa), float(sa.mean()), float(sb.mean()), diff,
                     low, high])
    if not rows:
        raise ManifestError("the runs have no per-clip metric in common")
    return pd.DataFrame(rows, columns=COLUMNS)


def _clip_rows(run: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    table = results_schema.validate(run) if isinstance(run, pd.DataFrame) else results_schema.read(run)
    return table[table.kind == "clip"]


def _system(clips: pd.DataFrame) -> str:
    return ",".join(sorted(str(s) for s in clips.system.unique()))
