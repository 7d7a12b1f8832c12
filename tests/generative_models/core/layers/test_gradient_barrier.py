"""gradient_computed_once: the identity in value, gradient and forward mode."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from artifex.generative_models.core.layers.gradient_barrier import gradient_computed_once


def test_identity_in_value_and_derivatives() -> None:
    x = jax.random.normal(jax.random.key(0), (3, 4))

    def f(barrier):
        return lambda x: jnp.sum(jnp.sin(barrier(x * 2.0) ** 2))

    np.testing.assert_array_equal(gradient_computed_once(x), x)
    np.testing.assert_allclose(
        jax.grad(f(gradient_computed_once))(x), jax.grad(f(lambda v: v))(x), rtol=1e-6
    )
    _, tangent = jax.jvp(gradient_computed_once, (x,), (jnp.ones_like(x),))
    np.testing.assert_array_equal(tangent, jnp.ones_like(x))


def test_the_reverse_program_holds_a_barrier() -> None:
    f = jax.grad(lambda x: jnp.sum(jnp.sin(gradient_computed_once(x))))
    assert "optimization_barrier" in jax.jit(f).lower(jnp.ones(3)).as_text()
