"""A tiny ``fit`` run for the signal tests, executed as its own process.

``python fit_child.py OUT [--kill-at N | --interrupt-at N]``: trains the one-level TINY
model for 3 epochs of 4 batches, checkpointing every 3 steps, and writes the final model,
optimizer and EMA arrays to ``OUT/final.npz``. ``--kill-at N`` sends itself SIGKILL right
after step N (no chance to clean up); ``--interrupt-at N`` sends itself SIGINT,
``--terminate-at N`` SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import numpy as np
import optax
from flax import nnx

from artifex.data.iterator import ImageBatchIterator
from artifex.generative_models.core.configuration import (
    DDPMConfig,
    NoiseScheduleConfig,
    UNetBackboneConfig,
)
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.models.diffusion.ddpm import DDPMModel
from artifex.generative_models.training.checkpointing import flat_arrays
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.hooks import Hook
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--kill-at", type=int)
parser.add_argument("--interrupt-at", type=int)
parser.add_argument("--terminate-at", type=int)
args = parser.parse_args()

backbone = UNetBackboneConfig(
    hidden_dims=(8,),
    in_channels=1,
    out_channels=1,
    time_embedding_dim=8,
    attention_resolutions=(),
    num_res_blocks=1,
)
schedule = NoiseScheduleConfig(schedule_type="cosine", num_timesteps=50)
config = DDPMConfig(backbone=backbone, noise_schedule=schedule, input_shape=(8, 8, 1))
import jax  # noqa: E402

keys = jax.random.split(jax.random.key(0), 2)
model = DDPMModel(config, rngs=nnx.Rngs(params=keys[0], sample=keys[1]))
optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
trainer = DiffusionTrainer(create_noise_schedule(schedule), DiffusionTrainingConfig(ema_decay=0.99))
images = np.random.default_rng(123).integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
iterator = ImageBatchIterator(images, np.zeros(32, np.int32), 8, seed=0, pad_to=None)


class Signals(Hook):
    def on_step(self, run, metrics) -> None:
        step = run.global_step
        print(f"step {step}", flush=True)
        if step == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if step == args.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        if step == args.terminate_at:
            os.kill(os.getpid(), signal.SIGTERM)


fit_config = FitConfig(
    output_dir=args.out,
    epochs=3,
    checkpoint_every_steps=3,
    checkpoint_every_epochs=None,
    patience=None,
    final_samples=False,
    progress_bar=False,
)
state = trainer.init_state(model, optimizer)
result = fit(trainer, state, iterator, fit_config, hooks=[Signals()])
arrays = flat_arrays(nnx.state(state))
np.savez(args.out / "final.npz", losses=result.losses, **arrays)
print(f"done at step {result.global_step}, resumed from {result.resumed_from}")
