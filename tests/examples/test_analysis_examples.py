"""The analysis and DDPM-vs-DDIM walkthroughs: script/notebook pairs in sync, smoke runs.

The notebooks are the scripts cell for cell (checked here), so the script smoke runs cover
their code; both smoke runs share one persistent compilation cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples/generative_models/image/diffusion"
SCRIPTS = {
    "analysis": EXAMPLES / "diffusion_analysis.py",
    "comparison": EXAMPLES / "ddim_vs_ddpm_comparison.py",
}


def cells(path: Path) -> list[tuple[str, str]]:
    import jupytext

    return [(c.cell_type, c.source.strip()) for c in jupytext.read(path).cells]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_notebook_matches_script(name):
    script = SCRIPTS[name]
    notebook = script.with_suffix(".ipynb")
    expected, actual = cells(script), cells(notebook)
    assert len(expected) >= 6
    assert actual == expected, f"run `jupytext --sync {script.relative_to(ROOT)}`"
    raw = json.loads(notebook.read_text())
    assert raw["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"
    assert all(
        c["outputs"] == [] and c["execution_count"] is None
        for c in raw["cells"]
        if c["cell_type"] == "code"
    )


def smoke(script: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(script), "--smoke", "--output-dir", str(out)],
        env=env,
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_analysis_smoke_run(smoke_env, tmp_path):
    out = tmp_path / "diffusion_analysis"
    smoke(SCRIPTS["analysis"], out, smoke_env)
    expected = {
        "schedules.png",
        "forward_linear.png",
        "forward_cosine.png",
        "training_curve.png",
        "mse_vs_timestep.png",
        "interpolation.png",
    }
    assert expected <= {p.name for p in out.iterdir()}
    assert all((out / name).stat().st_size > 1000 for name in expected)


def test_comparison_smoke_run(smoke_env, tmp_path):
    out = tmp_path / "ddim_comparison_mnist"
    smoke(SCRIPTS["comparison"], out, smoke_env)
    report = (out / "analysis_report.md").read_text()
    assert "| DDIM 2 η=0 | 2 |" in report and "| DDPM 2 | 2 |" in report
    results = json.loads((out / "results.json").read_text())["results"]
    assert [r["label"] for r in results] == ["DDPM 2", "DDIM 2 η=0", "DDIM 2 η=0.5", "DDIM 2 η=1"]
    assert all(r["run_s"] > 0 and Path(r["grid_path"]).exists() for r in results)
    assert (out / "timing_quality.png").exists()
