"""Configs and the factory: the shipped models build on the meta device with exactly the
state-dict keys and shapes stable-audio-tools 0.0.19 gives them, the parameter counts, and
config errors that name the block and list the valid choices."""

import gzip
import json

import pytest
import torch
from support import sat_cases
from support.sat_models import FIXTURES, upstream_keys

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models import build, config_names, load_config


def manifest(name: str) -> dict:
    with gzip.open(FIXTURES / f"manifest_{name}.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


def test_shipped_configs():
    assert config_names() == ["sao-1.0", "sao-small", "tiny"]


@pytest.mark.parametrize("name", ["sao-1.0", "sao-small"])
def test_full_models_have_the_upstream_state_dict(name):
    model = build(name, device="meta")
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == manifest(name)["keys"]  # same keys, same shapes, same order
    assert all(p.is_meta for p in model.parameters()) and all(b.is_meta for b in model.buffers())


@pytest.mark.parametrize("name", ["sao-1.0", "sao-small"])
def test_parameter_counts_match_upstream(name):
    model = build(name, device="meta")
    state = model.state_dict()
    for part, counts in manifest(name)["parts"].items():
        module = getattr(model, part)
        assert sum(p.numel() for p in module.parameters()) == counts["parameters"], part
        assert sum(v.numel() for k, v in state.items() if k.startswith(part + ".")) == counts["state_numel"], part


def test_sao10_parameter_counts():
    model = build("sao-1.0", device="meta")
    vae = sum(p.numel() for p in model.pretransform.parameters())
    dit_params = sum(p.numel() for p in model.model.parameters())
    dit_state = sum(v.numel() for k, v in model.state_dict().items() if k.startswith("model."))
    assert round(vae / 1e6, 1) == 156.1
    # 1056.9M counts the DiT's whole state dict (its saved LayerNorm beta and RoPE buffers too);
    # the trainable parameters alone are 1,056,828,544 (stable-audio-tools' own count).
    assert round(dit_state / 1e6, 1) == 1056.9
    assert dit_params == 1_056_828_544


def test_sao_small_and_tiny_counts():
    small = build("sao-small", device="meta")
    assert round(sum(p.numel() for p in small.model.parameters()) / 1e6, 1) == 340.9
    tiny = build("tiny", device="meta")
    counts = {
        part: sum(p.numel() for p in getattr(tiny, part).parameters())
        for part in ("pretransform", "model", "conditioner")
    }
    # patch size 2: the transformer's project_in/out map 64 = 32 channels x 2 frames (2 x 192 x 32 more)
    assert counts == {"pretransform": 670_161, "model": 4_845_568, "conditioner": 198_400}


@pytest.mark.parametrize("name", ["sao10", "small"])
def test_reduced_models_have_the_upstream_state_dict(name):
    model = build(sat_cases.config(name), device="meta")
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == upstream_keys(name)


def test_model_info_from_config():
    tiny = build("tiny", device="meta")
    assert (tiny.sample_rate, tiny.info.audio_channels, tiny.downsampling_ratio, tiny.latent_channels) == (
        16000,
        1,
        512,
        32,
    )
    assert tiny.max_seconds == pytest.approx(10.24)
    sao = build("sao-1.0", device="meta")
    assert sao.objective.name == "v" and sao.info.weights == "sao-1.0"
    assert sao.info.cross_attn_cond_ids == ("prompt", "seconds_start", "seconds_total")
    small = build("sao-small", device="meta")
    assert small.objective.name == "rf_denoiser" and small.info.global_cond_ids == ("seconds_total",)
    assert small.dit.transformer.layers[0].cross_attn.kv_heads == 8
    assert (
        sao.dit.transformer.layers[0].cross_attn.kv_heads == 12
        and sao.dit.transformer.layers[0].cross_attn.num_heads == 24
    )


def test_build_from_path_and_folder(tmp_path):
    _, config = load_config("tiny")
    (tmp_path / "mine.json").write_text(json.dumps(config))
    assert build(tmp_path / "mine.json", device="meta").info.name == "mine"
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "model_config.json").write_text(json.dumps(config))
    assert build(folder, device="meta").info.name == "release"


def test_dtype_argument():
    model = build("tiny", device="meta", dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def _broken(edit):
    config = sat_cases.config("small")
    edit(config)
    return config


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.update(model_type="lm"),
            r"model_type: 'lm' is not supported by t2mbench; supported: \('diffusion_cond',\)",
        ),
        (
            lambda c: c["model"]["diffusion"].update(type="unet"),
            r"model\.diffusion: unknown type 'unet'; valid types: dit",
        ),
        (
            lambda c: c["model"]["conditioning"]["configs"][1].update(type="clap"),
            r"configs\[1\]: unknown type 'clap'; valid types: t5, number, minilm",
        ),
        (
            lambda c: c["model"]["diffusion"]["config"].update(embed_dims=3),
            r"diffusion\.config: unknown key\(s\) embed_dims; valid keys: io_channels, embed_dim,",
        ),
        (
            lambda c: c["model"]["diffusion"]["config"].pop("depth"),
            r"diffusion\.config: missing required key\(s\) depth",
        ),
        (
            lambda c: c["model"]["diffusion"].update(diffusion_objective="x0"),
            r"diffusion_objective: unknown 'x0'; valid: v, eps, rectified_flow, rf_denoiser",
        ),
        (
            lambda c: c["model"]["diffusion"]["config"].update(attn_kwargs={"qk_norm": "rms"}),
            r"attn_kwargs\.qk_norm: 'rms' is not supported by t2mbench; supported: \('none', 'ln'\)",
        ),
        (
            lambda c: c["model"]["pretransform"]["config"].update(downsampling_ratio=64),
            r"downsampling_ratio 64 is not the product of the encoder strides \[2, 4, 4\]",
        ),
        (
            lambda c: c["model"]["diffusion"].update(global_cond_ids=["seconds_start"]),
            r"global_cond_ids: seconds_start not among the conditioners \(prompt, seconds_total\)",
        ),
        (
            lambda c: c["model"]["pretransform"]["config"]["encoder"]["config"].update(use_snake=False),
            r"encoder\.config\.use_snake: False is not supported by t2mbench",
        ),
        (
            lambda c: c["model"]["diffusion"]["config"].update(patch_size=0),
            r"diffusion\.config: patch_size must be at least 1, got 0",
        ),
        (lambda c: c.update(sample_rate="44100"), r"^custom\.sample_rate: expected an integer, got \"44100\"$"),
        (lambda c: c.update(sample_size=[65536]), r"^custom\.sample_size: expected an integer, got \[65536\]$"),
        (lambda c: c.update(audio_channels=None), r"^custom\.audio_channels: expected an integer, got null$"),
        (lambda c: c.update(sample_rate=0), r"^custom\.sample_rate: must be >= 1, got 0$"),
        (
            lambda c: c["model"]["diffusion"]["config"].update(depth=2.5),
            r"^custom\.model\.diffusion\.config\.depth: expected an integer, got 2\.5$",
        ),
        (
            lambda c: c["model"]["pretransform"]["config"]["encoder"]["config"].update(strides=[2, "4", 4]),
            r"encoder\.config\.strides: expected a list of integers, got \[2, \"4\", 4\]$",
        ),
        (
            lambda c: c["model"]["pretransform"]["config"]["encoder"]["config"].update(use_snake="yes"),
            r"encoder\.config\.use_snake: expected true or false, got \"yes\"$",
        ),
        (
            lambda c: c["model"]["diffusion"]["config"].update(patch_size=3),
            r"custom\.model\.diffusion\.config\.patch_size: the window of 128 latent frames "
            r"\(sample_size / downsampling_ratio\) is not a multiple of 3",
        ),
    ],
)
def test_config_errors_name_the_block_and_the_choices(edit, message):
    with pytest.raises(ConfigError, match=message):
        build(_broken(edit), device="meta")


def test_unknown_model_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"unknown model 'sao-2': not a shipped config \(sao-1\.0, sao-small, tiny\)"):
        build("sao-2")


def test_gqa_head_mismatch_is_a_config_error():
    config = sat_cases.config("sao10")
    config["model"]["diffusion"]["config"].update(cond_token_dim=192)  # 3 KV heads of 64 cannot serve 4 query heads
    config["model"]["conditioning"]["cond_dim"] = 192
    with pytest.raises(ConfigError, match="4 query heads cannot share 3 key/value heads"):
        build(config, device="meta")
