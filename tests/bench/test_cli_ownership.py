"""No command silently overwrites another's folder (or its own with other settings): each
refusal is one stderr line naming the folder and its owner, and nothing there changes."""

import pytest

from t2mbench.cli import main
from t2mbench.core.manifest import load_clipset

GEN = ["--sampler", "ddim", "--steps", "2", "--seconds", "0.5", "--seed", "1", "--batch", "2"]


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("own") / "corpus"
    assert main(["corpus", "build", "--out", str(out), "--clips", "2", "--seconds", "1", "--seed", "33",
                 "--workers", "1"]) == 0  # fmt: skip
    return out


def test_generate_refuses_a_corpus_folder(corpus, capsys):
    before = snapshot(corpus)
    assert main(["generate", "--model", "tiny", "--prompts", str(corpus), "--out", str(corpus), *GEN]) == 2
    err = capsys.readouterr().err
    assert err == (f"t2mbench generate: error: {corpus} belongs to `t2mbench corpus build`; choose another --out, "
                   "or pass --overwrite to let `t2mbench generate` take it over\n")  # fmt: skip
    assert snapshot(corpus) == before


def test_corpus_build_refuses_its_folder_with_other_settings_and_resumes_with_the_same(corpus, capsys):
    before = snapshot(corpus)
    assert main(["corpus", "build", "--out", str(corpus), "--clips", "2", "--seconds", "1", "--seed", "34",
                 "--workers", "1"]) == 2  # fmt: skip
    assert "holds a `t2mbench corpus build` run with other settings (seed=33 here, 34 now)" in capsys.readouterr().err
    assert snapshot(corpus) == before
    assert main(["corpus", "build", "--out", str(corpus), "--clips", "2", "--seconds", "1", "--seed", "33",
                 "--workers", "1"]) == 0  # fmt: skip
    assert "(0 rendered, 2 reused from an earlier run)" in capsys.readouterr().out


def test_score_refuses_a_generated_folder_which_stays_loadable(corpus, tmp_path, capsys):
    gen = tmp_path / "gen"
    assert main(["generate", "--model", "tiny", "--prompts", str(corpus), "--out", str(gen), *GEN]) == 0
    assert capsys.readouterr().out.startswith("wrote 2 clips of 0.5 s (2 NFE each, ")
    before = snapshot(gen)
    assert main(["score", "--generated", str(gen), "--metrics", "clap_evaluator", "--out", str(gen)]) == 2
    assert capsys.readouterr().err.startswith(f"t2mbench score: error: {gen} belongs to `t2mbench generate`")
    assert snapshot(gen) == before and len(load_clipset(gen)) == 2


def test_a_run_refused_for_a_bad_setting_does_not_keep_the_folder(corpus, tmp_path, capsys):
    out = tmp_path / "g"
    bad = [*GEN[:-4], "--seed", "1", "--batch", "2", "--cfg", "-1"]
    assert main(["generate", "--model", "tiny", "--prompts", str(corpus), "--out", str(out), *bad]) == 2
    assert capsys.readouterr().err.endswith("cfg_scale must be a finite number >= 0, got -1.0\n")
    assert not out.exists()
    assert main(["generate", "--model", "tiny", "--prompts", str(corpus), "--out", str(out), *GEN]) == 0
