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
# # DDPM vs DDIM: how many steps does sampling need?
#
# A DDPM is trained with a 1000-step forward process, and ancestral (DDPM) sampling walks all
# 1000 steps back. DDIM reuses the same network with a deterministic update that can skip
# timesteps. This walkthrough times both samplers at 10, 50, 100 and 1000 steps, plus DDIM
# with noise scale eta in {0, 0.5, 1}, and scores each setting's samples with FID against
# real digits. Every setting is one compiled program; compile time is reported separately.
#
# It needs a trained model: pass `--checkpoint DIR` (an export written by
# `artifex.generative_models.training.checkpointing.export_best_model`, such as the MNIST
# tutorial's `outputs/diffusion_mnist/ema_model`; the model is rebuilt from the configuration
# stored with it, or is the architecture below when none is), or the script trains one on
# MNIST for `--train-steps` steps first. `--smoke` runs
# a tiny model in seconds. Outputs go to `outputs/ddim_comparison_mnist/`, including
# `analysis_report.md`; a notebook shows the figures and the report below the cells, a script
# prints the figures' paths and the report. In a notebook, pass flags through `ARTIFEX_ARGS`.

# %%
import argparse
import json
import math
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax
from comparison_report import plot_comparison, write_report  # beside this file
from flax import nnx

from artifex.generative_models.analysis import (
    compare_samplers,
    comparison_settings,
    load_quality_metric,
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
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)
from artifex.runtime import select_platform
from artifex.visualization import plot_training_curve

parser = argparse.ArgumentParser(description="Compare DDPM and DDIM sampling: time and FID.")
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
parser.add_argument("--n-samples", type=int, default=100, help="images per setting (FID needs 100)")
parser.add_argument(
    "--step-counts",
    type=int,
    nargs="+",
    default=[10, 50, 100, 1000],
    help="sampling steps compared for both samplers",
)
parser.add_argument(
    "--repeats",
    type=int,
    default=1,
    help="timed runs after the first call (0: the first call only, less its compile time)",
)
parser.add_argument("--smoke", action="store_true", help="tiny model, few steps: a quick check")
parser.add_argument("--output-dir", type=Path, default=Path("outputs/ddim_comparison_mnist"))
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
# Measured on 2 cores (2026-11-22): 0.55 s per sampling step of 100 images of the tutorial's
# cpu model, for either sampler; a training step of the default (16, 32) model
# TRAIN_STEP_SECONDS (0.49 s measured 2026-12-02, load 1.8).
TRAIN_STEP_SECONDS = 0.5
if args.smoke:
    preset, expect = "smoke", "expect under a minute"
else:
    sampling = 0.55 * args.n_samples / 100 * 2 * sum(args.step_counts) * (1 + args.repeats)
    training = 0 if args.checkpoint is not None else args.train_steps * TRAIN_STEP_SECONDS
    preset = "checkpoint" if args.checkpoint is not None else f"train {args.train_steps} steps"
    expect = f"expect ~{math.ceil((sampling + training) / 60)} min on 2 cores"
print(f"artifex DDPM vs DDIM: backend {jax.default_backend()}, preset {preset} ({expect})")
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
# ## The model
#
# A small UNet (`--hidden-dims`, default 16 and 32 channels) on 32x32 digits with the
# standard 1000-step cosine schedule (`--smoke`: a tiny UNet and 20 timesteps); with
# `--checkpoint`, the architecture stored with the export. Without a checkpoint we train it
# here with the `DiffusionTrainer` (epsilon prediction, AdamW with warm-up, EMA of the
# weights) and sample from the EMA weights.

# %%
if args.smoke:
    hidden_dims, num_timesteps, train_steps, batch_size = (8, 16), 20, 3, 8
    step_counts, eta_steps, n_samples = (2,), 2, 4
else:
    hidden_dims, num_timesteps, train_steps, batch_size = (
        tuple(args.hidden_dims),
        1000,
        args.train_steps,
        64,
    )
    step_counts, eta_steps, n_samples = tuple(args.step_counts), 50, args.n_samples
batch_size = args.batch_size if not args.smoke else batch_size

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
keys = jax.random.split(jax.random.key(args.seed), 4)
model = DDPMModel(config, rngs=nnx.Rngs(params=keys[0], sample=keys[1]))
trainer = DiffusionTrainer(
    create_noise_schedule(config.noise_schedule),
    DiffusionTrainingConfig(ema_decay=0.999, ema_update_every=1),
)

if args.checkpoint is not None:
    from artifex.generative_models.training.checkpointing import load_best_model

    meta = load_best_model(args.checkpoint, model)
    model_source = f"checkpoint {args.checkpoint} (step {meta['step']})"
    trained_steps, train_seconds = meta["step"], None
else:
    from artifex.data import make_train_iterator

    batches = make_train_iterator("mnist", batch_size, seed=args.seed, offline_fallback=True)
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
    train_seconds = time.perf_counter() - start
    model = state.sample_model()
    model_source = f"trained here: {train_steps} steps, batch {batch_size}, {train_seconds:.0f} s"
    trained_steps = train_steps
    show_figure(
        plot_training_curve(
            result.losses,
            output_dir / "training_curve.png",
            learning_rates=lr(np.arange(train_steps)),
            window=50,
        )
    )
params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
print(f"model: UNet {hidden_dims}, {params / 1e6:.2f}M parameters; {model_source}")

# %% [markdown]
# ## Timing and quality per setting
#
# All settings sample `n_samples` images from the same key. FID/KID come from
# `artifex.evaluation.MNISTQualityMetric` (a digit classifier's features); with fewer than
# its minimum of 100 images, or without that package, quality is reported as n/a. FID at
# N=100 is biased upwards: compare settings with each other, not with published numbers.

# %%
settings = comparison_settings(num_timesteps, step_counts=step_counts, eta_steps=eta_steps)
quality = load_quality_metric() if n_samples >= 100 else None
print(
    f"{len(settings)} settings, {n_samples} images each, quality: {'FID/KID' if quality else 'n/a'}"
)


def show(r):
    fid = f"{r.fid:.1f}" if r.fid is not None else "n/a"
    line = f"  {r.setting.label:>16}: compile {r.compile_s:5.1f} s, sample {r.run_s:7.2f} s"
    print(f"{line}, FID {fid}", flush=True)


results = compare_samplers(
    model,
    settings,
    n_samples=n_samples,
    key=keys[3],
    repeats=args.repeats,
    quality=quality,
    grid_dir=output_dir,
    on_result=show,  # one line per setting as it finishes: the 1000-step ones take minutes
)

# %% [markdown]
# ## Figure and report
#
# The figure puts sampling and compile time side by side (log scale) and plots FID against
# time. The report lists every measurement with the speed-up against the full DDPM chain.

# %%
figure = plot_comparison(results, output_dir / "timing_quality.png")
context = {
    "model": f"UNet {hidden_dims}, {params / 1e6:.2f}M parameters, "
    f"{config.noise_schedule.schedule_type} schedule, {num_timesteps} timesteps, "
    f"{config.prediction_type} prediction, 32x32 MNIST digits",
    "weights": model_source,
    "samples per setting": n_samples,
    "timed runs per setting": f"first call + {args.repeats}",
    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
    f"JAX {jax.__version__} on {jax.default_backend()}",
}
report = write_report(results, output_dir / "analysis_report.md", context=context, figure=figure)
(output_dir / "results.json").write_text(
    json.dumps(
        {
            "context": context,
            "trained_steps": trained_steps,
            "results": [r.as_dict() for r in results],
        },
        indent=2,
    )
)
if in_notebook:  # rendered; the figure is shown above it (its link is relative to the report)
    from IPython.display import Markdown, display

    show_figure(figure)
    display(Markdown(re.sub(r"^!\[[^\]]*\]\([^)]*\)$", "", report.read_text(), flags=re.M)))
else:
    print(f"figure: {figure}\nreport: {report}\n")
    print(report.read_text())
