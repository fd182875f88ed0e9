"""Regression gates: is the current run worse than the baseline, with a stated false-alarm rate?

- :mod:`~t2mbench.bench.gates.rules`: per-metric direction, practical margin and α (JSON or TOML).
- :mod:`~t2mbench.bench.gates.stats`: the sign-flip permutation p-value, weighted Holm, and the
  Mann–Whitney U test with a minimum factor for latency.
- :mod:`~t2mbench.bench.gates.quality`: :func:`gate` on two result tables or folders, the paired
  tests per metric, and the Markdown / JSON reports.
- :mod:`~t2mbench.bench.gates.latency`: interleaved timing of a workload against a reference.
- :mod:`~t2mbench.bench.gates.calibrate`: measured false-alarm rate and power.
"""

from t2mbench.bench.gates.quality import GateResult, MetricTest, RunData, gate
from t2mbench.bench.gates.rules import Rule, Rules, load_rules

__all__ = ["GateResult", "MetricTest", "Rule", "Rules", "RunData", "gate", "load_rules"]
