"""``t2mbench reproduce``: the shipped spec files, the DDIM table's grids and verdicts, and the renderers,
all on a stored small result store (no model runs)."""

import json

from t2mbench.bench.reproduce import ddim
from t2mbench.bench.reproduce.run import ddim_tables
from t2mbench.bench.reproduce.spec import load_spec, published_frame, render, spec_ids
from t2mbench.cli import main
from t2mbench.core import results

ETA0, SIG, ETA1 = "eta0", "sigma_hat", "eta1"  # row keys


def _store(tmp_path, latent, audio, *, paired=None):
    """A result store (written and read back in the result schema) with fd_latent / fd_evaluator aggregate rows
    ``{(row, steps): (value, half_width)}``, optional paired rows and the generation rows of every cell."""
    rows = []
    for metric, cells in ((ddim.LATENT_METRIC, latent), (ddim.AUDIO_METRIC, audio),
                          (f"{ddim.LATENT_METRIC}.minus_baseline", paired or {})):  # fmt: skip
        for (key, steps), (v, hw) in cells.items():
            row = ddim.ROWS[key]
            base = {"run_id": f"{row.key}-{steps}", "cell": f"{row.key}-{steps}", "model": "tiny",
                    "sampler": row.sampler, "sampler_options": row.options_json, "steps": steps}  # fmt: skip
            rows.append({**base, "metric": metric, "kind": "aggregate", "value": v, "ci_low": v - hw,
                         "ci_high": v + hw})  # fmt: skip
            if metric == ddim.LATENT_METRIC:
                rows += [{**base, "metric": "nfe", "kind": "generation", "value": steps},
                         {**base, "metric": "seconds_per_clip", "kind": "generation", "value": steps / 20}]  # fmt: skip
    results.write(results.frame(rows), tmp_path, "results")
    return results.read(tmp_path / "results.parquet")


LATENT = {(ETA0, 10): (10.0, 0.5), (ETA1, 10): (12.0, 0.5), (SIG, 10): (30.0, 2.0),
          (ETA0, 20): (8.0, 0.5), (ETA1, 20): (9.5, 0.5), (SIG, 20): (15.0, 1.0),
          (ETA0, 100): (6.0, 0.5), (ETA1, 100): (6.2, 0.5), (SIG, 100): (6.5, 0.5)}  # fmt: skip
AUDIO = {k: (100.0 + v, 20.0) for k, (v, _) in LATENT.items()}  # the audio table: every interval overlaps


def test_five_tables_listed(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["ddim", "musecontrollite", "stable-audio", "stable-audio-2",
                                                 "stable-audio-open"]  # fmt: skip
    assert out[1].endswith("rows: here, weights and GPU")


def test_specs_hold_every_published_value_with_paper_and_table():
    assert spec_ids() == ["ddim", "musecontrollite", "stable-audio", "stable-audio-2", "stable-audio-open"]
    for table_id in spec_ids():
        spec = load_spec(table_id)
        assert spec["paper"]["arxiv"] and spec["paper"]["venue"]
        for table in spec["tables"]:
            assert table["number"] and table["conditions"] and table["published"]
            assert all(set(table["columns"]) | set(table["row_fields"]) == set(r) for r in table["published"])
        assert all(e["command"] for e in spec["here"])
    t1 = published_frame(load_spec("ddim")["tables"][0])
    assert t1.loc["CIFAR10 32x32 / σ̂ (DDPM, σ² = β)"].tolist() == [367.43, 133.37, 32.72, 9.99, 3.17]
    assert t1.loc["CIFAR10 32x32 / η = 1.0"].tolist() == [41.07, 18.36, 8.01, 5.78, 4.73]
    assert t1.loc["CelebA 64x64 / η = 0.0 (DDIM)", "1000"] == 3.51
    sao = {t["key"]: published_frame(t) for t in load_spec("stable-audio-open")["tables"]}
    assert sao["autoencoder"].loc["Stable Audio Open", "SI-SDR"] == 6.28
    assert sao["system"].loc["Stable Audio Open", "FD_openl3"] == 96.51


def test_grid_reads_rows_by_sampler_options(tmp_path):
    table = _store(tmp_path, LATENT, AUDIO)
    g = ddim.grid(table, ddim.LATENT_METRIC, _rows(ETA0, ETA1, SIG))
    assert list(g.index) == ["η = 0.0 (DDIM)", "η = 1.0", "σ̂ (DDPM, σ² = β)"]
    assert list(g.columns) == [10, 20, 100]
    assert g.loc["σ̂ (DDPM, σ² = β)", 10] == "30 [28, 32]"
    # a ddpm cell with the default variance is not the σ̂ row
    other = results.frame([{"run_id": "x", "sampler": "ddpm", "sampler_options": "{}", "steps": 10,
                            "metric": ddim.LATENT_METRIC, "kind": "aggregate", "value": 1.0}])  # fmt: skip
    sig = ddim.ROWS[SIG]
    assert ddim.grid(results.concat([table, other]), ddim.LATENT_METRIC, (sig,)).loc[sig.label, 10] == "30 [28, 32]"


def test_verdicts_say_which_table_resolved_each_finding(tmp_path):
    paired = {(SIG, 10): (20.0, 3.0), (SIG, 20): (7.0, 2.0)}
    v1, v2, v3 = ddim.verdicts(_store(tmp_path, LATENT, AUDIO, paired=paired))
    assert (v1.holds, v1.resolved, v1.table) == (True, True, "fd_latent")
    assert "S=10: σ̂ 30 [28, 32] vs η=0 10 [9.5, 10.5] (ratio 3.00)" in v1.evidence
    assert "Paired (same prompts and initial noise) σ̂ − η=0 at S=10: +20 [+17, +23] (excludes 0)." in v1.evidence
    assert "On fd_evaluator: holds, not resolved" in v1.evidence
    assert (v2.holds, v2.resolved, v2.table) == (True, True, "fd_latent")
    assert "Monotone in η at small S: True" in v2.evidence
    assert v3.holds is None and "S = 1000 not run (largest S here is 100" in v3.evidence
    assert "σ̂ − η=0: +20 at S=10 → +0.5 at S=100" in v3.evidence


def test_overlapping_intervals_are_not_resolved_and_s1000_catch_up(tmp_path):
    latent = dict(LATENT) | {(SIG, 10): (11.0, 2.0), (ETA0, 1000): (5.0, 0.5), (ETA1, 1000): (5.1, 0.5),
                             (SIG, 1000): (4.9, 0.5)}  # fmt: skip
    v1, _, v3 = ddim.verdicts(_store(tmp_path, latent, AUDIO))
    assert (v1.holds, v1.resolved) == (True, False)
    assert v1.text().startswith("**1. σ̂ is far worse than η = 0 at S = 10 and 20**: holds on fd_latent "
                                "(not resolved: intervals overlap).")  # fmt: skip
    assert (v3.holds, v3.resolved) == (True, True)
    assert "σ̂ − η=0: +1 at S=10 → -0.1 at S=1000" in v3.evidence


def test_sigma_hat_better_by_a_paired_interval_is_resolved_against_the_finding(tmp_path):
    """The 128-clip measurement's shape: marginal intervals overlap, the paired σ̂ − η = 0 interval is below 0."""
    latent = dict(LATENT) | {(SIG, 10): (2.54, 0.6), (ETA0, 10): (2.98, 0.7), (SIG, 20): (7.0, 2.0)}
    v1 = ddim.verdicts(_store(tmp_path, latent, AUDIO, paired={(SIG, 10): (-0.446, 0.3)}))[0]
    assert (v1.holds, v1.resolved, v1.table) == (False, True, "fd_latent")
    assert v1.text().startswith("**1. σ̂ is far worse than η = 0 at S = 10 and 20**: does not hold on fd_latent "
                                "(resolved: the paired σ̂ − η = 0 interval at S = 10 excludes 0; the marginal "
                                "intervals overlap).")  # fmt: skip
    assert "σ̂ − η=0 at S=10: -0.446 [-0.746, -0.146] (excludes 0)." in v1.evidence


def _resolution(tmp_path, eta0, sig, paired):
    folder = tmp_path / "finding1"
    folder.mkdir()
    return ddim.Resolution(512, _store(folder, {(ETA0, 10): eta0, (SIG, 10): sig}, {}, paired={(SIG, 10): paired}))


def test_finding_one_is_resolved_on_the_resolution_cells_when_the_table_s_intervals_overlap(tmp_path):
    """The 512-clip measurement's shape: the table's S = 10 intervals overlap, the resolution's are disjoint."""
    latent = dict(LATENT) | {(SIG, 10): (11.0, 2.0)}
    res = _resolution(tmp_path, (1.19, 0.25), (1.94, 0.4), (0.745, 0.25))
    v1 = ddim.verdicts(_store(tmp_path, latent, AUDIO), res)[0]
    assert (v1.holds, v1.resolved, v1.table) == (True, True, "fd_latent (512 clips)")
    assert v1.text().startswith(
        "**1. σ̂ is far worse than η = 0 at S = 10 and 20**: holds on fd_latent (512 clips) (resolved: the σ̂ and "
        "η = 0 intervals at S = 10 on 512 clips are disjoint). On 512 test clips at S=10 (η = 0 and σ̂ only, scored "
        "against those clips): σ̂ 1.94 [1.54, 2.34] vs η=0 1.19 [0.94, 1.44]; paired σ̂ − η=0 +0.745 [+0.495, "
        "+0.995]. The table's cells: S=10: σ̂ 11 [9, 13] vs η=0 10 [9.5, 10.5] (ratio 1.10)"
    )  # fmt: skip
    # the audio table has no resolution cells: it is judged on its own cells
    assert "On fd_evaluator: holds, not resolved (S=10: σ̂ 130 [110, 150]" in v1.evidence


def test_overlapping_resolution_intervals_leave_finding_one_to_the_table(tmp_path):
    latent = dict(LATENT) | {(SIG, 10): (11.0, 2.0)}
    res = _resolution(tmp_path, (1.19, 0.4), (1.5, 0.4), (0.31, 0.2))
    v1 = ddim.verdicts(_store(tmp_path, latent, AUDIO), res)[0]
    assert (v1.holds, v1.resolved, v1.table) == (True, False, "fd_latent")
    assert "On 512 test clips at S=10 (η = 0 and σ̂ only, scored against those clips): σ̂ 1.5 [1.1, 1.9]" in v1.evidence


def _rows(*keys):
    return tuple(ddim.ROWS[k] for k in keys)


def _run(table):
    settings = ddim.DdimSettings(clips=16, seconds=2.0, rows=_rows(ETA0, ETA1, SIG), steps=(10, 20, 100))
    return ddim.DdimRun(table, settings, 0.07, {"corpus": 3.0, "cells": 300.0, "fd_latent": 5.0, "resolution": 90.0,
                                                "total": 398.0})  # fmt: skip


def test_markdown_latex_and_csv_render_reproduced_next_to_published(tmp_path):
    tables = ddim_tables(_run(_store(tmp_path, LATENT, AUDIO)), _rows(ETA0, ETA1, SIG))
    spec = load_spec("ddim")
    md = render(spec, tables, "markdown", ran=["tiny, rows eta in {0, 0.2, 0.5, 1}, sigma-hat; S in {10, 20, 50, "
                                               "100}; fd_evaluator and fd_latent"])  # fmt: skip
    assert "| CIFAR10 32x32 / σ̂ (DDPM, σ² = β) | 367.43 | 133.37 | 32.72 | 9.99 | 3.17 |" in md
    assert "| σ̂ (DDPM, σ² = β) | 30 [28, 32] | 15 [14, 16] | 6.5 [6, 7] |" in md
    assert "| σ̂ (DDPM, σ² = β) | 130 [110, 150] | 115 [95, 135] | 106 [86.5, 126] |" in md
    assert "| η = 1.0 | 0.50 s (10 NFE) | 1.00 s (20 NFE) | 5.00 s (100 NFE) |" in md
    assert "fd_latent floor (a second posterior draw of the reference clips): 0.07." in md
    assert "| the same with S = 1000 | here (slow) | t2mbench reproduce ddim --full |" in md
    assert md.index("## published: Table 1") < md.index("## reproduced here: fd_latent")
    tex = render(spec, tables, "latex")
    row = r"CIFAR10 32x32 / $\hat\sigma$ (DDPM, $\sigma$$^2$ = $\beta$)"
    assert row + r" & 367.43 & 133.37 & 32.72 & 9.99 & 3.17 \\" in tex
    assert tex.count(r"\begin{tabular}") == 5  # published, latent, audio, time, not run
    csv = render(spec, tables, "csv").splitlines()
    assert csv[0] == "table,kind,row,column,value"
    assert any(line.endswith(',reproduced,η = 0.0 (DDIM),10,"10 [9.5, 10.5]"') for line in csv)
    assert sum(",published," in line for line in csv) == 50


def test_rows_that_cannot_run_carry_their_command():
    md = render(load_spec("stable-audio-open"), [], "markdown")
    assert ("| sao-1.0 | weights and GPU | t2mbench generate --model sao-1.0 --prompts CORPUS --sampler dpmpp_3m_sde "
            "--steps 100 --cfg 7 --seconds 47") in md  # fmt: skip
    assert "--metrics fd_openl3,kl_passt,clap" in md
    mcl = render(load_spec("musecontrollite"), [], "markdown")
    assert "| sao-1.0 + MuseControlLite (published checkpoint) | weights and GPU | none yet:" in mcl


def test_published_only_and_bad_arguments(capsys):
    assert main(["reproduce", "ddim", "--published-only", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert '"published: Table 1, FID (lower is better)",published,"CelebA 64x64 / σ̂ (DDPM, σ² = β)",1000,3.26' in out
    assert main(["reproduce", "ddim", "--rows", "eta9"]) == 2
    assert "unknown DDIM-table rows eta9; known: eta0, eta0.2" in capsys.readouterr().err
    assert main(["reproduce", "ddim", "--extra-sampler", "ddim", "--sampler-option", "eta=2"]) == 2
    assert capsys.readouterr().err.strip() == ("t2mbench reproduce: error: sampler 'ddim': option eta=2 must be a "
                                               "number in [0, 1]")  # fmt: skip


def test_custom_row_records_its_options():
    row = ddim.custom_row("ddpm", {"variance": "fixed_small"})
    paper = {"schedule": "linear", "spacing": "leading"}  # the table's discretisation, unless the row says otherwise
    assert row.options_json == '{"schedule":"linear","spacing":"leading","variance":"fixed_small"}'
    assert row.label == "ddpm variance=fixed_small"
    cells = ddim.DdimSettings(rows=(ddim.ROWS[ETA0], row), steps=(20, 10)).cells()
    assert [(c.sampler, c.steps, dict(c.sampler_options)) for _, c in cells] == [
        ("ddim", 10, {"eta": 0.0, **paper}), ("ddpm", 10, {"variance": "fixed_small", **paper}),
        ("ddim", 20, {"eta": 0.0, **paper}), ("ddpm", 20, {"variance": "fixed_small", **paper})]  # fmt: skip
    assert json.loads(results.canonical_options(cells[1][1].sampler_options)) == {"variance": "fixed_small", **paper}
    cosine = ddim.custom_row("ddim", {"eta": 0.0, "schedule": "cosine"})  # the model's own table, on request
    assert cosine.options == {"eta": 0.0, "schedule": "cosine", "spacing": "leading"}
    assert ddim.custom_row("euler", {}).options == {}  # a sigma-space sampler has no discretisation options
