"""Checkpoints: upstream-layout ``.safetensors`` and ``.ckpt`` files load (``weights_only``)
onto a meta-built model and reproduce stable-audio-tools' outputs; loading errors list the
offending keys; the diffusers name conversion round-trips and loads into diffusers' own
StableAudioDiTModel / AutoencoderOobleck / StableAudioProjectionModel with equal outputs."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from support import sat_cases
from support.sat_models import conditioning_inputs, golden, seeded_weights, t5_stand_in

from t2mbench.core.errors import WeightsError
from t2mbench.core.weights import get
from t2mbench.reference_models import build, from_diffusers, load_checkpoint, read_state_dict, to_diffusers

TOL = 1e-4


@pytest.fixture(scope="module")
def sao10_state():
    return seeded_weights(build(sat_cases.config("sao10"), device="meta"), sat_cases.SEED)


def _dit_output(model):
    model.conditioner.conditioners["prompt"].encoder = t5_stand_in()
    with torch.inference_mode():
        cross, glob = model.condition(conditioning_inputs("sao10"))
        x, t = torch.from_numpy(sat_cases.latents("sao10")), torch.from_numpy(sat_cases.timesteps())
        return model(x, t, cross_attn_cond=cross, global_cond=glob)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_upstream_files_load_on_meta_and_reproduce_upstream(tmp_path, sao10_state, suffix):
    path = tmp_path / f"model{suffix}"
    if suffix == ".safetensors":
        save_file(sao10_state, str(path))  # no inv_freq: recomputed on load
    else:
        torch.save({"state_dict": sao10_state, "global_step": 12}, path)  # Lightning-style wrapper
    model = build(sat_cases.config("sao10"), device="meta")
    load_checkpoint(model, path)
    assert not any(p.is_meta for p in model.parameters()) and not any(b.is_meta for b in model.buffers())
    np.testing.assert_allclose(
        model.dit.transformer.rotary_pos_emb.inv_freq.numpy(), 1 / 10000 ** (np.arange(0, 32, 2) / 32)
    )
    np.testing.assert_allclose(_dit_output(model).numpy(), golden()["sao10/dit"], rtol=0, atol=TOL)


def test_half_precision_checkpoint_is_cast_to_the_model_dtype(sao10_state):
    model = build(sat_cases.config("sao10"), device="meta")
    load_checkpoint(model, {k: v.half() for k, v in sao10_state.items()})
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    key = "model.model.transformer.layers.0.self_attn.to_qkv.weight"
    torch.testing.assert_close(model.state_dict()[key], sao10_state[key].half().float())


class Payload:
    """Unpickling this runs ``os.system``: t2mbench must refuse it, never run it."""

    def __reduce__(self):
        import os

        return os.system, ("touch PWNED",)


@pytest.mark.parametrize("reader", ["state dict", "passt", "training state"])
def test_pickled_objects_are_refused_in_one_line_and_never_run(tmp_path, monkeypatch, reader):
    from t2mbench.core.torch_files import load_state_file, load_torch_file

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "payload": Payload()}, path)
    read = {"state dict": read_state_dict, "passt": lambda p: load_state_file(p, "the PaSST checkpoint", "URL"),
            "training state": lambda p: load_torch_file(p, what="the training state")}[reader]  # fmt: skip
    with pytest.raises(WeightsError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused: ") and "pickled Python objects besides tensors" in message
    assert "weights_only" not in message and len(message.splitlines()) == 1
    assert not (tmp_path / "PWNED").exists()


def test_mismatched_checkpoints_list_the_keys(sao10_state):
    key = "model.model.to_cond_embed.0.weight"
    bad = dict(sao10_state, **{key: torch.zeros(3, 3), "model.model.extra.weight": torch.zeros(1)})
    del bad["pretransform.model.decoder.layers.0.bias"]
    model = build(sat_cases.config("sao10"), device="meta")
    with pytest.raises(WeightsError) as err:
        load_checkpoint(model, bad)
    msg = str(err.value)
    assert f"{key} (3, 3) != (128, 128)" in msg
    assert "1 missing keys, e.g. pretransform.model.decoder.layers.0.bias" in msg
    assert "1 unexpected keys, e.g. model.model.extra.weight" in msg


def test_registered_weight_files():
    sao = get("sao-1.0")
    assert sao.url == "https://huggingface.co/stabilityai/stable-audio-open-1.0/resolve/main/model.safetensors"
    assert sao.filename == "stable-audio-open-1.0/model.safetensors"
    small = get("sao-small")
    assert small.url == "https://huggingface.co/stabilityai/stable-audio-open-small/resolve/main/model.safetensors"


def test_diffusers_names_round_trip(sao10_state):
    components = to_diffusers(sao10_state)
    assert "transformer_blocks.1.attn2.to_k.weight" in components["transformer"]
    assert "encoder.block.2.res_unit3.snake2.alpha" in components["vae"]
    assert "decoder.block.0.conv_t1.weight_g" in components["vae"]
    assert "start_number_conditioner.time_positional_embedding.0.weights" in components["projection_model"]
    back = from_diffusers(components)
    assert back.keys() == sao10_state.keys()
    for k, v in back.items():
        assert torch.equal(v, sao10_state[k]), k


def test_qk_norm_models_have_no_diffusers_equivalent():
    state = seeded_weights(build(sat_cases.config("small"), device="meta"), sat_cases.SEED)
    with pytest.raises(WeightsError, match="qk-norm models .* have no diffusers StableAudioDiTModel equivalent"):
        to_diffusers(state)


def test_converted_weights_run_in_diffusers_with_equal_outputs(sao10_state):
    import diffusers  # a test extra
    from diffusers.models.embeddings import get_1d_rotary_pos_embed
    from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel

    components = to_diffusers(sao10_state)
    dit = diffusers.StableAudioDiTModel(
        sample_size=24, in_channels=8, num_layers=2, attention_head_dim=64, num_attention_heads=4,
        num_key_value_attention_heads=2, out_channels=8, cross_attention_dim=128, time_proj_dim=256,
        global_states_input_dim=256, cross_attention_input_dim=128,
    ).eval()  # fmt: skip
    dit.load_state_dict(components["transformer"], strict=True)
    vae = diffusers.AutoencoderOobleck(
        encoder_hidden_size=16, downsampling_ratios=[2, 4, 4], channel_multiples=[1, 2, 4], decoder_channels=16,
        decoder_input_channels=8, audio_channels=2,
    ).eval()  # fmt: skip
    vae.load_state_dict(components["vae"], strict=True)
    proj = StableAudioProjectionModel(text_encoder_dim=768, conditioning_dim=128, min_value=0, max_value=512).eval()
    proj.load_state_dict(components["projection_model"], strict=True)

    g = golden()
    cross, glob = torch.from_numpy(g["sao10/cond_cross"]), torch.from_numpy(g["sao10/cond_global"])
    x, t = torch.from_numpy(sat_cases.latents("sao10")), torch.from_numpy(sat_cases.timesteps())
    rope = get_1d_rotary_pos_embed(32, x.shape[-1] + 1, use_real=True, repeat_interleave_real=False)
    with torch.inference_mode():
        out = dit(x, t, encoder_hidden_states=cross, global_hidden_states=glob[:, None], rotary_embedding=rope).sample
        np.testing.assert_allclose(out.numpy(), g["sao10/dit"], rtol=0, atol=TOL)
        audio = torch.from_numpy(sat_cases.audio())
        np.testing.assert_allclose(vae.encode(audio).latent_dist.mean.numpy(), g["sao10/vae_stats"][:, :8], atol=TOL)
        decoded = vae.decode(torch.from_numpy(g["sao10/vae_stats"][:, :8])).sample
        np.testing.assert_allclose(decoded.numpy(), g["sao10/vae_decoded"], rtol=0, atol=TOL)
        seconds = proj(
            start_seconds=torch.tensor(sat_cases.SECONDS_START), end_seconds=torch.tensor(sat_cases.SECONDS_TOTAL)
        )
        number_tokens = cross[:, -2:]
        np.testing.assert_allclose(seconds.seconds_start_hidden_states[:, 0].numpy(), number_tokens[:, 0], atol=1e-5)
        np.testing.assert_allclose(seconds.seconds_end_hidden_states[:, 0].numpy(), number_tokens[:, 1], atol=1e-5)
