"""Every subcommand, fed malformed input of each class it reads (a missing or malformed file, a
bad number, an unknown name, an unwritable output), answers with exit code 2 and one stderr
line, never a traceback. The table must name every subcommand the CLI has."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from t2mbench.cli import build_parser, main
from t2mbench.core.audio import save_audio


def subcommands() -> set[str]:
    """Every leaf subcommand of the CLI, e.g. ``"corpus build"``."""
    found = set()

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.add(" ".join(prefix))
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return found


@pytest.fixture
def bad(tmp_path):
    """Malformed inputs: a manifest with a non-object line, a non-JSON file, a regular file."""
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "manifest.jsonl").write_text('{"id": "a"}\n[1, 2]\n')
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "prompts.txt").write_text("a piano\n")
    (tmp_path / "good").mkdir()  # a valid one-clip set, for the cases that fail on something else
    save_audio(tmp_path / "good" / "a.wav", np.full((1, 16000), 0.1, np.float32), 16000)
    (tmp_path / "good" / "manifest.jsonl").write_text('{"id": "a", "path": "a.wav", "caption": "a piano"}\n')
    return tmp_path


CASES = [
    ("corpus build", "number", lambda d: ["corpus", "build", "--out", f"{d}/c", "--clips", "0"]),
    ("corpus build", "unwritable", lambda d: ["corpus", "build", "--out", f"{d}/afile/c", "--clips", "1"]),
    ("corpus check", "missing", lambda d: ["corpus", "check", f"{d}/nothing"]),
    ("corpus check", "malformed", lambda d: ["corpus", "check", f"{d}/set"]),
    ("demo", "number", lambda d: ["demo", "--out", f"{d}/demo", "--steps", "ten"]),
    ("demo", "name", lambda d: ["demo", "--out", f"{d}/demo", "--samplers", "nope"]),
    ("demo", "unwritable", lambda d: ["demo", "--out", f"{d}/afile/demo"]),
    ("evidence retrieval", "missing", lambda d: ["evidence", "retrieval", "--corpus", f"{d}/no", "--out",
                                                 f"{d}/r.json"]),
    ("evidence degradation", "malformed", lambda d: ["evidence", "degradation", "--corpus", f"{d}/set", "--out",
                                                     f"{d}/g"]),
    ("evidence autoencoder", "missing", lambda d: ["evidence", "autoencoder", "--corpus", f"{d}/set", "--vae",
                                                   f"{d}/no.safetensors", "--out", f"{d}/a"]),
    ("evidence guidance-sweep", "number", lambda d: ["evidence", "guidance-sweep", "--corpus", f"{d}/set", "--out",
                                                     f"{d}/g", "--cfg", "nan"]),
    ("evidence closed-loop", "missing", lambda d: ["evidence", "closed-loop", "--corpus", f"{d}/no", "--out",
                                                   f"{d}/l"]),
    ("evidence report", "missing", lambda d: ["evidence", "report", "--runs", f"{d}/no", "--out", f"{d}/rep"]),
    ("generate", "number", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds", "1",
                                      "--out", f"{d}/g", "--steps", "0"]),
    ("generate", "malformed", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/set", "--seconds", "1",
                                         "--out", f"{d}/g"]),
    ("generate", "name", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds", "1",
                                    "--out", f"{d}/g", "--sampler", "nope"]),
    ("generate", "device", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds", "1",
                                      "--out", f"{d}/g", "--device", "bogus"]),
    ("generate", "unwritable", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds",
                                          "0.25", "--steps", "1", "--out", f"{d}/afile/g"]),
    ("metrics parity", "name", lambda d: ["metrics", "parity", "--embedder", "vggish", f"{d}/a.wav"]),
    ("score", "name", lambda d: ["score", "--generated", f"{d}/set", "--metrics", "nope", "--out", f"{d}/s"]),
    ("score", "malformed", lambda d: ["score", "--generated", f"{d}/set", "--metrics", "clap_evaluator", "--out",
                                      f"{d}/s"]),
    ("score", "unwritable", lambda d: ["score", "--generated", f"{d}/good", "--metrics", "clap_evaluator", "--out",
                                       f"{d}/s", "--cache-dir", f"{d}/afile/cache"]),
    ("score", "number", lambda d: ["score", "--generated", f"{d}/set", "--metrics", "clap_evaluator", "--set",
                                   "clap_evaluator.ci_resamples=-1", "--out", f"{d}/s"]),
    ("reproduce", "name", lambda d: ["reproduce", "nope"]),
    ("reproduce", "unwritable", lambda d: ["reproduce", "ddim", "--out", f"{d}/afile/r"]),
    ("gate", "missing", lambda d: ["gate", "--baseline", f"{d}/no", "--current", f"{d}/no2"]),
    ("gate", "malformed", lambda d: ["gate", "--baseline", f"{d}/garbage.json", "--current", f"{d}/garbage.json"]),
    ("gate", "number", lambda d: ["gate", "calibrate", "--pool", f"{d}/no", "--trials", "0"]),
    ("sweep", "missing", lambda d: ["sweep", f"{d}/no-spec.toml"]),
    ("sweep", "malformed", lambda d: ["sweep", f"{d}/garbage.json"]),
    ("time", "number", lambda d: ["time", "--sampler", "ddim", "--steps", "0"]),
    ("score", "threads", lambda d: ["score", "--generated", f"{d}/good", "--metrics", "clap_evaluator", "--out",
                                    f"{d}/s", "--threads", "0"]),
    ("generate", "threads", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--out",
                                       f"{d}/g", "--threads", "two"]),
    ("demo", "threads", lambda d: ["demo", "--out", f"{d}/demo", "--threads", "-1"]),
    ("sweep", "threads", lambda d: ["sweep", f"{d}/no-spec.toml", "--threads", "0"]),
    ("time", "threads", lambda d: ["time", "--sampler", "ddim", "--steps", "2", "--threads", "1.5"]),
    ("time", "name", lambda d: ["time", "--sampler", "nope", "--steps", "2"]),
    ("train", "missing", lambda d: ["train", "vae", "--corpus", f"{d}/no", "--out", f"{d}/t"]),
    ("train", "malformed", lambda d: ["train", "dit", "--corpus", f"{d}/set", "--out", f"{d}/t", "--vae",
                                      f"{d}/garbage.json"]),
    ("weights", "name", lambda d: ["weights", "verify", "no-such-weights"]),
    ("leaderboard render", "missing", lambda d: ["leaderboard", "render", f"{d}/no"]),
    ("leaderboard validate", "malformed", lambda d: ["leaderboard", "validate", f"{d}/garbage.json"]),
    ("leaderboard from-sweep", "missing", lambda d: ["leaderboard", "from-sweep", f"{d}/no", "--out", f"{d}/s",
                                                     "--eval-set", "x"]),
    ("leaderboard init", "malformed", lambda d: ["leaderboard", "init", f"{d}/b", "--from", f"{d}/garbage.json",
                                                 "--title", "t"]),
    ("leaderboard add", "missing", lambda d: ["leaderboard", "add", f"{d}/no-board", f"{d}/garbage.json"]),
    ("leaderboard build", "missing", lambda d: ["leaderboard", "build", f"{d}/no-board"]),
    ("listen make", "missing", lambda d: ["listen", "make", f"{d}/no", f"{d}/no2", "--out", f"{d}/page"]),
    ("listen analyze", "malformed", lambda d: ["listen", "analyze", f"{d}/garbage.json", "--key", f"{d}/garbage.json"]),
]  # fmt: skip


def test_the_table_names_every_subcommand():
    assert {command for command, _, _ in CASES} == subcommands()


@pytest.mark.parametrize("command, kind, argv", CASES, ids=[f"{c}-{k}" for c, k, _ in CASES])
def test_malformed_input_is_one_line_and_exit_2(bad, capsys, command, kind, argv):
    try:
        code = main(argv(bad))
    except SystemExit as e:  # a usage error, from the argument parser
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"t2mbench {command.split()[0]}: error: ") or err.startswith(f"t2mbench {command}: error: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if kind == "unwritable":  # found before any work, naming the path
        assert "afile" in err and not (bad / "s" / "scores.parquet").exists()
