"""GAN losses equal their formulas (computed independently in NumPy); R1 on a linear critic."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artifex.generative_models.models.gan import losses

# Confident, uncertain and wrong logits: softplus must stay exact at |logit| = 30 too.
REAL = np.array([3.0, 0.5, -1.25, 30.0, -30.0, 0.0], np.float32)
FAKE = np.array([-2.0, 0.25, 1.5, -30.0, 30.0, 0.75], np.float32)


def np_softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) in float64, written as the stable max(x, 0) + log1p(e^-|x|)."""
    x = x.astype(np.float64)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def np_log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np_softplus(-x)


def test_non_saturating_discriminator_loss_is_the_logistic_cross_entropy():
    # -E log sigmoid(r) - E log(1 - sigmoid(f)); log(1 - sigmoid(f)) = log sigmoid(-f).
    expected = -np.mean(np_log_sigmoid(REAL)) - np.mean(np_log_sigmoid(-FAKE))
    got = losses.non_saturating_discriminator_loss(jnp.asarray(REAL), jnp.asarray(FAKE))
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)
    assert float(losses.discriminator_loss("non_saturating", REAL, FAKE)) == float(got)


def test_non_saturating_generator_loss_is_minus_log_d_of_fakes():
    expected = -np.mean(np_log_sigmoid(FAKE))
    got = losses.non_saturating_generator_loss(jnp.asarray(FAKE))
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)
    assert float(losses.generator_loss("non_saturating", FAKE)) == float(got)
    # Moderate logits: the plain formula -log(sigmoid(f)) agrees.
    moderate = FAKE[np.abs(FAKE) < 5]
    plain = -np.mean(np.log(1.0 / (1.0 + np.exp(-moderate.astype(np.float64)))))
    np.testing.assert_allclose(float(losses.non_saturating_generator_loss(moderate)), plain, 1e-6)


def test_hinge_losses():
    expected_d = np.mean(np.maximum(0.0, 1.0 - REAL)) + np.mean(np.maximum(0.0, 1.0 + FAKE))
    got_d = losses.hinge_discriminator_loss(jnp.asarray(REAL), jnp.asarray(FAKE))
    np.testing.assert_allclose(float(got_d), expected_d, rtol=1e-6)
    np.testing.assert_allclose(float(losses.hinge_generator_loss(FAKE)), -np.mean(FAKE), 1e-6)
    assert float(losses.discriminator_loss("hinge", REAL, FAKE)) == float(got_d)
    assert float(losses.generator_loss("hinge", FAKE)) == float(losses.hinge_generator_loss(FAKE))


def test_the_generator_loss_does_not_saturate_when_the_generator_is_bad():
    # D is sure the fakes are fake (f = -10): log(1 - D) is flat there, -log D is not.
    fake = jnp.full((4,), -10.0)
    grad = jax.grad(losses.non_saturating_generator_loss)(fake)
    saturating = jax.grad(lambda f: jnp.mean(jnp.log1p(-jax.nn.sigmoid(f))))(fake)
    assert float(jnp.abs(grad).min()) > 0.2  # ~ -1/4 per logit
    assert float(jnp.abs(saturating).max()) < 1e-4


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="'wasserstein' is not supported.*non_saturating, hinge"):
        losses.discriminator_loss("wasserstein", REAL, FAKE)
    with pytest.raises(ValueError, match="non_saturating, hinge"):
        losses.generator_loss("wasserstein", FAKE)


def test_r1_penalty_of_a_linear_discriminator_is_half_gamma_w_squared():
    # D(x) = <w, x> + b has grad_x D = w for every image: R1 = gamma / 2 * ||w||^2.
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 5, 1)).astype(np.float32)
    images = jnp.asarray(rng.uniform(-1, 1, size=(7, 5, 5, 1)), jnp.float32)
    gamma = 10.0

    def linear_d(x):
        return jnp.sum(x * w, axis=(1, 2, 3)) + 0.3

    logits, gradients = losses.logits_and_input_gradients(linear_d, images)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(linear_d(images)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(gradients), np.broadcast_to(w, images.shape), rtol=1e-6)
    expected = gamma / 2 * np.sum(w.astype(np.float64) ** 2)
    np.testing.assert_allclose(float(losses.r1_penalty(gradients, gamma)), expected, rtol=1e-5)


def test_r1_penalty_averages_per_image_gradients_of_a_nonlinear_discriminator():
    # D(x) = sum(x^3) per image: grad = 3 x^2, so R1 = gamma/2 * mean_i sum(9 x_i^4).
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, size=(4, 3, 3, 1)).astype(np.float32)
    _, gradients = losses.logits_and_input_gradients(
        lambda x: jnp.sum(x**3, axis=(1, 2, 3)), jnp.asarray(images)
    )
    expected = 0.5 * 2.0 * np.mean(np.sum(9.0 * images.astype(np.float64) ** 4, axis=(1, 2, 3)))
    np.testing.assert_allclose(float(losses.r1_penalty(gradients, 2.0)), expected, rtol=1e-5)


def test_r1_penalty_is_differentiable_in_the_discriminator_parameters():
    # For D(x) = <w, x>: d/dw [gamma/2 ||w||^2] = gamma * w (a second-order gradient).
    w = jnp.asarray([0.5, -1.0, 2.0])
    images = jnp.ones((3, 3))

    def penalty(weights):
        _, gradients = losses.logits_and_input_gradients(lambda x: x @ weights, images)
        return losses.r1_penalty(gradients, 4.0)

    np.testing.assert_allclose(np.asarray(jax.grad(penalty)(w)), 4.0 * np.asarray(w), rtol=1e-6)
