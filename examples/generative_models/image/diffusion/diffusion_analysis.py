# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Looking inside a diffusion model
#
# Four views of a DDPM on MNIST digits, each one library call from
# `artifex.generative_models.analysis`:
#
# 1. the noise schedules (betas, alpha-bar, log-SNR);
# 2. the forward process on real digits, from clean to pure noise;
# 3. how well the trained network predicts the noise at each timestep;
# 4. spherical interpolation between two starting noises, decoded with DDPM and with DDIM.
#
# Views 3 and 4 need a trained model: pass `--checkpoint DIR` (an export from
# `artifex.generative_models.training.checkpointing.export_best_model`, such as the MNIST
# tutorial's `outputs/diffusion_mnist/ema_model`; the model is rebuilt from the configuration
# stored with it, or is the architecture below when none is), or the script trains one for
# `--train-steps` steps. `--smoke` runs a tiny model in
# seconds. Figures go to `outputs/diffusion_analysis/`; a notebook also shows each one below
# its cell, a script prints its path. In a notebook, pass flags through the `ARTIFEX_ARGS`
# environment variable.

# %%
import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax
from flax import nnx

from artifex.data import make_train_iterator
from artifex.generative_models.analysis import (
    evenly_spaced_timesteps,
    interpolation_study,
    noise_prediction_mse,
    plot_beta_schedules,
    plot_noise_prediction_mse,
    save_forward_process,
)
from artifex.generative_models.core.configuration import (
    DDPMConfig,
    NoiseScheduleConfig,
    UNetBackboneConfig,
)
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.models.diffusion.ddpm import DDPMModel
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.state import copy_module
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)
from artifex.runtime import select_platform
from artifex.visualization import plot_training_curve

parser = argparse.ArgumentParser(
    description="Schedules, forward process, error per timestep, latent interpolation."
)
parser.add_argument("--checkpoint", type=Path, help="best-model export to load instead of training")
parser.add_argument("--train-steps", type=int, default=1500, help="steps when training here")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument(
    "--hidden-dims",
    type=int,
    nargs="+",
    default=[16, 32],
    help="UNet channels per level (a checkpoint must match)",
)
parser.add_argument("--smoke", action="store_true", help="tiny model, few steps: a quick check")
parser.add_argument("--output-dir", type=Path, default=Path("outputs/diffusion_analysis"))
parser.add_argument("--seed", type=int, default=0)
ipython = sys.modules.get("IPython")
in_notebook = ipython is not None and type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"
argv = shlex.split(os.environ.get("ARTIFEX_ARGS", "")) if in_notebook else None  # kernel argv
args = parser.parse_args(argv)
output_dir = args.output_dir.resolve()
output_dir.mkdir(parents=True, exist_ok=True)
# Before JAX picks a backend: the CPU, without CUDA errors, when JAX's CUDA plugin is
# installed on a machine with no NVIDIA GPU (None, or the reason).
PLATFORM_NOTE = select_platform()
# Measured on 2 cores: the analysis of the tutorial's cpu model took 2.7 min (2026-11-22);
# a training step of the default (16, 32) model TRAIN_STEP_SECONDS (0.49 s measured
# 2026-12-02, load 1.8).
TRAIN_STEP_SECONDS = 0.5
if args.smoke:
    preset, expect = "smoke", "expect under a minute"
elif args.checkpoint is not None:
    preset, expect = "checkpoint", "expect ~3 min on 2 cores"
else:
    minutes = 3 + round(args.train_steps * TRAIN_STEP_SECONDS / 60)
    preset, expect = f"train {args.train_steps} steps", f"expect ~{minutes} min on 2 cores"
print(f"artifex diffusion analysis: backend {jax.default_backend()}, preset {preset} ({expect})")
if PLATFORM_NOTE:
    print(PLATFORM_NOTE)
print(f"JAX {jax.__version__}; outputs in {output_dir}")


def show_figure(path: Path) -> None:
    """A saved figure: shown inline in a notebook, its path printed by a script."""
    if in_notebook:
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    else:
        print(f"figure: {path}")


# %% [markdown]
# ## 1. Noise schedules
#
# alpha-bar is the fraction of signal variance left at step t. It falls below one half at
# t=259 under the linear schedule, t=418 (scaled-linear), t=439 (sigmoid) and t=496
# (cosine): the linear schedule spends its last few hundred steps on almost pure noise,
# while cosine spreads its steps more evenly in log-SNR. Betas span four orders of
# magnitude (cosine's last beta is clipped at 0.999), hence the log axis.

# %%
show_figure(plot_beta_schedules(output_dir / "schedules.png"))

# %% [markdown]
# ## 2. The forward process on real digits
#
# Each row is one digit; each column adds the noise of timestep t to it, with one noise draw
# per row. Timesteps count from 0, and the schedule's t=0 already adds one step of noise
# (sqrt(beta_0) = 0.01 for the linear schedule), so the t=0 column shows the clean digit
# itself. Column titles give the mix: at t=600 the linear schedule keeps 0.16 of the
# digit's amplitude, the cosine schedule 0.58.

# %%
batches = make_train_iterator(
    "mnist", args.batch_size if not args.smoke else 8, seed=args.seed, offline_fallback=True
)
digits = np.asarray(next(batches)["image"])[:4]
forward_key = jax.random.key(args.seed)
for kind in ("linear", "cosine"):
    schedule = create_noise_schedule(NoiseScheduleConfig(schedule_type=kind, num_timesteps=1000))
    show_figure(
        save_forward_process(digits, schedule, output_dir / f"forward_{kind}.png", key=forward_key)
    )

# %% [markdown]
# ## 3. A trained model
#
# A small UNet (`--hidden-dims`, default 16 and 32 channels) on 32x32 digits, cosine
# schedule, 1000 timesteps (`--smoke`: tiny UNet, 20 timesteps); with `--checkpoint`, the
# architecture stored with the export. We keep the untrained initial weights to compare
# against.

# %%
hidden_dims, num_timesteps = ((8, 16), 20) if args.smoke else (tuple(args.hidden_dims), 1000)
train_steps = 3 if args.smoke else args.train_steps
stored_config = None
if args.checkpoint is not None:
    from artifex.generative_models.training.checkpointing import best_model_metadata

    stored_config = best_model_metadata(args.checkpoint).get("config")
config = (
    DDPMConfig.from_dict(stored_config)
    if stored_config
    else DDPMConfig(
        backbone=UNetBackboneConfig(
            hidden_dims=hidden_dims,
            activation="silu",
            in_channels=1,
            out_channels=1,
            time_embedding_dim=4 * hidden_dims[0],
            attention_resolutions=(),
            num_res_blocks=1,
        ),
        noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=num_timesteps),
        input_shape=(32, 32, 1),
    )
)
hidden_dims, num_timesteps = config.backbone.hidden_dims, config.noise_schedule.num_timesteps
keys = jax.random.split(jax.random.key(args.seed), 5)
model = DDPMModel(config, rngs=nnx.Rngs(params=keys[0], sample=keys[1]))
untrained = copy_module(model)  # own buffers: training donates (frees) the model's
trainer = DiffusionTrainer(
    create_noise_schedule(config.noise_schedule),
    DiffusionTrainingConfig(ema_decay=0.999, ema_update_every=1),
)
if args.checkpoint is not None:
    from artifex.generative_models.training.checkpointing import load_best_model

    print(f"loaded {args.checkpoint}: {load_best_model(args.checkpoint, model)}")
else:
    warmup = min(100, max(1, train_steps // 10))
    lr = optax.warmup_cosine_decay_schedule(0.0, 2e-3, warmup, train_steps, 1e-5)
    optimizer = nnx.Optimizer(
        model, optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lr)), wrt=nnx.Param
    )
    state = trainer.init_state(model, optimizer)
    start = time.perf_counter()
    fit_config = FitConfig(
        output_dir=output_dir / "training",  # checkpoints: a rerun reuses the trained state
        epochs=math.ceil(train_steps / len(batches)),
        max_steps=train_steps,
        seed=args.seed,
        patience=None,  # a fixed number of steps
        final_samples=False,
        log_every_steps=100,
    )
    result = fit(trainer, state, batches, fit_config, learning_rate=lr)
    print(f"trained {train_steps} steps in {time.perf_counter() - start:.0f} s")
    curve = plot_training_curve(
        result.losses,
        output_dir / "training_curve.png",
        learning_rates=lr(np.arange(train_steps)),
        window=50,
    )
    show_figure(curve)
    model = state.sample_model()

# %% [markdown]
# ## 4. Noise-prediction error per timestep
#
# For K timesteps we noise a batch of real digits and measure the mean squared error of the
# predicted noise (one compiled `lax.scan` over the timesteps). Predicting zero noise scores
# 1. Near t=0 the noise is tiny next to the digit and hard to pick out, so the error is
# typically large; at large t the image is almost all noise and the prediction becomes easy.
# The untrained network should sit near or above 1 everywhere.

# %%
eval_images = np.asarray(next(batches)["image"])
timesteps = evenly_spaced_timesteps(num_timesteps, 5 if args.smoke else 25)
curves = {
    name: noise_prediction_mse(m, eval_images, timesteps, key=keys[3])
    for name, m in (("untrained", untrained), ("trained (EMA)", model))
}
show_figure(plot_noise_prediction_mse(timesteps, curves, output_dir / "mse_vs_timestep.png"))
for t, a, b in zip(timesteps, *curves.values(), strict=True):
    print(f"  t={int(t):4d}: untrained {a:.3f}, trained {b:.3f}")

# %% [markdown]
# ## 5. Interpolating between starting noises
#
# Two noises x_T are joined by slerp (the great circle between them, which keeps each point
# at the norm typical of Gaussian noise). DDIM with eta=0 is a deterministic map from x_T to
# an image, so its strip changes gradually; DDPM injects fresh noise at every step, so its
# strip does not follow the path smoothly.

# %%
figure, strips = interpolation_study(
    model,
    output_dir / "interpolation.png",
    key=keys[4],
    num_points=4 if args.smoke else 8,
    ddpm_steps=4 if args.smoke else 1000,
    ddim_steps=4 if args.smoke else 50,
    pairs=1 if args.smoke else 2,
)
show_figure(figure)
