"""Helpers shared by the benchmark scripts: the model presets, what machine ran them,
how busy it was, peak memory, and writing the results as JSON.

Nothing here is specific to a CPU: the same code describes a CUDA machine (its devices and
their memory statistics) when JAX runs there.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

#: Above this 1-minute load average (per the whole machine) a measurement is contended.
DEFAULT_LOAD_THRESHOLD = 2.5

PRESETS = ("tutorial", "tiny", "cpu", "micro")

#: The MNIST tutorial's ``cpu`` preset (its ``CPU`` dict; a test keeps the two equal).
CPU_PRESET = {
    "hidden_dims": (16, 32, 64, 64),
    "num_res_blocks": 1,
    "attention_resolutions": (4,),
    "time_embedding_dim": 64,
    "batch_size": 32,
    "microbatch_size": 16,
    "max_steps": 2400,
    "peak_lr": 2e-3,
    "warmup_steps": 100,
    "final_lr": 1e-6,
    "ema_decay": 0.9999,
    "prediction_type": "v_prediction",
    "loss_weighting": "min_snr",
}


# ----------------------------------------------------------------------------- model presets
def build_config(preset: str, **cpu_preset):
    """The :class:`DDPMConfig` of a preset.

    ``tutorial`` is the MNIST tutorial model (32x32x1, UNet 64-128-256, attention at 8x8);
    ``cpu`` is the tutorial's CPU preset (``CPU_PRESET``; keyword arguments override its
    model fields); ``tiny`` is a small model of the same structure for checking that the
    scripts run.
    """
    from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
    from artifex.generative_models.core.configuration.diffusion_config import (
        DDPMConfig,
        NoiseScheduleConfig,
    )

    if preset == "tutorial":
        backbone = UNetBackboneConfig(
            name="unet_backbone",
            hidden_dims=(64, 128, 256),
            activation="gelu",
            in_channels=1,
            out_channels=1,
            time_embedding_dim=128,
            attention_resolutions=(8,),
            num_res_blocks=2,
            channel_mult=(1, 2, 4),
            dropout_rate=0.0,
        )
        input_shape = (32, 32, 1)
    elif preset == "cpu":
        values = {**CPU_PRESET, **cpu_preset}
        backbone = UNetBackboneConfig(
            name="unet_backbone",
            hidden_dims=tuple(values["hidden_dims"]),
            activation="gelu",
            in_channels=1,
            out_channels=1,
            time_embedding_dim=values["time_embedding_dim"],
            attention_resolutions=tuple(values["attention_resolutions"]),
            num_res_blocks=values["num_res_blocks"],
            dropout_rate=0.0,
        )
        input_shape = (32, 32, 1)
    elif preset == "tiny":
        backbone = UNetBackboneConfig(
            name="unet_backbone_tiny",
            hidden_dims=(16, 32),
            activation="gelu",
            in_channels=1,
            out_channels=1,
            time_embedding_dim=32,
            attention_resolutions=(8,),
            num_res_blocks=1,
            dropout_rate=0.0,
        )
        input_shape = (16, 16, 1)
    elif preset == "micro":  # one UNet level on 8x8 images: a step of a few milliseconds
        backbone = UNetBackboneConfig(
            hidden_dims=(8,),
            in_channels=1,
            out_channels=1,
            time_embedding_dim=8,
            attention_resolutions=(),
            num_res_blocks=1,
        )
        input_shape = (8, 8, 1)
    else:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    schedule = NoiseScheduleConfig(
        name="cosine_schedule",
        schedule_type="cosine",
        num_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
    )
    prediction = {**CPU_PRESET, **cpu_preset}["prediction_type"] if preset == "cpu" else "epsilon"
    return DDPMConfig(
        name=f"ddpm_{preset}",
        prediction_type=prediction,
        backbone=backbone,
        noise_schedule=schedule,
        input_shape=input_shape,
        loss_type="huber",
        clip_denoised=True,
    )


def tutorial_optimizer(model, lr_schedule):
    """The tutorial's optimizer: global-norm clipping at 1.0, then AdamW (weight decay 1e-5)."""
    import optax
    from flax import nnx

    return nnx.Optimizer(
        model,
        optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lr_schedule, weight_decay=1e-5)),
        wrt=nnx.Param,
    )


def count_params(model) -> int:
    """Number of trainable parameters of an NNX module."""
    import jax
    from flax import nnx

    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


# ----------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _total_ram_gb() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)  # kB -> GiB
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> dict:
    """Commit, and whether (and how) tracked files under ``src/`` differ from it."""
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "src")
    modified = bool(dirty) if dirty is not None else None
    state = {"commit": commit, "src_modified_since_commit": modified}
    if modified:
        diff = _git("diff", "HEAD", "--", "src") or ""
        state["src_diff_sha256"] = hashlib.sha256(diff.encode()).hexdigest()[:16]
    return state


def versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy", "jax-cuda12-plugin"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            if package != "jax-cuda12-plugin":
                out[package] = None
    return out


def machine() -> dict:
    """What the figures depend on: hardware, libraries, JAX backend, code version, date."""
    import jax

    devices = jax.devices()
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": _total_ram_gb(),
        "platform": platform.platform(),
        "versions": versions(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [f"{d.platform}:{d.device_kind}" for d in devices],
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "git": git_state(),
    }


# ----------------------------------------------------------------------------- load and memory
def load_average() -> list[float] | None:
    """1-, 5- and 15-minute load averages of the machine (None where unsupported)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def wait_for_quiet(threshold: float, max_wait_s: float, poll_s: float = 15.0) -> dict:
    """Wait (at most ``max_wait_s``) until the 1-minute load drops to ``threshold``.

    Returns the load seen first and last and how long was waited, for the record.
    """
    first = load_average()
    start = time.monotonic()
    load = first
    while load is not None and load[0] > threshold:
        remaining = max_wait_s - (time.monotonic() - start)
        if remaining <= 0:
            break
        time.sleep(min(poll_s, remaining))
        load = load_average()
    return {
        "load_before_wait": first,
        "load_after_wait": load,
        "waited_s": round(time.monotonic() - start, 1),
    }


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (10^9 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    bytes_ = peak if sys.platform == "darwin" else peak * 1024
    return round(bytes_ / 1e9, 3)


def current_rss_gb() -> float | None:
    """Resident memory of this process now, in GB."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        pages = int(statm.read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e9, 3)
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.Process().memory_info().rss / 1e9, 3)


def device_memory() -> list[dict] | None:
    """Peak and current bytes in use per accelerator (None on CPU, where RSS says it)."""
    import jax

    out = []
    for d in jax.local_devices():
        if d.platform == "cpu":
            continue
        try:
            stats = d.memory_stats() or {}
        except Exception:  # noqa: BLE001 - not every backend implements it
            stats = {}
        out.append(
            {
                "device": f"{d.platform}:{d.id}",
                "peak_gb": round(stats["peak_bytes_in_use"] / 1e9, 3)
                if "peak_bytes_in_use" in stats
                else None,
                "in_use_gb": round(stats["bytes_in_use"] / 1e9, 3)
                if "bytes_in_use" in stats
                else None,
            }
        )
    return out or None


# ----------------------------------------------------------------------------- XLA analyses
def _first(analysis: Any) -> dict:
    """``cost_analysis()`` returns a dict or (older JAX) a list with one dict per program."""
    if analysis is None:
        return {}
    if isinstance(analysis, (list, tuple)):
        return dict(analysis[0]) if analysis else {}
    return dict(analysis)


def compiled_flops(compiled) -> float | None:
    """FLOPs of one execution of a compiled program, from XLA's cost analysis."""
    try:
        cost = _first(compiled.cost_analysis())
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    flops = cost.get("flops")
    return float(flops) if flops is not None and flops > 0 else None


def _sub_jaxprs(value) -> list:
    """Jaxprs held in an equation parameter (a jaxpr, a closed jaxpr, or a list of them)."""
    if hasattr(value, "eqns"):
        return [value]
    if hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        return [value.jaxpr]
    if isinstance(value, (list, tuple)):
        return [j for v in value for j in _sub_jaxprs(v)]
    return []


def _eqn_flops(eqn) -> float:
    name = eqn.primitive.name
    if name == "dot_general":
        (_, rhs_contract), (_, rhs_batch) = (
            eqn.params["dimension_numbers"][0],
            eqn.params["dimension_numbers"][1],
        )
        lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
        free = [d for i, d in enumerate(rhs) if i not in rhs_contract and i not in rhs_batch]
        return 2.0 * math.prod(lhs) * math.prod(free)
    if name == "conv_general_dilated":
        rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, *spatial)
        kernel = eqn.invars[1].aval.shape
        out = eqn.outvars[0].aval.shape
        window = math.prod(kernel[d] for d in rhs_spec[2:])
        return 2.0 * math.prod(out) * window * kernel[rhs_spec[1]]
    return 0.0


def _dead_code_removed(jaxpr):
    try:  # JAX's own dead-code elimination (internal API; skipped if it moves)
        from jax._src.interpreters import partial_eval as pe

        return pe.dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))[0]
    except Exception:  # noqa: BLE001
        return jaxpr


def model_flops(fun, *args) -> float | None:
    """FLOPs of the matrix products and convolutions that ``fun(*args)`` executes.

    Counted on the function's jaxpr after dead-code elimination (what XLA would also drop).
    Unlike XLA's cost analysis, which counts a loop body once, the body of a ``scan`` counts
    ``length`` times, so the figure does not depend on how a computation is written (one
    convolution, or a loop of matrix products). A convolution counts every output element
    times its full window, padding included. ``cond`` counts its costliest branch and a
    ``while`` loop (unknown trip count) its body once. Element-wise work is not counted.
    """
    import jax

    try:
        closed = jax.make_jaxpr(fun)(*args)
    except Exception:  # noqa: BLE001 - a figure we can do without
        return None
    return jaxpr_flops(_dead_code_removed(closed.jaxpr))


def jaxpr_flops(jaxpr) -> float:
    """Matrix-product and convolution FLOPs of a (closed) jaxpr; see :func:`model_flops`."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0.0
    for eqn in jaxpr.eqns:
        total += _eqn_flops(eqn)
        name = eqn.primitive.name
        for key, value in eqn.params.items():
            subs = _sub_jaxprs(value)
            if not subs:
                continue
            if name == "cond" and key == "branches":
                total += max(jaxpr_flops(j) for j in subs)
                continue
            times = eqn.params.get("length", 1) if name == "scan" else 1
            total += times * sum(jaxpr_flops(j) for j in subs)
    return total


def compiled_memory(compiled) -> dict | None:
    """XLA's buffer sizes for a compiled program (arguments, outputs, temporaries), in GB."""
    try:
        mem = compiled.memory_analysis()
    except Exception:  # noqa: BLE001
        return None
    if mem is None:
        return None
    if isinstance(mem, (list, tuple)):
        mem = mem[0] if mem else None
        if mem is None:
            return None
    out = {}
    for field in (
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "alias_size_in_bytes",
        "temp_size_in_bytes",
        "generated_code_size_in_bytes",
    ):
        value = getattr(mem, field, None)
        if value is not None:
            out[field.replace("_in_bytes", "_gb")] = round(value / 1e9, 3)
    return out or None


def matmul_peak(size: int | None = None, repeats: int = 5) -> dict:
    """Best float32 matrix-multiply throughput of the default device, in GFLOP/s.

    ``size`` defaults to 4096 on a CPU and 8192 on an accelerator. Uses the default matmul
    precision, i.e. what the model's convolutions and dense layers get.
    """
    import jax
    import jax.numpy as jnp

    if size is None:
        size = 4096 if jax.default_backend() == "cpu" else 8192
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (size, size), jnp.float32)
    b = jax.random.normal(kb, (size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, b))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(dot(a, b))
        times.append(time.perf_counter() - start)
    best = min(times)
    return {
        "size": size,
        "repeats": repeats,
        "best_s": round(best, 4),
        "gflops": round(2 * size**3 / best / 1e9, 1),
    }


# ----------------------------------------------------------------------------- output
def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` as indented JSON, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return "/".join(_fmt(v) for v in value)
    return str(value)


def describe(meta: dict) -> str:
    """One-paragraph summary of :func:`machine` for the console."""
    v = meta["versions"]
    return (
        f"{meta['date_utc']}  {meta['cpu']} ({meta['cores']} cores, {meta['ram_gb']} GiB)  "
        f"backend={meta['jax_backend']} {meta['jax_devices']}\n"
        f"jax {v.get('jax')} / jaxlib {v.get('jaxlib')} / flax {v.get('flax')} / "
        f"optax {v.get('optax')}  commit {str(meta['git']['commit'])[:10]}"
        f"{' (+ local changes in src/)' if meta['git']['src_modified_since_commit'] else ''}"
    )
