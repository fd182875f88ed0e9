"""Sweep and timing-harness overheads, and Ray against the local executor (CPU).

    pytest benchmarks/test_sweeps.py --benchmark-enable --benchmark-only -s

1. The timing harness's own cost per denoising step (a clock mark, plus the sweep's step
   callback: stage report, pause-point check) against one tiny-model step (the DiT on one
   unguided 10-s clip, as in test_samplers.py). Requirement: < 1%.
2. The sweep's overhead per cell beyond generate + score: a fresh cell's run_sweep wall time
   minus the generation's total seconds (generation.json) minus the scoring's seconds
   (scores/summary.json); what remains is writing the clips, reading the prompts, the cell's
   result files, the store part, the export and the progress bar. Requirement: < 2%.
3. Four cells on a local Ray instance (2 CPUs, 2 workers, one torch thread each) against the
   local executor (one process, its default torch threads, then one thread) in the same run:
   the wall-time ratios and where Ray's extra time goes (``ray_init_s``: starting the instance;
   ``ray_other_s``: the Ray sweep's wall minus half the workers' summed generate + score
   seconds, i.e. worker start-up, each worker's cold model and embedder loads, scheduling).
"""

from __future__ import annotations

import time

import pytest
import torch

import t2mbench.reference_models as rm
from t2mbench.bench.cells import Cell, Scoring, cell_dir
from t2mbench.bench.sweep import SweepProgress, grid, run_sweep
from t2mbench.bench.timing import Clock
from t2mbench.core.faults import pause_point
from t2mbench.core.files import read_json

METRICS = ("fd_evaluator", "kl_evaluator", "clap_evaluator")


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@pytest.fixture(scope="module")
def model_step():
    """One tiny-model step: the DiT on one unguided 10-s clip (random weights; the cost does not depend on them)."""
    dit = rm.build("tiny").dit
    torch.manual_seed(0)
    x = torch.randn(1, 32, 320)
    cond = {"cross_attn_cond": torch.randn(1, 66, 384), "global_cond": torch.randn(1, 768)}
    t = torch.full((1,), 0.5)
    with torch.inference_mode():
        dit(x, t, **cond)
        return best_of(lambda: dit(x, t, **cond), 5)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    from t2mbench.bench.corpus import build_corpus

    out = tmp_path_factory.mktemp("bench_sweeps") / "corpus"
    build_corpus(out, 4, 5.0, 1, split="test", progress=False)
    return out


def test_timing_harness_overhead_per_step(benchmark, model_step):
    n = 20_000
    info = {"i": 3, "x": None, "sigma": 0.5, "sigma_next": 0.4, "batch": 0}
    bar = SweepProgress(1, 0, enabled=False)

    def harness_steps():  # what the harness and the sweep add to each step of a sweep cell
        clock = Clock("cpu")
        for _ in range(n):
            clock.step(info)
            bar.stage("generating", {"step": 4, "steps": 10, "batch": 1, "batches": 1})
            pause_point("generating")
        clock.read()

    benchmark.pedantic(harness_steps, rounds=3, warmup_rounds=1)
    per_step = best_of(harness_steps, 3) / n
    clock = Clock("cpu")
    per_mark = best_of(lambda: [clock.mark("denoising") for _ in range(n)], 3) / n
    per_step += 4 * per_mark / 10  # 4 stage marks per batch, amortised over a 10-step cell
    ratio = per_step / model_step
    benchmark.extra_info.update({"harness_per_step_s": per_step, "tiny_model_step_s": model_step, "ratio": ratio})
    print(f"\nharness + sweep per step {per_step * 1e6:.2f} us = {100 * ratio:.4f}% of a tiny-model step "
          f"({model_step * 1e3:.1f} ms)")  # fmt: skip
    assert ratio < 0.01


def _cell_costs(out, cell: Cell) -> tuple[float, float]:
    folder = cell_dir(out, cell)
    gen = read_json(folder / "generation.json")["timings_seconds"]["total"]
    scoring = read_json(folder / "scores" / "summary.json")["timing"]["seconds"]
    return gen, scoring


def test_sweep_overhead_per_cell(benchmark, prompts, tmp_path):
    scoring = Scoring(str(prompts), METRICS)
    seeds = iter(range(100, 200))  # a new cell (new seed) each round, so each runs from scratch
    measured = []

    def one_cell():
        cell = Cell("tiny", "ddim", 10, 3.0, next(seeds), 4, 5.0, batch_size=4)
        out = tmp_path / cell.key
        t0 = time.perf_counter()
        run_sweep([cell], scoring, out, progress=True)  # the bar on, as a user sees it (stderr)
        wall = time.perf_counter() - t0
        gen, score_s = _cell_costs(out, cell)
        measured.append((wall, gen, score_s))

    one_cell()  # warm-up: loads the model and the evaluator (a sweep loads them once per process)
    measured.clear()
    benchmark.pedantic(one_cell, rounds=3, iterations=1)
    if not measured:
        one_cell()
    fractions = [(w - g - s) / w for w, g, s in measured]
    best = min(fractions)
    wall, gen, score_s = measured[fractions.index(best)]
    benchmark.extra_info.update({"wall_s": wall, "generate_s": gen, "score_s": score_s, "overhead_fraction": best,
                                 "overhead_fractions": fractions})  # fmt: skip
    sweep = wall - gen - score_s
    print(f"\ncell wall {wall:.2f} s = generate {gen:.2f} s + score {score_s:.2f} s + sweep {sweep:.3f} s "
          f"({100 * best:.2f}%); all rounds: {', '.join(f'{100 * f:.2f}%' for f in fractions)}")  # fmt: skip
    assert best < 0.02


def test_ray_against_local_on_four_cells(benchmark, prompts, tmp_path):
    ray = pytest.importorskip("ray")
    scoring = Scoring(str(prompts), METRICS)
    cells = grid("tiny", ["ddim", "euler"], [5, 10], cfg=3.0, seed=7, clips=4, seconds=5.0, batch_size=4)
    report = {}

    def both():
        run = len(report)
        t0 = time.perf_counter()
        run_sweep(cells, scoring, tmp_path / f"local{run}", progress=False)
        local = time.perf_counter() - t0
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the local executor with the Ray workers' thread count, for a like-for-like ratio
        try:
            t0 = time.perf_counter()
            run_sweep(cells, scoring, tmp_path / f"local1t{run}", progress=False)
            local_1t = time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        init = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            run_sweep(cells, scoring, tmp_path / f"ray{run}", executor="ray", progress=False,
                      executor_options={"address": "auto", "threads": 1, "cpus_per_cell": 1})  # fmt: skip
            on_ray = time.perf_counter() - t0
        finally:
            ray.shutdown()
        compute_local = sum(sum(_cell_costs(tmp_path / f"local{run}", c)) for c in cells)
        compute_ray = sum(sum(_cell_costs(tmp_path / f"ray{run}", c)) for c in cells)
        report[run] = {"local_s": local, "local_1_thread_s": local_1t, "ray_init_s": init, "ray_sweep_s": on_ray,
                       "ratio_ray_over_local": (init + on_ray) / local,
                       "ratio_ray_over_local_1_thread": (init + on_ray) / local_1t,
                       "local_generate_score_s": compute_local,
                       "local_1_thread_generate_score_s": sum(sum(_cell_costs(tmp_path / f"local1t{run}", c))
                                                              for c in cells),
                       "ray_generate_score_s_summed_over_workers": compute_ray,
                       "ray_other_s": on_ray - compute_ray / 2}  # fmt: skip

    benchmark.pedantic(both, rounds=1, iterations=1)
    r = report[0]
    benchmark.extra_info.update(r)
    print("\n" + "\n".join(f"{k}: {v:.3f}" for k, v in r.items()))
