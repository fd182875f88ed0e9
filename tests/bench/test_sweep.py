import numpy as np
import pytest
import torch
from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.generation import PromptRow
from t2mbench.bench.sweep import Cell, parse_cells, pivot, run_sweep
from t2mbench.reference_models import build, generate

from t2mbench.core.audio import load_audio
from t2mbench.core.errors import ConfigError

SECONDS = 1.0


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build("tiny").eval()


@pytest.fixture(scope="module")
def swept(rendered_corpus, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    prompts = [PromptRow(c.id, c.caption) for c in split_clips(rendered_corpus, "train")[:2]]
    calls = []
    table = run_sweep(
        model, prompts, rendered_corpus, [Cell("ddim", 2), Cell("euler", 3)], out, metrics=["clap_evaluator"],
        cfg_scale=3.0, seconds=SECONDS, seed=5, batch_size=2, progress=False, on_cell=lambda c, i: calls.append(c),
    )  # fmt: skip
    return out, prompts, table, calls


def test_every_cell_is_the_generation_with_its_settings(swept, model):
    out, prompts, table, calls = swept
    assert calls == [Cell("ddim", 2), Cell("euler", 3)]
    for sampler, steps in (("ddim", 2), ("euler", 3)):
        direct = generate(model, [p.prompt for p in prompts], sampler=sampler, steps=steps, cfg_scale=3.0,
                          seconds=SECONDS, seed=5, batch_size=2)  # fmt: skip
        for row, audio in zip(prompts, direct.audio):
            written, sr = load_audio(out / "cells" / f"{sampler}-{steps}" / f"{row.id}.wav")
            assert sr == 16_000 and np.array_equal(written, audio.numpy())


def test_table_has_one_row_per_cell_and_metric_with_nfe_and_time(swept):
    _, _, table, _ = swept
    assert list(zip(table.sampler, table.steps, table.metric)) == [
        ("ddim", 2, "clap_evaluator"), ("euler", 3, "clap_evaluator")]  # fmt: skip
    # CFG batches the unconditional branch, so one model call per step (Euler: N, no 2nd order).
    assert table.nfe.tolist() == [2, 3]
    assert (table.seconds_per_clip > 0).all()
    assert ((table.ci_low <= table.value) & (table.value <= table.ci_high)).all()
    assert pivot(table, "clap_evaluator").loc["euler", 3] == table.value.iloc[1]


def test_a_finished_sweep_is_not_redone(swept, model, rendered_corpus):
    out, prompts, table, _ = swept
    calls = []
    again = run_sweep(
        model, prompts, rendered_corpus, [Cell("ddim", 2), Cell("euler", 3)], out, metrics=["clap_evaluator"],
        cfg_scale=3.0, seconds=SECONDS, seed=5, batch_size=2, progress=False, on_cell=lambda c, i: calls.append(c),
    )  # fmt: skip
    assert calls == [] and again.equals(table)


def test_cells_are_validated():
    assert parse_cells(["ddpm", "ddim"], [10, 50]) == [Cell("ddpm", 10), Cell("ddpm", 50), Cell("ddim", 10),
                                                       Cell("ddim", 50)]  # fmt: skip
    with pytest.raises(ConfigError, match="unknown samplers nope; known: "):
        parse_cells(["ddim", "nope"], [10])
    with pytest.raises(ConfigError, match=r"steps must be >= 1, got \[0\]"):
        parse_cells(["ddim"], [10, 0])
