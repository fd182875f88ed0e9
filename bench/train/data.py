"""The training-config reader shared by every task (a corpus's splits are
:mod:`t2mbench.bench.corpus.splits`)."""

from __future__ import annotations

from dataclasses import asdict
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
    block = dict(raw["train"])
    if "betas" in block:
        block["betas"] = tuple(block["betas"])
    try:
        config = TrainConfig(**block)
    except TypeError as e:
        raise ConfigError(f"{path}: bad training config ({e})") from None
    if steps is not None:
        config = TrainConfig(**{**asdict(config), "steps": steps})
    return dict(raw["task"]), dict(raw["model"]), config
