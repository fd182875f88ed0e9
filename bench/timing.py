"""The timing harness: one generation configuration timed stage by stage, repeated, summarised.

What it measures, per run (:func:`time_run`): text encoding, each denoising step, VAE decoding
and the total, from clock marks that :func:`t2mbench.reference_models.generate` reports
(``stage_hook`` at each stage's start and at the end of decoding, ``callback`` after each
step). On the CPU a mark is :func:`time.perf_counter`. On a GPU a mark records a CUDA event on
the current stream; the events are read after one :func:`torch.cuda.synchronize` at the end of
the run, so asynchronous launches are never timed by a CPU clock (``generate`` keeps its own
stage sums, which synchronise at the three stage boundaries of a batch, never inside the step
loop). The run's wall time (perf_counter around the call, synchronised) is kept beside.

Peak memory per run: host RSS from ``/proc/self/status`` (``VmHWM``), its high-water mark reset
before the run by writing ``5`` to ``/proc/self/clear_refs`` (Linux; where that is refused the
value is the process's lifetime peak and ``rss_peak_reset`` says so); on a GPU
``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` after ``reset_peak_memory_stats``.

Repeats (:func:`time_config`): ``warmup`` untimed runs, then ``repeats`` timed ones; each
quantity gets the median, p90 (linear interpolation), min and a confidence interval of the
median from order statistics (distribution-free: the interval [X(r), X(n-r+1)] with
P(r <= K <= n-r) >= level for K ~ Binomial(n, 1/2), asv's method; its exact coverage is
reported, and with too few repeats for the level it is [min, max] with the coverage it has).
Real-time factor = median total seconds / seconds of audio generated; NFE from the sampler.
:func:`fingerprint` records the machine: CPU model and SIMD flags, cores and threads, torch,
BLAS/LAPACK and numpy versions, GPU name, driver and CUDA versions, dtype.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve")  # fmt: skip
STAGES = ("text_encoding", "denoising", "decoding", "total")


class Clock:
    """Marks ``(label, time)`` on the CPU clock, or CUDA events on ``device``'s current stream."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.marks: list[tuple[str, Any]] = []

    def mark(self, label: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((label, event))
        else:
            self.marks.append((label, time.perf_counter()))

    def step(self, info: Mapping[str, Any]) -> None:
        """``generate``'s step callback: one ``step`` mark."""
        self.mark("step")

    def read(self) -> list[tuple[str, float]]:
        """The marks as seconds since the first (one synchronisation on a GPU)."""
        if not self.marks:
            return []
        if self.cuda:
            torch.cuda.synchronize()
            first = self.marks[0][1]
            return [(label, first.elapsed_time(e) / 1000.0) for label, e in self.marks]
        t0 = self.marks[0][1]
        return [(label, t - t0) for label, t in self.marks]


def split_marks(marks: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Stage seconds from a run's marks: ``text_encoding``, ``denoising``, ``decoding`` summed over
    batches, ``steps`` (seconds of step i, summed over batches) and ``total`` (first to last mark)."""
    out: dict[str, Any] = {"text_encoding": 0.0, "denoising": 0.0, "decoding": 0.0, "steps": []}
    start: dict[str, float] = {}
    previous = 0.0
    step = 0
    for label, t in marks:
        if label in ("text_encoding", "denoising", "decoding"):
            if label == "denoising":
                out["text_encoding"] += t - start["text_encoding"]
                step = 0
            if label == "decoding":
                out["denoising"] += t - start["denoising"]
            start[label] = t
            previous = t
        elif label == "step":
            if step == len(out["steps"]):
                out["steps"].append(0.0)
            out["steps"][step] += t - previous
            step += 1
            previous = t
        elif label == "done":
            out["decoding"] += t - start["decoding"]
    out["total"] = marks[-1][1] - marks[0][1] if marks else 0.0
    return out


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs``); False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    """This process's RSS high-water mark (``VmHWM``), or None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+)\s+kB", text, re.M)
    return int(found.group(1)) * 1024 if found else None


def time_run(run, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Call ``run(clock)`` once (it generates, passing ``clock.mark`` as ``stage_hook`` and
    ``clock.step`` as ``callback``) and return its stage seconds, wall seconds, peak memory and
    what ``run`` returned (as ``result``)."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    reset = reset_peak_rss()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    clock = Clock(device)
    t0 = time.perf_counter()
    result = run(clock)
    if cuda:
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    record = split_marks(clock.read()) | {"wall": wall, "peak_rss_bytes": peak_rss_bytes(), "rss_peak_reset": reset}
    if cuda:
        record |= {"cuda_max_allocated_bytes": torch.cuda.max_memory_allocated(device),
                   "cuda_max_reserved_bytes": torch.cuda.max_memory_reserved(device)}  # fmt: skip
    record["result"] = result
    return record


@dataclass(frozen=True)
class Summary:
    """Median, p90, min and a CI of the median of ``n`` values (``coverage``: the CI's exact level)."""

    median: float
    p90: float
    min: float
    ci_low: float
    ci_high: float
    coverage: float
    n: int


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """The order-statistic CI of the median: ``(low, high, exact coverage)`` (see the module doc)."""
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    best = (float(x[0]), float(x[-1]), float(1 - 2 * binom.cdf(0, n, 0.5)))  # [X(1), X(n)]
    for r in range(1, n // 2 + 1):  # 1-based rank: [X(r), X(n-r+1)] covers with P(r <= K <= n-r)
        coverage = float(binom.cdf(n - r, n, 0.5) - binom.cdf(r - 1, n, 0.5))
        if coverage < level:
            break
        best = (float(x[r - 1]), float(x[n - r]), coverage)
    return best


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    """The :class:`Summary` of ``values`` (at least one)."""
    x = np.asarray(values, dtype=float)
    low, high, coverage = median_ci(x, level)
    return Summary(float(np.median(x)), float(np.percentile(x, 90)), float(x.min()), low, high, coverage, len(x))


@dataclass
class TimingReport:
    """A configuration timed: per-stage summaries, the per-step summary (all steps of all runs)
    and per step index, RTF, NFE, peak memory, the raw runs and the machine's fingerprint."""

    config: dict[str, Any]
    stages: dict[str, Summary]
    step: Summary
    step_medians: list[float]
    real_time_factor: float
    nfe: int
    memory: dict[str, Any]
    runs: list[dict[str, Any]]
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_config(
    model: str = "tiny",
    *,
    sampler: str,
    steps: int,
    cfg: float | None = None,
    seconds: float = 10.0,
    clips: int = 1,
    batch_size: int = 1,
    seed: int = 0,
    warmup: int = 2,
    repeats: int = 10,
    device: str = "cpu",
    sampler_options: Mapping[str, Any] | None = None,
    prompt: str = "a calm piano melody",
    level: float = 0.95,
) -> TimingReport:
    """Time ``generate`` on one configuration: ``warmup`` runs, then ``repeats`` timed runs."""
    from t2mbench.core.errors import ConfigError
    from t2mbench.reference_models import generate, load_model

    if warmup < 0 or repeats < 1:
        raise ConfigError(f"warm-up must be >= 0 and repeats >= 1, got {warmup} and {repeats}")
    loaded = load_model(model, device=device).eval()
    prompts = [prompt] * clips

    def run(clock: Clock):
        return generate(loaded, prompts, sampler=sampler, steps=steps, cfg_scale=cfg, seconds=seconds, seed=seed,
                        batch_size=batch_size, device=device, sampler_options=sampler_options,
                        callback=clock.step, stage_hook=clock.mark)  # fmt: skip

    for _ in range(warmup):
        time_run(run, device)
    runs = [time_run(run, device) for _ in range(repeats)]
    result = runs[-1]["result"]
    stages = {s: summarize([r[s] for r in runs], level) for s in STAGES}
    stages["wall"] = summarize([r["wall"] for r in runs], level)
    all_steps = [t for r in runs for t in r["steps"]]
    memory: dict[str, Any] = {"peak_rss_bytes": max(r["peak_rss_bytes"] or 0 for r in runs) or None,
                              "rss_peak_reset": all(r["rss_peak_reset"] for r in runs)}  # fmt: skip
    if "cuda_max_allocated_bytes" in runs[0]:
        for k in ("cuda_max_allocated_bytes", "cuda_max_reserved_bytes"):
            memory[k] = max(r[k] for r in runs)
    config = {"model": model, "sampler": sampler, "steps": steps, "cfg": result.settings["cfg_scale"],
              "seconds": seconds, "clips": clips, "batch_size": batch_size, "seed": seed, "warmup": warmup,
              "repeats": repeats, "device": device, "sampler_options": dict(sampler_options or {})}  # fmt: skip
    dtype = result.settings.get("dtype", "float32")
    return TimingReport(
        config=config, stages=stages, step=summarize(all_steps, level),
        step_medians=[float(np.median([r["steps"][i] for r in runs])) for i in range(len(runs[0]["steps"]))],
        real_time_factor=stages["total"].median / (seconds * clips), nfe=result.nfe, memory=memory,
        runs=[{k: v for k, v in r.items() if k != "result"} for r in runs], fingerprint=fingerprint(device, dtype),
    )  # fmt: skip


def fingerprint(device: str = "cpu", dtype: str = "float32") -> dict[str, Any]:
    """The machine a timing ran on (see the module doc)."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "machine": platform.machine(), "dtype": dtype, "device": str(device)}  # fmt: skip
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, re.M)
    present = set(flags.group(1).split()) if flags else set()
    info["cpu_model"] = model.group(1).strip() if model else platform.processor() or "unknown"
    info["cpu_flags"] = [f for f in CPU_FLAGS if f in present]
    info["cpu_count"] = os.cpu_count()
    info["cpu_affinity"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info["torch_threads"] = torch.get_num_threads()
    info["torch_interop_threads"] = torch.get_num_interop_threads()
    info["torch"] = torch.__version__
    info["numpy"] = np.__version__
    config = torch.__config__.show()
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        found = re.search(rf"{key}=([^,\s]+)", config)
        info[key.lower()] = found.group(1) if found else None
    info["mkl"] = torch.backends.mkl.is_available()
    info["mkldnn"] = torch.backends.mkldnn.is_available()
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        driver = re.search(r"Kernel Module\s+([\d.]+)", _read("/proc/driver/nvidia/version"))
        info |= {"gpu": props.name, "gpu_memory_bytes": props.total_memory, "gpu_count": torch.cuda.device_count(),
                 "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                 "gpu_driver": driver.group(1) if driver else None}  # fmt: skip
    return info


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def render(report: TimingReport) -> str:
    """The stage table, the step line, RTF, NFE, memory and the fingerprint, as text."""
    c = report.config
    level = report.stages["total"].coverage
    lines = [
        f"# {c['model']} {c['sampler']}-{c['steps']} cfg {c['cfg']:g}: {c['clips']} clip(s) of {c['seconds']:g} s, "
        f"batch {c['batch_size']}, {c['device']}; {c['warmup']} warm-up + {c['repeats']} timed runs",
        "",
        f"| stage | median s | p90 s | min s | CI of the median ({level:.1%} exact, order statistics) | share |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    total = report.stages["total"].median
    rows = [("text encoding", report.stages["text_encoding"]), ("denoising", report.stages["denoising"]),
            ("  per step", report.step), ("VAE decoding", report.stages["decoding"]),
            ("total", report.stages["total"]), ("wall (synchronised)", report.stages["wall"])]  # fmt: skip
    for name, s in rows:
        share = f"{s.median / total:.1%}" if name in ("text encoding", "denoising", "VAE decoding") else ""
        lines.append(f"| {name} | {s.median:.4g} | {s.p90:.4g} | {s.min:.4g} | [{s.ci_low:.4g}, {s.ci_high:.4g}] "
                     f"| {share} |")  # fmt: skip
    steps = ", ".join(f"{t * 1000:.3g}" for t in report.step_medians)
    lines += ["", f"median ms per denoising step (step 1..{len(report.step_medians)}): {steps}"]
    lines.append(f"real-time factor {report.real_time_factor:.4g} (total / audio seconds); NFE {report.nfe}")
    m = report.memory
    mem = f"peak RSS {_mib(m['peak_rss_bytes'])}" + ("" if m["rss_peak_reset"] else " (lifetime peak: reset refused)")
    if "cuda_max_allocated_bytes" in m:
        mem += (f"; CUDA max allocated {_mib(m['cuda_max_allocated_bytes'])}, "
                f"max reserved {_mib(m['cuda_max_reserved_bytes'])} (peaks reset per run)")  # fmt: skip
    lines.append(mem)
    lines += ["", "environment:"] + [f"  {k}: {v}" for k, v in report.fingerprint.items()]
    return "\n".join(lines)


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f} MiB"


__all__ = ["Clock", "Summary", "TimingReport", "fingerprint", "median_ci", "render", "split_marks", "summarize",
           "time_config", "time_run"]  # fmt: skip
