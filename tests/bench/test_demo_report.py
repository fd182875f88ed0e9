"""The demo's report (the DDIM table, both FD tables, the three verdicts), rendered from a stored result
store without running a model."""

from t2mbench.bench.demo import DemoSettings, render_report
from t2mbench.bench.reproduce import ddim
from t2mbench.bench.reproduce.run import ddim_tables
from t2mbench.core import results


def _table(latent: dict[tuple[str, int], float], half_width: float):
    rows = []
    for (key, steps), v in latent.items():
        row = ddim.ROWS[key]
        base = {"run_id": f"{key}-{steps}", "cell": f"{key}-{steps}", "sampler": row.sampler,
                "sampler_options": row.options_json, "steps": steps}  # fmt: skip
        for metric, value in ((ddim.LATENT_METRIC, v), (ddim.AUDIO_METRIC, 100 + v)):
            rows.append({**base, "metric": metric, "kind": "aggregate", "value": value, "ci_low": value - half_width,
                         "ci_high": value + half_width})  # fmt: skip
        rows += [{**base, "metric": "nfe", "kind": "generation", "value": steps},
                 {**base, "metric": "seconds_per_clip", "kind": "generation", "value": steps / 10}]  # fmt: skip
    return results.frame(rows)


FD = {(k, s): v for s, base in ((10, 10.0), (20, 8.0), (50, 7.0), (100, 6.0))
      for k, v in zip(ddim.PAPER_ROWS, (base, base + 0.5, base + 1, base + 2, base + 8))}  # fmt: skip


def _report(half_width: float) -> str:
    settings = DemoSettings()
    run = ddim.DdimRun(_table(FD, half_width), settings.ddim(), 0.07,
                       {"corpus": 5.0, "cells": 400.0, "fd_latent": 4.0, "total": 409.0})  # fmt: skip
    return render_report(ddim_tables(run, settings.rows), total_seconds=410)


def test_demo_defaults_are_the_paper_rows_at_few_steps():
    d = DemoSettings()
    assert [r.key for r in d.rows] == ["eta0", "eta0.2", "eta0.5", "eta1", "sigma_hat"]
    assert [(r.sampler, dict(r.options)) for r in d.rows][-1] == ("ddpm", {"variance": "fixed_large"})
    assert d.steps == (10, 20, 50) and (d.clips, d.seconds) == (16, 2.0)


def test_report_prints_both_tables_sigma_hat_and_verdicts():
    report = _report(0.2)
    assert "| CIFAR10 32x32 / σ̂ (DDPM, σ² = β) | 367.43 | 133.37 | 32.72 | 9.99 | 3.17 |" in report
    assert "| σ̂ (DDPM, σ² = β) | 18 [17.8, 18.2] | 16 [15.8, 16.2] | 15 [14.8, 15.2] | 14 [13.8, 14.2] |" in report
    assert "| σ̂ (DDPM, σ² = β) | 118 [118, 118] | 116 [116, 116] | 115 [115, 115] | 114 [114, 114] |" in report
    assert ("**1. σ̂ is far worse than η = 0 at S = 10 and 20**: holds on fd_latent (resolved: intervals "
            "disjoint).") in report  # fmt: skip
    assert "**2. η = 0 is best at small S (and larger η is worse there)**: holds on fd_latent (resolved" in report
    assert "**3. the stochastic rows catch up by S = 1000**: not checked on fd_latent." in report
    assert report.endswith("The whole job took 410 s. S = 1000: `t2mbench reproduce ddim --full`.")


def test_report_says_when_the_intervals_overlap():
    report = _report(5.0)
    assert "**1. σ̂ is far worse than η = 0 at S = 10 and 20**: holds on fd_latent (not resolved: intervals " in report
