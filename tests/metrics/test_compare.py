"""Paired comparison of two scored runs: the same prompts resampled for both systems."""

import numpy as np
import pandas as pd
import pytest

from t2mbench.core import results
from t2mbench.core.errors import ManifestError
from t2mbench.metrics.bootstrap import paired_difference_ci
from t2mbench.metrics.compare import compare_runs


def run_table(system: str, values: dict[str, list[float]], ids: list[str]) -> pd.DataFrame:
    rows = [{"run_id": "r", "system": system, "clip_id": cid, "metric": m, "kind": "clip", "value": v}
            for m, vs in values.items() for cid, v in zip(ids, vs)]
    rows.append({"run_id": "r", "system": system, "clip_id": None, "metric": "fd_openl3", "kind": "aggregate",
                 "value": 1.0})
    return results.frame(rows)


def test_difference_and_ci_per_metric_in_common(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(50)]
    base = rng.normal(size=50)
    a = run_table("A", {"sisdr": list(base + 1.0), "stft": list(base)}, ids)
    b = run_table("B", {"sisdr": list(base), "clap": list(base)}, ids)
    b = b.sample(frac=1.0, random_state=1)  # row order must not matter: pairing is by clip id
    a.to_parquet(tmp_path / "a.parquet")
    out = compare_runs(tmp_path / "a.parquet", b, resamples=2000, seed=3)
    assert list(out.metric) == ["sisdr"]
    row = out.iloc[0]
    assert (row.system_a, row.system_b, row.n_clips) == ("A", "B", 50)
    assert row.difference == pytest.approx(1.0)
    expected = paired_difference_ci(base + 1.0, base, resamples=2000, seed=3)
    assert (row.ci_low, row.ci_high) == pytest.approx(expected[1:])


def test_different_prompts_are_refused():
    a = run_table("A", {"sisdr": [1.0, 2.0]}, ["x", "y"])
    b = run_table("B", {"sisdr": [1.0, 2.0]}, ["x", "z"])
    with pytest.raises(ManifestError, match=r"sisdr: the runs scored different clips \(only in a: y; only in b: z\)"):
        compare_runs(a, b)
    with pytest.raises(ManifestError, match="the runs have no per-clip metric in common"):
        compare_runs(a, run_table("B", {"clap": [1.0]}, ["x"]))
