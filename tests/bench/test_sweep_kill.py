"""Crash safety, proven: a real ``python -m t2mbench sweep`` process is SIGKILLed during
generation, during scoring and during a store write (each at a named pause point,
:mod:`t2mbench.core.faults`, so the kill lands exactly there), the same command is re-run after
each kill, and the final table equals an uninterrupted run's: no row lost, none repeated."""

import os
import signal
import subprocess
import sys
import time

import pytest
from support.result_rows import untimed

from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.store import ResultStore
from t2mbench.bench.sweep_spec import load_spec
from t2mbench.cli import main
from t2mbench.core import results
from t2mbench.core.manifest import write_manifest

SPEC = """
out = "{out}"
[grid]
models = ["tiny"]
samplers = ["ddim", "euler"]
steps = [2]
cfg = [3.0]
seeds = [5]
clips = [2]
seconds = 1.0
batch_size = 2
[scoring]
prompts = "{prompts}"
metrics = ["fd_evaluator", "kl_evaluator", "clap_evaluator"]
"""


def sweep_killed_at(spec, point, tmp_path):
    """Run the sweep until it pauses at ``point`` (``NAME:VISIT``), then SIGKILL it."""
    flag = tmp_path / f"paused-{point.replace(':', '-')}"
    env = {**os.environ, "T2MBENCH_PAUSE_AT": f"{point}:{flag}", "T2MBENCH_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "t2mbench", "sweep", str(spec)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    while not flag.exists():
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended ({proc.returncode}) before {point}: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the sweep never reached {point}")
        time.sleep(0.05)
    assert int(flag.read_text()) == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow  # four CLI processes (~2.5 min on 2 shared cores)
def test_a_sweep_killed_anywhere_resumes_to_the_uninterrupted_table(rendered_corpus, tmp_path):
    prompts = tmp_path / "prompts"
    write_manifest(prompts, split_clips(rendered_corpus, "train")[:2])
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(out=tmp_path / "killed", prompts=prompts))
    first, second = load_spec(spec).cells
    store = ResultStore(tmp_path / "killed")

    # 1. during generation: the 3rd denoising step is the second cell's first
    sweep_killed_at(spec, "generating:3", tmp_path)
    assert store.has(first) and not store.has(second) and not (tmp_path / "killed" / "results.parquet").exists()
    # 2. re-run, killed during scoring: the second cell's audio is written, not yet scored
    sweep_killed_at(spec, "scoring:1", tmp_path)
    assert not store.has(second)
    # 3. re-run, killed in the store write: the part is written under its temporary name
    sweep_killed_at(spec, "store:1", tmp_path)
    assert not store.has(second) and len(list(store.parts.glob(".*.tmp*"))) == 1
    first_part = store.read(first)
    # 4. re-run to the end
    done = subprocess.run([sys.executable, "-m", "t2mbench", "sweep", str(spec)], capture_output=True, text=True,
                          env={**os.environ, "T2MBENCH_NO_PROGRESS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = results.read(tmp_path / "killed" / "results.parquet")

    spec.with_name("clean.toml").write_text(SPEC.format(out=tmp_path / "clean", prompts=prompts))
    assert main(["sweep", str(spec.with_name("clean.toml")), "--no-progress"]) == 0
    clean = results.read(tmp_path / "clean" / "results.parquet")
    assert untimed(table).equals(untimed(clean)) and len(table) == len(clean) == 34
    assert not table.duplicated(list(results.KEY)).any()
    assert table[table.cell == first.key].reset_index(drop=True).equals(first_part)  # kept, not re-run
    assert sorted(p.name for p in store.parts.iterdir()) == sorted([f"{first.key}.parquet", f"{second.key}.parquet"])
    assert results.read(tmp_path / "killed" / "results.csv").equals(table)
