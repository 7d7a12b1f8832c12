"""DDPMModel: a UNet denoiser, its noise schedule and compiled samplers."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration.diffusion_config import DDPMConfig
from artifex.generative_models.core.noise_schedule import NoiseSchedule, create_noise_schedule
from artifex.generative_models.models.backbones.unet import UNet
from artifex.generative_models.models.diffusion.samplers import SCHEDULERS
from artifex.generative_models.models.diffusion.samplers.coefficients import sampling_timesteps
from artifex.generative_models.models.diffusion.samplers.loop import run_sampler

#: Step count when ``sample`` is given none, for every scheduler but ``"ddpm"`` (which runs
#: the full chain by default).
DEFAULT_DDIM_STEPS = 50


class DDPMModel(nnx.Module):
    """A denoising diffusion model built from a :class:`DDPMConfig`.

    Calling the model runs the network: ``model(x_t, t)`` predicts the config's
    ``prediction_type`` for noisy images ``x_t`` (NHWC) at integer timesteps ``t``.

    Args:
      config: the validated model configuration.
      rngs: ``params`` initialises the network; ``sample`` supplies keys to
        :meth:`sample` when no key is passed. Dropout keys come from the trainer's step key,
        so other streams (e.g. ``noise``, ``timestep``, ``dropout``) are accepted and unused.
    """

    def __init__(self, config: DDPMConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, DDPMConfig):
            raise TypeError(f"DDPMModel expects a DDPMConfig, got {type(config).__name__}")
        self.config = config
        self.noise_schedule: NoiseSchedule = create_noise_schedule(config.noise_schedule)
        self.backbone = UNet(config.backbone, image_size=config.input_shape[0], rngs=rngs)
        self.rngs = rngs

    def __call__(
        self, x_t: jax.Array, t: jax.Array, *, dropout_key: jax.Array | None = None
    ) -> jax.Array:
        """Network output for ``x_t`` (float NHWC of ``config.input_shape``) at integer
        timesteps ``t`` of shape ``(N,)`` in ``[0, num_timesteps)``; dropout only with
        ``dropout_key``."""
        inputs.check_images("x_t", x_t, self.config.input_shape)
        inputs.check_timesteps("t", t, x_t.shape[0], self.config.noise_schedule.num_timesteps)
        return self.backbone(x_t, t, dropout_key=dropout_key)

    def sample(
        self,
        n_samples_or_shape: int | tuple[int, ...] | None = None,
        *,
        scheduler: str = "ddpm",
        steps: int | None = None,
        eta: float | None = None,
        spacing: str = "linspace",
        key: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
        initial_noise: jax.Array | None = None,
    ) -> jax.Array:
        """Generate images by running the reverse process from pure noise.

        The whole chain is one compiled program, cached per (model structure, shape,
        scheduler, steps, spacing): calling again with the same arguments does not recompile.

        Args:
          n_samples_or_shape: a number of images, or a full NHWC shape (default 16, or the
            shape of ``initial_noise``, which it must then match).
          scheduler: one of ``samplers.SCHEDULERS``: ``"ddpm"`` (ancestral, stochastic),
            ``"ddim"``, and the deterministic ODE solvers ``"euler"`` (Karras et al.; the
            same map as DDIM with ``eta=0``), ``"heun"`` (second order, ``2 * steps - 1``
            network calls) and ``"dpm_solver++"`` (DPM-Solver++(2M), second order, one
            call a step).
          steps: denoising steps; default ``num_timesteps`` for DDPM and
            ``DEFAULT_DDIM_STEPS`` for the others. Fewer DDPM steps use the respaced chain.
          eta: DDIM noise scale (0 = deterministic, 1 = DDPM variance); DDIM only, default 0.
          spacing: where the ``steps`` timesteps lie: ``"linspace"`` (default; from
            ``T-1`` to ``0``), ``"leading"`` or ``"trailing"`` (Lin et al. 2024; see
            ``samplers.coefficients.sampling_timesteps``).
          key: PRNG key; else ``rngs.sample()``; else the model's own ``sample`` stream.
          initial_noise: the starting point ``x_T`` (NHWC) instead of a fresh draw, e.g. to
            decode interpolated latents. The key still drives DDPM's (and DDIM eta > 0)
            per-step noise; passing the draw the key would have made gives the same samples.

        Returns:
          float32 images of shape ``(N, H, W, C)``, in ``[-1, 1]`` when ``clip_denoised``.
        """
        shape = self._resolve_shape(n_samples_or_shape, initial_noise)
        if scheduler not in SCHEDULERS:
            choices = ", ".join(repr(name) for name in SCHEDULERS)
            raise ValueError(f"scheduler={scheduler!r} is not supported; choose one of {choices}")
        if eta is not None and scheduler != "ddim":
            raise ValueError(f"eta={eta!r} only applies to scheduler='ddim'")
        if eta is None:
            eta = 0.0
        if isinstance(eta, np.ndarray | jax.Array) and eta.shape == ():
            eta = float(eta)
        if (
            isinstance(eta, bool)
            or not isinstance(eta, int | float | np.floating)
            or not math.isfinite(eta)
            or eta < 0.0
        ):
            raise ValueError(
                f"eta={eta!r} must be a finite number >= 0 (0 = deterministic DDIM, 1 = DDPM noise)"
            )
        if steps is None:
            steps = (
                self.config.noise_schedule.num_timesteps
                if scheduler == "ddpm"
                else min(DEFAULT_DDIM_STEPS, self.config.noise_schedule.num_timesteps)
            )
        # validates steps and spacing
        sampling_timesteps(self.config.noise_schedule.num_timesteps, steps, spacing)
        if key is None:
            key = (rngs if rngs is not None else self.rngs).sample()
        key = inputs.as_key(key)
        graphdef, state = nnx.split(self)
        if initial_noise is not None:
            initial_noise = jnp.asarray(initial_noise, jnp.float32)
            if inputs.is_concrete(initial_noise) and not bool(jnp.isfinite(initial_noise).all()):
                raise ValueError("initial_noise holds NaN or infinite values; pass finite noise")
        return _compiled_sample(
            graphdef,
            state,
            key,
            jnp.float32(eta),
            initial_noise,
            shape=shape,
            scheduler=scheduler,
            steps=int(steps),
            spacing=spacing,
        )

    def _resolve_shape(self, n_samples_or_shape, initial_noise) -> tuple[int, ...]:
        """The sample shape from the count/shape argument and/or ``initial_noise``."""
        if initial_noise is None:
            return self._sample_shape(16 if n_samples_or_shape is None else n_samples_or_shape)
        noise_shape = tuple(jnp.shape(initial_noise))
        try:
            shape = self._sample_shape(noise_shape)
        except ValueError as err:
            raise ValueError(
                f"initial_noise.shape={noise_shape} is not a valid sample shape: {err}"
            ) from None
        if n_samples_or_shape is not None:
            requested = self._sample_shape(n_samples_or_shape)
            if requested != shape:
                raise ValueError(
                    f"n_samples_or_shape={n_samples_or_shape!r} gives shape {requested}, but "
                    f"initial_noise.shape={noise_shape}; pass one or make them agree"
                )
        return shape

    def _sample_shape(self, n_samples_or_shape) -> tuple[int, ...]:
        image_shape = self.config.input_shape
        if not isinstance(n_samples_or_shape, tuple | list):
            n = inputs.check_count("n_samples_or_shape", n_samples_or_shape)
            return (n, *image_shape)
        shape = tuple(n_samples_or_shape)
        h, w, c = image_shape
        f = self.config.backbone.downsampling_factor
        if len(shape) != 4 or shape[0] < 1 or shape[3] != c or shape[1] % f or shape[2] % f:
            raise ValueError(
                f"n_samples_or_shape={n_samples_or_shape!r} must be a count or an NHWC shape "
                f"(N, H, W, {c}) with H and W divisible by {f}, e.g. (16, {h}, {w}, {c})"
            )
        return shape


@functools.partial(jax.jit, static_argnames=("graphdef", "shape", "scheduler", "steps", "spacing"))
def _compiled_sample(
    graphdef, state, key, eta, initial_noise, *, shape, scheduler, steps, spacing="linspace"
):
    """One program per static setting; ``initial_noise=None`` and an array compile apart."""
    model: DDPMModel = nnx.merge(graphdef, state)
    noise_key, loop_key = jax.random.split(key)
    if initial_noise is None:
        x_start = jax.random.normal(noise_key, shape, jnp.float32)
    else:
        x_start = initial_noise
    return reverse_process(
        model, x_start, loop_key, scheduler=scheduler, steps=steps, eta=eta, spacing=spacing
    )


def reverse_process(
    model: DDPMModel,
    x_start: jax.Array,
    key: jax.Array,
    *,
    scheduler: str,
    steps: int,
    eta,
    spacing: str = "linspace",
) -> jax.Array:
    """Denoise ``x_start`` with the model's sampler settings (traceable: callers jit it)."""
    return run_sampler(
        lambda x, t: model(x, t),
        model.noise_schedule,
        x_start,
        key,
        scheduler=scheduler,
        steps=steps,
        eta=eta,
        prediction_type=model.config.prediction_type,
        clip_denoised=model.config.clip_denoised,
        spacing=spacing,
    )
