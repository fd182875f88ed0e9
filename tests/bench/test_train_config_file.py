"""A training config file with a wrong type, a bad value or an unknown key in its train block is
one ConfigError naming the file and the field (it was a comparison TypeError, or a crash at the
first step for lr = null)."""

import json
from pathlib import Path

import pytest

from t2mbench.bench.train.data import read_train_config
from t2mbench.core.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "bench" / "train" / "configs" / "tiny-vae.json"


@pytest.mark.parametrize("key, value, message", [
    ("steps", "ten", "train.steps must be an integer >= 1, got 'ten'"),
    ("lr", None, "train.lr must be a finite number > 0, got None"),
    ("weight_decay", -0.1, "train.weight_decay must be a finite number >= 0, got -0.1"),
    ("ema_beta", 1.0, "train.ema_beta must be a finite number >= 0 and < 1, got 1.0"),
    ("betas", [0.9], "train.betas must be two numbers in [0, 1), got (0.9,)"),
    ("compile", "yes", "train.compile must be true or false, got 'yes'"),
    ("batch_size", 2, "train.batch_size: unknown; the train block takes steps, lr, "),
])  # fmt: skip
def test_a_bad_train_block_names_the_file_and_field(tmp_path, key, value, message):
    config = json.loads(SHIPPED.read_text())
    config["train"][key] = value
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as e:
        read_train_config(path)
    assert str(e.value).startswith(f"{path}: {message}")


def test_the_shipped_configs_read():
    for path in SHIPPED.parent.glob("*.json"):
        read_train_config(path)
