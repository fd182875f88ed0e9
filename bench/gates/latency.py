"""Latency gates that hold on a noisy shared machine (asv's practice, plus a reference workload).

- **Ratio to a reference workload timed in the same run.** Every round times the reference and
  each workload back to back (:func:`interleaved_ratios`) and keeps t_workload / t_reference:
  a slower machine, or a neighbour's load during that round, moves both and mostly cancels.
- **Repeated, interleaved measurements.** Rounds alternate the order of the workloads (A B R, R B
  A, …) so slow drift hits every workload alike; one warm-up call each first.
- **CPU time on a shared machine.** ``clock="cpu"`` times with the process's CPU time
  (``time.process_time``), which excludes the time the process waits for a core while neighbours
  run; wall time (``clock="wall"``, ``time.perf_counter``) also counts that wait, so on a loaded
  machine it moves by more than the 10 % to catch. CPU time misses a regression that only waits
  (I/O, a sleep, a GPU sync): gate wall time on an idle machine for those.
- **Decision** (:func:`latency_verdict`): a slowdown when the one-sided Mann–Whitney U test says the
  current ratios are larger (p ≤ α) **and** the ratio of medians exceeds ``min_factor``; asv
  uses factor 1.1 with p < 0.002. The defaults here, factor 1.05 and α 0.01 at 20 rounds of min-of-5, catch
  a 10 % slowdown (docs/gate_calibration.md has the measured trials).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from t2mbench.bench.gates.stats import mann_whitney_greater
from t2mbench.core.errors import ConfigError

MIN_FACTOR = 1.05
ALPHA = 0.01
ROUNDS = 20
REPEAT = 5
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def interleaved_ratios(workloads: Mapping[str, Callable[[], object]], reference: Callable[[], object], *,
                       rounds: int = ROUNDS, repeat: int = REPEAT, warmup: int = 1,
                       timer: Callable[[], float] = time.perf_counter) -> dict[str, np.ndarray]:
    """Per workload, ``rounds`` ratios t_workload / t_reference, each from the same round.

    The order within a round is rotated and reversed round by round (the reference included), so
    no workload always runs first or right after another one. Each time is the minimum of
    ``repeat`` back-to-back calls: interference from neighbours only adds time.
    """
    names = list(workloads)
    calls = {**workloads, "__reference__": reference}
    for _ in range(warmup):
        for f in calls.values():
            f()
    order = names + ["__reference__"]
    out = {n: np.empty(rounds) for n in names}
    for r in range(rounds):
        k = r % len(order)
        this = order[k:] + order[:k]
        if r % 2:
            this = this[::-1]
        seconds = {}
        for name in this:
            best = float("inf")
            for _ in range(repeat):
                t0 = timer()
                calls[name]()
                best = min(best, timer() - t0)
            seconds[name] = best
        for n in names:
            out[n][r] = seconds[n] / seconds["__reference__"]
    return out


@dataclass(frozen=True)
class LatencyVerdict:
    """``factor`` = median(current) / median(baseline); ``p`` one-sided Mann–Whitney U."""

    factor: float
    p: float
    slower: bool
    min_factor: float
    alpha: float


def latency_verdict(baseline: np.ndarray, current: np.ndarray, *, min_factor: float = MIN_FACTOR,
                    alpha: float = ALPHA) -> LatencyVerdict:
    """Slower when MWU p ≤ ``alpha`` and median(current) / median(baseline) > ``min_factor``."""
    factor = float(np.median(current) / np.median(baseline))
    p = mann_whitney_greater(current, baseline)
    return LatencyVerdict(factor, p, bool(p <= alpha and factor > min_factor), min_factor, alpha)


def _work(n: int, size: int = 20_000, seed: int = 0) -> Callable[[], float]:
    """A deterministic single-threaded CPU workload: ``n`` sorts of a fixed random vector."""
    x = np.random.default_rng(seed).normal(size=size)

    def run() -> float:
        s = 0.0
        for _ in range(n):
            s += float(np.sort(x)[100])
        return s

    return run


def _reference(n: int = 60) -> Callable[[], float]:
    """The reference workload: a frozen copy of the kernel (sorts of another fixed vector), of the
    same length as the workload, so load from neighbours hits both alike."""
    return _work(n, seed=1)


def latency_trials(trials: int = 20, *, slowdown: float = 0.10, base_iterations: int = 60,
                   rounds: int = ROUNDS, clock: str = "cpu") -> dict[str, object]:
    """Injected-slowdown calibration: per trial, time the workload (``base_iterations`` sorts),
    the same workload again (no change) and a copy doing ``slowdown`` more work, interleaved
    with the reference, on ``clock`` ("cpu" or "wall"); gate each against the first. Returns the counts and
    factors."""
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
    reference = _reference(base_iterations)
    base, same, slow = _work(base_iterations), _work(base_iterations), _work(round(base_iterations * (1 + slowdown)))
    caught, passed, factors = 0, 0, {"same": [], "slow": []}
    for _ in range(trials):
        r = interleaved_ratios({"base": base, "same": same, "slow": slow}, reference, rounds=rounds,
                               timer=CLOCKS[clock])  # fmt: skip
        v_same, v_slow = latency_verdict(r["base"], r["same"]), latency_verdict(r["base"], r["slow"])
        passed += not v_same.slower
        caught += v_slow.slower
        factors["same"].append(v_same.factor)
        factors["slow"].append(v_slow.factor)
    return {"trials": trials, "slowdown": slowdown, "rounds": rounds, "clock": clock, "iterations": base_iterations,
            "min_factor": MIN_FACTOR, "alpha": ALPHA,
            "no_change_passed": passed, "slowdown_caught": caught,
            "factor_no_change": [round(f, 4) for f in factors["same"]],
            "factor_slowdown": [round(f, 4) for f in factors["slow"]]}
