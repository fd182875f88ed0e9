"""Control adapters: zero-init equality with the base model, the published MuseControlLite key
layout, the shipped rotary variant, and that a control actually enters once trained weights are non-zero."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from t2mbench.reference_models import build
from t2mbench.reference_models.adapters import extractors as ex
from t2mbench.reference_models.adapters.model import controlnet, musecontrollite
from t2mbench.reference_models.adapters.musecontrollite import MuseControlLite, shipped_rotary

MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "control" / "musecontrollite_sao-1.0.json"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build("tiny")
    # a base whose zero-initialised residual outputs are non-zero, so that every path matters
    with torch.no_grad():
        for p in model.dit.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    return model.eval()


def _inputs(model, frames=24):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 32, frames, generator=g)
    t = torch.tensor([0.25, 0.8])
    cross = torch.randn(2, 66, 384, generator=g)
    glob = torch.randn(2, 768, generator=g)
    melody = (torch.rand(2, 128, frames, generator=g) > 0.9).float()
    return x, t, cross, glob, melody


@pytest.mark.parametrize("make", [musecontrollite, controlnet], ids=["musecontrollite", "controlnet"])
def test_zero_init_output_equals_base_exactly(tiny, make):
    x, t, cross, glob, melody = _inputs(tiny)
    base = tiny(x, t, cross_attn_cond=cross, global_cond=glob)
    adapted = make(tiny)(x, t, cross_attn_cond=cross, global_cond=glob, melody=melody)
    assert torch.equal(adapted, base)


def test_zero_init_audio_adapter_equals_base_exactly(tiny):
    x, t, cross, glob, melody = _inputs(tiny)
    base = tiny(x, t, cross_attn_cond=cross, global_cond=glob)
    model = musecontrollite(tiny, ("melody", "dynamics"), audio=True)
    out = model(x, t, cross_attn_cond=cross, global_cond=glob, melody=melody,
                dynamics=torch.randn(2, 1, x.shape[-1]), audio=torch.randn_like(x))
    assert torch.equal(out, base)


@pytest.mark.parametrize("make", [musecontrollite, controlnet], ids=["musecontrollite", "controlnet"])
def test_trained_adapter_follows_the_condition_and_its_mask(tiny, make):
    x, t, cross, glob, melody = _inputs(tiny)
    model = make(tiny)
    with torch.no_grad():
        for p in model.adapter.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    base = tiny(x, t, cross_attn_cond=cross, global_cond=glob)
    on = model(x, t, cross_attn_cond=cross, global_cond=glob, melody=melody)
    other = model(x, t, cross_attn_cond=cross, global_cond=glob, melody=melody.flip(-1))
    dropped = model(x, t, cross_attn_cond=cross, global_cond=glob, melody=melody,
                    melody_mask=torch.zeros(2, x.shape[-1]))
    assert (on - other).abs().max() > 1e-4  # the melody changes the output
    # a fully masked condition is "no condition" (zero tokens), whatever the features
    absent = model(x, t, cross_attn_cond=cross, global_cond=glob)
    assert torch.equal(dropped, absent)
    if make is musecontrollite:
        # zero tokens give zero K', V', hence a zero adapter term: the base model exactly
        assert torch.equal(absent, base)
    else:
        # the trained ControlNet copy still adds its residuals without a condition
        assert (absent - base).abs().max() > 1e-4


def test_shipped_rotary_is_the_upstream_formula():
    """LlamaRotaryEmbedding(dim=64) tables ([θ, θ] half-split) with MuseControlLite's interleaved
    rotate_half, written out element by element."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 3, 64, generator=g, dtype=torch.float64)
    pos = torch.tensor([0.0, 10.0, 36.9])
    got = shipped_rotary(x, pos)
    want = torch.empty_like(x)
    for n, p in enumerate(pos.tolist()):
        for j in range(64):
            theta = p / 10000 ** ((2 * (j % 32)) / 64)
            # rotate_half: view(..., 32, 2) -> cat(-odd, even)
            rot = -x[0, 0, n, 2 * j + 1] if j < 32 else x[0, 0, n, 2 * (j - 32)]
            want[0, 0, n, j] = x[0, 0, n, j] * math.cos(theta) + rot * math.sin(theta)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(got[0, 0, 0], x[0, 0, 0])  # position 0 is the identity
    # not norm-preserving (spec §1.7): standard RoPE would keep the norm
    assert abs(got[0, 0, 2].norm() / x[0, 0, 2].norm() - 1) > 0.01


def test_sao_layout_matches_the_published_checkpoint_manifest():
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        sao = build("sao-1.0", device="meta")
        attrs = MuseControlLite(sao.dit.transformer, {"melody": ex.MELODY_MONO}, cond_dim=768)
        audio = MuseControlLite(sao.dit.transformer, {"melody": ex.MELODY_MONO}, cond_dim=768, audio=True)

    def shapes(state):
        return {k: list(v.shape) for k, v in state.items()}

    assert shapes(attrs.adapter_state_dict()) == manifest["attributes"]
    assert shapes(audio.adapter_state_dict()) == manifest["attributes_audio"]
    assert sum(p.numel() for k, p in attrs.named_parameters() if k.startswith("transformer_blocks.")) == 84_934_656
    for name, layers in (("melody_mono", ex.MELODY_MONO), ("melody_full_mono", ex.MELODY_FULL_MONO),
                         ("rhythm", ex.RHYTHM), ("dynamics", ex.DYNAMICS)):
        assert shapes(ex.ConvExtractor(layers).state_dict()) == manifest[f"extractor_{name}"], name


def test_published_extractors_give_the_published_token_counts():
    """Spec §1.2: 4097 CQT frames -> 1024; 4756 rhythm frames -> 1189; 13108 dynamics frames -> 1639."""
    for layers, frames, want in ((ex.MELODY_MONO, 4097, 1024), (ex.MELODY_FULL_MONO, 4097, 1024),
                                 (ex.RHYTHM, 4756, 1189), (ex.DYNAMICS, 13108, 1639)):
        out = ex.ConvExtractor(layers)(torch.zeros(1, layers[0][0], frames))
        assert out.shape[-1] == want


def test_inpainting_masks_are_complementary_spans_in_latent_frames():
    from t2mbench.reference_models.adapters.model import inpainting_masks, span_frames

    # SAO-1.0: 14 s .. 47 s of a 2,097,152-sample window -> frames 301 .. 1012 (⌊s·44100/2048⌋)
    assert span_frames(14, 47, 44_100, 2048, 1024) == (301, 1012)
    assert span_frames(0, 99, 16_000, 512, 160) == (0, 160)
    masks = inpainting_masks(2, 10, (3, 7), ("melody",))
    assert masks["audio_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    assert torch.equal(masks["melody_mask"], 1 - masks["audio_mask"])
    with pytest.raises(ValueError, match="before it starts"):
        span_frames(5, 4, 16_000, 512, 160)


def test_audio_branch_sees_only_the_unmasked_reference(tiny):
    """Outpainting: changing the reference latents inside the region to generate (audio mask 0)
    changes nothing; changing them where they are given does."""
    x, t, cross, glob, _ = _inputs(tiny)
    model = musecontrollite(tiny, ("melody",), audio=True)
    with torch.no_grad():
        for p in model.adapter.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    ref = torch.randn_like(x)
    mask = torch.ones(2, x.shape[-1])
    mask[:, 12:] = 0
    edited = ref.clone()
    edited[..., 12:] += 1.0
    kw = {"cross_attn_cond": cross, "global_cond": glob, "audio_mask": mask}
    out = model(x, t, audio=ref, **kw)
    assert torch.equal(out, model(x, t, audio=edited, **kw))
    edited[..., :12] += 1.0
    assert (out - model(x, t, audio=edited, **kw)).abs().max() > 1e-4


def test_shipped_musecontrollite_adapter_follows_the_melody():
    """The shipped adapter's output depends on WHICH melody it is given: an ascending and a descending
    C-major scale move the output apart by 0.32 of its norm (the first shipped adapter, whose attention
    stayed uniform over time, 0.03: docs/control_table.md)."""
    import numpy as np

    from t2mbench.reference_models.adapters.conditions import melody_condition
    from t2mbench.reference_models.adapters.model import load_adapter
    from t2mbench.reference_models.generate import load_model

    base = load_model("tiny")
    model = load_adapter(base, "musecontrollite")
    sr, hop, frames = 16000, 512, 64
    seconds = np.arange(frames * hop) / sr

    def scale(midis: list[int]) -> torch.Tensor:
        f = np.repeat([440 * 2 ** ((m - 69) / 12) for m in midis], len(seconds) // len(midis))
        audio = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr)
        return torch.from_numpy(melody_condition(audio, sr, hop, frames))[None].expand(4, -1, -1)

    up = [60, 62, 64, 65, 67, 69, 71, 72]
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(4, 32, frames, generator=g), torch.tensor([0.3, 0.5, 0.7, 0.9])
    cross, glob = base.condition({"prompt": ["a piano melody"] * 4, "seconds_start": [0.0] * 4,
                                  "seconds_total": [2.0] * 4})
    with torch.no_grad():
        a, b, none = (model(x, t, cross_attn_cond=cross, global_cond=glob, **m)
                      for m in ({"melody": scale(up)}, {"melody": scale(up[::-1])}, {}))
    assert float((a - b).norm() / none.norm()) > 0.2
