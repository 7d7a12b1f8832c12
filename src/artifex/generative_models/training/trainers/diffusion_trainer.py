"""DiffusionTrainer: the denoising training step and the EMA of weights.

``train_step(model, optimizer, batch, key)`` is written to be wrapped whole in
``nnx.jit``: noise and timestep draws, the forward pass, the loss, the gradient and the
optimizer update become one XLA program. All randomness comes from ``key``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from artifex.generative_models.core.configuration import validation as v
from artifex.generative_models.core.configuration.diffusion_config import PREDICTION_TYPES
from artifex.generative_models.core.losses import LOSS_WEIGHTINGS, elementwise_loss, loss_weight
from artifex.generative_models.core.noise_schedule import NoiseSchedule
from artifex.generative_models.core.prediction import prediction_target
from artifex.generative_models.training.ema import EMAState, ema_init, ema_update

TIMESTEP_SAMPLINGS = ("uniform", "logit_normal")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiffusionTrainingConfig:
    """How the denoiser is trained.

    Attributes:
      prediction_type: what the network is trained to output. ``None`` uses the model's
        ``DDPMConfig.prediction_type``; any other value must equal it (the samplers read the
        model's config, so a mismatch would make sampling wrong).
      timestep_sampling: ``uniform`` over ``0..T-1``, or ``logit_normal``:
        ``t = floor(T * sigmoid(m + s * n))``, ``n ~ N(0, 1)``, which favours middle timesteps.
      logit_normal_mean, logit_normal_std: ``m`` and ``s`` above.
      loss_weighting: ``uniform``, ``snr`` or ``min_snr`` (see ``core.losses``).
      min_snr_gamma: the cap ``gamma`` of ``min_snr``.
      ema_decay: the largest EMA decay, reached after the warm-up (see ``training.ema``).
      ema_update_every: the intended number of steps between EMA updates; training loops
        ask :meth:`DiffusionTrainer.ema_due` whether a step should update the EMA.
    """

    prediction_type: str | None = None
    timestep_sampling: str = "uniform"
    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    loss_weighting: str = "uniform"
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.9999
    ema_update_every: int = 1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.prediction_type is not None:
            v.check_choice(owner, "prediction_type", self.prediction_type, PREDICTION_TYPES)
        v.check_choice(owner, "timestep_sampling", self.timestep_sampling, TIMESTEP_SAMPLINGS)
        v.check_float(owner, "logit_normal_mean", self.logit_normal_mean)
        v.check_float(owner, "logit_normal_std", self.logit_normal_std, low=0.0,
                      low_inclusive=False)
        v.check_choice(owner, "loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS)
        v.check_float(owner, "min_snr_gamma", self.min_snr_gamma, low=0.0, low_inclusive=False)
        v.check_float(owner, "ema_decay", self.ema_decay, low=0.0, high=1.0,
                      high_inclusive=False)
        v.check_int(owner, "ema_update_every", self.ema_update_every, minimum=1)


class DiffusionTrainer:
    """Trains a :class:`DDPMModel` to denoise; keeps an EMA of its weights.

    Args:
      noise_schedule: the forward process; must be the model's (same config).
      config: training options.
    """

    def __init__(
        self, noise_schedule: NoiseSchedule, config: DiffusionTrainingConfig | None = None
    ):
        if not isinstance(noise_schedule, NoiseSchedule):
            raise TypeError(
                "DiffusionTrainer expects the NoiseSchedule from create_noise_schedule(config), "
                f"got {type(noise_schedule).__name__}"
            )
        self.noise_schedule = noise_schedule
        self.config = config if config is not None else DiffusionTrainingConfig()
        self._ema: EMAState | None = None

    # ------------------------------------------------------------------ training step
    def sample_timesteps(self, key: jax.Array, batch_size: int) -> jax.Array:
        """Integer timesteps ``(batch_size,)`` drawn as ``timestep_sampling`` says."""
        num = self.noise_schedule.num_timesteps
        if self.config.timestep_sampling == "uniform":
            return jax.random.randint(key, (batch_size,), 0, num)
        logits = self.config.logit_normal_mean + self.config.logit_normal_std * jax.random.normal(
            key, (batch_size,)
        )
        t = jnp.floor(jax.nn.sigmoid(logits) * num).astype(jnp.int32)
        return jnp.clip(t, 0, num - 1)

    def prediction_type_for(self, model: nnx.Module) -> str:
        """The model's prediction type, after checking it agrees with this trainer's."""
        model_type = model.config.prediction_type
        wanted = self.config.prediction_type
        if wanted is not None and wanted != model_type:
            raise ValueError(
                f"DiffusionTrainingConfig.prediction_type={wanted!r} but the model's "
                f"DDPMConfig.prediction_type={model_type!r}; set DDPMConfig(prediction_type="
                f"{wanted!r}) so that sampling reads the network output the same way"
            )
        if model.noise_schedule != self.noise_schedule:
            raise ValueError(
                f"the trainer's noise schedule {self.noise_schedule.config} differs from the "
                f"model's {model.noise_schedule.config}; build the trainer with "
                "create_noise_schedule(model.config.noise_schedule)"
            )
        return model_type

    def loss(self, model: nnx.Module, x0: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """Weighted denoising loss on clean images ``x0`` (NHWC, in [-1, 1])."""
        prediction_type = self.prediction_type_for(model)
        t_key, noise_key, dropout_key = jax.random.split(key, 3)
        t = self.sample_timesteps(t_key, x0.shape[0])
        noise = jax.random.normal(noise_key, x0.shape, x0.dtype)
        schedule = self.noise_schedule
        x_t = schedule.add_noise(x0, noise, t)
        signal, sigma = schedule.scales(t, x0)
        target = prediction_target(prediction_type, x0, noise, signal, sigma)
        weights = loss_weight(
            schedule.snr(t), prediction_type, self.config.loss_weighting,
            self.config.min_snr_gamma,
        )
        prediction = model(x_t, t, dropout_key=dropout_key)
        cfg = model.config
        per_example = elementwise_loss(prediction, target, cfg.loss_type, cfg.huber_delta)
        per_example = per_example.reshape(x0.shape[0], -1).mean(axis=1)
        return jnp.mean(weights * per_example), {"timesteps": t}

    def train_step(
        self, model: nnx.Module, optimizer: nnx.Optimizer, batch: dict[str, Any], key: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """One optimisation step on ``batch["image"]``; returns ``(loss, metrics)``.

        Wrap it in ``nnx.jit`` (the model and optimizer are updated in place).
        """
        x0 = batch["image"]

        def loss_fn(m):
            loss, _ = self.loss(m, x0, key)
            return loss

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    # ------------------------------------------------------------------ EMA
    def ema_due(self, step: int) -> bool:
        """Whether training step ``step`` (0-based) should call :meth:`update_ema`."""
        return step % self.config.ema_update_every == 0

    def update_ema(self, model: nnx.Module) -> None:
        """Exactly one EMA update toward the model's current parameters (compiled)."""
        params = nnx.state(model, nnx.Param)
        if self._ema is None:
            self._ema = ema_init(params)
        self._ema = ema_update(self._ema, params, self.config.ema_decay)

    @property
    def ema_state(self) -> EMAState | None:
        """The EMA (parameters and update count), or ``None`` before the first update.

        Save it with the model and optimizer; assign a restored one back to resume.
        """
        return self._ema

    @ema_state.setter
    def ema_state(self, state: EMAState | None) -> None:
        self._ema = None if state is None else EMAState(*state)

    def ema_model(self, model: nnx.Module) -> nnx.Module:
        """A copy of ``model`` carrying the EMA weights (the model itself is untouched).

        Use it to sample: ``trainer.ema_model(model).sample(16, scheduler="ddim")``.
        """
        if self._ema is None:
            raise RuntimeError(
                "no EMA weights yet: call trainer.update_ema(model) during training first"
            )
        graphdef, _, rest = nnx.split(model, nnx.Param, ...)
        return nnx.merge(graphdef, self._ema.params, rest)
