import json
import subprocess
import sys

import numpy as np
import pytest
from support.result_rows import untimed

from t2mbench.bench.cells import Cell, Scoring, cell_dir, run_cell
from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.sweep import grid, run_sweep
from t2mbench.bench.tables import sweep_grid, time_grid
from t2mbench.core import results
from t2mbench.core.audio import load_audio
from t2mbench.core.errors import ConfigError
from t2mbench.core.manifest import load_clipset, write_manifest
from t2mbench.reference_models import generate, load_model

SECONDS = 1.0


@pytest.fixture(scope="module")
def prompts(rendered_corpus, tmp_path_factory):
    """Two train clips of the rendered corpus as the prompt (and reference) set."""
    folder = tmp_path_factory.mktemp("prompts")
    write_manifest(folder, split_clips(rendered_corpus, "train")[:2])
    return folder


@pytest.fixture(scope="module")
def swept(prompts, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cells = grid("tiny", ["ddim", "euler"], [2, 3], cfg=3.0, seed=5, clips=2, seconds=SECONDS, batch_size=2)
    scoring = Scoring(prompts=str(prompts), metrics=("clap_evaluator",))
    done = []
    table = run_sweep(cells[::3], scoring, out, progress=False, on_cell=lambda c, t: done.append(c))
    return out, cells[::3], scoring, table, done


def test_grid_is_samplers_times_steps_with_shared_fields():
    cells = grid("tiny", ["ddpm", "ddim"], [10, 50], cfg=3.0, seed=1, clips=16, seconds=10.0)
    assert [(c.sampler, c.steps) for c in cells] == [("ddpm", 10), ("ddpm", 50), ("ddim", 10), ("ddim", 50)]
    shared = {(c.model, c.cfg, c.seed, c.clips, c.seconds, c.batch_size) for c in cells}
    assert shared == {("tiny", 3.0, 1, 16, 10.0, 16)}
    with pytest.raises(ConfigError, match="^unknown samplers nope; known: euler, "):
        grid("tiny", ["ddim", "nope"], [10], cfg=3.0, seed=1, clips=1, seconds=1.0)


def test_a_cell_key_is_its_content_and_stable():
    a = Cell("tiny", "ddim", 10, 3, 1, 16, 10.0, {"eta": 0.5})
    assert a == Cell.from_dict(json.loads(json.dumps(a.to_dict())))
    assert a.key == Cell("tiny", "ddim", 10, 3.0, 1, 16, 10, {"eta": 0.5}).key  # 3 == 3.0 in the key
    assert a.key.startswith("ddim-10-") and len(a.key) == len("ddim-10-") + 12
    others = [Cell("tiny", "ddim", 10, 3, 1, 16, 10.0, {"eta": 0.2}), Cell("tiny", "ddim", 10, 3, 2, 16, 10.0),
              Cell("tiny", "ddim", 10, 3, 1, 16, 10.0, {"eta": 0.5}, batch_size=8)]  # fmt: skip
    assert len({a.key, *(c.key for c in others)}) == 4
    # golden: the key before latents-only cells existed (audio cells keep their folders and stored results)
    assert a.key == "ddim-10-1d328798f220"
    assert Cell("tiny", "ddim", 10, 3, 1, 16, 10.0, {"eta": 0.5}, audio=False).key == "ddim-10-3b6abf56532c"
    # the key is the same in another process (no hash randomisation, no object ids)
    code = ("from t2mbench.bench.cells import Cell; "
            "print(Cell('tiny', 'ddim', 10, 3, 1, 16, 10.0, {'eta': 0.5}).key)")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == a.key


@pytest.mark.parametrize(
    "change, message",
    [({"steps": 0}, "cell steps must be an integer >= 1, got 0"), ({"cfg": float("nan")}, "cell cfg must be a finite "
      "number >= 0, got nan"), ({"seconds": -1.0}, "cell seconds must be a finite number > 0, got -1.0")],
)  # fmt: skip
def test_cells_are_validated(change, message):
    good = Cell("tiny", "ddim", 10, 3.0, 1, 16, 10.0).to_dict()
    with pytest.raises(ConfigError, match=f"^{message}$"):
        Cell.from_dict({**good, **change})
    with pytest.raises(ConfigError, match="^unknown cell keys colour; a cell has audio, batch_size, cfg, checkpoint, "):
        Cell.from_dict({**good, "colour": 1})


def test_every_cell_is_the_generation_with_its_settings(swept, prompts):
    out, cells, _, _, done = swept
    assert done == cells
    model = load_model("tiny")
    clips = list(load_clipset(prompts))
    for cell in cells:
        folder = cell_dir(out, cell)
        direct = generate(model, [c.caption for c in clips], sampler=cell.sampler, steps=cell.steps, cfg_scale=3.0,
                          seconds=SECONDS, seed=5, batch_size=2)  # fmt: skip
        for cid, audio in zip([c.id for c in clips], direct.audio):
            written, sr = load_audio(folder / f"{cid}.wav")
            assert sr == 16_000 and np.array_equal(written, audio.numpy())


def test_the_table_is_the_cells_rows_in_the_result_schema(swept):
    out, cells, _, table, _ = swept
    pd_read = results.read(out / "results.parquet")
    assert pd_read.equals(table) and results.read(out / "results.csv").equals(table)
    assert set(table.cell) == {c.key for c in cells}
    gen = table[table.kind == "generation"].set_index(["sampler", "metric"])
    # CFG batches the unconditional branch, so one model call per step (Euler: N, no 2nd order)
    assert gen.loc[("ddim", "nfe"), "value"] == 2 and gen.loc[("euler", "nfe"), "value"] == 3
    assert (gen.xs("seconds_per_clip", level="metric")["value"] > 0).all()
    agg = table[(table.kind == "aggregate") & (table.metric == "clap_evaluator")]
    assert ((agg.ci_low <= agg.value) & (agg.value <= agg.ci_high)).all() and len(agg) == 2
    clips = table[(table.kind == "clip") & (table.metric == "clap_evaluator")]
    assert len(clips) == 4 and set(clips.steps) == {2, 3} and set(clips.cfg) == {3.0} and set(clips.model) == {"tiny"}
    assert sweep_grid(table, "clap_evaluator").loc["euler", 3].startswith(f"{agg.value.iloc[1]:.3g} [")
    assert time_grid(table).loc["ddim", 2].endswith("(2 NFE)")


def test_a_finished_cell_is_read_back_not_redone(swept, monkeypatch):
    out, cells, scoring, table, _ = swept
    import t2mbench.bench.cells as cells_module

    monkeypatch.setattr(cells_module, "generate", lambda *a, **k: pytest.fail("generated again"))
    monkeypatch.setattr(cells_module, "score", lambda *a, **k: pytest.fail("scored again"))
    again = run_sweep(cells, scoring, out, progress=False)
    assert again.equals(table)


def test_a_cell_with_audio_but_no_results_is_only_scored(swept, tmp_path, monkeypatch):
    out, cells, scoring, table, _ = swept
    import shutil

    import t2mbench.bench.cells as cells_module

    shutil.copytree(cell_dir(out, cells[0]), cell_dir(tmp_path, cells[0]))
    for f in ("results.parquet", "results.csv"):
        (cell_dir(tmp_path, cells[0]) / f).unlink()
    monkeypatch.setattr(cells_module, "generate", lambda *a, **k: pytest.fail("generated again"))
    rows = run_cell(cells[0], scoring, tmp_path, progress=False)
    assert rows.equals(table[table.cell == cells[0].key].reset_index(drop=True))


def test_a_folder_scored_another_way_is_refused(swept):
    out, cells, scoring, _, _ = swept
    other = Scoring(prompts=scoring.prompts, metrics=("kl_evaluator",))
    with pytest.raises(ConfigError, match=f"holds cell {cells[0].key} scored another way"):
        run_cell(cells[0], other, out, progress=False)


def test_bad_metric_settings_fail_when_the_run_is_prepared(prompts):
    """The Scoring of a run cannot even be made with a bad setting: no cell can start generating."""
    with pytest.raises(ConfigError, match="^metric 'kl_evaluator': unknown audio_output 'logits'; use one of "):
        Scoring(prompts=str(prompts), metrics=("kl_evaluator",), settings={"kl_evaluator": {"audio_output": "logits"}})
    with pytest.raises(ConfigError, match="^settings given for metrics that are not run: fd_evaluator$"):
        Scoring(prompts=str(prompts), metrics=("kl_evaluator",), settings={"fd_evaluator": {}})


def test_too_few_prompts_is_an_error(prompts, tmp_path):
    cell = Cell("tiny", "ddim", 2, 3.0, 5, 3, SECONDS)
    with pytest.raises(ConfigError, match=f"cell asks for 3 clips; {prompts} has 2 prompts"):
        run_cell(cell, Scoring(prompts=str(prompts), metrics=("clap_evaluator",)), tmp_path, progress=False)


def test_an_executor_plugin_runs_cells_in_other_processes_with_the_same_rows(swept, monkeypatch, tmp_path):
    """The Extending recipe for an executor: one class (tests/support/subprocess_executor.py) and
    one entry point; each cell crosses into a fresh process as JSON and comes back the same."""
    from importlib import metadata

    from t2mbench.bench import executors
    from t2mbench.core import plugins

    _, cells, scoring, table, _ = swept
    ep = metadata.EntryPoint("subprocess", "support.subprocess_executor:SPEC", "t2mbench.executors")
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep] if group == "t2mbench.executors" else [])
    monkeypatch.setattr(executors.REGISTRY, "_cache", None)
    assert set(executors.executors()) == {"local", "ray", "subprocess"}
    other = run_sweep(cells, scoring, tmp_path, executor="subprocess", progress=False)


    assert untimed(other).equals(untimed(table)) and len(untimed(table)) == 8  # 2 cells: aggregate, 2 clips, nfe
    assert (other.metric == "seconds_per_clip").sum() == 2
    with pytest.raises(ConfigError, match="^unknown executor 'slurm'; known: local, ray, subprocess$"):
        run_sweep(cells, scoring, tmp_path, executor="slurm")
    with pytest.raises(ConfigError, match=r"^executor 'local': bad options \(LocalExecutor\(\) takes no arguments\)$"):
        run_sweep(cells, scoring, tmp_path, executor_options={"address": "auto"})


def test_the_same_cell_generated_again_writes_the_same_bytes(swept, tmp_path):
    """Audio files depend only on their content, so a re-run hits the content-keyed caches."""
    import hashlib

    out, cells, scoring, _, _ = swept
    run_cell(cells[0], scoring, tmp_path, progress=False)

    def hashes(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.wav"))}

    first, again = hashes(cell_dir(out, cells[0])), hashes(cell_dir(tmp_path, cells[0]))
    assert len(first) == 2 and first == again


def test_run_cell_reports_each_step_then_scoring_to_the_sweep_bar(prompts, tmp_path):
    from t2mbench.bench.sweep import SweepProgress

    cell = Cell("tiny", "ddim", 2, 3.0, 5, 2, SECONDS, batch_size=1)  # two batches of one clip
    reports, bar = [], SweepProgress(3, 1)
    run_cell(cell, Scoring(prompts=str(prompts), metrics=("clap_evaluator",)), tmp_path, progress=False,
             on_stage=lambda stage, info: (reports.append((stage, dict(info))), bar.stage(stage, info)))  # fmt: skip
    k = cell.key
    steps = [("generating", {"cell": k, "step": s, "steps": 2, "batch": b, "batches": 2})
             for b in (1, 2) for s in (1, 2)]  # fmt: skip
    assert reports == [*steps, ("scoring", {"cell": k}), ("done", {"cell": k})]
    assert bar.current == f"{k} done" and bar.bar.n == 1 and bar.bar.total == 3
    bar.stage(*steps[2])
    assert bar.current == f"{k} generating 1/2 batch 2/2"
    timing = json.loads((cell_dir(tmp_path, cell) / "generation.json").read_text())["timing"]
    assert len(timing["steps"]) == 2 and sum(timing["steps"]) <= timing["denoising"] <= timing["total"]


def test_a_latents_only_cell_writes_the_sampler_latents_and_no_audio(prompts, tmp_path):
    cell = Cell("tiny", "ddim", 2, 3.0, 5, 2, SECONDS, batch_size=2, audio=False)
    with pytest.raises(ConfigError, match=rf"^cell {cell.key} generates latents only \(audio=False\): it cannot be "
                       r"scored on audio \(clap_evaluator\); run it with no metrics$"):  # fmt: skip
        run_cell(cell, Scoring(prompts=str(prompts), metrics=("clap_evaluator",)), tmp_path, progress=False)
    table = run_cell(cell, Scoring(prompts=str(prompts), metrics=()), tmp_path, progress=False)
    folder = cell_dir(tmp_path, cell)
    assert not list(folder.glob("*.wav")) and not (folder / "manifest.jsonl").exists()
    direct = generate(load_model("tiny"), [c.caption for c in load_clipset(prompts)], sampler="ddim", steps=2,
                      cfg_scale=3.0, seconds=SECONDS, seed=5, batch_size=2)  # fmt: skip
    assert np.array_equal(np.load(folder / "latents.npy"), direct.latents.numpy())
    rows = table.set_index("metric")["value"]
    assert set(table["kind"]) == {"generation"} and rows["nfe"] == 2
    assert rows["decoding_seconds"] < 1e-3  # no decoder ran
    # read back, not generated again
    again = run_cell(cell, Scoring(prompts=str(prompts), metrics=()), tmp_path, progress=False)
    assert results.read(folder / "results.parquet").equals(again)
