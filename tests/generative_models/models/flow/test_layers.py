"""Every flow layer and the whole flow: exact inverses and log-determinants.

The log-determinants are checked against ``log|det J|`` of the Jacobian built by
``jax.jacfwd`` on tiny inputs, after the parameters were moved away from their (identity)
initialisation.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.configuration.flow_config import FlowConfig
from artifex.generative_models.models.flow import (
    ActNorm,
    AffineCoupling,
    ChannelReverse,
    FlowModel,
    InvertibleConv1x1,
    LogitTransform,
    Split,
    dequantize,
    squeeze,
    unsqueeze,
)
from artifex.generative_models.models.flow.coupling import bounded_log_scale


def perturb(module: nnx.Module, seed: int = 0, scale: float = 0.3) -> nnx.Module:
    """Add N(0, scale^2) noise to every trained parameter: no layer stays the identity."""
    params = nnx.state(module, nnx.Param)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    nnx.update(module, jax.tree.unflatten(treedef, noisy))
    return module


def random_input(shape, seed: int = 1) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32) * 0.5


def random_image(shape, seed: int = 1) -> jax.Array:
    """Centred dequantised-image values, inside (-1/2, 1/2) as the logit needs."""
    return jax.random.uniform(jax.random.key(seed), shape, jnp.float32, -0.49, 0.49)


def brute_force_log_dets(fn, x: jax.Array) -> np.ndarray:
    """``log|det J|`` of ``fn`` (one example NHWC -> arrays) at each example of ``x``, from the
    full Jacobian built by ``jax.jacfwd`` (one compiled program for the batch)."""
    shape = (1, *x.shape[1:])

    def flat(v):
        return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(fn(v.reshape(shape)))])

    jacobians = np.asarray(jax.jit(jax.vmap(jax.jacfwd(flat)))(x.reshape(len(x), -1)), np.float64)
    assert jacobians.shape[1] == jacobians.shape[2] == x[0].size
    signs, log_dets = np.linalg.slogdet(jacobians)
    assert np.all(signs != 0)
    return log_dets


def brute_force_log_det(fn, x: jax.Array) -> float:
    """:func:`brute_force_log_dets` of a single example ``x`` (shape ``(1, H, W, C)``)."""
    return float(brute_force_log_dets(fn, x)[0])


def check_layer(layer, shape, draw=random_input):
    """Batch inverse to 1e-4 and every example's log_det equal to the brute-force value."""
    x = draw((3, *shape))
    y, log_det = layer.forward(x)
    assert y.shape == x.shape and log_det.shape == (3,)
    np.testing.assert_allclose(layer.inverse(y), x, atol=1e-4)
    expected = brute_force_log_dets(lambda v: layer.forward(v)[0], x)
    np.testing.assert_allclose(log_det, expected, atol=1e-3, rtol=1e-4)
    assert np.abs(np.asarray(y - x)).max() > 1e-2  # the layer does something


# --------------------------------------------------------------------------- actnorm
def test_actnorm_inverse_and_log_det():
    layer = perturb(ActNorm(4))
    check_layer(layer, (2, 2, 4))
    expected = 2 * 2 * np.sum(np.log(np.exp(np.asarray(layer.log_scale[...]))))
    np.testing.assert_allclose(layer.forward(random_input((1, 2, 2, 4)))[1], [expected], rtol=1e-5)


def test_actnorm_data_init_gives_zero_mean_unit_variance_per_channel():
    layer = ActNorm(3)
    assert not bool(layer.initialized[...])
    x = random_input((16, 5, 5, 3)) * jnp.array([0.1, 2.0, 7.0]) + jnp.array([3.0, -1.0, 0.5])
    np.testing.assert_array_equal(layer.forward(x)[0], x)  # identity before the init
    layer.initialize(x)
    assert bool(layer.initialized[...])
    y = np.asarray(layer.forward(x)[0], np.float64)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


# --------------------------------------------------------------------------- 1x1 conv
def test_invertible_conv_inverse_and_log_det():
    layer = perturb(InvertibleConv1x1(4, rngs=nnx.Rngs(3)))
    check_layer(layer, (2, 2, 4))
    weight = np.asarray(layer.weight(), np.float64)
    _, log_abs_det = np.linalg.slogdet(weight)  # H W log|det W| = H W sum log|s|
    np.testing.assert_allclose(
        layer.forward(random_input((1, 2, 2, 4)))[1], [4 * log_abs_det], rtol=1e-4
    )


def test_invertible_conv_starts_as_a_rotation_in_lu_form():
    layer = InvertibleConv1x1(6, rngs=nnx.Rngs(0))
    weight = np.asarray(layer.weight(), np.float64)
    np.testing.assert_allclose(weight @ weight.T, np.eye(6), atol=1e-5)  # orthogonal
    assert np.abs(weight - np.eye(6)).max() > 0.1  # but mixes the channels
    permutation = np.asarray(layer.permutation[...])
    np.testing.assert_array_equal(np.sort(permutation, axis=0)[-1], np.ones(6))
    np.testing.assert_array_equal(permutation.sum(axis=0), np.ones(6))
    np.testing.assert_allclose(np.sum(np.asarray(layer.log_s[...])), 0.0, atol=1e-5)
    assert nnx.state(layer, nnx.Param).keys() == {"lower", "upper", "log_s"}


def test_channel_reverse_is_a_permutation():
    layer = ChannelReverse()
    x = random_input((2, 2, 2, 4))
    y, log_det = layer.forward(x)
    np.testing.assert_array_equal(y[..., 0], x[..., 3])
    np.testing.assert_array_equal(log_det, 0.0)
    np.testing.assert_array_equal(layer.inverse(y), x)
    assert abs(brute_force_log_det(lambda v: layer.forward(v)[0], x[:1])) < 1e-6


# --------------------------------------------------------------------------- coupling
@pytest.mark.parametrize("scale", ["sigmoid", "tanh"])
def test_coupling_inverse_and_log_det(scale):
    layer = perturb(AffineCoupling(4, 8, scale, rngs=nnx.Rngs(1)), scale=0.5)
    check_layer(layer, (2, 2, 4))
    x = random_input((2, 2, 2, 4))
    np.testing.assert_array_equal(layer.forward(x)[0][..., :2], x[..., :2])  # x_a passes


def test_coupling_starts_as_the_identity():
    layer = AffineCoupling(4, 8, "sigmoid", rngs=nnx.Rngs(1))
    x = random_input((2, 3, 3, 4))
    y, log_det = layer.forward(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(log_det, 0.0)


def test_coupling_scales_are_bounded():
    h = jnp.linspace(-50.0, 50.0, 101)
    sig = np.asarray(bounded_log_scale(h, "sigmoid"))
    assert sig.max() <= -np.log(1 / (1 + np.exp(-2.0))) + 1e-6  # s < 1 / sigmoid(2) = 1.136
    assert abs(float(bounded_log_scale(jnp.zeros(()), "sigmoid"))) < 1e-7
    tanh = np.asarray(bounded_log_scale(h, "tanh"))
    assert np.all(np.abs(tanh) <= 1.0) and abs(float(bounded_log_scale(0.0, "tanh"))) == 0
    with pytest.raises(ValueError, match="coupling_scale='exp'"):
        AffineCoupling(4, 8, "exp", rngs=nnx.Rngs(0))


# --------------------------------------------------------------------------- squeeze
def test_squeeze_moves_each_2x2_block_into_channels():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    y = squeeze(x)
    assert y.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(y[0, 0, 0], [0, 1, 4, 5])  # (0,0), (0,1), (1,0), (1,1)
    np.testing.assert_array_equal(y[0, 1, 1], [10, 11, 14, 15])
    x = random_input((2, 4, 6, 3))
    np.testing.assert_array_equal(unsqueeze(squeeze(x)), x)
    assert abs(brute_force_log_det(squeeze, x[:1])) < 1e-6
    with pytest.raises(ValueError, match="even height and width"):
        squeeze(jnp.zeros((1, 3, 4, 1)))


# --------------------------------------------------------------------------- logit
def test_logit_inverse_and_log_det():
    layer = LogitTransform(1e-3)
    check_layer(layer, (2, 2, 2), draw=random_image)
    x = jnp.asarray([[[[-0.5]], [[0.0]]]])  # y = 0 and y = 1/2
    h = np.asarray(layer.forward(x)[0]).ravel()
    np.testing.assert_allclose(h, [np.log(1e-3 / (1 - 1e-3)), 0.0], atol=1e-5)
    with pytest.raises(ValueError, match="logit_alpha=0.5"):
        LogitTransform(0.5)


# --------------------------------------------------------------------------- split
@pytest.mark.parametrize("prior", ["conditional", "standard"])
def test_split_inverse_and_log_det(prior):
    layer = perturb(Split(4, prior, rngs=nnx.Rngs(2)))
    x = random_input((3, 2, 2, 4))
    kept, eps, log_det = layer.forward(x)
    assert kept.shape == eps.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(kept, x[..., :2])
    np.testing.assert_allclose(layer.inverse(kept, eps), x, atol=1e-4)
    expected = brute_force_log_dets(lambda v: layer.forward(v)[:2], x)
    np.testing.assert_allclose(log_det, expected, atol=1e-3)
    if prior == "standard":
        np.testing.assert_array_equal(eps, x[..., 2:])


# --------------------------------------------------------------------------- the whole flow
TINY_GLOW = FlowConfig(input_shape=(4, 4, 1), num_scales=2, steps_per_scale=2, hidden_channels=8)
TINY_REALNVP = FlowConfig(
    input_shape=(4, 4, 2),
    num_scales=1,
    steps_per_scale=3,
    hidden_channels=8,
    actnorm=False,
    invertible_conv="reverse",
    coupling_scale="sigmoid",
    split_prior="standard",
    learn_top=False,
    logit_alpha=None,
)


@pytest.mark.parametrize("config", [TINY_GLOW, TINY_REALNVP], ids=["glow", "realnvp"])
def test_flow_inverse_and_log_det(config):
    model = perturb(FlowModel(config, rngs=nnx.Rngs(0)), scale=0.2)
    x = random_image((3, *config.input_shape), seed=4)
    z, log_det = model.forward(x)
    assert z.shape == (3, config.num_dims) and log_det.shape == (3,)
    np.testing.assert_allclose(model.inverse(z), x, atol=1e-4)
    expected = brute_force_log_dets(lambda v: model.forward(v)[0], x)
    np.testing.assert_allclose(log_det, expected, atol=2e-3, rtol=1e-4)
    assert abs(float(log_det[0])) > 0.1  # the perturbed flow is far from volume-preserving
    z64 = np.asarray(z, np.float64)
    log_normal = -0.5 * np.sum(z64**2, 1) - 0.5 * config.num_dims * np.log(2 * np.pi)
    np.testing.assert_allclose(model.log_prob(x), log_normal + log_det, rtol=1e-5)


def test_flow_pieces_follow_the_multi_scale_layout():
    model = FlowModel(FlowConfig(steps_per_scale=1, hidden_channels=4), rngs=nnx.Rngs(0))
    # 28x28x1 -> squeeze 14x14x4 -> factor out 14x14x2 -> squeeze 7x7x8 (kept to the end)
    assert model.latent_shapes == ((14, 14, 2), (7, 7, 8))
    assert sum(np.prod(s) for s in model.latent_shapes) == 784
    with pytest.raises(ValueError, match=r"x has shape \(1, 32, 32, 1\) but the model's"):
        model.forward(jnp.zeros((1, 32, 32, 1)))
    with pytest.raises(ValueError, match=r"z.shape=\(2, 10\) must be \(N, 784\)"):
        model.inverse(jnp.zeros((2, 10)))


def test_fresh_flow_is_a_rotation_of_the_input():
    """Zero-initialised couplings and priors, unit actnorms: only the 1x1 rotations act."""
    model = FlowModel(dataclasses.replace(TINY_GLOW, logit_alpha=None), rngs=nnx.Rngs(0))
    x = random_input((3, 4, 4, 1))
    z, log_det = model.forward(x)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-5)
    np.testing.assert_allclose(
        np.linalg.norm(np.asarray(z), axis=1),
        np.linalg.norm(np.asarray(x).reshape(3, -1), axis=1),
        rtol=1e-5,
    )


def test_model_initialize_normalises_every_actnorm_input():
    config = FlowConfig(input_shape=(8, 8, 1), num_scales=2, steps_per_scale=2, hidden_channels=8)
    model = perturb(FlowModel(config, rngs=nnx.Rngs(0)), scale=0.2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 8, 8, 1)).astype(np.float32) / 127.5 - 1.0
    assert not model.initialized
    key = jax.random.key(7)
    model.initialize({"image": images}, key=key)
    assert model.initialized
    # Walk the flow by hand and check each actnorm's output on the same dequantised batch.
    h = model.logit.forward(dequantize(images, key))[0]
    checked = 0
    for level, steps in enumerate(model.scales):
        h = squeeze(h)
        for step in steps:
            out = np.asarray(step.actnorm.forward(h)[0], np.float64)
            np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
            np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
            h = step.forward(h)[0]
            checked += 1
        if level < len(model.splits):
            h = model.splits[level].forward(h)[0]
    assert checked == 4


def test_sample_returns_images_in_range():
    model = perturb(FlowModel(TINY_GLOW, rngs=nnx.Rngs(0)), scale=0.2)
    a = model.sample(6, key=jax.random.key(0), temperature=0.7)
    b = model.sample(6, key=jax.random.key(0), temperature=0.7)
    assert a.shape == (6, 4, 4, 1) and float(a.min()) >= -1 and float(a.max()) <= 1
    np.testing.assert_array_equal(a, b)  # the key decides
    cold = model.sample(6, key=jax.random.key(0), temperature=0.0)
    # T = 0: every row is the flow's image of z = 0 (up to float32 rounding, which XLA:CPU's
    # vectorised loops may leave different in different rows of a batch)
    np.testing.assert_allclose(cold, cold[:1].repeat(6, 0), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="n=0"):
        model.sample(0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="temperature=-1.0"):
        model.sample(2, key=jax.random.key(0), temperature=-1.0)
