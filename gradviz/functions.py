"""Functions callable by name — ``sin(x)``, ``torch.sin(x)``, ``x.sin()``, ``F.relu(x)`` — each
read against PyTorch's signature and applied as op rows (:data:`FUNCTIONS`: name → implementation).
"""

from __future__ import annotations

import math
from typing import Callable

from . import layout
from .errors import EvalError
from .graph import ALPHA_PARAMS, EMPTY_PARAMS, Number, Tensor
from .limits import MAX_DIMS
from .operators import (
    NUMBER_TYPES,
    ValuesIndices,
    binary_op,
    bind_args,
    broadcast_check,
    describe_value,
    dim_arg,
    fold_numbers,
    int_arg,
    matmul_operator,
    reshape_tensor,
    tensor_arg,
    to_float,
)
from .ops import OPS, UNARY_FUNCTIONS, Op, np
from .shapes import format_shape
from .tracer import TORCH_DTYPE_NAMES, dtype_name

FunctionImpl = Callable[..., object]


def _fn_unary(row: Op):
    def impl(tr, node, args, kwargs, source):
        # the commonest call, sin(x) or x.sin(): one argument, nothing to bind
        x = args[0] if len(args) == 1 and not kwargs else bind_args(node, args, kwargs, ("input",))["input"]
        if type(x) is not Tensor:
            # torch.sin(2) is a TypeError in PyTorch: its functions take tensors, not numbers
            raise EvalError(f"{node.op}() needs a tensor argument, not the number {x!r} at column {node.column} "
                            f"(PyTorch's functions take tensors: give the value a name and --at)")
        return tr.apply(row, (x,), EMPTY_PARAMS, node)
    return impl


def _fn_pow(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "exponent"))
    return binary_op(tr, "**", b["input"], b["exponent"], node, source)


def _fn_square(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input",))
    return binary_op(tr, "**", b["input"], 2, node, source)


def _fn_reduce(plain: str, with_dim: str):
    def impl(tr, node, args, kwargs, source):
        if len(args) == 1 and not kwargs and type(args[0]) is Tensor:  # x.sum(): the whole tensor
            return tr.apply(OPS[plain], (args[0],), EMPTY_PARAMS, node)
        b = bind_args(node, args, kwargs, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        x = tensor_arg(b["input"], node.op, node)
        if b["dim"] is None:
            if b["keepdim"]:
                raise EvalError(f"keepdim needs a dim at column {node.column}")
            return tr.apply(OPS[plain], (x,), EMPTY_PARAMS, node)
        if type(b["keepdim"]) is not bool:  # PyTorch's TypeError: sum(M, 1, 1) is refused
            raise EvalError(f"{node.op}(): argument 'keepdim' must be bool (True or False), not "
                            f"{_type_name(b['keepdim'])} at column {node.column}")
        dims = b["dim"] if isinstance(b["dim"], (tuple, list)) else (b["dim"],)
        dim = tuple(dim_arg(d, x.ndim, node) for d in dims)  # (issue 13: a tuple of dims too)
        if len({d % max(x.ndim, 1) for d in dim}) != len(dim):
            raise EvalError(f"dim {b['dim']!r} appears more than once at column {node.column}")
        # PyTorch saves dim as a list (the IntArrayRef overload)
        return tr.apply(OPS[with_dim], (x,), {"dim": dim, "keepdim": b["keepdim"]}, node)
    return impl


def _type_name(value) -> str:
    return "Tensor" if isinstance(value, Tensor) else type(value).__name__


def _fn_full_reduce(key: str):
    def impl(tr, node, args, kwargs, source):
        b = bind_args(node, args, kwargs, ("input",))
        x = tensor_arg(b["input"], node.op, node)
        if key != "prod" and math.prod(x.shape) == 0:  # prod([]) is 1, as in PyTorch
            raise EvalError(f"{node.op}() of an empty tensor: PyTorch needs a dim to reduce over "
                            f"at column {node.column}")
        return tr.apply(OPS[key], (x,), EMPTY_PARAMS, node)
    return impl


def _fn_two(key: str):
    def impl(tr, node, args, kwargs, source):
        if len(args) == 2 and not kwargs:  # the commonest call, maximum(x, y): nothing to bind
            x, y = args
        else:
            b = bind_args(node, args, kwargs, ("input", "other"))
            x, y = b["input"], b["other"]
        if type(x) is not Tensor or type(y) is not Tensor:
            raise EvalError(f"{node.op}() needs two tensors at column {node.column}")
        shapes = tr.graph.shape
        if shapes[x.index] != shapes[y.index]:
            broadcast_check(x, y, node, source)
        return tr.apply(OPS[key], (x, y), EMPTY_PARAMS, node)
    return impl


def _fn_clamp(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "min", "max"), {"min": None, "max": None})
    x = tensor_arg(b["input"], "clamp", node)
    lo, hi = b["min"], b["max"]
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):
        return _clamp_tensors(tr, node, x, lo, hi, source)
    for v in (lo, hi):
        if v is not None and not isinstance(v, Number):
            raise EvalError(f"clamp() bounds must be numbers at column {node.column}")
        if v is not None:
            to_float(v, node)  # clamp(x, 2**2000) overflows in PyTorch too
    if lo is None and hi is None:
        raise EvalError(f"clamp() needs min or max at column {node.column}")
    return tr.apply(OPS["clamp"], (x,), {"min": lo, "max": hi}, node)


def _clamp_tensors(tr, node, x: Tensor, lo, hi, source):
    """clamp(x, min, max) with tensor bounds (clamp.Tensor: ClampBackward0, None for a bound not given);
    a tensor and a number together are PyTorch's TypeError."""
    if any(v is not None and not isinstance(v, Tensor) for v in (lo, hi)):
        kinds = ", ".join("Tensor" if isinstance(v, Tensor) else "None" if v is None else type(v).__name__
                          for v in (x, lo, hi))
        raise EvalError(f"clamp() received an invalid combination of arguments - got ({kinds}): the bounds are "
                        f"both tensors or both numbers, at column {node.column}")
    for v in (lo, hi):
        if v is not None:
            broadcast_check(x, v, node, source)
    return tr.apply(OPS["clamp_tensor"], (x, lo, hi), EMPTY_PARAMS, node)


def _fn_bmm(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "mat2"))
    a, m = tensor_arg(b["input"], "bmm", node), tensor_arg(b["mat2"], "bmm", node)
    for t, which in ((a, "batch1"), (m, "batch2")):
        if t.ndim != 3:
            raise EvalError(f"{which} must be a 3D tensor at column {node.column}")
    if m.shape[:2] != (a.shape[0], a.shape[2]):
        raise EvalError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, {a.shape[2]}] "
                        f"but got: [{m.shape[0]}, {m.shape[1]}] (at column {node.column})")
    ka, km = dtype_name(a), dtype_name(m)
    if ka != km:
        raise EvalError(f"expected scalar type {TORCH_DTYPE_NAMES.get(ka, ka)} but found "
                        f"{TORCH_DTYPE_NAMES.get(km, km)} at column {node.column}")
    return tr.apply(OPS["bmm"], (a, m), EMPTY_PARAMS, node)


def _fn_reshape(tr, node, args, kwargs, source):
    if not args:
        raise EvalError(f"reshape() needs a tensor at column {node.column}")
    x = tensor_arg(args[0], "reshape", node)
    shape = list(args[1:])
    if "shape" in kwargs:
        shape = [kwargs["shape"]]
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):  # x.reshape((3, 2)), reshape(M, (6,))
        shape = list(shape[0])
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise EvalError(f"reshape() needs integer sizes, e.g. x.reshape(3, 2), at column {node.column}")
    if len(shape) > MAX_DIMS:
        raise EvalError(f"reshape() to {len(shape)} dimensions: the limit is {MAX_DIMS} at column {node.column}")
    try:
        target = np.empty(x.shape, dtype=np.int8).reshape(shape).shape
    except ValueError:
        raise EvalError(f"shape {format_shape(tuple(shape))} is invalid for a tensor of shape "
                        f"{format_shape(x.shape)} at column {node.column}") from None
    if node.op == "view":
        if layout.view_strides(x.shape, tr.graph.strides_of(x.index), target) is None:
            raise EvalError(f"view size is not compatible with the tensor's strides (use .reshape(...)) "
                            f"at column {node.column}")
        return tr.apply(OPS["view"], (x,), {"shape": target}, node)
    return reshape_tensor(tr, x, target, node)


def _fn_transpose(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "dim0", "dim1"))
    x = tensor_arg(b["input"], "transpose", node)
    d0 = dim_arg(b["dim0"], x.ndim, node)
    d1 = dim_arg(b["dim1"], x.ndim, node)
    return tr.apply(OPS["transpose"], (x,), {"dim0": d0, "dim1": d1}, node)


def _fn_t(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input",))
    x = tensor_arg(b["input"], "t", node)
    if x.ndim > 2:
        raise EvalError(f"t() expects a tensor with at most 2 dimensions at column {node.column}")
    return tr.apply(OPS["t"], (x,), EMPTY_PARAMS, node)


def _fn_softmax(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "dim"))
    x = tensor_arg(b["input"], "softmax", node)
    return tr.apply(OPS["softmax"], (x,), {"dim": dim_arg(b["dim"], x.ndim, node)}, node)


def _fn_matmul(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "other"))
    return binary_op(tr, "@", b["input"], b["other"], node, source)


def _fn_linalg(key: str, ranks: tuple):
    def impl(tr, node, args, kwargs, source):
        b = bind_args(node, args, kwargs, ("input", "other"))
        x, y = tensor_arg(b["input"], node.op, node), tensor_arg(b["other"], node.op, node)
        if (x.ndim, y.data.ndim) != ranks:
            raise EvalError(f"{node.op}() expects tensors of {ranks[0]} and {ranks[1]} dimensions, got shapes "
                            f"{format_shape(x.shape)} and {format_shape(y.shape)} at column {node.column}")
        return matmul_operator(tr, x, y, node, source)
    return impl


def _fn_unsqueeze(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "dim"))
    x = tensor_arg(b["input"], "unsqueeze", node)
    d = int_arg(b["dim"], "dim", node)
    n = x.ndim + 1
    if n > MAX_DIMS:
        raise EvalError(f"unsqueeze() would make a tensor of {n} dimensions, more than the limit of {MAX_DIMS} "
                        f"at column {node.column}")
    if not -n <= d < n:
        raise EvalError(f"dim {d} is out of range for unsqueeze at column {node.column}")
    return tr.apply(OPS["unsqueeze"], (x,), {"dim": d}, node)  # saved as given (-1 stays -1)


def _fn_flatten(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input",))
    x = tensor_arg(b["input"], "flatten", node)
    if x.ndim == 1:
        return x  # flatten of a vector is the vector itself
    return _fn_reshape(tr, node, [x, -1], {}, source)


def _fn_contiguous(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input",))
    x = tensor_arg(b["input"], "contiguous", node)
    if tr.graph.is_contiguous(x.index):
        return x  # already contiguous: the same tensor
    return tr.apply(OPS["clone"], (x,), EMPTY_PARAMS, node)


def _fn_norm(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input",))
    return tr.apply(OPS["norm"], (tensor_arg(b["input"], "norm", node),), EMPTY_PARAMS, node)


def _fn_reciprocal(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input",))
    x = b["input"]
    if not isinstance(x, Tensor):
        return fold_numbers("/", 1, x, node)
    return tr.apply(OPS["reciprocal"], (x,), EMPTY_PARAMS, node)


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
    "bmm": _fn_bmm,
    "unsqueeze": _fn_unsqueeze,
    "flatten": _fn_flatten,
    "contiguous": _fn_contiguous,
})


def _fn_where(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("condition", "input", "other"))
    cond, x, y = b["condition"], b["input"], b["other"]
    if not isinstance(cond, Tensor):
        raise EvalError(f"where() needs a boolean tensor as its condition, e.g. torch.where(x > 0, x, 0.), "
                        f"at column {node.column}")
    mask = np.asarray(cond.data)
    if mask.dtype != np.bool_:
        kind = dtype_name(cond)
        raise EvalError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                        f"{TORCH_DTYPE_NAMES.get(kind, kind)} at column {node.column} (compare it: x > 0)")
    for v in (x, y):
        if not isinstance(v, Tensor) and type(v) not in NUMBER_TYPES:
            raise EvalError(f"where() takes tensors or numbers, not {describe_value(v)}, at column {node.column}")
    shapes = [cond.shape] + [v.shape for v in (x, y) if isinstance(v, Tensor)]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise EvalError(f"where(): shapes {', '.join(format_shape(s) for s in shapes)} cannot be broadcast "
                        f"together at column {node.column}") from None
    return tr.apply(OPS["where"], (x, y), {"condition": mask}, node)


def _tensor_list(value, fname: str, node) -> list:
    if type(value) not in (list, tuple):
        raise EvalError(f"{fname}() needs a list of tensors, e.g. torch.{fname}([a, b]), at column {node.column}")
    if not value:
        raise EvalError(f"torch.{fname}(): expected a non-empty list of Tensors at column {node.column}")
    for k, t in enumerate(value):
        if not isinstance(t, Tensor):
            raise EvalError(f"{fname}(): expected Tensor as element {k} in argument 0, but got {describe_value(t)} "
                            f"at column {node.column}")
    return list(value)


def _join_dim(value, ndim: int, node) -> int:
    dim = int_arg(value, "dim", node)
    if not -ndim <= dim < ndim:
        raise EvalError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got "
                        f"{dim}) at column {node.column}")
    return dim


def _fn_cat(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("tensors", "dim"), {"dim": 0})
    ts = _tensor_list(b["tensors"], "cat", node)
    first = ts[0].shape
    for k, t in enumerate(ts):
        if t.ndim == 0:
            raise EvalError(f"zero-dimensional tensor (at position {k}) cannot be concatenated at column "
                            f"{node.column}")
        if t.ndim != len(first):
            raise EvalError(f"Tensors must have same number of dimensions: got {len(first)} and {t.ndim} "
                            f"at column {node.column}")
    dim = _join_dim(b["dim"], len(first), node)
    axis = dim % len(first)
    for k, t in enumerate(ts):
        for d, (n, m) in enumerate(zip(first, t.shape)):
            if d != axis and n != m:
                raise EvalError(f"Sizes of tensors must match except in dimension {axis}. Expected size {n} but "
                                f"got size {m} for tensor number {k} in the list (at column {node.column})")
    return tr.apply(OPS["cat"], ts, {"dim": dim, "axis": axis, "sizes": tuple(t.shape[axis] for t in ts)},
                    node)


def _fn_stack(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("tensors", "dim"), {"dim": 0})
    ts = _tensor_list(b["tensors"], "stack", node)
    for k, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise EvalError(f"stack expects each tensor to be equal size, but got {list(ts[0].shape)} at entry 0 "
                            f"and {list(t.shape)} at entry {k} (at column {node.column})")
    n = ts[0].ndim + 1
    if n > MAX_DIMS:
        raise EvalError(f"stack() would make a tensor of {n} dimensions, more than the limit of {MAX_DIMS} "
                        f"at column {node.column}")
    dim = _join_dim(b["dim"], n, node)
    return tr.apply(OPS["stack"], ts, {"dim": dim, "axis": dim % n, "count": len(ts)}, node)


def _fn_tensor(tr, node, args, kwargs, source):
    from .literals import LiteralError, tensor_literal

    b = bind_args(node, args, kwargs, ("data", "requires_grad"), {"requires_grad": False})
    if b["requires_grad"] is not False:
        raise EvalError(f"torch.tensor(..., requires_grad=True) inside the expression is not supported at column "
                        f"{node.column}: give the input a name and a value with --at")
    try:
        value, dtype = tensor_literal(b["data"])
    except LiteralError as exc:
        raise EvalError(f"torch.tensor(): {exc} at column {node.column}") from None
    # floats in PyTorch's default dtype, float32, also in a float64 run (x * c promotes it there,
    # and M @ c refuses it, as PyTorch does)
    return tr.constant_tensor(value, node)


FUNCTIONS.update({
    "where": _fn_where,
    "cat": _fn_cat,
    "concat": _fn_cat,
    "concatenate": _fn_cat,
    "stack": _fn_stack,
    "tensor": _fn_tensor,
})


# --- torch.nn.functional, losses, more tensor functions (issue 13) -------------------------------
# Each builds what PyTorch 2.13.0 builds for the call (recorded with torch: composites such as
# l1_loss, cross_entropy, normalize and linear are the nodes PyTorch's own Python/C++ makes).

def _number_arg(value, what: str, node, default=None):
    """A Python number argument (int or float, kept as given: PyTorch saves it so)."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, Number):
        raise EvalError(f"{node.op}(): {what} must be a number at column {node.column}")
    to_float(value, node)
    return value


def _given_dim(value, ndim: int, node):
    """A dim checked against the rank but kept as given (PyTorch saves -1 as -1)."""
    d = int_arg(value, "dim", node)
    n = max(ndim, 1)
    if not -n <= d < n:
        raise EvalError(f"dim {d} is out of range for a tensor of {ndim} dimensions at column {node.column}")
    return d


def _dims_arg(value, ndim: int, node) -> tuple:
    """An int or a tuple/list of ints as a tuple of dims, each checked, none repeated."""
    dims = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    out = tuple(_given_dim(d, ndim, node) for d in dims)
    if len({d % max(ndim, 1) for d in out}) != len(out):
        raise EvalError(f"dim {value!r} appears more than once at column {node.column}")
    return out


def _sizes_arg(args, what: str, node) -> tuple:
    """Sizes given as x.f(2, 3) or x.f((2, 3)) / x.f([2, 3])."""
    sizes = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
        raise EvalError(f"{node.op}() needs integer {what}, e.g. {node.op}(2, 3), at column {node.column}")
    if len(sizes) > MAX_DIMS:
        raise EvalError(f"{node.op}() to {len(sizes)} dimensions: the limit is {MAX_DIMS} at column {node.column}")
    return sizes


def _bool_arg(value, what: str, node) -> bool:
    if not isinstance(value, bool):
        raise EvalError(f"{node.op}(): {what} must be True or False at column {node.column}")
    return value


def _reduction_arg(value, node) -> int:
    from .ops import REDUCTION

    if value not in REDUCTION or not isinstance(value, str):
        raise EvalError(f"{node.op}(): reduction must be 'none', 'mean' or 'sum', not {value!r} at column {node.column}")
    return REDUCTION[value]


def _constant_arg(value, what: str, node):
    """A tensor argument PyTorch does not differentiate (a loss's weight): its values, or None."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        raise EvalError(f"{node.op}(): {what} must be a tensor at column {node.column}")
    if value.requires_grad:
        raise EvalError(f"{node.op}(): the derivative for '{what}' is not implemented in PyTorch; "
                        f"give {what} with --no-grad at column {node.column}")
    return value.data


def _activation(key: str, positional: tuple, defaults: dict, checks: dict):
    def impl(tr, node, args, kwargs, source):
        b = bind_args(node, args, kwargs, ("input",) + positional, defaults)
        x = tensor_arg(b["input"], node.op, node)
        params = {name: check(b[name], name, node) for name, check in checks.items()}
        params.pop("inplace", None)
        _fn_inplace_flag(b.get("inplace"), "inplace", node)
        return tr.apply(OPS[key], (x,), params, node)
    return impl


def _approximate_arg(value, what, node):
    if value not in ("none", "tanh") or not isinstance(value, str):
        raise EvalError(f"gelu(): approximate must be 'none' or 'tanh', not {value!r} at column {node.column}")
    return value


def _fn_inplace_flag(value, what, node):
    if value:
        raise EvalError(f"{node.op}(inplace=True) is not supported (gradviz builds out-of-place graphs) "
                        f"at column {node.column}")
    return value


def _fn_elu(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "alpha", "inplace"), {"alpha": 1.0, "inplace": False})
    x = tensor_arg(b["input"], node.op, node)
    _fn_inplace_flag(b["inplace"], "inplace", node)
    return tr.apply(OPS["elu"], (x,), {"alpha": _number_arg(b["alpha"], "alpha", node), "scale": 1,
                                       "input_scale": 1}, node)


def _fn_softmax_like(key: str):
    def impl(tr, node, args, kwargs, source):
        b = bind_args(node, args, kwargs, ("input", "dim"), {"dim": None})
        x = tensor_arg(b["input"], node.op, node)
        dim = b["dim"]
        if dim is None:  # PyTorch's implicit dim (_get_softmax_dim), with a warning
            dim = 0 if x.ndim in (0, 1, 3) else 1
        return tr.apply(OPS[key], (x,), {"dim": _given_dim(dim, x.ndim, node)}, node)
    return impl


def _fn_logsumexp(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "dim", "keepdim"), {"keepdim": False})
    x = tensor_arg(b["input"], node.op, node)
    return tr.apply(OPS["logsumexp"], (x,), {"dim": _dims_arg(b["dim"], x.ndim, node),
                                             "keepdim": _bool_arg(b["keepdim"], "keepdim", node)}, node)


def _loss_operands(node, b, source):
    x = tensor_arg(b["input"], node.op, node)
    t = tensor_arg(b["target"], node.op, node)
    broadcast_check(x, t, node, source)
    return x, t


def _broadcast_tensors(tr, node, x: Tensor, t: Tensor) -> tuple:
    """torch.broadcast_tensors(input, target), as these losses call it when the sizes differ:
    an ExpandBackward0 for each operand not of the common shape."""
    if x.shape == t.shape:
        return x, t
    shape = tuple(np.broadcast_shapes(x.shape, t.shape))
    return tuple(o if o.shape == shape else tr.apply(OPS["expand"], (o,), {"size": shape}, node) for o in (x, t))


def _loss_sig(node, args, kwargs, positional: tuple, defaults: dict) -> dict:
    """A loss's arguments as PyTorch's signature has them; the deprecated size_average/reduce and a
    weight gradviz does not model are refused."""
    defaults = dict({"size_average": None, "reduce": None, "reduction": "mean", "weight": None}, **defaults)
    b = bind_args(node, args, kwargs, positional, defaults)
    for name in ("size_average", "reduce"):
        if b.get(name) is not None:
            raise EvalError(f"{node.op}(): the deprecated {name}= is not supported: use reduction='mean', "
                            f"'sum' or 'none' at column {node.column}")
    return b


_POINTWISE_LOSSES = {  # PyTorch's signatures, and the extra parameter each row saves
    "mse_loss": (("input", "target", "size_average", "reduce", "reduction", "weight"), None),
    "l1_loss": (("input", "target", "size_average", "reduce", "reduction", "weight"), None),
    "smooth_l1_loss": (("input", "target", "size_average", "reduce", "reduction", "beta"), ("beta", 1.0)),
    "huber_loss": (("input", "target", "reduction", "delta", "weight"), ("delta", 1.0)),
}


def _fn_pointwise_loss(key: str):
    """mse_loss, l1_loss, smooth_l1_loss (beta), huber_loss (delta)."""
    positional, extra = _POINTWISE_LOSSES[key]

    def impl(tr, node, args, kwargs, source):
        b = _loss_sig(node, args, kwargs, positional, dict([extra]) if extra else {})
        x, t = _broadcast_tensors(tr, node, *_loss_operands(node, b, source))
        if b.get("weight") is not None:
            raise EvalError(f"gradviz does not support {key} with weight yet at column {node.column}")
        reduction = _reduction_arg(b["reduction"], node)
        if key == "l1_loss":
            return _l1_loss(tr, node, x, t, reduction)
        params = {"reduction": reduction}
        if extra:
            name = extra[0]
            v = params[name] = _number_arg(b[name], name, node)
            if v < 0 or (name == "delta" and v == 0):
                raise EvalError(f"{node.op}() does not support {'non-positive' if name == 'delta' else 'negative'} "
                                f"values for {name} at column {node.column}")
            if key == "smooth_l1_loss" and v == 0:  # PyTorch computes l1_loss then
                return _l1_loss(tr, node, x, t, reduction)
        return tr.apply(OPS[key], (x, t), params, node)
    return impl


def _l1_loss(tr, node, x, t, reduction: int):
    diff = tr.apply(OPS["sub"], (x, t), ALPHA_PARAMS, node)
    loss = tr.apply(OPS["abs"], (diff,), EMPTY_PARAMS, node)
    if reduction == 0:
        return loss
    return tr.apply(OPS["mean" if reduction == 1 else "sum"], (loss,), EMPTY_PARAMS, node)


def _fn_bce(tr, node, args, kwargs, source):
    b = _loss_sig(node, args, kwargs, ("input", "target", "weight", "size_average", "reduce", "reduction"), {})
    x, t = _loss_operands(node, b, source)
    if x.shape != t.shape:
        raise EvalError(f"binary_cross_entropy(): target size {format_shape(t.shape)} must be the same as "
                        f"input size {format_shape(x.shape)} at column {node.column}")
    data = np.asarray(x.data)
    if np.any((data < 0) | (data > 1)):
        raise EvalError(f"binary_cross_entropy(): all elements of input should be between 0 and 1 "
                        f"at column {node.column}")
    params = {"reduction": _reduction_arg(b["reduction"], node), "weight": _constant_arg(b["weight"], "weight", node)}
    return tr.apply(OPS["binary_cross_entropy"], (x, t), params, node)


def _fn_bce_logits(tr, node, args, kwargs, source):
    b = _loss_sig(node, args, kwargs, ("input", "target", "weight", "size_average", "reduce", "reduction",
                                        "pos_weight"), {"pos_weight": None})
    x, t = _loss_operands(node, b, source)
    if x.shape != t.shape:
        raise EvalError(f"binary_cross_entropy_with_logits(): target size {format_shape(t.shape)} must be the same "
                        f"as input size {format_shape(x.shape)} at column {node.column}")
    params = {"reduction": _reduction_arg(b["reduction"], node), "weight": _constant_arg(b["weight"], "weight", node),
              "pos_weight": _constant_arg(b["pos_weight"], "pos_weight", node)}
    return tr.apply(OPS["binary_cross_entropy_with_logits"], (x, t), params, node)


_NLL_SIGNATURE = ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction")
_NLL_DEFAULTS = {"ignore_index": -100}


def _class_targets(x: Tensor, target: Tensor, weight, ignore_index: int, node):
    """Check nll_loss's operands as PyTorch does: (C,) with a 0-d target or (N, C) with (N,)."""
    if x.ndim not in (1, 2):
        raise EvalError(f"{node.op}(): gradviz supports input of 1 or 2 dimensions (C) or (N, C), got "
                        f"{format_shape(x.shape)} at column {node.column}")
    data = np.asarray(target.data)
    if data.dtype.kind not in "iu":
        raise EvalError(f"{node.op}(): expected scalar type Long but found Float: class targets are integers, "
                        f"as --at \"t=tensor([0, 2])\" gives them, at column {node.column}")
    if data.shape != x.shape[:-1]:
        raise EvalError(f"{node.op}(): expected target of shape {format_shape(x.shape[:-1])}, got "
                        f"{format_shape(data.shape)} at column {node.column}")
    classes = x.shape[-1]
    for c in data.reshape(-1).tolist():
        if c != ignore_index and not 0 <= c < classes:
            raise EvalError(f"{node.op}(): Target {c} is out of bounds (classes 0 to {classes - 1}) at column {node.column}")
    if weight is not None and np.shape(weight) != (classes,):
        raise EvalError(f"{node.op}(): weight should have one entry per class ({classes}) at column {node.column}")


def _nll_loss(tr, node, x, b):
    target = tensor_arg(b["target"], node.op, node)
    weight = _constant_arg(b["weight"], "weight", node)
    ignore = int_arg(b["ignore_index"], "ignore_index", node)
    _class_targets(x, target, weight, ignore, node)
    params = {"target": np.asarray(target.data), "weight": weight, "reduction": _reduction_arg(b["reduction"], node),
              "ignore_index": ignore}
    return tr.apply(OPS["nll_loss"], (x,), params, node)


def _fn_nll_loss(tr, node, args, kwargs, source):
    b = _loss_sig(node, args, kwargs, _NLL_SIGNATURE, _NLL_DEFAULTS)
    return _nll_loss(tr, node, tensor_arg(b["input"], node.op, node), b)


def _fn_cross_entropy(tr, node, args, kwargs, source):
    b = _loss_sig(node, args, kwargs, _NLL_SIGNATURE + ("label_smoothing",), dict(_NLL_DEFAULTS, label_smoothing=0.0))
    x = tensor_arg(b["input"], node.op, node)
    target = tensor_arg(b["target"], node.op, node)
    smoothing = _number_arg(b["label_smoothing"], "label_smoothing", node)
    if smoothing > 1:  # (a negative one is no smoothing, as PyTorch's smoothing > 0 test)
        raise EvalError(f"label_smoothing must be between 0.0 and 1.0. Got: {float(smoothing)} at column {node.column}")
    if x.ndim not in (1, 2):
        raise EvalError(f"{node.op}(): gradviz supports input of 1 or 2 dimensions (C) or (N, C), got "
                        f"{format_shape(x.shape)} at column {node.column}")
    log_p = tr.apply(OPS["log_softmax"], (x,), {"dim": 1 if x.ndim == 2 else 0}, node)
    if np.asarray(target.data).dtype.kind in "iu":
        if smoothing > 0:
            return _smoothed_class_loss(tr, node, log_p, b, smoothing)
        return _nll_loss(tr, node, log_p, b)
    if target.shape != x.shape:  # probabilities: one per class
        raise EvalError(f"{node.op}(): class-probability targets must have the input's shape {format_shape(x.shape)}, "
                        f"got {format_shape(target.shape)} (class indices are integers: tensor([0, 2])) "
                        f"at column {node.column}")
    reduction = _reduction_arg(b["reduction"], node)
    weight = _constant_arg(b["weight"], "weight", node)
    if b["ignore_index"] != -100:
        raise EvalError(f"{node.op}(): ignore_index is only for class-index targets at column {node.column}")
    if smoothing > 0:  # target * (1 - label_smoothing) + label_smoothing / n_classes (C++ Scalars)
        target = tr.apply(OPS["mul_scalar"], (target,), {"other": 1 - smoothing}, node)
        target = tr.apply(OPS["add_scalar"], (target,), {"other": smoothing / x.shape[-1], "alpha": 1}, node)
    prod = tr.apply(OPS["mul"], (log_p, target), EMPTY_PARAMS, node)
    if weight is not None:
        prod = tr.apply(OPS["mul"], (prod, np.reshape(weight, (1, -1)) if x.ndim == 2 else weight), EMPTY_PARAMS, node)
    if reduction == 0:
        summed = tr.apply(OPS["sum_dim"], (prod,), {"dim": (x.ndim - 1,), "keepdim": False}, node)
        return tr.apply(OPS["neg"], (summed,), EMPTY_PARAMS, node)
    neg = tr.apply(OPS["neg"], (tr.apply(OPS["sum"], (prod,), EMPTY_PARAMS, node),), EMPTY_PARAMS, node)
    if reduction == 2:
        return neg
    return tr.apply(OPS["div_scalar"], (neg,), {"other": x.shape[0] if x.ndim == 2 else 1}, node)


def _smoothed_class_loss(tr, node, log_p: Tensor, b: dict, smoothing):
    """cross_entropy_loss_label_smoothing: (1 - ε)·nll_loss + ε/C · the smoothing loss, -Σ log_p over the
    classes (weighted; 0 for ignored samples), reduced as nll_loss: the mean over the counted samples
    (their total weight with weights)."""
    nll = _nll_loss(tr, node, log_p, b)
    target, weight = np.asarray(b["target"].data), _constant_arg(b["weight"], "weight", node)
    reduction, classes = _reduction_arg(b["reduction"], node), log_p.shape[-1]
    ignored = np.equal(target, b["ignore_index"])
    terms = log_p if weight is None else tr.apply(
        OPS["mul"], (log_p, np.reshape(weight, (1, -1)) if log_p.ndim == 2 else weight), EMPTY_PARAMS, node)
    summed = tr.apply(OPS["sum_dim"], (terms,), {"dim": (log_p.ndim - 1,), "keepdim": False}, node)
    smooth = tr.apply(OPS["masked_fill"], (tr.apply(OPS["neg"], (summed,), EMPTY_PARAMS, node),),
                      {"mask": ignored, "value": 0.0}, node)
    if reduction != 0:
        smooth = tr.apply(OPS["sum"], (smooth,), EMPTY_PARAMS, node)
    if reduction == 1:
        counted = target[~ignored] if target.ndim else target[None][~ignored[None]]
        total = np.asarray(np.sum(weight[counted]), dtype=weight.dtype) if weight is not None else \
            np.asarray(counted.size, dtype=np.int64)
        smooth = tr.apply(OPS["div"], (smooth, total), EMPTY_PARAMS, node)
    first = tr.apply(OPS["mul_scalar"], (nll,), {"other": 1 - smoothing}, node)
    second = tr.apply(OPS["mul_scalar"], (smooth,), {"other": smoothing / classes}, node)
    return tr.apply(OPS["add"], (first, second), ALPHA_PARAMS, node)


def _fn_linear(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "weight", "bias"), {"bias": None})
    x, w = tensor_arg(b["input"], "linear", node), tensor_arg(b["weight"], "linear", node)
    bias = b["bias"]
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise EvalError(f"linear(): input {format_shape(x.shape)} and weight {format_shape(w.shape)} do not fit "
                        f"(weight is (out_features, in_features)) at column {node.column}")
    if bias is not None:
        bias = tensor_arg(bias, "linear", node)
        if bias.ndim > 1 or (bias.ndim == 1 and bias.shape[0] not in (1, w.shape[0])):
            raise EvalError(f"linear(): bias of shape {format_shape(bias.shape)} does not fit {w.shape[0]} outputs "
                            f"at column {node.column}")
    if bias is None:  # input.matmul(weight.t()), whatever the input's rank
        return matmul_operator(tr, x, tr.apply(OPS["t"], (w,), EMPTY_PARAMS, node), node, source)
    # with a bias PyTorch flattens any input but a matrix to (-1, in_features), then transposes the weight
    flat = x if x.ndim == 2 else tr.apply(OPS["view"], (x,), {"shape": (-1, x.shape[-1])}, node)
    wt = tr.apply(OPS["t"], (w,), EMPTY_PARAMS, node)
    out = tr.apply(OPS["addmm"], (bias, flat, wt), {"beta": 1, "alpha": 1}, node)
    if x.ndim == 2:
        return out
    return tr.apply(OPS["view"], (out,), {"shape": x.shape[:-1] + (w.shape[0],)}, node)


def _fn_normalize(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "p", "dim", "eps"), {"p": 2.0, "dim": 1, "eps": 1e-12})
    x = tensor_arg(b["input"], "normalize", node)
    p = _number_arg(b["p"], "p", node)  # any p, as linalg.vector_norm takes it (0: the count of nonzeros)
    dim = _given_dim(b["dim"], x.ndim, node)
    norm = tr.apply(OPS["norm_dim"], (x,), {"ord": float(p), "dim": (dim,), "keepdim": True}, node)
    clamped = tr.apply(OPS["clamp_min"], (norm,), {"min": _number_arg(b["eps"], "eps", node)}, node)
    expanded = tr.apply(OPS["expand"], (clamped,), {"size": x.shape}, node)
    return tr.apply(OPS["div"], (x, expanded), EMPTY_PARAMS, node)


def _fn_dropout(tr, node, args, kwargs, source):
    third = "train" if node.op == "torch.dropout" else "training"
    b = bind_args(node, args, kwargs, ("input", "p", third, "inplace"), {"p": 0.5, third: True, "inplace": False})
    x = tensor_arg(b["input"], "dropout", node)
    p = _number_arg(b["p"], "p", node)
    _fn_inplace_flag(b["inplace"], "inplace", node)
    if not 0 <= p <= 1:
        raise EvalError(f"dropout probability has to be between 0 and 1, but got {p!r} at column {node.column}")
    if p == 0 or not _bool_arg(b[third], third, node):
        return x  # a no-op, as in eval mode: PyTorch returns the input itself
    raise EvalError(f"dropout with p={p!r} in training mode is random: gradviz shows it with p=0 or "
                    f"{third}=False at column {node.column}")


def _fn_squeeze(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "dim"), {"dim": None})
    x = tensor_arg(b["input"], "squeeze", node)
    if b["dim"] is None:
        return tr.apply(OPS["squeeze_all"], (x,), EMPTY_PARAMS, node)
    if isinstance(b["dim"], (tuple, list)):
        return tr.apply(OPS["squeeze_dims"], (x,), {"dim": _dims_arg(b["dim"], x.ndim, node)}, node)
    return tr.apply(OPS["squeeze_dim"], (x,), {"dim": _given_dim(b["dim"], x.ndim, node)}, node)


def _fn_permute(tr, node, args, kwargs, source):
    if not args:
        raise EvalError(f"permute() needs a tensor at column {node.column}")
    x = tensor_arg(args[0], "permute", node)
    rest = list(args[1:]) + ([kwargs.pop("dims")] if "dims" in kwargs else [])
    if kwargs:
        raise EvalError(f"permute() got an unexpected keyword argument {next(iter(kwargs))!r} at column {node.column}")
    dims = tuple(_given_dim(d, x.ndim, node) for d in _sizes_arg(rest, "dims", node)) if x.ndim or rest else ()
    if len(dims) != x.ndim or sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise EvalError(f"permute(): the number of dims don't match or repeat: {dims} for a tensor of "
                        f"{x.ndim} dimensions at column {node.column}")
    return tr.apply(OPS["permute"], (x,), {"dims": dims}, node)


def _fn_expand(tr, node, args, kwargs, source):
    x = tensor_arg(args[0] if args else None, "expand", node)
    sizes = _sizes_arg(list(args[1:]) + ([kwargs["size"]] if "size" in kwargs else []), "sizes", node)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise EvalError(f"expand(): the number of sizes ({len(sizes)}) must be at least the tensor's "
                        f"dimensions ({x.ndim}) at column {node.column}")
    target = []
    for k, s in enumerate(sizes):
        own = x.shape[k - lead] if k >= lead else None
        if s == -1 and own is not None:
            s = own
        if s < 0 or (own is not None and own != 1 and own != s):
            raise EvalError(f"expand(): size {sizes[k]} does not fit the tensor's size {own} at dim {k} "
                            f"at column {node.column}")
        target.append(s)
    return tr.apply(OPS["expand"], (x,), {"size": tuple(target)}, node)


def _fn_repeat(tr, node, args, kwargs, source):
    x = tensor_arg(args[0] if args else None, "repeat", node)
    repeats = _sizes_arg(list(args[1:]) + ([kwargs["repeats"]] if "repeats" in kwargs else []), "repeats", node)
    if len(repeats) < x.ndim or any(r < 0 for r in repeats):
        raise EvalError(f"repeat(): give at least one non-negative count per dimension ({x.ndim}) "
                        f"at column {node.column}")
    return tr.apply(OPS["repeat"], (x,), {"repeats": repeats}, node)


def _fn_outer(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "vec2"))
    x, y = tensor_arg(b["input"], "outer", node), tensor_arg(b["vec2"], "outer", node)
    if x.ndim != 1 or y.ndim != 1:
        raise EvalError(f"outer() needs two vectors, got shapes {format_shape(x.shape)} and "
                        f"{format_shape(y.shape)} at column {node.column}")
    column = tr.apply(OPS["view"], (x,), {"shape": (x.shape[0], 1)}, node)  # x.reshape(-1, 1) * y
    return tr.apply(OPS["mul"], (column, y), EMPTY_PARAMS, node)


def _fn_var_std(key: str):
    def impl(tr, node, args, kwargs, source):
        b = bind_args(node, args, kwargs, ("input", "dim", "unbiased", "keepdim", "correction"),
                 {"dim": None, "unbiased": None, "keepdim": False, "correction": None})
        x = tensor_arg(b["input"], node.op, node)
        if isinstance(b["dim"], bool):  # x.var(False): the unbiased overload
            b["unbiased"], b["dim"] = b["dim"], None
        if b["unbiased"] is not None and b["correction"] is not None:
            raise EvalError(f"{node.op}(): give unbiased or correction, not both, at column {node.column}")
        dim = None if b["dim"] is None else _dims_arg(b["dim"], x.ndim, node)
        correction = b["correction"]
        if correction is not None:
            correction = _number_arg(correction, "correction", node)
        elif b["unbiased"] is not None:
            correction = 1 if _bool_arg(b["unbiased"], "unbiased", node) else 0
        elif dim is not None or "dim" in kwargs:  # the dim overload's unbiased=True, saved as 1
            correction = 1
        params = {"dim": dim, "correction": correction, "keepdim": _bool_arg(b["keepdim"], "keepdim", node)}
        return tr.apply(OPS[key], (x,), params, node)
    return impl


def _fn_amax(key: str):
    def impl(tr, node, args, kwargs, source):
        b = bind_args(node, args, kwargs, ("input", "dim", "keepdim"), {"dim": (), "keepdim": False})
        x = tensor_arg(b["input"], node.op, node)
        dim = () if b["dim"] in ((), []) else _dims_arg(b["dim"], x.ndim, node)
        if x.data.size == 0:
            raise EvalError(f"{node.op}() of an empty tensor at column {node.column}")
        return tr.apply(OPS[key], (x,), {"dim": dim, "keepdim": _bool_arg(b["keepdim"], "keepdim", node)}, node)
    return impl


def _fn_max_min(which: str):
    full = _fn_full_reduce(which)
    two = _fn_two("maximum" if which == "max" else "minimum")

    def impl(tr, node, args, kwargs, source):
        if len(args) + len(kwargs) <= 1:
            return full(tr, node, args, kwargs, source)
        second = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("dim"))
        if isinstance(second, Tensor):  # torch.max(a, b) is maximum(a, b)
            return two(tr, node, args, kwargs, source)
        b = bind_args(node, args, kwargs, ("input", "dim", "keepdim"), {"keepdim": False})
        x = tensor_arg(b["input"], node.op, node)
        dim = _given_dim(b["dim"], x.ndim, node)
        if x.ndim and x.shape[dim] == 0:
            raise EvalError(f"{node.op}(): dim {dim} of the tensor is empty at column {node.column}")
        params = {"dim": dim, "keepdim": _bool_arg(b["keepdim"], "keepdim", node), "which": which}
        values = tr.apply(OPS[which + "_dim"], (x,), params, node)
        indices = tr.graph.context(values.index)["indices"] if values.requires_grad else None
        return ValuesIndices(values, indices, node.op)
    return impl


def _fn_clamp_bound(key: str):
    def impl(tr, node, args, kwargs, source):
        name = key.split("_")[1]
        b = bind_args(node, args, kwargs, ("input", name))
        x = tensor_arg(b["input"], node.op, node)
        if isinstance(b[name], Tensor):  # ClampMinBackward1 / ClampMaxBackward1: the bound gets a gradient too
            broadcast_check(x, b[name], node, source)
            return tr.apply(OPS[key + "_tensor"], (x, b[name]), EMPTY_PARAMS, node)
        return tr.apply(OPS[key], (x,), {name: _number_arg(b[name], name, node)}, node)
    return impl


def _fn_round(tr, node, args, kwargs, source):
    b = bind_args(node, args, kwargs, ("input", "decimals"), {"decimals": 0})
    x = tensor_arg(b["input"], "round", node)
    decimals = int_arg(b["decimals"], "decimals", node)
    if "decimals" in kwargs:  # round(x, decimals=d) is the second overload, even for d = 0
        return tr.apply(OPS["round_decimals"], (x,), {"decimals": decimals}, node)
    if args[1:]:
        raise EvalError(f"round() takes decimals as a keyword (round(x, decimals=1)) at column {node.column}")
    return tr.apply(OPS["round"], (x,), EMPTY_PARAMS, node)


FUNCTIONS.update({
    "leaky_relu": _activation("leaky_relu", ("negative_slope", "inplace"), {"negative_slope": 0.01, "inplace": False},
                              {"negative_slope": _number_arg, "inplace": _fn_inplace_flag}),
    "elu": _fn_elu,
    "gelu": _activation("gelu", ("approximate",), {"approximate": "none"}, {"approximate": _approximate_arg}),
    "silu": _activation("silu", ("inplace",), {"inplace": False}, {}),
    "softplus": _activation("softplus", ("beta", "threshold"), {"beta": 1, "threshold": 20},
                            {"beta": _number_arg, "threshold": _number_arg}),
    "softmax": _fn_softmax_like("softmax"),
    "log_softmax": _fn_softmax_like("log_softmax"),
    "logsumexp": _fn_logsumexp,
    "linear": _fn_linear,
    "mse_loss": _fn_pointwise_loss("mse_loss"),
    "l1_loss": _fn_pointwise_loss("l1_loss"),
    "smooth_l1_loss": _fn_pointwise_loss("smooth_l1_loss"),
    "huber_loss": _fn_pointwise_loss("huber_loss"),
    "binary_cross_entropy": _fn_bce,
    "binary_cross_entropy_with_logits": _fn_bce_logits,
    "nll_loss": _fn_nll_loss,
    "cross_entropy": _fn_cross_entropy,
    "normalize": _fn_normalize,
    "dropout": _fn_dropout,
    "squeeze": _fn_squeeze,
    "permute": _fn_permute,
    "expand": _fn_expand,
    "repeat": _fn_repeat,
    "outer": _fn_outer,
    "var": _fn_var_std("var"),
    "std": _fn_var_std("std"),
    "amax": _fn_amax("amax"),
    "amin": _fn_amax("amin"),
    "max": _fn_max_min("max"),
    "min": _fn_max_min("min"),
    "atan2": _fn_two("atan2"),
    "floor": _fn_unary(OPS["floor"]),
    "ceil": _fn_unary(OPS["ceil"]),
    "round": _fn_round,
    "sign": _fn_unary(OPS["sign"]),
    "clamp_min": _fn_clamp_bound("clamp_min"),
    "clamp_max": _fn_clamp_bound("clamp_max"),
})
