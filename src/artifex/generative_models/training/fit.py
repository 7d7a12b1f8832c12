"""``fit``: the training loop around a compiled diffusion step.

One call trains for whole epochs of an exact-epoch iterator (``ImageBatchIterator``) and
takes care of what a long run needs:

- the step is ``nnx.jit(trainer.train_step)``, with the EMA updated when
  ``trainer.ema_due(step)``; step ``n`` uses the key ``fold_in(key(seed), n)``;
- losses stay on the device and are fetched every ``log_every_steps`` steps, at checkpoints
  and at epoch ends; a NaN/inf loss or gradient norm stops training with
  :class:`NonFiniteLossError` naming the step, before anything is saved, so the newest
  checkpoint is always a good one;
- checkpoints (model, optimizer, EMA, key, iterator position, history) every N steps or
  epochs, at the end, and when SIGINT arrives; ``resume=True`` continues from the newest,
  bit-identically to a run that was never interrupted;
- the best epoch loss (improved by more than ``min_delta``) exports the model (EMA weights
  if any) to ``best_model/``; ``patience`` epochs without improvement stop the run with
  "Early stopping at epoch N";
- sample grids, forward-noising grids and the training curve under ``samples/``, and an
  optional ``evaluate(model) -> {metric: value}`` callback whose results join the history.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from artifex.generative_models.training.checkpointing import (
    TrainingCheckpointer,
    export_best_model,
)
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.interrupt import DeferredInterrupt

logger = logging.getLogger("artifex")

Schedule = Callable[[Any], Any]
Evaluate = Callable[[nnx.Module], Mapping[str, float]]


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

    @property
    def current_epoch(self) -> int: ...

    def epoch(self, index: int | None = None) -> Any: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass
class FitResult:
    """What a :func:`fit` call did (the histories include earlier, resumed-from runs).

    Attributes:
      global_step: optimisation steps done in total.
      epochs_completed: whole epochs done in total.
      losses: the loss of every step, float32 values as float64.
      learning_rates: the learning rate of every step, when ``fit`` was given one.
      epoch_losses: mean loss of each completed epoch.
      evaluations: ``{"epoch", "step", **metrics}`` per ``evaluate`` call.
      best_loss, best_epoch: the best epoch loss and its 1-based epoch (``None`` before one).
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
    best_loss: float | None
    best_epoch: int | None
    stopped_early: bool
    resumed_from: int | None
    output_dir: Path
    files: list[Path]


@dataclasses.dataclass
class _History:
    """The JSON-serialisable part of a run that a checkpoint carries along."""

    losses: list[float] = dataclasses.field(default_factory=list)
    epoch_losses: list[float] = dataclasses.field(default_factory=list)
    evaluations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_loss: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    epochs_completed: int = 0
    stopped_early: bool = False


_COMPILED_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_train_step(trainer: Any) -> Callable:
    """``nnx.jit(trainer.train_step)``, made once per trainer so repeated fits reuse it."""
    step = _COMPILED_STEPS.get(trainer)
    if step is None:
        step = _COMPILED_STEPS[trainer] = nnx.jit(trainer.train_step)
    return step


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


def _due(every: int | None, count: int) -> bool:
    return every is not None and count > 0 and count % every == 0


class _Run:
    """State of one ``fit`` call; methods are the loop's phases."""

    def __init__(self, model, optimizer, trainer, iterator, config, learning_rate, evaluate):
        self.model, self.optimizer, self.trainer = model, optimizer, trainer
        self.iterator, self.config = iterator, config
        self.learning_rate, self.evaluate = learning_rate, evaluate
        self.step_fn = compiled_train_step(trainer)
        self.key = jax.random.key(config.seed)
        self.history = _History()
        self.plotting: bool | None = None  # matplotlib installed; checked when first needed
        self.global_step = 0
        self.pending: list[tuple[int, jax.Array, jax.Array]] = []  # (step, loss, grad_norm)
        self.epoch_start = 0
        self.last_saved: int | None = None
        self.resumed_from: int | None = None
        self.files: list[Path] = []
        self.progress: Any = None
        self.preview: np.ndarray | None = None  # training images for the noising grid
        self.checkpointer = TrainingCheckpointer(
            config.checkpoint_dir, max_to_keep=config.max_to_keep
        )
        per_epoch = iterator.batches_per_epoch
        self.total_steps = config.epochs * per_epoch
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)

    # ------------------------------------------------------------------ checkpoints
    def restore(self) -> None:
        latest = self.checkpointer.latest_step()
        if latest is None:
            return
        if not self.config.resume:
            raise FileExistsError(
                f"{self.config.checkpoint_dir} already holds checkpoint {latest}; pass "
                "FitConfig(resume=True) to continue it, or choose another output_dir"
            )
        restored = self.checkpointer.restore(
            latest, self.model, self.optimizer, trainer=self.trainer, rng_key_like=self.key
        )
        self.global_step = self.last_saved = self.resumed_from = restored.step
        self.key = restored.rng_key
        self.iterator.set_state(restored.iterator_state)
        self.history = _History(**restored.extra["history"])
        self.epoch_start = restored.extra["epoch_start"]
        logger.info(f"resumed from checkpoint step {restored.step} in {self.config.checkpoint_dir}")

    def save(self) -> None:
        if self.last_saved == self.global_step:
            return
        self.flush()  # never save past a non-finite loss
        try:
            self._save()
        except FloatingPointError as error:  # finite losses, but the update overflowed
            epoch = self.history.epochs_completed + 1
            raise NonFiniteLossError(
                f"training diverged: non-finite parameters after step {self.global_step} "
                f"(epoch {epoch}); {error}",
                step=self.global_step,
                epoch=epoch,
                last_checkpoint=self.last_saved,
            ) from error
        self.last_saved = self.global_step

    def _save(self) -> None:
        self.checkpointer.save(
            self.global_step,
            self.model,
            self.optimizer,
            ema_state=self.trainer.ema_state,
            rng_key=self.key,
            iterator_state=self.iterator.get_state(),
            extra={"history": dataclasses.asdict(self.history), "epoch_start": self.epoch_start},
        )

    # ------------------------------------------------------------------ losses
    def flush(self) -> None:
        """Fetch pending losses; raise on the first non-finite one."""
        if not self.pending:
            return
        steps = [step for step, _, _ in self.pending]
        values = jax.device_get([(loss, norm) for _, loss, norm in self.pending])
        self.pending = []
        for step, (loss, norm) in zip(steps, values, strict=True):
            if not (math.isfinite(float(loss)) and math.isfinite(float(norm))):
                self.raise_non_finite(step, float(loss), float(norm))
            self.history.losses.append(float(loss))
        postfix = {"loss": f"{self.history.losses[-1]:.4f}"}
        if self.learning_rate is not None:
            rate = (
                self.learning_rate(steps[-1] - 1)
                if callable(self.learning_rate)
                else (self.learning_rate)
            )
            postfix["lr"] = f"{float(rate):.2e}"
        if self.progress is not None:
            self.progress.set_postfix(postfix, refresh=False)

    def raise_non_finite(self, step: int, loss: float, norm: float) -> None:
        epoch = self.history.epochs_completed + 1
        what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {norm}"
        kept = (
            f"the last good checkpoint is step {self.last_saved} in {self.config.checkpoint_dir}"
            if self.last_saved is not None
            else "no checkpoint was saved yet"
        )
        raise NonFiniteLossError(
            f"training diverged: {what} at step {step} (epoch {epoch}); {kept}. Lower the "
            "learning rate, clip gradients, or check the data for NaNs.",
            step=step,
            epoch=epoch,
            last_checkpoint=self.last_saved,
        )

    # ------------------------------------------------------------------ figures
    def can_plot(self) -> bool:
        """Whether matplotlib is installed; without it figures are skipped, with one warning."""
        if self.plotting is None:
            import importlib.util

            self.plotting = importlib.util.find_spec("matplotlib") is not None
            if not self.plotting:
                logger.warning(
                    "matplotlib is not installed: sample grids and the training curve are "
                    "skipped (pip install 'artifex[examples]' to draw them)"
                )
        return self.plotting

    def sample_model(self) -> nnx.Module:
        if self.trainer.ema_state is not None:
            return self.trainer.ema_model(self.model)
        return self.model

    def save_samples(self, count: int, name: str, title: str) -> None:
        if not self.can_plot():
            return
        from artifex.visualization import save_image_grid

        samples = self.sample_model().sample(
            count,
            scheduler=self.config.sampler,
            steps=self.config.sampling_steps,
            key=jax.random.key(self.config.seed + 1),  # the same noise at every epoch
        )
        path = self.config.samples_dir / name
        self.files.append(save_image_grid(np.asarray(samples), path, title=title))

    def save_noising(self, epoch: int) -> None:
        from artifex.visualization import save_noising_grid

        if self.preview is None or not self.can_plot():
            return
        schedule = self.trainer.noise_schedule
        timesteps = sorted({int(t) for t in np.linspace(0, schedule.num_timesteps - 1, 6)})
        path = self.config.samples_dir / f"noising_epoch{epoch}.png"
        self.files.append(
            save_noising_grid(
                self.preview, schedule, timesteps, path, key=jax.random.key(self.config.seed)
            )
        )

    def save_curve(self) -> None:
        from artifex.visualization import plot_training_curve

        if not self.history.losses or not self.can_plot():
            return
        rates = learning_rate_history(self.learning_rate, len(self.history.losses))
        path = self.config.samples_dir / "training_curve.png"
        window = max(1, min(100, len(self.history.losses) // 5))
        self.files.append(
            plot_training_curve(self.history.losses, path, learning_rates=rates, window=window)
        )

    # ------------------------------------------------------------------ epochs
    def end_epoch(self) -> None:
        """Epoch bookkeeping: mean loss, best model, evaluation, figures, early stopping."""
        cfg, history = self.config, self.history
        self.flush()
        epoch_loss = float(np.mean(history.losses[self.epoch_start : self.global_step]))
        history.epoch_losses.append(epoch_loss)
        history.epochs_completed += 1
        epoch = history.epochs_completed
        self.epoch_start = self.global_step
        logger.info(
            f"epoch {epoch}/{cfg.epochs}: mean loss {epoch_loss:.5f} (step {self.global_step})"
        )
        if history.best_loss is None or epoch_loss < history.best_loss - cfg.min_delta:
            history.best_loss, history.best_epoch, history.bad_epochs = epoch_loss, epoch, 0
            export_best_model(
                cfg.best_model_dir,
                self.model,
                step=self.global_step,
                ema_state=self.trainer.ema_state,
                metadata={"epoch": epoch, "loss": epoch_loss, **config_metadata(self.model)},
            )
        else:
            history.bad_epochs += 1
        if self.evaluate is not None and _due(cfg.evaluate_every_epochs, epoch):
            metrics = {
                name: float(value) for name, value in self.evaluate(self.sample_model()).items()
            }
            history.evaluations.append({"epoch": epoch, "step": self.global_step, **metrics})
            logger.info(
                f"epoch {epoch} evaluation: "
                + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items())
            )
        if _due(cfg.sample_every_epochs, epoch):
            self.save_samples(
                cfg.num_samples,
                f"samples_epoch{epoch}.png",
                f"epoch {epoch}, {cfg.sampler.upper()} {cfg.sampling_steps} steps",
            )
            self.save_noising(epoch)
            self.save_curve()
        if cfg.patience is not None and history.bad_epochs >= cfg.patience:
            history.stopped_early = True
            logger.info(f"Early stopping at epoch {epoch}")

    def write_history(self) -> None:
        path = self.config.output_path / "history.json"
        record = {"global_step": self.global_step, **dataclasses.asdict(self.history)}
        path.write_text(json.dumps(record, indent=1) + "\n")

    def train(self, step_callback: Callable[[int], None] | None) -> None:
        cfg, history = self.config, self.history
        progress = self.progress = tqdm(
            total=self.total_steps,
            initial=self.global_step,
            desc="training",
            mininterval=0.5,
            disable=None if cfg.progress_bar else True,
        )
        try:
            with DeferredInterrupt() as interrupt:
                while (
                    not history.stopped_early
                    and history.epochs_completed < cfg.epochs
                    and self.global_step < self.total_steps
                ):
                    finished_epoch = self.run_epoch(interrupt, step_callback)
                    if not finished_epoch:
                        break
                    self.end_epoch()
                    at_end = (
                        history.stopped_early
                        or self.global_step >= self.total_steps
                        or history.epochs_completed >= cfg.epochs
                    )
                    if (
                        at_end
                        or _due(cfg.checkpoint_every_epochs, history.epochs_completed)
                        or _due(cfg.checkpoint_every_steps, self.global_step)
                    ):
                        self.save()
                    self.write_history()
                    if interrupt.requested:
                        self.stop_for_interrupt(interrupt)
                self.flush()
                self.save()
                self.write_history()
        finally:
            progress.close()

    def run_epoch(self, interrupt, step_callback) -> bool:
        """Steps until the epoch ends (True) or ``total_steps`` is reached mid-epoch."""
        cfg = self.config
        per_epoch = self.iterator.batches_per_epoch
        for batch in self.iterator.epoch():
            if self.preview is None:
                self.preview = np.asarray(batch["image"][:4])
            step_key = jax.random.fold_in(self.key, self.global_step)
            loss, metrics = self.step_fn(
                self.model, self.optimizer, {"image": batch["image"]}, step_key
            )
            if self.trainer.ema_due(self.global_step):
                self.trainer.update_ema(self.model)
            self.global_step += 1
            self.pending.append((self.global_step, loss, metrics["grad_norm"]))
            self.progress.update(1)
            if step_callback is not None:
                step_callback(self.global_step)
            epoch_done = self.iterator.get_state()["batch_index"] >= per_epoch
            if epoch_done:
                return True
            checkpoint_due = _due(cfg.checkpoint_every_steps, self.global_step)
            if _due(cfg.log_every_steps, self.global_step):
                self.flush()
            if checkpoint_due or self.global_step >= self.total_steps:
                self.save()
            if interrupt.requested:
                self.stop_for_interrupt(interrupt)
            if self.global_step >= self.total_steps:
                return False
        return True

    def stop_for_interrupt(self, interrupt: DeferredInterrupt) -> None:
        self.flush()
        self.save()
        self.write_history()
        logger.info(
            f"interrupted ({interrupt.signal_name}): checkpoint of step {self.global_step} "
            f"saved in {self.config.checkpoint_dir}; run again to resume"
        )
        interrupt.stop()

    def result(self) -> FitResult:
        losses = np.asarray(self.history.losses, dtype=np.float64)
        history = self.history
        return FitResult(
            global_step=self.global_step,
            epochs_completed=history.epochs_completed,
            losses=losses,
            learning_rates=learning_rate_history(self.learning_rate, len(losses)),
            epoch_losses=list(history.epoch_losses),
            evaluations=list(history.evaluations),
            best_loss=history.best_loss,
            best_epoch=history.best_epoch,
            stopped_early=history.stopped_early,
            resumed_from=self.resumed_from,
            output_dir=self.config.output_path,
            files=list(self.files),
        )


def config_metadata(model: nnx.Module) -> dict[str, Any]:
    """``{"config": model.config.to_dict()}`` when the model has such a config (a
    ``DDPMModel`` does), so that an export can be loaded without restating the architecture."""
    to_dict = getattr(getattr(model, "config", None), "to_dict", None)
    return {"config": to_dict()} if callable(to_dict) else {}


def fit(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    trainer: Any,
    train_iterator: BatchIterator,
    config: FitConfig,
    *,
    learning_rate: Schedule | float | None = None,
    evaluate: Evaluate | None = None,
    step_callback: Callable[[int], None] | None = None,
) -> FitResult:
    """Train ``model`` in place for ``config.epochs`` epochs of ``train_iterator``.

    Args:
      model: the model (a ``DDPMModel``); updated in place.
      optimizer: its ``nnx.Optimizer``; updated in place.
      trainer: a ``DiffusionTrainer`` (its EMA is updated in place).
      train_iterator: exact-epoch, resumable batches, e.g. from ``make_train_iterator``.
      config: the loop's options.
      learning_rate: the optimizer's schedule (or constant), for the history, the progress
        bar and the training curve only.
      evaluate: called as ``evaluate(model)`` with the EMA model (or the model) every
        ``config.evaluate_every_epochs`` epochs; returns ``{metric: value}``.
      step_callback: called with the number of steps done after every step.

    Raises:
      NonFiniteLossError: a loss or gradient norm became NaN/inf; nothing was saved after it.
      KeyboardInterrupt: SIGINT arrived; a checkpoint of the last finished step was saved.
      FileExistsError: checkpoints exist but ``config.resume`` is False.
    """
    config.output_path.mkdir(parents=True, exist_ok=True)
    run = _Run(model, optimizer, trainer, train_iterator, config, learning_rate, evaluate)
    try:
        run.restore()
        run.train(step_callback)
        if config.final_samples and run.global_step > 0:
            run.save_samples(
                16,
                "samples_final.png",
                f"{config.sampler.upper()} {config.sampling_steps} steps, step {run.global_step}",
            )
            run.save_curve()
    finally:
        run.checkpointer.close()
    return run.result()
