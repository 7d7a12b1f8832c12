"""Training checkpoints with orbax: everything a run needs to continue bit-exactly.

A checkpoint holds two items:

- ``state`` (arrays): the whole ``nnx.State`` of the object saved (a ``TrainState``: models
  with their RNG streams, optimizers, EMA copies, counters; or a bare model), an optimizer
  state and a host-side EMA (:class:`~artifex.generative_models.training.ema.EMAState`) when
  given separately;
- ``meta`` (JSON): the global step, the training RNG key's data, the data iterator's
  ``get_state()``, and any JSON-serialisable extras (history, hook states, model config).

Small arrays are packed into one flat array per dtype and large or sharded ones written as
they are (:mod:`~artifex.generative_models.training.array_packing`); the layout stored in
``meta`` is checked against the object restored into, naming the first differing array.
Arrays keep their global shape and each host writes the shards it owns, and a restore reads
every array in the layout of the live object it goes into: sharded state saved on 4 devices
restores onto 1 device, or onto another number of hosts.

Typed PRNG keys (``jax.random.key``) are stored as their raw ``key_data`` and re-wrapped with
the implementation of the live key they are restored into.

Saves are synchronous and atomic: orbax writes a step into ``<step>.orbax-checkpoint-tmp-*``
and renames it to ``<step>`` only once every file is on disk, and ``latest_step()`` lists
renamed steps only. A process killed mid-save therefore leaves at most an ignored temporary
directory, never a checkpoint that looks complete but is not.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from artifex.generative_models.training import array_packing as packing
from artifex.generative_models.training.ema import EMAState

#: Name of the best-model export inside a run's output directory.
BEST_MODEL_DIR = "best_model"


def is_prng_key(x: Any) -> bool:
    """Whether ``x`` is a typed (new-style) PRNG key array."""
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def keys_to_data(tree: Any) -> Any:
    """Replace every typed PRNG key in ``tree`` by its ``uint32`` key data."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_prng_key(x) else x, tree)


def data_to_keys(tree: Any, like: Any) -> Any:
    """Inverse of :func:`keys_to_data`: re-wrap key data where ``like`` holds typed keys."""

    def wrap(data, reference):
        if is_prng_key(reference):
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(reference))
        return data

    return jax.tree.map(wrap, tree, like)


def _key_data_list(key: jax.Array) -> list[int]:
    data = jax.random.key_data(key) if is_prng_key(key) else key
    return [int(x) for x in np.asarray(jax.device_get(data)).reshape(-1)]


def _restored_key(meta: dict[str, Any], like: jax.Array | None) -> jax.Array | None:
    """The training key a checkpoint stored, as a key of ``like``'s implementation."""
    if not meta["has_rng_key"]:
        return None
    like = like if like is not None else jax.random.key(0)
    data = np.asarray(meta["rng_key_data"], np.uint32).reshape(jax.random.key_data(like).shape)
    if is_prng_key(like):
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(like))
    return jnp.asarray(data)


def abstract(tree: Any) -> Any:
    """Shapes and dtypes of ``tree`` (the restore target orbax needs)."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def all_finite(tree: Any) -> bool:
    """True when no floating-point leaf of ``tree`` holds a NaN or an infinity.

    Checked on the host: the save copies every array there anyway, and a compiled check
    would cost a compilation per model structure.
    """
    for leaf in jax.tree.leaves(keys_to_data(tree)):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            # Spread over several hosts: reduce where the shards are, fetch one boolean.
            if jnp.issubdtype(leaf.dtype, jnp.inexact) and not bool(jnp.isfinite(leaf).all()):
                return False
            continue
        leaf = np.asarray(jax.device_get(leaf))
        if np.issubdtype(leaf.dtype, np.inexact) and not np.isfinite(leaf).all():
            return False
    return True


@dataclasses.dataclass
class RestoredCheckpoint:
    """What :meth:`TrainingCheckpointer.restore_latest` put back, and what it could not.

    The model, optimizer and trainer are updated in place; the rest is returned.
    """

    step: int
    rng_key: jax.Array | None
    iterator_state: dict[str, Any] | None
    extra: dict[str, Any]


def _model_state(model: nnx.Module | nnx.State, weights_only: bool) -> Any:
    """All of the model's state, or all but its RNG streams.

    An ``nnx.State`` is taken as the model's state itself: its leaves are the model's live
    variables, so a loop can take it once and save it at every checkpoint without walking
    the object graph each time (~20 ms for a small UNet's train state).
    """
    if isinstance(model, nnx.State):
        return model.filter(nnx.Not(nnx.RngState)) if weights_only else model
    return nnx.state(model, nnx.Not(nnx.RngState)) if weights_only else nnx.state(model)


def _manager(
    directory: Path, max_to_keep: int | None, asynchronous: bool = False
) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=True,
        # Synchronous: a save returns once the step is renamed in place. Asynchronous: once
        # the arrays are copied to the host; the files are written (and renamed) meanwhile.
        enable_async_checkpointing=asynchronous,
        cleanup_tmp_directories=True,  # drop temporaries left by a killed run
    )
    return ocp.CheckpointManager(
        os.fspath(directory.absolute()), options=options, item_names=("state", "meta")
    )


class TrainingCheckpointer:
    """Saves and restores training runs under ``directory``, keeping the newest ``max_to_keep``.

    Args:
      directory: where the step directories go (created if missing).
      max_to_keep: how many checkpoints to keep; older ones are deleted after a save.
      asynchronous: return from :meth:`save` once the arrays are on the host and write the
        files in the background; the step is listed only once it is complete, so a process
        killed meanwhile leaves the previous checkpoint as the newest. Every other method,
        and the next save, waits for a save in flight first.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_to_keep: int | None = 3,
        asynchronous: bool = False,
    ):
        self.directory = Path(directory)
        self._manager = _manager(self.directory, max_to_keep, asynchronous)

    def wait(self) -> None:
        """Block until a save in flight is complete on disk."""
        self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or ``None``."""
        self.wait()
        self._manager.reload()
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """Steps of every complete checkpoint on disk, oldest first."""
        self.wait()
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def delete_from(self, step: int) -> None:
        """Delete the checkpoints of ``step`` and later steps."""
        for existing in self.all_steps():
            if existing >= step:
                self._manager.delete(existing)

    def save(
        self,
        step: int,
        model: nnx.Module | nnx.State,
        optimizer: nnx.Optimizer | None = None,
        *,
        ema_state: EMAState | None = None,
        rng_key: jax.Array | None = None,
        iterator_state: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        weights_only: bool = False,
    ) -> Path:
        """Write checkpoint ``step``; returns its directory (with ``asynchronous``, the
        directory appears once the background write completes).

        ``weights_only`` leaves out the model's RNG streams, so that the checkpoint loads
        into a model of the same architecture built with any set of streams.

        Raises:
          FloatingPointError: the model or EMA parameters hold NaN/inf (nothing is written,
            so the last good checkpoint stays the newest).
        """
        state: dict[str, Any] = {"model": _model_state(model, weights_only)}
        if optimizer is not None:
            state["optimizer"] = nnx.state(optimizer)
        if ema_state is not None:
            state["ema"] = {"params": ema_state.params, "count": ema_state.count}
        flat = jax.tree_util.tree_flatten_with_path(keys_to_data(state))[0]
        layout = packing.describe(flat)
        items, finite = packing.pack([leaf for _, leaf in flat], layout)
        if not bool(finite):
            raise FloatingPointError(
                f"refusing to save checkpoint {step}: the model, optimizer or EMA state holds "
                "NaN or infinite values"
            )
        meta = {
            "step": int(step),
            "has_optimizer": optimizer is not None,
            "has_ema": ema_state is not None,
            "has_rng_key": rng_key is not None,
            # As numbers in the JSON: a key is host-local, which orbax cannot save on several
            # hosts, and two integers need no array file.
            "rng_key_data": None if rng_key is None else _key_data_list(rng_key),
            "weights_only": weights_only,
            "layout": layout,
            "iterator_state": iterator_state,
            "extra": extra or {},
        }
        self._manager.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(items), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        return self.directory / str(int(step))

    def metadata(self, step: int | None = None) -> dict[str, Any] | None:
        """``{"step": ..., **extra}`` of checkpoint ``step`` (default: the newest) without
        loading any array; ``None`` when there is no checkpoint."""
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return {"step": int(meta["meta"]["step"]), **meta["meta"]["extra"]}

    def restore_latest(
        self,
        model: nnx.Module,
        optimizer: nnx.Optimizer | None = None,
        *,
        trainer: Any = None,
        rng_key_like: jax.Array | None = None,
    ) -> RestoredCheckpoint | None:
        """Load the newest complete checkpoint into ``model``/``optimizer``/``trainer``.

        ``trainer`` (anything with an ``ema_state`` attribute) gets the stored EMA, or
        ``None`` when the checkpoint has none. ``rng_key_like`` is a key of the same
        implementation as the stored one (default ``jax.random.key(0)``). Returns ``None``
        when there is no checkpoint.
        """
        step = self.latest_step()
        if step is None:
            return None
        return self.restore(step, model, optimizer, trainer=trainer, rng_key_like=rng_key_like)

    def restore(
        self,
        step: int,
        model: nnx.Module,
        optimizer: nnx.Optimizer | None = None,
        *,
        trainer: Any = None,
        rng_key_like: jax.Array | None = None,
    ) -> RestoredCheckpoint:
        """Load checkpoint ``step`` (see :meth:`restore_latest`)."""
        self.wait()
        meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]
        like: dict[str, Any] = {"model": _model_state(model, meta.get("weights_only", False))}
        if meta["has_optimizer"]:
            if optimizer is None:
                raise ValueError(f"checkpoint {step} holds optimizer state: pass the optimizer")
            like["optimizer"] = nnx.state(optimizer)
        if meta["has_ema"]:
            params = nnx.state(model, nnx.Param)
            like["ema"] = {"params": params, "count": jnp.zeros((), jnp.int32)}
        flat, treedef = jax.tree_util.tree_flatten_with_path(keys_to_data(like))
        live = [leaf for _, leaf in flat]
        stored = meta["layout"]
        packing.check_compatible(stored, packing.describe(flat), f"checkpoint {step}")
        items = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(packing.abstract_items(stored, live))
            ),
        )["state"]
        leaves = packing.unpack(items, stored, live)
        restored = data_to_keys(jax.tree_util.tree_unflatten(treedef, leaves), like)
        nnx.update(model, restored["model"])
        if optimizer is not None and "optimizer" in restored:
            nnx.update(optimizer, restored["optimizer"])
        if trainer is not None:
            ema = restored.get("ema")
            trainer.ema_state = None if ema is None else EMAState(ema["params"], ema["count"])
        return RestoredCheckpoint(
            step=int(meta["step"]),
            rng_key=_restored_key(meta, rng_key_like),
            iterator_state=meta["iterator_state"],
            extra=meta["extra"],
        )

    def close(self) -> None:
        """Finish a save in flight and release the manager's resources."""
        self._manager.close()


def export_best_model(
    directory: str | os.PathLike[str],
    model: nnx.Module,
    *,
    step: int,
    ema_state: EMAState | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the model (its EMA weights when ``ema_state`` is given) to ``directory``.

    The export holds the weights without the model's RNG streams, so it loads into the same
    architecture however its ``nnx.Rngs`` were made. It is one checkpoint kept alone
    (``max_to_keep=1``): a newer best replaces the
    older one once it is completely written. An export of ``step`` or later steps (left by
    a run that was resumed from an earlier checkpoint) is replaced. ``metadata`` (e.g.
    ``{"epoch": 3, "loss": 0.021}``) is stored beside it and returned by
    :func:`load_best_model`.
    """
    if ema_state is not None:
        graphdef, _, rest = nnx.split(model, nnx.Param, ...)
        model = nnx.merge(graphdef, ema_state.params, rest)
    checkpointer = TrainingCheckpointer(directory, max_to_keep=1)
    checkpointer.delete_from(step)  # a resumed run replays the export of a step it redoes
    extra = {"ema_weights": ema_state is not None, **(metadata or {})}
    path = checkpointer.save(step, model, extra=extra, weights_only=True)
    checkpointer.close()
    return path


def load_best_model(directory: str | os.PathLike[str], model: nnx.Module) -> dict[str, Any]:
    """Load a :func:`export_best_model` export into ``model``; returns its metadata.

    Raises:
      FileNotFoundError: ``directory`` holds no export.
    """
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"no best-model export in {directory}: not a directory")
    checkpointer = TrainingCheckpointer(directory, max_to_keep=1)
    restored = checkpointer.restore_latest(model)
    checkpointer.close()
    if restored is None:
        raise FileNotFoundError(f"no best-model export in {directory}")
    return {"step": restored.step, **restored.extra}


def best_model_metadata(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a :func:`export_best_model` export, read without its weights.

    Lets a loader build the right model first, e.g. from a stored
    ``DDPMConfig.to_dict()`` under ``"config"``.

    Raises:
      FileNotFoundError: ``directory`` holds no export.
    """
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"no best-model export in {directory}: not a directory")
    checkpointer = TrainingCheckpointer(directory, max_to_keep=1)
    meta = checkpointer.metadata()
    checkpointer.close()
    if meta is None:
        raise FileNotFoundError(f"no best-model export in {directory}")
    return meta


def flat_arrays(tree: Any) -> dict[str, np.ndarray]:
    """``{"path/to/leaf": array}`` of a pytree, keys as data (for saving or comparing)."""
    flat = jax.tree_util.tree_flatten_with_path(keys_to_data(tree))[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


#: Only classes inside the package are rebuilt from a stored type tag.
_TRUSTED_PREFIX = "artifex."


def _type_tag(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(tag: str) -> type:
    import importlib

    module, _, name = tag.partition(":")
    if not module.startswith(_TRUSTED_PREFIX) or not name:
        raise ValueError(
            f"stored type {tag!r} is not an artifex class; load it into a model you build "
            "yourself with load_best_model(directory, model)"
        )
    return getattr(importlib.import_module(module), name)


def model_metadata(model: Any) -> dict[str, Any]:
    """The model's and its config's type tags and ``config.to_dict()``, which
    :func:`load_model` rebuilds it from; ``{}`` for a model without such a config."""
    config = getattr(model, "config", None)
    if not callable(getattr(config, "to_dict", None)):
        return {}
    return {
        "model_type": _type_tag(model),
        "config_type": _type_tag(config),
        "config": config.to_dict(),
    }


def save_model(directory: str | os.PathLike[str], model: nnx.Module, *, step: int = 0) -> Path:
    """Write ``model`` (weights, its config and their types) so :func:`load_model` rebuilds it.

    The model must carry a config with ``to_dict()`` (every artifex model does). Same format as
    :func:`export_best_model`; an existing export in ``directory`` is replaced.
    """
    metadata = model_metadata(model)
    if not metadata:
        raise TypeError(
            f"{type(model).__name__} has no .config with to_dict(); save_model needs it to "
            "rebuild the model (use export_best_model and load_best_model otherwise)"
        )
    return export_best_model(directory, model, step=step, metadata=metadata)


def load_model(directory: str | os.PathLike[str]) -> nnx.Module:
    """Rebuild the model a :func:`save_model` (or fit's best-model export) wrote, weights
    included: ``model = load_model("runs/mnist/best_model")``.

    Raises:
      FileNotFoundError: ``directory`` holds no export.
      ValueError: the export has no stored model type (an export made without one: build the
        model and use :func:`load_best_model`).
    """
    meta = best_model_metadata(directory)
    if "model_type" not in meta or "config_type" not in meta:
        raise ValueError(
            f"{directory} stores no model type; build the model from meta['config'] and call "
            "load_best_model(directory, model)"
        )
    config = _resolve(meta["config_type"]).from_dict(meta["config"])
    model = _resolve(meta["model_type"])(config, rngs=nnx.Rngs(0))
    load_best_model(directory, model)
    return model
