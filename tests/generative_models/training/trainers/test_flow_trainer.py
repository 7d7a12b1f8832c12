"""FlowTrainer: the compiled step lowers bits/dim, the state, fit, and the model export."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from artifex.generative_models.core.configuration.flow_config import FlowConfig
from artifex.generative_models.models.flow import FlowModel
from artifex.generative_models.training.checkpointing import flat_arrays, load_model, save_model
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.trainers.flow_trainer import (
    FlowTrainer,
    FlowTrainingConfig,
)

TINY = FlowConfig(input_shape=(8, 8, 1), num_scales=2, steps_per_scale=2, hidden_channels=8)


def stroke_images(n: int = 32, seed: int = 0) -> jax.Array:
    """8x8 'digits' in [-1, 1]: black background, one white bar at a random place."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 8, 8, 1), np.uint8)
    for image in images:
        row, col = rng.integers(1, 7, 2)
        if rng.random() < 0.5:
            image[row, max(col - 2, 0) : col + 2] = 255
        else:
            image[max(row - 2, 0) : row + 2, col] = 255
    return jnp.asarray(images.astype(np.float32) / 127.5 - 1.0)


def setup(config: FlowConfig = TINY, lr: float = 1e-2, seed: int = 0, **training):
    model = FlowModel(config, rngs=nnx.Rngs(seed))
    optimizer = nnx.Optimizer(
        model, optax.chain(optax.clip_by_global_norm(100.0), optax.adam(lr)), wrt=nnx.Param
    )
    return model, optimizer, FlowTrainer(FlowTrainingConfig(**training))


STEPS = 40


@pytest.fixture(scope="module")
def trained():
    """A tiny flow trained STEPS compiled steps on a fixed batch (shared: one compilation)."""
    model, optimizer, trainer = setup(ema_update_every=2, temperature=0.5)
    batch = {"image": stroke_images()}
    state = trainer.init_state(model, optimizer, init_batch=batch)
    traces = []

    def counted_step(*args):
        traces.append(1)
        return trainer.train_step(*args)

    step = nnx.jit(counted_step)
    losses, norms = [], []
    for i in range(STEPS):
        metrics = step(state, batch, jax.random.key(i))
        losses.append(float(metrics["loss"]))
        norms.append(float(metrics["grad_norm"]))
    return dict(
        trainer=trainer, state=state, batch=batch, losses=losses, norms=norms, traces=traces
    )


def test_bits_per_dim_falls_in_a_few_compiled_steps(trained):
    state, losses = trained["state"], trained["losses"]
    assert len(trained["traces"]) == 1  # one XLA program: loss, gradient, update and EMA
    assert np.isfinite(losses).all() and min(trained["norms"]) > 0
    assert int(state.step[...]) == STEPS and int(state.ema_count[...]) == STEPS // 2
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.7 * first, (first, last)  # bits/dim: 2.05 -> 1.19 measured
    # The loss is the bits/dim of the batch: bits_per_dim of the trained model agrees.
    scored = trained["trainer"].bits_per_dim(
        state.model, trained["batch"]["image"], jax.random.key(9)
    )
    assert scored == pytest.approx(losses[-1], abs=0.3)


def test_init_state_runs_the_actnorm_init_once(caplog):
    model, optimizer, trainer = setup()
    batch = {"image": stroke_images()}
    assert not model.initialized
    trainer.init_state(model, optimizer, init_batch=batch)
    assert model.initialized
    first = model.scales[0][0].actnorm.log_scale[...]
    assert np.abs(np.asarray(first)).max() > 0.1  # set from the data, not the identity
    before = flat_arrays(nnx.state(model))
    state = trainer.init_state(model, optimizer, init_batch={"image": stroke_images(seed=1)})
    after = flat_arrays(nnx.state(model))
    for path in before:  # already initialised: a second batch changes nothing
        np.testing.assert_array_equal(before[path], after[path], err_msg=path)
    ema = state.ema["model"].scales[0][0].actnorm.log_scale[...]
    np.testing.assert_array_equal(ema, first)  # the EMA copy starts from the init
    fresh, fresh_optimizer, _ = setup(seed=1)
    trainer.init_state(fresh, fresh_optimizer)
    assert not fresh.initialized and "init_batch" in caplog.text


def test_generate_samples_the_ema_at_the_configured_temperature(trained):
    trainer, state = trained["trainer"], trained["state"]
    assert state.sample_model() is state.ema["model"]
    key = jax.random.key(3)
    images = trainer.generate(state, 16, key)
    assert images.shape == (16, 8, 8, 1)
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    expected = state.ema["model"].sample(16, key=key, temperature=0.5)  # config.temperature
    np.testing.assert_array_equal(images, expected)
    hotter = trainer.generate(state, 16, key, temperature=1.0)
    assert not np.array_equal(np.asarray(hotter), np.asarray(images))


def test_training_config_names_the_bad_field():
    with pytest.raises(ValueError, match=r"FlowTrainingConfig.ema_decay=1.0 must be"):
        FlowTrainingConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match=r"FlowTrainingConfig.ema_update_every=0 must be"):
        FlowTrainingConfig(ema_update_every=0)
    with pytest.raises(ValueError, match=r"FlowTrainingConfig.temperature=-0.1 must be"):
        FlowTrainingConfig(temperature=-0.1)
    with pytest.raises(TypeError, match="FlowModel"):
        FlowTrainer().init_state(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), None)


def test_fit_trains_a_few_steps_and_checkpoints(tmp_path, make_iterator):
    model, optimizer, trainer = setup(lr=3e-3, ema_update_every=1)
    data = make_iterator(seed=0)  # 4 batches of 8 random 8x8 images
    state = trainer.init_state(model, optimizer, init_batch=next(iter(data.epoch())))
    data = make_iterator(seed=0)
    config = FitConfig(
        output_dir=tmp_path, epochs=1, max_steps=3, progress_bar=False, patience=None
    )
    result = fit(trainer, state, data, config, learning_rate=3e-3)
    assert result.global_step == 3 and int(state.step[...]) == 3
    assert result.losses.shape == (3,) and np.isfinite(result.losses).all()
    assert 7.0 < result.losses[0] < 12.0  # random pixels: about 8 bits each
    assert (tmp_path / "checkpoints" / "3").is_dir()
    assert (tmp_path / "samples" / "samples_final.png").is_file()  # trainer.generate ran


def test_save_model_and_load_model_round_trip(tmp_path, trained):
    model = trained["state"].model
    save_model(tmp_path / "flow", model, step=STEPS)
    loaded = load_model(tmp_path / "flow")
    assert isinstance(loaded, FlowModel) and loaded.config == TINY and loaded.initialized
    original, restored = flat_arrays(nnx.state(model)), flat_arrays(nnx.state(loaded))
    assert original.keys() == restored.keys()
    for path in original:  # weights, 1x1 permutations and signs, actnorm init flags
        np.testing.assert_array_equal(original[path], restored[path], err_msg=path)
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1)) - 0.5
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))
