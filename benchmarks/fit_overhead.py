"""What ``fit`` costs per step on top of the compiled step, and what a checkpoint save blocks.

1. **Loop overhead.** The same micro model (one UNet level, 8x8 images) trains with a bare
   loop over the bound, compiled step (``bind_train_step``: the fastest a Python loop can drive
   it) and with ``fit`` and its
   default hooks (metrics fetched every 25 steps, NaN guard, JSONL metrics, checkpoints off),
   each for ``--steps`` and for twice as many steps, the four runs alternating round by round.
   The marginal cost per step, ``(t(2N) - t(N)) / N``, leaves out what a call costs once
   (fit's start, its final checkpoint); fit's minus the bare loop's is the overhead.
2. **Checkpoint saves.** The time ``TrainingCheckpointer.save`` blocks the loop, synchronous and
   asynchronous, for the tiny and the tutorial model (saves 3 s apart, so a background write
   never delays the next), given the state's live variables as ``fit`` gives them; the first
   save, which compiles the packing of small arrays, is reported apart.

    python benchmarks/fit_overhead.py [--steps 200] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--saves", type=int, default=4)
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "fit_overhead.json")
    args = parser.parse_args(argv)

    import jax
    import numpy as np
    import optax
    from flax import nnx

    from artifex.data import ImageBatchIterator
    from artifex.generative_models.core.noise_schedule import create_noise_schedule
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.checkpointing import TrainingCheckpointer
    from artifex.generative_models.training.fit import bind_train_step, fit, step_key
    from artifex.generative_models.training.fit_config import FitConfig
    from artifex.generative_models.training.trainers.diffusion_trainer import DiffusionTrainer

    meta = common.machine()
    print(common.describe(meta))

    def build(preset: str):
        config = common.build_config(preset)
        model = DDPMModel(config, rngs=nnx.Rngs(params=0, sample=1))
        optimizer = nnx.Optimizer(model, optax.adam(1e-4), wrt=nnx.Param)
        trainer = DiffusionTrainer(create_noise_schedule(config.noise_schedule))
        return trainer, trainer.init_state(model, optimizer), config

    trainer, state, config = build("micro")
    height, width, channels = config.input_shape
    images = np.random.default_rng(0).integers(0, 256, (512, height, width, channels), np.uint8)
    batch_size = 8

    def data():
        return ImageBatchIterator(images, np.zeros(512, np.int32), batch_size, pad_to=None)

    step = bind_train_step(trainer, state)
    key = jax.random.key(0)
    warm = data()
    for batch in warm.epoch():  # compile the step and the data pipeline
        jax.block_until_ready(step(batch, key))

    def bare(steps: int) -> float:
        it, done, last = data(), 0, None
        start = time.perf_counter()
        while done < steps:
            for batch in it.epoch():
                last = step(batch, step_key(key, done))  # fit's own (compiled) fold_in
                done += 1
                if done == steps:
                    break
        jax.block_until_ready(last)
        return time.perf_counter() - start

    def with_fit(steps: int) -> float:
        with tempfile.TemporaryDirectory() as out:
            config = FitConfig(
                output_dir=out,
                epochs=1000,
                max_steps=steps,
                checkpoint_every_epochs=None,
                patience=None,
                final_samples=False,
                progress_bar=False,
            )
            start = time.perf_counter()
            fit(trainer, state, data(), config, train_step=step)
            return time.perf_counter() - start

    marginal: dict[str, list[float]] = {"bare": [], "fit": []}
    for _ in range(args.rounds):
        for name, run in (("bare", bare), ("fit", with_fit)):
            short, long = run(args.steps), run(2 * args.steps)
            marginal[name].append((long - short) / args.steps)
    per_step = {k: statistics.median(v) for k, v in marginal.items()}
    overhead_ms = 1e3 * (per_step["fit"] - per_step["bare"])
    print(
        f"loop: bare {1e3 * per_step['bare']:.2f} ms/step, fit {1e3 * per_step['fit']:.2f} "
        f"ms/step: fit adds {overhead_ms:.2f} ms per step (marginal cost, median of "
        f"{args.rounds} rounds)"
    )

    saves = {}
    for preset in ("tiny", "tutorial"):
        _, save_state, _ = build(preset)
        view = nnx.state(save_state)  # what fit saves: the live variables, taken once
        arrays = len(jax.tree.leaves(view))
        for asynchronous in (False, True):
            with tempfile.TemporaryDirectory() as out:
                checkpointer = TrainingCheckpointer(out, max_to_keep=2, asynchronous=asynchronous)
                blocked = []
                for i in range(1, args.saves + 2):
                    start = time.perf_counter()
                    checkpointer.save(i, view, rng_key=key, extra={"history": {}})
                    blocked.append(time.perf_counter() - start)
                    time.sleep(3.0)
                checkpointer.close()
            name = f"{preset}_{'async' if asynchronous else 'sync'}"
            # The first save also compiles the packing program (once per state structure).
            saves[name] = {
                "arrays": arrays,
                "first_ms": round(1e3 * blocked[0]),
                "median_ms": round(1e3 * statistics.median(blocked[1:])),
            }
            print(
                f"save {name}: {arrays} arrays, blocks {saves[name]['median_ms']} ms (median; "
                f"first save {saves[name]['first_ms']} ms)"
            )

    payload = {
        "benchmark": "fit_overhead",
        "machine": meta,
        "steps": args.steps,
        "rounds": args.rounds,
        "ms_per_step": {k: round(1e3 * v, 3) for k, v in per_step.items()},
        "fit_overhead_ms_per_step": round(overhead_ms, 3),
        "checkpoint_saves": saves,
    }
    print(f"wrote {common.write_json(args.out, payload)}")


if __name__ == "__main__":
    main()
