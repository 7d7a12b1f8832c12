"""Data-parallel diffusion training on every device of one or several hosts.

The same script runs on one CPU, one host with N GPUs, or N hosts (one process each):

    python examples/distributed/train_multihost.py --steps 200            # this machine
    srun python examples/distributed/train_multihost.py                   # SLURM: autodetected
    python examples/distributed/train_multihost.py --coordinator-address 10.0.0.1:1234 \\
        --num-processes 2 --process-id 0                                  # by hand, per host

``--batch-size`` is the global batch: each host loads its own slice of every batch, the
step averages gradients over all devices, and the result is what one device would compute
from the whole batch. See docs/guides/distributed.md.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = p.add_argument_group("cluster (all three, or none for SLURM / a single process)")
    group.add_argument("--coordinator-address", help="host:port of process 0")
    group.add_argument("--num-processes", type=int)
    group.add_argument("--process-id", type=int)
    p.add_argument("--dataset", default="mnist", help="TFDS name: mnist, fashion_mnist, cifar10")
    p.add_argument("--offline-fallback", action="store_true", help="offline MNIST digits")
    p.add_argument("--batch-size", type=int, default=256, help="global batch, all hosts")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--channels", default="64,128,256", help="UNet channels per level")
    p.add_argument("--fsdp", action="store_true", help="shard parameters and optimizer state")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument(
        "--output-dir",
        type=Path,
        default=Path("outputs/multihost"),
        help="shared directory: checkpoints (rerun to resume), history, metrics",
    )
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    p.add_argument("--samples", type=int, default=0, help="images to sample at the end")
    return p.parse_args(argv)


def initialize(args: argparse.Namespace) -> None:
    """Join the job: explicit flags, else SLURM (or another detected cluster), else alone."""
    import jax

    explicit = (args.coordinator_address, args.num_processes, args.process_id)
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise SystemExit("give --coordinator-address, --num-processes and --process-id")
        jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        jax.distributed.initialize()  # reads the SLURM_* variables of the step
    # otherwise: a single process over this machine's devices


def build(args: argparse.Namespace, image_shape: tuple[int, int, int]):
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

    channels = tuple(int(c) for c in args.channels.split(","))
    config = DDPMConfig(
        backbone=UNetBackboneConfig(
            hidden_dims=channels,
            activation="gelu",
            in_channels=image_shape[-1],
            out_channels=image_shape[-1],
            time_embedding_dim=2 * channels[0],
            attention_resolutions=(image_shape[0] // 4,),
            num_res_blocks=2,
        ),
        noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=1000),
        input_shape=image_shape,
    )
    # Every host builds the same initial weights from the same seed.
    k_params, k_sample = jax.random.split(jax.random.key(args.seed))
    model = DDPMModel(config, rngs=nnx.Rngs(params=k_params, sample=k_sample))
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(args.learning_rate))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    trainer = DiffusionTrainer(
        model.noise_schedule, DiffusionTrainingConfig(ema_decay=0.999, ema_update_every=10)
    )
    return model, optimizer, trainer


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    initialize(args)

    import jax

    from artifex.data import make_train_iterator
    from artifex.generative_models.training.distributed import (
        make_data_mesh,
        make_train_step,
        sample_sharded,
    )
    from artifex.generative_models.training.fit import fit
    from artifex.generative_models.training.fit_config import FitConfig

    main_process = jax.process_index() == 0
    mesh = make_data_mesh()
    if main_process:
        print(
            f"artifex multi-host DDPM: backend {jax.default_backend()}, "
            f"{jax.process_count()} process(es), {jax.device_count()} device(s) "
            f"({jax.local_device_count()} here), global batch {args.batch_size}, "
            f"{args.steps} steps (expected time: not measured on a cluster; time "
            "--steps 50 first)",
            flush=True,
        )
    batches = make_train_iterator(
        args.dataset, args.batch_size, seed=args.seed, offline_fallback=args.offline_fallback
    )  # this host's slice of each global batch
    model, optimizer, trainer = build(args, batches.image_shape)
    state = trainer.init_state(model, optimizer)
    # The step over the whole mesh, bound to the state: fit drives it like the one-device step,
    # and its checkpoints hold the sharded state, which restores on any number of devices.
    step = make_train_step(trainer, mesh, fsdp=args.fsdp).bind(state)
    config = FitConfig(
        output_dir=args.output_dir,
        epochs=math.ceil(args.steps / len(batches)),
        max_steps=args.steps,
        seed=args.seed,
        checkpoint_every_steps=args.checkpoint_every,
        patience=None,
        final_samples=False,
        log_every_steps=args.log_every,
        progress_bar=main_process,
    )
    start = time.perf_counter()
    result = fit(trainer, state, batches, config, train_step=step)
    if main_process:
        rate = result.global_step * args.batch_size / (time.perf_counter() - start)
        print(
            f"{result.global_step} steps, final loss {result.losses[-1]:.4f}, {rate:.1f} img/s; "
            f"checkpoints in {config.checkpoint_dir}",
            flush=True,
        )
    if args.samples:
        images = sample_sharded(state.sample_model(), args.samples, mesh, scheduler="ddim")
        if main_process:
            print(f"sampled {images.shape} across {len(images.sharding.device_set)} device(s)")
    if jax.process_count() > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
