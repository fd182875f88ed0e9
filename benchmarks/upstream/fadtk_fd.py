"""Time fadtk 1.1.0's Fréchet distance on saved embeddings (run in the upstream env, e.g. /work/fixenv/t291).

    python benchmarks/upstream/fadtk_fd.py --a a.npy --b b.npy --repeats 2

Statistics with ``fadtk.fad.calc_embd_statistics`` (np.mean, np.cov) and the distance with
``fadtk.fad.calc_frechet_distance`` (which computes both ``scipy.linalg.sqrtm`` and the
eigenvalue square root of the product, and returns the latter's trace). Prints one JSON line:
``best_s`` (statistics and distance, fastest of ``--repeats``), ``stats_s``, ``fd`` and versions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import time

import numpy as np
import scipy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="generated embeddings [N, D] (.npy)")
    parser.add_argument("--b", required=True, help="reference embeddings [M, D] (.npy)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from fadtk.fad import calc_embd_statistics, calc_frechet_distance

    a, b = np.load(args.a), np.load(args.b)
    times, stats_times, fd = [], [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        mu_a, cov_a = calc_embd_statistics(a)
        mu_b, cov_b = calc_embd_statistics(b)
        stats_times.append(time.perf_counter() - start)
        fd = float(calc_frechet_distance(mu_b, cov_b, mu_a, cov_a))  # fadtk's order: (baseline, eval)
        times.append(time.perf_counter() - start)
    print(json.dumps({"best_s": min(times), "stats_s": min(stats_times), "fd": fd, "numpy": np.__version__,
                      "scipy": scipy.__version__, "fadtk": importlib.metadata.version("fadtk")}))


if __name__ == "__main__":
    main()
