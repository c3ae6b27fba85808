"""The terminal view: a summary, the Tensors table and the backward graph as a tree.

Every function returns a rich renderable and never prints; :mod:`gradviz.cli`
owns the Console, which decides about color (none when piped or NO_COLOR is set)
and width. Large graphs are cut to ``max_rows`` / ``max_nodes`` / ``max_depth``
and the view says what it left out; a tree above its budget first has its runs
of repeated structure collapsed into one line each (:mod:`.collapse`). Nothing
here recurses over the graph.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .collapse import Collapsed, View, collapse_view, plain_view
from .flow import Flow, flow, tensor_text
from ..numbers import abbreviate, format_saved, format_shape, format_tensor

__all__ = ["summary", "tensors_table", "backward_tree", "report", "grad_note"]

#: rich styles, by what they mark (no color is used when the Console has none)
STYLES = {
    "value": "bold",
    "leaf": "bold blue",
    "output": "bold green",
    "function": "bold cyan",
    "accumulate": "magenta",
    "grad": "yellow",
    "saved": "dim",
    "note": "dim italic",
    "none": "dim",
    "collapsed": "bold cyan",
}

ARROW = "▶"
#: the longest first line of the summary with the inputs' values written in it: 80 columns
_HEAD_WIDTH = 74


def summary(trace, max_inputs: int = 8) -> Text:
    """``f(u=1., v=2.) = 3.`` and one ``∂f/∂u = 4.`` line per input (or why there is none): every value
    a tensor's, printed as PyTorch prints its elements (what ``tensor(4.)`` holds), on one line."""
    g = trace.graph
    items = list(g.inputs.items())
    shown = items[:max_inputs]
    more = ", …" if len(items) > max_inputs else ""
    args = ", ".join(f"{name}={format_tensor(t.value, one_line=True)}" for name, t in shown) + more
    value = format_tensor(g.output.value, one_line=True)
    if len(args) + len(value) > _HEAD_WIDTH:  # the inputs' values are in the Tensors table: the value stays on the line
        args = ", ".join(name for name, _ in shown) + more
    text = Text()
    text.append(f"f({args}) = ")
    text.append(value, style=STYLES["value"])
    if trace.backward_error:
        text.append(f"\nno gradients: {trace.backward_error}", style=STYLES["note"])
        return text
    if g.root is None:
        text.append("\nno gradients: the output does not require grad", style=STYLES["note"])
        return text
    for name, t in shown:
        text.append(f"\n∂f/∂{name} ")
        if not t.requires_grad:
            text.append(f"not computed ({name} has requires_grad=False)", style=STYLES["note"])
        elif t.grad_value is None:
            text.append("= None", style=STYLES["value"])
            text.append(f" (f does not depend on {name})", style=STYLES["note"])
        else:
            text.append("= ")
            text.append(format_tensor(t.grad_value, one_line=True), style=STYLES["value"])
    if len(items) > max_inputs:
        text.append(f"\n… {len(items) - max_inputs} more inputs (see --format json)", style=STYLES["note"])
    return text


#: below this width the Tensors table is drawn as one block per tensor (every column kept)
NARROW = 64


def tensors_table(trace, max_rows: int = 30, text_width: int | None = None) -> "TensorsTable":
    """The **Tensors** table: tensor (its name or the whole sub-expression it holds), data, grad,
    requires_grad, is_leaf, grad_fn, with data and grad as PyTorch prints them.

    It uses the width it is drawn at: the sub-expressions in full when there is room (cut to
    ``text_width`` characters if given), and below :data:`NARROW` columns one block per tensor
    (every attribute kept, the values wrapped) instead of a table with columns squeezed out.
    Rows are in creation order (inputs first, the output last). Beyond ``max_rows`` the
    middle rows are left out and the caption says how many.
    """
    return TensorsTable(trace, max_rows, text_width)


class TensorsTable:
    """The renderable :func:`tensors_table` returns: its layout is chosen when rich draws it."""

    def __init__(self, trace, max_rows: int = 30, text_width: int | None = None):
        self.trace, self.max_rows, self.text_width = trace, max_rows, text_width

    def rows(self) -> tuple[list, str | None]:
        g = self.trace.graph
        tensors = _tensors(g)
        if len(tensors) > self.max_rows:
            rows = tensors[: max(self.max_rows - 1, 0)] + [g.output]
            return rows, f"showing {len(rows)} of {len(tensors)} tensors (--format json lists all)"
        return list(tensors), None

    def __rich_console__(self, console, options):
        rows, caption = self.rows()
        notes = [c for c in (caption, grad_note(self.trace)) if c]
        values = [(format_tensor(t.value), None if t.grad_value is None else format_tensor(t.grad_value))
                  for t in rows]
        if self._table_width(rows, values) > options.max_width:
            yield from self._blocks(rows, notes, options.max_width)
            return
        # The sub-expressions get what the other columns leave (all of it on a wide terminal).
        room = options.max_width - (self._table_width(rows, values) - self._names_width(rows)) - 1
        yield self._table(rows, values, notes[:1] if caption else [], self.text_width or max(24, room))
        for note in notes[1 if caption else 0:]:
            yield Text(note, style=STYLES["note"])  # (a caption would wrap at the table's width)

    def _table_width(self, rows: list, values: list) -> int:
        """The width the table needs to show every value with PyTorch's rows unbroken."""
        widest = max((len(line) for v in values for x in v if x for line in x.split("\n")), default=4)
        names = self._names_width(rows)
        grad_fns = max((len(t.grad_fn.name) for t in rows if t.grad_fn is not None), default=7)
        # each column is padded by one space and separated by one (SIMPLE_HEAD's vertical is a space)
        return max(names, 6) + 2 * max(widest, 4) + len("requires_grad") + len("is_leaf") + max(grad_fns, 7) + 11

    def _name(self, t, width: int | None) -> Text:
        g = self.trace.graph
        style = STYLES["output"] if t is g.output else STYLES["leaf"] if t.name else ""
        text = tensor_text(g, t)
        return Text(abbreviate(text, width) if width else " ".join(text.split()), style=style)

    def _names_width(self, rows: list) -> int:
        return max((min(len(tensor_text(self.trace.graph, t)), 24) for t in rows), default=6)

    def _table(self, rows: list, values: list, notes: list, name_width: int) -> Table:
        g = self.trace.graph
        table = Table(title="Tensors", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                      show_edge=False, padding=(0, 1, 0, 0))
        table.add_column("tensor", overflow="fold")
        table.add_column("data", no_wrap=True)
        table.add_column("grad", no_wrap=True)
        table.add_column("requires_grad", no_wrap=True)
        table.add_column("is_leaf", no_wrap=True)
        table.add_column("grad_fn", no_wrap=True)
        for t, (data, grad) in zip(rows, values):
            name = self._name(t, name_width)
            if t.ndim or g.output.ndim:
                name.append("\n" + format_shape(t.shape), style=STYLES["none"])
            table.add_row(name, data, Text("None", style=STYLES["none"]) if grad is None else grad,
                          str(t.requires_grad), str(t.is_leaf),
                          t.grad_fn.name if t.grad_fn is not None else Text("None", style=STYLES["none"]))
        if notes:
            table.caption = "\n".join(notes)
            table.caption_justify = "left"
            table.caption_style = STYLES["note"]
        return table

    def _blocks(self, rows: list, notes: list, width: int):
        """Where the table would not fit: each tensor as a few lines, every attribute kept, the
        values as PyTorch prints them within the width (wrapped, nothing dropped)."""
        from ..numbers import get_printoptions, printoptions, tensor_str

        yield Text("Tensors", style="bold")
        linewidth = min(get_printoptions().linewidth, width)
        arrays = any(t.ndim for t in rows)
        for t in rows:
            head = self._name(t, self.text_width)
            if arrays:
                head.append("  " + format_shape(t.shape), style=STYLES["none"])
            grad_fn = t.grad_fn.name if t.grad_fn is not None else "None"
            head.append(f"  requires_grad={t.requires_grad} is_leaf={t.is_leaf} grad_fn={grad_fn}",
                        style=STYLES["none"])
            yield head
            with printoptions(linewidth=linewidth):
                yield Text("  data = " + tensor_str(t.value, indent=len("  data = ")))
                grad = "None" if t.grad_value is None else tensor_str(t.grad_value, indent=len("  grad = "))
                yield Text("  grad = " + grad, style=STYLES["none"] if t.grad_value is None else "")
        for note in notes:
            yield Text(note, style=STYLES["note"])


def grad_note(trace) -> str | None:
    """One short line on the intermediates' grad (None when there are none, or no backward ran)."""
    g = trace.graph
    has_intermediates = any(g.op[i] is not None and g.req[i] for i in range(len(g)))  # the tape, not a view each
    retained = bool(g.retained)
    if not has_intermediates or not trace.steps:
        return None
    if retained:
        return "grad of intermediates: kept by --retain-grad (retain_grad())"
    return "grad is None on intermediates: PyTorch keeps .grad on leaves (see --retain-grad)"


def _collapsed(g):
    """The collapsed view of a tape's whole graph (read as indices), or of a double-backward
    graph's functions."""
    return collapse_view(g.root) if hasattr(g, "tensor") else collapse_view(g.root, g.functions)


def _tensors(g) -> "_Rows | list":
    """The graph's tensors in creation order, made into views only as they are read."""
    return _Rows(g) if hasattr(g, "tensor") else g.tensors


class _Rows:
    """``graph.tensors`` of a tape, without a view per tensor: slicing and indexing make views."""

    def __init__(self, graph):
        self.graph = graph

    def __len__(self) -> int:
        return len(self.graph)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self.graph.tensor(i) for i in range(*key.indices(len(self.graph)))]
        return self.graph.tensor(range(len(self.graph))[key])

    def __iter__(self):
        return (self.graph.tensor(i) for i in range(len(self.graph)))


# --------------------------------------------------------------------------- the tree


class _Line:
    """One drawn line of the backward tree: the edge into ``fn`` at ``depth``.

    ``fn`` is None for a next_functions entry that is None, or a
    :class:`~.collapse.Collapsed` run; ``kind`` is "edge",
    "none" or "deeper" (a placeholder for levels below max_depth).
    """

    __slots__ = ("depth", "fn", "grad", "first", "index", "kind")

    def __init__(self, depth, fn, grad, first, kind="edge"):
        self.depth = depth
        self.fn = fn
        self.grad = grad  # the gradient flowing along this edge (None if backward did not run)
        self.first = first  # False when ``fn`` was already expanded above
        self.index = 0  # this is the index-th drawn edge into fn (1-based)
        self.kind = kind


def _drawn_lines(view: View, fl: Flow, max_nodes: int, max_depth: int) -> tuple[list[_Line], bool]:
    """The first ``max_nodes`` lines of the tree in pre-order; whether more were left out.

    A function is expanded where it is first drawn and referenced after; below
    ``max_depth`` a single placeholder stands for the hidden levels (never visited,
    so the cost is bounded by what is drawn).
    """
    lines: list[_Line] = []
    expanded: set = set()
    stack = [(view.root, 0, fl.start, "edge")]
    while stack:
        if len(lines) >= max_nodes:
            return lines, True
        fn, depth, grad, kind = stack.pop()
        if kind != "edge" or fn is None:
            lines.append(_Line(depth, None, None, True, "none" if kind == "edge" else kind))
            continue
        first = id(fn) not in expanded
        lines.append(_Line(depth, fn, grad, first))
        nxt = view.next_functions(fn)
        if not first or not nxt:
            continue
        expanded.add(id(fn))
        if depth >= max_depth:
            stack.append((None, depth + 1, None, "deeper"))
            continue
        for i in range(len(nxt) - 1, -1, -1):
            stack.append((nxt[i], depth + 1, view.along(fl, fn, i), "edge"))
    return lines, False


def _sum_text(terms: list, count: int, total) -> str:
    """``2. + 2. = 4.`` for numbers; arrays, many terms or hidden ones only show the total."""
    total_text = format_tensor(total, one_line=True) if total is not None else "?"
    if len(terms) < count or len(terms) > 4 or any(getattr(t, "size", 1) > 1 for t in terms):
        return f"sum of {count} = {total_text}"
    return " + ".join(format_tensor(t, one_line=True) for t in terms) + " = " + total_text


def _label(line: _Line, fl: Flow, counts: dict, contributions: dict, last_drawn: dict) -> Text:
    text = Text()
    if line.kind == "deeper":
        return Text("… deeper levels hidden", style=STYLES["note"])
    if line.kind == "none":
        text.append("None", style=STYLES["none"])
        text.append(" (this input needs no grad)", style=STYLES["note"])
        return text
    fn = line.fn
    if line.grad is not None:
        text.append(format_tensor(line.grad, one_line=True), style=STYLES["grad"])
        text.append(f" {ARROW} ")
    if type(fn) is Collapsed:
        if not line.first:  # (a block has as many parents as edges run into it)
            text.append(fn.heading, style=STYLES["collapsed"])
            text.append(f" ({fn.id}, drawn above)", style=STYLES["note"])
            return text
        text.append(fn.title, style=STYLES["collapsed"])
        text.append(f"  ({fn.hidden} functions hidden)", style=STYLES["note"])
        return text
    count = counts.get(fn.index, 0)
    is_last = last_drawn.get(id(fn)) is line
    if fn.variable is not None:
        leaf = fn.variable.name or fn.variable.id
        text.append("AccumulateGrad", style=STYLES["accumulate"])
        text.append(" → ")
        text.append(f"{leaf}.grad", style=STYLES["leaf"])
        if count > 1 and fn.variable.grad_value is None:  # nothing was accumulated (e.g. a double-backward graph)
            text.append(f" ({line.index} of {count})", style=STYLES["note"])
        elif count > 1 and not is_last:
            text.append(f" ({line.index} of {count}, summed below)", style=STYLES["note"])
        elif count > 1:
            text.append(" = " + _sum_text(contributions.get(id(fn), []), count, fn.variable.grad_value))
        elif fn.variable.grad_value is not None:
            text.append(" = " + format_tensor(fn.variable.grad_value, one_line=True))
        return text
    text.append(fn.name, style=STYLES["function"])
    if not line.first:
        text.append(f" ({fn.id}, expanded above)", style=STYLES["note"])
    elif fn.op is not None and fn.op.saves:
        text.append("  ")
        text.append(
            " ".join(f"{k}={_one_line(format_saved(v))}" for k, v in fn.saved_raw.items()),
            style=STYLES["saved"],
        )
    if count > 1 and is_last and fl.received(fn) is not None:
        text.append("  receives " + _sum_text(contributions.get(id(fn), []), count, fl.received(fn)),
                    style=STYLES["note"])
    elif count > 1:
        text.append(f"  ({line.index} of {count})", style=STYLES["note"])
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("[ ", "[")


def backward_tree(trace, max_nodes: int = 100, max_depth: int = 12, collapse: bool = True) -> Group:
    """The backward graph as a tree: output → grad_fn → next_functions → AccumulateGrad → leaf.

    Each line starts with the gradient that flows along its edge during
    backward (``2. ▶ MulBackward0``), then the function and its saved values.
    A leaf reached more than once shows each contribution and their sum; a
    shared function is expanded the first time and referenced after. A tree of
    more than ``max_nodes`` lines first has its runs of repeated structure
    collapsed (unless ``collapse`` is False): the first and last few repetitions,
    and one ``⋯ N more × motif`` line for the rest. Then at most ``max_nodes``
    lines are drawn and nothing deeper than ``max_depth``; notes say what was hidden.
    """
    g = trace.graph
    head = Text()
    head.append(abbreviate(tensor_text(g, g.output), 50), style=STYLES["output"])  # a double-backward graph's output is a gradient
    head.append(" = " + format_tensor(g.output.value, one_line=True))
    tree = Tree(head, guide_style="dim")
    title = Text("Backward graph", style="bold")
    if g.root is None:
        tree.add(Text("no backward graph: the output does not require grad", style=STYLES["note"]))
        return Group(title, tree)
    fl = flow(trace)
    if fl.start is not None:
        title.append(f"  (on each edge: gradient {ARROW} the function it flows into)", style=STYLES["note"])
    max_nodes = max(max_nodes, 1)
    # Every function is expanded once, one line per next_functions entry, plus the root's line.
    too_big = collapse and 1 + g.edge_count() > max_nodes
    view = _collapsed(g) if too_big else plain_view(g.root)
    lines, more = _drawn_lines(view, fl, max_nodes, max(max_depth, 0))
    counts = g.dependency_counts()
    contributions, last_drawn = _number_edges(lines)
    parents = [tree]
    for line in lines:
        del parents[line.depth + 1:]
        parents.append(parents[line.depth].add(_label(line, fl, counts, contributions, last_drawn)))
    return Group(title, tree, *_tree_notes(g, lines, more))


def _number_edges(lines: list) -> tuple[dict, dict]:
    """Number the drawn edges into each function (``line.index``); the sum goes on the last one
    drawn. Returns (function id → the gradients along its drawn edges, [] when one is unknown;
    function id → its last drawn line)."""
    contributions: dict = {}
    last_drawn: dict = {}
    for line in lines[1:]:
        if line.fn is not None:
            terms = contributions.setdefault(id(line.fn), [])
            terms.append(line.grad)
            line.index = len(terms)
            last_drawn[id(line.fn)] = line
    for key, terms in contributions.items():
        if any(t is None for t in terms):
            contributions[key] = []
    return contributions, last_drawn


def _tree_notes(g, lines: list, more: bool) -> list:
    """The notes under the tree: what collapsed runs hide, and that lines were left out."""
    notes = []
    collapsed = list({id(line.fn): line.fn for line in lines if type(line.fn) is Collapsed}.values())
    if collapsed:
        hidden = sum(c.hidden for c in collapsed)
        runs = "collapsed repeated structure hides" if len(collapsed) == 1 else \
            f"{len(collapsed)} collapsed runs of repeated structure hide"
        notes.append(Text(f"⋯ {runs} {hidden} of {g.function_count()} functions (--max-nodes)",
                          style=STYLES["note"]))
    if more:
        notes.append(Text(f"… more not shown: {len(lines)} lines drawn of a graph with "
                          f"{g.function_count()} functions (--max-nodes)", style=STYLES["note"]))
    return notes


def report(trace, max_rows: int = 30, max_nodes: int = 100, max_depth: int = 12, collapse: bool = True) -> Group:
    """The default terminal view: summary, Tensors table, backward graph."""
    return Group(
        summary(trace),
        Text(""),
        tensors_table(trace, max_rows=max_rows),
        Text(""),
        backward_tree(trace, max_nodes=max_nodes, max_depth=max_depth, collapse=collapse),
    )
