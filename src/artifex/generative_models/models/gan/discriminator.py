r"""The DCGAN discriminator :math:`D: x \mapsto` one real-vs-fake logit per image.

.. math::

    x \xrightarrow{(\text{conv}\ 4\times 4 \text{ stride } 2,\ \text{LeakyReLU}(0.2))^{L}}
    h \in \mathbb{R}^{H/2^L \times W/2^L \times c_L}
    \xrightarrow{\text{conv over the whole map}} D(x) \in \mathbb{R}

with :math:`L` = ``len(discriminator_dims)``. The last convolution spans the whole remaining
map with ``VALID`` padding: a dense layer on the flattened features, written as a
convolution so that spectral normalisation treats every layer alike. There is no
normalisation layer: each image's logit depends on that image alone, which the R1 penalty's
per-image input gradient relies on. With ``config.spectral_norm`` every kernel is divided by
its largest singular value (:mod:`.spectral_norm`), and :meth:`Discriminator.power_iteration`
refines those estimates (the trainer calls it once per discriminator update).
"""

from __future__ import annotations

import jax
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration.gan_config import GANConfig
from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.models.gan.spectral_norm import SpectralNormConv

#: Negative slope of the LeakyReLU between convolutions (DCGAN's value).
LEAKY_SLOPE = 0.2
#: Kernel 4, stride 2, padding 1: exactly halves even sizes (28 -> 14 -> 7).
_DOWN = dict(kernel_size=(4, 4), strides=2, padding=((1, 1), (1, 1)))


def _conv(config: GANConfig, c_in: int, c_out: int, rngs: nnx.Rngs, **kwargs) -> nnx.Module:
    if config.spectral_norm:
        return SpectralNormConv(
            c_in, c_out, power_iterations=config.power_iterations, rngs=rngs, **kwargs
        )
    return conv(c_in, c_out, rngs=rngs, **kwargs)


class Discriminator(nnx.Module):
    """Scores images: a high logit means "real".

    Args:
      config: the architecture (shared with the :class:`Generator`).
      rngs: the ``params`` stream initialises the weights.
    """

    def __init__(self, config: GANConfig, *, rngs: nnx.Rngs):
        self.config = config
        channels = (config.input_shape[-1], *config.discriminator_dims)
        pairs = zip(channels[:-1], channels[1:], strict=True)
        self.convs = nnx.List([_conv(config, c_in, c_out, rngs, **_DOWN) for c_in, c_out in pairs])
        self.head = _conv(
            config,
            channels[-1],
            1,
            rngs,
            kernel_size=config.discriminator_feature_shape,
            padding="VALID",
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits ``(N,)`` of images ``(N, H, W, C)`` in [-1, 1]."""
        inputs.check_images("x", x, self.config.input_shape)
        for layer in self.convs:
            x = nnx.leaky_relu(layer(x), LEAKY_SLOPE)
        return self.head(x).reshape(x.shape[0])

    def power_iteration(self) -> None:
        """One refinement of every spectral-norm estimate (nothing without spectral norm)."""
        if self.config.spectral_norm:
            for layer in (*self.convs, self.head):
                layer.power_iteration()
