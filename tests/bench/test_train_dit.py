import pytest
import torch
from safetensors.torch import load_file

from t2mbench.bench.corpus.splits import load_split_audio
from t2mbench.bench.train.dit import DitTask
from t2mbench.bench.train.loop import TrainConfig, step_generator, train
from t2mbench.reference_models import build

TASK = {"batch_size": 3, "cfg_dropout": 0.5}


@pytest.fixture(scope="module")
def task(rendered_corpus, vae_file):
    return DitTask(rendered_corpus, TASK, {"config": "tiny"}, vae=vae_file, progress=False)


def test_latents_are_the_vae_posterior_of_each_whole_clip(task, vae_file):
    frames = 64  # 2 s at 16 kHz = 62.5 -> 63 latent frames, padded to whole 2-frame DiT patches
    assert task.mean.shape == task.std.shape == (len(task.clips), 32, frames)
    vae = build("tiny").pretransform.model
    vae.load_state_dict(load_file(str(vae_file)))
    audio = load_split_audio(task.clips[:1], 16000, 1, frames * 512, progress=False)
    with torch.inference_mode():
        mean, _ = vae.encode(audio, sample=False)
    assert torch.allclose(task.mean[:1], mean, atol=1e-5)


def test_cached_text_is_the_encoder_output(task):
    model = build("tiny")
    prompt = model.conditioner.conditioners["prompt"]
    states, mask = prompt.encoder.encode(task.captions[:2], prompt.max_length)
    cached_states, cached_mask = task.text.encode(task.captions[:2], prompt.max_length)
    # Cached rows were encoded in larger batches: equal up to float summation order.
    assert torch.equal(mask, cached_mask)
    assert torch.allclose(states, cached_states, atol=1e-5, rtol=0)
    assert not torch.allclose(cached_states[0], cached_states[1], atol=1e-2)


def test_batch_is_seeded_and_noises_the_posterior(task):
    a, b = task.batch(4, step_generator(0, 4)), task.batch(4, step_generator(0, 4))
    assert torch.equal(a["x0"], b["x0"]) and torch.equal(a["t"], b["t"]) and a["inputs"] == b["inputs"]
    assert a["inputs"]["seconds_total"] == [2.0] * 3 and a["inputs"]["seconds_start"] == [0.0] * 3
    assert ((a["t"] > 0) & (a["t"] < 1)).all()
    assert not torch.equal(a["t"], task.batch(5, step_generator(0, 5))["t"])


def test_only_the_dit_and_number_conditioners_train(task, vae_file, tmp_path):
    model = task.build()
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"model", "conditioner"}
    assert not any(p.requires_grad for p in model.pretransform.parameters())
    ema = train(task, TrainConfig(steps=2, checkpoint_every=2, warmup=1), tmp_path, progress=False)
    vae_state = load_file(str(vae_file))
    assert all(torch.equal(ema.pretransform.model.state_dict()[k], v) for k, v in vae_state.items())
    shipped = load_file(str(tmp_path / "ema.safetensors"))
    assert any(k.startswith("model.model.transformer.") for k in shipped)
    assert "conditioner.conditioners.seconds_total.embedder.embedding.0.weights" in shipped
