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

The audio (in/outpainting) adapter (``conditions: ["audio"]``, masks ``audio``, spec §1.3 audio-only) takes
the batch's own clean latent x0 as its condition, shown where its mask is 1; it trains alone, as upstream's.

Masks (``masks``, :func:`span_masks`): ``musecontrollite`` as above, ``light`` (half the samples see the
whole condition) or ``audio``. Key initialisation (``key_init``, :func:`align_keys`,
:func:`align_audio_keys`): ``upstream`` (fresh ``nn.Linear``, as the code) or ``aligned`` (the adapter
starts with time-aligned attention). Why the shipped MuseControlLite adapter uses ``light`` and
``aligned``: docs/control_table.md.

Only the adapter is trained (the base is frozen); what ships is the adapter's state dict.

Commands (what made the shipped checkpoints; see their manifests): ``t2mbench train control --corpus
CORPUS --out RUN --ship DIR --config CONFIG``, where the config's ``task.kind`` selects the adapter:
``bench/train/configs/tiny-control.json`` (the default) for the MuseControlLite melody adapter,
``tiny-controlnet.json`` for the ControlNet and ``tiny-control-audio.json`` for the audio-only
(in/outpainting) adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2mbench.bench.corpus.splits import load_split_audio, split_clips
from t2mbench.bench.train.dit import CachedTextEncoder
from t2mbench.bench.train.ship import ship
from t2mbench.core.errors import ConfigError
from t2mbench.core.progress import progress_bar
from t2mbench.reference_models.adapters.conditions import EXTRACTORS
from t2mbench.reference_models.adapters.model import KINDS, ControlledModel, controlnet, musecontrollite
from t2mbench.reference_models.adapters.musecontrollite import shipped_rotary
from t2mbench.reference_models.autoencoder import vae_posterior
from t2mbench.reference_models.generate import latent_length, load_model

MASK_SCHEMES = ("musecontrollite", "light", "audio")
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
    docs/control_table.md, "Why the first MuseControlLite adapter did not control"). ``audio``:
    MuseControlLite's audio-only adapter (``MuseControlLite_train_audio_only.py``, spec §1.3): with
    p 0.1 the caption is emptied and every condition zeroed; otherwise the caption is emptied with
    p 0.3 and each condition is, with p 0.7, masked to a span, else zeroed. Decision (the spec
    says "masked to the span (or its complement)" without the split): kept only on [n1, n2) or
    zeroed on it with p 0.5 each, so the model sees both in- and outpainting masks."""
    if scheme not in MASK_SCHEMES:
        raise ConfigError(f"masks must be one of {', '.join(MASK_SCHEMES)}, got {scheme!r}")
    if scheme == "audio":
        return _audio_masks(batch, frames, conditions, generator)
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


def _audio_masks(batch: int, frames: int, conditions: tuple[str, ...], generator: torch.Generator
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`span_masks`' ``audio`` scheme."""
    keep_text = torch.ones(batch, dtype=torch.bool)
    masks = {c: torch.zeros(batch, frames) for c in conditions}
    for i in range(batch):
        n1, n2 = sorted(torch.randperm(frames, generator=generator)[:2].tolist())
        if float(torch.rand((), generator=generator)) < 0.1:
            keep_text[i] = False
            continue
        keep_text[i] = float(torch.rand((), generator=generator)) >= 0.3
        for c in conditions:
            if float(torch.rand((), generator=generator)) >= 0.7:
                continue
            inside = float(torch.rand((), generator=generator)) < 0.5
            masks[c][i] = 0.0 if inside else 1.0
            masks[c][i, n1:n2] = 1.0 if inside else 0.0
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
        kv_heads = proc.to_k_ip.out_features // capture.queries[i].shape[-1]
        k0 = torch.zeros(kv_heads, 1, capture.queries[i].shape[-1], requires_grad=True)
        masses.append(_fit_diagonal(capture.queries[i], tokens, k0, lambda k0=k0: k0.expand(-1, tokens, -1)[None]))
        with torch.no_grad():
            proc.to_k_ip.weight[:, 0] = k0.detach().reshape(-1) / ALIGN_BIAS
    return masses


def align_audio_keys(model: ControlledModel, x_t: torch.Tensor, t: torch.Tensor, cross: torch.Tensor | None,
                     glob: torch.Tensor | None, latents: torch.Tensor) -> list[float]:
    """:func:`align_keys` for the audio branch (``key_init: aligned`` of an audio adapter): its tokens
    are the clean ``latents`` ``[B, C, L]`` themselves (no extractor, no bias), so the whole
    ``to_k_ip_audio`` weight is fitted (from zero, same objective and schedule) to put patch token i's
    attention on latent token i. ``conv_out_audio`` stays zero: the model still equals the base.
    Returns each block's fitted diagonal attention mass (uniform: 1 / tokens)."""
    adapter = model.adapter
    capture = _QueryCapture()
    with torch.no_grad():
        model.base.dit(x_t, t, cross_attn_cond=cross, global_cond=glob, control=capture)
    tokens = x_t.shape[-1] // model.base.dit.patch_size
    audio = adapter.audio_tokens(latents, None, tokens)
    masses = []
    for i in range(len(adapter.transformer_blocks)):
        proc = adapter.processor(i)
        d = capture.queries[i].shape[-1]
        w = torch.zeros_like(proc.to_k_ip_audio.weight, requires_grad=True)
        masses.append(_fit_diagonal(capture.queries[i], tokens, w,
                                    lambda w=w, d=d: (audio @ w.T).view(*audio.shape[:2], -1, d).transpose(1, 2)))
        with torch.no_grad():
            proc.to_k_ip_audio.weight.copy_(w.detach())
    return masses


def _fit_diagonal(q: torch.Tensor, tokens: int, param: torch.Tensor, keys) -> float:
    """Fit ``param`` (Adam, lr 0.1, ``ALIGN_ITERATIONS`` steps) so that the rotary queries ``q``
    ``[B, H, N, 64]`` of the last ``tokens`` positions (stretched onto the keys as the adapter does)
    attend most to their own key: ``keys()`` gives the unrotated keys ``[B or 1, kv_heads, tokens, 64]``
    (heads repeated like the GQA keys). Returns the final mean diagonal attention mass."""
    _, heads, n, d = q.shape
    rq = shipped_rotary(q, torch.arange(n, dtype=torch.float32) * (tokens / n))[:, :, n - tokens:]
    key_pos = torch.arange(tokens, dtype=torch.float32)
    opt = torch.optim.Adam([param], lr=0.1)
    for _ in range(ALIGN_ITERATIONS):
        k = keys()
        k = shipped_rotary(k.repeat_interleave(heads // k.shape[1], dim=1), key_pos)
        attn = torch.softmax(rq @ k.transpose(-1, -2) / d**0.5, dim=-1)
        mass = attn.diagonal(dim1=-2, dim2=-1).mean()
        opt.zero_grad()
        (-mass.log()).backward()
        opt.step()
    return float(mass.detach())


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
        self.audio = "audio" in conditions
        if self.audio and (conditions != ("audio",) or kind != "musecontrollite" or masks != "audio"):
            # spec §1.2: training attributes and audio together "produces unsatisfactory results" upstream
            raise ConfigError("the audio condition trains alone, as MuseControlLite's audio-only adapter: "
                              "kind musecontrollite, conditions [\"audio\"], masks \"audio\"")
        if masks == "audio" and not self.audio:
            raise ConfigError("masks 'audio' is the audio-only adapter's scheme; it needs conditions [\"audio\"]")
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
            if saved.get("ids") != [c.id for c in clips] or set(saved["features"]) != set(conditions) - {"audio"}:
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
                for c in conditions if c != "audio"}  # the audio condition is the batch's own clean latent
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
        names = (*sorted(EXTRACTORS), "audio")
        unknown = sorted(set(block) - set(known))
        if unknown:
            raise ConfigError(f"task.{unknown[0]}: unknown; the task block takes {', '.join(known)}")
        conditions = block.get("conditions", ["melody"])
        if (not isinstance(conditions, list) or not conditions
                or any(c not in names for c in conditions) or len(set(conditions)) != len(conditions)):
            raise ConfigError(f"task.conditions must be a list of distinct names from {', '.join(names)}, "
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
        audio = {"audio_dim": model.adapter.audio_dim} if self.audio else {}
        return ship(model.adapter.state_dict(), ship_dir, "adapter.safetensors", dtype=torch.float16,
                    info={**info, "kind": self.kind, "conditions": list(self.conditions), "base": "tiny",
                          "trainable_parameters": model.trainable_parameters(), **audio})

    def build(self) -> ControlledModel:
        torch.manual_seed(0)
        if self.kind == "controlnet":
            return controlnet(self.base, self.conditions[0])
        if self.audio:
            # Audio tokens of width C·patch (64 for tiny: 32 latent channels × patch 2), each latent
            # value once: upstream's ×12 repeat-interleave (to 768) only re-parametrises the same linear
            # map, and at 192 wide the branch (3 × 192² per block, 663,552 parameters, 1.33 MB in fp16)
            # would not fit the 25 MB budget of shipped checkpoints; at 64 it has 6 × (2·64·192 + 192²)
            # = 368,640 parameters (737 KB in fp16), on every block as upstream.
            latent = self.mean.shape[1] * self.patch
            model = musecontrollite(self.base, (), audio=True, audio_dim=latent)
        else:
            model = musecontrollite(self.base, self.conditions)
        if self.key_init == "aligned":
            batch = self.batch(0, torch.Generator().manual_seed(0))
            with torch.no_grad():
                cross, glob = self.base.condition(batch["inputs"])
            x_t = self.base.objective.add_noise(batch["x0"], batch["noise"], batch["t"])
            self.aligned_mass = (align_audio_keys(model, x_t, batch["t"], cross, glob, batch["x0"]) if self.audio
                                 else align_keys(model, x_t, batch["t"], cross, glob))
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
        x0 = z / self.scale
        # the audio condition is the clean latent being denoised (MuseControlLite's audio-only
        # training: the reference is the target itself, shown where its mask is 1)
        features = {c: x0 if c == "audio" else self.features[c][idx][..., win] for c in self.conditions}
        return {
            "x0": x0,
            "t": torch.sigmoid(torch.randn(self.batch_size, generator=generator)),
            "noise": torch.randn(z.shape, generator=generator),
            "keep_text": keep_text,
            "controls": {**features,
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

