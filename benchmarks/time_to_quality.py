"""Time to quality: the tutorial's CPU preset trained from scratch, FID/KID against the clock.

Trains the ``cpu`` preset of the MNIST tutorial (``common.CPU_PRESET``, the same values as
the tutorial's ``CPU`` dict; a test keeps the two equal) on the offline MNIST digits and
scores the EMA model every ``--eval-every-s`` seconds of training with
``artifex.evaluation`` (``--eval-samples`` DDIM samples against the real-digit reference).
It stops at ``--target-fid``, at ``--budget-s`` seconds of training, or after the preset's
steps, whichever comes first. Evaluation time is not training time: the clock that the
budget and the table use counts training only (compilation included), and each row also
gives the process CPU seconds, which on a shared machine show how much of the wall time
this run actually got.

    python benchmarks/time_to_quality.py                    # the preset, FID <= 15 or 30 min
    python benchmarks/time_to_quality.py --budget-s 600 --eval-every-s 120
    python benchmarks/time_to_quality.py --override batch_size=32 peak_lr=2e-3

Writes ``benchmarks/results/time_to_quality.json`` and the last sample grid next to it.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

DEFAULT_OUT = common.RESULTS_DIR / "time_to_quality.json"


def parse_overrides(pairs: list[str]) -> dict:
    """``["batch_size=32", "hidden_dims=(32, 64, 64)"]`` -> a dict of Python literals."""
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in common.CPU_PRESET:
            raise SystemExit(
                f"--override {pair!r}: unknown field; use one of {list(common.CPU_PRESET)}"
            )
        out[name] = ast.literal_eval(value)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-fid", type=float, default=15.0)
    parser.add_argument("--budget-s", type=float, default=1800.0, help="training seconds")
    parser.add_argument("--eval-every-s", type=float, default=180.0)
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--eval-steps", type=int, default=50, help="DDIM steps when scoring")
    parser.add_argument("--override", nargs="*", default=[], help="preset field=value pairs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import jax
    import numpy as np
    import optax
    from flax import nnx

    from artifex.data import make_train_iterator
    from artifex.evaluation import MNISTQualityMetric, evaluate_model
    from artifex.generative_models.core.noise_schedule import create_noise_schedule
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.fit import fit
    from artifex.generative_models.training.fit_config import FitConfig
    from artifex.generative_models.training.hooks import Hook
    from artifex.generative_models.training.trainers.diffusion_trainer import (
        DiffusionTrainer,
        DiffusionTrainingConfig,
    )
    from artifex.visualization import save_image_grid

    preset = {**common.CPU_PRESET, **parse_overrides(args.override)}
    meta = common.machine()
    print(common.describe(meta))
    print("preset:", preset)
    config = common.build_config("cpu", **preset)
    keys = jax.random.split(jax.random.key(args.seed), 6)
    model = DDPMModel(config, rngs=nnx.Rngs(params=keys[0], sample=keys[2]))
    steps = preset["max_steps"]
    lr_schedule = optax.warmup_cosine_decay_schedule(
        0.0, preset["peak_lr"], min(preset["warmup_steps"], steps // 2), steps, preset["final_lr"]
    )
    optimizer = common.tutorial_optimizer(model, lr_schedule)
    trainer = DiffusionTrainer(
        create_noise_schedule(config.noise_schedule),
        DiffusionTrainingConfig(
            prediction_type=preset["prediction_type"],
            loss_weighting=preset["loss_weighting"],
            ema_decay=preset["ema_decay"],
            ema_update_every=10,
            microbatch_size=preset["microbatch_size"],
        ),
    )
    train_iter = make_train_iterator(
        "mnist",
        batch_size=preset["batch_size"],
        seed=args.seed,
        download=False,
        offline_fallback=True,
    )
    state = trainer.init_state(model, optimizer)
    metric = MNISTQualityMetric.load()

    payload = {
        "benchmark": "time_to_quality",
        "command": " ".join([os.path.relpath(sys.argv[0], common.REPO_ROOT), *sys.argv[1:]]),
        "machine": meta,
        "preset": {k: list(v) if isinstance(v, tuple) else v for k, v in preset.items()},
        "train_examples": train_iter.num_examples,
        "target_fid": args.target_fid,
        "budget_s": args.budget_s,
        "eval_samples": args.eval_samples,
        "eval_ddim_steps": args.eval_steps,
        "evaluations": [],
        "complete": False,
    }
    headers = ["step", "train s", "cpu s", "loss", "FID", "KID", "IS", "eval s", "load"]
    rows = []

    class TrainingClock(Hook):
        """Scores the EMA model every ``--eval-every-s`` seconds of training (evaluation time
        excluded from the clock) and stops at the target FID or the budget."""

        def __init__(self) -> None:
            self.next_eval, self.reached = args.eval_every_s, None
            self.eval_wall = self.eval_cpu = 0.0

        def on_start(self, run) -> None:
            self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()

        def clocks(self) -> tuple[float, float]:
            wall = time.perf_counter() - self.start_wall - self.eval_wall
            return wall, time.process_time() - self.start_cpu - self.eval_cpu

        def on_step(self, run, metrics) -> None:
            if run.global_step % 10 == 0:
                jax.block_until_ready(metrics)  # the clock must see the work it dispatched
            train_s, _ = self.clocks()
            last = run.global_step >= steps or train_s >= args.budget_s
            if train_s < self.next_eval and not last:
                return
            jax.block_until_ready(metrics)
            self.next_eval += args.eval_every_s
            wall, cpu = time.perf_counter(), time.process_time()
            fid = self.evaluate(run)
            self.eval_wall += time.perf_counter() - wall
            self.eval_cpu += time.process_time() - cpu
            if fid <= args.target_fid:
                self.reached = run.global_step
            if last or self.reached is not None:
                run.request_stop(f"time to quality: stopping at step {run.global_step}")

        def evaluate(self, run) -> float:
            train_s, cpu_s = self.clocks()
            start = time.perf_counter()
            ema = run.state.sample_model()
            result = evaluate_model(
                ema, metric, args.eval_samples, jax.random.key(args.seed + 1), steps=args.eval_steps
            )
            grid = ema.sample(16, scheduler="ddim", steps=100, key=jax.random.key(args.seed + 2))
            save_image_grid(
                np.asarray(grid),
                args.out.with_suffix(".png"),
                nrow=4,
                title=f"step {run.global_step}, {train_s / 60:.1f} min of training",
            )
            run.flush()  # the losses up to this step
            record = {
                "step": run.global_step,
                "train_s": round(train_s, 1),
                "process_cpu_s": round(cpu_s, 1),
                "loss_last_100": round(float(np.mean(run.history.losses[-100:])), 5),
                **result.as_dict(),
                "eval_s": round(time.perf_counter() - start, 1),
                "load": common.load_average(),
            }
            payload["evaluations"].append(record)
            rows.append(
                [
                    record["step"],
                    record["train_s"],
                    record["process_cpu_s"],
                    record["loss_last_100"],
                    round(result.fid, 2),
                    round(result.kid, 3),
                    round(result.inception_score, 2),
                    record["eval_s"],
                    record["load"][0],
                ]
            )
            print(common.format_table(headers, rows[-1:]), flush=True)
            common.write_json(args.out, payload)
            return result.fid

    clock = TrainingClock()
    with tempfile.TemporaryDirectory() as run_dir:
        config = FitConfig(
            output_dir=run_dir,  # a fresh run every time: the clock starts at step 0
            epochs=math.ceil(steps / len(train_iter)),
            max_steps=steps,
            seed=args.seed,
            checkpoint_every_epochs=None,
            patience=None,
            final_samples=False,
            progress_bar=False,
        )
        fit(trainer, state, train_iter, config, hooks=[clock], learning_rate=lr_schedule)
    reached = clock.reached
    payload["reached_target_at_step"] = reached
    payload["complete"] = True
    path = common.write_json(args.out, payload)
    print()
    print(common.format_table(headers, rows))
    print(
        f"\ntarget FID <= {args.target_fid}: "
        + (f"reached at step {reached}" if reached else "not reached")
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
