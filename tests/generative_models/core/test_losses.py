"""Loss types against hand-computed values; weightings mean the same for every target."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from artifex.generative_models.core.losses import elementwise_loss, loss_weight
from artifex.generative_models.core.prediction import prediction_target

PRED = jnp.array([0.0, 0.5, -2.0, 3.0])
TARGET = jnp.array([0.0, 0.0, 0.0, 1.0])  # residuals 0, 0.5, -2, 2


def test_mse():
    np.testing.assert_allclose(elementwise_loss(PRED, TARGET, "mse"), [0, 0.25, 4, 4])


def test_l1():
    np.testing.assert_allclose(elementwise_loss(PRED, TARGET, "l1"), [0, 0.5, 2, 2])


@pytest.mark.parametrize("delta", [1.0, 0.1, 3.0])
def test_huber(delta):
    r = np.array([0.0, 0.5, -2.0, 2.0])
    expected = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    np.testing.assert_allclose(elementwise_loss(PRED, TARGET, "huber", delta), expected, rtol=1e-6)


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss_type"):
        elementwise_loss(PRED, TARGET, "hinge")


@pytest.mark.parametrize("weighting", ["snr", "min_snr"])
def test_weighting_is_defined_in_x0_space(weighting):
    """The weighted squared error of every target equals lambda(t) * |x0 error|^2."""
    ab = np.array([0.999, 0.9, 0.5, 0.1, 0.001])
    signal, sigma = np.sqrt(ab), np.sqrt(1 - ab)
    snr = ab / (1 - ab)
    x0, eps, x0_err = 0.3, -0.7, 0.05
    x_t = signal * x0 + sigma * eps
    x0_hat = x0 + x0_err
    eps_hat = (x_t - signal * x0_hat) / sigma  # the same prediction, expressed as noise
    lam = snr if weighting == "snr" else np.minimum(snr, 5.0)
    for prediction_type in ("epsilon", "x_start", "v_prediction"):
        target = prediction_target(prediction_type, x0, eps, signal, sigma)
        predicted = prediction_target(prediction_type, x0_hat, eps_hat, signal, sigma)
        w = loss_weight(jnp.asarray(snr), prediction_type, weighting)
        np.testing.assert_allclose(w * (predicted - target) ** 2, lam * x0_err**2, rtol=1e-4)


def test_uniform_and_gamma():
    snr = jnp.array([0.1, 10.0])
    np.testing.assert_array_equal(loss_weight(snr, "v_prediction", "uniform"), [1, 1])
    np.testing.assert_allclose(loss_weight(snr, "epsilon", "min_snr", 5.0), [1.0, 0.5])
    np.testing.assert_allclose(loss_weight(snr, "epsilon", "min_snr", 1.0), [1.0, 0.1])
    np.testing.assert_allclose(loss_weight(snr, "epsilon", "snr"), [1.0, 1.0])
