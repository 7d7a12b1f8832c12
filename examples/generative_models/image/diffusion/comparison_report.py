"""Figure and Markdown report of a DDPM-vs-DDIM comparison, for ``ddim_vs_ddpm_comparison.py``.

The measurements come from ``artifex.generative_models.analysis.sampler_comparison``; this
module only lays them out (a two-panel figure, a Markdown table and a few summary lines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from artifex.generative_models.analysis.sampler_comparison import SamplerResult


def reference_result(results: Sequence[SamplerResult]) -> SamplerResult:
    """The baseline for speed-ups: DDPM with the most steps (the full chain)."""
    ddpm = [r for r in results if r.setting.scheduler == "ddpm"]
    pool = ddpm or list(results)
    return max(pool, key=lambda r: r.setting.steps)


def speedups(results: Sequence[SamplerResult]) -> list[float]:
    """Compiled run time of the reference divided by each setting's."""
    base = reference_result(results).run_s
    return [base / r.run_s for r in results]


def plot_comparison(results: Sequence[SamplerResult], path: str | Path) -> Path:
    """Left: compiled sampling time per setting (log scale), compile time hatched beside it.
    Right: FID against sampling time (when measured); lower-left is better."""
    fig = Figure(figsize=(12.0, 4.2))
    ax_time, ax_fid = fig.subplots(1, 2)
    labels = [r.setting.label for r in results]
    y = np.arange(len(results))
    colors = ["tab:blue" if r.setting.scheduler == "ddpm" else "tab:orange" for r in results]
    ax_time.barh(y - 0.2, [r.run_s for r in results], height=0.4, color=colors, label="sampling")
    compiled = [max(r.compile_s, 0.0) for r in results]
    floor = 0.05 * min(r.run_s for r in results)  # below this a program was reused
    ax_time.barh(
        y + 0.2,
        [c if c > floor else 0.0 for c in compiled],
        height=0.4,
        color="none",
        edgecolor="gray",
        hatch="//",
        label="compile (JAX-reported)",
    )
    for i, c in enumerate(compiled):
        if c <= floor:
            ax_time.annotate("program reused", (floor, y[i] + 0.2), fontsize=6, va="center")
    ax_time.set_yticks(y, labels, fontsize=8)
    ax_time.invert_yaxis()
    ax_time.set(
        xscale="log",
        xlabel=f"seconds for {results[0].n_samples} images",
        title="wall-clock time (blue DDPM, orange DDIM)",
    )
    ax_time.grid(alpha=0.3, axis="x", which="both")
    ax_time.legend(fontsize=8, loc="lower right")
    scored = [r for r in results if r.fid is not None]
    if scored:
        for r in scored:
            color = "tab:blue" if r.setting.scheduler == "ddpm" else "tab:orange"
            ax_fid.scatter(r.run_s, r.fid, color=color)
            ax_fid.annotate(
                r.setting.label,
                (r.run_s, r.fid),
                fontsize=7,
                xytext=(4, 2),
                textcoords="offset points",
            )
        ax_fid.set(
            xscale="log",
            xlabel="sampling seconds",
            ylabel="FID (lower is better)",
            title="quality vs time",
        )
        ax_fid.grid(alpha=0.3, which="both")
    else:  # no quality measured: show the speed-ups instead
        ax_fid.barh(y, speedups(results), color=colors)
        ax_fid.set_yticks(y, labels, fontsize=8)
        ax_fid.invert_yaxis()
        ax_fid.set(
            xlabel=f"speed-up vs {reference_result(results).setting.label}",
            title="speed-up (FID n/a: not measured)",
        )
        ax_fid.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def comparison_table(results: Sequence[SamplerResult]) -> str:
    """Markdown table: one row per setting."""
    rows = [
        "| setting | network calls | compile (s) | sampling (s) | images/s "
        "| speed-up vs " + reference_result(results).setting.label + " | FID | KID |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r, up in zip(results, speedups(results), strict=True):
        rows.append(
            f"| {r.setting.label} | {r.setting.steps} | {r.compile_s:.1f} | {r.run_s:.2f} "
            f"| {r.n_samples / r.run_s:.1f} | {up:.1f}× | {_fmt(r.fid, '.1f')} "
            f"| {_fmt(r.kid, '.4f')} |"
        )
    return "\n".join(rows)


def _find(results, scheduler, steps, eta=None):
    for r in results:
        s = r.setting
        if s.scheduler == scheduler and s.steps == steps and (eta is None or s.eta == eta):
            return r
    return None


def summary_lines(results: Sequence[SamplerResult]) -> list[str]:
    """Sentences read off the measurements (speed-ups, and FID where measured)."""
    ref = reference_result(results)
    lines = []
    for r, up in zip(results, speedups(results), strict=True):
        if r.setting.scheduler != "ddim" or r.setting.eta not in (0.0, None):
            continue
        same_steps_ddpm = _find(results, "ddpm", r.setting.steps)
        text = (
            f"{r.setting.label}: {r.run_s:.2f} s against {ref.run_s:.2f} s for "
            f"{ref.setting.label}, a {up:.1f}× speed-up"
        )
        if r.fid is not None and ref.fid is not None:
            text += f" (FID {r.fid:.1f} vs {ref.fid:.1f})"
        other = same_steps_ddpm if same_steps_ddpm is not ref else None
        if other is not None and r.fid is not None and other.fid is not None:
            text += f"; DDPM with the same {r.setting.steps} steps: FID {other.fid:.1f}"
        lines.append(text + ".")
    etas = [r for r in results if r.setting.scheduler == "ddim" and r.fid is not None]
    by_steps: dict[int, list[SamplerResult]] = {}
    for r in etas:
        by_steps.setdefault(r.setting.steps, []).append(r)
    for steps, group in by_steps.items():
        if len(group) > 1:
            parts = ", ".join(f"η={r.setting.eta:g}: {r.fid:.1f}" for r in group)
            lines.append(f"DDIM {steps} steps, FID by eta: {parts}.")
    return lines


def write_report(
    results: Sequence[SamplerResult],
    path: str | Path,
    *,
    context: Mapping[str, Any],
    figure: str | Path | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write ``analysis_report.md``: setup (``context``), table, summary, figure, notes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# DDPM vs DDIM sampling", "", "## Setup", ""]
    lines += [f"- **{k}**: {v}" for k, v in context.items()]
    lines += [
        "",
        "## Measurements",
        "",
        "Sampling time is the median of the compiled runs (or, without repeats, the first "
        "call less its compilation); compile time is the tracing and XLA compilation JAX "
        "reported during the first call. Both samplers make one network call per step. "
        "DDIM's eta is a runtime argument, so settings that differ only in eta share one "
        "compiled program (their compile time is ~0).",
        "",
        comparison_table(results),
        "",
        "## Summary",
        "",
    ]
    lines += [f"- {line}" for line in summary_lines(results)]
    if all(r.fid is None for r in results):
        lines.append(
            "- Quality (FID/KID) was not measured: `artifex.evaluation` was unavailable "
            "or there were fewer samples than it needs."
        )
    if figure is not None:
        rel = Path(figure).resolve().relative_to(path.parent.resolve())
        lines += ["", f"![time and quality per setting]({rel.as_posix()})"]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    path.write_text("\n".join(lines) + "\n")
    return path
