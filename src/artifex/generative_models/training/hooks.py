"""Hooks: everything ``fit`` does around the steps, each a small class.

A hook overrides any of these methods; each gets the :class:`~artifex.generative_models.
training.fit.FitRun` (``run.state``, ``run.global_step``, ``run.epoch``, ``run.history``,
``run.config``, ``run.save()``, ``run.generate(n)``, ``run.request_stop(reason)``):

- ``on_start(run)``: before the first step (after a resume);
- ``on_step(run, metrics)``: after every step, with the metrics still on the device (keep it
  cheap: reading them would wait for the device at every step);
- ``on_log(run, record)``: every ``log_every_steps`` steps, with host values
  ``{"step", "loss", "grad_norm", "lr", ...}``;
- ``on_epoch_end(run, record)``: ``{"epoch", "step", "loss"}`` with the epoch's mean loss;
- ``on_evaluation(run, record)``: ``{"epoch", "step", **metrics}`` after each evaluation;
- ``on_end(run)``: after the last step, before the final checkpoint.

A hook whose ``get_state()`` returns a JSON-serialisable value has it saved in every checkpoint
and handed back to ``set_state`` on resume, so it continues as if never interrupted. A hook in a
few lines::

    class PrintLoss(Hook):
        def on_log(self, run, record):
            print(f"step {record['step']}: {record['loss']:.4f}")

    fit(trainer, state, data, config, hooks=[PrintLoss()])
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from artifex.generative_models.training.checkpointing import export_best_model, model_metadata
from artifex.generative_models.training.fit_config import FitConfig

logger = logging.getLogger("artifex")


class Hook:
    """Base class: every method does nothing. ``name`` keys the hook's saved state."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_start(self, run: Any) -> None: ...

    def on_step(self, run: Any, metrics: Any) -> None: ...

    def on_log(self, run: Any, record: dict[str, Any]) -> None: ...

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None: ...

    def on_evaluation(self, run: Any, record: dict[str, Any]) -> None: ...

    def on_end(self, run: Any) -> None: ...

    def get_state(self) -> Any:
        return None

    def set_state(self, state: Any) -> None: ...


def _due(every: int | None, count: int) -> bool:
    return every is not None and count > 0 and count % every == 0


class Every:
    """Whether an action is due, by count and/or by wall-clock minutes since it last ran."""

    def __init__(self, count: int | None = None, minutes: float | None = None) -> None:
        self.count, self.minutes = count, minutes
        self.last = time.monotonic()

    def __call__(self, n: int) -> bool:
        due = _due(self.count, n) or (
            self.minutes is not None and time.monotonic() - self.last >= 60.0 * self.minutes
        )
        if due:
            self.last = time.monotonic()
        return due


class Checkpoint(Hook):
    """Checkpoint every ``every_steps`` steps, ``every_minutes`` minutes and ``every_epochs``
    epochs; the last step is always checkpointed (``run.save`` skips a step saved already)."""

    def __init__(
        self,
        every_steps: int | None = None,
        every_epochs: int | None = 1,
        every_minutes: float | None = None,
    ) -> None:
        self.steps = Every(every_steps, every_minutes)
        self.every_epochs = every_epochs

    def on_step(self, run: Any, metrics: Any) -> None:
        if self.steps(run.global_step):
            run.save()

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if _due(self.every_epochs, record["epoch"]):
            run.save()


class _Monitored(Hook):
    """Watches one metric: the epoch loss (``"loss"``) or an evaluation metric."""

    def __init__(self, monitor: str = "loss", mode: str = "min", min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r} must be 'min' (lower is better) or 'max'")
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def improves(self, value: float) -> bool:
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if self.monitor == "loss":
            self.observe(run, record)

    def on_evaluation(self, run: Any, record: dict[str, Any]) -> None:
        if self.monitor != "loss" and self.monitor in record:
            self.observe(run, record)

    def observe(self, run: Any, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def get_state(self) -> Any:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def set_state(self, state: Any) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class BestModel(_Monitored):
    """Export the sampling model (EMA weights if any) to ``directory`` whenever ``monitor``
    improves by more than ``min_delta`` (``mode="min"``: lower is better, e.g. FID)."""

    name = "best_model"

    def __init__(self, directory: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(directory)

    def observe(self, run: Any, record: dict[str, Any]) -> None:
        value = float(record[self.monitor])
        if not self.improves(value):
            return
        self.best, self.best_epoch = value, int(record["epoch"])
        model = run.state.sample_model()
        export_best_model(
            self.directory,
            model,
            step=run.global_step,
            metadata={
                "epoch": self.best_epoch,
                self.monitor: value,
                "ema_weights": model is not run.state.models[run.state.primary],
                **model_metadata(model),
            },
        )


class EarlyStopping(_Monitored):
    """Stop after ``patience`` checks in a row without an improvement of ``monitor`` by more
    than ``min_delta`` (checks are epochs for the loss, evaluations for other metrics)."""

    name = "early_stopping"

    def __init__(self, patience: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patience, self.bad = int(patience), 0

    def observe(self, run: Any, record: dict[str, Any]) -> None:
        value = float(record[self.monitor])
        if self.improves(value):
            self.best, self.best_epoch, self.bad = value, int(record["epoch"]), 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            run.request_stop(f"Early stopping at epoch {record['epoch']}")

    def get_state(self) -> Any:
        return {**super().get_state(), "bad": self.bad}

    def set_state(self, state: Any) -> None:
        super().set_state(state)
        self.bad = state["bad"]


class Evaluate(Hook):
    """Call ``evaluate(model) -> {metric: value}`` every ``every_epochs`` epochs, every
    ``every_steps`` steps or every ``every_minutes`` minutes, with the sampling model."""

    def __init__(
        self,
        evaluate: Any,
        every_epochs: int | None = 1,
        every_steps: int | None = None,
        every_minutes: float | None = None,
    ) -> None:
        self.evaluate = evaluate
        self.every_epochs = every_epochs
        self.steps = Every(every_steps, every_minutes)

    def run_evaluation(self, run: Any, epoch: int) -> None:
        metrics = {k: float(v) for k, v in self.evaluate(run.state.sample_model()).items()}
        record = {"epoch": epoch, "step": run.global_step, **metrics}
        run.history.evaluations.append(record)
        logger.info(
            f"epoch {epoch} evaluation: "
            + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items())
        )
        run.emit("on_evaluation", record)

    def on_step(self, run: Any, metrics: Any) -> None:
        if self.steps(run.global_step):
            self.run_evaluation(run, run.epoch)

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if _due(self.every_epochs, record["epoch"]):
            self.run_evaluation(run, record["epoch"])


def can_plot() -> bool:
    """Whether matplotlib is installed; without it, figures are skipped with one warning."""
    if can_plot.answer is None:
        can_plot.answer = importlib.util.find_spec("matplotlib") is not None
        if not can_plot.answer:
            logger.warning(
                "matplotlib is not installed: sample grids and the training curve are skipped "
                "(pip install 'artifex[examples]' to draw them)"
            )
    return can_plot.answer


can_plot.answer = None


class SampleGrid(Hook):
    """A grid of ``count`` samples every ``every_epochs`` epochs and, with ``final``, after
    training; ``options`` go to ``trainer.generate`` (e.g. ``scheduler``, ``steps``)."""

    def __init__(
        self,
        directory: str | Path,
        every_epochs: int | None = None,
        *,
        final: bool = True,
        count: int = 16,
        final_count: int = 16,
        **options: Any,
    ) -> None:
        self.directory, self.every_epochs, self.final = Path(directory), every_epochs, final
        self.count, self.final_count, self.options = count, final_count, options

    def save(self, run: Any, filename: str, title: str, count: int) -> None:
        if not can_plot():
            return
        from artifex.visualization import save_image_grid

        images = np.asarray(run.generate(count, **self.options))
        run.files.append(save_image_grid(images, self.directory / filename, title=title))

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if _due(self.every_epochs, record["epoch"]):
            epoch = record["epoch"]
            self.save(run, f"samples_epoch{epoch}.png", f"epoch {epoch}", self.count)

    def on_end(self, run: Any) -> None:
        if self.final and run.global_step > 0:
            detail = ", ".join(f"{k}={v}" for k, v in self.options.items())
            title = f"step {run.global_step}" + (f" ({detail})" if detail else "")
            self.save(run, "samples_final.png", title, self.final_count)


class NoisingGrid(Hook):
    """Diffusion: the forward process applied to a few training images, every ``every_epochs``
    epochs (needs a trainer with a ``noise_schedule``)."""

    def __init__(self, directory: str | Path, every_epochs: int, seed: int = 0) -> None:
        self.directory, self.every_epochs, self.seed = Path(directory), every_epochs, seed
        self.preview: np.ndarray | None = None

    def on_start(self, run: Any) -> None:
        state = run.data.get_state()
        self.preview = np.asarray(next(iter(run.data.epoch()))["image"][:4])
        run.data.set_state(state)

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if not _due(self.every_epochs, record["epoch"]) or not can_plot():
            return
        import jax

        from artifex.visualization import save_noising_grid

        schedule = run.trainer.noise_schedule
        timesteps = sorted({int(t) for t in np.linspace(0, schedule.num_timesteps - 1, 6)})
        path = self.directory / f"noising_epoch{record['epoch']}.png"
        key = jax.random.key(self.seed)
        run.files.append(save_noising_grid(self.preview, schedule, timesteps, path, key=key))


class TrainingCurve(Hook):
    """The loss (and learning rate) curve, refreshed every ``every_epochs`` epochs and at the
    end."""

    def __init__(self, path: str | Path, every_epochs: int | None = None) -> None:
        self.path, self.every_epochs = Path(path), every_epochs

    def draw(self, run: Any) -> None:
        losses = run.history.losses
        if not losses or not can_plot():
            return
        from artifex.generative_models.training.fit import learning_rate_history
        from artifex.visualization import plot_training_curve

        rates = learning_rate_history(run.learning_rate, len(losses))
        window = max(1, min(100, len(losses) // 5))
        run.files.append(
            plot_training_curve(losses, self.path, learning_rates=rates, window=window)
        )

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if _due(self.every_epochs, record["epoch"]):
            self.draw(run)

    def on_end(self, run: Any) -> None:
        self.draw(run)


class MetricsWriter(Hook):
    """Every log, epoch end and evaluation as one JSON line in ``path``; also as TensorBoard
    scalars under ``tensorboard_dir`` when ``tensorboardX`` is installed."""

    def __init__(self, path: str | Path, tensorboard_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.tensorboard_dir = None if tensorboard_dir is None else Path(tensorboard_dir)
        self.writer: Any = None

    def on_start(self, run: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        import jax

        if (
            jax.process_index() == 0
            and self.tensorboard_dir is not None
            and importlib.util.find_spec("tensorboardX")
        ):
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(self.tensorboard_dir))

    def write(self, kind: str, record: dict[str, Any]) -> None:
        import jax

        if jax.process_index() != 0:  # one writer on a shared file system
            return
        with self.path.open("a") as stream:
            stream.write(json.dumps({"kind": kind, "time": time.time(), **record}) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, int | float):
                    self.writer.add_scalar(f"{kind}/{key}", value, record["step"])

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        self.write("train", record)

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        self.write("epoch", record)

    def on_evaluation(self, run: Any, record: dict[str, Any]) -> None:
        self.write("evaluation", record)

    def on_end(self, run: Any) -> None:
        if self.writer is not None:
            self.writer.close()


class ProgressBar(Hook):
    """A tqdm bar with the latest loss and the steps per second (off when not a terminal)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.last: tuple[float, int] | None = None

    def on_start(self, run: Any) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=run.total_steps,
            initial=run.global_step,
            desc="training",
            mininterval=0.5,
            disable=None,  # off when stderr is not a terminal
        )
        self.last = (time.perf_counter(), run.global_step)

    def on_step(self, run: Any, metrics: Any) -> None:
        self.bar.update(1)

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        now, step = time.perf_counter(), record["step"]
        postfix = {"loss": f"{record['loss']:.4f}"}
        if self.last is not None and step > self.last[1]:
            postfix["steps/s"] = f"{(step - self.last[1]) / (now - self.last[0]):.2f}"
        if "lr" in record:
            postfix["lr"] = f"{record['lr']:.2e}"
        self.last = (now, step)
        self.bar.set_postfix(postfix, refresh=False)

    def on_end(self, run: Any) -> None:
        self.bar.close()


def default_hooks(config: FitConfig, trainer: Any, evaluate: Any = None) -> list[Hook]:
    """The hooks ``config`` asks for, in the order they must run."""
    hooks: list[Hook] = []
    if evaluate is not None:
        hooks.append(
            Evaluate(
                evaluate,
                every_epochs=config.evaluate_every_epochs,
                every_steps=config.evaluate_every_steps,
                every_minutes=config.evaluate_every_minutes,
            )
        )
    monitored = {"monitor": config.monitor, "mode": config.mode, "min_delta": config.min_delta}
    hooks.append(BestModel(config.best_model_dir, **monitored))
    if config.patience is not None:
        hooks.append(EarlyStopping(config.patience, **monitored))
    # FitConfig's sampler options are the diffusion samplers'; other families sample as
    # their trainer's ``generate`` does by default.
    diffusion = hasattr(trainer, "noise_schedule")
    options = {"scheduler": config.sampler, "steps": config.sampling_steps} if diffusion else {}
    if config.sample_every_epochs is not None or config.final_samples:
        hooks.append(
            SampleGrid(
                config.samples_dir,
                config.sample_every_epochs,
                final=config.final_samples,
                count=config.num_samples,
                **options,
            )
        )
    if config.sample_every_epochs is not None and diffusion:
        hooks.append(NoisingGrid(config.samples_dir, config.sample_every_epochs, config.seed))
    if config.sample_every_epochs is not None or config.final_samples:
        hooks.append(
            TrainingCurve(config.samples_dir / "training_curve.png", config.sample_every_epochs)
        )
    hooks.append(
        MetricsWriter(config.output_path / "metrics.jsonl", config.output_path / "tensorboard")
    )
    if config.progress_bar:
        hooks.append(ProgressBar())
    hooks.append(
        Checkpoint(
            config.checkpoint_every_steps,
            config.checkpoint_every_epochs,
            config.checkpoint_every_minutes,
        )
    )
    return hooks
