"""A resumable, deterministic training loop shared by the VAE, DiT and evaluator tasks.

Determinism: every random draw of step ``k`` (batch choice, crops, noise, dropout) comes
from a generator seeded with ``(seed, k)``, never from torch's global RNG, so a run killed
after checkpoint ``k`` (even by ``kill -9``) and restarted with the same command continues
exactly as if it had never stopped. Every ``checkpoint_every`` steps a folder
``checkpoints/step_<k>/`` holds ``model.safetensors`` (raw weights), ``ema.safetensors``
(EMA weights, what ships), ``critic.safetensors`` when the task has a critic, and ``state.pt``
(step and optimizers, loaded with ``weights_only=True``); it is written under a temporary name
and renamed whole, then ``checkpoints/latest`` names it.

A task may train a critic beside its model (the VAE's discriminator): ``build_critic()``
returns it (or None), and from step ``critic_start`` on ``losses`` gets it as ``critic=`` and
returns a ``"critic_loss"`` term besides ``"loss"``. The two are summed into one backward pass
(the task keeps each term's gradient on its own module), and each module has its own AdamW on
the same schedule, its own gradient clipping, and no EMA.

Outputs in ``out_dir``: ``ema.safetensors`` (latest EMA weights), the checkpoints,
``log.csv`` (step, seconds, lr, every loss term), ``loss.png`` and ``provenance.json``.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import save_file
from torch.nn.attention import SDPBackend, sdpa_kernel

from t2mbench.bench.plots import pyplot, save_figure
from t2mbench.core import provenance
from t2mbench.core.errors import ConfigError, WeightsError
from t2mbench.core.files import atomic_path, copy_file_atomic, write_bytes_atomic, write_json
from t2mbench.core.progress import progress_bar
from t2mbench.core.torch_files import load_torch_file
from t2mbench.metrics.setting_checks import flag, integer, number
from t2mbench.reference_models.checkpoints import read_state_dict

MODEL_FILE, EMA_FILE, STATE_FILE = "model.safetensors", "ema.safetensors", "state.pt"
CRITIC_FILE = "critic.safetensors"
LOG_FILE, PLOT_FILE, CKPT_DIR = "log.csv", "loss.png", "checkpoints"


class TrainTask(Protocol):
    """What a task supplies to :func:`train`."""

    name: str

    def build(self) -> torch.nn.Module:
        """The freshly initialised module whose parameters are trained."""

    def batch(self, step: int, generator: torch.Generator) -> Any:
        """The batch of ``step``; all randomness from ``generator``."""

    def losses(self, model: torch.nn.Module, batch: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Loss terms; ``"loss"`` is the total that is minimised."""


class CriticTask(TrainTask, Protocol):
    """A task that trains a critic beside its model (see the module docstring)."""

    def build_critic(self) -> torch.nn.Module | None:
        """The freshly initialised critic, or None when the task's config has none."""

    def losses(self, model: torch.nn.Module, batch: Any, generator: torch.Generator,
               critic: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """As :meth:`TrainTask.losses`; with ``critic``, also ``"critic_loss"``, minimised by the critic."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule settings (units: steps). ``lr`` peaks after ``warmup`` steps
    and decays to ``lr * final_lr_ratio`` by a cosine; EMA follows ema-pytorch's warmup
    ``1 - (1 + step) ** -ema_power`` capped at ``ema_beta``. A task's critic joins at step
    ``critic_start``. ``compile=True`` has the task compile its model's hot modules with
    ``torch.compile`` (TorchInductor, which needs a C++ compiler; the first step pays for the
    compilation). ``autocast="bfloat16"`` runs the forward pass under :func:`bfloat16_autocast`
    (weights, optimiser and EMA stay float32): the DiT recipe uses it for faster steps; the
    compiled VAE recipe does not, since it is no faster there (docs/timing_history.md)."""

    steps: int
    lr: float = 3e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup: int = 100
    final_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_beta: float = 0.999
    ema_power: float = 0.75
    checkpoint_every: int = 200
    seed: int = 0
    autocast: str | None = None
    critic_start: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        """Every field checked (ConfigError naming it), so a config file's typo is found before training."""
        for key in ("steps", "checkpoint_every"):
            integer(key, getattr(self, key), minimum=1)
        for key in ("warmup", "seed", "critic_start"):
            integer(key, getattr(self, key), minimum=0)
        for key in ("lr", "grad_clip", "ema_power"):
            number(key, getattr(self, key), above=0.0)
        for key in ("weight_decay", "final_lr_ratio"):
            number(key, getattr(self, key), minimum=0.0)
        number("ema_beta", self.ema_beta, minimum=0.0, below=1.0)
        if not (isinstance(self.betas, tuple) and len(self.betas) == 2):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        for beta in self.betas:
            number("betas", beta, minimum=0.0, below=1.0)
        if self.autocast not in (None, "bfloat16"):
            raise ConfigError(f"autocast must be null or 'bfloat16', got {self.autocast!r}")
        flag("compile", self.compile)

    def lr_at(self, step: int) -> float:
        """Learning rate for update number ``step`` (0-based)."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        span = max(1, self.steps - self.warmup)
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.warmup) / span)))
        return self.lr * (self.final_lr_ratio + (1 - self.final_lr_ratio) * cos)

    def ema_decay(self, step: int) -> float:
        return min(self.ema_beta, 1.0 - (1.0 + step) ** -self.ema_power)


def compile_for_training(task: TrainTask, model: torch.nn.Module) -> None:
    """``task.compile(model)``, after checking that the task can and that TorchInductor has a
    C++ compiler (``$CXX``, ``g++`` or ``clang++``), so a missing one is a clear error at step 0."""
    if not hasattr(task, "compile"):
        raise ConfigError(f"{task.name}: this task cannot compile its model; set the train block's compile to false")
    if not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")):
        raise ConfigError("compile: true needs a C++ compiler for torch.compile (g++ or clang++ on PATH, or $CXX);"
                          " install one or set the train block's compile to false")
    task.compile(model)


@contextlib.contextmanager
def bfloat16_autocast(enabled: bool = True) -> Iterator[None]:
    """CPU bfloat16 autocast whose attention takes SDPA's math path with bfloat16 reductions.

    On a CPU without AMX, SDPA's default (flash) kernel is the slow part of a small transformer's
    step, and the math path kept in bfloat16 is faster than both it and the math path's default
    upcast to float32 (docs/timing_history.md). The math path is plain autograd over matmul
    and softmax, so the backward, which runs after this context, needs no setting. The global
    flag is restored on exit."""
    if not enabled:
        yield
        return
    allowed = torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed()  # named cuda, read on every device
    torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp(True)
    try:
        with sdpa_kernel(SDPBackend.MATH), torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    finally:
        torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp(allowed)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of step ``step``: independent of every earlier step."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def train(
    task: TrainTask | CriticTask, config: TrainConfig, out_dir: str | Path, *, progress: bool = True
) -> torch.nn.Module:
    """Train ``task`` to ``config.steps`` in ``out_dir``, resuming from its last checkpoint.

    Returns the EMA module (the weights that ship). Re-running a finished run returns at once.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = task.build().train()
    ema = copy.deepcopy(model).eval()  # not a second build(): a data-dependent init costs a pass
    ema.requires_grad_(False)
    if config.compile:
        compile_for_training(task, model)
    critic = task.build_critic() if hasattr(task, "build_critic") else None
    trained = [model] if critic is None else [model, critic.train()]
    groups = [[p for p in m.parameters() if p.requires_grad] for m in trained]
    opts = [torch.optim.AdamW(g, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay) for g in groups]
    start = _resume(out, model, ema, opts, critic)
    if start == 0:
        write_json(out / "train_config.json", {"task": task.name, **asdict(config)})
        record = provenance.collect(seeds={"train": config.seed}, extra={"task": task.name, **asdict(config)})
        provenance.write(out, record)
    log = _Log(out / LOG_FILE, start)
    bar = progress_bar(total=config.steps, initial=start, desc=f"train {task.name}", unit="step", disable=not progress)
    t0 = time.perf_counter() - log.elapsed()
    for step in range(start, config.steps):
        gen = step_generator(config.seed, step)
        batch = task.batch(step, gen)
        with bfloat16_autocast(config.autocast is not None):
            if critic is not None and step >= config.critic_start:
                terms = task.losses(model, batch, gen, critic=critic)
            else:
                terms = task.losses(model, batch, gen)
        loss = terms["loss"] + terms.get("critic_loss", 0.0)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{task.name}: loss became {loss.item()} at step {step}; lower the learning rate")
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        lr = config.lr_at(step)
        for params, opt in zip(groups, opts):
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()
        _ema_update(ema, model, config.ema_decay(step))
        row = {"step": step + 1, "seconds": time.perf_counter() - t0, "lr": lr}
        row.update({k: float(v.detach()) for k, v in terms.items()})
        log.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            log.flush()
            _checkpoint(out, model, ema, opts, step + 1, critic)
    bar.close()
    log.flush()
    plot_losses(out / LOG_FILE, out / PLOT_FILE)
    return ema


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(m, 1.0 - decay)
            else:
                e.copy_(m)


def _checkpoint(out: Path, model: torch.nn.Module, ema: torch.nn.Module, opts: list[torch.optim.Optimizer], step: int,
                critic: torch.nn.Module | None) -> None:  # fmt: skip
    """Write ``checkpoints/step_<k>/`` through a temporary folder renamed whole, then point
    ``checkpoints/latest`` at it; the previous checkpoint is kept, older ones removed."""
    root = out / CKPT_DIR
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    modules = ((model, MODEL_FILE), (ema, EMA_FILE), *(((critic, CRITIC_FILE),) if critic is not None else ()))
    for module, name in modules:
        save_file({k: v.detach().contiguous() for k, v in module.state_dict().items()}, str(tmp / name))
    torch.save({"step": step, "optimizers": [opt.state_dict() for opt in opts]}, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_bytes_atomic(root / "latest", final.name.encode())
    for old in sorted(root.glob("step_*"))[:-2]:
        shutil.rmtree(old)
    copy_file_atomic(final / EMA_FILE, out / EMA_FILE)


def _resume(out: Path, model: torch.nn.Module, ema: torch.nn.Module, opts: list[torch.optim.Optimizer],
            critic: torch.nn.Module | None) -> int:  # fmt: skip
    pointer = out / CKPT_DIR / "latest"
    if not pointer.exists():
        return 0
    ckpt = out / CKPT_DIR / pointer.read_text().strip()
    try:
        model.load_state_dict(read_state_dict(ckpt / MODEL_FILE))
        ema.load_state_dict(read_state_dict(ckpt / EMA_FILE))
        if critic is not None:
            critic.load_state_dict(read_state_dict(ckpt / CRITIC_FILE))
        state = load_torch_file(ckpt / STATE_FILE, what="the training state")
        for opt, opt_state in zip(opts, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        return int(state["step"])
    except (WeightsError, RuntimeError, KeyError, ValueError, OSError, EOFError) as e:
        # a truncated file, or one from another task or config: resuming from it would be wrong
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(
            f"{ckpt}: cannot resume from this checkpoint ({reason}); it is truncated or from another run: "
            f"delete {out / CKPT_DIR} to start over, or train into another --out"
        ) from None


class _Log:
    """``log.csv`` rows; rows past the resumed step (written after the last checkpoint) are dropped."""

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []  # "step" is an int
        if start and path.exists():
            with open(path, newline="") as f:
                rows = [
                    {k: int(v) if k == "step" else float(v) for k, v in r.items() if v != ""}  # "": term absent
                    for r in csv.DictReader(f)
                ]
            self.rows = [r for r in rows if r["step"] <= start]

    def elapsed(self) -> float:
        """Training seconds already logged (so ``seconds`` stays cumulative across resumes)."""
        return self.rows[-1]["seconds"] if self.rows else 0.0

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        if not self.rows:
            return
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(self.rows)


def plot_losses(log_csv: Path, png: Path) -> Path:
    """Plot every loss column of ``log_csv`` against step (log-scale y, 50-step moving mean)."""
    plt = pyplot()
    import pandas as pd

    table = pd.read_csv(log_csv)
    terms = [c for c in table.columns if c not in ("step", "seconds", "lr")]
    fig, axes = plt.subplots(len(terms), 1, figsize=(7, 2.2 * len(terms)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], terms):
        ax.plot(table["step"], table[name], lw=0.5, alpha=0.4, color="tab:blue")
        ax.plot(table["step"], table[name].rolling(50, min_periods=1).mean(), lw=1.5, color="tab:blue")
        ax.set_ylabel(name)
        if (table[name] > 0).all():
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    return save_figure(fig, png)
