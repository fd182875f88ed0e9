"""Text-to-audio generation with a :class:`~t2mbench.reference_models.model.LatentDiffusionModel`: the
Python API behind ``t2mbench generate``, so that bench code never shells out.

Pipeline per batch: text encoding (conditioners) -> denoising (a sampler of
:mod:`t2mbench.reference_models.samplers`, classifier-free guidance batched with the conditional
branch by :mod:`t2mbench.reference_models.guidance`) -> decoding (VAE), each stage timed.

Variable length: only the latents that ``seconds`` needs are generated,
L = ⌈seconds·sample_rate / downsampling_ratio⌉ (rounded up to whole DiT patches), and the audio is cut to
round(seconds·sample_rate) samples. stable-audio-tools and diffusers always denoise the full
training window (1024 latents for SAO-1.0) and crop afterwards; for a 10 s clip on SAO-1.0
that is 216 latents instead of 1024, ~4.7× less DiT work per step (more in attention, which
is quadratic) and ~4.7× less decoding. ``full_window=True`` reproduces the reference
behaviour (the DiT then sees the same sequence length it was trained on).

Seeding: clip i (0-based, over the whole prompt list) draws its initial noise, and the
per-step noise of the samplers that take a noise sampler (``SamplerInfo.takes_noise_sampler``: the
stochastic σ-space ones and ping-pong), from its own generator
seeded with ``seed + i``, so its audio does not depend on the batch size or on the other
prompts (DDPM and DDIM with η > 0 draw their step noise batch-wide from a generator seeded
with ``seed + first index of the batch``).
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2mbench.core.devices import resolve_device
from t2mbench.core.errors import ChecksumError, ConfigError, MissingWeightsError
from t2mbench.core.weights import hash_file, resolve
from t2mbench.reference_models.adapters.guidance import ControlInputs
from t2mbench.reference_models.checkpoints import load_checkpoint
from t2mbench.reference_models.conditioners import TextConditioner
from t2mbench.reference_models.factory import CONFIG_FILENAME, build, load_config
from t2mbench.reference_models.guidance import GuidedModel, null_condition
from t2mbench.reference_models.model import LatentDiffusionModel
from t2mbench.reference_models.samplers import Grid, NFECounter, Sampler
from t2mbench.reference_models.samplers import resolve as resolve_sampler
from t2mbench.reference_models.samplers.registry import DISCRETE_SPACING, DISCRETE_T

STAGES = ("text_encoding", "denoising", "decoding")
CHECKPOINT_NAMES = ("model.safetensors", "model.ckpt")


@dataclass
class GenerationResult:
    """Generated audio and how it was made.

    ``audio``: float32 ``[N, C, T]`` on the CPU at ``sample_rate`` Hz, in prompt order; None when generated
    with ``decode=False`` (latents only).
    ``nfe``: model evaluations per clip (a batched CFG call counts once).
    ``timings``: seconds per stage (``text_encoding``, ``denoising``, ``decoding``) summed over
    batches, plus ``total``. ``settings``: every setting that shaped the audio.
    ``latents``: the sampler's output x0, float32 ``[N, latent_channels, latent_length]`` on the CPU
    in the DiT's latent space (before the VAE decoder), in prompt order.
    """

    audio: torch.Tensor | None
    sample_rate: int
    nfe: int
    timings: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    latents: torch.Tensor | None = None


def checkpoint_path(
    model: LatentDiffusionModel, source: str | os.PathLike, checkpoint: str | os.PathLike | None, *,
    verify: bool = True,
) -> Path:
    """The checked weight file for ``model``: ``checkpoint`` if given, else ``model.safetensors`` /
    ``model.ckpt`` beside a config folder, else the registered file of the model
    (:class:`~t2mbench.core.errors.MissingWeightsError` naming the file and where to put it).

    One policy for every path: with ``verify`` the file must be the model's published or shipped
    one (its sha256; :class:`~t2mbench.core.errors.ChecksumError` otherwise), and a model that
    registers no weights has nothing to check a file against, so its file loads only with
    ``verify=False``: a user's own file (a fine-tune, a conversion) is loaded on purpose."""
    path = Path(checkpoint) if checkpoint is not None else None
    folder = Path(source)
    if folder.is_file() and folder.name == CONFIG_FILENAME:
        folder = folder.parent
    if path is None and folder.is_dir():
        path = next((folder / n for n in CHECKPOINT_NAMES if (folder / n).is_file()), None)
    if model.info.weights is not None:
        return resolve(model.info.weights, path, verify=verify)
    if path is None:
        raise ConfigError(f"model {model.info.name!r} names no weights; pass a checkpoint path")
    if not path.is_file():
        raise MissingWeightsError(f"checkpoint {path} not found")
    if verify:
        raise ChecksumError(
            f"{path}: model {model.info.name!r} registers no published weights to check this file against; to load "
            "your own file on purpose (a fine-tune, a conversion), pass --no-verify (verify=False in the API)"
        )
    return path


def load_model(
    name_or_path: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    text_encoder: str | os.PathLike | None = None,
    verify: bool = True,
) -> LatentDiffusionModel:
    """Build a model (shipped config name, JSON file or folder with ``model_config.json``) on
    the meta device and load its weights straight onto ``device`` in ``dtype``.

    ``verify``: the weight file must be the model's published or shipped one
    (:func:`checkpoint_path`); ``False`` loads another file on purpose. Either way its path and
    sha256 are recorded in ``model.checkpoint`` (with ``verified``).

    ``text_encoder``: a folder with the prompt encoder's Hugging Face files (T5 for the SAO
    models), instead of ``$T2MBENCH_HOME/weights/<name>/`` or the Hugging Face cache.
    """
    device = resolve_device(device)
    model = build(name_or_path, device="meta", dtype=dtype)
    path = checkpoint_path(model, name_or_path, checkpoint, verify=verify)
    load_checkpoint(model, path)
    model.checkpoint = {"path": str(path), "sha256": hash_file(path), "verified": verify}
    if text_encoder is not None:
        for conditioner in model.conditioner.conditioners.values():
            if isinstance(conditioner, TextConditioner):
                conditioner.encoder.path = text_encoder
    return model.to(device)


def default_cfg_scale(model: LatentDiffusionModel | str) -> float:
    """The CFG scale a model generates with when none is given: its config's
    ``t2mbench.generation.cfg_scale`` (1.0, no guidance, when unset). ``model``: a loaded
    model or a config name / path."""
    if isinstance(model, LatentDiffusionModel):
        generation = model.info.generation
    else:
        generation = load_config(model)[1].get("t2mbench", {}).get("generation", {})
    return float(generation.get("cfg_scale", 1.0))


def latent_length(model: LatentDiffusionModel, seconds: float, full_window: bool = False) -> int:
    """Latent frames to denoise for ``seconds`` of audio (the whole window with ``full_window``),
    rounded up to whole DiT patches."""
    if not 0 < seconds <= model.max_seconds + 1e-9:
        raise ConfigError(
            f"seconds must be in (0, {model.max_seconds:.2f}] for {model.info.name} (its window), got {seconds}"
        )
    window = model.info.sample_size // model.downsampling_ratio
    if full_window:
        return window
    patch = model.dit.patch_size
    frames = math.ceil(round(seconds * model.sample_rate) / model.downsampling_ratio)
    return min(window, math.ceil(frames / patch) * patch)


@dataclass(frozen=True)
class Settings:
    """The sampling settings of a :func:`generate` call, resolved and validated: the ``sampler`` for the model's
    objective, its ``grid`` (steps, σ range), the CFG scale and the sampler's ``options`` (as given, checked)."""

    sampler: Sampler
    grid: Grid
    cfg_scale: float
    options: dict[str, Any]


def resolve_settings(
    model: LatentDiffusionModel,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    sampler_options: Mapping[str, Any] | None = None,
) -> Settings:
    """:class:`Settings` from the arguments of :func:`generate`, None taking the model config's
    ``t2mbench.generation`` value. ConfigError for an unknown sampler, one that does not fit the model's objective,
    a bad option, steps that are not an integer >= 1 (an explicit 0 included), a CFG scale that is not a finite
    number >= 0."""
    defaults = model.info.generation
    steps = steps if steps is not None else defaults.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    cfg_scale = float(cfg_scale if cfg_scale is not None else default_cfg_scale(model))
    if not (math.isfinite(cfg_scale) and cfg_scale >= 0):
        raise ConfigError(f"cfg_scale must be a finite number >= 0, got {cfg_scale}")
    chosen = resolve_sampler(sampler if sampler is not None else defaults.get("sampler"), model.objective.name)
    given = [k for k, v in (("sigma_min", sigma_min), ("sigma_max", sigma_max)) if v is not None]
    if given and chosen.info.space == "discrete":  # it would be silently ignored
        raise ConfigError(f"{' and '.join(given)} set, but sampler {chosen.name!r} steps over the model's discrete "
                          "timesteps, which no sigma range bounds; drop it or choose a sigma sampler")  # fmt: skip
    grid = Grid(
        int(steps),
        float(sigma_min if sigma_min is not None else defaults.get("sigma_min", 0.3)),
        float(sigma_max if sigma_max is not None else defaults.get("sigma_max", 500.0)),
    )
    return Settings(chosen, grid, cfg_scale, chosen.check_options(sampler_options))


def _condition(
    model: LatentDiffusionModel,
    prompts: list[str],
    negative_prompts: list[str] | None,
    *,
    seconds: float,
    seconds_start: float,
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """The conditioning of a batch of ``prompts`` (``cross_attn_cond`` ``[B, S, D]``, ``global_cond`` ``[B, D']``),
    and the unconditional branch's: the negative prompts' embeddings in the null condition, or None (CFG's null
    condition)."""
    n = len(prompts)
    inputs = {"prompt": prompts, "seconds_start": [seconds_start] * n, "seconds_total": [seconds] * n}
    cross, glob = model.condition({k: inputs[k] for k in model.conditioner.ids}, device)
    cond = {"cross_attn_cond": cross, "global_cond": glob}
    if negative_prompts is None:
        return cond, None
    negative = dict(inputs, prompt=negative_prompts)
    neg_cross, _ = model.condition({k: negative[k] for k in model.conditioner.ids}, device)
    return cond, null_condition(cond, negative=neg_cross)


def _clip_noise(generators: Sequence[torch.Generator], shape: tuple[int, ...]) -> torch.Tensor:
    """One N(0, I) draw of ``shape`` per clip, each from its own generator: ``[len(generators), *shape]``."""
    return torch.cat([torch.randn((1, *shape), generator=g) for g in generators])


def _denoise(
    model: LatentDiffusionModel,
    settings: Settings,
    cond: dict[str, torch.Tensor],
    uncond: dict[str, torch.Tensor] | None,
    generators: Sequence[torch.Generator],
    length: int,
    device: torch.device,
    callback: Callable[[dict[str, Any]], None] | None,
    control: ControlInputs | None = None,
    rows: slice = slice(None),
) -> tuple[torch.Tensor, int]:
    """Latents x0 ``[B, C, length]`` sampled with CFG from per-clip unit noise (clip i's from ``generators[i]``,
    its per-step noise too when the sampler takes a noise sampler; batch-wide noise from ``generators[0]``), and
    the model evaluations per clip."""
    noise = _clip_noise(generators, (model.latent_channels, length)).to(device)
    objective = "rectified_flow" if model.objective.name in ("rectified_flow", "rf_denoiser") else "v"
    if control is None:
        guided = NFECounter(GuidedModel(model, cond, uncond, scale=settings.cfg_scale, objective=objective))
    else:
        guided = NFECounter(control.guided(cond, uncond, rows, length, settings.cfg_scale, objective=objective))
    latents = settings.sampler(
        guided, noise, settings.grid, generator=generators[0], callback=callback, options=settings.options,
        noise_sampler=lambda sigma, sigma_next: _clip_noise(generators, noise.shape[1:]).to(noise),
    )  # fmt: skip
    return latents, guided.nfe


def _decode(model: LatentDiffusionModel, latents: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Audio ``[B, channels, n_samples]``, float32 on the CPU, from latents ``[B, C, L]`` (VAE in its own dtype)."""
    vae_dtype = next(model.pretransform.parameters()).dtype
    return model.pretransform.decode(latents.to(vae_dtype))[..., :n_samples].float().cpu()


def _timed(device: torch.device) -> Callable[[], float]:
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def _no_mark(stage: str) -> None:
    pass


def _record(model: LatentDiffusionModel, settings: Settings, **run: Any) -> dict[str, Any]:
    """The settings dict of a :class:`GenerationResult`: the sampling settings, the model, then ``run``'s items
    (clip length, seed, batching, device...), then the schedule the sampler's family steps over."""
    space = settings.sampler.info.space
    return {
        "sampler": settings.sampler.name,
        "steps": settings.grid.steps,
        "cfg_scale": settings.cfg_scale,
        "sigma_min": settings.grid.sigma_min,
        "sigma_max": settings.grid.sigma_max,
        "sampler_options": dict(settings.options),
        "model": model.info.name,
        "objective": model.objective.name,
        **run,
        "sample_rate": model.sample_rate,
        "channels": model.info.audio_channels,
        "dtype": str(model.dit.preprocess_conv.weight.dtype).removeprefix("torch."),  # the DiT's; sampler: float32
        "cfg_batched": True,
        "sigma_schedule": f"polyexponential rho={settings.grid.rho:g}" if space == "sigma" else None,
        "discrete_timesteps": f"{DISCRETE_SPACING}, T={DISCRETE_T}" if space == "discrete" else None,
    }


def generate(
    model: LatentDiffusionModel | str | os.PathLike,
    prompts: Sequence[str],
    *,
    sampler: str | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seconds: float,
    seed: int,
    batch_size: int = 1,
    negative_prompts: Sequence[str] | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    sampler_options: Mapping[str, Any] | None = None,
    seconds_start: float = 0.0,
    full_window: bool = False,
    device: torch.device | str = "cpu",
    callback: Callable[[dict[str, Any]], None] | None = None,
    stage_hook: Callable[[str], None] | None = None,
    control: ControlInputs | None = None,
    decode: bool = True,
) -> GenerationResult:
    """Generate ``len(prompts)`` clips of ``seconds`` seconds.

    Args:
        model: a built model with weights, or a name/path for :func:`load_model`.
        prompts: text prompts.
        sampler, steps, cfg_scale, sigma_min, sigma_max: sampling settings; None takes the
            model's recommended value (its config's ``t2mbench.generation``). For v models
            ``sigma_min``/``sigma_max`` bound the k-diffusion σ schedule (polyexponential,
            ρ = 1, as stable-audio-tools); for rectified-flow samplers ``sigma_max`` ≤ 1 is
            the start time.
        seconds: clip length (also the ``seconds_total`` conditioning).
        seed: clip i uses ``seed + i``.
        batch_size: clips per DiT batch (CFG doubles the batch the DiT sees).
        negative_prompts: one per prompt; their embeddings replace the null condition.
        sampler_options: the sampler's keyword options (``SamplerInfo.options``, e.g. ``{"eta": 0.5}`` for
            ``ddim``, ``{"variance": "fixed_large"}`` for ``ddpm``); unset ones take their defaults.
        seconds_start: the ``seconds_start`` conditioning (SAO-1.0-style models).
        full_window: denoise the model's whole window, as the reference pipelines do.
        device: where to run (the model is moved there).
        callback: called after every sampler step with the sampler's info dict plus ``batch``.
        stage_hook: called with ``"text_encoding"``, ``"denoising"``, ``"decoding"`` as each stage of a batch
            starts and ``"done"`` when its decoding ends (a timing harness marks clock events there:
            :mod:`t2mbench.bench.timing`).
        control: generate with a control adapter (:class:`~t2mbench.reference_models.adapters.guidance.ControlInputs`;
            ``model`` must be its ``model.base``): multi-condition guidance with ``cfg_scale`` on the text; or an
            audio prompt (:class:`~t2mbench.reference_models.adapters.ap_adapter.AudioPromptInputs`): one CFG scale.
        decode: False skips the VAE decoder: only the latents are returned (``audio`` is None, decoding 0 s), for
            scores in the DiT's latent space.

    Returns:
        :class:`GenerationResult`.
    """
    if not isinstance(model, LatentDiffusionModel):
        model = load_model(model, device=device)
    if not prompts:
        raise ConfigError("no prompts to generate")
    if control is not None and control.model.base is not model:
        raise ConfigError("the control adapter belongs to another model: build it on the model that generates")
    if negative_prompts is not None and len(negative_prompts) != len(prompts):
        raise ConfigError(f"{len(negative_prompts)} negative prompts for {len(prompts)} prompts; give one per prompt")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch size must be an integer >= 1, got {batch_size!r}")
    settings = resolve_settings(
        model, sampler=sampler, steps=steps, cfg_scale=cfg_scale, sigma_min=sigma_min, sigma_max=sigma_max,
        sampler_options=sampler_options,
    )  # fmt: skip
    device = resolve_device(device)
    model.to(device)
    length = latent_length(model, seconds, full_window)
    n_samples = round(seconds * model.sample_rate)
    now = _timed(device)
    mark = stage_hook if stage_hook is not None else _no_mark
    timings = dict.fromkeys(STAGES, 0.0)
    outputs, latent_parts, nfe = [], [], 0
    start = now()
    with torch.inference_mode():
        for b0 in range(0, len(prompts), batch_size):
            batch = slice(b0, b0 + batch_size)
            chunk = list(prompts[batch])
            mark("text_encoding")
            t0 = now()
            cond, uncond = _condition(
                model, chunk, None if negative_prompts is None else list(negative_prompts[batch]),
                seconds=seconds, seconds_start=seconds_start, device=device,
            )  # fmt: skip
            t1 = now()
            mark("denoising")
            generators = [torch.Generator().manual_seed(seed + b0 + i) for i in range(len(chunk))]
            step_cb = None if callback is None else (lambda info, b=b0 // batch_size: callback({**info, "batch": b}))
            latents, nfe = _denoise(model, settings, cond, uncond, generators, length, device, step_cb, control, batch)
            t2 = now()
            mark("decoding")
            if decode:
                outputs.append(_decode(model, latents, n_samples))
            mark("done")
            t3 = now()
            latent_parts.append(latents.float().cpu())
            for stage, elapsed in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2)):
                timings[stage] += elapsed
    timings["total"] = now() - start
    record = _record(
        model, settings, seconds=float(seconds), seconds_start=float(seconds_start), seed=int(seed),
        batch_size=int(batch_size), negative_prompts=None if negative_prompts is None else list(negative_prompts),
        latent_length=length, full_window=full_window, samples=n_samples, device=str(device),
    )  # fmt: skip
    audio = torch.cat(outputs) if decode else None
    return GenerationResult(audio, model.sample_rate, nfe, timings, record, torch.cat(latent_parts))
