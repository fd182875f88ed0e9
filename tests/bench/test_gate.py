"""``t2mbench gate``: verdicts, numbers and exit codes on tables with a known truth."""

import json

import numpy as np
import pytest

from t2mbench.bench.gates import gate, load_rules
from t2mbench.bench.gates.rules import parse_rules
from t2mbench.cli import main
from t2mbench.core import results
from t2mbench.core.errors import ConfigError
from t2mbench.metrics.frechet import GaussianStats, embedding_stats, fd_difference_interval


def _run(values, *, seed=1, steps=50, metric="stft", folder=None, arrays=None):
    """A scoring run: per-clip rows of ``metric`` (one per value) and its aggregate."""
    attrs = {"run_id": f"r{seed}-{steps}", "model": "tiny", "sampler": "ddim", "steps": steps, "cfg": 3.0, "seed": seed}
    rows = [{**attrs, "metric": metric, "kind": "clip", "clip_id": f"c{i:02d}", "value": v}
            for i, v in enumerate(values)]
    rows.append({**attrs, "metric": metric, "kind": "aggregate", "value": float(np.mean(values))})
    table = results.frame(rows)
    if folder is None:
        return table
    results.write(table, folder, "scores")
    if arrays:
        (folder / "arrays").mkdir()
        for name, a in arrays.items():
            np.savez(folder / "arrays" / f"{name}.npz", **a)
    return folder


def test_a_shift_beyond_noise_fails_and_the_numbers_are_the_paired_ones():
    rng = np.random.default_rng(0)
    base = rng.normal(1.0, 0.2, 24)
    cur = base + 0.3 + rng.normal(0.0, 0.05, 24)  # stft is lower-is-better: +0.3 is worse
    result = gate(_run(base), _run(cur, seed=2))
    (t,) = result.tests
    assert (t.metric, t.n, t.higher_is_better, t.verdict) == ("stft", 24, False, "regression")
    assert t.difference == pytest.approx(np.mean(cur - base)) and t.ci_low > 0.25
    assert t.p == pytest.approx(1 / 10001)  # no sign vector out of 10,000 reaches the observed mean
    assert t.note == "paired by clip id (seeds differ)" and result.exit_code == 1
    assert t.cell == "tiny, ddim 50 steps, cfg 3, seed 1 → seed 2"
    assert "**REGRESSION** (1 of 1 metric tests)" in result.markdown()


def test_noise_passes_and_direction_comes_from_the_registry():
    rng = np.random.default_rng(1)
    base = rng.normal(5.0, 1.0, 24)
    better = base + 2.0  # sisdr: higher is better, so +2 dB is an improvement, not a regression
    r = gate(_run(base, metric="sisdr"), _run(better, metric="sisdr"))
    assert r.tests[0].higher_is_better is True and r.tests[0].worse_by == pytest.approx(-2.0)
    assert r.tests[0].p == pytest.approx(1.0) and r.exit_code == 0
    noise = gate(_run(base, metric="sisdr"), _run(base + rng.normal(0, 0.1, 24), metric="sisdr"))
    assert noise.exit_code == 0 and noise.tests[0].verdict == "pass"


def test_margin_absolute_and_relative():
    base = np.linspace(1.0, 2.0, 20)
    cur = base + 0.1  # significant (every clip worse) but 0.1 absolute, 6.7 % of the mean 1.5
    assert gate(_run(base), _run(cur)).exit_code == 1
    assert gate(_run(base), _run(cur), parse_rules({"metrics": {"stft": {"margin": 0.2}}})).exit_code == 0
    assert gate(_run(base), _run(cur), parse_rules({"metrics": {"stft": {"margin": "10%"}}})).exit_code == 0
    assert gate(_run(base), _run(cur), parse_rules({"metrics": {"stft": {"margin": "5%"}}})).exit_code == 1
    assert gate(_run(base), _run(cur), parse_rules({"metrics": {"stft": {"direction": "higher"}}})).exit_code == 0


def test_holm_across_metrics_controls_the_family():
    # two metrics each with one-sided p = 1/32 (5 clips all worse): alone each fails at 0.05,
    # together Holm asks p_(1) <= 0.025 and neither fails
    base = np.arange(5.0)
    rows = results.concat([_run(base, metric="stft"), _run(base, metric="mel")])
    worse = results.concat([_run(base + 1, metric="stft"), _run(base + 1, metric="mel")])
    single = gate(_run(base), _run(base + 1))
    assert single.tests[0].p == pytest.approx(1 / 32) and single.exit_code == 1
    both = gate(rows, worse)
    assert [t.p_holm for t in both.tests] == pytest.approx([2 / 32, 2 / 32]) and both.exit_code == 0


def test_set_level_fd_uses_the_saved_frames_paired(tmp_path):
    rng = np.random.default_rng(3)
    ref = embedding_stats(rng.normal(size=(400, 3)))
    ids = [f"c{i:02d}" for i in range(30)]
    frames_b = {i: rng.normal(0.0, 1.0, (6, 3)) for i in ids}
    frames_c = {i: f + 0.6 for i, f in frames_b.items()}  # shifted off the reference: FD up by ~1.08

    def arrays(frames):
        return {"clip_ids": np.array(ids), "frames": np.concatenate([frames[i] for i in ids]).astype(np.float32),
                "offsets": np.arange(31) * 6, "reference_mu": ref.mu, "reference_sigma": ref.sigma}

    a = _run(np.ones(30), folder=tmp_path / "a", arrays={"fd_openl3": arrays(frames_b)})
    b = _run(np.ones(30), folder=tmp_path / "b", arrays={"fd_openl3": arrays(frames_c)})
    rows = results.read(a / "scores.parquet")
    rows = results.concat([rows, results.frame([{**rows.iloc[-1].to_dict(), "metric": "fd_openl3", "value": 1.0}])])
    results.write(rows, a, "scores")
    rows_b = results.read(b / "scores.parquet")
    results.write(results.concat([rows_b, results.frame([{**rows_b.iloc[-1].to_dict(), "metric": "fd_openl3"}])]),
                  b, "scores")
    r = gate(a, b)
    fd = {t.metric: t for t in r.tests}["fd_openl3"]
    f32 = {k: v.astype(np.float32) for k, v in frames_c.items()}, {k: v.astype(np.float32) for k, v in frames_b.items()}
    iv = fd_difference_interval(*f32, GaussianStats(ref.mu, ref.sigma, 0), seed=0)
    assert fd.test.startswith("paired set") and fd.n == 30
    assert (fd.difference, fd.ci_low, fd.ci_high) == pytest.approx((iv.estimate, iv.low, iv.high))
    assert fd.verdict == "regression" and r.exit_code == 1
    assert {t.metric: t.verdict for t in gate(a, a).tests} == {"stft": "pass", "fd_openl3": "pass"}


def test_usage_errors_are_exit_2_with_one_line(tmp_path, capsys):
    _run(np.ones(5), folder=tmp_path / "a")
    _run(np.ones(4), folder=tmp_path / "b")
    assert main(["gate", "--baseline", str(tmp_path / "a"), "--current", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: no such result folder or table" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(tmp_path / "a"), "--current", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "stft: the runs scored different clips (only in baseline: c04; only in current: -)" in err
    assert main(["gate", "--baseline", str(tmp_path / "a")]) == 2
    assert "gate needs --current" in capsys.readouterr().err
    (tmp_path / "r.toml").write_text('[metrics.stft]\nmargin = "x%"\n')
    assert main(["gate", "--baseline", str(tmp_path / "a"), "--current", str(tmp_path / "a"),
                 "--rules", str(tmp_path / "r.toml")]) == 2
    assert "metric 'stft': margin must be a number >= 0 or a percentage like '5%', got 'x%'" in capsys.readouterr().err


def test_cli_exit_codes_and_reports(tmp_path, capsys):
    base = np.linspace(1.0, 2.0, 20)
    _run(base, folder=tmp_path / "a")
    _run(base + 0.5, folder=tmp_path / "b", seed=2)
    (tmp_path / "rules.json").write_text(json.dumps({"alpha": 0.01, "metrics": {"stft": {"margin": 0.1}}}))
    code = main(["gate", "--baseline", str(tmp_path / "a"), "--current", str(tmp_path / "b"), "--rules",
                 str(tmp_path / "rules.json"), "--json", str(tmp_path / "g.json"),
                 "--markdown", str(tmp_path / "g.md")])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "g.json").read_text())
    assert code == 1 and report["exit_code"] == 1 and report["family_alpha"] == 0.01
    assert report["tests"][0]["difference"] == pytest.approx(0.5) and report["tests"][0]["margin"] == 0.1
    assert out == (tmp_path / "g.md").read_text()
    assert "| stft | ↓ | 1.5 | 2 | 0.5 [0.5, 0.5] | 0.1 | <0.001 (<0.001) | ❌ **regression** |" in out
    assert main(["gate", "--baseline", str(tmp_path / "a"), "--current", str(tmp_path / "a")]) == 0


def test_rules_files_toml_and_json(tmp_path):
    (tmp_path / "r.toml").write_text('alpha = 0.1\n[metrics.fd_evaluator]\ndirection = "lower"\nmargin = "5%"\n'
                                     '[metrics.seconds_per_clip]\nskip = true\n')
    rules = load_rules(tmp_path / "r.toml")
    fd = rules.rule("fd_evaluator")
    assert (rules.alpha, fd.higher_is_better, fd.margin, fd.relative, fd.alpha) == (0.1, False, 0.05, True, 0.05)
    assert fd.margin_for(200.0) == pytest.approx(10.0) and rules.rule("seconds_per_clip").skip
    (tmp_path / "r.yaml").write_text("")
    with pytest.raises(ConfigError, match=r"r.yaml: a rules file is .json or .toml"):
        load_rules(tmp_path / "r.yaml")
    with pytest.raises(ConfigError, match="metric 'x': unknown keys colour; a rule has alpha, direction, margin, skip"):
        parse_rules({"metrics": {"x": {"colour": 1}}})
    with pytest.raises(ConfigError, match="metric 'x': direction must be 'lower' or 'higher', got 'up'"):
        parse_rules({"metrics": {"x": {"direction": "up"}}})
