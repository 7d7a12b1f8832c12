"""Data-parallel scaling: training throughput on 1, 2, 4 devices at a fixed per-device batch.

Each device count runs in a fresh process that builds the model, wraps
``trainer.train_step`` with ``make_train_step`` over the first ``N`` devices, compiles it
once, and times ``--repeats`` steps (after one warm-up step) on a global batch of
``N x --per-device-batch``. Reported: images/s and the scaling efficiency
``throughput(N) / (N x throughput(1))`` (1.0 is perfect linear scaling).

On a CPU the devices are simulated (``--xla_force_host_platform_device_count``): they
share the same cores, so N simulated devices do N times the work on the same hardware.
There the ideal efficiency is ``1/N`` and the figure shows the overhead of partitioning
(collectives, per-device programs), not a speed-up. On a machine with N accelerators the
same command measures real scaling (the flag only affects the host CPU platform).

    python benchmarks/scaling.py                       # 1, 2, 4 devices, tiny preset
    python benchmarks/scaling.py --devices 1 2 4 8 --preset tutorial --fsdp
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

DEFAULT_OUT = common.RESULTS_DIR / "scaling.json"


# ----------------------------------------------------------------------------- child process
def measure_child(preset: str, devices: int, per_device_batch: int, repeats: int, fsdp: bool):
    """One device count, measured in this (fresh) process."""
    load_start = common.load_average()
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from artifex.generative_models.core.noise_schedule import create_noise_schedule
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.distributed import make_data_mesh, make_train_step
    from artifex.generative_models.training.trainers.diffusion_trainer import (
        DiffusionTrainer,
        DiffusionTrainingConfig,
    )

    if jax.device_count() < devices:
        raise SystemExit(f"asked for {devices} devices, JAX sees {jax.device_count()}")
    config = common.build_config(preset)
    k_params, k_sample = jax.random.split(jax.random.key(0))
    model = DDPMModel(config, rngs=nnx.Rngs(params=k_params, sample=k_sample))
    optimizer = nnx.Optimizer(model, optax.adamw(2e-4, weight_decay=1e-5), wrt=nnx.Param)
    trainer = DiffusionTrainer(
        create_noise_schedule(config.noise_schedule), DiffusionTrainingConfig()
    )
    mesh = make_data_mesh(jax.devices()[:devices])
    step = make_train_step(trainer, mesh, fsdp=fsdp)
    batch_size = devices * per_device_batch
    x = jax.random.uniform(jax.random.key(1), (batch_size, *config.input_shape), jnp.float32, -1, 1)
    batch = step.place_batch({"image": x})

    graphdef, state = nnx.split((model, optimizer))
    fn, shardings = step.jitted(graphdef, state)
    t0 = time.perf_counter()
    lowered = fn.lower(state, batch, jax.random.key(2))
    lowered.compile()  # the jitted function reuses this executable on its first call
    compile_s = time.perf_counter() - t0

    def run(i: int) -> float:
        start = time.perf_counter()
        loss, _ = step(model, optimizer, batch, jax.random.fold_in(jax.random.key(2), i))
        jax.block_until_ready((loss, nnx.state(model, nnx.Param)))
        if not bool(jnp.isfinite(loss)):
            raise FloatingPointError(f"non-finite loss at step {i}")
        return time.perf_counter() - start

    run(0)
    times = [run(i + 1) for i in range(repeats)]
    best, median = min(times), statistics.median(times)
    return {
        "devices": devices,
        "device_kind": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
        "fsdp": fsdp,
        "per_device_batch": per_device_batch,
        "global_batch": batch_size,
        "step_times_s": [round(t, 4) for t in times],
        "best_s": round(best, 4),
        "median_s": round(median, 4),
        "images_per_s_best": round(batch_size / best, 2),
        "images_per_s_median": round(batch_size / median, 2),
        "compile_s": round(compile_s, 2),
        "peak_rss_gb": common.peak_rss_gb(),
        "device_memory": common.device_memory(),
        "load_start": load_start,
        "load_end": common.load_average(),
    }


# ----------------------------------------------------------------------------- parent process
def run_in_subprocess(args, devices: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--out", str(out)]
        cmd += ["--preset", args.preset, "--devices", str(devices)]
        cmd += ["--per-device-batch", str(args.per_device_batch), "--repeats", str(args.repeats)]
        cmd += ["--fsdp"] if args.fsdp else []
        flags = os.environ.get("XLA_FLAGS", "")
        env = {
            **os.environ,
            "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}",
        }
        subprocess.run(cmd, check=True, cwd=common.REPO_ROOT, env=env)
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--per-device-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps after the warm-up")
    parser.add_argument("--preset", choices=common.PRESETS, default="tiny")
    parser.add_argument("--fsdp", action="store_true", help="shard parameters FSDP-style")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        (result,) = [args.devices[0]]
        payload = measure_child(args.preset, result, args.per_device_batch, args.repeats, args.fsdp)
        common.write_json(args.out, payload)
        return

    import jax

    meta = common.machine()  # the parent's view: without the device-count flag
    print(common.describe(meta), flush=True)
    results = []
    for n in args.devices:
        print(f"-- {n} device(s), global batch {n * args.per_device_batch}", flush=True)
        results.append(run_in_subprocess(args, n))
    base = results[0]["images_per_s_best"] / results[0]["devices"]
    for r in results:
        r["scaling_efficiency"] = round(r["images_per_s_best"] / (r["devices"] * base), 3)
    simulated = jax.default_backend() == "cpu"
    payload = {
        "benchmark": "scaling",
        "preset": args.preset,
        "fsdp": args.fsdp,
        "simulated_devices": simulated,
        "note": (
            "simulated CPU devices share the same cores: efficiency measures partitioning "
            "overhead (ideal 1/N), not speed-up"
            if simulated
            else "real devices: efficiency 1.0 is linear scaling"
        ),
        "machine": meta,
        "results": results,
    }
    common.write_json(args.out, payload)
    headers = ["devices", "global batch", "best s/step", "img/s", "efficiency", "compile s"]
    rows = [
        [
            r["devices"],
            r["global_batch"],
            r["best_s"],
            r["images_per_s_best"],
            r["scaling_efficiency"],
            r["compile_s"],
        ]
        for r in results
    ]
    print(common.format_table(headers, rows))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
