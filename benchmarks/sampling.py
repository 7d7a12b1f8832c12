"""Seconds to sample images from the MNIST tutorial DDPM with DDIM and DDPM.

Times ``model.sample(n, scheduler=..., steps=..., key=...)`` for 16 samples with DDIM at
10, 50 and 100 steps and DDPM at its full 1000 steps. The weights are the random
initialisation: the work per step does not depend on them. Each setting is called once
once (compilation plus one run), then ``--repeats`` more times (``--ddpm-repeats`` for
DDPM); the run time is the best of those, and the compile time is the first call minus
that best run. Every call waits for the images (``block_until_ready``).

To relate the time to the hardware, the FLOPs of one network evaluation at the sampling
batch (``common.model_flops``; XLA's own count is recorded too, from compiling it on its
own) give the sampler's achieved GFLOP/s (``steps x FLOPs per evaluation / run time``);
``--no-flops`` skips that.

    python benchmarks/sampling.py
    python benchmarks/sampling.py --settings ddim:10 ddim:100 --repeats 3
    python benchmarks/sampling.py --preset tiny              # quick check that it runs

The same command measures a GPU when JAX runs on one (nothing here is CPU-specific).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

DEFAULT_OUT = common.RESULTS_DIR / "sampling.json"
DEFAULT_SETTINGS = ("ddim:10", "ddim:50", "ddim:100", "ddpm:1000")


def parse_setting(text: str) -> tuple[str, int]:
    scheduler, _, steps = text.partition(":")
    if scheduler not in ("ddim", "ddpm") or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SCHEDULER:STEPS, e.g. ddim:50")
    return scheduler, int(steps)


def build_model(preset: str, seed: int = 0):
    import jax
    from flax import nnx

    from artifex.generative_models.models.diffusion.ddpm import DDPMModel

    config = common.build_config(preset)
    k_params, k_sample = jax.random.split(jax.random.key(seed))
    return DDPMModel(config, rngs=nnx.Rngs(params=k_params, sample=k_sample))


def forward_flops(model, n_samples: int) -> dict:
    """FLOPs and compile time of one network evaluation on ``n_samples`` images."""
    import jax.numpy as jnp
    from flax import nnx

    shape = (n_samples, *model.config.input_shape)
    x = jnp.zeros(shape, jnp.float32)
    t = jnp.zeros((n_samples,), jnp.int32)
    start = time.perf_counter()
    compiled = nnx.jit(lambda m, x, t: m(x, t)).lower(model, x, t).compile()
    compile_s = time.perf_counter() - start
    return {
        "model_flops": common.model_flops(lambda m, x, t: m(x, t), model, x, t),
        "xla_flops": common.compiled_flops(compiled),
        "compile_s": round(compile_s, 2),
    }


def time_setting(model, scheduler: str, steps: int, n_samples: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    load_start = common.load_average()
    key = jax.random.key(3)

    def call(i: int) -> float:
        start = time.perf_counter()
        images = model.sample(
            n_samples, scheduler=scheduler, steps=steps, key=jax.random.fold_in(key, i)
        )
        jax.block_until_ready(images)
        elapsed = time.perf_counter() - start
        if images.shape != (n_samples, *model.config.input_shape):
            raise AssertionError(f"unexpected sample shape {images.shape}")
        if not bool(jnp.all(jnp.isfinite(images))):
            raise FloatingPointError(f"non-finite samples from {scheduler}:{steps}")
        return elapsed

    first = call(0)
    times = [call(i + 1) for i in range(repeats)]
    best = min(times)
    return {
        "scheduler": scheduler,
        "steps": steps,
        "n_samples": n_samples,
        "repeats": repeats,
        "first_call_s": round(first, 3),
        "run_times_s": [round(t, 3) for t in times],
        "best_s": round(best, 3),
        # First call minus the fastest later one; on a contended machine the difference can
        # vanish into the noise (or go negative), which is recorded as None.
        "compile_s": round(first - best, 2) if first - best > 0 else None,
        "ms_per_step": round(1000 * best / steps, 2),
        "images_per_s": round(n_samples / best, 3),
        "load_start": load_start,
        "load_end": common.load_average(),
    }


def print_table(results: list[dict]) -> None:
    headers = [
        "scheduler",
        "steps",
        "best s",
        "runs s",
        "ms/step",
        "compile s",
        "GFLOP/s",
        "load start/end",
    ]
    rows = [
        [
            r["scheduler"],
            r["steps"],
            r["best_s"],
            r["run_times_s"],
            r["ms_per_step"],
            r["compile_s"],
            r.get("achieved_gflops"),
            f"{r['load_start'][0] if r['load_start'] else '-'}"
            f"/{r['load_end'][0] if r['load_end'] else '-'}",
        ]
        for r in results
    ]
    print()
    print(common.format_table(headers, rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=common.PRESETS, default="tutorial")
    parser.add_argument(
        "--settings",
        type=parse_setting,
        nargs="+",
        default=[parse_setting(s) for s in DEFAULT_SETTINGS],
        help=f"SCHEDULER:STEPS items (default: {' '.join(DEFAULT_SETTINGS)})",
    )
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per DDIM setting")
    parser.add_argument("--ddpm-repeats", type=int, default=1, help="timed calls per DDPM setting")
    parser.add_argument(
        "--no-flops",
        action="store_true",
        help="skip compiling one network evaluation for its FLOP count",
    )
    parser.add_argument("--load-threshold", type=float, default=common.DEFAULT_LOAD_THRESHOLD)
    parser.add_argument(
        "--max-wait",
        type=float,
        default=120.0,
        help="seconds to wait for the load to drop before starting",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON path (default {DEFAULT_OUT.relative_to(common.REPO_ROOT)}; "
        "the tiny preset writes sampling_tiny.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.ddpm_repeats < 1 or args.n_samples < 1:
        parser.error("--repeats, --ddpm-repeats and --n-samples must be >= 1")
    out = args.out or (
        DEFAULT_OUT
        if args.preset == "tutorial"
        else DEFAULT_OUT.with_name(f"sampling_{args.preset}.json")
    )

    started = time.perf_counter()
    meta = common.machine()
    print(common.describe(meta))
    wait = common.wait_for_quiet(args.load_threshold, args.max_wait)
    print(f"load {wait['load_after_wait']} (waited {wait['waited_s']} s)", flush=True)

    model = build_model(args.preset)
    forward = None if args.no_flops else forward_flops(model, args.n_samples)
    if forward:
        print(
            f"one network evaluation at batch {args.n_samples}: "
            f"{(forward['model_flops'] or 0) / 1e9:.1f} GFLOP "
            f"(XLA's count: {(forward['xla_flops'] or 0) / 1e9:.1f})",
            flush=True,
        )

    results = []
    for scheduler, steps in args.settings:
        repeats = args.ddpm_repeats if scheduler == "ddpm" else args.repeats
        r = time_setting(model, scheduler, steps, args.n_samples, repeats)
        if forward and forward["model_flops"]:
            r["achieved_gflops"] = round(steps * forward["model_flops"] / r["best_s"] / 1e9, 1)
        results.append(r)
        print(
            f"{scheduler}:{steps}: best {r['best_s']} s of {r['run_times_s']}, compile "
            f"{r['compile_s']} s, load {r['load_start']} -> {r['load_end']}",
            flush=True,
        )

    payload = {
        "benchmark": "sampling",
        "command": " ".join([os.path.relpath(sys.argv[0], common.REPO_ROOT), *sys.argv[1:]]),
        "machine": meta,
        "preset": args.preset,
        "params": common.count_params(model),
        "initial_wait": wait,
        "forward": forward,
        "results": results,
        "peak_rss_gb": common.peak_rss_gb(),
        "device_memory": common.device_memory(),
        "total_wall_s": round(time.perf_counter() - started, 1),
    }
    path = common.write_json(out, payload)
    print_table(results)
    print(f"peak RSS {payload['peak_rss_gb']} GB\nwrote {path}")


if __name__ == "__main__":
    main()
