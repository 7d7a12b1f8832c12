"""mkdocs hook: keep the site building while ``docs/benchmarks.md`` is not written yet.

The navigation and several pages link to the benchmarks page. Until it exists, this hook adds
a stand-in page saying so, instead of failing ``mkdocs build --strict`` on every link to it.
"""

from __future__ import annotations

from mkdocs.structure.files import File

PAGE = "benchmarks.md"
STAND_IN = """# Benchmarks

Measured training and sampling speeds are not published yet.
"""


def on_files(files, config, **kwargs):
    if files.get_file_from_path(PAGE) is None:
        files.append(File.generated(config, PAGE, content=STAND_IN))
    return files
