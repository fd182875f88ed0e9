"""In/outpainting with MuseControlLite's audio branch (spec §1.2 audio row, §1.3, §1.4): the audio-only
adapter equals the base at initialisation, the CLI span becomes the spec's audio mask, bad spans are one
error line, and the shipped audio adapter keeps the given context (docs/control_table.md, "Inpainting")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2mbench.core.audio import save_audio
from t2mbench.core.errors import ConfigError
from t2mbench.reference_models import build
from t2mbench.reference_models.adapters.model import musecontrollite

SECONDS = 2.0
SPAN = (0.75, 1.25)  # the region to generate: latent frames [23, 39) (⌊s·16000/512⌋)


def test_audio_only_adapter_at_initialisation_equals_the_base_exactly():
    """The shipped layout (no attribute branch, audio tokens of C·patch = 64 channels) with a reference and an
    inpainting mask given: zero-initialised ``conv_out_audio`` adds exactly nothing."""
    torch.manual_seed(0)
    tiny = build("tiny").eval()
    with torch.no_grad():
        for p in tiny.dit.parameters():  # non-zero residual outputs, so that every path matters
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(2, 32, 24, generator=g), torch.tensor([0.25, 0.8])
    cross, glob = torch.randn(2, 66, 384, generator=g), torch.randn(2, 768, generator=g)
    model = musecontrollite(tiny, (), audio=True, audio_dim=64)
    assert not hasattr(model.adapter.processor(0), "to_k_ip") and model.controls == ("audio",)
    assert model.trainable_parameters() == 6 * (2 * 64 * 192 + 192 * 192) == 368_640
    mask = torch.ones(2, 24)
    mask[:, 8:16] = 0
    out = model(x, t, cross_attn_cond=cross, global_cond=glob, audio=torch.randn_like(x), audio_mask=mask)
    assert torch.equal(out, tiny(x, t, cross_attn_cond=cross, global_cond=glob))


def _span_error(inpaint: str | None, controls: list[str], seconds: float = SECONDS) -> str:
    from t2mbench.reference_models.adapters.inputs import control_inputs

    with pytest.raises(ConfigError) as e:
        control_inputs(build("tiny"), ["a"], seconds, controls, (), "musecontrollite", inpaint)
    return str(e.value)


@pytest.mark.parametrize("inpaint, controls, message", [
    ("0.2-0.5", ["audio=x.wav"], "--inpaint takes START:END in seconds, got '0.2-0.5'"),
    ("a:1", ["audio=x.wav"], "--inpaint takes START:END in seconds, got 'a:1'"),
    ("0:nan", ["audio=x.wav"], "--inpaint takes START:END in seconds, got '0:nan'"),
    ("1.5:0.5", ["audio=x.wav"], "--inpaint 1.5:0.5: END must be after START"),
    ("1:1", ["audio=x.wav"], "--inpaint 1:1: END must be after START"),
    ("1.5:2.5", ["audio=x.wav"], "--inpaint 1.5:2.5: the span must lie inside the clip, 0..2 s"),
    ("-0.5:1", ["audio=x.wav"], "--inpaint -0.5:1: the span must lie inside the clip, 0..2 s"),
    ("0.5:1", [], "--inpaint needs --control audio=PATH (the reference audio around the region to generate)"),
    ("0.5:1", ["melody=x.wav"],
     "--inpaint needs --control audio=PATH (the reference audio around the region to generate)"),
    (None, ["audio=x.wav"], "--control audio needs --inpaint START:END (the region to generate, in seconds)"),
    ("0.5:1", ["audio=x.wav", "melody=x.wav"], "--control audio takes no other control (the audio adapter is "
                                               "trained alone, as MuseControlLite's audio-only adapter)"),
])  # fmt: skip
def test_bad_inpainting_input_is_one_exact_error(inpaint, controls, message):
    assert _span_error(inpaint, controls) == message


def test_a_span_inside_one_latent_frame_is_refused():
    want = "--inpaint 0.5:0.51: the span covers no latent frame (0.032 s each)"
    assert _span_error("0.5:0.51", ["audio=x.wav"]) == want


@pytest.fixture(scope="module")
def shipped():
    from t2mbench.reference_models.adapters.model import AUDIO_ADAPTER, load_shipped_adapter
    from t2mbench.reference_models.generate import load_model

    base = load_model("tiny")
    model = load_shipped_adapter(base, AUDIO_ADAPTER)
    if model is None:
        pytest.fail("the audio adapter is not shipped (reference_models/weights/tiny-control-audio)")
    return base, model


def test_cli_span_is_the_specs_audio_mask(shipped, tmp_path):
    """``--control audio=ref.wav --inpaint 0.75:1.25`` on a 2-s clip: the audio condition is the reference's
    clean latents (posterior mean, model scale) and its mask is 0 exactly on latent frames [23, 39) of the
    clip's 64 (2 s zero-padded to whole DiT patches), the region to generate, 1 elsewhere (spec §1.4:
    audio-only masks zero the audio on [start, end)); w_a defaults to 1."""
    from t2mbench.reference_models.adapters.inputs import control_inputs

    base, _ = shipped
    rng = np.random.default_rng(0)
    audio = (0.2 * np.sin(2 * np.pi * 330 * np.arange(32000) / 16000) + 0.01 * rng.standard_normal(32000))[None]
    save_audio(tmp_path / "ref.wav", audio.astype(np.float32), 16000)
    inputs = control_inputs(base, ["a", "b"], SECONDS, [f"audio={tmp_path / 'ref.wav'}"], (), "musecontrollite",
                            f"{SPAN[0]}:{SPAN[1]}")
    want = torch.ones(2, 64)
    want[:, 23:39] = 0
    assert torch.equal(inputs.masks["audio"], want)
    assert dict(inputs.scales) == {"audio": 1.0} and inputs.model.controls == ("audio",)
    from t2mbench.core.audio import load_audio

    wav, _ = load_audio(tmp_path / "ref.wav", sample_rate=16000, channels="mono")
    with torch.no_grad():
        padded = np.pad(wav, ((0, 0), (0, 64 * 512 - wav.shape[-1])))
        latents = base.pretransform.encode(torch.from_numpy(padded).float()[None], sample=False)
    assert inputs.features["audio"].shape == (2, 32, 64)
    assert torch.allclose(inputs.features["audio"][1], latents[0], atol=1e-5)


def test_shipped_audio_adapter_keeps_the_given_context(shipped, tmp_path):
    """16 test clips (corpus seed 1, 2.048 s = 64 latent frames), inpainting [0.75, 1.25) s with the clip's
    caption, 25 steps, seed 0: outside the region the generated latents' mean squared error to the reference's
    is lower with the audio condition (w_a = 1) than with the text alone, paired 95% bootstrap CI over the
    clips excluding zero."""
    from t2mbench.bench.corpus import build_corpus
    from t2mbench.bench.corpus.splits import load_split_audio, split_clips
    from t2mbench.bench.reproduce.control import context_errors
    from t2mbench.metrics.bootstrap import paired_difference_ci
    from t2mbench.reference_models.adapters.model import span_frames

    base, model = shipped
    build_corpus(tmp_path / "corpus", 16, SECONDS, 1, split="test", progress=False)
    records = split_clips(tmp_path / "corpus", "test")[:16]
    audio = load_split_audio(records, 16000, 1, 64 * 512, progress=False)
    with torch.no_grad():
        reference = base.pretransform.encode(audio, sample=False)
    prompts = [r.caption or "" for r in records]
    without, with_audio = context_errors(base, model, prompts, reference, span_frames(*SPAN, 16000, 512, 64), 0)
    diff, low, high = paired_difference_ci(without, with_audio)
    assert low > 0, (diff, low, high)
    assert (float(without.mean()), float(with_audio.mean()), diff) == pytest.approx(GOLDEN, rel=2e-3)


# mean context error text only, with the audio condition, and their paired difference (CI [0.513, 0.754] when
# pinned): the audio adapter halves the distance to the reference where the reference is given
GOLDEN = (1.1551127433776855, 0.5300315022468567, 0.6250811535865068)
