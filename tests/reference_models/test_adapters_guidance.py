"""Multi-condition guidance equals MuseControlLite's multi-CFG formula (pipeline/stable_audio_multi_cfg_pipe.py
line 742 and its audio variant), written out from the upstream code on the same branch outputs."""

from __future__ import annotations

import torch

from t2mbench.reference_models import build
from t2mbench.reference_models.adapters.guidance import multi_guidance
from t2mbench.reference_models.adapters.model import musecontrollite


def _model():
    torch.manual_seed(0)
    base = build("tiny").eval()
    model = musecontrollite(base, ("melody", "dynamics"), audio=True)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return model


def _inputs(frames=16):
    g = torch.Generator().manual_seed(3)
    cond = {"cross_attn_cond": torch.randn(2, 66, 384, generator=g), "global_cond": torch.randn(2, 768, generator=g)}
    controls = {"melody": (torch.rand(2, 128, frames, generator=g) > 0.9).float(),
                "dynamics": torch.randn(2, 1, frames, generator=g),
                "audio": torch.randn(2, 32, frames, generator=g)}
    return torch.randn(2, 32, frames, generator=g), torch.tensor([0.4, 0.6]), cond, controls


def test_equals_musecontrollite_multi_cfg_three_branches():
    model, (x, t, cond, controls) = _model(), _inputs()
    frames = x.shape[-1]
    attrs = {k: controls[k] for k in ("melody", "dynamics")}
    guided = multi_guidance(model, cond, attrs, [("melody", "dynamics")], 7.0, [2.0], frames)
    with torch.no_grad():
        got = guided(x, t)
        null = {"cross_attn_cond": torch.zeros_like(cond["cross_attn_cond"]), "global_cond": cond["global_cond"]}
        zero = torch.zeros(2, frames)
        uncond = model(x, t, **null, **attrs, melody_mask=zero, dynamics_mask=zero)
        text = model(x, t, **cond, **attrs, melody_mask=zero, dynamics_mask=zero)
        both = model(x, t, **cond, **attrs)
    # noise_pred = noise_pred_uncond + guidance_scale_text * (noise_pred_text - noise_pred_uncond)
    #              + guidance_scale_con * (noise_pred_both - noise_pred_text)
    want = uncond + 7.0 * (text - uncond) + 2.0 * (both - text)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    assert (both - text).abs().max() > 1e-3  # the control branch differs: the test has teeth


def test_equals_the_four_branch_audio_formula_with_complementary_masks():
    model, (x, t, cond, controls) = _model(), _inputs()
    frames = x.shape[-1]
    # attributes kept on [0, 6), audio kept outside it (MuseControlLite's complementary masks)
    attr_mask = torch.zeros(2, frames)
    attr_mask[:, :6] = 1
    ctl = {**controls, "melody_mask": attr_mask, "dynamics_mask": attr_mask, "audio_mask": 1 - attr_mask}
    guided = multi_guidance(model, cond, ctl, [("melody", "dynamics"), ("audio",)], 7.0, [1.5, 1.0], frames)
    zero = torch.zeros(2, frames)
    with torch.no_grad():
        got = guided(x, t)
        null = {"cross_attn_cond": torch.zeros_like(cond["cross_attn_cond"]), "global_cond": cond["global_cond"]}
        off = {"melody_mask": zero, "dynamics_mask": zero, "audio_mask": zero}
        b0 = model(x, t, **null, **controls, **off)
        b1 = model(x, t, **cond, **controls, **off)
        b2 = model(x, t, **cond, **controls, melody_mask=attr_mask, dynamics_mask=attr_mask, audio_mask=zero)
        b3 = model(x, t, **cond, **ctl)
    want = b0 + 7.0 * (b1 - b0) + 1.5 * (b2 - b1) + 1.0 * (b3 - b2)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    assert (b3 - b2).abs().max() > 1e-3


def test_generate_with_a_zero_init_adapter_equals_plain_generation():
    """Wiring: through generate(control=...), an untrained adapter adds w_c·(b2 − b1) = 0."""
    from t2mbench.reference_models.adapters.guidance import ControlInputs
    from t2mbench.reference_models.generate import generate

    torch.manual_seed(0)
    base = build("tiny").eval()
    model = musecontrollite(base, ("melody",))
    melody = (torch.rand(2, 128, 16) > 0.9).float()
    kw = {"steps": 3, "seconds": 0.5, "seed": 4, "batch_size": 2, "cfg_scale": 3.0}
    plain = generate(base, ["a piano", "a flute"], **kw)
    ctl = generate(base, ["a piano", "a flute"], **kw,
                   control=ControlInputs(model, {"melody": melody}, {"melody": 2.0}))
    assert torch.allclose(ctl.audio, plain.audio, atol=1e-5)
    assert ctl.nfe == plain.nfe  # one batched forward (three branches) per step


def test_control_inputs_from_a_file_and_from_a_clip_set(tmp_path):
    import numpy as np
    import pytest

    from t2mbench.core.audio import save_audio
    from t2mbench.core.errors import ConfigError, ManifestError
    from t2mbench.reference_models.adapters.conditions import melody_condition
    from t2mbench.reference_models.adapters.inputs import control_inputs
    from t2mbench.reference_models.generate import latent_length, load_model

    base = load_model("tiny")
    t = np.arange(16000) / 16000
    tones = {"a": 0.5 * np.sin(2 * np.pi * 440 * t), "b": 0.5 * np.sin(2 * np.pi * 660 * t)}
    for cid, y in tones.items():
        save_audio(tmp_path / f"{cid}.wav", y[None].astype(np.float32), 16000)
    (tmp_path / "manifest.jsonl").write_text('{"id": "a", "path": "a.wav"}\n{"id": "b", "path": "b.wav"}\n')
    frames = latent_length(base, 1.0)
    one = control_inputs(base, ["x", "y"], 1.0, [f"melody={tmp_path / 'a.wav'}"])
    assert one.scales == {"melody": 2.0} and one.model.base is base
    want_a = torch.from_numpy(melody_condition(tones["a"][None], 16000, 512, frames))
    assert torch.allclose(one.features["melody"][1], want_a)
    by_id = control_inputs(base, ["b", "a"], 1.0, [f"melody={tmp_path}"], ["melody=1.5"])
    assert by_id.scales == {"melody": 1.5}
    assert torch.allclose(by_id.features["melody"][1], want_a)
    assert not torch.equal(by_id.features["melody"][0], want_a)
    with pytest.raises(ManifestError, match="has no clip for prompt ids c"):
        control_inputs(base, ["a", "c"], 1.0, [f"melody={tmp_path}"])
    with pytest.raises(ConfigError, match="--control-scale rhythm has no --control rhythm=PATH"):
        control_inputs(base, ["a"], 1.0, [f"melody={tmp_path}"], ["rhythm=1"])
    with pytest.raises(ConfigError, match="controls melody, not dynamics"):
        control_inputs(base, ["a"], 1.0, [f"dynamics={tmp_path}"])
