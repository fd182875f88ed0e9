"""The reduced stable-audio-tools models, inputs and text tokenizer of the parity fixtures
(``tests/fixtures/sat/``), shared by ``tools/fixtures/make_sat_models.py`` (run against
stable-audio-tools 0.0.19 in the torch 2.9.1 environment) and the tests.

Two reduced models in the upstream ``model_config.json`` schema, small enough to run in a
second, wide enough to keep every structural feature of the real ones:

- ``sao10``: like SAO-1.0: v objective, T5 prompt + seconds_start + seconds_total, global
  conditioning from both numbers, unprojected context with grouped KV heads (4 query heads,
  2 KV heads), a 3-block Oobleck VAE. The T5 is 768 wide, so its tokens go through a
  ``proj_out`` Linear to the 128-d conditioning width.
- ``small``: like SAO-small: rectified flow (``rf_denoiser``), T5 + seconds_total, projected
  context, qk LayerNorm.

The T5 is a 2-layer random ``T5Config`` encoder (the real t5-base cannot be fetched here);
its tokenizer is a word-level vocabulary over :data:`WORDS` with T5's conventions (pad id 0,
``</s>`` appended).
"""

from __future__ import annotations

import copy

import numpy as np

from support.sat_weights import seeded_state_dict, uniform

SEED = 20240611
T5_MAX_LENGTH = 12
PROMPTS = ["warm piano chords with soft strings", "fast techno drums 128 bpm", "", "a b c d e f g h i j k l m n o p"]
NEGATIVE = ["noise hiss", "low quality", "noise", "distorted"]
SECONDS_START = [0.0, 3.5, 600.0, 12.0]  # 600 clamps to 512
SECONDS_TOTAL = [10.0, 47.0, 1.0, 300.0]  # 300 clamps to 256 in ``small``

WORDS = (
    "warm piano chords with soft strings fast techno drums 128 bpm noise hiss low quality distorted "
    "a b c d e f g h i j k l m n o p"
).split()
T5_CONFIG = dict(
    vocab_size=len(WORDS) + 3, d_model=768, d_kv=64, d_ff=256, num_layers=2, num_heads=2,
    relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
    feed_forward_proj="relu", pad_token_id=0, eos_token_id=1,
)  # fmt: skip

_VAE = {
    "type": "autoencoder",
    "iterate_batch": True,
    "config": {
        "encoder": {
            "type": "oobleck",
            "requires_grad": False,
            "config": {
                "in_channels": 2, "channels": 16, "c_mults": [1, 2, 4], "strides": [2, 4, 4], "latent_dim": 16,
                "use_snake": True,
            },
        },
        "decoder": {
            "type": "oobleck",
            "config": {
                "out_channels": 2, "channels": 16, "c_mults": [1, 2, 4], "strides": [2, 4, 4], "latent_dim": 8,
                "use_snake": True, "final_tanh": False,
            },
        },
        "bottleneck": {"type": "vae"},
        "latent_dim": 8,
        "downsampling_ratio": 32,
        "io_channels": 2,
    },
}  # fmt: skip


def _t5(max_length: int) -> dict:
    return {"id": "prompt", "type": "t5", "config": {"t5_model_name": "t5-base", "max_length": max_length}}


def _diffusion_cond(conditioners: list[dict], diffusion: dict) -> dict:
    """A reduced ``diffusion_cond`` config with the shared VAE and 128-d conditioning."""
    return {
        "model_type": "diffusion_cond",
        "sample_size": 4096,
        "sample_rate": 44100,
        "audio_channels": 2,
        "model": {
            "pretransform": _VAE,
            "conditioning": {"configs": conditioners, "cond_dim": 128},
            "diffusion": diffusion,
            "io_channels": 8,
        },
    }


def _number(cid: str, max_val: int) -> dict:
    return {"id": cid, "type": "number", "config": {"min_val": 0, "max_val": max_val}}


CONFIGS = {
    "sao10": _diffusion_cond(
        [_t5(T5_MAX_LENGTH), _number("seconds_start", 512), _number("seconds_total", 512)],
        {
            "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
            "global_cond_ids": ["seconds_start", "seconds_total"],
            "type": "dit",
            "config": {
                "io_channels": 8, "embed_dim": 256, "depth": 2, "num_heads": 4, "cond_token_dim": 128,
                "global_cond_dim": 256, "project_cond_tokens": False, "transformer_type": "continuous_transformer",
            },
        },
    ),
    "small": _diffusion_cond(
        [_t5(8), _number("seconds_total", 256)],
        {
            "cross_attention_cond_ids": ["prompt", "seconds_total"],
            "global_cond_ids": ["seconds_total"],
            "diffusion_objective": "rf_denoiser",
            "type": "dit",
            "config": {
                "io_channels": 8, "embed_dim": 128, "depth": 2, "num_heads": 2, "cond_token_dim": 128,
                "global_cond_dim": 128, "project_cond_tokens": True, "transformer_type": "continuous_transformer",
                "attn_kwargs": {"qk_norm": "ln"},
            },
        },
    ),
}  # fmt: skip


def config(name: str) -> dict:
    """A deep copy of the reduced config ``name``."""
    return copy.deepcopy(CONFIGS[name])


def t5_tokenizer():
    """Word-level tokenizer over :data:`WORDS`: ``<pad>`` 0, ``</s>`` 1 appended, ``<unk>`` 2."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(dict.fromkeys(WORDS))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def t5_model(dtype=None):
    """The seeded random 2-layer T5 encoder (float32 unless ``dtype``)."""
    import torch
    from transformers import T5Config, T5EncoderModel

    model = T5EncoderModel(T5Config(**T5_CONFIG))
    # encoder.embed_tokens is tied to `shared`: draw `shared` only
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("embed_tokens.weight")}
    state = {k: torch.from_numpy(v) for k, v in seeded_state_dict(shapes, SEED + 1).items()}
    model.load_state_dict(state, strict=False)
    model.eval()
    return model if dtype is None else model.to(dtype)


def latents(name: str, n: int = 4, length: int = 24) -> np.ndarray:
    """Noisy latents ``[n, 8, length]`` float32 for the DiT of ``name``."""
    return uniform(SEED, f"{name}.x", (n, 8, length)) * np.float32(2.0)


def timesteps(n: int = 4) -> np.ndarray:
    """Diffusion times ``[n]`` in (0, 1)."""
    return np.array([0.93, 0.5, 0.12, 0.71], dtype=np.float32)[:n]


def audio(n: int = 2, samples: int = 2048) -> np.ndarray:
    """Stereo test audio ``[n, 2, samples]``: chirps plus seeded noise, peak about 0.8."""
    t = np.arange(samples, dtype=np.float64) / 44100.0
    chirp = np.sin(2 * np.pi * (200 * t + 4000 * t * t))
    base = np.stack([chirp, np.roll(chirp, 17)])[None].repeat(n, 0) * 0.5
    return (base + 0.3 * uniform(SEED, "audio", (n, 2, samples))).astype(np.float32)
