"""Generator and Discriminator: shapes, ranges, spectral norm, save/load round trips."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.configuration.gan_config import GANConfig
from artifex.generative_models.models.gan import Discriminator, Generator, SpectralNormConv
from artifex.generative_models.training.checkpointing import load_model, save_model

# Tiny networks: 8x8 images, one doubling from 4x4; compile in a second or two.
TINY = GANConfig(
    input_shape=(8, 8, 1), latent_dim=4, generator_dims=(8, 4), discriminator_dims=(4, 8)
)


def params(module: nnx.Module) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(module, nnx.Param))]


@nnx.jit(static_argnums=1)
def iterate(module: nnx.Module, rounds: int) -> None:
    """``rounds`` calls of ``module.power_iteration()`` as one compiled program."""
    for _ in range(rounds):
        module.power_iteration()


def top_singular_value(kernel) -> float:
    matrix = np.asarray(kernel, np.float64).reshape(-1, np.shape(kernel)[-1])
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_generator_makes_images_of_the_config_shape_in_range(norm):
    config = dataclasses.replace(TINY, generator_norm=norm)
    generator = Generator(config, rngs=nnx.Rngs(0))
    z = 3.0 * jax.random.normal(jax.random.key(1), (5, 4))  # large z: tanh must still bound
    images = nnx.jit(lambda g, z: g(z, train=True))(generator, z)
    assert images.shape == (5, 8, 8, 1)
    assert float(jnp.abs(images).max()) <= 1.0
    assert float(jnp.std(images)) > 1e-3  # not a constant image
    # Two doublings from a 2x2 map, three channels: the shapes follow the config.
    rgb = GANConfig(input_shape=(8, 8, 3), latent_dim=4, generator_dims=(8, 8, 4))
    assert Generator(rgb, rngs=nnx.Rngs(0))(z, train=False).shape == (5, 8, 8, 3)


def test_sample_is_reproducible_and_uses_running_statistics():
    generator = Generator(TINY, rngs=nnx.Rngs(0))
    a = generator.sample(6, key=jax.random.key(3))
    b = generator.sample(6, key=jax.random.key(3))
    c = generator.sample(6, key=jax.random.key(4))
    assert a.shape == (6, 8, 8, 1)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))
    # Eval mode normalises with running statistics: one image does not depend on the others.
    z = jax.random.normal(jax.random.key(5), (4, 4))
    np.testing.assert_allclose(
        np.asarray(generator(z, train=False)[:1]), np.asarray(generator(z[:1], train=False)), 1e-5
    )
    # Training mode normalises by the batch (and updates the running mean).
    mean_before = np.asarray(generator.project_norm.mean[...]).copy()
    generator(z, train=True)
    assert not np.allclose(mean_before, np.asarray(generator.project_norm.mean[...]))


def test_discriminator_gives_one_logit_per_image():
    for dims in [(4, 8), (4,), (4, 8, 8)]:
        config = dataclasses.replace(TINY, discriminator_dims=dims)
        logits = Discriminator(config, rngs=nnx.Rngs(0))(jnp.ones((3, 8, 8, 1)))
        assert logits.shape == (3,)
    # Each logit depends on its own image only (no batch statistics), which R1 relies on.
    discriminator = Discriminator(TINY, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1), minval=-1, maxval=1)
    np.testing.assert_allclose(
        np.asarray(discriminator(x)[1:2]), np.asarray(discriminator(x[1:2])), rtol=1e-5
    )


def test_spectral_norm_conv_bounds_the_largest_singular_value_by_one():
    layer = SpectralNormConv(3, 5, (3, 3), power_iterations=2, rngs=nnx.Rngs(0))
    layer.kernel[...] = 7.0 * layer.kernel[...]  # far from 1 before normalising
    true_sigma = top_singular_value(layer.kernel[...])
    assert true_sigma > 3.0
    iterate(layer, 25)
    np.testing.assert_allclose(float(layer.sigma()), true_sigma, rtol=1e-3)
    np.testing.assert_allclose(top_singular_value(layer.normalized_kernel()), 1.0, rtol=1e-3)
    # The layer convolves with the normalised kernel.
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 3))
    expected = jax.lax.conv_general_dilated(
        x, layer.normalized_kernel(), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(expected), atol=1e-5)


def test_spectral_norm_forward_is_pure_and_iteration_changes_only_u():
    layer = SpectralNormConv(2, 4, (3, 3), rngs=nnx.Rngs(0))
    before = jax.tree.map(np.asarray, nnx.state(layer))
    layer(jnp.ones((1, 4, 4, 2)))
    after_call = jax.tree.map(np.asarray, nnx.state(layer))
    assert jax.tree.all(jax.tree.map(np.array_equal, before, after_call))
    layer.power_iteration()
    np.testing.assert_array_equal(np.asarray(layer.kernel[...]), before["kernel"][...])
    assert not np.array_equal(np.asarray(layer.u[...]), before["u"][...])


def test_spectrally_normalised_discriminator_has_unit_layers_and_gradients():
    config = dataclasses.replace(TINY, spectral_norm=True, power_iterations=5)
    discriminator = Discriminator(config, rngs=nnx.Rngs(0))
    layers = [*discriminator.convs, discriminator.head]
    assert all(isinstance(layer, SpectralNormConv) for layer in layers)
    iterate(discriminator, 10)
    for layer in layers:
        np.testing.assert_allclose(top_singular_value(layer.normalized_kernel()), 1.0, rtol=1e-3)
    # The gradient reaches every kernel through sigma.
    x = jnp.ones((2, 8, 8, 1))
    grads = nnx.jit(nnx.grad(lambda d: jnp.sum(d(x))))(discriminator)
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))
    # Without spectral norm, power_iteration is a no-op.
    Discriminator(TINY, rngs=nnx.Rngs(0)).power_iteration()


@pytest.mark.parametrize("network", [Generator, Discriminator])
def test_save_and_load_rebuild_the_network(tmp_path, network):
    config = dataclasses.replace(TINY, spectral_norm=network is Discriminator)
    model = network(config, rngs=nnx.Rngs(7))
    if network is Discriminator:
        model.power_iteration()  # u differs from a fresh model's: it must be saved too
    x = (
        jax.random.normal(jax.random.key(0), (3, 4))
        if network is Generator
        else jax.random.uniform(jax.random.key(0), (3, 8, 8, 1), minval=-1, maxval=1)
    )

    def forward(m):
        return m(x, train=False) if network is Generator else m(x)

    save_model(tmp_path / "export", model)
    loaded = load_model(tmp_path / "export")
    assert type(loaded) is network and loaded.config == config
    fresh = network(config, rngs=nnx.Rngs(0))  # what load_model builds before loading
    assert any(not np.array_equal(a, b) for a, b in zip(params(fresh), params(model), strict=True))
    for a, b in zip(params(loaded), params(model), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(forward(loaded)), np.asarray(forward(model)), 1e-6)


def test_wrong_inputs_are_refused_with_the_fix():
    generator = Generator(TINY, rngs=nnx.Rngs(0))
    discriminator = Discriminator(TINY, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"z has shape \(3, 5\); pass latents of shape \(N, 4\)"):
        generator(jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"n=0 must be a positive integer"):
        generator.sample(0, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"x has shape \(2, 28, 28, 1\) but the model's config"):
        discriminator(jnp.zeros((2, 28, 28, 1)))
    with pytest.raises(TypeError, match="x has dtype uint8"):
        discriminator(jnp.zeros((2, 8, 8, 1), jnp.uint8))
    # An integer seed is a key.
    np.testing.assert_array_equal(
        np.asarray(generator.sample(2, key=3)),
        np.asarray(generator.sample(2, key=jax.random.key(3))),
    )
