import json

from t2mbench.bench.evidence.report import degradation_section, retrieval_section, write_report

RETRIEVAL = {
    "split": "test", "clips": 4, "weights_sha256": "x",
    "retrieval": {"recall@1": 0.5, "chance@1": 0.25, "recall@10": 1.0, "chance@10": 1.0},
    "clap_evaluator": {"matched": 0.4, "mismatched": -0.01},
    "attributes": {
        "mode": {"accuracy": 0.75, "chance_uniform": 0.5, "majority": 0.5, "clips": 4, "unseen": 0},
        "instrument_families": {"mean_average_precision": 0.9, "chance_average_precision": 0.35, "clips": 4,
                                "exact_set_accuracy": 0.5, "majority_set": 0.25, "unseen": 0},
    },
}  # fmt: skip
DEGRADATION = {
    "evaluated": {"clips": 4, "split": "test", "windows": 8}, "reference": {"clips": 6, "split": "train", "windows": 9},
    "monotonic": {"noise": True, "lowpass": False},
    "rows": [{"condition": "clean", "fd_evaluator": 1.5}, {"condition": "noise 40 dB SNR", "fd_evaluator": 2.25}],
}  # fmt: skip


def test_sections_state_values_next_to_chance():
    text = "\n".join(retrieval_section(RETRIEVAL))
    assert "recall@1 0.500 (chance 0.2500), recall@10 1.000 (chance 1.000)" in text
    assert "| mode | accuracy 0.750 | uniform 0.500, majority 0.500 |" in text
    assert "| instrument_families | mAP 0.900 | 0.350 |" in text
    text = "\n".join(degradation_section(DEGRADATION))
    assert "| noise 40 dB SNR | 2.25 |" in text
    assert text.endswith("Verdict: noise: rises monotonically, lowpass: NOT monotonic.")


def test_report_collects_the_outputs_and_plots(tmp_path):
    runs = tmp_path / "runs"
    for sub, png in (("degradation", "degradation.png"), ("autoencoder", "autoencoder.png"),
                     ("guidance_sweep", "guidance_sweep.png"), ("closed_loop", "closed_loop.png")):  # fmt: skip
        (runs / sub).mkdir(parents=True)
        (runs / sub / png).write_bytes(b"png of " + sub.encode())
    (runs / "retrieval.json").write_text(json.dumps(RETRIEVAL))
    (runs / "degradation" / "degradation.json").write_text(json.dumps(DEGRADATION))
    (runs / "autoencoder" / "autoencoder.md").write_text("| AE TABLE |\n")
    (runs / "guidance_sweep" / "guidance_sweep.md").write_text("| CFG TABLE |\n")
    (runs / "closed_loop" / "closed_loop.md").write_text("| LOOP TABLE |\n")
    path = write_report(runs, tmp_path / "docs")
    text = path.read_text()
    assert path.name == "results.md" and "| AE TABLE |" in text and "| LOOP TABLE |" in text
    assert text.index("## 3.") < text.index("| AE TABLE |") < text.index("## 4.") < text.index("| CFG TABLE |")
    assert text.index("| CFG TABLE |") < text.index("## 5.") < text.index("| LOOP TABLE |")
    assert (tmp_path / "docs" / "guidance_sweep.png").read_bytes() == b"png of guidance_sweep"
    assert (tmp_path / "docs" / "closed_loop.png").read_bytes() == b"png of closed_loop"
