r"""The VAE's inference network: images to the parameters of a diagonal Gaussian posterior.

For an image :math:`x` (NHWC, in [-1, 1]) it returns :math:`\mu(x)` and
:math:`\log\sigma^2(x)` of :math:`q(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)`.
Each of the config's ``hidden_dims`` is one resolution level: a 3x3 convolution with stride 2
(halving height and width) and a SiLU. The last map is flattened and passed through a dense
layer of ``dense_dim`` units, then one linear layer gives both posterior parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.configuration.vae_config import VAEConfig
from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.dense import linear


class ConvEncoder(nnx.Module):
    """``encoder(x) -> (mean, log_var)``, each ``(B, latent_dim)``."""

    def __init__(self, config: VAEConfig, *, rngs: nnx.Rngs):
        channels = (config.input_shape[-1], *config.hidden_dims)
        self.convs = nnx.List(
            [
                conv(c_in, c_out, (3, 3), strides=2, padding=((1, 1), (1, 1)), rngs=rngs)
                for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
            ]
        )
        h, w, c = config.bottleneck_shape
        self.hidden = linear(h * w * c, config.dense_dim, rngs=rngs)
        self.posterior = linear(config.dense_dim, 2 * config.latent_dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        for layer in self.convs:
            x = nnx.silu(layer(x))
        x = nnx.silu(self.hidden(x.reshape(x.shape[0], -1)))
        mean, log_var = jnp.split(self.posterior(x), 2, axis=-1)
        return mean, log_var
