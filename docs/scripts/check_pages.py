"""Open the built documentation in headless Chromium and check that the formulas render.

The test suite checks the built HTML (tests/docs/test_built_site.py); this script checks what a
reader sees after the page's JavaScript ran. It serves the site from 127.0.0.1, loads every
page that has maths with ``chromium --headless --dump-dom`` and checks that each formula
element now holds KaTeX output, that KaTeX reported no error and that no raw TeX is left
outside the formulas. It loads one page from disk (``file://``) the same way, and saves
screenshots to look at.

    python docs/scripts/check_pages.py                  # builds the site into a temp dir
    python docs/scripts/check_pages.py --site-dir site  # checks an existing build

Needs Chromium: ``apt-get install -y chromium`` (Debian/Ubuntu), or set ``CHROMIUM`` to a
Chrome or Chromium binary. Exits non-zero, naming the pages, when a check fails.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Page -> screenshot file name; "" is the home page.
SCREENSHOTS = {
    "concepts/diffusion/": "concepts_diffusion",
    "tutorials/diffusion-mnist/": "tutorials_diffusion-mnist",
    "": "index",
}
TALL = 16000  # pixels: the whole page fits, then it is cut into window-sized screenshots
FILE_PAGE = "concepts/diffusion/index.html"
TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]+")
LITERAL = {"code", "pre", "kbd", "samp", "script", "style", "textarea", "annotation"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def find_chromium() -> str:
    candidates = [os.environ.get("CHROMIUM", "")] + [shutil.which(name) or "" for name in BROWSERS]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit(
        "error: Chromium was not found. Install the Debian/Ubuntu package `chromium` "
        "(`apt-get install -y chromium`), or set CHROMIUM to a Chrome/Chromium binary."
    )


def chromium(browser: str, url: str, *flags: str) -> str:
    """Run headless Chromium on ``url``; its stdout (the DOM for --dump-dom)."""
    profile = tempfile.mkdtemp(prefix="check-pages-chromium-")
    try:
        result = subprocess.run(
            [
                browser,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",  # let the page's scripts and fonts finish
                *flags,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if result.returncode != 0:
        raise SystemExit(f"error: chromium failed on {url}:\n{result.stderr[-2000:]}")
    return result.stdout


class RenderedPage(HTMLParser):
    """Counts formula elements, KaTeX output and errors, and TeX left outside the formulas."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, bool, bool]] = []
        self.math_depth = self.literal_depth = 0
        self.formulas = self.rendered = self.errors = 0
        self.current_has_katex = False
        self.stray: list[str] = []

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self.math_depth and "katex" in classes:
            self.current_has_katex = True
        if "katex-error" in classes:
            self.errors += 1
        if tag in VOID:
            return
        is_math = "arithmatex" in classes
        if is_math and not self.math_depth:
            self.formulas += 1
            self.current_has_katex = False
        self.open.append((tag, is_math, tag in LITERAL))
        self.math_depth += is_math
        self.literal_depth += tag in LITERAL

    def handle_endtag(self, tag):
        if tag in VOID or tag not in (name for name, _, _ in self.open):
            return
        while self.open:
            name, is_math, is_literal = self.open.pop()
            self.math_depth -= is_math
            self.literal_depth -= is_literal
            if is_math and not self.math_depth:
                self.rendered += self.current_has_katex
            if name == tag:
                break

    def handle_data(self, data):
        if self.literal_depth:  # KaTeX keeps the source in a MathML <annotation>: fine
            return
        for match in TEX.finditer(data):
            self.stray.append(data[max(0, match.start() - 30) : match.end() + 30])


def check_dom(name: str, dom: str) -> list[str]:
    """Problems with one page's rendered DOM (an empty list when it is fine)."""
    page = RenderedPage()
    page.feed(dom)
    problems = []
    if page.rendered < page.formulas:
        problems.append(f"{page.formulas - page.rendered} of {page.formulas} formulas not rendered")
    if page.errors:
        problems.append(f"{page.errors} KaTeX error(s) (unsupported TeX, shown in red)")
    if page.stray:
        problems.append(f"raw TeX on the page: {page.stray[0]!r} ({len(page.stray)} in all)")
    print(f"  {name}: {page.formulas} formulas, {page.rendered} rendered by KaTeX", end="")
    print(f"; PROBLEMS: {'; '.join(problems)}" if problems else "")
    return problems


def screenshots(browser: str, url: str, stem: Path, width: int, height: int) -> list[Path]:
    """Screenshots of the whole page at ``url``: ``stem.png`` (the top), ``stem_2.png``..."""
    first = stem.with_name(f"{stem.name}.png")
    try:
        import numpy as np
        from PIL import Image
    except ImportError:  # no Pillow: the top of the page only
        chromium(browser, url, f"--screenshot={first}", f"--window-size={width},{height}")
        return [first]
    tall = stem.with_name(f"{stem.name}_full.png")
    chromium(browser, url, f"--screenshot={tall}", f"--window-size={width},{TALL}")
    image = Image.open(tall).convert("RGB")
    # In a window this tall the footer sits at the bottom, below a band of empty rows: cut
    # the page where that band starts.
    pixels = np.asarray(image)
    empty = (pixels == pixels[-1:, -1:]).all(axis=(1, 2)) | (pixels == 255).all(axis=(1, 2))
    page_height = image.height
    run = 0
    for row, is_empty in enumerate(empty):
        run = run + 1 if is_empty else 0
        if run == 800:
            page_height = max(height, row - run + 40)
            break
    shots = []
    for index, top in enumerate(range(0, page_height, height)):
        shot = first if index == 0 else stem.with_name(f"{stem.name}_{index + 1}.png")
        image.crop((0, top, width, min(top + height, page_height))).save(shot)
        shots.append(shot)
    tall.unlink()
    return shots


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def build(site: Path) -> None:
    print(f"building the site into {site}")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site-dir", type=Path, help="an existing build (default: build one)")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/page_checks"))
    parser.add_argument("--window-size", default="1200,1600", help="screenshot size, W,H")
    args = parser.parse_args()

    browser = find_chromium()
    if args.site_dir is None:
        site = Path(tempfile.mkdtemp(prefix="artifex-site-"))
        build(site)
    else:
        site = args.site_dir.resolve()
    if not (site / "index.html").is_file():
        raise SystemExit(f"error: {site} holds no built site (no index.html)")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    pages = sorted(
        str(path.relative_to(site))
        for path in site.rglob("*.html")
        if "arithmatex" in path.read_text(encoding="utf-8")
    )
    failures: dict[str, list[str]] = {}
    server = serve(site)
    base = f"http://127.0.0.1:{server.server_port}/"
    try:
        print(f"{len(pages)} pages with maths, served at {base}")
        for page in pages:
            url = base + page.removesuffix("index.html")
            problems = check_dom(page, chromium(browser, url, "--dump-dom"))
            if problems:
                failures[url] = problems

        file_url = (site / FILE_PAGE).as_uri()
        print(f"from disk: {file_url}")
        problems = check_dom(FILE_PAGE, chromium(browser, file_url, "--dump-dom"))
        if problems:
            failures[file_url] = problems

        width, height = (int(size) for size in args.window_size.split(","))
        for page, name in SCREENSHOTS.items():
            for shot in screenshots(browser, base + page, args.out_dir / name, width, height):
                print(f"screenshot: {shot}")
        shot = args.out_dir / "file_concepts_diffusion.png"
        chromium(browser, file_url, f"--screenshot={shot}", f"--window-size={width},{height}")
        print(f"screenshot: {shot} (from disk)")
    finally:
        server.shutdown()

    if failures:
        print("FAILED:")
        for url, problems in failures.items():
            print(f"  {url}: {'; '.join(problems)}")
        return 1
    print("every formula rendered with KaTeX; no raw TeX left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
