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
