"""The expression's operators as op rows: arithmetic (Python numbers folded in Python, as a
torch script does, tensors through the op table), ``@``, comparisons and indexing — and the
argument readers every function called by name shares.
"""

from __future__ import annotations

import math
from typing import Sequence

from . import layout
from .errors import EvalError
from .graph import ALPHA_PARAMS, EMPTY_PARAMS, Graph, Tensor
from .limits import MAX_DIMS
from .ops import INT64_MAX, OPS, np
from .parser import COMPARISONS as _COMPARISONS
from .parser import Node
from .shapes import format_shape
from .tracer import TORCH_DTYPE_NAMES, Tracer, dtype_name

#: tensor (+ - * /) tensor: the row and its params (one shared dict, never changed)
TENSOR_ARITHMETIC = {"+": (OPS["add"], ALPHA_PARAMS), "-": (OPS["sub"], ALPHA_PARAMS), "*": (OPS["mul"], EMPTY_PARAMS),
                      "/": (OPS["div"], EMPTY_PARAMS)}


def broadcast_check(a: Tensor, b: Tensor, node: Node, source: str):
    sa, sb = a.shape, b.shape
    if sa == sb:
        return  # the common case, decided without numpy's general rule
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise EvalError(
            f"shapes {format_shape(sa)} and {format_shape(sb)} cannot be broadcast together "
            f"in '{source[node.start:node.end].strip()}' at column {node.column}"
        ) from None


#: Python ints folded beyond this are refused: each step stays cheap (no quadratic growth)
MAX_INT = 1 << 65536


def node_text(v) -> str:
    """A number for a message: huge ints by their size (str() of one over 4,300 digits fails)."""
    if type(v) is int and v.bit_length() > 256:
        return f"<an integer of {int(v.bit_length() * 0.30103) + 1} digits>"
    return repr(v)


def fold_numbers(op: str, a, b, node: Node):
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
        elif op == "//":
            r = a // b
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


def binary_op(tr: Tracer, op: str, a, b, node: Node, source: str):
    """Dispatch a binary operator as PyTorch's Tensor dunder methods do."""
    ta, tb = type(a) is Tensor, type(b) is Tensor
    if ta and tb and (op == "@" or op in TENSOR_ARITHMETIC):  # the commonest: two tensors' W @ x, x + b
        if op == "@":
            return matmul_operator(tr, a, b, node, source)
        shapes = tr.graph.shape
        if shapes[a.index] != shapes[b.index]:
            broadcast_check(a, b, node, source)
        if op == "-":
            _bool_subtraction(a, b, node)
        row, params = TENSOR_ARITHMETIC[op]
        return tr.apply(row, (a, b), params, node)
    if not (ta and tb):
        operand_check(a, node)
        operand_check(b, node)
    # (two 0-d float tensors' + - * /: TraceBuilder.binary has appended those itself)
    if (not ta and type(a) not in NUMBER_TYPES) or (not tb and type(b) not in NUMBER_TYPES):
        culprit = b if ta or type(a) in NUMBER_TYPES else a
        raise EvalError(f"operator {op!r} cannot be applied to {describe_value(culprit)} at column {node.column}")
    if op in _COMPARISONS:
        return compare(tr, op, a, b, node, source)
    if not ta and not tb:
        return fold_numbers(op, a, b, node)
    if op == "//":
        if (ta and a.requires_grad) or (tb and b.requires_grad):
            raise EvalError(f"the derivative for 'floor_divide' is not implemented (PyTorch records a NotImplemented "
                            f"node: its backward raises) at column {node.column}; give the operands --no-grad")
        return tr.apply(OPS["floor_divide"], (a, b), EMPTY_PARAMS, node)
    if op == "@":
        if not (ta and tb):
            raise EvalError(f"'@' needs two tensors at column {node.column}")
        return matmul_operator(tr, a, b, node, source)
    if ta and tb:
        if a.shape != b.shape:
            broadcast_check(a, b, node, source)
    else:
        to_float(b if ta else a, node)  # a Python int too large for a float is PyTorch's overflow error
    if op == "+":
        return tr.apply(OPS["add"], (a, b) if ta else (b, a), ALPHA_PARAMS, node)
    if op == "-":
        _bool_subtraction(a, b, node)
        if ta:
            return tr.apply(OPS["sub"], (a, b), ALPHA_PARAMS, node)
        return tr.apply(OPS["rsub"], (b,), {"other": a, "alpha": 1}, node)
    if op == "*":
        return tr.apply(OPS["mul"], (a, b) if ta else (b, a), EMPTY_PARAMS, node)
    if op == "/":
        if ta:
            return tr.apply(OPS["div"], (a, b), EMPTY_PARAMS, node)
        # number / tensor is tensor.reciprocal() * number in PyTorch
        recip = tr.apply(OPS["reciprocal"], (b,), EMPTY_PARAMS, node)
        return tr.apply(OPS["mul"], (recip, a), EMPTY_PARAMS, node)
    if op == "**":
        if ta and tb:
            return tr.apply(OPS["pow_tensor"], (a, b), EMPTY_PARAMS, node)
        if ta:
            return tr.apply(OPS["pow"], (a,), {"exponent": b}, node)
        return tr.apply(OPS["pow_scalar_base"], (b,), {"self": a}, node)
    raise EvalError(f"unsupported operator {op!r} at column {node.column}")


NUMBER_TYPES = (int, float, bool)


def _is_bool(v) -> bool:
    return type(v) is bool or (type(v) is Tensor and getattr(v.data, "dtype", None) == np.bool_)


def _bool_subtraction(a, b, node) -> None:
    """PyTorch refuses ``-`` with a bool tensor (a Python bool is one too, next to a tensor)."""
    if _is_bool(a) and _is_bool(b):
        raise EvalError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                        f"`logical_xor()` operator instead (at column {node.column})")
    if _is_bool(a) or _is_bool(b):
        raise EvalError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to "
                        f"invert a mask, use the `~` or `logical_not()` operator instead (at column {node.column})")


def describe_value(value) -> str:
    """A value that is not an operand, named for a message."""
    if value is None:
        return "None"
    if value is Ellipsis:
        return "'...'"
    if type(value) is Slice:
        return "a slice (':' belongs inside a subscript)"
    return f"a {type(value).__name__}" if type(value) in (list, tuple) else repr(value)


#: the Python ints PyTorch's scalar path converts (int64 or uint64); beyond, OverflowError
_SCALAR_INTS = (-(1 << 63), (1 << 64) - 1)


def operand_check(value, node) -> None:
    """An operand that is neither a tensor nor a number (max(dim)'s (values, indices), a string)."""
    if type(value) is ValuesIndices:
        raise EvalError(f"{value.name}(dim) returns (values, indices): use {value.name}(dim).values "
                        f"at column {node.column}")
    if isinstance(value, str):
        raise EvalError(f"{value!r} is not a tensor or a number at column {node.column}")


def to_float(value, node: Node):
    if type(value) is int and not _SCALAR_INTS[0] <= value <= _SCALAR_INTS[1]:
        raise EvalError(f"the number {node_text(value)} at column {node.column} is too large for a tensor "
                        f"operation (PyTorch: OverflowError, int too big to convert)")
    try:
        return float(value)
    except OverflowError:
        raise EvalError(f"the number at column {node.column} is too large for a tensor operation") from None


def matmul_operator(tr: Tracer, a: Tensor, b: Tensor, node: Node, source: str):
    """torch.matmul's dispatch on ranks."""
    g = tr.graph
    sa, sb = g.shape[a.index], g.shape[b.index]
    da, db = len(sa), len(sb)
    if da == 0 or db == 0:
        raise EvalError(f"'@' needs tensors of at least one dimension, got shapes {format_shape(sa)} and "
                        f"{format_shape(sb)} at column {node.column}")
    ka, kb = g.value[a.index].dtype, g.value[b.index].dtype  # (arrays: neither is 0-d)
    if ka is not kb and ka != kb:
        ka, kb = dtype_name(a), dtype_name(b)
        if ka != kb:  # matmul does not promote (a float32 torch.tensor([...]) in a float64 run)
            raise EvalError(f"'@' needs tensors of the same dtype, got {TORCH_DTYPE_NAMES.get(ka, ka)} and "
                            f"{TORCH_DTYPE_NAMES.get(kb, kb)} at column {node.column}")
    if da == 1 and db == 1:
        if sa != sb:
            raise _matmul_mismatch(sa, sb, node, source)
        return tr.apply(OPS["dot"], (a, b), EMPTY_PARAMS, node)
    if da == 2 and db == 1:
        if sa[1] != sb[0]:
            raise _matmul_mismatch(sa, sb, node, source)
        return tr.apply(OPS["mv"], (a, b), EMPTY_PARAMS, node)
    if da == 2 and db == 2:
        if sa[1] != sb[0]:
            raise _matmul_mismatch(sa, sb, node, source)
        return tr.apply(OPS["mm"], (a, b), EMPTY_PARAMS, node)
    if da == 1 and db == 2:
        if sa[0] != sb[0]:
            raise _matmul_mismatch(sa, sb, node, source)
        row = tr.apply(OPS["unsqueeze"], (a,), {"dim": 0}, node)
        prod = tr.apply(OPS["mm"], (row, b), EMPTY_PARAMS, node)
        return tr.apply(OPS["squeeze"], (prod,), {"dim": 0}, node)
    return matmul_batched(tr, a, b, node, lambda: _matmul_mismatch(sa, sb, node, source))


def _matmul_mismatch(sa: tuple, sb: tuple, node, source: str) -> EvalError:
    return EvalError(f"shapes {format_shape(sa)} and {format_shape(sb)} cannot be multiplied with '@' "
                     f"in '{source[node.start:node.end].strip()}' at column {node.column}")


def bind_args(node: Node, args, kwargs, positional: Sequence[str], defaults: dict | None = None) -> dict:
    """Bind call arguments to parameter names, with clear errors."""
    if not kwargs and len(args) == len(positional):
        return dict(zip(positional, args))  # the commonest call: every argument given in order
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


def tensor_arg(value, fname: str, node: Node) -> Tensor:
    if not isinstance(value, Tensor):
        if type(value) in NUMBER_TYPES:  # PyTorch's TypeError too: its functions take tensors here
            raise EvalError(f"{fname}() needs a tensor argument, not the number {value!r}, at column {node.column} "
                            f"(write tensor({value!r}), or give it a name and --at)")
        raise EvalError(f"{fname}() needs a tensor argument, not {describe_value(value)}, at column {node.column}")
    return value


def int_arg(value, what: str, node: Node):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EvalError(f"{what} must be an integer at column {node.column}")
    return value


def dim_arg(value, ndim: int, node: Node):
    """A dim checked against ``ndim`` and kept as given (PyTorch saves -1 as -1: rules normalise)."""
    d = int_arg(value, "dim", node)
    if d is None:
        return None
    n = max(ndim, 1)
    if not -n <= d < n:
        raise EvalError(f"dim {d} is out of range for a tensor of {ndim} dimensions at column {node.column}")
    return d


def reshape_tensor(tr: Tracer, x: Tensor, target: tuple, node=None) -> Tensor:
    """``x.reshape(target)`` as PyTorch decides it from the strides: a view of a contiguous tensor
    (ViewBackward0), an alias of a viewable one (ReshapeAliasBackward0), else a copy viewed
    (CloneBackward0 + UnsafeViewBackward0)."""
    g = tr.graph
    viewable = layout.view_strides(x.shape, g.strides_of(x.index), target) is not None
    if g.is_contiguous(x.index):
        return tr.apply(OPS["view"], (x,), {"shape": target}, node)
    if viewable:  # a non-contiguous tensor whose strides still allow a view (e.g. M.T.reshape(3, 2))
        return tr.apply(OPS["reshape_alias"], (x,), {"shape": target}, node)
    # Not viewable (e.g. a transposed matrix flattened): PyTorch copies, then views the copy.
    copy = tr.apply(OPS["clone"], (x,), EMPTY_PARAMS, node)
    return tr.apply(OPS["unsafe_view"], (copy,), {"shape": target}, node)

# --- indexing, joining, selection (issue 13) --------------------------------------------------
# x[0], x[1:3], M[:, 0], x[None], x[...] as PyTorch's Tensor.__getitem__ builds them (select,
# slice, unsqueeze, alias: one op each, applied left to right); comparisons (bool tensors, no
# grad_fn); torch.where, torch.cat, torch.stack; torch.tensor([...]) as a constant.


class Slice:
    """``start:stop:step`` inside a subscript, its parts as written (None where omitted)."""

    __slots__ = ("start", "stop", "step", "pos")

    def __init__(self, start, stop, step, pos: int):
        self.start, self.stop, self.step, self.pos = start, stop, step, pos


def _index_kind(item, node) -> str:
    """What a subscript item is: "int", "slice", "none" or "ellipsis" (else PyTorch's IndexError)."""
    if item is None:
        return "none"
    if item is Ellipsis:
        return "ellipsis"
    if type(item) is Slice:
        for part in (item.start, item.stop, item.step):
            if part is not None and (type(part) is not int or not -(1 << 63) <= part < 1 << 63):
                raise EvalError(f"slice indices must be integers or None at column {item.pos + 1}")
        return "slice"
    if type(item) is int:
        return "int"
    if type(item) is bool:
        raise EvalError(f"boolean indices (x[True]) are not supported at column {node.column}")
    if isinstance(item, Tensor):
        kind = np.asarray(item.data).dtype.kind
        if kind not in "biu" or item.requires_grad:
            raise EvalError(f"tensors used as indices must be long, int, byte or bool tensors (at column "
                            f"{node.column}): e.g. torch.tensor([0, 2]) or x > 0")
        return "tensor"
    got = "tuple" if type(item) is tuple else "list" if type(item) is list else type(item).__name__
    raise EvalError(f"only integers, slices (`:`), ellipsis (`...`) and None are valid indices (got {got}) "
                    f"at column {node.column}")


def subscript(tr: Tracer, node, x, items: list):
    """``x[items]`` as PyTorch's ``Tensor.__getitem__``: one index alone, or each of a tuple in turn."""
    if type(x) is tuple or type(x) is list:
        return _sequence_item(x, items, node)
    if type(x) is ValuesIndices:  # M.max(1)[0] is M.max(1).values
        if len(items) == 1 and type(items[0]) is int and items[0] in (0, -2):
            return x.values
        raise EvalError(f"gradviz takes {x.name}(dim)[0] (the values) only, not its indices, at column {node.column}")
    if not isinstance(x, Tensor):
        raise EvalError(f"a number cannot be subscripted at column {node.column}")
    as_tuple = len(items) == 1 and type(items[0]) is tuple  # x[(0, 1)] is x[0, 1]; x[:,] is x[(:,)]
    if as_tuple:
        items = list(items[0])
    kinds = [_index_kind(item, node) for item in items]
    for k, (item, kind) in enumerate(zip(items, kinds)):
        if kind == "tensor" and item.ndim == 0 and np.asarray(item.data).dtype.kind in "iu":
            items[k], kinds[k] = int(item.data), "int"  # a 0-d int64 tensor indexes as its int
    if len(items) == 1 and kinds[0] != "tensor" and not as_tuple:
        return _index_one(tr, node, x, items[0], kinds[0])
    specified = sum(k in ("int", "slice") or (k == "tensor" and _mask_dims(item)) for item, k in zip(items, kinds))
    if specified > x.ndim:
        raise EvalError(f"too many indices for tensor of dimension {x.ndim} at column {node.column}")
    if kinds.count("ellipsis") > 1:
        raise EvalError(f"an index can only have a single ellipsis ('...') at column {node.column}")
    result, dim, real = x, 0, 0  # real: the dim of x the item indexes (for messages)
    indices: list = []  # the tensor indices, by dim of the result so far (None: a dim kept)
    for item, kind in zip(items, kinds):
        if kind == "tensor":
            span = _check_tensor_index(item, result, dim, real, node)
            indices += [None] * (dim - len(indices)) + [np.asarray(item.data)]
            dim += span
            real += span
        elif kind == "int":
            result = _select(tr, node, result, dim, item, real)
            real += 1
        elif kind == "slice":
            result = _slice(tr, node, result, dim, item, optimize=True)
            dim += 1
            real += 1
        elif kind == "none":
            result = _unsqueeze_none(tr, node, result, dim)
            dim += 1
        else:
            dim += x.ndim - specified
            real += x.ndim - specified
    if indices:  # advanced indexing last, on what the basic indices made (PyTorch's dispatch_index)
        return tr.apply(OPS["index"], (result,), {"indices": tuple(indices)}, node)
    if result is x:  # nothing to do (M[:, :], M[...]): a new tensor all the same
        result = tr.apply(OPS["alias"], (x,), EMPTY_PARAMS, node)
    return result


def _mask_dims(t: Tensor) -> int:
    """How many dims an index tensor covers: a bool mask its own, an int64 tensor one."""
    return t.ndim if np.asarray(t.data).dtype.kind == "b" else 1


def _check_tensor_index(t: Tensor, x: Tensor, dim: int, real: int, node) -> int:
    values = np.asarray(t.data)
    if values.dtype.kind == "b":
        shape = x.shape[dim:dim + values.ndim]
        if values.shape != shape:
            raise EvalError(f"The shape of the mask {list(values.shape)} at index {real} does not match the shape of "
                            f"the indexed tensor {list(x.shape)} at index {dim} (at column {node.column})")
        return values.ndim
    size = x.shape[dim]
    bad = values[(values >= size) | (values < -size)]
    if bad.size:
        raise EvalError(f"index {int(bad.flat[0])} is out of bounds for dimension {real} with size {size} "
                        f"at column {node.column}")
    return 1


def _index_one(tr: Tracer, node, x: Tensor, item, kind: str):
    if kind == "none":
        return _unsqueeze_none(tr, node, x, 0)
    if kind == "ellipsis":
        return tr.apply(OPS["alias"], (x,), EMPTY_PARAMS, node)
    if x.ndim == 0:
        what = "invalid index of a 0-dim tensor" if kind == "int" else "slice() cannot be applied to a 0-dim tensor"
        raise EvalError(f"{what} at column {node.column} (a 0-d tensor has nothing to index)")
    if kind == "int":
        return _select(tr, node, x, 0, item, 0)
    return _slice(tr, node, x, 0, item, optimize=False)


def _unsqueeze_none(tr: Tracer, node, x: Tensor, dim: int) -> Tensor:
    if x.ndim + 1 > MAX_DIMS:
        raise EvalError(f"x[None] would make a tensor of {x.ndim + 1} dimensions, more than the limit of "
                        f"{MAX_DIMS} at column {node.column}")
    return tr.apply(OPS["unsqueeze"], (x,), {"dim": dim}, node)


def _select(tr: Tracer, node, x: Tensor, dim: int, index: int, real: int) -> Tensor:
    size = x.shape[dim]
    if not -size <= index < size:
        raise EvalError(f"index {index} is out of bounds for dimension {real} with size {size} "
                        f"at column {node.column}")
    return tr.apply(OPS["select"], (x,), {"dim": dim, "index": index}, node)


def _slice(tr: Tracer, node, x: Tensor, dim: int, sl: Slice, optimize: bool) -> Tensor:
    step = 1 if sl.step is None else sl.step
    if step == 0:
        raise EvalError(f"slice step cannot be zero at column {sl.pos + 1}")
    if step < 0:
        raise EvalError(f"step must be greater than zero at column {sl.pos + 1} (PyTorch has no "
                        f"negative steps; use torch.flip)")
    start = 0 if sl.start is None else sl.start
    end = INT64_MAX if sl.stop is None else sl.stop
    # In a tuple of indices PyTorch skips a slice that keeps everything (M[:, 0] is one select).
    if optimize and start == 0 and end >= x.shape[dim] and step == 1:
        return x
    return tr.apply(OPS["slice"], (x,), {"dim": dim, "start": start, "end": end, "step": step}, node)


def _sequence_item(x, items: list, node):
    """An item of a tuple or list value (``[a, b][0]``, a (values, indices) result's ``[0]``)."""
    if len(items) != 1 or type(items[0]) is not int:
        raise EvalError(f"a {type(x).__name__} takes one integer index at column {node.column}")
    try:
        return x[items[0]]
    except IndexError:
        raise EvalError(f"{type(x).__name__} index {items[0]} out of range at column {node.column}") from None


_COMPARE_NUMPY = {"<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal", "==": "equal",
                  "!=": "not_equal"}


def compare(tr: Tracer, op: str, a, b, node, source: str):
    """``a < b`` and friends: a bool tensor with no grad_fn (Python's bool for two numbers)."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if not ta and not tb:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]
    if ta and tb and a.shape != b.shape:
        broadcast_check(a, b, node, source)
    tr.quiet_numpy()
    result = getattr(np, _COMPARE_NUMPY[op])(a.data if ta else a, b.data if tb else b)
    return tr.constant_tensor(np.asarray(result), node)


def matmul_batched(tr: Tracer, a: Tensor, b: Tensor, node, mismatch) -> Tensor:
    """torch.matmul with a 3-D (or larger) operand, as ATen's ``_matmul_impl``: a batch of one that
    requires grad squeezed away, then the batch folded into an mm/mv when ``should_fold`` says so,
    else every operand expanded to the broadcast batch and multiplied with bmm."""
    if a.ndim == 3 and b.ndim == 3:  # recorded: (1, n, m) @ (k, m, p) squeezes the first, if it needs grad
        g = tr.graph
        if a.shape[0] == 1 and b.shape[0] != 1 and g.req[a.index]:
            a = tr.apply(OPS["squeeze_dim"], (a,), {"dim": 0}, node)
        elif b.shape[0] == 1 and a.shape[0] != 1 and g.req[b.index]:
            b = tr.apply(OPS["squeeze_dim"], (b,), {"dim": 0}, node)
    return _matmul_folded_or_bmm(tr, a, b, node, mismatch)


def _matmul_folded_or_bmm(tr: Tracer, a: Tensor, b: Tensor, node, mismatch) -> Tensor:
    if _should_fold(tr.graph, a, b):
        return _matmul_fold(tr, a, b, node, mismatch)
    return _matmul_bmm(tr, a, b, node, mismatch)


def _should_fold(g: Graph, a: Tensor, b: Tensor) -> bool:
    """ATen's should_fold: the larger operand's batch folds into mm/mv rows without a copy (or the
    smaller one needs grad, so that its gradient is one mm rather than a sum over the batch)."""
    a_larger = a.ndim >= b.ndim
    big, small = (a, b) if a_larger else (b, a)
    if not (big.ndim >= 3 and small.ndim <= 2):
        return False
    if g.req[small.index]:
        return True
    if a.ndim == 2:
        return False
    shape, strides = list(big.shape), list(g.strides_of(big.index))
    if not a_larger:  # b.mT
        shape[-1], shape[-2] = shape[-2], shape[-1]
        strides[-1], strides[-2] = strides[-2], strides[-1]
    if math.prod(shape) == 0:
        return True
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(len(shape) - 2))


def _matmul_fold(tr: Tracer, a: Tensor, b: Tensor, node, mismatch) -> Tensor:
    transpose = b.ndim > a.ndim
    t1 = tr.apply(OPS["transpose"], (b,), {"dim0": -2, "dim1": -1}, node) if transpose else a
    t2 = (tr.apply(OPS["t"], (a,), EMPTY_PARAMS, node) if a.ndim == 2 else a) if transpose else b
    if t1.shape[-1] != t2.shape[0]:
        raise mismatch()
    out_shape = t1.shape[:-1]
    folded = reshape_tensor(tr, t1, (math.prod(out_shape), t1.shape[-1]), node)
    if t2.ndim == 1:
        return tr.apply(OPS["unsafe_view"], (tr.apply(OPS["mv"], (folded, t2), EMPTY_PARAMS, node),),
                        {"shape": out_shape}, node)
    out = tr.apply(OPS["unsafe_view"], (tr.apply(OPS["mm"], (folded, t2), EMPTY_PARAMS, node),),
                   {"shape": out_shape + (t2.shape[1],)}, node)
    if transpose:  # output.mT().contiguous()
        out = tr.apply(OPS["transpose"], (out,), {"dim0": -2, "dim1": -1}, node)
        if not tr.graph.is_contiguous(out.index):
            out = tr.apply(OPS["clone"], (out,), EMPTY_PARAMS, node)
    return out


def _matmul_bmm(tr: Tracer, a: Tensor, b: Tensor, node, mismatch) -> Tensor:
    da, db = a.ndim, b.ndim
    n, m1 = (a.shape[-2] if da > 1 else 1), a.shape[-1]
    m2, p = (b.shape[-2] if db > 1 else b.shape[0]), (b.shape[-1] if db > 1 else 1)
    if m1 != m2:
        raise mismatch()
    try:
        batch = tuple(np.broadcast_shapes(a.shape[:max(da - 2, 0)], b.shape[:max(db - 2, 0)]))
    except ValueError:
        raise mismatch() from None
    if len(batch) + 2 > MAX_DIMS:
        raise EvalError(f"'@' would make a tensor of more than {MAX_DIMS} dimensions at column {node.column}")
    count = math.prod(batch)
    if da == 1:
        a = tr.apply(OPS["unsqueeze"], (a,), {"dim": 0}, node)
    if db == 1:
        b = tr.apply(OPS["unsqueeze"], (b,), {"dim": 1}, node)
    a = reshape_tensor(tr, tr.apply(OPS["expand"], (a,), {"size": batch + (n, m1)}, node), (count, n, m1), node)
    b = reshape_tensor(tr, tr.apply(OPS["expand"], (b,), {"size": batch + (m2, p)}, node), (count, m2, p), node)
    out = tr.apply(OPS["bmm"], (a, b), EMPTY_PARAMS, node)
    if db == 1:
        out = tr.apply(OPS["squeeze_dim"], (out,), {"dim": -1}, node)
    shape = batch + ((n,) if da > 1 else ()) + ((p,) if db > 1 else ())
    return tr.apply(OPS["unsafe_view"], (out,), {"shape": shape}, node)


class ValuesIndices:
    """What ``x.max(dim)`` returns: PyTorch's named tuple (values, indices); ``.values`` is the tensor."""

    __slots__ = ("values", "indices", "name")

    def __init__(self, values: Tensor, indices, name: str):
        self.values = values
        self.indices = indices
        self.name = name
