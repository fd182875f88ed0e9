"""Test-side builders for the reduced models of :mod:`support.sat_cases`: our models with the
same seeded weights and T5 stand-in that ``tools/fixtures/make_sat_models.py`` gave
stable-audio-tools, the golden outputs, and a seeded ``tiny`` model for generation tests."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch

from support import sat_cases
from support.sat_weights import seeded_state_dict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sat"


@functools.cache
def golden() -> dict[str, np.ndarray]:
    """The arrays of ``tests/fixtures/sat/sat_models.npz``."""
    with np.load(FIXTURES / "sat_models.npz") as f:
        return {k: f[k] for k in f.files}


def upstream_keys(name: str) -> list[list]:
    """stable-audio-tools' ``[key, shape]`` list for the reduced model ``name``."""
    return json.loads(str(golden()[f"{name}/keys"]))


def seeded_weights(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Seeded tensors for every entry of ``model``'s state dict (derived buffers excluded)."""
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return {k: torch.from_numpy(v) for k, v in seeded_state_dict(shapes, seed).items()}


def t5_stand_in(dtype: torch.dtype = torch.float32):
    """The seeded random T5 encoder with its word-level tokenizer, as a ``T5Encoder``."""
    from t2mbench.reference_models.text_encoders import T5Encoder

    return T5Encoder("t5-base", 768, tokenizer=sat_cases.t5_tokenizer(), model=sat_cases.t5_model(), dtype=dtype)


def reduced_model(name: str):
    """Our build of the reduced model ``name`` with the fixture's seeded weights."""
    from t2mbench.reference_models import build, load_checkpoint

    model = build(sat_cases.config(name))
    load_checkpoint(model, seeded_weights(model, sat_cases.SEED))
    model.conditioner.conditioners["prompt"].encoder = t5_stand_in()
    return model


def conditioning_inputs(name: str) -> dict[str, list]:
    """The conditioner inputs of the fixture (prompts and seconds) for model ``name``."""
    inputs = {
        "prompt": sat_cases.PROMPTS,
        "seconds_start": sat_cases.SECONDS_START,
        "seconds_total": sat_cases.SECONDS_TOTAL,
    }
    ids = [c["id"] for c in sat_cases.CONFIGS[name]["model"]["conditioning"]["configs"]]
    return {k: inputs[k] for k in ids}


def tiny_model(seed: int = 7):
    """The ``tiny`` model with seeded random weights (every layer non-zero, real MiniLM)."""
    from t2mbench.reference_models import build, load_checkpoint

    model = build("tiny")
    return load_checkpoint(model, seeded_weights(model, seed))
