"""Likelihoods of flows with known densities, against references computed with NumPy/SciPy.

The dequantisation and the bits/dim scaling are checked on the identity flow, whose expected
log-density over the dequantisation noise has a closed form: for ``y = (k + u)/256 - 1/2``,
``E_u[y^2] = m^2 + 1/(12 * 256^2)`` with ``m = (k + 1/2)/256 - 1/2``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.special import logit
from scipy.stats import norm

from artifex.generative_models.core.configuration.flow_config import FlowConfig
from artifex.generative_models.models.flow import (
    FlowModel,
    bits_per_dim,
    dequantize,
    image_levels,
    to_images,
)
from artifex.generative_models.training.trainers.flow_trainer import FlowTrainer

IDENTITY = FlowConfig(
    input_shape=(8, 8, 1),
    num_scales=2,
    steps_per_scale=2,
    hidden_channels=8,
    invertible_conv="reverse",
    split_prior="standard",
    learn_top=False,
    logit_alpha=None,
)


def digit_like_images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 8x8 images: mostly background, some saturated strokes, some mid-grey."""
    rng = np.random.default_rng(seed)
    levels = rng.choice([0, 0, 0, 255, 128, 37], size=(n, 8, 8, 1))
    return levels.astype(np.uint8)


def closed_form_bits_per_dim(images_uint8: np.ndarray, num_bits: int = 8) -> float:
    """Expected bits/dim of the N(0, I) density over the uniform dequantisation noise."""
    levels = images_uint8.astype(np.float64) // 2 ** (8 - num_bits)
    bins = 2.0**num_bits
    mean = (levels + 0.5) / bins - 0.5
    expected_sq = mean**2 + 1.0 / (12.0 * bins**2)
    nats = 0.5 * np.log(2 * np.pi) + 0.5 * expected_sq  # E[-log N(y; 0, 1)] per dimension
    return float(num_bits + nats.mean() / np.log(2.0))


GLOW_WITHOUT_LOGIT = FlowConfig(
    input_shape=(8, 8, 1), hidden_channels=8, steps_per_scale=2, logit_alpha=None
)


@pytest.mark.parametrize("config", [IDENTITY, GLOW_WITHOUT_LOGIT], ids=["identity", "rotation"])
def test_fresh_flow_bits_per_dim_is_the_dequantised_standard_normal(config):
    """A fresh flow maps x to a rotation of x (the identity for 'reverse'): N(0, I) density."""
    images = digit_like_images(200)
    model = FlowModel(config, rngs=nnx.Rngs(0))
    bpd = FlowTrainer().bits_per_dim(model, images, jax.random.key(1), batch_size=64)
    assert bpd == pytest.approx(closed_form_bits_per_dim(images), abs=1e-4)
    # The [-1, 1] floats the data iterator yields are the same images.
    floats = images.astype(np.float32) / 127.5 - 1.0
    assert FlowTrainer().bits_per_dim(model, floats, jax.random.key(1), batch_size=64) == bpd


def test_bits_per_dim_counts_each_image_once_when_batches_are_padded():
    # Image 0 (repeated as padding) is all background, the rest mid-grey (0.18 bits/dim
    # apart): counting the padding would move the mean far from the closed form.
    images = np.full((7, 8, 8, 1), 128, np.uint8)
    images[0] = 0
    model = FlowModel(IDENTITY, rngs=nnx.Rngs(0))
    trainer = FlowTrainer()
    bpd = trainer.bits_per_dim(model, images, jax.random.key(2), batch_size=3)
    assert bpd == pytest.approx(closed_form_bits_per_dim(images), abs=2e-4)
    scores = trainer.bits_per_dim(model, images, jax.random.key(2), batch_size=3, per_image=True)
    assert scores.shape == (7,) and scores.mean() == pytest.approx(bpd, abs=1e-12)
    assert scores[0] == pytest.approx(closed_form_bits_per_dim(images[:1]), abs=5e-4)
    assert scores[1] == pytest.approx(closed_form_bits_per_dim(images[1:2]), abs=5e-4)
    assert scores[0] > scores[1] + 0.1
    with pytest.raises(ValueError, match="batch_size=0"):
        trainer.bits_per_dim(model, images, jax.random.key(2), batch_size=0)


def test_fewer_bits_use_fewer_levels():
    config = FlowConfig(**{**IDENTITY.to_dict(), "num_bits": 5})
    images = digit_like_images(200, seed=3)
    bpd = FlowTrainer().bits_per_dim(FlowModel(config, rngs=nnx.Rngs(0)), images, jax.random.key(4))
    assert bpd == pytest.approx(closed_form_bits_per_dim(images, num_bits=5), abs=1e-4)


def pixel_channel(height: int, width: int) -> np.ndarray:
    """Channel of the first squeeze that each pixel of a one-channel image lands in."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return 2 * (rows % 2) + (cols % 2)


def test_log_prob_of_a_flow_with_a_set_actnorm_is_a_scaled_gaussian():
    """Only the first actnorm acts: ``z_c = s_c x + b_c`` on the squeezed channels, so
    ``log p(x) = sum log N(s_c x + b_c) + sum log s_c``."""
    model = FlowModel(IDENTITY, rngs=nnx.Rngs(0))
    log_scale = np.array([0.5, -0.3, 1.2, 0.1], np.float32)
    bias = np.array([0.2, -0.4, 0.0, 1.0], np.float32)
    first = model.scales[0][0].actnorm
    first.log_scale[...] = jnp.asarray(log_scale)
    first.bias[...] = jnp.asarray(bias)
    x = np.random.default_rng(5).uniform(-0.5, 0.5, (4, 8, 8, 1)).astype(np.float32)
    channel = pixel_channel(8, 8)[None, :, :, None]
    s, b = np.exp(log_scale.astype(np.float64))[channel], bias.astype(np.float64)[channel]
    reference = (norm.logpdf(s * x + b) + np.log(s)).reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(model.log_prob(jnp.asarray(x)), reference, rtol=1e-5)


def test_log_prob_with_a_set_learned_top_prior_is_that_gaussian():
    """One scale, two reversals (which cancel): the top prior N(mu, sigma^2) on the squeezed
    image is the density."""
    config = FlowConfig(**{**IDENTITY.to_dict(), "num_scales": 1, "learn_top": True})
    model = FlowModel(config, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(6)
    mean = rng.normal(0, 0.3, (4, 4, 4)).astype(np.float32)
    log_std = rng.normal(-1.0, 0.5, (4, 4, 4)).astype(np.float32)
    model.top_prior.mean[...] = jnp.asarray(mean)
    model.top_prior.log_std[...] = jnp.asarray(log_std)
    x = rng.uniform(-0.5, 0.5, (3, 8, 8, 1)).astype(np.float32)
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    index = (rows // 2, cols // 2, pixel_channel(8, 8))  # pixel -> (i, j, channel) of the latent
    mu, sigma = mean[index].astype(np.float64), np.exp(log_std[index].astype(np.float64))
    reference = norm.logpdf(x[..., 0], mu, sigma).reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(model.log_prob(jnp.asarray(x)), reference, rtol=1e-5)
    # Sampling at T = 0 returns the prior's mean, mapped to images.
    image = np.asarray(model.sample(1, key=jax.random.key(0), temperature=0.0))[0, ..., 0]
    expected = np.clip(256 * (mu + 0.5) - 0.5, 0, 255) / 127.5 - 1
    np.testing.assert_allclose(image, expected, atol=1e-5)


@pytest.mark.parametrize("alpha", [1e-6, 0.05])
def test_fresh_flow_with_the_logit_is_a_gaussian_on_the_logits(alpha):
    """``log p(x) = sum log N(logit(p)) + log(1 - 2 alpha) - log p - log(1 - p)``."""
    config = FlowConfig(**{**IDENTITY.to_dict(), "logit_alpha": alpha})
    model = FlowModel(config, rngs=nnx.Rngs(0))
    x = np.random.default_rng(7).uniform(-0.5, 0.5, (4, 8, 8, 1))
    p = alpha + (1 - 2 * alpha) * (x + 0.5)
    per_pixel = norm.logpdf(logit(p)) + np.log(1 - 2 * alpha) - np.log(p) - np.log1p(-p)
    reference = per_pixel.reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(model.log_prob(jnp.asarray(x, jnp.float32)), reference, rtol=2e-5)
    # The trainer's bits/dim of that density: one batch, dequantised with fold_in(key, 0) as
    # documented; the reference evaluates the same density at the same y with SciPy.
    images = np.random.default_rng(8).integers(0, 256, (3, 8, 8, 1)).astype(np.uint8)
    key = jax.random.key(3)
    y = np.asarray(dequantize(images, jax.random.fold_in(key, 0)), np.float64) + 0.5
    np.testing.assert_array_equal(np.floor(y * 256), images)
    p = alpha + (1 - 2 * alpha) * y
    per_pixel = norm.logpdf(logit(p)) + np.log(1 - 2 * alpha) - np.log(p) - np.log1p(-p)
    expected = 8 - per_pixel.sum() / (3 * 64 * np.log(2))
    assert FlowTrainer().bits_per_dim(model, images, key) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- dequantisation
def test_dequantize_stays_inside_each_level_bin():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    floats = images.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_array_equal(image_levels(floats), images.astype(np.int32))
    np.testing.assert_array_equal(image_levels(images), images.astype(np.int32))
    y = np.asarray(dequantize(floats, jax.random.key(0)), np.float64) + 0.5
    np.testing.assert_array_equal(np.floor(y * 256), images)  # k <= 256 y < k + 1
    np.testing.assert_array_equal(np.asarray(image_levels(floats, 5)), images // 8)
    y5 = np.asarray(dequantize(images, jax.random.key(0), 5), np.float64) + 0.5
    np.testing.assert_array_equal(np.floor(y5 * 32), images // 8)


def test_to_images_maps_each_level_centre_back_to_its_pixel_value():
    levels = np.arange(256, dtype=np.float64)
    centres = jnp.asarray((levels + 0.5) / 256 - 0.5, jnp.float32)
    np.testing.assert_allclose(to_images(centres), levels / 127.5 - 1, atol=1e-5)
    assert float(to_images(jnp.asarray(5.0))) == 1.0 and float(to_images(jnp.asarray(-5.0))) == -1


def test_uniform_density_costs_exactly_num_bits():
    # The uniform density on [0, 1)^D has log p = 0: a code for 2^b equally likely levels.
    assert float(bits_per_dim(jnp.zeros(()), 784, 8)) == 8.0
    nats = -784 * 2 * math.log(2.0)  # two more bits per dimension
    assert float(bits_per_dim(jnp.asarray(nats), 784, 8)) == pytest.approx(10.0)
