r"""The DCGAN generator :math:`G: z \mapsto x` (Radford et al. 2016), NHWC images in [-1, 1].

.. math::

    z \sim \mathcal{N}(0, I_{d}) \;\xrightarrow{\text{dense}}\; h_0 \in
    \mathbb{R}^{H_0 \times W_0 \times c_0} \;\xrightarrow{\;(\uparrow 2,\ \text{conv}\
    3\times 3,\ \text{norm},\ \text{ReLU})^{L-1}}\; \cdots \;\xrightarrow{\uparrow 2,\
    \text{conv}\ 3\times 3}\; \tanh(\cdot) = x \in [-1, 1]^{H \times W \times C}

with :math:`L` = ``len(generator_dims)``, :math:`H_0 = H / 2^L`. Upsampling is
nearest-neighbour doubling followed by a convolution rather than a transposed convolution:
no checkerboard artefacts, and a 3x3 convolution costs less than the 4x4 transposed one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration.gan_config import GANConfig
from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.dense import linear
from artifex.generative_models.core.layers.initializers import ones, zeros
from artifex.generative_models.core.layers.normalization import group_norm


def _norm(config: GANConfig, channels: int, rngs: nnx.Rngs) -> nnx.Module:
    if config.generator_norm == "batch":
        # momentum 0.9: the running statistics that sampling uses follow the fast-changing
        # generator over ~10 steps (flax's default 0.99 would lag ~100 steps behind).
        return nnx.BatchNorm(
            channels, momentum=0.9, epsilon=1e-5, scale_init=ones, bias_init=zeros, rngs=rngs
        )
    return group_norm(channels, rngs=rngs)


def _upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour doubling of height and width."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class Generator(nnx.Module):
    """Maps latent vectors to images.

    Args:
      config: the architecture (shared with the :class:`Discriminator`).
      rngs: the ``params`` stream initialises the weights.
    """

    def __init__(self, config: GANConfig, *, rngs: nnx.Rngs):
        self.config = config
        dims = config.generator_dims
        height, width = config.base_shape
        self.project = linear(config.latent_dim, height * width * dims[0], rngs=rngs)
        self.project_norm = _norm(config, dims[0], rngs)
        outputs = (*dims[1:], config.input_shape[-1])
        pairs = zip(dims, outputs, strict=True)
        self.convs = nnx.List([conv(c_in, c_out, (3, 3), rngs=rngs) for c_in, c_out in pairs])
        self.norms = nnx.List([_norm(config, c, rngs) for c in dims[1:]])

    def _normalize(self, norm: nnx.Module, x: jax.Array, train: bool) -> jax.Array:
        if isinstance(norm, nnx.BatchNorm):
            # Training normalises by the batch (and updates the running statistics);
            # sampling uses the running statistics, so each image is independent of the rest.
            return norm(x, use_running_average=not train)
        return norm(x)

    def __call__(self, z: jax.Array, *, train: bool = True) -> jax.Array:
        """Images ``(N, H, W, C)`` in [-1, 1] from latents ``z`` of shape ``(N, latent_dim)``.

        ``train=False`` uses BatchNorm's running statistics (no effect with GroupNorm).
        """
        _check_latents(z, self.config.latent_dim)
        height, width = self.config.base_shape
        x = self.project(z).reshape(z.shape[0], height, width, self.config.generator_dims[0])
        x = nnx.relu(self._normalize(self.project_norm, x, train))
        for index, layer in enumerate(self.convs):
            x = layer(_upsample(x))
            if index < len(self.norms):
                x = nnx.relu(self._normalize(self.norms[index], x, train))
        return jnp.tanh(x)

    def sample(self, n: int, *, key: jax.Array) -> jax.Array:
        """``n`` images from ``z ~ N(0, I)`` drawn with ``key`` (a PRNG key or an integer
        seed): one compiled call."""
        return _sample(self, inputs.check_count("n", n), inputs.as_key(key))


def _check_latents(z: jax.Array, latent_dim: int) -> None:
    """``z`` is a float batch ``(N, latent_dim)`` (checked at trace time: shapes are static)."""
    shape = tuple(getattr(z, "shape", ()))
    if len(shape) != 2 or shape[1] != latent_dim or shape[0] == 0:
        raise ValueError(
            f"z has shape {shape}; pass latents of shape (N, {latent_dim}) "
            f"(config.latent_dim={latent_dim}), e.g. jax.random.normal(key, (16, {latent_dim}))"
        )
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise TypeError(f"z has dtype {z.dtype}; pass float latents, e.g. z.astype(jnp.float32)")


@nnx.jit(static_argnums=1)
def _sample(generator: Generator, n: int, key: jax.Array) -> jax.Array:
    z = jax.random.normal(key, (n, generator.config.latent_dim))
    return generator(z, train=False)
