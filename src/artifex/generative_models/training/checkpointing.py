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
import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from artifex.generative_models.training import array_packing as packing
from artifex.generative_models.training.ema import EMAState

logger = logging.getLogger("artifex")

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


#: Deleted steps are first renamed into this subdirectory (atomic), then removed: a process
#: killed while deleting leaves a partial copy there, never a listed step missing files.
TRASH_DIR = ".trash"
#: Incomplete step directories found on opening are moved here (kept, not deleted).
INVALID_DIR = ".invalid"
#: Steps an export replaces wait here until the new one is complete.
REPLACED_DIR = ".replaced"
#: What every complete step directory holds: orbax's step metadata (written last, on commit)
#: and both items' own metadata.
REQUIRED_FILES = ("_CHECKPOINT_METADATA", "meta/metadata", "state/_METADATA")


class CorruptCheckpointError(ValueError):
    """A checkpoint's files do not hold what was saved (a changed byte, a truncated file)."""


def missing_files(step_dir: Path) -> list[str]:
    """The :data:`REQUIRED_FILES` that ``step_dir`` lacks (``[]``: the step is complete)."""
    return [name for name in REQUIRED_FILES if not (step_dir / name).is_file()]


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
        todelete_subdir=TRASH_DIR,
    )
    return ocp.CheckpointManager(
        os.fspath(directory.absolute()), options=options, item_names=("state", "meta")
    )


def describe_models(obj: Any) -> dict[str, Any]:
    """``{name: model_metadata(model)}`` of a train state's models, or ``{"model": ...}`` of a
    bare model: what a restore compares its target with, field by field."""
    models = getattr(obj, "models", None)
    if isinstance(models, Mapping):
        return {name: model_metadata(m) for name, m in models.items() if model_metadata(m)}
    metadata = model_metadata(obj)
    return {"model": metadata} if metadata else {}


def describe_optimizers(obj: Any) -> dict[str, list[str]]:
    """The optax state types of each optimizer (e.g. ``["ScaleByAdamState", ...]``)."""
    optimizers = getattr(obj, "optimizers", None)
    if not isinstance(optimizers, Mapping):
        optimizers = {"optimizer": obj} if isinstance(obj, nnx.Optimizer) else {}

    def names(optimizer: Any) -> list[str]:
        nodes = jax.tree.leaves(
            optimizer.opt_state, is_leaf=lambda x: isinstance(x, tuple) and hasattr(x, "_fields")
        )
        return [type(n).__name__ for n in nodes if isinstance(n, tuple) and hasattr(n, "_fields")]

    return {name: names(opt) for name, opt in optimizers.items()}


def first_difference(stored: Any, live: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """``(field path, stored value, live value)`` of the first difference of two nested
    dicts (config ``to_dict()`` output), or ``None``. A field the stored dict lacks is no
    difference when the live value is ``None``: checkpoints written before an optional field
    existed (e.g. ``UNetBackboneConfig.num_classes``) still restore."""
    if isinstance(stored, Mapping) and isinstance(live, Mapping):
        for key in sorted(set(stored) | set(live)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if (key not in stored and live[key] is None) or (
                key not in live and stored[key] is None
            ):
                continue  # an optional field one side's version does not have, at its None
            if key not in stored or key not in live:
                return path, stored.get(key, "(absent)"), live.get(key, "(absent)")
            found = first_difference(stored[key], live[key], path)
            if found:
                return found
        return None
    normal = lambda v: list(v) if isinstance(v, tuple | list) else v  # noqa: E731 - JSON lists
    return None if normal(stored) == normal(live) else (prefix, stored, live)


def _check_models(step: int, stored: dict[str, Any], live: dict[str, Any]) -> None:
    for name in sorted(set(stored) & set(live)):
        found = first_difference(stored[name].get("config"), live[name].get("config"))
        if found:
            field, old, new = found
            owner = live[name].get("config_type", "config").rpartition(":")[2]
            raise ValueError(
                f"checkpoint {step} was written for {name!r} with {owner}.{field}={old!r}, "
                f"but the model it is restored into has {field}={new!r}; build the model with "
                "the checkpoint's configuration (TrainingCheckpointer.metadata(step)"
                "['models'] holds it) or start a new run in another directory"
            )


def _check_optimizers(step: int, stored: dict[str, Any], live: dict[str, Any]) -> None:
    for name in sorted(set(stored) & set(live)):
        if stored[name] != live[name]:
            raise ValueError(
                f"checkpoint {step} holds optimizer {name!r} with states {stored[name]}, but "
                f"the optimizer it is restored into has {live[name]}; build the same optax "
                "transformation as the run that wrote it"
            )


class TrainingCheckpointer:
    """Saves and restores training runs under ``directory``, keeping the newest ``max_to_keep``.

    A step counts only when its directory holds every :data:`REQUIRED_FILES`; on opening,
    incomplete ones (e.g. an empty ``checkpoints/100``) are moved to ``.invalid/`` with a
    warning, so the newest complete step is the one resumed from. Deletions rename first
    (``.trash/``). Each checkpoint stores its arrays' layout and checksums, the models'
    configs and the optimizers' state types; a restore into anything else names the
    difference, and a changed array is refused with :class:`CorruptCheckpointError`.

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
        self._primary = jax.process_index() == 0
        if self._primary:
            self._set_aside_incomplete_steps()
            self._recover_replaced()
            self._empty_trash()
        self._manager = _manager(self.directory, max_to_keep, asynchronous)

    def _step_dirs(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.iterdir() if p.is_dir() and p.name.isdigit()]

    def _set_aside_incomplete_steps(self) -> None:
        for step_dir in self._step_dirs():
            missing = missing_files(step_dir)
            if not missing:
                continue
            target = self.directory / INVALID_DIR / f"{step_dir.name}-{time.time_ns()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            step_dir.rename(target)
            logger.warning(
                f"checkpoint {step_dir.name} in {self.directory} is incomplete (missing "
                f"{', '.join(missing)}), e.g. from a process killed while deleting it: moved "
                f"to {target}; the newest complete checkpoint is used instead"
            )

    def _recover_replaced(self) -> None:
        """Put back steps that :func:`export_best_model` set aside to replace them, when the
        process died before the replacement was complete."""
        replaced = self.directory / REPLACED_DIR
        if not replaced.is_dir():
            return
        if not any(not missing_files(p) for p in self._step_dirs()):
            for step_dir in replaced.iterdir():
                if step_dir.name.isdigit() and not missing_files(step_dir):
                    step_dir.rename(self.directory / step_dir.name)
                    logger.warning(
                        f"recovered checkpoint {step_dir.name} in {self.directory}: a "
                        "replacement of it was interrupted"
                    )
        shutil.rmtree(replaced, ignore_errors=True)

    def set_aside(self, step: int, reason: str) -> Path:
        """Move checkpoint ``step`` to ``.invalid/`` (kept for inspection), e.g. a corrupt one
        that a resumed run is about to write again."""
        target = self.directory / INVALID_DIR / f"{step}-{time.time_ns()}"
        if self._primary:
            target.parent.mkdir(parents=True, exist_ok=True)
            (self.directory / str(step)).rename(target)
            logger.warning(f"checkpoint {step} ({reason}) moved to {target}")
        self._manager.reload()
        return target

    def _empty_trash(self) -> None:
        shutil.rmtree(self.directory / TRASH_DIR, ignore_errors=True)

    def wait(self) -> None:
        """Block until a save in flight is complete on disk."""
        self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or ``None``."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def all_steps(self) -> list[int]:
        """Steps of every complete checkpoint on disk, oldest first."""
        self.wait()
        self._manager.reload()
        steps = self._manager.all_steps()
        return sorted(s for s in steps if not missing_files(self.directory / str(s)))

    def delete_from(self, step: int) -> None:
        """Delete the checkpoints of ``step`` and later steps."""
        for existing in self.all_steps():
            if existing >= step:
                self._manager.delete(existing)
        if self._primary:
            self._empty_trash()

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
        models: dict[str, Any] | None = None,
        optimizers: dict[str, list[str]] | None = None,
    ) -> Path:
        """Write checkpoint ``step``; returns its directory (with ``asynchronous``, the
        directory appears once the background write completes).

        ``models`` and ``optimizers`` (:func:`describe_models`, :func:`describe_optimizers`)
        are taken from ``model`` when it is a module; pass them with an ``nnx.State``.

        ``weights_only`` leaves out the model's RNG streams, so that the checkpoint loads
        into a model of the same architecture built with any set of streams.

        Raises:
          FloatingPointError: the model or EMA parameters hold NaN/inf (nothing is written,
            so the last good checkpoint stays the newest).
        """
        if isinstance(model, nnx.State):  # nothing to describe: the caller passes it
            models = {} if models is None else models
            optimizers = {} if optimizers is None else optimizers
        state: dict[str, Any] = {"model": _model_state(model, weights_only)}
        if optimizer is not None:
            state["optimizer"] = nnx.state(optimizer)
        if ema_state is not None:
            state["ema"] = {"params": ema_state.params, "count": ema_state.count}
        flat = jax.tree_util.tree_flatten_with_path(keys_to_data(state))[0]
        layout = packing.describe(flat)
        items, finite, sums = packing.pack([leaf for _, leaf in flat], layout)
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
            "checksums": np.asarray(sums).tolist(),
            "models": describe_models(model) if models is None else models,
            "optimizers": (
                describe_optimizers(optimizer if optimizer is not None else model)
                if optimizers is None
                else optimizers
            ),
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
        if self._primary:
            self._empty_trash()  # steps max_to_keep renamed away (synchronous saves)
        return self.directory / str(int(step))

    def metadata(self, step: int | None = None) -> dict[str, Any] | None:
        """``{"step": ..., **extra}`` of checkpoint ``step`` (default: the newest) without
        loading any array; ``None`` when there is no checkpoint. ``"models"`` holds the
        stored models' configs."""
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        meta = self._read_meta(step)
        return {"step": int(meta["step"]), "models": meta.get("models", {}), **meta["extra"]}

    def _read_meta(self, step: int) -> dict[str, Any]:
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
        except (OSError, ValueError, KeyError) as error:
            raise CorruptCheckpointError(
                f"checkpoint {step} in {self.directory} cannot be read ({error}); delete it "
                "or restore another step"
            ) from error
        return restored["meta"]

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
        meta = self._read_meta(step)
        if isinstance(model, nnx.Module):
            _check_models(step, meta.get("models", {}), describe_models(model))
            live_optimizers = describe_optimizers(optimizer if optimizer is not None else model)
            _check_optimizers(step, meta.get("optimizers", {}), live_optimizers)
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
        try:
            items = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(packing.abstract_items(stored, live))
                ),
            )["state"]
        except (OSError, ValueError) as error:  # tensorstore reports unreadable chunks so
            raise CorruptCheckpointError(
                f"checkpoint {step} in {self.directory} cannot be read ({error}); restore an "
                f"earlier step (complete ones: {self.all_steps()})"
            ) from error
        leaves = packing.unpack(items, stored, live)
        sums = meta.get("checksums")  # absent from checkpoints of artifex before 0.2
        changed = None if sums is None else packing.first_mismatch(stored, sums, leaves)
        if changed is not None:
            raise CorruptCheckpointError(
                f"checkpoint {step} in {self.directory} is corrupt: {changed} does not match "
                "the checksum stored when it was saved (a changed or damaged file); restore an "
                f"earlier step (complete ones: {self.all_steps()})"
            )
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
        if self._primary:
            self._empty_trash()


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
    # A resumed run replays the export of a step it redoes: set the stale export aside (a
    # rename) until the new one is complete, so that a kill in between loses nothing.
    replaced = Path(directory) / REPLACED_DIR
    for existing in checkpointer.all_steps():
        if existing >= step and jax.process_index() == 0:
            replaced.mkdir(exist_ok=True)
            (Path(directory) / str(existing)).rename(replaced / str(existing))
    checkpointer._manager.reload()  # forget the steps just moved
    extra = {"ema_weights": ema_state is not None, **(metadata or {})}
    path = checkpointer.save(step, model, extra=extra, weights_only=True)
    checkpointer.close()
    if jax.process_index() == 0:
        shutil.rmtree(replaced, ignore_errors=True)
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
