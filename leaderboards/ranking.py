"""Ranking with uncertainty: per-metric bootstrap CIs, CI-aware shared ranks, and a mean-rank overall.

Per metric (``rank_metric``):

- a metric with per-clip rows: value = mean over clips, CI = percentile bootstrap over clips
  (:func:`t2mbench.metrics.bootstrap.mean_ci`, seeded, the same resamples for every system);
- a set-level metric (only an aggregate row, e.g. a Fréchet distance): the value and CI as the
  scoring run wrote them (its own bootstrap over clips);
- rank(s) = 1 + #{systems whose CI lies entirely on the better side of s's CI} (Chatbot Arena's
  rule): systems whose intervals overlap share a rank, so 1, 1, 3 means "the top two are not
  separable".

Overall (``overall``): the **mean rank** over the board's metrics, each metric ranked by its
point value (ties averaged), lower is better. Its CI comes from a joint bootstrap: each
replicate resamples the clip ids once (the same ids for every system and per-clip metric, so
the comparison stays paired), draws every set-level metric from a normal with the width of its
CI (sd = (high − low) / 3.92), re-ranks every metric and averages the ranks; the CI is the
percentile interval of those means. Shared overall ranks follow the same overlap rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from t2mbench.metrics.bootstrap import CONFIDENCE, mean_ci, percentile_interval

RESAMPLES = 2000
Z95 = 3.92  # width of a 95% normal interval in standard deviations


def shared_ranks(low: Sequence[float], high: Sequence[float], higher_is_better: bool) -> list[int]:
    """1 + the number of systems whose interval is entirely better than each system's interval."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    if higher_is_better:
        return [1 + int(np.sum(low > h)) for h in high]
    return [1 + int(np.sum(high < lo)) for lo in low]


def _clip_matrix(tables: Mapping[str, pd.DataFrame], metric: str) -> pd.DataFrame | None:
    """systems × clip ids of a per-clip metric, or None when any system lacks clip rows."""
    cols = {}
    for system, t in tables.items():
        rows = t[(t["metric"] == metric) & (t["kind"] == "clip")]
        if rows.empty:
            return None
        cols[system] = rows.groupby("clip_id")["value"].mean()
    return pd.DataFrame(cols).T


def _aggregate(t: pd.DataFrame, metric: str) -> tuple[float, float, float]:
    """The submitted aggregate row's value and CI; without one, the mean of the clip rows with
    its bootstrap CI (a board mixing per-clip and aggregate-only submissions of one metric)."""
    rows = t[(t["metric"] == metric) & (t["kind"] == "aggregate")]
    if rows.empty:
        clips = t[(t["metric"] == metric) & (t["kind"] == "clip")]["value"].to_numpy(float)
        if clips.size == 0:
            return float("nan"), float("nan"), float("nan")
        return (float(clips.mean()), *mean_ci(clips, resamples=RESAMPLES))
    r = rows.iloc[0]
    return tuple(float(x) if not pd.isna(x) else float("nan") for x in (r["value"], r["ci_low"], r["ci_high"]))


def rank_metric(tables: Mapping[str, pd.DataFrame], metric: str, higher_is_better: bool, *,
                resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per system: ``system, metric, value, ci_low, ci_high, rank, n_clips, source``."""
    matrix = _clip_matrix(tables, metric)
    rows = []
    for system, t in tables.items():
        if matrix is not None:
            x = matrix.loc[system].dropna().to_numpy()
            low, high = mean_ci(x, resamples=resamples, seed=seed, confidence=confidence)
            rows.append([system, metric, float(x.mean()), low, high, len(x), "per-clip bootstrap"])
        else:
            v, lo, hi = _aggregate(t, metric)
            lo, hi = (v, v) if np.isnan(lo) else (lo, hi)
            rows.append([system, metric, v, lo, hi, pd.NA, "submitted aggregate"])
    out = pd.DataFrame(rows, columns=["system", "metric", "value", "ci_low", "ci_high", "n_clips", "source"])
    out.insert(5, "rank", shared_ranks(out["ci_low"], out["ci_high"], higher_is_better))
    return out


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Ranks (1 = best, ties averaged) along the last axis."""
    return rankdata(-values if higher_is_better else values, axis=-1)


def overall(tables: Mapping[str, pd.DataFrame], directions: Mapping[str, bool], *, resamples: int = RESAMPLES,
            seed: int = 0, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Mean rank over ``directions`` (metric → higher_is_better) with its bootstrap CI and shared
    rank; one row per system: ``system, mean_rank, ci_low, ci_high, rank``."""
    systems = list(tables)
    rng = np.random.default_rng(seed)
    point, reps = [], []
    clip_ids: list[str] | None = None
    mats = {m: _clip_matrix(tables, m) for m in directions}
    for m in mats.values():
        if m is not None:
            ids = [c for c in m.columns if m[c].notna().all()]
            clip_ids = ids if clip_ids is None else [c for c in clip_ids if c in ids]
    draw = rng.integers(0, len(clip_ids), (resamples, len(clip_ids))) if clip_ids else None
    for metric, hib in directions.items():
        mat = mats[metric]
        if mat is not None:
            x = mat[clip_ids].to_numpy(float)  # systems × clips
            point.append(_ranks(x.mean(axis=1), hib))
            reps.append(_ranks(x[:, draw].mean(axis=2).T, hib))  # resamples × systems
        else:
            agg = np.array([_aggregate(tables[s], metric) for s in systems])
            v, sd = agg[:, 0], np.nan_to_num((agg[:, 2] - agg[:, 1]) / Z95)
            point.append(_ranks(v, hib))
            reps.append(_ranks(v + rng.standard_normal((resamples, len(systems))) * sd, hib))
    mean_point = np.mean(point, axis=0)
    mean_reps = np.mean(reps, axis=0)
    ci = [percentile_interval(mean_reps[:, i], confidence) for i in range(len(systems))]
    out = pd.DataFrame({"system": systems, "mean_rank": mean_point, "ci_low": [c[0] for c in ci],
                        "ci_high": [c[1] for c in ci]})  # fmt: skip
    out["rank"] = shared_ranks(out["ci_low"], out["ci_high"], higher_is_better=False)
    return out
