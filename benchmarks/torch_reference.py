"""The tutorial's UNet in artifex against the same-size diffusers ``UNet2DModel`` in PyTorch.

Times, in alternating fresh processes (artifex, torch, artifex, torch, ...), one training
step (forward, backward, AdamW update) on a batch and one network evaluation while sampling
(a forward pass without gradients) on a smaller batch, and reports torch's time over
artifex's per pair. PyTorch is optional and never a dependency of artifex: give the
interpreter of another environment that has ``torch`` (a CPU build) and ``diffusers``::

    python3.11 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch diffusers
    python benchmarks/torch_reference.py --torch-python /tmp/torchenv/bin/python

The torch model: 32x32x1 input, ``block_out_channels=(64, 128, 256)``, two residual blocks
per level, self-attention at the 8x8 level, 32 GroupNorm groups, as close to
``common.build_config("tutorial")`` as diffusers' blocks allow; both parameter counts are
recorded. ``--activation`` sets the non-linearity of both networks: ``silu`` (diffusers'
default, the default here) or ``gelu`` (the tutorial's; tanh-approximated in artifex, exact
in torch). Writes ``benchmarks/results/torch_reference.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(HERE.parent.parent))


def _times(run, repeats: int) -> dict:
    run()  # warm-up: compilation (artifex) or allocator warm-up (torch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"best_s": min(times), "median_s": statistics.median(times)}


def child_artifex(train_batch: int, eval_batch: int, repeats: int, activation: str) -> dict:
    import dataclasses

    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.trainers.diffusion_trainer import (
        DiffusionTrainer,
        DiffusionTrainingConfig,
    )
    from benchmarks import common

    config = common.build_config("tutorial")
    config = dataclasses.replace(
        config, backbone=dataclasses.replace(config.backbone, activation=activation)
    )
    model = DDPMModel(config, rngs=nnx.Rngs(0))
    trainer = DiffusionTrainer(model.noise_schedule, DiffusionTrainingConfig(ema_update_every=10))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param)
    state = trainer.init_state(model, optimizer)
    step = nnx.jit(trainer.train_step)
    batch = {"image": jnp.zeros((train_batch, *config.input_shape))}
    keys = iter(jax.random.split(jax.random.key(0), repeats + 1))
    train = _times(lambda: jax.block_until_ready(step(state, batch, next(keys))), repeats)
    forward = jax.jit(lambda m, x, t: m(x, t))
    x = jnp.zeros((eval_batch, *config.input_shape))
    t = jnp.full((eval_batch,), 500, jnp.int32)
    evaluation = _times(lambda: jax.block_until_ready(forward(model, x, t)), repeats)
    params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    return {"train": train, "eval": evaluation, "parameters": int(params), "jax": jax.__version__}


def child_torch(train_batch: int, eval_batch: int, repeats: int, activation: str) -> dict:
    import torch
    from diffusers import UNet2DModel

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = UNet2DModel(
        sample_size=32,
        in_channels=1,
        out_channels=1,
        layers_per_block=2,
        block_out_channels=(64, 128, 256),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
        act_fn=activation,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.zeros(train_batch, 1, 32, 32)
    t = torch.randint(0, 1000, (train_batch,))

    def train_step() -> None:
        noise = torch.randn_like(x)
        loss = torch.nn.functional.huber_loss(model(x + noise, t).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train = _times(train_step, repeats)
    model.eval()
    xe, te = torch.zeros(eval_batch, 1, 32, 32), torch.full((eval_batch,), 500)

    def evaluate() -> None:
        with torch.no_grad():
            model(xe, te)

    evaluation = _times(evaluate, repeats)
    params = sum(p.numel() for p in model.parameters())
    return {
        "train": train,
        "eval": evaluation,
        "parameters": int(params),
        "torch": torch.__version__,
    }


def run_child(python: str, which: str, args: argparse.Namespace) -> dict:
    command = [python, str(HERE), "--child", which, "--train-batch", str(args.train_batch)]
    command += ["--eval-batch", str(args.eval_batch), "--repeats", str(args.repeats)]
    command += ["--activation", args.activation]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-python", help="interpreter of an environment with torch")
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--activation", choices=["silu", "gelu"], default="silu", help="of both networks"
    )
    parser.add_argument("--rounds", type=int, default=2, help="artifex/torch process pairs")
    parser.add_argument("--child", choices=["artifex", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        fn = child_artifex if args.child == "artifex" else child_torch
        print(json.dumps(fn(args.train_batch, args.eval_batch, args.repeats, args.activation)))
        return
    if not args.torch_python:
        parser.error("--torch-python is required: an interpreter whose environment has torch")

    from benchmarks import common

    meta = common.machine()
    print(common.describe(meta))
    pairs = []
    for round_ in range(args.rounds):
        load = common.load_average()
        ours = run_child(sys.executable, "artifex", args)
        theirs = run_child(args.torch_python, "torch", args)
        pair = {"artifex": ours, "torch": theirs, "load_before": load}
        for part in ("train", "eval"):
            pair[f"{part}_torch_over_artifex"] = theirs[part]["best_s"] / ours[part]["best_s"]
        pairs.append(pair)
        print(
            f"round {round_ + 1} (load {load}): train step b{args.train_batch} artifex "
            f"{ours['train']['best_s']:.2f} s, torch {theirs['train']['best_s']:.2f} s; "
            f"evaluation b{args.eval_batch} artifex {ours['eval']['best_s']:.3f} s, torch "
            f"{theirs['eval']['best_s']:.3f} s",
            flush=True,
        )
    result = {
        "benchmark": "torch_reference",
        "machine": meta,
        "train_batch": args.train_batch,
        "eval_batch": args.eval_batch,
        "activation": args.activation,
        "pairs": pairs,
        # best time of each side over all rounds, as the per-pair ratios can flatter either
        "best_train_ratio": min(p["torch"]["train"]["best_s"] for p in pairs)
        / min(p["artifex"]["train"]["best_s"] for p in pairs),
        "best_eval_ratio": min(p["torch"]["eval"]["best_s"] for p in pairs)
        / min(p["artifex"]["eval"]["best_s"] for p in pairs),
        "load_average_end": common.load_average(),
    }
    print(
        "artifex speed relative to torch (torch time / artifex time, best of each side): "
        f"training {result['best_train_ratio']:.2f}x, evaluation {result['best_eval_ratio']:.2f}x"
    )
    out = args.out or common.RESULTS_DIR / "torch_reference.json"
    print(f"wrote {common.write_json(out, result)}")


if __name__ == "__main__":
    main()
