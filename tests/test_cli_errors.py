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
    (tmp_path / "spec.toml").write_text('out = "x"\n[grid]\nmodels = ["tiny"]\nsamplers = ["ddim"]\nsteps = [2]\n'
                                        'cfg = 3.0\nseeds = [1]\nclips = [1]\nseconds = 1.0\n[scoring]\n'
                                        f'prompts = "{tmp_path}/good"\nmetrics = ["clap_evaluator"]\n')  # fmt: skip
    (tmp_path / "ap.json").write_text('{"task": {"batch_size": 0}, "model": {"base": "tiny"}, "train": {"steps": 1}}')
    (tmp_path / "sweep" / "cells" / "c").mkdir(parents=True)  # a sweep folder with one scored cell
    (tmp_path / "sweep" / "cells" / "c" / "results.csv").write_text("x\n")
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
    ("generate", "control name", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                            "--seconds", "1", "--out", f"{d}/g", "--control", "timbre=x.wav"]),
    ("generate", "control number", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                              "--seconds", "1", "--out", f"{d}/g", "--control",
                                              f"melody={d}/good/a.wav", "--control-scale", "melody=two"]),
    ("generate", "control missing", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                               "--seconds", "1", "--out", f"{d}/g", "--control",
                                               f"melody={d}/nothing.wav"]),
    ("generate", "control malformed", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                                 "--seconds", "1", "--out", f"{d}/g", "--control", "melody"]),
    *(("generate", f"inpaint {what}", lambda d, extra=extra: [
        "generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds", "1", "--out", f"{d}/g", *extra])
      for what, extra in (("malformed", ["--control", "audio=x.wav", "--inpaint", "0.2-0.5"]),
                          ("end before start", ["--control", "audio=x.wav", "--inpaint", "0.5:0.2"]),
                          ("outside the clip", ["--control", "audio=x.wav", "--inpaint", "0.5:1.5"]),
                          ("without audio", ["--inpaint", "0.2:0.5"]),
                          ("audio without span", ["--control", "audio=x.wav"]))),
    ("generate", "audio prompt missing", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                                    "--seconds", "1", "--out", f"{d}/g", "--audio-prompt",
                                                    f"{d}/nothing.wav"]),
    ("generate", "audio prompt number", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                                   "--seconds", "1", "--out", f"{d}/g", "--audio-prompt",
                                                   f"{d}/good/a.wav", "--audio-prompt-scale", "-0.5"]),
    ("generate", "audio prompt pool", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                                 "--seconds", "1", "--out", f"{d}/g", "--audio-prompt",
                                                 f"{d}/good/a.wav", "--audio-prompt-pool", "3"]),
    ("generate", "audio prompt pool", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                                 "--seconds", "1", "--out", f"{d}/g", "--audio-prompt",
                                                 f"{d}/good/a.wav", "--audio-prompt-pool", "16"]),
    ("generate", "audio prompt with control", lambda d: ["generate", "--model", "tiny", "--prompts",
                                                         f"{d}/prompts.txt", "--seconds", "1", "--out", f"{d}/g",
                                                         "--audio-prompt", f"{d}/good/a.wav", "--control",
                                                         f"melody={d}/good/a.wav"]),
    ("generate", "audio prompt weights", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                                    "--seconds", "1", "--out", f"{d}/g", "--audio-prompt-weights",
                                                    f"{d}/garbage.json"]),
    ("generate", "audio prompt weights missing", lambda d: ["generate", "--model", "tiny", "--prompts",
                                                            f"{d}/prompts.txt", "--seconds", "1", "--out", f"{d}/g",
                                                            "--audio-prompt", f"{d}/good/a.wav",
                                                            "--audio-prompt-weights", f"{d}/no.safetensors"]),
    ("generate", "audio prompt weights malformed", lambda d: ["generate", "--model", "tiny", "--prompts",
                                                              f"{d}/prompts.txt", "--seconds", "1", "--out", f"{d}/g",
                                                              "--audio-prompt", f"{d}/good/a.wav",
                                                              "--audio-prompt-weights", f"{d}/garbage.json"]),
    ("generate", "audio prompt malformed", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt",
                                                      "--seconds", "1", "--out", f"{d}/g", "--audio-prompt",
                                                      f"{d}/garbage.json"]),
    ("metrics parity", "name", lambda d: ["metrics", "parity", "--embedder", "vggish", f"{d}/a.wav"]),
    ("score", "name", lambda d: ["score", "--generated", f"{d}/set", "--metrics", "nope", "--out", f"{d}/s"]),
    ("score", "malformed", lambda d: ["score", "--generated", f"{d}/set", "--metrics", "clap_evaluator", "--out",
                                      f"{d}/s"]),
    ("score", "unwritable", lambda d: ["score", "--generated", f"{d}/good", "--metrics", "clap_evaluator", "--out",
                                       f"{d}/s", "--cache-dir", f"{d}/afile/cache"]),
    ("score", "number", lambda d: ["score", "--generated", f"{d}/set", "--metrics", "clap_evaluator", "--set",
                                   "clap_evaluator.ci_resamples=-1", "--out", f"{d}/s"]),
    ("score", "preset", lambda d: ["score", "--generated", f"{d}/set", "--preset", "nope", "--out", f"{d}/s"]),
    ("score", "unverified", lambda d: ["score", "--generated", f"{d}/set", "--metrics", "clap_evaluator", "--no-verify",
                                       "--out", f"{d}/s"]),
    ("score", "exclusive", lambda d: ["score", "--generated", f"{d}/set", "--preset", "paper-2026", "--metrics",
                                      "clap_evaluator", "--skip-missing", "--out", f"{d}/s"]),
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
    ("train", "malformed", lambda d: ["train", "control", "--corpus", f"{d}/set", "--out", f"{d}/t"]),
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
    ("corpus build", "number", lambda d: ["corpus", "build", "--out", f"{d}/c", "--workers", "0"]),
    ("demo", "number", lambda d: ["demo", "--out", f"{d}/demo", "--cfg", "-1"]),
    ("evidence degradation", "number", lambda d: ["evidence", "degradation", "--corpus", f"{d}/set", "--out", f"{d}/g",
                                                  "--max-reference", "0"]),
    ("evidence autoencoder", "number", lambda d: ["evidence", "autoencoder", "--corpus", f"{d}/set", "--vae",
                                                  f"{d}/no.safetensors", "--out", f"{d}/a", "--clips", "-3"]),
    ("evidence closed-loop", "number", lambda d: ["evidence", "closed-loop", "--corpus", f"{d}/set", "--out", f"{d}/l",
                                                  "--steps", "0"]),
    ("generate", "number", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds",
                                      "inf", "--out", f"{d}/g"]),
    ("generate", "number", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds", "1",
                                      "--out", f"{d}/g", "--sigma-min", "0"]),
    ("generate", "device", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds", "1",
                                      "--out", f"{d}/g", "--device", "cuda:7"]),
    ("generate", "ignored", lambda d: ["generate", "--model", "tiny", "--prompts", f"{d}/prompts.txt", "--seconds", "1",
                                       "--out", f"{d}/g", "--sampler", "ddim", "--sigma-max", "80"]),
    ("gate", "number", lambda d: ["gate", "calibrate", "--pool", f"{d}/no", "--power-trials", "-1"]),
    ("gate", "number list", lambda d: ["gate", "calibrate", "--pool", f"{d}/no", "--clip-counts", "8,x"]),
    ("metrics parity", "number", lambda d: ["metrics", "parity", "--embedder", "passt", "--tolerance", "nan",
                                            f"{d}/a.wav"]),
    ("reproduce", "number", lambda d: ["reproduce", "ddim", "--clips", "0", "--out", f"{d}/r"]),
    ("reproduce", "number", lambda d: ["reproduce", "ddim", "--resolve-clips", "-1", "--out", f"{d}/r"]),
    ("score", "number", lambda d: ["score", "--generated", f"{d}/good", "--metrics", "clap_evaluator", "--seed", "-1",
                                   "--out", f"{d}/s"]),
    ("time", "number", lambda d: ["time", "--sampler", "ddim", "--steps", "2", "--warmup", "-1"]),
    ("time", "number", lambda d: ["time", "--sampler", "ddim", "--steps", "2", "--repeats", "two"]),
    ("time", "device", lambda d: ["time", "--sampler", "ddim", "--steps", "2", "--device", "bogus"]),
    ("train", "number", lambda d: ["train", "vae", "--corpus", f"{d}/set", "--out", f"{d}/t", "--steps", "0"]),
    ("train", "number", lambda d: ["train", "ap-adapter", "--corpus", f"{d}/good", "--out", f"{d}/t", "--config",
                                   f"{d}/ap.json"]),
    ("train", "ignored", lambda d: ["train", "ap-adapter", "--corpus", f"{d}/good", "--out", f"{d}/t", "--ship",
                                    f"{d}/s"]),
    ("evidence ap-adapter", "missing", lambda d: ["evidence", "ap-adapter", "--corpus", f"{d}/no", "--out",
                                                  f"{d}/a.json"]),
    ("evidence ap-adapter", "missing", lambda d: ["evidence", "ap-adapter", "--corpus", f"{d}/good", "--weights",
                                                  f"{d}/no.safetensors", "--out", f"{d}/a.json"]),
    ("evidence ap-adapter", "number", lambda d: ["evidence", "ap-adapter", "--corpus", f"{d}/good", "--pool", "3",
                                                 "--out", f"{d}/a.json"]),
    ("evidence ap-adapter", "number", lambda d: ["evidence", "ap-adapter", "--corpus", f"{d}/good", "--scale", "-1",
                                                 "--out", f"{d}/a.json"]),
    ("listen make", "number", lambda d: ["listen", "make", f"{d}/good", f"{d}/good", "--out", f"{d}/page", "--seconds",
                                         "-1"]),
    ("listen analyze", "number", lambda d: ["listen", "analyze", f"{d}/garbage.json", "--key", f"{d}/garbage.json",
                                            "--resamples", "0"]),
    ("time", "unwritable", lambda d: ["time", "--sampler", "ddim", "--steps", "2", "--json", f"{d}/afile/t.json"]),
    ("gate", "unwritable", lambda d: ["gate", "--baseline", f"{d}/no", "--current", f"{d}/no2", "--json",
                                      f"{d}/afile/g.json"]),
    ("evidence retrieval", "unwritable", lambda d: ["evidence", "retrieval", "--corpus", f"{d}/good", "--out",
                                                    f"{d}/afile/r.json"]),
    ("listen analyze", "unwritable", lambda d: ["listen", "analyze", f"{d}/garbage.json", "--key", f"{d}/garbage.json",
                                                "--out", f"{d}/afile/x/r.json"]),
    ("leaderboard render", "unwritable", lambda d: ["leaderboard", "render", f"{d}/no", "--out", f"{d}/afile/b.md"]),
    ("listen make", "unwritable", lambda d: ["listen", "make", f"{d}/good", f"{d}/good", "--out", f"{d}/afile/p"]),
    ("train", "unwritable", lambda d: ["train", "vae", "--corpus", f"{d}/good", "--out", f"{d}/afile/t"]),
    ("sweep", "unwritable", lambda d: ["sweep", f"{d}/spec.toml", "--out", f"{d}/afile/s"]),
    ("leaderboard from-sweep", "unwritable", lambda d: ["leaderboard", "from-sweep", f"{d}/sweep", "--out",
                                                        f"{d}/afile/s", "--eval-set", "x"]),
    ("evidence ap-adapter", "unwritable", lambda d: ["evidence", "ap-adapter", "--corpus", f"{d}/good", "--out",
                                                     f"{d}/afile/a.json"]),
    ("evidence degradation", "unwritable", lambda d: ["evidence", "degradation", "--corpus", f"{d}/good", "--out",
                                                      f"{d}/afile/g"]),
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


def test_no_option_takes_an_unchecked_number():
    """Every numeric option of every subcommand parses through a checked type (core.cli_format:
    integer, number, device), so a bad value is a usage error before any work."""
    unchecked = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in parser._actions:
            numeric = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
            if action.type in (int, float) or (numeric and action.type is None and action.nargs != 0):
                unchecked.append(f"{prefix} {action.option_strings or action.dest}")
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    assert unchecked == []


def test_a_metric_setting_bounded_on_one_side_is_one_line(bad, capsys):
    """sisdr's eps (> 0, no upper bound) raised a TypeError from the message's formatting."""
    code = main(["score", "--generated", f"{bad}/good", "--metrics", "sisdr", "--set", "sisdr.eps=-1", "--out",
                 f"{bad}/s"])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err == ("t2mbench score: error: metric 'sisdr': eps must be a finite number > 0, "
                                       "got -1\n")  # fmt: skip
