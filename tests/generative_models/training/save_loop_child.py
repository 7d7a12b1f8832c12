"""Saves checkpoints of a small train state without end, for the kill -9 tests.

``python save_loop_child.py DIR START``: opens ``DIR`` (which sets incomplete steps aside),
prints ``ready``, then saves steps ``START, START + 1, ...`` with ``max_to_keep=1`` (every save
also deletes the step before it) with an asynchronous checkpointer, as ``fit`` does, until it
is killed, printing ``saved N`` after each. Each step's weights are the step number, so a
restore can check them.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from artifex.generative_models.core.configuration import (
    DDPMConfig,
    NoiseScheduleConfig,
    UNetBackboneConfig,
)
from artifex.generative_models.models.diffusion.ddpm import DDPMModel
from artifex.generative_models.training.checkpointing import TrainingCheckpointer
from artifex.generative_models.training.state import TrainState

BACKBONE = UNetBackboneConfig(
    hidden_dims=(8,),
    in_channels=1,
    out_channels=1,
    time_embedding_dim=8,
    attention_resolutions=(),
    num_res_blocks=1,
)
CONFIG = DDPMConfig(
    backbone=BACKBONE,
    noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=50),
    input_shape=(8, 8, 1),
)


def build_state() -> TrainState:
    model = DDPMModel(CONFIG, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    return TrainState({"model": model}, {"model": optimizer})


def set_weights(state: TrainState, value: int) -> None:
    params = nnx.state(state.model, nnx.Param)
    nnx.update(state.model, jax.tree.map(lambda p: jnp.full_like(p, value), params))


if __name__ == "__main__":
    directory, step = sys.argv[1], int(sys.argv[2])
    state = build_state()
    checkpointer = TrainingCheckpointer(directory, max_to_keep=1, asynchronous=True)
    print("ready", flush=True)
    while True:
        set_weights(state, step)
        checkpointer.save(step, state, extra={"step": step})
        checkpointer.wait()  # the write, its commit and the deletion of the step before
        print(f"saved {step}", flush=True)
        step += 1
