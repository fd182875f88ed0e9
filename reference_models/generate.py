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
per-step noise of the stochastic σ-space and ping-pong samplers, from its own generator
seeded with ``seed + i``, so its audio does not depend on the batch size or on the other
prompts (DDPM and DDIM with η > 0 draw their step noise batch-wide from a generator seeded
with ``seed + first index of the batch``).
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from t2mbench.reference_models.checkpoints import load_checkpoint
from t2mbench.reference_models.conditioners import TextConditioner
from t2mbench.reference_models.factory import CONFIG_FILENAME, build, load_config
from t2mbench.reference_models.guidance import GuidedModel, null_condition
from t2mbench.reference_models.model import LatentDiffusionModel
from t2mbench.reference_models.samplers import (
    SAMPLERS,
    EpsDenoiser,
    NFECounter,
    RFDenoiser,
    continuous_time,
    get_sigmas,
    sample_rf,
    sample_v,
    timesteps,
    v_alpha_bar,
)

from t2mbench.core.errors import ConfigError
from t2mbench.core.weights import hash_file, resolve

STAGES = ("text_encoding", "denoising", "decoding")
DISCRETE_T = 1000
DISCRETE_SPACING = "trailing"  # starts at full noise (Lin et al. 2023); diffusers' default "leading" does not
CHECKPOINT_NAMES = ("model.safetensors", "model.ckpt")


@dataclass
class GenerationResult:
    """Generated audio and how it was made.

    ``audio``: float32 ``[N, C, T]`` on the CPU at ``sample_rate`` Hz, in prompt order.
    ``nfe``: model evaluations per clip (a batched CFG call counts once).
    ``timings``: seconds per stage (``text_encoding``, ``denoising``, ``decoding``) summed over
    batches, plus ``total``. ``settings``: every setting that shaped the audio.
    """

    audio: torch.Tensor
    sample_rate: int
    nfe: int
    timings: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(
    model: LatentDiffusionModel, source: str | os.PathLike, checkpoint: str | os.PathLike | None
) -> Path:
    """The weight file for ``model``: ``checkpoint`` if given, else ``model.safetensors`` /
    ``model.ckpt`` beside a config folder, else the registered file of the model
    (:class:`~t2mbench.core.errors.MissingWeightsError` naming the file and where to put it)."""
    if checkpoint is not None:
        return Path(checkpoint)
    folder = Path(source)
    if folder.is_file() and folder.name == CONFIG_FILENAME:
        folder = folder.parent
    if folder.is_dir():
        for name in CHECKPOINT_NAMES:
            if (folder / name).is_file():
                return folder / name
    if model.info.weights is None:
        raise ConfigError(f"model {model.info.name!r} names no weights; pass a checkpoint path")
    return resolve(model.info.weights)


def load_model(
    name_or_path: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    text_encoder: str | os.PathLike | None = None,
) -> LatentDiffusionModel:
    """Build a model (shipped config name, JSON file or folder with ``model_config.json``) on
    the meta device and load its weights straight onto ``device`` in ``dtype``.

    ``text_encoder``: a folder with the prompt encoder's Hugging Face files (T5 for the SAO
    models), instead of ``$T2MBENCH_HOME/weights/<name>/`` or the Hugging Face cache.
    """
    model = build(name_or_path, device="meta", dtype=dtype)
    path = checkpoint_path(model, name_or_path, checkpoint)
    load_checkpoint(model, path)
    model.checkpoint = {"path": str(path), "sha256": hash_file(path)}
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


def _clip_noise(generators: Sequence[torch.Generator], shape: tuple[int, ...]) -> torch.Tensor:
    return torch.cat([torch.randn((1, *shape), generator=g) for g in generators])


def _timed(device: torch.device) -> Callable[[], float]:
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def _sample(
    model: LatentDiffusionModel,
    guided: Callable,
    noise: torch.Tensor,
    generators: Sequence[torch.Generator],
    *,
    sampler: str,
    steps: int,
    sigma_min: float,
    sigma_max: float,
    callback: Callable | None,
) -> torch.Tensor:
    """Run ``sampler`` on the guided model from unit ``noise`` ``[B, C, L]``; returns x0."""
    info = SAMPLERS[sampler]
    objective = model.objective.name
    fn = info.fn
    extra: dict[str, Any] = {}
    if "noise_sampler" in inspect.signature(fn).parameters:
        extra["noise_sampler"] = lambda s, s_next: _clip_noise(generators, noise.shape[1:]).to(noise)
    batch_gen = generators[0]
    if objective == "v" and info.space in ("sigma", "v"):
        return sample_v(
            guided, noise, sampler=sampler, steps=steps, sigma_min=sigma_min, sigma_max=sigma_max,
            generator=batch_gen, callback=callback, **extra,
        )  # fmt: skip
    if objective in ("rectified_flow", "rf_denoiser") and info.space == "rf":
        return sample_rf(
            guided, noise, sampler=sampler, steps=steps, t_max=min(sigma_max, 1.0),
            generator=batch_gen, callback=callback, **extra,
        )  # fmt: skip
    if info.space == "discrete" and objective in ("v", "eps"):
        prediction = "v" if objective == "v" else "epsilon"
        model_t = continuous_time(guided, DISCRETE_T)
        ts = timesteps(DISCRETE_SPACING, steps, DISCRETE_T)
        return fn(
            model_t, noise, v_alpha_bar(DISCRETE_T), ts, prediction=prediction, generator=batch_gen, callback=callback
        )
    if info.space == "sigma" and objective != "v":
        denoiser = EpsDenoiser(guided) if objective == "eps" else RFDenoiser(guided)
        sigmas = get_sigmas("polyexponential", steps, sigma_min, sigma_max, 1.0, device=noise.device)
        return fn(denoiser, noise * sigmas[0].item(), sigmas, generator=batch_gen, callback=callback, **extra)
    valid = [n for n, s in SAMPLERS.items() if _compatible(objective, s.space)]
    raise ConfigError(f"sampler {sampler!r} does not fit a {objective} model; use one of {', '.join(valid)}")


def _compatible(objective: str, space: str) -> bool:
    if space == "rf":
        return objective in ("rectified_flow", "rf_denoiser")
    if space == "v":
        return objective == "v"
    if space == "discrete":
        return objective in ("v", "eps")
    return True


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
    seconds_start: float = 0.0,
    full_window: bool = False,
    device: torch.device | str = "cpu",
    callback: Callable[[dict[str, Any]], None] | None = None,
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
        seconds_start: the ``seconds_start`` conditioning (SAO-1.0-style models).
        full_window: denoise the model's whole window, as the reference pipelines do.
        device: where to run (the model is moved there).
        callback: called after every sampler step with the sampler's info dict plus ``batch``.

    Returns:
        :class:`GenerationResult`.
    """
    if not isinstance(model, LatentDiffusionModel):
        model = load_model(model, device=device)
    if not prompts:
        raise ConfigError("no prompts to generate")
    if negative_prompts is not None and len(negative_prompts) != len(prompts):
        raise ConfigError(f"{len(negative_prompts)} negative prompts for {len(prompts)} prompts; give one per prompt")
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    defaults = model.info.generation
    settings = {
        "sampler": sampler or defaults.get("sampler"),
        "steps": steps or defaults.get("steps"),
        "cfg_scale": float(cfg_scale if cfg_scale is not None else default_cfg_scale(model)),
        "sigma_min": float(sigma_min if sigma_min is not None else defaults.get("sigma_min", 0.3)),
        "sigma_max": float(sigma_max if sigma_max is not None else defaults.get("sigma_max", 500.0)),
    }
    if settings["sampler"] not in SAMPLERS:
        raise ConfigError(f"unknown sampler {settings['sampler']!r}; choose one of {', '.join(SAMPLERS)}")
    if not settings["steps"] or int(settings["steps"]) < 1:
        raise ConfigError(f"steps must be >= 1, got {settings['steps']}")
    device = torch.device(device)
    model.to(device)
    length = latent_length(model, seconds, full_window)
    n_samples = round(seconds * model.sample_rate)
    dtype = model.dit.preprocess_conv.weight.dtype  # the DiT's; sampler state stays float32
    vae_dtype = next(model.pretransform.parameters()).dtype
    guidance_objective = "rectified_flow" if model.objective.name in ("rectified_flow", "rf_denoiser") else "v"
    now = _timed(device)
    timings = dict.fromkeys(STAGES, 0.0)
    outputs, nfe = [], 0
    start = now()
    with torch.inference_mode():
        for b0 in range(0, len(prompts), batch_size):
            chunk = list(prompts[b0 : b0 + batch_size])
            n = len(chunk)
            t0 = now()
            inputs = {"prompt": chunk, "seconds_start": [seconds_start] * n, "seconds_total": [seconds] * n}
            cross, glob = model.condition({k: inputs[k] for k in model.conditioner.ids}, device)
            cond = {"cross_attn_cond": cross, "global_cond": glob}
            uncond = None
            if negative_prompts is not None:
                neg_inputs = dict(inputs, prompt=list(negative_prompts[b0 : b0 + batch_size]))
                neg_cross, _ = model.condition({k: neg_inputs[k] for k in model.conditioner.ids}, device)
                uncond = null_condition(cond, negative=neg_cross)
            t1 = now()
            generators = [torch.Generator().manual_seed(seed + b0 + i) for i in range(n)]
            noise = _clip_noise(generators, (model.latent_channels, length)).to(device)
            guided = NFECounter(
                GuidedModel(model, cond, uncond, scale=settings["cfg_scale"], objective=guidance_objective)
            )
            step_cb = None if callback is None else (lambda info, b=b0 // batch_size: callback({**info, "batch": b}))
            latents = _sample(
                model,
                guided,
                noise,
                generators,
                sampler=settings["sampler"],
                steps=int(settings["steps"]),
                sigma_min=settings["sigma_min"],
                sigma_max=settings["sigma_max"],
                callback=step_cb,
            )
            t2 = now()
            audio = model.pretransform.decode(latents.to(vae_dtype))[..., :n_samples]
            outputs.append(audio.float().cpu())
            t3 = now()
            nfe = guided.nfe
            timings["text_encoding"] += t1 - t0
            timings["denoising"] += t2 - t1
            timings["decoding"] += t3 - t2
    timings["total"] = now() - start
    settings.update(
        model=model.info.name,
        objective=model.objective.name,
        seconds=float(seconds),
        seconds_start=float(seconds_start),
        seed=int(seed),
        batch_size=int(batch_size),
        negative_prompts=list(negative_prompts) if negative_prompts is not None else None,
        latent_length=length,
        full_window=full_window,
        samples=n_samples,
        sample_rate=model.sample_rate,
        channels=model.info.audio_channels,
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
        cfg_batched=True,
        sigma_schedule="polyexponential rho=1" if SAMPLERS[settings["sampler"]].space == "sigma" else None,
        discrete_timesteps=f"{DISCRETE_SPACING}, T={DISCRETE_T}"
        if SAMPLERS[settings["sampler"]].space == "discrete"
        else None,
    )
    return GenerationResult(torch.cat(outputs), model.sample_rate, nfe, timings, settings)
