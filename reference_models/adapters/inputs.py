"""Control inputs from files: what ``t2mbench generate --control NAME=PATH --control-scale NAME=VALUE`` builds.

``PATH`` is one audio file (its condition is used for every prompt) or a clip set (a folder or manifest, e.g. a
corpus): prompt ``id`` takes the clip with that id. The condition is extracted at the model's rate and latent
grid (:mod:`.conditions`) from the first ``seconds`` of the audio (mono mix for mono models).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from t2mbench.core.audio import load_audio
from t2mbench.core.errors import ConfigError, ManifestError
from t2mbench.core.manifest import load_clipset
from t2mbench.reference_models.adapters.conditions import EXTRACTORS
from t2mbench.reference_models.adapters.guidance import ControlInputs
from t2mbench.reference_models.adapters.model import KINDS, load_adapter
from t2mbench.reference_models.generate import latent_length
from t2mbench.reference_models.model import LatentDiffusionModel

DEFAULT_SCALE = 2.0


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if not sep or not name or not rest:
            raise ConfigError(f"{option} takes NAME=VALUE, got {v!r}")
        if name not in EXTRACTORS:
            raise ConfigError(f"{option}: unknown control {name!r}; known: {', '.join(sorted(EXTRACTORS))}")
        if name in out:
            raise ConfigError(f"{option}: {name} given twice")
        out[name] = rest
    return out


def _condition(name: str, path: Path, model: LatentDiffusionModel, frames: int) -> np.ndarray:
    policy = "mono" if model.info.audio_channels == 1 else "stereo"
    try:
        audio, _ = load_audio(path, sample_rate=model.sample_rate, channels=policy)
    except Exception as e:  # noqa: BLE001 - any decoding failure is the user's file
        raise ManifestError(f"--control {name}: cannot read audio {path} ({' '.join(str(e).split())[:120]})") from None
    need = frames * model.downsampling_ratio
    audio = np.pad(audio[..., :need], ((0, 0), (0, max(0, need - audio.shape[-1]))))
    return EXTRACTORS[name](audio, model.sample_rate, model.downsampling_ratio, frames)


def control_inputs(model: LatentDiffusionModel, ids: Sequence[str], seconds: float, controls: Sequence[str],
                   scales: Sequence[str] = (), kind: str = "musecontrollite") -> ControlInputs:
    """:class:`ControlInputs` for prompts ``ids`` from ``--control NAME=PATH`` and ``--control-scale NAME=VALUE``
    strings, with the shipped ``kind`` adapter on ``model`` (the shipped ``tiny``)."""
    paths = _pairs(controls, "--control")
    raw_scales = _pairs(scales, "--control-scale")
    extra = sorted(set(raw_scales) - set(paths))
    if extra:
        raise ConfigError(f"--control-scale {extra[0]} has no --control {extra[0]}=PATH")
    scale = {}
    for name in paths:
        try:
            scale[name] = float(raw_scales.get(name, DEFAULT_SCALE))
        except ValueError:
            raise ConfigError(f"--control-scale {name}={raw_scales[name]!r} is not a number") from None
        if not math.isfinite(scale[name]):
            raise ConfigError(f"--control-scale {name} must be finite, got {raw_scales[name]}")
    if kind not in KINDS:
        raise ConfigError(f"--adapter must be one of {', '.join(KINDS)}, got {kind!r}")
    if model.info.name != "tiny":
        raise ConfigError(f"controls need a trained adapter; t2mbench ships them for tiny only, not {model.info.name}")
    adapted = load_adapter(model, kind)
    if adapted is None:
        raise ConfigError(f"no trained {kind} adapter in this installation (see README: Control)")
    unsupported = sorted(set(paths) - set(adapted.conditions))
    if unsupported:
        raise ConfigError(f"the {kind} adapter controls {', '.join(adapted.conditions)}, not {', '.join(unsupported)}")
    frames = latent_length(model, seconds)
    features = {}
    for name, raw in paths.items():
        path = Path(raw)
        if path.is_file() and path.suffix not in (".jsonl", ".csv", ".parquet"):
            one = _condition(name, path, model, frames)
            features[name] = torch.from_numpy(np.stack([one] * len(ids)))
            continue
        if not path.exists():
            raise ManifestError(f"--control {name}: {path}: no such audio file or clip set")
        clips = {c.id: c for c in load_clipset(path)}
        missing = [i for i in ids if i not in clips]
        if missing:
            raise ManifestError(f"--control {name}: {path} has no clip for prompt ids {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''}")
        features[name] = torch.from_numpy(np.stack([_condition(name, clips[i].path, model, frames) for i in ids]))
    return ControlInputs(adapted, features, scale)
