"""The catalogue of user mistakes: each raises at once, naming the argument, the value and the fix.

Every case is a plausible mistake at a public boundary (model call, training step, sampling,
configs, data, ``fit``, the quality metric). A case passes when the call raises the listed
error type and its message contains every listed fragment: the argument's name and the value
passed, at least. Add cases here with every new boundary or model family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from artifex.generative_models.core.configuration import (
    DDPMConfig,
    NoiseScheduleConfig,
    UNetBackboneConfig,
)
from artifex.generative_models.core.configuration.flow_config import FlowConfig
from artifex.generative_models.core.configuration.gan_config import GANConfig
from artifex.generative_models.core.configuration.vae_config import VAEConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.models.diffusion.ddpm import DDPMModel
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)
from artifex.generative_models.training.trainers.gan_trainer import GANTrainingConfig

BACKBONE = UNetBackboneConfig(
    hidden_dims=(8,), in_channels=1, out_channels=1, time_embedding_dim=8, num_res_blocks=1
)
CONFIG = DDPMConfig(
    backbone=BACKBONE,
    noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=10),
    input_shape=(8, 8, 1),
)
MODEL = DDPMModel(CONFIG, rngs=nnx.Rngs(0))
TRAINER = DiffusionTrainer(create_noise_schedule(CONFIG.noise_schedule))
IMAGES = jnp.zeros((2, 8, 8, 1))


def train_step(batch: Any) -> Any:
    optimizer = nnx.Optimizer(MODEL, optax.sgd(0.0), wrt=nnx.Param)
    return nnx.jit(TRAINER.train_step)(MODEL, optimizer, batch, jax.random.key(0))


def iterator(images: np.ndarray, batch_size: Any = 2):
    from artifex.data import ImageBatchIterator

    return ImageBatchIterator(images, np.zeros(len(images), np.int32), batch_size, pad_to=None)


def fit_with(tmp: Any, data: Any = None, trainer: Any = TRAINER, **config: Any) -> Any:
    model = DDPMModel(CONFIG, rngs=nnx.Rngs(0))
    state = TRAINER.init_state(model, nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param))
    if data is None:
        data = iterator(np.zeros((4, 8, 8, 1), np.uint8))
    return fit(trainer, state, data, FitConfig(output_dir=tmp, epochs=1, **config))


def vae() -> Any:
    from artifex.generative_models.models.vae.vae import VAEModel

    return VAEModel(VAEConfig(hidden_dims=(4,), latent_dim=2, dense_dim=8), rngs=nnx.Rngs(0))


def vae_step(batch: Any) -> Any:
    from artifex.generative_models.training.trainers.vae_trainer import VAETrainer

    model = vae()
    trainer = VAETrainer()
    state = trainer.init_state(model, nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param))
    return nnx.jit(trainer.train_step)(state, batch, jax.random.key(0))


def gan() -> tuple[Any, Any]:
    from artifex.generative_models.models.gan import Discriminator, Generator

    config = GANConfig(latent_dim=4, generator_dims=(4, 4), discriminator_dims=(4, 4))
    return Generator(config, rngs=nnx.Rngs(0)), Discriminator(config, rngs=nnx.Rngs(1))


def flow() -> Any:
    from artifex.generative_models.models.flow.glow import FlowModel

    config = FlowConfig(num_scales=1, steps_per_scale=1, hidden_channels=4)
    return FlowModel(config, rngs=nnx.Rngs(0))


def flow_step(batch: Any) -> Any:
    from artifex.generative_models.training.trainers.flow_trainer import FlowTrainer

    model = flow()
    trainer = FlowTrainer()
    state = trainer.init_state(model, nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param))
    return nnx.jit(trainer.train_step)(state, batch, jax.random.key(0))


def conditional() -> DDPMModel:
    return DDPMModel(
        dataclasses.replace(CONFIG, backbone=dataclasses.replace(BACKBONE, num_classes=10)),
        rngs=nnx.Rngs(0),
    )


def conditional_step(batch: Any) -> Any:
    model = conditional()
    optimizer = nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param)
    return nnx.jit(TRAINER.train_step)(model, optimizer, batch, jax.random.key(0))


def score(images: Any) -> Any:
    from artifex.evaluation import MNISTQualityMetric

    return MNISTQualityMetric.load().score(images)


def digits_in_unit_range() -> np.ndarray:
    from artifex.evaluation.digits import load_digits

    return (load_digits("test")[0][:100] + 1.0) / 2.0


Case = tuple[str, Callable[[Any], Any], type[BaseException], tuple[str, ...]]
CASES: list[Case] = [
    # model call model(x_t, t)
    ("t beyond T", lambda _: MODEL(IMAGES, jnp.array([5000, 1])), ValueError, ("t ", "5000")),
    ("negative t", lambda _: MODEL(IMAGES, jnp.array([-1, 1])), ValueError, ("t ", "-1")),
    ("fractional t", lambda _: MODEL(IMAGES, jnp.array([0.5, 1.0])), TypeError, ("t ", "float")),
    ("scalar t", lambda _: MODEL(IMAGES, jnp.array(3)), ValueError, ("t ", "shape ()")),
    (
        "uint8 pixels",
        lambda _: MODEL(jnp.zeros((2, 8, 8, 1), jnp.uint8), jnp.array([1, 1])),
        TypeError,
        ("x_t", "uint8", "127.5"),
    ),
    (
        "no batch axis",
        lambda _: MODEL(jnp.zeros((8, 8, 1)), jnp.array([1])),
        ValueError,
        ("x_t", "(8, 8, 1)", "x[None]"),
    ),
    (
        "wrong channels",
        lambda _: MODEL(jnp.zeros((2, 8, 8, 3)), jnp.array([1, 1])),
        ValueError,
        ("x_t", "(2, 8, 8, 3)", "(8, 8, 1)"),
    ),
    (
        "NCHW",
        lambda _: MODEL(jnp.zeros((2, 1, 8, 8)), jnp.array([1, 1])),
        ValueError,
        ("x_t", "(2, 1, 8, 8)", "NCHW", "transpose"),
    ),
    (
        "wrong size",
        lambda _: MODEL(jnp.zeros((2, 16, 16, 1)), jnp.array([1, 1])),
        ValueError,
        ("x_t", "(2, 16, 16, 1)", "input_shape"),
    ),
    # train_step
    ("batch without image", lambda _: train_step({"x": IMAGES}), KeyError, ("'image'", "'x'")),
    (
        "bare array batch",
        lambda _: train_step(IMAGES),
        TypeError,
        ("batch", "an array of shape (2, 8, 8, 1)"),
    ),
    ("tuple batch", lambda _: train_step((IMAGES,)), TypeError, ("batch", "a tuple")),
    (
        "uint8 batch",
        lambda _: train_step({"image": jnp.zeros((2, 8, 8, 1), jnp.uint8)}),
        TypeError,
        ("batch['image']", "uint8"),
    ),
    (
        "empty batch",
        lambda _: train_step({"image": jnp.zeros((0, 8, 8, 1))}),
        ValueError,
        ("batch['image']", "(0, 8, 8, 1)", "empty"),
    ),
    (
        "32x32 batch for an 8x8 model",
        lambda _: train_step({"image": jnp.zeros((2, 32, 32, 1))}),
        ValueError,
        ("batch['image']", "(2, 32, 32, 1)", "(8, 8, 1)"),
    ),
    # sample
    (
        "eta=inf",
        lambda _: MODEL.sample(2, scheduler="ddim", eta=float("inf")),
        ValueError,
        ("eta=inf",),
    ),
    (
        "eta as text",
        lambda _: MODEL.sample(2, scheduler="ddim", eta="0.5"),
        ValueError,
        ("eta='0.5'",),
    ),
    ("n=4.0", lambda _: MODEL.sample(4.0), ValueError, ("n_samples_or_shape=4.0",)),
    (
        "unknown timestep spacing",
        lambda _: MODEL.sample(2, scheduler="dpm_solver++", spacing="uniform"),
        ValueError,
        ("spacing='uniform'", "'linspace', 'leading', 'trailing'"),
    ),
    (
        "NaN initial noise",
        lambda _: MODEL.sample(initial_noise=jnp.full((2, 8, 8, 1), jnp.nan), scheduler="ddim"),
        ValueError,
        ("initial_noise", "NaN"),
    ),
    ("key as text", lambda _: MODEL.sample(2, key="seed"), TypeError, ("key", "str")),
    # configs
    (
        "huber_delta=inf",
        lambda _: dataclasses.replace(CONFIG, huber_delta=float("inf")),
        ValueError,
        ("DDPMConfig.huber_delta=inf", "finite"),
    ),
    (
        "misspelled nested key",
        lambda _: DDPMConfig.from_dict({"backbone": {"hidden_dim": [8]}}),
        ValueError,
        ("DDPMConfig.backbone", "'hidden_dim'", "did you mean 'hidden_dims'"),
    ),
    (
        "unknown top-level key",
        lambda _: DDPMConfig.from_dict({"lr": 1e-3}),
        ValueError,
        ("DDPMConfig.from_dict", "'lr'", "valid fields"),
    ),
    # data
    (
        "batch_size=2.5",
        lambda _: iterator(np.zeros((4, 8, 8, 1), np.uint8), 2.5),
        TypeError,
        ("batch_size=2.5",),
    ),
    (
        "batch_size as text",
        lambda _: iterator(np.zeros((4, 8, 8, 1), np.uint8), "4"),
        TypeError,
        ("batch_size='4'",),
    ),
    (
        "NCHW uint8 images",
        lambda _: iterator(np.zeros((4, 1, 32, 32), np.uint8)),
        ValueError,
        ("(4, 1, 32, 32)", "NCHW", "transpose"),
    ),
    # fit, before the first step
    (
        "sampling steps beyond T",
        lambda tmp: fit_with(tmp, sampling_steps=50),
        ValueError,
        ("FitConfig.sampling_steps=50", "num_timesteps=10"),
    ),
    (
        "a list as data",
        lambda tmp: fit_with(tmp, data=[IMAGES]),
        TypeError,
        ("data (list)", "lacks"),
    ),
    (
        "data of another size",
        lambda tmp: fit_with(tmp, data=iterator(np.zeros((4, 16, 16, 1), np.uint8))),
        ValueError,
        ("(16, 16, 1)", "(8, 8, 1)"),
    ),
    (
        "not a trainer",
        lambda tmp: fit_with(tmp, trainer=object()),
        TypeError,
        ("object", "train_step"),
    ),
    (
        "a VAE given to the diffusion trainer",
        lambda _: TRAINER.init_state(vae(), nnx.Optimizer(vae(), optax.sgd(0.0), wrt=nnx.Param)),
        TypeError,
        ("DiffusionTrainer trains a DDPMModel", "VAEModel", "VAETrainer"),
    ),
    # VAE
    (
        "VAE: uint8 images",
        lambda _: vae()(jnp.zeros((2, 28, 28, 1), jnp.uint8), key=jax.random.key(0)),
        TypeError,
        ("x ", "uint8"),
    ),
    (
        "VAE: a batch of 32x32 digits",
        lambda _: vae_step({"image": jnp.zeros((2, 32, 32, 1))}),
        ValueError,
        ("batch['image']", "(2, 32, 32, 1)", "(28, 28, 1)"),
    ),
    (
        "VAE: n=2.5 samples",
        lambda _: vae().sample(2.5, key=jax.random.key(0)),
        ValueError,
        ("n=2.5",),
    ),
    (
        "VAE: unknown decoder",
        lambda _: VAEConfig(decoder="poisson"),
        ValueError,
        ("VAEConfig.decoder='poisson'", "bernoulli"),
    ),
    # GAN
    (
        "GAN: NCHW images to the discriminator",
        lambda _: gan()[1](jnp.zeros((2, 1, 28, 28))),
        ValueError,
        ("x ", "(2, 1, 28, 28)", "NCHW"),
    ),
    ("GAN: zero samples", lambda _: gan()[0].sample(0, key=0), ValueError, ("n=0",)),
    (
        "GAN: unknown loss",
        lambda _: GANTrainingConfig(loss="wgan"),
        ValueError,
        ("GANTrainingConfig.loss='wgan'", "hinge"),
    ),
    (
        "GAN: misspelled config key",
        lambda _: GANConfig.from_dict({"latent_dims": 8}),
        ValueError,
        ("'latent_dims'", "did you mean 'latent_dim'"),
    ),
    # normalizing flow
    (
        "flow: three scales of a 28x28 digit",
        lambda _: FlowConfig(num_scales=3),
        ValueError,
        ("input_shape", "num_scales"),
    ),
    (
        "flow: a bare array as the batch",
        lambda _: flow_step(jnp.zeros((2, 28, 28, 1))),
        TypeError,
        ("batch must be a dict", "(2, 28, 28, 1)"),
    ),
    ("flow: zero samples", lambda _: flow().sample(0, key=0), ValueError, ("n=0",)),
    (
        "flow: negative temperature",
        lambda _: flow().sample(2, key=0, temperature=-1.0),
        ValueError,
        ("temperature=-1.0",),
    ),
    # class-conditional diffusion and guidance
    (
        "huge n",
        lambda _: MODEL.sample(10**10, scheduler="ddim", steps=2),
        MemoryError,
        ("n=10,000,000,000", "GiB", "batches of at most"),
    ),
    (
        "labels for an unconditional model",
        lambda _: MODEL.sample(2, scheduler="ddim", steps=2, labels=3),
        ValueError,
        ("labels", "unconditional", "num_classes"),
    ),
    (
        "guidance without labels",
        lambda _: conditional().sample(2, scheduler="ddim", steps=2, guidance_scale=3.0),
        ValueError,
        ("guidance_scale=3.0", "labels="),
    ),
    (
        "label 10 of 10 classes",
        lambda _: conditional().sample(2, scheduler="ddim", steps=2, labels=jnp.array([1, 10])),
        ValueError,
        ("labels", "10", "num_classes=10"),
    ),
    (
        "guidance scale as text",
        lambda _: conditional().sample(2, scheduler="ddim", labels=1, guidance_scale="2"),
        ValueError,
        ("guidance_scale='2'",),
    ),
    (
        "conditional batch without labels",
        lambda _: conditional_step({"image": IMAGES}),
        KeyError,
        ("'label'", "class-conditional"),
    ),
    (
        "float labels in the batch",
        lambda _: conditional_step({"image": IMAGES, "label": jnp.array([0.0, 1.0])}),
        TypeError,
        ("batch['label']", "float32"),
    ),
    (
        "num_classes=1",
        lambda _: dataclasses.replace(BACKBONE, num_classes=1),
        ValueError,
        ("num_classes", "1", ">= 2"),
    ),
    (
        "label_dropout=1.5",
        lambda _: DiffusionTrainingConfig(label_dropout=1.5),
        ValueError,
        ("label_dropout", "1.5"),
    ),
    # the quality metric
    (
        "images in [0, 1]",
        lambda _: score(digits_in_unit_range()),
        ValueError,
        ("[0, 1]", "images * 2 - 1"),
    ),
]


@pytest.mark.parametrize(("name", "call", "error", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_mistake_is_named(name, call, error, fragments, tmp_path):
    with pytest.raises(error) as info:
        call(tmp_path)
    message = str(info.value)
    missing = [fragment for fragment in fragments if fragment not in message]
    assert not missing, f"{name}: message {message!r} lacks {missing}"


def test_an_integer_seed_is_a_key():
    """``key=42`` means ``jax.random.key(42)``: what users expect, accepted."""
    np.testing.assert_array_equal(
        MODEL.sample(2, scheduler="ddim", steps=2, key=42),
        MODEL.sample(2, scheduler="ddim", steps=2, key=jax.random.key(42)),
    )


def test_catalogue_size():
    """The documentation quotes this count; it only grows."""
    assert len(CASES) >= 54
