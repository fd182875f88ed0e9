"""The DDIM paper's Table 1 (Song et al., ICLR 2021) on the tiny model: rows η ∈ {0, 0.2, 0.5, 1}
(``ddim`` with its ``eta`` option) and σ̂, DDPM's larger variance σ_t² = β_t (``ddpm`` with
``variance="fixed_large"``), optionally DPM-Solver++(2M) and Euler; columns S ∈ {10, 20, 50, 100}
(and 1000 with ``full``). Each cell is scored twice: ``fd_evaluator`` on the decoded audio against
the test clips, and ``fd_latent`` in the DiT's latent space (:mod:`.latent_fd`), which is what the
paper's pixel-space FID measures. The three findings of the paper are checked on both tables
(:func:`verdicts`), each saying which table resolved it.

Every cell goes through the cell runner (:func:`t2mbench.bench.sweep.run_sweep`), so a killed run
resumes, and every row of ``results.parquet`` carries its sampler options.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.bench.cells import Cell, Scoring, cached_model
from t2mbench.bench.corpus import build_corpus
from t2mbench.bench.reproduce import latent_fd
from t2mbench.bench.sampler_options import check
from t2mbench.bench.sweep import run_sweep
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.samplers.registry import lookup

MODEL = "tiny"
AUDIO_METRIC = "fd_evaluator"
LATENT_METRIC = latent_fd.METRIC
STEPS = (10, 20, 50, 100)
FULL_STEPS = (*STEPS, 1000)
RESOLVE_STEPS = 10  # finding 1 is decided at S = 10
RESOLUTION_FOLDER = "finding1"  # run folder of the resolution cells, inside the table's


@dataclass(frozen=True)
class Row:
    """A row of the table: its key (command line), its label (as the paper names it), the sampler and its options."""

    key: str
    label: str
    sampler: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def options_json(self) -> str:
        return results.canonical_options(self.options)


# The paper's discretisation: DDPM's linear βs over T = 1000 and τ = {0, T/S, …} ending at index 0
# (``schedule="linear"``, ``spacing="leading"``), each level run at the tiny model's own time for it. Decision:
# like for like with the paper rather than the tiny model's cosine table, where σ̂ leaves half the residual noise
# (0.156 against 0.324 at S = 10) and is not worse than η = 0 (docs/reproducing_ddim.md).
PAPER_DISCRETISATION = {"schedule": "linear", "spacing": "leading"}
ROWS: dict[str, Row] = {r.key: r for r in (
    Row("eta0", "η = 0.0 (DDIM)", "ddim", {"eta": 0.0, **PAPER_DISCRETISATION}),
    Row("eta0.2", "η = 0.2", "ddim", {"eta": 0.2, **PAPER_DISCRETISATION}),
    Row("eta0.5", "η = 0.5", "ddim", {"eta": 0.5, **PAPER_DISCRETISATION}),
    Row("eta1", "η = 1.0", "ddim", {"eta": 1.0, **PAPER_DISCRETISATION}),
    Row("sigma_hat", "σ̂ (DDPM, σ² = β)", "ddpm", {"variance": "fixed_large", **PAPER_DISCRETISATION}),
    Row("ddpm_small", "DDPM posterior variance (= η = 1)", "ddpm", {"variance": "fixed_small", **PAPER_DISCRETISATION}),
    Row("dpmpp_2m", "DPM-Solver++(2M)", "dpmpp_2m"),
    Row("euler", "Euler (ODE)", "euler"),
)}  # fmt: skip
PAPER_ROWS = ("eta0", "eta0.2", "eta0.5", "eta1", "sigma_hat")


def custom_row(sampler: str, options: Mapping[str, Any]) -> Row:
    """An extra row from the command line (``--extra-sampler`` with ``--sampler-option``), options checked; a
    discrete sampler (one with a ``schedule`` option) runs on the table's discretisation unless told otherwise."""
    given = check(sampler, options)
    paper = PAPER_DISCRETISATION if "schedule" in lookup(sampler).options else {}
    label = sampler + "".join(f" {k}={v}" for k, v in sorted(given.items()))
    return Row(label.replace(" ", ":"), label, sampler, {**paper, **given})


@dataclass(frozen=True)
class DdimSettings:
    """What the DDIM table runs: ``clips`` test clips of ``seconds`` s (prompts and references), the rows,
    the step counts, CFG scale and seed shared by all cells.

    CFG scale 1 (no guidance) by default: the paper samples its models without guidance, and guidance changes the
    distribution sampled (and doubles the cost of a step). 64 clips: at 16 the paired σ̂ − η = 0 difference at
    S = 10 is within its noise (+0.08 [−1.6, +2.0]); at 64 it excludes 0 (docs/reproducing_ddim.md).

    ``resolve_clips``: finding 1 (σ̂ far worse than η = 0 at S = 10) is also run on this many test clips, η = 0
    and σ̂ at S = 10 only, latents only (:func:`resolution_cells`): the two ``fd_latent`` intervals overlap at 64
    and at 256 clips and are disjoint at 512 (docs/reproducing_ddim.md). 0 (or no larger than ``clips``): not run.
    """

    clips: int = 64
    seconds: float = 2.0
    seed: int = 1
    rows: tuple[Row, ...] = tuple(ROWS[k] for k in PAPER_ROWS)
    steps: tuple[int, ...] = STEPS
    cfg_scale: float = 1.0
    batch_size: int = 16
    resolve_clips: int = 512

    def cells(self) -> list[tuple[Row, Cell]]:
        """Every (row, cell), step-major: all rows at the smallest S first, so a stopped run already holds the
        cells the few-step findings need (cells resume by content key, whatever the order)."""
        return [(row, Cell(MODEL, row.sampler, int(n), self.cfg_scale, self.seed, self.clips, self.seconds,
                           dict(row.options), None, self.batch_size))
                for n in sorted(self.steps) for row in self.rows]  # fmt: skip

    def resolution_cells(self) -> list[tuple[Row, Cell]]:
        """η = 0 and σ̂ at S = 10 on ``resolve_clips`` clips, latents only (``Cell.audio=False``: no decoding, no
        audio scores), when the table has both rows and S = 10 and ``resolve_clips`` exceeds ``clips``."""
        keys = {r.key: r for r in self.rows}
        wanted = {"eta0", "sigma_hat"} <= set(keys) and RESOLVE_STEPS in self.steps
        if not wanted or self.resolve_clips <= self.clips:
            return []
        return [(keys[k], Cell(MODEL, keys[k].sampler, RESOLVE_STEPS, self.cfg_scale, self.seed, self.resolve_clips,
                               self.seconds, dict(keys[k].options), None, self.batch_size, audio=False))
                for k in ("eta0", "sigma_hat")]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"clips": self.clips, "seconds": self.seconds, "seed": self.seed, "steps": list(self.steps),
                "cfg_scale": self.cfg_scale, "batch_size": self.batch_size, "resolve_clips": self.resolve_clips,
                "rows": [{"key": r.key, "label": r.label, "sampler": r.sampler, "options": dict(r.options)}
                         for r in self.rows]}  # fmt: skip


def parse_rows(text: str) -> tuple[Row, ...]:
    """Comma-separated row keys (``eta0,sigma_hat``) → rows; an unknown key is a ConfigError listing the known ones."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ROWS]
    if unknown or not keys:
        raise ConfigError(f"unknown DDIM-table rows {', '.join(unknown) or '(none given)'}; known: {', '.join(ROWS)}")
    return tuple(ROWS[k] for k in keys)


@dataclass(frozen=True)
class Resolution:
    """Finding 1 on more clips: the ``fd_latent`` rows (and the paired σ̂ − η = 0 row) of the η = 0 and σ̂
    cells at S = 10 on ``clips`` test clips, scored against those clips."""

    clips: int
    table: pd.DataFrame


@dataclass
class DdimRun:
    """A run of the table: the result table (every cell's rows plus the ``fd_latent`` rows), the latent floor,
    the wall seconds of its stages and the finding-1 resolution (None when not run)."""

    table: pd.DataFrame
    settings: DdimSettings
    latent_floor: float
    seconds: dict[str, float]
    resolution: Resolution | None = None


def run_ddim(out: str | Path, settings: DdimSettings = DdimSettings(), *, progress: bool = True) -> DdimRun:
    """Build the corpus subset, run every cell (resuming), add ``fd_latent``; writes ``out/results.parquet|csv``."""
    out = Path(out)
    t0 = time.perf_counter()
    build_corpus(out / "corpus", settings.clips, settings.seconds, settings.seed, split="test", progress=progress)
    t1 = time.perf_counter()
    pairs = settings.cells()
    cells = [c for _, c in pairs]
    scoring = Scoring(prompts=str(out / "corpus"), metrics=(AUDIO_METRIC,))
    table = run_sweep(cells, scoring, out, progress=progress)
    t2 = time.perf_counter()
    model = cached_model(MODEL, None, True, "cpu")
    ref, floor = latent_fd.reference(out, model, out / "corpus", settings.clips, settings.seconds)
    latent_fd.save_reference_summary(out, ref, floor)
    baseline = {c.steps: c for row, c in pairs if row.key == "eta0"}
    baselines = {c.key: baseline[c.steps] for c in cells if c.steps in baseline}
    table = results.concat([table, latent_fd.latent_rows(out, cells, ref, baselines)])
    results.write(table, out, "results")
    t3 = time.perf_counter()
    resolution = run_resolution(out / RESOLUTION_FOLDER, settings, progress=progress)
    t4 = time.perf_counter()
    return DdimRun(table, settings, floor, {"corpus": t1 - t0, "cells": t2 - t1, "fd_latent": t3 - t2,
                                            "resolution": t4 - t3, "total": t4 - t0}, resolution)  # fmt: skip


def run_resolution(out: Path, settings: DdimSettings, *, progress: bool = True) -> Resolution | None:
    """The resolution cells (:meth:`DdimSettings.resolution_cells`) in their own run folder ``out``: corpus of
    ``resolve_clips`` test clips, latents-only cells through the cell runner, ``fd_latent`` against those clips
    with the paired σ̂ − η = 0 difference; writes ``out/results.parquet|csv``. None when there is nothing to run."""
    pairs = settings.resolution_cells()
    if not pairs:
        return None
    n = settings.resolve_clips
    build_corpus(out / "corpus", n, settings.seconds, settings.seed, split="test", progress=progress)
    (_, eta0), (_, sigma_hat) = pairs
    run_sweep([eta0, sigma_hat], Scoring(prompts=str(out / "corpus"), metrics=()), out, progress=progress)
    model = cached_model(MODEL, None, True, "cpu")
    ref, floor = latent_fd.reference(out, model, out / "corpus", n, settings.seconds)
    latent_fd.save_reference_summary(out, ref, floor)
    table = latent_fd.latent_rows(out, [eta0, sigma_hat], ref, {sigma_hat.key: eta0})
    results.write(table, out, "results")
    return Resolution(n, table)


# --- reading a result table back -------------------------------------------------------------------------------


def _label_of(rows: Sequence[Row]) -> dict[tuple[str, str], str]:
    return {(r.sampler, r.options_json): r.label for r in rows}


def cell_frame(table: pd.DataFrame, metric: str, rows: Sequence[Row] = tuple(ROWS.values())) -> pd.DataFrame:
    """``metric``'s aggregate rows with a ``row`` column (the row label; cells of no known row are dropped)."""
    labels = _label_of(rows)
    part = table[(table["metric"] == metric) & (table["kind"] == "aggregate")].copy()
    part["row"] = [labels.get((s, o)) for s, o in zip(part["sampler"], part["sampler_options"])]
    part = part[part["row"].notna()]
    part["steps"] = part["steps"].astype(int)
    return part[["row", "steps", "value", "ci_low", "ci_high"]]


def grid(table: pd.DataFrame, metric: str, rows: Sequence[Row] = tuple(ROWS.values()), *,
         with_ci: bool = True) -> pd.DataFrame:  # fmt: skip
    """Rows × steps of ``metric``: ``value [ci_low, ci_high]`` text (rows in ``rows`` order)."""
    part = cell_frame(table, metric, rows)
    out: dict[str, dict[int, str]] = {}
    for r in part.itertuples():
        text = f"{r.value:.3g}"
        if with_ci and not pd.isna(r.ci_low):
            text += f" [{r.ci_low:.3g}, {r.ci_high:.3g}]"
        out.setdefault(r.row, {})[int(r.steps)] = text
    order = [r.label for r in rows if r.label in out]
    frame = pd.DataFrame(out).T.reindex(order).sort_index(axis=1)
    frame.index.name = f"{metric} (S =)"
    return frame.fillna("-")


@dataclass(frozen=True)
class Verdict:
    """One finding of the paper checked here: ``holds`` (None: not checkable with these cells), ``resolved``
    (the deciding intervals are disjoint), the table that decided it and the evidence in words."""

    finding: str
    holds: bool | None
    resolved: bool
    table: str | None
    evidence: str
    resolution: str = "intervals disjoint"

    def text(self) -> str:
        state = "not checked" if self.holds is None else ("holds" if self.holds else "does not hold")
        how = "" if self.holds is None else (f" (resolved: {self.resolution})" if self.resolved else
                                             " (not resolved: intervals overlap)")  # fmt: skip
        where = f" on {self.table}" if self.table else ""
        return f"**{self.finding}**: {state}{where}{how}. {self.evidence}"


FINDINGS = (
    "1. σ̂ is far worse than η = 0 at S = 10 and 20",
    "2. η = 0 is best at small S (and larger η is worse there)",
    "3. the stochastic rows catch up by S = 1000",
)


def _cells(table: pd.DataFrame, metric: str) -> dict[tuple[str, int], tuple[float, float, float]]:
    part = cell_frame(table, metric)
    return {(r.row, int(r.steps)): (float(r.value), float(r.ci_low), float(r.ci_high)) for r in part.itertuples()}


def _disjoint_above(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    """a's interval lies wholly above b's."""
    return a[1] > b[2]


def finding_sigma_hat(table: pd.DataFrame, metric: str, resolution: Resolution | None = None) -> Verdict | None:
    """Finding 1 on ``metric``'s table; with ``resolution`` (its ``fd_latent`` cells on more clips) the disjointness
    of the S = 10 intervals is decided there, and the table's cells are the rest of the evidence."""
    c = _cells(table, metric)
    eta0, sig = ROWS["eta0"].label, ROWS["sigma_hat"].label
    small = [s for s in (10, 20) if (eta0, s) in c and (sig, s) in c]
    if 10 not in small:
        return None
    worse = all(c[(sig, s)][0] > c[(eta0, s)][0] for s in small)
    disjoint = _disjoint_above(c[(sig, 10)], c[(eta0, 10)]) or _disjoint_above(c[(eta0, 10)], c[(sig, 10)])
    paired = _cells(table, f"{metric}.minus_baseline")
    p10 = paired.get((sig, 10))
    # the paired interval (same prompts and noise) decides the sign when the two marginal intervals overlap
    by_pair = p10 is not None and (p10[1] > 0 or p10[2] < 0) and (p10[1] > 0) == worse
    ev_paired = "".join(f" Paired (same prompts and initial noise) σ̂ − η=0 at S={s}: {paired[(sig, s)][0]:+.3g} "
                        f"[{paired[(sig, s)][1]:+.3g}, {paired[(sig, s)][2]:+.3g}]"
                        f"{' (excludes 0)' if paired[(sig, s)][1] > 0 or paired[(sig, s)][2] < 0 else ''}."
                        for s in small if (sig, s) in paired)  # fmt: skip
    ev = "; ".join(f"S={s}: σ̂ {c[(sig, s)][0]:.3g} [{c[(sig, s)][1]:.3g}, {c[(sig, s)][2]:.3g}] vs η=0 "
                   f"{c[(eta0, s)][0]:.3g} [{c[(eta0, s)][1]:.3g}, {c[(eta0, s)][2]:.3g}] "
                   f"(ratio {c[(sig, s)][0] / c[(eta0, s)][0]:.2f})" for s in small)  # fmt: skip
    r = {} if resolution is None else _cells(resolution.table, metric)
    if (sig, RESOLVE_STEPS) in r and (eta0, RESOLVE_STEPS) in r:
        a, b = r[(sig, RESOLVE_STEPS)], r[(eta0, RESOLVE_STEPS)]
        rp = _cells(resolution.table, f"{metric}.minus_baseline").get((sig, RESOLVE_STEPS))
        ev_r = (f"On {resolution.clips} test clips at S={RESOLVE_STEPS} (η = 0 and σ̂ only, scored against those "
                f"clips): σ̂ {a[0]:.3g} [{a[1]:.3g}, {a[2]:.3g}] vs η=0 {b[0]:.3g} [{b[1]:.3g}, {b[2]:.3g}]"
                + ("" if rp is None else f"; paired σ̂ − η=0 {rp[0]:+.3g} [{rp[1]:+.3g}, {rp[2]:+.3g}]") + ". "
                "The table's cells: ")  # fmt: skip
        if _disjoint_above(a, b) or _disjoint_above(b, a):
            return Verdict(FINDINGS[0], a[0] > b[0], True, f"{metric} ({resolution.clips} clips)",
                           ev_r + ev + "." + ev_paired,
                           f"the σ̂ and η = 0 intervals at S = {RESOLVE_STEPS} on {resolution.clips} clips are disjoint")
        ev = ev_r + ev
    if disjoint:
        return Verdict(FINDINGS[0], worse, True, metric, ev + "." + ev_paired)
    return Verdict(FINDINGS[0], worse, by_pair, metric, ev + "." + ev_paired,
                   "the paired σ̂ − η = 0 interval at S = 10 excludes 0; the marginal intervals overlap")


def finding_eta0_best(table: pd.DataFrame, metric: str) -> Verdict | None:
    c = _cells(table, metric)
    eta_rows = [ROWS[k].label for k in ("eta0", "eta0.2", "eta0.5", "eta1")]
    others = [ROWS[k].label for k in ("eta0.2", "eta0.5", "eta1", "sigma_hat")]
    eta0 = eta_rows[0]
    small = [s for s in (10, 20) if (eta0, s) in c and any((o, s) in c for o in others)]
    if not small:
        return None
    best = all(c[(eta0, s)][0] < c[(o, s)][0] for s in small for o in others if (o, s) in c)
    resolved = all(_disjoint_above(c[(o, s)], c[(eta0, s)]) for s in small for o in others if (o, s) in c)
    monotone = all(
        all(c[(a, s)][0] <= c[(b, s)][0] for a, b in zip(eta_rows, eta_rows[1:]) if (a, s) in c and (b, s) in c)
        for s in small
    )  # fmt: skip
    ev = "; ".join(
        f"S={s}: " + ", ".join(f"{o.split(' (')[0]} {c[(o, s)][0]:.3g}" for o in [eta0, *others] if (o, s) in c)
        for s in small
    ) + f". Monotone in η at small S: {monotone}."  # fmt: skip
    return Verdict(FINDINGS[1], best, best and resolved, metric, ev)


def finding_catch_up(table: pd.DataFrame, metric: str) -> Verdict | None:
    c = _cells(table, metric)
    eta0 = ROWS["eta0"].label
    stochastic = [ROWS[k].label for k in ("eta1", "sigma_hat") if any(k2[0] == ROWS[k].label for k2 in c)]
    steps = sorted({s for (row, s) in c if row == eta0})
    if not stochastic or len(steps) < 2:
        return None
    few, many = steps[0], steps[-1]
    gaps = {r: (c[(r, few)][0] - c[(eta0, few)][0], c[(r, many)][0] - c[(eta0, many)][0])
            for r in stochastic if (r, few) in c and (r, many) in c}  # fmt: skip
    shrink = all(abs(g[1]) < abs(g[0]) or g[1] <= 0 for g in gaps.values())
    caught = all(c[(r, many)][1] <= c[(eta0, many)][2] for r in gaps)  # interval reaches η = 0's
    ev = "; ".join(f"{r.split(' (')[0]} − η=0: {g[0]:+.3g} at S={few} → {g[1]:+.3g} at S={many}"
                   for r, g in gaps.items())  # fmt: skip
    if many < 1000:
        ev += f". S = 1000 not run (largest S here is {many}; `t2mbench reproduce ddim --full` adds it)"
        return Verdict(FINDINGS[2], None, False, metric, ev + f"; gaps shrink by S={many}: {shrink}.")
    return Verdict(FINDINGS[2], shrink and caught, shrink and caught, metric, ev + ".",
                   "the gaps shrink and each stochastic row's interval reaches η = 0's at the largest S")


def _state(v: Verdict) -> str:
    return "not checked" if v.holds is None else ("holds" if v.holds else "does not hold")


def verdicts(table: pd.DataFrame, resolution: Resolution | None = None) -> list[Verdict]:
    """Each finding checked on ``fd_latent`` and on ``fd_evaluator``; the verdict kept is the first table that
    resolves it (latent first: the model's own space, as the paper's FID), else the latent table's. Finding 1
    also reads ``resolution`` (:func:`run_resolution`), its S = 10 cells on more clips."""
    out = []
    checks = (lambda t, m: finding_sigma_hat(t, m, resolution), finding_eta0_best, finding_catch_up)
    for check_fn, finding in zip(checks, FINDINGS):
        found = [v for v in (check_fn(table, m) for m in (LATENT_METRIC, AUDIO_METRIC)) if v is not None]
        if not found:
            out.append(Verdict(finding, None, False, None, "the cells it needs were not run"))
            continue
        chosen = next((v for v in found if v.resolved), found[0])
        others = [v for v in found if v is not chosen]
        extra = "".join(f" On {v.table}: {_state(v)}{', resolved' if v.resolved else ', not resolved'} ({v.evidence})"
                        for v in others)  # fmt: skip
        out.append(Verdict(chosen.finding, chosen.holds, chosen.resolved, chosen.table, chosen.evidence + extra,
                           chosen.resolution))
    return out


__all__ = ["FULL_STEPS", "ROWS", "STEPS", "DdimRun", "DdimSettings", "Resolution", "Row", "Verdict", "cell_frame",
           "custom_row", "grid", "parse_rows", "run_ddim", "run_resolution", "verdicts"]
