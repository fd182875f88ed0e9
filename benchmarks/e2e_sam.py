"""End to end: ``t2mbench score`` with ``fd_openl3,kl_passt,clap`` against stable-audio-metrics' three
metrics computed by the upstream packages, on the same clips and the same (seeded) weights.

    python benchmarks/e2e_sam.py --clips 20 --work /tmp/e2e \\
        --tf-python /work/oracle-tf/bin/python --openl3-src /path/openl3-0.4.2 \\
        --torch-python /work/oracle-sam/bin/python [--threads N] [--json out.json]

Clips: ``--clips`` generated and as many reference stereo 44.1 kHz clips of 10 s (harmonic tones plus
seeded noise, one caption each), written once under ``--work``. Weights cannot be downloaded, so both sides
load seeded random weights in the upstream file formats (openl3's Keras ``.h5``, hear21passt's and
LAION-CLAP's state dicts, a small byte-level BPE tokenizer), made by the fixture generators of
``tests/support`` (our side with the published-checksum check off).

- **Ours**: one ``python -m t2mbench score`` process (decode once, every metric from the same decoded
  clip; ``--no-cache``).
- **Upstream**, as stable-audio-metrics runs them: one process per metric and environment, each embedding
  the generated and the reference clips (``tools/upstream/openl3_keras.py``: Keras openl3 0.4.2 with
  kapre 0.3.7 under TensorFlow 2.13; ``passt_runner.py``: hear21passt; ``clap_runner.py``: laion-clap,
  both under torch 2.9.1), then SAM's formulas on their outputs (np.cov + ``scipy.linalg.sqrtm`` FD,
  per-pair KL, cosine CLAP score), timed with them. Their input is the decoded audio, peak-normalised
  where SAM normalises: the stereo file for OpenL3, the mono signal at 32 kHz (PaSST) or 48 kHz (CLAP)
  after librosa's soxr_hq resampling (SAM's loading and resampling are not timed on that side, which
  favours upstream slightly).

Per side: wall time, CPU time (user + system of the child processes, from ``wait4``) and peak resident
memory (the largest child). Per-clip costs are the embedding part of the wall time over the clips (model
loading and start-up measured as the rest), and 1,000 and 10,000 clips are extrapolated as
start-up + clips x per-clip cost. Equal results: the three metric values of both sides, with their
relative differences (FD_openl3 to ~4e-3 on 32 clips: the rounding inside TensorFlow 2.13's FFT that
our ``fft="tf213"`` front end leaves out, see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "tools" / "upstream"
SECONDS, RATE = 10.0, 44_100


def make_inputs(work: Path, clips: int) -> dict[str, Path]:
    """Clip sets, weights and tokenizer under ``work`` (made once, reused)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    from support.clap_weights import clap_weights, write_tokenizer
    from support.openl3_weights import seeded_openl3_state, write_keras_h5
    from support.passt_weights import passt_weights
    from support.scoring_sets import write_set

    work.mkdir(parents=True, exist_ok=True)
    paths = {"openl3": work / "openl3_mel256_music.h5", "passt": work / "passt.pt", "clap": work / "clap.pt",
             "tokenizer": work / "roberta-base", "gen": work / f"gen{clips}", "ref": work / f"ref{clips}"}
    if not paths["openl3"].is_file():
        layout = json.loads((ROOT / "tests" / "fixtures" / "openl3" / "keras_layout.json").read_text())
        write_keras_h5(paths["openl3"], seeded_openl3_state(0), layout)
    if not paths["passt"].is_file():
        torch.save({k: torch.from_numpy(v) for k, v in passt_weights(0).items()}, paths["passt"])
    if not paths["clap"].is_file():
        state = {k: torch.from_numpy(v) for k, v in clap_weights("htsat_tiny_fusion", 0).items()}
        torch.save({"state_dict": state}, paths["clap"])
    if not paths["tokenizer"].is_dir():
        write_tokenizer(paths["tokenizer"])
    ids = [f"c{i:04d}" for i in range(clips)]
    for side, noise, seed in (("gen", 0.05, 1), ("ref", 0.01, 2)):
        if not (paths[side] / "manifest.jsonl").is_file():
            write_set(paths[side], ids, noise=noise, seconds=SECONDS, sample_rate=RATE, channels=2, seed=seed)
    return paths


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``cmd``; its wall seconds, CPU seconds (user + system) and peak RSS (MiB), from ``wait4``."""
    with open(os.devnull, "wb") as devnull, subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=devnull,
                                                             stderr=subprocess.PIPE) as proc:
        start = time.perf_counter()
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd[:4])} ...\n" + "\n".join(tail))
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def clip_arrays(folder: Path) -> tuple[np.ndarray, list[str]]:
    """Decoded, peak-normalised clips ``[N, 2, T]`` and their captions, in manifest order."""
    from t2mbench.core.audio import load_audio, peak_normalize
    from t2mbench.core.manifest import load_clipset

    records = load_clipset(folder).clips
    audio = [peak_normalize(load_audio(r.path)[0], source=str(r.path)) for r in records]
    return np.stack(audio).astype(np.float32), [r.caption or "" for r in records]


def mono_normalised(audio: np.ndarray, rate: int) -> np.ndarray:
    """``librosa.load(sr=rate, mono=True)`` of clips ``[N, C, T]`` at 44.1 kHz, then SAM's peak
    normalisation: ``[N, 1, T']`` float32."""
    import soxr

    from t2mbench.core.audio import peak_normalize

    clips = [peak_normalize(soxr.resample(x.mean(axis=0), RATE, rate, quality="soxr_hq")[None]) for x in audio]
    return np.stack(clips).astype(np.float32)


def run_ours(paths: dict[str, Path], work: Path, threads: int | None) -> tuple[dict, dict[str, float]]:
    out = work / "ours"
    cmd = [sys.executable, "-m", "t2mbench", "score", "--generated", str(paths["gen"]), "--reference",
           str(paths["ref"]), "--metrics", "fd_openl3,kl_passt,clap", "--out", str(out), "--no-cache", "--overwrite",
           "--set", f"fd_openl3.checkpoint={paths['openl3']}", "--set", 'fd_openl3.embedder_options={"verify": false}',
           "--set", f"kl_passt.checkpoint={paths['passt']}", "--set", 'kl_passt.embedder_options={"verify": false}',
           "--set", f"clap.checkpoint={paths['clap']}",
           "--set", json.dumps({"verify": False, "tokenizer": str(paths["tokenizer"])}).join(
               ["clap.embedder_options=", ""]),
           "--set", "fd_openl3.ci_resamples=0", "--set", "kl_passt.ci_resamples=0", "--set", "clap.ci_resamples=0"]
    if threads:
        cmd += ["--threads", str(threads)]
    cost = timed(cmd, {"T2MBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"})
    summary = json.loads((out / "summary.json").read_text())
    values = {name: summary["metrics"][name]["value"] for name in ("fd_openl3", "kl_passt", "clap")}
    cost["work_s"] = summary["timing"]["seconds"]
    return cost, values


def run_upstream(
    paths: dict[str, Path], work: Path, tf_python: str, torch_python: str, openl3_src: str
) -> tuple[dict, dict]:
    """The three upstream runners (one process each, generated + reference clips in one input) and
    SAM's formulas on their outputs."""
    from scipy.linalg import sqrtm

    from t2mbench.metrics.clap_score import clap_score
    from t2mbench.metrics.kl import kl_divergence

    gen, captions = clip_arrays(paths["gen"])
    ref, _ = clip_arrays(paths["ref"])
    n = len(gen)
    both = work / "upstream_in.npz"
    np.savez(both, audio=np.concatenate([gen, ref]), sample_rate=np.array(RATE))
    # PaSST and CLAP: SAM loads mono at the model's rate (librosa: channel mean, soxr_hq) and
    # peak-normalises that signal; the runners' own resampling is then the identity
    np.savez(work / "upstream_32k.npz", audio=mono_normalised(np.concatenate([gen, ref]), 32_000),
             sample_rate=np.array(32_000))
    np.savez(work / "upstream_gen_48k.npz", audio=mono_normalised(gen, 48_000), sample_rate=np.array(48_000),
             texts=np.array(captions))
    env = {"HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    steps = {
        "openl3": ([tf_python, str(UPSTREAM / "openl3_keras.py"), "--weights", str(paths["openl3"]), "--in", str(both),
                    "--openl3-src", openl3_src], "openl3_out.npz"),
        "passt": ([torch_python, str(UPSTREAM / "passt_runner.py"), "--weights", str(paths["passt"]), "--in",
                   str(work / "upstream_32k.npz")], "passt_out.npz"),
        "clap": ([torch_python, str(UPSTREAM / "clap_runner.py"), "--weights", str(paths["clap"]), "--in",
                  str(work / "upstream_gen_48k.npz"), "--tokenizer", str(paths["tokenizer"])], "clap_out.npz"),
    }  # fmt: skip
    costs, outputs = {}, {}
    for name, (cmd, out) in steps.items():
        costs[name] = timed([*cmd, "--out", str(work / out)], env)
        with np.load(work / out) as data:
            outputs[name] = {k: data[k] for k in data.files}
    start, cpu0 = time.perf_counter(), time.process_time()
    frames = outputs["openl3"]["embeddings"].astype(np.float32)
    a, b = (np.concatenate(list(frames[s])) for s in (slice(0, n), slice(n, 2 * n)))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(axis=0) - b.mean(axis=0)
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm(s1 @ s2)).real)
    logits = outputs["passt"]["embeddings"]
    kl = float(kl_divergence(logits[:n], logits[n:]).mean())
    clap = float(clap_score(outputs["clap"]["embeddings"], outputs["clap"]["text_embeddings"]).mean())
    formulas = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu0, "peak_rss_mib": 0.0}
    total = {"wall_s": sum(c["wall_s"] for c in costs.values()) + formulas["wall_s"],
             "cpu_s": sum(c["cpu_s"] for c in costs.values()) + formulas["cpu_s"],
             "peak_rss_mib": max(c["peak_rss_mib"] for c in costs.values()),
             # the OpenL3 runner reports its embedding seconds; PaSST's and CLAP's do not, so their whole
             # wall time counts as per-clip work (their model loading, a few seconds, included)
             "work_s": sum(float(outputs[k]["seconds"]) if "seconds" in outputs[k] else c["wall_s"]
                           for k, c in costs.items()) + formulas["wall_s"],
             "per_metric": costs}
    return total, {"fd_openl3": fd, "kl_passt": kl, "clap": clap}


def extrapolate(cost: dict, clips: int) -> dict[str, float]:
    """Start-up (wall minus the embedding work) + clips x per-clip work, for 1,000 and 10,000 clips."""
    per_clip = cost["work_s"] / clips
    startup = max(cost["wall_s"] - cost["work_s"], 0.0)
    return {"per_clip_s": per_clip, "startup_s": startup, "clips_1000_s": startup + 1000 * per_clip,
            "clips_10000_s": startup + 10_000 * per_clip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--work", type=Path, default=Path("/tmp/t2mbench-e2e"))
    parser.add_argument("--tf-python", required=True)
    parser.add_argument("--torch-python", required=True)
    parser.add_argument("--openl3-src", required=True)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--sides", default="ours,upstream", help="which sides to run (comma-separated)")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args()
    paths = make_inputs(args.work, args.clips)
    report: dict = {"clips": args.clips, "load_before": os.getloadavg(), "threads": args.threads}
    sides = args.sides.split(",")
    if "ours" in sides:
        report["ours"], report["ours_values"] = run_ours(paths, args.work, args.threads)
        report["ours"].update(extrapolate(report["ours"], args.clips))
    if "upstream" in sides:
        report["upstream"], report["upstream_values"] = run_upstream(paths, args.work, args.tf_python,
                                                                     args.torch_python, args.openl3_src)
        report["upstream"].update(extrapolate(report["upstream"], args.clips))
    if len(sides) == 2:
        report["wall_speedup"] = report["upstream"]["wall_s"] / report["ours"]["wall_s"]
        report["relative_difference"] = {k: abs(report["ours_values"][k] - v) / abs(v)
                                         for k, v in report["upstream_values"].items()}
    report["load_after"] = os.getloadavg()
    text = json.dumps(report, indent=1, default=float)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
