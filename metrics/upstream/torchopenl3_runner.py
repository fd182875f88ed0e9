"""Upstream OpenL3 runner: torchopenl3 1.0.1 (front end A, kapre 0.1.4 style), stacked as
stable-audio-metrics stacks OpenL3 frames.

A standalone script for another python (torch, torchopenl3, resampy, soxr; t2mbench never imports it)::

    python metrics/upstream/torchopenl3_runner.py --weights torchopenl3_mel256_music_512.pth.tar \\
        --in in.npz --out out.npz [--hop 0.5] [--eval-rate 44100] [--input-repr mel256] \\
        [--embedding-size 512] [--batch-size 4]

``in.npz``: ``audio`` [N, C, T] float (already peak-normalised), ``sample_rate``.
``out.npz``: ``embeddings`` [N, F, 2·D] float32 (per frame ``[L ‖ R]``; a mono clip is duplicated,
channels beyond the second are ignored), ``timestamps`` [F], ``seconds`` (wall time of the
embedding calls, model loading excluded) and ``versions`` (JSON).

Per clip: ``soxr.resample`` (HQ) to ``--eval-rate`` (``0`` keeps the clip's rate), float32; then
``torchopenl3.get_audio_embedding`` of each channel (float64, resampy ``kaiser_best`` to 48 kHz,
``center=True``, ``hop_size``). The network is ``torchopenl3.models.PytorchOpenl3`` with the given
state dict loaded strictly (torchopenl3's own loader downloads; this one does not).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def load_model(weights: str, input_repr: str = "mel256", embedding_size: int = 512):
    """``torchopenl3.models.PytorchOpenl3`` with the state dict ``weights`` loaded strictly, in eval mode."""
    import torch
    from torchopenl3.models import PytorchOpenl3

    model = PytorchOpenl3(content_type="music", input_repr=input_repr, embedding_size=embedding_size)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def sam_embeddings(model, audio: np.ndarray, sr: int, *, eval_rate: int = 44100, hop: float = 0.5, batch_size: int = 4):
    """stable-audio-metrics-style frames of clips ``audio [N, C, T]``: ``([N, F, 2·D] float32, timestamps [F])``."""
    import soxr
    import torch
    import torchopenl3

    rate = eval_rate or sr
    clips = [soxr.resample(x.T, sr, rate) if rate != sr else x.T for x in audio.astype(np.float32)]  # [T, C]
    left = [np.ascontiguousarray(c[:, 0]) for c in clips]
    right = [np.ascontiguousarray(c[:, 1] if c.shape[1] > 1 else c[:, 0]) for c in clips]
    kw = dict(model=model, verbose=False, hop_size=hop, batch_size=batch_size, center=True, sampler="resampy")
    kw.update(input_repr=model.input_repr, embedding_size=model.embedding_size)
    emb_l, ts = torchopenl3.get_audio_embedding(left, [rate] * len(left), **kw)
    emb_r = emb_l if audio.shape[1] == 1 else torchopenl3.get_audio_embedding(right, [rate] * len(right), **kw)[0]
    stacked = np.stack([torch.cat([a, b], dim=1).numpy() for a, b in zip(emb_l, emb_r)])
    return stacked.astype(np.float32), np.asarray(ts[0])


def versions() -> dict[str, str]:
    import soxr
    import torch
    import torchopenl3

    found = {"torchopenl3": torchopenl3.__version__, "torch": torch.__version__}
    return {**found, "numpy": np.__version__, "soxr": soxr.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="torchopenl3 state dict (.pth.tar)")
    parser.add_argument("--in", dest="inp", required=True, help="npz with audio [N, C, T] and sample_rate")
    parser.add_argument("--out", required=True, help="npz to write embeddings [N, F, 2*D] to")
    parser.add_argument("--hop", type=float, default=0.5, help="hop size in seconds")
    parser.add_argument("--eval-rate", type=int, default=44100, help="soxr rate before torchopenl3 (0: none)")
    parser.add_argument("--input-repr", default="mel256", choices=("mel128", "mel256"))
    parser.add_argument("--embedding-size", type=int, default=512, choices=(512, 6144))
    parser.add_argument("--batch-size", type=int, default=4, help="frames per forward pass")
    args = parser.parse_args()
    data = np.load(args.inp)
    model = load_model(args.weights, args.input_repr, args.embedding_size)
    start = time.perf_counter()
    embeddings, timestamps = sam_embeddings(
        model,
        data["audio"],
        int(data["sample_rate"]),
        eval_rate=args.eval_rate,
        hop=args.hop,
        batch_size=args.batch_size,
    )
    seconds = time.perf_counter() - start
    np.savez(args.out, embeddings=embeddings, timestamps=timestamps, seconds=seconds, versions=json.dumps(versions()))


if __name__ == "__main__":
    main()
