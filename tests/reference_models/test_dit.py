"""DiT and transformer: parity with stable-audio-tools 0.0.19 on seeded weights for an
SAO-1.0-like model (v, grouped KV heads, unprojected context) and an SAO-small-like one
(rectified flow, projected context, qk-norm), with and without classifier-free guidance
batched with the conditional branch, with and without a negative prompt."""

import math

import numpy as np
import pytest
import torch
from support import sat_cases
from support.sat_models import conditioning_inputs, golden, reduced_model

from t2mbench.reference_models.dit import patchify, unpatchify
from t2mbench.reference_models.guidance import GuidedModel, null_condition
from t2mbench.reference_models.transformer import Attention, RotaryEmbedding, apply_rotary

TOL = 1e-4  # max abs, float32


@pytest.fixture(scope="module", params=["sao10", "small"])
def case(request):
    name = request.param
    model = reduced_model(name)
    with torch.inference_mode():
        cross, glob = model.condition(conditioning_inputs(name))
        neg_inputs = dict(conditioning_inputs(name), prompt=sat_cases.NEGATIVE)
        neg_cross, _ = model.condition(neg_inputs)
    x = torch.from_numpy(sat_cases.latents(name))
    t = torch.from_numpy(sat_cases.timesteps())
    return name, model, {"cross_attn_cond": cross, "global_cond": glob}, neg_cross, x, t


def test_forward_matches_upstream(case):
    name, model, cond, _, x, t = case
    with torch.inference_mode():
        out = model(x, t, **cond)
    np.testing.assert_allclose(out.numpy(), golden()[f"{name}/dit"], rtol=0, atol=TOL)


def test_cfg_batched_with_conditional_branch_matches_upstream(case):
    """Our DiT skips cross-attention for the all-zero null rows; upstream computes them: equal
    outputs show the skip is exact (``small`` has qk-norm, whose keys are not zero there)."""
    name, model, cond, _, x, t = case
    objective = "v" if name == "sao10" else "rectified_flow"
    guided = GuidedModel(model, cond, scale=4.0, objective=objective)
    with torch.inference_mode():
        out = guided(x, t)
    np.testing.assert_allclose(out.numpy(), golden()[f"{name}/dit_cfg"], rtol=0, atol=TOL)


def test_negative_prompt_replaces_the_null_condition(case):
    name, model, cond, neg_cross, x, t = case
    objective = "v" if name == "sao10" else "rectified_flow"
    guided = GuidedModel(model, cond, null_condition(cond, negative=neg_cross), scale=4.0, objective=objective)
    with torch.inference_mode():
        out = guided(x, t)
    np.testing.assert_allclose(out.numpy(), golden()[f"{name}/dit_neg"], rtol=0, atol=TOL)


def test_zero_padding_tokens_still_attend_and_global_cond_is_kept(case):
    """No cross-attention mask, as upstream: the zeroed padding tokens of a prompt become zero
    keys and values that still take softmax mass, so removing them changes the output. The
    unconditional branch keeps the global (timing) embedding, which still matters."""
    _, model, cond, _, x, t = case
    cross, glob = cond["cross_attn_cond"][:1], cond["global_cond"][:1]
    real = cross[0].abs().sum(-1) > 0  # prompt 0: 7 T5 tokens, then padding, then the number tokens
    assert 0 < real.sum() < cross.shape[1]
    with torch.inference_mode():
        padded = model(x[:1], t[:1], cross_attn_cond=cross, global_cond=glob)
        unpadded = model(x[:1], t[:1], cross_attn_cond=cross[:, real], global_cond=glob)
        null = model(
            x[:2],
            t[:2],
            cross_attn_cond=torch.zeros_like(cond["cross_attn_cond"][:2]),
            global_cond=cond["global_cond"][:2],
        )
        swapped = model(
            x[:2],
            t[:2],
            cross_attn_cond=torch.zeros_like(cond["cross_attn_cond"][:2]),
            global_cond=cond["global_cond"][:2].flip(0),
        )
    assert (padded - unpadded).abs().max() > 1e-3
    assert (null - swapped).abs().max() > 1e-3


def test_rotary_is_partial_concatenated_halves_in_fp32():
    rope = RotaryEmbedding(32)
    cos, sin = rope(5)
    assert cos.shape == (5, 16) and cos.dtype == torch.float32  # one angle per channel pair
    np.testing.assert_allclose(rope.inv_freq[:2].numpy(), [1.0, 10000 ** (-2 / 32)], rtol=1e-6)
    x = torch.randn(1, 2, 5, 64, dtype=torch.bfloat16)
    y = apply_rotary(x, cos, sin)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y[..., 32:], x[..., 32:])  # channels past the rotary dim pass through
    # position 3, frequency index 1: channels 1 and 17 rotate together by 3·inv_freq[1]
    a = 3 * rope.inv_freq[1].item()
    x1, x2 = x[0, 0, 3, 1].float(), x[0, 0, 3, 17].float()
    expected = [x1 * math.cos(a) - x2 * math.sin(a), x2 * math.cos(a) + x1 * math.sin(a)]
    np.testing.assert_allclose([y[0, 0, 3, 1].float(), y[0, 0, 3, 17].float()], expected, rtol=1e-2, atol=1e-2)


def test_grouped_kv_heads_serve_consecutive_query_heads():
    torch.manual_seed(0)
    attn = Attention(dim=256, dim_heads=64, dim_context=128)
    assert (attn.num_heads, attn.kv_heads) == (4, 2)
    torch.nn.init.normal_(attn.to_out.weight)
    x, ctx = torch.randn(1, 6, 256), torch.randn(1, 5, 128)
    q = attn.to_q(x).view(1, 6, 4, 64).transpose(1, 2)
    k, v = (t.view(1, 5, 2, 64).transpose(1, 2) for t in attn.to_kv(ctx).chunk(2, dim=-1))
    k, v = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    ref = torch.softmax(q @ k.transpose(-1, -2) / 8.0, dim=-1) @ v
    torch.testing.assert_close(
        attn(x, context=ctx), attn.to_out(ref.transpose(1, 2).reshape(1, 6, 256)), rtol=1e-5, atol=1e-5
    )


def test_residual_branches_start_at_zero():
    """Fresh DiT: zero-initialised attention/FF outputs and 1×1 convs make every block an
    identity, so the output is project_out(project_in(x)) (the prepended token dropped)."""
    from t2mbench.reference_models import build

    model = build(sat_cases.config("small"))
    dit = model.dit
    x = torch.randn(2, 8, 10)
    with torch.inference_mode():
        out = dit(x, torch.rand(2), cross_attn_cond=torch.randn(2, 9, 128), global_cond=torch.randn(2, 128))
        expected = dit.transformer.project_out(dit.transformer.project_in(x.transpose(1, 2))).transpose(1, 2)
    torch.testing.assert_close(out, expected)


def test_patch_tokens_follow_upstream_channel_major_layout():
    """stable-audio-tools' ``b (t p) c -> b t (c p)``: token t's feature c·p + j is frame t·p + j
    of channel c (a frame-major ``(p c)`` layout would give other features and break its checkpoints)."""
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    tokens = patchify(x, 2)
    assert tokens.shape == (2, 4, 6)
    for b in range(2):
        for t in range(4):
            for c in range(3):
                for j in range(2):
                    assert tokens[b, t, c * 2 + j] == x[b, c, t * 2 + j]
    assert torch.equal(unpatchify(tokens, 2), x)
    with pytest.raises(ValueError, match="7 latent frames do not split into patches of 2"):
        patchify(x[..., :7], 2)


def test_patched_dit_maps_each_patch_through_the_transformer_projections():
    """Fresh DiT with patch_size 2: every block is an identity, so the output is
    unpatchify(project_out(project_in(patchify(x)))); frames of one patch share a token."""
    from t2mbench.reference_models import build

    config = sat_cases.config("small")
    config["model"]["diffusion"]["config"]["patch_size"] = 2
    dit = build(config).dit
    assert dit.transformer.project_in.in_features == 16 and dit.transformer.project_out.out_features == 16
    x = torch.randn(2, 8, 10)
    with torch.inference_mode():
        out = dit(x, torch.rand(2), cross_attn_cond=torch.randn(2, 9, 128), global_cond=torch.randn(2, 128))
        tokens = x.reshape(2, 8, 5, 2).permute(0, 2, 1, 3).reshape(2, 5, 16)
        mapped = dit.transformer.project_out(dit.transformer.project_in(tokens))
        expected = mapped.reshape(2, 5, 8, 2).permute(0, 2, 1, 3).reshape(2, 8, 10)
    torch.testing.assert_close(out, expected)
