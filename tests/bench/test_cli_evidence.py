import ast
import subprocess
import sys
from pathlib import Path

import pytest

import t2mbench.bench.evidence as evidence
from t2mbench.cli import main

STUDIES = ("autoencoder", "closed-loop", "degradation", "guidance-sweep", "retrieval", "report", "ap-adapter")


def test_help_lists_the_seven_studies(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evidence", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for study in STUDIES:
        assert f"t2mbench evidence {study} " in out, study  # the example epilog
        assert any(line.split()[:1] == [study] for line in out.splitlines()), study  # the sub-command list


@pytest.mark.parametrize("study", STUDIES)
def test_each_study_has_its_docstring_and_an_example(study, capsys):
    with pytest.raises(SystemExit):
        main(["evidence", study, "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and f"t2mbench evidence {study} --" in out
    assert f"Command: ``t2mbench evidence {study} " in out  # the study module's docstring


def test_a_missing_corpus_is_one_stderr_line_and_exit_2(tmp_path):
    missing = tmp_path / "no-such-corpus"
    proc = subprocess.run(
        [sys.executable, "-m", "t2mbench", "evidence", "closed-loop", "--corpus", str(missing),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("t2mbench evidence: error: ") and str(missing) in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_no_study_is_a_script_of_its_own():
    """The studies run only through the CLI (its error handling): no main(), argparse or __main__ guard."""
    paths = sorted(Path(evidence.__path__[0]).glob("*.py"))
    assert len(paths) == 8  # __init__ and the seven studies
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        assert "main" not in names and "argparse" not in imported, path.name
        assert "__main__" not in path.read_text(encoding="utf-8"), path.name
