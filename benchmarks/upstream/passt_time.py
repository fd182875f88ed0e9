"""Time hear21passt 0.0.26 on stable-audio-metrics' KL_passt windows of one clip (run in the upstream env).

    python benchmarks/upstream/passt_time.py --seconds 60 --repeats 2

Prints one JSON line: ``best_s`` (fastest of ``--repeats`` runs over all windows, model building
excluded), ``windows``, ``peak_rss_mib`` (the process's peak resident memory) and versions. The
network has random weights (its cost does not depend on them); windows are run one at a time, as
stable-audio-metrics does, through ``tools/upstream/passt_runner.py``'s functions.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "upstream"))
from passt_runner import sam_window_logits, upstream_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = upstream_model()
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, int(args.seconds * 32000)).astype(np.float32)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        windows = sam_window_logits(model, audio)
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "best_s": min(times),
        "windows": int(windows.shape[0]),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
