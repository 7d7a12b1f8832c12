"""``fit``: the one training loop, for every trainer that follows the protocol.

``fit(trainer, state, data, config)`` runs whole epochs of an exact-epoch iterator
(``ImageBatchIterator``) through the compiled ``trainer.train_step`` and leaves everything else
to hooks (:mod:`artifex.generative_models.training.hooks`): checkpoints, the best model, early
stopping, evaluation, sample grids, the training curve, the metrics file and the progress bar.
``config`` chooses the default hooks; ``hooks=[...]`` adds your own.

What the loop itself guarantees:

- the step is bound to the state once (``nnx.cached_partial`` over ``nnx.jit`` with the state's
  buffers donated), so a step costs one compiled call and no graph traversal; step ``n`` uses
  the key ``fold_in(key(seed), n)``; an injected ``train_step(batch, key)`` (e.g. the sharded
  step) replaces it;
- metrics stay on the device and are fetched every ``log_every_steps`` steps and at epoch ends;
  a NaN/inf loss or gradient norm stops training with :class:`NonFiniteLossError` naming the
  step, before anything is saved after it, so the newest checkpoint is always a good one;
- SIGINT or SIGTERM finishes the step, saves a checkpoint and stops (``KeyboardInterrupt``, or
  ``SystemExit(143)`` for SIGTERM); the next ``fit`` on the same directory resumes
  bit-identically to a run that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np
from flax import nnx

from artifex.generative_models.training.checkpointing import (
    CorruptCheckpointError,
    TrainingCheckpointer,
    describe_models,
    describe_optimizers,
)
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.hooks import Hook, default_hooks
from artifex.generative_models.training.interrupt import DeferredInterrupt
from artifex.generative_models.training.protocol import Trainer
from artifex.generative_models.training.run_lock import RunLock
from artifex.generative_models.training.state import TrainState

logger = logging.getLogger("artifex")

#: ``fold_in`` compiled: eagerly it dispatches several small ops (0.8 ms a step measured on
#: 2 CPU cores), compiled one (0.02 ms), with the same keys.
step_key = jax.jit(jax.random.fold_in)

Schedule = Callable[[Any], Any]
StepFn = Callable[[Any, jax.Array], Mapping[str, jax.Array]]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or gradient norm) at ``step``.

    Attributes:
      step: the 1-based number of the training step that produced it.
      epoch: the 1-based epoch of that step.
      last_checkpoint: step of the newest (good) checkpoint on disk, or ``None``.
    """

    def __init__(self, message: str, *, step: int, epoch: int, last_checkpoint: int | None):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.last_checkpoint = last_checkpoint


class BatchIterator(Protocol):
    """What ``fit`` needs from the data: exact epochs and a resumable position."""

    batches_per_epoch: int

    def epoch(self, index: int | None = None) -> Any: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass
class History:
    """The JSON-serialisable record of a run, carried along in every checkpoint.

    ``records`` holds one entry per epoch end and per evaluation:
    ``{"epoch", "step", "loss"}`` or ``{"epoch", "step", **metrics}``.
    """

    losses: list[float] = dataclasses.field(default_factory=list)
    epoch_losses: list[float] = dataclasses.field(default_factory=list)
    evaluations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    epochs_completed: int = 0
    stopped_early: bool = False
    hooks: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FitResult:
    """What a :func:`fit` call did (the histories include earlier, resumed-from runs).

    Attributes:
      global_step: optimisation steps done in total.
      epochs_completed: whole epochs done in total.
      losses: the loss of every step, float32 values as float64.
      learning_rates: the learning rate of every step, when ``fit`` was given one.
      epoch_losses: mean loss of each completed epoch.
      evaluations: ``{"epoch", "step", **metrics}`` per evaluation.
      monitor: the metric that chose the best model and early stopping.
      best_value, best_epoch: its best value and the 1-based epoch of it (``None`` before one).
      stopped_early: whether early stopping ended the run.
      resumed_from: the checkpoint step this call started from, or ``None``.
      output_dir: the run's directory.
      files: figures written by this call, in order.
    """

    global_step: int
    epochs_completed: int
    losses: np.ndarray
    learning_rates: np.ndarray | None
    epoch_losses: list[float]
    evaluations: list[dict[str, Any]]
    monitor: str
    best_value: float | None
    best_epoch: int | None
    stopped_early: bool
    resumed_from: int | None
    output_dir: Path
    files: list[Path]


def learning_rate_history(learning_rate: Schedule | float | None, steps: int) -> np.ndarray | None:
    """The learning rate used by each of ``steps`` steps (``None`` if unknown)."""
    if learning_rate is None:
        return None
    if not callable(learning_rate):
        return np.full(steps, float(learning_rate))
    rates = np.asarray(learning_rate(np.arange(steps)), dtype=np.float64)
    if rates.shape != (steps,):  # a schedule that does not broadcast over steps
        rates = np.asarray([float(learning_rate(i)) for i in range(steps)])
    return rates


def bind_train_step(trainer: Trainer, state: TrainState) -> StepFn:
    """``trainer.train_step`` compiled and bound to ``state``: call it as ``step(batch, key)``.

    The state's buffers are donated, so the update reuses their memory; arrays shared with the
    state from before (``nnx.clone(model)``, a kept ``nnx.state(model)``) are freed by the first
    step. Keep :func:`~artifex.generative_models.training.state.copy_module` copies instead.
    """
    return nnx.cached_partial(nnx.jit(trainer.train_step, donate_argnums=0), state)


class FitRun:
    """One ``fit`` call as hooks see it: the state, the counters, the history, the actions."""

    def __init__(
        self,
        trainer: Trainer,
        state: TrainState,
        data: BatchIterator,
        config: FitConfig,
        hooks: list[Hook],
        learning_rate: Schedule | float | None,
    ) -> None:
        self.trainer, self.state, self.data, self.config = trainer, state, data, config
        self.hooks, self.learning_rate = hooks, learning_rate
        self.key = jax.random.key(config.seed)
        self.history = History()
        self.global_step = 0
        self.last_saved: int | None = None
        self.resumed_from: int | None = None
        self.files: list[Path] = []
        self.pending: list[tuple[int, Mapping[str, jax.Array]]] = []
        self.state_view: nnx.State | None = None
        self.descriptions: dict[str, Any] = {}
        self.checkpointer = TrainingCheckpointer(
            config.checkpoint_dir,
            max_to_keep=config.max_to_keep,
            asynchronous=config.async_checkpoints,
        )
        self.total_steps = config.epochs * data.batches_per_epoch
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)

    # ------------------------------------------------------------------ for hooks
    @property
    def epoch(self) -> int:
        """The 1-based epoch the current step belongs to."""
        return self.history.epochs_completed + 1

    def emit(self, event: str, *args: Any) -> None:
        """Call ``hook.<event>(self, *args)`` on every hook, in order."""
        for hook in self.hooks:
            getattr(hook, event)(self, *args)

    def request_stop(self, reason: str) -> None:
        """End the run after the current step (from ``on_step``) or epoch (from
        ``on_epoch_end`` and evaluations), e.g. early stopping; logs ``reason``."""
        self.stop_requested = self.history.stopped_early = True
        logger.info(reason)

    def generate(self, n: int, **options: Any) -> Any:
        """``n`` samples from the trainer, with the same noise at every call."""
        return self.trainer.generate(self.state, n, jax.random.key(self.config.seed + 1), **options)

    def save(self) -> None:
        """Checkpoint the current step (once), after checking every pending loss."""
        if self.last_saved == self.global_step or self.global_step == 0:
            return
        self.flush()  # never save past a non-finite loss
        states = {hook.name: hook.get_state() for hook in self.hooks}
        self.history.hooks = {name: state for name, state in states.items() if state is not None}
        try:
            if self.state_view is None:  # the live variables, taken once (see _model_state)
                self.state_view = nnx.state(self.state)
                self.descriptions = {
                    "models": describe_models(self.state),
                    "optimizers": describe_optimizers(self.state),
                }
            self.checkpointer.save(
                self.global_step,
                self.state_view,
                **self.descriptions,
                rng_key=self.key,
                iterator_state=self.data.get_state(),
                extra={"history": dataclasses.asdict(self.history)},
            )
        except FloatingPointError as error:  # finite losses, but the update overflowed
            raise NonFiniteLossError(
                f"training diverged: non-finite parameters after step {self.global_step} "
                f"(epoch {self.epoch}); {error}",
                step=self.global_step,
                epoch=self.epoch,
                last_checkpoint=self.last_saved,
            ) from error
        self.last_saved = self.global_step
        self.write_history()

    def write_history(self) -> None:
        if jax.process_index() != 0:  # one writer on a shared file system
            return
        path = self.config.output_path / "history.json"
        record = {"global_step": self.global_step, **dataclasses.asdict(self.history)}
        path.write_text(json.dumps(record, indent=1) + "\n")

    # ------------------------------------------------------------------ the loop
    def restore(self) -> None:
        latest = self.checkpointer.latest_step()
        if latest is None:
            return
        if not self.config.resume:
            raise FileExistsError(
                f"{self.config.checkpoint_dir} already holds checkpoint {latest}; pass "
                "FitConfig(resume=True) to continue it, or choose another output_dir"
            )
        restored = None
        for step in reversed(self.checkpointer.all_steps()):
            try:
                restored = self.checkpointer.restore(step, self.state, rng_key_like=self.key)
                break
            except CorruptCheckpointError as error:
                logger.warning(f"{error}; trying the checkpoint before it")
                self.checkpointer.set_aside(step, "corrupt")  # this run writes it anew
        if restored is None:
            raise CorruptCheckpointError(
                f"no checkpoint in {self.config.checkpoint_dir} can be restored (all are "
                "damaged); move the directory away to start over"
            )
        self.global_step = self.last_saved = self.resumed_from = restored.step
        self.key = restored.rng_key
        self.data.set_state(restored.iterator_state)
        self.history = History(**restored.extra["history"])
        for hook in self.hooks:
            if hook.name in self.history.hooks:
                hook.set_state(self.history.hooks[hook.name])
        logger.info(f"resumed from checkpoint step {restored.step} in {self.config.checkpoint_dir}")

    def flush(self) -> None:
        """Fetch pending metrics, check them, record the losses and tell the hooks."""
        if not self.pending:
            return
        steps = [step for step, _ in self.pending]
        values = jax.device_get([dict(metrics) for _, metrics in self.pending])
        self.pending = []
        for step, metrics in zip(steps, values, strict=True):
            loss, norm = float(metrics["loss"]), float(metrics.get("grad_norm", 0.0))
            if not (math.isfinite(loss) and math.isfinite(norm)):
                self.raise_non_finite(step, loss, norm)
            self.history.losses.append(loss)
        record = {"step": steps[-1], **{k: float(v) for k, v in values[-1].items()}}
        if self.learning_rate is not None:
            rate = self.learning_rate
            record["lr"] = float(rate(steps[-1] - 1) if callable(rate) else rate)
        self.emit("on_log", record)

    def raise_non_finite(self, step: int, loss: float, norm: float) -> None:
        what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {norm}"
        kept = (
            f"the last good checkpoint is step {self.last_saved} in {self.config.checkpoint_dir}"
            if self.last_saved is not None
            else "no checkpoint was saved yet"
        )
        raise NonFiniteLossError(
            f"training diverged: {what} at step {step} (epoch {self.epoch}); {kept}. Lower the "
            "learning rate, clip gradients, or check the data for NaNs.",
            step=step,
            epoch=self.epoch,
            last_checkpoint=self.last_saved,
        )

    def train(self, step_fn: StepFn) -> None:
        self.emit("on_start")
        with DeferredInterrupt() as interrupt:
            while (
                not self.history.stopped_early
                and self.history.epochs_completed < self.config.epochs
                and self.global_step < self.total_steps
            ):
                # Losses are recorded one per step, so the epoch's are those from its first step.
                done = self.data.get_state()["batch_index"]
                epoch_start = self.global_step - (
                    0 if done >= self.data.batches_per_epoch else done
                )
                for batch in self.data.epoch():
                    key = step_key(self.key, self.global_step)
                    metrics = step_fn(batch, key)
                    self.global_step += 1
                    self.pending.append((self.global_step, metrics))
                    self.emit("on_step", metrics)
                    if self.global_step % self.config.log_every_steps == 0:
                        self.flush()
                    if interrupt.requested:
                        self.stop_for_interrupt(interrupt)
                    if self.global_step >= self.total_steps or self.history.stopped_early:
                        break
                self.flush()
                if self.data.get_state()["batch_index"] < self.data.batches_per_epoch:
                    break  # max_steps or a hook's request_stop ended the run mid-epoch
                self.end_epoch(epoch_start)
                if interrupt.requested:
                    self.stop_for_interrupt(interrupt)
            self.flush()
            self.emit("on_end")
            self.save()
            self.write_history()

    def end_epoch(self, epoch_start: int) -> None:
        history = self.history
        loss = float(np.mean(history.losses[epoch_start:]))
        history.epoch_losses.append(loss)
        history.epochs_completed += 1
        logger.info(
            f"epoch {history.epochs_completed}/{self.config.epochs}: mean loss {loss:.5f} "
            f"(step {self.global_step})"
        )
        record = {"epoch": history.epochs_completed, "step": self.global_step, "loss": loss}
        self.emit("on_epoch_end", record)

    def stop_for_interrupt(self, interrupt: DeferredInterrupt) -> None:
        self.flush()
        self.save()
        logger.info(
            f"interrupted ({interrupt.signal_name}): checkpoint of step {self.global_step} "
            f"saved in {self.config.checkpoint_dir}; run again to resume"
        )
        interrupt.stop()

    def result(self) -> FitResult:
        losses = np.asarray(self.history.losses, dtype=np.float64)
        best = next((hook for hook in self.hooks if hook.name == "best_model"), None)
        return FitResult(
            global_step=self.global_step,
            epochs_completed=self.history.epochs_completed,
            losses=losses,
            learning_rates=learning_rate_history(self.learning_rate, len(losses)),
            epoch_losses=list(self.history.epoch_losses),
            evaluations=list(self.history.evaluations),
            monitor=self.config.monitor,
            best_value=getattr(best, "best", None),
            best_epoch=getattr(best, "best_epoch", None),
            stopped_early=self.history.stopped_early,
            resumed_from=self.resumed_from,
            output_dir=self.config.output_path,
            files=list(self.files),
        )


def _check_before_training(trainer: Any, state: TrainState, data: Any, config: FitConfig) -> None:
    """Refuse what would fail later (after hours of training) or train on the wrong data."""
    if not isinstance(trainer, Trainer):
        raise TypeError(
            f"{type(trainer).__name__} is not a trainer: fit needs train_step(state, batch, key) "
            "and generate(state, n, key)"
        )
    missing = [
        name
        for name in ("batches_per_epoch", "epoch", "get_state", "set_state")
        if not hasattr(data, name)
    ]
    if missing:
        raise TypeError(
            f"data ({type(data).__name__}) lacks {missing}: fit needs an exact-epoch iterator "
            "such as artifex.data.make_train_iterator(...) or ImageBatchIterator"
        )
    model = state.models[state.primary]
    wanted = getattr(getattr(model, "config", None), "input_shape", None)
    served = getattr(data, "image_shape", None)
    if wanted is not None and served is not None and tuple(served) != tuple(wanted):
        raise ValueError(
            f"the data's images have shape {tuple(served)} but the model's config.input_shape "
            f"is {tuple(wanted)}; pad or resize the data (make_train_iterator(pad_to=...)) or "
            "build the model for this size"
        )
    schedule = getattr(trainer, "noise_schedule", None)
    drawing = config.sample_every_epochs is not None or config.final_samples
    if schedule is not None and drawing and config.sampling_steps > schedule.num_timesteps:
        raise ValueError(
            f"FitConfig.sampling_steps={config.sampling_steps} exceeds the model's "
            f"num_timesteps={schedule.num_timesteps}: the sample grids would fail after "
            f"training; use sampling_steps <= {schedule.num_timesteps}"
        )


def fit(
    trainer: Trainer,
    state: TrainState,
    data: BatchIterator,
    config: FitConfig | None = None,
    *,
    hooks: Iterable[Hook] = (),
    train_step: StepFn | None = None,
    evaluate: Callable[[nnx.Module], Mapping[str, float]] | None = None,
    learning_rate: Schedule | float | None = None,
) -> FitResult:
    """Train ``state`` in place for ``config.epochs`` epochs of ``data``.

    Args:
      trainer: follows the trainer protocol (e.g. a ``DiffusionTrainer``).
      state: its ``TrainState`` (``trainer.init_state(...)``); updated in place.
      data: exact-epoch, resumable batches, e.g. from ``make_train_iterator``; every batch
        goes to the step whole.
      config: which default hooks run and how often (``FitConfig()`` if omitted).
      hooks: more hooks, run after the defaults.
      train_step: ``step(batch, key) -> metrics`` already bound to ``state`` (e.g. the
        sharded step); default :func:`bind_train_step`.
      evaluate: ``evaluate(model) -> {metric: value}``, called with the EMA model (or the
        model) as ``config.evaluate_every_*`` says; its metrics can be monitored.
      learning_rate: the optimizer's schedule (or constant), for the history, the progress
        bar and the training curve only.

    Raises:
      NonFiniteLossError: a loss or gradient norm became NaN/inf; nothing was saved after it.
      KeyboardInterrupt: SIGINT arrived; a checkpoint of the last finished step was saved.
      SystemExit: SIGTERM arrived (code 143); likewise saved.
      FileExistsError: checkpoints exist but ``config.resume`` is False.
      DirectoryInUseError: another live run holds ``config.output_dir``.
      CorruptCheckpointError: resuming, and no checkpoint can be restored (a damaged newest
        one is skipped with a warning in favour of the one before).
    """
    config = config if config is not None else FitConfig()
    if not isinstance(state, TrainState):
        raise TypeError(
            f"fit takes a TrainState, got {type(state).__name__}; build one with "
            "trainer.init_state(model, optimizer)"
        )
    _check_before_training(trainer, state, data, config)
    config.output_path.mkdir(parents=True, exist_ok=True)
    all_hooks = [*default_hooks(config, trainer, evaluate), *hooks]
    names = [hook.name for hook in all_hooks]
    if len(set(names)) != len(names):
        raise ValueError(f"two hooks share a name in {names}; give each a distinct name")
    # One run per directory: a second one would overwrite this one's checkpoints.
    lock = RunLock(config.output_path) if jax.process_index() == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        run = FitRun(trainer, state, data, config, all_hooks, learning_rate)
        try:
            run.restore()
            run.train(train_step if train_step is not None else bind_train_step(trainer, state))
        finally:
            run.checkpointer.close()
    finally:
        if lock is not None:
            lock.release()
    return run.result()
