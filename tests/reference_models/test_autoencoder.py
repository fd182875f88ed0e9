"""Oobleck VAE: parity with stable-audio-tools 0.0.19 on seeded weights (encoder output,
sampled and deterministic latents, KL, decoder), and the building blocks' definitions."""

import math

import numpy as np
import pytest
import torch
from support import sat_cases
from support.sat_models import golden, reduced_model

from t2mbench.reference_models.autoencoder import AutoencoderPretransform, SnakeBeta, WNConv1d, WNConvTranspose1d

TOL = 1e-4  # max abs, float32


@pytest.fixture(scope="module")
def vae():
    return reduced_model("sao10").pretransform


@pytest.fixture(scope="module")
def audio():
    return torch.from_numpy(sat_cases.audio())


def test_encoder_output_matches_upstream(vae, audio):
    with torch.inference_mode():
        stats = vae.model.encoder(audio)
    assert stats.shape == (2, 16, 64)
    np.testing.assert_allclose(stats.numpy(), golden()["sao10/vae_stats"], rtol=0, atol=TOL)


def test_sampled_latents_and_kl_match_upstream(vae, audio):
    g = golden()
    with torch.inference_mode():
        z, kl = vae.model.encode(audio, noise=torch.from_numpy(g["sao10/vae_noise"]))
    np.testing.assert_allclose(z.numpy(), g["sao10/vae_z"], rtol=0, atol=TOL)
    assert kl.item() == pytest.approx(float(g["sao10/vae_kl"]), rel=1e-5)


def test_deterministic_encode_is_the_posterior_mean(vae, audio):
    g = golden()
    with torch.inference_mode():
        mean, _ = vae.model.encode(audio, sample=False)
        again = vae.encode(audio, sample=False)
    np.testing.assert_allclose(mean.numpy(), g["sao10/vae_stats"][:, :8], rtol=0, atol=TOL)
    # the pretransform (scale 1) adds nothing; iterate_batch runs clip by clip (other conv kernels)
    torch.testing.assert_close(mean, again, rtol=0, atol=1e-5)


def test_posterior_is_upstreams_mean_and_std_in_the_dit_s_scale(vae, audio):
    """One encoder pass gives what ``encode`` samples from: mean and std divided by the pretransform's scale, so
    mean + std·ε is upstream's sampled latent (with the same ε) over the scale."""
    g = golden()
    scaled = AutoencoderPretransform(vae.model, scale=2.0, iterate_batch=vae.iterate_batch)
    with torch.inference_mode():
        mean, std = scaled.posterior(audio)
    stats = torch.from_numpy(g["sao10/vae_stats"])
    np.testing.assert_allclose(mean.numpy(), stats[:, :8].numpy() / 2, rtol=0, atol=TOL / 2)
    np.testing.assert_allclose(std.numpy(), (torch.nn.functional.softplus(stats[:, 8:]) + 1e-4).numpy() / 2,
                               rtol=0, atol=TOL / 2)  # fmt: skip
    drawn = mean + std * torch.from_numpy(g["sao10/vae_noise"])
    np.testing.assert_allclose(drawn.numpy(), g["sao10/vae_z"] / 2, rtol=0, atol=TOL / 2)


def test_sampling_draws_from_the_generator(vae, audio):
    with torch.inference_mode():
        a = vae.encode(audio, generator=torch.Generator().manual_seed(3))
        b = vae.encode(audio, generator=torch.Generator().manual_seed(3))
        mean = vae.encode(audio, sample=False)
    assert torch.equal(a, b) and not torch.equal(a, mean)


def test_decoder_matches_upstream(vae):
    g = golden()
    with torch.inference_mode():
        audio = vae.decode(torch.from_numpy(g["sao10/vae_stats"][:, :8]))
    assert audio.shape == (2, 2, 2048)
    np.testing.assert_allclose(audio.numpy(), g["sao10/vae_decoded"], rtol=0, atol=TOL)


def test_snake_beta_formula():
    snake = SnakeBeta(2)
    with torch.no_grad():
        snake.alpha.copy_(torch.tensor([0.0, math.log(2.0)]))
        snake.beta.copy_(torch.tensor([math.log(4.0), 0.0]))
    x = torch.tensor([[[0.5], [0.25]]])
    expected = [0.5 + math.sin(0.5) ** 2 / (4 + 1e-9), 0.25 + math.sin(0.5) ** 2 / (1 + 1e-9)]
    np.testing.assert_allclose(snake(x).flatten().detach().numpy(), expected, rtol=1e-6)


def test_snake_beta_backward_is_the_formulas_gradient():
    from t2mbench.reference_models.autoencoder import _SnakeBetaFunction

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 40, generator=g, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_SnakeBetaFunction.apply, (x, alpha, beta))
    # the module uses it with gradients on, and matches autograd through the plain formula
    snake = SnakeBeta(3).double()
    with torch.no_grad():
        snake.alpha.copy_(alpha)
        snake.beta.copy_(beta)
    out = snake(x)
    formula = x + torch.sin(x * alpha.exp()[None, :, None]).square() / (beta.exp()[None, :, None] + 1e-9)
    w = torch.randn(out.shape, generator=g, dtype=torch.float64)
    ours = torch.autograd.grad((out * w).sum(), (x, snake.alpha, snake.beta))
    theirs = torch.autograd.grad((formula * w).sum(), (x, alpha, beta))
    assert out.grad_fn.name() == "_SnakeBetaFunctionBackward"
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_weight_norm_keys_and_weight():
    conv = WNConv1d(3, 4, kernel_size=5)
    assert sorted(conv.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert conv.weight_g.shape == (4, 1, 1)
    up = WNConvTranspose1d(4, 3, kernel_size=8, stride=4, padding=2)
    assert up.weight_g.shape == (4, 1, 1) and up.weight_v.shape == (4, 3, 8)
    with torch.no_grad():
        conv.weight_g.fill_(2.0)
    w = conv.normed_weight()
    np.testing.assert_allclose(w.flatten(1).norm(dim=1).detach().numpy(), [2.0] * 4, rtol=1e-6)
    x = torch.randn(1, 3, 20)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv1d(x, w, conv.bias))


def test_lengths_follow_the_strides(vae):
    with torch.inference_mode():
        z = vae.encode(torch.zeros(1, 2, 32 * 10), sample=False)
        y = vae.decode(torch.zeros(1, 8, 7))
    assert z.shape == (1, 8, 10) and y.shape == (1, 2, 7 * 32)
