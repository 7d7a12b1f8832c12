"""Sampling split across devices: each device denoises its share of the images.

The chain is the model's own (``run_sampler``, one ``lax.scan``), compiled with the
starting noise constrained to be split along ``data``; the scan carry keeps that layout, so
every step's network call runs on ``n / N`` images per device with the weights replicated.
Keys are split exactly as :meth:`DDPMModel.sample` splits them, and JAX draws the same
random numbers whatever the layout, so ``sample_sharded(model, n, mesh, key=k)`` returns
the images ``model.sample(n, key=k)`` returns (up to float rounding).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from artifex.generative_models.models.diffusion.ddpm import (
    DEFAULT_DDIM_STEPS,
    DDPMModel,
    reverse_process,
)
from artifex.generative_models.models.diffusion.samplers import SCHEDULERS
from artifex.generative_models.models.diffusion.samplers.coefficients import sampling_timesteps
from artifex.generative_models.training.distributed.mesh import (
    batch_sharding,
    check_divisible,
    data_axis_size,
    make_data_mesh,
)
from artifex.generative_models.training.distributed.placement import replicate


def sample_sharded(
    model: DDPMModel,
    n_samples_or_shape: int | tuple[int, ...],
    mesh: Mesh | None = None,
    *,
    scheduler: str = "ddpm",
    steps: int | None = None,
    eta: float | None = None,
    key: jax.Array | None = None,
) -> jax.Array:
    """:meth:`DDPMModel.sample` with the images split along the mesh's ``data`` axis.

    The number of images must divide by the number of devices. Returns a global array
    sharded on its batch axis (``np.asarray`` gathers it on one host).
    """
    mesh = make_data_mesh() if mesh is None else mesh
    shape = model._sample_shape(n_samples_or_shape)
    check_divisible("number of samples", shape[0], data_axis_size(mesh), "device count")
    if scheduler not in SCHEDULERS:
        raise ValueError(
            f"scheduler={scheduler!r} is not supported; choose one of {', '.join(SCHEDULERS)}"
        )
    if eta is not None and scheduler != "ddim":
        raise ValueError(f"eta={eta!r} only applies to scheduler='ddim'")
    eta = 0.0 if eta is None else eta
    if not eta >= 0.0:
        raise ValueError(f"eta={eta!r} must be >= 0 (0 = deterministic DDIM, 1 = DDPM noise)")
    num_timesteps = model.config.noise_schedule.num_timesteps
    if steps is None:
        steps = num_timesteps if scheduler == "ddpm" else min(DEFAULT_DDIM_STEPS, num_timesteps)
    sampling_timesteps(num_timesteps, steps)  # validates steps
    if key is None:
        key = model.rngs.sample()
    graphdef, state = nnx.split(model)
    state, key, eta = replicate((state, key, jnp.float32(eta)), mesh)
    return _sharded_sample(
        graphdef,
        state,
        key,
        eta,
        shape=shape,
        scheduler=scheduler,
        steps=int(steps),
        sharding=batch_sharding(mesh),
    )


@functools.partial(jax.jit, static_argnames=("graphdef", "shape", "scheduler", "steps", "sharding"))
def _sharded_sample(graphdef, state, key, eta, *, shape, scheduler, steps, sharding: NamedSharding):
    model: DDPMModel = nnx.merge(graphdef, state)
    noise_key, loop_key = jax.random.split(key)  # as DDPMModel.sample does
    x_start = jax.random.normal(noise_key, shape, jnp.float32)
    x_start = jax.lax.with_sharding_constraint(x_start, sharding)
    x = reverse_process(model, x_start, loop_key, scheduler=scheduler, steps=steps, eta=eta)
    return jax.lax.with_sharding_constraint(x, sharding)
