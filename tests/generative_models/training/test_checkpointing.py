"""TrainingCheckpointer: complete round trips, atomic visibility, NaN refusal, best model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.training.checkpointing import (
    TrainingCheckpointer,
    best_model_metadata,
    data_to_keys,
    export_best_model,
    flat_arrays,
    keys_to_data,
    load_best_model,
)


def assert_same(a, b) -> None:
    """Two pytrees hold bit-identical arrays at identical paths."""
    flat_a, flat_b = flat_arrays(a), flat_arrays(b)
    assert flat_a.keys() == flat_b.keys()
    for path, value in flat_a.items():
        np.testing.assert_array_equal(value, flat_b[path], err_msg=path)


def differs(a, b) -> bool:
    flat_a, flat_b = flat_arrays(a), flat_arrays(b)
    return any(not np.array_equal(flat_a[k], flat_b[k]) for k in flat_a)


@pytest.fixture
def trained(micro_model, make_optimizer, make_iterator, trainer):
    """A model, optimizer and EMA after two real steps, and an iterator mid-epoch."""
    model = micro_model(0)
    optimizer = make_optimizer(model)
    iterator = make_iterator(seed=3)
    step = nnx.jit(trainer.train_step)
    for i in range(2):
        step(model, optimizer, next(iterator), jax.random.key(i))
        trainer.update_ema(model)
    return model, optimizer, iterator


def test_key_data_round_trip():
    tree = {"key": jax.random.key(7), "x": jnp.ones(3)}
    data = keys_to_data(tree)
    assert data["key"].dtype == jnp.uint32
    back = data_to_keys(data, tree)
    assert jnp.issubdtype(back["key"].dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(
        jax.random.key_data(back["key"]), jax.random.key_data(tree["key"])
    )


def test_round_trip_restores_everything(
    tmp_path, trained, micro_model, make_optimizer, make_iterator, trainer
):
    model, optimizer, iterator = trained
    ema = trainer.ema_state
    rng_key = jax.random.fold_in(jax.random.key(11), 5)
    iterator_state = iterator.get_state()
    assert iterator_state["batch_index"] == 2
    checkpointer = TrainingCheckpointer(tmp_path, max_to_keep=2)
    checkpointer.save(
        2,
        model,
        optimizer,
        ema_state=ema,
        rng_key=rng_key,
        iterator_state=iterator_state,
        extra={"losses": [0.5, 0.25]},
    )
    checkpointer.close()

    fresh = micro_model(1)
    fresh_optimizer = make_optimizer(fresh)
    assert differs(nnx.state(model), nnx.state(fresh))
    trainer.ema_state = None
    restored = TrainingCheckpointer(tmp_path).restore_latest(
        fresh, fresh_optimizer, trainer=trainer
    )
    assert restored.step == 2
    assert restored.extra == {"losses": [0.5, 0.25]}
    assert_same(nnx.state(fresh), nnx.state(model))  # params and the model's RNG streams
    assert_same(nnx.state(fresh_optimizer), nnx.state(optimizer))
    assert_same(trainer.ema_state.params, ema.params)
    assert int(trainer.ema_state.count) == int(ema.count) == 2
    assert_same(restored.rng_key, rng_key)
    # The restored iterator position yields the very batch the original yields next.
    resumed = make_iterator(seed=0)
    resumed.set_state(restored.iterator_state)
    np.testing.assert_array_equal(next(resumed)["image"], next(iterator)["image"])


def test_restore_latest_is_none_without_checkpoints(tmp_path, micro_model):
    assert TrainingCheckpointer(tmp_path / "empty").restore_latest(micro_model(0)) is None


def test_max_to_keep_and_unfinished_saves_stay_invisible(tmp_path, micro_model):
    model = micro_model(0)
    checkpointer = TrainingCheckpointer(tmp_path, max_to_keep=2)
    for step in (1, 2, 3):
        checkpointer.save(step, model, extra={"step": step})
    assert checkpointer.all_steps() == [2, 3]
    # What a save killed before orbax's final rename leaves behind: a temporary directory.
    partial = tmp_path / "9.orbax-checkpoint-tmp-1234567"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\0" * 16)
    reopened = TrainingCheckpointer(tmp_path, max_to_keep=2)
    assert reopened.latest_step() == 3
    assert reopened.restore_latest(micro_model(1)).extra == {"step": 3}


def test_save_refuses_non_finite_parameters(tmp_path, micro_model):
    model = micro_model(0)
    checkpointer = TrainingCheckpointer(tmp_path)
    checkpointer.save(1, model)
    kernel = model.backbone.conv_in.kernel
    kernel[...] = kernel[...].at[0, 0, 0, 0].set(jnp.nan)
    with pytest.raises(FloatingPointError, match="refusing to save checkpoint 2"):
        checkpointer.save(2, model)
    assert checkpointer.all_steps() == [1]


def test_best_model_export_holds_the_ema_weights(tmp_path, trained, micro_model, trainer):
    model, _, _ = trained
    ema = trainer.ema_state
    export_best_model(
        tmp_path / "best_model", model, step=2, ema_state=ema, metadata={"epoch": 1, "loss": 0.125}
    )
    loaded = micro_model(1)
    metadata = load_best_model(tmp_path / "best_model", loaded)
    assert metadata == {"step": 2, "epoch": 1, "loss": 0.125, "ema_weights": True}
    assert_same(nnx.state(loaded, nnx.Param), ema.params)
    assert differs(nnx.state(loaded, nnx.Param), nnx.state(model, nnx.Param))
    # A better epoch replaces the export.
    export_best_model(tmp_path / "best_model", model, step=4, metadata={"epoch": 2, "loss": 0.1})
    assert load_best_model(tmp_path / "best_model", loaded)["epoch"] == 2
    assert_same(nnx.state(loaded, nnx.Param), nnx.state(model, nnx.Param))
    assert TrainingCheckpointer(tmp_path / "best_model").all_steps() == [4]
    # A resumed run that redoes steps replays its exports: step 2 replaces the later 4.
    export_best_model(tmp_path / "best_model", model, step=2, metadata={"epoch": 1, "loss": 0.2})
    assert TrainingCheckpointer(tmp_path / "best_model").all_steps() == [2]
    with pytest.raises(FileNotFoundError):
        load_best_model(tmp_path / "nothing", loaded)
    assert not (tmp_path / "nothing").exists()  # a wrong path is not created


def test_export_metadata_builds_the_model_before_loading(tmp_path, micro_model):
    """The config stored with an export is enough to rebuild the model and load it, whatever
    RNG streams the new model was built with (exports hold no RNG state)."""
    from artifex.generative_models.core.configuration import DDPMConfig

    model = micro_model(0)
    config = model.config
    export_best_model(tmp_path / "export", model, step=7, metadata={"config": config.to_dict()})
    meta = best_model_metadata(tmp_path / "export")
    assert meta["step"] == 7 and meta["ema_weights"] is False
    rebuilt_config = DDPMConfig.from_dict(meta["config"])  # JSON gave lists, not tuples
    assert rebuilt_config == config
    rebuilt = type(model)(rebuilt_config, rngs=nnx.Rngs(params=5, sample=6, dropout=7))
    load_best_model(tmp_path / "export", rebuilt)
    assert_same(nnx.state(rebuilt, nnx.Param), nnx.state(model, nnx.Param))
    with pytest.raises(FileNotFoundError, match="no best-model export"):
        best_model_metadata(tmp_path / "missing")


def test_save_model_and_load_model_rebuild_the_model_in_two_lines(tmp_path, tiny_model) -> None:
    from artifex.generative_models.training.checkpointing import load_model, save_model

    save_model(tmp_path / "export", tiny_model)
    loaded = load_model(tmp_path / "export")
    assert type(loaded) is type(tiny_model) and loaded.config == tiny_model.config
    original = flat_arrays(nnx.state(tiny_model, nnx.Param))
    for path, value in flat_arrays(nnx.state(loaded, nnx.Param)).items():
        np.testing.assert_array_equal(value, original[path], err_msg=path)


def test_load_model_refuses_types_outside_artifex(tmp_path, tiny_model) -> None:
    import pytest

    from artifex.generative_models.training.checkpointing import _resolve

    with pytest.raises(ValueError, match="is not an artifex class"):
        _resolve("os:system")


def test_a_config_field_added_later_at_its_none_default_is_no_difference():
    """Checkpoints written before ``UNetBackboneConfig.num_classes`` existed still restore
    into unconditional models; a conditional one is a difference, named."""
    from artifex.generative_models.training.checkpointing import first_difference

    old = {"backbone": {"hidden_dims": [8, 16]}}
    assert (
        first_difference(old, {"backbone": {"hidden_dims": (8, 16), "num_classes": None}}) is None
    )
    assert first_difference(old, {"backbone": {"hidden_dims": [8, 16], "num_classes": 10}}) == (
        "backbone.num_classes",
        "(absent)",
        10,
    )
