"""Tracing an expression: the parser's reductions handed to the operators and functions, which
apply op rows through the :class:`gradviz.tracer.Tracer` — one pass, no expression tree for a
parsed source (a million terms are a tape, not a tree).
"""

from __future__ import annotations

from typing import Sequence

from .errors import EvalError
from .functions import FUNCTIONS, FunctionImpl
from .graph import CONSTANTS, EMPTY_PARAMS, Graph, Tensor
from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS
from .operators import (
    NUMBER_TYPES,
    TENSOR_ARITHMETIC,
    Slice,
    ValuesIndices,
    binary_op,
    describe_value,
    operand_check,
    subscript,
    tensor_arg,
)
from .ops import OPS
from .parser import Node, function_name, parse, replay
from .tracer import Tracer


def _closest(name: str, known) -> str:
    import difflib  # only for error messages

    best = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {best[0]!r}?)" if best else ""


def trace_tree(
    tree: Node,
    source: str,
    at: dict,
    no_grad: Sequence[str] = (),
    dtype: str = "float32",
    max_elements: int | None = None,
) -> Graph:
    """Evaluate a parsed ``tree`` at the point ``at`` (name → number or array), building the graph
    (the tracer driven from the tree, as the parser drives it in :func:`trace_source`)."""
    return _trace(lambda builder: replay(tree, builder), source, at, no_grad, dtype, max_elements)


def trace_source(source: str, at: dict, no_grad: Sequence[str] = (), dtype: str = "float32",
                 max_terms: int = DEFAULT_MAX_TERMS, max_depth: int = DEFAULT_MAX_DEPTH,
                 max_elements: int | None = None, names: set | None = None) -> Graph:
    """Parse ``source`` and evaluate it at ``at`` in one pass: the parser hands each reduction to
    the tracer, so no expression tree is ever built (a million terms are a tape, not a tree).
    ``names`` receives the names the expression reads (see :func:`gradviz.parser.parse`)."""
    return _trace(lambda builder: parse(source, max_terms, max_depth, names=names, builder=builder),
                  source, at, no_grad, dtype, max_elements)


def _trace(drive, source: str, at: dict, no_grad, dtype: str, max_elements) -> Graph:
    graph = Graph(source, dtype)
    tr = Tracer(graph)
    tr.max_elements = max_elements
    no_grad = set(no_grad)
    try:
        # Every --at value becomes a leaf tensor first, as a torch script creates its inputs first.
        tr.leaves(at, no_grad)
        out = drive(TraceBuilder(tr, source, at))
        output = out.value if out.index < 0 else tr.view(out.index)
        if type(output) is not Tensor:
            operand_check(output, out)
            output = tr.constant(output, out)
        graph.output_index = output.index
        if graph.req[output.index]:
            graph.root_index = output.index
    finally:
        tr.finish()
    return graph


class _Operand:
    """An operand while tracing: a tensor of the tape (``index``, its entry; ``value`` None: its
    view is made only when a dispatch function needs one) or another value (``index`` -1: a
    Python number, a list, a slice...), the span of source it covers, the entries its own
    reduction appended (``lo`` to ``hi``), and what the dispatch functions read of an expression
    node (``op``, ``method``, ``column``)."""

    __slots__ = ("value", "start", "end", "op", "method", "lo", "hi", "index")

    def __init__(self, value, start: int, end: int, op: str = "", method: bool = False, lo: int = 0, hi: int = 0,
                 index: int = -1):
        self.value = value
        self.start = start
        self.end = end
        self.op = op
        self.method = method
        self.lo = lo
        self.hi = hi
        self.index = index

    @property
    def column(self) -> int:
        return self.start + 1


class TraceBuilder:
    """The tracer: each reduction of the expression (:class:`gradviz.parser.TreeBuilder`'s
    methods) dispatched to the op rows, as PyTorch runs the same expression."""

    def __init__(self, tr: Tracer, source: str, at: dict):
        self.tr = tr
        self.graph = tr.graph
        self.view = tr.view
        self.input_of = tr.graph.input_index.get  # an input's entry (None: not an input)
        self.appends, self.F, self.req, self.use_floats = tr.appends, tr.F, tr.graph.req, tr.use_floats
        self.values = tr.graph.value  # (the tape's columns are appended to, never replaced)
        self.source = source
        self.at = at
        self.impls: dict = {}  # (name, method) -> what _resolve found for it (resolved once)

    def value(self, operand: _Operand):
        """What the dispatch functions get of an operand: a Tensor view or the value itself."""
        return operand.value if operand.index < 0 else self.view(operand.index)

    def _made(self, node: _Operand, value) -> _Operand:
        """``node`` holding what its reduction made, and the entries it appended."""
        if type(value) is Tensor:
            node.index = value.index
        else:
            node.value = value
        node.hi = len(self.graph.value)
        return node

    def number(self, value, start: int, end: int) -> _Operand:
        return _Operand(value, start, end)

    def name(self, name: str, start: int, end: int) -> _Operand:
        i = self.input_of(name)
        if i is not None:
            return _Operand(None, start, end, name, False, 0, 0, i)
        node = _Operand(None, start, end, name)
        node.value = _lookup(self.tr, node, self.at)
        return node

    def unary(self, op: str, operand: _Operand, start: int, end: int) -> _Operand:
        node = _Operand(None, start, end, op, False, len(self.graph.value))
        x = self.value(operand)
        if type(x) is not Tensor and type(x) not in NUMBER_TYPES:
            raise EvalError(f"unary {op!r} cannot be applied to {describe_value(x)} at column {node.column}")
        if op == "+":
            return self._made(node, x)  # +x is x itself (no node), as in PyTorch
        return self._made(node, self.tr.apply(OPS["neg"], (x,), EMPTY_PARAMS, node) if type(x) is Tensor else -x)

    def binary(self, op: str, left: _Operand, right: _Operand, start: int, end: int) -> _Operand:
        values = self.values
        k = len(values)
        i, j = left.index, right.index
        if i >= 0 and j >= 0 and op in TENSOR_ARITHMETIC:
            # the commonest entry, two 0-d tensors' arithmetic on floats: apply's entry, appended
            # here without its general checks
            vx, vy = values[i], values[j]
            if type(vx) is float and type(vy) is float and self.use_floats:
                row, params = TENSOR_ARITHMETIC[op]
                add_op, add_a, add_b, add_params, add_req, add_value, add_shape, add_start, add_end, \
                    add_on_floats = self.appends
                add_value(row.on_floats(self.F, vx, vy))
                add_op(row)
                add_a(i)
                add_b(j)
                add_params(params)
                req = self.req
                add_req(req[i] or req[j])
                add_shape(())
                add_start(start)
                add_end(end)
                add_on_floats(1)
                return _Operand(None, start, end, op, False, k, k + 1, k)
        node = _Operand(None, start, end, op, False, k)
        return self._made(node, binary_op(self.tr, op, self.value(left), self.value(right), node, self.source))

    def call(self, name: str, args: list, kwargs: list, method: bool, start: int, end: int) -> _Operand:
        node = _Operand(None, start, end, name, method)
        if "F" in self.graph.input_index and name.startswith("F."):  # an input named F: F.sum() is its method
            receiver = _Operand(None, start, start + 1, "F", False, 0, 0, self.graph.input_index["F"])
            return self.call(name[2:], [receiver] + list(args), kwargs, True, start, end)
        impl = self.impls.get((name, method))
        if impl is None:
            impl = self.impls[name, method] = _resolve(name, method, node)
        node.lo = len(self.graph.value)
        view = self.view  # (self.value of each, inline)
        return self._made(node, impl(self.tr, node, [a.value if a.index < 0 else view(a.index) for a in args],
                                     {k: self.value(v) for k, v in kwargs} if kwargs else {}, self.source))

    def attr(self, name: str, receiver: _Operand, start: int, end: int) -> _Operand:
        node = _Operand(None, start, end, name, False, len(self.graph.value))
        return self._made(node, _attribute(self.tr, node, self.value(receiver)))

    def subscript(self, receiver: _Operand, items: list, start: int, end: int) -> _Operand:
        node = _Operand(None, start, end, "[]", False, len(self.graph.value))
        value = self.value
        return self._made(node, subscript(self.tr, node, value(receiver), [value(item) for item in items]))

    def slice(self, lo: _Operand, hi: _Operand, step: _Operand, start: int, end: int) -> _Operand:
        return _Operand(Slice(self.value(lo), self.value(hi), self.value(step), start), start, end, ":")

    def list(self, items: list, start: int, end: int) -> _Operand:
        return _Operand([self.value(item) for item in items], start, end, "list")

    def tuple(self, items: list, start: int, end: int) -> _Operand:
        return _Operand(tuple(self.value(item) for item in items), start, end, "tuple")

    def paren(self, operand: _Operand, start: int, end: int) -> _Operand:
        """Parentheses around an operand: the tensors its reduction made hold their text too."""
        g = self.graph
        for k in range(operand.lo, operand.hi):
            g.start[k] = start
            g.end[k] = end
        operand.start, operand.end = start, end
        return operand


def _resolve(name: str, method: bool, node) -> FunctionImpl:
    """The implementation a called name means, read per namespace (torch.nn.functional.sin is an
    error: that namespace has no sin), or the clear error."""
    from .namespaces import resolve

    fname, message = resolve(name, method, FUNCTIONS)
    if fname is not None:
        return FUNCTIONS[fname]
    if message is not None:
        raise EvalError(f"{message} at column {node.column}")
    where = "method" if method else "function"
    raise EvalError(f"unknown {where} {name!r} at column {node.column}{_closest(function_name(name), FUNCTIONS)}")


def _lookup(tr: Tracer, node, at: dict):
    name = node.op
    if name in CONSTANTS:
        return CONSTANTS[name]
    if name in FUNCTIONS:
        raise EvalError(f"{name!r} is a function: call it, e.g. {name}(x), at column {node.column}")
    known = set(CONSTANTS) | set(FUNCTIONS)
    hint = _closest(name, known) if name not in at else ""
    raise EvalError(f"{name} at column {node.column} has no value: add --at {name}=...{hint}")


def _attribute(tr: Tracer, node: Node, x):
    if type(x) is ValuesIndices:
        if node.op == "values":
            return x.values
        raise EvalError(f"gradviz does not support .{node.op} of {x.name}(dim) yet (use .values) at column {node.column}")
    if node.op == "values":
        raise EvalError(f"'.values' is for the result of max(dim) / min(dim) at column {node.column}")
    if node.op != "T":
        raise EvalError(f"attribute '.{node.op}' is not supported (only .T) at column {node.column}")
    x = tensor_arg(x, ".T", node)
    # PyTorch permutes with the dims reversed, also for 0-D, 1-D and 3-D or more (where it warns)
    return tr.apply(OPS["permute"], (x,), {"dims": tuple(range(x.ndim))[::-1]}, node)
