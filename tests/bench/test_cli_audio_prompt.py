"""``t2mbench generate --audio-prompt PATH --audio-prompt-scale λ --audio-prompt-pool N``: the options and the
prompt's sha256 go into generation.json, λ = 0 generates the base model's latents, and the CLI's latents are
the Python API's with the same knobs."""

import json

import numpy as np
import torch
from safetensors.torch import save_file

from t2mbench.bench.audio_prompt import audio_prompt_from_file
from t2mbench.cli import main
from t2mbench.core.audio import save_audio
from t2mbench.core.files import sha256_file
from t2mbench.reference_models.generate import generate, load_model

SETTINGS = ["--model", "tiny", "--sampler", "dpmpp_2m", "--steps", "2", "--cfg", "3", "--seconds", "0.5", "--seed",
            "3", "--batch", "2"]


def _run(tmp_path, name, *extra) -> np.ndarray:
    assert main(["generate", *SETTINGS, "--prompts", str(tmp_path / "p.txt"), "--out", str(tmp_path / name),
                 *extra]) == 0
    return np.load(tmp_path / name / "latents.npy")


def test_audio_prompt_cli(tmp_path):
    (tmp_path / "p.txt").write_text("a calm piano melody\nfast drums\n")
    t = np.arange(16000 * 3) / 16000
    save_audio(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], 16000)
    prompt = str(tmp_path / "tone.wav")
    base = _run(tmp_path, "base")
    off = _run(tmp_path, "off", "--audio-prompt", prompt, "--audio-prompt-scale", "0")
    on = _run(tmp_path, "on", "--audio-prompt", prompt, "--audio-prompt-scale", "0.8", "--audio-prompt-pool", "4")
    assert np.array_equal(off, base)  # λ = 0: the base model, exactly
    assert np.abs(on - base).max() > 1e-2
    record = json.loads((tmp_path / "on" / "generation.json").read_text())
    assert (record["audio_prompt"], record["audio_prompt_scale"], record["audio_prompt_pool"]) == (prompt, 0.8, 4)
    assert record["audio_prompt_sha256"] == sha256_file(prompt)
    assert "audio_prompt" not in json.loads((tmp_path / "base" / "generation.json").read_text())
    # the CLI's latents are the API's with the same knobs
    model = load_model("tiny")
    api = generate(model, ["a calm piano melody", "fast drums"], sampler="dpmpp_2m", steps=2, cfg_scale=3.0,
                   seconds=0.5, seed=3, batch_size=2, control=audio_prompt_from_file(model, prompt, 0.8, 4))
    assert torch.equal(api.latents, torch.from_numpy(on))
    # trained weights (here: perturbed copies) enter through --audio-prompt-weights and are recorded
    adapter = audio_prompt_from_file(model, prompt, 0.8, 4).model.adapter
    with torch.no_grad():
        for p in adapter.parameters():
            p.mul_(1.5)
    save_file(adapter.state_dict(), str(tmp_path / "ap.safetensors"))
    weighted = _run(tmp_path, "weighted", "--audio-prompt", prompt, "--audio-prompt-scale", "0.8",
                    "--audio-prompt-pool", "4", "--audio-prompt-weights", str(tmp_path / "ap.safetensors"))
    assert np.abs(weighted - on).max() > 1e-3
    api = generate(model, ["a calm piano melody", "fast drums"], sampler="dpmpp_2m", steps=2, cfg_scale=3.0,
                   seconds=0.5, seed=3, batch_size=2,
                   control=audio_prompt_from_file(model, prompt, 0.8, 4, str(tmp_path / "ap.safetensors")))
    assert torch.equal(api.latents, torch.from_numpy(weighted))
    record = json.loads((tmp_path / "weighted" / "generation.json").read_text())
    assert record["audio_prompt_weights"] == {"path": str(tmp_path / "ap.safetensors"),
                                              "sha256": sha256_file(tmp_path / "ap.safetensors")}
