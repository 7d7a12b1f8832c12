// Render the maths that pymdownx.arithmatex (and docs/hooks/rst_roles.py) marked up:
// <span class="arithmatex">\(...\)</span> inline, <div class="arithmatex">\[...\]</div> display.
// KaTeX is vendored under javascripts/katex/, so this works with no network and from file://.
(function () {
  "use strict";

  function stripDelimiters(tex) {
    tex = tex.trim();
    var pairs = [["\\(", "\\)"], ["\\[", "\\]"], ["$$", "$$"], ["$", "$"]];
    for (var i = 0; i < pairs.length; i++) {
      var open = pairs[i][0], close = pairs[i][1];
      if (tex.length >= open.length + close.length &&
          tex.slice(0, open.length) === open && tex.slice(-close.length) === close) {
        return tex.slice(open.length, tex.length - close.length);
      }
    }
    return tex; // \begin{...}...\end{...} blocks come without delimiters
  }

  function renderMath(root) {
    if (typeof katex === "undefined") {
      console.error("katex-init: KaTeX did not load; formulas stay as TeX");
      return;
    }
    var nodes = root.querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      if (node.getAttribute("data-katex") === "done") continue;
      var tex = stripDelimiters(node.textContent);
      // An unsupported macro shows as red source text (class katex-error), not a blank page.
      katex.render(tex, node, {
        displayMode: node.tagName === "DIV",
        throwOnError: false,
      });
      node.setAttribute("data-katex", "done");
    }
  }

  // Material emits document$ on the first load and after every instant navigation.
  if (typeof document$ !== "undefined") {
    document$.subscribe(function () { renderMath(document.body); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { renderMath(document.body); });
  } else {
    renderMath(document.body);
  }
})();
