"""DDPMModel: the network call and the compiled, cached samplers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.models.diffusion.ddpm import _compiled_sample


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_sample_shape_range_and_no_recompile(tiny_model, scheduler):
    kwargs = dict(scheduler=scheduler, steps=5, key=jax.random.key(0))
    first = tiny_model.sample(3, **kwargs)
    compiled = _compiled_sample._cache_size()
    second = tiny_model.sample(3, **kwargs)
    third = tiny_model.sample(
        n_samples_or_shape=(3, 8, 8, 1), scheduler=scheduler, steps=5, key=jax.random.key(1)
    )
    assert _compiled_sample._cache_size() == compiled  # same arguments: no new program
    assert first.shape == third.shape == (3, 8, 8, 1)
    assert first.dtype == jnp.float32
    assert float(jnp.abs(first).max()) <= 1.0  # clip_denoised=True
    np.testing.assert_array_equal(first, second)  # same key, same samples
    assert not np.allclose(first, third)


def test_sampling_does_not_change_the_model(tiny_model):
    before = jax.tree.map(np.asarray, nnx.state(tiny_model, nnx.Param))
    tiny_model.sample(2, scheduler="ddim", steps=3, key=jax.random.key(0))
    after = nnx.state(tiny_model, nnx.Param)
    jax.tree.map(np.testing.assert_array_equal, before, after)


def test_keys_from_the_sample_stream_are_reproducible(make_model):
    a, b = make_model(seed=3), make_model(seed=3)
    first_a = a.sample(2, scheduler="ddim", steps=3)
    np.testing.assert_array_equal(first_a, b.sample(2, scheduler="ddim", steps=3))
    # the stream advances, so the next call differs; explicit rngs are honoured too
    assert not np.allclose(first_a, a.sample(2, scheduler="ddim", steps=3))
    np.testing.assert_array_equal(
        a.sample(2, scheduler="ddim", steps=3, rngs=nnx.Rngs(sample=5)),
        b.sample(2, scheduler="ddim", steps=3, rngs=nnx.Rngs(sample=5)),
    )


def test_clip_denoised_and_prediction_type_are_read_by_the_sampler(make_model):
    key = jax.random.key(0)
    base = make_model().sample(4, scheduler="ddpm", steps=4, key=key)
    unclipped = make_model(clip_denoised=False).sample(4, scheduler="ddpm", steps=4, key=key)
    as_x0 = make_model(prediction_type="x_start").sample(4, scheduler="ddpm", steps=4, key=key)
    assert float(jnp.abs(unclipped).max()) > 1.0  # an untrained eps-net overshoots
    assert not np.allclose(base, unclipped)
    assert not np.allclose(base, as_x0)


def test_ddim_eta_changes_samples(tiny_model):
    key = jax.random.key(0)
    a = tiny_model.sample(2, scheduler="ddim", steps=4, key=key)
    b = tiny_model.sample(2, scheduler="ddim", steps=4, eta=1.0, key=key)
    assert not np.allclose(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheduler": "lms"}, "scheduler='lms' is not supported; choose one of"),
        ({"scheduler": "ddpm", "eta": 0.5}, "eta=0.5 only applies"),
        ({"scheduler": "ddim", "eta": -1.0}, "eta=-1.0 must be a finite number >= 0"),
        ({"scheduler": "ddim", "steps": 51}, r"steps=51 must be an integer in \[1, 50\]"),
        ({"n_samples_or_shape": 0}, "n_samples_or_shape=0"),
        ({"n_samples_or_shape": (2, 8, 8, 3)}, r"\(N, H, W, 1\)"),
        ({"n_samples_or_shape": (2, 7, 8, 1)}, "divisible by 2"),
    ],
)
def test_bad_sampling_arguments(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_model.sample(**{"n_samples_or_shape": 2, **kwargs})


def test_input_shape_sets_the_sample_shape(make_model):
    model = make_model(input_shape=(8, 16, 1))
    assert model.sample(1, scheduler="ddim", steps=2).shape == (1, 8, 16, 1)


def test_initial_noise_reproduces_the_key_draw_and_ddim_is_deterministic(tiny_model):
    key = jax.random.key(4)
    x_T = jax.random.normal(jax.random.split(key)[0], (3, 8, 8, 1))  # the draw sample() makes
    for scheduler in ("ddpm", "ddim"):
        from_key = tiny_model.sample(3, scheduler=scheduler, steps=4, key=key)
        from_noise = tiny_model.sample(scheduler=scheduler, steps=4, key=key, initial_noise=x_T)
        np.testing.assert_allclose(from_noise, from_key, atol=1e-6)
    # DDIM with eta=0 depends on x_T only: another key gives the same images.
    a = tiny_model.sample(scheduler="ddim", steps=4, key=jax.random.key(0), initial_noise=x_T)
    b = tiny_model.sample(scheduler="ddim", steps=4, key=jax.random.key(1), initial_noise=x_T)
    np.testing.assert_array_equal(a, b)
    c = tiny_model.sample(scheduler="ddim", steps=4, key=jax.random.key(0), initial_noise=-x_T)
    assert not np.allclose(a, c)


@pytest.mark.parametrize(
    ("shape", "n", "match"),
    [
        ((2, 8, 8, 3), None, r"initial_noise.shape=\(2, 8, 8, 3\)"),
        ((8, 8, 1), None, r"initial_noise.shape=\(8, 8, 1\)"),
        ((2, 8, 8, 1), 3, r"n_samples_or_shape=3 gives shape \(3, 8, 8, 1\)"),
    ],
)
def test_initial_noise_shape_is_validated(tiny_model, shape, n, match):
    with pytest.raises(ValueError, match=match):
        tiny_model.sample(n, scheduler="ddim", steps=2, initial_noise=jnp.zeros(shape))


@pytest.mark.parametrize("scheduler", ["euler", "heun", "dpm_solver++"])
def test_ode_schedulers_sample_from_the_starting_noise_alone(tiny_model, scheduler):
    key = jax.random.key(4)
    x_T = jax.random.normal(jax.random.split(key)[0], (3, 8, 8, 1))  # the draw sample() makes
    a = tiny_model.sample(3, scheduler=scheduler, steps=4, key=key)
    assert a.shape == (3, 8, 8, 1) and a.dtype == jnp.float32
    assert bool(jnp.isfinite(a).all()) and float(jnp.abs(a).max()) <= 1.0  # clip_denoised
    b = tiny_model.sample(scheduler=scheduler, steps=4, key=jax.random.key(9), initial_noise=x_T)
    np.testing.assert_allclose(a, b, atol=1e-6)  # deterministic: another key, same images
    c = tiny_model.sample(scheduler=scheduler, steps=4, key=key, initial_noise=-x_T)
    assert not np.allclose(a, c)


def test_euler_samples_are_ddim_eta0_samples(tiny_model):
    kwargs = dict(steps=6, key=jax.random.key(0))
    np.testing.assert_allclose(
        tiny_model.sample(2, scheduler="euler", **kwargs),
        tiny_model.sample(2, scheduler="ddim", **kwargs),
        atol=1e-5,
    )


def test_spacing_moves_the_timesteps(tiny_model):
    kwargs = dict(scheduler="dpm_solver++", steps=5, key=jax.random.key(0))
    default = tiny_model.sample(2, **kwargs)
    np.testing.assert_array_equal(default, tiny_model.sample(2, spacing="linspace", **kwargs))
    trailing = tiny_model.sample(2, spacing="trailing", **kwargs)
    leading = tiny_model.sample(2, spacing="leading", **kwargs)
    assert not np.allclose(default, trailing) and not np.allclose(default, leading)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheduler": "dpm_solver++", "eta": 0.0}, "eta=0.0 only applies to scheduler='ddim'"),
        ({"scheduler": "heun", "eta": 1.0}, "eta=1.0 only applies to scheduler='ddim'"),
        ({"scheduler": "euler", "steps": 0}, r"steps=0 must be an integer in \[1, 50\]"),
        ({"scheduler": "heun", "steps": 2.0}, r"steps=2.0 must be an integer in \[1, 50\]"),
        ({"scheduler": "dpm_solver++", "steps": 51}, r"steps=51 must be an integer in \[1, 50\]"),
        (
            {"scheduler": "heun", "spacing": "uniform"},
            "spacing='uniform' is not supported; choose one of 'linspace', 'leading', 'trailing'",
        ),
        ({"scheduler": "ddpm", "spacing": None}, "spacing=None is not supported"),
        ({"scheduler": "dpmpp_2m"}, "choose one of 'ddpm', 'ddim', 'euler', 'heun', 'dpm_solver"),
    ],
)
def test_bad_arguments_of_the_new_schedulers(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_model.sample(2, **kwargs)
