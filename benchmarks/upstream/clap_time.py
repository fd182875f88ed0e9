"""Time one CLAP audio embedding of a mono 48 kHz clip, upstream (laion-clap through the runner's
stable-audio-metrics call) or ours (``t2mbench.metrics.embedders.clap``), in a fresh process; prints JSON.

    python benchmarks/upstream/clap_time.py --side upstream --weights W.pt --tokenizer DIR [--seconds 60] [--repeats 3]

``--side upstream`` needs a python with laion-clap (e.g. /work/fixenv/t291/bin/python); ``--side ours``
needs t2mbench. Both load the same checkpoint file, embed the same seeded noise clip (numpy seed 0
before the clip), and report the best wall time of ``repeats`` embeddings after one warm-up
(``seconds``) and the least process CPU time (``cpu_seconds``, steadier on a busy machine), the
resident memory after loading (``load_rss_mb``) and the process's peak (``peak_rss_mb``, which
includes the weights).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SR = 48000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def embedder(side: str, weights: str, tokenizer: str):
    """A function embedding mono 48 kHz float32 ``[T]`` on the chosen side."""
    if side == "upstream":
        sys.path.insert(0, str(ROOT / "tools" / "upstream"))
        from clap_runner import audio_embedding, build_module, find_tokenizer, read_state_dict

        module = build_module(read_state_dict(weights), find_tokenizer(tokenizer))
        return lambda wave: audio_embedding(module, wave, 0)
    import torch

    sys.path.insert(0, str(ROOT))
    from t2mbench.metrics.embedders.clap import load_clap

    model = load_clap(weights, tokenizer=tokenizer, seed=0)
    return lambda wave: model.embed(torch.from_numpy(wave)[None, None], SR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("upstream", "ours"), required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run = embedder(args.side, args.weights, args.tokenizer)
    load_rss = rss_mb()
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * SR))).astype(np.float32)
    run(wave)
    times, cpu = [], []
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run(wave)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "side": args.side,
                "seconds": min(times),
                "times": times,
                "cpu_seconds": min(cpu),
                "load_rss_mb": load_rss,
                "peak_rss_mb": peak,
            }
        )
    )


if __name__ == "__main__":
    main()
