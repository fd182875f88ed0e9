"""Thread counts from the process's real CPU allowance, and thread pools that sleep when idle.

On a shared machine a process that starts one compute thread per core of the host, each spinning
while it waits for the others, runs many times slower as soon as another process takes a core:
every parallel region waits for a descheduled thread, and the spinning threads take the CPU time
the descheduled one needed. Measured on 2 cores at load ~10: LAPACK's two-stage eigenvalue
reduction at n = 2048 took 12.7-18.3 s on two OpenBLAS threads and 1.2-2.0 s on one.

Two rules, applied by the CLI to every command (:func:`prepare_environment` before the numerical
libraries load, :func:`configure` after the arguments are parsed):

- the thread count is the CPU *allowance* of the process (:func:`cpu_allowance`): the CPUs its
  affinity mask allows, capped by a cgroup CPU quota (``cpu.max``, or v1's ``cpu.cfs_quota_us``
  over ``cpu.cfs_period_us``), not ``os.cpu_count()``; ``--threads N`` overrides it;
- idle threads sleep: ``OMP_WAIT_POLICY=PASSIVE`` for OpenMP (torch's intra-op pool) and
  ``OPENBLAS_THREAD_TIMEOUT=4`` (OpenBLAS's workers spin 2^4 cycles, not its default 2^28, before
  they sleep), torch's inter-op pool at one thread. A value the user set in the environment wins.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

SLEEPING_POOLS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
COUNT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_allowance(
    *,
    affinity: set[int] | None = None,
    cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
    proc_cgroup: str | os.PathLike = "/proc/self/cgroup",
) -> int:
    """The number of CPUs this process may use (at least 1): the size of its affinity mask
    (``os.sched_getaffinity``; ``os.cpu_count()`` where that does not exist), capped by the
    tightest cgroup CPU quota on its cgroup path, floor(quota / period) but at least 1.

    ``affinity``, ``cgroup_root`` and ``proc_cgroup`` are for tests."""
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cpus = max(1, len(affinity))
    quota = cgroup_cpu_quota(Path(cgroup_root), Path(proc_cgroup))
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return cpus


def cgroup_cpu_quota(root: Path, proc_cgroup: Path) -> float | None:
    """The tightest CPU quota in CPUs (quota / period) over the process's cgroup and its ancestors,
    v2 (``cpu.max``: ``"max 100000"`` or ``"150000 100000"``) or v1 (``cpu.cfs_quota_us``, -1 for
    none, and ``cpu.cfs_period_us``); None without a quota or without cgroup files."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2 unified hierarchy
            quotas += [q for d in _ancestors(root, path) if (q := _v2_quota(d / "cpu.max")) is not None]
        elif "cpu" in controllers.split(","):
            for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                quotas += [q for d in _ancestors(mount, path) if (q := _v1_quota(d)) is not None]
    return min(quotas) if quotas else None


def _ancestors(mount: Path, path: str) -> list[Path]:
    """``mount/path`` and each of its parents up to ``mount`` itself."""
    parts = [p for p in path.strip("/").split("/") if p]
    return [mount.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def _v2_quota(cpu_max: Path) -> float | None:
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" or float(period) <= 0 else float(quota) / float(period)


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = float((directory / "cpu.cfs_quota_us").read_text())
        period = float((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def prepare_environment(environ: dict[str, str] | None = None) -> int:
    """Before torch, numpy or scipy load: sleeping thread pools and thread counts from
    :func:`cpu_allowance` in ``environ`` (``os.environ``), each only where the user set nothing.
    Returns the allowance."""
    env = os.environ if environ is None else environ
    cpus = cpu_allowance()
    for name, value in SLEEPING_POOLS.items():
        env.setdefault(name, value)
    for name in COUNT_VARIABLES:
        env.setdefault(name, str(cpus))
    return cpus


def configure(threads: int | None = None) -> int:
    """Set the compute thread count of this process, and of the processes it starts, to
    ``threads`` (``--threads``) or else to the allowance (:func:`cpu_allowance`, or
    ``OMP_NUM_THREADS`` where the user set it): torch's intra-op pool, its inter-op pool to one
    thread, and the BLAS libraries already loaded (threadpoolctl). Returns the count."""
    if threads is None:
        threads = _int_or_none(os.environ.get("OMP_NUM_THREADS")) or cpu_allowance()
    for name in COUNT_VARIABLES:
        os.environ[name] = str(threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op work already ran: the pool keeps its size
        pass
    threadpool_limits(threads)
    return threads


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS and LAPACK on one thread for the body: for loops of small products (the FD interval's
    resamples of a few thousand frames × tens of dimensions) a second thread saves nothing when the
    machine is free and, when it is not, each product waits for a descheduled worker. Measured on 2
    cores at load ~8: ``fd_latent`` of four cells (32 dimensions) took 0.33 s on one thread, 13.7 s on
    two with sleeping pools and 25 s with spinning ones."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def _int_or_none(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def thread_count(text: str) -> int:
    """argparse type of ``--threads``: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` on a command that computes (applied by the CLI through :func:`configure`)."""
    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="compute threads (default: the CPUs this process may use: affinity and cgroup quota)")
