"""mkdocs hook: render the reStructuredText math and cross-reference roles in docstrings.

The library's docstrings are Google style but write maths the Sphinx way
(``:math:`x```, ``.. math::`` blocks) and refer to objects with ``:class:``, ``:func:``...
mkdocstrings passes these through as literal text; after rendering they look like
``:math:<code>x</code>``. This hook turns the maths into the markup ``pymdownx.arithmatex``
produces (which ``docs/javascripts/katex-init.js`` renders with KaTeX) and the roles into plain
code.
"""

from __future__ import annotations

import re

MATH_BLOCK = re.compile(
    r"<p>\.\. math::</p>\s*"
    r"<div class=\"highlight\"><pre><span></span><code>(.*?)</code></pre></div>",
    re.DOTALL,
)
MATH_ROLE = re.compile(r":math:<code>(.*?)</code>", re.DOTALL)
XREF_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|obj|exc):<code>~?(.*?)</code>")


def convert(html: str) -> str:
    """``html`` with reST maths as arithmatex markup and reST cross-reference roles as code."""
    html = MATH_BLOCK.sub(
        lambda m: f'<div class="arithmatex">\\[{m.group(1).strip()}\\]</div>', html
    )
    html = MATH_ROLE.sub(lambda m: f'<span class="arithmatex">\\({m.group(1)}\\)</span>', html)
    return XREF_ROLE.sub(lambda m: f"<code>{m.group(1)}</code>", html)


def on_page_content(html: str, **kwargs) -> str:
    return convert(html)
