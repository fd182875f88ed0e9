"""Conditioners: T5 prompt tokens and number embeddings match stable-audio-tools 0.0.19 on
the same seeded weights (T5 in float32 and in upstream's float16), the MiniLM encoder
matches sentence-transformers on the real all-MiniLM-L6-v2 weights, and a missing T5 is a
clear missing-weights error."""

import json

import numpy as np
import pytest
import torch
from support import sat_cases
from support.sat_models import FIXTURES, conditioning_inputs, golden, reduced_model, t5_stand_in

from t2mbench.core.errors import MissingWeightsError
from t2mbench.reference_models.conditioners import NumberConditioner
from t2mbench.reference_models.text_encoders import MiniLMEncoder, T5Encoder

TOL = 1e-4


@pytest.mark.parametrize("name", ["sao10", "small"])
def test_conditioning_matches_upstream(name):
    model = reduced_model(name)
    with torch.inference_mode():
        cross, glob = model.condition(conditioning_inputs(name))
    g = golden()
    # T5 tokens (padding zeroed, proj_out to 128) then one token per number, in config order
    np.testing.assert_allclose(cross.numpy(), g[f"{name}/cond_cross"], rtol=0, atol=TOL)
    np.testing.assert_allclose(glob.numpy(), g[f"{name}/cond_global"], rtol=0, atol=TOL)


def test_t5_in_float16_as_upstream():
    model = reduced_model("sao10")
    runs = {}
    for dtype in (torch.float16, torch.float32):
        model.conditioner.conditioners["prompt"].encoder = t5_stand_in(dtype)
        with torch.inference_mode():
            runs[dtype] = model.condition(conditioning_inputs("sao10"))[0].numpy()
    fp16, fp32 = golden()["sao10/cond_cross_fp16"], golden()["sao10/cond_cross"]
    # CPU float16 matmuls round differently by instruction set (fixtures: an Intel CPU with AMX;
    # EPYCs differ by up to 4.4e-3 here): a few float16 ulps at |x| ~ 2 (ulp 2e-3)
    np.testing.assert_allclose(runs[torch.float16], fp16, rtol=0, atol=5e-3)
    # the float32 run is upstream's float32 output, to float32 rounding
    np.testing.assert_allclose(runs[torch.float32], fp32, rtol=0, atol=TOL)
    # so the dtype is honoured: the float16 run differs from our float32 run by float16 rounding
    # (8.6e-3 at most on an EPYC) and sits closer to upstream's float16 output than to its float32
    # one (mean abs error 0.21e-3 vs 0.56e-3 with AMX, 0.33e-3 vs 0.54e-3 on an EPYC, measured)
    assert np.abs(runs[torch.float16] - runs[torch.float32]).max() > 1e-3
    assert np.abs(runs[torch.float16] - fp16).mean() < np.abs(runs[torch.float16] - fp32).mean()


def test_padding_positions_are_zero_and_long_prompts_truncate():
    cond = reduced_model("sao10").conditioner.conditioners["prompt"]
    with torch.inference_mode():
        emb, mask = cond(sat_cases.PROMPTS)
    assert emb.shape == (4, sat_cases.T5_MAX_LENGTH, 128)
    assert mask.sum(1).tolist() == [7, 6, 1, 12]  # words + </s>; the 16-word prompt is cut to 12 tokens
    assert emb[~mask].abs().max() == 0


def test_number_conditioner_clamps_and_normalises():
    cond = NumberConditioner(8, min_val=0, max_val=512)
    with torch.no_grad():
        emb, mask = cond([0.0, 256.0, 600.0, -3.0])
        ref = cond.embedder(torch.tensor([0.0, 0.5, 1.0, 0.0]))
    assert emb.shape == (4, 1, 8) and mask.all()
    torch.testing.assert_close(emb[:, 0], ref)
    feats = cond.embedder.embedding[0](torch.tensor([0.25]))
    w = cond.embedder.embedding[0].weights
    expected = torch.cat([torch.tensor([0.25]), torch.sin(2 * torch.pi * 0.25 * w), torch.cos(2 * torch.pi * 0.25 * w)])
    torch.testing.assert_close(feats[0], expected)  # [x, sin, cos]


def test_minilm_matches_sentence_transformers():
    with np.load(FIXTURES / "minilm.npz") as f:
        prompts = json.loads(str(f["prompts"]))
        sentence, tokens0 = f["sentence"], f["tokens0"]
    enc = MiniLMEncoder()
    emb = enc.sentence_embeddings(prompts)
    np.testing.assert_allclose(emb.numpy(), sentence, rtol=0, atol=1e-5)
    np.testing.assert_allclose(emb.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    states, mask = enc.encode(prompts[:1], max_length=64)
    n = tokens0.shape[0]
    assert mask[0].sum() == n and states.shape == (1, 64, 384)
    np.testing.assert_allclose(states[0, :n].numpy(), tokens0, rtol=0, atol=1e-4)
    assert states[0, n:].abs().max() == 0


def test_missing_t5_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    enc = T5Encoder("t5-base", 768)
    where = f"{tmp_path}/weights/t5-base"
    with pytest.raises(
        MissingWeightsError, match=rf"T5 text encoder 't5-base' not found .*t5-base files .* in {where}"
    ):
        enc.encode(["a prompt"], max_length=8)
    with pytest.raises(MissingWeightsError, match=rf"T5 text encoder 't5-base' not found \({tmp_path}/mine: OSError\)"):
        T5Encoder("t5-base", 768, path=tmp_path / "mine").encode(["a prompt"], max_length=8)
