"""Tensors and backward functions; tracing an expression tree into PyTorch's graph.

Tracing walks the tree in post-order (iteratively) and, like PyTorch running the
same expression, either folds Python-number arithmetic in Python or applies an op
row from :mod:`gradviz.ops` to tensors, creating a :class:`BackwardFunction` node
whenever an input requires grad. Python numbers never become graph nodes; tensors
that need no grad appear as ``None`` in ``next_functions``; each leaf that
requires grad is reached through exactly one shared ``AccumulateGrad`` node.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, Iterator, Sequence

import numpy as np

from .errors import EvalError
from .limits import MAX_DIMS
from .ops import OPS, UNARY_FUNCTIONS, Op, saved_values
from .parser import Node, function_name, iter_postorder

DTYPES = {"float32": np.float32, "float64": np.float64}
CONSTANTS = {"pi": math.pi, "e": math.e}

Number = (int, float)


class Tensor:
    """A value in the graph, with the five attributes the lecture names.

    ``data`` (numpy array), ``grad`` (array or None), ``grad_fn`` (the
    :class:`BackwardFunction` that produced it, None for leaves), ``is_leaf``,
    ``requires_grad``. ``name`` is the input's name for leaves; ``node`` is the
    expression sub-tree the tensor holds (for showing its text).
    """

    __slots__ = ("id", "name", "data", "grad", "grad_fn", "is_leaf", "requires_grad", "node", "retains_grad")

    def __init__(self, data, requires_grad=False, grad_fn=None, name=None, node=None):
        self.id = ""
        self.name = name
        self.data = data
        self.grad = None
        self.grad_fn = grad_fn
        self.is_leaf = grad_fn is None
        self.requires_grad = requires_grad
        self.node = node
        self.retains_grad = False

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def __repr__(self) -> str:
        fn = f", grad_fn=<{self.grad_fn.name}>" if self.grad_fn else ""
        return f"Tensor({self.name or self.id}, data={self.data!r}{fn})"


class BackwardFunction:
    """A node of the backward graph (what ``tensor.grad_fn`` points to).

    ``name`` is PyTorch's class name (MulBackward0, AccumulateGrad...);
    ``next_functions`` lists, per tensor input in PyTorch's order, the function
    its gradient flows to, or None for an input that needs no grad. ``saved``
    holds what PyTorch saves on the node (``_saved_self``, ``_saved_exponent``...).
    AccumulateGrad nodes have ``variable`` (the leaf) and no op.
    ``sequence_nr`` orders execution as PyTorch's engine does (later nodes first).
    """

    __slots__ = ("id", "name", "op", "next_functions", "saved", "context", "variable", "output",
                 "input_shapes", "sequence_nr")

    def __init__(self, name, op=None, next_functions=(), saved=None, context=None, variable=None,
                 output=None, input_shapes=(), sequence_nr=0):
        self.id = ""
        self.name = name
        self.op = op
        self.next_functions = tuple(next_functions)
        #: what PyTorch keeps as ``_saved_<name>`` (None where it saves nothing; Python numbers as given)
        self.saved = saved or {}
        #: every value the gradient rule reads (``saved`` with nothing left out)
        self.context = context if context is not None else self.saved
        self.variable = variable
        self.output = output
        self.input_shapes = tuple(input_shapes)
        self.sequence_nr = sequence_nr

    def __repr__(self) -> str:
        return f"<{self.name} {self.id}>"


class Graph:
    """The traced result: the output, the named inputs, every tensor and backward function."""

    def __init__(self, output: "Tensor", inputs: dict, tensors: list, root, functions: list,
                 source: str, dtype: str):
        self.output = output  # the output Tensor
        self.inputs = inputs  # name -> leaf Tensor, in order of first use
        self.tensors = tensors  # every Tensor, in creation order (ids t0, t1, ...)
        #: Where backward starts: the output's grad_fn, the AccumulateGrad of an output that is
        #: itself a leaf requiring grad, or None when the output needs no grad.
        self.root = root
        self.functions = functions  # every BackwardFunction reachable from the root, in DFS order
        self.source = source
        self.dtype = dtype

    def text_of(self, tensor: Tensor) -> str:
        """The name of a leaf, or the source text of the sub-expression a tensor holds."""
        if tensor.name:
            return tensor.name
        node = tensor.node
        if node is None:
            return tensor.id
        return self.source[node.start:node.end].strip()


def walk_functions(root: BackwardFunction | None) -> list[BackwardFunction]:
    """Every function reachable from ``root``, in depth-first pre-order, each once (no recursion)."""
    if root is None:
        return []
    seen = {id(root)}
    order = []
    stack = [root]
    while stack:
        fn = stack.pop()
        order.append(fn)
        for nxt in reversed(fn.next_functions):
            if nxt is not None and id(nxt) not in seen:
                seen.add(id(nxt))
                stack.append(nxt)
    return order


# ---------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------


class Tracer:
    """Applies op rows to tensors, building the backward graph as PyTorch would."""

    def __init__(self, dtype: str, max_elements: int | None = None):
        self.np_dtype = DTYPES[dtype]
        #: no op may make a tensor of more elements (checked from the shapes, before computing)
        self.max_elements = max_elements
        self.tensors: list[Tensor] = []
        self.accumulators: dict[int, BackwardFunction] = {}
        self._seq = itertools.count()
        #: True while the caller holds np.errstate(all="ignore") around every apply
        self.ignore_fp_errors = False
        self._shapes: dict[tuple, tuple] = {}

    def _shared(self, shapes: tuple) -> tuple:
        """One tuple per distinct list of input shapes (a million scalar ops need one)."""
        return self._shapes.setdefault(shapes, shapes)

    def leaf(self, name: str, value, requires_grad: bool) -> Tensor:
        with np.errstate(all="ignore"):  # 1e300 in float32 is inf, as torch.tensor makes it
            data = np.asarray(value, dtype=self.np_dtype)
        t = Tensor(data, requires_grad=requires_grad, name=name)
        self.tensors.append(t)
        return t

    def edge(self, value) -> BackwardFunction | None:
        """Where a gradient for this operand goes: its grad_fn, its AccumulateGrad, or None."""
        if not isinstance(value, Tensor) or not value.requires_grad:
            return None
        if value.grad_fn is not None:
            return value.grad_fn
        acc = self.accumulators.get(id(value))
        if acc is None:
            # PyTorch gives AccumulateGrad the highest priority (sequence_nr UINT64_MAX).
            acc = BackwardFunction("AccumulateGrad", variable=value, sequence_nr=math.inf)
            self.accumulators[id(value)] = acc
        return acc

    def as_array(self, value):
        if isinstance(value, Tensor):
            return value.data
        return value  # Python numbers stay weak scalars (numpy 2 keeps the tensor's dtype)

    def _check_size(self, op: Op, arrays: list, node: Node | None) -> None:
        shapes = [np.shape(a) for a in arrays]
        if all(s == shapes[0] for s in shapes) and op.key != "mm":
            return  # the common case: the result has the inputs' size
        if op.key == "mm":
            shape = (shapes[0][0], shapes[1][1]) if len(shapes[0]) == len(shapes[1]) == 2 else ()
        elif op.key in ("dot", "mv"):
            return
        else:  # numpy's broadcasting, on sizes only (np.broadcast_shapes stops at 32 dimensions)
            n = max(len(s) for s in shapes)
            padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
            shape = tuple(next((d for d in dims if d != 1), 1) for dims in zip(*padded))
        size = math.prod(shape)
        if size > self.max_elements:
            where = f" at column {node.column}" if node is not None else ""
            raise EvalError(f"the result{where} would have shape {_fmt_shape(shape)}: {size} elements, more "
                            f"than the limit of {self.max_elements} (--max-elements)")

    def apply(self, op: Op, tensors: Sequence, params: dict | None = None, node: Node | None = None) -> Tensor:
        """Run ``op`` forward on ``tensors`` (Tensors or Python numbers in tensor slots).

        The forward rule runs under ``np.errstate(all="ignore")`` (inf and nan are values, as in
        PyTorch); a caller that already holds that state sets ``ignore_fp_errors`` so that it is
        not entered again for every op (a third of the cost of a scalar op).
        """
        params = params or {}
        arrays = [t.data if isinstance(t, Tensor) else t for t in tensors]
        if len(arrays) > 1 and self.max_elements is not None:
            self._check_size(op, arrays, node)  # only ops of several tensors make larger ones
        if self.ignore_fp_errors:
            result = op.forward(*arrays, **params)
        else:
            with np.errstate(all="ignore"):
                result = op.forward(*arrays, **params)
        result = np.asarray(result)
        if result.dtype != self.np_dtype:
            result = result.astype(self.np_dtype)
        needs = [isinstance(t, Tensor) and t.requires_grad for t in tensors]
        requires_grad = any(needs)
        out = Tensor(result, requires_grad=requires_grad, node=node)
        if requires_grad:
            args = dict(zip(op.inputs, arrays))
            # Python numbers in tensor slots are wrapped as 0-d tensors by PyTorch.
            for k, v in args.items():
                if not isinstance(v, np.ndarray):
                    args[k] = np.asarray(v, dtype=self.np_dtype)
            context = saved_values(op, args, params, result)
            # What PyTorch shows as saved differs from what the rule reads only in a few
            # entries; the two share one dict unless there is such an entry.
            shown = {slot: t for slot, t in zip(op.inputs, tensors)
                     if not isinstance(t, Tensor) and slot in context}  # the Python number PyTorch wrapped
            if op.save_when:
                needed = dict(zip(op.inputs, needs))
                for name, slot in op.save_when.items():
                    if not needed.get(slot, False):
                        shown[name] = None
            saved = context
            if shown:
                saved = dict(context)
                saved.update(shown)
            fn = BackwardFunction(
                op.torch_name,
                op=op,
                next_functions=[self.edge(t) for t in tensors],
                saved=saved,
                context=context,
                output=out,
                input_shapes=self._shared(tuple(a.shape if isinstance(a, np.ndarray) else np.shape(a) for a in arrays)),
                sequence_nr=next(self._seq),
            )
            out.grad_fn = fn
            out.is_leaf = False
        self.tensors.append(out)
        return out


def _broadcast_check(a, b, node: Node, source: str):
    sa, sb = np.shape(a), np.shape(b)
    if sa == sb:
        return  # the common case, decided without numpy's general rule
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise EvalError(
            f"shapes {_fmt_shape(sa)} and {_fmt_shape(sb)} cannot be broadcast together "
            f"in '{source[node.start:node.end].strip()}' at column {node.column}"
        ) from None


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


#: Python ints folded beyond this are refused: each step stays cheap (no quadratic growth)
MAX_INT = 1 << 65536


def _fold(op: str, a, b, node: Node):
    """Python-number arithmetic, folded as Python folds it (no graph node)."""
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            return a / b
        elif op == "**":
            if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
                if b * math.log2(abs(a)) > 65536:
                    raise EvalError(f"the number {node_text(a)}**{node_text(b)} is too large, over 2**65536 "
                                    f"(at column {node.column})")
            r = a ** b
            if isinstance(r, complex):
                return math.nan  # Python gives a complex number; PyTorch has none here
            return r
        else:
            r = None
        if r is not None:
            if type(r) is int and not -MAX_INT <= r <= MAX_INT:
                raise EvalError(f"the number in constant arithmetic at column {node.column} is too large, "
                                f"over 2**65536")
            return r
    except ZeroDivisionError:
        raise EvalError(f"division by zero in constant arithmetic at column {node.column}") from None
    except OverflowError:
        raise EvalError(f"the number overflows in constant arithmetic at column {node.column}") from None
    raise EvalError(f"operator {op!r} needs a tensor operand at column {node.column}")


def node_text(v) -> str:
    """A number for a message: huge ints by their size (str() of one over 4,300 digits fails)."""
    if type(v) is int and v.bit_length() > 256:
        return f"<an integer of {int(v.bit_length() * 0.30103) + 1} digits>"
    return repr(v)


def _binary(tr: Tracer, op: str, a, b, node: Node, source: str):
    """Dispatch a binary operator as PyTorch's Tensor dunder methods do."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if not ta and not tb:
        return _fold(op, a, b, node)
    if op == "@":
        if not (ta and tb):
            raise EvalError(f"'@' needs two tensors at column {node.column}")
        return _matmul(tr, a, b, node, source)
    if ta and tb:
        if a.data.shape != b.data.shape:
            _broadcast_check(a.data, b.data, node, source)
    else:
        _to_float(b if ta else a, node)  # a Python int too large for a float is PyTorch's overflow error
    if op == "+":
        return tr.apply(OPS["add"], (a, b) if ta else (b, a), {"alpha": 1}, node)
    if op == "-":
        if ta:
            return tr.apply(OPS["sub"], (a, b), {"alpha": 1}, node)
        return tr.apply(OPS["rsub"], (b,), {"other": a, "alpha": 1}, node)
    if op == "*":
        return tr.apply(OPS["mul"], (a, b) if ta else (b, a), {}, node)
    if op == "/":
        if ta:
            return tr.apply(OPS["div"], (a, b), {}, node)
        # number / tensor is tensor.reciprocal() * number in PyTorch
        recip = tr.apply(OPS["reciprocal"], (b,), {}, node)
        return tr.apply(OPS["mul"], (recip, a), {}, node)
    if op == "**":
        if ta and tb:
            return tr.apply(OPS["pow_tensor"], (a, b), {}, node)
        if ta:
            return tr.apply(OPS["pow"], (a,), {"exponent": b}, node)
        return tr.apply(OPS["pow_scalar_base"], (b,), {"self": a}, node)
    raise EvalError(f"unsupported operator {op!r} at column {node.column}")


def _to_float(value, node: Node):
    try:
        return float(value)
    except OverflowError:
        raise EvalError(f"the number at column {node.column} is too large for a tensor operation") from None


def _matmul(tr: Tracer, a: Tensor, b: Tensor, node: Node, source: str):
    """torch.matmul's dispatch on ranks."""
    da, db = a.data.ndim, b.data.ndim
    sa, sb = a.shape, b.shape

    def mismatch():
        return EvalError(
            f"shapes {_fmt_shape(sa)} and {_fmt_shape(sb)} cannot be multiplied with '@' "
            f"in '{source[node.start:node.end].strip()}' at column {node.column}"
        )

    if da == 0 or db == 0:
        raise EvalError(f"'@' needs tensors of at least one dimension, got shapes {_fmt_shape(sa)} and "
                        f"{_fmt_shape(sb)} at column {node.column}")
    if da == 1 and db == 1:
        if sa != sb:
            raise mismatch()
        return tr.apply(OPS["dot"], (a, b), {}, node)
    if da == 2 and db == 1:
        if sa[1] != sb[0]:
            raise mismatch()
        return tr.apply(OPS["mv"], (a, b), {}, node)
    if da == 2 and db == 2:
        if sa[1] != sb[0]:
            raise mismatch()
        return tr.apply(OPS["mm"], (a, b), {}, node)
    if da == 1 and db == 2:
        if sa[0] != sb[0]:
            raise mismatch()
        row = tr.apply(OPS["unsqueeze"], (a,), {"dim": 0}, node)
        prod = tr.apply(OPS["mm"], (row, b), {}, node)
        return tr.apply(OPS["squeeze"], (prod,), {"dim": 0}, node)
    raise EvalError(f"'@' on tensors of {da} and {db} dimensions is not supported at column {node.column}")


# ---------------------------------------------------------------------------
# Functions callable by name: sin(x), torch.sin(x), x.sin()
# ---------------------------------------------------------------------------

FunctionImpl = Callable[..., object]


def _sig(node: Node, args, kwargs, positional: Sequence[str], defaults: dict | None = None) -> dict:
    """Bind call arguments to parameter names, with clear errors."""
    defaults = dict(defaults or {})
    bound = {}
    if len(args) > len(positional):
        raise EvalError(f"{node.op}() takes at most {len(positional)} arguments, got {len(args)} "
                        f"at column {node.column}")
    for name, value in zip(positional, args):
        bound[name] = value
    for name, value in kwargs.items():
        if name not in positional:
            raise EvalError(f"{node.op}() got an unexpected keyword argument {name!r} at column {node.column}")
        if name in bound:
            raise EvalError(f"{node.op}() got multiple values for {name!r} at column {node.column}")
        bound[name] = value
    for name in positional:
        if name not in bound:
            if name in defaults:
                bound[name] = defaults[name]
            else:
                raise EvalError(f"{node.op}() is missing the argument {name!r} at column {node.column}")
    return bound


def _tensor_arg(value, fname: str, node: Node) -> Tensor:
    if not isinstance(value, Tensor):
        raise EvalError(f"{fname}() needs a tensor argument at column {node.column}")
    return value


def _int_arg(value, what: str, node: Node):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EvalError(f"{what} must be an integer at column {node.column}")
    return value


def _dim_arg(value, ndim: int, node: Node):
    d = _int_arg(value, "dim", node)
    if d is None:
        return None
    n = max(ndim, 1)
    if not -n <= d < n:
        raise EvalError(f"dim {d} is out of range for a tensor of {ndim} dimensions at column {node.column}")
    return d % n if ndim else 0


def _fn_unary(row: Op):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input",))
        x = b["input"]
        if not isinstance(x, Tensor):
            # torch.sin(2) is a TypeError in PyTorch: its functions take tensors, not numbers
            raise EvalError(f"{node.op}() needs a tensor argument, not the number {x!r} at column {node.column} "
                            f"(PyTorch's functions take tensors: give the value a name and --at)")
        return tr.apply(row, (x,), {}, node)
    return impl


def _fn_pow(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "exponent"))
    return _binary(tr, "**", b["input"], b["exponent"], node, source)


def _fn_square(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    return _binary(tr, "**", b["input"], 2, node, source)


def _fn_reduce(plain: str, with_dim: str):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        x = _tensor_arg(b["input"], node.op, node)
        if b["dim"] is None:
            if b["keepdim"]:
                raise EvalError(f"keepdim needs a dim at column {node.column}")
            return tr.apply(OPS[plain], (x,), {}, node)
        if not isinstance(b["keepdim"], (bool, int)):
            raise EvalError(f"keepdim must be True or False at column {node.column}")
        dim = _dim_arg(b["dim"], x.data.ndim, node)
        # PyTorch saves dim as a list (the IntArrayRef overload)
        return tr.apply(OPS[with_dim], (x,), {"dim": (dim,), "keepdim": bool(b["keepdim"])}, node)
    return impl


def _fn_full_reduce(key: str):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input",))
        x = _tensor_arg(b["input"], node.op, node)
        if x.data.size == 0:
            raise EvalError(f"{node.op}() of an empty tensor at column {node.column}")
        return tr.apply(OPS[key], (x,), {}, node)
    return impl


def _fn_two(key: str):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input", "other"))
        x, y = b["input"], b["other"]
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            raise EvalError(f"{node.op}() needs two tensors at column {node.column}")
        _broadcast_check(x.data, y.data, node, source)
        return tr.apply(OPS[key], (x, y), {}, node)
    return impl


def _fn_clamp(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "min", "max"), {"min": None, "max": None})
    x = _tensor_arg(b["input"], "clamp", node)
    lo, hi = b["min"], b["max"]
    for v in (lo, hi):
        if v is not None and not isinstance(v, Number):
            raise EvalError(f"clamp() bounds must be numbers at column {node.column}")
        if v is not None:
            _to_float(v, node)  # clamp(x, 2**2000) overflows in PyTorch too
    if lo is None and hi is None:
        raise EvalError(f"clamp() needs min or max at column {node.column}")
    return tr.apply(OPS["clamp"], (x,), {"min": lo, "max": hi}, node)


def _fn_reshape(tr, node, args, kwargs, source):
    if not args:
        raise EvalError(f"reshape() needs a tensor at column {node.column}")
    x = _tensor_arg(args[0], "reshape", node)
    shape = list(args[1:])
    if "shape" in kwargs:
        shape = [kwargs["shape"]]
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise EvalError(f"reshape() needs integer sizes, e.g. x.reshape(3, 2), at column {node.column}")
    if len(shape) > MAX_DIMS:
        raise EvalError(f"reshape() to {len(shape)} dimensions: the limit is {MAX_DIMS} at column {node.column}")
    try:
        target = np.empty(x.shape, dtype=np.int8).reshape(shape).shape
    except ValueError:
        raise EvalError(f"shape {_fmt_shape(tuple(shape))} is invalid for a tensor of shape "
                        f"{_fmt_shape(x.shape)} at column {node.column}") from None
    viewable = x.data.size <= 1 or np.shares_memory(np.reshape(x.data, target), x.data)
    if node.op == "view":
        if not viewable:
            raise EvalError(f"view size is not compatible with the tensor's strides (use .reshape(...)) "
                            f"at column {node.column}")
        return tr.apply(OPS["view"], (x,), {"shape": target}, node)
    if x.data.flags.c_contiguous:
        return tr.apply(OPS["view"], (x,), {"shape": target}, node)
    if viewable:  # a non-contiguous tensor whose strides still allow a view (e.g. M.T.reshape(3, 2))
        return tr.apply(OPS["reshape_alias"], (x,), {"shape": target}, node)
    # Not viewable (e.g. a transposed matrix flattened): PyTorch copies, then views the copy.
    copy = tr.apply(OPS["clone"], (x,), {}, node)
    return tr.apply(OPS["unsafe_view"], (copy,), {"shape": target}, node)


def _fn_transpose(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim0", "dim1"))
    x = _tensor_arg(b["input"], "transpose", node)
    d0 = _dim_arg(b["dim0"], x.data.ndim, node)
    d1 = _dim_arg(b["dim1"], x.data.ndim, node)
    return tr.apply(OPS["transpose"], (x,), {"dim0": d0, "dim1": d1}, node)


def _fn_t(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = _tensor_arg(b["input"], "t", node)
    if x.data.ndim > 2:
        raise EvalError(f"t() expects a tensor with at most 2 dimensions at column {node.column}")
    return tr.apply(OPS["t"], (x,), {}, node)


def _fn_softmax(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim"))
    x = _tensor_arg(b["input"], "softmax", node)
    return tr.apply(OPS["softmax"], (x,), {"dim": _dim_arg(b["dim"], x.data.ndim, node)}, node)


def _fn_matmul(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "other"))
    return _binary(tr, "@", b["input"], b["other"], node, source)


def _fn_linalg(key: str, ranks: tuple):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input", "other"))
        x, y = _tensor_arg(b["input"], node.op, node), _tensor_arg(b["other"], node.op, node)
        if (x.data.ndim, y.data.ndim) != ranks:
            raise EvalError(f"{node.op}() expects tensors of {ranks[0]} and {ranks[1]} dimensions, got shapes "
                            f"{_fmt_shape(x.shape)} and {_fmt_shape(y.shape)} at column {node.column}")
        return _matmul(tr, x, y, node, source)
    return impl


def _fn_unsqueeze(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim"))
    x = _tensor_arg(b["input"], "unsqueeze", node)
    d = _int_arg(b["dim"], "dim", node)
    n = x.data.ndim + 1
    if n > MAX_DIMS:
        raise EvalError(f"unsqueeze() would make a tensor of {n} dimensions, more than the limit of {MAX_DIMS} "
                        f"at column {node.column}")
    if not -n <= d < n:
        raise EvalError(f"dim {d} is out of range for unsqueeze at column {node.column}")
    return tr.apply(OPS["unsqueeze"], (x,), {"dim": d % n}, node)


def _fn_flatten(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = _tensor_arg(b["input"], "flatten", node)
    if x.data.ndim == 1:
        return x  # flatten of a vector is the vector itself
    return _fn_reshape(tr, node, [x, -1], {}, source)


def _fn_contiguous(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = _tensor_arg(b["input"], "contiguous", node)
    if x.data.flags.c_contiguous:
        return x  # already contiguous: the same tensor
    return tr.apply(OPS["clone"], (x,), {}, node)


def _fn_norm(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    return tr.apply(OPS["norm"], (_tensor_arg(b["input"], "norm", node),), {}, node)


def _fn_reciprocal(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = b["input"]
    if not isinstance(x, Tensor):
        return _fold("/", 1, x, node)
    return tr.apply(OPS["reciprocal"], (x,), {}, node)


FUNCTIONS: dict[str, FunctionImpl] = {name: _fn_unary(row) for name, row in UNARY_FUNCTIONS.items()
                                      if name not in ("reciprocal",)}
FUNCTIONS.update({
    "pow": _fn_pow,
    "square": _fn_square,
    "reciprocal": _fn_reciprocal,
    "sum": _fn_reduce("sum", "sum_dim"),
    "mean": _fn_reduce("mean", "mean_dim"),
    "max": _fn_full_reduce("max"),
    "min": _fn_full_reduce("min"),
    "prod": _fn_full_reduce("prod"),
    "maximum": _fn_two("maximum"),
    "minimum": _fn_two("minimum"),
    "clamp": _fn_clamp,
    "reshape": _fn_reshape,
    "view": _fn_reshape,
    "transpose": _fn_transpose,
    "t": _fn_t,
    "softmax": _fn_softmax,
    "matmul": _fn_matmul,
    "norm": _fn_norm,
    "dot": _fn_linalg("dot", (1, 1)),
    "mv": _fn_linalg("mv", (2, 1)),
    "mm": _fn_linalg("mm", (2, 2)),
    "unsqueeze": _fn_unsqueeze,
    "flatten": _fn_flatten,
    "contiguous": _fn_contiguous,
})

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
    """Evaluate ``tree`` at the point ``at`` (name → number or nested list), building the graph.

    ``max_elements`` bounds every intermediate tensor's size (checked before computing it)."""
    if dtype not in DTYPES:
        raise EvalError(f"unknown dtype {dtype!r}: use float32 or float64")
    tr = Tracer(dtype, max_elements)
    inputs: dict[str, Tensor] = {}
    no_grad = set(no_grad)

    # Every --at value becomes a leaf tensor first, as a torch script creates its inputs first.
    for name, value in at.items():
        inputs[name] = tr.leaf(name, value, requires_grad=name not in no_grad)

    def lookup(node: Node):
        name = node.op
        if name in inputs:
            return inputs[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise EvalError(f"{name!r} is a function: call it, e.g. {name}(x), at column {node.column}")
        known = set(CONSTANTS) | set(FUNCTIONS)
        hint = _closest(name, known) if name not in at else ""
        raise EvalError(f"{name} has no value: add --at {name}=...{hint}")

    # Post-order evaluation: every node's value is pushed after its children's, so a node
    # finds its operands on top of the stack.
    values: list = []
    with np.errstate(all="ignore"):
        tr.ignore_fp_errors = True
        for node in iter_postorder(tree):
            kind = node.kind
            if kind == "number":
                value = node.value
            elif kind == "name":
                value = lookup(node)
            elif kind == "unary":
                x = values.pop()
                if node.op == "+":
                    value = x  # +x is x itself (no node), as in PyTorch
                elif isinstance(x, Tensor):
                    value = tr.apply(OPS["neg"], (x,), {}, node)
                else:
                    value = -x
            elif kind == "binary":
                b = values.pop()
                a = values.pop()
                value = _binary(tr, node.op, a, b, node, source)
            elif kind == "attr":
                x = values.pop()
                if node.op != "T":
                    raise EvalError(f"attribute '.{node.op}' is not supported (only .T) at column {node.column}")
                x = _tensor_arg(x, ".T", node)
                if x.data.ndim > 2:
                    raise EvalError(f".T on a tensor of {x.data.ndim} dimensions is not supported "
                                    f"at column {node.column}")
                # PyTorch permutes with the dims reversed, also for 0-D and 1-D (where it warns)
                value = tr.apply(OPS["permute"], (x,), {"dims": tuple(range(x.data.ndim))[::-1]}, node)
            elif kind == "call":
                kwargs_nodes = node.kwargs
                kw = {k: values.pop() for k, _ in reversed(kwargs_nodes)}
                args = [values.pop() for _ in node.args][::-1]
                fname = function_name(node.op)
                impl = FUNCTIONS.get(fname)
                if impl is None:
                    where = "method" if node.method else "function"
                    raise EvalError(f"unknown {where} {node.op!r} at column {node.column}"
                                    f"{_closest(fname, FUNCTIONS)}")
                value = impl(tr, node, args, kw, source)
            else:  # pragma: no cover - the parser makes no other kinds
                raise EvalError(f"unsupported expression at column {node.column}")
            values.append(value)
        output = values.pop()
        tr.ignore_fp_errors = False

    if not isinstance(output, Tensor):
        # A constant expression: PyTorch would hold a Python number; show it as a 0-d tensor.
        try:
            with np.errstate(all="ignore"):
                data = np.asarray(output, dtype=tr.np_dtype)
        except OverflowError:  # an int beyond any float, e.g. 9**999
            raise EvalError("the expression is a constant too large for a float tensor") from None
        output = Tensor(data, node=tree)
        tr.tensors.append(output)
    root = output.grad_fn if output.grad_fn is not None else tr.edge(output)
    functions = walk_functions(root)
    graph = Graph(output, inputs, tr.tensors, root, functions, source, dtype)
    # Deterministic ids: tensors in creation order, functions in depth-first order from the root.
    for i, t in enumerate(tr.tensors):
        t.id = f"t{i}"
    for i, fn in enumerate(functions):
        fn.id = f"f{i}"
    return graph


def iter_edges(functions: Sequence[BackwardFunction]) -> Iterator[tuple]:
    """(function, input index, next function) for every non-None next_functions entry."""
    for fn in functions:
        for i, nxt in enumerate(fn.next_functions):
            if nxt is not None:
                yield fn, i, nxt
