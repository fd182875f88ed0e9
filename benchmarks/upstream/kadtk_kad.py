"""Time kadtk 1.1.0's KAD on saved embeddings (run in the oracle env, e.g. /work/oracle-kad/venv).

    python benchmarks/upstream/kadtk_kad.py --x ref.npy --y gen.npy --repeats 1

kadtk's own ``median_pairwise_distance`` (float32 ``torch.pdist``) of the reference set x, then
``calc_kernel_audio_distance(x, y, bandwidth=that)`` in its default float32 (GitHub master's
reference-set bandwidth, passed explicitly; the PyPI 1.1.0 default takes the median of y). kadtk's
``kad.py`` is loaded without its package as ``tools/fixtures/make_kad.py`` does. Prints one JSON
line: ``best_s`` (median and KAD, fastest of ``--repeats``), ``median_s``, ``kad``, ``bandwidth``,
versions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x", required=True, help="reference embeddings [M, D] (.npy)")
    parser.add_argument("--y", required=True, help="generated embeddings [N, D] (.npy)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "fixtures"))
    from make_kad import load_kadtk_kad

    kad, _ = load_kadtk_kad()
    x, y = torch.from_numpy(np.load(args.x)), torch.from_numpy(np.load(args.y))
    times, median_times, value, bw = [], [], None, None
    for _ in range(args.repeats):
        start = time.perf_counter()
        bw = kad.median_pairwise_distance(x)
        median_times.append(time.perf_counter() - start)
        value = float(kad.calc_kernel_audio_distance(x, y, (None, None), "cpu", bandwidth=bw))
        times.append(time.perf_counter() - start)
    print(json.dumps({"best_s": min(times), "median_s": min(median_times), "kad": value, "bandwidth": bw,
                      "torch": torch.__version__, "kadtk": importlib.metadata.version("kadtk"),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
