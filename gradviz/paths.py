"""Paths from the output to a leaf: the chain rule made visible (the page's "paths to").

The gradient a leaf receives is the sum, over every path from the root of the backward graph
to the leaf's AccumulateGrad, of what flows along that path alone: the starting gradient
carried through each function's gradient rule (a vector-Jacobian product) along the path's
edges only. By linearity of every rule in its incoming gradient, those contributions add up
to the leaf's ``.grad`` (tests/test_paths.py checks the sum against the engine's).

For 0-d edges the contribution is also a product of numbers: each edge's *local gradient*
∂(function's output)/∂(its input) is the rule applied to a unit incoming gradient (so a zero
gradient arriving from upstream breaks nothing), and a path's contribution is the starting
gradient times the product of its locals. An edge that carries a tensor has a Jacobian, not a
number, as local gradient: ``local`` is None there, and the contribution is still exact.

A graph can have exponentially many paths: :func:`leaf_paths` counts them all (one pass,
Python integers) but lists at most ``max_paths`` per leaf, and stops working through leaves
once ``max_work`` edges have been visited or gradients carried; what was left out is said
(``complete``, ``computed``). No recursion: explicit stacks, and the tape's index order,
which is topological (a function's inputs are created before it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Hop", "Path", "LeafPaths", "leaf_paths", "paths_json", "MAX_PATHS", "MAX_WORK"]

#: paths listed per leaf (all of them are counted)
MAX_PATHS = 32
#: edges visited plus gradients carried, for all leaves together, before the analysis stops
MAX_WORK = 4_000


@dataclass
class Hop:
    """One edge of a path: ``function`` sends along its ``next_functions[input]`` to ``to``
    (tape indices); ``local`` is the edge's local gradient when it is a number (0-d both sides)."""

    function: int
    input: int
    to: int
    local: object = None


@dataclass
class Path:
    """One path from the root to a leaf's AccumulateGrad: its hops, the product of their local
    gradients (None when one is not a number), and what reaches the leaf along it alone."""

    hops: list
    product: object
    contribution: object


@dataclass
class LeafPaths:
    """The paths to one leaf: ``count`` (all of them), ``paths`` (the first ``max_paths``, in
    next_functions order from the root), ``on`` (tape indices of every function on some path),
    ``total`` (the listed contributions added), ``grad`` (the leaf's .grad, the engine's)."""

    leaf: str
    function: int  # the leaf's AccumulateGrad (its tape index)
    count: int
    start: object = None  # the gradient backward started with at the root
    paths: list = field(default_factory=list)
    on: list = field(default_factory=list)
    total: object = None
    grad: object = None
    computed: bool = True  # False: the work bound was reached before this leaf
    reason: str | None = None  # why no contribution could be computed, when none could

    @property
    def complete(self) -> bool:
        """True when every path is listed (so ``total`` is the leaf's gradient)."""
        return self.computed and len(self.paths) == self.count


def leaf_paths(trace, names=None, max_paths: int = MAX_PATHS, max_work: int = MAX_WORK) -> dict:
    """name → :class:`LeafPaths` for each input leaf that needs grad (``names``: those only), in
    input order; leaves past the work bound have ``computed=False`` and only their count."""
    from .engine import Rules

    g = trace.graph
    root = g.root_index
    if root is None:
        return {}
    leaves = [(n, i) for n, i in g.input_index.items() if g.req[i] and g.op[i] is None
              and (names is None or n in names)]
    order = sorted(g.order(), reverse=True)  # parents before children
    counts = _count_paths(g, root, order)
    parents = _parents(g, order)
    rules = Rules(g)
    start = _start(trace, rules, root)
    out, work, locals_ = {}, [max_work], {}
    try:
        for name, i in leaves:
            if i not in counts:
                continue  # its AccumulateGrad is not in the graph (an input no gradient reaches)
            lp = LeafPaths(name, i, counts[i], start=start, grad=g.grad.get(i))
            out[name] = lp
            if work[0] <= 0:
                lp.computed = False
                continue
            on = _reaching(i, parents, work)
            lp.on = sorted(on, reverse=True)
            _walk(g, rules, lp, root, on, start, max_paths, work, locals_)
    finally:
        rules.close()
    return out


def _count_paths(g, root: int, order: list) -> dict:
    """Tape index → number of paths from the root to it (Python integers: no overflow)."""
    counts = dict.fromkeys(order, 0)
    counts[root] = 1
    for i in order:
        c = counts[i]
        if c:
            for j in g.next_functions(i):
                if j is not None:
                    counts[j] += c
    return counts


def _parents(g, order: list) -> dict:
    parents: dict = {}
    for i in order:
        for j in g.next_functions(i):
            if j is not None:
                parents.setdefault(j, []).append(i)
    return parents


def _reaching(target: int, parents: dict, work: list) -> set:
    """The functions from which ``target`` is reached (itself included): a walk up its parents."""
    seen, stack = {target}, [target]
    while stack:
        for p in parents.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    work[0] -= len(seen)
    return seen


def _start(trace, rules, root: int):
    """The gradient backward started with: the engine's record of what entered the root."""
    steps = trace.steps
    received = steps.received(root) if hasattr(steps, "received") else None
    return received if received is not None else rules.unit(root)


def _walk(g, rules, lp: LeafPaths, root: int, on: set, start, max_paths: int, work: list, locals_: dict) -> None:
    """Depth-first from the root along next_functions, only through functions that reach the leaf,
    carrying the gradient along each edge of the path being walked (an explicit stack): across a
    0-d edge it is multiplied by the edge's local gradient (every rule is linear in the gradient it
    receives), across any other the function's rule is applied to it (a vector-Jacobian product)."""
    target = lp.function
    # a frame: [function, next input to try, what its rule sends for the gradient carried into it]
    frames, grads, hops = [[root, 0, None]], [start], []
    while frames:
        frame = frames[-1]
        node = frame[0]
        if node == target:
            lp.paths.append(_path(hops, grads[-1]))
        nexts = () if node == target else g.next_functions(node)
        j = frame[1]
        while j < len(nexts) and nexts[j] not in on:
            j += 1
        if j == len(nexts) or len(lp.paths) >= max_paths or work[0] <= 0:
            frames.pop()
            grads.pop()
            if hops:
                hops.pop()
            if len(lp.paths) >= max_paths or work[0] <= 0:
                break
            continue
        frame[1] = j + 1
        if not rules.has_rule(node):
            lp.reason = (f"{g.function(node).name} was read from PyTorch: its measured gradients are known, not its "
                         "rule, so no path's own contribution can be computed")
            break
        child, grad = nexts[j], grads[-1]
        local = _local(g, rules, locals_, node, j, child, work)
        if local is not None and type(grad) is float:
            sent = grad * local
        else:
            if frame[2] is None:
                frame[2] = rules.sent(node, grad)
                work[0] -= 1
            sent = frame[2][j]
        work[0] -= 1
        hops.append(Hop(node, j, child, local))
        grads.append(sent)
        frames.append([child, 0, None])
    if lp.paths and (len(lp.paths) == lp.count or all(type(p.contribution) is float for p in lp.paths)):
        lp.total = _add([p.contribution for p in lp.paths])  # (of the listed paths, when not all are)


def _local(g, rules, cache: dict, node: int, j: int, child: int, work: list):
    """∂(node's output)/∂(its input j) as a number when both are 0-d (else None): the rule applied
    to a unit gradient, once per function for all leaves."""
    if g.shape[node] or g.shape[child]:
        return None
    key = (node, j)
    if key not in cache:
        sent = rules.sent(node, rules.unit(node))
        work[0] -= 1
        for k, v in enumerate(sent):
            cache[(node, k)] = v if v is None or type(v) is float else float(v)
    return cache[key]


def _path(hops: list, contribution) -> Path:
    product = 1.0
    for h in hops:
        if h.local is None:
            product = None
            break
        product *= h.local
    return Path(list(hops), product, contribution)


def _add(values: list):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def paths_json(trace, max_paths: int = MAX_PATHS, max_work: int = MAX_WORK) -> dict:
    """The page's ``paths`` data: name → {function, count, computed, complete, paths: [{hops:
    [[from, input, local], ...] (each hop goes on to the next one's
    function, the last to the leaf's), product, contribution}], on, sum, grad} with function ids
    (``f3``) and values as the document writes them; ``max_paths`` and ``max_work`` say the bounds."""
    from .values import f32_text, f64_text
    from .values import array

    g = trace.graph
    paths = leaf_paths(trace, max_paths=max_paths, max_work=max_work)
    fpos = g.function_ids()
    text = f32_text if g.dtype == "float32" else f64_text

    def fid(i):
        return f"f{fpos[i]}"

    memo: dict = {}

    def value(v):  # a 0-d value on the tape is a float: its dtype's number, as in "steps"
        if type(v) is not float:
            return array(v)
        out = memo.get(v)
        if out is None or v == 0:  # (0.0 and -0.0 are one key)
            t = text(v)
            out = memo[v] = t[1:-1] if t.startswith('"') else float(t)
        return out

    out = {}
    for name, lp in paths.items():
        out[name] = {
            "function": fid(lp.function), "count": lp.count, "computed": lp.computed, "complete": lp.complete,
            "start": value(lp.start),
            "paths": [{"hops": [[fid(h.function), h.input, None if h.local is None else value(h.local)]
                                for h in p.hops],
                       "product": None if p.product is None else value(p.product),
                       "contribution": value(p.contribution)} for p in lp.paths],
            "on": [fid(i) for i in lp.on],
            "sum": None if lp.total is None else value(lp.total),
            "grad": value(lp.grad),
            "reason": lp.reason,
        }
    return {"max_paths": max_paths, "max_work": max_work, "leaves": out}
