"""Control-adapter training: the mask schemes' coverage (the upstream scheme never shows a whole
condition, the reason the first MuseControlLite adapter did not control; docs/control_table.md) and
``t2mbench train control`` end to end (config, refusal, shipped weights equal to the run's EMA)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from t2mbench.bench.train.control import span_masks

FRAMES = 64
ROWS = 4000
SPAN = (FRAMES + 1) / 3 / FRAMES  # E[n2 - n1] / F for two distinct frames drawn from 0..F-1


def _draw(scheme: str) -> tuple[torch.Tensor, torch.Tensor]:
    keep_text, masks = span_masks(ROWS, FRAMES, ("melody",), torch.Generator().manual_seed(0), scheme)
    return keep_text, masks["melody"]


def _one_span_or_constant(m: torch.Tensor) -> bool:
    """Each row is all 0, all 1, or 1 (or 0) on one contiguous run of frames: at most two changes."""
    return bool((m.diff(dim=1).ne(0).sum(dim=1) <= 2).all())


def test_upstream_masks_never_show_the_whole_condition():
    keep_text, m = _draw("musecontrollite")
    coverage = m.mean(dim=1)
    assert int((coverage == 1).sum()) == 0
    # 0.45·0.5·(1 − span) + 0.45·0.5·span = 0.225 of all frames carry the condition
    assert float(coverage.mean()) == pytest.approx(0.225, abs=0.01)
    # r < 0.1 skips the second caption draw
    assert float((~keep_text).float().mean()) == pytest.approx(0.1 + 0.9 * 0.9 * 0.2, abs=0.015)
    assert _one_span_or_constant(m)


def test_light_masks_show_the_whole_condition_half_the_time():
    keep_text, m = _draw("light")
    coverage = m.mean(dim=1)
    assert float((coverage == 1).float().mean()) == pytest.approx(0.5, abs=0.03)
    assert float((coverage == 0).float().mean()) == pytest.approx(0.3, abs=0.03)
    assert float(coverage.mean()) == pytest.approx(0.5 + 0.2 * 0.5, abs=0.015)  # spans: 0.5·span + 0.5·(1 − span)
    assert float((~keep_text).float().mean()) == pytest.approx(0.26, abs=0.02)
    assert _one_span_or_constant(m)


def test_an_unknown_mask_scheme_is_refused():
    from t2mbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="masks must be one of musecontrollite, light, audio, got 'none'"):
        span_masks(2, 8, ("melody",), torch.Generator(), "none")


CONFIG = {"task": {"kind": "musecontrollite", "conditions": ["melody"], "batch_size": 2, "clips": 2, "crop": 16,
                   "masks": "light"},
          "model": {"base": "tiny"},
          "train": {"steps": 2, "lr": 1e-3, "warmup": 1, "checkpoint_every": 1, "seed": 0}}


def test_train_control_ships_the_runs_ema_as_a_loadable_adapter(rendered_corpus, tmp_path, capsys):
    from t2mbench.cli import main
    from t2mbench.reference_models.adapters.model import musecontrollite
    from t2mbench.reference_models.generate import load_model

    config = tmp_path / "control.json"
    config.write_text(json.dumps(CONFIG))
    run, ship_dir = tmp_path / "run", tmp_path / "ship"
    assert main(["train", "control", "--corpus", str(rendered_corpus), "--out", str(run), "--config", str(config),
                 "--ship", str(ship_dir), "--no-progress"]) == 0
    manifest = json.loads((ship_dir / "manifest.json").read_text())
    assert (manifest["kind"], manifest["conditions"], manifest["steps"]) == ("musecontrollite", ["melody"], 2)
    shipped, ema = load_file(str(ship_dir / "adapter.safetensors")), load_file(str(run / "ema.safetensors"))
    assert all(torch.equal(v, ema[f"adapter.{k}"].half()) for k, v in shipped.items())
    model = musecontrollite(load_model("tiny"), tuple(manifest["conditions"]))
    model.adapter.load_state_dict({k: v.float() for k, v in shipped.items()})  # strict: every key, every shape
    assert manifest["trainable_parameters"] == model.trainable_parameters()
    # two steps from zero-initialised outputs: the outputs have moved (trained), but are still small
    assert 0 < float(model.adapter.processor(0).conv_out.weight.detach().abs().max()) < 0.01


def test_a_bad_control_task_block_names_the_config_file(rendered_corpus, tmp_path, capsys):
    from t2mbench.cli import main

    config = tmp_path / "bad-control.json"
    config.write_text(json.dumps({**CONFIG, "task": {**CONFIG["task"], "conditions": ["pitch"]}}))
    assert main(["train", "control", "--corpus", str(rendered_corpus), "--out", str(tmp_path / "run"),
                 "--config", str(config), "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"t2mbench train: error: {config}: task.conditions must be a list of distinct "
                                       "names from dynamics, melody, rhythm, audio, got ['pitch']\n")


def test_aligned_keys_start_time_aligned_and_keep_the_base_output():
    """key_init 'aligned': the fitted keys put most of each patch token's adapter attention on its own
    condition token (uniform would be 1/16), and the zero-initialised outputs keep the model equal to the base."""
    from t2mbench.bench.train.control import ALIGN_BIAS, align_keys
    from t2mbench.reference_models.adapters.model import musecontrollite
    from t2mbench.reference_models.generate import load_model

    base = load_model("tiny")
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(4, 32, 32, generator=g), torch.tensor([0.2, 0.4, 0.6, 0.8])
    cross, glob = torch.randn(4, 66, 384, generator=g), torch.randn(4, 768, generator=g)
    model = musecontrollite(base)
    masses = align_keys(model, x, t, cross, glob)
    assert len(masses) == len(base.dit.transformer.layers) and min(masses) > 4 / 16
    extractor = model.adapter.extractors["melody"]
    assert extractor.conv1d_3.bias[0] == ALIGN_BIAS and int(extractor.conv1d_3.bias.ne(0).sum()) == 1
    melody = (torch.rand(4, 128, 32, generator=g) > 0.95).float()
    with torch.no_grad():
        assert torch.equal(model(x, t, cross_attn_cond=cross, global_cond=glob, melody=melody),
                           base(x, t, cross_attn_cond=cross, global_cond=glob))


def test_aligned_keys_are_refused_for_a_controlnet(tmp_path):
    """Refused before the corpus is read (the folder does not exist)."""
    from t2mbench.bench.train.control import ControlTask
    from t2mbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="key_init 'aligned' fits MuseControlLite's adapter keys; controlnet"):
        ControlTask(tmp_path / "no-corpus", "controlnet", ("melody",), key_init="aligned")


def test_controlnet_config_holds_the_shipped_controlnets_settings():
    """`t2mbench train control --config bench/train/configs/tiny-controlnet.json` trains the shipped ControlNet:
    the config holds the settings of the removed module entry point that made the file (checked bit for bit
    at 3 steps before its removal: docs/control_table.md), and the steps and clips its manifest records."""
    from pathlib import Path

    from t2mbench.bench.train.data import read_train_config
    from t2mbench.bench.train.loop import TrainConfig

    root = Path(__file__).resolve().parents[2]
    task, model, config = read_train_config(root / "bench/train/configs/tiny-controlnet.json")
    manifest = json.loads((root / "reference_models/weights/tiny-controlnet-melody/manifest.json").read_text())
    assert task == {"kind": "controlnet", "conditions": ["melody"], "batch_size": 16, "clips": 160, "crop": 64,
                    "masks": "musecontrollite", "key_init": "upstream"}
    assert model == {"base": "tiny"}
    assert config == TrainConfig(steps=800, lr=1e-3, weight_decay=1e-2, betas=(0.9, 0.999), warmup=50,
                                 final_lr_ratio=0.1, checkpoint_every=50)
    assert (manifest["kind"], manifest["steps"], manifest["train_clips"]) == ("controlnet", 800, 160)
    assert "--config bench/train/configs/tiny-controlnet.json" in manifest["command"]


def test_train_control_trains_a_controlnet_when_the_config_says_so(rendered_corpus, tmp_path, capsys):
    from t2mbench.cli import main
    from t2mbench.reference_models.adapters.model import controlnet
    from t2mbench.reference_models.generate import load_model

    config = tmp_path / "controlnet.json"
    config.write_text(json.dumps({**CONFIG, "task": {**CONFIG["task"], "kind": "controlnet",
                                                     "masks": "musecontrollite"}}))
    run, ship_dir = tmp_path / "run", tmp_path / "ship"
    assert main(["train", "control", "--corpus", str(rendered_corpus), "--out", str(run), "--config", str(config),
                 "--ship", str(ship_dir), "--no-progress"]) == 0
    manifest = json.loads((ship_dir / "manifest.json").read_text())
    assert (manifest["kind"], manifest["conditions"]) == ("controlnet", ["melody"])
    model = controlnet(load_model("tiny"), "melody")
    model.adapter.load_state_dict({k: v.float() for k, v in load_file(str(ship_dir / "adapter.safetensors")).items()})
    assert manifest["trainable_parameters"] == model.trainable_parameters() == 2_600_192  # the shipped ControlNet's


def test_audio_masks_follow_musecontrollites_audio_only_scheme():
    """Spec §1.3 (audio-only adapter): 10% caption emptied and audio zero; otherwise caption emptied with p 0.3
    and the audio 70% masked to one span (kept only on it or zeroed on it, half each) and 30% zero."""
    keep_text, masks = span_masks(ROWS, FRAMES, ("audio",), torch.Generator().manual_seed(0), "audio")
    m = masks["audio"]
    coverage = m.mean(dim=1)
    assert float((~keep_text).float().mean()) == pytest.approx(0.1 + 0.9 * 0.3, abs=0.02)
    assert float((coverage == 0).float().mean()) == pytest.approx(0.1 + 0.9 * 0.3, abs=0.02)
    assert int((coverage == 1).sum()) == 0  # a given reference is always cut by a span
    assert float(coverage.mean()) == pytest.approx(0.9 * 0.7 * 0.5, abs=0.015)  # 0.5·span + 0.5·(1 − span)
    # a kept caption means r >= 0.1, where the audio is given (on a span) with p 0.7, independently of the caption
    assert float((coverage[keep_text] > 0).float().mean()) == pytest.approx(0.7, abs=0.03)
    assert _one_span_or_constant(m)


def test_the_audio_condition_trains_alone_with_its_masks(tmp_path):
    """Refused before the corpus is read (the folder does not exist)."""
    from t2mbench.bench.train.control import ControlTask
    from t2mbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r'the audio condition trains alone.*conditions \["audio"\], masks "audio"'):
        ControlTask(tmp_path / "no-corpus", "musecontrollite", ("audio", "melody"), masks="audio")
    with pytest.raises(ConfigError, match="the audio condition trains alone"):
        ControlTask(tmp_path / "no-corpus", "musecontrollite", ("audio",), masks="light")
    with pytest.raises(ConfigError, match=r"masks 'audio' is the audio-only adapter's scheme"):
        ControlTask(tmp_path / "no-corpus", "musecontrollite", ("melody",), masks="audio")


def test_aligned_audio_keys_start_time_aligned_and_keep_the_base_output():
    """key_init 'aligned' for the audio branch: the fitted ``to_k_ip_audio`` puts most of each patch token's
    attention on its own latent token (uniform 1/16); ``conv_out_audio`` stays zero, so the model equals the base."""
    from t2mbench.bench.train.control import align_audio_keys
    from t2mbench.reference_models.adapters.model import musecontrollite
    from t2mbench.reference_models.generate import load_model

    base = load_model("tiny")
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(4, 32, 32, generator=g), torch.randn(4, 32, 32, generator=g)
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    x = base.objective.add_noise(x0, noise, t)
    cross, glob = torch.randn(4, 66, 384, generator=g), torch.randn(4, 768, generator=g)
    model = musecontrollite(base, (), audio=True, audio_dim=64)
    masses = align_audio_keys(model, x, t, cross, glob, x0)
    assert len(masses) == 6 and min(masses) > 0.5
    with torch.no_grad():
        assert torch.equal(model(x, t, cross_attn_cond=cross, global_cond=glob, audio=x0),
                           base(x, t, cross_attn_cond=cross, global_cond=glob))
