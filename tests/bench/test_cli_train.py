import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

STEPS = 40
CONFIG = {
    "task": {"crop_samples": 1024, "batch_size": 2, "kl_weight": 1e-4, "ffts": [256, 64]},
    "model": {"config": "tiny"},
    "train": {"steps": STEPS, "lr": 1e-3, "warmup": 2, "checkpoint_every": 2, "seed": 3},
}


def _command(corpus, out, config):
    return [sys.executable, "-m", "t2mbench", "train", "vae", "--corpus", str(corpus), "--out", str(out),
            "--config", str(config), "--no-progress"]


def test_kill_9_then_the_same_command_gives_the_uninterrupted_result(rendered_corpus, tmp_path):
    config = tmp_path / "vae.json"
    config.write_text(json.dumps(CONFIG))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_command(rendered_corpus, tmp_path / "straight", config), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_command(rendered_corpus, killed, config), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    latest = killed / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    while not latest.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = int(latest.read_text().removeprefix("step_"))
    assert 2 <= stopped_at < STEPS, "the run must be killed part-way for this test to mean anything"
    assert not (killed / "ema.safetensors").exists() or stopped_at < STEPS

    command = _command(rendered_corpus, killed, config)
    done = subprocess.run(command, check=True, env=env, capture_output=True, text=True)
    assert f"trained vae: {killed / 'ema.safetensors'}" in done.stdout
    a, b = load_file(str(tmp_path / "straight" / "ema.safetensors")), load_file(str(killed / "ema.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = (killed / "log.csv").read_text().splitlines()
    assert len(log) == STEPS + 1 and log[-1].startswith(f"{STEPS},")


def test_dit_without_a_vae_is_one_line_and_exit_2(rendered_corpus, capsys):
    from t2mbench.cli import main

    assert main(["train", "dit", "--corpus", str(rendered_corpus), "--out", "unused", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err == ("t2mbench train: error: train dit needs --vae (the ema.safetensors of a trained "
                   "`t2mbench train vae` run)\n")


def test_a_bad_task_block_names_the_config_file(rendered_corpus, tmp_path, capsys):
    from t2mbench.cli import main

    config = tmp_path / "bad-vae.json"
    config.write_text(json.dumps({**CONFIG, "task": {**CONFIG["task"], "init": "lsuv"}}))
    assert main(["train", "vae", "--corpus", str(rendered_corpus), "--out", str(tmp_path / "run"),
                 "--config", str(config), "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"t2mbench train: error: {config}: init must be 'default' or "
                                       "'data_dependent', got 'lsuv'\n")
    assert not (tmp_path / "run").exists()  # refused before anything is written
