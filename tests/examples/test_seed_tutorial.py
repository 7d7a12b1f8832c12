"""The public tutorial's code, as written, runs against artifex (small sizes, few steps).

Everything below the data block follows the reference tutorial (``shared/reference``) call for
call: its import paths, its configs with every field it sets, ``nnx.jit(trainer.train_step)``
called as ``jit_train_step(model, optimizer, batch, step_key)``, ``trainer.update_ema(model)``
every ``ema_update_every`` steps and ``model.sample(n_samples_or_shape=..., scheduler="ddim",
steps=...)``. Only the data loading is ours (the tutorial's DataRax source classes are not part
of DataRax 0.1.17); its ``preprocess_batch`` is kept verbatim.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.core.configuration.diffusion_config import (
    DDPMConfig,
    NoiseScheduleConfig,
)
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.models.diffusion.ddpm import DDPMModel
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)


def preprocess_batch(batch):
    image = batch["image"]
    image = image.astype(jnp.float32)
    image = (image / 127.5) - 1.0
    image = jnp.pad(
        image,
        ((0, 0), (2, 2), (2, 2), (0, 0)),
        mode="constant",
        constant_values=-1.0,
    )
    return {"image": image}


def test_the_seed_tutorial_loop_runs_as_written(offline_mnist_train) -> None:
    SEED = 42
    NUM_EPOCHS = 1
    BATCH_SIZE = 16
    NUM_TIMESTEPS = 100
    IMAGE_SIZE = 32
    BASE_LR = 1e-4
    WARMUP_STEPS = 2
    raw_batches = [
        {"image": offline_mnist_train.images[i : i + BATCH_SIZE]} for i in range(0, 64, 16)
    ]
    n_batches = len(raw_batches)

    key = jax.random.key(SEED)
    params_key, noise_key, sample_key, dropout_key, timestep_key = jax.random.split(key, 5)
    rngs = nnx.Rngs(
        params=params_key,
        noise=noise_key,
        sample=sample_key,
        dropout=dropout_key,
        timestep=timestep_key,
    )
    backbone_config = UNetBackboneConfig(
        name="unet_backbone",
        hidden_dims=(8, 16, 32),
        activation="gelu",
        in_channels=1,
        out_channels=1,
        time_embedding_dim=16,
        attention_resolutions=(8,),
        num_res_blocks=1,
        channel_mult=(1, 2, 4),
        dropout_rate=0.0,
    )
    noise_schedule_config = NoiseScheduleConfig(
        name="cosine_schedule",
        schedule_type="cosine",
        num_timesteps=NUM_TIMESTEPS,
        beta_start=1e-4,
        beta_end=0.02,
    )
    ddpm_config = DDPMConfig(
        name="ddpm_mnist",
        backbone=backbone_config,
        noise_schedule=noise_schedule_config,
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
        loss_type="huber",
        clip_denoised=True,
    )
    model = DDPMModel(ddpm_config, rngs=rngs)

    noise_schedule = create_noise_schedule(noise_schedule_config)
    total_steps = NUM_EPOCHS * n_batches
    lr_schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=BASE_LR,
        warmup_steps=WARMUP_STEPS,
        decay_steps=total_steps,
        end_value=BASE_LR * 0.01,
    )
    optimizer = nnx.Optimizer(
        model,
        optax.chain(
            optax.clip_by_global_norm(1.0),
            optax.adamw(lr_schedule, weight_decay=1e-5),
        ),
        wrt=nnx.Param,
    )
    diffusion_config = DiffusionTrainingConfig(
        prediction_type="epsilon",
        timestep_sampling="uniform",
        loss_weighting="uniform",
        ema_decay=0.9999,
        ema_update_every=2,
    )
    trainer = DiffusionTrainer(noise_schedule, diffusion_config)
    jit_train_step = nnx.jit(trainer.train_step)

    history = {"step": [], "loss": [], "epoch": [], "lr": []}
    train_key = jax.random.key(999)
    global_step = 0
    before = np.asarray(model.backbone.conv_in.kernel[...]).copy()
    for epoch in range(NUM_EPOCHS):
        for raw_batch in raw_batches:
            train_key, step_key = jax.random.split(train_key)
            batch = preprocess_batch(raw_batch)
            loss, metrics = jit_train_step(model, optimizer, batch, step_key)
            if global_step % diffusion_config.ema_update_every == 0:
                trainer.update_ema(model)
            history["step"].append(global_step)
            history["loss"].append(float(loss))
            history["epoch"].append(epoch)
            history["lr"].append(float(lr_schedule(global_step)))
            global_step += 1

    assert np.all(np.isfinite(history["loss"])) and float(metrics["loss"]) == history["loss"][-1]
    assert not np.array_equal(np.asarray(model.backbone.conv_in.kernel[...]), before)
    assert int(trainer.ema_state.count) == 2  # steps 0 and 2
    samples = model.sample(
        n_samples_or_shape=4,
        scheduler="ddim",
        steps=5,
    )
    assert samples.shape == (4, 32, 32, 1) and np.isfinite(np.asarray(samples)).all()
