import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from bench.train.loop import TrainConfig, step_generator, train


class Regression:
    """y = x @ w_true + noise; every draw from the step generator."""

    name = "toy"

    def __init__(self, fail_at: int | None = None, nan_at: int | None = None):
        self.fail_at, self.nan_at = fail_at, nan_at
        self.w_true = torch.arange(1.0, 5.0)

    def build(self):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def batch(self, step, generator):
        if step == self.fail_at:
            raise KeyboardInterrupt  # what a kill looks like to the files on disk
        x = torch.randn(16, 4, generator=generator)
        return x, x @ self.w_true + 0.1 * torch.randn(16, generator=generator)

    def losses(self, model, batch, generator):
        x, y = batch
        loss = ((model(x).squeeze(-1) - y) ** 2).mean()
        if self.nan_at is not None and generator.initial_seed() == step_generator(0, self.nan_at).initial_seed():
            loss = loss * float("nan")
        return {"loss": loss, "mse": loss.detach()}


CFG = TrainConfig(steps=9, lr=1e-2, warmup=2, checkpoint_every=3, seed=0)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    straight = train(Regression(), CFG, tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(Regression(fail_at=7), CFG, tmp_path / "b", progress=False)
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text() == "step_00000006"
    resumed = train(Regression(), CFG, tmp_path / "b", progress=False)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    a, b = (load_file(str(tmp_path / d / "checkpoints" / "step_00000009" / "model.safetensors")) for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = pd.read_csv(tmp_path / "b" / "log.csv")
    assert list(log["step"]) == list(range(1, 10)) and log["seconds"].is_monotonic_increasing
    assert (tmp_path / "b" / "loss.png").stat().st_size > 1000
    kept = sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir())
    assert kept == ["latest", "step_00000006", "step_00000009"]


def test_training_reduces_the_loss(tmp_path):
    train(Regression(), TrainConfig(steps=60, lr=3e-2, warmup=5, checkpoint_every=60), tmp_path, progress=False)
    log = pd.read_csv(tmp_path / "log.csv")
    assert log["mse"].iloc[-10:].mean() < 0.2 * log["mse"].iloc[:5].mean()


def test_finished_run_returns_without_training(tmp_path):
    train(Regression(), CFG, tmp_path, progress=False)
    again = train(Regression(fail_at=0), CFG, tmp_path, progress=False)  # would raise if any step ran
    assert torch.equal(again[0].weight, load_file(str(tmp_path / "ema.safetensors"))["0.weight"])


def test_nan_loss_names_the_step(tmp_path):
    with pytest.raises(FloatingPointError, match="toy: loss became nan at step 4; lower the learning rate"):
        train(Regression(nan_at=4), CFG, tmp_path, progress=False)


def test_schedules():
    c = TrainConfig(steps=110, lr=1.0, warmup=10, final_lr_ratio=0.1, ema_beta=0.999, ema_power=0.75)
    assert c.lr_at(0) == pytest.approx(0.1) and c.lr_at(9) == pytest.approx(1.0)
    assert c.lr_at(60) == pytest.approx(0.55) and c.lr_at(110) == pytest.approx(0.1)
    assert c.ema_decay(0) == 0.0 and c.ema_decay(15) == pytest.approx(1 - 16**-0.75) and c.ema_decay(10**6) == 0.999


def test_bad_config():
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="autocast must be null or 'bfloat16', got 'float16'"):
        TrainConfig(steps=1, autocast="float16")


def test_bfloat16_autocast_trains_with_float32_weights(tmp_path):
    cfg = TrainConfig(steps=60, lr=3e-2, warmup=5, checkpoint_every=60, autocast="bfloat16")
    ema = train(Regression(), cfg, tmp_path, progress=False)
    log = pd.read_csv(tmp_path / "log.csv")
    assert log["mse"].iloc[-10:].mean() < 0.2 * log["mse"].iloc[:5].mean()
    assert all(v.dtype == torch.float32 for v in ema.state_dict().values())
