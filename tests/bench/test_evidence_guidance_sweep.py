import json

import pytest

from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.evidence.closed_loop import LoopSettings
from t2mbench.bench.evidence.guidance_sweep import guidance_sweep, render, train_subset
from t2mbench.core.errors import ConfigError


def test_subset_takes_train_clips_only(rendered_corpus):
    train = [c.id for c in split_clips(rendered_corpus, "train")]
    test = {c.id for c in split_clips(rendered_corpus, "test")}
    subset = [c.id for c in train_subset(rendered_corpus, 2)]
    assert len(subset) == 2 and set(subset) <= set(train) and not set(subset) & test
    assert subset[0] == train[0] and subset[1] == train[len(train) // 2]
    with pytest.raises(ConfigError, match=rf"clips must be in \[2, {len(train)}\] \(the train split's size\), got 99"):
        train_subset(rendered_corpus, 99)


@pytest.fixture(scope="module")
def sweep(rendered_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    settings = LoopSettings(sampler="ddim", steps=2, seed=1, batch_size=2)
    return out, guidance_sweep(rendered_corpus, out, [1.0, 6.0], clips=2, settings=settings, progress=False)


def test_sweep_picks_the_scale_with_the_lowest_fd(sweep):
    out, result = sweep
    fd = {r["cfg_scale"]: r["fd_evaluator"] for r in result["rows"]}
    assert fd[1.0] != fd[6.0]  # guidance changes the audio
    assert result["best_cfg_scale"] == min(fd, key=fd.get)
    assert json.loads((out / "guidance_sweep.json").read_text())["best_cfg_scale"] == result["best_cfg_scale"]
    assert render(result).endswith(f"lowest fd_evaluator at CFG {result['best_cfg_scale']:g}")
    assert (out / "guidance_sweep.png").stat().st_size > 0


def test_sweep_reuses_its_sets(sweep, rendered_corpus):
    out, result = sweep
    (manifest,) = [p for p in out.glob("cells/*/manifest.jsonl") if '"cfg": 6.0' in p.read_text()]
    before = manifest.stat().st_mtime_ns
    again = guidance_sweep(rendered_corpus, out, [6.0, 1.0], clips=2,
                           settings=LoopSettings(sampler="ddim", steps=2, seed=1, batch_size=2), progress=False)
    assert manifest.stat().st_mtime_ns == before
    assert {r["cfg_scale"]: r["fd_evaluator"] for r in again["rows"]} == {
        r["cfg_scale"]: r["fd_evaluator"] for r in result["rows"]
    }


def test_no_scale_is_an_error(rendered_corpus, tmp_path):
    with pytest.raises(ConfigError, match="give at least one CFG scale"):
        guidance_sweep(rendered_corpus, tmp_path, [])
