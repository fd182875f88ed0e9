"""Seeded random OpenL3 CNN weights and test signals, shared by tests/metrics/embedders/test_openl3.py and the
fixture scripts tools/fixtures/make_openl3*.py (which run in the upstream environments).

Pure numpy (any numpy >= 1.17: ``default_rng`` streams are stable), so the Keras (numpy 1.23),
torch 2.9.1 and product environments build bit-identical weights from the same seed.
Layout is torchopenl3's state dict (conv kernels ``[out, in, 3, 3]``); :func:`keras_layer_weights`
gives the same arrays in Keras layer order and layout, and :func:`write_keras_h5` writes them as a
Keras ``save_weights`` file following a recorded layout manifest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

# (in, out) channels of conv2d_1..7 and the audio_embedding_layer (spec metric_embedders.md §1.5).
CONV_CHANNELS = [(1, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
BN_CHANNELS = [1, 64, 64, 128, 128, 256, 256, 512]


def conv_name(k: int) -> str:
    """State-dict prefix of conv ``k`` (0-based): ``conv2d_1`` .. ``conv2d_7``, then ``audio_embedding_layer``."""
    return "audio_embedding_layer" if k == len(CONV_CHANNELS) - 1 else f"conv2d_{k + 1}"


def seeded_openl3_state(seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 CNN weights in torchopenl3's naming and layout (no ``speclayer`` entries).

    Kernels are He-normal, biases N(0, 0.05); batch-norm gamma U(0.8, 1.2), beta N(0, 0.1),
    moving mean N(0, 0.1) and variance U(0.5, 1.5), except the input batch norm, whose statistics
    (mean -40 dB, variance 400) bring the [-80, 0] dB spectrogram to unit scale, as a trained
    model's do, so that the embeddings depend on the input as much as a real model's.
    """
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}

    def f32(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float32)

    for j, c in enumerate(BN_CHANNELS):
        p = f"batch_normalization_{j + 1}."
        state[p + "weight"] = f32(rng.uniform(0.8, 1.2, c))
        state[p + "bias"] = f32(rng.normal(0.0, 0.1, c))
        if j == 0:
            state[p + "running_mean"] = f32(-40.0 + rng.normal(0.0, 1.0, c))
            state[p + "running_var"] = f32(400.0 * rng.uniform(0.8, 1.2, c))
        else:
            state[p + "running_mean"] = f32(rng.normal(0.0, 0.1, c))
            state[p + "running_var"] = f32(rng.uniform(0.5, 1.5, c))
    for k, (cin, cout) in enumerate(CONV_CHANNELS):
        p = conv_name(k) + "."
        state[p + "weight"] = f32(rng.normal(0.0, np.sqrt(2.0 / (9 * cin)), (cout, cin, 3, 3)))
        state[p + "bias"] = f32(rng.normal(0.0, 0.05, cout))
    return state


def keras_layer_weights(state: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
    """The weights of the Keras model's weighted layers, in network order: BN1, conv1, BN2, conv2,
    ..., conv7, BN8, audio_embedding_layer. Conv: ``[kernel (h, w, in, out), bias]``; batch norm:
    ``[gamma, beta, moving_mean, moving_variance]``."""
    layers: list[list[np.ndarray]] = []
    for k in range(len(CONV_CHANNELS)):  # batch_normalization_{k+1} precedes conv k
        p = f"batch_normalization_{k + 1}."
        layers.append([state[p + n] for n in ("weight", "bias", "running_mean", "running_var")])
        p = conv_name(k) + "."
        layers.append([np.ascontiguousarray(state[p + "weight"].transpose(2, 3, 1, 0)), state[p + "bias"]])
    return layers


def write_keras_h5(path, state: dict[str, np.ndarray], layout: dict) -> None:
    """Write ``state`` as a Keras ``save_weights`` HDF5 file with the layer names, weight names and
    attributes recorded in ``layout`` (the ``keras_h5`` entry of tests/fixtures/openl3/manifest.json)."""
    import h5py

    weighted = iter(keras_layer_weights(state))
    with h5py.File(path, "w") as f:
        for key, value in layout["root_attrs"].items():
            f.attrs[key] = value
        f.attrs["layer_names"] = np.array([n.encode() for n in layout["layer_names"]])
        for layer in layout["layers"]:
            g = f.create_group(layer["name"])
            g.attrs["weight_names"] = np.array([d["name"].encode() for d in layer["weights"]])
            if not layer["weights"]:
                continue
            for d, array in zip(layer["weights"], next(weighted), strict=True):
                if list(array.shape) != d["shape"]:
                    raise ValueError(f"{d['name']}: seeded shape {array.shape} != recorded {d['shape']}")
                g.create_dataset(d["name"], data=array)


def fixture_signal(seed: int, channels: int, samples: int, sample_rate: int) -> np.ndarray:
    """A full-band test clip, float32 ``[channels, samples]`` peaking at -1 dBFS over all channels.

    White noise under a slow amplitude envelope, plus three tones and a rising chirp, so that
    neighbouring 1-s frames differ. Deterministic for a seed (numpy ``default_rng``).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    out = np.empty((channels, samples))
    for c in range(channels):
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 2 * np.pi))
        tones = sum(rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * f * t) for f in rng.uniform(50, 5000, 3))
        f0, f1 = rng.uniform(100, 1000), rng.uniform(5000, 0.45 * sample_rate)
        chirp = 0.3 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(t[-1], 1e-9))))
        out[c] = envelope * rng.standard_normal(samples) * 0.3 + tones + chirp
    return (out * (10 ** (-1 / 20) / np.abs(out).max())).astype(np.float32)


def case_clips(spec: dict) -> np.ndarray:
    """A fixture case's input clips, float32 ``[N, C, T]``, from its seeds, channels, samples and sample_rate."""
    return np.stack([fixture_signal(s, spec["channels"], spec["samples"], spec["sample_rate"]) for s in spec["seeds"]])


def run_upstream_case(runner: Path, weights: Path, spec: dict, workdir: Path, *extra: str) -> tuple[np.ndarray, dict]:
    """Run an OpenL3 upstream-runner script (tools/upstream/) with this python on a fixture case
    (hop 0.5, the case's ``eval_rate``): ``(input clips, the runner's output arrays)``. Fixture scripts only."""
    clips = case_clips(spec)
    np.savez(workdir / "in.npz", audio=clips, sample_rate=spec["sample_rate"])
    cmd = [sys.executable, str(runner), "--weights", str(weights), "--in", str(workdir / "in.npz")]
    cmd += ["--out", str(workdir / "out.npz"), "--eval-rate", str(spec["eval_rate"]), "--hop", "0.5", *extra]
    subprocess.run(cmd, check=True)
    with np.load(workdir / "out.npz") as result:
        return clips, dict(result)
