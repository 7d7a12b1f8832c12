"""DDPMModel: a UNet denoiser, its noise schedule and compiled samplers."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration.diffusion_config import DDPMConfig
from artifex.generative_models.core.layers.class_embedding import null_labels
from artifex.generative_models.core.noise_schedule import NoiseSchedule, create_noise_schedule
from artifex.generative_models.models.backbones.unet import UNet
from artifex.generative_models.models.diffusion import sampling_memory
from artifex.generative_models.models.diffusion.guidance import guided_denoiser
from artifex.generative_models.models.diffusion.samplers import SCHEDULERS
from artifex.generative_models.models.diffusion.samplers.coefficients import sampling_timesteps
from artifex.generative_models.models.diffusion.samplers.loop import run_sampler

#: Step count when ``sample`` is given none, for every scheduler but ``"ddpm"`` (which runs
#: the full chain by default).
DEFAULT_DDIM_STEPS = 50


class DDPMModel(nnx.Module):
    """A denoising diffusion model built from a :class:`DDPMConfig`.

    Calling the model runs the network: ``model(x_t, t)`` predicts the config's
    ``prediction_type`` for noisy images ``x_t`` (NHWC) at integer timesteps ``t``; a
    class-conditional model (``UNetBackboneConfig.num_classes``) also takes ``labels``.

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

    @property
    def num_classes(self) -> int | None:
        """Classes of a class-conditional model; ``None`` when unconditional."""
        return self.config.backbone.num_classes

    def __call__(
        self,
        x_t: jax.Array,
        t: jax.Array,
        *,
        labels: jax.Array | None = None,
        dropout_key: jax.Array | None = None,
    ) -> jax.Array:
        """Network output for ``x_t`` (float NHWC of ``config.input_shape``) at integer
        timesteps ``t`` of shape ``(N,)`` in ``[0, num_timesteps)``; ``labels`` ``(N,)`` in
        ``[0, num_classes]`` for a class-conditional model (``num_classes`` or ``None``: the
        null label, i.e. unconditional); dropout only with ``dropout_key``."""
        inputs.check_images("x_t", x_t, self.config.input_shape)
        inputs.check_timesteps("t", t, x_t.shape[0], self.config.noise_schedule.num_timesteps)
        if labels is not None:
            if self.num_classes is None:
                raise ValueError(
                    "labels were passed to an unconditional model; build it with "
                    "UNetBackboneConfig(num_classes=...) to condition on classes"
                )
            inputs.check_labels("labels", labels, x_t.shape[0], self.num_classes, null=True)
        return self.backbone(x_t, t, labels=labels, dropout_key=dropout_key)

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
        labels: int | jax.Array | None = None,
        guidance_scale: float = 0.0,
    ) -> jax.Array:
        """Generate images by running the reverse process from pure noise.

        The whole chain is one compiled program, cached per (model structure, shape,
        scheduler, steps, spacing, guided or not): calling again with the same arguments, or
        other labels, eta or guidance scale, does not recompile.

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
          labels: the class of each image for a class-conditional model: one ``int`` for
            all, or ``(N,)`` integers in ``[0, num_classes)``. ``None`` samples the
            unconditional model (the null label).
          guidance_scale: classifier-free guidance weight ``w >= 0`` (see
            ``diffusion.guidance``): ``0`` is the conditional model alone (one network call
            a step); ``w > 0`` computes ``(1 + w) f(x, y) - w f(x, null)``, one call on a
            doubled batch. Needs ``labels``.

        Returns:
          float32 images of shape ``(N, H, W, C)``, in ``[-1, 1]`` when ``clip_denoised``.

        Raises:
          ValueError: a bad argument, named with its value and the fix.
          MemoryError: ``N`` images need more memory than the device has free (estimated
            before compiling by ``diffusion.sampling_memory``); sample in batches.
        """
        shape = self._resolve_shape(n_samples_or_shape, initial_noise)
        if scheduler not in SCHEDULERS:
            choices = ", ".join(repr(name) for name in SCHEDULERS)
            raise ValueError(f"scheduler={scheduler!r} is not supported; choose one of {choices}")
        if eta is not None and scheduler != "ddim":
            raise ValueError(f"eta={eta!r} only applies to scheduler='ddim'")
        eta = inputs.non_negative_number(
            "eta", 0.0 if eta is None else eta, "0 = deterministic DDIM, 1 = DDPM noise"
        )
        if steps is None:
            steps = (
                self.config.noise_schedule.num_timesteps
                if scheduler == "ddpm"
                else min(DEFAULT_DDIM_STEPS, self.config.noise_schedule.num_timesteps)
            )
        # validates steps and spacing
        sampling_timesteps(self.config.noise_schedule.num_timesteps, steps, spacing)
        labels, guidance_scale = self._check_conditioning(shape[0], labels, guidance_scale)
        sampling_memory.check_fits(self.config.backbone, shape, guided=guidance_scale is not None)
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
            labels,
            guidance_scale,
            shape=shape,
            scheduler=scheduler,
            steps=int(steps),
            spacing=spacing,
        )

    def _check_conditioning(self, n: int, labels, guidance_scale):
        """``(labels (n,) int32 or None, guidance weight or None when unguided)``."""
        guidance_scale = inputs.non_negative_number(
            "guidance_scale",
            guidance_scale,
            "0: the conditional model alone; 1 to 5 typical for classifier-free guidance",
        )
        if labels is None:
            if guidance_scale:
                raise ValueError(
                    f"guidance_scale={guidance_scale} needs labels: pass labels=... (one class "
                    "for all, or one per image) to guide toward them"
                )
            return None, None
        if self.num_classes is None:
            raise ValueError(
                "labels were passed to an unconditional model; train a class-conditional one "
                "with UNetBackboneConfig(num_classes=...) to sample given classes"
            )
        if isinstance(labels, int | np.integer) and not isinstance(labels, bool):
            labels = jnp.full((n,), int(labels), jnp.int32)
        inputs.check_labels("labels", labels, n, self.num_classes, null=False)
        labels = jnp.asarray(labels, jnp.int32)
        return labels, (jnp.float32(guidance_scale) if guidance_scale else None)

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
    graphdef,
    state,
    key,
    eta,
    initial_noise,
    labels,
    guidance_scale,
    *,
    shape,
    scheduler,
    steps,
    spacing="linspace",
):
    """One program per static setting; ``None`` and an array (``initial_noise``, ``labels``,
    ``guidance_scale``) compile apart."""
    model: DDPMModel = nnx.merge(graphdef, state)
    noise_key, loop_key = jax.random.split(key)
    if initial_noise is None:
        x_start = jax.random.normal(noise_key, shape, jnp.float32)
    else:
        x_start = initial_noise
    return reverse_process(
        model,
        x_start,
        loop_key,
        scheduler=scheduler,
        steps=steps,
        eta=eta,
        spacing=spacing,
        labels=labels,
        guidance_scale=guidance_scale,
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
    labels: jax.Array | None = None,
    guidance_scale: jax.Array | float | None = None,
) -> jax.Array:
    """Denoise ``x_start`` with the model's sampler settings (traceable: callers jit it).

    ``labels`` condition a class-conditional model; with ``guidance_scale`` the network is
    replaced by its classifier-free guided combination.
    """
    if guidance_scale is not None:
        null = null_labels(model.num_classes, x_start.shape[0])
        denoise = guided_denoiser(
            lambda x, t, y: model(x, t, labels=y), labels, null, guidance_scale
        )
    else:
        denoise = lambda x, t: model(x, t, labels=labels)  # noqa: E731
    return run_sampler(
        denoise,
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
