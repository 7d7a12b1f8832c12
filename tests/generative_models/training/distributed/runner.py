"""Multi-device and multi-process scenarios, run in fresh processes by the tests.

JAX fixes its device count when it starts, so the tests launch this script with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and read back what it writes:

- ``python runner.py devices OUT``: a few training steps of the tiny model with plain
  ``nnx.jit`` on one device, then data-parallel and FSDP on 4 devices from the same initial
  state, global batches and keys; a checkpoint of the FSDP state; sharded sampling; the
  errors for batches that do not divide.
- ``python runner.py host OUT --process-id I --num-processes P --port PORT``: process ``I``
  of a ``jax.distributed`` job on localhost trains on its slice of each global batch and
  writes its view of the parameters; all processes write one checkpoint together.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

STEPS = 3
GLOBAL_BATCH = 8
LEARNING_RATE = 1e-2
# Adam divides by sqrt(v) + eps: with the default eps a gradient that is only rounding
# noise (e.g. the bias in front of a GroupNorm, exactly zero in theory) becomes a full
# +-lr step whose sign depends on the summation order. A larger eps keeps such noise small
# without changing how real gradients are scaled.
ADAM_EPS = 1e-3
MIN_FSDP_SIZE = 256  # small enough that the micro model's kernels are split under FSDP


def dataset() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
    return images, np.arange(64, dtype=np.int32)


def build():
    """A one-level UNet without attention (the fewest ops to compile), adam and a trainer."""
    import jax
    import optax
    from flax import nnx

    from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
    from artifex.generative_models.core.configuration.diffusion_config import (
        DDPMConfig,
        NoiseScheduleConfig,
    )
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.trainers.diffusion_trainer import (
        DiffusionTrainer,
        DiffusionTrainingConfig,
    )

    config = DDPMConfig(
        backbone=UNetBackboneConfig(
            hidden_dims=(8,),
            activation="silu",
            in_channels=1,
            out_channels=1,
            time_embedding_dim=8,
            num_res_blocks=1,
        ),
        noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=50),
        input_shape=(8, 8, 1),
    )
    k_params, k_sample = jax.random.split(jax.random.key(0))
    model = DDPMModel(config, rngs=nnx.Rngs(params=k_params, sample=k_sample))
    optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE, eps=ADAM_EPS), wrt=nnx.Param)
    trainer = DiffusionTrainer(model.noise_schedule, DiffusionTrainingConfig(ema_decay=0.9))
    return model, optimizer, trainer


def iterator(**kwargs):
    from artifex.data.iterator import ImageBatchIterator

    images, labels = dataset()
    return ImageBatchIterator(images, labels, GLOBAL_BATCH, pad_to=None, seed=3, **kwargs)


def train(step, batches, model, optimizer, trainer, place=lambda b: b) -> list[float]:
    import jax

    losses = []
    for i in range(STEPS):
        loss, _ = step(
            model, optimizer, place(next(batches)), jax.random.fold_in(jax.random.key(1), i)
        )
        trainer.update_ema(model)
        losses.append(float(loss))
    return losses


def params(model) -> dict[str, np.ndarray]:
    import jax
    from flax import nnx

    flat = jax.tree_util.tree_leaves_with_path(nnx.state(model, nnx.Param))
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in flat}


def ema_params(trainer) -> dict[str, np.ndarray]:
    import jax

    flat = jax.tree_util.tree_leaves_with_path(trainer.ema_state.params)
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in flat}


def save_state(directory: Path, model, optimizer, *, ema_state=None, mesh=None) -> None:
    """One checkpoint of the (possibly sharded) model, optimizer and EMA, as fit writes them:
    a TrainState, its EMA copy holding the host-side EMA of the seed-style loop."""
    import jax
    from flax import nnx

    from artifex.generative_models.training import distributed as dist
    from artifex.generative_models.training.checkpointing import TrainingCheckpointer
    from artifex.generative_models.training.state import TrainState

    ema = ("model",) if ema_state is not None else ()
    state = TrainState({"model": model}, {"model": optimizer}, ema=ema)
    if ema_state is not None:
        nnx.update(state.ema["model"], ema_state.params)
        state.ema_count[...] = ema_state.count
    if mesh is not None:  # the EMA copy where the EMA lives, and the counters
        dist.shard_state(state, mesh=mesh, fsdp=True, min_fsdp_size=MIN_FSDP_SIZE)
    elif jax.process_count() > 1:  # the new counters are host-local: make them global too
        nnx.update(state, dist.replicate(nnx.state(state), dist.make_data_mesh()))
    checkpointer = TrainingCheckpointer(directory)
    checkpointer.save(STEPS, state)
    checkpointer.close()


def error_of(fn) -> str | None:
    try:
        fn()
    except ValueError as e:
        return str(e)
    return None


def run_devices(out: Path) -> None:
    import jax
    from flax import nnx

    from artifex.data.global_batch import global_batch
    from artifex.generative_models.training import distributed as dist

    assert jax.device_count() == 4, jax.devices()
    result: dict = {}

    model, optimizer, trainer = build()  # reference: the unchanged single-device step
    result["ref_losses"] = train(nnx.jit(trainer.train_step), iterator(), model, optimizer, trainer)
    np.savez(out / "ref.npz", **params(model))
    np.savez(out / "ref_ema.npz", **ema_params(trainer))

    mesh = dist.make_data_mesh()
    for name, fsdp in (("dp4", False), ("fsdp4", True)):
        model, optimizer, trainer = build()
        step = dist.make_train_step(trainer, mesh, fsdp=fsdp, min_fsdp_size=MIN_FSDP_SIZE)
        result[f"{name}_losses"] = train(step, iterator(), model, optimizer, trainer)
        np.savez(out / f"{name}.npz", **params(model))
        np.savez(out / f"{name}_ema.npz", **ema_params(trainer))
        leaves = jax.tree.leaves(nnx.state((model, optimizer)))
        result[f"{name}_devices"] = sorted({len(x.sharding.device_set) for x in leaves})
        result[f"{name}_split_leaves"] = sum(not x.sharding.is_fully_replicated for x in leaves)
        result[f"{name}_ema_split_leaves"] = sum(
            not x.sharding.is_fully_replicated for x in jax.tree.leaves(trainer.ema_state)
        )
        result[f"{name}_leaves"] = len(leaves)
        if fsdp:
            result["fsdp_largest_spec"] = str(max(leaves, key=lambda x: x.size).sharding.spec)
            save_state(out / "ckpt", model, optimizer, ema_state=trainer.ema_state, mesh=mesh)

    batch = dist.shard_batch(next(iterator()), mesh)
    result["batch_spec"] = str(batch["image"].sharding.spec)
    result["batch_shard_shapes"] = sorted(
        {tuple(s.data.shape) for s in batch["image"].addressable_shards}
    )

    key = jax.random.key(5)
    samples = dist.sample_sharded(model, 8, mesh, scheduler="ddim", steps=4, key=key)
    reference = model.sample(8, scheduler="ddim", steps=4, key=key)
    result["sample_spec"] = str(samples.sharding.spec)
    result["sample_max_diff"] = float(np.max(np.abs(np.asarray(samples) - np.asarray(reference))))

    odd = {"image": np.zeros((6, 8, 8, 1), np.float32)}
    result["errors"] = {
        "shard_batch": error_of(lambda: dist.shard_batch(odd, mesh)),
        "global_batch": error_of(lambda: global_batch(odd, mesh)),
        "sample": error_of(lambda: dist.sample_sharded(model, 6, mesh, scheduler="ddim", steps=2)),
    }
    result.update(run_fit(out, mesh))
    (out / "devices.json").write_text(json.dumps(result, indent=1))


def run_fit(out: Path, mesh) -> dict:
    """``fit`` with the sharded FSDP step on 4 devices for 5 steps, checkpointed there, then
    resumed by ``fit`` with the default single-device step: against 16 single-device steps."""
    import jax
    from flax import nnx

    from artifex.generative_models.training import distributed as dist
    from artifex.generative_models.training.fit import fit
    from artifex.generative_models.training.fit_config import FitConfig

    def fit_run(output_dir: Path, max_steps: int | None, sharded: bool):
        model, optimizer, trainer = build()
        state = trainer.init_state(model, optimizer)
        step = None
        if sharded:
            sharded_step = dist.make_train_step(
                trainer, mesh, fsdp=True, min_fsdp_size=MIN_FSDP_SIZE
            )
            step = sharded_step.bind(state)
        config = FitConfig(
            output_dir=output_dir,
            epochs=2,
            max_steps=max_steps,
            checkpoint_every_steps=3,
            checkpoint_every_epochs=None,
            patience=None,
            final_samples=False,
            progress_bar=False,
        )
        return fit(trainer, state, iterator(), config, train_step=step), state

    reference, reference_state = fit_run(out / "fit_ref", None, sharded=False)
    first, sharded_state = fit_run(out / "fit_sharded", 5, sharded=True)
    leaves = jax.tree.leaves(nnx.state(sharded_state))
    split = sum(not x.sharding.is_fully_replicated for x in leaves if hasattr(x, "sharding"))
    resumed, resumed_state = fit_run(out / "fit_sharded", None, sharded=False)
    for name, state in (("fit_ref", reference_state), ("fit_resumed", resumed_state)):
        np.savez(out / f"{name}.npz", **params(state.model))
        np.savez(out / f"{name}_ema.npz", **params(state.ema["model"]))
    return {
        "fit_ref_losses": reference.losses.tolist(),
        "fit_sharded_steps": first.global_step,
        "fit_sharded_split_leaves": split,
        "fit_resumed_from": resumed.resumed_from,
        "fit_resumed_losses": resumed.losses.tolist(),
        "fit_resumed_devices": sorted(
            {len(x.sharding.device_set) for x in jax.tree.leaves(nnx.state(resumed_state))}
        ),
    }


def run_host(out: Path, process_id: int, num_processes: int, port: int) -> None:
    import jax

    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=60,
    )

    from artifex.data.global_batch import global_batch
    from artifex.generative_models.training import distributed as dist

    mesh = dist.make_data_mesh()
    model, optimizer, trainer = build()
    step = dist.make_train_step(trainer, mesh)
    batches = iterator()  # process index and count come from jax.distributed
    losses = train(step, batches, model, optimizer, trainer, place=lambda b: global_batch(b, mesh))
    save_state(out / "host_ckpt", model, optimizer)
    np.savez(out / f"host{process_id}.npz", **params(model))

    # fit itself across the two processes: each host feeds its slice of the batches.
    from artifex.generative_models.training.fit import fit
    from artifex.generative_models.training.fit_config import FitConfig

    model, optimizer, trainer = build()
    state = trainer.init_state(model, optimizer)
    config = FitConfig(
        output_dir=out / "host_fit",
        epochs=1,
        max_steps=STEPS,
        checkpoint_every_epochs=None,
        patience=None,
        final_samples=False,
        progress_bar=False,
    )
    fitted = fit(trainer, state, iterator(), config, train_step=step.bind(state))
    info = {
        "losses": losses,
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "local_batch": batches.local_batch_size,
        "fit_losses": fitted.losses.tolist(),
        "fit_steps": fitted.global_step,
    }
    (out / f"host{process_id}.json").write_text(json.dumps(info))
    jax.distributed.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("devices", "host"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.mode == "devices":
        run_devices(args.out)
    else:
        run_host(args.out, args.process_id, args.num_processes, args.port)


if __name__ == "__main__":
    main()
