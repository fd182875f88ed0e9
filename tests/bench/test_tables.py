import math

import pandas as pd
import pytest

from t2mbench.bench.tables import few_step_verdict, markdown, published_grid, sweep_grid, time_grid
from t2mbench.core import results


def _table(values):
    """A result-schema table: the fd_evaluator aggregate (CI ± 1), a clip row and the generation rows per cell."""
    rows = []
    for (sampler, steps), v in values.items():
        cell = {"run_id": f"{sampler}-{steps}", "sampler": sampler, "steps": steps}
        rows += [{**cell, "metric": "fd_evaluator", "kind": "aggregate", "value": v, "ci_low": v - 1, "ci_high": v + 1},
                 {**cell, "metric": "clap_evaluator", "kind": "clip", "clip_id": "c0", "value": 0.1},
                 {**cell, "metric": "nfe", "kind": "generation", "value": steps},
                 {**cell, "metric": "seconds_per_clip", "kind": "generation", "value": steps / 10}]  # fmt: skip
    return results.frame(rows)


def test_published_grid_holds_the_ddim_paper_values():
    grid = published_grid("CIFAR10 32x32", [10, 50, 1000])
    assert grid.loc["DDIM (eta=0)"].tolist() == [13.36, 4.67, 4.04]
    assert grid.loc["DDPM"].tolist() == [367.43, 32.72, 3.17]
    assert math.isnan(published_grid("CelebA 64x64", [30]).loc["DDPM", 30])


def test_verdict_reads_the_ddim_finding_off_our_grid():
    t = _table({("ddim", 10): 20.0, ("ddpm", 10): 80.0, ("ddim", 50): 15.0, ("ddpm", 50): 18.0})
    v = few_step_verdict(t, "fd_evaluator", 10, 50)
    assert v == {"checked": True, "ddim_better_at_few_steps": True, "gap_shrinks_with_steps": True,
                 "gap_few": 60.0, "gap_many": 3.0, "resolved_at_few_steps": True}
    # the CIs are value ± 1: 1.5 apart they overlap, 2.5 apart they do not
    close = _table({("ddim", 10): 20.0, ("ddpm", 10): 21.5, ("ddim", 50): 15.0, ("ddpm", 50): 18.0})
    assert few_step_verdict(close, "fd_evaluator", 10, 50)["resolved_at_few_steps"] is False
    apart = _table({("ddim", 10): 20.0, ("ddpm", 10): 22.5, ("ddim", 50): 15.0, ("ddpm", 50): 18.0})
    assert few_step_verdict(apart, "fd_evaluator", 10, 50)["resolved_at_few_steps"] is True
    worse = _table({("ddim", 10): 90.0, ("ddpm", 10): 80.0, ("ddim", 50): 15.0, ("ddpm", 50): 40.0})
    assert few_step_verdict(worse, "fd_evaluator", 10, 50)["ddim_better_at_few_steps"] is False
    assert few_step_verdict(t[t["sampler"] == "ddim"], "fd_evaluator", 10, 50) == {"checked": False}


def test_grids_and_markdown():
    t = _table({("ddim", 10): 20.0, ("ddim", 50): 15.0, ("euler", 10): 30.0, ("euler", 50): 12.5})
    g = sweep_grid(t, "fd_evaluator")
    assert g.loc["ddim", 10] == "20 [19, 21]" and g.loc["euler", 50] == "12.5 [11.5, 13.5]"
    assert time_grid(t).loc["euler", 50] == "5.00 s (50 NFE)"
    md = markdown(g).splitlines()
    assert md[:2] == ["| sampler | 10 | 50 |", "|---|---|---|"]
    assert md[2] == "| ddim | 20 [19, 21] | 15 [14, 16] |"


@pytest.mark.parametrize("value, text", [(float("nan"), "-"), (0.123456, "0.123"), ("x", "x")])
def test_markdown_cells(value, text):
    assert markdown(pd.DataFrame({"a": [value]}, index=pd.Index(["r"], name="n"))).splitlines()[2] == f"| r | {text} |"
