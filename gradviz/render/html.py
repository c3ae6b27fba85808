"""The interactive page (``-o graph.html``): one self-contained file that works offline.

The page holds, inline and nothing else (no request of any kind):

- the backward graph as the SVG view draws it (the same DOT from :mod:`gradviz.render.dot`,
  laid out by the embedded Graphviz in :mod:`gradviz.render.svg`), each node's element
  carrying ``data-id`` = its id in the document and each edge ``data-tail``/``data-head``;
- the ``gradviz/1`` document (:mod:`gradviz.render.jsondoc`) with its ``steps`` (the
  engine's record, :func:`gradviz.steps.steps_json`), as a JSON script element;
- with a second-order pass, the double-backward graph of each input's gradient, and what its
  nodes show (:func:`double_document`) as a JSON script element of its own (the page's
  document stays ``--json``'s);
- the paths from the output to each leaf with what flows along each
  (:func:`gradviz.paths.paths_json`), as a second JSON script element;
- the page's style and script (``render/page/page.css``, ``page.js``).

Nothing is traced or computed again: the script reads the document. Its interface, for
pages that embed it and for tests: ``window.gradviz.document`` (the document),
``window.gradviz.step`` (the backward step shown, 0 before the first) and
``window.gradviz.goto(n)``; the node of the step shown has the class ``active``.
"""

from __future__ import annotations

import html as _html
import re
from pathlib import Path

__all__ = ["page", "page_document", "double_document", "document_text", "graph_svg", "iframe"]

_PAGE_DIR = Path(__file__).parent / "page"

# Graphviz's SVG around what the page keeps: the prologue, comments, titles (they would show
# as tooltips over the inspector) and namespace declarations (inline SVG in HTML needs none).
_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)
_NODE = re.compile(r'<g id="node(\d+)" class="node">\n<title>([^<]*)</title>')
_EDGE = re.compile(r'<g id="(edge\d+|reversed\d+)" class="edge">\n<title>([^<]*)</title>')
_GRAPH_TITLE = re.compile(r'(<g id="graph0" class="graph"[^>]*>)\n<title>[^<]*</title>')
_CLUSTER_TITLE = re.compile(r'(<g id="clust\d+" class="cluster">)\n<title>[^<]*</title>')
_XMLNS = re.compile(r' xmlns(?::xlink)?="[^"]*"')
_LINK_TITLE = re.compile(r'<a xlink:title="[^"]*">')
_SIZE = re.compile(r'(<svg) width="[0-9.]+pt" height="[0-9.]+pt"')


def page_document(trace) -> dict:
    """The ``gradviz/1`` document the page embeds: ``--json``'s, with the ``steps`` section
    (from the engine's record) whether or not ``--steps`` was asked for."""
    from .jsondoc import document

    doc = document(trace)
    if "steps" not in doc and trace.steps:
        from ..steps import steps_json

        doc["steps"] = steps_json(trace)
    return doc


def graph_svg(trace, rankdir: str = "auto", max_nodes: int = 300, max_depth: int | None = None,
              renderer: str = "auto", tensors: str = "leaves", steps: bool = False) -> str:
    """The SVG view of ``trace``'s graph as the page inlines it (see :func:`inline_svg`)."""
    from .dot import dot_source

    source = dot_source(trace, rankdir=rankdir, max_nodes=max_nodes, max_depth=max_depth, tensors=tensors,
                        steps=steps)
    return inline_svg(_render(source, renderer).decode("utf-8"))


#: characters the page may write into the graph's text besides those Graphviz drew (a leaf's
#: ``grad = None`` before its AccumulateGrad runs): the embedded font subset holds them too
_PAGE_GLYPHS = "".join(chr(c) for c in range(0x20, 0x7F)).replace("&", "&amp;").replace("<", "&lt;")


def _render(source: str, renderer: str) -> bytes:
    """The SVG of ``source`` as :func:`gradviz.render.svg.render` draws it, on a transparent page
    (the page's theme paints behind it), with the font's ASCII glyphs embedded."""
    from . import raster
    from .svg import EmbeddedUnavailable, render, render_svg

    if renderer == "system":
        return render(source, "svg", renderer=renderer, background="transparent")
    try:
        svg = raster.set_background(render_svg(source), "transparent")
    except EmbeddedUnavailable:
        if renderer == "embedded":
            raise
        return render(source, "svg", renderer=renderer, background="transparent")
    opening = re.search(rb"<svg\b[^>]*>", svg)
    if opening is None:
        return svg
    glyphs = f'\n<text font-family="{raster.FONT_FAMILY}" display="none">{_PAGE_GLYPHS}</text>'.encode()
    return raster.embed_font(svg[: opening.end()] + glyphs + svg[opening.end():])


def inline_svg(svg: str) -> str:
    """A Graphviz SVG made ready to sit inside the page: no prologue, comments, titles or
    namespace declarations; ``data-id`` on each node (the DOT id: the document's ``f0``, ``t0``,
    a collapsed run's ``c0``, a cut edge's ``f3_0_more``), ``data-tail``/``data-head`` on each
    edge (the tail is the input side: the gradient flows from head to tail); sized by its
    viewBox (the page zooms it)."""
    svg = _PROLOGUE.sub("", svg, count=1)
    svg = _COMMENT.sub("", svg)
    svg = _NODE.sub(lambda m: f'<g class="node" data-id="{m.group(2)}">', svg)

    def edge(m):
        tail, _, head = _html.unescape(m.group(2)).partition("->")
        if m.group(1).startswith("reversed"):  # written head first in a folded picture (render/dot.py)
            tail, head = head, tail
        return f'<g class="edge" data-tail="{_html.escape(tail)}" data-head="{_html.escape(head)}">'

    svg = _EDGE.sub(edge, svg)
    svg = _GRAPH_TITLE.sub(r"\1", svg, count=1)
    svg = _CLUSTER_TITLE.sub(r"\1", svg)
    svg = _XMLNS.sub("", svg)
    svg = _LINK_TITLE.sub("<a>", svg)
    return _SIZE.sub(r"\1", svg, count=1)


def document_text(trace, views: list | None = None) -> str:
    """:func:`page_document` as JSON text: the one writer's text (:func:`gradviz.render.jsondoc.iter_json`),
    with the ``steps`` section among its sections when the trace has none."""
    from .jsondoc import iter_json

    extras = trace.extras
    if "steps" not in extras and trace.steps:
        from ..steps import steps_json

        extras = {**extras, "steps": steps_json(trace, views)}
    return "".join(iter_json(trace, extras=extras))


def _json_script(element_id: str, value) -> str:
    """``value`` (JSON text, or objects to write as JSON) as a JSON script element (``<`` escaped, so
    no text in it can end the element)."""
    from .jsondoc import dumps

    text = (value if isinstance(value, str) else dumps(value)).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _asset(name: str) -> str:
    return (_PAGE_DIR / name).read_text(encoding="utf-8")


def _double_graphs(second, rankdir: str, max_nodes: int, renderer: str, tensors: str) -> list[tuple[str, str]]:
    """(input name, SVG) of each input's double-backward graph (create_graph=True)."""
    if second is None:
        return []
    out = []
    for name, t in second.traces().items():
        if t.graph.root is not None:
            out.append((name, graph_svg(t, rankdir=rankdir, max_nodes=max_nodes, renderer=renderer, tensors=tensors)))
    return out


#: a graph of at most this many backward functions whose drawing collapsed runs is also laid out
#: with every run expanded, so that a click on a collapsed run expands it in the graph; a larger
#: one's runs list their functions in the side panel only (Graphviz's layout grows faster than
#: the graph: a 2,000-function graph drawn whole takes ~10 s and 5 MB of SVG)
EXPAND_MAX = 500
_COLLAPSED_NODE = re.compile(r'<g class="node" data-id="c\d+">')


def _expanded(trace, svg: str, rankdir: str, max_depth, renderer: str, tensors: str, steps: bool) -> str:
    """The graph with every collapsed run expanded, laid out by Graphviz, as a hidden element
    (``data-expanded``) the page swaps in; "" when nothing is collapsed or the graph is too large."""
    n = trace.graph.function_count()
    if n > EXPAND_MAX or not _COLLAPSED_NODE.search(svg):
        return ""
    whole = graph_svg(trace, rankdir=rankdir, max_nodes=n, max_depth=max_depth, renderer=renderer,
                      tensors=tensors, steps=steps)
    return f'<div class="gv-svg" data-graph="" data-expanded="" hidden>{whole}</div>'


def double_document(second) -> dict:
    """What the page shows of each double-backward graph's nodes: the ``double_backward`` section of
    ``--graph double`` (:func:`gradviz.higher.double_backward_json`: functions with their saved
    values, tensors with their data) and, per input, the steps of the backward pass run from that
    gradient (the rules with their numbers; from its first element for a tensor input)."""
    from ..higher import double_backward_json
    from ..steps import steps_json

    out = double_backward_json(second)
    out["steps"] = {name: steps_json(t) for name, t in second.traces().items() if t.graph.root is not None}
    return out


def page(trace, paths: dict, second=None, rankdir: str = "auto", max_nodes: int = 300,
         max_depth: int | None = None, renderer: str = "auto", tensors: str = "leaves", steps: bool = False) -> str:
    """The interactive page of ``trace`` as HTML text (one self-contained file).

    ``paths``: the paths from the output to each leaf (the analysis
    :func:`gradviz.paths.paths_json` of the same trace; the page only shows them).
    ``second``: the second-order pass (:func:`gradviz.higher.second_order`), whose
    double-backward graphs the page offers per input; the Hessian comes from the document.
    ``rankdir``, ``max_nodes``, ``max_depth``, ``renderer``, ``tensors`` and ``steps`` draw the graph
    as for ``-o x.svg`` (:func:`gradviz.render.dot.dot_source`).
    """
    from ..steps import describe

    views = describe(trace, shown=True) if trace.steps else []  # read by the document and the printed steps
    doc = document_text(trace, views)
    svg = graph_svg(trace, rankdir=rankdir, max_nodes=max_nodes, max_depth=max_depth, renderer=renderer,
                    tensors=tensors, steps=steps)
    expanded = _expanded(trace, svg, rankdir, max_depth, renderer, tensors, steps)
    doubles = _double_graphs(second, rankdir, max_nodes, renderer, tensors)
    double_html = "".join(
        f'<div class="gv-svg" data-graph="{_html.escape(name)}" hidden>{s}</div>' for name, s in doubles)
    double_json = "\n" + _json_script("gv-double", double_document(second)) if doubles else ""
    title = _html.escape(f"gradviz: {_clip(trace.graph.source, 80)}")
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        # Nothing may be fetched: the policy says so to the browser too.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; font-src data:; img-src data:\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        f"<title>{title}</title>\n<style>\n", _asset("page.css"), "</style>\n</head>\n<body>\n",
        _asset("page.html").replace("<!-- graphs -->", f'<div class="gv-svg" data-graph="">{svg}</div>{expanded}{double_html}'),
        _json_script("gv-document", doc), "\n", _json_script("gv-printed", _printed_steps(trace, views)), "\n",
        _json_script("gv-path-data", paths), double_json, "\n<script>\n", _asset("page.js"), "</script>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def _printed_steps(trace, views: list) -> list:
    """The steps' numbers as the terminal and the pictures print them (PyTorch's printing), which the
    page shows in its step cards; the inspector keeps the document's full numbers."""
    if not trace.steps:
        return []
    from ..steps import steps_printed

    return steps_printed(trace, views)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def iframe(page_html: str, height: int = 640) -> str:
    """``page_html`` inside a sandboxed iframe (scripts run, but in an origin of their own: no
    access to the notebook, and no id of the page can clash with another's): Jupyter's
    ``_repr_html_``."""
    import uuid

    frame_id = f"gradviz-{uuid.uuid4().hex[:12]}"
    return (f'<iframe id="{frame_id}" class="gradviz-frame" sandbox="allow-scripts" '
            f'style="width:100%;height:{int(height)}px;border:1px solid #e2e8f0;border-radius:6px" '
            f'srcdoc="{_html.escape(page_html, quote=True)}"></iframe>')
