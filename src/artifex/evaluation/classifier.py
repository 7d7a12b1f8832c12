"""The digit classifier whose penultimate layer is the metric's feature space.

Three 3x3 convolution + ReLU + 2x2 max-pool stages (32 -> 16 -> 8 -> 4 pixels) and a
dense layer of :data:`FEATURE_DIM` units; that layer's standardised pre-activations are the
features, and a ReLU and a linear layer on top give the 10 class logits. Small enough to
train in minutes on a CPU and to ship with the package, yet accurate on held-out digits, so
its features separate what makes a digit.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artifex.evaluation.digits import IMAGE_SIZE
from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.dense import linear

NUM_CLASSES = 10
#: Width of the feature layer (the space FID and KID are computed in).
FEATURE_DIM = 64
#: Channels of the three convolution stages.
CHANNELS = (16, 32, 64)
#: Images per compiled feature-extraction call; the last batch is padded to it.
EXTRACT_BATCH = 250


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max-pooling with stride 2 by reshaping (NHWC, even H and W)."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class MNISTClassifier(nnx.Module):
    """CNN for (N, 32, 32, 1) digits in [-1, 1]; ``features(x)`` is the penultimate layer.

    The penultimate layer's pre-activations (``embedding``) feed the head through a ReLU;
    ``features`` standardises them per unit with fixed statistics of the train digits
    (``feature_mean``, ``feature_std``, set once after training), so every unit weighs
    alike in FID and the KID kernel sees values of order 1.

    Args:
      rngs: ``params`` initialises the weights (drawn on the host, see ``initializers``).
    """

    def __init__(self, *, rngs: nnx.Rngs):
        widths = (1, *CHANNELS)
        self.convs = nnx.List(
            [conv(a, b, (3, 3), rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        )
        side = IMAGE_SIZE // 2 ** len(CHANNELS)
        self.dense = linear(side * side * CHANNELS[-1], FEATURE_DIM, rngs=rngs)
        self.head = linear(FEATURE_DIM, NUM_CLASSES, rngs=rngs)
        # Not trained: fixed once from the train digits' embeddings.
        self.feature_mean = nnx.BatchStat(jnp.zeros((FEATURE_DIM,), jnp.float32))
        self.feature_std = nnx.BatchStat(jnp.ones((FEATURE_DIM,), jnp.float32))

    def embedding(self, x: jax.Array) -> jax.Array:
        """(N, FEATURE_DIM) pre-activations of the layer below the classifier head."""
        for layer in self.convs:
            x = max_pool_2x2(jax.nn.relu(layer(x)))
        return self.dense(x.reshape(x.shape[0], -1))

    def standardize(self, embedding: jax.Array) -> jax.Array:
        """``(embedding - feature_mean) / feature_std``."""
        return (embedding - self.feature_mean[...]) / self.feature_std[...]

    def features(self, x: jax.Array) -> jax.Array:
        """(N, FEATURE_DIM) standardised penultimate-layer features: the metric's space."""
        return self.standardize(self.embedding(x))

    def __call__(self, x: jax.Array) -> jax.Array:
        """(N, 10) class logits."""
        return self.head(jax.nn.relu(self.embedding(x)))


def new_classifier(seed: int = 0) -> MNISTClassifier:
    """A freshly initialised classifier (reproducible per ``seed``)."""
    return MNISTClassifier(rngs=nnx.Rngs(params=jax.random.key(seed)))


@functools.partial(jax.jit, static_argnames="graphdef")
def _features_and_probs(graphdef, state, x):
    model = nnx.merge(graphdef, state)
    embedding = model.embedding(x)
    probs = jax.nn.softmax(model.head(jax.nn.relu(embedding)), axis=-1)
    return model.standardize(embedding), probs


def extract(
    model: MNISTClassifier, images: np.ndarray, batch_size: int = EXTRACT_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, FEATURE_DIM) and class probabilities (N, 10) of (N, 32, 32, 1) images.

    One compiled program per ``batch_size``: every batch, the last one padded, has that size.
    """
    graphdef, state = nnx.split(model)
    n = images.shape[0]
    feats, probs = [], []
    for start in range(0, n, batch_size):
        batch = np.asarray(images[start : start + batch_size], np.float32)
        short = batch_size - batch.shape[0]
        if short:
            batch = np.concatenate([batch, np.full((short, *batch.shape[1:]), -1.0, np.float32)])
        f, p = _features_and_probs(graphdef, state, jnp.asarray(batch))
        feats.append(np.asarray(f)[: batch_size - short])
        probs.append(np.asarray(p)[: batch_size - short])
    return np.concatenate(feats), np.concatenate(probs).astype(np.float64)


def fit_feature_standardization(model: MNISTClassifier, images: np.ndarray) -> None:
    """Set ``model.feature_mean`` / ``feature_std`` to the per-unit moments on ``images``."""
    graphdef, state = nnx.split(model)
    embed = jax.jit(lambda s, x: nnx.merge(graphdef, s).embedding(x))
    e = np.concatenate(
        [
            np.asarray(embed(state, jnp.asarray(images[i : i + 500])))
            for i in range(0, len(images), 500)
        ]
    ).astype(np.float64)
    model.feature_mean[...] = jnp.asarray(e.mean(axis=0), jnp.float32)
    model.feature_std[...] = jnp.asarray(e.std(axis=0), jnp.float32)
