"""The timing harness: stage splitting from clock marks, the order-statistic CI of the median
(exact binomial coverage), and `t2mbench time` on the tiny model (stage table + fingerprint)."""

import json
import re

import numpy as np
import pytest
from scipy.stats import binom

from t2mbench.bench.timing import median_ci, split_marks, summarize
from t2mbench.cli import main


def test_marks_split_into_stages_steps_and_total_over_batches():
    marks = [("text_encoding", 0.0), ("denoising", 0.5), ("step", 1.5), ("step", 3.5), ("decoding", 3.5),
             ("done", 4.0), ("text_encoding", 4.0), ("denoising", 4.25), ("step", 5.0), ("step", 6.0),
             ("decoding", 6.0), ("done", 7.5)]  # fmt: skip
    got = split_marks(marks)
    assert got == {"text_encoding": 0.75, "denoising": 3.0 + 1.75, "decoding": 0.5 + 1.5,
                   "steps": [1.0 + 0.75, 2.0 + 1.0], "total": 7.5}  # fmt: skip


def test_the_median_ci_is_the_order_statistic_interval_with_exact_coverage():
    x = list(range(100, 0, -1))  # 1..100 shuffled order
    low, high, coverage = median_ci(x, 0.95)
    # n = 100: the 95% interval is [X(40), X(61)]: P(40 <= K <= 60) = 0.9648 for K ~ Bin(100, 1/2)
    assert (low, high) == (40.0, 61.0)
    assert coverage == pytest.approx(binom.cdf(60, 100, 0.5) - binom.cdf(39, 100, 0.5)) and 0.95 < coverage < 0.97
    assert median_ci([3.0, 1.0, 2.0], 0.95) == (1.0, 3.0, 0.75)  # too few: [min, max] and its coverage
    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s.median, s.min, s.n) == (3.0, 1.0, 5) and s.p90 == pytest.approx(np.percentile([1, 2, 3, 4, 10], 90))


def test_t2mbench_time_prints_the_stage_table_and_the_fingerprint(tmp_path, capsys):
    argv = ["time", "--model", "tiny", "--sampler", "ddim", "--steps", "3", "--seconds", "1", "--warmup", "1",
            "--repeats", "3", "--json", str(tmp_path / "t.json")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "t.json").read_text())
    assert out.startswith("# tiny ddim-3 cfg 3: 1 clip(s) of 1 s, batch 1, cpu; 1 warm-up + 3 timed runs\n")
    for stage in ("text encoding", "denoising", "  per step", "VAE decoding", "total", "wall (synchronised)"):
        assert re.search(rf"^\| {re.escape(stage)} \| [\d.e+-]+ \| [\d.e+-]+ \| [\d.e+-]+ \| \[", out, re.M), stage
    assert "CI of the median (75.0% exact, order statistics)" in out  # n = 3
    runs = report["runs"]
    assert len(runs) == 3 and all(len(r["steps"]) == 3 for r in runs)
    for r in runs:  # the stages are disjoint slices of the total; the steps are the denoising but its tail
        assert 0 <= r["denoising"] - sum(r["steps"]) < 0.05 * r["denoising"]
        assert r["text_encoding"] + r["denoising"] + r["decoding"] <= r["total"] + 1e-9 <= r["wall"] + 1e-6
    totals = sorted(r["total"] for r in runs)
    assert report["stages"]["total"]["median"] == totals[1] and report["stages"]["total"]["min"] == totals[0]
    assert report["real_time_factor"] == pytest.approx(totals[1] / 1.0) and report["nfe"] == 3
    assert report["memory"]["peak_rss_bytes"] > 100 * 2**20
    fp = report["fingerprint"]
    assert fp["torch"] and fp["cpu_model"] and fp["cpu_count"] >= 1 and fp["dtype"] == "float32"
    assert f"  torch: {fp['torch']}\n" in out and f"  cpu_model: {fp['cpu_model']}" in out
    assert re.search(r"^real-time factor [\d.]+ \(total / audio seconds\); NFE 3$", out, re.M)
