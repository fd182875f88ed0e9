"""Control inputs from files: what ``t2mbench generate --control NAME=PATH --control-scale NAME=VALUE`` builds.

``PATH`` is one audio file (its condition is used for every prompt) or a clip set (a folder or manifest, e.g. a
corpus): prompt ``id`` takes the clip with that id. The condition is extracted at the model's rate and latent
grid (:mod:`.conditions`) from the first ``seconds`` of the audio (mono mix for mono models).

``--control audio=PATH --inpaint START:END`` is MuseControlLite's in/outpainting with the shipped audio-only
adapter: the reference's clean VAE latents (posterior mean, in the model's latent scale) are the audio
condition, masked to zero on ``[START, END)`` seconds, the region to generate (spec §1.4); outpainting is
the same span at the clip's end (or start). Its guidance scale w_a defaults to 1.0 (upstream's w_audio).
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
from t2mbench.reference_models.adapters.model import (
    AUDIO_ADAPTER,
    KINDS,
    inpainting_masks,
    load_adapter,
    load_shipped_adapter,
    span_frames,
)
from t2mbench.reference_models.generate import latent_length
from t2mbench.reference_models.model import LatentDiffusionModel

DEFAULT_SCALE = 2.0
DEFAULT_AUDIO_SCALE = 1.0  # MuseControlLite's w_audio
CONTROLS = (*sorted(EXTRACTORS), "audio")


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if not sep or not name or not rest:
            raise ConfigError(f"{option} takes NAME=VALUE, got {v!r}")
        if name not in CONTROLS:
            raise ConfigError(f"{option}: unknown control {name!r}; known: {', '.join(CONTROLS)}")
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
    if name == "audio":  # the clean latents [C, frames]
        with torch.inference_mode():
            return model.pretransform.encode(torch.from_numpy(audio).float()[None], sample=False)[0].numpy()
    return EXTRACTORS[name](audio, model.sample_rate, model.downsampling_ratio, frames)


def _region(inpaint: str, model: LatentDiffusionModel, seconds: float) -> tuple[int, int]:
    """Latent frames ``[a, b)`` of ``--inpaint START:END`` (seconds), checked against the clip's ``seconds``."""
    start, sep, end = inpaint.partition(":")
    try:
        a, b = float(start), float(end)
    except ValueError:
        a = b = math.nan
    if not sep or not (math.isfinite(a) and math.isfinite(b)):
        raise ConfigError(f"--inpaint takes START:END in seconds, got {inpaint!r}")
    if b <= a:
        raise ConfigError(f"--inpaint {inpaint}: END must be after START")
    if a < 0 or b > seconds:
        raise ConfigError(f"--inpaint {inpaint}: the span must lie inside the clip, 0..{seconds:g} s")
    hop, sr = model.downsampling_ratio, model.sample_rate
    region = span_frames(a, b, sr, hop, latent_length(model, seconds))
    if region[0] == region[1]:
        raise ConfigError(f"--inpaint {inpaint}: the span covers no latent frame ({hop / sr:g} s each)")
    return region


def control_inputs(model: LatentDiffusionModel, ids: Sequence[str], seconds: float, controls: Sequence[str],
                   scales: Sequence[str] = (), kind: str = "musecontrollite", inpaint: str | None = None
                   ) -> ControlInputs:
    """:class:`ControlInputs` for prompts ``ids`` from ``--control NAME=PATH`` and ``--control-scale NAME=VALUE``
    strings, with the shipped ``kind`` adapter on ``model`` (the shipped ``tiny``), or with ``--control audio``
    and ``inpaint`` (``--inpaint START:END``) the shipped audio adapter (module doc)."""
    paths = _pairs(controls, "--control")
    audio = "audio" in paths
    if inpaint is not None and not audio:
        raise ConfigError("--inpaint needs --control audio=PATH (the reference audio around the region to generate)")
    if audio and inpaint is None:
        raise ConfigError("--control audio needs --inpaint START:END (the region to generate, in seconds)")
    if audio and len(paths) > 1:
        raise ConfigError("--control audio takes no other control (the audio adapter is trained alone, as "
                          "MuseControlLite's audio-only adapter)")
    if audio and kind != "musecontrollite":
        raise ConfigError(f"--control audio uses the MuseControlLite audio adapter; the {kind} has no audio branch")
    region = _region(inpaint, model, seconds) if audio else None
    raw_scales = _pairs(scales, "--control-scale")
    extra = sorted(set(raw_scales) - set(paths))
    if extra:
        raise ConfigError(f"--control-scale {extra[0]} has no --control {extra[0]}=PATH")
    scale = {}
    for name in paths:
        try:
            scale[name] = float(raw_scales.get(name, DEFAULT_AUDIO_SCALE if name == "audio" else DEFAULT_SCALE))
        except ValueError:
            raise ConfigError(f"--control-scale {name}={raw_scales[name]!r} is not a number") from None
        if not math.isfinite(scale[name]):
            raise ConfigError(f"--control-scale {name} must be finite, got {raw_scales[name]}")
    if kind not in KINDS:
        raise ConfigError(f"--adapter must be one of {', '.join(KINDS)}, got {kind!r}")
    if model.info.name != "tiny":
        raise ConfigError(f"controls need a trained adapter; t2mbench ships them for tiny only, not {model.info.name}")
    adapted = load_shipped_adapter(model, AUDIO_ADAPTER) if audio else load_adapter(model, kind)
    if adapted is None:
        raise ConfigError(f"no trained {'audio' if audio else kind} adapter in this installation (see README: Control)")
    unsupported = sorted(set(paths) - set(adapted.controls))
    if unsupported:
        raise ConfigError(f"the {kind} adapter controls {', '.join(adapted.controls)}, not {', '.join(unsupported)}")
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
    masks = {} if region is None else {"audio": inpainting_masks(len(ids), frames, region)["audio_mask"]}
    return ControlInputs(adapted, features, scale, masks)
