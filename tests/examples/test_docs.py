"""The README and the documentation stay tied to the code they show."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
QUICKSTART = ROOT / "examples" / "quickstart.py"
SNIPPET = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.MULTILINE)
README_COMMANDS = [
    "source activate.sh && python examples/generative_models/image/diffusion/"
    "diffusion_mnist_training.py",
    "source activate.sh && python -m pytest -q",
]


def section(path: Path, name: str) -> str:
    """The text between ``--8<-- [start:name]`` and ``--8<-- [end:name]`` in ``path``."""
    text = path.read_text()
    start, end = f"--8<-- [start:{name}]", f"--8<-- [end:{name}]"
    assert text.count(start) == 1 and text.count(end) == 1, f"{path}: section {name!r}"
    body = text.split(start, 1)[1].split(end, 1)[0]
    return body.split("\n", 1)[1].rsplit("\n", 1)[0]  # drop the marker lines


def snippet_references() -> list[tuple[Path, str]]:
    refs = []
    for page in sorted(DOCS.rglob("*.md")):
        refs += [(page, ref) for ref in SNIPPET.findall(page.read_text())]
    return refs


def test_docs_include_code_by_reference():
    refs = snippet_references()
    included = {ref.split(":")[0] for _, ref in refs}
    assert "examples/generative_models/image/diffusion/diffusion_mnist_training.py" in included
    assert "examples/quickstart.py" in included


@pytest.mark.parametrize("page, ref", snippet_references(), ids=lambda x: str(x))
def test_snippet_exists(page, ref):
    path, _, name = ref.partition(":")
    assert (ROOT / path).is_file(), f"{page.name} includes missing file {path}"
    if name:
        assert section(ROOT / path, name).strip(), f"{page.name}: empty section {ref}"


def test_readme_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert lines[:4] == ["```bash", *README_COMMANDS, "```"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert README_COMMANDS[1] in ci.splitlines()[ci.splitlines().index("rc=0") + 2]
    assert "mkdocs build --strict" in ci


def test_readme_example_is_the_quickstart():
    readme = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert blocks, "README has no python example"
    assert blocks[0].rstrip("\n") == section(QUICKSTART, "example")
    assert len(blocks[0].strip().splitlines()) <= 12


def test_cpu_preset_table_matches_the_script(resolved_config):
    """The preset table on the tutorial page shows the values the script uses."""
    page = (DOCS / "tutorials" / "diffusion-mnist.md").read_text()
    lines = page.split("## Runs on a CPU", 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in table
    }
    configs = [
        resolved_config("--preset", "full"),
        resolved_config("--preset", "cpu"),
        resolved_config("--smoke"),
    ]
    for column, config in enumerate(configs):
        assert rows["UNet hidden dims"][column] == config["hidden_dims"]
        assert rows["Residual blocks per level"][column] == config["num_res_blocks"]
        assert rows["Time embedding"][column] == config["time_embedding_dim"]
        sizes = [int(size) for size in re.findall(r"\d+", config["attention_resolutions"])]
        shown = ", ".join(f"{size}x{size}" for size in sizes) or "none"
        assert rows["Attention at"][column] == shown
        assert rows["Batch size"][column] == config["batch_size"]
        micro = config["microbatch_size"]
        assert rows["Microbatches"][column] == ("none" if micro == "None" else f"{micro} images")
        assert rows["DDIM steps"][column] == config["sampling_steps"]
        lr, warmup = rows["Peak LR / warm-up"][column].split(" / ")
        assert float(lr) == float(config["peak_lr"])
        assert warmup.split()[0] == config["warmup_steps"]
        length = rows["Length"][column].replace(",", "")
        expected = (
            f"{config['epochs']} epochs"
            if config["max_steps"] == "None"
            else f"{config['max_steps']} steps"
        )
        assert length == expected


def test_generate_figures_draws_the_schedules(tmp_path):
    script = DOCS / "scripts" / "generate_figures.py"
    result = subprocess.run(
        [sys.executable, str(script), "--only", "schedules", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "concepts" / "schedules.png").stat().st_size > 10_000
    # The tutorial page quotes where alpha-bar falls below 0.01; the script prints it.
    page = (DOCS / "tutorials" / "diffusion-mnist.md").read_text()
    for kind in ("linear", "cosine"):
        step = re.search(rf"{kind}: alpha_bar < 0.01 from t=(\d+)", result.stdout).group(1)
        assert f"step {step}" in page


def test_quickstart_runs(smoke_env, tmp_path):
    """The README/quick-start code runs: as written, but 2 steps of a smaller UNet (compiles
    in half the time) and 2 DDIM steps."""
    code = QUICKSTART.read_text()
    replacements = (
        ("range(200)", "range(2)"),
        ("steps=50", "steps=2"),
        ("hidden_dims=(16, 32, 64), attention_resolutions=(8,)", "hidden_dims=(8, 16)"),
    )
    for long, short in replacements:
        assert code.count(long) == 1
        code = code.replace(long, short)
    script = tmp_path / "quickstart_short.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=smoke_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    match = re.search(r"loss after 2 steps: ([\d.]+); samples \(16, 32, 32, 1\)", result.stdout)
    assert match and 0 < float(match.group(1)) < 5, result.stdout[-2000:]


def test_docs_hook_renders_rst_math_and_roles():
    import importlib.util

    spec = importlib.util.spec_from_file_location("rst_roles", DOCS / "hooks" / "rst_roles.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    html = (
        "<p>With :math:<code>\\beta_t</code>, see :class:<code>NoiseSchedule</code>.</p>\n"
        '<p>.. math::</p>\n<div class="highlight"><pre><span></span><code>x_t = a &lt; b\n'
        "</code></pre></div>"
    )
    assert hook.convert(html) == (
        '<p>With <span class="arithmatex">\\(\\beta_t\\)</span>, see <code>NoiseSchedule</code>'
        '.</p>\n<div class="arithmatex">\\[x_t = a &lt; b\\]</div>'
    )
