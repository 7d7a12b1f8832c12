"""GANTrainer: the adversarial training step, two optimizers and the generator's EMA.

The trainer protocol (:mod:`artifex.generative_models.training.protocol`):
``state = trainer.init_state(generator, discriminator, g_optimizer, d_optimizer)`` builds a
:class:`~artifex.generative_models.training.state.TrainState` with ``primary="generator"``,
and ``nnx.jit(trainer.train_step)(state, batch, key)`` runs, as one XLA program,

1. ``discriminator_steps`` discriminator updates: fresh latents, the generator's images
   (held constant), a power iteration of the spectral norm (if any), the discriminator loss
   on the real batch and the fakes plus the R1 penalty (if ``r1_gamma > 0``), and its
   optimizer's update;
2. one generator update against the updated discriminator, with fresh latents;
3. the EMA update of the generator (when due), after which the EMA copy takes the
   generator's BatchNorm running statistics (the EMA averages parameters only);

and increments ``state.step`` once. ``trainer.generate(state, n, key)`` samples the EMA
generator. All randomness comes from ``key``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration import validation as v
from artifex.generative_models.models.gan.losses import (
    GAN_LOSSES,
    discriminator_loss,
    generator_loss,
    logits_and_input_gradients,
    r1_penalty,
)
from artifex.generative_models.training.state import TrainState


@dataclasses.dataclass(frozen=True, kw_only=True)
class GANTrainingConfig:
    """How the two networks are trained.

    Attributes:
      loss: ``non_saturating`` or ``hinge`` (see :mod:`artifex.generative_models.models.gan.
        losses`).
      r1_gamma: weight ``gamma`` of the R1 penalty ``gamma/2 E||grad_x D(x)||^2`` on real
        images, added to the discriminator loss; ``0`` turns it off (and skips its backward
        pass).
      discriminator_steps: discriminator updates per generator update. Each draws new
        latents; all use the step's real batch, so an epoch still visits each image once.
      ema_decay: the largest EMA decay of the generator's weights (see ``training.ema``).
      ema_update_every: update the EMA on the steps ``s`` (0-based) with
        ``s % ema_update_every == 0``.
    """

    loss: str = "non_saturating"
    r1_gamma: float = 0.0
    discriminator_steps: int = 1
    ema_decay: float = 0.999
    ema_update_every: int = 1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        v.check_choice(owner, "loss", self.loss, GAN_LOSSES)
        v.check_float(owner, "r1_gamma", self.r1_gamma, low=0.0)
        v.check_int(owner, "discriminator_steps", self.discriminator_steps, minimum=1)
        v.check_float(owner, "ema_decay", self.ema_decay, low=0.0, high=1.0, high_inclusive=False)
        v.check_int(owner, "ema_update_every", self.ema_update_every, minimum=1)


class GANTrainer:
    """Trains a :class:`Generator` against a :class:`Discriminator`; keeps an EMA generator.

    Args:
      config: training options (defaults: non-saturating loss, no R1, one discriminator
        update per generator update, EMA decay 0.999 every step).
    """

    def __init__(self, config: GANTrainingConfig | None = None):
        self.config = config if config is not None else GANTrainingConfig()

    def init_state(
        self,
        generator: nnx.Module,
        discriminator: nnx.Module,
        generator_optimizer: nnx.Optimizer,
        discriminator_optimizer: nnx.Optimizer,
    ) -> TrainState:
        """Both networks, their optimizers and an EMA copy of the generator."""
        g_shape, d_shape = generator.config.input_shape, discriminator.config.input_shape
        if g_shape != d_shape:
            raise ValueError(
                f"the generator makes {g_shape} images but the discriminator takes {d_shape}; "
                "build both from the same GANConfig"
            )
        return TrainState(
            {"generator": generator, "discriminator": discriminator},
            {"generator": generator_optimizer, "discriminator": discriminator_optimizer},
            ema=("generator",),
            primary="generator",
        )

    # ------------------------------------------------------------------ training step
    def _latents(self, generator: nnx.Module, n: int, key: jax.Array) -> jax.Array:
        return jax.random.normal(key, (n, generator.config.latent_dim))

    def discriminator_update(
        self,
        generator: nnx.Module,
        discriminator: nnx.Module,
        optimizer: nnx.Optimizer,
        real: jax.Array,
        key: jax.Array,
    ) -> dict[str, jax.Array]:
        """One discriminator update on ``real`` images and fakes from latents drawn with ``key``.

        Returns ``d_loss`` (the adversarial part), ``r1`` (the penalty added to it) and
        ``d_real`` / ``d_fake``: the mean ``sigmoid(D(x))`` on real and generated images.
        """
        config = self.config
        fake = jax.lax.stop_gradient(
            generator(self._latents(generator, real.shape[0], key), train=True)
        )
        discriminator.power_iteration()  # before the losses: the forward passes stay pure

        def loss_fn(d: nnx.Module):
            if config.r1_gamma > 0:
                real_logits, gradients = logits_and_input_gradients(d, real)
                r1 = r1_penalty(gradients, config.r1_gamma)
            else:
                real_logits, r1 = d(real), jnp.zeros((), real.dtype)
            fake_logits = d(fake)
            adversarial = discriminator_loss(config.loss, real_logits, fake_logits)
            return adversarial + r1, (adversarial, r1, real_logits, fake_logits)

        (_, (d_loss, r1, real_logits, fake_logits)), grads = nnx.value_and_grad(
            loss_fn, has_aux=True
        )(discriminator)
        optimizer.update(discriminator, grads)
        return {
            "d_loss": d_loss,
            "r1": r1,
            "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
            "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
        }

    def generator_update(
        self,
        generator: nnx.Module,
        discriminator: nnx.Module,
        optimizer: nnx.Optimizer,
        n: int,
        key: jax.Array,
    ) -> jax.Array:
        """One generator update on ``n`` latents drawn with ``key``; returns its loss.

        The discriminator is read, not trained: only the generator's gradient is taken.
        """
        z = self._latents(generator, n, key)

        def loss_fn(g: nnx.Module, d: nnx.Module) -> jax.Array:
            return generator_loss(self.config.loss, d(g(z, train=True)))

        loss, grads = nnx.value_and_grad(loss_fn)(generator, discriminator)
        optimizer.update(generator, grads)
        return loss

    def train_step(
        self, state: TrainState, batch: dict[str, Any], key: jax.Array
    ) -> dict[str, jax.Array]:
        """One adversarial step on ``batch["image"]``; wrap it whole in ``nnx.jit``.

        Returns ``{"loss", "g_loss", "d_loss", "d_real", "d_fake", "r1"}``, where ``loss`` is
        the generator loss (what ``fit`` records) and the discriminator's metrics are those of
        its last update.
        """
        generator = state.models["generator"]
        discriminator = state.models["discriminator"]
        real = inputs.image_batch(batch, generator.config.input_shape)
        keys = jax.random.split(key, self.config.discriminator_steps + 1)
        for index in range(self.config.discriminator_steps):  # unrolled: a few updates
            metrics = self.discriminator_update(
                generator, discriminator, state.optimizers["discriminator"], real, keys[index]
            )
        g_loss = self.generator_update(
            generator, discriminator, state.optimizers["generator"], real.shape[0], keys[-1]
        )
        state.update_ema(self.config.ema_decay, self.config.ema_update_every)  # + BatchNorm stats
        state.step[...] += 1
        return {"loss": g_loss, "g_loss": g_loss, **metrics}

    def generate(self, state: TrainState, n: int, key: jax.Array, **options: Any) -> jax.Array:
        """``n`` images in [-1, 1] from the EMA generator (the generator before its first
        EMA update)."""
        if options:
            raise TypeError(f"GANTrainer.generate takes no sampling options, got {sorted(options)}")
        return state.sample_model().sample(n, key=key)
