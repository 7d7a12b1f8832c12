"""Seconds per training step of the MNIST tutorial DDPM, with compile time, FLOPs and memory.

Each batch size runs in a fresh Python process, so its peak resident memory (RSS) belongs
to that configuration alone. The child builds the model, optimizer and trainer exactly as
the tutorial does, compiles ``nnx.jit(trainer.train_step)`` ahead of time (``.lower()`` then
``.compile()``, which the jitted function reuses on its first call) to time compilation
separately, then times ``--repeats`` steps after one warm-up step, waiting for each step's
results (``block_until_ready``).

Two FLOP counts are recorded: XLA's cost analysis of the compiled step (``flops_per_step``),
which counts the body of a loop once, and ``model_flops_per_step`` (``common.model_flops``:
matrix products and convolutions of the step's jaxpr, loops expanded), which does not depend
on how the layers are written and is the one used for the achieved GFLOP/s.

The machine's float32 matmul throughput is measured first (a large ``jnp.dot`` under
``jit``, best of several), and each step's achieved GFLOP/s is reported as a fraction of it.
The 1-minute load average is recorded before and after each run: on a shared machine a
run whose load exceeds ``--load-threshold`` is repeated once (when it took less than
``--retry-max-s``) and the faster run kept. Results are written after every batch size.

    python benchmarks/train_step.py                          # batch 256, 3 timed steps
    python benchmarks/train_step.py --batch-size 64 256
    python benchmarks/train_step.py --preset tiny            # seconds, to check it runs
    python benchmarks/train_step.py --batch-size 16 --profile-dir /tmp/trace   # + a profile

Nothing is CPU-specific: on a CUDA machine (``jax[cuda12]`` installed) the same command
measures the GPU, and device memory is recorded next to host RSS.
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

DEFAULT_OUT = common.RESULTS_DIR / "train_step.json"


# ----------------------------------------------------------------------------- child process
def build(
    preset: str,
    seed: int = 0,
    microbatch_size: int | None = None,
    compute_dtype: str = "float32",
):
    """Model, optimizer and trainer as in the MNIST tutorial."""
    import jax
    import optax
    from flax import nnx

    from artifex.generative_models.core.noise_schedule import create_noise_schedule
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.trainers.diffusion_trainer import (
        DiffusionTrainer,
        DiffusionTrainingConfig,
    )

    config = common.build_config(preset)
    k_params, k_sample = jax.random.split(jax.random.key(seed))
    model = DDPMModel(config, rngs=nnx.Rngs(params=k_params, sample=k_sample))
    lr_schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=2e-4, warmup_steps=500, decay_steps=20_000, end_value=1e-6
    )
    optimizer = common.tutorial_optimizer(model, lr_schedule)
    trainer = DiffusionTrainer(
        create_noise_schedule(config.noise_schedule),
        DiffusionTrainingConfig(
            prediction_type=None,  # the model's: epsilon, or v for the cpu preset
            ema_decay=0.9999,
            ema_update_every=10,
            microbatch_size=microbatch_size,
            compute_dtype=compute_dtype,
        ),
    )
    return config, model, optimizer, trainer


def measure_child(
    preset: str,
    batch_size: int,
    repeats: int,
    profile_dir: Path | None = None,
    microbatch_size: int | None = None,
    compute_dtype: str = "float32",
) -> dict:
    """Everything about one batch size, measured in this (fresh) process."""
    load_start = common.load_average()
    code = common.git_state()  # the code this process imports (src/ may change between runs)
    rss = {"start": common.current_rss_gb()}

    import jax
    import jax.numpy as jnp
    from flax import nnx

    t0 = time.perf_counter()
    config, model, optimizer, trainer = build(
        preset, microbatch_size=microbatch_size, compute_dtype=compute_dtype
    )
    x = jax.random.uniform(
        jax.random.key(1), (batch_size, *config.input_shape), jnp.float32, -1.0, 1.0
    )
    batch = {"image": x}
    jax.block_until_ready((nnx.state(model), x))
    build_s = time.perf_counter() - t0
    rss["after_build"] = common.current_rss_gb()

    step = nnx.jit(trainer.train_step)
    base_key = jax.random.key(2)

    t0 = time.perf_counter()
    lowered = step.lower(model, optimizer, batch, base_key)
    lower_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    print(
        f"  [batch {batch_size}] lowered in {lower_s:.1f} s, compiled in {compile_s:.1f} s",
        flush=True,
    )
    flops = common.compiled_flops(compiled)
    graphdef, _ = nnx.split((model, optimizer))

    def pure_step(state, batch, key):  # the same step as a pure function, for counting FLOPs
        m, o = nnx.merge(graphdef, state)
        loss, _ = trainer.train_step(m, o, batch, key)
        return loss, nnx.state((m, o))

    work = common.model_flops(pure_step, nnx.state((model, optimizer)), batch, base_key)
    xla_memory = common.compiled_memory(compiled)
    rss["after_compile"] = common.current_rss_gb()
    del lowered, compiled

    cpu_times = []

    def run(i: int) -> float:
        key = jax.random.fold_in(base_key, i)
        cpu_start = time.process_time()
        start = time.perf_counter()
        loss, metrics = step(model, optimizer, batch, key)
        jax.block_until_ready((loss, metrics, nnx.state(model, nnx.Param)))
        elapsed = time.perf_counter() - start
        cpu_times.append(time.process_time() - cpu_start)
        if not bool(jnp.isfinite(loss)):
            raise FloatingPointError(f"non-finite loss {float(loss)} at step {i}")
        print(f"  [batch {batch_size}] step {i}: {elapsed:.3f} s", flush=True)
        return elapsed

    first_call_s = run(0)  # the executable compiled above is reused: no second compile
    times = [run(i + 1) for i in range(repeats)]
    rss["after_steps"] = common.current_rss_gb()

    # The tutorial updates the EMA every 10 steps: its own small compiled program.
    trainer.update_ema(model)
    jax.block_until_ready(trainer.ema_state)
    ema_times = []
    for _ in range(3):
        start = time.perf_counter()
        trainer.update_ema(model)
        jax.block_until_ready(trainer.ema_state)
        ema_times.append(time.perf_counter() - start)

    peak_rss = common.peak_rss_gb()  # before the optional profiled step
    trace = None
    if profile_dir is not None:  # one more step under the profiler, outside the timings
        trace = str(Path(profile_dir).resolve() / f"{preset}_batch_{batch_size}")
        with jax.profiler.trace(trace, create_perfetto_trace=True):
            run(repeats + 1)

    best, median = min(times), statistics.median(times)
    return {
        "preset": preset,
        "batch_size": batch_size,
        "microbatch_size": microbatch_size,
        "compute_dtype": compute_dtype,
        "input_shape": list(config.input_shape),
        "params": common.count_params(model),
        "repeats": repeats,
        "step_times_s": [round(t, 4) for t in times],
        "best_s": round(best, 4),
        "median_s": round(median, 4),
        # CPU seconds of this process per step (all threads): on a shared machine, divided by
        # the core count it estimates the step time the process would take on its own.
        "process_cpu_s_median": round(statistics.median(cpu_times[1 : repeats + 1]), 3),
        "images_per_s_best": round(batch_size / best, 2),
        "images_per_s_median": round(batch_size / median, 2),
        "flops_per_step": flops,
        "model_flops_per_step": work,
        "achieved_gflops_best": round(work / best / 1e9, 1) if work else None,
        "achieved_gflops_best_xla_count": round(flops / best / 1e9, 1) if flops else None,
        "build_s": round(build_s, 2),
        "lower_s": round(lower_s, 2),
        "compile_s": round(compile_s, 2),
        "first_call_s": round(first_call_s, 3),
        "ema_update_s_best": round(min(ema_times), 4),
        "peak_rss_gb": peak_rss,
        "rss_gb": rss,
        "device_memory": common.device_memory(),
        "xla_memory_analysis": xla_memory,
        "load_start": load_start,
        "load_end": common.load_average(),
        "git": code,
        "profile_trace": trace,
    }


# ----------------------------------------------------------------------------- parent process
def run_in_subprocess(
    preset: str,
    batch_size: int,
    repeats: int,
    profile_dir: Path | None = None,
    microbatch_size: int | None = None,
    compute_dtype: str = "float32",
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--preset",
            preset,
            "--batch-size",
            str(batch_size),
            "--repeats",
            str(repeats),
            "--out",
            str(out),
        ]
        if profile_dir is not None:
            cmd += ["--profile-dir", str(profile_dir)]
        if microbatch_size is not None:
            cmd += ["--microbatch-size", str(microbatch_size)]
        cmd += ["--compute-dtype", compute_dtype]
        wall = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=common.REPO_ROOT)
        result = json.loads(out.read_text())
    result["process_wall_s"] = round(time.perf_counter() - wall, 1)
    return result


def contended(result: dict, threshold: float) -> bool:
    loads = [x[0] for x in (result.get("load_start"), result.get("load_end")) if x]
    return bool(loads) and max(loads) > threshold


def print_table(matmul: dict, results: list[dict]) -> None:
    headers = [
        "batch",
        "micro",
        "best s/step",
        "median s",
        "img/s",
        "GFLOP/step",
        "GFLOP/s",
        "% matmul",
        "compile s",
        "peak RSS GB",
        "load start/end",
    ]
    rows = []
    for r in results:
        gflops = r["achieved_gflops_best"]
        rows.append(
            [
                r["batch_size"],
                r.get("microbatch_size") or "-",
                r["best_s"],
                r["median_s"],
                r["images_per_s_best"],
                r["model_flops_per_step"] / 1e9 if r["model_flops_per_step"] else None,
                gflops,
                round(100 * gflops / matmul["gflops"], 1) if gflops else None,
                r["compile_s"],
                r["peak_rss_gb"],
                f"{r['load_start'][0] if r['load_start'] else '-'}"
                f"/{r['load_end'][0] if r['load_end'] else '-'}",
            ]
        )
    print()
    print(
        f"f32 matmul peak: {matmul['gflops']} GFLOP/s ({matmul['size']}^2, best of "
        f"{matmul['repeats']} calls; measured before and after: {matmul.get('all_gflops')})"
    )
    print(common.format_table(headers, rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps after the warm-up")
    parser.add_argument("--preset", choices=common.PRESETS, default="tutorial")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON path (default {DEFAULT_OUT.relative_to(common.REPO_ROOT)}; "
        "the tiny preset writes train_step_tiny.json)",
    )
    parser.add_argument(
        "--load-threshold",
        type=float,
        default=common.DEFAULT_LOAD_THRESHOLD,
        help="1-minute load above which a run counts as contended",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=120.0,
        help="seconds to wait for the load to drop before each run",
    )
    parser.add_argument("--no-retry", action="store_true", help="do not repeat a contended run")
    parser.add_argument(
        "--retry-max-s",
        type=float,
        default=600.0,
        help="repeat a contended run only if it took less than this many seconds",
    )
    parser.add_argument(
        "--matmul-size",
        type=int,
        default=None,
        help="matrix size of the matmul-peak measurement "
        "(default 4096 on CPU, 8192 on an accelerator)",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        help="also trace one extra step per batch size with jax.profiler into "
        "this folder (TensorBoard / Perfetto trace; not in the timings)",
    )
    parser.add_argument(
        "--microbatch-size",
        type=int,
        default=None,
        help="DiffusionTrainingConfig.microbatch_size: accumulate gradients over chunks of "
        "this many images (bounds activation memory)",
    )
    parser.add_argument(
        "--compute-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="DiffusionTrainingConfig.compute_dtype (bfloat16: mixed precision)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    if args.child:
        (batch_size,) = args.batch_size
        result = measure_child(
            args.preset,
            batch_size,
            args.repeats,
            args.profile_dir,
            args.microbatch_size,
            args.compute_dtype,
        )
        common.write_json(args.out, result)
        return

    out = args.out or (
        DEFAULT_OUT
        if args.preset == "tutorial"
        else DEFAULT_OUT.with_name(f"train_step_{args.preset}.json")
    )
    started = time.perf_counter()
    meta = common.machine()
    print(common.describe(meta))
    payload = {
        "benchmark": "train_step",
        "command": " ".join([os.path.relpath(sys.argv[0], common.REPO_ROOT), *sys.argv[1:]]),
        "machine": meta,
        "initial_wait": common.wait_for_quiet(args.load_threshold, args.max_wait),
        "matmul_peak": None,
        "results": [],
        "complete": False,
    }
    matmul_runs = [common.matmul_peak(args.matmul_size) | {"load": common.load_average()}]
    print(f"f32 matmul: {matmul_runs[0]['gflops']} GFLOP/s (load {matmul_runs[0]['load']})")

    def save(matmul: dict) -> Path:
        payload["matmul_peak"] = matmul
        for r in payload["results"]:
            gflops = r["achieved_gflops_best"]
            r["fraction_of_matmul_peak"] = round(gflops / matmul["gflops"], 3) if gflops else None
        payload["total_wall_s"] = round(time.perf_counter() - started, 1)
        return common.write_json(out, payload)

    for batch_size in args.batch_size:
        attempts = []
        for attempt in range(2):
            waited = common.wait_for_quiet(args.load_threshold, args.max_wait)
            print(
                f"\n[batch {batch_size}] attempt {attempt + 1}: load {waited['load_after_wait']}"
                f" (waited {waited['waited_s']} s)",
                flush=True,
            )
            result = run_in_subprocess(
                args.preset,
                batch_size,
                args.repeats,
                args.profile_dir,
                args.microbatch_size,
                args.compute_dtype,
            )
            result["wait"] = waited
            attempts.append(result)
            print(
                f"[batch {batch_size}] best {result['best_s']} s/step, "
                f"{result['images_per_s_best']} img/s, compile {result['compile_s']} s, "
                f"peak RSS {result['peak_rss_gb']} GB, load {result['load_start']} -> "
                f"{result['load_end']}",
                flush=True,
            )
            if attempt == 1 or args.no_retry or not contended(result, args.load_threshold):
                break
            if result["process_wall_s"] > args.retry_max_s:
                print(
                    f"[batch {batch_size}] load above {args.load_threshold}, but the run took "
                    f"longer than --retry-max-s={args.retry_max_s:g}: not repeated"
                )
                break
            print(f"[batch {batch_size}] load above {args.load_threshold}: measuring again")
        best = min(attempts, key=lambda r: r["best_s"])
        best["attempts"] = [
            {
                k: a[k]
                for k in (
                    "best_s",
                    "median_s",
                    "compile_s",
                    "peak_rss_gb",
                    "load_start",
                    "load_end",
                )
            }
            for a in attempts
        ]
        payload["results"].append(best)
        save(max(matmul_runs, key=lambda m: m["gflops"]))  # partial results survive a crash

    # Measured again at the end: on a shared machine the better of the two is the peak.
    matmul_runs.append(common.matmul_peak(args.matmul_size) | {"load": common.load_average()})
    matmul = max(matmul_runs, key=lambda m: m["gflops"]) | {
        "all_gflops": [m["gflops"] for m in matmul_runs]
    }
    payload["complete"] = True
    path = save(matmul)
    print_table(matmul, payload["results"])
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
