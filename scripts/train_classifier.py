"""Train the metric's digit classifier and write the weights file (deterministic).

    python scripts/train_classifier.py [--epochs 30] [--seed 0] [--output PATH]

Trains :class:`MNISTClassifier` on the 4,000 offline train digits (random shifts of up to
``MAX_SHIFT`` pixels as augmentation), measures accuracy on the 1,000 held-out test digits,
computes the reference feature statistics of the train digits and writes everything to
``weights/mnist_classifier.npz``. Fixed seed, fixed data order: the same machine and
library versions give the same file. A few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from artifex.evaluation.classifier import (
    MNISTClassifier,
    extract,
    fit_feature_standardization,
    new_classifier,
)
from artifex.evaluation.digits import BACKGROUND, load_digits, to_classifier_input
from artifex.evaluation.weights import DEFAULT_WEIGHTS_PATH, reference_statistics, save_weights

SEED = 0
EPOCHS = 30
BATCH_SIZE = 100
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
#: Largest random translation (pixels, each axis) applied to a training digit.
MAX_SHIFT = 2


def random_shift(images: jax.Array, key: jax.Array) -> jax.Array:
    """Translate each image by an independent integer offset in [-MAX_SHIFT, MAX_SHIFT]."""
    n, h, w, _ = images.shape
    m = MAX_SHIFT
    padded = jnp.pad(images, ((0, 0), (m, m), (m, m), (0, 0)), constant_values=BACKGROUND)
    offsets = jax.random.randint(key, (n, 2), 0, 2 * m + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, 1))

    return jax.vmap(crop)(padded, offsets)


@nnx.jit
def train_step(model: MNISTClassifier, optimizer: nnx.Optimizer, x, y, key) -> jax.Array:
    """One AdamW step on softmax cross-entropy of a shifted batch; returns the loss."""
    x = random_shift(x, key)

    def loss_fn(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def train(epochs: int = EPOCHS, seed: int = SEED, log=print) -> tuple[MNISTClassifier, float]:
    """Train a classifier from ``seed``; return it and its held-out test accuracy."""
    train_x, train_y = load_digits("train")
    test_x, test_y = load_digits("test")
    train_x, test_x = to_classifier_input(train_x), to_classifier_input(test_x)
    steps_per_epoch = train_x.shape[0] // BATCH_SIZE
    schedule = optax.cosine_decay_schedule(LEARNING_RATE, epochs * steps_per_epoch)
    model = new_classifier(seed)
    optimizer = nnx.Optimizer(
        model, optax.adamw(schedule, weight_decay=WEIGHT_DECAY), wrt=nnx.Param
    )
    order_rng = np.random.default_rng(seed)
    key = jax.random.key(seed + 1)
    for epoch in range(epochs):
        start = time.perf_counter()
        order = order_rng.permutation(train_x.shape[0])
        losses = []
        for step in range(steps_per_epoch):
            rows = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            key, step_key = jax.random.split(key)
            losses.append(
                train_step(
                    model,
                    optimizer,
                    jnp.asarray(train_x[rows]),
                    jnp.asarray(train_y[rows]),
                    step_key,
                )
            )
        _, probs = extract(model, test_x)
        accuracy = float(np.mean(probs.argmax(axis=1) == test_y))
        log(
            f"epoch {epoch + 1}/{epochs}: loss {float(np.mean(jnp.stack(losses))):.4f}, "
            f"held-out accuracy {accuracy:.4f} ({time.perf_counter() - start:.1f} s)"
        )
    return model, accuracy


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--output", type=Path, default=DEFAULT_WEIGHTS_PATH)
    args = parser.parse_args(argv)
    model, accuracy = train(args.epochs, args.seed)
    train_x = to_classifier_input(load_digits("train")[0])
    fit_feature_standardization(model, train_x)
    features, _ = extract(model, train_x)
    path = save_weights(args.output, model, reference_statistics(features), test_accuracy=accuracy)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), held-out accuracy {accuracy:.4f}")
    return path


if __name__ == "__main__":
    main()
