r"""Affine coupling (RealNVP, Dinh et al. 2017; Glow's variant of the scale).

The channels are split in two halves, :math:`x = (x_a, x_b)`. The first passes unchanged and
gives, through a small convolutional network, a pre-activation :math:`h` and a shift
:math:`t` for the second:

.. math::

    (h, t) = \mathrm{NN}(x_a),\qquad y_a = x_a,\qquad y_b = s \odot x_b + t,

    \log\left|\det \frac{\partial y}{\partial x}\right| = \sum_{h, w, c} \log s_{hwc},
    \qquad x_b = (y_b - t) / s.

The Jacobian is block-triangular (:math:`y_a` does not depend on :math:`x_b`), hence the
cheap determinant, and the inverse needs the network only in the forward direction.

The scale is bounded so that no step can blow activations up (``coupling_scale``):

- ``sigmoid``: :math:`s = \sigma(h + 2) / \sigma(2)` in :math:`(0, 1.136)` (Glow uses
  :math:`\sigma(h + 2)`; dividing by :math:`\sigma(2)` makes :math:`s = 1` at :math:`h = 0`);
- ``tanh``: :math:`\log s = \tanh(h)`, :math:`s \in (e^{-1}, e)`.

The network is ``conv 3x3 -> ReLU -> conv 1x1 -> ReLU -> conv 3x3`` and its last layer is
zero-initialised, so :math:`h = t = 0` and the coupling starts as the identity: a fresh flow
is the identity map and training starts from the base density.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.conv_gradients import conv_general_dilated
from artifex.generative_models.core.layers.initializers import zeros


def zero_conv(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Conv:
    """A 3x3 convolution whose kernel and bias start at zero (output 0 for any input)."""
    return nnx.Conv(
        in_features,
        out_features,
        (3, 3),
        padding="SAME",
        kernel_init=zeros,
        bias_init=zeros,
        conv_general_dilated=conv_general_dilated,
        rngs=rngs,
    )


def bounded_log_scale(h: jax.Array, kind: str) -> jax.Array:
    """``log s`` for the pre-activation ``h`` (``log s = 0`` at ``h = 0``)."""
    if kind == "sigmoid":
        # The same float32 expression at h and at 0: log s is exactly 0 at h = 0.
        two = jnp.asarray(2.0, jnp.result_type(h, jnp.float32))
        return jax.nn.log_sigmoid(h + two) - jax.nn.log_sigmoid(two)
    if kind == "tanh":
        return jnp.tanh(h)
    raise ValueError(f"coupling_scale={kind!r} is not supported; choose 'sigmoid' or 'tanh'")


class AffineCoupling(nnx.Module):
    """Affine coupling of the second half of the channels on the first.

    Args:
      channels: the input's channel count (even).
      hidden_channels: width of the network.
      scale: ``"sigmoid"`` or ``"tanh"`` (see the module docstring).
      rngs: ``params`` initialises the network.
    """

    def __init__(self, channels: int, hidden_channels: int, scale: str, *, rngs: nnx.Rngs):
        if channels % 2:
            raise ValueError(f"AffineCoupling needs an even channel count, got {channels}")
        bounded_log_scale(jnp.zeros(()), scale)  # refuse an unknown kind now, not when traced
        self.scale = scale
        half = channels // 2
        self.conv_in = conv(half, hidden_channels, (3, 3), rngs=rngs)
        self.conv_mid = conv(hidden_channels, hidden_channels, (1, 1), rngs=rngs)
        self.conv_out = zero_conv(hidden_channels, 2 * (channels - half), rngs=rngs)

    def _scale_and_shift(self, x_a: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = jax.nn.relu(self.conv_in(x_a))
        hidden = jax.nn.relu(self.conv_mid(hidden))
        h, shift = jnp.split(self.conv_out(hidden), 2, axis=-1)
        return bounded_log_scale(h, self.scale), shift

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(y, log_det)`` with ``log_det`` of shape ``(N,)``."""
        x_a, x_b = jnp.split(x, 2, axis=-1)
        log_scale, shift = self._scale_and_shift(x_a)
        y_b = x_b * jnp.exp(log_scale) + shift
        return jnp.concatenate([x_a, y_b], axis=-1), jnp.sum(log_scale, axis=(1, 2, 3))

    def inverse(self, y: jax.Array) -> jax.Array:
        y_a, y_b = jnp.split(y, 2, axis=-1)
        log_scale, shift = self._scale_and_shift(y_a)
        x_b = (y_b - shift) * jnp.exp(-log_scale)
        return jnp.concatenate([y_a, x_b], axis=-1)
