"""t2mbench sweep SPEC: the spec's checks (exact one-line errors, exit code 2), the demo grid
as a spec, and a small spec sweep equal to run_sweep on the same cells, value for value."""

import re

import pytest
from support.result_rows import untimed

from t2mbench.bench.cells import Scoring
from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.demo import METRICS, DemoSettings
from t2mbench.bench.store import ResultStore
from t2mbench.bench.sweep import grid, run_sweep
from t2mbench.bench.sweep_spec import load_spec, parse_spec
from t2mbench.cli import main
from t2mbench.core import results
from t2mbench.core.manifest import write_manifest

GOOD = """
out = "{out}"
[grid]
models = ["tiny"]
samplers = ["ddim", {{ name = "euler" }}]
steps = [2]
cfg = 3.0
seeds = [5]
clips = [2]
seconds = 1.0
batch_size = 2
[scoring]
prompts = "{prompts}"
metrics = ["fd_evaluator", "kl_evaluator", "clap_evaluator"]
"""


@pytest.fixture(scope="module")
def prompts(rendered_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prompts")
    write_manifest(folder, split_clips(rendered_corpus, "train")[:2])
    return folder


def test_the_demo_grid_spec_is_the_demos_cells_and_scoring():
    spec = load_spec("examples/demo_grid.toml")
    d = DemoSettings()
    demo = grid("tiny", d.samplers, d.steps, cfg=d.cfg_scale, seed=d.seed, clips=d.clips, seconds=d.seconds,
                batch_size=d.batch_size)  # fmt: skip
    assert list(spec.cells) == demo and [c.key for c in spec.cells] == [c.key for c in demo]
    assert spec.scoring == Scoring(prompts="runs/demo-grid/corpus", metrics=METRICS)
    c = spec.corpus
    want = ("runs/demo-grid/corpus", d.clips, d.seconds, d.seed, "test")
    assert (c.path, c.clips, c.seconds, c.seed, c.split) == want
    assert (spec.out, spec.executor) == ("runs/demo-grid", "local")


def test_the_grid_is_the_product_in_key_order():
    spec = parse_spec({
        "out": "o", "grid": {"models": "tiny", "samplers": ["ddim", {"name": "ddim", "options": {"eta": 0.5}}],
                             "steps": [2, 4], "cfg": [1.0, 3], "seeds": [0, 7], "clips": [1, 2], "seconds": 1.0},
        "scoring": {"prompts": "p", "metrics": ["clap_evaluator"]},
    })  # fmt: skip
    got = [(c.sampler, dict(c.sampler_options), c.steps, c.cfg, c.seed, c.clips) for c in spec.cells]
    want = [(s, o, n, g, e, k) for s, o in [("ddim", {}), ("ddim", {"eta": 0.5})] for n in (2, 4)
            for g in (1.0, 3.0) for e in (0, 7) for k in (1, 2)]  # fmt: skip
    assert got == want and len({c.key for c in spec.cells}) == 32 and spec.cells[0].batch_size == 16


SAMPLERS = "euler, euler_ancestral"  # the start of the allowed list (the registry's order)


@pytest.mark.parametrize(
    "edit, message",
    [
        (("steps = [2]", "steps = [0]"), "spec key grid.steps: 0 is not an integer >= 1"),
        (("steps = [2]", "steps = [2.5]"), "spec key grid.steps: 2.5 is not an integer >= 1"),
        (("cfg = 3.0", "cfg = -1"), "spec key grid.cfg: -1 is not a finite number >= 0"),
        (("seeds = [5]", "seed = [5]"), "spec key grid.seed: unknown; allowed in [grid]: models, samplers, steps, "
         "cfg, seeds, clips, seconds, batch_size, checkpoint"),
        (('samplers = ["ddim"', 'samplers = ["nope"'), "spec key grid.samplers: unknown sampler 'nope'; allowed: "
         + SAMPLERS),
        (('{ name = "euler" }', '{ name = "ddim", options = { eta = 2 } }'),
         "spec key grid.samplers.options.eta: 2 for sampler 'ddim' must be "),
        (('{ name = "euler" }', '{ name = "ddim", options = { rho = 2 } }'),
         "spec key grid.samplers.options: sampler 'ddim' has no option 'rho'; allowed: eta"),
        (('models = ["tiny"]', 'models = ["huge"]'), "spec key grid.models: unknown model 'huge'; allowed: sao-1.0, "
         "sao-small, tiny or a config path"),
        (('"clap_evaluator"]', '"clap"]\n[scoring.settings.fd_openl3]\nx = 1'),
         "spec key scoring.settings.fd_openl3: not a metric of the sweep; allowed: fd_evaluator, kl_evaluator, clap"),
        (('"clap_evaluator"]', '"fad"]'), "spec key scoring.metrics: unknown metric 'fad'; allowed: "),
        (("seconds = 1.0", "seconds = '1'"), "spec key grid.seconds: must be a number > 0, got '1'"),
        (("out = ", "colour = 1\nout = "), "spec key colour: unknown; allowed in the top level: out, executor, "
         "executor_options, device, grid, corpus, scoring"),
        (("[grid]", "executor = 'slurm'\n[grid]"), "spec key executor: unknown executor 'slurm'; allowed: local, ray"),
        (("steps = [2]", "steps = [2, 2]"), "spec key grid.steps: lists a value twice ([2, 2])"),
        (("steps = [2]", "steps = ["), r"^t2mbench sweep: error: .*spec.toml: not valid TOML \(.*line 7"),
    ],
)
def test_a_spec_mistake_is_one_line_naming_the_key_and_exit_2(edit, message, tmp_path, capsys, prompts):
    text = GOOD.format(out=tmp_path / "out", prompts=prompts).replace(*edit)
    (tmp_path / "spec.toml").write_text(text)
    assert main(["sweep", str(tmp_path / "spec.toml"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == ""
    if message.startswith("^"):
        assert re.search(message, lines[0]), lines[0]
    else:
        assert lines[0].startswith(f"t2mbench sweep: error: {message}"), lines[0]
    assert not (tmp_path / "out").exists()


def test_a_missing_spec_and_address_without_cluster(tmp_path, capsys, prompts):
    assert main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err == f"t2mbench sweep: error: {tmp_path / 'none.toml'}: no such sweep spec\n"
    (tmp_path / "spec.toml").write_text(GOOD.format(out=tmp_path / "out", prompts=prompts))
    assert main(["sweep", str(tmp_path / "spec.toml"), "--address", "auto"]) == 2
    assert capsys.readouterr().err == ("t2mbench sweep: error: --address needs a cluster executor (--executor ray); "
                                       "local runs here\n")  # fmt: skip


@pytest.fixture(scope="module")
def spec_run(prompts, tmp_path_factory):
    root = tmp_path_factory.mktemp("spec")
    (root / "spec.toml").write_text(GOOD.format(out=root / "out", prompts=prompts))
    assert main(["sweep", str(root / "spec.toml"), "--no-progress"]) == 0
    return root, load_spec(root / "spec.toml")


def test_a_spec_sweep_equals_run_sweep_on_the_same_cells(spec_run, prompts, tmp_path):
    root, spec = spec_run
    table = results.read(root / "out" / "results.parquet")
    assert results.read(root / "out" / "results.csv").equals(table)
    cells = grid("tiny", ["ddim", "euler"], [2], cfg=3.0, seed=5, clips=2, seconds=1.0, batch_size=2)
    assert list(spec.cells) == cells
    direct = run_sweep(cells, Scoring(str(prompts), METRICS), tmp_path, progress=False)
    assert untimed(table).equals(untimed(direct))
    # per cell: 3 aggregates, FD's 2 frame counts, its bias-corrected value and the CI's se, 2 clips x (kl,
    # clap), nfe; and 5 measured-seconds rows
    assert len(untimed(table)) == 2 * 12 and len(table) == 2 * 17
    assert list(table.cell.unique()) == [c.key for c in cells]
    store = ResultStore(root / "out")
    assert sorted(p.name for p in store.parts.iterdir()) == sorted(f"{c.key}.parquet" for c in cells)
    assert results.concat(store.read(c) for c in cells).equals(table)


def test_resume_is_the_default_and_fresh_runs_again(spec_run, capsys, monkeypatch):
    import t2mbench.bench.cells as cells_module

    root, spec = spec_run
    before = results.read(root / "out" / "results.parquet")
    monkeypatch.setattr(cells_module, "generate", lambda *a, **k: pytest.fail("generated again"))
    assert main(["sweep", str(root / "spec.toml"), "--no-progress"]) == 0
    assert main(["sweep", str(root / "spec.toml"), "--no-progress", "--resume"]) == 0
    out = root / "out"
    assert capsys.readouterr().out == f"2 cells, 34 rows: {out}/results.parquet and {out}/results.csv\n" * 2
    assert results.read(root / "out" / "results.parquet").equals(before)  # timings too: nothing re-ran
    monkeypatch.undo()
    assert main(["sweep", str(root / "spec.toml"), "--no-progress", "--fresh"]) == 0
    after = results.read(root / "out" / "results.parquet")
    assert untimed(after).equals(untimed(before))
    seconds = after.metric == "seconds_per_clip"
    assert not after[seconds].value.equals(before[seconds].value)  # measured again
