"""A listening key or answer file that is not what listen make and its page write is one line
naming every bad field by JSON path (exit 2), never a traceback."""

import json

import pytest

from t2mbench.cli import main

KEY = {"page_id": "p1", "systems": ["A", "B"], "questions": ["quality"],
       "items": {"i000": {"type": "ab", "clip_id": "c", "a": "A", "b": "B"}}}  # fmt: skip


@pytest.mark.parametrize("key, answers, message", [
    ({"x": 1}, {"page_id": "p1", "answers": []},
     "key.json: 3 problems: $.page_id: required field is missing; $.systems: required field is missing; $.items: "
     "required field is missing"),
    ({**KEY, "items": {"i000": {"type": "abx", "a": "A", "b": "C"}}}, {"page_id": "p1", "answers": []},
     "key.json: 1 problem: $.items.i000.type: must be one of 'ab', 'mos', got 'abx'"),
    ({**KEY, "items": {"i000": {"type": "ab", "a": "A", "b": "C"}}}, {"page_id": "p1", "answers": []},
     "key.json: $.items name systems not in $.systems: C"),
    (KEY, {"page_id": "p1", "answers": [{"item": "i000", "choice": 1}, {"ratings": {"quality": "good"}}]},
     "answers.json: 3 problems: $.answers[0].choice: expected string or null, got integer; $.answers[1].item: "
     "required field is missing; $.answers[1].ratings.quality: expected number, got string"),
    (KEY, [1], "answers.json: 1 problem: $: expected object, got array"),
])  # fmt: skip
def test_a_malformed_key_or_answer_file_is_one_line_naming_the_field(tmp_path, capsys, key, answers, message):
    (tmp_path / "key.json").write_text(json.dumps(key))
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    assert main(["listen", "analyze", str(tmp_path / "answers.json"), "--key", str(tmp_path / "key.json")]) == 2
    assert capsys.readouterr().err == f"t2mbench listen: error: {tmp_path}/{message}\n"


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_failed_make_leaves_the_earlier_page_and_key_together(tmp_path, capsys, monkeypatch):
    from support.listening_runs import runs

    from t2mbench.leaderboards import listening

    argv = ["listen", "make", *map(str, runs(tmp_path, ["a", "b"])), "--out", str(tmp_path / "t"), "--clips", "2",
            "--seconds", "1"]  # fmt: skip
    assert main(argv) == 0
    before = snapshot(tmp_path / "t")
    real, calls = listening._prepare, []

    def full_disk(src, dst, *args):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst, *args)

    monkeypatch.setattr(listening, "_prepare", full_disk)
    assert main(argv) == 2
    assert capsys.readouterr().err.endswith(f"No space left on device: {calls[-1]}\n")
    assert snapshot(tmp_path / "t") == before
