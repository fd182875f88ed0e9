"""The main job: the DDIM paper's Table 1 reproduced like for like on the bundled tiny model and the
benchmark corpus, offline, and printed next to the published table.

1. Build the corpus subset: ``clips`` test-split clips (pieces the shipped models never saw).
2. For each row (η ∈ {0, 0.2, 0.5, 1} with ``ddim``; σ̂, DDPM's larger variance, with ``ddpm``
   ``variance=fixed_large``) and each S ∈ {10, 20, 50} (``--steps 10,20,50,100`` adds S = 100),
   generate one clip per test caption (same seeds in every cell) and score it twice: ``fd_evaluator``
   on the audio against the test clips, ``fd_latent`` in the DiT's latent space against the encoded
   test clips (bootstrap CIs).
3. Check the paper's three findings on both tables and say which table resolved each.
4. Write ``results.parquet`` / ``results.csv`` (every cell's rows in the result schema, with their
   sampler options), ``table.md``, ``sweep.png`` and ``provenance.json`` into ``out``; return the report.

Sized to finish in about 10 minutes on a 2-core CPU: 16 clips of 2 s (see ``docs/reproducing_ddim.md``
for the measured time). ``t2mbench reproduce ddim --full`` adds S = 1000. Every stage resumes from its folder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from t2mbench.bench.cells import cell_dir
from t2mbench.bench.generation import RUN_FILE
from t2mbench.bench.plots import pyplot, save_figure
from t2mbench.bench.reproduce import ddim
from t2mbench.bench.reproduce.run import ddim_tables
from t2mbench.bench.reproduce.spec import Reproduced, load_spec, render
from t2mbench.core import provenance
from t2mbench.core.files import atomic_path, read_json
from t2mbench.reference_models.generate import default_cfg_scale

MODEL = ddim.MODEL
METRICS = (ddim.LATENT_METRIC, ddim.AUDIO_METRIC)
# S = 100 (900 more DiT steps per clip over the five rows) does not fit 10 minutes on 2 cores: measured cost
# ~1.6 CPU-seconds per step for 16 clips of 2 s with CFG (docs/reproducing_ddim.md); `reproduce ddim` runs it.
DEMO_STEPS = (10, 20, 50)


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs; the defaults are the README's main job (about 10 minutes on 2 CPU cores)."""

    clips: int = 16
    seconds: float = 2.0
    seed: int = 1
    rows: tuple[ddim.Row, ...] = field(default_factory=lambda: tuple(ddim.ROWS[k] for k in ddim.PAPER_ROWS))
    steps: tuple[int, ...] = DEMO_STEPS
    cfg_scale: float = default_cfg_scale(MODEL)
    batch_size: int = 16

    def ddim(self) -> ddim.DdimSettings:
        return ddim.DdimSettings(self.clips, self.seconds, self.seed, self.rows, self.steps, self.cfg_scale,
                                 self.batch_size)  # fmt: skip


def run_demo(out: str | Path, settings: DemoSettings = DemoSettings(), *, progress: bool = True) -> str:
    """Run the main job into ``out``; returns the report it also writes to ``out/table.md``."""
    out = Path(out)
    t0 = time.perf_counter()
    run = ddim.run_ddim(out, settings.ddim(), progress=progress)
    plot_sweep(run.table, settings.rows, out / "sweep.png")
    report = render_report(ddim_tables(run, settings.rows), total_seconds=time.perf_counter() - t0)
    with atomic_path(out / "table.md") as tmp:
        tmp.write_text(report + "\n", encoding="utf-8")
    first = settings.ddim().cells()[0][1]
    weights = {MODEL: read_json(cell_dir(out, first) / RUN_FILE)["weights"].get("sha256", "")}
    provenance.write(out, provenance.collect(
        seeds={"corpus": settings.seed, "generation": settings.seed},
        inputs={"corpus": out / "corpus" / "manifest.jsonl"},
        weights=weights, extra={"command": "demo", "settings": settings.ddim().to_dict()},
    ))  # fmt: skip
    return report


def render_report(tables: Sequence[Reproduced], *, total_seconds: float) -> str:
    """The published DDIM Table 1 and the reproduced tables (latent FD with the verdicts, audio FD, time)."""
    report = render(load_spec("ddim"), tables, "markdown", ran=list(_ran()))
    return report + f"\n\nThe whole job took {total_seconds:.0f} s. S = 1000: `t2mbench reproduce ddim --full`."


def _ran() -> tuple[str, ...]:
    return ("tiny, rows eta in {0, 0.2, 0.5, 1}, sigma-hat; S in {10, 20, 50, 100}; fd_evaluator and fd_latent",)



def plot_sweep(table: pd.DataFrame, rows: Sequence[ddim.Row], png: Path, metrics: Sequence[str] = METRICS) -> Path:
    """One panel per metric: value against steps (log x), one line per row, CI as error bars."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        cells = ddim.cell_frame(table, metric, rows)
        for label, part in cells.groupby("row", sort=False):
            part = part.sort_values("steps")
            # the percentile FD interval can sit wholly above the estimate (its bias on few clips): clip at 0
            err = [(part["value"] - part["ci_low"]).clip(lower=0), (part["ci_high"] - part["value"]).clip(lower=0)]
            ax.errorbar(part["steps"], part["value"], yerr=err, marker="o", capsize=3, label=label)
        steps = sorted(cells["steps"].unique())
        ax.set_xscale("log")
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.set_xlabel("steps S")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, png)


__all__ = ["DemoSettings", "plot_sweep", "render_report", "run_demo"]
