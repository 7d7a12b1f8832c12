"""Variational autoencoders: conv encoder and decoder, the bounds, and the model.

- :class:`~artifex.generative_models.models.vae.vae.VAEModel` - ``VAEModel(VAEConfig(), rngs=...)``.
- :mod:`~artifex.generative_models.models.vae.bounds` - KL, log-likelihoods, ELBO and the
  importance-weighted bound as pure functions.
"""

from artifex.generative_models.models.vae.decoder import ConvDecoder
from artifex.generative_models.models.vae.encoder import ConvEncoder
from artifex.generative_models.models.vae.vae import VAEModel, VAEOutput, discrete_nats

__all__ = ["ConvDecoder", "ConvEncoder", "VAEModel", "VAEOutput", "discrete_nats"]
