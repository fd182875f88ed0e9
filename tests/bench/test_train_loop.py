import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import profile

from t2mbench.bench.train.loop import TrainConfig, bfloat16_autocast, step_generator, train


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
    # the rows read back on resume keep their integer steps ("7", not "7.0")
    assert [row.split(",")[0] for row in (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]] == [
        str(i) for i in range(1, 10)
    ]
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
    # at a constant rate the schedule ignores ``steps``: a longer run's step-k checkpoint is the k-step run
    # (how the shipped VAE's 8000-step checkpoint of a 10000-step run equals tiny-vae.json's 8000 steps)
    flat = [TrainConfig(steps=n, lr=5e-4, warmup=100, final_lr_ratio=1.0) for n in (8000, 10000)]
    assert [flat[0].lr_at(k) for k in range(8000)] == [flat[1].lr_at(k) for k in range(8000)]
    assert flat[1].lr_at(7999) == 5e-4 and flat[1].lr_at(50) == pytest.approx(5e-4 * 51 / 100)


def test_bad_config():
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="autocast must be null or 'bfloat16', got 'float16'"):
        TrainConfig(steps=1, autocast="float16")


def test_bfloat16_autocast_trains_with_float32_weights(tmp_path):
    cfg = TrainConfig(steps=60, lr=3e-2, warmup=5, checkpoint_every=60, autocast="bfloat16")
    ema = train(Regression(), cfg, tmp_path, progress=False)
    log = pd.read_csv(tmp_path / "log.csv")
    assert log["mse"].iloc[-10:].mean() < 0.2 * log["mse"].iloc[:5].mean()
    assert all(v.dtype == torch.float32 for v in ema.state_dict().values())


def _attention_ops(q, k, v):
    with profile() as prof:
        out = F.scaled_dot_product_attention(q, k, v)
    return out, {e.key for e in prof.key_averages()}


def test_bfloat16_autocast_runs_attention_on_the_math_path_in_bfloat16():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 40, 16, generator=g, requires_grad=True) for _ in range(3))
    exact = F.scaled_dot_product_attention(q, k, v)
    before = torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed()
    with bfloat16_autocast():
        assert torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed()
        out, ops = _attention_ops(q, k, v)
    assert torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed() == before
    assert "aten::_scaled_dot_product_attention_math" in ops
    assert not any("flash" in op for op in ops)
    assert out.dtype == torch.bfloat16
    assert (out.float() - exact).abs().max().item() < 3e-2
    # the reductions stay in bfloat16: the math path's default upcast to float32 rounds differently
    with sdpa_kernel(SDPBackend.MATH), torch.autocast("cpu", dtype=torch.bfloat16):
        upcast = F.scaled_dot_product_attention(q, k, v)
    assert not torch.equal(out, upcast)
    out.float().sum().backward()  # the backward runs outside the context
    assert q.grad is not None and torch.isfinite(q.grad).all()
    with bfloat16_autocast(enabled=False):
        plain, ops = _attention_ops(q, k, v)
    assert plain.dtype == torch.float32 and torch.equal(plain, exact)


def test_bfloat16_autocast_restores_the_flag_after_an_error():
    before = torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed()
    with pytest.raises(RuntimeError, match="inside"):
        with bfloat16_autocast():
            raise RuntimeError("inside")
    assert torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed() == before


class WithCritic(Regression):
    """Regression plus a critic (a scalar ``c``) trained from step ``critic_start`` on to
    minimise (c − 3)²; the model's loss gains 0.01·c² with ``c`` frozen."""

    def build_critic(self):
        critic = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(critic.weight)
        return critic

    def losses(self, model, batch, generator, critic=None):
        terms = super().losses(model, batch, generator)
        if critic is not None:
            c = critic.weight[0, 0]
            terms["loss"] = terms["loss"] + 0.01 * c.detach() ** 2
            terms["critic_loss"] = (c - 3.0) ** 2
        return terms


def test_critic_resumes_to_the_same_weights_and_optimiser_state(tmp_path):
    cfg = TrainConfig(steps=9, lr=1e-1, warmup=2, checkpoint_every=3, seed=0, critic_start=4)
    train(WithCritic(), cfg, tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(WithCritic(fail_at=8), cfg, tmp_path / "b", progress=False)
    train(WithCritic(), cfg, tmp_path / "b", progress=False)
    for name in ("model.safetensors", "critic.safetensors"):
        a, b = (load_file(str(tmp_path / d / "checkpoints" / "step_00000009" / name)) for d in "ab")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    log = pd.read_csv(tmp_path / "b" / "log.csv")
    # no critic term before step critic_start (0-based), one on every step after
    assert log["critic_loss"].isna().tolist() == [True] * 4 + [False] * 5


def test_critic_has_its_own_optimiser_and_clipping(tmp_path):
    # the critic's gradient 2(c - 3) is large, the model's tiny: clipped together, the model
    # would barely move; clipped apart, the model trains as it does without a critic
    cfg = TrainConfig(steps=6, lr=1e-2, warmup=1, checkpoint_every=6, grad_clip=0.5)
    plain = train(Regression(), cfg, tmp_path / "plain", progress=False)
    with_critic = train(WithCritic(), cfg, tmp_path / "critic", progress=False)
    critic = load_file(str(tmp_path / "critic" / "checkpoints" / "step_00000006" / "critic.safetensors"))
    # Adam moves a parameter with a steady gradient by lr per step: from 0 toward 3
    assert critic["weight"].item() == pytest.approx(sum(cfg.lr_at(k) for k in range(6)), rel=1e-3)
    assert "critic.weight" not in with_critic.state_dict()  # the EMA (what ships) is the model alone
    for (k, a), b in zip(plain.state_dict().items(), with_critic.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k  # 0.01·c² with c frozen adds no gradient to the model


def test_compile_needs_a_task_that_can_and_a_cxx_compiler(tmp_path, monkeypatch):
    from t2mbench.bench.train import loop

    cfg = TrainConfig(steps=1, compile=True)
    with pytest.raises(ValueError, match="toy: this task cannot compile its model; set the train block's compile"):
        train(Regression(), cfg, tmp_path / "a", progress=False)

    class Compilable(Regression):
        compiled = []

        def compile(self, model):
            self.compiled.append(model)

    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(loop.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match=r"compile: true needs a C\+\+ compiler for torch.compile"):
        train(Compilable(), cfg, tmp_path / "b", progress=False)
    assert not (tmp_path / "b" / "log.csv").exists() and Compilable.compiled == []
    monkeypatch.setenv("CXX", "g++")
    train(Compilable(), TrainConfig(steps=1, compile=True, checkpoint_every=1), tmp_path / "c", progress=False)
    assert len(Compilable.compiled) == 1 and Compilable.compiled[0].training  # the trained model, not the EMA
