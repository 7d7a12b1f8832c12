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
# # Train a diffusion model on CIFAR-10 with `fit`
#
# A DDPM on 32x32 colour images, trained by the library's `fit` loop: checkpoints every
# epoch (a rerun resumes where the last one stopped), the best model exported on every
# improvement of the epoch loss, early stopping, a NaN guard, sample and forward-noising grids
# every few epochs, and the training curve. It runs as a script
# (`python diffusion_cifar10_training.py --help`) and as a notebook (the same file, paired
# with jupytext).
#
# **Hardware.** The `full` preset is meant for one GPU (it is chosen automatically when JAX
# sees one): a 3-level UNet with attention at 16x16 and 8x8, batch 128, 100 epochs
# (39,000 steps). Its cost was not measured here; time it on your GPU with `--max-steps 200`
# and multiply by 390 steps per epoch. On a CPU the script switches to the much smaller `cpu`
# preset. `--smoke` only checks that everything runs: when CIFAR-10 is not prepared it uses a
# small synthetic colour data set and says so.

# %%
import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import optax
from flax import nnx

from artifex.data import DatasetNotPreparedError, ImageBatchIterator, load_image_dataset
from artifex.data.augment import RandomFlipIterator
from artifex.generative_models.core.configuration import (
    DDPMConfig,
    NoiseScheduleConfig,
    UNetBackboneConfig,
)
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.models.diffusion.ddpm import DDPMModel
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)
from artifex.runtime import select_platform


def running_in_notebook() -> bool:
    """True inside a Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


IN_NOTEBOOK = running_in_notebook()
# Before JAX picks a backend: the CPU, without CUDA errors, when JAX's CUDA plugin is
# installed on a machine with no NVIDIA GPU (None, or the reason).
PLATFORM_NOTE = select_platform()
BACKEND = jax.default_backend()

# %% [markdown]
# ## Configuration
#
# In a notebook, flags come from the `ARTIFEX_ARGS` environment variable.

# %%
parser = argparse.ArgumentParser(description="Train a DDPM on CIFAR-10 with the fit loop.")
parser.add_argument(
    "--preset",
    choices=["auto", "cpu", "full"],
    default="auto",
    help="auto: 'cpu' on the CPU backend, 'full' on a GPU",
)
parser.add_argument("--smoke", action="store_true", help="tiny model, 3 steps")
parser.add_argument("--epochs", type=int)
parser.add_argument("--max-steps", type=int)
parser.add_argument("--batch-size", type=int)
parser.add_argument("--output-dir", type=Path, default=Path("outputs/diffusion_cifar10"))
parser.add_argument("--seed", type=int, default=0)
parser.add_argument(
    "--no-resume",
    action="store_true",
    help="fail instead of resuming when the output dir has checkpoints",
)
parser.add_argument("--dry-run", action="store_true", help="print the configuration and stop")
argv = shlex.split(os.environ.get("ARTIFEX_ARGS", "")) if IN_NOTEBOOK else None
args = parser.parse_args(argv)

FULL = dict(
    epochs=100,  # 50k images / 128 = 390 steps per epoch
    max_steps=None,
    batch_size=128,
    hidden_dims=(128, 256, 256),  # channels at 32x32, 16x16 and 8x8
    attention_resolutions=(16, 8),  # self-attention at the two coarser levels
    num_res_blocks=2,
    time_embedding_dim=256,
    dropout_rate=0.1,  # CIFAR-10 is small for a model this size: regularise
    peak_lr=2e-4,
    warmup_steps=1000,
    ema_decay=0.9999,
    sample_every_epochs=5,
    sampling_steps=100,
    patience=10,  # the epoch loss of diffusion models is noisy: be patient
)
CPU = dict(
    FULL,
    epochs=None,
    max_steps=600,
    batch_size=32,
    hidden_dims=(32, 64, 64),
    num_res_blocks=1,
    time_embedding_dim=64,
    dropout_rate=0.0,
    peak_lr=1e-3,
    warmup_steps=50,
    ema_decay=0.999,
    sample_every_epochs=None,
    sampling_steps=50,
)
SMOKE = dict(
    CPU,
    max_steps=3,
    batch_size=8,
    hidden_dims=(8, 16, 16),
    time_embedding_dim=8,
    # The inherited warm-up is longer than these 3 steps: short runs clamp it to half.
    sampling_steps=2,
)

preset = args.preset if args.preset != "auto" else ("cpu" if BACKEND == "cpu" else "full")
preset = "smoke" if args.smoke else preset
# The cpu preset's step took CPU_STEP_SECONDS on 2 idle cores (2026-12-02, load 1.8).
CPU_STEP_SECONDS = 0.85
EXPECT = {
    "smoke": "expect under a minute",
    "cpu": f"expect ~{round(600 * CPU_STEP_SECONDS / 60) + 1} min on 2 cores",
    "full": "39,000 steps for one GPU, not timed yet: time --max-steps 200",
}
why = "--smoke" if args.smoke else ("--preset" if args.preset != "auto" else f"backend {BACKEND}")
print(
    f"artifex DDPM on CIFAR-10: backend {BACKEND}, preset {preset} ({EXPECT[preset]}; "
    f"chosen by {why})"
)
if PLATFORM_NOTE:
    print(PLATFORM_NOTE)
print(f"JAX {jax.__version__}, devices: {jax.devices()}")
cfg = SimpleNamespace(**{"full": FULL, "cpu": CPU, "smoke": SMOKE}[preset], preset=preset)
if args.epochs is not None:
    cfg.epochs, cfg.max_steps = args.epochs, None
if args.max_steps is not None:
    cfg.max_steps = args.max_steps
if args.batch_size is not None:
    cfg.batch_size = args.batch_size
cfg.seed = args.seed
for name, value in vars(cfg).items():
    print(f"  {name}: {value}")
if args.dry_run:
    raise SystemExit(0)

# %% [markdown]
# ## Data
#
# CIFAR-10's 50,000 training images, read once with TensorFlow Datasets (downloaded on first
# use, 163 MB, prepared as an array_record dataset without TensorFlow). Each
# batch is mirrored left-right at random, keyed by (seed, epoch, batch) so that a resumed run
# sees the same flips.

# %%
try:
    dataset = load_image_dataset("cifar10", "train", download=not args.smoke)
    images, labels = dataset.images, dataset.labels
except DatasetNotPreparedError as error:
    if not args.smoke:
        raise SystemExit(f"error: {error}") from None
    print("SYNTHETIC DATA: CIFAR-10 is not prepared; --smoke uses 64 random colour blobs")
    grid = np.linspace(-1.0, 1.0, 32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    rng = np.random.default_rng(0)
    centres, colours = rng.uniform(-0.6, 0.6, (64, 2)), rng.uniform(0, 255, (64, 1, 1, 3))
    blobs = np.exp(-((xx - centres[:, :1, None]) ** 2 + (yy - centres[:, 1:, None]) ** 2) / 0.1)
    images = (blobs[..., None] * colours).astype(np.uint8)
    labels = np.zeros(64, np.int32)
train_iter = RandomFlipIterator(
    ImageBatchIterator(images, labels, cfg.batch_size, seed=cfg.seed, pad_to=None),
    seed=cfg.seed,
)
print(f"{len(images)} training images {images.shape[1:]}, {len(train_iter)} batches/epoch")

# %% [markdown]
# ## Model, optimizer and trainer

# %%
schedule_cfg = NoiseScheduleConfig(schedule_type="cosine", num_timesteps=1000)
config = DDPMConfig(
    name="ddpm_cifar10",
    backbone=UNetBackboneConfig(
        hidden_dims=cfg.hidden_dims,
        activation="silu",
        in_channels=3,
        out_channels=3,
        time_embedding_dim=cfg.time_embedding_dim,
        attention_resolutions=cfg.attention_resolutions,
        num_res_blocks=cfg.num_res_blocks,
        dropout_rate=cfg.dropout_rate,
    ),
    noise_schedule=schedule_cfg,
    input_shape=(32, 32, 3),
    loss_type="mse",
)
keys = jax.random.split(jax.random.key(cfg.seed), 2)
model = DDPMModel(config, rngs=nnx.Rngs(params=keys[0], sample=keys[1]))
num_params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
print(f"UNet {cfg.hidden_dims}: {num_params / 1e6:.2f}M parameters")

steps_per_epoch = len(train_iter)
total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
epochs = cfg.epochs if cfg.epochs is not None else -(-total_steps // steps_per_epoch)
lr_schedule = optax.warmup_cosine_decay_schedule(
    0.0, cfg.peak_lr, min(cfg.warmup_steps, total_steps // 2), total_steps, cfg.peak_lr / 100
)
optimizer = nnx.Optimizer(
    model,
    optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lr_schedule, weight_decay=1e-5)),
    wrt=nnx.Param,
)
trainer = DiffusionTrainer(
    create_noise_schedule(schedule_cfg),
    DiffusionTrainingConfig(ema_decay=cfg.ema_decay, ema_update_every=1),
)

# %% [markdown]
# ## Training
#
# `trainer.init_state` gathers the model, the optimizer and an EMA copy of the model into one
# `TrainState`; the compiled step updates all of it. `fit` resumes from
# `output_dir/checkpoints` when a checkpoint is there (interrupt with Ctrl-C or SIGTERM: it
# saves first), stops early after `patience` epochs without improvement, and raises
# `NonFiniteLossError` naming the step if the loss diverges.

# %%
fit_config = FitConfig(
    output_dir=args.output_dir,
    epochs=epochs,
    max_steps=cfg.max_steps,
    seed=cfg.seed,
    checkpoint_every_epochs=1,
    resume=not args.no_resume,
    patience=cfg.patience,
    sample_every_epochs=cfg.sample_every_epochs,
    sampling_steps=cfg.sampling_steps,
    progress_bar=not args.smoke,
)
state = trainer.init_state(model, optimizer)
result = fit(trainer, state, train_iter, fit_config, learning_rate=lr_schedule)
print(
    f"trained {result.global_step} steps, {result.epochs_completed} epoch(s); "
    f"final loss {result.losses[-1]:.4f}; best epoch {result.best_epoch}"
)

# %% [markdown]
# ## Results
#
# The final 4x4 grid is sampled with DDIM from the EMA weights; `samples/` also holds the
# periodic grids and `training_curve.png`; `best_model/` the exported best weights.

# %%
samples_dir = fit_config.samples_dir
final_grid, curve = samples_dir / "samples_final.png", samples_dir / "training_curve.png"
print(f"sample grid: {final_grid}")
print(f"training curve: {curve}")
if IN_NOTEBOOK:
    from IPython.display import Image, display

    display(Image(filename=str(final_grid)), Image(filename=str(curve)))
summary = dict(
    config=vars(cfg),
    backend=BACKEND,
    steps=result.global_step,
    final_loss=float(result.losses[-1]),
    best_epoch=result.best_epoch,
    stopped_early=result.stopped_early,
    train_examples=len(images),
)
(fit_config.output_path / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
