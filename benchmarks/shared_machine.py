"""Slowdown of a t2mbench command when another process keeps one core busy, with and without the
thread settings of :mod:`t2mbench.core.threads`.

    python benchmarks/shared_machine.py --rounds 2 [--settings after] -- demo --samplers ddim --steps 10 \\
        --clips 4 --seconds 5

Four conditions, interleaved round by round (so all see the same background load):

- ``before`` / ``after``: ``before`` runs the command with the libraries' own defaults for the settings
  this package now makes (``OMP_WAIT_POLICY`` empty: libgomp's spin-then-sleep default; OpenBLAS's
  thread timeout 2^28 cycles), ``after`` with the package's (``OMP_WAIT_POLICY=PASSIVE``,
  ``OPENBLAS_THREAD_TIMEOUT=4``); both get the same thread count (the allowance);
- ``idle`` / ``busy``: ``busy`` starts ``python -c "while True: pass"`` pinned to CPU 0 by
  ``os.sched_setaffinity`` for the duration of the run.

Every run writes to a fresh folder (``--out`` is appended for commands that take it). Prints one JSON
report: wall seconds per run, medians, and the slowdown busy/idle for each of before and after, with the
load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ENVIRONMENTS = {
    "before": {"OMP_WAIT_POLICY": "", "OPENBLAS_THREAD_TIMEOUT": "28"},
    "after": {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"},
}


def busy_core(cpu: int = 0) -> subprocess.Popen:
    """A process spinning on ``cpu``."""
    code = f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def run(command: list[str], env: dict[str, str], out: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "t2mbench", *command, "--out", out], check=True,
                   env={**os.environ, "T2MBENCH_NO_PROGRESS": "1", **env},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", default="before,after",
                        help="which thread settings to run (comma-separated: before, after)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the t2mbench command")
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    settings = {name: ENVIRONMENTS[name] for name in args.settings.split(",")}
    times: dict[str, list[float]] = {f"{e}_{b}": [] for e in settings for b in ("idle", "busy")}
    report: dict = {"command": command, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="t2mbench-shared-") as tmp:
        for r in range(args.rounds):
            for name, env in settings.items():
                for busy in ("idle", "busy"):
                    spinner = busy_core() if busy == "busy" else None
                    try:
                        times[f"{name}_{busy}"].append(run(command, env, f"{tmp}/{name}_{busy}_{r}"))
                    finally:
                        if spinner is not None:
                            spinner.kill()
                            spinner.wait()
    medians = {k: float(np.median(v)) for k, v in times.items()}
    report.update(times=times, medians=medians, load_after=os.getloadavg(),
                  slowdown={e: medians[f"{e}_busy"] / medians[f"{e}_idle"] for e in settings})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
