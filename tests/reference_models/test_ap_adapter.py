"""AP-Adapter (spec control_adapters.md §4): λ = 0 is the base model, the copied W'_k/W'_v make the
audio branch the text branch on the same tokens, the ½(avg + max) pooling on a hand-made grid,
the unconditional branch is the encoder on an all-zero input, and parity of the attention with
the paper's equations written out here."""

from __future__ import annotations

import math

import pytest
import torch
from support.parity import rel_err

from t2mbench.bench.audio_prompt import EvaluatorPatchEncoder
from t2mbench.core.errors import ConfigError, WeightsError
from t2mbench.reference_models import build
from t2mbench.reference_models.adapters.ap_adapter import (
    APAdapterHook,
    APProcessor,
    ap_adapter,
    audio_prompt_inputs,
    encode_prompt,
    load_adapter_weights,
    pool_grid,
)
from t2mbench.reference_models.transformer import Attention


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build("tiny")
    with torch.no_grad():  # non-zero residual outputs, so that every path matters
        for p in model.dit.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    return model.eval()


@pytest.fixture(scope="module")
def encoder():
    from t2mbench.metrics.embedders.evaluator import load_evaluator

    return EvaluatorPatchEncoder(load_evaluator().net)


def _inputs(frames=24):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, 32, frames, generator=g), torch.tensor([0.25, 0.8]),
            torch.randn(2, 66, 384, generator=g), torch.randn(2, 768, generator=g))


def test_lambda_zero_is_the_base_model_exactly(tiny):
    x, t, cross, glob = _inputs()
    audio = torch.randn(2, 40, 192, generator=torch.Generator().manual_seed(2))
    base = tiny(x, t, cross_attn_cond=cross, global_cond=glob)
    assert torch.equal(ap_adapter(tiny, 64, scale=0.0)(x, t, cross_attn_cond=cross, global_cond=glob,
                                                       audio_prompt=audio), base)
    # and the branch is live: λ = 0.5 moves the output
    moved = ap_adapter(tiny, 64, scale=0.5)(x, t, cross_attn_cond=cross, global_cond=glob, audio_prompt=audio)
    assert (moved - base).abs().max() > 1e-3


def _attention(qk_norm: str) -> Attention:
    torch.manual_seed(3)
    attn = Attention(128, 32, dim_context=64, qk_norm=qk_norm)  # 4 query heads over 2 KV heads (grouped)
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
    return attn


def _reference(x, c, a, w_q, w_k, w_v, w_k2, w_v2, w_o, heads, kv_heads, lam, q_norm=None, k_norm=None):
    """The paper's processor, head by head in float64: out = W_o·(A_txt + λ·A_audio), with
    A = softmax(Q Kᵀ/√d) V, K = cW_k, V = cW_v, K' = aW'_k, V' = aW'_v; query head h reads KV head
    h // (heads / kv_heads)."""
    x, c, a = x.double(), c.double(), a.double()
    d = w_q.shape[0] // heads
    q, k, v = x @ w_q.double().T, c @ w_k.double().T, c @ w_v.double().T
    k2, v2 = a @ w_k2.double().T, a @ w_v2.double().T
    out = []
    for h in range(heads):
        g = h // (heads // kv_heads)
        qh = q[..., h * d:(h + 1) * d]
        kh, vh = k[..., g * d:(g + 1) * d], v[..., g * d:(g + 1) * d]
        k2h, v2h = k2[..., g * d:(g + 1) * d], v2[..., g * d:(g + 1) * d]
        if q_norm is not None:
            qh, kh, k2h = q_norm(qh), k_norm(kh), k_norm(k2h)
        a_txt = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(d), dim=-1) @ vh
        a_aud = torch.softmax(qh @ k2h.transpose(-1, -2) / math.sqrt(d), dim=-1) @ v2h
        out.append(a_txt + lam * a_aud)
    return torch.cat(out, dim=-1) @ w_o.double().T


def _norm(ln):
    return lambda t: torch.nn.functional.layer_norm(t, t.shape[-1:], ln.weight.double(), ln.bias.double(), ln.eps)


def _adapted(attn, proc, tokens, lam, x, c):
    adapter = type("A", (), {"scale": lam, "processors": [proc],
                             "k_norms": [attn.k_norm if attn.qk_norm == "ln" else None]})()
    return attn(x, context=c, extra=APAdapterHook(adapter, tokens).cross_attention(0))


@pytest.mark.parametrize("qk_norm", ["none", "ln"])
def test_copy_init_on_the_text_tokens_is_one_plus_lambda_times_the_text_attention(qk_norm):
    attn = _attention(qk_norm)
    g = torch.Generator().manual_seed(4)
    x, c = torch.randn(2, 9, 128, generator=g), torch.randn(2, 5, 64, generator=g)
    proc, lam = APProcessor(attn), 0.7
    w_k, w_v = attn.to_kv.weight.chunk(2)
    assert torch.equal(proc.to_k_ip.weight, w_k) and torch.equal(proc.to_v_ip.weight, w_v)
    assert proc.to_k_ip.bias is None and proc.to_v_ip.bias is None
    got = _adapted(attn, proc, c, lam, x, c)
    # closed form: W_o·((1 + λ)·A_txt), A_txt from the reference with λ = 0
    norms = (_norm(attn.q_norm), _norm(attn.k_norm)) if qk_norm == "ln" else (None, None)
    a_txt_out = _reference(x, c, c, attn.to_q.weight, w_k, w_v, w_k, w_v, attn.to_out.weight, 4, 2, 0.0, *norms)
    assert rel_err(got.detach().double().numpy(), ((1 + lam) * a_txt_out).detach().numpy()) < 1e-5
    assert (got.double() - a_txt_out).abs().max() > 0.1  # the audio branch did add its share


@pytest.mark.parametrize("qk_norm", ["none", "ln"])
def test_attention_parity_with_the_papers_equations(qk_norm):
    attn = _attention(qk_norm)
    g = torch.Generator().manual_seed(5)
    x, c = torch.randn(3, 7, 128, generator=g), torch.randn(3, 6, 64, generator=g)
    a = torch.randn(3, 11, 64, generator=g)  # 11 audio tokens against 6 text tokens
    proc, lam = APProcessor(attn), 0.55
    with torch.no_grad():  # trained W'_k, W'_v: no longer the copies
        proc.to_k_ip.weight.normal_(0, 0.3, generator=g)
        proc.to_v_ip.weight.normal_(0, 0.3, generator=g)
    got = _adapted(attn, proc, a, lam, x, c)
    w_k, w_v = attn.to_kv.weight.chunk(2)
    norms = (_norm(attn.q_norm), _norm(attn.k_norm)) if qk_norm == "ln" else (None, None)
    want = _reference(x, c, a, attn.to_q.weight, w_k, w_v, proc.to_k_ip.weight, proc.to_v_ip.weight,
                      attn.to_out.weight, 4, 2, lam, *norms)
    assert rel_err(got.detach().double().numpy(), want.detach().numpy()) < 1e-5  # float32 rounding: ~1e-6


GRID = torch.tensor([[3.0, -1.0, 0.0, 8.0],
                     [2.0, 6.0, -4.0, 1.0],
                     [0.0, 0.0, 5.0, -2.0],
                     [9.0, 1.0, 1.0, 1.0],
                     [7.0, 7.0, 7.0, 7.0]])  # 5 time x 4 frequency


def test_pooling_half_average_plus_max_on_a_hand_made_grid():
    tokens = torch.stack([GRID.flatten(), -GRID.flatten()], dim=-1)[None]  # [1, 20, 2], time-major
    two = pool_grid(tokens, (5, 4), 2)
    # cells (t, f) time-major; the 5th time row is dropped (floor), as AvgPool2d/MaxPool2d
    # channel 0: {3,-1,2,6}: (2.5+6)/2; {0,8,-4,1}: (1.25+8)/2; {0,0,9,1}: (2.5+9)/2; {5,-2,1,1}: (1.25+5)/2
    # channel 1 (negated): max is minus the minimum: (-2.5+1)/2, (-1.25+4)/2, (-2.5+0)/2, (-1.25+2)/2
    want = torch.tensor([[4.25, -0.75], [4.625, 1.375], [5.75, -1.25], [3.125, 0.375]])
    assert torch.equal(two[0], want)
    four = pool_grid(tokens[:, :16], (4, 4), 4)  # one cell: mean 30/16, max 9
    assert torch.equal(four[0], torch.tensor([[(1.875 + 9) / 2, (-1.875 + 4) / 2]]))
    assert torch.equal(pool_grid(tokens, (5, 4), 1), tokens)  # rate 1: ½(x + x)
    with pytest.raises(ConfigError, match="does not fit the 5x4"):
        pool_grid(tokens, (5, 4), 8)


def test_encoder_grid_is_82_time_by_8_frequency(encoder):
    audio = torch.randn(1, 1, 16000 * 3, generator=torch.Generator().manual_seed(6)) * 0.1
    inputs = encoder.inputs(audio, 16000)
    tokens, grid = encoder.grid(inputs)
    assert inputs.shape == (1, 1, 64, 656) and grid == (82, 8) and tokens.shape == (1, 656, 64)
    # time-major: token t·8 + f is cell (f, t) of the convolutional map
    feature_map = encoder.stages(inputs)
    assert torch.equal(tokens[0, 5 * 8 + 3], feature_map[0, :, 3, 5])


class _Recording:
    """An encoder that records what its network is run on."""

    def __init__(self, inner):
        self.inner, self.width, self.seen = inner, inner.width, []

    def inputs(self, audio, sample_rate):
        return self.inner.inputs(audio, sample_rate)

    def grid(self, inputs):
        self.seen.append(inputs.clone())
        return self.inner.grid(inputs)


def test_unconditional_branch_is_the_encoder_on_an_all_zero_input(tiny, encoder):
    audio = torch.randn(1, 1, 16000 * 2, generator=torch.Generator().manual_seed(7)) * 0.1
    rec = _Recording(encoder)
    inputs = audio_prompt_inputs(tiny, audio, 16000, scale=0.5, pool=2, encoder=rec)
    real, zero = rec.seen
    assert torch.equal(real, encoder.inputs(audio, 16000)) and torch.equal(zero, torch.zeros_like(real))
    null_tokens, grid = encoder.grid(torch.zeros_like(real))
    want = inputs.model.adapter.tokens(pool_grid(null_tokens, grid, 2))
    assert torch.equal(inputs.null, want) and inputs.null.shape == (1, 41 * 4, 192)
    assert inputs.null.abs().mean() > 0.1  # not zero tokens
    # and the CFG batch carries it on the unconditional rows (the conditional ones carry the prompt)
    cond = {"cross_attn_cond": torch.randn(2, 66, 384), "global_cond": torch.randn(2, 768)}
    batched = inputs.guided(cond, None, slice(0, 2), 24, 3.0).batched["audio_prompt"]
    assert torch.equal(batched[:2], inputs.tokens.expand(2, -1, -1))
    assert torch.equal(batched[2:], inputs.null.expand(2, -1, -1))
    # a negative prompt is the unconditional text, beside the null audio
    negative = {"cross_attn_cond": torch.randn(2, 66, 384), "global_cond": cond["global_cond"]}
    guided = inputs.guided(cond, negative, slice(0, 2), 24, 3.0)
    assert torch.equal(guided.batched["cross_attn_cond"][2:], negative["cross_attn_cond"])
    assert torch.equal(guided.batched["audio_prompt"][2:], inputs.null.expand(2, -1, -1))
    _, pooled_null = encode_prompt(encoder, audio, 16000, 2)
    assert torch.equal(inputs.null, inputs.model.adapter.tokens(pooled_null))


def test_only_the_copied_projections_train(tiny):
    model = ap_adapter(tiny, 64)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {f"adapter.processors.{i}.to_{kv}_ip.weight" for i in range(6) for kv in "kv"}
    assert model.adapter.trainable_parameters() == 6 * 2 * 192 * 192
    # SAO-1.0 (built on the meta device, no weights): 24 blocks x 2 x 768², beside the paper's 22 M on
    # AudioLDM2's GPT-2-context layers
    sao = ap_adapter(build("sao-1.0", device="meta"), 768)
    assert len(sao.adapter.processors) == 24 and sao.adapter.trainable_parameters() == 28_311_552


@pytest.mark.parametrize("scale, pool, message", [
    (-0.1, 2, "scale must be >= 0"),
    (0.5, 3, "power of two"),
])
def test_bad_knobs_are_config_errors(tiny, encoder, scale, pool, message):
    with pytest.raises(ConfigError, match=message):
        audio_prompt_inputs(tiny, torch.zeros(1, 1, 16000), 16000, scale=scale, pool=pool, encoder=encoder)


def test_trained_weights_load_from_a_training_run_and_wrong_ones_are_refused(tiny, tmp_path):
    from safetensors.torch import save_file

    trained = ap_adapter(tiny, 64)
    with torch.no_grad():
        for p in trained.adapter.parameters():
            p.normal_(0, 0.1, generator=torch.Generator().manual_seed(8))
    # a training run's ema.safetensors holds the whole AudioPromptedModel: adapter.* beside base.*
    save_file({f"adapter.{k}": v.contiguous() for k, v in trained.adapter.state_dict().items()} |
              {"base.model.model.preprocess_conv.weight": torch.zeros(1)}, str(tmp_path / "ema.safetensors"))
    fresh = ap_adapter(tiny, 64).adapter
    load_adapter_weights(fresh, tmp_path / "ema.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.adapter.state_dict().values()))
    save_file({"processors.0.to_k_ip.weight": torch.zeros(192, 192)}, str(tmp_path / "part.safetensors"))
    with pytest.raises(WeightsError, match="missing processors.0.to_v_ip.weight"):
        load_adapter_weights(fresh, tmp_path / "part.safetensors")
