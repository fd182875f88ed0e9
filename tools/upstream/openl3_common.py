"""What the two OpenL3 upstream runners (``openl3_keras.py``, ``torchopenl3_runner.py``) share:
stable-audio-metrics' channel handling around ``get_audio_embedding`` and the command line.

Standalone (numpy and soxr only; no t2mbench imports). The runners import it as a sibling module:
their folder is on ``sys.path`` when they run as scripts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np


def sam_channels(audio: np.ndarray, sr: int, eval_rate: int) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Clips ``[N, C, T]`` → per-clip left and right channels (float32, contiguous) at the evaluation rate.

    As stable-audio-metrics' ``extract_embeddings``: ``soxr.resample`` (HQ) of all channels to
    ``eval_rate`` (``0`` keeps ``sr``); L = channel 0, R = channel 1, a mono clip's R is its L and
    channels beyond the second are ignored. Returns ``(left, right, rate)``.
    """
    import soxr

    rate = eval_rate or sr
    clips = [soxr.resample(x.T, sr, rate) if rate != sr else x.T for x in audio.astype(np.float32)]  # [T, C]
    left = [np.ascontiguousarray(c[:, 0]) for c in clips]
    right = [np.ascontiguousarray(c[:, 1]) if c.shape[1] > 1 else left[i] for i, c in enumerate(clips)]
    return left, right, rate


def stack_lr(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    """Per-clip ``[F, D]`` left and right embeddings → ``[N, F, 2·D]`` float32, ``[L ‖ R]`` per frame."""
    return np.stack([np.concatenate([np.asarray(a), np.asarray(b)], axis=1) for a, b in zip(left, right)]).astype(
        np.float32
    )


def main(
    description: str,
    load_model: Callable[[argparse.Namespace], object],
    sam_embeddings: Callable[..., tuple[np.ndarray, np.ndarray]],
    versions: Callable[[], dict],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """``--weights W --in in.npz --out out.npz [--hop 0.5] [--eval-rate 44100] [--input-repr mel256]
    [--embedding-size 512] [--batch-size 4]`` plus the runner's own arguments; writes ``embeddings``,
    ``timestamps``, ``seconds`` (embedding wall time, model loading excluded) and ``versions`` (JSON)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--weights", required=True, help="weights in the upstream file layout")
    parser.add_argument("--in", dest="inp", required=True, help="npz with audio [N, C, T] and sample_rate")
    parser.add_argument("--out", required=True, help="npz to write embeddings [N, F, 2*D] to")
    parser.add_argument("--hop", type=float, default=0.5, help="hop size in seconds")
    parser.add_argument("--eval-rate", type=int, default=44100, help="soxr rate before OpenL3 (0: none)")
    parser.add_argument("--input-repr", default="mel256", choices=("mel128", "mel256"))
    parser.add_argument("--embedding-size", type=int, default=512, choices=(512, 6144))
    parser.add_argument("--batch-size", type=int, default=4, help="frames per forward pass")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    data = np.load(args.inp)
    model = load_model(args)
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
