"""GANTrainer: one compiled step updates both networks (each by its own optimizer) and the EMA."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from artifex.generative_models.core.configuration.gan_config import GANConfig
from artifex.generative_models.models.gan import Discriminator, Generator
from artifex.generative_models.training.checkpointing import TrainingCheckpointer, load_model
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.trainers.gan_trainer import GANTrainer, GANTrainingConfig

TINY = GANConfig(
    input_shape=(8, 8, 1), latent_dim=4, generator_dims=(8, 4), discriminator_dims=(4, 8)
)
METRICS = {"loss", "g_loss", "d_loss", "d_real", "d_fake", "r1"}
# One trainer, one optax transform and so one compiled step for the tests of the default
# configuration: the transform is static (part of the program), the learning rate is
# optimizer state (inject_hyperparams), so every learning rate runs the same program.
TRAINER = GANTrainer(GANTrainingConfig(ema_decay=0.1))
TRACES: list[int] = []  # one entry per trace of STEP


def counted_step(*args):
    TRACES.append(1)
    return TRAINER.train_step(*args)


STEP = nnx.jit(counted_step)
ADAM = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2, b1=0.5)


def adam(model: nnx.Module, learning_rate: float) -> nnx.Optimizer:
    optimizer = nnx.Optimizer(model, ADAM, wrt=nnx.Param)
    optimizer.opt_state.hyperparams["learning_rate"][...] = learning_rate
    return optimizer


def make_state(trainer=TRAINER, config=TINY, g_lr=1e-2, d_lr=1e-2, seed=0) -> tuple:
    generator = Generator(config, rngs=nnx.Rngs(seed))
    discriminator = Discriminator(config, rngs=nnx.Rngs(seed + 1))
    state = trainer.init_state(
        generator, discriminator, adam(generator, g_lr), adam(discriminator, d_lr)
    )
    return state, generator, discriminator


def batch(n: int = 8) -> dict:
    images = np.random.default_rng(0).uniform(-1, 1, (n, 8, 8, 1)).astype(np.float32)
    return {"image": jnp.asarray(images), "label": jnp.zeros(n, jnp.int32)}


def params(module: nnx.Module) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(module, nnx.Param))]


def changed(before: list, after: list) -> list[bool]:
    return [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]


def test_one_step_updates_both_networks_and_counts_once():
    state, generator, discriminator = make_state()
    g0, d0 = params(generator), params(discriminator)
    metrics = STEP(state, batch(), jax.random.key(0))
    assert set(metrics) == METRICS
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert float(metrics["loss"]) == float(metrics["g_loss"])
    assert float(metrics["r1"]) == 0.0  # r1_gamma = 0: off
    assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1
    assert all(changed(g0, params(generator))) and all(changed(d0, params(discriminator)))
    assert int(state.step[...]) == 1 and int(state.ema_count[...]) == 1
    assert int(state.optimizers["generator"].step[...]) == 1
    assert int(state.optimizers["discriminator"].step[...]) == 1


def test_each_optimizer_trains_only_its_own_network():
    # A zero learning rate freezes one network: the other optimizer must not move it.
    state, generator, discriminator = make_state(g_lr=0.0)
    g0, d0 = params(generator), params(discriminator)
    STEP(state, batch(), jax.random.key(1))
    assert not any(changed(g0, params(generator)))
    assert all(changed(d0, params(discriminator)))

    state, generator, discriminator = make_state(d_lr=0.0)
    g0, d0 = params(generator), params(discriminator)
    STEP(state, batch(), jax.random.key(1))
    assert all(changed(g0, params(generator)))
    assert not any(changed(d0, params(discriminator)))


def test_the_step_is_one_program_and_reproducible():
    runs = []
    for _ in range(2):
        state, generator, _ = make_state()
        losses = [float(STEP(state, batch(), jax.random.key(i))["d_loss"]) for i in range(3)]
        runs.append((losses, params(generator)))
    assert len(TRACES) == 1  # every state of this module, every step: one compiled program
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_generate_uses_the_ema_generator():
    state, generator, _ = make_state()
    key = jax.random.key(5)
    # Before any EMA update, generate samples the generator itself.
    np.testing.assert_array_equal(
        np.asarray(TRAINER.generate(state, 4, key)), np.asarray(generator.sample(4, key=key))
    )
    after_first = params(generator)
    STEP(state, batch(), jax.random.key(0))  # the first EMA update copies the weights
    g1 = params(generator)
    STEP(state, batch(), jax.random.key(1))
    g2 = params(generator)
    ema = state.ema["generator"]
    # Second update: decay min(ema_decay, (1 + 1) / (10 + 1)) = min(0.1, 2/11) = ema_decay.
    decay = 0.1
    for e, a, b in zip(params(ema), g1, g2, strict=True):
        np.testing.assert_allclose(e, decay * a + (1 - decay) * b, rtol=1e-5, atol=1e-7)
    assert any(changed(after_first, g1))
    samples = np.asarray(TRAINER.generate(state, 4, key))
    np.testing.assert_array_equal(samples, np.asarray(ema.sample(4, key=key)))
    assert not np.allclose(samples, np.asarray(generator.sample(4, key=key)))
    assert samples.shape == (4, 8, 8, 1) and np.abs(samples).max() <= 1
    # The EMA copy samples with the generator's BatchNorm running statistics.
    np.testing.assert_array_equal(
        np.asarray(ema.project_norm.mean[...]), np.asarray(generator.project_norm.mean[...])
    )
    with pytest.raises(TypeError, match="no sampling options"):
        TRAINER.generate(state, 4, key, steps=10)


def test_every_training_option_is_read():
    config = GANTrainingConfig(
        loss="hinge", r1_gamma=5.0, discriminator_steps=2, ema_decay=0.9, ema_update_every=2
    )
    trainer = GANTrainer(config)
    spectral = dataclasses.replace(TINY, spectral_norm=True, generator_norm="group")
    # Frozen weights (zero learning rates), so that the step's losses can be recomputed.
    state, generator, discriminator = make_state(trainer, spectral, g_lr=0.0, d_lr=0.0)
    u0 = [np.asarray(layer.u[...]) for layer in discriminator.convs]
    step = nnx.jit(trainer.train_step)
    metrics = step(state, batch(), jax.random.key(3))
    # Hinge: g_loss = -E[D(G(z))] with the step's last latents and the iterated u.
    z = jax.random.normal(jax.random.split(jax.random.key(3), 3)[-1], (8, 4))
    expected = -float(jnp.mean(discriminator(generator(z, train=True))))
    np.testing.assert_allclose(float(metrics["g_loss"]), expected, rtol=1e-4, atol=1e-6)
    assert float(metrics["r1"]) > 0
    for i in range(2):
        step(state, batch(), jax.random.key(i))
    assert int(state.optimizers["discriminator"].step[...]) == 6  # 2 updates per step
    assert int(state.optimizers["generator"].step[...]) == 3
    assert int(state.ema_count[...]) == 2  # steps 0 and 2
    assert all(changed(u0, [np.asarray(layer.u[...]) for layer in discriminator.convs]))

    with pytest.raises(ValueError, match="GANTrainingConfig.loss='wgan' is not supported"):
        GANTrainingConfig(loss="wgan")
    for field, value in [
        ("r1_gamma", -1.0),
        ("discriminator_steps", 0),
        ("ema_decay", 1.0),
        ("ema_update_every", 0),
    ]:
        with pytest.raises(ValueError, match=f"GANTrainingConfig.{field}="):
            GANTrainingConfig(**{field: value})


def test_a_batch_without_images_is_refused():
    state, _, _ = make_state()
    with pytest.raises(KeyError, match="batch has no 'image' entry"):
        TRAINER.train_step(state, {"images": batch()["image"]}, jax.random.key(0))
    with pytest.raises(ValueError, match=r"batch\['image'\] has shape \(8, 8, 8, 3\)"):
        TRAINER.train_step(state, {"image": jnp.zeros((8, 8, 8, 3))}, jax.random.key(0))


def test_mismatched_networks_are_refused():
    generator = Generator(TINY, rngs=nnx.Rngs(0))
    other = dataclasses.replace(TINY, input_shape=(16, 16, 1))
    discriminator = Discriminator(other, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="same GANConfig"):
        TRAINER.init_state(
            generator, discriminator, adam(generator, 1e-3), adam(discriminator, 1e-3)
        )


def test_fit_trains_evaluates_and_checkpoints(tmp_path, make_iterator):
    state, _, _ = make_state()
    scores = iter([3.0, 1.0, 2.0])

    def evaluate(model):
        assert isinstance(model, Generator)
        return {"fid": next(scores)}

    config = FitConfig(
        output_dir=tmp_path,
        epochs=1,
        max_steps=3,
        monitor="fid",
        mode="min",
        evaluate_every_steps=1,
        evaluate_every_epochs=None,
        patience=None,
        progress_bar=False,
        final_samples=True,
    )
    result = fit(TRAINER, state, make_iterator(), config, evaluate=evaluate)
    assert result.global_step == 3 and int(state.step[...]) == 3
    assert [e["fid"] for e in result.evaluations] == [3.0, 1.0, 2.0]
    assert result.best_value == 1.0
    assert TrainingCheckpointer(tmp_path / "checkpoints").all_steps() == [3]
    best = load_model(tmp_path / "best_model")  # the EMA generator of step 2
    assert isinstance(best, Generator) and best.config == TINY
    assert (tmp_path / "samples" / "samples_final.png").is_file()
    assert (tmp_path / "samples" / "training_curve.png").is_file()
