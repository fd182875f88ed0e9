"""Scoring on local worker processes (``t2mbench score --workers N``): clips in parallel, not only
the operations inside one clip.

Each worker is a spawned process that runs torch on ``threads`` threads (the CPU allowance divided
among the workers), receives the run's metrics once, loads their embedders once, and scores
contiguous chunks of clip items with :func:`t2mbench.metrics.scoring.score_shard`; the parent merges
the chunks' states in clip order (:meth:`t2mbench.metrics.base.Metric.merge_state`), as with the Ray
executor's scoring actors. Why: on this 2-core CPU one process with two intra-op threads kept the
cores 81 % busy (210 CPU-s in 130 s on 8 clip pairs of 10 s stereo with ``fd_openl3,kl_passt,clap``):
the front ends, resamplers and the small layers between the large products run on one thread, and
every parallel region ends in a barrier. Two one-thread workers have neither (docs/performance.md
has the measurement). Results equal the one-process run's up to float summation order: per-clip
scores to float rounding, FD from the merged count, mean and scatter.

Workers die with the parent (:func:`t2mbench.core.processes.die_with_parent`); an error in a worker
(a missing weight file, a bad clip) is raised in the parent as itself. Each worker holds its own
copy of the embedders (about 2.4 GB for OpenL3 + PaSST + CLAP).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from t2mbench.metrics.base import Metric
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.scoring import Item, ShardResult

_WORKER: dict = {}  # the worker process's prepared metrics and cache, set by _start


def _start(parent: int, threads: int, metrics: list[Metric], store: EmbeddingCache | None) -> None:
    from t2mbench.core.processes import die_with_parent
    from t2mbench.core.threads import configure

    die_with_parent(parent)
    configure(threads)
    _WORKER.update(metrics=metrics, store=store, prepared=False)


def _score(items: list[Item], needs_reference: bool) -> ShardResult:
    from t2mbench.metrics.scoring import prepare_metrics, score_shard

    if not _WORKER["prepared"]:  # here, not in _start, so a missing weight file reaches the parent as itself
        prepare_metrics(_WORKER["metrics"], _WORKER["store"])
        _WORKER["prepared"] = True
    return score_shard(_WORKER["metrics"], items, needs_reference, _WORKER["store"])


class ProcessShards:
    """:class:`t2mbench.metrics.scoring.Shards` over ``workers`` local processes of ``threads``
    threads each (default: the CPU allowance divided among them, at least 1).

    ``metrics`` are the run's metrics as built (settings applied, embedders not loaded); ``store``:
    the embedding cache (each worker opens the same folder), or None for none."""

    def __init__(self, workers: int, metrics: Sequence[Metric], store: EmbeddingCache | None,
                 threads: int | None = None) -> None:  # fmt: skip
        from t2mbench.core.threads import cpu_allowance

        self.workers = workers
        self.threads = threads or max(1, cpu_allowance() // workers)
        self.metrics = list(metrics)
        self.store = store

    def chunks(self, items: Sequence[Item]) -> list[list[Item]]:
        """Contiguous chunks, four per worker, so a worker slowed by another process leaves its
        share to the others."""
        size = max(1, -(-len(items) // (4 * self.workers)))
        return [list(items[i:i + size]) for i in range(0, len(items), size)]

    def feed(self, items: Sequence[Item], needs_reference: bool, merge: Callable[[ShardResult], None],
             done: Callable[[int], None]) -> None:  # fmt: skip
        chunks = self.chunks(items)
        context = multiprocessing.get_context("spawn")  # torch's thread pools do not survive fork
        with ProcessPoolExecutor(min(self.workers, len(chunks)) or 1, mp_context=context, initializer=_start,
                                 initargs=(os.getpid(), self.threads, self.metrics, self.store)) as pool:
            futures = [pool.submit(_score, chunk, needs_reference) for chunk in chunks]
            try:
                for future, chunk in zip(futures, chunks, strict=True):
                    merge(future.result())
                    done(len(chunk))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
