"""The AP-Adapter training task: upstream's 5% / 5% / 5% condition dropping, and that training moves W'_k, W'_v
only (the base model and the fixed feature projection stay bit for bit)."""

import torch
from support.evaluator_clips import tiny_corpus

from t2mbench.bench.train.ap_adapter import APAdapterTask, dropouts
from t2mbench.bench.train.loop import TrainConfig, train
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
