"""No command silently overwrites another's folder (or its own with other settings): each
refusal is one stderr line naming the folder and its owner, and nothing there changes."""

from pathlib import Path

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
    bad = ["--sampler", "euler", *GEN[2:], "--sigma-min", "5", "--sigma-max", "1"]  # found when sampling starts
    assert main(["generate", "--model", "tiny", "--prompts", str(corpus), "--out", str(out), *bad]) == 2
    assert capsys.readouterr().err.endswith("need 0 < sigma_min < sigma_max, got sigma_min=5.0, sigma_max=1.0\n")
    assert not out.exists()
    assert main(["generate", "--model", "tiny", "--prompts", str(corpus), "--out", str(out), *GEN]) == 0


BOARD = Path(__file__).resolve().parents[2] / "leaderboards" / "boards" / "tiny-sampler-steps"

SPEC = """
out = "{out}"
[grid]
models = ["tiny"]
samplers = ["ddim"]
steps = [2]
cfg = 3.0
seeds = [5]
clips = [2]
seconds = 1.0
[scoring]
prompts = "{d}/prompts"
metrics = ["clap_evaluator"]
"""

# every command that writes a folder, pointed at OUT (inputs need not exist: the claim comes first)
FOLDER_COMMANDS = [
    ("sweep", lambda d, out: ["sweep", f"{d}/spec.toml", "--out", out, "--no-progress"]),
    ("evidence degradation", lambda d, out: ["evidence", "degradation", "--corpus", f"{d}/no", "--out", out]),
    ("evidence autoencoder", lambda d, out: ["evidence", "autoencoder", "--corpus", f"{d}/no", "--vae",
                                             f"{d}/no.safetensors", "--out", out]),
    ("evidence guidance-sweep", lambda d, out: ["evidence", "guidance-sweep", "--corpus", f"{d}/no", "--out", out,
                                                "--cfg", "2"]),
    ("evidence closed-loop", lambda d, out: ["evidence", "closed-loop", "--corpus", f"{d}/no", "--out", out]),
    ("evidence report", lambda d, out: ["evidence", "report", "--runs", f"{d}/no", "--out", out]),
    ("train vae", lambda d, out: ["train", "vae", "--corpus", f"{d}/no", "--out", out, "--no-progress"]),
    ("reproduce", lambda d, out: ["reproduce", "ddim", "--out", out, "--no-progress"]),
    ("listen make", lambda d, out: ["listen", "make", f"{d}/no", f"{d}/no2", "--out", out]),
    ("leaderboard from-sweep", lambda d, out: ["leaderboard", "from-sweep", f"{d}/sweep", "--out", out, "--eval-set",
                                               "x"]),
    ("corpus build", lambda d, out: ["corpus", "build", "--out", out, "--clips", "2", "--seconds", "1"]),
    ("generate", lambda d, out: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--out", out, *GEN]),
    ("demo", lambda d, out: ["demo", "--out", out, "--clips", "2"]),
    ("gate calibrate", lambda d, out: ["gate", "calibrate", "--pool", out, "--build"]),
    ("leaderboard build", lambda d, out: ["leaderboard", "build", str(BOARD), "--out", out]),
]  # fmt: skip


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC.format(out=tmp_path / "unused", d=tmp_path))
    (tmp_path / "prompts.txt").write_text("a piano\n")
    (tmp_path / "sweep" / "cells" / "c").mkdir(parents=True)
    (tmp_path / "sweep" / "cells" / "c" / "results.csv").write_text("x\n")
    return tmp_path


@pytest.mark.parametrize("command, argv", FOLDER_COMMANDS, ids=[c for c, _ in FOLDER_COMMANDS])
def test_every_folder_writer_refuses_another_commands_folder(inputs, capsys, command, argv):
    from t2mbench.core.ownership import claim

    out = inputs / "owned"
    other = "score" if command == "corpus build" else "corpus build"
    claim(out, other, {"seed": 3})
    (out / "keep.txt").write_text("theirs")
    before = snapshot(out)
    assert main(argv(inputs, str(out))) == 2
    option = "--pool" if command == "gate calibrate" else "--out"  # the refusal names the option that gave the folder
    assert capsys.readouterr().err == (f"t2mbench {command.split()[0]}: error: {out} belongs to `t2mbench {other}`; "
                                       f"choose another {option}, or pass --overwrite to let `t2mbench {command}` take "
                                       "it over\n")  # fmt: skip
    assert snapshot(out) == before


class _Claimed(Exception):
    """Raised by the stand-in claim: the command's record is taken and nothing runs."""


@pytest.mark.parametrize("command, argv, first, second", [
    ("sweep", lambda d, out, s: ["sweep", f"{d}/spec.toml", "--out", out, *(["--executor", "local"] * (s == "2"))],
     "1", "1"),
    ("train vae", lambda d, out, s: ["train", "vae", "--corpus", f"{d}/no", "--out", out, "--steps", s], "3", "4"),
    ("reproduce", lambda d, out, s: ["reproduce", "ddim", "--out", out, "--seed", s], "1", "2"),
    ("reproduce", lambda d, out, s: ["reproduce", "ddim", "--out", out, *(["--clips", "64"] * (s == "b"))], "a",
     "b"),  # an explicit default is the same setting: the claim is the same
    ("listen make", lambda d, out, s: ["listen", "make", f"{d}/no", f"{d}/no2", "--out", out, "--seed", s], "0", "1"),
    ("evidence degradation", lambda d, out, s: ["evidence", "degradation", "--corpus", f"{d}/no", "--out", out,
                                                "--seed", s], "0", "1"),
    ("leaderboard from-sweep", lambda d, out, s: ["leaderboard", "from-sweep", f"{d}/sweep", "--out", out,
                                                  "--eval-set", s], "x", "y"),
])  # fmt: skip
def test_the_same_command_with_other_settings_is_refused_and_the_same_resumes(inputs, capsys, monkeypatch, command,
                                                                               argv, first, second):  # fmt: skip
    """A folder the command owns with the first settings: the second settings are refused in one line and
    change nothing; the same settings pass the claim (sweep: where the cells run is no setting)."""
    import t2mbench.core.ownership as ownership

    out = inputs / "mine"
    records = []

    def record(folder, cmd, settings, **kw):
        records.append((cmd, settings))
        raise _Claimed

    monkeypatch.setattr(ownership, "claim", record)
    for settings in (first, second):
        with pytest.raises(_Claimed):
            main(argv(inputs, str(out), settings))
    monkeypatch.undo()
    (cmd, mine), (_, theirs) = records
    assert cmd == command
    ownership.claim(out, command, mine)
    (out / "result.json").write_text("{}")
    before = snapshot(out)
    capsys.readouterr()
    if first == second or command == "reproduce" and first == "a":
        assert mine == theirs
        return
    assert main(argv(inputs, str(out), second)) == 2
    err = capsys.readouterr().err
    assert f"{out} holds a `t2mbench {command}` run with other settings (" in err and err.count("\n") == 1
    assert snapshot(out) == before
