"""Typed, validated configuration dataclasses.

Configs are frozen (hashable), so a model built from one can be a static argument of
``jax.jit``; every field is checked in ``__post_init__`` and a bad value raises a
``ValueError`` naming the field, the value and what is allowed.
"""

from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.core.configuration.diffusion_config import (
    DDPMConfig,
    NoiseScheduleConfig,
)
from artifex.generative_models.core.configuration.flow_config import FlowConfig
from artifex.generative_models.core.configuration.gan_config import GANConfig
from artifex.generative_models.core.configuration.vae_config import VAEConfig

__all__ = [
    "DDPMConfig",
    "FlowConfig",
    "GANConfig",
    "NoiseScheduleConfig",
    "UNetBackboneConfig",
    "VAEConfig",
]
