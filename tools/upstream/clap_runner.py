"""Upstream LAION-CLAP runner: laion-clap (1.1.7; 1.1.4 computes the same numbers) with
stable-audio-metrics' ``clap_score`` call sequence.

A standalone script for another python (one with laion-clap, librosa and transformers; t2mbench
never imports it)::

    python tools/upstream/clap_runner.py --weights 630k-audioset-fusion-best.pt \\
        --in in.npz --out out.npz [--texts texts.json] [--tokenizer DIR] [--seed 0]

``in.npz``: ``audio`` [N, C, T] float32 (already peak-normalised), ``sample_rate``, and optionally
``texts`` [M] (captions; ``--texts`` gives them as a JSON list instead).
``out.npz``: ``embeddings`` [N, 512] float32, and ``text_embeddings`` [M, 512] when captions were given.

Per clip, as ``stable-audio-metrics/src/clap_score.py`` after its loading and normalisation:
``librosa.to_mono`` → ``librosa.resample(res_type="soxr_hq")`` to 48 kHz → int16 round trip →
``numpy.random.seed(seed)`` → ``CLAP_Module.get_audio_embedding_from_data(x=[1, T], use_tensor=True)``.
stable-audio-metrics does not seed numpy; seeding right before each clip makes the fusion chunks
of clips longer than 10 s (and the non-fusion random crop) reproducible, and is what
``t2mbench.metrics.embedders.clap`` does. Captions go through ``get_text_embedding(use_tensor=True)``.

Offline construction (nothing is downloaded): laion-clap builds its text tower with
``RobertaModel.from_pretrained("roberta-base")`` and then overwrites every tensor from the
checkpoint, so the tower is built from roberta-base's config instead; the tokenizer comes from
``--tokenizer`` (a directory with ``vocab.json`` and ``merges.txt``), else
``$T2MBENCH_HOME/weights/roberta-base`` (default ``~/.cache/t2mbench``), else the Hugging Face
cache, and must have 50265 tokens (recent transformers load an empty one offline). The model
variant (fusion or not, HTSAT-tiny or -base) is read from the checkpoint's keys. torchvision's
``Resize`` is called without antialiasing, as stable-audio-metrics' pinned torchvision 0.16 does
(newer torchvision antialiases by default, which changes the fusion global view).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # laion-clap loads tokenizers at import time

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402, TID251  (the runner runs only under the upstream python)
from transformers import RobertaConfig, RobertaModel, RobertaTokenizer  # noqa: E402

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    import laion_clap  # noqa: E402
    from laion_clap.clap_module import model as clap_model_module  # noqa: E402
    from laion_clap.training.data import float32_to_int16, int16_to_float32  # noqa: E402

SR = 48000
ROBERTA_VOCAB = 50265
ROBERTA_BASE = RobertaConfig(
    vocab_size=ROBERTA_VOCAB, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
    pad_token_id=1, bos_token_id=0, eos_token_id=2,
)  # fmt: skip

# torchvision 0.16 (pinned by stable-audio-metrics) resizes tensors without antialiasing
torchvision.transforms.Resize = functools.partial(torchvision.transforms.Resize, antialias=False)
clap_model_module.RobertaModel.from_pretrained = classmethod(lambda cls, *args, **kwargs: RobertaModel(ROBERTA_BASE))


def read_state_dict(weights: str) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict as stable-audio-metrics loads it: ``state_dict`` entry, ``module.``
    stripped, ``text_branch.embeddings.position_ids`` popped."""
    ckpt = torch.load(weights, map_location="cpu", weights_only=True)
    state = ckpt["state_dict"] if "state_dict" in ckpt else ckpt
    if next(iter(state)).startswith("module"):
        state = {k[7:]: v for k, v in state.items()}
    state.pop("text_branch.embeddings.position_ids", None)
    return state


def find_tokenizer(directory: str | None) -> RobertaTokenizer:
    """roberta-base's tokenizer from ``directory``, t2mbench's weights folder or the HF cache."""
    home = Path(os.environ.get("T2MBENCH_HOME") or Path.home() / ".cache" / "t2mbench")
    local = Path(directory) if directory else home / "weights" / "roberta-base"
    if (local / "vocab.json").is_file():
        tok = RobertaTokenizer.from_pretrained(str(local))
    else:
        tok = RobertaTokenizer.from_pretrained("roberta-base", local_files_only=True)
    if len(tok) != ROBERTA_VOCAB:
        raise SystemExit(f"the roberta-base tokenizer loaded with {len(tok)} tokens, not {ROBERTA_VOCAB}")
    return tok


def build_module(state: dict[str, torch.Tensor], tokenizer: RobertaTokenizer) -> laion_clap.CLAP_Module:
    """``CLAP_Module`` of the checkpoint's variant with ``state`` loaded strictly, in eval mode."""
    fusion = "audio_branch.patch_embed.mel_conv2d.weight" in state
    amodel = "HTSAT-base" if state["audio_branch.patch_embed.proj.weight"].shape[0] == 128 else "HTSAT-tiny"
    with contextlib.redirect_stdout(io.StringIO()):
        module = laion_clap.CLAP_Module(enable_fusion=fusion, device="cpu", amodel=amodel)
    module.model.load_state_dict(state, strict=True)
    module.tokenize = tokenizer
    return module.eval()


def to_48k_mono(x: np.ndarray, sr: int) -> np.ndarray:
    """``librosa.load(sr=48000, mono=True)``'s processing of decoded samples ``[C, T]``."""
    return librosa.resample(librosa.to_mono(x), orig_sr=sr, target_sr=SR, res_type="soxr_hq")


def audio_embedding(module: laion_clap.CLAP_Module, wave: np.ndarray, seed: int) -> np.ndarray:
    """stable-audio-metrics' per-file call on mono 48 kHz ``[T]`` with numpy seeded first → ``[512]``."""
    audio = torch.from_numpy(int16_to_float32(float32_to_int16(wave.reshape(1, -1)))).float()
    np.random.seed(seed)
    with torch.no_grad():
        return module.get_audio_embedding_from_data(x=audio, use_tensor=True)[0].numpy()


def text_embeddings(module: laion_clap.CLAP_Module, texts: list[str]) -> np.ndarray:
    """stable-audio-metrics' caption embeddings, in batches of 64 → ``[M, 512]``."""
    out = []
    for i in range(0, len(texts), 64):
        with torch.no_grad():
            out.append(module.get_text_embedding(texts[i : i + 64], use_tensor=True).numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="CLAP checkpoint in the upstream layout (.pt)")
    parser.add_argument("--in", dest="inp", required=True, help="npz with audio [N, C, T], sample_rate (, texts)")
    parser.add_argument("--out", required=True, help="npz to write embeddings [N, 512] (and text_embeddings) to")
    parser.add_argument("--texts", help="JSON list of captions (instead of the npz's texts)")
    parser.add_argument("--tokenizer", help="directory with roberta-base's vocab.json and merges.txt")
    parser.add_argument("--seed", type=int, default=0, help="numpy seed set before each clip (default 0)")
    args = parser.parse_args()
    data = np.load(args.inp)
    audio, sr = data["audio"], int(data["sample_rate"])
    texts = (
        json.loads(Path(args.texts).read_text()) if args.texts else data["texts"].tolist() if "texts" in data else []
    )
    module = build_module(read_state_dict(args.weights), find_tokenizer(args.tokenizer))
    out = {"embeddings": np.stack([audio_embedding(module, to_48k_mono(x, sr), args.seed) for x in audio])}
    if texts:
        out["text_embeddings"] = text_embeddings(module, [str(t) for t in texts])
    np.savez(args.out, **{k: v.astype(np.float32) for k, v in out.items()})


if __name__ == "__main__":
    main()
