"""Generative adversarial networks: a DCGAN generator and discriminator, their losses.

- :class:`Generator`: ``z ~ N(0, I)`` to images in [-1, 1]; ``sample(n, key=key)``.
- :class:`Discriminator`: images to one logit each, optionally spectrally normalised.
- :mod:`.losses`: non-saturating and hinge losses, the R1 penalty.

Both networks take the same :class:`~artifex.generative_models.core.configuration.gan_config.
GANConfig`; :class:`~artifex.generative_models.training.trainers.gan_trainer.GANTrainer`
trains them.
"""

from artifex.generative_models.models.gan.discriminator import Discriminator
from artifex.generative_models.models.gan.generator import Generator
from artifex.generative_models.models.gan.losses import (
    GAN_LOSSES,
    discriminator_loss,
    generator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    logits_and_input_gradients,
    non_saturating_discriminator_loss,
    non_saturating_generator_loss,
    r1_penalty,
)
from artifex.generative_models.models.gan.spectral_norm import (
    PowerIterationVector,
    SpectralNormConv,
)

__all__ = [
    "GAN_LOSSES",
    "Discriminator",
    "Generator",
    "PowerIterationVector",
    "SpectralNormConv",
    "discriminator_loss",
    "generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "logits_and_input_gradients",
    "non_saturating_discriminator_loss",
    "non_saturating_generator_loss",
    "r1_penalty",
]
