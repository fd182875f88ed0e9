from importlib import metadata

import pytest

from t2mbench.cli import main
from t2mbench.core import plugins, results
from t2mbench.core.errors import ConfigError
from t2mbench.leaderboards import renderers
from t2mbench.leaderboards.board import board, read_results
from t2mbench.leaderboards.renderers.latex import render as latex
from t2mbench.leaderboards.renderers.markdown import render


def run(system: str, fd: float, clap: float) -> object:
    """A scoring run's result table: FD with a CI, CLAP with a CI and per-clip rows, a component."""
    base = {"run_id": system, "system": system}
    return results.frame([
        {**base, "metric": "fd_evaluator", "kind": "aggregate", "value": fd, "ci_low": fd - 1, "ci_high": fd + 2},
        {**base, "metric": "clap_evaluator", "kind": "aggregate", "value": clap, "ci_low": clap - 0.1,
         "ci_high": clap + 0.1},
        {**base, "metric": "clap_evaluator", "kind": "clip", "clip_id": "c0", "value": clap},
        {**base, "metric": "fd_evaluator.fad_inf", "kind": "aggregate", "value": fd / 2},
    ])  # fmt: skip


def test_board_takes_the_aggregate_rows_in_the_asked_order():
    b = board([run("tiny ddim-50", 123.0, 0.23), run("tiny | ddpm", 190.0, 0.2)], ["clap_evaluator", "fd_evaluator"])
    assert b.values.tolist() == [
        ["tiny ddim-50", "clap_evaluator", 0.23, 0.13, pytest.approx(0.33)],
        ["tiny ddim-50", "fd_evaluator", 123.0, 122.0, 125.0],
        ["tiny | ddpm", "clap_evaluator", 0.2, pytest.approx(0.1), pytest.approx(0.3)],
        ["tiny | ddpm", "fd_evaluator", 190.0, 189.0, 192.0],
    ]
    with pytest.raises(ConfigError, match="^no aggregate rows for kad; the tables hold fd_evaluator, clap_evaluator, "):
        board([run("a", 1.0, 0.1)], ["kad"])


def test_markdown_is_golden_and_escapes_pipes():
    b = board([run("tiny ddim-50", 123.0, 0.23), run("tiny | ddpm", 190.0, 0.2)])
    assert render(b) == (
        "| system | fd_evaluator | clap_evaluator | fd_evaluator.fad_inf |\n"
        "|---|---|---|---|\n"
        "| tiny ddim-50 | 123 [122, 125] | 0.23 [0.13, 0.33] | 61.5 |\n"
        "| tiny \\| ddpm | 190 [189, 192] | 0.2 [0.1, 0.3] | 95 |\n"
    )


def test_cli_renders_from_folders_and_files(tmp_path, capsys):
    results.write(run("A", 10.0, 0.5), tmp_path / "sweep", "results")
    results.write(run("B", 20.0, 0.4), tmp_path / "score", "scores")
    assert read_results(tmp_path / "sweep").equals(run("A", 10.0, 0.5))
    code = main(["leaderboard", "render", str(tmp_path / "sweep"), str(tmp_path / "score" / "scores.csv"),
                 "--metrics", "fd_evaluator", "--out", str(tmp_path / "board.md")])  # fmt: skip
    assert code == 0
    assert (tmp_path / "board.md").read_text() == (
        "| system | fd_evaluator |\n|---|---|\n| A | 10 [9, 12] |\n| B | 20 [19, 22] |\n"
    )
    assert main(["leaderboard", "render", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"t2mbench leaderboard: error: {tmp_path}: no results.parquet or scores.parquet in this folder\n"
    )


def test_a_renderer_plugin_is_one_function_and_one_entry_point(monkeypatch, tmp_path, capsys):
    ep = metadata.EntryPoint("csv", "support.csv_renderer:SPEC", "t2mbench.renderers")
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep] if group == "t2mbench.renderers" else [])
    monkeypatch.setattr(renderers.REGISTRY, "_cache", None)
    results.write(run("A", 10.0, 0.5), tmp_path, "results")
    assert main(["leaderboard", "render", str(tmp_path), "--renderer", "csv", "--metrics", "fd_evaluator"]) == 0
    assert capsys.readouterr().out == "A,fd_evaluator,10\n"
    assert main(["leaderboard", "render", str(tmp_path), "--renderer", "html"]) == 2
    known = "markdown, latex, csv"
    assert capsys.readouterr().err == f"t2mbench leaderboard: error: unknown renderer 'html'; known: {known}\n"


def test_latex_is_golden_and_escapes_every_special_character():
    b = board([run("tiny_ddim & 50% <b>", 123.0, 0.23), run("naïve \\ {x} #1 $ ~ ^", 190.0, 0.2)], ["fd_evaluator"])
    assert latex(b.assign(rank=[1, 2]), caption="T_1") == (
        "\\begin{table}\n\\centering\n\\caption{T\\_1}\n\\begin{tabular}{lc}\n\\toprule\n"
        "system & fd\\_evaluator \\\\\n\\midrule\n"
        "tiny\\_ddim \\& 50\\% \\textless{}b\\textgreater{} & 123 [122, 125]$^{1}$ \\\\\n"
        "naïve \\textbackslash{} \\{x\\} \\#1 \\$ \\textasciitilde{} \\textasciicircum{} & 190 [189, 192]$^{2}$ \\\\\n"
        "\\bottomrule\n\\end{tabular}\n\\end{table}\n"
    )


def test_markdown_shows_shared_ranks_and_keeps_html_as_text():
    b = board([run("<script>alert(1)</script>", 123.0, 0.23)], ["fd_evaluator"]).assign(rank=[1])
    assert render(b).splitlines()[2] == "| &lt;script&gt;alert(1)&lt;/script&gt; | 123 [122, 125] (#1) |"
