"""LAION-CLAP audio and text embeddings (laion-clap 1.1.7 = 1.1.4 numerically) in pure PyTorch,
with the preprocessing of stable-audio-metrics' ``clap_score``.

Audio (``embed``): mono by channel mean before resampling (``librosa.load(mono=True)``) → soxr HQ
to 48 kHz → int16 round trip (truncation) → per clip, LAION's ``get_audio_features``:

- clips of at most 10 s (480000 samples) are tiled ``floor(480000 / T)`` times and zero-padded;
- fusion checkpoints compute a torchaudio-style log-mel (``torch.stft``, n_fft = win 1024, hop 480,
  reflect-centred, periodic Hann, power; HTK mel 50-14000 Hz without norm; ``10 log10(max(·, 1e-10))``),
  four copies for a short clip; for a longer clip the mel of the whole clip gives a bilinear
  (no antialias: torchvision 0.16, pinned by stable-audio-metrics) global view resized to
  1001 frames plus three 1001-frame chunks drawn from the front, middle and back thirds of the
  possible starts (``longer``; a clip of fewer than 480480 samples has exactly 1001 frames and
  counts as short);
- non-fusion checkpoints take a random 10 s crop of a longer clip and compute the torchlibrosa
  log-mel inside HTSAT from the checkpoint's DFT kernels and ``melW``;

then HTSAT (:mod:`t2mbench.metrics.embedders.htsat`) → ``audio_projection`` → L2 normalisation.

Random draws: upstream uses numpy's global RNG unseeded (chunks and crops vary run to run).
Here each clip gets a fresh ``numpy.random.RandomState(seed)``, drawn in upstream's order
(``choice`` ×3 for the fusion chunks, ``randint`` for the non-fusion crop; the fusion path's
trailing ``randint`` has no effect on the clip and is not drawn), so an embedding depends only on
the clip and the seed and equals upstream's when ``numpy.random.seed(seed)`` precedes that clip.
The legacy ``RandomState`` (not a ``Generator``) is what reproduces ``np.random.choice``/``randint``.

Peak normalisation to -1 dBFS is the CLAP-score protocol's step, not the embedder's: to reproduce
stable-audio-metrics, downmix, resample to 48 kHz, peak-normalise, then call ``embed`` at 48 kHz
(the ``clap`` metric does this).

Text (``embed_text``): the raw caption, roberta-base's byte-level BPE padded/truncated to 77 tokens
(loaded with ``transformers``), RoBERTa-base written here (12 post-LN layers, eps 1e-5, position ids
from padding_idx + 1, token-type row 0 added, ``tanh`` pooler on the first token) →
``text_projection`` → L2 normalisation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.audio import int16_roundtrip
from t2mbench.core.dsp.filterbanks import mel_filterbank
from t2mbench.core.errors import AudioError, ConfigError, ManifestError, MissingWeightsError, WeightsError
from t2mbench.core.torch_files import load_torch_file
from t2mbench.core.weights import WeightFile, hash_file, register_all, resolve, weights_dir
from t2mbench.metrics.embedders.base import Embedder, TextEmbedder, state_dict_mismatch, state_dict_sha256
from t2mbench.metrics.embedders.htsat import FRAMES, HTSAT, N_MELS

SAMPLE_RATE = 48_000
MAX_SAMPLES = 480_000  # 10 s
N_FFT, HOP = 1024, 480
MIN_SAMPLES = N_FFT  # one STFT window (21.3 ms) at 48 kHz
FADTK_HOP = SAMPLE_RATE  # fadtk's CLAP chunks start every second
JOINT = 512
MAX_TOKENS = 77
ROBERTA_VOCAB, PAD_ID, TEXT_DIM, TEXT_LAYERS, TEXT_HEADS = 50265, 1, 768, 12, 12
VARIANTS = {96: ("HTSAT-tiny", (2, 2, 6, 2)), 128: ("HTSAT-base", (2, 2, 12, 2))}
_HF = "https://huggingface.co/lukewys/laion_clap/resolve/main/"
_NO_HASH = (
    "the sha256 of this Git LFS file on huggingface.co could not be retrieved when this entry was written "
    "(no network); the loader checks every key and shape instead: add the published LFS sha256 here"
)
_CLAP_LICENCE = "CC0-1.0 (LAION-AI/CLAP)"
# The music checkpoints' Git LFS sha256 and size, as pinned identically by several independent projects that
# verify the file downloaded from this URL (one quotes the LFS metadata of lukewys/laion_clap commit 4226474),
# not hashed here (no network); the others still have no recorded hash.
_PINNED = {
    "music_audioset_epoch_15_esc_90.14.pt": "fae3e9c087f2909c28a09dc31c8dfcdacbc42ba44c70e972b58c1bd1caf6dedd",
    "music_speech_audioset_epoch_15_esc_89.98.pt": "51c68f12f9d7ea25fdaaccf741ec7f81e93ee594455410f3bca4f47f88d8e006",
}
_PINNED_NOTE = (
    "sha256 and size of the Git LFS file as pinned identically by several independent projects that verify the "
    "download from this URL; not hashed by t2mbench itself"
)
CHECKPOINTS = {
    name: WeightFile(name, filename, url=_HF + filename, sha256=_PINNED.get(filename), description=desc,
                     size=2_352_471_003 if filename in _PINNED else None,
                     note=_PINNED_NOTE if filename in _PINNED else _NO_HASH, licence=_CLAP_LICENCE)
    for name, filename, desc in [
        ("clap", "630k-audioset-fusion-best.pt", "LAION-CLAP HTSAT-tiny fusion 630k+AudioSet (SAM's default)"),
        ("clap-630k-fusion", "630k-fusion-best.pt", "LAION-CLAP HTSAT-tiny fusion, LAION-Audio-630K"),
        ("clap-630k-audioset", "630k-audioset-best.pt", "LAION-CLAP HTSAT-tiny non-fusion 630k+AudioSet"),
        ("clap-630k", "630k-best.pt", "LAION-CLAP HTSAT-tiny non-fusion, LAION-Audio-630K"),
        ("clap-music-audioset", "music_audioset_epoch_15_esc_90.14.pt", "LAION-CLAP HTSAT-base music+AudioSet"),
        ("clap-music-speech", "music_speech_epoch_15_esc_89.25.pt", "LAION-CLAP HTSAT-base music+speech"),
        ("clap-music-speech-audioset", "music_speech_audioset_epoch_15_esc_89.98.pt",
         "LAION-CLAP HTSAT-base music+speech+AudioSet (MusicGen, AudioLDM2)"),
    ]
}  # fmt: skip
TOKENIZER_FILES = {
    name: WeightFile(
        name=name, filename=f"roberta-base/{filename}", sha256=None,
        url=f"https://huggingface.co/FacebookAI/roberta-base/resolve/main/{filename}",
        description=f"roberta-base tokenizer {filename} (LAION-CLAP text tower)",
        note="a plain git file on huggingface.co (no LFS hash published); checked by its token count, 50265",
        licence="MIT (FacebookAI/roberta-base)",
    )
    for name, filename in [("roberta-base-vocab", "vocab.json"), ("roberta-base-merges", "merges.txt")]
}  # fmt: skip
# the weight files this embedder reads (``t2mbench weights`` lists them through the embedder registry)
WEIGHTS = register_all(*CHECKPOINTS.values(), *TOKENIZER_FILES.values())


class _DenseNorm(nn.Module):
    """RoBERTa's residual output: ``LayerNorm(dense(x) + residual)``, eps 1e-5."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=1e-5)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class RobertaLayer(nn.Module):
    """Post-LN transformer layer (HF ``RobertaLayer`` key names): attention, then erf-GELU FFN."""

    def __init__(self, dim: int = TEXT_DIM, heads: int = TEXT_HEADS, hidden: int = 4 * TEXT_DIM) -> None:
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        qkv = nn.Module()
        qkv.query, qkv.key, qkv.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.attention.add_module("self", qkv)
        self.attention.output = _DenseNorm(dim, dim)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(dim, hidden)
        self.output = _DenseNorm(hidden, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        """``x [B, L, C]``, ``keep [B, 1, 1, L]`` bool → ``[B, n_out or L, C]`` (first ``n_out`` tokens only)."""
        b, length, c = x.shape
        qkv = self.attention.self
        xq = x if n_out is None else x[:, :n_out]

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)

        att = F.scaled_dot_product_attention(
            heads(qkv.query(xq)), heads(qkv.key(x)), heads(qkv.value(x)), attn_mask=keep
        )
        y = self.attention.output(att.transpose(1, 2).reshape(b, -1, c), xq)
        return self.output(F.gelu(self.intermediate.dense(y)), y)


class Roberta(nn.Module):
    """RoBERTa-base encoder + pooler: token ids ``[B, L]`` and mask → ``tanh(W h₀ + b)`` ``[B, 768]``
    (``dim``/``layers``: other sizes in the same layout, for reduced test checkpoints; one head per 64
    channels, at least one, off RoBERTa-base's width)."""

    def __init__(self, vocab: int = ROBERTA_VOCAB, dim: int = TEXT_DIM, layers: int = TEXT_LAYERS) -> None:
        super().__init__()
        heads = TEXT_HEADS if dim == TEXT_DIM else max(1, dim // 64)
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(vocab, dim)
        self.embeddings.position_embeddings = nn.Embedding(514, dim)
        self.embeddings.token_type_embeddings = nn.Embedding(1, dim)
        self.embeddings.LayerNorm = nn.LayerNorm(dim, eps=1e-5)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(RobertaLayer(dim, heads, 4 * dim) for _ in range(layers))
        self.pooler = nn.Module()
        self.pooler.dense = nn.Linear(dim, dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``ids``, ``mask`` ``[B, L]`` (right-padded) → ``[B, 768]``. Columns that are padding in every row
        are dropped first: masked keys carry zero attention weight, so the result is the same, cheaper."""
        used = int(mask.sum(dim=1).max())
        ids, mask = ids[:, :used], mask[:, :used]
        emb = self.embeddings
        real = (ids != PAD_ID).long()
        positions = torch.cumsum(real, dim=1) * real + PAD_ID  # real tokens from 2, padding at 1
        x = emb.word_embeddings(ids) + emb.token_type_embeddings.weight[0] + emb.position_embeddings(positions)
        x = emb.LayerNorm(x)
        keep = mask.bool()[:, None, None, :]
        for layer in self.encoder.layer[:-1]:
            x = layer(x, keep)
        x = self.encoder.layer[-1](x, keep, n_out=1)  # only the first token is pooled
        return torch.tanh(self.pooler.dense(x[:, 0]))


def _projection(d_in: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, JOINT), nn.ReLU(), nn.Linear(JOINT, JOINT))


@dataclass(frozen=True)
class Variant:
    """Which LAION-CLAP model a checkpoint holds (read from its keys and shapes).

    ``dim`` 96 / 128 with their published ``depths`` (filled in when not given) are HTSAT-tiny / -base;
    other widths or depths, and a RoBERTa other than base (``text_dim``, ``text_layers``), are reduced
    networks in the same layout (seeded test checkpoints).
    """

    dim: int
    fusion: bool
    depths: tuple[int, ...] = ()
    text_dim: int = TEXT_DIM
    text_layers: int = TEXT_LAYERS

    def __post_init__(self) -> None:
        if not self.depths:
            object.__setattr__(self, "depths", VARIANTS[self.dim][1])

    @property
    def audio_model(self) -> str:
        if self.dim in VARIANTS and self.depths == VARIANTS[self.dim][1]:
            return VARIANTS[self.dim][0]
        return f"HTSAT (reduced: width {self.dim}, depths {list(self.depths)})"

    @property
    def published(self) -> bool:
        """HTSAT-tiny or -base with RoBERTa-base: the sizes of a published checkpoint."""
        return self.audio_model in ("HTSAT-tiny", "HTSAT-base") and (self.text_dim, self.text_layers) == (
            TEXT_DIM, TEXT_LAYERS)

    def describe(self) -> str:
        text = ("RoBERTa-base" if (self.text_dim, self.text_layers) == (TEXT_DIM, TEXT_LAYERS)
                else f"RoBERTa (reduced: width {self.text_dim}, {self.text_layers} layers)")
        return f"{self.audio_model} {'fusion (aff_2d)' if self.fusion else 'non-fusion'} + {text}"

    def unused_shapes(self) -> dict[str, tuple[int, ...]]:
        """Checkpoint tensors that play no part in the embeddings (AudioSet head, training-only MLPs,
        logit scales, and the torchlibrosa front end of fusion models)."""
        width = self.dim * 8
        shapes = {
            "audio_branch.tscam_conv.weight": (527, width, 2, 3), "audio_branch.tscam_conv.bias": (527,),
            "audio_branch.head.weight": (527, 527), "audio_branch.head.bias": (527,),
            "logit_scale_a": (), "logit_scale_t": (),
        }  # fmt: skip
        for branch in ("audio_transform", "text_transform"):
            for i in (0, 3):
                shapes |= {f"{branch}.sequential.{i}.weight": (JOINT, JOINT), f"{branch}.sequential.{i}.bias": (JOINT,)}
        if self.fusion:
            for part in ("real", "imag"):
                shapes[f"audio_branch.spectrogram_extractor.stft.conv_{part}.weight"] = (513, 1, N_FFT)
            shapes["audio_branch.logmel_extractor.melW"] = (513, N_MELS)
        return shapes


class ClapModel(nn.Module):
    """The LAION-CLAP towers used for embeddings, with the checkpoint's key names."""

    def __init__(self, variant: Variant) -> None:
        super().__init__()
        self.audio_branch = HTSAT(variant.dim, variant.depths, variant.fusion)
        self.audio_projection = _projection(variant.dim * 8)
        self.text_branch = Roberta(dim=variant.text_dim, layers=variant.text_layers)
        self.text_projection = _projection(variant.text_dim)


def _read_checkpoint(path: Path) -> Any:
    return load_torch_file(path, what="the LAION-CLAP checkpoint",
                           hint=f"; the file is truncated or not a torch checkpoint: download it again from "
                                f"{_HF}{path.name}")  # fmt: skip


def normalise_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The model weights of a LAION-CLAP checkpoint as laion-clap's ``load_state_dict`` takes them:
    the ``state_dict`` entry of a training dict (or the dict itself), a leading ``module.`` stripped,
    ``text_branch.embeddings.position_ids`` dropped when present."""
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(state, Mapping) or not state:
        raise WeightsError(f"{source}: holds {type(state).__name__}, not a LAION-CLAP state dict")
    if next(iter(state)).startswith("module"):
        state = {k[7:]: v for k, v in state.items()}
    return {k: v for k, v in state.items() if k != "text_branch.embeddings.position_ids"}


def detect_variant(state: Mapping[str, Any], source: str) -> Variant:
    """HTSAT width (tiny 96, base 128) and fusion from the checkpoint's keys; the stage depths and the
    text tower's width and depth from its keys and shapes (published checkpoints: those of their
    width; a reduced checkpoint in the same layout: its own)."""
    proj = state.get("audio_branch.patch_embed.proj.weight")
    blocks = [k for k in state if k.startswith("audio_branch.layers.") and k.endswith(".norm1.weight")]
    counts = [sum(1 for k in blocks if k.startswith(f"audio_branch.layers.{i}.")) for i in range(4)]
    depths = tuple(n for n in counts if n)
    words = state.get("text_branch.embeddings.word_embeddings.weight")
    known = isinstance(proj, torch.Tensor) and proj.ndim == 4 and (proj.shape[0] in VARIANTS or len(depths) == 4)
    if not known or not isinstance(words, torch.Tensor) or words.ndim != 2:
        raise WeightsError(
            f"{source}: not a LAION-CLAP HTSAT checkpoint (audio_branch.patch_embed.proj.weight is "
            f"{tuple(proj.shape) if isinstance(proj, torch.Tensor) else 'missing'}; first keys {list(state)[:3]}); "
            f"use one of {', '.join(wf.filename for wf in CHECKPOINTS.values())} from {_HF}"
        )
    text_layers = sum(1 for k in state if k.startswith("text_branch.encoder.layer.")
                      and k.endswith(".attention.self.query.weight"))  # fmt: skip
    return Variant(dim=int(proj.shape[0]), fusion="audio_branch.patch_embed.mel_conv2d.weight" in state,
                   depths=depths if len(depths) == 4 else (), text_dim=int(words.shape[1]),
                   text_layers=text_layers or TEXT_LAYERS)


def _check_keys(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any], source: str, what: str) -> None:
    problem = state_dict_mismatch(expected, state)
    if problem:
        raise WeightsError(f"{source}: not a LAION-CLAP {what} checkpoint: {problem}")


def build_model(state: Mapping[str, torch.Tensor], source: str, *, copy: bool) -> tuple[ClapModel, Variant]:
    """The model of the checkpoint's variant holding its tensors as float32, keys and shapes checked.

    ``copy=False`` adopts the tensors themselves (a state dict in memory); ``copy=True`` copies the
    used ones out of a memory-mapped file, so the optimizer state of a training checkpoint is never
    read and the network runs from ordinary memory.
    """
    variant = detect_variant(state, source)
    with torch.device("meta"):  # no random init: every tensor comes from the checkpoint
        model = ClapModel(variant)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    _check_keys(expected | variant.unused_shapes(), state, source, variant.describe())
    used = {k: state[k].float() if state[k].is_floating_point() else state[k] for k in expected}
    if copy:
        used = {k: v.clone() for k, v in used.items()}
    model.load_state_dict(used, strict=True, assign=True)
    return model.eval(), variant


def load_tokenizer(directory: str | os.PathLike | None = None, vocab_size: int = ROBERTA_VOCAB) -> Any:
    """roberta-base's tokenizer (``transformers.RobertaTokenizer``) from ``directory`` (holding
    ``vocab.json`` and ``merges.txt``), else ``$T2MBENCH_HOME/weights/roberta-base/``, else the
    Hugging Face cache; never downloads.

    Raises:
        MissingWeightsError: the files are nowhere (the message says where to get and put them).
        WeightsError: the tokenizer does not have ``vocab_size`` tokens or RoBERTa's special ids.
    """
    from transformers import RobertaTokenizer

    if directory is None:
        directory = _tokenizer_dir()
    directory = Path(directory)
    for name in ("vocab.json", "merges.txt"):
        if not (directory / name).is_file():
            raise MissingWeightsError(f"tokenizer file {directory / name} not found; {_tokenizer_help()}")
    tok = RobertaTokenizer.from_pretrained(str(directory), local_files_only=True)
    if len(tok) != vocab_size:
        raise WeightsError(
            f"the tokenizer in {directory} has {len(tok)} tokens, the CLAP text tower expects roberta-base's "
            f"{vocab_size} (recent transformers load an empty tokenizer when roberta-base's files are missing); "
            f"{_tokenizer_help()}"
        )
    ids = (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id)
    if ids != (0, PAD_ID, 2):
        raise WeightsError(f"the tokenizer in {directory} has <s>, <pad>, </s> ids {ids}, not roberta-base's (0, 1, 2)")
    return tok


def _tokenizer_help() -> str:
    urls = " and ".join(wf.url for wf in TOKENIZER_FILES.values())
    return (
        f"download {urls} into {weights_dir() / 'roberta-base'} (or run `t2mbench weights fetch roberta-base-vocab` "
        "and `... roberta-base-merges`), or pass tokenizer=DIR"
    )


def _tokenizer_dir() -> Path:
    try:
        return [resolve(name) for name in TOKENIZER_FILES][0].parent
    except MissingWeightsError:
        pass
    from huggingface_hub import try_to_load_from_cache

    for repo in ("FacebookAI/roberta-base", "roberta-base"):
        found = [try_to_load_from_cache(repo, name) for name in ("vocab.json", "merges.txt")]
        if all(isinstance(p, str) for p in found) and Path(found[0]).parent == Path(found[1]).parent:
            return Path(found[0]).parent
    raise MissingWeightsError(
        f"roberta-base's vocab.json and merges.txt are not in t2mbench's weights or the HF cache; {_tokenizer_help()}"
    )


def _resolve_checkpoint(checkpoint: str | os.PathLike | None, verify: bool) -> tuple[Path, str]:
    """(path, description): a registered name, a path (registered files matched by name), or the default."""
    if checkpoint is None or (isinstance(checkpoint, str) and checkpoint in CHECKPOINTS):
        wf = CHECKPOINTS[checkpoint or "clap"]
        return resolve(wf.name, verify=verify), wf.filename
    path = Path(checkpoint)
    for wf in CHECKPOINTS.values():
        if path.name == wf.filename:
            return resolve(wf.name, path, verify=verify), wf.filename
    if not path.is_file():
        raise MissingWeightsError(f"CLAP checkpoint {path} not found; known files: {', '.join(CHECKPOINTS)}")
    return path, path.name


class ClapEmbedder(TextEmbedder):
    """LAION-CLAP joint embeddings as stable-audio-metrics computes them (see the module docstring).

    ``embed(audio [B, C, T] float, sample_rate) -> [B, 512]`` and ``embed_text(captions) -> [B, 512]``,
    both float32, L2-normalised, on the CPU. Any rate is resampled (soxr HQ) to 48 kHz; any channel
    count is downmixed by the mean first.

    On CUDA, torch's default TF32 convolutions (``torch.backends.cudnn.allow_tf32``, left as the caller
    set it) move audio embeddings by up to ~8e-5 relative (H100); with it off they match the CPU to ~1e-6.
    """

    name = "clap"
    sample_rate = SAMPLE_RATE
    protocol_version = "sam-clap-1"

    def __init__(self, model: ClapModel, variant: Variant, tokenizer: Any, *, weights_sha256: str, checkpoint: str,
                 seed: int = 0, batch_size: int = 8) -> None:  # fmt: skip
        if batch_size < 1:
            raise ConfigError(f"CLAP batch_size must be at least 1, got {batch_size}")
        self.model, self.variant, self.tokenizer = model, variant, tokenizer
        self.weights_sha256, self.checkpoint, self.seed, self.batch_size = weights_sha256, checkpoint, seed, batch_size
        device = next(model.parameters()).device
        self.window = torch.hann_window(N_FFT, device=device)
        bank = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 50.0, 14000.0, scale="htk", norm=None)
        self.mel_bank = torch.from_numpy(bank.T.astype(np.float32)).to(device)  # [513, 64]

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "model": self.variant.describe(),
            "checkpoint": self.checkpoint,
            "weights_sha256": self.weights_sha256,
            "seed": self.seed,
            "random_draws": "numpy RandomState(seed) per clip: choice x3 (fusion chunks) / randint (non-fusion crop)",
            "downmix": "channel mean before resampling",
            "resampler": "soxr HQ",
            "quantisation": "int16 round trip (clip, x32767, truncate, /32767)",
            "max_samples": MAX_SAMPLES,
            "filling": "repeatpad",
            "fusion_global_view": "bilinear, no antialias (torchvision 0.16)",
            "text_max_tokens": MAX_TOKENS,
            "peak_normalisation": "none here: the clap metric peak-normalises to -1 dBFS at 48 kHz before embed",
        }

    def _fusion_logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """torchaudio ``MelSpectrogram`` + ``AmplitudeToDB`` as LAION's ``get_mel``: ``[T]`` → ``[1 + T//480, 64]``."""
        spec = torch.stft(wave, N_FFT, HOP, window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()  # [513, frames]
        return 10.0 * torch.log10((power.T @ self.mel_bank).clamp_min(1e-10))

    def _features(self, wave: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """One quantised 48 kHz clip ``[T]`` → model input (fusion ``[4, 1001, 64]`` log-mel, else the
        ``[480000]`` waveform) and ``longer``."""
        rng = np.random.RandomState(self.seed)
        n = wave.shape[0]
        if n <= MAX_SAMPLES:
            wave = F.pad(wave.repeat(MAX_SAMPLES // n), (0, MAX_SAMPLES % n))  # repeatpad
        elif not self.variant.fusion:
            start = int(rng.randint(0, n - MAX_SAMPLES + 1))
            return wave[start : start + MAX_SAMPLES], False
        if not self.variant.fusion:
            return wave, False
        mel = self._fusion_logmel(wave)
        total = mel.shape[0]
        if total == FRAMES:
            return mel.expand(4, -1, -1), False
        thirds = [part if len(part) else np.array([0]) for part in np.array_split(np.arange(total - FRAMES + 1), 3)]
        starts = [int(rng.choice(part)) for part in thirds]
        glob = F.interpolate(mel[None, None], (FRAMES, N_MELS), mode="bilinear", align_corners=False, antialias=False)
        return torch.stack([glob[0, 0]] + [mel[s : s + FRAMES] for s in starts]), True

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``[B, C, T]`` float audio at ``sample_rate`` Hz → ``[B, 512]`` unit-norm float32 (CPU).

        Raises:
            AudioError: not ``[B, C, T]``, non-finite samples, or shorter than 1024 samples at 48 kHz
                (one STFT window; upstream would tile such a clip hundreds of times).
        """
        waves = self._quantised_mono(audio, sample_rate)
        out = []
        with torch.inference_mode():
            for chunk in waves.split(self.batch_size):
                feats = [self._features(w) for w in chunk]
                x = torch.stack([f for f, _ in feats])
                out.append(self._audio_embedding(x, torch.tensor([flag for _, flag in feats], device=x.device)))
        return torch.cat(out).float().cpu()

    def _quantised_mono(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Checked ``[B, C, T]`` → channel mean, soxr HQ to 48 kHz, int16 round trip: ``[B, T']`` on the device."""
        if audio.ndim != 3 or 0 in audio.shape:
            raise AudioError(f"CLAP expects audio of shape [batch, channels, samples], got {tuple(audio.shape)}")
        if not torch.isfinite(audio).all():
            raise AudioError("CLAP input contains NaN or Inf samples")
        mono = self.to_rate(audio.float().mean(dim=1, keepdim=True), sample_rate)[:, 0]
        if mono.shape[-1] < MIN_SAMPLES:
            raise AudioError(
                f"CLAP needs at least {MIN_SAMPLES} samples ({MIN_SAMPLES / SAMPLE_RATE * 1000:.1f} ms, one STFT "
                f"window) at {SAMPLE_RATE} Hz; got {mono.shape[-1]} ({audio.shape[-1]} at {sample_rate} Hz): "
                "pad or drop the clip"
            )
        return torch.from_numpy(int16_roundtrip(mono.cpu().numpy())).to(self.window.device)

    def _audio_embedding(self, x: torch.Tensor, longer: torch.Tensor) -> torch.Tensor:
        """Model inputs (``[N, 480000]`` waves, or fusion ``[N, 4, 1001, 64]`` log-mels) → ``[N, 512]`` unit-norm."""
        if not self.variant.fusion:
            x = self.model.audio_branch.logmel(x)
        return F.normalize(self.model.audio_projection(self.model.audio_branch(x, longer)), dim=-1)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """Captions → ``[B, 512]`` unit-norm float32 (CPU), 77 tokens at most, in batches of 64.

        Raises:
            ManifestError: no captions, or a caption that is not a string or is empty/blank.
        """
        if isinstance(texts, str) or not len(texts):
            raise ManifestError("embed_text needs a non-empty list of captions")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ManifestError(f"caption {i} is {t!r}: every clip needs a non-empty caption for the CLAP score")
        device = self.window.device
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 64):
                tokens = self.tokenizer(list(texts[i : i + 64]), padding="max_length", truncation=True,
                                        max_length=MAX_TOKENS, return_tensors="pt")  # fmt: skip
                pooled = self.model.text_branch(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
                out.append(F.normalize(self.model.text_projection(pooled), dim=-1))
        return torch.cat(out).float().cpu()


def load_clap(
    checkpoint: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    tokenizer: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    verify: bool = True,
    batch_size: int = 8,
) -> ClapEmbedder:
    """Build the CLAP embedder from a published LAION-CLAP checkpoint, unchanged.

    Args:
        checkpoint: ``None`` for ``630k-audioset-fusion-best.pt`` (stable-audio-metrics' default), a
            registered name (``clap-music-audioset``, ...), a path to a checkpoint (training dict
            with ``state_dict`` or bare; ``module.`` prefixes and ``position_ids`` handled), or a
            state dict built in memory (its tensors are adopted, not copied). The variant
            (HTSAT-tiny/-base, fusion or not), and so the front end, is read from its keys.
        tokenizer: directory with roberta-base's ``vocab.json`` and ``merges.txt`` (default: t2mbench's
            weights folder, then the Hugging Face cache).
        device: where the networks run (``embed`` still takes and returns CPU-side tensors).
        seed: numpy seed of each clip's random chunk/crop draws (clips longer than 10 s).
        verify: check a registered file's sha256 where one is published.
        batch_size: clips per forward pass.

    Raises:
        MissingWeightsError: the checkpoint or tokenizer files are absent (the message says where to put them).
        WeightsError: unreadable or truncated file, a checkpoint of another model, or a tokenizer
            that is not roberta-base's (e.g. the empty one transformers loads offline).
    """
    if isinstance(checkpoint, Mapping):
        state, source = normalise_state_dict(checkpoint, "in-memory state dict"), "in-memory state dict"
        model, variant = build_model(state, source, copy=False)
        sha, name = state_dict_sha256(state), source
    else:
        path, name = _resolve_checkpoint(checkpoint, verify)
        model, variant = build_model(normalise_state_dict(_read_checkpoint(path), str(path)), str(path), copy=True)
        sha = hash_file(path)
    vocab = model.text_branch.embeddings.word_embeddings.num_embeddings
    tok = load_tokenizer(tokenizer, vocab)
    return ClapEmbedder(
        model.to(device), variant, tok, weights_sha256=sha, checkpoint=name, seed=seed, batch_size=batch_size
    )


class ClapMusicEmbedder(ClapEmbedder):
    """fadtk's ``clap-laion-music`` frames (``CLAPLaionModel('music')``, fadtk 1.1.0): audio only.

    ``embed(audio [B, C, T], sample_rate) -> [B, ceil(T' / 48000), 512]`` unit-norm float32 (CPU), T' the
    length at 48 kHz: channel mean, soxr HQ to 48 kHz (fadtk: ffmpeg), int16 round trip of the whole
    clip (clip, ×32767, truncate, ÷32767), then a 10 s chunk starting at every whole second
    (``audio[i : i + 480000]`` for i = 0, 48000, ... < T'), each zero-padded to 10 s and embedded by
    ``get_audio_embedding_from_data`` (a 10 s input takes neither the repeat-pad nor the random crop).
    HTSAT-base non-fusion checkpoints only (fadtk: ``music_audioset_epoch_15_esc_90.14.pt``).
    """

    name = "clap_music"
    protocol_version = "fadtk-clap-laion-music-1"

    def settings(self) -> dict[str, Any]:
        return {
            **Embedder.settings(self), "model": self.variant.describe(), "checkpoint": self.checkpoint,
            "weights_sha256": self.weights_sha256, "downmix": "channel mean before resampling", "resampler": "soxr HQ",
            "quantisation": "int16 round trip (clip, x32767, truncate, /32767)",
            "chunks": f"{MAX_SAMPLES} samples every {FADTK_HOP}, zero-padded (fadtk)",
        }  # fmt: skip

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        waves = self._quantised_mono(audio, sample_rate)
        b, n = waves.shape
        n_chunks = -(-n // FADTK_HOP)
        padded = F.pad(waves, (0, (n_chunks - 1) * FADTK_HOP + MAX_SAMPLES - n))
        chunks = padded.unfold(-1, MAX_SAMPLES, FADTK_HOP).reshape(b * n_chunks, MAX_SAMPLES)
        with torch.inference_mode():
            out = [self._audio_embedding(x, torch.zeros(len(x), dtype=torch.bool, device=x.device))
                   for x in chunks.split(self.batch_size)]  # fmt: skip
        return torch.cat(out).float().cpu().view(b, n_chunks, JOINT)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        raise ConfigError("the clap_music embedder is audio-only (fadtk's CLAP-music FAD); use 'clap' for captions")


def load_clap_music(
    checkpoint: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    device: str | torch.device = "cpu",
    verify: bool = True,
    batch_size: int = 8,
) -> ClapMusicEmbedder:
    """fadtk's CLAP-music embedder (:class:`ClapMusicEmbedder`); no tokenizer is needed.

    Args:
        checkpoint: ``None`` for ``music_audioset_epoch_15_esc_90.14.pt`` (fadtk's ``clap-laion-music``),
            ``clap-music-speech-audioset`` (MusicGen's), another registered name, a path, or a state dict.
        device, verify, batch_size: as :func:`load_clap` (``batch_size``: 10 s chunks per forward pass).

    Raises:
        MissingWeightsError: the checkpoint is absent (the message says where to put it).
        WeightsError: unreadable file, another model, or a fusion / HTSAT-tiny checkpoint.
    """
    if isinstance(checkpoint, Mapping):
        state, source = normalise_state_dict(checkpoint, "in-memory state dict"), "in-memory state dict"
        model, variant = build_model(state, source, copy=False)
        sha, name = state_dict_sha256(state), source
    else:
        path, name = _resolve_checkpoint(checkpoint or "clap-music-audioset", verify)
        model, variant = build_model(normalise_state_dict(_read_checkpoint(path), str(path)), str(path), copy=True)
        sha = hash_file(path)
    if variant.fusion or (variant.published and variant.audio_model != "HTSAT-base"):
        raise WeightsError(f"{name}: a {variant.describe()} checkpoint; fadtk's CLAP-music FAD uses HTSAT-base "
                           f"non-fusion ({CHECKPOINTS['clap-music-audioset'].filename})")  # fmt: skip
    return ClapMusicEmbedder(model.to(device), variant, None, weights_sha256=sha, checkpoint=name,
                             batch_size=batch_size)  # fmt: skip


__all__ = [
    "ClapEmbedder", "ClapModel", "ClapMusicEmbedder", "Roberta", "load_clap", "load_clap_music", "load_tokenizer",
    "normalise_state_dict",
]  # fmt: skip
