import math

import pytest
import torch

from t2mbench.bench.train.discriminator import (
    MultiScaleSTFTDiscriminator,
    STFTDiscriminator,
    WNConv2d,
    adversarial_losses,
)


def _audio(seed, shape=(2, 1, 4096)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_scale_input_is_the_normalised_complex_stft_laid_out_frames_by_bins():
    disc = STFTDiscriminator(256, 4)
    seen = []
    disc.convs[0].register_forward_hook(lambda _m, i, _o: seen.append(i[0]))
    x = _audio(0, (3, 2048))[:, :]
    logits, features = disc(x)
    frames, bins = 1 + (2048 - 256) // 64, 129  # not centred, hop n_fft/4
    window = torch.hann_window(256)
    spec = torch.stft(x, 256, 64, window=window, center=False, return_complex=True) / window.square().sum().sqrt()
    assert seen[0].shape == (3, 2, frames, bins)
    torch.testing.assert_close(seen[0][:, 0], spec.real.transpose(1, 2))
    torch.testing.assert_close(seen[0][:, 1], spec.imag.transpose(1, 2))
    # three stride-2 convs along frequency: 129 -> 65 -> 33 -> 17 bins
    assert logits.shape == (3, 1, frames, 17) and len(features) == 5
    assert [f.shape[1] for f in features] == [4] * 5


def test_hinge_and_feature_matching_values():
    disc = MultiScaleSTFTDiscriminator([256, 128], 4)
    with torch.no_grad():
        for scale in disc.scales:
            scale.post.weight_g.zero_()  # every logit is the output conv's bias
            scale.post.bias.fill_(0.25)
    real = _audio(1)
    out = adversarial_losses(disc, real, real.clone().requires_grad_())
    assert out["disc"].item() == pytest.approx((1 - 0.25) + (1 + 0.25))
    assert out["adv"].item() == pytest.approx(1 - 0.25)
    assert out["fm"].item() == 0.0  # identical audio: identical feature maps


def test_feature_matching_is_the_relative_l1_of_each_map_averaged():
    disc = MultiScaleSTFTDiscriminator([256], 4)
    real, fake = _audio(2), _audio(3)
    with torch.no_grad():
        _, fr = disc(real)[0]
        _, ff = disc(fake)[0]
    expected = sum(((a - b).abs().mean() / b.abs().mean()).item() for a, b in zip(ff, fr)) / len(fr)
    assert adversarial_losses(disc, real, fake)["fm"].item() == pytest.approx(expected, rel=1e-5)


def test_each_term_reaches_only_its_own_module():
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator([256, 128], 4)
    real = _audio(4)
    fake = _audio(5).requires_grad_()
    terms = adversarial_losses(disc, real, fake)
    terms["disc"].backward(retain_graph=True)
    # (the output bias gets exactly 0: inside the hinges its gradient is −1 from real, +1 from fake)
    assert fake.grad is None and all(p.grad is not None for p in disc.parameters())
    assert all(p.grad.abs().sum() > 0 for n, p in disc.named_parameters() if "weight" in n)
    disc.zero_grad(set_to_none=True)
    (terms["adv"] + terms["fm"]).backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None for p in disc.parameters())
    assert all(p.requires_grad for p in disc.parameters())  # unfrozen again


def test_stereo_channels_are_scored_as_separate_signals():
    disc = MultiScaleSTFTDiscriminator([256], 4)
    x = _audio(6, (2, 2, 2048))
    (logits, _), = disc(x)
    (left, _), = disc(x[:, :1])
    assert logits.shape[0] == 4 and torch.allclose(logits[0::2], left, atol=1e-6)
    assert math.isfinite(logits.sum().item())


def test_weight_normed_conv2d_equals_torch_weight_norm():
    torch.manual_seed(0)
    conv = WNConv2d(2, 4, (3, 9), padding=(1, 4))
    assert sorted(conv.state_dict()) == ["bias", "weight_g", "weight_v"] and conv.weight_g.shape == (4, 1, 1, 1)
    with torch.no_grad():
        conv.weight_g.uniform_(0.5, 2.0)
    ref = torch._weight_norm(conv.weight_v, conv.weight_g, 0)  # what nn.utils.weight_norm(dim=0) computes
    x = _audio(1, (1, 2, 12, 33))
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, ref, conv.bias, padding=(1, 4)))
