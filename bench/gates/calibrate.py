"""``t2mbench gate calibrate``: the gate's false-alarm rate and power, measured on the tiny model.

The pool (:func:`build_pool`, resumable): the demo's corpus (``clips`` test captions, seed 1),
then for each generation seed a sweep folder ``seed<s>/`` with the DDIM cells at 10 and 50 steps
(scored with the demo's metrics: fd_evaluator, kl_evaluator, clap_evaluator), and ``noise<db>/``:
the 50-step clips with white noise added at ``db`` dB SNR (per clip, seeded), scored the same way.

Trials (:func:`calibrate`) resample the pool: every trial picks, independently for each
prompt, two different generation seeds, one for the baseline and one for the current run, and
gates the resulting per-clip scores and FD frames with :func:`~t2mbench.bench.gates.quality.gate`
at the default rules (margin 0, α 0.05 family-wise over the three metrics):

- false alarms: baseline DDIM-50 vs current DDIM-50 (fresh seeds, no change);
- power: DDIM-50 vs DDIM-10, and DDIM-50 vs DDIM-50 + noise;
- smallest regression detected 80 % of the time: a null pair with a shift of k·sd(d) added to
  one metric's per-clip scores in the worse direction (sd(d): the sd of that metric's per-clip
  differences between seeds), k on a grid; for FD a mean shift of the frames.

With S seeds a prompt has S·(S − 1) ordered seed pairs, so 16 prompts and 4 seeds give 12^16
distinct null comparisons: the trials are far from exhausting the pool, but they share the
same 4 draws per prompt, so the measured rate is the gate's on this pool.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t2mbench.core import results as results_schema
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import write_bytes_atomic, write_json

DEMO_METRICS = ("fd_evaluator", "kl_evaluator", "clap_evaluator")
STEPS = (10, 50)


def build_pool(out: str | Path, seeds: list[int], *, clips: int = 16, seconds: float = 10.0,
               noise_db: tuple[float, ...] = (30.0,), progress: bool = False) -> Path:
    """Generate and score the pool into ``out`` (resumable: finished cells are read back)."""
    from t2mbench.bench.cells import Scoring, cell_dir
    from t2mbench.bench.corpus import build_corpus
    from t2mbench.bench.sweep import grid, run_sweep
    from t2mbench.reference_models.generate import default_cfg_scale

    out = Path(out)
    corpus = out / "corpus"
    build_corpus(corpus, clips, seconds, 1, split="test", progress=progress)
    scoring = Scoring(prompts=str(corpus), metrics=DEMO_METRICS)
    for s in seeds:
        cells = grid("tiny", ["ddim"], list(STEPS), cfg=default_cfg_scale("tiny"), seed=s, clips=clips,
                     seconds=seconds)
        run_sweep(cells, scoring, out / f"seed{s}", progress=progress)
        top = cell_dir(out / f"seed{s}", cells[-1])
        for db in noise_db:
            _noisy(top, out / f"seed{s}" / f"noise{db:g}", db, corpus, progress)
    return out


def _noisy(cell: Path, out: Path, db: float, corpus: Path, progress: bool) -> None:
    """The cell's clips with white noise at ``db`` dB SNR (noise rms = clip rms / 10^(db/20)), scored."""
    import soundfile as sf

    from t2mbench.metrics.scoring import score

    if (out / "scores" / "scores.parquet").is_file():
        return
    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (cell / "manifest.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        audio, sr = sf.read(cell / row["path"], dtype="float64", always_2d=False)
        seed = int(hashlib.sha256(f"{row['id']}:{db}".encode()).hexdigest()[:8], 16)
        rms = float(np.sqrt(np.mean(audio**2)))
        noisy = audio + np.random.default_rng(seed).normal(0.0, rms / 10 ** (db / 20), audio.shape)
        sf.write(out / row["path"], noisy.astype(np.float32), sr, subtype="FLOAT")
        row["sha256"] = None
        row["attributes"] = {**(row.get("attributes") or {}), "sampler_options": json.dumps({"noise_db": db})}
    write_bytes_atomic(out / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    score(out / "manifest.jsonl", corpus, list(DEMO_METRICS), out / "scores", cell=f"noise{db:g}",
          progress=progress)


@dataclass
class _Condition:
    """One (seed, condition) of the pool: per-metric clip scores and the FD frames."""

    scores: dict[str, dict[str, float]]
    frames: dict[str, np.ndarray]
    reference: Any


def load_pool(root: str | Path) -> dict[str, dict[int, _Condition]]:
    """``{condition: {seed: _Condition}}`` with conditions ``ddim-10``, ``ddim-50``, ``noise<db>``."""
    from t2mbench.metrics.frechet import read_frames

    root = Path(root)
    pool: dict[str, dict[int, _Condition]] = {}
    for seed_dir in sorted(root.glob("seed*")):
        seed = int(seed_dir.name[4:])
        folders = [(f"ddim-{c.name.split('-')[1]}", c / "results.parquet", c / "scores" / "arrays")
                   for c in sorted((seed_dir / "cells").glob("ddim-*"))]
        folders += [(n.name, n / "scores" / "scores.parquet", n / "scores" / "arrays")
                    for n in sorted(seed_dir.glob("noise*"))]
        for name, table_path, arrays in folders:
            if not table_path.is_file():
                continue
            table = results_schema.read(table_path)
            clips = table[table.kind == "clip"]
            scores = {m: dict(zip(g.clip_id.astype(str), g.value.astype(float), strict=True))
                      for m, g in clips.groupby("metric")}
            frames, reference = read_frames(arrays / "fd_evaluator.npz")
            pool.setdefault(name, {})[seed] = _Condition(scores, frames, reference)
    if "ddim-50" not in pool or len(pool["ddim-50"]) < 2:
        raise ConfigError(f"{root}: the pool needs DDIM-50 cells of at least two seeds (build it with --build)")
    return pool


def _trial_run(pool, condition: str, ids: list[str], seeds: np.ndarray, shift: dict[str, float] | None = None,
               fd_shift: np.ndarray | None = None):  # fmt: skip
    """A RunData taking, for prompt ``ids[i]``, the scores and frames of ``condition`` at seed ``seeds[i]``."""
    from t2mbench.bench.gates.quality import RunData

    by_seed = pool[condition]
    first = next(iter(by_seed.values()))
    rows, frames = [], {}
    attrs = {"run_id": condition, "model": "tiny", "sampler": "ddim", "steps": 50, "cfg": 3.0}
    for cid, s in zip(ids, seeds, strict=True):
        c = by_seed[int(s)]
        for m, values in c.scores.items():
            rows.append({**attrs, "seed": int(s), "metric": m, "kind": "clip", "clip_id": cid,
                         "value": values[cid] + (shift or {}).get(m, 0.0)})
        frames[cid] = c.frames[cid] if fd_shift is None else c.frames[cid] + fd_shift
    rows.append({**attrs, "metric": "fd_evaluator", "kind": "aggregate", "value": 0.0})
    columns = list(results_schema.COLUMNS)
    table = pd.DataFrame([{**dict.fromkeys(columns), **r} for r in rows], columns=columns)
    return RunData(table, {"fd_evaluator": (frames, first.reference)}, condition)


def _pairs(rng: np.random.Generator, seeds: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt two different seeds (baseline, current), uniformly among ordered pairs."""
    a = rng.integers(0, len(seeds), n)
    b = (a + rng.integers(1, len(seeds), n)) % len(seeds)
    return np.asarray(seeds)[a], np.asarray(seeds)[b]


PAIRINGS = ("fresh", "pinned")


def _rate(pool, base: str, cur: str, trials: int, seed: int, *, clips: int | None = None, pairing: str = "fresh",
          **inject) -> tuple[float, dict[str, float]]:  # fmt: skip
    """Fraction of trials the gate fails (exit 1), and per metric the fraction it flags.

    Every trial draws ``clips`` of the pool's prompts (all when None) without replacement, then per prompt the
    seeds: ``fresh``, two different seeds (a rerun with new seeds); ``pinned``, one seed for both runs (a CI
    gate that pins its seeds, as ``tox -e gate`` does: paired by clip id and seed).
    """
    from t2mbench.bench.gates.quality import gate

    seeds = sorted(set(pool[base]) & set(pool[cur]))
    ids = sorted(next(iter(pool[base].values())).frames)
    n = len(ids) if clips is None else clips
    rng = np.random.default_rng(seed)
    fails, flagged = 0, {}
    for t in range(trials):
        chosen = sorted(rng.choice(len(ids), n, replace=False)) if n < len(ids) else range(len(ids))
        trial_ids = [ids[i] for i in chosen]
        if pairing == "pinned":
            sb = sc = np.asarray(seeds)[rng.integers(0, len(seeds), n)]
        else:
            sb, sc = _pairs(rng, seeds, n)
        result = gate(_trial_run(pool, base, trial_ids, sb), _trial_run(pool, cur, trial_ids, sc, **inject),
                      resamples=1000, seed=t)  # fmt: skip
        fails += result.exit_code == 1
        for test in result.tests:
            flagged[test.metric] = flagged.get(test.metric, 0) + (test.verdict == "regression")
    return fails / trials, {m: k / trials for m, k in flagged.items()}


def _difference_sd(pool, metric: str) -> float:
    """sd of a metric's per-clip difference between two seeds of DDIM-50 (all seed pairs)."""
    by_seed = pool["ddim-50"]
    seeds = sorted(by_seed)
    diffs = [by_seed[a].scores[metric][c] - by_seed[b].scores[metric][c]
             for a in seeds for b in seeds if a < b for c in by_seed[a].scores[metric]]
    return float(np.std(diffs, ddof=1))


def calibrate(pool_root: str | Path, *, trials: int = 200, power_trials: int = 100, seed: int = 0,
              grid: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0), grid_trials: int = 20,
              clip_counts: tuple[int, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """Measured false-alarm rate, power and 80 %-detectable shifts on the pool (see the module docstring).

    ``clip_counts``: also measure the false-alarm rate and the power at these numbers of prompts (each trial
    draws that many of the pool's prompts), to find the smallest count with power >= 95 %; the default count
    is the pool's.
    """
    from t2mbench.bench.gates.rules import default_direction

    pool = load_pool(pool_root)
    n = len(next(iter(pool["ddim-50"].values())).frames)
    bad = [c for c in clip_counts if not 4 <= c <= n]
    if bad:
        raise ConfigError(f"clip counts must be between 4 and the pool's {n} prompts, got {', '.join(map(str, bad))}")
    out: dict[str, Any] = {"pool": str(pool_root), "clips": n, "seeds": sorted(pool["ddim-50"]),
                           "alpha": 0.05, "metrics": sorted(next(iter(pool["ddim-50"].values())).scores) +
                           ["fd_evaluator"]}
    out["by_clips"] = {}
    for count in sorted({*clip_counts, n}):
        rate, per = _rate(pool, "ddim-50", "ddim-50", trials, seed, clips=count)
        figures: dict[str, Any] = {"false_alarm": {"trials": trials, "rate": rate, "per_metric": per}, "power": {}}
        for cur in ["ddim-10"] + sorted(c for c in pool if c.startswith("noise")):
            common = set(pool["ddim-50"]) & set(pool.get(cur, {}))
            for pairing in PAIRINGS:
                if len(common) < (2 if pairing == "fresh" else 1):
                    continue
                rate, per = _rate(pool, "ddim-50", cur, power_trials, seed + 1, clips=count, pairing=pairing)
                figures["power"][f"ddim-50 -> {cur}, {pairing} seeds"] = {"trials": power_trials, "rate": rate,
                                                                          "per_metric": per}  # fmt: skip
        out["by_clips"][count] = figures
    detect = {}
    for metric in out["metrics"]:
        rows = []
        if metric == "fd_evaluator":
            dim = next(iter(pool["ddim-50"].values())).reference.dim
            direction = np.random.default_rng(7).normal(size=dim)
            direction /= np.linalg.norm(direction)
            sd = float(np.sqrt(np.mean(np.var(np.concatenate(list(next(iter(pool["ddim-50"].values())).frames
                                                                  .values())), axis=0))))
            for k in grid:
                rate, per = _rate(pool, "ddim-50", "ddim-50", grid_trials, seed + 2, fd_shift=k * sd * direction)
                rows.append({"k": k, "shift": k * sd, "flagged": per.get(metric, 0.0), "gate_fails": rate})
            unit = "mean shift of the frames, in units of the frames' per-dimension sd"
        else:
            sd = _difference_sd(pool, metric)
            worse = 1.0 if default_direction(metric) is False else -1.0
            for k in grid:
                rate, per = _rate(pool, "ddim-50", "ddim-50", grid_trials, seed + 2, shift={metric: worse * k * sd})
                rows.append({"k": k, "shift": k * sd, "flagged": per.get(metric, 0.0), "gate_fails": rate})
            unit = "per-clip shift, in units of sd(d) between seeds"
        hit = next((r for r in rows if r["flagged"] >= 0.8), None)
        detect[metric] = {"sd": sd, "unit": unit, "grid": rows, "smallest_k_80": None if hit is None else hit["k"],
                          "smallest_shift_80": None if hit is None else hit["shift"]}
    out["detectable_80"] = detect
    return out


def render(figures: dict[str, Any]) -> str:
    """The calibration figures as Markdown (what docs/gate_calibration.md quotes)."""
    lines = []
    if "by_clips" in figures:
        n = figures["clips"]
        lines += [f"Pool: {figures['pool']} · {n} prompts · seeds {figures['seeds']} · "
                  f"family-wise α {figures['alpha']}", "",
                  "| clips | comparison | trials | gate fails | " + " | ".join(figures["metrics"]) + " |",
                  "|---:|---|---:|---:|" + "---:|" * len(figures["metrics"])]
        for count, part in sorted(figures["by_clips"].items()):
            rows = [("DDIM-50 vs DDIM-50, fresh seeds (false alarms)", part["false_alarm"])]
            rows += list(part["power"].items())
            for name, r in rows:
                lines.append(f"| {count} | {name} | {r['trials']} | {r['rate']:.3f} | "
                             + " | ".join(f"{r['per_metric'].get(m, 0.0):.3f}" for m in figures["metrics"]) + " |")
        lines += ["", "| metric | sd | shift flagged ≥ 80 % (k·sd) | flagged at k = " +
                  ", ".join(f"{r['k']:g}" for r in next(iter(figures["detectable_80"].values()))["grid"]) + " |",
                  "|---|---:|---:|---|"]
        for m, d in figures["detectable_80"].items():
            k = ("not reached" if d["smallest_k_80"] is None
                 else f"{d['smallest_shift_80']:.4g} (k = {d['smallest_k_80']:g})")
            lines.append(f"| {m} | {d['sd']:.4g} | {k} | " + ", ".join(f"{r['flagged']:.2f}" for r in d["grid"]) + " |")
    if "latency" in figures:
        lat = figures["latency"]
        lines += ["", f"Latency ({lat['clock']} clock, {lat['trials']} trials, {lat['rounds']} interleaved rounds, "
                  f"factor > "
                  f"{lat['min_factor']}, MWU α {lat['alpha']}): no change passed {lat['no_change_passed']}/"
                  f"{lat['trials']}, {lat['slowdown'] * 100:g} % slowdown caught {lat['slowdown_caught']}/"
                  f"{lat['trials']}"]
    return "\n".join(lines) + "\n"


def _number_list(text: str, kind: type, option: str) -> tuple:
    """Comma-separated finite numbers of ``kind`` (int or float); a ConfigError naming ``option`` otherwise."""
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or not all(np.isfinite(values)):
        what = "integers" if kind is int else "numbers"
        raise ConfigError(f"{option} must be comma-separated {what}, got {text!r}")
    return values


def run_calibration(args) -> int:
    """``t2mbench gate calibrate`` (see :mod:`t2mbench.bench.commands.gate`)."""
    from t2mbench.bench.gates.latency import latency_trials

    if not args.pool and not args.latency:
        raise ConfigError("gate calibrate needs --pool DIR (and --build to make it) or --latency")
    figures: dict[str, Any] = {}
    if args.pool:
        if args.build:
            seeds = list(_number_list(args.seeds, int, "--seeds"))
            build_pool(args.pool, seeds, clips=args.clips, seconds=args.seconds, progress=False)
        grid = _number_list(args.grid, float, "--grid")
        counts = _number_list(args.clip_counts, int, "--clip-counts") if args.clip_counts else ()
        figures = calibrate(args.pool, trials=args.trials, power_trials=args.power_trials, seed=args.seed, grid=grid,
                            grid_trials=args.grid_trials, clip_counts=counts)
    if args.latency:
        figures["latency"] = latency_trials(args.latency_trials, clock=args.latency_clock)
    text = render(figures)
    print(text, end="")
    if args.out:
        write_json(args.out, figures)
    return 0
