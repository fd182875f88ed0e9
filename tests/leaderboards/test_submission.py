import copy
import json

import numpy as np
import pandas as pd
import pytest
from support import submissions as subs

from t2mbench.cli import main
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import read_json, sha256_file, write_json
from t2mbench.leaderboards import store, submission
from t2mbench.leaderboards.schema_check import check_schema, problems


def good(tmp_path, name="A", **kw):
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    n = kw.pop("clips", subs.CLIPS)
    return subs.write(tmp_path / name, name, rng.normal(0.3, 0.05, n), rng.normal(1.0, 0.1, n), (100.0, 95.0, 110.0),
                      **kw)  # fmt: skip


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_schema_is_versioned_and_uses_only_what_the_checker_implements():
    s = submission.schema()
    assert s["$id"].endswith("submission-1.schema.json") and s["properties"]["schema_version"] == {"const": 1}
    with pytest.raises(ValueError, match=r"^schema #/properties/x: unsupported keywords oneOf$"):
        check_schema({"properties": {"x": {"oneOf": []}}})


def test_validate_reports_every_problem_with_its_json_path(tmp_path, capsys):
    folder = good(tmp_path)
    doc = read_json(folder / "submission.json")
    doc["protocol"]["eval_set"]["clips"] = "20"
    del doc["system"]["code_commit"]
    doc["protocol"]["embedder_weights"]["clap"] = "not-a-sha"
    doc["protocol"]["audio"]["channels"] = "5.1"
    doc["hardware"]["colour"] = "red"
    doc["generation"]["steps"] = 0
    write_json(folder / "submission.json", doc)
    (folder / "scores.csv").write_text("tampered")
    expected = [
        ("$.system.code_commit", "required field is missing"),
        ("$.protocol.embedder_weights.clap", "'not-a-sha' does not match ^[0-9a-f]{64}$"),
        ("$.protocol.eval_set.clips", "expected integer, got string"),
        ("$.protocol.audio.channels", "must be one of 'mono', 'stereo', 'downmix-to-mono', 'as-generated', got '5.1'"),
        ("$.generation.steps", "must be at least 1, got 0"),
        ("$.hardware.colour", "unknown field"),
        ("$.scores.sha256", f"does not match scores.csv (sha256 {sha256_file(folder / 'scores.csv')})"),
    ]
    assert sorted(submission.check(folder)) == sorted(expected)
    assert main(["leaderboard", "validate", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2mbench leaderboard: error: {folder / 'submission.json'}: 7 problems: ")
    assert len(err.splitlines()) == 1  # every problem on the CLI's one error line
    for path, message in expected:
        assert f"{path}: {message}" in err


def test_the_scores_file_is_checked_against_its_hash_and_the_clip_count(tmp_path):
    folder = good(tmp_path, clips=19)
    assert submission.check(folder) == [
        ("$.scores.file", "clap_evaluator: 19 clips scored, the protocol says 20"),
        ("$.scores.file", "kl_evaluator: 19 clips scored, the protocol says 20"),
    ]
    folder = good(tmp_path, "B")
    (folder / "scores.csv").write_text((folder / "scores.csv").read_text() + "\n")
    assert submission.check(folder) == [
        ("$.scores.sha256", f"does not match scores.csv (sha256 {sha256_file(folder / 'scores.csv')})")
    ]
    found = problems([1, "x"], {"type": "array", "items": {"type": "integer"}})
    assert found == [("$[1]", "expected integer, got string")]
    (folder / "submission.json").write_text("{")
    assert submission.check(folder)[0][0] == "$"


def test_a_submission_with_another_clap_checkpoint_or_clip_count_is_refused_naming_each_field(tmp_path, capsys):
    board = tmp_path / "board"
    store.init(board, good(tmp_path, "ref"), title="t")
    store.add(board, tmp_path / "ref")
    before = snapshot(board)
    other = copy.deepcopy(subs.PROTOCOL)
    other["embedder_weights"]["clap"] = "d" * 64
    other["eval_set"]["clips"] = 25
    folder = good(tmp_path, "X", protocol=other, clips=25)
    assert submission.check(folder) == []
    with pytest.raises(submission.SubmissionError) as e:
        store.add(board, folder)
    assert e.value.problems == [
        ("$.protocol.embedder_weights.clap", f'board pins "{"a" * 64}", submission has "{"d" * 64}"'),
        ("$.protocol.eval_set.clips", "board pins 20, submission has 25"),
    ]
    assert snapshot(board) == before
    assert main(["leaderboard", "validate", str(folder), "--board", str(board)]) == 2
    err = capsys.readouterr().err
    assert "refused" not in err and "$.protocol.embedder_weights.clap: board pins" in err
    assert "$.protocol.eval_set.clips: board pins 20, submission has 25" in err
    assert main(["leaderboard", "add", str(board), str(good(tmp_path, "Y")), str(folder)]) == 2
    err = capsys.readouterr().err
    assert "refused, its protocol differs from the board's" in err
    assert "$.protocol.eval_set.clips: board pins 20, submission has 25" in err
    assert snapshot(board) == before


def test_add_is_idempotent_never_rewrites_another_and_a_bad_submission_changes_nothing(tmp_path, capsys):
    board = tmp_path / "board"
    a, b = good(tmp_path, "A"), good(tmp_path, "B")
    assert main(["leaderboard", "init", str(board), "--from", str(a), "--title", "T"]) == 0
    assert main(["leaderboard", "add", str(board), str(a), str(b)]) == 0
    ids = sorted(p.name for p in (board / "submissions").iterdir())
    assert capsys.readouterr().out.splitlines()[1:] == [f"added: {ids[0]}", f"added: {ids[1]}"]
    once = snapshot(board)
    assert main(["leaderboard", "add", str(board), str(b), str(a)]) == 0
    assert capsys.readouterr().out == f"unchanged: {ids[1]}\nunchanged: {ids[0]}\n"
    assert snapshot(board) == once
    # the same name and version with other scores: refused, A's folder untouched
    changed = subs.write(tmp_path / "A2", "A", np.full(20, 0.9), np.full(20, 0.1), (1.0, 0.5, 1.5))
    with pytest.raises(ConfigError, match="already on the board; submissions are never rewritten"):
        store.add(board, changed)
    # one malformed submission in a batch: nothing is added at all
    bad = good(tmp_path, "C")
    doc = read_json(bad / "submission.json")
    doc["best_of_n"] = 3
    write_json(bad / "submission.json", doc)
    d = good(tmp_path, "D")
    assert main(["leaderboard", "add", str(board), str(d), str(bad)]) == 2
    assert "$.best_of_n: unknown field" in capsys.readouterr().err
    assert snapshot(board) == once
    assert [p.name for p in (board / "submissions").iterdir() if p.name.startswith(".")] == []


def test_build_is_idempotent_and_writes_markdown_latex_ranking_and_site(tmp_path, capsys):
    board = tmp_path / "board"
    store.init(board, good(tmp_path, "A"), title="T")
    for name in ("A", "B <script>alert('x')</script> é"):
        store.add(board, good(tmp_path, name))
    assert main(["leaderboard", "build", str(board)]) == 0
    first = snapshot(board / "rendered")
    assert main(["leaderboard", "build", str(board)]) == 0
    assert snapshot(board / "rendered") == first
    assert {"board.md", "board.tex", "ranking.json", "site/index.html"} <= set(first)
    data = json.loads(first["ranking.json"])
    assert len(data["systems"]) == 2
    assert all(set(s["metrics"]) == set(subs.PROTOCOL["metrics"]) for s in data["systems"])
    # two systems: the per-metric ranks sum to 3, so the mean ranks do too; equal FDs share rank 1
    assert sum(s["overall"]["mean_rank"] for s in data["systems"]) == pytest.approx(3.0)
    assert [s["metrics"]["fd_evaluator"]["rank"] for s in data["systems"]] == [1, 1]
    assert "<script>alert" not in first["site/index.html"].decode()
    assert "B &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; é" in first["site/index.html"].decode()


def fake_cell(root, sampler="ddim", steps=10):
    """A scored sweep cell folder as bench.cells writes it (only what from_cell reads)."""
    cell = root / "cells" / f"{sampler}-{steps}-0123"
    (cell / "scores").mkdir(parents=True)
    spec = {"model": "tiny", "sampler": sampler, "sampler_options": {"eta": 0.0}, "steps": steps, "cfg": 3.0,
            "seed": 1, "seconds": 10.0, "clips": 3}  # fmt: skip
    write_json(cell / "cell.json", {"cell": spec, "scoring": {}})
    write_json(cell / "generation.json", {"weights": {"path": "/somewhere/model.safetensors", "sha256": "e" * 64}})
    metric = {"protocol_version": "sam-kld-1", "higher_is_better": False, "settings": {"sample_rate": 32000},
              "weights": {"evaluator": subs.SHA_B}}  # fmt: skip
    write_json(cell / "scores" / "summary.json", {"generated": {"clips": 3}, "metrics": {"kl_evaluator": metric}})
    write_json(cell / "scores" / "provenance.json", {
        "t2mbench_version": "0.2.0", "git": {"commit": "f00d", "dirty": True}, "device": "cpu", "cpu": "EPYC",
        "gpu": None, "torch": "2.13.0", "inputs": {"reference_manifest": {"path": "/x/manifest.jsonl",
                                                                          "sha256": "c" * 64}}})  # fmt: skip
    rows = [{"run_id": "r", "cell": cell.name, "system": "tiny", "metric": "kl_evaluator", "kind": "clip",
             "clip_id": f"c{i}", "value": 1.0 + i} for i in range(3)]  # fmt: skip
    rows += [{"run_id": "r", "cell": cell.name, "metric": "seconds_per_clip", "kind": "generation", "clip_id": f"c{i}",
              "value": 2.0 * (i + 1)} for i in range(3)]  # fmt: skip
    rows.append({"run_id": "r", "cell": cell.name, "metric": "nfe", "kind": "generation", "clip_id": "c0", "value": 10})
    results.frame(rows).to_csv(cell / "results.csv", index=False)
    pd.DataFrame({"id": ["c0"], "channels": [1], "sample_rate": [16000]}).to_parquet(cell / "manifest.parquet")
    return cell


def test_from_sweep_makes_one_valid_submission_per_cell(tmp_path, capsys):
    fake_cell(tmp_path, "ddim", 10)
    fake_cell(tmp_path, "ddpm", 50)
    assert main(["leaderboard", "from-sweep", str(tmp_path), "--out", str(tmp_path / "subs"), "--eval-set", "toy"]) == 0
    made = sorted(p for p in (tmp_path / "subs").iterdir() if p.is_dir())  # beside the folder's owner record
    assert [p.name for p in made] == ["ddim-10-0123", "ddpm-50-0123"]
    assert all(submission.check(p) == [] for p in made)
    doc = read_json(made[0] / "submission.json")
    assert doc["system"] == {"name": "tiny ddim-10", "version": "tiny weights eeeeeeeeeeee",
                             "code_commit": "f00d-dirty"}
    assert doc["protocol"] == {
        "metrics": {"kl_evaluator": {"protocol_version": "sam-kld-1", "higher_is_better": False,
                                     "settings": {"sample_rate": 32000}}},
        "embedder_weights": {"evaluator": subs.SHA_B},
        "eval_set": {"name": "toy", "manifest_sha256": "c" * 64, "clips": 3},
        "audio": {"loudness": submission.DEFAULT_LOUDNESS, "channels": "mono", "sample_rate": 16000,
                  "clip_seconds": 10.0},
        "best_of_n": 1,
    }  # fmt: skip
    assert doc["generation"]["weights"] == {"path": "model.safetensors", "sha256": "e" * 64}  # no machine paths
    assert doc["generation"]["sampler_options"] == {"eta": 0.0} and doc["timing"] == {"seconds_per_clip": 4.0}
    t = submission.scores(made[0], doc)
    assert sorted(set(t["metric"])) == ["kl_evaluator", "seconds_per_clip"] and set(t["system"]) == {"tiny ddim-10"}
    assert main(["leaderboard", "from-sweep", str(tmp_path / "subs"), "--out", str(tmp_path / "x"),
                 "--eval-set", "toy"]) == 2  # fmt: skip


def test_from_sweep_writes_each_submission_as_a_set(tmp_path, capsys, monkeypatch):
    """A full disk while the manifest is written leaves the earlier scores.csv and manifest together
    (before, a new scores.csv sat beside a manifest holding the old one's sha256)."""
    cell = fake_cell(tmp_path, "ddim", 10)
    argv = ["leaderboard", "from-sweep", str(tmp_path), "--out", str(tmp_path / "subs"), "--eval-set", "toy"]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "subs" / cell.name).iterdir()}
    table = results.read(cell / "results.csv")
    results.frame(table.assign(value=table["value"] + 1).to_dict("records")).to_csv(cell / "results.csv", index=False)

    def full_disk(path, obj):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(submission, "write_json", full_disk)
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("t2mbench leaderboard: error: No space left on device: ")
    assert {p.name: p.read_bytes() for p in (tmp_path / "subs" / cell.name).iterdir()} == before
    assert submission.check(tmp_path / "subs" / cell.name) == []


def test_build_rechecks_every_stored_submission(tmp_path, capsys):
    board = tmp_path / "board"
    store.init(board, good(tmp_path, "A"), title="T")
    sid, _ = store.add(board, tmp_path / "A")
    scores = board / "submissions" / sid / "scores.csv"
    scores.write_text(scores.read_text().replace("0.", "0.9", 1))  # a hand edit after adding
    assert main(["leaderboard", "build", str(board)]) == 2
    assert "$.scores.sha256: does not match scores.csv" in capsys.readouterr().err
    assert not (board / "rendered").exists()
