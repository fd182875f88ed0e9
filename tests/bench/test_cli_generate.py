"""``t2mbench generate``: writes the audio, the clip-set manifest and a run manifest with every
setting, the NFE and the wall time per stage; the audio equals the Python API's; user
mistakes (missing SAO weights, bad prompt files) are one-line errors with exit code 2."""

import hashlib
import json
import re

import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import save_file
from support.sat_models import seeded_weights, tiny_model

from t2mbench.cli import main
from t2mbench.core.manifest import load_clipset
from t2mbench.reference_models import build, generate, load_config

SETTINGS = ["--sampler", "dpmpp_2m", "--steps", "2", "--cfg", "4", "--seconds", "0.25", "--seed", "5", "--batch", "2"]


def _argv(checkpoint, prompts, out) -> list[str]:
    return [
        "generate",
        "--model",
        "tiny",
        "--checkpoint",
        str(checkpoint),
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--no-verify",  # seeded weights: not the shipped file, loaded on purpose
    ]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save_file(seeded_weights(build("tiny", device="meta"), 7), str(path))
    return path


def test_generate_writes_audio_and_manifests(tmp_path, checkpoint):
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"id": "a", "caption": "a calm piano"},
        {"id": "b", "caption": "fast drums"},
        {"id": "c", "caption": "harp"},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    argv = _argv(checkpoint, prompts, out)
    assert main([*argv, *SETTINGS]) == 0

    clips = load_clipset(out)
    assert clips.ids == ["a", "b", "c"]
    assert [c.caption for c in clips] == ["a calm piano", "fast drums", "harp"]
    assert [c.attributes["seed"] for c in clips] == [5, 6, 7]
    assert {(c.sample_rate, c.channels, c.seconds) for c in clips} == {(16000, 1, 0.25)}

    run = json.loads((out / "generation.json").read_text())
    s = run["settings"]
    assert (s["sampler"], s["steps"], s["cfg_scale"], s["seconds"], s["seed"], s["batch_size"]) == (
        "dpmpp_2m", 2, 4.0, 0.25, 5, 2,
    )  # fmt: skip
    assert (s["latent_length"], s["full_window"], s["sigma_min"], s["sigma_max"]) == (8, False, 0.3, 500.0)
    assert run["nfe"] == 2 and run["model"] == "tiny"
    assert set(run["timings_seconds"]) == {"text_encoding", "denoising", "decoding", "total"}
    assert run["real_time_factor"] == pytest.approx(run["timings_seconds"]["total"] / 0.75)
    assert run["weights"]["path"] == str(checkpoint) and len(run["weights"]["sha256"]) == 64
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seeds"] == {"generation": 5} and prov["inputs"]["prompts"]["path"] == str(prompts)

    model = tiny_model()
    api = generate(
        model,
        [r["caption"] for r in rows],
        sampler="dpmpp_2m",
        steps=2,
        cfg_scale=4.0,
        seconds=0.25,
        seed=5,
        batch_size=2,
    )
    for i, clip in enumerate(clips):
        audio, sr = sf.read(clip.path, dtype="float32", always_2d=True)
        assert sr == 16000 and sf.info(clip.path).subtype == "FLOAT"
        np.testing.assert_array_equal(audio.T, api.audio[i].numpy())


def test_text_prompts_and_a_release_folder(tmp_path, checkpoint):
    """``--model FOLDER``: a folder with model_config.json and model.safetensors, as released."""
    release = tmp_path / "release"
    release.mkdir()
    (release / "model_config.json").write_text(json.dumps(load_config("tiny")[1]))
    (release / "model.safetensors").write_bytes(checkpoint.read_bytes())
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a calm piano\n\nfast drums\n")
    out = tmp_path / "run"
    argv = ["generate", "--model", str(release), "--prompts", str(prompts), "--out", str(out), "--no-verify"]
    assert main([*argv, *SETTINGS, "--negative-prompt", "noise"]) == 0
    clips = load_clipset(out)
    assert clips.ids == ["clip_0000", "clip_0001"]
    assert [c.attributes["negative_prompt"] for c in clips] == ["noise", "noise"]
    run = json.loads((out / "generation.json").read_text())
    assert run["model"] == "release" and run["weights"]["path"] == str(release / "model.safetensors")


def test_sao_without_weights_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    prompts = tmp_path / "p.txt"
    prompts.write_text("rain\n")
    code = main(
        ["generate", "--model", "sao-1.0", "--prompts", str(prompts), "--seconds", "5", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(
        "t2mbench generate: error: weights 'sao-1.0' not found: expected stable-audio-open-1.0/model.safetensors"
    )
    assert f"at {tmp_path}/home/weights/stable-audio-open-1.0/model.safetensors" in err
    assert "https://huggingface.co/stabilityai/stable-audio-open-1.0/resolve/main/model.safetensors" in err


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"id": "a"}\n', ".jsonl", r"row 1 has no caption/prompt text"),
        ('{"id": "a", "caption": "x"}\n{"id": "a", "caption": "y"}\n', ".jsonl", r"duplicate ids: a"),
        ("id,caption\n../x,rain\n", ".csv", r"row 1: id '\.\./x' is not usable as a file name"),
        ("rain", ".md", r"unsupported prompts file '\.md'; use \.txt, \.jsonl or \.csv"),
    ],
)
def test_bad_prompt_files(tmp_path, capsys, checkpoint, content, suffix, message):
    prompts = tmp_path / f"p{suffix}"
    prompts.write_text(content)
    assert main([*_argv(checkpoint, prompts, tmp_path), *SETTINGS]) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(
    "device, message",
    [
        ("bogus", "unknown device 'bogus'; use cpu, cuda, cuda:N or mps"),
        ("cpu:x", "unknown device 'cpu:x'; use cpu, cuda, cuda:N or mps"),
        ("xla", "device 'xla': t2mbench runs on cpu, cuda or mps"),
    ],
)
def test_a_bad_device_is_one_line_before_any_work(tmp_path, capsys, device, message):
    (tmp_path / "p.txt").write_text("a piano\n")
    argv = ["generate", "--model", "tiny", "--prompts", str(tmp_path / "p.txt"), "--out", str(tmp_path / "o"),
            "--device", device, *SETTINGS]  # fmt: skip
    assert main(argv) == 2  # found while the arguments are parsed
    assert capsys.readouterr().err == f"t2mbench generate: error: argument --device: {message}; see --help\n"
    assert not (tmp_path / "o").exists()


def test_cuda_on_a_torch_without_it_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "p.txt").write_text("a piano\n")
    argv = ["generate", "--model", "tiny", "--prompts", str(tmp_path / "p.txt"), "--out", str(tmp_path / "o"),
            "--device", "cuda", *SETTINGS]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"t2mbench generate: error: argument --device: device 'cuda': this torch ({torch.__version__}) has no usable "
        "CUDA; use cpu; see --help\n"
    )


def test_every_checkpoint_is_verified_unless_the_user_opts_out(tmp_path, capsys):
    """The shipped tiny weights with one byte flipped: refused by --checkpoint (naming the way to
    load a custom file on purpose), loaded with --no-verify and its hash recorded."""
    from t2mbench.core.weights import get

    shipped = get("tiny").bundled
    flipped = bytearray(shipped.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    (tmp_path / "tiny.safetensors").write_bytes(bytes(flipped))
    (tmp_path / "p.txt").write_text("a piano\n")
    argv = ["generate", "--model", "tiny", "--prompts", str(tmp_path / "p.txt"), "--out", str(tmp_path / "o"),
            "--checkpoint", str(tmp_path / "tiny.safetensors"), *SETTINGS]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2mbench generate: error: {tmp_path / 'tiny.safetensors'}: sha256 ")
    assert err.endswith("pass --no-verify (verify=False in the API)\n") and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
    assert main([*argv, "--no-verify"]) == 0
    weights = json.loads((tmp_path / "o" / "generation.json").read_text())["weights"]
    assert weights["verified"] is False and weights["sha256"] == hashlib.sha256(bytes(flipped)).hexdigest()


def test_a_model_without_published_weights_needs_the_opt_out(tmp_path, capsys, checkpoint):
    config = load_config("tiny")[1]
    config["t2mbench"].pop("weights")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_config.json").write_text(json.dumps(config))
    (tmp_path / "p.txt").write_text("a piano\n")
    argv = ["generate", "--model", str(tmp_path / "m"), "--prompts", str(tmp_path / "p.txt"), "--out",
            str(tmp_path / "o"), "--checkpoint", str(checkpoint), *SETTINGS]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"t2mbench generate: error: {checkpoint}: model 'm' registers no published weights to check this file "
        "against; to load your own file on purpose (a fine-tune, a conversion), pass --no-verify (verify=False in "
        "the API)\n"
    )


def test_sampler_options_are_checked_and_recorded(tmp_path, checkpoint):
    """``--sampler-option variance=fixed_large`` reaches the sampler (the audio differs from the
    default fixed_small run with the same seed) and is recorded in generation.json and the manifest."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a calm piano\nfast drums\n")
    base = ["generate", "--model", "tiny", "--checkpoint", str(checkpoint), "--prompts", str(prompts),
            "--sampler", "ddpm", "--steps", "3", "--seconds", "0.25", "--seed", "1", "--batch", "2",
            "--no-verify"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "large"), "--sampler-option", "variance=fixed_large"]) == 0
    assert main([*base, "--out", str(tmp_path / "small")]) == 0
    large = json.loads((tmp_path / "large" / "generation.json").read_text())
    small = json.loads((tmp_path / "small" / "generation.json").read_text())
    assert large["settings"]["sampler_options"] == {"variance": "fixed_large"}
    assert small["settings"]["sampler_options"] == {}
    clips = load_clipset(tmp_path / "large")
    assert {c.attributes["sampler_options"] for c in clips} == {'{"variance":"fixed_large"}'}
    a = sf.read(list(clips)[0].path, dtype="float32")[0]
    b = sf.read(list(load_clipset(tmp_path / "small"))[0].path, dtype="float32")[0]
    assert np.abs(a - b).max() > 1e-4
    latents = np.load(tmp_path / "large" / "latents.npy")
    assert latents.shape == (2, 32, 8) and latents.dtype == np.float32


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["variance=huge"], "sampler 'ddpm': option variance='huge' must be one of fixed_small, fixed_large"),
        (["eta=0.5"], "sampler 'ddpm' has no option 'eta'; its options: variance, schedule, spacing"),
        (["variance"], "--sampler-option takes KEY=VALUE (e.g. eta=0.5), got 'variance'"),
    ],
)
def test_bad_sampler_options_are_one_line_errors(tmp_path, capsys, options, message):
    prompts = tmp_path / "p.txt"
    prompts.write_text("rain\n")
    argv = ["generate", "--model", "tiny", "--prompts", str(prompts), "--sampler", "ddpm", "--seconds", "0.25",
            "--out", str(tmp_path / "o")]  # fmt: skip
    for option in options:
        argv += ["--sampler-option", option]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"t2mbench generate: error: {message}"
    assert not (tmp_path / "o").exists()
