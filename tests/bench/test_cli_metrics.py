"""``t2mbench metrics parity``: the install message without the upstream package, the missing-weights
message, and the whole comparison path with a fake runner that computes PaSST through t2mbench."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from support.passt_weights import passt_weights

from t2mbench.core.audio import load_audio, peak_normalize, save_audio
from t2mbench.metrics.embedders.passt import load_passt
from t2mbench.metrics.kl import kl_divergence

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "passt" / "passt.npz")
OFFSET = 0.5  # the fake runner adds --offset to logit 0 of the second file (exact in float32)
# the runner in the source tree (a wheel install does not carry it: --runner names it, as a user would)
RUNNER = str(Path(__file__).resolve().parents[2] / "tools" / "upstream" / "passt_runner.py")


def t2mbench(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user does, in a fresh process (``python -m t2mbench``) outside the source tree."""
    return subprocess.run(
        [sys.executable, "-m", "t2mbench", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}
    )


def python_without_site_packages(tmp_path: Path) -> Path:
    """A python that has only the standard library (so no hear21passt, no librosa)."""
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_upstream_python_without_the_package_says_what_to_install(tmp_path):
    py = python_without_site_packages(tmp_path)
    proc = t2mbench("metrics", "parity", "--embedder", "passt", "--upstream-python", str(py), "--runner", RUNNER,
                    "a.wav", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"t2mbench metrics: error: the upstream python {py} cannot import hear21passt, librosa (needed by "
        f"passt_runner.py): install with `{py} -m pip install hear21passt==0.0.26 librosa` "
        "(hear21passt brings torch, torchaudio and timm)\n"
    )


def test_missing_weights_say_where_to_put_the_file(tmp_path):
    runner = tmp_path / "runner.py"
    runner.write_text("raise SystemExit('not reached')\n")
    args = ["metrics", "parity", "--embedder", "passt", "--runner", str(runner), "a.wav"]
    proc = t2mbench(*args, cwd=tmp_path, T2MBENCH_HOME=str(tmp_path / "home"))
    assert proc.returncode == 2
    err = proc.stderr
    dest = tmp_path / "home" / "weights" / "passt-s-f128-p16-s10-ap.476-swa.pt"
    assert f"expected {dest.name} at {dest}; download it from https://github.com/kkoutini/PaSST/releases/" in err


FAKE_RUNNER = """\
    import argparse
    import numpy as np
    import torch
    from t2mbench.metrics.embedders.passt import load_passt

    parser = argparse.ArgumentParser()
    for flag in ("--weights", "--in", "--out"):
        parser.add_argument(flag)
    parser.add_argument("--offset", type=float)
    args = parser.parse_args()
    data = np.load(getattr(args, "in"))
    model = load_passt(args.weights, verify=False)
    logits = model.embed(torch.from_numpy(data["audio"]), int(data["sample_rate"])).numpy()
    logits[1, 0] += args.offset
    np.savez(args.out, embeddings=logits)
"""


@pytest.fixture(scope="module")
def state():
    return {k: torch.from_numpy(v) for k, v in passt_weights(0).items()}


def test_parity_prints_the_differences_of_embeddings_and_kl(tmp_path, state):
    checkpoint = tmp_path / "seeded.pt"
    torch.save(state, checkpoint)
    runner = tmp_path / "fake_runner.py"
    runner.write_text(textwrap.dedent(FAKE_RUNNER))
    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    save_audio(files[0], FIX["audio__1s_32k"].astype(np.float32) / 32768, 32000)
    save_audio(files[1], FIX["audio__1p5s_32k"][:, :32000].astype(np.float32) / 32768, 32000)

    args = ["metrics", "parity", "--embedder", "passt", "--checkpoint", str(checkpoint), "--no-verify"]
    proc = t2mbench(*args, "--runner", str(runner), f"--runner-arg=--offset={OFFSET}", *map(str, files), cwd=tmp_path)
    out = proc.stdout.splitlines()

    model = load_passt(state)
    ours = [model.embed(torch.from_numpy(peak_normalize(load_audio(f)[0]))[None], 32000)[0].numpy() for f in files]
    theirs = [ours[0], ours[1] + np.eye(1, 527, dtype=np.float32)[0] * OFFSET]
    kl_ours = kl_divergence(np.stack(ours), np.stack(ours[::-1])).mean()
    kl_theirs = kl_divergence(np.stack(theirs), np.stack(theirs[::-1])).mean()
    peak = max(np.abs(t).max() for t in theirs)

    assert proc.returncode == 1, proc.stderr  # relative difference ~5e-2 > the default tolerance 1e-4
    assert out[0] == f"parity of t2mbench passt with {runner} under {sys.executable}"
    assert out[1].startswith(f"weights: {checkpoint} (sha256 ") and out[1].endswith("..., not the published file)")
    assert out[2].split()[-4:] == ["max", "abs", "difference", "0.00e+00"]
    assert out[3].split()[-4:] == ["max", "abs", "difference", f"{OFFSET:.2e}"]
    assert out[4] == (
        f"embeddings: max abs difference {OFFSET:.2e} (max abs upstream value {peak:.4g}, relative {OFFSET / peak:.2e})"
    )
    kl = out[5].replace(",", "").split()
    assert kl[0] == "KL:" and kl[1] == "ours" and kl[3] == "upstream"
    assert float(kl[2]) == pytest.approx(kl_ours, abs=2e-6)
    assert float(kl[4]) == pytest.approx(kl_theirs, abs=2e-6)
    assert abs(kl_ours - kl_theirs) > 1e-4  # the perturbation shows in the metric
    assert out[6] == f"parity FAILED: relative difference {OFFSET / peak:.2e} exceeds --tolerance 0.0001"


def test_without_an_upstream_python_it_never_advises_installing_into_the_suite_s_own(tmp_path):
    proc = t2mbench("metrics", "parity", "--embedder", "passt", "--runner", RUNNER, "a.wav", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == (
        "t2mbench metrics: error: passt_runner.py needs hear21passt, librosa, which t2mbench's own Python must not "
        "have: make a separate environment (python -m venv upstream && upstream/bin/pip install hear21passt==0.0.26 "
        "librosa; hear21passt brings torch, torchaudio and timm) and pass --upstream-python upstream/bin/python\n"
    )
