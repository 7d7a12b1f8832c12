"""DDPM versus DDIM: wall-clock time (compilation apart) and sample quality per setting.

Every setting is one compiled sampling program (``DDPMModel.sample`` caches it), so a
setting's first call is compilation plus one run. We time that first call and then
``repeats`` further runs. ``compile_s`` is what JAX itself reports for tracing, lowering
and compiling during the first call (``jax.monitoring`` duration events), so
``repeats=0`` still separates compilation from sampling: useful when one run takes
minutes. Sampling cost is proportional to the number of network evaluations, which equals
``steps`` for both samplers. Quality is optional: any callable
``images -> object with .fid (and .kid)``, e.g.
``artifex.evaluation.MNISTQualityMetric.load().score``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from artifex.visualization.images import save_image_grid

#: Step counts compared for both samplers (capped at the model's ``num_timesteps``).
STEP_COUNTS = (10, 50, 100, 1000)
#: DDIM noise scales compared at a fixed step count (0 deterministic, 1 = DDPM's variance).
ETAS = (0.0, 0.5, 1.0)


@dataclasses.dataclass(frozen=True)
class SamplerSetting:
    """One sampler configuration: ``scheduler`` ("ddpm"/"ddim"), ``steps``, DDIM ``eta``."""

    scheduler: str
    steps: int
    eta: float | None = None

    @property
    def label(self) -> str:
        if self.scheduler == "ddpm":
            return f"DDPM {self.steps}"
        return f"DDIM {self.steps} η={self.eta if self.eta is not None else 0.0:g}"

    @property
    def slug(self) -> str:
        """A file-name-safe form of the label, e.g. ``ddim_050_eta0.5``."""
        eta = "" if self.scheduler == "ddpm" else f"_eta{self.eta or 0.0:g}"
        return f"{self.scheduler}_{self.steps:04d}{eta}"


def comparison_settings(
    num_timesteps: int,
    *,
    step_counts: Sequence[int] = STEP_COUNTS,
    etas: Sequence[float] = ETAS,
    eta_steps: int = 50,
) -> list[SamplerSetting]:
    """DDPM and DDIM (eta=0) at each step count, plus DDIM at ``eta_steps`` for each eta.

    Step counts above ``num_timesteps`` are replaced by ``num_timesteps``; duplicates dropped.
    """
    steps = sorted({min(s, num_timesteps) for s in step_counts})
    settings = [SamplerSetting("ddpm", s) for s in steps]
    settings += [SamplerSetting("ddim", s, 0.0) for s in steps]
    eta_steps = min(eta_steps, num_timesteps)
    settings += [SamplerSetting("ddim", eta_steps, float(e)) for e in etas if e != 0.0]
    if 0.0 in etas and eta_steps not in steps:
        settings.append(SamplerSetting("ddim", eta_steps, 0.0))
    return settings


@dataclasses.dataclass
class SamplerResult:
    """Timings (seconds) and optional quality of one setting."""

    setting: SamplerSetting
    n_samples: int
    first_call_s: float
    run_times_s: list[float]
    fid: float | None = None
    kid: float | None = None
    grid_path: str | None = None
    measured_compile_s: float | None = None

    @property
    def compile_s(self) -> float:
        """Tracing + compilation in the first call: as JAX reported it when measured, else
        the first call minus the median compiled run."""
        if self.measured_compile_s is not None:
            return min(self.measured_compile_s, self.first_call_s)
        return max(self.first_call_s - statistics.median(self.run_times_s), 0.0)

    @property
    def run_s(self) -> float:
        """Median sampling time once compiled (the first call less its compilation when
        there were no further runs)."""
        if self.run_times_s:
            return statistics.median(self.run_times_s)
        return self.first_call_s - self.compile_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.setting.label,
            **dataclasses.asdict(self.setting),
            "n_samples": self.n_samples,
            "first_call_s": self.first_call_s,
            "run_times_s": self.run_times_s,
            "run_s": self.run_s,
            "compile_s": self.compile_s,
            "fid": self.fid,
            "kid": self.kid,
            "grid_path": self.grid_path,
        }


#: JAX's duration events for turning a Python function into an executable.
COMPILE_EVENTS = frozenset(
    {
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",  # includes a persistent-cache lookup
    }
)
_compile_seconds: list[float] = []  # appended to while a first call is being timed
_listening = False


def _on_duration(event: str, duration: float, **_: Any) -> None:
    if event in COMPILE_EVENTS and _compile_seconds:
        _compile_seconds[0] += duration


def time_sampler(
    model, setting: SamplerSetting, n_samples: int, *, key: jax.Array, repeats: int = 2
) -> tuple[np.ndarray, float, list[float], float]:
    """``(images, first_call_s, run_times_s, compile_s)`` for one setting; every run uses
    ``key``. ``compile_s`` sums JAX's compile events during the first call."""
    global _listening
    if repeats < 0:
        raise ValueError(f"repeats={repeats!r} must be >= 0")
    if not _listening:
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        _listening = True

    def run() -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        images = model.sample(
            n_samples, scheduler=setting.scheduler, steps=setting.steps, eta=setting.eta, key=key
        )
        images = np.asarray(jax.block_until_ready(images))
        return images, time.perf_counter() - start

    _compile_seconds[:] = [0.0]
    try:
        images, first = run()
        compile_s = _compile_seconds[0]
    finally:
        _compile_seconds.clear()
    run_times = [run()[1] for _ in range(repeats)]
    return images, first, run_times, compile_s


def load_quality_metric() -> Callable[[np.ndarray], Any] | None:
    """``MNISTQualityMetric.load().score`` if ``artifex.evaluation`` and its weights are
    available, else ``None`` (the comparison then reports quality as n/a)."""
    try:
        from artifex.evaluation import MNISTQualityMetric

        return MNISTQualityMetric.load().score
    except Exception:  # missing module, missing weights: quality is optional
        return None


def compare_samplers(
    model,
    settings: Sequence[SamplerSetting],
    *,
    n_samples: int,
    key: jax.Array,
    repeats: int = 2,
    quality: Callable[[np.ndarray], Any] | None = None,
    grid_dir: str | Path | None = None,
    grid_count: int = 16,
    on_result: Callable[[SamplerResult], None] | None = None,
) -> list[SamplerResult]:
    """Time (and optionally score) every setting on ``n_samples`` images from one key.

    With ``grid_dir``, the first ``grid_count`` samples of each setting are saved there as
    ``samples_<slug>.png``. ``quality(images)`` must return an object with ``.fid`` and
    ``.kid``; samples from every setting come from the same ``key``. ``on_result`` gets each
    result as soon as it is measured (e.g. to print progress on a long comparison).
    """
    results = []
    for setting in settings:
        images, first, run_times, compiled = time_sampler(
            model, setting, n_samples, key=key, repeats=repeats
        )
        result = SamplerResult(setting, n_samples, first, run_times, measured_compile_s=compiled)
        if quality is not None:
            scores = quality(images)
            result.fid, result.kid = float(scores.fid), float(getattr(scores, "kid", np.nan))
        if grid_dir is not None:
            path = Path(grid_dir) / f"samples_{setting.slug}.png"
            result.grid_path = str(save_image_grid(images[:grid_count], path, title=setting.label))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
