"""Parameter initialisation on the host.

JAX's initialisers run one small XLA program per parameter shape, and on CPU compiling the
counter-based random generator takes about a second each: a UNet with dozens of shapes
would spend most of a minute compiling before training starts. Drawing the same
distributions with NumPy, seeded from the JAX key handed out by ``nnx.Rngs``, keeps
initialisation reproducible per seed and takes a fraction of a second.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# std of a standard normal truncated to [-2, 2]; dividing by it restores unit variance.
_TRUNCATED_STD = 0.87962566103423978


def _generator(key: jax.Array) -> np.random.Generator:
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def lecun_normal(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Truncated normal (at 2 std) with variance ``1 / fan_in``: Flax's default kernel init.

    ``fan_in`` is the product of all but the last axis (HWIO kernels, (in, out) matrices).
    """
    rng = _generator(key)
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2.0
    while outside.any():  # resample the tails: an exact truncated normal
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return jnp.asarray(z / _TRUNCATED_STD / np.sqrt(fan_in), dtype=dtype)


def standard_normal(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Independent N(0, 1) draws (embedding tables)."""
    return jnp.asarray(_generator(key).standard_normal(shape), dtype=dtype)


def zeros(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    del key
    return jnp.asarray(np.zeros(shape), dtype=dtype)


def ones(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    del key
    return jnp.asarray(np.ones(shape), dtype=dtype)
