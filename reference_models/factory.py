"""Models from JSON configs.

A config is stable-audio-tools' ``model_config.json`` schema (so a published
``model_config.json`` builds as it is), restricted to what t2mbench implements, plus one
optional top-level ``"t2mbench"`` block of our own (description, registered weights,
recommended generation settings) that upstream ignores. Every block has the shape
``{"type": ..., "config": {...}}``; each type maps to a dataclass listing its keys, so an
unknown type, an unknown key or a missing key fails at load with a :class:`ConfigError`
naming the block and listing the valid choices. Upstream's ``"training"`` block is
accepted and ignored (it configures training, not the model).

Shipped configs (``reference_models/configs/<name>.json``): ``sao-1.0``, ``sao-small``,
``tiny``. :func:`build` takes one of those names or a path to a JSON file (or a folder
holding ``model_config.json``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2mbench.core.errors import ConfigError
from t2mbench.reference_models.autoencoder import (
    AutoencoderPretransform,
    OobleckAutoencoder,
    OobleckDecoder,
    OobleckEncoder,
)
from t2mbench.reference_models.conditioners import MultiConditioner, NumberConditioner, TextConditioner
from t2mbench.reference_models.dit import DiffusionTransformer
from t2mbench.reference_models.model import LatentDiffusionModel, ModelInfo
from t2mbench.reference_models.objectives import OBJECTIVES, get_objective
from t2mbench.reference_models.text_encoders import MiniLMEncoder, T5Encoder
from t2mbench.reference_models.transformer import QK_NORMS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
CONFIG_FILENAME = "model_config.json"

# Widths of the T5 encoders stable-audio-tools accepts by name.
T5_DIMS = {
    "t5-small": 512, "t5-base": 768, "t5-large": 1024, "t5-3b": 1024, "t5-11b": 1024,
    "google/flan-t5-small": 512, "google/flan-t5-base": 768, "google/flan-t5-large": 1024,
    "google/flan-t5-xl": 2048, "google/flan-t5-xxl": 4096, "google/t5-v1_1-xl": 2048, "google/t5-v1_1-xxl": 4096,
}  # fmt: skip


def _describe(hint: Any) -> str:
    """A JSON type annotation in words, for messages."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if typing.get_origin(hint) is list and args:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s"
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "an object",
             list: "a list", type(None): "null"}  # fmt: skip
    return words.get(typing.get_origin(hint) or hint, str(hint))


def _conforms(value: Any, hint: Any) -> bool:
    """Whether the JSON ``value`` has the annotated type (bool is not a number here)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if (origin or hint) is list:
        return isinstance(value, list) and (not args or all(_conforms(v, args[0]) for v in value))
    if (origin or hint) is dict:
        return isinstance(value, Mapping)
    return True  # not a JSON type (built in code, never read from a file)


def parse(cls: type, block: Any, where: str) -> Any:
    """An instance of dataclass ``cls`` from the dict ``block``: unknown or missing keys and
    values of the wrong JSON type raise :class:`ConfigError` naming ``where`` and the key."""
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: expected a JSON object, got {type(block).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(block) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}")
    required = [
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in block]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    for key, value in block.items():
        if not _conforms(value, hints[key]):
            raise ConfigError(f"{where}.{key}: expected {_describe(hints[key])}, got {json.dumps(value)}")
    return cls(**block)


def _typed(registry: Mapping[str, Any], block: Any, where: str) -> tuple[str, Any]:
    """``(type, config)`` of a ``{"type", "config"}`` block whose type must be in ``registry``."""
    if not isinstance(block, Mapping) or "type" not in block:
        raise ConfigError(f"{where}: expected {{'type': ..., 'config': {{...}}}}; valid types: {', '.join(registry)}")
    kind = block["type"]
    if kind not in registry:
        raise ConfigError(f"{where}: unknown type {kind!r}; valid types: {', '.join(registry)}")
    return kind, block.get("config", {})


@dataclass(kw_only=True)
class OobleckConfig:
    channels: int
    c_mults: list[int]
    strides: list[int]
    latent_dim: int
    use_snake: bool = True
    antialias_activation: bool = False


@dataclass(kw_only=True)
class OobleckEncoderConfig(OobleckConfig):
    in_channels: int


@dataclass(kw_only=True)
class OobleckDecoderConfig(OobleckConfig):
    out_channels: int
    final_tanh: bool = True


@dataclass
class CoderBlock:
    type: str
    config: dict
    requires_grad: bool = True


@dataclass
class AutoencoderConfig:
    encoder: dict
    decoder: dict
    latent_dim: int
    downsampling_ratio: int
    io_channels: int
    bottleneck: dict = field(default_factory=lambda: {"type": "vae"})


@dataclass
class PretransformBlock:
    type: str
    config: dict
    scale: float = 1.0
    iterate_batch: bool = False


@dataclass
class T5Config:
    output_dim: int
    t5_model_name: str = "t5-base"
    max_length: int = 128
    enable_grad: bool = False
    project_out: bool = False


@dataclass
class MiniLMConfig:
    output_dim: int
    max_length: int = 64
    project_out: bool = False


@dataclass
class NumberConfig:
    output_dim: int
    min_val: float = 0.0
    max_val: float = 1.0


@dataclass
class ConditionerBlock:
    id: str
    type: str
    config: dict = field(default_factory=dict)


@dataclass
class ConditioningConfig:
    configs: list[dict]
    cond_dim: int


@dataclass
class DiTConfig:
    io_channels: int
    embed_dim: int
    depth: int
    num_heads: int
    cond_token_dim: int = 0
    global_cond_dim: int = 0
    project_cond_tokens: bool = True
    project_global_cond: bool = True
    transformer_type: str = "continuous_transformer"
    global_cond_type: str = "prepend"
    timestep_cond_type: str = "global"
    patch_size: int = 1
    attn_kwargs: dict = field(default_factory=dict)
    ff_kwargs: dict = field(default_factory=dict)


@dataclass
class DiffusionBlock:
    type: str
    config: dict
    diffusion_objective: str = "v"
    cross_attention_cond_ids: list[str] = field(default_factory=list)
    global_cond_ids: list[str] = field(default_factory=list)


@dataclass
class ModelBlock:
    pretransform: dict
    conditioning: dict
    diffusion: dict
    io_channels: int


@dataclass
class T2MBenchBlock:
    description: str = ""
    weights: str | None = None
    generation: dict = field(default_factory=dict)


@dataclass
class TopConfig:
    model_type: str
    sample_size: int
    sample_rate: int
    model: dict
    audio_channels: int = 2
    training: dict = field(default_factory=dict)
    t2mbench: dict = field(default_factory=dict)


def _only(where: str, key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}.{key}: {value!r} is not supported by t2mbench; supported: {allowed}")


def _oobleck(cls: type, cfg: dict, where: str) -> OobleckConfig:
    c = parse(cls, cfg, where)
    _only(where, "use_snake", c.use_snake, (True,))  # SnakeBeta; upstream's ELU variant is not implemented
    _only(where, "antialias_activation", c.antialias_activation, (False,))
    return c


def build_oobleck_encoder(cfg: dict, where: str) -> nn.Module:
    c = _oobleck(OobleckEncoderConfig, cfg, where)
    return OobleckEncoder(c.in_channels, c.channels, c.c_mults, c.strides, c.latent_dim)


def build_oobleck_decoder(cfg: dict, where: str) -> nn.Module:
    c = _oobleck(OobleckDecoderConfig, cfg, where)
    return OobleckDecoder(c.out_channels, c.channels, c.c_mults, c.strides, c.latent_dim, final_tanh=c.final_tanh)


ENCODERS: dict[str, Callable[[dict, str], nn.Module]] = {"oobleck": build_oobleck_encoder}
DECODERS: dict[str, Callable[[dict, str], nn.Module]] = {"oobleck": build_oobleck_decoder}
BOTTLENECKS = {"vae": None}


def _build_typed(registry: Mapping[str, Callable[[dict, str], nn.Module]], block: Any, where: str) -> nn.Module:
    kind, cfg = _typed(registry, block, where)
    parse(CoderBlock, block, where)
    return registry[kind](cfg, f"{where}.config")


def build_autoencoder_pretransform(block: dict, where: str) -> AutoencoderPretransform:
    p = parse(PretransformBlock, block, where)
    c = parse(AutoencoderConfig, p.config, f"{where}.config")
    encoder = _build_typed(ENCODERS, c.encoder, f"{where}.config.encoder")
    decoder = _build_typed(DECODERS, c.decoder, f"{where}.config.decoder")
    _typed(BOTTLENECKS, c.bottleneck, f"{where}.config.bottleneck")
    if math.prod(encoder.strides) != c.downsampling_ratio:
        raise ConfigError(
            f"{where}.config: downsampling_ratio {c.downsampling_ratio} is not the product of the encoder strides "
            f"{encoder.strides}"
        )
    vae = OobleckAutoencoder(encoder, decoder, c.downsampling_ratio, c.io_channels)
    return AutoencoderPretransform(vae, scale=p.scale, iterate_batch=p.iterate_batch)


PRETRANSFORMS: dict[str, Callable[[dict, str], AutoencoderPretransform]] = {
    "autoencoder": build_autoencoder_pretransform
}


def build_t5(cfg: dict, where: str) -> nn.Module:
    c = parse(T5Config, cfg, where)
    if c.t5_model_name not in T5_DIMS:
        raise ConfigError(f"{where}.t5_model_name: unknown T5 {c.t5_model_name!r}; valid: {', '.join(T5_DIMS)}")
    _only(where, "enable_grad", c.enable_grad, (False,))
    encoder = T5Encoder(c.t5_model_name, T5_DIMS[c.t5_model_name])
    return TextConditioner(encoder, c.output_dim, c.max_length, project_out=c.project_out)


def build_minilm(cfg: dict, where: str) -> nn.Module:
    c = parse(MiniLMConfig, cfg, where)
    return TextConditioner(MiniLMEncoder(), c.output_dim, c.max_length, project_out=c.project_out)


def build_number(cfg: dict, where: str) -> nn.Module:
    c = parse(NumberConfig, cfg, where)
    return NumberConditioner(c.output_dim, c.min_val, c.max_val)


CONDITIONERS: dict[str, Callable[[dict, str], nn.Module]] = {
    "t5": build_t5,
    "number": build_number,
    "minilm": build_minilm,
}


def build_conditioner(block: dict, where: str) -> MultiConditioner:
    c = parse(ConditioningConfig, block, where)
    out: dict[str, nn.Module] = {}
    for i, item in enumerate(c.configs):
        w = f"{where}.configs[{i}]"
        b = parse(ConditionerBlock, item, w)
        _typed(CONDITIONERS, item, w)
        out[b.id] = CONDITIONERS[b.type]({"output_dim": c.cond_dim, **b.config}, f"{w}.config")
    return MultiConditioner(out)


def build_dit(cfg: dict, where: str) -> DiffusionTransformer:
    c = parse(DiTConfig, cfg, where)
    for key, allowed in (
        ("transformer_type", ("continuous_transformer",)),
        ("global_cond_type", ("prepend",)),
        ("timestep_cond_type", ("global",)),
        ("project_global_cond", (True,)),
    ):
        _only(where, key, getattr(c, key), allowed)
    unknown = sorted(set(c.attn_kwargs) - {"qk_norm"}) + sorted(set(c.ff_kwargs) - {"mult"})
    if unknown:
        raise ConfigError(f"{where}: unsupported attn_kwargs/ff_kwargs {', '.join(unknown)}; supported: qk_norm, mult")
    qk_norm = c.attn_kwargs.get("qk_norm", "none")
    _only(where, "attn_kwargs.qk_norm", qk_norm, QK_NORMS)
    if c.embed_dim % c.num_heads:
        raise ConfigError(f"{where}: embed_dim {c.embed_dim} is not a multiple of num_heads {c.num_heads}")
    if c.patch_size < 1:
        raise ConfigError(f"{where}: patch_size must be at least 1, got {c.patch_size}")
    return DiffusionTransformer(
        c.io_channels,
        c.embed_dim,
        c.depth,
        c.num_heads,
        cond_token_dim=c.cond_token_dim,
        project_cond_tokens=c.project_cond_tokens,
        global_cond_dim=c.global_cond_dim,
        qk_norm=qk_norm,
        ff_mult=c.ff_kwargs.get("mult", 4),
        patch_size=c.patch_size,
    )


DIFFUSION: dict[str, Callable[[dict, str], DiffusionTransformer]] = {"dit": build_dit}


def config_names() -> list[str]:
    """Names of the shipped configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | os.PathLike) -> tuple[str, dict]:
    """``(name, config dict)`` for a shipped config name, a JSON file or a folder holding
    ``model_config.json``."""
    p = Path(name_or_path)
    if str(name_or_path) in config_names():
        p = CONFIG_DIR / f"{name_or_path}.json"
    elif p.is_dir():
        p = p / CONFIG_FILENAME
    if not p.is_file():
        raise ConfigError(
            f"unknown model {str(name_or_path)!r}: not a shipped config ({', '.join(config_names())}) "
            f"nor a JSON file or a folder with {CONFIG_FILENAME}"
        )
    try:
        config = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: unreadable model config ({e})") from None
    name = p.stem if p.name != CONFIG_FILENAME else p.parent.name
    return name, config


def build(
    name_or_path: str | os.PathLike | Mapping[str, Any],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> LatentDiffusionModel:
    """Build the whole model (VAE, conditioners, DiT) from a config, with freshly initialised
    weights, in eval mode.

    ``device="meta"`` allocates nothing (load weights afterwards with
    :func:`t2mbench.reference_models.checkpoints.load_checkpoint`, which assigns them). ``name_or_path``
    may also be a config dict.
    """
    if isinstance(name_or_path, Mapping):
        name, config = str(name_or_path.get("t2mbench", {}).get("name", "custom")), dict(name_or_path)
    else:
        name, config = load_config(name_or_path)
    top = parse(TopConfig, config, name)
    _only(name, "model_type", top.model_type, ("diffusion_cond",))
    for key in ("sample_size", "sample_rate", "audio_channels"):
        if getattr(top, key) < 1:
            raise ConfigError(f"{name}.{key}: must be >= 1, got {getattr(top, key)}")
    m = parse(ModelBlock, top.model, f"{name}.model")
    d = parse(DiffusionBlock, m.diffusion, f"{name}.model.diffusion")
    _typed(DIFFUSION, m.diffusion, f"{name}.model.diffusion")
    if d.diffusion_objective not in OBJECTIVES:
        valid = ", ".join(OBJECTIVES)
        raise ConfigError(
            f"{name}.model.diffusion.diffusion_objective: unknown {d.diffusion_objective!r}; valid: {valid}"
        )
    extra = parse(T2MBenchBlock, top.t2mbench, f"{name}.t2mbench")
    with torch.device(device) if device is not None else nullcontext():
        kind = _typed(PRETRANSFORMS, m.pretransform, f"{name}.model.pretransform")[0]
        pretransform = PRETRANSFORMS[kind](m.pretransform, f"{name}.model.pretransform")
        conditioner = build_conditioner(m.conditioning, f"{name}.model.conditioning")
        dit = DIFFUSION[d.type](d.config, f"{name}.model.diffusion.config")
    for where, ids in (
        ("cross_attention_cond_ids", d.cross_attention_cond_ids),
        ("global_cond_ids", d.global_cond_ids),
    ):
        unknown = [i for i in ids if i not in conditioner.ids]
        if unknown:
            raise ConfigError(
                f"{name}.model.diffusion.{where}: {', '.join(unknown)} not among the conditioners "
                f"({', '.join(conditioner.ids)})"
            )
    window = top.sample_size // pretransform.downsampling_ratio
    if window % dit.patch_size:
        raise ConfigError(
            f"{name}.model.diffusion.config.patch_size: the window of {window} latent frames "
            f"(sample_size / downsampling_ratio) is not a multiple of {dit.patch_size}"
        )
    info = ModelInfo(
        name=name,
        sample_rate=top.sample_rate,
        sample_size=top.sample_size,
        audio_channels=top.audio_channels,
        cross_attn_cond_ids=tuple(d.cross_attention_cond_ids),
        global_cond_ids=tuple(d.global_cond_ids),
        weights=extra.weights,
        description=extra.description,
        generation=dict(extra.generation),
    )
    model = LatentDiffusionModel(dit, conditioner, pretransform, get_objective(d.diffusion_objective), info)
    if dtype is not None:
        model.to(dtype)
    return model.eval().requires_grad_(False)
