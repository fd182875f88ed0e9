import numpy as np
import pandas as pd
import pytest

from t2mbench.core import results
from t2mbench.leaderboards.ranking import overall, rank_metric, shared_ranks
from t2mbench.metrics.bootstrap import mean_ci


def table(name, clap, fd=None):
    rows = [{"run_id": name, "system": name, "metric": "clap", "kind": "clip", "clip_id": f"c{i}", "value": float(v)}
            for i, v in enumerate(clap)]  # fmt: skip
    if fd is not None:
        rows.append({"run_id": name, "system": name, "metric": "fd", "kind": "aggregate", "value": fd[0],
                     "ci_low": fd[1], "ci_high": fd[2]})  # fmt: skip
    return results.frame(rows)


def test_shared_ranks_count_only_systems_whose_interval_is_entirely_better():
    # A and B overlap (both rank 1); C is below both; D overlaps C only
    low, high = [0.9, 0.85, 0.5, 0.45], [1.0, 0.95, 0.6, 0.55]
    assert shared_ranks(low, high, higher_is_better=True) == [1, 1, 3, 3]
    assert shared_ranks(low, high, higher_is_better=False) == [3, 3, 1, 1]
    assert shared_ranks([1, 2, 3], [1.5, 2.5, 3.5], higher_is_better=False) == [1, 2, 3]


def test_per_metric_values_and_cis_come_from_the_per_clip_scores():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(0.50, 0.05, 40), rng.normal(0.49, 0.05, 40), rng.normal(0.20, 0.05, 40)
    out = rank_metric({"A": table("A", a), "B": table("B", b), "C": table("C", c)}, "clap", True, resamples=500)
    assert out["value"].tolist() == pytest.approx([a.mean(), b.mean(), c.mean()])
    in_id_order = pd.Series(a, index=[f"c{i}" for i in range(40)]).sort_index().to_numpy()  # clips by id
    assert (out.loc[0, "ci_low"], out.loc[0, "ci_high"]) == mean_ci(in_id_order, resamples=500, seed=0)
    assert out["rank"].tolist() == [1, 1, 3]  # A and B are not separable; C is
    assert out["n_clips"].tolist() == [40, 40, 40] and set(out["source"]) == {"per-clip bootstrap"}


def test_a_set_level_metric_keeps_the_submitted_interval():
    t = {"A": table("A", [0.1], (100.0, 90.0, 110.0)), "B": table("B", [0.1], (150.0, 140.0, 160.0)),
         "C": table("C", [0.1], (105.0, 99.0, 141.0))}  # fmt: skip
    out = rank_metric(t, "fd", False)
    assert out[["value", "ci_low", "ci_high"]].values.tolist() == [[100, 90, 110], [150, 140, 160], [105, 99, 141]]
    assert out["rank"].tolist() == [1, 2, 1] and set(out["source"]) == {"submitted aggregate"}


def test_overall_mean_rank_recovers_a_known_order_with_its_ci():
    rng = np.random.default_rng(1)
    t = {name: table(name, rng.normal(mu, 0.02, 50), (fd, fd - 2, fd + 2))
         for name, mu, fd in (("worst", 0.1, 300.0), ("best", 0.9, 100.0), ("middle", 0.5, 200.0))}  # fmt: skip
    out = overall(t, {"clap": True, "fd": False}, resamples=300).set_index("system")
    assert out.loc[["best", "middle", "worst"], "mean_rank"].tolist() == [1.0, 2.0, 3.0]
    assert out.loc["best", ["ci_low", "ci_high"]].tolist() == [1.0, 1.0]
    assert out.loc[["best", "middle", "worst"], "rank"].tolist() == [1, 2, 3]
    # two systems drawn from one distribution: their mean ranks overlap, they share the top rank
    same = {n: table(n, rng.normal(0.5, 0.1, 30)) for n in ("p", "q")}
    same["r"] = table("r", rng.normal(0.0, 0.1, 30))
    out = overall(same, {"clap": True}, resamples=500).set_index("system")
    assert out.loc[["p", "q"], "ci_low"].tolist() == [1.0, 1.0]
    assert out.loc[["p", "q"], "ci_high"].tolist() == [2.0, 2.0]
    assert out["rank"].tolist() == [1, 1, 3]
    assert isinstance(out, pd.DataFrame) and out.loc["r", "mean_rank"] == 3.0


def test_a_metric_mixing_per_clip_and_aggregate_only_submissions_uses_aggregates_for_all():
    a = table("A", [0.5, 0.7, 0.9])  # clip rows only
    b = results.frame([{"run_id": "B", "system": "B", "metric": "clap", "kind": "aggregate", "value": 0.1,
                        "ci_low": 0.05, "ci_high": 0.15}])  # fmt: skip
    out = rank_metric({"A": a, "B": b}, "clap", True)
    assert out["value"].tolist() == pytest.approx([0.7, 0.1]) and out["rank"].tolist() == [1, 2]
    assert (out.loc[0, "ci_low"], out.loc[0, "ci_high"]) == mean_ci([0.5, 0.7, 0.9], resamples=2000)
    assert overall({"A": a, "B": b}, {"clap": True}, resamples=50)["mean_rank"].tolist() == [1.0, 2.0]
