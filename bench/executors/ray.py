"""The Ray executor: every cell a Ray task, on a local Ray instance or a cluster; the clips of
each cell scored in shards by long-lived scoring actors.

``--executor ray --address auto`` joins the cluster this machine belongs to (``ray start``),
``--address ray://HOST:PORT`` a remote one through Ray Client, ``--address local`` starts a
private instance here (``num_cpus`` CPUs). A task receives only the cell's and the scoring's
plain data, runs :func:`t2mbench.bench.cells.run_cell` on its worker and returns the rows;
the driver yields them in the cells' order, so the sweep's store and export are the local
executor's. ``out`` (and the prompt and reference sets) must be on a filesystem every node
sees (a task works in the driver's current directory, so relative paths in the spec mean the
same there); the embedding cache is keyed by content, so workers sharing ``$T2MBENCH_HOME`` share it.

Scoring: ``scorers`` Ray actors (``cpus_per_scorer`` CPUs each) are started once per run; each
builds the run's metrics and loads their embedders once, then scores shards of every cell's clips
(:func:`t2mbench.metrics.scoring.score_shard`). The cell task merges the shards' states in clip
order (:meth:`t2mbench.metrics.base.Metric.merge_state`): per-clip scores as one process adds them,
FD from the merged count, mean and scatter (exact up to float rounding, not an average of shard FDs).
The cluster needs ``scorers × cpus_per_scorer + cpus_per_cell`` CPUs at least, or no cell could run
beside the actors.

Numerics: each task and actor runs torch with ``threads`` threads, by default the driver's
``torch.get_num_threads()``, so a cell's audio is bit-identical to the local executor's (a
different thread count may change float summation order). Set ``threads=1`` with
``cpus_per_cell=1`` to pack one cell per core instead.

Ray comes in through the ``ray`` extra: ``pip install 't2mbench[ray]'``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from t2mbench.bench.cells import Cell, Scoring
from t2mbench.core.errors import ConfigError, T2MBenchError
from t2mbench.metrics.scoring import Item, ShardResult
from t2mbench.metrics.setting_checks import integer, number


def _worker_setup(threads: int, cwd: str) -> None:
    import torch

    torch.set_num_threads(threads)
    if os.path.isdir(cwd):  # relative prompt/reference paths mean what they mean to the driver (shared filesystem)
        os.chdir(cwd)


class ScoringWorker:
    """A scoring actor: the run's metrics, built and prepared (embedders loaded) once, scoring shards."""

    def __init__(self, scoring: dict[str, Any], threads: int, cwd: str) -> None:
        from t2mbench.metrics.cache import EmbeddingCache
        from t2mbench.metrics.scoring import build_metrics, prepare_metrics

        _worker_setup(threads, cwd)
        spec = Scoring.from_dict(scoring)
        self.built = build_metrics(spec.metrics, spec.settings)  # the seed run_cell's score() uses
        self.store = EmbeddingCache()
        self.store.check_writable()
        prepare_metrics(self.built, self.store)  # one load per embedder, as in one process

    def score(self, items: list[Item], needs_reference: bool) -> ShardResult:
        from t2mbench.metrics.scoring import score_shard

        return score_shard(self.built, items, needs_reference, self.store)


class RayShards:
    """:class:`t2mbench.metrics.scoring.Shards` over scoring actors: contiguous shards, two per actor,
    sent at once and merged in order."""

    def __init__(self, workers: list[Any]) -> None:
        self.workers = workers

    def feed(self, items, needs_reference, merge, done) -> None:
        import ray

        size = max(1, -(-len(items) // (2 * len(self.workers))))
        shards = [list(items[i:i + size]) for i in range(0, len(items), size)]
        refs = [self.workers[k % len(self.workers)].score.remote(shard, needs_reference)
                for k, shard in enumerate(shards)]  # fmt: skip
        for ref, shard in zip(refs, shards, strict=True):
            merge(_get(ray, ref))
            done(len(shard))


def _get(ray: Any, ref: Any) -> Any:
    """``ray.get``, re-raising a worker's own error (a missing weight file, a bad clip) as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, T2MBenchError | OSError):
            raise e.cause from None
        raise


def _cell_task(cell: dict[str, Any], scoring: dict[str, Any], out: str, device: str, threads: int,
               cwd: str, workers: list[Any]) -> pd.DataFrame:  # fmt: skip
    from t2mbench.bench.cells import Cell, Scoring, run_cell

    _worker_setup(threads, cwd)
    return run_cell(Cell.from_dict(cell), Scoring.from_dict(scoring), out, device=device, progress=False,
                    shards=RayShards(workers))


class RayExecutor:
    """Cells as Ray tasks (see the module doc for ``address``, ``num_cpus``, ``cpus_per_cell``, ``threads``)."""

    def __init__(self, address: str = "auto", num_cpus: int | None = None, cpus_per_cell: float = 1,
                 threads: int | None = None, scorers: int = 1, cpus_per_scorer: float = 1) -> None:  # fmt: skip
        try:  # the values first, so a bad one is named even where Ray is not installed
            num_cpus = None if num_cpus is None else integer("num_cpus", num_cpus, minimum=1)
            cpus_per_cell = number("cpus_per_cell", cpus_per_cell, above=0.0)
            threads = None if threads is None else integer("threads", threads, minimum=1)
            scorers = integer("scorers", scorers, minimum=1)
            cpus_per_scorer = number("cpus_per_scorer", cpus_per_scorer, above=0.0)
        except ConfigError as e:
            raise ConfigError(f"executor 'ray': {e}") from None
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("executor 'ray' needs Ray: pip install 't2mbench[ray]'") from None
        if not (address in ("auto", "local") or address.startswith("ray://")):
            raise ConfigError(f"executor 'ray': address must be auto, local or ray://HOST:PORT, got {address!r}")
        import torch

        self.address, self.num_cpus, self.cpus_per_cell = address, num_cpus, cpus_per_cell
        self.scorers, self.cpus_per_scorer = scorers, cpus_per_scorer
        self.threads = threads if threads is not None else torch.get_num_threads()

    def _connect(self) -> Any:
        import ray

        if not ray.is_initialized():
            env = {k: v for k, v in os.environ.items() if k.startswith(("T2MBENCH_", "HF_", "TRANSFORMERS_"))}
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": False}
            if self.address == "local":
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, **kwargs)
            else:
                try:
                    ray.init(address=self.address, **kwargs)
                except ConnectionError as e:
                    raise ConfigError(f"executor 'ray': no Ray cluster at {self.address} ({e})") from None
        return ray

    def run(self, cells: Sequence[Cell], scoring: Scoring, out: str | os.PathLike, *, device: str = "cpu",
            progress: bool = True) -> Iterator[pd.DataFrame]:  # fmt: skip
        if not cells:
            return
        ray = self._connect()
        need = self.scorers * self.cpus_per_scorer + self.cpus_per_cell
        have = ray.cluster_resources().get("CPU", 0)
        if have < need:
            raise ConfigError(f"executor 'ray': the cluster has {have:g} CPUs; {self.scorers} scorers x "
                              f"{self.cpus_per_scorer:g} + {self.cpus_per_cell:g} per cell need {need:g}")
        cwd = os.getcwd()
        actor = ray.remote(num_cpus=self.cpus_per_scorer, max_restarts=0)(ScoringWorker)
        workers = [actor.remote(scoring.to_dict(), self.threads, cwd) for _ in range(self.scorers)]
        task = ray.remote(num_cpus=self.cpus_per_cell, max_retries=0)(_cell_task)
        out = os.path.abspath(out)
        try:
            refs = [task.remote(c.to_dict(), scoring.to_dict(), out, device, self.threads, cwd, workers)
                    for c in cells]  # fmt: skip
            for ref in refs:  # in the cells' order; the others keep running meanwhile
                yield _get(ray, ref)
        finally:
            for w in workers:
                ray.kill(w)
