"""The analysis and DDPM-vs-DDIM walkthroughs: script/notebook pairs in sync, smoke runs.

The notebooks are the scripts cell for cell (checked here), so the script smoke runs cover
their code; both smoke runs share one persistent compilation cache.
"""

from __future__ import annotations

import json
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


def smoke(run_notebook, script: Path, out: Path, env: dict[str, str], *flags: str) -> int:
    """Run the paired notebook (cell for cell the script) in smoke mode from its own folder,
    as Jupyter does; returns how many figures it showed inline. Its first line names the
    backend, the preset and the time to expect."""
    argv = ["--smoke", "--output-dir", str(out), *flags]
    stdout, images = run_notebook(script.with_suffix(".ipynb"), argv, env, script.parent)
    first = stdout.splitlines()[0]
    assert first.startswith("artifex ") and ": backend cpu, preset smoke (" in first, first
    assert first.endswith("(expect under a minute)"), first
    return images


def test_analysis_smoke_run(smoke_env, run_notebook, tmp_path):
    out = tmp_path / "diffusion_analysis"
    assert smoke(run_notebook, SCRIPTS["analysis"], out, smoke_env) >= 6  # figures inline
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


def tiny_export(directory: Path) -> None:
    """A small v-prediction model exported with its config, as the MNIST tutorial does."""
    import jax
    from flax import nnx

    from artifex.generative_models.core.configuration import (
        DDPMConfig,
        NoiseScheduleConfig,
        UNetBackboneConfig,
    )
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.checkpointing import export_best_model

    config = DDPMConfig(
        backbone=UNetBackboneConfig(hidden_dims=(8, 16), time_embedding_dim=16, num_res_blocks=1),
        noise_schedule=NoiseScheduleConfig(schedule_type="cosine", num_timesteps=20),
        prediction_type="v_prediction",
    )
    model = DDPMModel(config, rngs=nnx.Rngs(params=jax.random.key(0), sample=jax.random.key(1)))
    export_best_model(directory, model, step=3, metadata={"config": config.to_dict()})


def test_comparison_smoke_run_from_an_export(smoke_env, run_notebook, tmp_path):
    """The comparison rebuilds the model from the configuration stored with an export."""
    out = tmp_path / "ddim_comparison_mnist"
    tiny_export(tmp_path / "ema_model")
    checkpoint = ("--checkpoint", str(tmp_path / "ema_model"))
    assert smoke(run_notebook, SCRIPTS["comparison"], out, smoke_env, *checkpoint) >= 1
    report = (out / "analysis_report.md").read_text()
    assert "v_prediction prediction" in report and "(step 3)" in report
    assert "| DDIM 2 η=0 | 2 |" in report and "| DDPM 2 | 2 |" in report
    results = json.loads((out / "results.json").read_text())["results"]
    assert [r["label"] for r in results] == ["DDPM 2", "DDIM 2 η=0", "DDIM 2 η=0.5", "DDIM 2 η=1"]
    assert all(r["run_s"] > 0 and Path(r["grid_path"]).exists() for r in results)
    assert (out / "timing_quality.png").exists()
