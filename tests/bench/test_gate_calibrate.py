"""Gate calibration on a synthetic pool with a known truth, and the latency verdict."""

import numpy as np
import pytest

from t2mbench.bench.gates.calibrate import _pairs, calibrate, load_pool, render
from t2mbench.bench.gates.latency import interleaved_ratios, latency_verdict
from t2mbench.core import results


def _pool(root, seeds=(1, 2, 3, 4), clips=16, shift10=1.0):
    """A pool: per prompt a fixed effect, per seed noise sd 0.5; DDIM-10 worse by ``shift10`` on
    kl (lower-is-better) and clap (higher-is-better); FD frames drawn around a prompt mean."""
    rng = np.random.default_rng(0)
    prompt = rng.normal(0.0, 1.0, clips)
    centre = rng.normal(0.0, 1.0, (clips, 4))
    ids = [f"c{i:02d}" for i in range(clips)]
    ref_mu, ref_sigma = np.zeros(4), np.eye(4)
    for s in seeds:
        for steps, worse in ((50, 0.0), (10, shift10)):
            folder = root / f"seed{s}" / "cells" / f"ddim-{steps}-x"
            attrs = {"run_id": f"{s}-{steps}", "sampler": "ddim", "steps": steps, "seed": s}
            rows = []
            for i, cid in enumerate(ids):
                noise = rng.normal(0.0, 0.5, 2)
                rows += [{**attrs, "metric": "kl_evaluator", "kind": "clip", "clip_id": cid,
                          "value": prompt[i] + noise[0] + worse},
                         {**attrs, "metric": "clap_evaluator", "kind": "clip", "clip_id": cid,
                          "value": prompt[i] + noise[1] - worse}]
            results.write(results.frame(rows), folder, "results")
            frames = np.concatenate([centre[i] + worse + rng.normal(0, 1.0, (5, 4)) for i in range(clips)])
            (folder / "scores" / "arrays").mkdir(parents=True)
            np.savez(folder / "scores" / "arrays" / "fd_evaluator.npz", clip_ids=np.array(ids), frames=frames,
                     offsets=np.arange(clips + 1) * 5, reference_mu=ref_mu, reference_sigma=ref_sigma)
    return root


def test_pairs_are_two_different_seeds_uniformly():
    a, b = _pairs(np.random.default_rng(0), [1, 2, 3, 4], 12_000)
    assert (a != b).all()
    counts = np.unique(np.stack([a, b]), axis=1, return_counts=True)[1]
    assert len(counts) == 12 and counts.min() > 900  # all 12 ordered pairs, ~1000 each


def test_calibration_on_a_pool_with_known_truth(tmp_path):
    pool = _pool(tmp_path)
    assert set(load_pool(pool)) == {"ddim-10", "ddim-50"}
    figures = calibrate(pool, trials=40, power_trials=10, grid=(0.25, 2.0), grid_trials=10, clip_counts=(4,))
    assert figures["clips"] == 16 and figures["seeds"] == [1, 2, 3, 4]
    full, few = figures["by_clips"][16], figures["by_clips"][4]
    assert full["false_alarm"]["rate"] <= 0.1  # alpha 0.05 family-wise; 40 trials
    for pairing in ("fresh", "pinned"):
        power = full["power"][f"ddim-50 -> ddim-10, {pairing} seeds"]
        assert power["rate"] == 1.0 and power["per_metric"]["kl_evaluator"] == 1.0  # a shift of 2.8 sd(d)
    # 4 prompts: the exact sign-flip p is at least 1/16 > 0.05/3 (Holm's first threshold): no clip metric can flag
    few_power = few["power"]["ddim-50 -> ddim-10, fresh seeds"]["per_metric"]
    assert few_power.get("kl_evaluator", 0.0) == 0.0 and few_power.get("clap_evaluator", 0.0) == 0.0
    kl = figures["detectable_80"]["kl_evaluator"]
    assert kl["sd"] == pytest.approx(0.707, abs=0.1)  # sqrt(2) x 0.5
    assert [r["k"] for r in kl["grid"]] == [0.25, 2.0] and kl["smallest_k_80"] == 2.0
    assert kl["grid"][0]["flagged"] < 0.5  # 0.25 sd(d) at 16 clips is below the detectable shift
    text = render(figures)
    assert "| 16 | DDIM-50 vs DDIM-50, fresh seeds (false alarms) | 40 |" in text
    assert "| 4 | ddim-50 -> ddim-10, pinned seeds | 10 |" in text


def test_latency_verdict_needs_significance_and_the_factor():
    base = np.array([1.00, 1.01, 0.99, 1.02, 0.98, 1.005, 1.015, 0.995])  # no ties: the exact test
    assert latency_verdict(base, base * 1.10).slower  # every sample 10 % slower: p = 1/12870
    assert latency_verdict(base, base * 1.10).p == pytest.approx(1 / 12870)
    assert not latency_verdict(base, base * 1.03).slower  # significant, but under the 5 % factor
    noisy = np.array([0.8, 1.3, 0.9, 1.25, 0.85, 1.2, 1.0, 1.15])
    assert latency_verdict(base, noisy).factor > 1.05 and not latency_verdict(base, noisy).slower  # not significant


def test_interleaved_ratios_divide_by_the_reference_of_the_same_round():
    clock = iter(np.arange(0.0, 1000.0, 1.0))  # every call "takes" one tick of the patched timer
    calls = []
    out = interleaved_ratios({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                             lambda: calls.append("r"), rounds=4, repeat=1, warmup=0, timer=lambda: next(clock))
    assert out["a"].tolist() == [1.0] * 4 and out["b"].tolist() == [1.0] * 4
    # order a b r rotated by the round, every other round reversed: abr, (bra)->arb, rab, (abr)->rba
    assert calls == ["a", "b", "r", "a", "r", "b", "r", "a", "b", "r", "b", "a"]
