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
# # Diffusion demo: draw any digit, no training
#
# artifex ships a small class-conditional MNIST diffusion model (under 3 MB, trained by
# `scripts/train_demo_model.py`). One call loads it, one call draws digits: every digit
# from 0 to 9 in seconds on a CPU. It runs as a script (`--help` lists the flags) and as a
# notebook (flags from `ARTIFEX_ARGS`).

# %% [markdown]
# ## Setup
#
# Flags first, so `--help` answers before JAX loads; then the imports. The first line
# printed names the backend and the time to expect.

# %%
# ruff: noqa: E402 - the slow imports follow the argument parsing on purpose (fast --help)
import argparse
import os
import shlex
import sys
from pathlib import Path


def running_in_notebook() -> bool:
    """True inside a Jupyter kernel (not merely when ipykernel happens to be imported)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


IN_NOTEBOOK = running_in_notebook()
parser = argparse.ArgumentParser(description="Draw MNIST digits from the packaged model.")
parser.add_argument("--per-digit", type=int, default=10, help="samples of each digit")
parser.add_argument("--guidance-scale", type=float, default=2.0, help="classifier-free w")
parser.add_argument("--sampler", default="dpm_solver++", help="any of DDPMModel.sample's")
parser.add_argument("--steps", type=int, default=20, help="sampling steps")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--output-dir", type=Path, default=Path("outputs/diffusion_demo"))
parser.add_argument("--dry-run", action="store_true", help="print the settings and stop")
args = parser.parse_args(shlex.split(os.environ.get("ARTIFEX_ARGS", "")) if IN_NOTEBOOK else None)

# %%
from artifex.runtime import select_platform

PLATFORM_NOTE = select_platform()  # before JAX starts: None, or why it runs on the CPU

import time

import jax
import numpy as np
from flax import nnx

from artifex.pretrained import load_conditional_mnist, pretrained_record
from artifex.visualization import save_image_grid

print(
    f"artifex diffusion demo: backend {jax.default_backend()}, pretrained model, no training "
    f"(expect under a minute on 2 CPU cores)"
)
if PLATFORM_NOTE:
    print(PLATFORM_NOTE)
for name, value in vars(args).items():
    print(f"  {name}: {value}")
if args.dry_run:
    raise SystemExit(0)
output_dir = args.output_dir.resolve()
output_dir.mkdir(parents=True, exist_ok=True)


def show(path: Path) -> Path:
    """Display a written figure inline in a notebook; return its path."""
    if IN_NOTEBOOK:
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    return path


# %% [markdown]
# ## Load the model
#
# The file holds the EMA weights, the configuration and a record of how the model was
# trained and what it scored at each guidance scale.

# %%
model = load_conditional_mnist()
record = pretrained_record()
params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
print(f"UNet {model.config.backbone.hidden_dims}, {params / 1e6:.2f}M parameters")
print(f"trained with: {record['command']} ({record['steps']} steps)")
for row in record["guidance_sweep"]:
    print(
        f"  w = {row['guidance_scale']:g}: conditional accuracy {row['conditional_accuracy']:.1%}, "
        f"FID {row['fid']:.1f} ({row['num_samples']} samples)"
    )

# %% [markdown]
# ## Every digit
#
# Row `d` asks for digit `d`. The first call compiles the sampling loop (one `lax.scan` of
# `steps` guided network calls); calling again with other labels, keys or guidance scales
# reuses the program.

# %%
labels = np.repeat(np.arange(10), args.per_digit)
options = dict(scheduler=args.sampler, steps=args.steps, guidance_scale=args.guidance_scale)
start = time.perf_counter()
digits = np.asarray(model.sample(len(labels), key=args.seed, labels=labels, **options))
first = time.perf_counter() - start
start = time.perf_counter()
np.asarray(model.sample(len(labels), key=args.seed + 1, labels=labels, **options))
again = time.perf_counter() - start
print(f"{len(labels)} digits in {first:.1f} s (with compilation), {again:.1f} s again")

# %%
grid = show(
    save_image_grid(
        np.clip(digits, -1, 1),
        output_dir / "every_digit.png",
        nrow=args.per_digit,
        title=f"row = requested digit ({args.sampler}, {args.steps} steps, w = "
        f"{args.guidance_scale:g})",
    )
)
print(f"grid: {grid}")

# %% [markdown]
# ## What guidance does
#
# The same noise, asked for a 4, at growing guidance scales: `w = 0` is the conditional
# model alone; larger `w` pushes away from the unconditional prediction toward digits the
# label explains best, thicker and more alike.

# %%
scales = (0.0, 1.0, 3.0, 5.0)
rows = [
    np.asarray(
        model.sample(
            8,
            key=args.seed + 2,
            labels=4,
            scheduler=args.sampler,
            steps=args.steps,
            guidance_scale=w,
        )
    )
    for w in scales
]
path = show(
    save_image_grid(
        np.clip(np.concatenate(rows), -1, 1),
        output_dir / "guidance.png",
        nrow=8,
        title="digit 4, rows w = " + ", ".join(f"{w:g}" for w in scales),
    )
)
print(f"guidance rows: {path}")

# %% [markdown]
# ## Try next
#
# - `--guidance-scale 1`: the lowest FID in the record above, still ~98% the right digit.
# - `--sampler ddim --steps 50`, or `--steps 5`: see the few-step sampling page for what
#   each costs and scores.
# - Train your own with `conditional_mnist_training.py`; `scripts/train_demo_model.py`
#   rebuilds this very file.
