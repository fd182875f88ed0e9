"""Time upstream OpenL3 on stable-audio-metrics' FD_openl3 path for one stereo 44.1 kHz clip (run in an upstream env).

    python benchmarks/upstream/openl3_time.py --side torchopenl3 --weights W.pth.tar [--seconds 60] [--repeats 1]
    python benchmarks/upstream/openl3_time.py --side keras --weights W.h5 --openl3-src DIR [--batch-size 4]

``--side torchopenl3`` needs a python with torchopenl3 (e.g. /work/fixenv/t291/bin/python);
``--side keras`` one with TensorFlow 2.13 and kapre 0.3.7 (e.g. /work/fixenv/tf213/bin/python) and
openl3 0.4.2's unpacked sdist. Both embed the same seeded clip (``support.openl3_weights.fixture_signal``)
through ``tools/upstream/<runner>.sam_embeddings`` (hop 0.5, both channels) and print one JSON line:
``best_s`` (fastest of ``--repeats`` runs after a 1-s warm-up, which compiles resampy's numba
loop and builds the Keras graph; model loading excluded), ``frames`` (per channel),
``cpu_s`` (the least process CPU time of those runs, steadier on a busy machine), ``peak_rss_mib``
(the process's peak resident memory, weights included) and versions.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tools" / "upstream"), str(ROOT / "tests")]
from support.openl3_weights import fixture_signal  # noqa: E402

SR = 44100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("keras", "torchopenl3"), required=True)
    parser.add_argument("--weights", required=True, help="seeded or published weights in the side's layout")
    parser.add_argument("--openl3-src", help="keras side: directory holding the openl3 package")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32, help="frames per forward pass")
    args = parser.parse_args()
    if args.side == "keras":
        import openl3_keras as runner

        model = runner.load_model(args.weights, openl3_src=args.openl3_src)
    else:
        import torchopenl3_runner as runner

        model = runner.load_model(args.weights)
    audio = fixture_signal(0, 2, int(args.seconds * SR), SR)[None]
    runner.sam_embeddings(model, audio[..., :SR], SR, eval_rate=SR, hop=0.5, batch_size=args.batch_size)  # warm-up
    times, cpu = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        embeddings, _ = runner.sam_embeddings(model, audio, SR, eval_rate=SR, hop=0.5, batch_size=args.batch_size)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    print(json.dumps({
        "best_s": min(times),
        "cpu_s": min(cpu),
        "frames": int(embeddings.shape[1]),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "versions": runner.versions(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
