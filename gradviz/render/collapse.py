"""Repeated structure collapsed into one node, so that a large backward graph stays readable.

``x0*x1 + x1*x2 + ...`` builds one motif again and again along a chain: an
AddBackward0 whose other input is a MulBackward0 over two AccumulateGrads. Drawn
whole it is an endless diagonal. Above their node budget the renderers walk a
:class:`View` of the graph instead, in which each long run of a motif keeps its
first and last :data:`KEEP` repetitions and one :class:`Collapsed` node stands
for the middle ones and says what it stands for::

    ⋯ 659 more × AddBackward0 ← MulBackward0(AccumulateGrad, AccumulateGrad)

How runs are found, iteratively and in time linear in the graph (structure only,
never values):

1. each function gets a *shape*: an interned id of its class name and its
   inputs' shapes, so equal sub-graphs have equal shapes (sharing is ignored:
   a sub-graph is compared as the tree it unfolds to);
2. the graph is cut into *heavy paths*: from a function, follow the input with
   the longest chain below it (the first such input on a tie);
3. along a path each function has a *motif key*: its class name and the shapes
   of its other inputs. A run is a stretch whose keys repeat with a period of 1
   to :data:`MAX_PERIOD` functions at least ``2 * KEEP + MIN_HIDDEN`` times, and
   whose functions past the first have no parent but the one before them (so
   hiding them hides no edge from elsewhere).
"""

from __future__ import annotations

from array import array

from ..graph import depth_first

__all__ = ["Collapsed", "View", "plain_view", "collapse_view", "KEEP", "MAX_PERIOD"]

#: repetitions drawn before and after a collapsed run
KEEP = 3
#: a run is collapsed only when at least this many repetitions would be hidden
MIN_HIDDEN = 2
#: longest motif, in functions along the chain, that is looked for
MAX_PERIOD = 8
#: characters of a motif's description
MOTIF_WIDTH = 90

_NONE = -1  # the shape of a None entry in next_functions
_SPINE = -2  # in a motif key: the input the chain continues through


class Collapsed:
    """One drawn node standing for the hidden middle repetitions of a run.

    ``entry`` .. ``last`` are the hidden functions along the chain; the chain goes
    on at ``exit`` (``last.next_functions[index]``), the node's only input, so
    ``next_functions`` is ``(exit,)``. ``repetitions`` hidden repetitions of
    ``motif`` (one text per function of the motif, in chain order), ``hidden``
    backward functions in all (the chain and what hangs off it alone).
    """

    __slots__ = ("id", "entry", "last", "index", "exit", "next_functions", "repetitions", "motif", "hidden")

    def __init__(self, entry, last, index, repetitions, motif):
        self.id = ""
        self.entry = entry
        self.last = last
        self.index = index
        self.exit = last.next_functions[index]
        self.next_functions = (self.exit,)
        self.repetitions = repetitions
        self.motif = motif
        self.hidden = 0

    @property
    def motif_text(self) -> str:
        """The motif on one line: ``AddBackward0 ← MulBackward0(…)``; ``(A → B ← C)`` for a longer one."""
        return self.motif[0] if len(self.motif) == 1 else "(" + " → ".join(self.motif) + ")"

    @property
    def title(self) -> str:
        """``⋯ 659 more × AddBackward0 ← MulBackward0(AccumulateGrad, AccumulateGrad)``."""
        return f"⋯ {self.repetitions} more × {self.motif_text}"

    @property
    def sort_key(self) -> int:
        """Where the node goes among the graph's functions (``f12`` → 12): at its first hidden one."""
        return int(self.entry.id[1:])

    def __repr__(self) -> str:
        return f"<Collapsed {self.id}: {self.title}>"


class View:
    """The backward graph as a renderer walks it: each collapsed run replaced by its :class:`Collapsed` node.

    ``collapsed`` lists the Collapsed nodes reachable from ``root`` (ids ``c0``,
    ``c1``... in breadth-first order); ``hidden`` counts the backward functions
    they hide.
    """

    def __init__(self, root, replaced: dict | None = None):
        self.root = root
        self._next = replaced or {}
        self.collapsed: list[Collapsed] = []
        self.hidden = 0

    def next_functions(self, fn) -> tuple:
        """``fn.next_functions`` with a collapsed run's first function replaced by its Collapsed node."""
        if type(fn) is Collapsed:
            return fn.next_functions
        return self._next.get(id(fn), fn.next_functions)

    def along(self, fl, fn, i):
        """The gradient that flowed along ``next_functions(fn)[i]`` (from the last hidden function, for a Collapsed)."""
        if type(fn) is Collapsed:
            return fl.along(fn.last, fn.index)
        return fl.along(fn, i)


def plain_view(root) -> View:
    """The graph as it is (nothing collapsed)."""
    return View(root)


def collapse_view(root, functions=None) -> View:
    """The graph with every run of repeated structure collapsed.

    ``functions``: all reachable from ``root`` as views (a double-backward graph's); without
    them the whole graph of ``root``'s tape is read as indices, making views only for what
    is drawn."""
    if root is None:
        return View(root)
    if functions is None:
        g = root.graph
        order = depth_first(g, root.index)
        position = array("q", [_NONE]) * len(g)
        for k, i in enumerate(order):
            position[i] = k
        inputs = [[_NONE if j is None else position[j] for j in g.next_functions(i)] for i in order]
        names = [g.op[i].torch_name if g.op[i] is not None else "AccumulateGrad" for i in order]
        replaced = _find_runs(0, inputs, names, lambda k: g.function(order[k]))
    else:
        position = {id(fn): k for k, fn in enumerate(functions)}
        try:
            inputs = [[_NONE if nxt is None else position[id(nxt)] for nxt in fn.next_functions]
                      for fn in functions]
        except KeyError:
            return View(root)  # ``functions`` is not everything reachable: draw the graph as it is
        replaced = _find_runs(position[id(root)], inputs, [fn.name for fn in functions], functions.__getitem__)
    view = View(root, replaced)
    if replaced:
        _count_hidden(view, len(inputs))
    return view


# --------------------------------------------------------------------------- finding runs


def _find_runs(root: int, inputs: list, names: list, function) -> dict:
    """{id(parent): its next_functions with the run's first hidden function replaced by a Collapsed}.

    Functions are positions: ``inputs[k]`` their next_functions' positions (``_NONE`` for None),
    ``names[k]`` their class names, ``function(k)`` the view (made only for what a run needs):
    list indexing is what keeps 100,000s cheap."""
    n = len(inputs)
    indegree = [0] * n
    for ks in inputs:
        for k in ks:
            if k >= 0:
                indegree[k] += 1
    # Parents before children (Kahn), so that the reverse order sees every input first.
    order = [root]
    waiting = indegree[:]
    for k in order:  # the list grows while it is read
        for j in inputs[k]:
            if j >= 0:
                waiting[j] -= 1
                if waiting[j] == 0:
                    order.append(j)
    if len(order) != n:
        return {}  # not all reachable from root (or a cycle): draw the graph as it is

    shapes: dict[tuple, int] = {}
    kids_of: list[tuple] = []  # shape id -> (class name, its inputs' shape ids)
    shape = [0] * n
    height = [0] * n
    heavy = [_NONE] * n  # the input with the longest chain below it
    for k in reversed(order):
        best, best_j, kids = -1, _NONE, ()
        if inputs[k]:  # (AccumulateGrad, a third of a typical graph, has none)
            kids = tuple([_NONE if i < 0 else shape[i] for i in inputs[k]])
            for j, i in enumerate(inputs[k]):
                if i >= 0 and height[i] > best:
                    best, best_j = height[i], j
        key = (names[k], kids)
        sid = shapes.get(key)
        if sid is None:
            sid = shapes[key] = len(kids_of)
            kids_of.append(key)
        shape[k] = sid
        height[k] = best + 1
        heavy[k] = best_j

    replaced: dict = {}
    motif_keys: dict[tuple, int] = {}
    on_path = [False] * n
    min_repeats = 2 * KEEP + MIN_HIDDEN
    for start in order:
        if on_path[start]:
            continue
        path, k = [], start
        while k >= 0 and not on_path[k]:
            on_path[k] = True
            path.append(k)
            k = inputs[k][heavy[k]] if heavy[k] >= 0 else _NONE
        if len(path) < min_repeats:
            continue
        keys = []
        for k in path:
            kids = list(kids_of[shape[k]][1])
            if heavy[k] >= 0:
                kids[heavy[k]] = _SPINE
            keys.append(motif_keys.setdefault((names[k], tuple(kids)), len(motif_keys)))
        single = [indegree[k] == 1 for k in path]
        for i, period, repeats in _runs(keys, single, min_repeats):
            first, last = i + KEEP * period, i + (repeats - KEEP) * period - 1
            parent, entry = path[first - 1], path[first]
            motif = [_motif_part(inputs[k], heavy[k], names[k], shape, kids_of)
                     for k in path[i:i + period]]
            collapsed = Collapsed(function(entry), function(path[last]), heavy[path[last]],
                                  repeats - 2 * KEEP, motif)
            nxt = list(function(parent).next_functions)
            nxt[heavy[parent]] = collapsed
            replaced[id(function(parent))] = tuple(nxt)
    return replaced


def _runs(keys: list, single: list, min_repeats: int):
    """(start, period, repetitions) of each run in ``keys``, left to right, the shortest period first.

    Position k belongs to a run of period p started at i when ``keys[k] == keys[k - p]``
    and its function has a single parent (``single[k]``), for every k in i+p.. .
    """
    n, i = len(keys), 0
    while i + min_repeats <= n:
        found = False
        for period in range(1, MAX_PERIOD + 1):
            if i + period * min_repeats > n or period > 1 and not single[i + period - 1]:
                break  # (past its first function, a run has single parents)
            k = i
            while k + period < n and keys[k] == keys[k + period] and single[k + period]:
                k += 1
            repeats = (k - i + period) // period
            if repeats >= min_repeats:
                yield i, period, repeats
                i += repeats * period
                found = True
                break
        if not found:
            i += 1


def _motif_part(inputs: list, spine: int, name: str, shape: list, kids_of: list) -> str:
    """One function of a motif: its name, then ``←`` and the shapes of its inputs off the chain."""
    sides = [_shape_text(_NONE if i < 0 else shape[i], kids_of) for j, i in enumerate(inputs) if j != spine]
    return name + (" ← " + ", ".join(sides) if sides else "")


def _shape_text(sid: int, kids_of: list, width: int = MOTIF_WIDTH) -> str:
    """``MulBackward0(AccumulateGrad, AccumulateGrad)``, written with a stack and cut at ``width``.

    A chain of one function applied to itself is counted, not spelled out:
    ``40 nested SinBackward0(AccumulateGrad)``.
    """
    out, size = [], 0
    stack: list = [sid]
    while stack and size <= width:
        item = stack.pop()
        if isinstance(item, str):
            text = item
        elif item == _NONE:
            text = "None"
        else:
            name, kids = kids_of[item]
            depth = 1
            while len(kids) == 1 and kids[0] != _NONE and kids_of[kids[0]][0] == name:
                depth += 1
                kids = kids_of[kids[0]][1]
            text = name if depth < 3 else f"{depth} nested {name}"
            if depth == 2:
                text += "(" + name
                stack.append(")")
            if kids:
                text += "("
                stack.append(")")
                for j in range(len(kids) - 1, -1, -1):
                    stack.append(kids[j])
                    if j:
                        stack.append(", ")
        out.append(text)
        size += len(text)
    text = "".join(out)
    return text if not stack and size <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- what a view hides


def _count_hidden(view: View, total: int) -> None:
    """Number the reachable Collapsed nodes and count what each hides (breadth-first, no recursion)."""
    seen = {id(view.root)}
    queue = [view.root]
    drawn = 0
    for node in queue:  # the list grows while it is read
        if type(node) is Collapsed:
            node.id = f"c{len(view.collapsed)}"
            view.collapsed.append(node)
        else:
            drawn += 1
        for nxt in view.next_functions(node):
            if nxt is not None and id(nxt) not in seen:
                seen.add(id(nxt))
                queue.append(nxt)
    view.hidden = total - drawn
    if len(view.collapsed) == 1:  # every function not drawn is reached through it
        view.collapsed[0].hidden = view.hidden
        return
    # What a Collapsed hides: all that is reached from its first hidden function and not drawn
    # (the first Collapsed to reach a function counts it), walked on the tape as indices.
    seen_index = {node.index for node in queue if type(node) is not Collapsed}
    for collapsed in view.collapsed:
        g = collapsed.entry.graph
        seen_index.add(collapsed.entry.index)
        stack = [collapsed.entry.index]
        count = 0
        while stack:
            i = stack.pop()
            count += 1
            for j in g.next_functions(i):
                if j is not None and j not in seen_index:
                    seen_index.add(j)
                    stack.append(j)
        collapsed.hidden = count
