"""Repeated structure collapsed into one node, so that a large backward graph stays readable.

Two kinds of repetition are found, both from structure only (class names and edges, never values),
iteratively and in time about linear in the graph.

**Runs along a chain.** ``x0*x1 + x1*x2 + ...`` builds one motif again and again along a chain: an
AddBackward0 whose other input is a MulBackward0 over two AccumulateGrads. Drawn whole it is an
endless diagonal. Above their node budget the renderers walk a :class:`View` of the graph instead,
in which each long run of a motif keeps its first and last :data:`KEEP` repetitions and one
:class:`Collapsed` node stands for the middle ones and says what it stands for::

    ⋯ 659 more × AddBackward0 ← MulBackward0(AccumulateGrad, AccumulateGrad)

1. each function gets a *shape*: an interned id of its class name and its inputs' shapes, so equal
   sub-graphs have equal shapes (sharing is ignored: a sub-graph is compared as the tree it
   unfolds to);
2. the graph is cut into *heavy paths*: from a function, follow the input with the longest chain
   below it (the first such input on a tie);
3. along a path each function has a *motif key*: its class name and the shapes of its other
   inputs. A run is a stretch whose keys repeat with a period of 1 to :data:`MAX_PERIOD`
   functions at least ``2 * KEEP + MIN_HIDDEN`` times, and whose functions past the first have
   no parent but the one before them (so hiding them hides no edge from elsewhere).

**Repeated blocks.** A real model repeats whole blocks: twelve equal transformer layers of ~75
functions with residual branches, ResNet's basic blocks, an LSTM cell unrolled 1,000 steps (two
tensors, h and c, flow from one step to the next). What the runs leave is searched for a
stretch of the graph that repeats as a whole, on *levels*:

1. AccumulateGrads (the parameters, which an RNN shares between all its steps) set aside, each
   function's level is its longest distance from the root, and each level is ordered by the
   first edge into each of its functions (levels above come first, then position, then slot):
   identical blocks in series get the same levels shifted by the block's depth;
2. each level gets a *signature*: per function its class name and, per input, whether it is
   None or an AccumulateGrad, or else how many levels down and where in that level it is —
   so equal signatures ``p`` levels apart mean the same functions wired the same way;
3. the sequence of level signatures is searched for stretches of period ``p`` (the distances
   between a signature's occurrences are the candidates) that repeat at least
   ``KEEP_BLOCKS + MIN_HIDDEN_BLOCKS`` times; the stretch hiding most functions wins;
4. a block starts where the cut between blocks is narrowest: fewest functions receiving a
   gradient from above it, then (when a record() gave module paths) where each block is one
   module, then fewest edges across it.

The block nearest the output is drawn; one Collapsed node stands for all the others, with the
AccumulateGrads only they use, and is named from module paths or parameter names when the
graph has them::

    ⋯ layers.1-10: 10 more blocks like layers.11 (76 functions each: …)
"""

from __future__ import annotations

import heapq
from array import array

from ..graph import depth_first

__all__ = ["Collapsed", "View", "plain_view", "collapse_view", "KEEP", "MAX_PERIOD", "KEEP_BLOCKS",
           "MIN_HIDDEN_BLOCKS"]

#: repetitions drawn before and after a collapsed run
KEEP = 3
#: a run is collapsed only when at least this many repetitions would be hidden
MIN_HIDDEN = 2
#: longest motif, in functions along the chain, that is looked for
MAX_PERIOD = 8
#: characters of a motif's description
MOTIF_WIDTH = 90
#: repetitions of a repeated block drawn: the one nearest the output (it shows what the others hold)
KEEP_BLOCKS = 1
#: a block is collapsed only when at least this many repetitions would be hidden
MIN_HIDDEN_BLOCKS = 2
#: fewest functions (AccumulateGrads not counted) in one repetition of a block
MIN_BLOCK = 2
#: candidate periods tried for blocks (the most frequent distances between equal levels)
MAX_PERIODS = 64

_NONE = -1  # the shape of a None entry in next_functions
_SPINE = -2  # in a motif key: the input the chain continues through
_LEAF = -2  # in a level signature: an input that is an AccumulateGrad


class Collapsed:
    """One drawn node standing for hidden functions: the middle repetitions of a run along a chain
    (``kind == "run"``) or the repetitions of a repeated block (``kind == "block"``).

    ``next_functions`` are where the graph goes on below what is hidden; ``sources[i]`` the
    hidden (function, slot) edges that reach ``next_functions[i]`` and ``whole[i]`` whether they
    are all of its parents (so what it received is what they sent); ``entries`` the hidden
    functions that drawn ones point to; ``repetitions`` how many repetitions are hidden;
    ``hidden`` how many backward functions in all.

    A run: ``entry`` .. ``last`` are the hidden functions along the chain; the chain goes on at
    ``exit`` (``last.next_functions[index]``), the node's only input, so ``next_functions`` is
    ``(exit,)``; ``motif`` one text per function of the motif, in chain order.

    A block: ``size`` functions in each repetition, ``label`` what they are called (``layers.1-10``,
    from module paths or parameter names; None when the graph does not say), ``like`` what the
    drawn repetition is called, ``motif`` the block's functions counted (``3 MulBackward0``...);
    ``entry``/``last``/``index``/``exit`` as for a run, of its first entry and first edge out.
    """

    __slots__ = ("id", "kind", "entry", "last", "index", "exit", "next_functions", "repetitions", "motif",
                 "hidden", "sources", "whole", "entries", "size", "label", "like")

    def __init__(self, entry, last, index, repetitions, motif):
        self.id = ""
        self.kind = "run"
        self.entry = entry
        self.last = last
        self.index = index
        self.exit = last.next_functions[index]
        self.next_functions = (self.exit,)
        self.repetitions = repetitions
        self.motif = motif
        self.hidden = 0
        self.sources = (((last, index),),)
        self.whole = (False,)
        self.entries = (entry,)
        self.size = len(motif)
        self.label = self.like = None

    @classmethod
    def block(cls, entries, exits, sources, whole, repetitions, size, motif, label, like, hidden):
        """The node of a repeated block's hidden repetitions (see the class)."""
        self = cls.__new__(cls)
        self.id = ""
        self.kind = "block"
        self.entries = tuple(entries)
        self.entry = self.entries[0]
        self.next_functions = tuple(exits)
        self.sources = tuple(tuple(s) for s in sources)
        self.whole = tuple(whole)
        self.last, self.index = self.sources[0][0] if self.sources else (None, 0)
        self.exit = self.next_functions[0] if self.next_functions else None
        self.repetitions = repetitions
        self.size = size
        self.motif = motif
        self.label = label
        self.like = like
        self.hidden = hidden
        return self

    @property
    def motif_text(self) -> str:
        """The motif on one line: ``AddBackward0 ← MulBackward0(…)``; ``(A → B ← C)`` for a longer one;
        a block's functions counted: ``3 MulBackward0, 2 AddBackward0, …``."""
        if self.kind == "block":
            return _cut(", ".join(self.motif))
        return self.motif[0] if len(self.motif) == 1 else "(" + " → ".join(self.motif) + ")"

    @property
    def heading(self) -> str:
        """A block's first line: ``⋯ layers.1-10: 10 more blocks like layers.11`` (a run's: its title)."""
        if self.kind != "block":
            return self.title
        name = f"{self.label}: " if self.label else ""
        like = self.like if self.like and self.like != self.label else "the one next to it"
        return f"⋯ {name}{self.repetitions} more blocks like {like}"

    @property
    def title(self) -> str:
        """``⋯ 659 more × AddBackward0 ← MulBackward0(AccumulateGrad, AccumulateGrad)``;
        ``⋯ layers.1-10: 10 more blocks like layers.11 (76 functions each: 12 ViewBackward0, …)``."""
        if self.kind == "block":
            return f"{self.heading} ({self.size} functions each: {self.motif_text})"
        return f"⋯ {self.repetitions} more × {self.motif_text}"

    @property
    def sort_key(self) -> int:
        """Where the node goes among the graph's functions (``f12`` → 12): at its first hidden one."""
        return int(self.entry.id[1:])

    def __repr__(self) -> str:
        return f"<Collapsed {self.id}: {self.title}>"


def _cut(text: str, width: int = MOTIF_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class View:
    """The backward graph as a renderer walks it: each collapsed run or block replaced by its :class:`Collapsed` node.

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
        """``fn.next_functions`` with each hidden function replaced by the Collapsed node that stands for it."""
        if type(fn) is Collapsed:
            return fn.next_functions
        return self._next.get(id(fn), fn.next_functions)

    def along(self, fl, fn, i):
        """The gradient that flowed along ``next_functions(fn)[i]``: for a Collapsed, what the one hidden
        edge into it sent, or what it received when all its parents are hidden (else None)."""
        if type(fn) is Collapsed:
            sources = fn.sources[i]
            if len(sources) == 1:
                return fl.along(*sources[0])
            return fl.received(fn.next_functions[i]) if fn.whole[i] else None
        return fl.along(fn, i)


def plain_view(root) -> View:
    """The graph as it is (nothing collapsed)."""
    return View(root)


def collapse_view(root, functions=None) -> View:
    """The graph with every run of repeated structure, and every repeated block, collapsed.

    ``functions``: all reachable from ``root`` as views (a double-backward graph's); without
    them the whole graph of ``root``'s tape is read as indices, making views only for what
    is drawn."""
    if root is None:
        return View(root)
    labels = None
    if functions is None:
        g = root.graph
        order = depth_first(g, root.index)
        inputs = _tape_inputs(g, order)
        names = [g.op[i].torch_name if g.op[i] is not None else "AccumulateGrad" for i in order]
        if g.imported:
            labels = _module_labels(g, order)
        return _collapse(0, inputs, names, lambda k: g.function(order[k]), order.__getitem__, labels)
    position = {id(fn): k for k, fn in enumerate(functions)}
    try:
        inputs = [[_NONE if nxt is None else position[id(nxt)] for nxt in fn.next_functions]
                  for fn in functions]
    except KeyError:
        return View(root)  # ``functions`` is not everything reachable: draw the graph as it is
    return _collapse(position[id(root)], inputs, [fn.name for fn in functions], functions.__getitem__,
                     lambda k: functions[k].index, None)


def _tape_inputs(g, order) -> list:
    """Per position of ``order``: its next_functions' positions (``_NONE`` for None), a tuple (an
    AccumulateGrad's the one empty tuple; each position one int object, shared by every edge to
    it: a million-term graph's inputs are a third of what they would be as lists)."""
    position: list = [_NONE] * (len(g) + 1)  # (the last: None's, read as position[-1])
    for k, i in enumerate(order):
        position[i] = k
    op, nf = g.op, g.next_functions
    return [tuple([position[-1 if j is None else j] for j in nf(i)]) if op[i] is not None else ()
            for i in order]


def _module_labels(g, order):
    """Position -> the module path a function was made in (an AccumulateGrad: its parameter's
    module, from the parameter's name), or None."""
    imported = g.imported

    def label(k):
        i = order[k]
        entry = imported.get(i)
        if entry is not None:
            return entry.module
        return (g.tensor(i).name or "").rpartition(".")[0] or None

    return label


def _collapse(root: int, inputs: list, names: list, function, index_of, labels) -> View:
    """The View of the graph given as positions (see :func:`_find_runs`): runs first, then blocks in
    what they leave."""
    root_fn = function(root)
    order, indegree = _parents_first(root, inputs)
    if order is None:
        return View(root_fn)  # not all reachable from root (or a cycle): draw the graph as it is
    runs = _find_runs(inputs, names, order, indegree)
    over: dict = {}  # position -> its next_functions, a Collapsed node in place of what it hides
    pseudo = []  # the runs' Collapsed nodes, as positions n, n + 1, ... for the block search
    for parent, slot, entry, last, last_slot, repetitions, motif, _ in runs:
        collapsed = Collapsed(function(entry), function(last), last_slot, repetitions, motif)
        pseudo.append(collapsed)
        nxt = over.get(parent) or list(function(parent).next_functions)
        nxt[slot] = collapsed
        over[parent] = nxt
    graph = _Contracted(inputs, runs)
    blocks = _find_blocks(root, graph, names, order, indegree, labels)
    hidden_index: list = []
    if blocks:
        _wire_blocks(blocks, graph, indegree, function, over, pseudo, index_of, hidden_index)
    replaced = {id(function(k)): tuple(nxt) for k, nxt in over.items()}
    view = View(root_fn, replaced)
    if replaced:
        _count_hidden(view, len(inputs), hidden_index)
    return view


def _parents_first(root: int, inputs: list):
    """(Kahn's order from ``root``, parents before children; each position's number of parents), or
    (None, None) when not every position is reachable from ``root`` (or there is a cycle)."""
    n = len(inputs)
    indegree = [0] * n
    for ks in inputs:
        for k in ks:
            if k >= 0:
                indegree[k] += 1
    order = [root]
    waiting = indegree[:]
    for k in order:  # the list grows while it is read
        for j in inputs[k]:
            if j >= 0:
                waiting[j] -= 1
                if waiting[j] == 0:
                    order.append(j)
    if len(order) != n:
        return None, None
    return order, indegree


# --------------------------------------------------------------------------- finding runs


def _find_runs(inputs: list, names: list, order: list, indegree: list) -> list:
    """Each run along a chain: (parent, its slot into the run, first hidden, last hidden, the last's
    slot where the chain goes on, hidden repetitions, motif texts, the drawn repetitions' positions).

    Functions are positions: ``inputs[k]`` their next_functions' positions (``_NONE`` for None),
    ``names[k]`` their class names; ``order`` parents first (Kahn), ``indegree`` their parents:
    list indexing is what keeps 100,000s cheap."""
    shape, kids_of, heavy = _shapes_and_heavy_inputs(inputs, names, order)
    runs: list = []
    motif_keys: dict[tuple, int] = {}
    on_path = [False] * len(inputs)
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
            parent = path[first - 1]
            motif = [_motif_part(inputs[k], heavy[k], names[k], shape, kids_of)
                     for k in path[i:i + period]]
            kept = path[i:first] + path[last + 1:i + repeats * period]
            runs.append((parent, heavy[parent], path[first], path[last], heavy[path[last]],
                         repeats - 2 * KEEP, motif, kept))
    return runs


def _shapes_and_heavy_inputs(inputs: list, names: list, order: list) -> tuple[list, list, list]:
    """(each position's shape id, shape id -> (class name, its inputs' shape ids), each position's
    heavy input: the slot of the input with the longest chain below it, the first on a tie, or
    ``_NONE``); worked out children first (``order`` reversed), so an input is always done."""
    n = len(inputs)
    shapes: dict[tuple, int] = {}
    kids_of: list[tuple] = []  # shape id -> (class name, its inputs' shape ids)
    shape = [0] * n
    height = array("q", bytes(8 * n))  # (no int object kept per position)
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
    return shape, kids_of, heavy


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



# --------------------------------------------------------------------------- finding repeated blocks


class _Contracted:
    """The graph as drawn with the runs collapsed: run r's node is position ``n + r``, standing
    between the run's parent and where the chain goes on; ``next_of(k)`` are a position's inputs."""

    def __init__(self, inputs: list, runs: list):
        self.inputs = inputs
        self.n = len(inputs)
        self.cut: dict = {}  # parent -> {slot: its run's position}
        self.below = []  # per run: [where the chain goes on]
        self.kept = set()  # the runs' drawn repetitions: no block takes them
        for r, (parent, slot, _, last, last_slot, _, _, kept) in enumerate(runs):
            self.cut.setdefault(parent, {})[slot] = self.n + r
            self.below.append([inputs[last][last_slot]])
            self.kept.update(kept)

    def next_of(self, k: int) -> list:
        if k >= self.n:
            return self.below[k - self.n]
        c = self.cut.get(k)
        return self.inputs[k] if c is None else [c.get(s, j) for s, j in enumerate(self.inputs[k])]


def _find_blocks(root: int, graph: _Contracted, names: list, order: list, indegree: list, labels) -> list:
    """Each repeated block in what the runs leave: (its hidden positions, hidden repetitions,
    functions in each, motif, label, what the drawn repetition is called)."""
    n = graph.n
    if not graph.below:
        return _blocks(root, graph.inputs, names, order, indegree, None, labels)
    local = {root: 0}
    glob = [root]
    for k in glob:  # the list grows while it is read
        for j in graph.next_of(k):
            if j >= 0 and j not in local:
                local[j] = len(glob)
                glob.append(j)
    sub_inputs = [[_NONE if j < 0 else local[j] for j in graph.next_of(k)] for k in glob]
    sub_order, sub_indegree = _parents_first(0, sub_inputs)
    if sub_order is None:
        return []
    sub_labels = None if labels is None else (lambda k: labels(glob[k]) if glob[k] < n else None)
    found = _blocks(0, sub_inputs, [names[k] if k < n else "" for k in glob], sub_order, sub_indegree,
                    [k >= n or k in graph.kept for k in glob], sub_labels)
    return [([glob[k] for k in hidden], *rest) for hidden, *rest in found]


def _blocks(root: int, inputs: list, names: list, order: list, indegree: list, barrier, labels) -> list:
    """:func:`_find_blocks` on a graph of positions; ``barrier[k]``: a position no block may hide."""
    leaf = [not ins and name == "AccumulateGrad" for ins, name in zip(inputs, names)]
    level, buckets, pos, first_parent = _levels(root, inputs, order, leaf)
    if len(buckets) < KEEP_BLOCKS + MIN_HIDDEN_BLOCKS:
        return []
    signature = _level_signatures(buckets, inputs, names, leaf, level, pos)
    sizes = [0]
    for bucket in buckets:
        sizes.append(sizes[-1] + len(bucket))
    width, crossing = _cuts(len(buckets), inputs, leaf, level, first_parent, order)
    found, taken = [], []
    for start, end, period in _segments(signature, sizes):
        if any(start < b and a < end for a, b in taken):
            continue
        phase = _phase(start, end, period, width, crossing, buckets, labels, inputs, leaf, indegree)
        if phase is None:
            continue
        first = phase + KEEP_BLOCKS * period  # the first hidden level
        reps = (end - phase) // period - KEEP_BLOCKS
        stop = first + reps * period
        hidden = [k for bucket in buckets[first:stop] for k in bucket]
        if sizes[first + period] - sizes[first] < MIN_BLOCK or barrier and any(barrier[k] for k in hidden):
            continue
        taken.append((start, end))
        found.append(_block(hidden, reps, first, period, inputs, names, leaf, level, indegree, buckets, labels))
    return found


def _levels(root: int, inputs: list, order: list, leaf: list):
    """(level of each position: its longest distance from the root, -1 for an AccumulateGrad; the
    positions of each level in order; each one's place in its level; the level of its first parent)."""
    n = len(inputs)
    level = [-1] * n
    level[root] = 0
    for k in order:  # parents first: a level is final when it is read
        if leaf[k]:
            continue
        d = level[k] + 1
        for j in inputs[k]:
            if j >= 0 and level[j] < d and not leaf[j]:
                level[j] = d
    buckets: list = [[] for _ in range(max(level) + 1)]
    buckets[0].append(root)
    pos = [0] * n
    first_parent = [-1] * n
    claimed = bytearray(n)
    claimed[root] = 1
    # Levels top down, each in order: the first edge into a function (by the level and place
    # of its parent, then the slot) places it in its level.
    for d, bucket in enumerate(buckets):
        for p, k in enumerate(bucket):
            pos[k] = p
            for j in inputs[k]:
                if j >= 0 and not claimed[j] and not leaf[j]:
                    claimed[j] = 1
                    first_parent[j] = d
                    buckets[level[j]].append(j)
    return level, buckets, pos, first_parent


def _level_signatures(buckets: list, inputs: list, names: list, leaf: list, level: list, pos: list) -> list:
    """One interned id per level: its functions' class names and where each of their inputs is,
    relative to the level (None, an AccumulateGrad, or levels down and place)."""
    n = len(inputs) + 1
    name_ids: dict = {}
    ids: dict = {}
    out = []
    for d, bucket in enumerate(buckets):
        parts = []
        for k in bucket:
            parts.append(name_ids.setdefault(names[k], len(name_ids)))
            ins = inputs[k]
            parts.append(len(ins))
            for j in ins:
                parts.append(_NONE if j < 0 else _LEAF if leaf[j] else (level[j] - d) * n + pos[j])
        out.append(ids.setdefault(tuple(parts), len(ids)))
    return out


def _cuts(m: int, inputs: list, leaf: list, level: list, first_parent: list, order: list):
    """Per boundary b (above level b): functions at or below it that a function above it points to,
    and edges across it (AccumulateGrads not counted)."""
    wdiff = [0] * (m + 2)
    cdiff = [0] * (m + 2)
    for k in order:
        if leaf[k]:
            continue
        if first_parent[k] >= 0:
            wdiff[first_parent[k] + 1] += 1
            wdiff[level[k] + 1] -= 1
        d = level[k] + 1
        for j in inputs[k]:
            if j >= 0 and not leaf[j]:
                cdiff[d] += 1
                cdiff[level[j] + 1] -= 1
    width, crossing = [0] * (m + 1), [0] * (m + 1)
    w = c = 0
    for b in range(m + 1):
        w += wdiff[b]
        c += cdiff[b]
        width[b], crossing[b] = w, c
    return width, crossing


def _segments(signature: list, sizes: list):
    """(first level, end, period) of each stretch of levels that repeats at least KEEP_BLOCKS +
    MIN_HIDDEN_BLOCKS times, those hiding most functions first (then the shorter period).

    Candidate periods are the distances between a signature's occurrences (to the next one and
    the one after); for each, the stretches are found from samples every ``period`` levels (a
    stretch of three repetitions holds at least two), so the search costs about the number of
    levels per period tried."""
    m = len(signature)
    min_reps = KEEP_BLOCKS + MIN_HIDDEN_BLOCKS
    gaps: dict = {}
    last: dict = {}
    before: dict = {}
    for i, s in enumerate(signature):
        j = last.get(s)
        if j is not None:
            gaps[i - j] = gaps.get(i - j, 0) + 1
            b = before.get(s)
            if b is not None:
                gaps[i - b] = gaps.get(i - b, 0) + 1
            before[s] = j
        last[s] = i
    periods = [p for p, count in gaps.items() if count >= min_reps - 1 and p * min_reps <= m]
    periods = sorted(heapq.nlargest(MAX_PERIODS, periods, key=lambda p: (gaps[p], -p)))
    found = []
    for p in periods:
        limit, done, i = m - p, 0, 0
        while i < limit:
            if signature[i] != signature[i + p]:
                i += p
                continue
            a, b = i, i + 1
            while a > done and signature[a - 1] == signature[a - 1 + p]:
                a -= 1
            while b < limit and signature[b] == signature[b + p]:
                b += 1
            end = b + p  # levels a .. end - 1 repeat with period p
            if (end - a) // p >= min_reps:
                found.append((sizes[end] - sizes[a], p, a, end))
            done = b
            i = (b // p + 1) * p
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return [(a, end, p) for _, p, a, end in found]


def _phase(start: int, end: int, period: int, width: list, crossing: list, buckets: list, labels,
           inputs: list, leaf: list, indegree: list):
    """The level where the drawn repetition starts: the narrowest cut between repetitions, then
    (module paths known) the one where each repetition is one module, then the fewest edges."""
    best = None
    for phase in range(start, start + period):
        if (end - phase) // period < KEEP_BLOCKS + MIN_HIDDEN_BLOCKS:
            break
        b = phase + KEEP_BLOCKS * period
        depth = len(_common_prefix(_rep_labels(buckets[b:b + period], labels, inputs, leaf, indegree))) \
            if labels else 0
        score = (width[b], -depth, crossing[b])
        if best is None or score < best[0]:
            best = (score, phase)
    return None if best is None else best[1]


def _block(hidden: list, reps: int, first: int, period: int, inputs: list, names: list, leaf: list,
           level: list, indegree: list, buckets: list, labels) -> tuple:
    """A found block: (hidden positions with the AccumulateGrads only they use, repetitions,
    functions in one, motif, label, the drawn repetition's label)."""
    uses: dict = {}
    for k in hidden:
        for j in inputs[k]:
            if j >= 0 and leaf[j]:
                uses[j] = uses.get(j, 0) + 1
    private = {j for j, count in uses.items() if count == indegree[j]}
    # each private AccumulateGrad in the repetition of its (first) parent
    rep_leaves: list = [[] for _ in range(reps)]
    for k in hidden:
        r = (level[k] - first) // period
        for j in inputs[k]:
            if j in private:
                private.discard(j)
                rep_leaves[r].append(j)
    hidden = hidden + [j for leaves in rep_leaves for j in leaves]
    one = [k for bucket in buckets[first:first + period] for k in bucket] + rep_leaves[0]
    counts: dict = {}
    for k in one:
        counts[names[k]] = counts.get(names[k], 0) + 1
    motif = [name if count == 1 else f"{count} {name}" for name, count in counts.items()]
    label = like = None
    if labels is not None:
        rep = [buckets[first + r * period:first + (r + 1) * period] for r in range(reps)]
        label = _name_range([_common_prefix(_rep_labels(levels, labels, inputs, leaf, indegree)) for levels in rep])
        like = ".".join(_common_prefix(_rep_labels(buckets[first - period:first], labels, inputs, leaf,
                                                   indegree))) or None
    return hidden, reps, len(one), motif, label, like


def _rep_labels(levels: list, labels, inputs: list, leaf: list, indegree: list):
    """The labels of a repetition's functions and of the AccumulateGrads only it uses."""
    uses: dict = {}
    for bucket in levels:
        for k in bucket:
            text = labels(k)
            if text:
                yield text
            for j in inputs[k]:
                if j >= 0 and leaf[j]:
                    uses[j] = uses.get(j, 0) + 1
    for j, count in uses.items():
        if count == indegree[j]:
            text = labels(j)
            if text:
                yield text


def _common_prefix(texts) -> list:
    """The dotted components every text starts with (``layers.3`` of ``layers.3.attn``, ``layers.3.ff``)."""
    prefix = None
    for text in texts:
        parts = text.split(".")
        if prefix is None:
            prefix = parts
        else:
            k = 0
            while k < len(prefix) and k < len(parts) and prefix[k] == parts[k]:
                k += 1
            del prefix[k:]
        if not prefix:
            break
    return prefix or []


def _name_range(prefixes: list) -> str | None:
    """The repetitions' common names as one: ``layers.1-10`` for ``layers.10`` .. ``layers.1``; the
    name when they are all one; None when they are not named alike."""
    if not prefixes or not all(prefixes):
        return None
    first = prefixes[0]
    if all(p == first for p in prefixes):
        return ".".join(first)
    if any(len(p) != len(first) for p in prefixes):
        return None
    differ = [k for k in range(len(first)) if any(p[k] != first[k] for p in prefixes)]
    if len(differ) != 1 or not all(p[differ[0]].isdigit() for p in prefixes):
        return None
    numbers = sorted(int(p[differ[0]]) for p in prefixes)
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        return None
    return ".".join(first[:differ[0]] + [f"{numbers[0]}-{numbers[-1]}"] + first[differ[0] + 1:])


def _wire_blocks(blocks: list, graph: _Contracted, indegree: list, function, over: dict, pseudo: list,
                 index_of, hidden_index: list) -> None:
    """Each block's Collapsed node, put in place of its hidden functions in ``over`` (and in the
    runs' nodes that point into it); the tape indices hidden go to ``hidden_index``."""
    n = graph.n
    owner: dict = {}
    for b, block in enumerate(blocks):
        for k in block[0]:
            owner[k] = b
    # Every edge into or out of a block: one pass over the graph as drawn (the runs' nodes too).
    entry_edges: list = [[] for _ in blocks]  # [(source, slot, target)]
    exit_edges: list = [{} for _ in blocks]  # target -> [(source, slot)]
    for k in range(n + len(graph.below)):
        mine = owner.get(k)
        for slot, j in enumerate(graph.next_of(k)):
            if j < 0:
                continue
            theirs = owner.get(j)
            if theirs is not None and theirs != mine:
                entry_edges[theirs].append((k, slot, j))
            if mine is not None and theirs != mine:
                exit_edges[mine].setdefault(j, []).append((k, slot))
    nodes = []
    for b, (hidden, reps, size, motif, label, like) in enumerate(blocks):
        entries = sorted({j for _, _, j in entry_edges[b]})
        targets = sorted(exit_edges[b])
        nodes.append(Collapsed.block(
            [function(k) for k in entries], [], [[(function(k), s) for k, s in exit_edges[b][t]] for t in targets],
            [t < n and len(exit_edges[b][t]) == indegree[t] and t not in owner for t in targets],
            reps, size, motif, label, like, len(hidden)))
        hidden_index.extend(index_of(k) for k in hidden)
    for b, node in enumerate(nodes):  # where each goes on: functions, runs' nodes, other blocks
        node.next_functions = tuple(nodes[owner[t]] if t in owner else pseudo[t - n] if t >= n else function(t)
                                    for t in sorted(exit_edges[b]))
        node.exit = node.next_functions[0] if node.next_functions else None
        for k, slot, _ in entry_edges[b]:
            if k >= n:
                pseudo[k - n].next_functions = (node,)
                continue
            nxt = over.get(k) or list(function(k).next_functions)
            nxt[slot] = node
            over[k] = nxt


# --------------------------------------------------------------------------- what a view hides


def _count_hidden(view: View, total: int, hidden_index: list = ()) -> None:
    """Number the reachable Collapsed nodes and count what each hides (breadth-first, no recursion).

    ``hidden_index``: the tape indices the blocks hide (each block knows its own count)."""
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
    # What a run's Collapsed hides: all that is reached from its first hidden function and not drawn
    # (the first Collapsed to reach a function counts it), walked on the tape as indices.
    seen_index = {node.index for node in queue if type(node) is not Collapsed}
    seen_index.update(hidden_index)
    for collapsed in view.collapsed:
        if collapsed.kind == "block":
            continue
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
