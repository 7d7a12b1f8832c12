"""A one-level UNet and synthetic data for the training-loop tests.

The fit, checkpoint and resume tests only need *a* model whose step compiles fast: the
shared TINY model cut to one UNet level without attention compiles in about a third of
the time. One trainer per session means one compiled train step for all in-process tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import optax
import pytest
from flax import nnx

from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)

NUM_IMAGES, BATCH_SIZE = 32, 8  # 4 batches per epoch


@pytest.fixture
def micro_model(make_model, tiny_config) -> Callable:
    """``micro_model(seed=0)``: the TINY model with one UNet level and no attention."""
    backbone = dataclasses.replace(tiny_config.backbone, hidden_dims=(8,), attention_resolutions=())
    return lambda seed=0: make_model(tiny_config, seed=seed, backbone=backbone)


def synthetic_iterator(seed: int = 0):
    """Exact-epoch batches of 32 random 8x8 uint8 images (no TFDS needed)."""
    from artifex.data.iterator import ImageBatchIterator

    images = np.random.default_rng(123).integers(0, 256, (NUM_IMAGES, 8, 8, 1), dtype=np.uint8)
    return ImageBatchIterator(
        images, np.zeros(NUM_IMAGES, np.int32), BATCH_SIZE, seed=seed, pad_to=None
    )


@pytest.fixture
def make_iterator() -> Callable:
    """``make_iterator(seed=0)``: 4 batches of 8 synthetic 8x8 images per epoch."""
    return synthetic_iterator


@pytest.fixture
def make_optimizer() -> Callable:
    """``make_optimizer(model, learning_rate=1e-3)``: clipped Adam over the parameters."""

    def build(model, learning_rate: float = 1e-3) -> nnx.Optimizer:
        transform = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))
        return nnx.Optimizer(model, transform, wrt=nnx.Param)

    return build


@pytest.fixture(scope="session")
def shared_trainer() -> DiffusionTrainer:
    """One trainer, hence one compiled train step, for every in-process fit test."""
    from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig

    schedule = NoiseScheduleConfig(schedule_type="cosine", num_timesteps=50)  # TINY's schedule
    return DiffusionTrainer(
        create_noise_schedule(schedule), DiffusionTrainingConfig(ema_decay=0.99, ema_update_every=2)
    )


@pytest.fixture
def trainer(shared_trainer: DiffusionTrainer, tiny_config) -> DiffusionTrainer:
    """The shared trainer with its EMA cleared."""
    assert shared_trainer.noise_schedule.config == tiny_config.noise_schedule
    shared_trainer.ema_state = None
    return shared_trainer
