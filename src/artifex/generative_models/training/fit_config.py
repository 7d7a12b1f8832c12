"""FitConfig: what :func:`~artifex.generative_models.training.fit.fit` does around the steps."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from artifex.generative_models.core.configuration import validation as v
from artifex.generative_models.models.diffusion.samplers import SCHEDULERS


def _check_optional_int(owner: str, field: str, value: object, *, minimum: int) -> None:
    """``value`` is ``None`` (the feature is off) or an integer >= ``minimum``."""
    if value is not None:
        v.check_int(owner, field, value, minimum=minimum)


def _check_optional_minutes(owner: str, field: str, value: object) -> None:
    """``value`` is ``None`` (off) or a positive, finite number of minutes."""
    if value is not None:
        v.check_float(owner, field, value, low=0.0, low_inclusive=False)


def _check_bool(owner: str, field: str, value: object) -> None:
    if not isinstance(value, bool):
        v.fail(owner, field, value, "must be True or False")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FitConfig:
    """Epochs, checkpoints, early stopping, sample grids and evaluation of a training run.

    Every periodic option takes ``None`` to turn the feature off.

    Attributes:
      output_dir: the run's directory: ``checkpoints/``, ``best_model/``, ``samples/`` and
        ``history.json`` go here.
      epochs: how many exact passes over the training iterator.
      max_steps: stop after this many optimisation steps in total, even mid-epoch.
      seed: the training key is ``jax.random.key(seed)``; step ``n`` uses
        ``fold_in(key, n)``, so a resumed run draws the same noise as an uninterrupted one.
      checkpoint_every_steps: also checkpoint every this many steps (mid-epoch).
      checkpoint_every_epochs: checkpoint after every this many epochs. The last step is
        always checkpointed, and so is the step at which a SIGINT or SIGTERM arrives.
      checkpoint_every_minutes: also checkpoint when this many minutes of wall-clock time
        passed since the last periodic checkpoint.
      max_to_keep: newest checkpoints kept on disk.
      async_checkpoints: write checkpoints in the background: the loop waits only for the
        arrays to reach the host. A step is listed once complete, so a process killed during
        a write resumes from the checkpoint before.
      resume: continue from the newest checkpoint in ``output_dir/checkpoints`` if there is
        one. With ``False`` an existing checkpoint is an error rather than overwritten.
      monitor: the metric that chooses the best model and drives early stopping: ``"loss"``
        (the epoch's mean training loss) or a metric the ``evaluate`` callable returns
        (e.g. ``"fid"``).
      mode: ``"min"`` when lower values of ``monitor`` are better, ``"max"`` otherwise.
      patience: stop after this many checks in a row without an improvement of ``monitor``
        by more than ``min_delta`` (a check per epoch for the loss, per evaluation otherwise).
      min_delta: the smallest change of ``monitor`` that counts as an improvement; each
        improvement also exports the model to ``output_dir/best_model``.
      sample_every_epochs: write a sample grid and a forward-noising grid every this many
        epochs (from the EMA weights when there are any), and refresh the training curve.
      num_samples: images in each periodic sample grid.
      sampler: the scheduler of a diffusion trainer's sample grids (any of ``SCHEDULERS``) (other
        families sample as their ``generate`` does by default).
      sampling_steps: denoising steps of a diffusion trainer's sample grids.
      final_samples: after training, write a 4x4 sample grid and the training curve.
      evaluate_every_epochs: call the ``evaluate`` callable of ``fit`` every this many epochs.
      evaluate_every_steps: also call it every this many steps.
      evaluate_every_minutes: also call it when this many minutes passed since the last
        step- or time-based evaluation.
      log_every_steps: fetch the losses from the device, check them and refresh the progress
        bar every this many steps (the device runs ahead between fetches).
      progress_bar: show a tqdm bar (it switches itself off when stdout is not a terminal).
    """

    output_dir: str | os.PathLike[str] = "outputs/fit"
    epochs: int = 10
    max_steps: int | None = None
    seed: int = 0
    checkpoint_every_steps: int | None = None
    checkpoint_every_epochs: int | None = 1
    checkpoint_every_minutes: float | None = None
    max_to_keep: int = 3
    async_checkpoints: bool = True
    resume: bool = True
    monitor: str = "loss"
    mode: str = "min"
    patience: int | None = 4
    min_delta: float = 1e-4
    sample_every_epochs: int | None = None
    num_samples: int = 16
    sampler: str = "ddim"
    sampling_steps: int = 50
    final_samples: bool = True
    evaluate_every_epochs: int | None = 1
    evaluate_every_steps: int | None = None
    evaluate_every_minutes: float | None = None
    log_every_steps: int = 25
    progress_bar: bool = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.output_dir, str | os.PathLike) or not str(self.output_dir):
            v.fail(owner, "output_dir", self.output_dir, "must be a non-empty path")
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        v.check_int(owner, "epochs", self.epochs, minimum=1)
        _check_optional_int(owner, "max_steps", self.max_steps, minimum=1)
        v.check_int(owner, "seed", self.seed, minimum=0)
        _check_optional_int(owner, "checkpoint_every_steps", self.checkpoint_every_steps, minimum=1)
        _check_optional_int(
            owner, "checkpoint_every_epochs", self.checkpoint_every_epochs, minimum=1
        )
        _check_optional_minutes(owner, "checkpoint_every_minutes", self.checkpoint_every_minutes)
        v.check_int(owner, "max_to_keep", self.max_to_keep, minimum=1)
        _check_bool(owner, "async_checkpoints", self.async_checkpoints)
        _check_bool(owner, "resume", self.resume)
        if not isinstance(self.monitor, str) or not self.monitor:
            v.fail(owner, "monitor", self.monitor, "must name a metric, e.g. 'loss' or 'fid'")
        v.check_choice(owner, "mode", self.mode, ("min", "max"))
        _check_optional_int(owner, "patience", self.patience, minimum=1)
        v.check_float(owner, "min_delta", self.min_delta, low=0.0)
        _check_optional_int(owner, "sample_every_epochs", self.sample_every_epochs, minimum=1)
        v.check_int(owner, "num_samples", self.num_samples, minimum=1)
        v.check_choice(owner, "sampler", self.sampler, SCHEDULERS)
        v.check_int(owner, "sampling_steps", self.sampling_steps, minimum=1)
        _check_bool(owner, "final_samples", self.final_samples)
        _check_optional_int(owner, "evaluate_every_epochs", self.evaluate_every_epochs, minimum=1)
        _check_optional_int(owner, "evaluate_every_steps", self.evaluate_every_steps, minimum=1)
        _check_optional_minutes(owner, "evaluate_every_minutes", self.evaluate_every_minutes)
        v.check_int(owner, "log_every_steps", self.log_every_steps, minimum=1)
        _check_bool(owner, "progress_bar", self.progress_bar)

    @property
    def output_path(self) -> Path:
        """``output_dir`` as a :class:`~pathlib.Path`."""
        return Path(self.output_dir)

    @property
    def checkpoint_dir(self) -> Path:
        """Where the training checkpoints go."""
        return self.output_path / "checkpoints"

    @property
    def best_model_dir(self) -> Path:
        """Where the best model is exported."""
        return self.output_path / "best_model"

    @property
    def samples_dir(self) -> Path:
        """Where sample grids, noising grids and the training curve go."""
        return self.output_path / "samples"
