"""Sweep specs: one TOML file names a grid of cells, what they are scored against and where
the results go; :func:`load_spec` checks it and :func:`run_spec` runs it (``t2mbench sweep``).

Why TOML: Python reads it with the standard library (:mod:`tomllib`, 3.11+; on 3.10 the
``tomli`` backport it came from, a marker-only dependency), so specs cost no new dependency; its types are explicit
(``10`` is an integer, ``10.0`` a float, ``"10"`` a string: YAML's ``no``/``on``/``1e3``
surprises cannot happen), and nested tables map onto sampler options and metric settings.

A spec (every key, with what it may be; ``examples/demo_grid.toml`` reproduces the demo)::

    out = "runs/grid"                 # run folder (relative paths: to the current directory)
    executor = "local"                # optional: a registered executor (t2mbench.bench.executors)
    device = "cpu"                    # optional

    [executor_options]                # optional: the executor's options, e.g. address = "auto"

    [grid]                            # the cells: models x samplers x steps x cfg x seeds x clips
    models = ["tiny"]                 # shipped config names or config paths
    samplers = ["ddim", { name = "ddim", options = { eta = 0.5 } }]
    steps = [10, 50]
    cfg = [3.0]
    seeds = [1]
    clips = [16]                      # how many prompts (the first of the prompt set)
    seconds = 10.0                    # clip length
    batch_size = 16                   # optional (16)
    checkpoint = "path/model.safetensors"  # optional
    verify = false                    # optional: load a checkpoint that is not the model's published file

    [corpus]                          # optional: build the prompt set first (t2mbench corpus build)
    clips = 16
    seconds = 10.0
    seed = 1
    split = "test"                    # optional: train | test
    path = "corpus"                   # optional (default <out>/corpus)

    [scoring]
    prompts = "corpus"                # the prompt clip set (default: the [corpus] one)
    reference = "corpus"              # optional (default: the prompts)
    metrics = ["fd_evaluator", "kl_evaluator", "clap_evaluator"]
    [scoring.settings.fd_evaluator]   # optional, per metric

A mistake is a :class:`~t2mbench.core.errors.ConfigError` that names the key and what it
allows (one line on stderr and exit code 2 from the CLI).
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from t2mbench.bench.cells import Cell, Scoring
from t2mbench.bench.store import ResultStore
from t2mbench.bench.sweep import check_run, run_sweep
from t2mbench.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has no tomllib
    import tomli as tomllib

TOP = ("out", "executor", "executor_options", "device", "grid", "corpus", "scoring")
GRID = ("models", "samplers", "steps", "cfg", "seeds", "clips", "seconds", "batch_size", "checkpoint", "verify")
CORPUS = ("clips", "seconds", "seed", "split", "path")
SCORING = ("prompts", "reference", "metrics", "settings")
SAMPLER = ("name", "options")


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus to build before the sweep (:func:`t2mbench.bench.corpus.build_corpus`)."""

    path: str
    clips: int
    seconds: float
    seed: int
    split: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A checked spec: the cells in grid order, their scoring, the run folder and where to run."""

    out: str
    cells: tuple[Cell, ...]
    scoring: Scoring
    executor: str = "local"
    executor_options: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    corpus: CorpusSpec | None = None


def load_spec(path: str | os.PathLike, *, out: str | None = None) -> SweepSpec:
    """Read and check the spec at ``path`` (``out`` overrides its ``out``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such sweep spec") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    return parse_spec(data, out=out)


def parse_spec(data: Mapping[str, Any], *, out: str | None = None) -> SweepSpec:
    """A :class:`SweepSpec` from a spec's parsed TOML (see the module doc for the keys)."""
    _keys(data, TOP, "")
    out = out if out is not None else _str(data, "out", "")
    if out is None:
        raise ConfigError("spec key out: missing; give the run folder (or --out)")
    grid = _table(data, "grid", "")
    if grid is None:
        raise ConfigError(f"spec key grid: missing; a [grid] table with {', '.join(GRID)}")
    _keys(grid, GRID, "grid.")
    corpus = _corpus(data, out)
    scoring = _scoring(data, corpus)
    cells = _cells(grid)
    executor = _str(data, "executor", "") or "local"
    from t2mbench.bench.executors import executors

    if executor not in executors():
        raise ConfigError(f"spec key executor: unknown executor {executor!r}; allowed: {', '.join(executors())}")
    options = _table(data, "executor_options", "") or {}
    return SweepSpec(out, tuple(cells), scoring, executor, dict(options), _str(data, "device", "") or "cpu", corpus)


def run_spec(
    spec: SweepSpec,
    *,
    fresh: bool = False,
    progress: bool = True,
    executor: str | None = None,
    executor_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Build the spec's corpus if it has one (``overwrite``: take over its folder from another
    owner), then run its cells (:func:`~t2mbench.bench.sweep.run_sweep`: finished cells are kept,
    unfinished ones resume) and export the table. ``fresh``: forget this spec's cells first (their
    store parts and folders), so every cell runs again. ``executor`` / ``executor_options``
    override the spec's; they and the device are checked before anything is built."""
    name = executor or spec.executor
    options = spec.executor_options if executor_options is None else executor_options
    check_run(name, options, spec.device, spec.cells)  # before the corpus is built
    if spec.corpus is not None:
        from t2mbench.bench.corpus import OWNER, build_corpus, owner_settings
        from t2mbench.core.ownership import owning

        c = spec.corpus  # a corpus folder is shared: one built with other settings is refused, not re-rendered
        with owning(c.path, OWNER, owner_settings(c.clips, c.seconds, c.seed, c.split), overwrite=overwrite):
            build_corpus(c.path, c.clips, c.seconds, c.seed, split=c.split, progress=progress)
    if fresh:
        ResultStore(spec.out).discard(spec.cells)
    return run_sweep(spec.cells, spec.scoring, spec.out, executor=name, executor_options=options, device=spec.device,
                     progress=progress)  # fmt: skip


def _keys(table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    unknown = [k for k in table if k not in allowed]
    if unknown:
        where = f"[{prefix[:-1]}]" if prefix else "the top level"
        raise ConfigError(f"spec key {prefix}{unknown[0]}: unknown; allowed in {where}: {', '.join(allowed)}")


def _table(data: Mapping[str, Any], key: str, prefix: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"spec key {prefix}{key}: must be a table, got {value!r}")
    return value


def _str(data: Mapping[str, Any], key: str, prefix: str) -> str | None:
    value = data.get(key)
    if value is not None and not (isinstance(value, str) and value):
        raise ConfigError(f"spec key {prefix}{key}: must be a non-empty string, got {value!r}")
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _list(table: Mapping[str, Any], key: str, prefix: str, ok, want: str, default: Any = None) -> list[Any]:
    """A key that takes one value or a list of values, each passing ``ok``."""
    if key not in table:
        if default is None:
            raise ConfigError(f"spec key {prefix}{key}: missing; give {want} (or a list of them)")
        return [default]
    value = table[key]
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"spec key {prefix}{key}: empty; give {want} (or a list of them)")
    for v in values:
        if not ok(v):
            raise ConfigError(f"spec key {prefix}{key}: {v!r} is not {want}")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"spec key {prefix}{key}: lists a value twice ({values!r})")
    return values


def _cells(grid: Mapping[str, Any]) -> list[Cell]:
    from t2mbench.reference_models.factory import config_names
    from t2mbench.reference_models.samplers import registered

    shipped = config_names()
    models = _list(grid, "models", "grid.", lambda v: isinstance(v, str) and bool(v), "a model config name or path")
    for m in models:
        if m not in shipped and not Path(m).exists():
            raise ConfigError(f"spec key grid.models: unknown model {m!r}; allowed: {', '.join(shipped)} or a "
                              "config path")  # fmt: skip
    known = registered()
    samplers = []
    raw = grid.get("samplers")
    if raw is None:
        raise ConfigError("spec key grid.samplers: missing; give sampler names or {name, options} tables")
    for entry in raw if isinstance(raw, list) else [raw]:
        if isinstance(entry, dict):
            _keys(entry, SAMPLER, "grid.samplers.")
            name, options = entry.get("name"), entry.get("options", {})
            if not isinstance(options, dict):
                raise ConfigError(f"spec key grid.samplers.options: must be a table, got {options!r}")
        else:
            name, options = entry, {}
        if name not in known:
            raise ConfigError(f"spec key grid.samplers: unknown sampler {name!r}; allowed: {', '.join(known)}")
        info = known[name]
        for k, v in options.items():
            if k not in info.options:
                raise ConfigError(f"spec key grid.samplers.options: sampler {name!r} has no option {k!r}; "
                                  f"allowed: {', '.join(info.options) or 'none'}")  # fmt: skip
            if info.options[k].parse(v) is None:
                raise ConfigError(f"spec key grid.samplers.options.{k}: {v!r} for sampler {name!r} must be "
                                  f"{info.options[k].allowed}")  # fmt: skip
        samplers.append((name, dict(options)))
    steps = _list(grid, "steps", "grid.", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    cfgs = _list(grid, "cfg", "grid.", lambda v: _is_number(v) and v >= 0, "a finite number >= 0")
    seeds = _list(grid, "seeds", "grid.", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    clips = _list(grid, "clips", "grid.", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    seconds = grid.get("seconds")
    if not (_is_number(seconds) and seconds > 0):
        raise ConfigError(f"spec key grid.seconds: must be a number > 0, got {seconds!r}")
    batch = grid.get("batch_size", 16)
    if not (_is_int(batch) and batch >= 1):
        raise ConfigError(f"spec key grid.batch_size: must be an integer >= 1, got {batch!r}")
    checkpoint = _str(grid, "checkpoint", "grid.")
    verify = grid.get("verify", True)
    if not isinstance(verify, bool):
        raise ConfigError(f"spec key grid.verify: must be true or false, got {verify!r}")
    cells = [
        Cell(model, name, n, float(cfg), seed, k, float(seconds), options, checkpoint, batch, verify)
        for model, (name, options), n, cfg, seed, k in itertools.product(models, samplers, steps, cfgs, seeds, clips)
    ]  # fmt: skip
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise ConfigError("spec key grid.samplers: lists a sampler with the same options twice")
    return cells


def _corpus(data: Mapping[str, Any], out: str) -> CorpusSpec | None:
    table = _table(data, "corpus", "")
    if table is None:
        return None
    _keys(table, CORPUS, "corpus.")
    checks = {"clips": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
              "seconds": (lambda v: _is_number(v) and v > 0, "a number > 0"),
              "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0")}  # fmt: skip
    values = {}
    for key, (ok, want) in checks.items():
        if key not in table:
            raise ConfigError(f"spec key corpus.{key}: missing; give {want}")
        if not ok(table[key]):
            raise ConfigError(f"spec key corpus.{key}: must be {want}, got {table[key]!r}")
        values[key] = table[key]
    split = table.get("split")
    if split is not None and split not in ("train", "test"):
        raise ConfigError(f"spec key corpus.split: {split!r}; allowed: train, test")
    path = _str(table, "path", "corpus.") or str(Path(out) / "corpus")
    return CorpusSpec(path, values["clips"], float(values["seconds"]), values["seed"], split)


def _scoring(data: Mapping[str, Any], corpus: CorpusSpec | None) -> Scoring:
    from t2mbench.metrics.registry import get_metric, metric_specs

    table = _table(data, "scoring", "")
    if table is None:
        raise ConfigError(f"spec key scoring: missing; a [scoring] table with {', '.join(SCORING)}")
    _keys(table, SCORING, "scoring.")
    prompts = _str(table, "prompts", "scoring.") or (corpus.path if corpus else None)
    if prompts is None:
        raise ConfigError("spec key scoring.prompts: missing; give a clip set (or a [corpus] to build)")
    reference = _str(table, "reference", "scoring.")
    known = metric_specs()
    metrics = _list(table, "metrics", "scoring.", lambda v: isinstance(v, str), "a metric name")
    for m in metrics:
        if m not in known:
            raise ConfigError(f"spec key scoring.metrics: unknown metric {m!r}; allowed: {', '.join(known)}")
    settings = _table(table, "settings", "scoring.") or {}
    for name, value in settings.items():
        if name not in metrics:
            raise ConfigError(f"spec key scoring.settings.{name}: not a metric of the sweep; allowed: "
                              f"{', '.join(metrics)}")  # fmt: skip
        if not isinstance(value, dict):
            raise ConfigError(f"spec key scoring.settings.{name}: must be a table, got {value!r}")
        try:
            get_metric(name, **value)  # every setting checked now, not after the first cell's generation
        except ConfigError as e:
            raise ConfigError(f"spec key scoring.settings.{name}: {e}") from None
    return Scoring(prompts, tuple(metrics), reference, {k: dict(v) for k, v in settings.items()})


__all__ = ["CorpusSpec", "SweepSpec", "load_spec", "parse_spec", "run_spec"]
