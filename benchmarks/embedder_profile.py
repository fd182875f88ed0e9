"""Where OpenL3's and PaSST's time goes against their FLOP floor: a per-layer profile on the CPU.

    python benchmarks/embedder_profile.py [--seconds 60] [--threads 2] [--gemm-rate 170] [--json out.json]

Both embedders run on random weights (cost does not depend on them) on ``--seconds`` of audio: OpenL3 on
stereo at 44.1 kHz as FD_openl3 feeds it (``embed``: resampy to 48 kHz, 1-s frames every 0.5 s per
channel, front end B with TensorFlow's FFT above the band edge, the CNN); PaSST on mono at 32 kHz as
KL_passt feeds it (10-s windows every 5 s, 4 per forward). One warm-up call, then one call under
``torch.profiler`` (``record_shapes``), grouped by operator and input shape, so each convolution and each
linear layer is a row of its own.

Per row: self CPU time, FLOPs (2 per multiply-add, counted from the shapes: convolutions, matrix
products, attention; elementwise operators, pooling, norms and FFTs count 0, as in the floor),
and the achieved GFLOP/s. The floor is total FLOPs / the fp32 GEMM rate of this CPU, measured in the
same run (a 2048-cube ``torch.mm``, best of 5, before and after; ``--gemm-rate`` fixes it instead). The
report splits the time above the floor into (a) GEMM-like work running below the GEMM rate and (b) work
with no FLOPs in the floor (front ends, layout conversions, activations, pooling, norms), which no GEMM
speed-up removes.

FLOPs are 2 per multiply-add, the convention of the GEMM rate. (Issue 23's floors, ~2,460 GFLOP for
OpenL3 and ~1,500 for PaSST at 170 GFLOP/s, appear to count about one per multiply-add: this script
counts 5,008 and 2,602.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import defaultdict

import numpy as np
import torch

# leaf operators whose FLOPs are counted (2 per multiply-add); everything else counts 0 (their composite
# parents, aten::conv2d / linear / matmul / scaled_dot_product_attention, have no self time to speak of)
CONV_OPS = ("aten::mkldnn_convolution",)
GEMM_OPS = ("aten::addmm", "aten::mm", "aten::bmm")
SDPA_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu",)


def conv_flops(shapes: list) -> float:
    """``2 N C_out C_in kh kw H_out W_out`` for a stride-1/same (OpenL3) or strided (PaSST patch) conv."""
    x, w = shapes[0], shapes[1]
    if len(x) != 4 or len(w) != 4:
        return 0.0
    n, cin, h, wd = x
    cout, _, kh, kw = w
    stride = 10 if kh == 16 else 1  # PaSST's patch embedding: 16x16, stride 10
    if stride == 1:
        h_out, w_out = h, wd
    else:
        h_out, w_out = (h - kh) // stride + 1, (wd - kw) // stride + 1
    return 2.0 * n * cout * cin * kh * kw * h_out * w_out


def gemm_flops(name: str, shapes: list) -> float:
    """Matrix products by their shapes (``addmm``: bias, A, B; ``mm``/``bmm``/``matmul``: A, B)."""
    dims = [s for s in shapes if s]
    if name == "aten::addmm" and len(dims) >= 3:
        a, b = dims[1], dims[2]
    elif len(dims) >= 2:
        a, b = dims[0], dims[1]
    else:
        return 0.0
    if len(a) < 2 or len(b) < 2:
        return 0.0
    batch = math.prod(a[:-2]) if len(a) > 2 else 1
    return 2.0 * batch * a[-2] * a[-1] * b[-1]


def sdpa_flops(shapes: list) -> float:
    """``softmax(q kᵀ) v``: ``4 B H Nq Nk d``."""
    q, k = shapes[0], shapes[1]
    return 4.0 * math.prod(q[:-2]) * q[-2] * k[-2] * q[-1] if len(q) == 4 else 0.0


def gemm_rate(threads: int, n: int = 2048, rounds: int = 5) -> float:
    """Best-of-``rounds`` fp32 GFLOP/s of an ``n``-cube ``torch.mm`` (2 flops per multiply-add)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def profile(run, label: str) -> dict:
    """Self time and FLOPs per (operator, input shapes), from one profiled call of ``run``."""
    run()  # warm-up (weight layout conversions, allocator)
    start = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    wall = time.perf_counter() - start
    rows = []
    for e in prof.key_averages(group_by_input_shape=True):
        shapes = [list(s) for s in (e.input_shapes or [])]
        name = e.key
        if name in CONV_OPS:
            flops = conv_flops(shapes) * e.count
        elif name in GEMM_OPS:
            flops = gemm_flops(name, shapes) * e.count
        elif name in SDPA_OPS:
            flops = sdpa_flops(shapes) * e.count
        else:
            flops = 0.0
        rows.append({"op": name, "shapes": shapes, "calls": e.count, "self_s": e.self_cpu_time_total / 1e6,
                     "gflop": flops / 1e9})  # fmt: skip
    return {"label": label, "wall_s": wall, "rows": rows}


def summarise(result: dict, gemm_rate: float) -> dict:
    rows = result["rows"]
    total_s = sum(r["self_s"] for r in rows)
    gflop = sum(r["gflop"] for r in rows)
    flop_rows = [r for r in rows if r["gflop"] > 0]
    flop_s = sum(r["self_s"] for r in flop_rows)
    by_op = defaultdict(float)
    for r in rows:
        if r["gflop"] == 0:
            by_op[r["op"]] += r["self_s"]
    top = sorted(rows, key=lambda r: -r["self_s"])[:25]
    return {
        "label": result["label"],
        "wall_s": result["wall_s"],
        "profiled_self_s": total_s,
        "gflop": gflop,
        "floor_s": gflop / gemm_rate,
        "wall_over_floor": result["wall_s"] / (gflop / gemm_rate) if gflop else None,
        "flop_ops_s": flop_s,
        "flop_ops_gflops_per_s": gflop / flop_s if flop_s else None,
        "flop_ops_excess_s": flop_s - gflop / gemm_rate,
        "no_flop_ops_s": total_s - flop_s,
        "no_flop_ops": dict(sorted(by_op.items(), key=lambda kv: -kv[1])[:12]),
        "layers": [{**r, "gflops_per_s": r["gflop"] / r["self_s"] if r["self_s"] and r["gflop"] else None}
                   for r in top],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gemm-rate", type=float, default=0.0,
                        help="fp32 GEMM GFLOP/s of this CPU (0: measure a 2048-cube torch.mm in this run)")
    parser.add_argument("--which", default="openl3,passt")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    rate = args.gemm_rate or gemm_rate(args.threads)
    report = {"seconds": args.seconds, "threads": args.threads, "gemm_rate": rate,
              "load_before": os.getloadavg(), "torch": torch.__version__}  # fmt: skip
    if "openl3" in args.which:
        from t2mbench.metrics.embedders.openl3 import OpenL3Embedder, OpenL3Net

        net = OpenL3Net().for_inference("cpu")
        options = {"frontend": "kapre037", "input_repr": "mel256", "embedding_size": 512, "hop_size": 0.5,
                   "center": True, "fft": "tf213"}  # fmt: skip
        openl3 = OpenL3Embedder(net, "random", options=options, batch_frames=16)
        audio = torch.from_numpy(rng.uniform(-0.5, 0.5, (1, 2, int(args.seconds * 44100))).astype(np.float32))
        report["openl3"] = summarise(profile(lambda: openl3.embed(audio, 44100), "openl3"), rate)
    if "passt" in args.which:
        from t2mbench.metrics.embedders.passt import PaSST, PasstEmbedder

        passt = PasstEmbedder(PaSST(), "random")
        mono = torch.from_numpy(rng.uniform(-0.5, 0.5, (1, 1, int(args.seconds * 32000))).astype(np.float32))
        report["passt"] = summarise(profile(lambda: passt.embed(mono, 32000), "passt"), rate)
    report["gemm_rate_after"] = gemm_rate(args.threads)
    report["load_after"] = os.getloadavg()
    text = json.dumps(report, indent=1, default=float)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
