"""The Ray executor on a real local Ray instance (2 CPUs): a 2 x 2 sweep (samplers x steps)
equals the local executor's table value for value (measured seconds aside), same seeds; every
cell's clips are scored in shards by one scoring actor that loads its embedders once."""

import json
import os

import pandas as pd
import pytest
from support.result_rows import untimed

from t2mbench.bench.cells import Scoring
from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.sweep import grid, run_sweep
from t2mbench.cli import main
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.core.manifest import write_manifest

ray = pytest.importorskip("ray", reason="the ray extra (tox installs it: extras = test, ray)")


SPEC = """
out = "ray"
[grid]
models = ["tiny"]
samplers = ["ddim", "euler"]
steps = [2, 3]
cfg = [3.0]
seeds = [5]
clips = [2]
seconds = 1.0
batch_size = 2
[scoring]
prompts = "prompts"
metrics = ["fd_evaluator", "kl_evaluator", "clap_evaluator"]
"""


@pytest.mark.slow  # a Ray instance and four cells (~1-2 min on 2 shared cores)
def test_a_2x2_sweep_on_local_ray_equals_the_local_executor(rendered_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative paths in the spec: the Ray tasks must read them as the driver does
    write_manifest(tmp_path / "prompts", split_clips(rendered_corpus, "train")[:2])
    cells = grid("tiny", ["ddim", "euler"], [2, 3], cfg=3.0, seed=5, clips=2, seconds=1.0, batch_size=2)
    scoring = Scoring("prompts", ("fd_evaluator", "kl_evaluator", "clap_evaluator"))
    local = run_sweep(cells, scoring, "local", progress=False)
    (tmp_path / "spec.toml").write_text(SPEC)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.cluster_resources()["CPU"] == 2
        argv = ["sweep", "spec.toml", "--executor", "ray", "--address", "auto", "--no-progress"]
        assert main(argv) == 0, capsys.readouterr().err
        nodes = {n["NodeID"] for n in ray.nodes()}
    finally:
        ray.shutdown()
    on_ray = results.read(tmp_path / "ray" / "results.parquet")
    assert len(nodes) == 1
    a, b = untimed(local), untimed(on_ray)
    assert len(a) == 4 * 12
    fd = a.metric.str.startswith("fd_evaluator").to_numpy()
    # per-clip and clip-mean rows exactly; FD from the actor's merged count, mean and scatter to 1e-9
    pd.testing.assert_frame_equal(b[~fd].reset_index(drop=True), a[~fd].reset_index(drop=True))
    pd.testing.assert_frame_equal(b[fd].reset_index(drop=True), a[fd].reset_index(drop=True), check_exact=False,
                                  rtol=1e-9)
    shards = [json.loads((tmp_path / "ray" / "cells" / c.key / "scores" / "summary.json").read_text())["shards"]
              for c in cells]
    assert [s["count"] for s in shards] == [2] * 4  # two clips per cell, one shard each
    workers = {w for s in shards for w in s["workers"]}
    assert len(workers) == 1 and not workers.pop().endswith(f":{os.getpid()}")  # one actor, not this process
    assert list(on_ray.cell.unique()) == [c.key for c in cells]
    assert (on_ray[on_ray.metric == "seconds_per_clip"].value > 0).all()


def test_ray_options_are_checked():
    with pytest.raises(ConfigError, match=r"^executor 'ray': address must be auto, local or ray://HOST:PORT, "
                                          r"got 'http://x'$"):  # fmt: skip
        run_sweep([], Scoring("p", ("clap_evaluator",)), "unused", executor="ray",
                  executor_options={"address": "http://x"})  # fmt: skip
