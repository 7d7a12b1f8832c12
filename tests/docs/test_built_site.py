"""The built documentation site: formulas reach the renderer, nothing loads from the network.

One ``mkdocs build --strict`` of the real site serves every check of the built pages; a second
build, of a copy with a deliberately broken link, shows that the strict build fails on it.
Rendering in a browser is checked by hand with ``docs/scripts/check_pages.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed")
pytest.importorskip("material", reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
KATEX = "javascripts/katex"
KATEX_FILES = (f"{KATEX}/katex.min.js", f"{KATEX}/katex.min.css", "javascripts/katex-init.js")
# TeX meant for the renderer: math delimiters, \$\$ and any backslash command (\\frac, \\bar...).
TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]+")
# Text in these elements is shown as written (code, examples), never rendered as maths.
LITERAL = {"code", "pre", "kbd", "samp", "script", "style", "textarea"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def mkdocs_build(config: Path, site_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
        + ["--site-dir", str(site_dir)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass
class Page:
    """What the checks need from one built HTML page."""

    path: str
    math: list[tuple[str, str]] = field(default_factory=list)  # (tag, TeX source)
    stray_tex: list[str] = field(default_factory=list)  # TeX outside the math elements
    scripts: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)


class PageParser(HTMLParser):
    def __init__(self, page: Page):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.open: list[tuple[str, bool, bool]] = []  # (tag, is math, is literal)
        self.math_depth = self.literal_depth = 0
        self.current: list[str] | None = None  # [tag, text] of the math element being read

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.page.scripts.append(attrs["src"])
        if tag == "link" and "stylesheet" in (attrs.get("rel") or "").split():
            self.page.stylesheets.append(attrs.get("href") or "")
        if tag in VOID:
            return
        is_math = "arithmatex" in (attrs.get("class") or "").split()
        if is_math and not self.math_depth:
            self.current = [tag, ""]
        self.open.append((tag, is_math, tag in LITERAL))
        self.math_depth += is_math
        self.literal_depth += tag in LITERAL

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID or tag not in (name for name, _, _ in self.open):
            return
        while self.open:
            name, is_math, is_literal = self.open.pop()
            self.math_depth -= is_math
            self.literal_depth -= is_literal
            if is_math and not self.math_depth and self.current is not None:
                self.page.math.append((self.current[0], self.current[1]))
                self.current = None
            if name == tag:
                break

    def handle_data(self, data):
        if self.math_depth:
            self.current[1] += data
        elif not self.literal_depth:
            for match in TEX.finditer(data):
                start = max(0, match.start() - 40)
                self.page.stray_tex.append(data[start : match.end() + 40].replace("\n", " "))


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The documentation, built once with ``mkdocs build --strict``."""
    site_dir = tmp_path_factory.mktemp("site")
    result = mkdocs_build(ROOT / "mkdocs.yml", site_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return site_dir


@pytest.fixture(scope="session")
def pages(site) -> dict[str, Page]:
    parsed = {}
    for path in sorted(site.rglob("*.html")):
        page = Page(str(path.relative_to(site)))
        PageParser(page).feed(path.read_text(encoding="utf-8"))
        parsed[page.path] = page
    return parsed


def test_the_site_has_its_pages(pages):
    assert "index.html" in pages and "404.html" in pages
    assert "concepts/diffusion/index.html" in pages
    assert "tutorials/diffusion-mnist/index.html" in pages
    assert sum(len(page.math) for page in pages.values()) > 50


def test_no_tex_outside_the_math_elements(pages):
    """Every formula is inside an arithmatex span/div, the only elements KaTeX renders."""
    stray = {path: page.stray_tex for path, page in pages.items() if page.stray_tex}
    assert not stray, "TeX outside the math elements (not rendered):\n" + "\n".join(
        f"  {path}: {snippets[0]!r} ({len(snippets)} in all)" for path, snippets in stray.items()
    )


def test_math_elements_hold_delimited_tex(pages):
    """Inline maths is \\(...\\) in a span, display maths \\[...\\] (or an environment) in a div."""
    bad = []
    for path, page in pages.items():
        for tag, tex in page.math:
            tex = tex.strip()
            inline = tag == "span" and tex.startswith("\\(") and tex.endswith("\\)")
            display = tag == "div" and (
                (tex.startswith("\\[") and tex.endswith("\\]")) or tex.startswith("\\begin{")
            )
            if not (inline or display) or "\\[" in tex[2:-2] or "\\(" in tex[2:-2]:
                bad.append(f"{path}: <{tag}> {tex[:80]!r}")
    assert not bad, "\n".join(bad)


def test_the_reverse_process_posterior_is_two_display_blocks(pages):
    blocks = [tex for tag, tex in pages["concepts/diffusion/index.html"].math if tag == "div"]
    posterior = [tex for tex in blocks if "q(x_s \\mid x_t, x_0)" in tex]
    coefficients = [tex for tex in blocks if "c_0 = \\frac" in tex]
    assert len(posterior) == len(coefficients) == 1 and posterior != coefficients


def test_no_page_loads_scripts_or_stylesheets_from_the_network(pages):
    remote = [
        f"{path}: {url}"
        for path, page in pages.items()
        for url in page.scripts + page.stylesheets
        if urlsplit(url).scheme or url.startswith("//")
    ]
    assert not remote, "pages load from the network:\n" + "\n".join(remote)


def local_file(site: Path, page: str, url: str) -> Path:
    """The file in ``site`` that ``url``, referenced by ``page``, points at."""
    path = urlsplit(url).path
    if path.startswith("/"):  # 404.html uses root-relative links (no site_url is set)
        return (site / path.lstrip("/")).resolve()
    return ((site / page).parent / path).resolve()


def test_every_page_with_maths_loads_the_vendored_katex(site, pages):
    for path, page in pages.items():
        referenced = page.scripts + page.stylesheets
        for url in referenced:  # every local script and stylesheet is in the site
            assert local_file(site, path, url).is_file(), f"{path} references missing {url}"
        if page.math:
            loaded = {local_file(site, path, url) for url in referenced}
            for name in KATEX_FILES:
                assert (site / name).resolve() in loaded, f"{path} does not load {name}"
    # The scripts run in this order: KaTeX, then the code that renders the math elements.
    scripts = [Path(url).name for url in pages["concepts/diffusion/index.html"].scripts]
    assert scripts.index("katex.min.js") < scripts.index("katex-init.js")


def test_katex_stylesheet_fonts_and_license_are_shipped(site):
    css = (site / KATEX / "katex.min.css").read_text()
    fonts = re.findall(r"url\(([^)]+)\)", css)
    assert len(fonts) == 20 and all(font.endswith(".woff2") for font in fonts)
    for font in fonts:
        assert (site / KATEX / font.strip("'\"")).is_file(), font
    assert "Khan Academy" in (site / KATEX / "LICENSE").read_text()


def test_katex_accepts_every_formula(site, pages):
    """Each formula parses with the vendored KaTeX (run by Node.js, if installed)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed; docs/scripts/check_pages.py checks in a browser")
    formulas = []
    for path, page in pages.items():
        for tag, tex in page.math:
            tex = tex.strip()
            body = tex[2:-2] if tex[:2] in ("\\(", "\\[") else tex
            formulas.append((path, tag == "div", body))
    script = """
        const katex = require(process.argv[1]);
        const failures = [];
        for (const [page, display, tex] of JSON.parse(require("fs").readFileSync(0, "utf8"))) {
            try { katex.renderToString(tex, {displayMode: display, throwOnError: true}); }
            catch (error) { failures.push(`${page}: ${error.message}`); }
        }
        console.log(JSON.stringify(failures));
    """
    result = subprocess.run(
        [node, "-e", script, str(site / KATEX / "katex.min.js")],
        input=json.dumps(formulas),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    failures = json.loads(result.stdout)
    assert not failures, "KaTeX rejects:\n" + "\n".join(failures)


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """mkdocs.yml's validation settings turn a link to a missing page into a failed build."""
    for entry in ROOT.iterdir():  # everything the config points at (src/, examples/, ...)
        if entry.name not in {"docs", "mkdocs.yml", ".git", ".venv", "site"}:
            (tmp_path / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [a missing page](no-such-page.md).\n")
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "contains a link 'no-such-page.md', but the target is not found" in result.stderr
    assert "Aborted with 1 warnings in strict mode" in output
