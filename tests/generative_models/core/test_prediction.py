"""epsilon / x_start / v targets and their inverses round-trip exactly."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from artifex.generative_models.core.prediction import (
    eps_from_x0,
    prediction_target,
    to_x0_and_eps,
)


@pytest.mark.parametrize("prediction_type", ["epsilon", "x_start", "v_prediction"])
def test_round_trip(prediction_type):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x0 = jax.random.uniform(k1, (6, 4, 4, 1), minval=-1, maxval=1)
    eps = jax.random.normal(k2, x0.shape)
    ab = jax.random.uniform(k3, (6, 1, 1, 1), minval=0.05, maxval=0.95)
    signal, sigma = np.sqrt(ab), np.sqrt(1 - ab)
    x_t = signal * x0 + sigma * eps
    target = prediction_target(prediction_type, x0, eps, signal, sigma)
    x0_back, eps_back = to_x0_and_eps(prediction_type, target, x_t, signal, sigma)
    np.testing.assert_allclose(x0_back, x0, atol=2e-5)
    np.testing.assert_allclose(eps_back, eps, atol=2e-5)
    np.testing.assert_allclose(eps_from_x0(x_t, x0, signal, sigma), eps, atol=2e-5)


def test_v_is_the_rotation_of_eps_and_x0():
    x0, eps, ab = 0.3, -1.2, 0.64
    v = prediction_target("v_prediction", x0, eps, 0.8, 0.6)
    assert v == pytest.approx(np.sqrt(ab) * eps - np.sqrt(1 - ab) * x0)
