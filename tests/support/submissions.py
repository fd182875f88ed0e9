"""Hand-made leaderboard submissions for the leaderboard tests (no model run needed)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from t2mbench.core import results
from t2mbench.core.files import sha256_file, write_json

SHA_A = "a" * 64
SHA_B = "b" * 64
CLIPS = 20
PROTOCOL = {
    "metrics": {
        "clap_evaluator": {"protocol_version": "sam-clap-1", "higher_is_better": True},
        "kl_evaluator": {"protocol_version": "sam-kld-1", "higher_is_better": False},
        "fd_evaluator": {"protocol_version": "sam-fd-1", "higher_is_better": False},
    },
    "embedder_weights": {"clap": SHA_A, "evaluator": SHA_B},
    "eval_set": {"name": "test set", "manifest_sha256": "c" * 64, "clips": CLIPS},
    "audio": {"loudness": "none", "channels": "mono", "sample_rate": 16000, "clip_seconds": 10.0},
    "best_of_n": 1,
}


def manifest(name: str, version: str = "1", protocol: dict | None = None, seconds: float = 1.0) -> dict:
    return {
        "schema_version": 1,
        "system": {"name": name, "version": version, "code_commit": "abc123"},
        "t2mbench_version": "0.2.0",
        "protocol": copy.deepcopy(protocol or PROTOCOL),
        "generation": {"seeds": "seed 1 + clip index", "sampler": "ddim", "sampler_options": {}, "steps": 10,
                       "cfg": 3.0},
        "hardware": {"device": "cpu", "cpu": "test cpu", "gpu": None},
        "timing": {"seconds_per_clip": seconds},
        "scores": {"file": "scores.csv", "sha256": ""},
    }  # fmt: skip


def write(folder: Path, name: str, clap: np.ndarray, kl: np.ndarray, fd: tuple[float, float, float], *,
          version: str = "1", protocol: dict | None = None, seconds: float = 1.0, clip_ids=None) -> Path:
    """A submission folder: per-clip CLAP and KL rows, an FD aggregate row with its CI."""
    ids = clip_ids or [f"c{i:03d}" for i in range(len(clap))]
    base = {"run_id": name, "system": name}
    rows = [{**base, "metric": "clap_evaluator", "kind": "clip", "clip_id": c, "value": float(v)}
            for c, v in zip(ids, clap)]  # fmt: skip
    rows += [{**base, "metric": "kl_evaluator", "kind": "clip", "clip_id": c, "value": float(v)}
             for c, v in zip(ids, kl)]  # fmt: skip
    rows.append({**base, "metric": "fd_evaluator", "kind": "aggregate", "value": fd[0], "ci_low": fd[1],
                 "ci_high": fd[2]})  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    results.frame(rows).to_csv(folder / "scores.csv", index=False)
    doc = manifest(name, version, protocol, seconds)
    doc["scores"]["sha256"] = sha256_file(folder / "scores.csv")
    write_json(folder / "submission.json", doc)
    return folder
