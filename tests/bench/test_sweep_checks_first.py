"""A sweep spec's device and executor are checked before its corpus is built, and the corpus
folder it names is claimed like `t2mbench corpus build`'s: one built with other settings is
refused, never re-rendered."""

import pytest

from t2mbench.cli import main
from t2mbench.core.ownership import claim

SPEC = """
out = "{out}"
{top}
[grid]
models = ["tiny"]
samplers = ["ddim"]
steps = [2]
cfg = 3.0
seeds = [5]
clips = [2]
seconds = 1.0
[corpus]
clips = 2
seconds = 1.0
seed = 1
split = "test"
path = "{corpus}"
[scoring]
metrics = ["clap_evaluator"]
"""


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("top, message", [
    ('device = "bogus"', "unknown device 'bogus'; use cpu, cuda, cuda:N or mps"),
    ('device = "cuda"', "device 'cuda': this torch"),
    ('[executor_options]\nthreads = 2', "executor 'local': bad options ("),
])  # fmt: skip
def test_a_bad_device_or_executor_option_is_found_before_the_corpus_is_built(tmp_path, capsys, top, message):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(out=tmp_path / "run", top=top, corpus=tmp_path / "corpus"))
    assert main(["sweep", str(spec), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2mbench sweep: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "run").exists()


def test_a_corpus_folder_built_with_other_settings_is_refused_unchanged(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    claim(corpus, "corpus build", {"clips": 2, "seconds": 1.0, "seed": 7, "split": "test"})
    (corpus / "manifest.jsonl").write_text("theirs\n")
    before = snapshot(corpus)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(out=tmp_path / "run", top="", corpus=corpus))
    assert main(["sweep", str(spec), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"t2mbench sweep: error: {corpus} holds a `t2mbench corpus build` run with other settings (seed=7 here, 1 "
        "now); choose another --out, or pass --overwrite to let `t2mbench corpus build` take it over\n")  # fmt: skip
    assert snapshot(corpus) == before


def test_a_corrupt_checkpoint_is_refused_before_the_corpus_and_verify_false_opts_out(tmp_path, capsys):
    from pathlib import Path

    from t2mbench.bench.sweep_spec import load_spec

    shipped = Path(__file__).resolve().parents[2] / "reference_models" / "weights" / "tiny" / "model.safetensors"
    flipped = bytearray(shipped.read_bytes())
    flipped[-100] ^= 1
    (tmp_path / "m.safetensors").write_bytes(bytes(flipped))
    spec = tmp_path / "spec.toml"
    text = SPEC.format(out=tmp_path / "run", top="", corpus=tmp_path / "corpus")
    spec.write_text(text.replace("seconds = 1.0\n[corpus]", f'seconds = 1.0\ncheckpoint = "{tmp_path}/m.safetensors"'
                                                             "\n[corpus]"))  # fmt: skip
    assert main(["sweep", str(spec), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2mbench sweep: error: {tmp_path}/m.safetensors: sha256 ") and "does not match" in err
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "run").exists()
    spec.write_text(spec.read_text().replace("[corpus]", "verify = false\n[corpus]", 1))
    assert [c.verify for c in load_spec(spec).cells] == [False]
    spec.write_text(spec.read_text().replace("verify = false", 'verify = "no"'))
    assert main(["sweep", str(spec), "--no-progress"]) == 2
    assert capsys.readouterr().err == "t2mbench sweep: error: spec key grid.verify: must be true or false, got 'no'\n"
