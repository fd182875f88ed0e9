"""Parity of t2mbench's embedders with the upstream packages, on the same audio and weights.

Ours runs in-process; the upstream package runs in a subprocess under another python (one
that has it), through a standalone runner script (:data:`UPSTREAM_DIR`). The runners import the
upstream stacks (TensorFlow, torchaudio, timm), so they are not product code: they live in the source
repository's ``tools/upstream/`` and are not installed with the wheel (``--runner`` names one there).
Runner convention, shared by every embedder::

    PYTHON RUNNER --weights W --in in.npz --out out.npz [embedder-specific flags]

``in.npz`` holds ``audio`` [N, C, T] float32 and ``sample_rate`` (plus ``texts`` [N] for CLAP);
``out.npz`` holds ``embeddings`` with the shape our ``embed`` returns (plus ``text_embeddings``
for CLAP). Files are peak-normalised to -1 dBFS (the step every stable-audio-metrics protocol
starts with) and grouped by (channels, samples, rate), one runner call per group.

Both sides' embeddings are compared element-wise, and the embedder's metric is computed from
each side's embeddings with the same formula: FD for OpenL3 (frames of the first half of the
files against those of the second half), KL for PaSST (mean over ordered pairs of files of
stable-audio-metrics' KL(p_i ‖ p_j)), CLAP score for CLAP (mean cosine of each file with its text).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from t2mbench.core.audio import load_audio, peak_normalize
from t2mbench.core.errors import ConfigError
from t2mbench.core.processes import child_dies_with_parent
from t2mbench.core.weights import get as get_weights
from t2mbench.core.weights import hash_file, resolve
from t2mbench.metrics.clap_score import clap_score
from t2mbench.metrics.embedders import get_embedder
from t2mbench.metrics.frechet import frechet_distance
from t2mbench.metrics.kl import kl_divergence

# metrics/upstream/parity.py -> the checkout's root; in an installed wheel this folder does not exist
UPSTREAM_DIR = Path(__file__).resolve().parents[2] / "tools" / "upstream"


def _kl_pairs(logits: list[np.ndarray], _texts: list[np.ndarray]) -> float:
    """Mean over ordered pairs i ≠ j of stable-audio-metrics' KL(p_i ‖ p_j) from pooled logits."""
    pairs = [(i, j) for i in range(len(logits)) for j in range(len(logits)) if i != j]
    gen = np.stack([logits[i] for i, _ in pairs])
    ref = np.stack([logits[j] for _, j in pairs])
    return float(kl_divergence(gen, ref).mean())


def _fd_halves(embeddings: list[np.ndarray], _texts: list[np.ndarray]) -> float:
    """FD between the frames of the first half of the files and those of the second half."""
    half = (len(embeddings) + 1) // 2
    d = embeddings[0].shape[-1]
    a, b = (np.concatenate([e.reshape(-1, d) for e in part]) for part in (embeddings[:half], embeddings[half:]))
    return frechet_distance(a.astype(np.float64), b.astype(np.float64))


def _mean_clap_score(audio: list[np.ndarray], text: list[np.ndarray]) -> float:
    """Mean cosine similarity of each file's audio embedding with its text's."""
    return float(clap_score(np.stack(audio), np.stack(text)).mean())


@dataclass(frozen=True)
class Upstream:
    """How to run one embedder's upstream package.

    Attributes:
        runner: default runner script in :data:`UPSTREAM_DIR`.
        weights: registered weight-file name (:mod:`t2mbench.core.weights`) of the default checkpoint.
        modules: what the upstream python must be able to import for the default runner.
        install: ``pip install`` arguments for the upstream python when they are missing, and
            ``install_note``: what pip alone cannot do.
        metric: name of the metric compared; ``score(embeddings, text_embeddings)`` computes it
            from one side's per-file embeddings (text ones empty without captions), given at
            least ``min_files`` files.
        needs_text: the metric needs one caption per file.
    """

    runner: str
    weights: str
    modules: tuple[str, ...]
    install: str
    install_note: str
    metric: str
    score: Callable[[list[np.ndarray], list[np.ndarray]], float]
    min_files: int = 2
    needs_text: bool = False


UPSTREAMS: dict[str, Upstream] = {
    "openl3": Upstream(
        runner="openl3_keras.py",
        weights="openl3-mel256-music",
        modules=("tensorflow", "kapre", "resampy", "soxr"),
        install="tensorflow-cpu==2.13.1 keras==2.13.1 numpy==1.23.5 resampy==0.2.2 soxr scikit-learn==1.3.1",
        install_note=(
            "then the original kapre sdist: pip install --no-deps --no-binary kapre kapre==0.3.7; openl3 0.4.2 "
            "cannot be pip-installed offline: unpack its sdist and pass --runner-arg=--openl3-src=DIR"
        ),
        metric="FD",
        score=_fd_halves,
    ),
    "passt": Upstream(
        runner="passt_runner.py",
        weights="passt",
        modules=("hear21passt", "librosa"),
        install="hear21passt==0.0.26 librosa",
        install_note="hear21passt brings torch, torchaudio and timm",
        metric="KL",
        score=_kl_pairs,
    ),
    "clap": Upstream(
        runner="clap_runner.py",
        weights="clap",
        modules=("laion_clap", "librosa"),
        install="laion-clap==1.1.7 librosa",
        install_note="laion-clap brings torch, torchaudio, torchvision and transformers",
        metric="CLAP score",
        score=_mean_clap_score,
        min_files=1,
        needs_text=True,
    ),
}


@dataclass
class ParityReport:
    """One parity run: per-file and overall differences, and the metric on both sides."""

    embedder: str
    runner: Path
    python: str
    weights: Path
    weights_sha256: str
    published: bool
    files: list[str]
    per_file_max_abs: list[float]
    max_abs: float
    max_abs_upstream: float
    metric: str
    metric_ours: float | None
    metric_upstream: float | None
    metric_note: str

    @property
    def relative(self) -> float:
        """Max abs difference over the max abs upstream value."""
        return self.max_abs / self.max_abs_upstream if self.max_abs_upstream else self.max_abs


def missing_modules(python: str, modules: Sequence[str]) -> list[str]:
    """The ``modules`` that ``python`` cannot import (checked without importing them)."""
    code = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    try:
        out = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise ConfigError(f"--upstream-python {python}: cannot run it ({e})") from None
    return out.stdout.split()


def _run_runner(command: list[str], weights: Path, audio: np.ndarray, sr: int, texts: list[str] | None,
                tmp: Path) -> dict[str, np.ndarray]:  # fmt: skip
    """Run ``command`` (python, runner, its flags) on one group; returns the arrays of its out.npz."""
    python, runner = command[0], command[1]
    inp, out = tmp / "in.npz", tmp / "out.npz"
    extra = {"texts": np.array(texts)} if texts is not None else {}
    np.savez(inp, audio=audio.astype(np.float32), sample_rate=np.array(sr), **extra)
    cmd = [*command, "--weights", str(weights), "--in", str(inp), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=child_dies_with_parent())
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ConfigError(f"upstream runner {runner} failed under {python} (exit {proc.returncode}): {tail}")
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def _load_groups(audio_paths: Sequence[str | os.PathLike]) -> list[tuple[int, list[int], np.ndarray]]:
    """Peak-normalised files grouped by (channels, samples, rate): ``[(rate, file indices, audio [N, C, T])]``."""
    clips = []
    for p in audio_paths:
        audio, sr = load_audio(p)
        clips.append((peak_normalize(audio, source=str(p)), sr))
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, (a, sr) in enumerate(clips):
        groups.setdefault((*a.shape, sr), []).append(i)
    return [(key[2], idx, np.stack([clips[i][0] for i in idx])) for key, idx in groups.items()]


def _per_file(
    groups: list[tuple[int, list[int], np.ndarray]],
    ours_out: list[dict[str, np.ndarray]],
    theirs_out: list[dict[str, np.ndarray]],
    runner: str,
) -> tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]]]:
    """Both sides' outputs (``embeddings``, maybe ``text_embeddings``) per file, in file order, shapes checked."""
    n = sum(len(idx) for _, idx, _ in groups)
    ours: dict[str, list[np.ndarray]] = {k: [np.empty(0)] * n for k in ours_out[0]}
    theirs: dict[str, list[np.ndarray]] = {k: [np.empty(0)] * n for k in ours_out[0]}
    for (_, idx, _), mine, up in zip(groups, ours_out, theirs_out):
        for key in mine:
            if key not in up or up[key].shape != mine[key].shape:
                got = up[key].shape if key in up else "nothing"
                raise ConfigError(f"upstream runner {runner} returned {key} of shape {got}, ours are {mine[key].shape}")
            for k, i in enumerate(idx):
                ours[key][i], theirs[key][i] = mine[key][k], up[key][k]
    return ours, theirs


def run_parity(
    embedder: str,
    audio_paths: Sequence[str | os.PathLike],
    *,
    checkpoint: str | os.PathLike | None = None,
    verify: bool = True,
    upstream_python: str | None = None,
    runner: str | os.PathLike | None = None,
    runner_args: Sequence[str] = (),
    texts: Sequence[str] | None = None,
) -> ParityReport:
    """Embed ``audio_paths`` with ours and with the upstream package; compare.

    Args:
        embedder: ``openl3``, ``passt`` or ``clap``.
        audio_paths: audio files (any rate and channel count the embedder accepts).
        checkpoint: weight file in the upstream layout (default: the registered file).
        verify: check the file's sha256 against the published one (``False`` for, e.g., seeded weights).
        upstream_python: the python that has the upstream package (default: this one).
        runner: runner script (default: :data:`UPSTREAMS`'s, in :data:`UPSTREAM_DIR`; from a wheel, name the
            checkout's ``tools/upstream/`` one); a runner of another name skips the module check.
        runner_args: extra flags for the runner (e.g. ``--openl3-src=DIR``, ``--collect=max``).
        texts: one caption per file (CLAP score only).

    Raises:
        ConfigError: unknown embedder, upstream python lacking the package (the message says what
            to install), a runner that fails, or outputs of different shapes.
        MissingWeightsError: the weight file is absent (the message says where to put it).
        AudioError: an unreadable or unusable audio file.
    """
    if embedder not in UPSTREAMS:
        raise ConfigError(f"no upstream parity for embedder {embedder!r}; known: {', '.join(UPSTREAMS)}")
    if not audio_paths:
        raise ConfigError("parity needs at least one audio file")
    if texts is not None and len(texts) != len(audio_paths):
        raise ConfigError(f"got {len(texts)} texts for {len(audio_paths)} audio files; give one text per file")
    up = UPSTREAMS[embedder]
    python = upstream_python or sys.executable
    script = Path(runner) if runner is not None else UPSTREAM_DIR / up.runner
    if runner is None and not script.is_file():
        raise ConfigError(f"the upstream runner {up.runner} is not installed with t2mbench (it imports the upstream "
                          "packages, so it stays in the source repository's tools/upstream/): pass --runner "
                          f"CHECKOUT/tools/upstream/{up.runner}")  # fmt: skip
    if not script.is_file():
        raise ConfigError(f"upstream runner {script} not found; pass --runner with the script for {embedder!r}")
    missing = missing_modules(python, up.modules) if script.name == up.runner else []  # the upstream's own runner
    if missing and Path(python).resolve() == Path(sys.executable).resolve():
        # never into t2mbench's own environment: the upstream stacks bring torchaudio, which breaks
        # transformers beside this torch, and pins that would replace the suite's own packages
        raise ConfigError(
            f"{script.name} needs {', '.join(missing)}, which t2mbench's own Python must not have: make a separate "
            f"environment (python -m venv upstream && upstream/bin/pip install {up.install}; {up.install_note}) "
            "and pass --upstream-python upstream/bin/python"
        )
    if missing:
        raise ConfigError(
            f"the upstream python {python} cannot import {', '.join(missing)} (needed by {script.name}): "
            f"install with `{python} -m pip install {up.install}` ({up.install_note})"
        )
    importlib.import_module(f"t2mbench.metrics.embedders.{embedder}")  # registers its weight file
    weights = resolve(up.weights, checkpoint, verify=verify)

    groups = _load_groups(audio_paths)
    captions = [None if texts is None else [texts[i] for i in idx] for _, idx, _ in groups]
    with tempfile.TemporaryDirectory(prefix="t2mbench-parity-") as tmp:
        theirs_out = [
            _run_runner([python, str(script), *runner_args], weights, batch, sr, caps, Path(tmp))
            for (sr, _, batch), caps in zip(groups, captions)
        ]
    model = get_embedder(embedder, checkpoint=weights, **({} if verify else {"verify": False}))
    ours_out = []
    for (sr, _, batch), caps in zip(groups, captions):
        out = {"embeddings": model.embed(torch.from_numpy(batch), sr).numpy()}
        if caps is not None:
            out["text_embeddings"] = model.embed_text(caps).numpy()
        ours_out.append(out)
    ours, theirs = _per_file(groups, ours_out, theirs_out, script.name)

    if up.needs_text and texts is None:
        note = f"the {up.metric} needs one --text per file"
    elif len(audio_paths) < up.min_files:
        note = f"{up.metric} needs at least {up.min_files} files"
    else:
        note = ""
    pairs = list(zip(ours["embeddings"], theirs["embeddings"]))
    per_file = [float(np.abs(a.astype(np.float64) - b).max()) for a, b in pairs]
    sha = hash_file(weights)
    return ParityReport(
        embedder=embedder,
        runner=script,
        python=python,
        weights=weights,
        weights_sha256=sha,
        published=sha == get_weights(up.weights).sha256,
        files=[str(p) for p in audio_paths],
        per_file_max_abs=per_file,
        max_abs=max(per_file),
        max_abs_upstream=max(float(np.abs(b).max()) for _, b in pairs),
        metric=up.metric,
        metric_ours=None if note else up.score(ours["embeddings"], ours.get("text_embeddings", [])),
        metric_upstream=None if note else up.score(theirs["embeddings"], theirs.get("text_embeddings", [])),
        metric_note=note,
    )
