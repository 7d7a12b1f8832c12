"""Host-side initialisers: right distribution, reproducible per key."""

from __future__ import annotations

import jax
import numpy as np

from artifex.generative_models.core.layers.initializers import lecun_normal, ones, zeros


def test_lecun_normal_moments_and_truncation():
    w = np.asarray(lecun_normal(jax.random.key(0), (3, 3, 64, 128)))
    fan_in = 3 * 3 * 64
    assert w.dtype == np.float32
    assert abs(w.mean()) < 3 * w.std() / np.sqrt(w.size)
    np.testing.assert_allclose(w.var(), 1 / fan_in, rtol=0.03)
    assert np.abs(w).max() <= 2 / 0.87962566103423978 / np.sqrt(fan_in) + 1e-6


def test_same_key_same_values_other_key_other_values():
    a = lecun_normal(jax.random.key(1), (16, 8))
    np.testing.assert_array_equal(a, lecun_normal(jax.random.key(1), (16, 8)))
    assert not np.allclose(a, lecun_normal(jax.random.key(2), (16, 8)))


def test_constants():
    np.testing.assert_array_equal(zeros(None, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(ones(None, (4,)), np.ones(4))
