"""The Ray executor: every cell a Ray task, on a local Ray instance or a cluster.

``--executor ray --address auto`` joins the cluster this machine belongs to (``ray start``),
``--address ray://HOST:PORT`` a remote one through Ray Client, ``--address local`` starts a
private instance here (``num_cpus`` CPUs). A task receives only the cell's and the scoring's
plain data, runs :func:`t2mbench.bench.cells.run_cell` on its worker and returns the rows;
the driver yields them in the cells' order, so the sweep's store and export are the local
executor's. ``out`` (and the prompt and reference sets) must be on a filesystem every node
sees (a task works in the driver's current directory, so relative paths in the spec mean the
same there); the embedding cache is keyed by content, so workers sharing ``$T2MBENCH_HOME`` share it.

Numerics: each task runs torch with ``threads`` threads, by default the driver's
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
from t2mbench.core.errors import ConfigError
from t2mbench.metrics.setting_checks import integer, number


def _cell_task(cell: dict[str, Any], scoring: dict[str, Any], out: str, device: str, threads: int,
               cwd: str) -> pd.DataFrame:  # fmt: skip
    import torch

    from t2mbench.bench.cells import Cell, Scoring, run_cell

    torch.set_num_threads(threads)
    if os.path.isdir(cwd):  # relative prompt/reference paths mean what they mean to the driver (shared filesystem)
        os.chdir(cwd)
    return run_cell(Cell.from_dict(cell), Scoring.from_dict(scoring), out, device=device, progress=False)


class RayExecutor:
    """Cells as Ray tasks (see the module doc for ``address``, ``num_cpus``, ``cpus_per_cell``, ``threads``)."""

    def __init__(self, address: str = "auto", num_cpus: int | None = None, cpus_per_cell: float = 1,
                 threads: int | None = None) -> None:  # fmt: skip
        try:  # the values first, so a bad one is named even where Ray is not installed
            num_cpus = None if num_cpus is None else integer("num_cpus", num_cpus, minimum=1)
            cpus_per_cell = number("cpus_per_cell", cpus_per_cell, above=0.0)
            threads = None if threads is None else integer("threads", threads, minimum=1)
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
        task = ray.remote(num_cpus=self.cpus_per_cell, max_retries=0)(_cell_task)
        out = os.path.abspath(out)
        cwd = os.getcwd()
        refs = [task.remote(c.to_dict(), scoring.to_dict(), out, device, self.threads, cwd) for c in cells]
        for ref in refs:  # in the cells' order; the others keep running meanwhile
            yield ray.get(ref)
