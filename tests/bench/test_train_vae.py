import math

import pytest
import torch

from t2mbench.bench.train.loop import bfloat16_autocast
from t2mbench.bench.train.vae import (
    VaeTask,
    data_dependent_init,
    multi_resolution_stft_loss,
    multi_scale_mel_loss,
)
from t2mbench.core.dsp.filterbanks import mel_filterbank
from t2mbench.core.dsp.stft import stft_magnitude
from t2mbench.core.errors import ConfigError
from t2mbench.metrics.spectral import stft_distance


def test_single_resolution_loss_is_auraloss_stft_distance():
    # t2mbench.metrics.spectral is proven equal to auraloss 0.4.0's STFTLoss by its golden fixture;
    # one clip with sc_scope="batch" is auraloss's reduction, which the training loss uses
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1, 2, 8192, generator=g), torch.randn(1, 2, 8192, generator=g)
    ours = multi_resolution_stft_loss(x, y, [1024]).item()
    assert ours == pytest.approx(float(stft_distance(x, y, sc_scope="batch")[0]), rel=1e-5)


def test_multi_resolution_loss_is_the_mean_over_resolutions_and_differentiable():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 4096, generator=g, requires_grad=True)
    y = torch.randn(2, 1, 4096, generator=g)
    parts = [multi_resolution_stft_loss(x, y, [n]) for n in (512, 128)]
    total = multi_resolution_stft_loss(x, y, [512, 128])
    assert total.item() == pytest.approx((parts[0].item() + parts[1].item()) / 2, rel=1e-6)
    total.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert multi_resolution_stft_loss(y, y, [512, 128]).item() == 0.0


def test_stft_magnitude_floor_is_sqrt_1e8():
    assert stft_magnitude(torch.zeros(1, 2048), 256, 64).min().item() == pytest.approx(1e-4)


def test_mel_loss_of_a_gain_is_its_log10():
    # well above the floor, M(g·y) = g·M(y) at every mel and scale, so the loss is |log10 g|
    y = torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(2))
    loss = multi_scale_mel_loss(2.0 * y, y, 16000, [512, 128], [40, 10])
    assert loss.item() == pytest.approx(math.log10(2.0), rel=1e-5)
    assert multi_scale_mel_loss(y, y, 16000, [512], [40]).item() == 0.0


def test_mel_loss_is_the_mean_log10_distance_of_slaney_mels_of_stft_magnitudes():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(1, 2, 2048, generator=g), torch.randn(1, 2, 2048, generator=g)
    bank = torch.from_numpy(mel_filterbank(16000, 256, 20)).float()
    mx, my = (bank @ stft_magnitude(s.flatten(0, 1), 256, 64) for s in (x, y))
    expected = (mx.clamp_min(1e-5).log10() - my.clamp_min(1e-5).log10()).abs().mean()
    assert multi_scale_mel_loss(x, y, 16000, [256], [20]).item() == pytest.approx(expected.item(), rel=1e-6)
    # silence is floored at 1e-5: its distance to silence is 0, to a signal finite
    zero = torch.zeros(1, 1, 2048)
    assert multi_scale_mel_loss(zero, zero, 16000, [256], [20]).item() == 0.0
    assert math.isfinite(multi_scale_mel_loss(zero, x[:, :1], 16000, [256], [20]).item())


def test_task_batches_are_seeded_crops_of_the_train_split(rendered_corpus):
    task = VaeTask(rendered_corpus, {"crop_samples": 1024, "batch_size": 3, "kl_weight": 1e-4, "ffts": [256]},
                   {"config": "tiny"}, progress=False)
    assert task.audio.shape == (len(task.clips), 1, 2 * 16000) and {c.split for c in task.clips} == {"train"}
    a = task.batch(5, torch.Generator().manual_seed(5))
    b = task.batch(5, torch.Generator().manual_seed(5))
    assert a.shape == (3, 1, 1024) and torch.equal(a, b)
    windows = task.audio[:, 0].unfold(-1, 1024, 1)  # every crop of every clip
    for crop in a[:, 0]:
        assert (windows == crop).all(-1).any()


def test_crop_must_be_whole_latent_frames(rendered_corpus):
    with pytest.raises(ConfigError, match="crop_samples 1000 must be a multiple of the VAE's downsampling ratio 512"):
        VaeTask(rendered_corpus, {"crop_samples": 1000, "batch_size": 2, "kl_weight": 0.0, "ffts": [256]},
                {"config": "tiny"}, progress=False)


def _task(corpus, crop=8192, **extra):
    block = {"crop_samples": crop, "batch_size": 2, "kl_weight": 0.0, "ffts": [256], **extra}
    return VaeTask(corpus, block, {"config": "tiny"}, progress=False)


def test_data_dependent_init_sets_each_conv_output_scale(rendered_corpus):
    from t2mbench.reference_models.autoencoder import ResidualUnit, WNConv1d, WNConvTranspose1d, vae_posterior

    task = _task(rendered_corpus, init="data_dependent")
    model, audio = task.build(), task.init_batch()
    convs = [m for m in model.modules() if isinstance(m, (WNConv1d, WNConvTranspose1d))]
    assert all(c.bias is None or not c.bias.any() for c in convs)
    branch_ends = {id(m.layers[-1]) for m in model.modules() if isinstance(m, ResidualUnit)}
    stds: dict[int, float] = {}
    hooks = [c.register_forward_hook(lambda m, i, o: stds.__setitem__(id(m), float(o.std()))) for c in convs]
    with torch.no_grad():
        stats = model.encoder(audio)
        decoded = model.decoder(vae_posterior(stats)[0])
    for h in hooks:
        h.remove()
    with torch.no_grad():
        silent = model.decoder(torch.zeros_like(vae_posterior(stats)[0]))
    # every conv but the last hits its target exactly on the init batch; rescaling a later conv
    # never changes an earlier one's input
    for conv in convs[:-1]:
        assert stds[id(conv)] == pytest.approx(0.1 if id(conv) in branch_ends else 1.0, rel=1e-4)
    assert float(decoded.std()) == pytest.approx(float(audio.std()), rel=1e-4)
    # no biases left: zero latents decode to silence, so the output is a function of the latents
    assert not silent.any()


def test_default_init_is_upstreams_and_unknown_init_is_refused(rendered_corpus):
    default = _task(rendered_corpus).build()
    explicit = _task(rendered_corpus, init="default").build()
    assert torch.equal(default.decoder.layers[0].bias, explicit.decoder.layers[0].bias)
    assert default.decoder.layers[0].bias.abs().sum() > 0  # PyTorch's default init keeps biases
    with pytest.raises(ConfigError, match="init must be 'default' or 'data_dependent', got 'lsuv'"):
        _task(rendered_corpus, init="lsuv")


def test_silent_init_batch_is_refused(rendered_corpus):
    model = _task(rendered_corpus).build()
    with pytest.raises(ConfigError, match="data-dependent init: the init batch is silent"):
        data_dependent_init(model, torch.zeros(2, 1, 1024))


def test_losses_add_the_weighted_mel_and_adversarial_terms(rendered_corpus):
    disc = {"ffts": [256, 128], "filters": 4, "adv_weight": 0.1, "fm_weight": 5.0}
    task = _task(rendered_corpus, crop=2048, mel_weight=2.0, mel_ffts=[256], mel_bins=[20], discriminator=disc)
    model, critic = task.build(), task.build_critic()
    assert [s.n_fft for s in critic.scales] == [256, 128] and critic.scales[0].convs[0].out_channels == 4
    batch = task.batch(0, torch.Generator().manual_seed(0))
    with_critic = task.losses(model, batch, torch.Generator().manual_seed(1), critic=critic)
    plain = task.losses(model, batch, torch.Generator().manual_seed(1))
    assert "critic_loss" not in plain and plain["mel"] == with_critic["mel"]
    expected_plain = plain["mrstft"] + 0.0 * plain["kl"] + 2.0 * plain["mel"]  # kl_weight 0 in _task
    assert plain["loss"].item() == pytest.approx(expected_plain.item(), rel=1e-6)
    extra = 0.1 * with_critic["adv"] + 5.0 * with_critic["fm"]
    assert with_critic["loss"].item() == pytest.approx((plain["loss"] + extra).item(), rel=1e-6)
    assert with_critic["critic_loss"].requires_grad and with_critic["critic_loss"].item() > 0


def test_losses_take_each_stft_once_for_both_spectral_losses(rendered_corpus, monkeypatch):
    import t2mbench.bench.train.vae as vae
    task = _task(rendered_corpus, crop=2048, ffts=[512, 256, 128], mel_weight=1.0, mel_ffts=[256, 64], mel_bins=[20, 8])
    model, batch = task.build(), task.batch(0, torch.Generator().manual_seed(0))
    calls = []
    real = vae.stft_magnitude
    monkeypatch.setattr(vae, "stft_magnitude", lambda x, n, hop: calls.append(n) or real(x, n, hop))
    terms = task.losses(model, batch, torch.Generator().manual_seed(1))
    assert sorted(calls) == [64, 64, 128, 128, 256, 256, 512, 512]  # decoded and input, once per size
    decoded = model.decode(model.encode(batch, generator=torch.Generator().manual_seed(1))[0])
    monkeypatch.setattr(vae, "stft_magnitude", real)
    assert terms["mrstft"].item() == pytest.approx(multi_resolution_stft_loss(decoded, batch, [512, 256, 128]).item())
    assert terms["mel"].item() == pytest.approx(multi_scale_mel_loss(decoded, batch, 16000, [256, 64], [20, 8]).item())


def test_under_bfloat16_autocast_only_the_vae_runs_in_bfloat16(rendered_corpus):
    task = _task(rendered_corpus, crop=2048, ffts=[512, 128], mel_weight=1.0, mel_ffts=[256], mel_bins=[20])
    model, batch = task.build(), task.batch(0, torch.Generator().manual_seed(0))
    with bfloat16_autocast():
        terms = task.losses(model, batch, torch.Generator().manual_seed(1))
        latents, kl = model.encode(batch, generator=torch.Generator().manual_seed(1))
        decoded = model.decode(latents)
    assert decoded.dtype == torch.bfloat16 and terms["loss"].dtype == torch.float32
    # the losses of the bfloat16 decoding, taken in float32 outside autocast: equal to float32 precision
    decoded = decoded.float()
    stft = multi_resolution_stft_loss(decoded, batch, [512, 128])
    mel = multi_scale_mel_loss(decoded, batch, 16000, [256], [20])
    assert terms["mrstft"].item() == pytest.approx(stft.item(), rel=1e-6)
    assert terms["mel"].item() == pytest.approx(mel.item(), rel=1e-6)
    assert terms["kl"].item() == pytest.approx(kl.float().item(), rel=1e-6)
    fp32 = task.losses(model, batch, torch.Generator().manual_seed(1))
    assert fp32["mrstft"].item() != terms["mrstft"].item()
    assert fp32["mrstft"].item() == pytest.approx(terms["mrstft"].item(), rel=5e-2)


def test_no_discriminator_block_means_no_critic_and_a_partial_one_is_refused(rendered_corpus):
    assert _task(rendered_corpus).build_critic() is None
    with pytest.raises(ConfigError, match=r"discriminator block misses \['adv_weight', 'fm_weight'\]"):
        _task(rendered_corpus, discriminator={"ffts": [256], "filters": 4})
    with pytest.raises(ConfigError, match=r"mel_ffts \[256\] and mel_bins \[\] must be non-empty lists"):
        _task(rendered_corpus, mel_weight=1.0, mel_ffts=[256])


def test_compile_compiles_encoder_and_decoder_in_place(rendered_corpus):
    task = _task(rendered_corpus)
    model = task.build()
    keys = list(model.state_dict())
    task.compile(model)  # lazy: nothing is compiled until the first call
    assert model.encoder._compiled_call_impl is not None and model.decoder._compiled_call_impl is not None
    assert list(model.state_dict()) == keys  # checkpoints keep stable-audio-tools' names
