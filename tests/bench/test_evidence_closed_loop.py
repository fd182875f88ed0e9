import json

import numpy as np
import pandas as pd
import pytest
import torch

from t2mbench.bench.corpus import build_corpus
from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.demo import DemoSettings
from t2mbench.bench.evidence.closed_loop import LoopSettings, closed_loop, derangement, render, untrained_like
from t2mbench.core.errors import ConfigError
from t2mbench.core.manifest import load_clipset
from t2mbench.reference_models import build, load_model
from t2mbench.reference_models.generate import default_cfg_scale


@pytest.mark.parametrize("n", [2, 3, 17])
def test_derangement_moves_every_item_and_is_seeded(n):
    perm = derangement(n, 4)
    assert sorted(perm.tolist()) == list(range(n)) and not np.any(perm == np.arange(n))
    assert np.array_equal(perm, derangement(n, 4))


def test_the_loop_and_the_demo_run_at_the_tiny_config_s_cfg_scale():
    # 3: the scale t2mbench.bench.evidence.guidance_sweep picked on train clips, stored once in tiny.json
    assert LoopSettings().cfg_scale == DemoSettings().cfg_scale == default_cfg_scale("tiny") == 3.0


def test_one_clip_cannot_be_shuffled():
    with pytest.raises(ConfigError, match="shuffling captions needs at least 2 clips, got 1"):
        derangement(1, 0)


def test_untrained_keeps_the_trained_vae_and_the_training_init():
    trained = load_model("tiny")
    untrained = untrained_like(trained)
    torch.manual_seed(0)
    init = build("tiny")
    for key, value in untrained.state_dict().items():
        if key.startswith("pretransform."):
            assert torch.equal(value, trained.state_dict()[key]), key
        else:
            assert torch.equal(value, init.state_dict()[key]), key
    dit = "model.model.transformer.layers.0.self_attn.to_qkv.weight"
    assert not torch.equal(untrained.state_dict()[dit], trained.state_dict()[dit])


@pytest.fixture(scope="module")
def loop_corpus(tmp_path_factory):
    """12 clips of 3 s, seed 5: 9 train and 3 test clips, 2 evaluator windows each."""
    out = tmp_path_factory.mktemp("loop_corpus") / "corpus"
    build_corpus(out, 12, 3.0, 5, progress=False)
    assert len(split_clips(out, "test")) == 3
    return out


@pytest.fixture(scope="module")
def loop(loop_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("loop")
    settings = LoopSettings(sampler="ddim", steps=3, cfg_scale=3.0, seed=2, batch_size=4)
    return out, closed_loop(loop_corpus, out, settings, progress=False)


def test_rows_are_the_stable_audio_table_layout(loop, loop_corpus):
    _, result = loop
    table = pd.DataFrame(result["table"])
    assert table.system.tolist() == [
        "training data (upper bound)", "autoencoded test data", "tiny DiT, trained (ddim 3, CFG 3)",
        "tiny DiT, untrained (ddim 3, CFG 3)",
    ]  # fmt: skip
    # no KL partner for train clips; signal metrics only where a reconstruction exists
    assert table.kl_evaluator.isna().tolist() == [True, False, False, False]
    assert table.sisdr.notna().tolist() == [False, True, False, False]
    assert table.seconds_per_clip.isna().tolist() == [True, False, False, False]
    assert result["fd_ratio_untrained_over_trained"] == pytest.approx(table.fd_evaluator[3] / table.fd_evaluator[2])
    assert (result["test_clips"], result["train_clips"]) == (3, 9)


def trained_cell(out):
    """The trained DiT's cell folder (the untrained one names a checkpoint)."""
    (folder,) = [p.parent for p in out.glob("cells/*/cell.json") if '"checkpoint": null' in p.read_text()]
    return folder


def test_the_dit_rows_are_cells_and_the_untrained_one_names_its_checkpoint(loop):
    out, _ = loop
    cells = sorted(json.loads(p.read_text())["cell"]["checkpoint"] or "" for p in out.glob("cells/*/cell.json"))
    assert cells == ["", str(out / "sets" / "untrained.safetensors")]


def test_shuffled_run_scores_the_same_audio_with_other_captions(loop):
    out, result = loop
    true, shuffled = load_clipset(trained_cell(out)), load_clipset(out / "sets" / "trained-shuffled")
    assert [c.path for c in true] == [c.path for c in shuffled]
    assert sorted(c.caption for c in true) == sorted(c.caption for c in shuffled)
    assert all(a.caption != b.caption for a, b in zip(true, shuffled))
    clap = result["clap_shuffle"]
    per_clip = pd.read_parquet(trained_cell(out) / "scores" / "scores.parquet")
    per_clip = per_clip[(per_clip.metric == "clap_evaluator") & per_clip.clip_id.notna()]
    assert clap["mean_a"] == pytest.approx(per_clip.value.mean())
    assert clap["difference"] == pytest.approx(clap["mean_a"] - clap["mean_b"])


def test_a_finished_loop_is_read_back_not_redone(loop, loop_corpus):
    out, result = loop
    stamp = (trained_cell(out) / "generation.json").stat().st_mtime_ns
    again = closed_loop(loop_corpus, out, LoopSettings(sampler="ddim", steps=3, cfg_scale=3.0, seed=2,
                                                           batch_size=4), progress=False)  # fmt: skip
    assert (trained_cell(out) / "generation.json").stat().st_mtime_ns == stamp
    assert again["table"] == result["table"]
    assert "fd_evaluator untrained / trained = " in render(again)
