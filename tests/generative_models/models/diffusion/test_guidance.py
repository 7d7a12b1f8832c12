"""Class-conditional DDPMModel and classifier-free guidance inside the compiled sampler."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.core.configuration.diffusion_config import (
    DDPMConfig,
    NoiseScheduleConfig,
)
from artifex.generative_models.models.diffusion.ddpm import DDPMModel, _compiled_sample
from artifex.generative_models.models.diffusion.guidance import guided_denoiser
from artifex.generative_models.models.diffusion.samplers.loop import run_sampler

CLASSES = 3
CONDITIONAL = DDPMConfig(
    backbone=UNetBackboneConfig(
        hidden_dims=(8,),
        in_channels=1,
        out_channels=1,
        time_embedding_dim=8,
        num_res_blocks=1,
        num_classes=CLASSES,
    ),
    noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=20),
    input_shape=(8, 8, 1),
)


@pytest.fixture(scope="module")
def model() -> DDPMModel:
    m = DDPMModel(CONDITIONAL, rngs=nnx.Rngs(0))
    # A random (not the initial) embedding, so every class moves the output visibly.
    table = m.backbone.class_embedding.embedding.embedding
    table.set_value(jax.random.normal(jax.random.key(1), table.get_value().shape))
    return m


def test_guided_denoiser_is_the_documented_combination() -> None:
    def network(x, t, y):  # a known "network": its output depends on the label
        return x * (1.0 + y[:, None]) + t[:, None]

    x = jnp.arange(6.0).reshape(3, 2)
    t = jnp.array([1, 2, 3])
    labels, null = jnp.array([0, 1, 2]), jnp.full((3,), 3)
    w = 2.5
    got = guided_denoiser(network, labels, null, w)(x, t)
    cond = np.asarray(network(x, t, labels))
    uncond = np.asarray(network(x, t, null))
    np.testing.assert_allclose(got, (1 + w) * cond - w * uncond, rtol=1e-6)


def test_labels_condition_the_network_and_none_is_the_null_label(model) -> None:
    x = jax.random.normal(jax.random.key(0), (3, 8, 8, 1))
    t = jnp.array([5, 5, 5])
    outputs = [np.asarray(model(x, t, labels=jnp.full((3,), c))) for c in range(CLASSES + 1)]
    for a in range(CLASSES + 1):
        for b in range(a):
            assert not np.allclose(outputs[a], outputs[b], atol=1e-4)
    np.testing.assert_array_equal(np.asarray(model(x, t)), outputs[CLASSES])


@pytest.mark.parametrize("scheduler", ["ddim", "dpm_solver++"])
@pytest.mark.parametrize("w", [0.0, 2.0])
def test_sample_equals_a_reference_guided_loop(model, scheduler, w) -> None:
    """The sampler's one doubled-batch call per step against two separate network calls."""
    labels = jnp.array([0, 2, 1, 2])
    key = jax.random.key(3)
    got = model.sample(4, key=key, scheduler=scheduler, steps=6, labels=labels, guidance_scale=w)

    def denoise(x, t):
        cond = model(x, t, labels=labels)
        if w == 0:
            return cond
        return (1 + w) * cond - w * model(x, t, labels=jnp.full((4,), CLASSES))

    noise_key, loop_key = jax.random.split(key)
    x_start = jax.random.normal(noise_key, (4, 8, 8, 1))
    expected = jax.jit(
        lambda x: run_sampler(
            denoise,
            model.noise_schedule,
            x,
            loop_key,
            scheduler=scheduler,
            steps=6,
            eta=0.0,
            prediction_type=CONDITIONAL.prediction_type,
            clip_denoised=True,
        )
    )(x_start)
    # float32: a batch of 8 and two of 4 sum the convolutions in other orders
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5)


def test_one_label_for_all_guidance_changes_samples_and_nothing_recompiles(model) -> None:
    options = dict(key=jax.random.key(0), scheduler="ddim", steps=4)
    one = model.sample(3, labels=1, guidance_scale=1.0, **options)
    np.testing.assert_array_equal(
        one, model.sample(3, labels=jnp.array([1, 1, 1]), guidance_scale=1.0, **options)
    )
    compiled = _compiled_sample._cache_size()
    other_w = model.sample(3, labels=1, guidance_scale=3.0, **options)
    other_labels = model.sample(3, labels=jnp.array([0, 1, 2]), guidance_scale=3.0, **options)
    assert _compiled_sample._cache_size() == compiled  # w and labels are arguments, not constants
    assert not np.allclose(one, other_w)
    assert not np.allclose(other_w, other_labels)
    unconditional = model.sample(3, **options)
    assert not np.allclose(unconditional, model.sample(3, labels=1, **options))


def test_conditioning_mistakes_are_named(model, tiny_model) -> None:
    with pytest.raises(ValueError, match="guidance_scale=2.0 needs labels"):
        model.sample(2, key=0, steps=2, scheduler="ddim", guidance_scale=2.0)
    with pytest.raises(ValueError, match=r"guidance_scale=-1.0 must be a finite number >= 0"):
        model.sample(2, key=0, steps=2, scheduler="ddim", labels=0, guidance_scale=-1.0)
    with pytest.raises(
        ValueError, match=r"labels holds labels from 0 to 3; they must lie in \[0, 3\)"
    ):
        model.sample(2, key=0, steps=2, scheduler="ddim", labels=jnp.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels has shape \(3,\); pass one label per image"):
        model.sample(2, key=0, steps=2, scheduler="ddim", labels=jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="unconditional model"):
        tiny_model.sample(2, key=0, steps=2, scheduler="ddim", labels=1)
    with pytest.raises(ValueError, match="unconditional model"):
        tiny_model(jnp.zeros((1, 8, 8, 1)), jnp.array([1]), labels=jnp.array([0]))


def test_the_unconditional_network_is_unchanged_by_the_new_field(tiny_model) -> None:
    """``num_classes=None`` builds no embedding: the parameter tree is the one before."""
    assert tiny_model.backbone.class_embedding is None
    conditional = DDPMModel(
        dataclasses.replace(
            tiny_model.config,
            backbone=dataclasses.replace(tiny_model.config.backbone, num_classes=10),
        ),
        rngs=nnx.Rngs(0),
    )
    extra = sum(p.size for p in jax.tree.leaves(nnx.state(conditional, nnx.Param))) - sum(
        p.size for p in jax.tree.leaves(nnx.state(tiny_model, nnx.Param))
    )
    assert extra == 11 * tiny_model.config.backbone.time_embedding_dim  # 10 classes + null
