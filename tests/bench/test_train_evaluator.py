import dataclasses
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from support.evaluator_clips import tiny_corpus

from t2mbench.bench.train.data import read_train_config
from t2mbench.bench.train.evaluator import (
    DEFAULT_CONFIG,
    EvaluatorTask,
    TaskSettings,
    caption_variants,
    encode,
    ship_evaluator,
)
from t2mbench.bench.train.loop import TrainConfig, step_generator, train
from t2mbench.core.audio import load_audio
from t2mbench.core.errors import ConfigError, ManifestError
from t2mbench.core.files import sha256_file
from t2mbench.metrics.embedders.evaluator import WINDOW_FRAMES, load_evaluator, protocol_input

HEADS = (("instrument_families", "multi"), ("tempo_bucket", "single"), ("mode", "single"), ("composer", "single"))
SETTINGS = TaskSettings(heads=HEADS, batch_clips=4, crops_per_clip=2, caption_variants=3)
SMALL = {"channels": [4, 8, 8, 16, 16], "double_stages": [4], "embed_dim": 32, "joint_dim": 16, "text_hidden": 32,
         "groups": 4}  # fmt: skip


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return EvaluatorTask(tiny_corpus(tmp_path_factory.mktemp("corpus")), SETTINGS, SMALL, progress=False)


def test_task_data(task):
    assert [c.id for c in task.clips] == [f"clip{i:02d}" for i in range(6)]  # the train split only
    heads = {h.name: h for h in task.config.heads}
    assert heads["instrument_families"].classes == ("brass", "keyboard", "strings")
    assert heads["tempo_bucket"].classes == ("fast", "medium", "slow")  # bpm 70..195
    assert task.targets["tempo_bucket"].tolist() == [2, 1, 1, 0, 0, 0]
    assert task.targets["instrument_families"].tolist()[:3] == [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert task.text.shape == (6, 3, 384)
    torch.testing.assert_close(task.text.norm(dim=-1), torch.ones(6, 3))
    assert task.frames.tolist() == [1 + 96_000 // 500] * 6
    audio, sr = load_audio(task.clips[3].path)
    with torch.inference_mode():
        features = task.build().front(protocol_input(audio, sr)[0])[0]
    torch.testing.assert_close(task.features[3], features)


def test_batch_draws_only_from_the_generator(task):
    a, b = (task.batch(5, step_generator(0, 5)) for _ in range(2))
    assert a["features"].shape == (4, 2, 76, WINDOW_FRAMES) and a["text"].shape == (4, 384)
    assert torch.equal(a["features"], b["features"]) and torch.equal(a["text"], b["text"])
    assert not torch.equal(a["features"], task.batch(6, step_generator(0, 6))["features"])
    # every crop is a 128-frame slice of its clip's features
    idx = [next(i for i in range(6) if any(torch.equal(v, t) for v in task.text[i])) for t in a["text"]]
    assert len(set(idx)) == 4
    for clip, crops in zip(idx, a["features"]):
        for crop in crops:
            assert any(torch.equal(crop, task.features[clip, :, o : o + WINDOW_FRAMES]) for o in range(193 - 127))


def test_loss_terms(task):
    model = task.build()
    batch = task.batch(0, step_generator(0, 0))
    terms = task.losses(model, batch, step_generator(0, 0))
    heads = torch.stack([terms[name] for name, _ in HEADS]).mean()
    torch.testing.assert_close(terms["loss"], terms["contrastive"] + heads)
    assert terms["temperature"].item() == pytest.approx(0.07, rel=1e-6)
    assert 0.0 < terms["contrastive"].item() < 2 * torch.log(torch.tensor(4.0)).item()


def test_two_runs_are_identical_and_export_loads(task, tmp_path):
    cfg = TrainConfig(steps=2, lr=1e-3, warmup=1, checkpoint_every=2, seed=3)
    nets = [train(task, cfg, tmp_path / run, progress=False) for run in ("a", "b")]
    a, b = (load_file(str(tmp_path / run / "ema.safetensors")) for run in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logs = [pd.read_csv(tmp_path / run / "log.csv").drop(columns="seconds") for run in ("a", "b")]
    pd.testing.assert_frame_equal(*logs)
    assert not torch.equal(a["head.weight"], task.build().head.weight)  # it did train
    path = ship_evaluator(nets[0], tmp_path / "ship", {"note": "test"})
    manifest = json.loads((tmp_path / "ship" / "manifest.json").read_text())
    assert manifest["sha256"] == sha256_file(path) and manifest["note"] == "test"
    loaded = load_evaluator(path, verify=False)
    audio, sr = load_audio(task.clips[0].path)
    x = protocol_input(audio, sr)
    with torch.inference_mode():
        expected = nets[0].audio(nets[0].windows(x[:, 0])[0])
    torch.testing.assert_close(loaded.embed(x, 32_000)[0], expected)


def test_caption_variants():
    caption = "composer: J.S. Bach, instruments: violin, cello, tempo: 96 bpm"
    a = caption_variants(caption, 4, 0.0, torch.Generator().manual_seed(0))
    b = caption_variants(caption, 4, 0.0, torch.Generator().manual_seed(0))
    assert a == b and a[0] == caption and len(set(a)) > 1
    assert all(sorted(v.split(", ")) == sorted(caption.split(", ")) for v in a)  # shuffled, nothing dropped
    dropped = caption_variants(caption, 50, 0.5, torch.Generator().manual_seed(0))[1:]
    assert all(set(v.split(", ")) <= set(caption.split(", ")) and v for v in dropped)
    assert min(len(v.split(", ")) for v in dropped) == 1 and max(len(v.split(", ")) for v in dropped) == 4


def test_encode_marks_missing_values(task):
    head = next(h for h in task.config.heads if h.name == "mode")
    no_mode = {k: v for k, v in task.clips[1].attributes.items() if k != "mode"}
    clips = [task.clips[0], dataclasses.replace(task.clips[1], attributes=no_mode), task.clips[1]]
    assert encode(head, clips).tolist() == [0, -100, 1]


def test_config_file_and_errors(tmp_path):
    task_block, model, cfg = read_train_config(DEFAULT_CONFIG)
    settings = TaskSettings.from_block(task_block)
    assert settings.heads[0] == ("instrument_families", "multi") and cfg.steps >= 1000 and model["embed_dim"] == 256
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"task": {}, "model": {}}))
    with pytest.raises(ConfigError, match=r"missing blocks \['train'\]"):
        read_train_config(bad)
    with pytest.raises(ConfigError, match=r"batch_clips must be >= 2"):
        TaskSettings(heads=HEADS, batch_clips=1)


def test_corpus_errors(tmp_path, task):
    corpus = task.clips[0].path.parent
    with pytest.raises(ManifestError, match="no clips in split 'valid'"):
        EvaluatorTask(corpus, TaskSettings(heads=HEADS, split="valid"), SMALL, progress=False)
    with pytest.raises(ManifestError, match="no clip has attribute 'genre'; remove its head from the config"):
        EvaluatorTask(corpus, TaskSettings(heads=(("genre", "single"),)), SMALL, progress=False)
