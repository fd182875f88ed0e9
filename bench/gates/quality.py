"""``gate``: is the current run worse than the baseline on any metric, family-wise?

Inputs: a result table (``.parquet``/``.csv`` in the result schema) or a folder holding one: a
sweep folder (``results.parquet``), a cell folder (``results.parquet``, scores in ``scores/``), a
scoring folder (``scores.parquet``). Each run is split into its cells (the ``cell`` column, else
``run_id``); when both runs have one cell they are compared whatever their settings (DDIM 50 vs
10 steps); otherwise cells are matched on (model, sampler, sampler_options, steps, cfg).

Per metric and matched cell, one test, with d oriented so that positive is worse:

- **clip-level** metrics (rows of kind ``clip`` in both runs): paired by clip id (and seed:
  when the seeds differ, as in a fresh-seed rerun, by clip id alone, i.e. by prompt). The
  difference of means has a paired bootstrap CI (:func:`~t2mbench.metrics.bootstrap.paired_difference_ci`,
  the same resampled prompts for both runs) and a one-sided sign-flip permutation p-value for
  H0: mean d ≤ margin (:func:`~t2mbench.bench.gates.stats.sign_flip_p`, exact up to 16 clips).
- **set-level** metrics (FD: no clip rows, but the generated frames per clip saved by the
  scoring engine in ``scores/arrays/<metric>.npz``): the difference FD_cur − FD_base by
  bias-corrected half-sampling of prompt ids with the same draw for both runs
  (:func:`~t2mbench.metrics.frechet.fd_difference_interval`); p from t = (Δ_BC − margin)/se with
  R − 1 degrees of freedom. Both runs must share the reference statistics.
- **unpaired fallback** (an aggregate with a CI on both sides but no frames, e.g. a table from
  before frames were saved): z = (Δ − margin)/√(se_b² + se_c²), se = CI half-width / 1.96:
  conservative, since it ignores the covariance from shared prompts. A rule must name the
  metric for scalar extras (``fd_openl3.fad_inf``) to be gated this way.

A test fails when its Holm-adjusted p (weighted Holm over every test of the gate, weights the
metrics' α, family α = the rules' ``alpha`` or the largest metric α) is ≤ the family α **and**
the observed worsening exceeds the margin. The gate fails when any test fails: exit code 1.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t2mbench.bench.gates.rules import Rule, Rules, default_direction
from t2mbench.bench.gates.stats import holm, sign_flip_p
from t2mbench.core import results as results_schema
from t2mbench.core.errors import ConfigError
from t2mbench.metrics.bootstrap import MEAN_RESAMPLES, paired_difference_ci
from t2mbench.metrics.frechet import FD_RESAMPLES, GaussianStats, fd_difference_interval, read_frames

CONFIG = ("model", "sampler", "sampler_options", "steps", "cfg")
TABLES = ("results.parquet", "scores.parquet", "scores/scores.parquet", "results.csv", "scores.csv")
CONFIDENCE = 0.95  # of the reported difference CI
TABLE_HEAD = "| metric | better | baseline | current | Δ current − baseline [95% CI] | margin | p (Holm) | verdict |"


@dataclass
class MetricTest:
    """One metric on one matched pair of cells. ``difference`` = current − baseline (raw units);
    ``ci_low``/``ci_high`` its 95 % interval; ``worse_by`` the difference oriented so positive is
    worse; ``margin`` in the metric's unit; ``p`` the one-sided p-value against "worse by more than
    the margin", ``p_holm`` adjusted; ``verdict`` "regression", "pass" or "not tested"."""

    metric: str
    cell: str
    test: str
    n: int
    higher_is_better: bool | None
    baseline: float
    current: float
    difference: float
    ci_low: float
    ci_high: float
    worse_by: float
    margin: float
    margin_text: str
    alpha: float
    p: float
    p_holm: float = math.nan
    verdict: str = "not tested"
    note: str = ""


@dataclass
class GateResult:
    """Every test, the family α and the overall verdict (``exit_code`` 1 on a regression, else 0)."""

    baseline: str
    current: str
    tests: list[MetricTest]
    family_alpha: float
    rules: str
    not_compared: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricTest]:
        return [t for t in self.tests if t.verdict == "regression"]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def to_json(self) -> dict[str, Any]:
        return {"verdict": "regression" if self.regressions else "pass", "exit_code": self.exit_code,
                "baseline": self.baseline, "current": self.current, "family_alpha": self.family_alpha,
                "multiplicity": "weighted Holm", "rules": self.rules, "not_compared": self.not_compared,
                "tests": [{k: _json_number(v) for k, v in asdict(t).items()} for t in self.tests]}

    def markdown(self) -> str:
        return render_markdown(self)


@dataclass
class RunData:
    """A run held in memory: its result table (the schema's columns; not validated again, for
    speed) and, per set-level metric, the generated frames per clip id with the reference
    statistics (what ``scores/arrays/<metric>.npz`` holds)."""

    table: pd.DataFrame
    frames: dict[str, tuple[dict[str, np.ndarray], GaussianStats]] = field(default_factory=dict)
    label: str = "table"


@dataclass
class _Run:
    label: str
    table: pd.DataFrame
    root: Path | None
    frames: dict[str, tuple[dict[str, np.ndarray], GaussianStats]] = field(default_factory=dict)


def load_run(source: str | os.PathLike | pd.DataFrame | RunData, label: str | None = None) -> _Run:
    """A run from a result table, a folder holding one, a DataFrame or :class:`RunData` (a
    ConfigError if none)."""
    if isinstance(source, RunData):  # built in memory (calibration trials): taken as it is, unvalidated
        return _Run(label or source.label, source.table, None, dict(source.frames))
    if isinstance(source, pd.DataFrame):
        return _Run(label or "table", results_schema.validate(source), None)
    p = Path(source)
    if p.is_dir():
        found = next((p / t for t in TABLES if (p / t).is_file()), None)
        if found is None:
            raise ConfigError(f"{p}: no result table here (looked for {', '.join(TABLES)})")
        p = found
    elif not p.is_file():
        raise ConfigError(f"{source}: no such result folder or table")
    return _Run(label or str(source), results_schema.read(p), p.parent)


def gate(
    baseline: str | os.PathLike | pd.DataFrame | RunData,
    current: str | os.PathLike | pd.DataFrame | RunData,
    rules: Rules | None = None,
    *,
    resamples: int = MEAN_RESAMPLES,
    fd_resamples: int = FD_RESAMPLES,
    seed: int = 0,
) -> GateResult:
    """Gate ``current`` against ``baseline`` (tables or folders, see the module docstring).

    Raises:
        ConfigError: unreadable inputs, no cell in common, different prompts for a clip-level
            metric, or no metric to test.
    """
    rules = rules or Rules()
    base, cur = load_run(baseline), load_run(current)
    pairs, not_compared = _match_cells(base, cur)
    tests: list[MetricTest] = []
    for label, cb, cc in pairs:
        tests += _tests(base, cur, cb, cc, label, rules, resamples, fd_resamples, seed)
    tested = [t for t in tests if math.isfinite(t.p)]
    if not tested:
        raise ConfigError("no metric to gate: the runs share no clip-level metric, no FD frames and no CI")
    family = rules.alpha if rules.alpha is not None else max(t.alpha for t in tested)
    adjusted = holm([t.p for t in tests], [t.alpha for t in tests])
    for t, a in zip(tests, adjusted, strict=True):
        t.p_holm = float(a)
        if math.isfinite(a):
            t.verdict = "regression" if a <= family and t.worse_by > t.margin else "pass"
    return GateResult(base.label, cur.label, tests, family, rules.source, not_compared)


def _cells(run: _Run) -> dict[str, pd.DataFrame]:
    t = run.table
    key = t["cell"].fillna(t["run_id"]).astype(str)
    return {k: g for k, g in t.groupby(key, sort=True)}


def _config(rows: pd.DataFrame) -> tuple:
    first = rows.iloc[0]
    return tuple(None if pd.isna(first[c]) else first[c] for c in CONFIG)


def _seeds_text(rows: pd.DataFrame) -> str:
    seeds = sorted({int(s) for s in rows["seed"].dropna()})
    if not seeds:
        return "seed ?"
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ",".join(map(str, seeds[:6])) + ("…" if len(seeds) > 6 else "")


def _config_text(rows: pd.DataFrame, seeds: bool = True) -> str:
    model, sampler, options, steps, cfg = _config(rows)
    parts = [str(model or "?"), f"{sampler or '?'} {steps if steps is not None else '?'} steps"]
    if options and options != "{}":
        parts.append(str(options))
    if cfg is not None:
        parts.append(f"cfg {cfg:g}")
    if seeds:
        parts.append(_seeds_text(rows))
    return ", ".join(parts)


def _match_cells(base: _Run, cur: _Run):
    cb, cc = _cells(base), _cells(cur)
    if not cb or not cc:
        raise ConfigError(f"{base.label if not cb else cur.label}: the result table is empty")
    if len(cb) == 1 and len(cc) == 1:
        (kb, rb), (kc, rc) = next(iter(cb.items())), next(iter(cc.items()))
        if _config(rb) == _config(rc):
            label = f"{_config_text(rb, seeds=False)}, {_seeds_text(rb)} → {_seeds_text(rc)}"
        else:
            label = f"{_config_text(rb)} → {_config_text(rc)}"
        return [(label, (kb, rb), (kc, rc))], []
    by_config: list[dict] = []
    for run, cells in ((base, cb), (cur, cc)):
        index: dict[tuple, tuple[str, pd.DataFrame]] = {}
        for k, rows in cells.items():
            conf = _config(rows)
            if conf in index:
                raise ConfigError(f"{run.label}: several cells with the same configuration ({_config_text(rows)}); "
                                  "gate one cell folder at a time")
            index[conf] = (k, rows)
        by_config.append(index)
    common = [c for c in by_config[0] if c in by_config[1]]
    if not common:
        raise ConfigError("the runs have no cell configuration in common; give one cell folder on each side")
    pairs = [(f"{_config_text(by_config[0][c][1], seeds=False)}, {_seeds_text(by_config[0][c][1])} → "
              f"{_seeds_text(by_config[1][c][1])}", by_config[0][c], by_config[1][c]) for c in common]
    missing = [_config_text(r) for i in (0, 1) for c, (_, r) in by_config[i].items() if c not in by_config[1 - i]]
    return pairs, missing


def _tests(base: _Run, cur: _Run, cell_b, cell_c, label: str, rules: Rules, resamples: int, fd_resamples: int,
           seed: int) -> list[MetricTest]:
    (kb, rb), (kc, rc) = cell_b, cell_c
    out = []
    clip_b, clip_c = rb[rb.kind == "clip"], rc[rc.kind == "clip"]
    agg_b, agg_c = rb[rb.kind == "aggregate"], rc[rc.kind == "aggregate"]
    clip_metrics = [m for m in clip_b.metric.unique() if m in set(clip_c.metric)]
    for metric in sorted(clip_metrics):
        rule = _rule_or_none(rules, metric, label, out)
        if rule is not None:
            out.append(_clip_test(metric, label, rule, clip_b[clip_b.metric == metric], clip_c[clip_c.metric == metric],
                                  resamples, seed))
    for metric in sorted(set(agg_b.metric) & set(agg_c.metric) - set(clip_metrics)):
        rule = rules.rule(metric)
        frames = _frames(base, kb, metric), _frames(cur, kc, metric)
        has_ci = all(not pd.isna(_agg(a, metric).ci_low) for a in (agg_b, agg_c))
        if not (frames[0] and frames[1]) and not (rule.named or (has_ci and "." not in metric)):
            continue  # scalar extras (frame counts, slopes) are not gated unless a rule names them
        rule = _rule_or_none(rules, metric, label, out)
        if rule is None:
            continue
        if frames[0] and frames[1]:
            out.append(_set_test(metric, label, rule, frames[0], frames[1], fd_resamples, seed))
        else:
            out.append(_unpaired_test(metric, label, rule, _agg(agg_b, metric), _agg(agg_c, metric)))
    for metric in sorted(set(rb[rb.kind == "generation"].metric) & set(rc[rc.kind == "generation"].metric)):
        if rules.rule(metric).named and not rules.rule(metric).skip:
            gb, gc = rb[(rb.kind == "generation") & (rb.metric == metric)], rc[(rc.kind == "generation") &
                                                                                 (rc.metric == metric)]
            out.append(_clip_test(metric, label, _resolved(rules.rule(metric), metric), gb, gc, resamples, seed))
    return out


def _rule_or_none(rules: Rules, metric: str, label: str, out: list[MetricTest]) -> Rule | None:
    rule = rules.rule(metric)
    if rule.skip:
        return None
    resolved = _resolved(rule, metric)
    if resolved.higher_is_better is None:
        out.append(MetricTest(metric, label, "-", 0, None, *([math.nan] * 6), math.nan, "-", rule.alpha, math.nan,
                              note="direction unknown: give one in the rules file"))
        return None
    return resolved


def _resolved(rule: Rule, metric: str) -> Rule:
    if rule.higher_is_better is not None:
        return rule
    return Rule(default_direction(metric), rule.margin, rule.relative, rule.alpha, rule.skip, rule.named)


def _agg(rows: pd.DataFrame, metric: str) -> pd.Series:
    return rows[rows.metric == metric].iloc[0]


def _sign(rule: Rule) -> float:
    return -1.0 if rule.higher_is_better else 1.0


def _clip_test(metric, label, rule: Rule, rows_b: pd.DataFrame, rows_c: pd.DataFrame, resamples, seed) -> MetricTest:
    sb, sc = rows_b.set_index("clip_id"), rows_c.set_index("clip_id")
    if set(sb.index) != set(sc.index):
        only_b, only_c = sorted(set(sb.index) - set(sc.index)), sorted(set(sc.index) - set(sb.index))
        raise ConfigError(f"{metric}: the runs scored different clips (only in baseline: "
                          f"{', '.join(only_b[:10]) or '-'}; only in current: {', '.join(only_c[:10]) or '-'}); "
                          "a paired gate needs the same prompts")
    sc = sc.loc[sb.index]
    vb, vc = sb.value.to_numpy(dtype=np.float64), sc.value.to_numpy(dtype=np.float64)
    same_seed = bool((sb.seed.astype("Float64").fillna(-1).to_numpy() == sc.seed.astype("Float64").fillna(-1)
                      .to_numpy()).all())
    diff, low, high = paired_difference_ci(vc, vb, resamples=resamples, confidence=CONFIDENCE, seed=seed)
    d = _sign(rule) * (vc - vb)
    margin = rule.margin_for(float(vb.mean()))
    p = sign_flip_p(d, margin, resamples=resamples, seed=seed)
    note = "paired by clip id and seed" if same_seed else "paired by clip id (seeds differ)"
    return MetricTest(metric, label, "paired clips: bootstrap CI, sign-flip p", len(vb), rule.higher_is_better,
                      float(vb.mean()), float(vc.mean()), diff, low, high, _sign(rule) * diff, margin,
                      rule.margin_text(), rule.alpha, p, note=note)


def _set_test(metric, label, rule: Rule, frames_b, frames_c, fd_resamples, seed) -> MetricTest:
    from scipy.stats import t as student_t

    (clips_b, ref_b), (clips_c, ref_c) = frames_b, frames_c
    if not (np.allclose(ref_b.mu, ref_c.mu) and np.allclose(ref_b.sigma, ref_c.sigma)):
        raise ConfigError(f"{metric}: the runs were scored against different reference statistics")
    if set(clips_b) != set(clips_c):
        raise ConfigError(f"{metric}: the runs embedded different clips; a paired gate needs the same prompts")
    iv = fd_difference_interval(clips_c, clips_b, ref_b, resamples=fd_resamples, seed=seed)
    from t2mbench.metrics.frechet import embedding_stats, frechet_distance_from_stats

    fd_b = frechet_distance_from_stats(embedding_stats(np.concatenate(list(clips_b.values()))), ref_b)
    fd_c = frechet_distance_from_stats(embedding_stats(np.concatenate(list(clips_c.values()))), ref_b)
    margin = rule.margin_for(fd_b)
    sign = _sign(rule)
    if not math.isfinite(iv.se):
        p = math.nan  # too few clips for subsamples
    elif iv.se > 0:
        p = float(student_t.sf((sign * iv.corrected - margin) / iv.se, len(iv.replicates) - 1))
    else:  # no spread at all (identical runs): the sign of the change decides
        p = 0.0 if sign * iv.corrected > margin else 1.0
    return MetricTest(metric, label, "paired set: half-sampling of prompts, bias-corrected", iv.n,
                      rule.higher_is_better, fd_b, fd_c, iv.estimate, iv.low, iv.high, sign * iv.estimate, margin,
                      rule.margin_text(), rule.alpha, p,
                      note=f"bias-corrected difference {iv.corrected:.4g} ± {iv.half_width:.3g}")


def _unpaired_test(metric, label, rule: Rule, row_b: pd.Series, row_c: pd.Series) -> MetricTest:
    from scipy.stats import norm

    vb, vc = float(row_b.value), float(row_c.value)
    ses = [(float(r.ci_high) - float(r.ci_low)) / (2 * 1.959964) for r in (row_b, row_c)
           if not (pd.isna(r.ci_low) or pd.isna(r.ci_high))]
    diff = vc - vb
    margin = rule.margin_for(vb)
    sign = _sign(rule)
    if len(ses) == 2 and math.hypot(*ses) > 0:
        se = math.hypot(*ses)
        p, low, high = float(norm.sf((sign * diff - margin) / se)), diff - 1.959964 * se, diff + 1.959964 * se
        note = "unpaired: no per-clip frames; se from the two CIs (conservative)"
    else:
        p, low, high, note = math.nan, math.nan, math.nan, "no CI and no per-clip data: not tested"
    return MetricTest(metric, label, "unpaired CIs", int(row_b.get("n", 0) or 0), rule.higher_is_better, vb, vc, diff,
                      low, high, sign * diff, margin, rule.margin_text(), rule.alpha, p, note=note)


def _frames(run: _Run, cell: str, metric: str):
    """(clip frames, reference statistics) that the scoring engine saved for ``metric``, or None."""
    if metric in run.frames:
        return run.frames[metric]
    if run.root is None:
        return None
    for folder in (run.root / "cells" / cell / "scores", run.root / "scores", run.root):
        path = folder / "arrays" / f"{metric}.npz"
        if path.is_file():
            return read_frames(path)
    return None


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _fmt(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.4g}"


def _p(x: float) -> str:
    return "–" if not math.isfinite(x) else (f"{x:.2g}" if x >= 1e-3 else "<0.001")


def render_markdown(result: GateResult) -> str:
    """The report as Markdown for a pull-request comment."""
    n_fail = len(result.regressions)
    head = (f"### t2mbench gate: **REGRESSION** ({n_fail} of {len(result.tests)} metric tests)" if n_fail
            else f"### t2mbench gate: no regression ({len(result.tests)} metric tests)")
    lines = [head, "",
             f"Baseline `{result.baseline}` · current `{result.current}` · family-wise α = {result.family_alpha:g} "
             f"(Holm) · rules: {result.rules}", ""]
    by_cell: dict[str, list[MetricTest]] = {}
    for t in result.tests:
        by_cell.setdefault(t.cell, []).append(t)
    for cell, tests in by_cell.items():
        lines += [f"**{cell}**", "", TABLE_HEAD, "|---|---|---:|---:|---|---:|---:|---|"]
        for t in tests:
            better = "–" if t.higher_is_better is None else ("↑" if t.higher_is_better else "↓")
            verdict = {"regression": "❌ **regression**", "pass": "✅ pass"}.get(t.verdict, t.verdict)
            lines.append(f"| {t.metric} | {better} | {_fmt(t.baseline)} | {_fmt(t.current)} | {_fmt(t.difference)} "
                         f"[{_fmt(t.ci_low)}, {_fmt(t.ci_high)}] | {t.margin_text} | {_p(t.p)} ({_p(t.p_holm)}) "
                         f"| {verdict} |")
        lines.append("")
    if result.not_compared:
        lines += ["Not compared (configuration in one run only): " + "; ".join(result.not_compared), ""]
    notes = sorted({f"{t.metric}: {t.test}; {t.note}" for t in result.tests if t.note})
    if notes:
        lines += ["<details><summary>Tests</summary>", ""] + [f"- {n}" for n in notes] + ["", "</details>", ""]
    lines.append("A metric fails when its Holm-adjusted one-sided p ≤ α and the change is worse than the margin.")
    return "\n".join(lines) + "\n"
