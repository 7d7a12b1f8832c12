"""VAETrainer: the compiled step learns and is the documented objective; the KL warm-up; fit;
and likelihood_bounds against an independent scipy computation."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from scipy import stats
from scipy.special import expit, logsumexp

from artifex.generative_models.core.configuration.vae_config import VAEConfig
from artifex.generative_models.models.vae import VAEModel
from artifex.generative_models.training.checkpointing import TrainingCheckpointer, load_model
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.trainers.vae_trainer import (
    VAETrainer,
    VAETrainingConfig,
    likelihood_bounds,
)

TINY = VAEConfig(input_shape=(8, 8, 1), latent_dim=4, hidden_dims=(8, 16), dense_dim=32)


def make_model(seed: int = 0, **changes) -> VAEModel:
    return VAEModel(VAEConfig(**{**TINY.to_dict(), **changes}), rngs=nnx.Rngs(seed))


def make_state(trainer: VAETrainer, model: VAEModel, lr: float = 1e-2):
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
    return trainer.init_state(model, optimizer)


def binary_patterns(n: int = 16) -> jax.Array:
    """8x8 images of a 3x3 white square on black, at 16 positions; pixels are exactly -1 or
    1, so binarisation keeps them as they are and the reconstruction target is fixed."""
    imgs = np.full((n, 8, 8, 1), -1.0, np.float32)
    for i in range(n):
        row, col = divmod(i % 16, 4)
        imgs[i, 2 * row : 2 * row + 3, 2 * col : 2 * col + 3] = 1.0
    return jnp.asarray(imgs)


def test_reconstruction_error_falls_within_30_compiled_steps():
    trainer = VAETrainer(VAETrainingConfig(ema_update_every=5))
    state = make_state(trainer, make_model())
    traces = []

    def counted(*args):
        traces.append(1)
        return trainer.train_step(*args)

    step = nnx.jit(counted)
    batch = {"image": binary_patterns()}
    history = [step(state, batch, jax.random.key(i)) for i in range(30)]
    history = jax.device_get(history)
    assert len(traces) == 1  # one XLA program: loss, gradient, update and EMA
    assert int(state.step[...]) == 30 and int(state.ema_count[...]) == 6  # steps 0, 5, ..., 25
    rec = np.array([h["reconstruction"] for h in history])
    assert np.isfinite(rec).all() and rec[0] > 40  # ~64 * log 2 = 44 nats at the start
    # The pixel marginals alone would give 64 * H(9/64) = 26 nats: below needs the latent.
    assert rec[-5:].mean() < 0.6 * rec[:5].mean() and rec[-5:].mean() < 24, rec
    assert history[-1]["kl"] > 0.5
    assert set(history[0]) == {"loss", "grad_norm", "elbo", "kl", "reconstruction", "beta"}


def test_kl_weight_ramps_linearly_from_zero_inside_the_step():
    trainer = VAETrainer(VAETrainingConfig(beta=2.0, kl_warmup_steps=4))
    for s, expected in [(0, 0.0), (1, 0.5), (2, 1.0), (3, 1.5), (4, 2.0), (1000, 2.0)]:
        assert float(trainer.kl_weight(s)) == pytest.approx(expected)
    assert float(VAETrainer(VAETrainingConfig(beta=0.5)).kl_weight(0)) == 0.5  # no warm-up

    # The step reads state.step on the device: one compiled program gives every value, and
    # its loss is reconstruction + beta * KL with that beta.
    state = make_state(trainer, make_model())
    step = nnx.jit(trainer.train_step)
    batch = {"image": binary_patterns(8)}
    metrics = jax.device_get([step(state, batch, jax.random.key(i)) for i in range(6)])
    assert [m["beta"] for m in metrics] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    for m in metrics:
        assert m["loss"] == pytest.approx(m["reconstruction"] + m["beta"] * m["kl"], rel=1e-5)
        assert m["elbo"] == pytest.approx(-(m["reconstruction"] + m["kl"]), rel=1e-5)


def test_loss_is_the_documented_negative_elbo_of_a_dynamic_binarisation():
    """Recomputed with scipy: binarise with the data key, draw z with the other one."""
    model, trainer = make_model(seed=2), VAETrainer()
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (6, 8, 8, 1)), jnp.float32)
    key = jax.random.key(11)
    loss, terms = trainer.loss(model, x, key, beta=1.0)
    data_key, z_key = jax.random.split(key)
    binary = np.asarray(jax.random.bernoulli(data_key, (x + 1) / 2), np.float64)
    assert 0.3 < binary.mean() < 0.7  # a draw, not a threshold
    mean, log_var = (np.asarray(a, np.float64) for a in model.encode(jnp.asarray(2 * binary - 1)))
    z = mean + np.exp(0.5 * log_var) * np.asarray(jax.random.normal(z_key, mean.shape))
    logits = np.asarray(model.decode(jnp.asarray(z, jnp.float32)), np.float64)
    log_lik = stats.bernoulli.logpmf(binary, expit(logits)).reshape(6, -1).sum(1)
    kl = stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(1) - stats.norm.logpdf(z).sum(1)
    kl_analytic = 0.5 * (mean**2 + np.exp(log_var) - 1 - log_var).sum(1)
    assert float(terms["kl"]) == pytest.approx(kl_analytic.mean(), rel=1e-4)
    assert float(terms["reconstruction"]) == pytest.approx(-log_lik.mean(), rel=1e-4)
    assert float(loss) == pytest.approx(-(log_lik - kl_analytic).mean(), rel=1e-4)
    assert np.isfinite(kl).all()


def test_gaussian_step_learns_the_global_scale_on_dequantised_pixels():
    trainer = VAETrainer()
    model = make_model(decoder="gaussian", decoder_std_init=2.0)
    state = make_state(trainer, model, lr=3e-2)
    step = nnx.jit(trainer.train_step)
    batch = {"image": binary_patterns()}
    metrics = jax.device_get([step(state, batch, jax.random.key(i)) for i in range(10)])
    # d log p / d log s = sum(r^2 / s^2 - 1) moves s towards the residuals' rms, about 1 for
    # +-1 pixels and means near 0: from s = 2 every step shrinks it (Adam: ~lr per step).
    assert float(model.decoder.log_scale[...]) < np.log(2.0) - 0.2
    assert metrics[-1]["reconstruction"] < metrics[0]["reconstruction"]
    assert all(np.isfinite(m["loss"]) for m in metrics)


def test_generate_samples_the_ema_weights():
    trainer = VAETrainer(VAETrainingConfig(ema_decay=0.9, ema_update_every=1))
    state = make_state(trainer, make_model())
    step = nnx.jit(trainer.train_step)
    for i in range(3):
        step(state, {"image": binary_patterns(8)}, jax.random.key(i))
    key = jax.random.key(5)
    images = np.asarray(trainer.generate(state, 4, key, temperature=0.8))
    np.testing.assert_array_equal(images, state.ema["model"].sample(4, key=key, temperature=0.8))
    assert not np.allclose(images, state.model.sample(4, key=key, temperature=0.8))
    assert images.shape == (4, 8, 8, 1) and images.min() >= -1 and images.max() <= 1


def test_init_state_refuses_another_model():
    with pytest.raises(TypeError, match="VAETrainer trains a VAEModel"):
        VAETrainer().init_state(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), None)
    with pytest.raises(ValueError, match=r"VAETrainingConfig.kl_warmup_steps=-1"):
        VAETrainingConfig(kl_warmup_steps=-1)
    with pytest.raises(ValueError, match=r"VAETrainingConfig.ema_decay=1.0"):
        VAETrainingConfig(ema_decay=1.0)


def test_fit_runs_steps_writes_a_checkpoint_and_exports_the_best_model(tmp_path, make_iterator):
    trainer = VAETrainer(VAETrainingConfig(kl_warmup_steps=10, ema_update_every=2))
    state = make_state(trainer, make_model(), lr=1e-3)
    held_out = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)

    def evaluate(model):
        return likelihood_bounds(model, held_out, jax.random.key(0), num_importance_samples=4)

    config = FitConfig(
        output_dir=tmp_path,
        epochs=1,
        max_steps=3,
        progress_bar=False,
        patience=None,
        evaluate_every_epochs=None,
        evaluate_every_steps=3,
        monitor="nll",
    )
    result = fit(trainer, state, make_iterator(seed=0), config, evaluate=evaluate)
    assert result.global_step == 3 and int(state.step[...]) == 3
    assert TrainingCheckpointer(tmp_path / "checkpoints").all_steps() == [3]
    assert [e["step"] for e in result.evaluations] == [3]
    assert result.evaluations[0]["iwae"] >= result.evaluations[0]["elbo"] - 1.0
    assert result.best_value == pytest.approx(result.evaluations[0]["nll"])
    best = load_model(tmp_path / "best_model")
    assert isinstance(best, VAEModel) and best.config == TINY
    assert (tmp_path / "samples" / "samples_final.png").is_file()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(line["kind"] == "evaluation" and "nll" in line for line in lines)


def independent_bounds(model, images_u8, key, k, data_seed):
    """ELBO and IWAE per image with scipy, drawing exactly the documented random numbers."""
    elbos, iwaes = [], []
    for n, u8 in enumerate(images_u8):
        x = jnp.asarray(u8[None], jnp.float32) / 127.5 - 1
        target, inputs = model.observe(x, jax.random.fold_in(jax.random.key(data_seed), n))
        mean, log_var = (np.asarray(a[0], np.float64) for a in model.encode(inputs))
        std = np.exp(0.5 * log_var)
        image_key = jax.random.fold_in(key, n)
        eps = np.stack(
            [
                np.asarray(jax.random.normal(jax.random.fold_in(image_key, i), mean.shape))
                for i in range(k)
            ]
        )
        z = mean + std * eps
        logits = np.asarray(model.decode(jnp.asarray(z, jnp.float32)), np.float64)
        binary = np.asarray(target[0], np.float64)
        log_lik = stats.bernoulli.logpmf(binary, expit(logits)).reshape(k, -1).sum(1)
        log_w = log_lik + stats.norm.logpdf(z).sum(1) - stats.norm.logpdf(z, mean, std).sum(1)
        kl = 0.5 * (mean**2 + std**2 - 1 - log_var).sum()
        elbos.append(log_lik.mean() - kl)
        iwaes.append(logsumexp(log_w) - np.log(k))
    return np.mean(elbos), np.mean(iwaes)


def test_likelihood_bounds_match_scipy_and_ignore_the_batching():
    model = make_model(seed=4)
    u8 = np.random.default_rng(2).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    key = jax.random.key(3)
    result = likelihood_bounds(
        model, u8, key, num_importance_samples=6, batch_size=2, samples_per_pass=3, data_seed=1
    )
    elbo, iwae = independent_bounds(model, u8, key, 6, data_seed=1)
    assert result["elbo"] == pytest.approx(elbo, rel=1e-4)
    assert result["iwae"] == pytest.approx(iwae, rel=1e-4)
    assert result["nll"] == -result["iwae"] and result["iwae"] > result["elbo"]
    # Other batch sizes and sample groups: the same draws, the same numbers.
    again = likelihood_bounds(
        model, u8, key, num_importance_samples=6, batch_size=5, samples_per_pass=4, data_seed=1
    )  # 4 -> 3, the largest divisor of 6 not above 4
    assert again == pytest.approx(result, rel=1e-5)
    other_data = likelihood_bounds(model, u8, key, num_importance_samples=6, data_seed=2)
    assert other_data["elbo"] != pytest.approx(result["elbo"], rel=1e-6)


def test_gaussian_bounds_report_bits_per_dim_and_bad_images_are_refused():
    model = make_model(decoder="gaussian")
    u8 = np.random.default_rng(2).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    result = likelihood_bounds(model, u8, jax.random.key(0), num_importance_samples=5)
    expected = (result["nll"] + 64 * np.log(127.5)) / (64 * np.log(2))
    assert result["bits_per_dim"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="images_uint8 must be uint8"):
        likelihood_bounds(model, u8.astype(np.float32), jax.random.key(0))
    with pytest.raises(ValueError, match="num_importance_samples=0 must be"):
        likelihood_bounds(model, u8, jax.random.key(0), num_importance_samples=0)
