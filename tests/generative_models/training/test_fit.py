"""fit: exact resume, early stopping, the NaN guard, best model, figures, evaluation, hooks."""

from __future__ import annotations

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.training.checkpointing import (
    TrainingCheckpointer,
    all_finite,
    flat_arrays,
    load_best_model,
)
from artifex.generative_models.training.fit import NonFiniteLossError, fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.hooks import Hook

QUIET = dict(progress_bar=False, final_samples=False, patience=None, checkpoint_every_epochs=None)


def snapshot(state) -> dict[str, np.ndarray]:
    """Every array a run ends with: model, optimizer, EMA model and counters."""
    return flat_arrays(nnx.state(state))


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_array_equal(a[path], b[path], err_msg=path)


def run(micro_model, make_optimizer, make_iterator, trainer, config, **kwargs):
    model = micro_model(0)
    state = trainer.init_state(model, make_optimizer(model))
    result = fit(trainer, state, make_iterator(seed=0), config, **kwargs)
    return result, model, state


def test_interrupted_and_resumed_run_is_bit_identical(
    tmp_path, micro_model, make_optimizer, make_iterator, trainer
):
    config = FitConfig(
        output_dir=tmp_path / "straight", epochs=2, checkpoint_every_steps=3, **QUIET
    )
    straight, model, state = run(
        micro_model, make_optimizer, make_iterator, trainer, config, learning_rate=1e-3
    )
    assert straight.global_step == 8 and straight.epochs_completed == 2
    assert straight.losses.shape == (8,) and np.isfinite(straight.losses).all()
    np.testing.assert_array_equal(straight.learning_rates, np.full(8, 1e-3))
    expected = snapshot(state)
    assert int(state.step[...]) == 8 and int(state.ema_count[...]) == 4  # every 2nd step

    # The same run stopped after step 5 (mid-epoch 2), then continued by a fresh state.
    resumed_dir = tmp_path / "resumed"
    first, _, _ = run(
        micro_model,
        make_optimizer,
        make_iterator,
        trainer,
        dataclasses.replace(config, output_dir=resumed_dir, max_steps=5),
    )
    assert first.global_step == 5 and first.epochs_completed == 1
    assert TrainingCheckpointer(resumed_dir / "checkpoints").all_steps() == [3, 5]
    second, model, state = run(
        micro_model,
        make_optimizer,
        make_iterator,
        trainer,
        dataclasses.replace(config, output_dir=resumed_dir),
    )
    assert second.resumed_from == 5 and second.global_step == 8
    assert_identical(snapshot(state), expected)
    np.testing.assert_array_equal(second.losses, straight.losses)
    assert second.epoch_losses == straight.epoch_losses
    history = json.loads((resumed_dir / "history.json").read_text())
    assert history["global_step"] == 8 and history["losses"] == straight.losses.tolist()

    with pytest.raises(FileExistsError, match="resume=True"):
        run(
            micro_model,
            make_optimizer,
            make_iterator,
            trainer,
            dataclasses.replace(config, output_dir=resumed_dir, resume=False),
        )


def test_early_stopping_on_a_plateau_and_best_model(
    tmp_path, capsys, micro_model, make_optimizer, make_iterator, trainer
):
    ema_at_epoch = {}

    def evaluate(model):
        ema_at_epoch[len(ema_at_epoch) + 1] = flat_arrays(nnx.state(model, nnx.Param))
        return {"mean_param": float(jnp.mean(model.backbone.conv_in.kernel[...]))}

    # No epoch can improve on the first by min_delta=100: a plateau from epoch 2 on.
    config = FitConfig(
        output_dir=tmp_path,
        epochs=6,
        min_delta=100.0,
        patience=2,
        progress_bar=False,
        final_samples=False,
    )
    result, model, _ = run(
        micro_model, make_optimizer, make_iterator, trainer, config, evaluate=evaluate
    )
    assert "[artifex] Early stopping at epoch 3" in capsys.readouterr().err
    assert result.stopped_early and result.epochs_completed == 3 and result.global_step == 12
    assert result.monitor == "loss"
    assert result.best_epoch == 1 and result.best_value == result.epoch_losses[0]
    assert [e["epoch"] for e in result.evaluations] == [1, 2, 3]
    assert all(np.isfinite(e["mean_param"]) for e in result.evaluations)

    # The export is the EMA model of epoch 1 (the one evaluate saw), with its epoch and loss.
    loaded = micro_model(1)
    metadata = load_best_model(tmp_path / "best_model", loaded)
    assert metadata["epoch"] == 1 and metadata["loss"] == result.epoch_losses[0]
    assert metadata["ema_weights"] and metadata["step"] == 4
    assert type(model.config).from_dict(metadata["config"]) == model.config  # rebuilds it
    assert_identical(flat_arrays(nnx.state(loaded, nnx.Param)), ema_at_epoch[1])

    # Resuming a run that stopped early trains no further.
    again, _, _ = run(micro_model, make_optimizer, make_iterator, trainer, config)
    assert again.resumed_from == 12 and again.global_step == 12 and again.stopped_early


class PoisonedIterator:
    """Forwards an iterator, but the batch of training step ``poison_step`` is all NaN."""

    def __init__(self, inner, poison_step: int):
        self.inner, self.poison_step, self.count = inner, poison_step, 0
        self.batches_per_epoch = inner.batches_per_epoch

    @property
    def current_epoch(self) -> int:
        return self.inner.current_epoch

    def epoch(self, index=None):
        for batch in self.inner.epoch(index):
            self.count += 1
            if self.count == self.poison_step:
                batch = {**batch, "image": batch["image"] * jnp.nan}
            yield batch

    def get_state(self):
        return self.inner.get_state()

    def set_state(self, state):
        self.inner.set_state(state)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path, micro_model, make_optimizer, make_iterator, trainer
):
    model = micro_model(0)
    state = trainer.init_state(model, make_optimizer(model))
    config = FitConfig(output_dir=tmp_path, epochs=3, checkpoint_every_steps=2, **QUIET)
    with pytest.raises(NonFiniteLossError, match="at step 5 \\(epoch 2\\)") as error:
        fit(trainer, state, PoisonedIterator(make_iterator(), 5), config)
    assert error.value.step == 5 and error.value.epoch == 2
    assert error.value.last_checkpoint == 4
    assert "last good checkpoint is step 4" in str(error.value)
    assert not all_finite(nnx.state(model, nnx.Param))  # the NaN reached the weights
    checkpointer = TrainingCheckpointer(tmp_path / "checkpoints")
    assert checkpointer.all_steps() == [2, 4]  # step 6 was due but never written
    restored = checkpointer.restore_latest(state)
    assert restored.step == 4 and int(state.step[...]) == 4
    assert all_finite(nnx.state(state))


def test_sample_grids_noising_grids_and_curves(
    tmp_path, micro_model, make_optimizer, make_iterator, trainer
):
    import matplotlib.image

    config = FitConfig(
        output_dir=tmp_path,
        epochs=1,
        sample_every_epochs=1,
        num_samples=16,
        sampling_steps=2,
        progress_bar=False,
        checkpoint_every_epochs=None,
    )
    result, _, _ = run(
        micro_model,
        make_optimizer,
        make_iterator,
        trainer,
        config,
        learning_rate=lambda step: 1e-3 * (step + 1),
    )
    samples = tmp_path / "samples"
    names = [path.name for path in result.files]
    assert names == [
        "samples_epoch1.png",
        "noising_epoch1.png",
        "training_curve.png",
        "samples_final.png",
        "training_curve.png",
    ]
    for name in set(names):
        image = matplotlib.image.imread(samples / name)
        assert image.ndim == 3 and np.ptp(image[..., :3]) > 0.2, name  # drawn, not blank
    np.testing.assert_allclose(result.learning_rates, 1e-3 * np.arange(1, 5))


def test_fit_config_validation():
    with pytest.raises(ValueError, match=r"FitConfig.patience=0 must be an integer >= 1"):
        FitConfig(patience=0)
    with pytest.raises(ValueError, match=r"FitConfig.sampler='lms' is not supported"):
        FitConfig(sampler="lms")
    with pytest.raises(ValueError, match=r"FitConfig.min_delta=-1.0 must be a finite number in"):
        FitConfig(min_delta=-1.0)
    with pytest.raises(ValueError, match=r"FitConfig.checkpoint_every_steps=True"):
        FitConfig(checkpoint_every_steps=True)
    with pytest.raises(ValueError, match=r"FitConfig.mode='lowest' is not supported"):
        FitConfig(mode="lowest")
    with pytest.raises(ValueError, match=r"FitConfig.checkpoint_every_minutes=0"):
        FitConfig(checkpoint_every_minutes=0)
    config = FitConfig(output_dir="runs/a", patience=None, max_steps=None)
    assert config.checkpoint_dir.as_posix() == "runs/a/checkpoints"
    assert config.best_model_dir.name == "best_model" and config.samples_dir.name == "samples"


def test_best_model_and_early_stopping_follow_any_metric_and_mode(
    tmp_path, micro_model, make_optimizer, make_iterator, trainer
):
    """Monitoring an evaluation metric where higher is better: the best is the maximum."""
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.8])

    def evaluate(model):
        return {"score": next(scores)}

    config = FitConfig(
        output_dir=tmp_path,
        epochs=5,
        monitor="score",
        mode="max",
        min_delta=0.0,
        patience=2,
        progress_bar=False,
        final_samples=False,
    )
    result, _, _ = run(
        micro_model, make_optimizer, make_iterator, trainer, config, evaluate=evaluate
    )
    assert result.monitor == "score" and result.best_value == 0.9 and result.best_epoch == 2
    assert result.stopped_early and result.epochs_completed == 4  # 0.7, 0.6: two without gain
    metadata = load_best_model(tmp_path / "best_model", micro_model(1))
    assert metadata["epoch"] == 2 and metadata["score"] == 0.9
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["score"] for r in lines if r["kind"] == "evaluation"] == [0.5, 0.9, 0.7, 0.6]
    assert [r["epoch"] for r in lines if r["kind"] == "epoch"] == [1, 2, 3, 4]


def test_a_custom_hook_sees_every_event_in_order(
    tmp_path, micro_model, make_optimizer, make_iterator, trainer
):
    events = []

    class Record(Hook):
        def on_start(self, run):
            events.append(("start", run.global_step))

        def on_step(self, run, metrics):
            events.append(("step", run.global_step))

        def on_log(self, run, record):
            events.append(("log", record["step"]))

        def on_epoch_end(self, run, record):
            events.append(("epoch", record["epoch"]))

        def on_end(self, run):
            events.append(("end", run.global_step))

    config = FitConfig(output_dir=tmp_path, epochs=1, log_every_steps=2, **QUIET)
    run(micro_model, make_optimizer, make_iterator, trainer, config, hooks=[Record()])
    assert events == [
        ("start", 0),
        ("step", 1),
        ("step", 2),
        ("log", 2),
        ("step", 3),
        ("step", 4),
        ("log", 4),
        ("epoch", 1),
        ("end", 4),
    ]


def test_fit_takes_a_train_state(tmp_path, micro_model, make_optimizer, make_iterator, trainer):
    model = micro_model(0)
    with pytest.raises(TypeError, match="trainer.init_state"):
        fit(trainer, model, make_iterator(), FitConfig(output_dir=tmp_path, **QUIET))


def test_without_matplotlib_figures_are_skipped_with_one_warning(
    tmp_path, micro_model, make_optimizer, make_iterator, trainer, monkeypatch, capsys
):
    import importlib.util

    from artifex.generative_models.training import hooks

    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "matplotlib" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(hooks.can_plot, "answer", None)
    config = FitConfig(
        output_dir=tmp_path,
        epochs=2,
        sample_every_epochs=1,
        sampling_steps=2,
        progress_bar=False,
        patience=None,
    )
    result, _, _ = run(micro_model, make_optimizer, make_iterator, trainer, config)
    assert result.global_step == 8 and result.files == []
    warnings = [line for line in capsys.readouterr().err.splitlines() if "matplotlib" in line]
    assert warnings == [
        "[artifex] matplotlib is not installed: sample grids and the training curve are "
        "skipped (pip install 'artifex[examples]' to draw them)"
    ]
