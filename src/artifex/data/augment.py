"""Random horizontal flips that are reproducible and survive a resume.

Whether image ``i`` of a batch is mirrored left-right is a coin flip drawn from the key
``fold_in(fold_in(key(seed), epoch), batch_index)``: it depends only on where the batch sits
in training, not on how many batches came before in this process. A run resumed from an
iterator state therefore sees exactly the flips an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp


@jax.jit
def random_flip(images: jax.Array, seed: jax.Array, epoch: jax.Array, batch_index: jax.Array):
    """Mirror each NHWC image left-right with probability 1/2, keyed by (seed, epoch, batch)."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), epoch), batch_index)
    flips = jax.random.bernoulli(key, 0.5, (images.shape[0],))
    return jnp.where(flips[:, None, None, None], images[:, :, ::-1, :], images)


class RandomFlipIterator:
    """An exact-epoch iterator (e.g. ``ImageBatchIterator``) whose images are randomly flipped.

    Everything but the batches (``batches_per_epoch``, ``get_state``, ``set_state``, ...)
    is the wrapped iterator's, so checkpoints store the same state with or without flips.

    Args:
      iterator: the batches to flip; each must have an ``"image"`` entry (NHWC).
      seed: seeds the flips (independent of the data order's seed).
    """

    def __init__(self, iterator: Any, *, seed: int = 0) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}.")
        self.iterator = iterator
        self.flip_seed = int(seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.iterator, name)

    def __len__(self) -> int:
        return len(self.iterator)

    def _flip(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        state = self.iterator.get_state()  # already past this batch
        images = random_flip(
            batch["image"], self.flip_seed, state["epoch"], state["batch_index"] - 1
        )
        return {**batch, "image": images}

    def __iter__(self) -> RandomFlipIterator:
        return self

    def __next__(self) -> dict[str, jax.Array]:
        return self._flip(next(self.iterator))

    def epoch(self, index: int | None = None) -> Iterator[dict[str, jax.Array]]:
        """The wrapped iterator's :meth:`epoch`, flipped."""
        for batch in self.iterator.epoch(index):
            yield self._flip(batch)
