import pandas as pd

from t2mbench.bench.demo import METRICS, DemoSettings, render_report
from t2mbench.core import results


def _table(fd: dict[tuple[str, int], float], half_width: float) -> pd.DataFrame:
    """A result-schema table: each metric's aggregate row and the generation rows per cell."""
    rows = []
    for (sampler, steps), v in fd.items():
        cell = {"run_id": f"{sampler}-{steps}", "cell": f"{sampler}-{steps}", "sampler": sampler, "steps": steps}
        rows += [{**cell, "metric": m, "kind": "aggregate", "value": v, "ci_low": v - half_width,
                  "ci_high": v + half_width} for m in METRICS]  # fmt: skip
        rows += [{**cell, "metric": "nfe", "kind": "generation", "value": steps},
                 {**cell, "metric": "seconds_per_clip", "kind": "generation", "value": steps / 10}]  # fmt: skip
    return results.frame(rows)


FD = {("ddpm", 10): 255.0, ("ddim", 10): 248.0, ("ddpm", 50): 249.0, ("ddim", 50): 246.0}


def test_report_says_when_the_few_step_gap_is_within_the_cis():
    report = render_report(_table(FD, 8.0), DemoSettings(samplers=("ddpm", "ddim")), corpus_seconds=6,
                           total_seconds=158)
    assert ("on fd_evaluator, DDIM better at 10 steps: True (DDPM − DDIM = 7); gap smaller at 50 steps: True (3). "
            "The two cells' CIs at 10 steps overlap: on 16 clips the gap is within the noise.") in report
    assert report.endswith("Corpus subset built in 6 s; the whole job took 158 s.")


def test_report_says_when_the_few_step_gap_is_resolved():
    report = render_report(_table(FD, 3.0), DemoSettings(samplers=("ddpm", "ddim")), corpus_seconds=6,
                           total_seconds=158)
    assert "(3). The two cells' CIs at 10 steps are disjoint." in report


def test_the_plot_draws_each_interval_where_it_lies_even_below_the_plug_in_value(tmp_path, monkeypatch):
    """An FD interval for the population value can lie wholly below the (upward-biased) plug-in value: the plot
    draws ci_low..ci_high as given (an error-bar plot relative to the value refused it, ending the demo)."""
    from matplotlib.axes import Axes

    from t2mbench.bench.demo import plot_sweep

    table = _table(FD, 3.0)
    below = table.metric == "fd_evaluator"
    table.loc[below, "ci_low"] = table.loc[below, "value"] - 40
    table.loc[below, "ci_high"] = table.loc[below, "value"] - 5
    drawn = []
    original = Axes.vlines

    def record(self, x, ymin, ymax, **kw):
        drawn.append((list(x), list(ymin), list(ymax)))
        return original(self, x, ymin, ymax, **kw)

    monkeypatch.setattr(Axes, "vlines", record)
    assert plot_sweep(table, tmp_path / "sweep.png").is_file()
    assert ([10, 50], [208.0, 206.0], [243.0, 241.0]) in drawn  # ddim's FD: 248/246 with intervals 40..5 below
