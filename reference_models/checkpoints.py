"""Checkpoints: stable-audio-tools ``model.safetensors`` / ``model.ckpt`` files (loaded with
``weights_only``), the registered weight files, and the conversion of state-dict names to
and from diffusers' ``StableAudioPipeline`` components (``transformer`` =
``StableAudioDiTModel``, ``vae`` = ``AutoencoderOobleck``, ``projection_model`` =
``StableAudioProjectionModel``), following diffusers' ``scripts/convert_stable_audio.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from t2mbench.core.errors import WeightsError
from t2mbench.core.torch_files import load_torch_file
from t2mbench.core.weights import WeightFile, register, register_shipped

HF = "https://huggingface.co/stabilityai"
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
# Stability publishes no sha256 for these gated files outside the Hugging Face LFS pointers,
# which could not be read from here; the first verified download should pin them.
_NO_HASH = "no published sha256 reachable (gated Hugging Face repo): the file is not verified"


def _sao(name: str, repo: str, description: str) -> WeightFile:
    return register(
        WeightFile(
            name=name,
            filename=f"{repo}/model.safetensors",
            url=f"{HF}/{repo}/resolve/main/model.safetensors",
            sha256=None,
            description=description,
            note=_NO_HASH + "; model.ckpt from the same repo loads too (pass its path)",
            licence="Stability AI Community License (stabilityai/" + repo + ")",
        )
    )


# tiny is None in a checkout that has not shipped its trained weights yet.
WEIGHTS: dict[str, WeightFile | None] = {
    "sao-1.0": _sao(
        "sao-1.0",
        "stable-audio-open-1.0",
        "Stable Audio Open 1.0: DiT, Oobleck VAE and timing conditioners (T5-base separately)",
    ),
    "sao-small": _sao(
        "sao-small",
        "stable-audio-open-small",
        "Stable Audio Open Small: DiT (ARC), Oobleck VAE, seconds_total (T5-base separately)",
    ),
    "tiny": register_shipped(
        "tiny", SHIPPED_DIR / "tiny", "model.safetensors",
        "t2mbench tiny model (16 kHz mono): VAE, DiT and number conditioners, trained by t2mbench",
    ),
    **{name: register_shipped(name, SHIPPED_DIR / name, "adapter.safetensors", f"{kind} melody adapter of tiny")
       for name, kind in (("tiny-control-melody", "MuseControlLite"), ("tiny-controlnet-melody", "ControlNet"))},
    "tiny-control-audio": register_shipped(
        "tiny-control-audio", SHIPPED_DIR / "tiny-control-audio", "adapter.safetensors",
        "MuseControlLite audio (in/outpainting) adapter of tiny",
    ),
}


def weight_files() -> list[WeightFile]:
    """The reference models' registered weight files (what ``t2mbench weights`` lists for them)."""
    return [wf for wf in WEIGHTS.values() if wf is not None]


SAT_PREFIXES = ("model.model.", "conditioner.conditioners.", "pretransform.model.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or of a torch checkpoint (``.ckpt``/``.pt``/``.pth``,
    read with ``weights_only=True``; a Lightning-style ``{"state_dict": ...}`` is unwrapped)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such checkpoint file")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except Exception as e:  # noqa: BLE001 - any decoder failure means an unusable file
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise WeightsError(f"{p}: not a readable checkpoint ({type(e).__name__}: {first})") from None
    obj = load_torch_file(p, what="this checkpoint")
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{p}: expected a state dict of tensors (or {{'state_dict': ...}})")
    return dict(obj)


def _derived(key: str, shape: torch.Size) -> torch.Tensor | None:
    """Values of the buffers a checkpoint may leave out: RoPE ``inv_freq`` and the zero
    ``beta`` of the bias-free LayerNorms."""
    if key.endswith("rotary_pos_emb.inv_freq"):
        dim = 2 * shape[0]
        return 1.0 / (10000.0 ** (torch.arange(0, dim, 2).float() / dim))
    if key.endswith("norm.beta"):
        return torch.zeros(shape)
    return None


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike | Mapping[str, torch.Tensor], *, strict: bool = True
) -> nn.Module:
    """Load a stable-audio-tools-layout checkpoint (file path or state dict) into ``model``.

    Tensors are cast to the dtype of the parameter they replace and assigned (a model built
    on the meta device is materialised without a second copy). Derived buffers absent from
    the file are recomputed. With ``strict``, missing or unexpected keys and shape
    mismatches raise :class:`WeightsError` listing them.
    """
    state = read_state_dict(path) if not isinstance(path, Mapping) else dict(path)
    own = model.state_dict(keep_vars=True)
    where = path if not isinstance(path, Mapping) else "state dict"
    bad_shape = [
        f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    unexpected = sorted(set(state) - set(own))
    for k in sorted(set(own) - set(state)):
        value = _derived(k, own[k].shape)
        if value is not None:
            state[k] = value
    missing = sorted(set(own) - set(state))
    problems = []
    if bad_shape:
        problems.append("shape mismatches: " + "; ".join(bad_shape[:8]))
    if strict and missing:
        problems.append(f"{len(missing)} missing keys, e.g. " + ", ".join(missing[:8]))
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected keys, e.g. " + ", ".join(unexpected[:8]))
    if problems:
        raise WeightsError(
            f"{where}: checkpoint does not fit the model ({'; '.join(problems)}); is it the right model?"
        )
    cast = {k: v.to(own[k].dtype) for k, v in state.items() if k in own}
    model.load_state_dict(cast, strict=strict, assign=True)
    return model


# ---- diffusers names -------------------------------------------------------------------

# DiT name fragments, stable-audio-tools <-> diffusers ("^"/"$" anchor, "{n}" a block index)
_DIT_NAMES = [
    ("^timestep_features.", "^time_proj."),
    ("^to_timestep_embed.", "^timestep_proj."),
    ("^to_global_embed.", "^global_proj."),
    ("^to_cond_embed.", "^cross_attention_proj."),
    ("^transformer.project_in.", "^proj_in."),
    ("^transformer.project_out.", "^proj_out."),
    ("^transformer.layers.{n}.", "^transformer_blocks.{n}."),
    (".pre_norm.gamma$", ".norm1.weight$"), (".pre_norm.beta$", ".norm1.bias$"),
    (".cross_attend_norm.gamma$", ".norm2.weight$"), (".cross_attend_norm.beta$", ".norm2.bias$"),
    (".ff_norm.gamma$", ".norm3.weight$"), (".ff_norm.beta$", ".norm3.bias$"),
    (".self_attn.", ".attn1."), (".cross_attn.", ".attn2."),
    (".to_out.weight$", ".to_out.0.weight$"),
    (".ff.ff.", ".ff.net."),
]  # fmt: skip


def _rule(src: str, dst: str) -> tuple[str, str]:
    """(regex, replacement) turning fragment ``src`` into ``dst``."""
    pattern = re.escape(src.strip("^$")).replace(r"\{n\}", r"(\d+)")
    pattern = ("^" if src.startswith("^") else "") + pattern + ("$" if src.endswith("$") else "")
    return pattern, dst.strip("^$").replace("{n}", r"\1")


_DIT_TO_DIFFUSERS = [_rule(a, b) for a, b in _DIT_NAMES]
_DIT_FROM_DIFFUSERS = [_rule(b, a) for a, b in _DIT_NAMES]
_NUMBERS = {"seconds_start": "start_number_conditioner", "seconds_total": "end_number_conditioner"}
_RU = ("snake1", "conv1", "snake2", "conv2")
_ENC_BLOCK = ("res_unit1", "res_unit2", "res_unit3", "snake1", "conv1")
_DEC_BLOCK = ("snake1", "conv_t1", "res_unit1", "res_unit2", "res_unit3")


def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def _vae_key_to_diffusers(key: str, depth: dict[str, int]) -> str:
    part, idx, rest = re.match(r"^(encoder|decoder)\.layers\.(\d+)\.(.*)$", key).groups()
    i, n = int(idx), depth[part]
    if i == 0:
        return f"{part}.conv1.{rest}"
    if i == n + 1:
        return f"{part}.snake1.{rest}"
    if i == n + 2:
        return f"{part}.conv2.{rest}"
    names = _ENC_BLOCK if part == "encoder" else _DEC_BLOCK
    j, rest = re.match(r"^layers\.(\d+)\.(.*)$", rest).groups()
    sub = names[int(j)]
    if sub.startswith("res_unit"):
        k, rest = re.match(r"^layers\.(\d+)\.(.*)$", rest).groups()
        sub = f"{sub}.{_RU[int(k)]}"
    return f"{part}.block.{i - 1}.{sub}.{rest}"


def _vae_key_from_diffusers(key: str, depth: dict[str, int]) -> str:
    part, rest = key.split(".", 1)
    top = {"conv1": 0, "snake1": depth[part] + 1, "conv2": depth[part] + 2}
    head, tail = rest.split(".", 1)
    if head in top:
        return f"{part}.layers.{top[head]}.{tail}"
    b, sub, tail = re.match(r"^block\.(\d+)\.([a-z_0-9]+)\.(.*)$", rest).groups()
    names = _ENC_BLOCK if part == "encoder" else _DEC_BLOCK
    out = f"{part}.layers.{int(b) + 1}.layers.{names.index(sub)}."
    if sub.startswith("res_unit"):
        ru, tail = tail.split(".", 1)
        out += f"layers.{_RU.index(ru)}."
    return out + tail


def _vae_depth(keys: list[str], pattern: str) -> dict[str, int]:
    depth = {}
    for part in ("encoder", "decoder"):
        idx = [int(m.group(1)) for k in keys if (m := re.match(pattern.format(part=part), k))]
        if not idx:
            raise WeightsError(f"no {part} keys in the VAE state dict")
        depth[part] = max(idx)
    return depth


def to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Split a stable-audio-tools state dict into diffusers components:
    ``{"transformer": ..., "vae": ..., "projection_model": ...}``.

    The fused ``to_qkv`` / ``to_kv`` are split into ``to_q``/``to_k``/``to_v``, the timestep
    Fourier weight is squeezed to ``[128]``, snake parameters become ``[1, C, 1]``; RoPE
    ``inv_freq`` is dropped (diffusers recomputes it). Models with qk-norm (SAO-small) have
    no diffusers equivalent and raise :class:`WeightsError`.
    """
    dit, vae, proj = {}, {}, {}
    if any(k.endswith(("q_norm.weight", "k_norm.weight")) for k in state):
        raise WeightsError("qk-norm models (e.g. sao-small) have no diffusers StableAudioDiTModel equivalent")
    vae_keys = [k[len("pretransform.model.") :] for k in state if k.startswith("pretransform.model.")]
    depth = _vae_depth(vae_keys, r"^{part}\.layers\.(\d+)\.") if vae_keys else {}
    depth = {p: d - 2 for p, d in depth.items()}
    for key, value in state.items():
        if key.startswith("model.model."):
            k = key[len("model.model.") :]
            if k.endswith("rotary_pos_emb.inv_freq"):
                continue
            k = _rename(k, _DIT_TO_DIFFUSERS)
            if k.endswith("attn1.to_qkv.weight"):
                for name, part in zip("qkv", value.chunk(3, dim=0)):
                    dit[k.replace("to_qkv", f"to_{name}")] = part
            elif k.endswith("attn2.to_kv.weight"):
                for name, part in zip("kv", value.chunk(2, dim=0)):
                    dit[k.replace("to_kv", f"to_{name}")] = part
            else:
                dit[k] = value[:, 0] if k == "time_proj.weight" else value
        elif key.startswith("pretransform.model."):
            k = _vae_key_to_diffusers(key[len("pretransform.model.") :], depth)
            vae[k] = value[None, :, None] if k.endswith((".alpha", ".beta")) else value
        elif key.startswith("conditioner.conditioners."):
            cid, rest = key[len("conditioner.conditioners.") :].split(".", 1)
            if cid in _NUMBERS:
                proj[f"{_NUMBERS[cid]}.{rest.replace('embedder.embedding.', 'time_positional_embedding.')}"] = value
            else:
                proj[f"text_projection.{rest.replace('proj_out.', '')}"] = value
        else:
            raise WeightsError(f"unexpected key {key!r}: not under {', '.join(SAT_PREFIXES)}")
    return {"transformer": dit, "vae": vae, "projection_model": proj}


def from_diffusers(
    components: Mapping[str, Mapping[str, torch.Tensor]], prompt_id: str = "prompt"
) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_diffusers` (without ``inv_freq``, which
    :func:`load_checkpoint` recomputes)."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for k, value in components.get("transformer", {}).items():
        m = re.match(r"^(.*\.attn([12]))\.to_([qkv])\.weight$", k)
        if m and not (m.group(2) == "2" and m.group(3) == "q"):
            fused.setdefault(m.group(1), {})[m.group(3)] = value
            continue
        key = _rename(k, _DIT_FROM_DIFFUSERS)
        out["model.model." + key] = value[:, None] if key == "timestep_features.weight" else value
    for prefix, parts in fused.items():
        key = "model.model." + _rename(prefix + ".", _DIT_FROM_DIFFUSERS)[:-1]
        if "q" in parts:
            out[key + ".to_qkv.weight"] = torch.cat([parts["q"], parts["k"], parts["v"]])
        else:
            out[key + ".to_kv.weight"] = torch.cat([parts["k"], parts["v"]])
    vae = components.get("vae", {})
    if vae:
        depth = _vae_depth(list(vae), r"^{part}\.block\.(\d+)\.")
        depth = {p: d + 1 for p, d in depth.items()}
        for k, value in vae.items():
            key = "pretransform.model." + _vae_key_from_diffusers(k, depth)
            out[key] = value[0, :, 0] if k.endswith((".alpha", ".beta")) else value
    numbers = {v: k for k, v in _NUMBERS.items()}
    for k, value in components.get("projection_model", {}).items():
        head, rest = k.split(".", 1)
        if head in numbers:
            rest = rest.replace("time_positional_embedding.", "embedder.embedding.")
            out[f"conditioner.conditioners.{numbers[head]}.{rest}"] = value
        else:
            out[f"conditioner.conditioners.{prompt_id}.proj_out.{rest}"] = value
    return out


def load_vae_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike,
                   config_name: str) -> None:  # fmt: skip
    """Load a trained VAE's ``state`` (e.g. a ``t2mbench train vae`` run's ema.safetensors) into
    ``model.pretransform.model``; another network's file is one WeightsError naming ``source``."""
    try:
        model.pretransform.model.load_state_dict(state)
    except RuntimeError as e:
        raise WeightsError(
            f"{source}: not a VAE of {config_name} ({' '.join(str(e).split())[:160]}); pass the "
            "ema.safetensors of a `t2mbench train vae` run on this config"
        ) from None
