"""The AP-Adapter training task: upstream's 5% / 5% / 5% condition dropping, that training moves W'_k, W'_v
only (the base model and the fixed feature projection stay bit for bit), and ``t2mbench train ap-adapter``: its
config holds the measured run's settings and the command trains exactly what the task and the loop do."""

import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file
from support.evaluator_clips import tiny_corpus

from t2mbench.bench.train.ap_adapter import APAdapterTask, dropouts
from t2mbench.bench.train.data import read_train_config
from t2mbench.bench.train.loop import TrainConfig, train
from t2mbench.cli import main
from t2mbench.reference_models.generate import load_model


def test_text_audio_and_both_are_each_dropped_for_five_percent():
    text, audio = dropouts(200_000, torch.Generator().manual_seed(0))
    fractions = [float(x.float().mean()) for x in (text & ~audio, audio & ~text, text & audio)]
    assert all(abs(f - 0.05) < 0.003 for f in fractions), fractions
    assert abs(float((text | audio).float().mean()) - 0.15) < 0.004


def test_training_moves_only_the_copied_projections(tmp_path):
    task = APAdapterTask(tiny_corpus(tmp_path / "corpus", n_train=2, n_test=1), batch_size=2, progress=False)
    batch = task.batch(0, torch.Generator().manual_seed(0))
    assert batch["features"].shape[0] == 2 and batch["features"].shape[-1] == 64
    fresh = task.build()
    trained = train(task, TrainConfig(steps=3, lr=1e-3, warmup=1, checkpoint_every=3), tmp_path / "run",
                    progress=False)
    base = load_model("tiny").state_dict()
    assert all(torch.equal(v, base[k]) for k, v in trained.base.state_dict().items()
               if not k.startswith("conditioner.conditioners.prompt"))
    assert torch.equal(trained.adapter.proj, fresh.adapter.proj)
    pairs = zip(trained.adapter.parameters(), fresh.adapter.parameters())
    moved = [float((p - q).detach().abs().max()) for p, q in pairs]
    assert len(moved) == 12 and min(moved) > 1e-5


CONFIG = Path(__file__).resolve().parents[2] / "bench" / "train" / "configs" / "tiny-ap-adapter.json"
# the settings of the measured run (docs/control_table.md), which the module's own command line used
MEASURED = TrainConfig(steps=1200, lr=1e-3, betas=(0.9, 0.999), warmup=20, final_lr_ratio=0.1, checkpoint_every=100)


def test_the_config_holds_the_measured_runs_settings():
    assert read_train_config(CONFIG) == ({"batch_size": 8}, {"base": "tiny"}, MEASURED)


def test_train_ap_adapter_adds_nothing_to_the_task_and_the_loop(tmp_path, capsys):
    corpus = tiny_corpus(tmp_path / "corpus", n_train=2, n_test=1)
    assert main(["train", "ap-adapter", "--corpus", str(corpus), "--out", str(tmp_path / "cli"), "--steps", "2",
                 "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"trained ap-adapter: {tmp_path / 'cli' / 'ema.safetensors'}\n")
    direct = train(APAdapterTask(corpus, batch_size=8, progress=False), replace(MEASURED, steps=2),
                   tmp_path / "direct", progress=False)
    cli = load_file(str(tmp_path / "cli" / "ema.safetensors"))
    adapter = {f"adapter.{k}": v for k, v in direct.adapter.state_dict().items()}
    assert adapter and all(torch.equal(cli[k], v) for k, v in adapter.items())
    assert load_file(str(tmp_path / "direct" / "ema.safetensors")).keys() == cli.keys()


def test_a_bad_ap_adapter_task_block_names_the_config_file(tmp_path, capsys):
    config = tmp_path / "bad-ap.json"
    config.write_text(json.dumps({**json.loads(CONFIG.read_text()), "task": {"batch_size": 0}}))
    assert main(["train", "ap-adapter", "--corpus", str(tmp_path / "unused"), "--out", str(tmp_path / "run"),
                 "--config", str(config), "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"t2mbench train: error: {config}: task.batch_size must be a positive "
                                       "integer, got 0\n")
