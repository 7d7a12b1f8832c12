"""DiffusionTrainer: the compiled step learns, is reproducible and reads every field."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from scipy.special import logit, ndtr

from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)


def fixed_images(n: int = 16) -> jax.Array:
    """Smooth, distinct 8x8 patterns in [-1, 1]."""
    yy, xx = np.meshgrid(np.linspace(0, 1, 8), np.linspace(0, 1, 8), indexing="ij")
    imgs = [
        np.sin(np.pi * (1 + i % 4) * xx + i) * np.cos(np.pi * (1 + i // 4) * yy) for i in range(n)
    ]
    return jnp.asarray(np.stack(imgs)[..., None], dtype=jnp.float32)


def setup(model, lr=3e-3, **cfg):
    trainer = DiffusionTrainer(
        create_noise_schedule(model.config.noise_schedule), DiffusionTrainingConfig(**cfg)
    )
    optimizer = nnx.Optimizer(
        model,
        optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lr, weight_decay=1e-5)),
        wrt=nnx.Param,
    )
    return trainer, optimizer


def test_loss_falls_clearly_on_a_fixed_image_set(make_model, tiny_config):
    one_level = dataclasses.replace(  # a smaller graph: 200 steps in seconds
        tiny_config.backbone, hidden_dims=(8,), attention_resolutions=()
    )
    model = make_model(loss_type="huber", backbone=one_level)
    trainer, optimizer = setup(model, ema_update_every=10)
    traces = []

    def counted_step(*args):
        traces.append(1)
        return trainer.train_step(*args)

    step = nnx.jit(counted_step)
    batch = {"image": fixed_images()}
    losses = []
    for i in range(200):
        loss, metrics = step(model, optimizer, batch, jax.random.key(i))
        if trainer.ema_due(i):
            trainer.update_ema(model)
        losses.append(loss)  # no host sync per step
    losses = np.asarray(jax.device_get(losses))
    assert len(traces) == 1  # one XLA program, compiled once
    assert np.isfinite(losses).all() and float(metrics["grad_norm"]) > 0
    first, last = np.mean(losses[:30]), np.mean(losses[-30:])
    assert last < 0.5 * first, (first, last)
    assert int(trainer.ema_state.count) == 20


def test_same_seeds_same_losses(make_model):
    runs = []
    trainer = None
    for _ in range(2):
        model = make_model(seed=1)
        trainer, optimizer = setup(model) if trainer is None else (trainer, setup(model)[1])
        step = nnx.jit(trainer.train_step)  # same program for both runs: compiled once
        runs.append(
            [
                float(step(model, optimizer, {"image": fixed_images(4)}, jax.random.key(i))[0])
                for i in range(3)
            ]
        )
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3


def test_loss_is_the_documented_objective(make_model):
    """x_start + mse + uniform: mean over examples of mean((net(x_t, t) - x0)^2)."""
    model = make_model(prediction_type="x_start", loss_type="mse")
    trainer, _ = setup(model)
    x0 = fixed_images(6)
    key = jax.random.key(3)
    loss, aux = trainer.loss(model, x0, key)
    t_key, noise_key, _ = jax.random.split(key, 3)
    t = aux["timesteps"]
    np.testing.assert_array_equal(t, trainer.sample_timesteps(t_key, 6))
    noise = np.asarray(jax.random.normal(noise_key, x0.shape))
    ab = np.cumprod(1 - trainer.noise_schedule.betas)[np.asarray(t)][:, None, None, None]
    x_t = np.sqrt(ab) * np.asarray(x0) + np.sqrt(1 - ab) * noise
    pred = np.asarray(model(jnp.asarray(x_t, jnp.float32), t))
    np.testing.assert_allclose(float(loss), np.mean((pred - np.asarray(x0)) ** 2), rtol=1e-4)


def _loss(model, **cfg):
    trainer, _ = setup(model, **cfg)
    return float(trainer.loss(model, fixed_images(8), jax.random.key(0))[0])


@pytest.mark.parametrize(
    "changes", [{"loss_weighting": "min_snr"}, {"timestep_sampling": "logit_normal"}]
)
def test_training_fields_change_the_loss(tiny_model, changes):
    assert _loss(tiny_model, **changes) != pytest.approx(_loss(tiny_model), rel=1e-4)


def test_snr_weighting_is_the_epsilon_objective(make_model):
    """lambda = SNR in x0 space is exactly the unweighted epsilon loss, and not x0's."""
    eps_model = make_model()
    assert _loss(eps_model, loss_weighting="snr") == pytest.approx(_loss(eps_model), rel=1e-6)
    x0_model = make_model(prediction_type="x_start")
    assert _loss(x0_model, loss_weighting="snr") != pytest.approx(_loss(x0_model), rel=1e-4)


def test_gamma_and_logit_normal_parameters_change_the_loss(tiny_model):
    base = _loss(tiny_model, loss_weighting="min_snr", min_snr_gamma=5.0)
    assert _loss(tiny_model, loss_weighting="min_snr", min_snr_gamma=0.5) != pytest.approx(base)
    ln = _loss(tiny_model, timestep_sampling="logit_normal")
    assert _loss(
        tiny_model, timestep_sampling="logit_normal", logit_normal_mean=1.5
    ) != pytest.approx(ln)
    assert _loss(
        tiny_model, timestep_sampling="logit_normal", logit_normal_std=0.3
    ) != pytest.approx(ln)


@pytest.mark.parametrize(
    "changes",
    [
        {"loss_type": "l1"},
        {"loss_type": "huber"},
        {"loss_type": "huber", "huber_delta": 0.1},
        {"prediction_type": "v_prediction"},
        {"prediction_type": "x_start"},
    ],
)
def test_model_loss_fields_change_the_loss(make_model, changes):
    assert _loss(make_model(**changes)) != pytest.approx(_loss(make_model()), rel=1e-4)


def test_uniform_timesteps():
    trainer = DiffusionTrainer(create_noise_schedule(NoiseScheduleConfig(num_timesteps=100)))
    t = np.asarray(trainer.sample_timesteps(jax.random.key(0), 100_000))
    assert t.min() == 0 and t.max() == 99
    counts = np.bincount(t, minlength=100)
    assert counts.min() > 850 and counts.max() < 1150


@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (0.5, 0.7)])
def test_logit_normal_timesteps_follow_their_cdf(mean, std):
    T = 1000
    trainer = DiffusionTrainer(
        create_noise_schedule(NoiseScheduleConfig(num_timesteps=T)),
        DiffusionTrainingConfig(
            timestep_sampling="logit_normal", logit_normal_mean=mean, logit_normal_std=std
        ),
    )
    t = np.asarray(trainer.sample_timesteps(jax.random.key(1), 200_000))
    for k in (100, 300, 500, 700, 900):
        # t <= k  <=>  sigmoid(z) < (k + 1) / T
        expected = ndtr((logit((k + 1) / T) - mean) / std)
        assert np.mean(t <= k) == pytest.approx(expected, abs=0.005)


def test_prediction_type_must_agree_with_the_model(tiny_model):
    trainer, optimizer = setup(tiny_model, prediction_type="v_prediction")
    with pytest.raises(ValueError, match="DDPMConfig.prediction_type='epsilon'"):
        trainer.train_step(tiny_model, optimizer, {"image": fixed_images(2)}, jax.random.key(0))


def test_schedule_must_be_the_models(tiny_model):
    other = dataclasses.replace(tiny_model.config.noise_schedule, schedule_type="linear")
    trainer = DiffusionTrainer(create_noise_schedule(other))
    with pytest.raises(ValueError, match="create_noise_schedule"):
        trainer.loss(tiny_model, fixed_images(2), jax.random.key(0))
    with pytest.raises(TypeError, match="NoiseSchedule"):
        DiffusionTrainer(other)


@pytest.mark.parametrize("prediction_type", ["v_prediction"])
def test_other_targets_train(make_model, prediction_type):
    model = make_model(prediction_type=prediction_type)
    trainer, optimizer = setup(model, prediction_type=prediction_type, loss_weighting="min_snr")
    step = nnx.jit(trainer.train_step)
    losses = [
        float(step(model, optimizer, {"image": fixed_images()}, jax.random.key(i))[0])
        for i in range(60)
    ]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_microbatches_give_the_whole_batch_update(make_model, tiny_config):
    """Gradient accumulation over 4 chunks equals one pass over the whole batch."""
    batch = {"image": fixed_images(16)}
    results = []
    one_level = dataclasses.replace(  # a smaller graph: two compiles stay cheap
        tiny_config.backbone, hidden_dims=(8,), attention_resolutions=(), time_embedding_dim=8
    )
    for microbatch_size in (None, 4):
        model = make_model(seed=3, backbone=one_level)
        trainer = DiffusionTrainer(
            create_noise_schedule(model.config.noise_schedule),
            DiffusionTrainingConfig(microbatch_size=microbatch_size),
        )
        optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
        loss, metrics = nnx.jit(trainer.train_step)(model, optimizer, batch, jax.random.key(7))
        params = jax.tree.leaves(nnx.state(model, nnx.Param))
        results.append((float(loss), float(metrics["grad_norm"]), params))
    (loss_a, norm_a, params_a), (loss_b, norm_b, params_b) = results
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    assert norm_b == pytest.approx(norm_a, rel=1e-4) and norm_a > 0
    for a, b in zip(params_a, params_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_microbatch_size_must_divide_the_batch(tiny_model):
    trainer, optimizer = setup(tiny_model, microbatch_size=5)
    with pytest.raises(ValueError, match=r"microbatch_size=5 does not divide the batch size 16"):
        trainer.train_step(tiny_model, optimizer, {"image": fixed_images(16)}, jax.random.key(0))


def _conditional(make_model, tiny_config, classes=4):
    backbone = dataclasses.replace(
        tiny_config.backbone,
        hidden_dims=(8,),
        attention_resolutions=(),
        num_classes=classes,
    )
    return make_model(seed=1, backbone=backbone, prediction_type="x_start", loss_type="mse")


def test_conditional_loss_is_the_objective_at_the_kept_and_nulled_labels(make_model, tiny_config):
    """With label dropout p, the loss is the documented objective with each label kept or
    replaced by the null label as the step key's Bernoulli(p) draw says."""
    model = _conditional(make_model, tiny_config)
    x0, labels, key = fixed_images(8), jnp.array([0, 1, 2, 3, 0, 1, 2, 3]), jax.random.key(5)
    for p in (0.0, 0.5, 1.0):
        trainer, _ = setup(model, label_dropout=p)
        loss, aux = trainer.loss(model, x0, key, labels)
        t_key, noise_key, _ = jax.random.split(key, 3)
        drop = np.asarray(jax.random.bernoulli(jax.random.fold_in(key, 3), p, (8,)))
        used = np.where(drop, 4, np.asarray(labels))
        nulled = int((used == 4).sum())
        assert nulled == 0 if p == 0.0 else (nulled == 8 if p == 1.0 else 0 < nulled < 8)
        t = aux["timesteps"]
        ab = np.cumprod(1 - trainer.noise_schedule.betas)[np.asarray(t)][:, None, None, None]
        noise = np.asarray(jax.random.normal(noise_key, x0.shape))
        x_t = jnp.asarray(np.sqrt(ab) * np.asarray(x0) + np.sqrt(1 - ab) * noise, jnp.float32)
        pred = np.asarray(model(x_t, t, labels=jnp.asarray(used)))
        np.testing.assert_allclose(float(loss), np.mean((pred - np.asarray(x0)) ** 2), rtol=1e-4)


def test_label_dropout_nulls_its_share_of_labels(make_model, tiny_config):
    model = _conditional(make_model, tiny_config)
    trainer, _ = setup(model, label_dropout=0.1)
    labels = jnp.zeros((20_000,), jnp.int32)
    x0 = jnp.zeros((20_000, 1, 1, 1))
    dropped = np.asarray(trainer._draw(model, x0, jax.random.key(0), labels)[3]) == 4
    assert dropped.mean() == pytest.approx(0.1, abs=4 * np.sqrt(0.09 / 20_000))


def test_conditional_steps_read_the_labels_and_microbatch_like_the_whole(make_model, tiny_config):
    batch = {"image": fixed_images(8), "label": jnp.array([0, 1, 2, 3, 3, 2, 1, 0])}
    results = []
    for microbatch_size in (None, 2):
        model = _conditional(make_model, tiny_config)
        trainer, _ = setup(model, label_dropout=0.5, microbatch_size=microbatch_size)
        optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
        loss, _ = nnx.jit(trainer.train_step)(model, optimizer, batch, jax.random.key(7))
        results.append((float(loss), jax.tree.leaves(nnx.state(model, nnx.Param))))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-5)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    other = {**batch, "label": jnp.roll(batch["label"], 1)}
    model = _conditional(make_model, tiny_config)
    trainer, optimizer = setup(model, label_dropout=0.5)
    loss, _ = nnx.jit(trainer.train_step)(model, optimizer, other, jax.random.key(7))
    assert float(loss) != pytest.approx(results[0][0], rel=1e-4)  # the labels are read
    with pytest.raises(KeyError, match="batch has no 'label' entry.*class-conditional"):
        trainer.train_step(model, optimizer, {"image": fixed_images(8)}, jax.random.key(0))
    with pytest.raises(ValueError, match=r"batch\['label'\] holds labels from 0 to 7"):
        trainer.train_step(model, optimizer, {**batch, "label": jnp.arange(8)}, jax.random.key(0))


def test_bfloat16_compute_keeps_float32_state_and_trains(make_model, tiny_config):
    """Mixed precision: the loss at the start is the float32 loss within bfloat16 rounding,
    parameters and optimizer moments stay float32, and the loss still halves."""
    one_level = dataclasses.replace(
        tiny_config.backbone, hidden_dims=(8,), attention_resolutions=()
    )
    x0 = fixed_images(16)
    losses = {}
    for dtype in ("float32", "bfloat16"):
        model = make_model(seed=2, loss_type="mse", backbone=one_level)
        trainer, _ = setup(model, compute_dtype=dtype)
        losses[dtype] = float(trainer.loss(model, x0, jax.random.key(1))[0])
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=3e-2)
    assert losses["bfloat16"] != losses["float32"]  # the option is read

    model = make_model(loss_type="huber", backbone=one_level)
    trainer, optimizer = setup(model, compute_dtype="bfloat16")
    step = nnx.jit(trainer.train_step)
    trace = [step(model, optimizer, {"image": x0}, jax.random.key(i))[0] for i in range(200)]
    trace = np.asarray(jax.device_get(trace), np.float64)
    assert np.isfinite(trace).all()
    assert trace[-30:].mean() < 0.5 * trace[:30].mean()
    dtypes = {x.dtype for x in jax.tree.leaves(nnx.state(model, nnx.Param))}
    dtypes |= {x.dtype for x in jax.tree.leaves(optimizer.opt_state) if x.ndim > 0}
    assert dtypes == {jnp.dtype(jnp.float32)}
