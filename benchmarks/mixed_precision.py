"""Training step in float32 against bfloat16 compute, side by side in one process.

``DiffusionTrainingConfig(compute_dtype="bfloat16")`` runs the network on bfloat16 copies of
the weights; this times both settings on the same model and batch, alternating A B A B so
that a change of load hits both, and reports the ratio per pair::

    python benchmarks/mixed_precision.py --preset cpu --batch-size 64 --rounds 5

Writes ``benchmarks/results/mixed_precision.json``. The default is float32 wherever this
ratio is not measured below 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=common.PRESETS, default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="A B pairs timed")
    parser.add_argument("--steps", type=int, default=3, help="steps per timing")
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "mixed_precision.json")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.trainers.diffusion_trainer import (
        DiffusionTrainer,
        DiffusionTrainingConfig,
    )

    meta = common.machine()
    print(common.describe(meta))
    config = common.build_config(args.preset)
    batch = {"image": jnp.zeros((args.batch_size, *config.input_shape))}
    runs = {}
    for dtype in ("float32", "bfloat16"):
        model = DDPMModel(config, rngs=nnx.Rngs(0))
        trainer = DiffusionTrainer(
            model.noise_schedule, DiffusionTrainingConfig(compute_dtype=dtype)
        )
        state = trainer.init_state(model, nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param))
        step = nnx.jit(trainer.train_step)
        start = time.perf_counter()
        jax.block_until_ready(step(state, batch, jax.random.key(0)))
        runs[dtype] = {"step": step, "state": state, "compile_s": time.perf_counter() - start}

    def timed(dtype: str) -> float:
        run = runs[dtype]
        start = time.perf_counter()
        for i in range(args.steps):
            out = run["step"](run["state"], batch, jax.random.key(i))
        jax.block_until_ready(out)
        return (time.perf_counter() - start) / args.steps

    pairs = []
    for _ in range(args.rounds):
        pairs.append({"float32": timed("float32"), "bfloat16": timed("bfloat16")})
        pair = pairs[-1]
        print(
            f"float32 {pair['float32']:.3f} s, bfloat16 {pair['bfloat16']:.3f} s, "
            f"ratio {pair['bfloat16'] / pair['float32']:.2f}",
            flush=True,
        )
    ratios = [p["bfloat16"] / p["float32"] for p in pairs]
    result = {
        "benchmark": "mixed_precision",
        "machine": meta,
        "preset": args.preset,
        "batch_size": args.batch_size,
        "compile_s": {k: round(v["compile_s"], 1) for k, v in runs.items()},
        "pairs": pairs,
        "median_ratio_bf16_over_f32": statistics.median(ratios),
        "load_average_end": common.load_average(),
    }
    print(f"median bfloat16 / float32 step time: {result['median_ratio_bf16_over_f32']:.2f}")
    print(f"wrote {common.write_json(args.out, result)}")


if __name__ == "__main__":
    main()
