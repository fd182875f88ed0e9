"""Training task for a control adapter (MuseControlLite or ControlNet) on the frozen ``tiny`` model.

Before step 0: every ``train`` clip is decoded at the model's rate (mono 16 kHz), padded to whole
latent frames and DiT patches, encoded by the model's own VAE into its posterior (mean, std), and
its condition features are extracted from the audio on the latent grid
(:mod:`t2mbench.reference_models.adapters.conditions`); captions go through the frozen text
encoder once.

Step ``k`` (all draws from the step generator): ``batch_size`` clips, z = mean + std·ε,
x0 = z / scale, t = sigmoid(N(0, 1)) (MuseControlLite's logit-normal time), x_t and the v target
of the model's objective, MSE. Condition dropout and time masks follow MuseControlLite's
``MuseControlLite_train_all.py`` for the attribute conditions (spec §1.3): caption emptied (the
text tokens zeroed) with p 0.1; then r ~ U(0, 1): r < 0.1 all conditions dropped;
0.1 ≤ r < 0.55 caption emptied with p 0.2 and each condition 50% dropped on a span [n1, n2),
50% dropped entirely; r ≥ 0.55 caption emptied with p 0.2 and each condition 50% kept only on
[n1, n2), 50% dropped. Decision: n1 < n2 are drawn ordered (upstream's unordered draw makes the
"drop the span" case a no-op and "keep only the span" drop everything when n1 > n2).

Masks (``masks``, :func:`span_masks`): ``musecontrollite`` as above, or ``light`` (half the samples
see the whole condition). Key initialisation (``key_init``, :func:`align_keys`): ``upstream`` (fresh
``nn.Linear``, as the code) or ``aligned`` (the adapter starts with time-aligned attention). Why the
shipped MuseControlLite adapter uses ``light`` and ``aligned``: docs/control_table.md.

Only the adapter is trained (the base is frozen); what ships is the adapter's state dict.

Commands (what made the shipped checkpoints; see their manifests):
``t2mbench train control --corpus CORPUS --out runs/control-melody --ship reference_models/weights/tiny-control-melody``
(config ``bench/train/configs/tiny-control.json``) for the MuseControlLite adapter, and this module's
entry point for the ControlNet (``python -m t2mbench.bench.train.control --kind controlnet ...``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.train.dit import CachedTextEncoder
from t2mbench.bench.train.loop import TrainConfig, train
from t2mbench.bench.train.ship import ship
from t2mbench.core.errors import ConfigError
from t2mbench.core.progress import progress_bar
from t2mbench.reference_models.adapters.conditions import EXTRACTORS
from t2mbench.reference_models.adapters.model import KINDS, ControlledModel, controlnet, musecontrollite
from t2mbench.reference_models.adapters.musecontrollite import shipped_rotary
from t2mbench.reference_models.autoencoder import vae_posterior
from t2mbench.reference_models.generate import latent_length, load_model

MASK_SCHEMES = ("musecontrollite", "light")
KEY_INITS = ("upstream", "aligned")
ALIGN_ITERATIONS = 200
ALIGN_BIAS = 1.0


def span_masks(batch: int, frames: int, conditions: tuple[str, ...], generator: torch.Generator,
               scheme: str = "musecontrollite") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Training masks: ``(keep_text [B] bool, {condition: mask [B, frames]})``.

    ``musecontrollite``: upstream's scheme (module doc); a condition is never whole, on average it
    covers about a quarter of the frames. ``light``: the caption is emptied with p 0.26 (upstream's
    net rate); then r ~ U(0, 1): r < 0.3 all conditions dropped, 0.3 <= r < 0.5 each condition 50%
    dropped on a span [n1, n2) and 50% kept only on it, r >= 0.5 every condition whole (why:
    docs/control_table.md, "Why the first MuseControlLite adapter did not control")."""
    if scheme not in MASK_SCHEMES:
        raise ConfigError(f"masks must be one of {', '.join(MASK_SCHEMES)}, got {scheme!r}")
    light = scheme == "light"
    keep_text = torch.rand(batch, generator=generator) >= (0.26 if light else 0.1)
    masks = {c: torch.zeros(batch, frames) for c in conditions}
    for i in range(batch):
        r = float(torch.rand((), generator=generator))
        n1, n2 = sorted(torch.randperm(frames, generator=generator)[:2].tolist())
        if light:
            if r >= 0.5:
                for c in conditions:
                    masks[c][i] = 1.0
            elif r >= 0.3:
                for c in conditions:
                    inside = float(torch.rand((), generator=generator)) < 0.5
                    masks[c][i] = 0.0 if inside else 1.0
                    masks[c][i, n1:n2] = 1.0 if inside else 0.0
            continue
        if r < 0.1:
            continue
        if float(torch.rand((), generator=generator)) < 0.2:
            keep_text[i] = False
        for c in conditions:
            half = float(torch.rand((), generator=generator)) < 0.5
            if r < 0.55:
                if half:
                    masks[c][i] = 1.0
                    masks[c][i, n1:n2] = 0.0
            elif half:
                masks[c][i, n1:n2] = 1.0
    return keep_text, masks


class _QueryCapture:
    """A :class:`~t2mbench.reference_models.transformer.BlockControl` that records each block's
    cross-attention queries ``[B, H, N, 64]`` and adds nothing."""

    def __init__(self) -> None:
        self.queries: dict[int, torch.Tensor] = {}

    def residuals(self, x, context, rope) -> tuple:
        return ()

    def cross_attention(self, block: int):
        def grab(q: torch.Tensor) -> torch.Tensor:
            self.queries[block] = q.detach()
            return torch.zeros(q.shape[0], q.shape[2], q.shape[1] * q.shape[3], dtype=q.dtype, device=q.device)

        return grab


def align_keys(model: ControlledModel, x_t: torch.Tensor, t: torch.Tensor, cross: torch.Tensor | None,
               glob: torch.Tensor | None) -> list[float]:
    """Start a MuseControlLite adapter with time-aligned attention (``key_init: aligned``).

    The first extractor's last bias is set to ``ALIGN_BIAS`` on its channel 0 (0 elsewhere), so every
    unmasked condition token carries a constant on token channel 0. Per block, one key per KV head k0
    ``[64]`` is fitted (Adam, lr 0.1, ``ALIGN_ITERATIONS`` steps, from zero) to the frozen model's own
    rotary queries on the batch ``x_t`` ``[B, C, L]`` at times ``t``, maximising the mean attention of
    patch token i on condition token i; column 0 of ``to_k_ip`` becomes k0 / ``ALIGN_BIAS``. The
    zero-initialised ``conv_out`` is untouched, so the adapted model still equals the base model.
    Returns each block's fitted diagonal attention mass (uniform: 1 / tokens)."""
    adapter = model.adapter
    capture = _QueryCapture()
    with torch.no_grad():
        model.base.dit(x_t, t, cross_attn_cond=cross, global_cond=glob, control=capture)
        extractor = next(iter(adapter.extractors.values()))
        last = getattr(extractor, f"conv1d_{len(extractor.layers)}")
        last.bias.zero_()
        last.bias[0] = ALIGN_BIAS
    tokens = x_t.shape[-1] // model.base.dit.patch_size
    masses = []
    for i in range(len(adapter.transformer_blocks)):
        proc = adapter.processor(i)
        q = capture.queries[i]
        _, heads, n, d = q.shape
        kv_heads = proc.to_k_ip.out_features // d
        rq = shipped_rotary(q, torch.arange(n, dtype=torch.float32) * (tokens / n))[:, :, n - tokens:]
        key_pos = torch.arange(tokens, dtype=torch.float32)
        k0 = torch.zeros(kv_heads, 1, d, requires_grad=True)
        opt = torch.optim.Adam([k0], lr=0.1)
        for _ in range(ALIGN_ITERATIONS):
            keys = shipped_rotary(k0.expand(kv_heads, tokens, d).repeat_interleave(heads // kv_heads, dim=0)[None],
                                  key_pos)
            attn = torch.softmax(rq @ keys.transpose(-1, -2) / d**0.5, dim=-1)
            mass = attn.diagonal(dim1=-2, dim2=-1).mean()
            opt.zero_grad()
            (-mass.log()).backward()
            opt.step()
        masses.append(float(mass.detach()))
        with torch.no_grad():
            proc.to_k_ip.weight[:, 0] = k0.detach().reshape(-1) / ALIGN_BIAS
    return masses


class ControlTask:
    """The :class:`t2mbench.bench.train.loop.TrainTask` of an adapter on the shipped ``tiny`` model."""

    name = "control"

    def __init__(self, corpus: str | Path, kind: str, conditions: tuple[str, ...], batch_size: int = 16,
                 clips: int | None = None, crop: int | None = None, cache: str | Path | None = None,
                 progress: bool = True, masks: str = "musecontrollite", key_init: str = "upstream") -> None:
        if key_init not in KEY_INITS:
            raise ConfigError(f"key_init must be one of {', '.join(KEY_INITS)}, got {key_init!r}")
        if masks not in MASK_SCHEMES:
            raise ConfigError(f"masks must be one of {', '.join(MASK_SCHEMES)}, got {masks!r}")
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if key_init == "aligned" and kind != "musecontrollite":
            raise ConfigError(f"key_init 'aligned' fits MuseControlLite's adapter keys; {kind} has none")
        self.kind, self.conditions, self.batch_size, self.masks = kind, conditions, batch_size, masks
        self.key_init = key_init
        base = load_model("tiny")
        self.scale = base.pretransform.scale
        clips = split_clips(corpus, "train")[:clips]
        self.captions = [c.caption or "" for c in clips]
        self.seconds = [float(c.seconds or 0.0) for c in clips]
        frames = latent_length(base, max(self.seconds))
        if crop is not None and (crop % base.dit.patch_size or not 0 < crop <= frames):
            raise ConfigError(f"crop must be a multiple of {base.dit.patch_size} in 1..{frames} latent frames, "
                              f"got {crop}")
        self.crop, self.patch = crop, base.dit.patch_size
        self.frame_seconds = base.downsampling_ratio / base.sample_rate
        cache = Path(cache) if cache else None
        if cache is not None and cache.exists():
            saved = torch.load(cache, weights_only=True)
            if saved.get("ids") != [c.id for c in clips] or set(saved["features"]) != set(conditions):
                raise ConfigError(f"{cache} holds other clips or conditions; remove it or pass another --cache")
            self.mean, self.std, self.features = saved["mean"], saved["std"], saved["features"]
        else:
            hop = base.downsampling_ratio
            audio = load_split_audio(clips, base.sample_rate, 1, frames * hop, progress=progress)
            with torch.inference_mode():
                stats = [vae_posterior(base.pretransform.model.encoder(a)) for a in audio.split(8)]
            self.mean, self.std = torch.cat([s[0] for s in stats]), torch.cat([s[1] for s in stats])
            self.features = {
                c: torch.from_numpy(np.stack([EXTRACTORS[c](a.numpy(), base.sample_rate, hop, frames)
                                              for a in progress_bar(audio, desc=c, disable=not progress)]))
                for c in conditions}
            if cache is not None:
                torch.save({"ids": [c.id for c in clips], "mean": self.mean, "std": self.std,
                            "features": self.features}, cache)
        self.clips = clips
        prompt = base.conditioner.conditioners["prompt"]
        prompt.encoder = CachedTextEncoder(prompt.encoder, self.captions, prompt.max_length, progress=progress)
        self.base = base
        self.n_clips = len(clips)

    @classmethod
    def from_block(cls, corpus: str | Path, block: dict[str, Any], model_block: dict[str, Any],
                   cache: str | Path | None, progress: bool = True) -> ControlTask:
        """The task of a training config's ``task`` block (``kind``, ``conditions``, ``batch_size``,
        ``clips``, ``crop``, ``masks``; the constructor's meanings) and ``model`` block (``base``:
        ``"tiny"``, the only base with shipped weights)."""
        if model_block != {"base": "tiny"}:
            raise ConfigError(f"the model block must be {{\"base\": \"tiny\"}}, got {model_block}")
        known = ("kind", "conditions", "batch_size", "clips", "crop", "masks", "key_init")
        unknown = sorted(set(block) - set(known))
        if unknown:
            raise ConfigError(f"task.{unknown[0]}: unknown; the task block takes {', '.join(known)}")
        conditions = block.get("conditions", ["melody"])
        if (not isinstance(conditions, list) or not conditions
                or any(c not in EXTRACTORS for c in conditions) or len(set(conditions)) != len(conditions)):
            raise ConfigError(f"task.conditions must be a list of distinct names from {', '.join(sorted(EXTRACTORS))}, "
                              f"got {conditions!r}")
        for key in ("batch_size", "clips", "crop"):
            value = block.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"task.{key} must be a positive integer, got {value!r}")
        return cls(corpus, block.get("kind", "musecontrollite"), tuple(conditions), block.get("batch_size", 16),
                   block.get("clips"), block.get("crop"), cache, progress, block.get("masks", "musecontrollite"),
                   block.get("key_init", "upstream"))

    def ship(self, model: ControlledModel, ship_dir: str | Path, info: dict[str, Any]) -> Path:
        """The adapter's weights (float16) and a manifest naming its kind and conditions, which
        :func:`t2mbench.reference_models.adapters.model.load_adapter` reads."""
        return ship(model.adapter.state_dict(), ship_dir, "adapter.safetensors", dtype=torch.float16,
                    info={**info, "kind": self.kind, "conditions": list(self.conditions), "base": "tiny",
                          "trainable_parameters": model.trainable_parameters()})

    def build(self) -> ControlledModel:
        torch.manual_seed(0)
        if self.kind == "controlnet":
            return controlnet(self.base, self.conditions[0])
        model = musecontrollite(self.base, self.conditions)
        if self.key_init == "aligned":
            batch = self.batch(0, torch.Generator().manual_seed(0))
            with torch.no_grad():
                cross, glob = self.base.condition(batch["inputs"])
            x_t = self.base.objective.add_noise(batch["x0"], batch["noise"], batch["t"])
            self.aligned_mass = align_keys(model, x_t, batch["t"], cross, glob)
        return model

    def batch(self, step: int, generator: torch.Generator) -> dict[str, Any]:
        idx = torch.randint(self.n_clips, (self.batch_size,), generator=generator)
        frames = self.mean.shape[-1]
        win = slice(0, frames)
        if self.crop is not None:  # one window per batch, on whole DiT patches
            first = int(torch.randint((frames - self.crop) // self.patch + 1, (), generator=generator)) * self.patch
            win = slice(first, first + self.crop)
        mean, std = self.mean[idx][..., win], self.std[idx][..., win]
        z = mean + std * torch.randn(mean.shape, generator=generator)
        keep_text, masks = span_masks(self.batch_size, z.shape[-1], self.conditions, generator, self.masks)
        return {
            "x0": z / self.scale,
            "t": torch.sigmoid(torch.randn(self.batch_size, generator=generator)),
            "noise": torch.randn(z.shape, generator=generator),
            "keep_text": keep_text,
            "controls": {**{c: self.features[c][idx][..., win] for c in self.conditions},
                         **{f"{c}_mask": m for c, m in masks.items()}},
            "inputs": {"prompt": [self.captions[i] for i in idx.tolist()], "seconds_start": [0.0] * self.batch_size,
                       "seconds_total": [self.seconds[i] if self.crop is None else self.crop * self.frame_seconds
                                         for i in idx.tolist()]},
        }

    def losses(self, model: ControlledModel, batch: dict[str, Any], generator: torch.Generator):
        with torch.no_grad():
            cross, glob = model.base.condition(batch["inputs"])
        cross = cross * batch["keep_text"][:, None, None].to(cross.dtype)
        objective = model.base.objective
        x_t = objective.add_noise(batch["x0"], batch["noise"], batch["t"])
        out = model(x_t, batch["t"], cross_attn_cond=cross, global_cond=glob, **batch["controls"])
        return {"loss": objective.loss(out, objective.target(batch["x0"], batch["noise"], batch["t"]), None)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="train a control adapter on the tiny model (see the module doc)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--kind", choices=KINDS, default="musecontrollite")
    p.add_argument("--condition", action="append", choices=sorted(EXTRACTORS), default=None)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--clips", type=int, default=None, help="use the first CLIPS train clips (default: all)")
    p.add_argument("--crop", type=int, default=None, help="train on windows of CROP latent frames (default: whole)")
    p.add_argument("--cache", default=None, help="file keeping the precomputed latents and features between runs")
    p.add_argument("--masks", choices=MASK_SCHEMES, default="musecontrollite")
    p.add_argument("--out", required=True)
    p.add_argument("--ship", default=None)
    a = p.parse_args(argv)
    conditions = tuple(a.condition or ["melody"])
    t0 = time.perf_counter()
    task = ControlTask(a.corpus, a.kind, conditions, a.batch_size, a.clips, a.crop, a.cache, masks=a.masks)
    config = TrainConfig(steps=a.steps, lr=a.lr, weight_decay=1e-2, betas=(0.9, 0.999), warmup=50,
                         final_lr_ratio=0.1, checkpoint_every=50)
    ema = train(task, config, a.out)
    seconds = time.perf_counter() - t0
    if a.ship:
        info = {"command": "python -m t2mbench.bench.train.control " + " ".join(argv or []), "kind": a.kind,
                "conditions": list(conditions), "base": "tiny", "steps": a.steps, "train_clips": task.n_clips,
                "trainable_parameters": ema.trainable_parameters(), "train_seconds": round(seconds, 1)}
        ship(ema.adapter.state_dict(), a.ship, "adapter.safetensors", info=info, dtype=torch.float16)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
