"""The main job: reproduce the sampler × step-count table on the bundled tiny reference model and
the benchmark corpus, offline, and print it next to the published DDIM-paper table.

1. Build the corpus subset: ``clips`` test-split clips (pieces the shipped models never saw).
2. Load the shipped tiny model (VAE + DiT, 16 kHz mono) and the shipped evaluator.
3. For each (sampler, steps) cell generate one clip per test caption (same seeds in every cell)
   and score it against the corpus clips with ``fd_evaluator``, ``kl_evaluator`` and
   ``clap_evaluator``, with bootstrap CIs; time every cell.
4. Write ``results.parquet`` / ``results.csv`` (every cell's rows in the result schema), ``table.md``,
   ``sweep.png`` and ``provenance.json`` into ``out``, and return the printed report.

Every stage resumes from its folder: a killed demo continues where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from t2mbench.bench.cells import Scoring, cell_dir
from t2mbench.bench.corpus import build_corpus
from t2mbench.bench.generation import RUN_FILE
from t2mbench.bench.plots import pyplot, save_figure
from t2mbench.bench.sweep import grid, run_sweep
from t2mbench.bench.tables import cell_values, few_step_verdict, markdown, published_grid, sweep_grid, time_grid
from t2mbench.core import provenance
from t2mbench.core.files import atomic_path, read_json
from t2mbench.reference_models.generate import default_cfg_scale

MODEL = "tiny"
METRICS = ("fd_evaluator", "kl_evaluator", "clap_evaluator")
LOWER_IS_BETTER = {"fd_evaluator": True, "kl_evaluator": True, "clap_evaluator": False}


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs; the defaults are the README's main job (under 10 minutes here)."""

    clips: int = 16
    seconds: float = 10.0
    seed: int = 1
    samplers: tuple[str, ...] = ("ddpm", "ddim", "euler")
    steps: tuple[int, ...] = (10, 50)
    cfg_scale: float = default_cfg_scale(MODEL)
    batch_size: int = 16


def run_demo(out: str | Path, settings: DemoSettings = DemoSettings(), *, progress: bool = True) -> str:
    """Run the main job into ``out``; returns the report it also writes to ``out/table.md``."""
    out = Path(out)
    t0 = time.perf_counter()
    cells = grid(MODEL, settings.samplers, settings.steps, cfg=settings.cfg_scale, seed=settings.seed,
                 clips=settings.clips, seconds=settings.seconds, batch_size=settings.batch_size)  # fmt: skip
    build_corpus(out / "corpus", settings.clips, settings.seconds, settings.seed, split="test", progress=progress)
    t_corpus = time.perf_counter() - t0
    scoring = Scoring(prompts=str(out / "corpus"), metrics=METRICS)
    table = run_sweep(cells, scoring, out, progress=progress)
    plot_sweep(table, out / "sweep.png")
    report = render_report(table, settings, corpus_seconds=t_corpus, total_seconds=time.perf_counter() - t0)
    with atomic_path(out / "table.md") as tmp:
        tmp.write_text(report + "\n", encoding="utf-8")
    weights = {MODEL: read_json(cell_dir(out, cells[0]) / RUN_FILE)["weights"].get("sha256", "")}
    provenance.write(
        out,
        provenance.collect(
            seeds={"corpus": settings.seed, "generation": settings.seed},
            inputs={"corpus": out / "corpus" / "manifest.jsonl"},
            weights=weights, extra={"command": "demo", "settings": settings.__dict__},
        ),
    )
    return report


def render_report(table: pd.DataFrame, settings: DemoSettings, *, corpus_seconds: float, total_seconds: float) -> str:
    """The printed tables: each metric's sampler × steps grid with CIs, time per clip, the
    published DDIM-paper grid and the few-step finding checked on ours."""
    parts = [
        f"# Sampler x steps on the tiny model ({settings.clips} test-split clips of {settings.seconds:g} s, "
        f"CFG {settings.cfg_scale:g}, seed {settings.seed})",
        "",
    ]
    for metric in METRICS:
        arrow = "lower is better" if LOWER_IS_BETTER[metric] else "higher is better"
        parts += [f"## {metric} ({arrow}; bootstrap 95% CI)", "", markdown(sweep_grid(table, metric)), ""]
    parts += ["## generation time per clip (CPU) and NFE", "", markdown(time_grid(table)), ""]
    parts += ["## published: Song et al. 2021 (DDIM), Table 1, FID on images", ""]
    for dataset in ("CIFAR10 32x32", "CelebA 64x64"):
        parts += [markdown(published_grid(dataset, [10, 20, 50, 100, 1000]), floatfmt=".2f"), ""]
    few, many = min(settings.steps), max(settings.steps)
    verdict = few_step_verdict(table, "fd_evaluator", few, many)
    if verdict["checked"]:
        parts.append(
            "Finding to check (DDIM far better than DDPM at few steps, DDPM catching up with more): "
            f"on fd_evaluator, DDIM better at {few} steps: {verdict['ddim_better_at_few_steps']} "
            f"(DDPM − DDIM = {verdict['gap_few']:.3g}); gap smaller at {many} steps: "
            f"{verdict['gap_shrinks_with_steps']} ({verdict['gap_many']:.3g}). "
            + (f"The two cells' CIs at {few} steps are disjoint." if verdict["resolved_at_few_steps"] else
               f"The two cells' CIs at {few} steps overlap: on {settings.clips} clips the gap is within the noise.")
        )
    parts.append(f"\nCorpus subset built in {corpus_seconds:.0f} s; the whole job took {total_seconds:.0f} s.")
    return "\n".join(parts)


def plot_sweep(table: pd.DataFrame, png: Path, metrics: Sequence[str] = METRICS) -> Path:
    """One panel per metric: value against steps (log x), one line per sampler, the CI as a vertical bar from
    ``ci_low`` to ``ci_high`` (an FD interval is for the population value and may lie below the plug-in value)."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        rows = cell_values(table, metric)
        for sampler, part in rows.groupby("sampler"):
            part = part.sort_values("steps")
            (line,) = ax.plot(part["steps"], part["value"], marker="o", label=sampler)
            ax.vlines(part["steps"], part["ci_low"], part["ci_high"], color=line.get_color(), alpha=0.6)
        ax.set_xscale("log")
        ax.set_xticks(sorted(rows["steps"].unique()), [str(s) for s in sorted(rows["steps"].unique())])
        ax.set_xlabel("steps")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    return save_figure(fig, png)


__all__ = ["DemoSettings", "plot_sweep", "render_report", "run_demo"]
