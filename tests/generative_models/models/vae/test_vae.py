"""VAEModel: shapes, the reparameterisation, generation in [-1, 1] and the save/load round trip."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.special import expit

from artifex.generative_models.core.configuration.vae_config import VAEConfig
from artifex.generative_models.models.vae import VAEModel, bounds, discrete_nats
from artifex.generative_models.models.vae.vae import PIXEL_STEP
from artifex.generative_models.training.checkpointing import load_model, save_model

TINY = VAEConfig(input_shape=(8, 8, 1), latent_dim=3, hidden_dims=(4, 8), dense_dim=16)


def make(decoder: str = "bernoulli", seed: int = 0, **changes) -> VAEModel:
    config = VAEConfig(**{**TINY.to_dict(), "decoder": decoder, **changes})
    return VAEModel(config, rngs=nnx.Rngs(seed))


def images(n: int = 5, seed: int = 0) -> jax.Array:
    u8 = np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
    return jnp.asarray(u8, jnp.float32) / 127.5 - 1.0


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_shapes_of_every_part(decoder):
    model = make(decoder)
    x = images()
    mean, log_var = model.encode(x)
    assert mean.shape == log_var.shape == (5, 3)
    out = model(x, key=jax.random.key(0))
    assert out.decoded.shape == x.shape and out.z.shape == (5, 3)
    assert model.log_likelihood(*model.observe(x, jax.random.key(1))[:1], out.decoded).shape == (5,)
    assert model.sample(7, key=jax.random.key(2)).shape == (7, 8, 8, 1)
    assert model.reconstruct(x).shape == x.shape
    assert model.interpolate(x[0], x[1], steps=4).shape == (4, 8, 8, 1)
    assert model.interpolate(x[:2], x[2:4], steps=3).shape == (2, 3, 8, 8, 1)
    assert model.decode_images(jnp.zeros((2, 3))).shape == (2, 8, 8, 1)


def test_reparameterised_draw_is_mean_plus_std_times_the_keys_noise():
    model = make()
    x, key = images(), jax.random.key(4)
    out = model(x, key=key)
    eps = jax.random.normal(key, out.mean.shape)
    np.testing.assert_allclose(out.z, out.mean + jnp.exp(0.5 * out.log_var) * eps, rtol=1e-6)
    np.testing.assert_allclose(out.decoded, model.decode(out.z), rtol=1e-5, atol=1e-6)
    # The gradient flows through z into the encoder (the point of the reparameterisation).
    grads = nnx.grad(lambda m: jnp.sum(m(x, key=key).z))(model)
    assert float(jnp.abs(grads.encoder.posterior.kernel[...]).sum()) > 0


def test_bernoulli_samples_are_the_decoders_probabilities_in_minus_one_one():
    model = make()
    key, temperature = jax.random.key(5), 0.5
    samples = np.asarray(model.sample(16, key=key, temperature=temperature))
    assert samples.min() >= -1.0 and samples.max() <= 1.0
    z = temperature * jax.random.normal(key, (16, 3))
    np.testing.assert_allclose(samples, 2 * expit(np.asarray(model.decode(z))) - 1, atol=1e-5)
    hotter = np.asarray(model.sample(16, key=key, temperature=1.0))
    assert not np.allclose(samples, hotter)


def test_gaussian_samples_are_clipped_means():
    model = make("gaussian")
    # Shift the last conv so the mean overshoots [-1, 1]: the samples must still be inside.
    last = model.decoder.convs[-1]
    last.bias[...] = jnp.full_like(last.bias[...], 3.0)
    samples = np.asarray(model.sample(8, key=jax.random.key(6)))
    assert samples.min() >= -1.0 and samples.max() <= 1.0 and samples.max() == 1.0


def test_observe_binarises_or_dequantises():
    x = jnp.full((4000, 1), 0.5)  # pixel intensity 0.75
    target, inputs = make().observe(x, jax.random.key(7))
    assert set(np.unique(target)) == {0.0, 1.0}
    np.testing.assert_array_equal(inputs, 2 * target - 1)
    # Bernoulli(0.75): the mean is within 5 standard errors of 0.75.
    assert abs(float(target.mean()) - 0.75) < 5 * np.sqrt(0.75 * 0.25 / 4000)
    y, inputs = make("gaussian").observe(x, jax.random.key(7))
    np.testing.assert_array_equal(y, inputs)
    assert float(jnp.abs(y - x).max()) <= PIXEL_STEP / 2 and float(jnp.std(y)) > 0


def test_gaussian_likelihood_uses_the_learned_global_scale():
    model = make("gaussian", decoder_std_init=0.2)
    assert float(model.decoder.log_scale[...]) == pytest.approx(np.log(0.2))
    assert make().decoder.log_scale is None  # no unused parameter in the Bernoulli decoder
    x = images()
    decoded = model.decode(jnp.zeros((5, 3)))
    expected = bounds.gaussian_log_likelihood(x, decoded, jnp.log(0.2))
    np.testing.assert_allclose(model.log_likelihood(x, decoded), expected, rtol=1e-6)
    assert discrete_nats(-100.0, 64) == pytest.approx(-100.0 + 64 * np.log(127.5))


def test_reconstruct_and_interpolate_decode_the_posterior_mean():
    model = make()
    x = images()
    mean, _ = model.encode(x)
    expected = np.asarray(model.to_images(model.decode(mean)))
    np.testing.assert_allclose(model.reconstruct(x), expected, atol=1e-5)
    path = np.asarray(model.interpolate(x[0], x[1], steps=5))
    np.testing.assert_allclose(path[0], expected[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], expected[1], atol=1e-5)
    middle = model.decode_images((mean[:1] + mean[1:2]) / 2)
    np.testing.assert_allclose(path[2], np.asarray(middle)[0], atol=1e-5)
    drawn = model.reconstruct(x, key=jax.random.key(8))
    assert not np.allclose(drawn, expected)  # a posterior draw, not the mean


def test_bad_arguments_are_refused_with_the_reason():
    model = make()
    with pytest.raises(ValueError, match=r"n=0 must be an integer >= 1"):
        model.sample(0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="temperature=0.0 must be > 0"):
        model.sample(2, key=jax.random.key(0), temperature=0.0)
    with pytest.raises(ValueError, match=r"x.shape=\(2, 28, 28, 1\) must be"):
        model.reconstruct(jnp.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"latent_dim=3"):
        model.decode_images(jnp.zeros((2, 4)))
    with pytest.raises(TypeError, match="VAEModel expects a VAEConfig"):
        VAEModel(TINY.to_dict(), rngs=nnx.Rngs(0))


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_save_model_and_load_model_rebuild_the_same_model(tmp_path, decoder):
    model = make(decoder, seed=3)
    if decoder == "gaussian":
        model.decoder.log_scale[...] = jnp.asarray(-1.7)  # a "trained" value, not the init
    save_model(tmp_path / "vae", model, step=12)
    loaded = load_model(tmp_path / "vae")
    assert type(loaded) is VAEModel and loaded.config == model.config
    x = images()
    for a, b in zip(
        jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(loaded)), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    key = jax.random.key(9)
    np.testing.assert_array_equal(model.sample(4, key=key), loaded.sample(4, key=key))
    np.testing.assert_array_equal(model.reconstruct(x), loaded.reconstruct(x))
