"""The training-config reader shared by every task (a corpus's splits are
:mod:`t2mbench.bench.corpus.splits`)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from t2mbench.bench.train.loop import TrainConfig
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import read_json

CONFIG_BLOCKS = ("task", "model", "train")


def read_train_config(
    path: str | Path, steps: int | None = None
) -> tuple[dict[str, Any], dict[str, Any], TrainConfig]:
    """``(task, model, train)`` blocks of a training-config JSON; ``steps`` overrides the
    configured step count."""
    raw = read_json(path)
    missing = [k for k in CONFIG_BLOCKS if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing blocks {missing}; a training config has 'task', 'model' and 'train'")
    if not all(isinstance(raw[k], dict) for k in CONFIG_BLOCKS):
        raise ConfigError(f"{path}: the blocks {', '.join(CONFIG_BLOCKS)} must be objects")
    block = dict(raw["train"])
    known = [f.name for f in fields(TrainConfig)]
    unknown = [k for k in block if k not in known]
    if unknown or "steps" not in block:
        what = f"train.{unknown[0]}: unknown" if unknown else "train.steps: missing"
        raise ConfigError(f"{path}: {what}; the train block takes {', '.join(known)}")
    if isinstance(block.get("betas"), list):
        block["betas"] = tuple(block["betas"])
    try:
        config = TrainConfig(**{**block, **({} if steps is None else {"steps": steps})})
    except ConfigError as e:
        raise ConfigError(f"{path}: train.{e}") from None
    return dict(raw["task"]), dict(raw["model"]), config
