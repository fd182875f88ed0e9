"""Time stable-audio-tools 0.0.19's DiT forward or VAE decode for a t2mbench config, with the
seeded weights of ``tests/support/sat_weights.py`` (run in the upstream env; t2mbench never
imports stable-audio-tools).

    python benchmarks/upstream/sat_time.py --what dit --config reference_models/configs/sao-1.0.json \\
        --latents 1024 --batch 1 --repeats 2 [--cfg 7] [--depth 24] [--device cuda --dtype bf16] [--out out.npz]

``--what dit``: ``DiffusionTransformer.forward`` on x ``[batch, 64, latents]`` with the
cross-attention tokens and global vector of ``inputs()`` (with ``--cfg`` > 1, upstream's own
CFG: the batch doubled [cond; zeros] in one forward). ``--what vae``: the pretransform's
decode of latents ``[batch, 64, latents]`` (one clip at a time, ``iterate_batch``).
``--depth`` keeps only the first blocks (for quick comparisons). Prints one JSON line:
``best_s`` and ``times_s`` (wall; model building and weight seeding excluded), ``best_cpu_s``
(the process's CPU time, all threads: steadier than wall time on a shared machine), ``peak_rss_mib``,
versions; ``--out`` saves the output for a parity check against t2mbench's side.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support.sat_weights import seeded_state_dict, uniform  # noqa: E402

SEED = 1234
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def inputs(config: dict, batch: int, latents: int) -> dict[str, np.ndarray]:
    """The benchmark's inputs (shared with ``benchmarks/test_reference_models.py``): ``x`` and
    ``t`` for the DiT, the conditioning it would get (text tokens, then one per number), and
    latents ``z`` for the decoder."""
    diffusion = config["model"]["diffusion"]
    dit = diffusion["config"]
    kinds = {c["id"]: c for c in config["model"]["conditioning"]["configs"]}
    tokens = sum(
        kinds[i]["config"].get("max_length", 128) if kinds[i]["type"] != "number" else 1
        for i in diffusion["cross_attention_cond_ids"]
    )
    return {
        "x": uniform(SEED, "x", (batch, dit["io_channels"], latents)),
        "t": np.full((batch,), 0.7, dtype=np.float32),
        "cross": uniform(SEED, "cross", (batch, tokens, dit["cond_token_dim"])),
        "global": uniform(SEED, "global", (batch, dit["global_cond_dim"])),
        "z": uniform(SEED, "z", (batch, dit["io_channels"], latents)) * np.float32(2.0),
    }


def _version(dist: str, module) -> str:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:  # a source copy on the path
        return f"source at {Path(module.__file__).parent}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=["dit", "vae"], required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--latents", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--depth", type=int)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--out")
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text())
    if args.depth:
        config["model"]["diffusion"]["config"]["depth"] = args.depth
    data = {k: torch.from_numpy(v).to(args.device) for k, v in inputs(config, args.batch, args.latents).items()}
    dtype = DTYPES[args.dtype]
    if args.what == "dit":
        from stable_audio_tools.models.dit import DiffusionTransformer

        d = config["model"]["diffusion"]
        model = DiffusionTransformer(diffusion_objective=d.get("diffusion_objective", "v"), **d["config"])
        prefix = "model.model."
    else:
        from stable_audio_tools.models.factory import create_pretransform_from_config

        model = create_pretransform_from_config(config["model"]["pretransform"], config["sample_rate"])
        prefix = "pretransform.model."
    # (AutoencoderPretransform.load_state_dict forwards to its inner model: load into that directly)
    target = model if args.what == "dit" else model.model
    shapes = {prefix + k: tuple(v.shape) for k, v in target.state_dict().items()}
    weights = {k[len(prefix) :]: torch.from_numpy(v) for k, v in seeded_state_dict(shapes, SEED).items()}
    missing, unexpected = target.load_state_dict(weights, strict=False)
    if unexpected or any(not k.endswith("inv_freq") for k in missing):
        raise SystemExit(f"seeded weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    del weights
    model = model.to(device=args.device, dtype=dtype).eval().requires_grad_(False)

    def run() -> torch.Tensor:
        if args.what == "dit":
            return model(
                data["x"].to(dtype), data["t"].to(dtype), cross_attn_cond=data["cross"].to(dtype),
                global_embed=data["global"].to(dtype), cfg_scale=args.cfg,
            )  # fmt: skip
        return model.decode(data["z"].to(dtype))

    times, cpu_times = [], []
    with torch.no_grad():
        for _ in range(args.repeats):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start, cpu_start = time.perf_counter(), time.process_time()
            out = run()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    if args.out:
        np.savez(args.out, out=out.float().cpu().numpy())
    import stable_audio_tools

    print(json.dumps({
        "best_s": min(times),
        "times_s": times,
        "best_cpu_s": min(cpu_times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stable_audio_tools": _version("stable-audio-tools", stable_audio_tools),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
