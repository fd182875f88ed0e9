"""The generation API on the tiny model (seeded random weights, real MiniLM) and on the
reduced SAO-small-like rectified-flow model: determinism, per-clip seeding, variable length,
NFE, settings, and the missing-weights error of the SAO models."""

import json
import re

import pytest
import torch
from support.sat_models import reduced_model, tiny_model

from t2mbench.core.errors import ConfigError, MissingWeightsError
from t2mbench.reference_models import build, generate, latent_length, load_config, load_model
from t2mbench.reference_models.generate import default_cfg_scale

PROMPTS = ["a calm piano", "fast drums"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


def _run(model, prompts=PROMPTS, **kw):
    args = dict(sampler="dpmpp_3m_sde", steps=2, cfg_scale=3.0, seconds=0.25, seed=11, batch_size=2)
    args.update(kw)
    return generate(model, prompts, **args)


@pytest.fixture(scope="module")
def batched(tiny):
    return _run(tiny)


def test_same_seed_same_audio(tiny, batched):
    assert torch.equal(_run(tiny).audio, batched.audio)


def test_clip_noise_does_not_depend_on_the_batch(tiny, batched):
    """Clip i is seeded with seed + i, initial and per-step (SDE) noise alike."""
    alone = _run(tiny, prompts=PROMPTS[1:], seed=12, batch_size=1)
    torch.testing.assert_close(batched.audio[1:], alone.audio, rtol=0, atol=1e-4)
    assert (batched.audio[0] - batched.audio[1]).abs().max() > 1e-3


def test_only_the_latents_the_length_needs(tiny, batched):
    assert batched.audio.shape == (2, 1, 4000)
    assert batched.settings["latent_length"] == 8  # ceil(4000 / 512), not the 320-latent window
    full = _run(tiny, prompts=PROMPTS[:1], steps=1, full_window=True, batch_size=1)
    assert full.audio.shape == (1, 1, 4000) and full.settings["latent_length"] == 320
    # 2.5 s is 79 frames, rounded up to whole 2-frame DiT patches
    assert latent_length(tiny, 2.5) == 80 and latent_length(tiny, 10.24) == 320


def test_result_records_settings_nfe_and_stage_timings(tiny):
    r = _run(tiny, prompts=PROMPTS * 2, sampler="heun", steps=3, negative_prompts=["noise"] * 4, batch_size=3)
    assert r.nfe == 5  # Heun: 2 evaluations per step, Euler on the last; a batched CFG call counts once
    assert set(r.timings) == {"text_encoding", "denoising", "decoding", "total"}
    assert all(v > 0 for v in r.timings.values()) and r.timings["total"] >= r.timings["denoising"]
    s = r.settings
    assert (s["sampler"], s["steps"], s["cfg_scale"], s["seed"], s["batch_size"]) == ("heun", 3, 3.0, 11, 3)
    assert r.audio.shape == (4, 1, 4000)  # two batches: 3 + 1
    assert s["negative_prompts"] == ["noise"] * 4 and s["sample_rate"] == 16000 and s["model"] == "tiny"
    assert s["sigma_schedule"] == "polyexponential rho=1" and s["cfg_batched"] is True


def test_default_cfg_scale_is_the_config_s(tiny, tmp_path):
    assert default_cfg_scale("tiny") == default_cfg_scale(tiny) == 3.0
    _, config = load_config("tiny")
    del config["t2mbench"]["generation"]["cfg_scale"]
    (tmp_path / "no_cfg.json").write_text(json.dumps(config))
    assert default_cfg_scale(str(tmp_path / "no_cfg.json")) == 1.0  # unset: no guidance


def test_defaults_come_from_the_model_config(tiny):
    r = generate(tiny, PROMPTS[:1], steps=2, seconds=0.1, seed=0)
    assert (r.settings["sampler"], r.settings["cfg_scale"], r.settings["sigma_max"]) == ("dpmpp_2m", 3.0, 500.0)
    assert r.nfe == 2


def test_negative_prompt_changes_the_audio(tiny, batched):
    negative = _run(tiny, negative_prompts=["loud noise"] * 2)
    assert (batched.audio - negative.audio).abs().max() > 1e-4


@pytest.mark.parametrize("sampler", ["v_ddim", "ddim"])
def test_v_model_samplers_of_other_families(tiny, sampler):
    r = _run(tiny, prompts=PROMPTS[:1], batch_size=1, sampler=sampler, steps=2, seconds=0.1)
    assert r.nfe == 2 and torch.isfinite(r.audio).all()


def test_bfloat16_model_keeps_the_sampler_state_in_float32():
    model = tiny_model().to(torch.bfloat16)
    states = []
    r = generate(
        model, ["a calm piano"], sampler="dpmpp_2m", steps=2, cfg_scale=3.0, seconds=0.1, seed=0, callback=states.append
    )
    assert [s["x"].dtype for s in states] == [torch.float32] * 2
    assert r.audio.dtype == torch.float32 and torch.isfinite(r.audio).all() and r.settings["dtype"] == "bfloat16"


@pytest.mark.parametrize("sampler", ["euler", "ddim"])
def test_eps_model(sampler):
    from support.sat_models import seeded_weights

    from t2mbench.reference_models import load_checkpoint, load_config

    _, config = load_config("tiny")
    config["model"]["diffusion"]["diffusion_objective"] = "eps"
    model = build(config)
    load_checkpoint(model, seeded_weights(model, 7))
    r = generate(model, ["a calm piano"], sampler=sampler, steps=2, cfg_scale=2.0, seconds=0.1, seed=0)
    assert model.objective.name == "eps" and r.nfe == 2 and torch.isfinite(r.audio).all()


def test_rectified_flow_model_with_pingpong():
    model = reduced_model("small")
    r = generate(model, ["fast techno drums"], sampler="rf_pingpong", steps=3, cfg_scale=1.0, seconds=0.05, seed=0)
    assert r.nfe == 3 and r.audio.shape == (1, 2, 2205)
    assert r.settings["latent_length"] == 69  # ceil(2205 / 32)
    with pytest.raises(
        ConfigError, match="sampler 'v_ddim' does not fit a rf_denoiser model; use one of .*rf_pingpong"
    ):
        generate(model, ["x"], sampler="v_ddim", steps=2, seconds=0.05, seed=0)


def test_bad_requests(tiny):
    with pytest.raises(ConfigError, match=r"seconds must be in \(0, 10.24\] for tiny \(its window\), got 11"):
        _run(tiny, seconds=11)
    with pytest.raises(ConfigError, match="sampler 'rf_pingpong' does not fit a v model"):
        _run(tiny, sampler="rf_pingpong")
    with pytest.raises(ConfigError, match="unknown sampler 'dpm'; known:"):
        _run(tiny, sampler="dpm")
    with pytest.raises(ConfigError, match="1 negative prompts for 2 prompts"):
        _run(tiny, negative_prompts=["a"])


@pytest.mark.parametrize(
    ("name", "filename", "repo"),
    [
        ("sao-1.0", "stable-audio-open-1.0/model.safetensors", "stable-audio-open-1.0"),
        ("sao-small", "stable-audio-open-small/model.safetensors", "stable-audio-open-small"),
    ],
)
def test_sao_without_weights_names_the_file_and_where_to_put_it(tmp_path, monkeypatch, name, filename, repo):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    url = f"https://huggingface.co/stabilityai/{repo}/resolve/main/model.safetensors"
    expected = f"weights '{name}' not found: expected {filename} at {tmp_path}/weights/{filename}; download it from "
    expected += url
    with pytest.raises(MissingWeightsError, match=re.escape(expected)):
        load_model(name)
    with pytest.raises(MissingWeightsError, match=rf"weights '{name}' not found"):
        generate(name, ["a prompt"], seconds=1.0, seed=0)


def test_sampler_options_are_validated_passed_and_recorded(tiny):
    ddim = _run(tiny, prompts=PROMPTS[:1], batch_size=1, sampler="ddim", steps=2, seconds=0.1)
    assert ddim.settings["sampler_options"] == {}
    eta0 = _run(tiny, prompts=PROMPTS[:1], batch_size=1, sampler="ddim", steps=2, seconds=0.1,
                sampler_options={"eta": 0})  # fmt: skip
    assert torch.equal(eta0.audio, ddim.audio) and eta0.settings["sampler_options"] == {"eta": 0.0}
    ddpm = [
        _run(tiny, prompts=PROMPTS[:1], batch_size=1, sampler="ddpm", steps=2, seconds=0.1, sampler_options=options)
        for options in (None, {"variance": "fixed_small"}, {"variance": "fixed_large"})
    ]
    assert torch.equal(ddpm[0].audio, ddpm[1].audio) and not torch.equal(ddpm[0].audio, ddpm[2].audio)
    assert ddpm[2].settings["sampler_options"] == {"variance": "fixed_large"}
    assert ddpm[2].settings["discrete_timesteps"] == "trailing, T=1000" and ddpm[2].settings["sigma_schedule"] is None


@pytest.mark.parametrize(("kw", "message"), [
    ({"steps": 0}, "steps must be an integer >= 1, got 0"),
    ({"steps": 2.5}, "steps must be an integer >= 1, got 2.5"),
    ({"cfg_scale": -1.0}, "cfg_scale must be a finite number >= 0, got -1.0"),
    ({"cfg_scale": float("inf")}, "cfg_scale must be a finite number >= 0, got inf"),
    ({"batch_size": 0}, "batch size must be an integer >= 1, got 0"),
    ({"sampler": "ddim", "sampler_options": {"variance": "fixed_large"}},
     "sampler 'ddim' has no option 'variance'; its options: eta, schedule, spacing"),
    ({"sampler": "ddpm", "sampler_options": {"variance": "learned"}},
     "sampler 'ddpm': option variance='learned' must be one of fixed_small, fixed_large"),
])  # fmt: skip
def test_bad_settings(tiny, kw, message):
    with pytest.raises(ConfigError) as error:
        _run(tiny, **kw)
    assert str(error.value) == message
