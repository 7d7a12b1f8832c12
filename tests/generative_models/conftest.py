"""Tiny models shared by the generative-model tests (seconds to compile on 2 cores)."""

from __future__ import annotations

import dataclasses

import jax
import pytest
from flax import nnx

from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.core.configuration.diffusion_config import (
    DDPMConfig,
    NoiseScheduleConfig,
)
from artifex.generative_models.models.diffusion.ddpm import DDPMModel

TINY_BACKBONE = UNetBackboneConfig(
    hidden_dims=(8, 16),
    activation="silu",
    in_channels=1,
    out_channels=1,
    time_embedding_dim=8,
    attention_resolutions=(4,),
    num_res_blocks=1,
)
TINY_SCHEDULE = NoiseScheduleConfig(schedule_type="cosine", num_timesteps=50)
TINY_DDPM = DDPMConfig(backbone=TINY_BACKBONE, noise_schedule=TINY_SCHEDULE, input_shape=(8, 8, 1))


def make_model(config: DDPMConfig = TINY_DDPM, seed: int = 0, **changes) -> DDPMModel:
    """A DDPMModel from ``config`` with ``changes`` applied, initialised from ``seed``."""
    if changes:
        config = dataclasses.replace(config, **changes)
    k = jax.random.split(jax.random.key(seed), 2)
    return DDPMModel(config, rngs=nnx.Rngs(params=k[0], sample=k[1]))


@pytest.fixture
def tiny_config() -> DDPMConfig:
    return TINY_DDPM


@pytest.fixture(name="make_model")
def make_model_fixture():
    """The :func:`make_model` factory (tests build variants of the tiny model with it)."""
    return make_model


@pytest.fixture
def tiny_model() -> DDPMModel:
    return make_model()
