"""Reproduced-next-to-published tables: the published rows t2mbench holds (values as printed in
the papers) and the rendering of a sampler × steps sweep beside them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

# Source: Jiaming Song, Chenlin Meng and Stefano Ermon, "Denoising Diffusion Implicit Models",
# ICLR 2021 (arXiv:2010.02502), Table 1: FID (lower is better) by number of sampling steps.
# "DDIM (eta=0)" is the paper's row eta = 0.0; "DDPM" is its row sigma-hat, sigma_t =
# sqrt(1 - abar_t / abar_{t-1}) with abar the cumulative alpha (DDPM's larger variance beta_t).
# Values as printed.
DDIM_TABLE1: dict[str, dict[str, dict[int, float]]] = {
    "CIFAR10 32x32": {
        "DDIM (eta=0)": {10: 13.36, 20: 6.84, 50: 4.67, 100: 4.16, 1000: 4.04},
        "DDPM": {10: 367.43, 20: 133.37, 50: 32.72, 100: 9.99, 1000: 3.17},
    },
    "CelebA 64x64": {
        "DDIM (eta=0)": {10: 17.33, 20: 13.73, 50: 9.17, 100: 6.53, 1000: 3.51},
        "DDPM": {10: 299.71, 20: 183.83, 50: 71.71, 100: 45.20, 1000: 3.26},
    },
}


def markdown(frame: pd.DataFrame, *, floatfmt: str = ".3g") -> str:
    """A DataFrame as a GitHub Markdown table (index as the first column)."""
    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for idx, row in frame.iterrows():
        cells = [_fmt(v, floatfmt) for v in row]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


def _fmt(v: object, floatfmt: str) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else format(v, floatfmt)
    return str(v)


def cell_values(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per cell of a result table: ``metric``'s aggregate (or generation) row."""
    return table[(table["metric"] == metric) & table["kind"].isin(["aggregate", "generation"])]


def sweep_grid(table: pd.DataFrame, metric: str, *, with_ci: bool = True) -> pd.DataFrame:
    """``sampler × steps`` cells of ``metric``: ``value [ci_low, ci_high]`` strings."""
    grid: dict[str, dict[int, str]] = {}
    for r in cell_values(table, metric).itertuples():
        text = f"{r.value:.3g}"
        if with_ci and not pd.isna(r.ci_low):
            text += f" [{r.ci_low:.3g}, {r.ci_high:.3g}]"
        grid.setdefault(r.sampler, {})[int(r.steps)] = text
    out = pd.DataFrame(grid).T.sort_index(axis=1)
    out.index.name = "sampler"
    return out


def time_grid(table: pd.DataFrame) -> pd.DataFrame:
    """``sampler × steps`` cells of generation seconds per clip and NFE (the generation rows)."""
    seconds = cell_values(table, "seconds_per_clip").set_index(["sampler", "steps"])["value"]
    nfe = cell_values(table, "nfe").set_index(["sampler", "steps"])["value"]
    grid: dict[str, dict[int, str]] = {}
    for (sampler, steps), s in seconds.items():
        grid.setdefault(sampler, {})[int(steps)] = f"{s:.2f} s ({int(nfe[(sampler, steps)])} NFE)"
    out = pd.DataFrame(grid).T.sort_index(axis=1)
    out.index.name = "sampler"
    return out


def published_grid(dataset: str, steps: Sequence[int]) -> pd.DataFrame:
    """The DDIM paper's Table 1 rows for ``dataset`` at ``steps`` (missing steps are NaN)."""
    rows = DDIM_TABLE1[dataset]
    out = pd.DataFrame({name: {n: vals.get(n, math.nan) for n in steps} for name, vals in rows.items()}).T
    out.index.name = f"published FID, {dataset}"
    return out


def few_step_verdict(table: pd.DataFrame, metric: str, few: int, many: int) -> Mapping[str, object]:
    """The DDIM paper's finding checked on our grid: DDIM beats DDPM at ``few`` steps, and
    DDPM's gap to DDIM shrinks by ``many`` steps (lower is better for ``metric``).
    ``resolved_at_few_steps``: the two cells' CIs at ``few`` steps are disjoint, so the sign of
    the gap is not within the bootstrap noise of the clip set."""
    cells = cell_values(table, metric).set_index(["sampler", "steps"])
    need = [("ddim", few), ("ddpm", few), ("ddim", many), ("ddpm", many)]
    if not all(k in cells.index for k in need):
        return {"checked": False}
    v = cells["value"]
    gap_few, gap_many = v[("ddpm", few)] - v[("ddim", few)], v[("ddpm", many)] - v[("ddim", many)]
    ddim, ddpm = cells.loc[("ddim", few)], cells.loc[("ddpm", few)]
    return {
        "checked": True,
        "ddim_better_at_few_steps": bool(gap_few > 0),
        "gap_shrinks_with_steps": bool(gap_many < gap_few),
        "gap_few": float(gap_few),
        "gap_many": float(gap_many),
        "resolved_at_few_steps": bool(ddim["ci_high"] < ddpm["ci_low"] or ddpm["ci_high"] < ddim["ci_low"]),
    }
