"""A frozen :class:`~t2mbench.reference_models.model.LatentDiffusionModel` with a control adapter,
callable as the base DiT is, plus condition keywords:

    model(x [B, C, L], t [B], cross_attn_cond=..., global_cond=...,
          melody=[B, 128, L], melody_mask=[B, L], ..., audio=[B, C, L], audio_mask=[B, L])

Features are on the latent grid (:mod:`.conditions`); a mask is 1 where the condition is kept
and 0 where it is dropped (applied after the extractor, at token resolution: token j takes
latent frame j·patch_size's mask). A missing condition counts as dropped everywhere. The
guidance helpers (:mod:`.guidance`) build null branches by zeroing masks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import torch
from torch import nn

from t2mbench.reference_models.adapters.conditions import CHANNELS
from t2mbench.reference_models.adapters.controlnet import ControlNet, ControlNetHook
from t2mbench.reference_models.adapters.extractors import latent_rate_layers
from t2mbench.reference_models.adapters.musecontrollite import MuseControlLite, MuseControlLiteHook
from t2mbench.reference_models.model import LatentDiffusionModel

KINDS = ("musecontrollite", "controlnet")


class ControlledModel(nn.Module):
    """``base`` (frozen) plus ``adapter`` (a :class:`MuseControlLite` or :class:`ControlNet`) for ``conditions``."""

    def __init__(self, base: LatentDiffusionModel, adapter: MuseControlLite | ControlNet,
                 conditions: tuple[str, ...]) -> None:
        super().__init__()
        self.base = base
        self.adapter = adapter
        self.conditions = conditions
        base.requires_grad_(False)

    @property
    def kind(self) -> str:
        return "controlnet" if isinstance(self.adapter, ControlNet) else "musecontrollite"

    @property
    def controls(self) -> tuple[str, ...]:
        """What it can be conditioned on: the attribute conditions, then ``audio`` with an audio branch."""
        audio = isinstance(self.adapter, MuseControlLite) and self.adapter.audio
        return self.conditions + (("audio",) if audio else ())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.adapter.parameters())

    def _masks(self, controls: Mapping[str, torch.Tensor], names: tuple[str, ...], batch: int, frames: int,
               device: torch.device) -> dict[str, torch.Tensor]:
        patch = self.base.dit.patch_size
        out = {}
        for name in names:
            mask = controls.get(f"{name}_mask")
            if mask is None:
                mask = torch.ones(batch, frames, device=device) if name in controls else torch.zeros(
                    batch, frames, device=device)
            out[name] = mask[:, ::patch]
        return out

    def _features(self, controls: Mapping[str, torch.Tensor], batch: int, frames: int,
                  ref: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: controls[name].to(ref.dtype) if name in controls else
                torch.zeros(batch, CHANNELS[name], frames, dtype=ref.dtype, device=ref.device)
                for name in self.conditions}

    def hook(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor]):
        b, _, frames = x.shape
        tokens = frames // self.base.dit.patch_size
        masks = self._masks(controls, self.conditions, b, frames, x.device)
        features = self._features(controls, b, frames, x)
        if isinstance(self.adapter, ControlNet):
            (name,) = self.conditions
            embedded = self.adapter.extractor(features[name], tokens) * masks[name][:, None, :].to(x.dtype)
            return ControlNetHook(self.adapter, embedded)
        cond = self.adapter.tokens(features, masks, tokens)  # None for an audio-only adapter
        audio = None
        if self.adapter.audio:
            latents = controls.get("audio", torch.zeros_like(x))
            audio = self.adapter.audio_tokens(latents.to(x.dtype), self._masks(controls, ("audio",), b, frames,
                                                                                x.device)["audio"], tokens)
        return MuseControlLiteHook(self.adapter, cond, audio)

    def forward(self, x: torch.Tensor, t: torch.Tensor, *, cross_attn_cond: torch.Tensor | None = None,
                global_cond: torch.Tensor | None = None, **controls: torch.Tensor) -> torch.Tensor:
        return self.base.dit(x, t, cross_attn_cond=cross_attn_cond, global_cond=global_cond,
                             control=self.hook(x, controls))


def musecontrollite(base: LatentDiffusionModel, conditions: tuple[str, ...] = ("melody",), *,
                    cond_dim: int | None = None, audio: bool = False, audio_dim: int | None = None
                    ) -> ControlledModel:
    """MuseControlLite on ``base`` for features on its latent grid: one latent-rate extractor per
    condition (:func:`~t2mbench.reference_models.adapters.extractors.latent_rate_layers`) of width
    ``cond_dim // 4`` (MuseControlLite's four attribute slots); ``cond_dim`` defaults to the
    cross-attention key width. ``audio`` adds the in/outpainting branch with tokens of width
    ``audio_dim`` (default ``cond_dim``); ``conditions=()`` with ``audio`` is an audio-only adapter."""
    dit = base.dit
    attn = dit.transformer.layers[0].cross_attn
    cond_dim = cond_dim or attn.kv_heads * attn.dim_heads
    layers = {c: latent_rate_layers(CHANNELS[c], cond_dim // 4, patch_size=dit.patch_size) for c in conditions}
    adapter = MuseControlLite(dit.transformer, layers, cond_dim, audio=audio, audio_dim=audio_dim)
    return ControlledModel(base, adapter, conditions)


def controlnet(base: LatentDiffusionModel, condition: str = "melody", n_blocks: int | None = None) -> ControlledModel:
    """A ControlNet on ``base`` copying its first ``n_blocks`` blocks (default half, as Hou et al.'s 12 of 24)."""
    dit = base.dit
    n = n_blocks or len(dit.transformer.layers) // 2
    width = dit.transformer.project_in.out_features
    layers = latent_rate_layers(CHANNELS[condition], width, patch_size=dit.patch_size)
    return ControlledModel(base, ControlNet(dit.transformer, n, layers), (condition,))


def span_frames(start_s: float, end_s: float, sample_rate: int, hop: int, frames: int) -> tuple[int, int]:
    """Seconds to latent frames ``[⌊start·sr/hop⌋, ⌊end·sr/hop⌋)`` clipped to ``[0, frames]``
    (MuseControlLite's ⌊s/47.55·1024⌋ on SAO-1.0's grid)."""
    a, b = (min(frames, max(0, int(s * sample_rate // hop))) for s in (start_s, end_s))
    if b < a:
        raise ValueError(f"mask span ends ({end_s} s) before it starts ({start_s} s)")
    return a, b


def inpainting_masks(batch: int, frames: int, span: tuple[int, int], conditions: tuple[str, ...] = ()
                     ) -> dict[str, torch.Tensor]:
    """MuseControlLite's in/outpainting masks for latent frames ``span = [a, b)``, the region to
    generate: ``audio_mask`` is 0 inside it (the reference audio is given elsewhere) and each
    attribute condition's mask is 1 only inside it (complementary, so they never overlap)."""
    a, b = span
    inside = torch.zeros(batch, frames)
    inside[:, a:b] = 1.0
    return {"audio_mask": 1.0 - inside, **{f"{c}_mask": inside.clone() for c in conditions}}


ADAPTER_WEIGHTS = {"musecontrollite": "tiny-control-melody", "controlnet": "tiny-controlnet-melody"}
AUDIO_ADAPTER = "tiny-control-audio"  # the audio-only (in/outpainting) MuseControlLite adapter


def load_adapter(base: LatentDiffusionModel, kind: str) -> ControlledModel | None:
    """The shipped trained adapter ``kind`` (``musecontrollite`` or ``controlnet``) on ``base`` (the
    shipped ``tiny``), or None when this checkout ships none."""
    return load_shipped_adapter(base, ADAPTER_WEIGHTS[kind])


def load_shipped_adapter(base: LatentDiffusionModel, name: str) -> ControlledModel | None:
    """The shipped adapter ``name`` (a registered weight, e.g. :data:`AUDIO_ADAPTER`) on ``base``, or
    None when this checkout ships none. Its ``manifest.json`` names its kind, its conditions
    (``audio`` for the in/outpainting branch, with its token width ``audio_dim``) and the command that
    trained it."""
    from t2mbench.core.weights import resolve
    from t2mbench.reference_models.checkpoints import WEIGHTS, read_state_dict

    if WEIGHTS.get(name) is None:
        return None
    path = resolve(name)
    info = json.loads((path.parent / "manifest.json").read_text(encoding="utf-8"))
    conditions = tuple(c for c in info["conditions"] if c != "audio")
    if info["kind"] == "controlnet":
        model = controlnet(base, conditions[0])
    else:
        model = musecontrollite(base, conditions, audio="audio" in info["conditions"], audio_dim=info.get("audio_dim"))
    state = {k: v.float() for k, v in read_state_dict(path).items()}
    model.adapter.load_state_dict(state)
    return model.eval()
