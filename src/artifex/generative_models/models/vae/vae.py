r"""VAEModel: encoder, decoder, the reparameterised forward pass and compiled generation.

Data convention. Images enter in [-1, 1] (``uint8 / 127.5 - 1``). What the likelihood
models is set by the decoder (:meth:`VAEModel.observe` turns images into it):

- ``bernoulli``: binary pixels :math:`b \sim \mathrm{Bernoulli}((x + 1) / 2)`, drawn afresh
  from a key every training step (*dynamic binarisation*, the setting of the published
  ~80-85 nats MNIST figures); the encoder sees :math:`2b - 1`, the likelihood scores
  :math:`b`. Its nats are :math:`-\log P(b)` of the binary image, a probability.
- ``gaussian``: pixels dequantised with uniform noise,
  :math:`y = x + (u - \tfrac12)\,\Delta`, :math:`u \sim U[0, 1)^D`, with the quantisation step
  :math:`\Delta = 1/127.5` of the [-1, 1] scale. Its nats are :math:`-\log p(y)` of a
  *density* over :math:`y \in \mathbb R^D`, in the units of the [-1, 1] scale: not a
  probability and not comparable with Bernoulli nats. Since the 256 levels' bins tile the
  line, :math:`-\log P(x_{\mathrm{uint8}}) \le -\mathbb E_u \log p(y) + D \log 127.5`
  (Theis et al. 2016), which :func:`discrete_nats` adds to report bits per dimension.

Generation (:meth:`VAEModel.sample`) draws :math:`z \sim \mathcal N(0, T^2 I)` and returns the
decoder's mean image in [-1, 1]: ``2 sigmoid(logits) - 1`` for Bernoulli (the pixel
probabilities, not a binary draw), the clipped mean for Gaussian.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration.vae_config import VAEConfig
from artifex.generative_models.models.vae import bounds
from artifex.generative_models.models.vae.decoder import ConvDecoder
from artifex.generative_models.models.vae.encoder import ConvEncoder

#: Quantisation step of 8-bit pixels on the [-1, 1] scale.
PIXEL_STEP = 1.0 / 127.5


class VAEOutput(NamedTuple):
    """One reparameterised pass: decoder output (logits or means), posterior and its draw."""

    decoded: jax.Array
    mean: jax.Array
    log_var: jax.Array
    z: jax.Array


def discrete_nats(density_nats: jax.Array | float, num_pixels: int) -> jax.Array | float:
    r"""Upper bound on :math:`-\log P` of 8-bit images from the Gaussian decoder's dequantised
    density nats: :math:`-\log p(y) + D \log 127.5` (see the module docstring)."""
    return density_nats + num_pixels * math.log(127.5)


class VAEModel(nnx.Module):
    """A variational autoencoder built from a :class:`VAEConfig`.

    ``model(x, key=key)`` encodes ``x``, draws :math:`z = \\mu + \\sigma \\odot \\epsilon`,
    :math:`\\epsilon \\sim \\mathcal N(0, I)` (differentiable in :math:`\\mu, \\sigma`) and
    decodes it. :meth:`encode`, :meth:`decode`, :meth:`observe` and :meth:`log_likelihood` are
    traceable (the trainer calls them inside its compiled step); :meth:`sample`,
    :meth:`decode_images`, :meth:`reconstruct` and :meth:`interpolate` are compiled calls.

    Args:
      config: the validated model configuration.
      rngs: initialises the parameters (only the ``params`` or ``default`` stream is used);
        the model keeps no RNG state: every random call takes a key.
    """

    def __init__(self, config: VAEConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, VAEConfig):
            raise TypeError(f"VAEModel expects a VAEConfig, got {type(config).__name__}")
        self.config = config
        self.encoder = ConvEncoder(config, rngs=rngs)
        self.decoder = ConvDecoder(config, rngs=rngs)

    # ------------------------------------------------------------------ traceable parts
    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Posterior mean and log-variance ``(B, latent_dim)`` of images ``x`` in [-1, 1]."""
        return self.encoder(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """Decoder output for latents ``z``: Bernoulli logits or Gaussian means (NHWC)."""
        return self.decoder(z)

    def __call__(self, x: jax.Array, *, key: jax.Array) -> VAEOutput:
        """Encode, draw one reparameterised ``z`` from ``key``, decode."""
        inputs.check_images("x", x, self.config.input_shape)
        mean, log_var = self.encode(x)
        eps = jax.random.normal(key, mean.shape, mean.dtype)
        z = mean + jnp.exp(0.5 * log_var) * eps
        return VAEOutput(self.decode(z), mean, log_var, z)

    def observe(self, images: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(target, inputs)`` for images in [-1, 1]: what the likelihood scores and what the
        encoder sees (a binarisation or a dequantisation drawn from ``key``, see the module
        docstring)."""
        if self.config.decoder == "bernoulli":
            binary = jax.random.bernoulli(key, (images + 1.0) / 2.0).astype(images.dtype)
            return binary, 2.0 * binary - 1.0
        u = jax.random.uniform(key, images.shape, images.dtype)
        dequantised = images + (u - 0.5) * PIXEL_STEP
        return dequantised, dequantised

    def log_likelihood(self, target: jax.Array, decoded: jax.Array) -> jax.Array:
        """:math:`\\log p(\\text{target} \\mid z)` per example from the decoder output."""
        if self.config.decoder == "bernoulli":
            return bounds.bernoulli_log_likelihood(target, decoded)
        return bounds.gaussian_log_likelihood(target, decoded, self.decoder.log_scale[...])

    def to_images(self, decoded: jax.Array) -> jax.Array:
        """The decoder's mean image in [-1, 1]: ``2 sigmoid(logits) - 1`` or the clipped mean."""
        if self.config.decoder == "bernoulli":
            return 2.0 * jax.nn.sigmoid(decoded) - 1.0
        return jnp.clip(decoded, -1.0, 1.0)

    # ------------------------------------------------------------------ compiled calls
    def sample(self, n: int, *, key: jax.Array, temperature: float = 1.0) -> jax.Array:
        """``n`` images in [-1, 1] from :math:`z \\sim \\mathcal N(0, T^2 I)`, ``T = temperature``
        (``T < 1`` trades diversity for cleaner digits); one compiled call per ``n``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r} must be an integer >= 1")
        if not temperature > 0:
            raise ValueError(f"temperature={temperature!r} must be > 0")
        graphdef, state = nnx.split(self)
        return _sample(graphdef, state, key, jnp.float32(temperature), n=n)

    def decode_images(self, z: jax.Array) -> jax.Array:
        """Images in [-1, 1] decoded from given latents ``(B, latent_dim)`` (compiled)."""
        z = jnp.asarray(z, jnp.float32)
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z.shape={z.shape} must be (B, latent_dim={self.config.latent_dim})")
        graphdef, state = nnx.split(self)
        return _decode_images(graphdef, state, z)

    def reconstruct(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Decode the posterior of images ``x`` (NHWC in [-1, 1]) back to images in [-1, 1]:
        from its mean, or from one draw when ``key`` is given (compiled)."""
        x = self._images(x, "x")
        graphdef, state = nnx.split(self)
        draw = key is not None
        return _reconstruct(graphdef, state, x, key if draw else jax.random.key(0), stochastic=draw)

    def interpolate(self, x_a: jax.Array, x_b: jax.Array, steps: int = 8) -> jax.Array:
        """Decoded points on the line between the posterior means of ``x_a`` and ``x_b``:
        :math:`z_t = (1 - t)\\,\\mu(x_a) + t\\,\\mu(x_b)`, ``t`` in ``linspace(0, 1, steps)``.

        Takes two images ``(H, W, C)`` -> ``(steps, H, W, C)``, or two batches
        ``(B, H, W, C)`` -> ``(B, steps, H, W, C)``; one compiled call.
        """
        single = jnp.ndim(x_a) == 3
        x_a = self._images(x_a[None] if single else x_a, "x_a")
        x_b = self._images(x_b[None] if single else x_b, "x_b")
        if x_a.shape != x_b.shape:
            raise ValueError(f"x_a.shape={x_a.shape} and x_b.shape={x_b.shape} must be equal")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps={steps!r} must be an integer >= 2")
        graphdef, state = nnx.split(self)
        path = _interpolate(graphdef, state, x_a, x_b, steps=steps)
        return path[0] if single else path

    def _images(self, x: jax.Array, name: str) -> jax.Array:
        x = jnp.asarray(x, jnp.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.config.input_shape:
            raise ValueError(
                f"{name}.shape={x.shape} must be (B, *input_shape={self.config.input_shape})"
            )
        return x


@functools.partial(jax.jit, static_argnames=("graphdef", "n"))
def _sample(graphdef, state, key, temperature, *, n):
    model: VAEModel = nnx.merge(graphdef, state)
    z = temperature * jax.random.normal(key, (n, model.config.latent_dim), jnp.float32)
    return model.to_images(model.decode(z))


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _decode_images(graphdef, state, z):
    model: VAEModel = nnx.merge(graphdef, state)
    return model.to_images(model.decode(z))


@functools.partial(jax.jit, static_argnames=("graphdef", "stochastic"))
def _reconstruct(graphdef, state, x, key, *, stochastic):
    model: VAEModel = nnx.merge(graphdef, state)
    if stochastic:
        return model.to_images(model(x, key=key).decoded)
    mean, _ = model.encode(x)
    return model.to_images(model.decode(mean))


@functools.partial(jax.jit, static_argnames=("graphdef", "steps"))
def _interpolate(graphdef, state, x_a, x_b, *, steps):
    model: VAEModel = nnx.merge(graphdef, state)
    mean_a, _ = model.encode(x_a)
    mean_b, _ = model.encode(x_b)
    t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
    z = (1.0 - t) * mean_a[:, None] + t * mean_b[:, None]  # (B, steps, latent_dim)
    images = model.to_images(model.decode(z.reshape(-1, z.shape[-1])))
    return images.reshape(x_a.shape[0], steps, *images.shape[1:])
