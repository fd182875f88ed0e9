"""A third-party plugin distribution (``tests/fixtures/plugin``), installed for real into a
temporary path, adds a metric, an embedder and a sampler through entry points; the CLI scores
with its metrics and ``generate`` samples with its sampler, in fresh processes."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from support.scoring_sets import write_pair

from t2mbench.core.audio import load_audio
from t2mbench.metrics.frechet import frechet_distance

PLUGIN = Path(__file__).parent / "fixtures" / "plugin"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """``pip install --target`` of the plugin (built from a copy: a build writes into its source)."""
    root = tmp_path_factory.mktemp("plugin")
    shutil.copytree(PLUGIN, root / "src")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--disable-pip-version-check", "--target",
         str(root / "site"), str(root / "src")], capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "site"


def t2mbench(args: list[str], site: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site) if site else "", "T2MBENCH_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "t2mbench", *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return write_pair(tmp_path_factory.mktemp("sets"), n=4, sample_rate=16_000, channels=1, seconds=1.0)


def test_the_cli_scores_with_the_plugin_s_metrics(site, pair, tmp_path):
    gen, ref = pair
    proc = t2mbench(["score", "--generated", str(gen), "--reference", str(ref), "--metrics",
                     "rms_db,fd_frame_energy", "--out", str(tmp_path / "out")], site, tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    # rms_db per clip, recomputed here from the files (16 kHz mono: no resampling)
    clips = table[(table.metric == "rms_db") & (table.kind == "clip")].set_index("clip_id")["value"]
    for cid, value in clips.items():
        x, _ = load_audio(gen / f"{cid}.wav")
        assert value == pytest.approx(20 * math.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))), rel=1e-6)
    # fd_frame_energy: the Fréchet distance of the plugin embedder's frames, recomputed here
    sys.path.insert(0, str(site))
    try:
        from t2mbench_rms_plugin import FrameEnergy
    finally:
        sys.path.remove(str(site))

    def frames(folder: Path) -> np.ndarray:
        out = []
        for cid in sorted(clips.index):
            x, sr = load_audio(folder / f"{cid}.wav")
            peak = np.max(np.abs(x))  # SAM's peak normalisation to -1 dBFS (protocol default)
            x = x / peak * 10 ** (-1 / 20)
            out.append(FrameEnergy().embed(torch.from_numpy(x)[None], sr)[0].numpy())
        return np.concatenate(out).astype(np.float64)

    fd = table[(table.metric == "fd_frame_energy") & (table.kind == "aggregate")]["value"].iloc[0]
    assert fd == pytest.approx(frechet_distance(frames(gen), frames(ref)), rel=1e-5)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["fd_frame_energy"]["settings"]["embedder"] == "frame_energy"


def test_without_the_plugin_its_metric_is_unknown(pair, tmp_path):
    gen, ref = pair
    proc = t2mbench(["score", "--generated", str(gen), "--reference", str(ref), "--metrics", "rms_db", "--out",
                     str(tmp_path / "out")], None, tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("t2mbench score: error: unknown metric 'rms_db'; known: fd_openl3, ")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_generate_samples_with_the_plugin_s_sampler(site, tmp_path):
    """Plain Euler from the plugin equals the built-in ``euler`` on the tiny model."""
    code = (
        "import torch; from t2mbench.reference_models import generate, load_model; m = load_model('tiny'); "
        "kw = dict(steps=4, cfg_scale=3.0, seconds=1.0, seed=3, batch_size=2); "
        "a = generate(m, ['a piano', 'a flute'], sampler='euler_plain', **kw); "
        "b = generate(m, ['a piano', 'a flute'], sampler='euler', **kw); "
        "print(a.nfe, a.settings['sampler'], float((a.audio - b.audio).abs().max()), float(b.audio.abs().max()))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    nfe, name, diff, scale = proc.stdout.split()
    assert (int(nfe), name) == (4, "euler_plain")
    assert float(diff) <= 1e-6 * float(scale) and float(scale) > 0
