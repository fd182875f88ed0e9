"""Choose the classifier-free guidance scale without touching the test split.

For every k-th clip of the corpus's train split (``clips`` of them), the trained model generates
one clip from its caption (its ``seconds_total``, the closed loop's sampler, steps and seeds) at
each scale; each set is scored with ``fd_evaluator`` and ``clap_evaluator`` against those same
train clips. The scale with the lowest FD is the one :mod:`t2mbench.bench.evidence.closed_loop` runs at
(FD, unlike the CLAP score, also pays for the diversity that strong guidance removes).

Command: ``t2mbench evidence guidance-sweep --corpus CORPUS --out DIR --cfg 2 3 5 7``
writes ``guidance_sweep.json`` / ``.md`` and ``guidance_sweep.png``; each scale is a cell of the
cell runner (``DIR/cells/<key>``), reused when the command is run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.evidence.closed_loop import LoopSettings, clip_set, dit_cell, generated_and_scored
from t2mbench.bench.plots import pyplot, save_figure
from t2mbench.bench.tables import markdown
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import atomic_path, write_json
from t2mbench.core.manifest import ClipRecord

METRICS = ("fd_evaluator", "clap_evaluator")


def train_subset(corpus: str | Path, clips: int) -> list[ClipRecord]:
    """Every k-th clip of the train split (k = train clips // ``clips``), the first ``clips``."""
    train = split_clips(corpus, "train", need_captions=True)
    if not 2 <= clips <= len(train):
        raise ConfigError(f"clips must be in [2, {len(train)}] (the train split's size), got {clips}")
    return train[:: len(train) // clips][:clips]


def guidance_sweep(corpus: str | Path, out: str | Path, scales: Sequence[float], *, clips: int = 108,
                   settings: LoopSettings | None = None, model: str = "tiny",
                   progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Score ``model`` at each CFG scale in ``scales`` on a train subset; returns ``{"rows":
    [{"cfg_scale", "fd_evaluator", "clap_evaluator"}], "best_cfg_scale", "settings", "clips"}``
    (also written as JSON). ``settings`` default to the closed loop's (its CFG scale is replaced)."""
    settings = settings or LoopSettings()
    if not scales:
        raise ConfigError("give at least one CFG scale")
    out = Path(out)
    subset = train_subset(corpus, clips)
    reference = clip_set(out / "sets" / "reference", subset)
    rows = []
    for scale in scales:
        cell = dit_cell(replace(settings, cfg_scale=scale), subset, model)
        _, summary, _ = generated_and_scored(cell, reference, METRICS, out, progress)
        rows.append({"cfg_scale": scale, **{m: summary["metrics"][m]["value"] for m in METRICS}})
    best = min(rows, key=lambda r: r["fd_evaluator"])["cfg_scale"]
    result = {"rows": rows, "best_cfg_scale": best, "settings": settings.__dict__, "clips": len(subset),
              "corpus": str(corpus), "model": model}  # fmt: skip
    write_json(out / "guidance_sweep.json", result)
    with atomic_path(out / "guidance_sweep.md") as tmp:
        tmp.write_text(render(result) + "\n", encoding="utf-8")
    plot(result, out / "guidance_sweep.png")
    return result


def render(result: dict[str, Any]) -> str:
    """The sweep as a markdown table, then the chosen scale."""
    table = pd.DataFrame(result["rows"]).set_index("cfg_scale")
    s = result["settings"]
    return "\n".join([
        f"{result['clips']} train clips, {s['sampler']} {s['steps']} steps, seeds {s['seed']}+i:",
        "",
        markdown(table.round(4)),
        "",
        f"lowest fd_evaluator at CFG {result['best_cfg_scale']:g}",
    ])  # fmt: skip


def plot(result: dict[str, Any], png: Path) -> Path:
    """fd_evaluator and clap_evaluator against the CFG scale."""
    plt = pyplot()
    table = pd.DataFrame(result["rows"]).sort_values("cfg_scale")
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, metric in ((a, "fd_evaluator"), (b, "clap_evaluator")):
        ax.plot(table["cfg_scale"], table[metric], marker="o")
        ax.set_xlabel("CFG scale")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, png)
