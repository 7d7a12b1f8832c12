"""DiffusionTrainer: the denoising training step and the EMA of weights.

The trainer protocol (:mod:`artifex.generative_models.training.protocol`):
``state = trainer.init_state(model, optimizer)`` builds a
:class:`~artifex.generative_models.training.state.TrainState`, and
``nnx.jit(trainer.train_step)(state, batch, key)`` runs noise and timestep draws, the forward
pass, the loss, the gradient, the optimizer update and the EMA update (when due) as one XLA
program, returning the metrics; ``trainer.generate(state, n, key)`` samples from the EMA weights.

The seed form stays: ``loss, metrics = nnx.jit(trainer.train_step)(model, optimizer, batch,
key)`` is the same step on a model and optimizer, with the EMA kept on the host by
``trainer.update_ema(model)``. All randomness comes from ``key``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from artifex.generative_models.core import inputs
from artifex.generative_models.core.configuration import validation as v
from artifex.generative_models.core.configuration.diffusion_config import PREDICTION_TYPES
from artifex.generative_models.core.losses import LOSS_WEIGHTINGS, elementwise_loss, loss_weight
from artifex.generative_models.core.noise_schedule import NoiseSchedule
from artifex.generative_models.core.prediction import prediction_target
from artifex.generative_models.training.ema import EMAState, ema_init, ema_update
from artifex.generative_models.training.state import TrainState

TIMESTEP_SAMPLINGS = ("uniform", "logit_normal")
COMPUTE_DTYPES = ("float32", "bfloat16")


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
      ema_update_every: update the EMA on every this many steps (0-based steps ``s`` with
        ``s % ema_update_every == 0``): inside the compiled step of a ``TrainState``; a
        hand-written seed loop asks :meth:`DiffusionTrainer.ema_due`.
      microbatch_size: ``None`` runs the whole batch through the network at once. An
        integer splits each batch into chunks of this many images whose gradients are
        summed in a ``lax.scan`` inside the same compiled step: the update equals the
        whole-batch one (same timesteps and noise; equal up to float summation order when
        ``dropout_rate`` is 0) while activation memory shrinks with the chunk size; on the
        CPU a small model also ran faster in chunks (measured in ``docs/benchmarks.md``;
        most likely because a chunk's activations fit in the caches). It must divide the batch size.
      label_dropout: for a class-conditional model (``UNetBackboneConfig.num_classes``), the
        share of training labels replaced by the null label, so the same network also learns
        the unconditional model that classifier-free guidance subtracts (Ho & Salimans
        2022 use 0.1 to 0.2). ``0`` trains the conditional model only: guidance then has no
        unconditional branch to extrapolate from. Unconditional models have no labels to drop.
      compute_dtype: ``"float32"``, or ``"bfloat16"`` for mixed precision: the network's
        forward and backward pass run on bfloat16 copies of the weights and activations,
        while the parameters, their gradients, the optimizer state, the EMA and the loss stay
        float32 (normalisation statistics are reduced in float32 by Flax). Faster only on
        hardware with bfloat16 matrix units (recent GPUs and TPUs); on CPUs without them it
        is slower, so the default is float32 everywhere (``docs/benchmarks.md``).
    """

    prediction_type: str | None = None
    timestep_sampling: str = "uniform"
    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    loss_weighting: str = "uniform"
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.9999
    ema_update_every: int = 1
    microbatch_size: int | None = None
    label_dropout: float = 0.1
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.prediction_type is not None:
            v.check_choice(owner, "prediction_type", self.prediction_type, PREDICTION_TYPES)
        v.check_choice(owner, "timestep_sampling", self.timestep_sampling, TIMESTEP_SAMPLINGS)
        v.check_float(owner, "logit_normal_mean", self.logit_normal_mean)
        v.check_float(
            owner, "logit_normal_std", self.logit_normal_std, low=0.0, low_inclusive=False
        )
        v.check_choice(owner, "loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS)
        v.check_float(owner, "min_snr_gamma", self.min_snr_gamma, low=0.0, low_inclusive=False)
        v.check_float(owner, "ema_decay", self.ema_decay, low=0.0, high=1.0, high_inclusive=False)
        v.check_int(owner, "ema_update_every", self.ema_update_every, minimum=1)
        if self.microbatch_size is not None:
            v.check_int(owner, "microbatch_size", self.microbatch_size, minimum=1)
        v.check_float(owner, "label_dropout", self.label_dropout, low=0.0, high=1.0)
        v.check_choice(owner, "compute_dtype", self.compute_dtype, COMPUTE_DTYPES)


def in_bfloat16(model: nnx.Module) -> nnx.Module:
    """A view of ``model`` with bfloat16 copies of its parameters. Inside a gradient, the
    cast's transpose brings the gradient back to the float32 parameters."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    low = jax.tree.map(lambda p: p.astype(jnp.bfloat16) if p.dtype == jnp.float32 else p, params)
    return nnx.merge(graphdef, low, rest)


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

    def loss(
        self, model: nnx.Module, x0: jax.Array, key: jax.Array, labels: jax.Array | None = None
    ) -> tuple[jax.Array, dict]:
        """Weighted denoising loss on clean images ``x0`` (NHWC, in [-1, 1]); ``labels``
        (``(B,)``) for a class-conditional model, of which ``label_dropout`` are nulled."""
        draws = self._draw(model, x0, key, labels)
        return self._weighted_loss_sum(model, x0, *draws) / x0.shape[0], {"timesteps": draws[0]}

    def _draw(
        self, model: nnx.Module, x0: jax.Array, key: jax.Array, labels: jax.Array | None = None
    ):
        """Timesteps, noise, the dropout key and the (partly nulled) labels of one step:
        everything random in it."""
        self.prediction_type_for(model)
        t_key, noise_key, dropout_key = jax.random.split(key, 3)
        t = self.sample_timesteps(t_key, x0.shape[0])
        if labels is not None and self.config.label_dropout > 0:
            # A key of its own, so unconditional training draws exactly what it always did.
            drop = jax.random.bernoulli(
                jax.random.fold_in(key, 3), self.config.label_dropout, labels.shape
            )
            labels = jnp.where(drop, model.num_classes, labels)
        return t, jax.random.normal(noise_key, x0.shape, x0.dtype), dropout_key, labels

    def _weighted_loss_sum(
        self,
        model: nnx.Module,
        x0: jax.Array,
        t: jax.Array,
        noise: jax.Array,
        dropout_key: jax.Array,
        labels: jax.Array | None = None,
    ) -> jax.Array:
        """Sum over the examples of ``weight(t) * mean-over-pixels loss``."""
        prediction_type = model.config.prediction_type
        schedule = self.noise_schedule
        x_t = schedule.add_noise(x0, noise, t)
        signal, sigma = schedule.scales(t, x0)
        target = prediction_target(prediction_type, x0, noise, signal, sigma)
        weights = loss_weight(
            schedule.snr(t),
            prediction_type,
            self.config.loss_weighting,
            self.config.min_snr_gamma,
        )
        network = model
        if self.config.compute_dtype == "bfloat16":
            network, x_t = in_bfloat16(model), x_t.astype(jnp.bfloat16)
        prediction = network(x_t, t, labels=labels, dropout_key=dropout_key)
        prediction = prediction.astype(jnp.float32)
        cfg = model.config
        per_example = elementwise_loss(prediction, target, cfg.loss_type, cfg.huber_delta)
        per_example = per_example.reshape(x0.shape[0], -1).mean(axis=1)
        return jnp.sum(weights * per_example)

    def _microbatch_count(self, batch_size: int) -> int:
        size = self.config.microbatch_size
        if size is None or size >= batch_size:
            return 1
        if batch_size % size:
            raise ValueError(
                f"DiffusionTrainingConfig.microbatch_size={size} does not divide the batch "
                f"size {batch_size}; use a divisor of {batch_size} (or None for no splitting)"
            )
        return batch_size // size

    def _loss_and_grads(
        self, model: nnx.Module, x0: jax.Array, key: jax.Array, labels: jax.Array | None = None
    ):
        """Mean loss and its parameter gradient, in microbatches when configured."""
        batch_size = x0.shape[0]
        chunks = self._microbatch_count(batch_size)
        if chunks == 1:

            def loss_fn(m):
                return self.loss(m, x0, key, labels)[0]

            return nnx.value_and_grad(loss_fn)(model)

        t, noise, dropout_key, labels = self._draw(model, x0, key, labels)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def chunk_loss(p, x, t_, n_, k_, y_):
            return self._weighted_loss_sum(nnx.merge(graphdef, p, rest), x, t_, n_, k_, y_)

        def accumulate(carry, chunk):
            loss_sum, grad_sum = carry
            index, x, t_, n_, y_ = chunk
            k_ = jax.random.fold_in(dropout_key, index)
            loss, grads = jax.value_and_grad(chunk_loss)(params, x, t_, n_, k_, y_)
            return (loss_sum + loss, jax.tree.map(jnp.add, grad_sum, grads)), None

        def split(a):
            return None if a is None else a.reshape(chunks, batch_size // chunks, *a.shape[1:])

        zeros = (jnp.zeros((), x0.dtype), jax.tree.map(jnp.zeros_like, params))
        xs = (jnp.arange(chunks), split(x0), split(t), split(noise), split(labels))
        (loss_sum, grad_sum), _ = jax.lax.scan(accumulate, zeros, xs)
        return loss_sum / batch_size, jax.tree.map(lambda g: g / batch_size, grad_sum)

    def init_state(self, model: nnx.Module, optimizer: nnx.Optimizer) -> TrainState:
        """The training state: the model, its optimizer and an EMA copy of the model."""
        if not hasattr(getattr(model, "config", None), "prediction_type"):
            raise TypeError(
                f"DiffusionTrainer trains a DDPMModel, got {type(model).__name__}; use its "
                "family's trainer (VAETrainer, GANTrainer, FlowTrainer)"
            )
        self.prediction_type_for(model)  # refuse a mismatched model before any compilation
        return TrainState({"model": model}, {"model": optimizer}, ema=("model",))

    def train_step(self, *args: Any) -> Any:
        """One optimisation step on ``batch["image"]`` (and ``batch["label"]`` for a
        class-conditional model); wrap it whole in ``nnx.jit``.

        ``train_step(state, batch, key) -> metrics`` updates a :class:`TrainState` in place,
        EMA included when due, and returns ``{"loss", "grad_norm"}``.
        ``train_step(model, optimizer, batch, key) -> (loss, metrics)`` is the seed form: the
        same update of the model and optimizer, the EMA left to :meth:`update_ema`.
        """
        if len(args) == 3:
            return self._state_step(*args)
        if len(args) == 4:
            model, optimizer, batch, key = args
            metrics = self._update(model, optimizer, batch, key)
            return metrics["loss"], metrics
        raise TypeError(
            "train_step takes (state, batch, key) or (model, optimizer, batch, key), got "
            f"{len(args)} arguments"
        )

    def _update(
        self, model: nnx.Module, optimizer: nnx.Optimizer, batch: dict[str, Any], key: jax.Array
    ) -> dict[str, jax.Array]:
        images = inputs.image_batch(batch, model.config.input_shape)
        num_classes = getattr(model, "num_classes", None)
        labels = (
            None if num_classes is None else inputs.label_batch(batch, len(images), num_classes)
        )
        loss, grads = self._loss_and_grads(model, images, key, labels)
        optimizer.update(model, grads)
        return {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    def _state_step(
        self, state: TrainState, batch: dict[str, Any], key: jax.Array
    ) -> dict[str, jax.Array]:
        metrics = self._update(state.model, state.optimizers["model"], batch, key)
        state.update_ema(self.config.ema_decay, self.config.ema_update_every)
        state.step[...] += 1
        return metrics

    def generate(self, state: TrainState, n: int, key: jax.Array, **options: Any) -> jax.Array:
        """``n`` images from the EMA weights (the model's before the first EMA update).

        ``options`` go to ``DDPMModel.sample``: ``scheduler``, ``steps``, ``eta``, ...
        """
        return state.sample_model().sample(n, key=key, **options)

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
