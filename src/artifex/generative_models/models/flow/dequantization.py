r"""Uniform dequantisation and bits per dimension.

Images arrive in :math:`[-1, 1]` as ``uint8 / 127.5 - 1``. A flow is a density on a
continuous space, and a density on the 256 discrete values themselves could grow without
bound (put all mass on the grid points); uniform dequantisation (Theis et al. 2016) turns
the data into a continuous variable whose density bounds the discrete probability:

1. recover the integer level :math:`k = \mathrm{round}((x + 1) \cdot 127.5) \in [0, 256)`,
   then, for ``num_bits`` :math:`= b < 8`, keep its top bits:
   :math:`k \leftarrow \lfloor k / 2^{8 - b} \rfloor \in [0, 2^b)`;
2. draw :math:`u \sim U(0, 1)` per sub-pixel and set :math:`y = (k + u) / 2^b \in [0, 1)`;
3. model the centred :math:`y - 1/2 \in [-1/2, 1/2)` (a shift: its Jacobian is 1, so
   :math:`\log p` is the same for :math:`y` and :math:`y - 1/2`).

The probability of the discrete image is at least :math:`2^{-bD}` times the density (Jensen):

.. math::

    \log P(k) \ge \mathbb{E}_u\big[\log p(y)\big] - D\,b\ln 2,

with :math:`D = H W C` the number of dimensions, so the reported score is

.. math::

    \mathrm{bits/dim} = -\frac{\log p(y) - D\,b\ln 2}{D\ln 2}
    = b - \frac{\log p(y)}{D \ln 2},

an upper bound on the discrete code length, estimated with one draw of :math:`u` per image.
Sampling maps back with :func:`to_images`: :math:`k \approx 2^b (x + 1/2) - 1/2` (the level
whose dequantised values have mean :math:`x`), clipped to :math:`[0, 2^b - 1]` and scaled to
:math:`[-1, 1]`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def image_levels(images: jax.Array, num_bits: int = 8) -> jax.Array:
    """Integer levels ``k`` in ``[0, 2**num_bits)`` of images in [-1, 1] (or of uint8 images)."""
    images = jnp.asarray(images)
    if images.dtype == jnp.uint8:
        levels = images.astype(jnp.int32)
    else:
        levels = jnp.round((images.astype(jnp.float32) + 1.0) * 127.5).astype(jnp.int32)
    levels = jnp.clip(levels, 0, 255)
    return levels >> (8 - num_bits)  # floor(k / 2^(8 - b))


def dequantize(images: jax.Array, key: jax.Array, num_bits: int = 8) -> jax.Array:
    """The centred continuous variable ``(k + u) / 2**num_bits - 1/2``, ``u ~ U(0, 1)``."""
    levels = image_levels(images, num_bits)
    u = jax.random.uniform(key, levels.shape, jnp.float32)
    return (levels.astype(jnp.float32) + u) / 2.0**num_bits - 0.5


def to_images(x: jax.Array, num_bits: int = 8) -> jax.Array:
    """Model-space values (centred, about ``[-1/2, 1/2)``) as images in [-1, 1]."""
    top = 2.0**num_bits - 1.0
    levels = jnp.clip(2.0**num_bits * (x + 0.5) - 0.5, 0.0, top)
    return levels / top * 2.0 - 1.0


def bits_per_dim(log_prob: jax.Array, num_dims: int, num_bits: int = 8) -> jax.Array:
    """``num_bits - log_prob / (num_dims ln 2)``: bits/dim of the discrete images from the
    density ``log_prob`` (nats) of their dequantised values."""
    return num_bits - log_prob / (num_dims * math.log(2.0))
