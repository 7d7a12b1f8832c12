r"""The VAE's generative network: latents to the parameters of :math:`p(x \mid z)`.

Mirrors :mod:`~artifex.generative_models.models.vae.encoder`: ``z`` goes through a dense layer
of ``dense_dim`` units and a dense layer to the encoder's last feature map, then each level,
from the coarsest, doubles height and width (nearest-neighbour, which avoids the checkerboard
artefacts of transposed convolutions) and applies a 3x3 convolution to the next finer level's
channels, with a SiLU in between; the finest level's convolution gives one value per pixel
and channel:

- ``bernoulli`` decoder: the logits :math:`l` of
  :math:`p(x_i = 1 \mid z) = \operatorname{sigmoid}(l_i)`;
- ``gaussian`` decoder: the mean :math:`m_i` of :math:`\mathcal N(m_i, s^2)`, with the learned
  global ``log_scale`` :math:`\log s` (a scalar parameter, initialised at
  ``log(decoder_std_init)``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.configuration.vae_config import VAEConfig
from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.dense import linear


class ConvDecoder(nnx.Module):
    """``decoder(z) -> (B, H, W, C)`` logits (Bernoulli) or means (Gaussian)."""

    def __init__(self, config: VAEConfig, *, rngs: nnx.Rngs):
        self.bottleneck_shape = config.bottleneck_shape
        h, w, c = self.bottleneck_shape
        self.hidden = linear(config.latent_dim, config.dense_dim, rngs=rngs)
        self.expand = linear(config.dense_dim, h * w * c, rngs=rngs)
        # Level i maps hidden_dims[i] channels to hidden_dims[i - 1], the finest level to the
        # image's channels: the encoder's convolutions in reverse, and no full-resolution
        # hidden layer, which would cost more than the rest of the decoder together.
        dims = config.hidden_dims
        outs = (config.input_shape[-1], *dims[:-1])
        self.convs = nnx.List(
            [conv(dims[i], outs[i], (3, 3), rngs=rngs) for i in reversed(range(len(dims)))]
        )
        if config.decoder == "gaussian":
            self.log_scale = nnx.Param(jnp.asarray(math.log(config.decoder_std_init), jnp.float32))
        else:
            self.log_scale = None

    def __call__(self, z: jax.Array) -> jax.Array:
        x = nnx.silu(self.hidden(z))
        x = nnx.silu(self.expand(x)).reshape(z.shape[0], *self.bottleneck_shape)
        for index, layer in enumerate(self.convs):
            if index:
                x = nnx.silu(x)
            x = layer(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))
        return x
