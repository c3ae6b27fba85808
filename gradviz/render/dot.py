"""The backward graph as a Graphviz diagram (a :class:`gradviz.render.dotlang.Digraph`), annotated with values.

Layout follows the forward computation (inputs first, the output last; left to right
or top to bottom, whichever keeps a slide's proportions, see :func:`choose_rankdir`; a long
chain of a mid-size graph top to bottom in columns side by side, see :func:`choose_layout`),
and every arrow points the way the gradient flows during backward, labelled with
that gradient:

- leaf tensors (light blue): name, data and grad; inputs with requires_grad=False
  are dimmed, joined by a dashed line to the function that used them;
- backward functions (orange): PyTorch's class name, the sub-expression whose
  gradient it computes, and the values it saved; a Python number the expression
  used (the ``2`` of ``2*x``) is a small grey node joined to the function where
  it enters, named as PyTorch names the argument (``other``);
- AccumulateGrad (grey), one per leaf, with ``+= g`` on the arrow into the leaf;
- the output (green): its expression and value; the arrow from it carries the
  gradient backward starts with;
- with ``tensors="all"`` (the lecture's picture), every tensor is a node next to its
  grad_fn (on its output side) with the five attributes PyTorch gives it: data, grad, grad_fn, is_leaf,
  requires_grad;
- with ``steps``, each arrow's label starts with the step of the backward pass that
  sent it (PyTorch's execution order);
- above the node budget, a run of repeated structure (dashed): its first and last
  repetitions are drawn and one "⋯ N more × motif" node stands for the rest
  (:mod:`gradviz.render.collapse`).

:func:`double_backward_digraph` draws ``--graph double``: each input's gradient graph
in a cluster of its own, with the values of the backward pass run from it, and the
Hessian under them.

Labels are Graphviz record labels (the embedded Graphviz has no HTML labels):
:func:`record_field` escapes record syntax, the graphviz package quotes the rest.
Numbers are PyTorch's printing (:mod:`.numbers`), a matrix one row a line.
Ids are the graph's own (``f0``, ``t0``...), so the same input gives the same DOT.
"""

from __future__ import annotations

import math

from .collapse import Collapsed, collapse_view, plain_view
from .flow import flow, tensor_text
from ..numbers import abbreviate, format_saved, format_shape, format_tensor

__all__ = ["to_digraph", "dot_source", "double_backward_digraph", "record_field", "choose_rankdir",
           "choose_layout",
           "RANKDIRS", "TENSORS"]

RANKDIRS = ("LR", "TB")
#: which tensors are drawn as nodes: the leaves and the output, or every tensor (the lecture's picture)
TENSORS = ("leaves", "all")
#: characters of an expression shown on a node (the tooltip holds all of it)
TEXT_WIDTH = 48
#: characters of the sub-expression shown on a backward function
FUNCTION_TEXT_WIDTH = 32
#: characters a line of a collapsed block's list of functions holds
BLOCK_TEXT_WIDTH = 44
#: collapsed runs described one by one in the note under the diagram
NOTED_RUNS = 3
#: the proportions a picture is laid out for: a slide's
SLIDE_ASPECT = 16 / 9

# Graphviz sizes boxes with its built-in width table for this font, which is the font's
# own advance widths; PNG and PDF are drawn with the same font file (render/fonts/), so
# the text drawn is the text measured (render/raster.py).
FONT = "DejaVu Sans"
COLORS = {
    "leaf": ("#dbeafe", "#2563eb"),  # (fill, border)
    "tensor": ("#eff6ff", "#60a5fa"),
    "function": ("#ffedd5", "#ea580c"),
    "accumulate": ("#e5e7eb", "#6b7280"),
    "output": ("#dcfce7", "#16a34a"),
    "no_grad": ("#f9fafb", "#cbd5e1"),
    "constant": ("#f8fafc", "#94a3b8"),
    "note": ("#f8fafc", "#64748b"),
    "gradient": "#dc2626",
    "dim_text": "#94a3b8",
    "link": "#60a5fa",
}


def record_field(text: str) -> str:
    """``text`` escaped to show literally inside one field of a record label."""
    text = " ".join(str(text).split())
    out = []
    for ch in text:
        if ch in "\\{}|<>":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _record(fields: list, rankdir: str) -> str:
    """A record label stacking ``fields`` top to bottom whatever the rankdir.

    A field may be a list of lines, shown left-aligned (leading spaces kept: PyTorch's
    padding lines up a matrix's columns).
    """
    parts = []
    for field in fields:
        if isinstance(field, (list, tuple)):
            parts.append("".join(_line(line) + "\\l" for line in field))
        else:
            parts.append(record_field(field))
    body = "|".join(parts)
    # Record fields run across the rank direction; braces turn them.
    return body if rankdir == "LR" else "{" + body + "}"


def _line(text: str) -> str:
    """One left-aligned line of a field: escaped, its leading spaces kept (Graphviz drops them)."""
    stripped = text.lstrip(" ")
    return "\\ " * (len(text) - len(stripped)) + record_field(stripped)


def _valued(name: str, value) -> list:
    """``name = value`` as a field: one line, or the name over PyTorch's rows for a matrix."""
    text = format_tensor(value)
    if "\n" not in text:
        return [f"{name} = {text}"]
    return [f"{name} ="] + text.split("\n")


def _style(kind: str, **extra) -> dict:
    fill, border = COLORS[kind]
    attrs = {"fillcolor": fill, "color": border}
    attrs.update(extra)
    return attrs


class _Picture:
    """Nodes and edges collected before any DOT is written, so that the orientation can be
    chosen from the sizes of the labels (:func:`choose_rankdir`)."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.nodes: dict = {}  # id -> (fields or plain label, attrs)
        self.edges: list = []  # (tail id, head id, attrs)
        self.ranked: set = set()  # backward functions: ranked by their depth from the output
        self.clusters: dict = {}  # id -> the module path whose cluster holds it (an imported graph)
        #: edge labels as xlabels (an imported graph of more than XLABEL_FUNCTIONS drawn functions:
        #: a label on every edge doubles the ranks, beyond the embedded Graphviz's stack)
        self.xlabels = False

    def node(self, key: str, fields, **attrs) -> None:
        self.nodes[self.prefix + key] = (fields, attrs)

    def edge(self, tail: str, head: str, **attrs) -> None:
        self.edges.append((self.prefix + tail, self.prefix + head, attrs))

    def emit(self, dot, rankdir: str, folds: int = 1) -> None:
        """Write the nodes and edges into ``dot`` (a Digraph or a cluster subgraph); with ``folds`` > 1,
        the computation in that many columns side by side (:func:`_emit_folded`)."""
        from . import dotlang as graphviz

        if folds > 1:
            return _emit_folded(self, dot, rankdir, folds)

        clusters = _module_clusters(self.clusters)
        for key, (fields, attrs) in self.nodes.items():
            label = graphviz.nohtml(_record(fields, rankdir)) if isinstance(fields, list) else fields
            clusters.get(self.clusters.get(key), dot).node(key, label, **attrs)
        for tail, head, attrs in self.edges:
            if self.xlabels and "label" in attrs:  # placed after the layout: no rank of its own
                attrs = dict(attrs, xlabel=attrs["label"])
                del attrs["label"]
            dot.edge(tail, head, **attrs)
        for path in sorted(clusters, key=lambda p: (-p.count("."), p)):  # the deepest first: complete when copied
            parent = path.rpartition(".")[0]
            (clusters[parent] if parent in clusters else dot).subgraph(clusters[path])
        for group in _depth_groups(self):
            group = [key for key in group if key not in self.clusters]  # (a cluster lays out its own)
            if len(group) < 2:
                continue
            with dot.subgraph() as same:
                same.attr(rank="same")
                for key in group:
                    same.node(key)


def _module_clusters(paths: dict) -> dict:
    """A graph read from PyTorch with ``gradviz.record()``: module path -> its Graphviz cluster, one
    for every path and every path above it (``layers`` ⊃ ``layers.0`` ⊃ ``layers.0.attn``)."""
    if not paths:
        return {}
    from . import dotlang as graphviz

    every = sorted({".".join(p.split(".")[:k]) for p in set(paths.values()) for k in range(1, p.count(".") + 2)})
    return {p: graphviz.Digraph(name=f"cluster_m{n}", graph_attr={
        "label": p, "style": "dashed,rounded", "color": "#94a3b8", "fontcolor": "#64748b", "fontsize": "10",
        "labeljust": "l"}) for n, p in enumerate(every)}


def _module_of(g, fn) -> str | None:
    """The module path a drawn function belongs to in an imported graph (an AccumulateGrad: its
    parameter's module, from the parameter's name), or None."""
    imported = getattr(g, "imported", None)
    if not imported:
        return None
    if fn.variable is not None:
        return (fn.variable.name or "").rpartition(".")[0] or None
    entry = imported.get(fn.index)
    return entry.module if entry is not None else None


def _depth_groups(pic: _Picture) -> list:
    """The backward functions grouped by their depth from the output (the longest path to it): one
    rank each, so that parallel branches line up by how far the
    gradient has travelled (fewer crossings than ranks pulled towards the inputs)."""
    # from the output back along the edges that constrain the layout: each node's longest path to it
    depth = _longest_paths(pic.nodes, ((head, tail) for tail, head, attrs in pic.edges
                                       if attrs.get("constraint") != "false"))
    groups: dict = {}
    for key in pic.nodes:
        if key in pic.ranked:
            groups.setdefault(depth[key], []).append(key)
    return [group for _, group in sorted(groups.items()) if len(group) > 1]


# --------------------------------------------------------------------------- folding a long chain


def _positions(pic: _Picture) -> dict:
    """Each node's place along the forward computation (0: the inputs' side), as late as its uses allow:
    the longest path to the output, counted back from the deepest; a tensor drawn beside its grad_fn
    (a node that only receives) one place after what made it."""
    edges = [(t, h) for t, h, attrs in pic.edges
             if attrs.get("constraint") != "false" and t in pic.nodes and h in pic.nodes]
    depth = _longest_paths(pic.nodes, ((h, t) for t, h in edges))
    top = max(depth.values(), default=0)
    place = {key: top - d for key, d in depth.items()}
    feeds = {key: [] for key in pic.nodes}
    sends = set()
    for t, h in edges:
        feeds[h].append(t)
        sends.add(t)
    for key in pic.nodes:
        if key not in sends and feeds[key] and key not in pic.ranked and depth[key] == 0 and len(feeds[key]) == 1:
            place[key] = place[feeds[key][0]] + 1
    return place


def _bands(pic: _Picture, folds: int) -> dict:
    """node -> (band, column): the computation cut into ``folds`` bands of about equal length along the
    backward functions' places, each starting at column 0 (read as newspaper columns: a snake would put
    the next band's inputs at its far end, past the band's length). A leaf, an AccumulateGrad, a constant or a tensor beside its
    grad_fn goes in the band of the function it is joined to, on its side."""
    place = _positions(pic)
    main = [place[k] for k in pic.ranked if k in place]
    lo, hi = (min(main), max(main)) if main else (0, max(place.values(), default=0))
    length = max(1, math.ceil((hi - lo + 1) / folds))
    # (in the nodes' order: ``ranked`` is a set, whose order of strings changes from run to run)
    band = {k: min(folds - 1, max(0, (place[k] - lo) // length)) for k in pic.nodes
            if k in pic.ranked and k in place}
    succ: dict = {k: [] for k in pic.nodes}
    pred: dict = {k: [] for k in pic.nodes}
    for t, h, attrs in pic.edges:
        if t in succ and h in succ:
            succ[t].append(h)
            pred[h].append(t)
    # the others, nearest the output first: the band of their first use (or of what made them)
    for key in sorted(pic.nodes, key=lambda k: -place[k]):
        if key in band:
            continue
        near = [h for h in succ[key] if h in band] or [t for t in pred[key] if t in band]
        band[key] = band[min(near, key=lambda k: place[k])] if near else \
            min(folds - 1, max(0, (place[key] - lo) // length))
    cells = {}
    for key, b in band.items():
        q = place[key] - lo - b * length
        cells[key] = (b, q)
    return cells


def _emit_folded(pic: _Picture, dot, rankdir: str, folds: int) -> None:
    """``pic`` in ``folds`` bands side by side (top to bottom: columns; left to right: rows), one invisible
    cluster each, a rank per place shared by every band. An edge that runs against the rank order (the
    one from the end of a band to the start of the next) is written reversed with its arrowhead moved, so
    it is drawn as before (and the bands keep their order: without it Graphviz may put the last between
    the others), its id ``reversed<n>`` telling the page; invisible edges on shared ranks help the order."""
    from . import dotlang as graphviz

    cells = _bands(pic, folds)
    dot.attr(newrank="true")
    bands = [graphviz.Digraph(name=f"cluster_band{b}", graph_attr={"peripheries": "0", "label": ""})
             for b in range(folds)]
    for key, (fields, attrs) in pic.nodes.items():
        label = graphviz.nohtml(_record(fields, rankdir)) if isinstance(fields, list) else fields
        bands[cells[key][0]].node(key, label, **attrs)
    for sub in bands:
        dot.subgraph(sub)
    for n, (tail, head, attrs) in enumerate(pic.edges):
        if cells[head][1] < cells[tail][1]:
            flipped = dict(attrs, id=f"reversed{n}")  # (the page reads it back: render/html.py)
            if flipped.get("dir") != "none":
                flipped["dir"] = "forward"  # (the graph's default is "back": the head is the tail now)
            dot.edge(head, tail, **flipped)
        else:
            dot.edge(tail, head, **attrs)
    columns: dict = {}
    for key, (_, c) in cells.items():
        columns.setdefault(c, []).append(key)
    order = []  # on every rank, a node of each band and of the next: an invisible edge keeps them in order
    for _, group in sorted(columns.items()):
        if len(group) > 1:
            with dot.subgraph() as same:
                same.attr(rank="same")
                for key in group:
                    same.node(key)
        firsts = {}
        for key in group:
            firsts.setdefault(cells[key][0], key)
        present = sorted(firsts)
        order += [(firsts[a], firsts[b]) for a, b in zip(present, present[1:])]
    for tail, head in order:
        dot.edge(tail, head, style="invis", dir="none")


#: backward functions' places a picture needs before it may be folded (fewer: drawn as it is)
FOLD_MIN_PLACES = 4
#: nodes above which no folded candidate is laid out (the orientation is estimated only)
FOLD_MAX_NODES = 120
#: what each fold costs against the distance from a slide's proportions (log of the aspect ratio):
#: a picture is folded only when that brings it clearly nearer
FOLD_COST = 0.12


def choose_layout(pic: _Picture, notes: list = ()) -> tuple:
    """(rankdir, folds): the orientation (:func:`choose_rankdir`) or, for a long chain of a mid-size
    graph, top to bottom in 2 to 4 columns side by side, each starting at the top with its inputs
    (newspaper columns: the arrow from the foot of one column to the head of the next; rows left to
    right measured wider, their labels lying between the ranks), whichever the
    embedded Graphviz lays out nearest a slide's 16:9 (each fold costs :data:`FOLD_COST`). A graph
    of more than :data:`FOLD_MAX_NODES` nodes, or read into module clusters, is only estimated."""
    base = choose_rankdir(pic, notes)
    options = _fold_options(pic)
    if not options:
        return base, 1
    best, best_cost = (base, 1), None
    for rankdir, folds in [(base, 1)] + [("TB", f) for f in options]:
        size = _measured(_laid_out(pic, rankdir, folds, notes).source)
        if size is None:  # no embedded Graphviz: the estimate
            return base, 1
        cost = abs(math.log(size[0] / size[1] / SLIDE_ASPECT)) + FOLD_COST * (folds - 1)
        if best_cost is None or cost < best_cost - 1e-9:
            best, best_cost = (rankdir, folds), cost
    return best


def _fold_options(pic: _Picture) -> list:
    """The numbers of columns worth laying out: each gives columns of 2 or more places, a different
    length from the last, and no edge between two nodes of one rank (Graphviz would not draw it)."""
    if pic.clusters or pic.prefix or pic.xlabels or len(pic.nodes) > FOLD_MAX_NODES:
        return []
    place = _positions(pic)
    places = len({place[k] for k in pic.ranked if k in place})
    if places < FOLD_MIN_PLACES:
        return []
    options, lengths = [], set()
    for folds in (2, 3, 4):
        length = math.ceil(places / folds)
        if length < 2 or length in lengths:
            continue
        lengths.add(length)
        if not _flat_edges(pic, _bands(pic, folds)):
            options.append(folds)
    return options


def _measured(source: str) -> tuple | None:
    """(width, height) in points of ``source`` laid out by the embedded Graphviz, or None without it."""
    import re

    from .svg import render_svg

    try:
        svg = render_svg(source)
    except Exception:  # (a RenderError, or the packages missing: the estimate decides)
        return None
    m = re.search(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    return (float(m.group(1)), float(m.group(2))) if m else None


def _flat_edges(pic: _Picture, cells: dict) -> bool:
    """True when a drawn edge would join two nodes of one rank (Graphviz draws no such edge between
    record nodes): that many folds will not do."""
    return any(cells[t][1] == cells[h][1] for t, h, attrs in pic.edges if attrs.get("style") != "invis")


def _no_grad_links(functions) -> list:
    """(input Tensor, function) pairs: an input with requires_grad=False that ``function`` used.

    PyTorch keeps no such edge (the entry is None in next_functions), so it is found on the
    tape: the function's operands that need no grad, followed down to the inputs they read.
    """
    links, seen = [], set()
    for fn in functions:
        out = fn.output
        if out is None or None not in fn.next_functions:
            continue
        g = out.graph
        stack = [k for k in reversed(g.operands(out.index)) if k >= 0 and not g.req[k]]
        while stack:
            k = stack.pop()
            if g.op[k] is None:  # a leaf: an input (or a constant expression's value)
                t = g.tensor(k)
                if t.name is not None and (k, id(fn)) not in seen:
                    seen.add((k, id(fn)))
                    links.append((t, fn))
                continue
            stack.extend(j for j in reversed(g.operands(k)) if j >= 0)
    return links


def to_digraph(trace, rankdir: str = "auto", max_nodes: int = 300, legend: bool = True,
               max_depth: int | None = None, collapse: bool = True, tensors: str = "leaves",
               steps: bool = False):
    """Build the annotated backward graph of ``trace`` as a :class:`gradviz.render.dotlang.Digraph`.

    ``rankdir`` is "LR", "TB" or "auto" (:func:`choose_rankdir`). ``tensors="all"``
    draws every tensor next to its grad_fn (so does a trace made with retain_grad, whose
    intermediates have a grad); ``steps`` numbers the arrows in execution order.
    A graph of more than ``max_nodes`` backward functions first has its runs of
    repeated structure collapsed (unless ``collapse`` is False): the first and last
    few repetitions are drawn, one node stands for the rest. Then at most
    ``max_nodes`` nodes are drawn, those nearest the output (breadth-first from the
    root, at most ``max_depth`` edges away); each cut edge ends in a "…". A note
    under the diagram says what was collapsed and how many functions were left out.
    """
    _check_options(rankdir, tensors)
    g = trace.graph
    if tensors == "leaves" and _retains_grad(g):
        tensors = "all"  # the intermediates' grads are the point of retain_grad
    pic, facts = _draw(trace, _Picture(), max_nodes, max_depth, collapse, tensors, steps)
    notes = _notes(facts["collapsed"], g.function_count() - facts["drawn"], g.function_count())
    if legend:
        kinds = {c.kind for c in facts["collapsed"]}
        notes += _legend_lines(facts["no_grad"] or g.root is None, "run" in kinds,
                               facts["constants"], tensors == "all", steps, "block" in kinds)
    folds = 1
    if rankdir == "auto":
        rankdir, folds = choose_layout(pic, notes)
    return _laid_out(pic, rankdir, folds, notes)


def _laid_out(pic: _Picture, rankdir: str, folds: int, notes: list):
    dot = _digraph(rankdir)
    pic.emit(dot, rankdir, folds)
    _add_notes(dot, notes)
    return dot


def _check_options(rankdir: str, tensors: str) -> None:
    if rankdir not in RANKDIRS + ("auto",):
        raise ValueError(f"rankdir must be one of {RANKDIRS + ('auto',)}, not {rankdir!r}")
    if tensors not in TENSORS:
        raise ValueError(f"tensors must be one of {TENSORS}, not {tensors!r}")


def _retains_grad(g) -> bool:
    return bool(getattr(g, "retained", None))


def _digraph(rankdir: str):
    from . import dotlang as graphviz

    dot = graphviz.Digraph("gradviz")
    dot.attr(rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.45", pad="0.2", bgcolor="white")
    # Margins also cover what Graphviz underestimates: it counts a non-ASCII character as spaces.
    dot.attr("node", shape="Mrecord", style="filled", fontname=FONT, fontsize="11", penwidth="1.2",
             margin="0.16,0.06")
    dot.attr("edge", fontname=FONT, fontsize="10", color=COLORS["gradient"], fontcolor=COLORS["gradient"],
             arrowsize="0.7", dir="back")
    return dot


def _add_notes(dot, notes: list) -> None:
    if notes:
        dot.attr(label="".join(_plain_text(line) + "\\l" for line in notes), labelloc="b", labeljust="l",
                 fontsize="9", fontcolor="#64748b")


def _draw(trace, pic: _Picture, max_nodes: int, max_depth, collapse: bool, tensors: str, steps: bool):
    """Everything of one backward graph into ``pic``; returns it and what the notes need."""
    g = trace.graph
    too_big = collapse and g.function_count() > max_nodes
    view = (collapse_view(g.root) if hasattr(g, "tensor") else collapse_view(g.root, g.functions)) \
        if too_big else plain_view(g.root)
    nodes = _nearest_functions(view, max_nodes, max_depth)
    pic.xlabels = getattr(g, "producer", "expression") != "expression" and len(nodes) > XLABEL_FUNCTIONS
    functions = [node for node in nodes if type(node) is not Collapsed]
    collapsed = [node for node in nodes if type(node) is Collapsed]
    no_grad = _no_grad_links(functions)
    out_is_leaf_node = _tensor_nodes(pic, g, functions, tensors)
    _function_nodes(pic, g, nodes, tensors)
    constants = _constant_nodes(pic, functions)
    _edges(pic, trace, view, nodes, no_grad, out_is_leaf_node, steps)
    return pic, {"collapsed": collapsed, "drawn": len(functions), "no_grad": bool(no_grad),
                 "constants": constants}


def _tensor_nodes(pic: _Picture, g, functions: list, tensors: str) -> bool:
    """Leaves (those whose AccumulateGrad is drawn, and no-grad inputs), the output, and with
    ``tensors="all"`` every other tensor next to its grad_fn; True when the output is itself a
    drawn leaf."""
    every = tensors == "all"
    leaf_ids = {id(fn.variable) for fn in functions if fn.variable is not None}
    for t in g.inputs.values():  # the leaves drawn are inputs (in creation order: they come first)
        if not t.is_leaf or t is g.output and t.name is None:
            continue
        if id(t) in leaf_ids:
            _leaf_node(pic, g, t, is_output=t is g.output, every=every)
        elif not t.requires_grad and t.name is not None:
            fields = [_titled(t.name, t)]
            fields += _attributes(t) if every else [_valued("data", t.value), "requires_grad=False"]
            pic.node(t.id, fields, **_style("no_grad", style="filled,dashed", fontcolor=COLORS["dim_text"]))
    out = g.output
    if every:
        for fn in functions:
            t = fn.output
            if t is not None and t is not out:
                fields = [_titled(abbreviate(tensor_text(g, t), TEXT_WIDTH), t)]
                pic.node(t.id, fields + _attributes(t), tooltip=_tooltip(tensor_text(g, t)),
                         **_style("tensor"))
                # On the output side of its grad_fn, as the forward op made it (Graphviz draws no edge
                # between two record nodes of one rank, so it cannot sit above or below it).
                pic.edge(fn.id, t.id, dir="none", style="dotted", color=COLORS["link"], penwidth="1.6",
                         weight="4")
    if id(out) in leaf_ids:
        return True
    fields = [_titled(abbreviate(tensor_text(g, out), TEXT_WIDTH), out)]
    fields += _attributes(out) if every else [_valued("data", out.value)]
    if g.root is None and not every:
        fields.append("requires_grad=False: no backward graph")
    pic.node(out.id, fields, tooltip=_tooltip(g.source, 2000), **_style("output", penwidth="2"))
    return False


def _attributes(t) -> list:
    """The lecture's five attributes as one field of lines: data, grad, grad_fn, is_leaf, requires_grad."""
    grad_fn = f"<{t.grad_fn.name}>" if t.grad_fn is not None else "None"
    return [_valued("data", t.value) + _grad_line(t)
            + [f"grad_fn = {grad_fn}", f"is_leaf = {t.is_leaf}", f"requires_grad = {t.requires_grad}"]]


def _grad_line(t) -> list:
    return _valued("grad", t.grad_value) if t.grad_value is not None else ["grad = None"]


def _function_nodes(pic: _Picture, g, nodes: list, tensors: str) -> None:
    """Backward functions with the sub-expression they differentiate and what they saved, and the
    runs collapsed among them; in a recorded imported graph, each in its module's cluster."""
    modules = {}  # the top-level modules functions were made in (a parameter joins only those)
    for fn in nodes:
        if type(fn) is not Collapsed and fn.variable is None:
            module = _module_of(g, fn)
            if module:
                modules[module.partition(".")[0]] = True
    for fn in nodes:
        if type(fn) is Collapsed and fn.kind == "block":
            fields = [fn.heading, [f"{fn.size} functions each:"] + _wrapped(fn.motif, BLOCK_TEXT_WIDTH),
                      f"{fn.hidden} backward functions not drawn"]
            pic.node(fn.id, fields, tooltip=_tooltip(fn.title), **_style("function", style="filled,dashed"))
            pic.ranked.add(pic.prefix + fn.id)
            continue
        if type(fn) is Collapsed:
            motif = []  # each function of the motif, then what hangs off the chain there
            for part in fn.motif:
                name, _, sides = part.partition(" ← ")
                motif += [name, "← " + sides] if sides else [name]
            fields = [f"⋯ {fn.repetitions} more ×", motif, f"{fn.hidden} backward functions not drawn"]
            pic.node(fn.id, fields, tooltip=_tooltip(fn.title), **_style("function", style="filled,dashed"))
            pic.ranked.add(pic.prefix + fn.id)
            continue
        module = _module_of(g, fn)
        if fn.variable is not None:
            pic.node(fn.id, ["AccumulateGrad"], **_style("accumulate", fontsize="10"))
            if module and modules.get(module.partition(".")[0]):  # with its parameter, in its module
                pic.clusters[pic.prefix + fn.id] = pic.clusters[pic.prefix + fn.variable.id] = module
            continue
        if module:
            pic.clusters[pic.prefix + fn.id] = module
        saved = []
        for k, v in fn.saved_raw.items():
            saved += _saved_lines(k, v)
        fields = [fn.name]
        out = fn.output
        if out is not None and tensors != "all" and out is not g.output and _has_text(g, out):
            # Which part of the expression this function differentiates (the tensor node says it with "all").
            fields.append("of " + abbreviate(tensor_text(g, out), FUNCTION_TEXT_WIDTH))
        fields += [saved] if saved else []
        if fn.op.key == "imported" and out.value is not None and tensors != "all":
            fields.append(_valued("output", out.value))  # read from PyTorch: its value, recorded
        tip = fn.name + (f" (from {tensor_text(g, out)})" if out is not None else "")
        pic.node(fn.id, fields, tooltip=_tooltip(tip), **_style("function"))
        pic.ranked.add(pic.prefix + fn.id)


def _wrapped(parts: list, width: int) -> list:
    """``parts`` joined with commas into lines of about ``width`` characters."""
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) + 2 > width:
            lines.append(line + ",")
            line = part
        else:
            line = f"{line}, {part}" if line else part
    return lines + [line] if line else lines


def _has_text(g, t) -> bool:
    """True when a tensor holds a part of the expression (a double-backward graph's own tensors
    hold none: they are computed by gradient formulas)."""
    return bool(t.name) or t.span is not None


def _saved_lines(name: str, value) -> list:
    text = format_saved(value)
    if "\n" not in text:
        return [f"{name} = {text}"]
    return [f"{name} ="] + text.split("\n")


def _constant_nodes(pic: _Picture, functions: list) -> bool:
    """A Python number used by a function, drawn where it enters: the ``2`` of ``2*x`` joined to the
    MulBackward0 that holds it as ``other``. True when one was drawn."""
    drawn = False
    for fn in functions:
        g, i = fn.graph, fn.index
        consts = getattr(g, "consts", None)
        if fn.op is None or not consts:
            continue
        for k, slot in enumerate(fn.op.inputs):
            if (i, k) not in consts or (g.a[i] if k == 0 else g.b[i]) != -1:
                continue
            key = f"c{fn.id}_{k}"
            pic.node(key, [format_saved(consts[(i, k)])], tooltip=_tooltip(f"a Python number: {slot}"),
                     **_style("constant", fontsize="10", style="filled,dashed", fontcolor="#475569"))
            pic.edge(key, fn.id, dir="none", style="dashed", color=COLORS["constant"][1], label=f" {slot} ",
                     fontcolor=COLORS["dim_text"], fontsize="9")
            drawn = True
    return drawn


def _edges(pic: _Picture, trace, view, nodes: list, no_grad: list, out_is_leaf_node: bool, steps: bool) -> None:
    """Edges, written forward (tail = input side) with the arrowhead at the tail: gradients flow back."""
    g, fl = trace.graph, flow(trace)
    out = g.output
    kept = {id(node) for node in nodes}
    shared, drawn = _shared_parameters(g, view, nodes, kept), set()
    numbered = steps and bool(trace.steps)
    if g.root is not None and not out_is_leaf_node:  # (a leaf output: its AccumulateGrad is the root)
        pic.edge(g.root.id, out.id, label=_grad_label(fl.start, prefix="start: " if numbered else ""))
    for fn in nodes:
        step = fl.step(fn) if numbered and type(fn) is not Collapsed else None
        prefix = f"step {step}: " if step is not None else ""
        if type(fn) is not Collapsed and fn.variable is not None:
            leaf = fn.variable
            grad = leaf.grad_value if trace.steps else None
            if grad is None and trace.steps:
                grad = fl.received(fn)  # (a double-backward pass: the leaf's grad was read, then reset)
            pic.edge(leaf.id, fn.id, label=_grad_label(grad, prefix=prefix + "+= "))
            continue
        for i, nxt in enumerate(view.next_functions(fn)):
            if nxt is None:
                continue
            tail = nxt.id
            if id(nxt) not in kept:
                # Where the drawing stops, each cut edge ends in its own small "…" (one shared
                # node would pull every cut edge across the whole layout).
                tail = f"{fn.id}_{i}_more"
                pic.node(tail, "…", shape="plaintext", style="", fontcolor=COLORS["dim_text"])
            elif id(nxt) in shared and id(nxt) in drawn:
                # A parameter used all over a large imported graph (an RNN's weight at every step):
                # its later uses end in a small reference to it, not in edges across the whole
                # layout (which Graphviz takes minutes to route).
                tail = f"{fn.id}_{i}_ref"
                pic.node(tail, [f"↺ {nxt.variable.name or nxt.variable.id}"],
                         tooltip=_tooltip(f"the AccumulateGrad of {nxt.variable.name}, drawn once ({nxt.id})"),
                         **_style("accumulate", style="filled,dashed", fontsize="9"))
            drawn.add(id(nxt))
            pic.edge(tail, fn.id, label=_grad_label(view.along(fl, fn, i), prefix=prefix))
    for t, fn in no_grad:
        pic.edge(t.id, fn.id, dir="none", style="dashed", color=COLORS["no_grad"][1])
    if g.root is None:
        for t in g.inputs.values():
            pic.edge(t.id, out.id, dir="none", style="dashed", color=COLORS["no_grad"][1])


#: drawn functions of an imported graph above which edge labels are xlabels (see _Picture.xlabels):
#: nn.TransformerEncoder's 26 layers drawn whole (1,975 functions) lay out in ~25 s, not a stack overflow
XLABEL_FUNCTIONS = 600

#: a parameter's AccumulateGrad with more drawn uses than this (in an imported graph) is drawn
#: once, its other uses ending in a reference to it
SHARED_USES = 3


def _shared_parameters(g, view, nodes: list, kept: set) -> set:
    """ids of the AccumulateGrads of an imported graph that more than SHARED_USES drawn edges reach."""
    if getattr(g, "producer", "expression") == "expression":
        return set()
    uses: dict = {}
    for fn in nodes:
        if type(fn) is Collapsed or fn.variable is None:
            for nxt in view.next_functions(fn):
                if nxt is not None and type(nxt) is not Collapsed and nxt.variable is not None and id(nxt) in kept:
                    uses[id(nxt)] = uses.get(id(nxt), 0) + 1
    return {key for key, n in uses.items() if n > SHARED_USES}


def _notes(collapsed: list, hidden: int, total: int) -> list[str]:
    """What the note under the diagram says was collapsed or left out."""
    notes = [f"{c.heading} drawn as one node ({c.hidden} backward functions)" if c.kind == "block" else
             f"⋯ {c.repetitions} more repetitions of {c.motif_text} drawn as one node ({c.hidden} backward functions)"
             for c in collapsed[:NOTED_RUNS]]
    if len(collapsed) > NOTED_RUNS:
        notes.append(f"⋯ {len(collapsed) - NOTED_RUNS} more runs of repeated structure, each drawn as one node "
                     f"({sum(c.hidden for c in collapsed[NOTED_RUNS:])} backward functions)")
    if hidden:
        notes.append(f"{hidden} of {total} backward functions not drawn (see --max-nodes, --depth)")
    return notes


def _nearest_functions(view, limit: int, max_depth: int | None = None) -> list:
    """Up to ``limit`` nodes of ``view`` (functions and Collapsed runs), breadth-first from the root,
    at most ``max_depth`` edges away: the part of the graph nearest the output."""
    root = view.root
    if root is None:
        return []
    seen = {id(root)}
    order = [root]
    depth = [0]
    i = 0
    while i < len(order) and len(order) < limit:
        if max_depth is None or depth[i] < max_depth:
            for nxt in view.next_functions(order[i]):
                if nxt is not None and id(nxt) not in seen and len(order) < limit:
                    seen.add(id(nxt))
                    order.append(nxt)
                    depth.append(depth[i] + 1)
        i += 1
    # Draw them in the graph's own (depth-first) id order, so the DOT reads like the JSON
    # (a collapsed run where its first hidden function would be).
    return sorted(order, key=lambda fn: fn.sort_key if type(fn) is Collapsed else int(fn.id[1:]))


def dot_source(trace, rankdir: str = "auto", max_nodes: int = 300, legend: bool = True,
               max_depth: int | None = None, collapse: bool = True, tensors: str = "leaves",
               steps: bool = False) -> str:
    """The DOT text of :func:`to_digraph`."""
    return to_digraph(trace, rankdir=rankdir, max_nodes=max_nodes, legend=legend, max_depth=max_depth,
                      collapse=collapse, tensors=tensors, steps=steps).source


# --------------------------------------------------------------------------- --graph double


def double_backward_digraph(second, rankdir: str = "auto", max_nodes: int = 300, legend: bool = True,
                            tensors: str = "leaves", steps: bool = False):
    """``--graph double``: every input's gradient graph (``create_graph=True``) in a cluster of its
    own, its arrows carrying the gradients of the backward pass run from that gradient (whose
    results are a row of the Hessian, shown on the leaves as ``grad``), and the Hessian in a box
    under the clusters. ``second`` is :class:`gradviz.higher.SecondOrder`."""
    _check_options(rankdir, tensors)
    pictures, constants = [], False
    for name, trace in second.traces().items():
        pic = _Picture(prefix=f"{name}_")
        if trace.graph.root is None:
            value = second.grads[name]
            pic.node("constant", [f"∂f/∂{name} = {format_tensor(value, one_line=True) if value is not None else 'None'}",
                                  "a constant: no grad_fn, its derivatives are 0"], **_style("output"))
        else:
            _hessian_row_on_leaves(trace, second.hessian.get(name, {}))
            _, facts = _draw(trace, pic, max_nodes, None, True, tensors, steps)
            constants = constants or facts["constants"]
        pictures.append((name, pic))
    hessian = _hessian_fields(second.hessian)
    notes = ["each box: the graph of one gradient ∂f/∂input (create_graph=True); its arrows carry the",
             "backward pass run from that gradient, whose results on the leaves are a row of the Hessian"]
    if legend:
        notes += _legend_lines(False, False, constants, tensors == "all", steps)
    if rankdir == "auto":
        merged = _Picture()
        for _, pic in pictures:
            merged.nodes.update(pic.nodes)
            merged.edges += pic.edges
        rankdir = choose_rankdir(merged, notes)
    dot = _digraph(rankdir)
    # Graphviz stacks clusters bottom-up in the order they come: written last first, the first
    # input's box is on top (left with TB).
    for name, pic in reversed(pictures):
        with dot.subgraph(name=f"cluster_{name}") as sub:
            sub.attr(label=f"∂f/∂{name}", labeljust="l", fontsize="12", color="#cbd5e1", style="rounded")
            pic.emit(sub, rankdir)
    if hessian:
        from . import dotlang as graphviz

        dot.node("hessian", graphviz.nohtml(_record(hessian, rankdir)), shape="record", **_style("note"))
    _add_notes(dot, notes)
    return dot


def _hessian_row_on_leaves(trace, row: dict) -> None:
    """The backward pass from ∂f/∂a leaves ∂²f/∂a∂b in b.grad: put it back on the leaves (the
    analysis reset them after reading) so that the picture's leaves show the Hessian's row."""
    for b, value in row.items():
        leaf = trace.graph.inputs.get(b)
        if leaf is not None and leaf.requires_grad:
            leaf.grad = value


def _hessian_fields(hessian: dict) -> list:
    """The Hessian as record fields: a title, then one line per pair ∂²f/∂a∂b = value."""
    if not hessian:
        return []
    lines = []
    for a, row in hessian.items():
        for b, value in row.items():
            text = format_tensor(value)
            if "\n" in text:
                lines += [f"∂²f/∂{a}∂{b} ="] + text.split("\n")
            else:
                lines.append(f"∂²f/∂{a}∂{b} = {text}")
    return ["Hessian (by differentiating the backward graph)", lines]


# --------------------------------------------------------------------------- orientation


def choose_rankdir(pic: _Picture, notes: list = ()) -> str:
    """"LR" or "TB": the orientation whose estimated size is nearer a slide's 16:9.

    Sizes are estimated from the labels (DejaVu Sans at 11 pt averages about 6.4 pt a
    character) and the ranks Graphviz will give the nodes (longest path from the inputs):
    left to right, the width is the sum of the ranks' widest nodes and the height the
    tallest rank; top to bottom the other way round. A long chain goes top to bottom, a
    wide, shallow graph left to right. Ties go to LR (the lecture's direction)."""
    sizes = {key: _node_size(fields, attrs) for key, (fields, attrs) in pic.nodes.items()}
    if not sizes:
        return "LR"
    note_w = max((len(n) * 5.2 for n in notes), default=0)
    note_h = 11 * len(notes)

    def badness(w, h):
        return abs(math.log(max(w, note_w) / (h + note_h) / SLIDE_ASPECT))

    lr, tb = _estimate(pic, sizes, "LR"), _estimate(pic, sizes, "TB")
    return "TB" if badness(*tb) + 0.15 < badness(*lr) else "LR"


def _estimate(pic: _Picture, sizes: dict, rankdir: str, keys: set | None = None) -> tuple:
    """(width, height) in points of ``pic`` (or of the nodes ``keys``) laid out in ``rankdir``."""
    ranks = _ranks(pic, sizes, keys)
    by_rank: dict = {}
    for key, r in ranks.items():
        by_rank.setdefault(r, []).append(sizes[key])
    if not by_rank:
        return (1.0, 1.0)
    if rankdir == "LR":
        label_w = _edge_label_width(pic)
        w = sum(max(w for w, _ in col) for col in by_rank.values()) + (len(by_rank) - 1) * (32 + label_w)
        h = max(sum(h for _, h in col) + 22 * (len(col) - 1) for col in by_rank.values())
        return (w, h)
    w = max(sum(w for w, _ in row) + 22 * (len(row) - 1) for row in by_rank.values())
    h = sum(max(h for _, h in row) for row in by_rank.values()) + (len(by_rank) - 1) * (32 + 14)
    return (w, h)


def _node_size(fields, attrs) -> tuple:
    """(width, height) in points a node's label needs, roughly as Graphviz measures it."""
    if not isinstance(fields, list):
        return (14.0, 14.0)
    lines = []
    for f in fields:
        lines += list(f) if isinstance(f, (list, tuple)) else [f]
    width = max((len(line) for line in lines), default=1) * 6.4 + 24
    return (width, 15.0 * len(lines) + 9 * len(fields))


def _edge_label_width(pic: _Picture) -> float:
    """The widest line of an arrow's label (left to right, labels sit between the ranks)."""
    widest = 0
    for _, _, attrs in pic.edges:
        label = str(attrs.get("label", ""))
        widest = max(widest, max((len(x) for x in label.split("\\l")), default=0))
    return min(widest * 5.8, 200)


def _ranks(pic: _Picture, sizes: dict, keys: set | None = None) -> dict:
    """Each node's rank as Graphviz's dot assigns it, roughly: the longest path from a source
    along the edges that constrain the layout (Kahn's order: no recursion); only ``keys`` if given."""
    keys = set(sizes) if keys is None else keys & set(sizes)
    return _longest_paths(keys, ((tail, head) for tail, head, attrs in pic.edges
                                 if attrs.get("constraint") != "false"))


def _longest_paths(keys, edges) -> dict:
    """Each key's longest path from a source along ``edges`` ((from, to) pairs; those with an end
    outside ``keys`` are left out), in Kahn's order: no recursion."""
    succ: dict = {key: [] for key in keys}
    indeg = dict.fromkeys(succ, 0)
    for tail, head in edges:
        if tail in succ and head in succ:
            succ[tail].append(head)
            indeg[head] += 1
    rank = dict.fromkeys(succ, 0)
    ready = [k for k, d in indeg.items() if d == 0]
    while ready:
        k = ready.pop()
        for h in succ[k]:
            rank[h] = max(rank[h], rank[k] + 1)
            indeg[h] -= 1
            if indeg[h] == 0:
                ready.append(h)
    return rank


# --------------------------------------------------------------------------- labels


def _titled(title: str, t) -> str:
    """A node's title, with the tensor's shape when it is not a scalar: ``W  shape (2, 3)``."""
    return f"{title}  shape {format_shape(t.shape)}" if t.ndim else title


def _leaf_node(pic: _Picture, g, t, is_output: bool, every: bool) -> None:
    fields = [_titled(t.name or tensor_text(g, t), t)]
    fields += _attributes(t) if every else [_valued("data", t.value), _grad_line(t)]
    extra = {"penwidth": "2", "color": COLORS["output"][1]} if is_output else {}
    pic.node(t.id, fields, **_style("leaf", **extra))


def _grad_label(grad, prefix: str = "") -> str:
    from . import dotlang as graphviz

    if grad is None:
        return ""
    text = format_tensor(grad)
    if "\n" not in text:
        return graphviz.nohtml(" " + prefix + text + " ")
    # A matrix: one row a line, left-aligned (Graphviz's \l), PyTorch's padding kept.
    rows = [prefix.rstrip()] + text.split("\n") if prefix else text.split("\n")
    return graphviz.nohtml("".join(_plain_text(r).replace(" ", "\u00a0") + "\\l" for r in rows))


def _tooltip(text: str, width: int = 300) -> str:
    from . import dotlang as graphviz

    return graphviz.nohtml(_plain_text(abbreviate(text, width)))


def _legend_lines(with_no_grad: bool, with_collapsed: bool = False, with_constants: bool = False,
                  with_tensors: bool = False, with_steps: bool = False, with_blocks: bool = False) -> list[str]:
    """A key under the diagram, in words (the embedded Graphviz has no HTML labels for a colored one)."""
    lines = ["blue: leaf tensor · green: output · grey: AccumulateGrad",
             "orange: backward function, the part of the expression it differentiates, the values it saved"]
    if with_tensors:
        lines.append("light blue: every other tensor, joined to its grad_fn (dotted), with PyTorch's attributes")
    if with_constants:
        lines.append("small grey: a constant (a Python number, or a tensor that needs no grad) where it enters, by argument name")
    if with_collapsed:
        lines.append("dashed orange ⋯: the middle of a run of repeated structure, collapsed into one node")
    if with_blocks:
        lines.append("dashed orange ⋯ blocks: repetitions of the block drawn next to it, collapsed into one node")
    if with_no_grad:
        lines.append("dashed: requires_grad=False (no gradient flows there)")
    lines.append("red arrows: the gradient flowing backward, with its value"
                 + (", numbered by the step that sent it (execution order)" if with_steps else ""))
    return lines


def _plain_text(text: str) -> str:
    """Plain-label text: only the backslash is special to Graphviz (quotes are the package's job)."""
    return text.replace("\\", "\\\\")
