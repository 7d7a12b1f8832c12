r"""Factor-out (RealNVP's multi-scale split) with Glow's learned conditional prior.

At the end of every scale but the last, half of the channels leave the flow:
:math:`h = (h_\mathrm{keep}, z)`, the kept half goes on to the next scale, and :math:`z` is
modelled directly. With ``split_prior="conditional"`` (Glow) its density is a diagonal
Gaussian whose parameters a zero-initialised 3x3 convolution reads from the kept half,

.. math::

    (\mu, \log\sigma) = \mathrm{Conv}(h_\mathrm{keep}),\qquad
    z \sim \mathcal{N}(\mu, \operatorname{diag}\sigma^2),

which is the same as one more invertible affine step to a standard normal variable,

.. math::

    \varepsilon = (z - \mu) / \sigma,\qquad
    \log\left|\det \frac{\partial \varepsilon}{\partial z}\right| = -\sum \log\sigma,

so the flow maps every input to standard-normal latents and
:math:`\log p(x) = \log\mathcal{N}(\varepsilon; 0, I) + \log|\det J|` holds with this term
inside :math:`\log|\det J|`. Sampling inverts it: :math:`z = \mu + \sigma\,\varepsilon`.
With ``split_prior="standard"`` (RealNVP), :math:`\varepsilon = z`: no parameters, no term.
At initialisation both are the same (:math:`\mu = 0, \sigma = 1`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.models.flow.coupling import zero_conv


class Split(nnx.Module):
    """Factor out the second half of the channels as standard-normal latents.

    Args:
      channels: the input's channel count (even); ``channels // 2`` are kept.
      prior: ``"conditional"`` (learned ``N(mu(h), sigma(h)^2)``) or ``"standard"``.
      rngs: initialises the prior's convolution.
    """

    def __init__(self, channels: int, prior: str, *, rngs: nnx.Rngs):
        if prior not in ("conditional", "standard"):
            raise ValueError(
                f"split_prior={prior!r} is not supported; choose 'conditional' or 'standard'"
            )
        self.prior = prior
        half = channels // 2
        self.conv = (
            zero_conv(half, 2 * (channels - half), rngs=rngs) if prior == "conditional" else None
        )

    def _mean_and_log_std(self, kept: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_std = jnp.split(self.conv(kept), 2, axis=-1)
        return mean, log_std

    def forward(self, h: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(kept, eps, log_det)``: the half that goes on, the factored-out half as a
        standard-normal variable, and ``log_det`` of shape ``(N,)``."""
        kept, z = jnp.split(h, 2, axis=-1)
        if self.conv is None:
            return kept, z, jnp.zeros(h.shape[:1], h.dtype)
        mean, log_std = self._mean_and_log_std(kept)
        eps = (z - mean) * jnp.exp(-log_std)
        return kept, eps, -jnp.sum(log_std, axis=(1, 2, 3))

    def inverse(self, kept: jax.Array, eps: jax.Array) -> jax.Array:
        """The input ``h`` whose :meth:`forward` gives ``(kept, eps)``."""
        if self.conv is None:
            return jnp.concatenate([kept, eps], axis=-1)
        mean, log_std = self._mean_and_log_std(kept)
        return jnp.concatenate([kept, mean + jnp.exp(log_std) * eps], axis=-1)


class LearnedTopPrior(nnx.Module):
    r"""Glow's learned prior of the last scale's output: a mean and log-std per position and
    channel, :math:`h \sim \mathcal{N}(\mu, \operatorname{diag}\sigma^2)`, written as the
    affine step :math:`\varepsilon = (h - \mu)/\sigma` with log-det :math:`-\sum\log\sigma`.

    Digits are not stationary (borders are always background), and this lets the coarsest
    latents have a density per position. Zero-initialised: it starts as ``N(0, I)``.

    Args:
      shape: ``(H, W, C)`` of the last scale's output.
    """

    def __init__(self, shape: tuple[int, int, int]):
        self.mean = nnx.Param(jnp.zeros(shape, jnp.float32))
        self.log_std = nnx.Param(jnp.zeros(shape, jnp.float32))

    def forward(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(eps, log_det)`` with ``log_det`` of shape ``(N,)``."""
        eps = (h - self.mean[...]) * jnp.exp(-self.log_std[...])
        return eps, jnp.broadcast_to(-jnp.sum(self.log_std[...]), h.shape[:1])

    def inverse(self, eps: jax.Array) -> jax.Array:
        return self.mean[...] + jnp.exp(self.log_std[...]) * eps
