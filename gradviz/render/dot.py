"""The backward graph as a Graphviz diagram (a ``graphviz.Digraph``), annotated with values.

Layout follows the forward computation (inputs on the left, or on top with
``rankdir="TB"``, the output last), and every arrow points the way the gradient
flows during backward, labelled with that gradient:

- leaf tensors (light blue): name, data and grad; inputs with requires_grad=False
  are dimmed, joined by a dashed line to the function that used them;
- backward functions (orange): PyTorch's class name and the values it saved;
- AccumulateGrad (grey), one per leaf, with ``+= g`` on the arrow into the leaf;
- the output (green): its expression and value; the arrow from it carries the
  gradient backward starts with;
- above the node budget, a run of repeated structure (dashed): its first and last
  repetitions are drawn and one "⋯ N more × motif" node stands for the rest
  (:mod:`gradviz.render.collapse`).

Labels are Graphviz record labels (the embedded Graphviz has no HTML labels):
:func:`record_field` escapes record syntax, the graphviz package quotes the rest.
Ids are the graph's own (``f0``, ``t0``...), so the same input gives the same DOT.
"""

from __future__ import annotations

from .collapse import Collapsed, collapse_view, plain_view
from .flow import flow, tensor_text
from .numbers import abbreviate, format_saved, format_shape, format_tensor

__all__ = ["to_digraph", "dot_source", "record_field", "RANKDIRS"]

RANKDIRS = ("LR", "TB")
#: array elements shown in a label before abbreviating
LABEL_ITEMS = 6
#: characters of an expression shown on a node (the tooltip holds all of it)
TEXT_WIDTH = 48
#: collapsed runs described one by one in the note under the diagram
NOTED_RUNS = 3

# Graphviz sizes boxes with its built-in width table for this font, which is the font's
# own advance widths; PNG and PDF are drawn with the same font file (render/fonts/), so
# the text drawn is the text measured (render/raster.py).
FONT = "DejaVu Sans"
COLORS = {
    "leaf": ("#dbeafe", "#2563eb"),  # (fill, border)
    "function": ("#ffedd5", "#ea580c"),
    "accumulate": ("#e5e7eb", "#6b7280"),
    "output": ("#dcfce7", "#16a34a"),
    "no_grad": ("#f9fafb", "#cbd5e1"),
    "gradient": "#dc2626",
    "dim_text": "#94a3b8",
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

    A field may be a list of lines, shown left-aligned.
    """
    parts = []
    for field in fields:
        if isinstance(field, (list, tuple)):
            parts.append("".join(record_field(line) + "\\l" for line in field))
        else:
            parts.append(record_field(field))
    body = "|".join(parts)
    # Record fields run across the rank direction; braces turn them.
    return body if rankdir == "LR" else "{" + body + "}"


def _style(kind: str, **extra) -> dict:
    fill, border = COLORS[kind]
    attrs = {"fillcolor": fill, "color": border}
    attrs.update(extra)
    return attrs


def _no_grad_links(graph, functions) -> list:
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


def to_digraph(trace, rankdir: str = "LR", max_nodes: int = 300, legend: bool = True,
               max_depth: int | None = None, collapse: bool = True):
    """Build the annotated backward graph of ``trace`` as a ``graphviz.Digraph``.

    A graph of more than ``max_nodes`` backward functions first has its runs of
    repeated structure collapsed (unless ``collapse`` is False): the first and last
    few repetitions are drawn, one node stands for the rest. Then at most
    ``max_nodes`` nodes are drawn, those nearest the output (breadth-first from the
    root, at most ``max_depth`` edges away); each cut edge ends in a "…". A note
    under the diagram says what was collapsed and how many functions were left out.
    """
    import graphviz

    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}, not {rankdir!r}")
    g = trace.graph
    dot = graphviz.Digraph("gradviz")
    dot.attr(rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.45", pad="0.2", bgcolor="white")
    # Margins also cover what Graphviz underestimates: it counts a non-ASCII character as spaces.
    dot.attr("node", shape="Mrecord", style="filled", fontname=FONT, fontsize="11", penwidth="1.2",
             margin="0.16,0.06")
    dot.attr("edge", fontname=FONT, fontsize="10", color=COLORS["gradient"], fontcolor=COLORS["gradient"],
             arrowsize="0.7", dir="back")

    too_big = collapse and g.function_count() > max_nodes
    view = (collapse_view(g.root) if hasattr(g, "tensor") else collapse_view(g.root, g.functions)) \
        if too_big else plain_view(g.root)
    nodes = _nearest_functions(view, max_nodes, max_depth)
    functions = [node for node in nodes if type(node) is not Collapsed]
    collapsed = [node for node in nodes if type(node) is Collapsed]
    no_grad = _no_grad_links(g, functions)
    out_is_leaf_node = _tensor_nodes(dot, g, functions, rankdir)
    _function_nodes(dot, g, nodes, rankdir)
    _edges(dot, trace, view, nodes, no_grad, out_is_leaf_node)
    notes = _notes(collapsed, g.function_count() - len(functions), g.function_count())
    if legend:
        notes += _legend_lines(bool(no_grad) or g.root is None, bool(collapsed))
    if notes:
        dot.attr(label="".join(_plain_text(line) + "\\l" for line in notes), labelloc="b", labeljust="l",
                 fontsize="9", fontcolor="#64748b")
    return dot


def _tensor_nodes(dot, g, functions: list, rankdir: str) -> bool:
    """Leaves (those whose AccumulateGrad is drawn, and no-grad inputs) and the output; True when
    the output is itself a drawn leaf."""
    leaf_ids = {id(fn.variable) for fn in functions if fn.variable is not None}
    for t in g.inputs.values():  # the leaves drawn are inputs (in creation order: they come first)
        if not t.is_leaf or t is g.output and t.name is None:
            continue
        if id(t) in leaf_ids:
            _leaf_node(dot, g, t, rankdir, is_output=t is g.output)
        elif not t.requires_grad and t.name is not None:
            fields = [_titled(t.name, t), f"data = {format_tensor(t.value, LABEL_ITEMS)}", "requires_grad=False"]
            dot.node(t.id, _label(fields, rankdir),
                     **_style("no_grad", style="filled,dashed", fontcolor=COLORS["dim_text"]))
    out = g.output
    if id(out) in leaf_ids:
        return True
    fields = [_titled(abbreviate(tensor_text(g, out), TEXT_WIDTH), out),
              f"data = {format_tensor(out.value, LABEL_ITEMS)}"]
    if g.root is None:
        fields.append("requires_grad=False: no backward graph")
    dot.node(out.id, _label(fields, rankdir), tooltip=_tooltip(g.source, 2000), **_style("output", penwidth="2"))
    return False


def _function_nodes(dot, g, nodes: list, rankdir: str) -> None:
    """Backward functions with what they saved, and the runs collapsed among them."""
    inside, finish = _module_clusters(dot, g, nodes)
    for fn in nodes:
        dot = inside.get(id(fn), inside.get("top"))
        if type(fn) is Collapsed:
            motif = []  # each function of the motif, then what hangs off the chain there
            for part in fn.motif:
                name, _, sides = part.partition(" ← ")
                motif += [name, "← " + sides] if sides else [name]
            fields = [f"⋯ {fn.repetitions} more ×", motif, f"{fn.hidden} backward functions not drawn"]
            dot.node(fn.id, _label(fields, rankdir), tooltip=_tooltip(fn.title),
                     **_style("function", style="filled,dashed"))
            continue
        if fn.variable is not None:
            dot.node(fn.id, _label(["AccumulateGrad"], rankdir), **_style("accumulate", fontsize="10"))
            continue
        saved = [f"{k} = {format_saved(v, LABEL_ITEMS)}" for k, v in fn.saved_raw.items()]
        fields = [fn.name] + ([saved] if saved else [])
        if fn.op.key == "imported" and fn.output.value is not None:  # read from PyTorch: its value, if recorded
            fields.append(f"output = {format_tensor(fn.output.value, LABEL_ITEMS)}")
        tip = fn.name + (f" (from {tensor_text(g, fn.output)})" if fn.output is not None else "")
        dot.node(fn.id, _label(fields, rankdir), tooltip=_tooltip(tip), **_style("function"))
    finish()


def _module_clusters(dot, g, nodes: list):
    """A graph read from PyTorch with ``gradviz.record()``: one Graphviz cluster per module path,
    nested as the paths are (``layers`` ⊃ ``layers.0`` ⊃ ``layers.0.attn``), each function in
    its module's and an AccumulateGrad in its parameter's. Returns ({id(fn): the (sub)graph to
    draw it in, "top": dot}, a function that puts the clusters into ``dot``)."""
    imported = getattr(g, "imported", None)
    where: dict = {"top": dot}
    paths: dict = {}
    for fn in nodes if imported else ():
        if type(fn) is Collapsed:
            continue
        if fn.variable is not None:
            paths[id(fn)] = (fn.variable.name or "").rpartition(".")[0]
        elif imported.get(fn.index) is not None and imported[fn.index].module:
            paths[id(fn)] = imported[fn.index].module
    modules = {p for p in paths.values() if p}
    if not any(fn.variable is None for fn in nodes if id(fn) in paths and paths[id(fn)]):
        return where, lambda: None  # no function has a module: nothing to group
    every = {".".join(p.split(".")[:k]) for p in modules for k in range(1, p.count(".") + 2)}
    import graphviz

    clusters = {p: graphviz.Digraph(name=f"cluster_{n}", graph_attr={
        "label": p, "style": "dashed,rounded", "color": "#94a3b8", "fontcolor": "#64748b", "fontsize": "10",
        "labeljust": "l"}) for n, p in enumerate(sorted(every))}
    for key, p in paths.items():
        if p in clusters:
            where[key] = clusters[p]

    def finish():
        for p in sorted(every, key=lambda p: (-p.count("."), p)):  # the deepest first: complete when copied
            parent = p.rpartition(".")[0]
            (clusters[parent] if parent in clusters else dot).subgraph(clusters[p])

    return where, finish


def _edges(dot, trace, view, nodes: list, no_grad: list, out_is_leaf_node: bool) -> None:
    """Edges, written forward (tail = input side) with the arrowhead at the tail: gradients flow back."""
    g, fl = trace.graph, flow(trace)
    out = g.output
    kept = {id(node) for node in nodes}
    shared, drawn = _shared_parameters(g, view, nodes, kept), set()
    if g.root is not None and not out_is_leaf_node:  # (a leaf output: its AccumulateGrad is the root)
        dot.edge(g.root.id, out.id, label=_grad_label(fl.start))
    for fn in nodes:
        if type(fn) is not Collapsed and fn.variable is not None:
            leaf = fn.variable
            grad = leaf.grad_value if trace.steps else None
            dot.edge(leaf.id, fn.id, label=_grad_label(grad, prefix="+= "))
            continue
        for i, nxt in enumerate(view.next_functions(fn)):
            if nxt is None:
                continue
            tail = nxt.id
            if id(nxt) not in kept:
                # Where the drawing stops, each cut edge ends in its own small "…" (one shared
                # node would pull every cut edge across the whole layout).
                tail = f"{fn.id}_{i}_more"
                dot.node(tail, "…", shape="plaintext", style="", fontcolor=COLORS["dim_text"])
            elif id(nxt) in shared and id(nxt) in drawn:
                # A parameter used all over a large imported graph (an RNN's weight at every step):
                # its later uses end in a small reference to it, not in edges across the whole
                # layout (which Graphviz takes minutes to route).
                tail = f"{fn.id}_{i}_ref"
                dot.node(tail, _label([f"↺ {nxt.variable.name or nxt.variable.id}"], "LR"),
                         tooltip=_tooltip(f"the AccumulateGrad of {nxt.variable.name}, drawn once ({nxt.id})"),
                         **_style("accumulate", style="filled,dashed", fontsize="9"))
            drawn.add(id(nxt))
            dot.edge(tail, fn.id, label=_grad_label(view.along(fl, fn, i)))
    for t, fn in no_grad:
        dot.edge(t.id, fn.id, dir="none", style="dashed", color=COLORS["no_grad"][1])
    if g.root is None:
        for t in g.inputs.values():
            dot.edge(t.id, out.id, dir="none", style="dashed", color=COLORS["no_grad"][1])


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
    notes = [f"⋯ {c.repetitions} more repetitions of {c.motif_text} drawn as one node ({c.hidden} backward functions)"
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


def dot_source(trace, rankdir: str = "LR", max_nodes: int = 300, legend: bool = True,
               max_depth: int | None = None, collapse: bool = True) -> str:
    """The DOT text of :func:`to_digraph`."""
    return to_digraph(trace, rankdir=rankdir, max_nodes=max_nodes, legend=legend, max_depth=max_depth,
                      collapse=collapse).source


def _label(fields: list, rankdir: str):
    import graphviz

    return graphviz.nohtml(_record(fields, rankdir))


def _titled(title: str, t) -> str:
    """A node's title, with the tensor's shape when it is not a scalar: ``W  shape (2, 3)``."""
    return f"{title}  shape {format_shape(t.shape)}" if t.ndim else title


def _leaf_node(dot, g, t, rankdir: str, is_output: bool) -> None:
    grad = "None" if t.grad_value is None else format_tensor(t.grad_value, LABEL_ITEMS)
    fields = [_titled(t.name or tensor_text(g, t), t), f"data = {format_tensor(t.value, LABEL_ITEMS)}",
              f"grad = {grad}"]
    extra = {"penwidth": "2", "color": COLORS["output"][1]} if is_output else {}
    dot.node(t.id, _label(fields, rankdir), **_style("leaf", **extra))


def _grad_label(grad, prefix: str = "") -> str:
    import graphviz

    if grad is None:
        return ""
    return graphviz.nohtml(" " + prefix + format_tensor(grad, LABEL_ITEMS) + " ")


def _tooltip(text: str, width: int = 300) -> str:
    import graphviz

    return graphviz.nohtml(_plain_text(abbreviate(text, width)))


def _legend_lines(with_no_grad: bool, with_collapsed: bool = False) -> list[str]:
    """A key under the diagram, in words (the embedded Graphviz has no HTML labels for a colored one)."""
    lines = ["blue: leaf tensor · green: output · grey: AccumulateGrad",
             "orange: backward function, with the values it saved"]
    if with_collapsed:
        lines.append("dashed orange ⋯: the middle of a run of repeated structure, collapsed into one node")
    if with_no_grad:
        lines.append("dashed: requires_grad=False (no gradient flows there)")
    lines.append("red arrows: the gradient flowing backward, with its value")
    return lines


def _plain_text(text: str) -> str:
    """Plain-label text: only the backslash is special to Graphviz (quotes are the package's job)."""
    return text.replace("\\", "\\\\")
