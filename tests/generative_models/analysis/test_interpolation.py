"""Slerp math, and decoding interpolated starting noise with DDIM and DDPM."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from PIL import Image

from artifex.generative_models.analysis import (
    angles_to_start,
    interpolate_and_decode,
    interpolation_study,
    slerp,
)

FRACTIONS = np.linspace(0.0, 1.0, 7)


def unit(v):
    return v / np.linalg.norm(v)


def test_slerp_endpoints_and_shape():
    z0, z1 = np.random.default_rng(0).normal(size=(2, 4, 4, 1))
    path = np.asarray(slerp(z0, z1, FRACTIONS))
    assert path.shape == (7, 4, 4, 1)
    np.testing.assert_allclose(path[0], z0, atol=1e-5)
    np.testing.assert_allclose(path[-1], z1, atol=1e-5)


def test_slerp_keeps_unit_norm_and_moves_at_constant_angle():
    rng = np.random.default_rng(1)
    z0, z1 = unit(rng.normal(size=64)), unit(rng.normal(size=64))
    path = np.asarray(slerp(z0, z1, FRACTIONS))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-5)
    theta = np.arccos(z0 @ z1)
    np.testing.assert_allclose(angles_to_start(path), FRACTIONS * theta, atol=1e-3)
    # and every point stays in the plane of z0 and z1
    basis = np.linalg.qr(np.stack([z0, z1], axis=1))[0]
    np.testing.assert_allclose(basis @ (basis.T @ path.T), path.T, atol=1e-5)


def test_slerp_of_parallel_vectors_is_linear():
    z = np.arange(1.0, 5.0)
    path = np.asarray(slerp(z, 2 * z, [0.0, 0.5, 1.0]))
    np.testing.assert_allclose(path, [z, 1.5 * z, 2 * z], rtol=1e-6)


def test_slerp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal shapes"):
        slerp(np.zeros(3), np.zeros(4), [0.5])


def test_ddim_decoding_of_a_path_is_deterministic(tiny_model):
    z0, z1 = np.asarray(jax.random.normal(jax.random.key(0), (2, 8, 8, 1)))
    kwargs = dict(num_points=4, scheduler="ddim", steps=3, eta=0.0)
    a = interpolate_and_decode(tiny_model, z0, z1, key=jax.random.key(1), **kwargs)
    b = interpolate_and_decode(tiny_model, z0, z1, key=jax.random.key(2), **kwargs)
    assert a.shape == (4, 8, 8, 1)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a[0], a[-1])  # the two ends decode to different images


def test_interpolation_study_writes_both_strips(tiny_model, tmp_path):
    path, strips = interpolation_study(
        tiny_model,
        tmp_path / "interp.png",
        key=jax.random.key(0),
        num_points=4,
        ddpm_steps=3,
        ddim_steps=3,
    )
    assert list(strips) == ["DDPM", "DDIM η=0"]
    assert all(s.shape == (4, 8, 8, 1) for s in strips.values())
    with Image.open(path) as img:
        assert img.size[0] > img.size[1]
