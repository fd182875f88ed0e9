"""Seeded random weights for PaSST-S (``passt_s_swa_p16_128_ap476``) in the upstream layout.

Shared by ``tools/fixtures/make_passt.py`` (numpy 1.26, loads them into hear21passt) and the
tests (numpy 2.x, loads them into ``t2mbench.metrics.embedders.passt``): both must draw the very same
numbers, so the values come from PCG64's raw 64-bit output (fixed by the algorithm, unlike
``Generator`` methods, whose streams numpy does not promise to keep), split into two 32-bit
words, each turned into a 24-bit uniform in float32. 86 M values in about half a second.

Keys and shapes are the architecture's own (PaSST-S: 768 wide, 12 blocks, 16×16 patches with
stride 10 over 128 mels × 998 frames, 527 classes); ``tests/fixtures/passt/passt_keys.json``
records the upstream model's state dict for comparison.
"""

from __future__ import annotations

import numpy as np

DIM, DEPTH, CLASSES, MLP = 768, 12, 527, 3072
FREQ_PATCHES, TIME_PATCHES = 12, 99


def passt_shapes() -> dict[str, tuple[int, ...]]:
    """Upstream state-dict keys (in ``state_dict()`` order) and shapes of PaSST-S."""
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, DIM),
        "dist_token": (1, 1, DIM),
        "new_pos_embed": (1, 2, DIM),
        "freq_new_pos_embed": (1, DIM, FREQ_PATCHES, 1),
        "time_new_pos_embed": (1, DIM, 1, TIME_PATCHES),
        "patch_embed.proj.weight": (DIM, 1, 16, 16),
        "patch_embed.proj.bias": (DIM,),
    }
    for i in range(DEPTH):
        b = f"blocks.{i}."
        shapes.update({
            b + "norm1.weight": (DIM,), b + "norm1.bias": (DIM,),
            b + "attn.qkv.weight": (3 * DIM, DIM), b + "attn.qkv.bias": (3 * DIM,),
            b + "attn.proj.weight": (DIM, DIM), b + "attn.proj.bias": (DIM,),
            b + "norm2.weight": (DIM,), b + "norm2.bias": (DIM,),
            b + "mlp.fc1.weight": (MLP, DIM), b + "mlp.fc1.bias": (MLP,),
            b + "mlp.fc2.weight": (DIM, MLP), b + "mlp.fc2.bias": (DIM,),
        })  # fmt: skip
    shapes.update({
        "norm.weight": (DIM,), "norm.bias": (DIM,),
        "head.0.weight": (DIM,), "head.0.bias": (DIM,),
        "head.1.weight": (CLASSES, DIM), "head.1.bias": (CLASSES,),
        "head_dist.weight": (CLASSES, DIM), "head_dist.bias": (CLASSES,),
    })  # fmt: skip
    return shapes


def _mean_std(key: str) -> tuple[float, float]:
    """Distribution of one tensor: LayerNorm gains near 1, a wide classifier (logits of a few
    units, so the KL between clips is not tiny), everything else ViT-init-like (std 0.02)."""
    if key.endswith("weight") and ("norm" in key or key.startswith("head.0")):
        return 1.0, 0.05
    if key.startswith("head.1") or key.startswith("head_dist"):
        return 0.0, 0.1
    return 0.0, 0.02


def passt_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float32 weights ``{key: array}`` for every key of :func:`passt_shapes`.

    Each tensor is uniform with the mean and std of :func:`_mean_std`, drawn in key order from
    one PCG64 stream (little-endian word order).
    """
    shapes = passt_shapes()
    sizes = [int(np.prod(s)) for s in shapes.values()]
    total = sum(sizes)
    words = np.random.PCG64(seed).random_raw((total + 1) // 2).view(np.uint32)[:total]
    flat = (words >> np.uint32(8)).astype(np.float32)  # 24-bit integers, exact in float32
    flat *= np.float32(2.0**-23)
    flat -= np.float32(1.0)  # uniform in [-1, 1)
    out: dict[str, np.ndarray] = {}
    start = 0
    for (key, shape), size in zip(shapes.items(), sizes):
        mean, std = _mean_std(key)
        x = flat[start : start + size].reshape(shape)
        x *= np.float32(std * np.sqrt(3.0))
        if mean:
            x += np.float32(mean)
        out[key] = x
        start += size
    return out
