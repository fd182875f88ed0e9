"""Time MERT-v1-95M frames the fadtk way (run in the upstream env: transformers 4.52.3, fadtk 1.1.0).

    python benchmarks/upstream/mert_time.py --mert-source DIR --seconds 30 --repeats 2

``DIR`` holds the hub's ``modeling_MERT.py`` and ``configuration_MERT.py`` (see
``tools/fixtures/make_mert.py``). Builds the full-size ``MERTModel(MERTConfig())`` with fadtk's
``conv_pos_batch_norm = False`` and seeded N(0, 0.02) weights (the cost does not depend on them), the
feature extractor fadtk loads (``do_normalize``, 24 kHz, attention mask), and times fadtk's
``MERTModel(layer=12).get_embedding(audio)`` with that model and extractor plugged in (model building
excluded). Prints one JSON line: ``best_s``, ``frames``, ``peak_rss_mib`` (the process's peak resident
memory), ``attn_implementation`` and versions.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mert-source", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import transformers
    from fadtk.model_loader import MERTModel as FadtkMert
    from transformers import Wav2Vec2FeatureExtractor

    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "mert_hub"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        for name in ("modeling_MERT.py", "configuration_MERT.py"):
            shutil.copy(args.mert_source / name, pkg / name)
        sys.path.insert(0, tmp)
        configuration = importlib.import_module("mert_hub.configuration_MERT")
        modeling = importlib.import_module("mert_hub.modeling_MERT")
    cfg = configuration.MERTConfig()
    cfg.conv_pos_batch_norm = False
    torch.manual_seed(0)
    model = modeling.MERTModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    loader = FadtkMert(layer=12)
    loader.model, loader.device = model, torch.device("cpu")
    loader.processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0,
                                                do_normalize=True, return_attention_mask=True)  # fmt: skip
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, int(args.seconds * 24000)).astype(np.float32)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        frames = loader.get_embedding(audio)
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "best_s": min(times),
        "frames": int(frames.shape[0]),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
