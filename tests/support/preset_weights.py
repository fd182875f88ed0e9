"""Seeded random weight files for every embedder of the ``paper-2026`` preset, written where the loaders look
for the published files (``$T2MBENCH_HOME/weights/<filename>``), in the published formats and key layouts.

- OpenL3: the full-size CNN (:func:`support.openl3_weights.seeded_openl3_state`, 4.7 M values) as a gzipped
  Keras ``save_weights`` file with the recorded layout of the published ``.h5``.
- PaSST, LAION-CLAP (the fusion HTSAT-tiny file and the non-fusion music file), MERT-v1-95M, MERT-v1-330M and
  Audiobox Aesthetics: reduced sizes in the published key layout (each network's full-size keys are checked
  against the upstream manifests by its own tests); the loaders read the sizes from the shapes. The values are
  drawn from ``torch.Generator(seed)`` per file: matrices N(0, 1/fan_in), norm gains 1 + N(0, 0.1), other
  vectors N(0, 0.1), weight-norm gains U(0.5, 1.5); the buffers the architecture fixes (Swin's relative
  position index and shifted-window masks) computed as upstream does (:func:`support.clap_weights.derived_buffer`),
  batch-norm statistics 0 and 1 (HTSAT's input batch norm: -20 and 400, bringing log-mel dB to unit scale).
- The roberta-base tokenizer files: the CLAP fixture's small tokenizer padded to 50,265 tokens.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from support.clap_weights import derived_buffer, write_tokenizer
from support.openl3_weights import seeded_openl3_state, write_keras_h5
from t2mbench.metrics.embedders.audiobox import AXES, AesModel, HeadConfig, WavLMConfig
from t2mbench.metrics.embedders.audiobox import CHECKPOINT as AUDIOBOX
from t2mbench.metrics.embedders.clap import CHECKPOINTS, TOKENIZER_FILES, ClapModel, Variant
from t2mbench.metrics.embedders.mert import CHECKPOINT as MERT_95M
from t2mbench.metrics.embedders.mert import Mert, MertConfig
from t2mbench.metrics.embedders.mert_330m import CHECKPOINT as MERT_330M
from t2mbench.metrics.embedders.mert_330m import MERT_V1_330M
from t2mbench.metrics.embedders.openl3 import keras_weights
from t2mbench.metrics.embedders.passt import CHECKPOINT as PASST
from t2mbench.metrics.embedders.passt import PaSST

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MERT_SMALL = {"hidden": 64, "layers": 2, "heads": 1, "ffn": 64, "conv_dim": 16, "pos_kernel": 16, "pos_groups": 4}
CLAP_SMALL = {"dim": 8, "depths": (1, 1, 1, 1), "text_dim": 32, "text_layers": 1}
WAVLM_SMALL = WavLMConfig(dim=32, layers=2, heads=4, ffn=64, conv_dim=16, pos_kernel=16, pos_groups=4)
_BN0 = {"running_mean": -20.0, "running_var": 400.0}  # HTSAT's input batch norm: log-mel dB to unit scale


def seeded_state(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """``module``'s state dict with seeded values (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in module.state_dict().items():
        fixed = derived_buffer(key, tuple(value.shape))  # Swin's indices and masks, batch counts
        stat = key.rsplit(".", 1)[-1]
        if fixed is not None:
            out[key] = torch.from_numpy(fixed)
        elif not value.is_floating_point():
            out[key] = value.clone()
        elif stat in _BN0 and key.startswith("audio_branch.bn0."):
            out[key] = torch.full_like(value, _BN0[stat])
        elif stat == "running_mean":
            out[key] = torch.zeros_like(value)
        elif stat == "running_var":
            out[key] = torch.ones_like(value)
        elif key.endswith("weight_g"):
            out[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif value.ndim <= 1:
            gain = key.endswith("weight") and "norm" in key.lower()
            out[key] = (1.0 if gain else 0.0) + 0.1 * torch.randn(value.shape, generator=g)
        else:
            out[key] = torch.randn(value.shape, generator=g) / np.sqrt(int(np.prod(value.shape[1:])))
    return out


def _save(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def write_preset_weights(weights_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write every weight file of the preset's embedders under ``weights_dir``; ``{embedder: path}``."""
    paths: dict[str, Path] = {}
    # OpenL3, full size, gzipped Keras HDF5
    layout = json.loads((FIXTURES / "openl3" / "keras_layout.json").read_text())
    plain = weights_dir / "openl3.h5"
    weights_dir.mkdir(parents=True, exist_ok=True)
    write_keras_h5(plain, seeded_openl3_state(seed), layout)
    paths["openl3"] = weights_dir / keras_weights("mel256", "music").filename
    with open(plain, "rb") as src, gzip.open(paths["openl3"], "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    plain.unlink()
    torch.manual_seed(seed)  # the modules below are built on the CPU; every float is then redrawn
    # PaSST: width 64, 2 blocks, the 527 classes
    paths["passt"] = weights_dir / PASST.filename
    _save(seeded_state(PaSST(dim=64, depth=2, heads=1), seed + 1), paths["passt"])
    # LAION-CLAP: the fusion file (clap) and the non-fusion music file (clap_music), with the checkpoint's
    # tensors that play no part in the embeddings
    for name, key, fusion in (("clap", "clap", True), ("clap_music", "clap-music-audioset", False)):
        variant = Variant(fusion=fusion, **CLAP_SMALL)
        state = seeded_state(ClapModel(variant), seed + 2 + fusion)
        g = torch.Generator().manual_seed(seed + 4 + fusion)
        state |= {k: 0.1 * torch.randn(s, generator=g) for k, s in variant.unused_shapes().items()}
        paths[name] = weights_dir / CHECKPOINTS[key].filename
        _save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, paths[name])
    write_tokenizer((weights_dir / next(iter(TOKENIZER_FILES.values())).filename).parent)
    # MERT-v1-95M (post-LN) and MERT-v1-330M (pre-LN): the same reduced sizes, flags from each entry
    for name, wf, flags, s in (("mert", MERT_95M, MertConfig(), 6), ("mert_330m", MERT_330M, MERT_V1_330M, 7)):
        cfg = MertConfig(**{**asdict(flags), **MERT_SMALL})
        paths[name] = weights_dir / wf.filename
        _save(seeded_state(Mert(cfg), seed + s), paths[name])
    # Audiobox Aesthetics: the training checkpoint dict (state_dict with "model.", model_cfg, target_transform)
    heads = HeadConfig(nth_layer=WAVLM_SMALL.layers + 1)
    state = seeded_state(AesModel(heads, WAVLM_SMALL), seed + 8)
    paths["audiobox_aesthetics"] = weights_dir / AUDIOBOX.filename
    _save({"state_dict": {f"model.{k}": v for k, v in state.items()},
           "model_cfg": {**asdict(heads), "proj_act_fn": "gelu"},
           "target_transform": {axis: {"mean": 5.0 + i / 4, "std": 1.5} for i, axis in enumerate(AXES)}},
          paths["audiobox_aesthetics"])  # fmt: skip
    return paths
