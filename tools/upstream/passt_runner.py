"""Upstream PaSST runner: hear21passt 0.0.26 with stable-audio-metrics' KL_passt windowing.

A standalone script for another python (one with hear21passt and librosa; t2mbench never
imports it)::

    python tools/upstream/passt_runner.py --weights passt-s-f128-p16-s10-ap.476-swa.pt \\
        --in in.npz --out out.npz [--collect mean|max]

``in.npz``: ``audio`` [N, C, T] float32 (already peak-normalised), ``sample_rate``.
``out.npz``: ``embeddings`` [N, 527] float32, the pooled logits, and ``windows`` [N, W, 527].

Per clip, as ``stable-audio-metrics/src/passt_kld.py`` after its loading and normalisation:
``librosa.to_mono`` → ``librosa.resample(res_type="soxr_hq")`` to 32 kHz → 10 s windows every
5 s while the start is below ``max(5 s, N - 5 s)``, zero-padded to 10 s when longer than 1.5 s →
``get_basic_model(mode="logits")``'s modules, one window at a time → mean (or max) over windows.
The network is built with ``pretrained=False`` and the given state dict loaded strictly (no download).
"""

from __future__ import annotations

import argparse
import contextlib
import io

import librosa
import numpy as np
import torch
from hear21passt.models.passt import get_model
from hear21passt.models.preprocess import AugmentMelSTFT
from hear21passt.wrapper import PasstBasicWrapper

SR = 32000
WINDOW_S, OVERLAP_S = 10, 5


def upstream_model(weights: str | None = None) -> torch.nn.Module:
    """``get_basic_model(mode="logits")``'s modules without the download; ``weights`` loaded strictly."""
    with contextlib.redirect_stdout(io.StringIO()):
        mel = AugmentMelSTFT(
            n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192, htk=False,
            fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000,
        )  # fmt: skip
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return PasstBasicWrapper(mel=mel, net=net, mode="logits").eval()


def to_32k_mono(x: np.ndarray, sr: int) -> np.ndarray:
    """``librosa.load(sr=32000, mono=True)``'s processing of decoded samples ``[C, T]``."""
    return librosa.resample(librosa.to_mono(x), orig_sr=sr, target_sr=SR, res_type="soxr_hq")


def sam_window_logits(model: torch.nn.Module, audio: np.ndarray) -> np.ndarray:
    """stable-audio-metrics' ``return_probabilities`` loop before pooling: mono 32 kHz → [n_windows, 527]."""
    window_len = int(WINDOW_S * SR)
    step = int((WINDOW_S - OVERLAP_S) * SR)
    rows = []
    for i in range(0, max(step, len(audio) - step), step):
        window = audio[i : i + window_len]
        if len(window) < window_len and len(window) > int(window_len * 0.15):
            padded = np.zeros(window_len)
            padded[: len(window)] = window
            window = padded
        wave = torch.from_numpy(window.astype(np.float32)).unsqueeze(0)
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            rows.append(model(wave).squeeze(0).numpy())
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="state dict in the upstream layout (.pt)")
    parser.add_argument("--in", dest="inp", required=True, help="npz with audio [N, C, T] and sample_rate")
    parser.add_argument("--out", required=True, help="npz to write embeddings [N, 527] to")
    parser.add_argument("--collect", choices=("mean", "max"), default="mean")
    args = parser.parse_args()
    data = np.load(args.inp)
    audio, sr = data["audio"], int(data["sample_rate"])
    model = upstream_model(args.weights)
    windows = np.stack([sam_window_logits(model, to_32k_mono(x, sr)) for x in audio])
    pooled = windows.mean(axis=1) if args.collect == "mean" else windows.max(axis=1)
    np.savez(args.out, embeddings=pooled.astype(np.float32), windows=windows.astype(np.float32))


if __name__ == "__main__":
    main()
