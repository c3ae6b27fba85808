"""THE op table: one row per primitive — forward, gradient rule, PyTorch name.

Each :class:`Op` row says
  * ``torch_name``: the backward function's class name PyTorch gives the op
    (``CamelCase(op) + "Backward" + overload index`` from PyTorch's derivatives table);
  * ``inputs``: the tensor operands, in the order of ``next_functions``;
  * ``params``: non-tensor arguments (Python numbers, dims);
  * ``forward``: the value, computed with numpy;
  * ``saves``: the names PyTorch saves on the node (``_saved_<name>``), taken from the
    inputs, the params, ``result`` or ``derived`` values;
  * ``vjp``: the gradient rule ``vjp(F, grad, saved) -> one grad per input``;
  * ``rules``: the same rule for humans, one formula per input, written with the
    saved names (``"grad·other"``), shown by ``--steps`` with the numbers filled in.

Gradient rules are written against an ops namespace ``F`` (:class:`NumpyOps` below
for numbers) rather than numpy directly, so a second-order pass can hand them a
namespace that records a graph instead (the autodidax idea: the same rows,
interpreted differently). Rules follow PyTorch's ``derivatives.yaml`` formulas so
that edge values (sqrt'(0) = inf, relu'(0) = 0, ...) come out as PyTorch's.

Adding an op means adding one row here (and, if it is called by a new name, its
entry in ``gradviz.functions.FUNCTIONS``).
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass, field
from typing import Callable


class _LazyNumpy:
    """This module's ``np``: numpy itself once anything has imported it, else deferred functions.

    The table names numpy functions as its rows' forward rules (``np.sin``), but arithmetic on
    0-d values runs the rows' ``on_floats`` forwards on Python floats without ever calling them,
    and numpy takes ~70 ms to import: a row built before numpy is loaded holds a
    :class:`_Deferred` that imports numpy on its first call. Function bodies look ``np`` up
    when they run; after the table is built any lookup imports numpy.
    """

    #: while the table is being built: numpy's functions as :class:`_Deferred` (afterwards any
    #: attribute imports numpy)
    deferring = True

    def __getattr__(self, name):
        numpy = sys.modules.get("numpy")
        if numpy is None:
            if self.deferring:
                return _Deferred(name)
            import numpy
        globals()["np"] = numpy
        if not self.deferring:
            _undefer(numpy)
        value = getattr(numpy, name)
        setattr(self, name, value)  # modules holding this proxy find it directly from now on
        return value


class _Deferred:
    """``numpy.<name>``, imported when first called (or when an attribute of it is read)."""

    __slots__ = ("name", "fn")

    def __init__(self, name: str):
        self.name = name
        self.fn = None

    def _load(self):
        import numpy

        globals()["np"] = numpy
        self.fn = getattr(numpy, self.name)
        _undefer(numpy)
        return self.fn

    def __call__(self, *args, **kwargs):
        return (self.fn or self._load())(*args, **kwargs)

    def __getattr__(self, attr):
        if attr.startswith("__"):  # staticmethod() and friends probe __doc__, __wrapped__...
            raise AttributeError(attr)
        return getattr(self.fn or self._load(), attr)


_undeferred = False


def _undefer(numpy) -> None:
    """numpy is loaded: the table's and :class:`NumpyOps`' deferred functions become numpy's own
    (each call through a :class:`_Deferred` costs one Python call more), once."""
    global _undeferred
    if _undeferred or _LazyNumpy.deferring:
        return
    _undeferred = True
    for row in ROWS:
        if type(row.forward) is _Deferred:
            object.__setattr__(row, "forward", getattr(numpy, row.forward.name))
    for name, value in list(vars(NumpyOps).items()):
        if type(value) is staticmethod and type(value.__func__) is _Deferred:
            setattr(NumpyOps, name, staticmethod(getattr(numpy, value.__func__.name)))


np = _LazyNumpy()

class QuietNumpy:
    """inf and nan are values, as in PyTorch: numpy's floating-point warnings off from the first
    numpy computation (:meth:`on`) until :meth:`restore`; numpy is imported only if ``on`` is."""

    __slots__ = ("_saved",)

    def __init__(self):
        self._saved = None

    def on(self) -> None:
        if self._saved is None:
            self._saved = np.seterr(all="ignore")

    def restore(self) -> None:
        if self._saved is not None:
            np.seterr(**self._saved)
            self._saved = None


LN2 = math.log(2.0)
LN10 = math.log(10.0)


@dataclass(frozen=True)
class Op:
    """One primitive: forward rule, gradient rule and PyTorch's name for its backward node."""

    key: str
    torch_name: str
    inputs: tuple[str, ...]
    forward: Callable
    vjp: Callable
    params: tuple[str, ...] = ()
    saves: tuple[str, ...] = ()
    derived: Callable | None = None  # (args: dict, params: dict) -> extra saved values
    #: saved name -> the input that must require grad for PyTorch to save it
    #: (MulBackward0 saves ``self`` only to compute ``other``'s gradient).
    save_when: dict = field(default_factory=dict)
    doc: str = ""
    #: a one-tensor function callable by name, sin(x), x.sin(), torch.sin(x): in UNARY_FUNCTIONS
    unary_function: bool = field(default=False)
    #: one human formula per input (``"grad·other"``), in the order of ``inputs``
    rules: tuple[str, ...] = ()
    #: params the gradient rule reads that PyTorch does not show as ``_saved_*`` (in the
    #: context, not among the saved values)
    hidden: tuple[str, ...] = ()
    #: the op takes any number of tensors (torch.cat, torch.stack): ``inputs`` names the list,
    #: the rule returns one gradient per tensor
    variadic: bool = False
    #: the forward rule on Python floats through a float ops namespace (:class:`Float32Ops`),
    #: ``on_floats(F, *inputs, **params)``, which the tracer runs on 0-d values (Python floats);
    #: it must give numpy's bits exactly (tests/test_floats.py checks it)
    on_floats: Callable | None = None
    #: the row's formula in SymPy for --symbolic (scalars): ``sympy(sp, *args)`` with ``sp`` the
    #: sympy module and ``args`` the call's arguments as SymPy values (gradviz.symbolic reads it)
    sympy: Callable | None = None
    #: where each saved value comes from, in ``saved_values``' (sorted) order:
    #: (name, source, arg, when) with source "input" (arg: the slot's index), "param" (arg: its
    #: name), "result" or "derived"; ``when`` the index of the slot that must require grad
    #: for PyTorch to save it, or None. Filled in from the row by :func:`_saving_plan`.
    plan: tuple = ()
    #: what the op does with integer (int64, bool) tensors, as PyTorch: "float" (computed in the
    #: default dtype, float32: sin of an int64 tensor), "keep" (an integer result: t * 2, t.max()),
    #: "long" (keep, a bool tensor counted as int64: the sum of a mask); "" is "float" for the
    #: unary functions and "keep" for the rest (filled in when the table is built)
    integers: str = ""
    #: the computation dtypes PyTorch refuses -> its message: "Long" or "Bool" (every tensor operand
    #: integer, no Python float), "mixed" (a floating tensor with an integer one)
    refuses: dict = field(default_factory=dict)


class Refused(ValueError):
    """A forward rule's refusal of its operands, with PyTorch's message (an integer to a negative
    integer power): the tracer reports it as a clear error."""


def _kernel(name: str, dtypes=("Long", "Bool")) -> dict:
    """``"<kernel>" not implemented for 'Long'``: PyTorch's refusal of a computation dtype."""
    return {d: f'"{name}" not implemented for \'{d}\'' for d in dtypes}


def _floats_only(message: str) -> dict:
    """PyTorch's refusal of integer tensors, ``{dtype}`` the dtype's name (Long, Bool)."""
    return {d: message.replace("{dtype}", d) for d in ("Long", "Bool")}


_MEAN_REFUSES = _floats_only("mean(): could not infer output dtype. Input dtype must be either a floating point "
                             "or complex dtype. Got: {dtype}")
_VAR_REFUSES = _floats_only("std and var only support floating point and complex dtypes")
_NORM_REFUSES = _floats_only("linalg.vector_norm: Expected a floating point or complex tensor as input. Got {dtype}")


def power(a, e):
    """``a ** e`` as PyTorch computes it: integers to negative integer powers are refused for a Python
    number exponent and, for a tensor one, 0 (1 and -1 to their power), as ATen's integer pow."""
    if getattr(np.asarray(a), "dtype", None).kind not in "biu" or np.asarray(e).dtype.kind not in "biu":
        return np.power(a, e)
    if type(e) is int or (type(e) is bool):
        if e < 0:
            raise Refused("Integers to negative integer powers are not allowed.")
        return np.power(a, e)
    a, e = np.asarray(a), np.asarray(e)
    negative = e < 0
    if not negative.any():
        return np.power(a, e)
    a64 = a.astype(np.int64)
    positive = np.power(a64, np.where(negative, 0, e))
    inverse = np.where(a64 == 1, 1, np.where(a64 == -1, np.where(e % 2 == 0, 1, -1), 0))
    return np.where(negative, inverse, positive)


def _floor_divide(a, b):
    """``a // b`` as PyTorch's floor_divide: rounded toward -inf; an integer division by zero refused."""
    if np.asarray(a).dtype.kind in "biu" and np.asarray(b).dtype.kind in "biu" and np.any(np.equal(b, 0)):
        raise Refused("ZeroDivisionError (an integer floor division by zero)")
    return np.floor_divide(a, b)


def _no_derivative(F, g, s):
    raise NotImplementedError("the derivative for 'floor_divide' is not implemented")


def _sign(a):
    a = np.asarray(a)
    return a.copy() if a.dtype.kind == "b" else np.sign(a)  # torch.sign of a mask is the mask


# ---------------------------------------------------------------------------
# The numeric ops namespace used by gradient rules (first order).
# ---------------------------------------------------------------------------


class NumpyOps:
    """``F`` for computing gradients as numbers with numpy (errors give inf/nan, never raise)."""

    add = staticmethod(np.add)
    sub = staticmethod(np.subtract)
    mul = staticmethod(np.multiply)
    div = staticmethod(np.divide)
    neg = staticmethod(np.negative)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    sinh = staticmethod(np.sinh)
    cosh = staticmethod(np.cosh)
    sqrt = staticmethod(np.sqrt)

    @staticmethod
    def sgn(x):
        return _sgn(x)

    @staticmethod
    def pow(x, exponent):
        return np.power(x, exponent)

    # used by the issue-13 rows (activations, losses)
    tanh = staticmethod(np.tanh)
    abs = staticmethod(np.abs)

    @staticmethod
    def sigmoid(x):
        return _sigmoid(x)

    @staticmethod
    def erf(x):
        return _erf_forward(x)

    @staticmethod
    def clamp_min(x, min):
        return np.maximum(x, min)

    @staticmethod
    def mean(x, dim=None, keepdim=False):
        return np.mean(x, axis=_axis(x, dim), keepdims=keepdim, dtype=np.asarray(x).dtype)

    @staticmethod
    def value(x):
        """The concrete numbers of ``x``, for rules that branch on them (a constant in every order)."""
        return np.asarray(x)

    @staticmethod
    def prod(x):
        return np.prod(x, dtype=np.asarray(x).dtype)

    @staticmethod
    def rsqrt(x):
        return np.divide(1, np.sqrt(x))

    # Masks are constants: they carry no gradient in any order.
    @staticmethod
    def where(mask, a, b):
        return np.where(mask, a, b)

    @staticmethod
    def eq(a, b):
        return np.equal(a, b)

    @staticmethod
    def lt(a, b):
        return np.less(a, b)

    @staticmethod
    def gt(a, b):
        return np.greater(a, b)

    @staticmethod
    def ge(a, b):
        return np.greater_equal(a, b)

    @staticmethod
    def le(a, b):
        return np.less_equal(a, b)

    @staticmethod
    def logical_and(a, b):
        return np.logical_and(a, b)

    @staticmethod
    def logical_or(a, b):
        return np.logical_or(a, b)

    @staticmethod
    def zeros_like(x):
        return np.zeros_like(x)

    @staticmethod
    def expand(x, shape):
        if type(x) is not np.ndarray or x.ndim == 0:  # a number's (a sum's gradient): filled in
            x = np.asarray(x)
            if x.ndim == 0:
                out = np.empty(shape, dtype=x.dtype)
                out.fill(x)
                return out
        return np.broadcast_to(x, shape).copy()

    @staticmethod
    def reshape(x, shape):
        return np.reshape(x, shape)

    @staticmethod
    def unsqueeze(x, dim):
        return np.expand_dims(x, dim)

    @staticmethod
    def squeeze(x, dim):
        return np.squeeze(x, dim)

    @staticmethod
    def permute(x, dims):
        return np.transpose(x, dims)

    @staticmethod
    def sum(x, dim=None, keepdim=False):
        return np.sum(x, axis=_axis(x, dim), keepdims=keepdim, dtype=np.asarray(x).dtype)

    @staticmethod
    def mm(a, b):
        return np.matmul(a, b)

    @staticmethod
    def mv(a, b):
        return np.matmul(a, b)

    @staticmethod
    def outer(a, b):
        return np.multiply.outer(a, b)

    @staticmethod
    def t(x):
        if type(x) is np.ndarray:
            return x.swapaxes(-1, -2) if x.ndim >= 2 else x
        return np.swapaxes(x, -1, -2) if np.ndim(x) >= 2 else x

    @staticmethod
    def bmm(a, b):
        return np.matmul(a, b)

    @staticmethod
    def index_backward(g, sizes, indices):
        """index_backward: zeros with grad added at the indexed places (repeats add up)."""
        g = np.asarray(g)
        out = np.zeros(sizes, dtype=g.dtype)
        np.add.at(out, index_tuple(indices), g)
        return out

    @staticmethod
    def index(x, indices):
        return np.asarray(x)[index_tuple(indices)]

    @staticmethod
    def select(x, dim, index):
        return np.asarray(x)[(slice(None),) * dim + (index,)]

    @staticmethod
    def slice(x, dim, start, end, step):
        return np.asarray(x)[(slice(None),) * dim + (slice(start, end, step),)]

    @staticmethod
    def select_backward(g, sizes, dim, index):
        return _scatter_into_zeros(g, sizes, (slice(None),) * dim + (index,))

    @staticmethod
    def slice_backward(g, sizes, dim, start, end, step):
        return _scatter_into_zeros(g, sizes, (slice(None),) * dim + (slice(start, end, step),))

    @staticmethod
    def transpose(x, dim0, dim1):
        return np.swapaxes(x, dim0, dim1) if np.ndim(x) else x

    view = reshape

    # PyTorch's fused backward kernels (their own backward functions in the double-backward graph)
    @staticmethod
    def fused(key, *tensors, **params):
        """PyTorch's fused backward kernel ``key`` (a row of the table, e.g. ``gelu_backward``) on
        numbers: the row's forward. The second-order pass's namespace records it as one node."""
        return OPS[key].forward(*tensors, **params)

    @staticmethod
    def logit(x):
        return _logit(x)

    @staticmethod
    def log_sigmoid(x):
        return _log_sigmoid(x)

    @staticmethod
    def tanh_backward(grad_output, output):
        return np.multiply(grad_output, np.subtract(1, np.multiply(output, output)))

    @staticmethod
    def sigmoid_backward(grad_output, output):
        return np.multiply(np.multiply(grad_output, np.subtract(1, output)), output)

    @staticmethod
    def threshold_backward(grad_output, x, threshold):
        return np.where(np.less_equal(x, threshold), np.zeros_like(grad_output), grad_output)

    @staticmethod
    def softmax_backward_data(grad_output, output, dim):
        return _softmax_backward_data(grad_output, output, dim)

    @staticmethod
    def masked_fill(x, mask, value):
        return np.where(mask, np.asarray(value, dtype=np.asarray(x).dtype), x)

    # what prod's gradient rule is made of (PyTorch's prod_safe_zeros_backward)
    @staticmethod
    def contiguous(x):
        return x

    @staticmethod
    def cumprod(x, dim):
        x = np.asarray(x)
        return np.cumprod(x, axis=dim, dtype=x.dtype)

    @staticmethod
    def cat(a, b, dim):
        return np.concatenate([np.asarray(a), np.asarray(b)], axis=dim)

    @staticmethod
    def narrow(x, dim, start, length):
        index = [slice(None)] * np.ndim(x)
        index[dim] = slice(start, start + length)
        return np.asarray(x)[tuple(index)]

    @staticmethod
    def flip(x, dims):
        return np.flip(x, dims)

    @staticmethod
    def sum_to(x, shape):
        """Reduce a broadcast gradient back to ``shape`` (what PyTorch's engine does)."""
        x = np.asarray(x)
        if x.shape == tuple(shape):
            return x
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1
        )
        out = np.sum(x, axis=axes, keepdims=True, dtype=x.dtype) if axes else x
        return out.reshape(shape)


def _scatter_into_zeros(g, sizes, index):
    g = np.asarray(g)
    out = np.zeros(sizes, dtype=g.dtype)
    out[index] = g
    return out


# ---------------------------------------------------------------------------
# The float ops namespaces (0-d values on the tape): Python floats, rounded as numpy rounds.
# ---------------------------------------------------------------------------

_ROUND = array("f", [0.0])  # storing a float here rounds it to float32 (IEEE, to nearest even)


def _divide(a, b):
    """a / b as IEEE division: ±inf or nan where Python raises ZeroDivisionError."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


class _FloatSelection:
    """What both float namespaces share: choosing between values, which rounds nothing.

    ``maximum``/``minimum`` as numpy's on 0-d values: nan propagates, and between equal values
    (0.0 and -0.0) the second operand is the result."""

    @staticmethod
    def maximum(a, b):
        return a if a > b or a != a else b

    @staticmethod
    def minimum(a, b):
        return a if a < b or a != a else b

    @staticmethod
    def where(mask, a, b):
        return a if mask else b

    @staticmethod
    def lt(a, b):
        return a < b

    @staticmethod
    def gt(a, b):
        return a > b

    @staticmethod
    def le(a, b):
        return a <= b

    @staticmethod
    def ge(a, b):
        return a >= b

    @staticmethod
    def eq(a, b):
        return a == b

    @staticmethod
    def logical_and(a, b):
        return bool(a and b)

    @staticmethod
    def threshold_backward(grad_output, x, threshold):
        """relu's rule, as PyTorch's threshold_backward: 0 where x <= threshold (nan passes)."""
        return 0.0 if x <= threshold else grad_output

    @staticmethod
    def masked_fill(x, mask, value):
        return float(value) if mask else x


class Float64Ops(_FloatSelection):
    """``F`` on Python floats for float64: Python's float arithmetic is IEEE double, as numpy's.

    Only what the rows with an ``on_floats`` forward use: + - * /, negation, ``pow`` to the
    exponents 0, 1 and 2 (where numpy's ``power`` is exactly 1, x and x·x), and selection
    (maximum, minimum, where and comparisons).
    """

    @staticmethod
    def cast(x):
        """A Python number as a value of this dtype (what numpy does to a weak scalar)."""
        return float(x)

    @staticmethod
    def cast_all(numbers) -> list:
        """[cast(x) for x in numbers]"""
        return list(map(float, numbers))

    @staticmethod
    def add(a, b):
        return a + b

    @staticmethod
    def sub(a, b):
        return a - b

    @staticmethod
    def mul(a, b):
        return a * b

    div = staticmethod(_divide)

    @staticmethod
    def neg(a):
        return -a

    @staticmethod
    def pow(x, exponent):
        if exponent == 2:
            return x * x
        if exponent == 1:
            return x
        if exponent == 0:
            return 1.0
        raise ValueError(f"the scalar path has no pow to {exponent!r}")

    @staticmethod
    def zeros_like(x):
        return 0.0


class Float32Ops(_FloatSelection):
    """``F`` on Python floats for float32: each result computed in double, then rounded to float32.

    For + - * / (and x·x) that is exactly float32 arithmetic: a double holds more than
    2·24 + 2 bits, so rounding twice gives the correctly rounded float32 result.
    """

    @staticmethod
    def cast(x):
        _ROUND[0] = x
        return _ROUND[0]

    @staticmethod
    def cast_all(numbers) -> list:
        """[cast(x) for x in numbers], stored as float32 at once"""
        return array("f", numbers).tolist()

    @staticmethod
    def add(a, b):
        _ROUND[0] = a + b
        return _ROUND[0]

    @staticmethod
    def sub(a, b):
        _ROUND[0] = a - b
        return _ROUND[0]

    @staticmethod
    def mul(a, b):
        _ROUND[0] = a * b
        return _ROUND[0]

    @staticmethod
    def div(a, b):
        _ROUND[0] = _divide(a, b)
        return _ROUND[0]

    @staticmethod
    def neg(a):
        return -a

    @staticmethod
    def pow(x, exponent):
        _ROUND[0] = Float64Ops.pow(x, exponent)
        return _ROUND[0]

    @staticmethod
    def zeros_like(x):
        return 0.0


FLOAT_OPS = {"float32": Float32Ops, "float64": Float64Ops}


# ---------------------------------------------------------------------------
# Forward helpers (numpy) for what numpy does not have as one function.
# ---------------------------------------------------------------------------

def _sgn(x):
    """PyTorch's sgn of real numbers: -1, 0 or 1, and 0 for nan (numpy's sign gives nan)."""
    x = np.asarray(x)
    return np.where(np.isnan(x), np.zeros((), x.dtype), np.sign(x))


def _erf_forward(x):
    x = np.asarray(x)
    erf = np.frompyfunc(math.erf, 1, 1)
    return np.asarray(erf(x.astype(np.float64)), dtype=np.float64).astype(x.dtype)


def _sum_all(a):
    # np.sum's own reduction (np.sum adds only Python-level dispatch for an array)
    a = np.asarray(a)
    return np.add.reduce(a, None, a.dtype)


def _sigmoid(x):
    x = np.asarray(x)
    return np.divide(1, np.add(1, np.exp(np.negative(x))), dtype=x.dtype)


def _prod_backward(F, g, s):
    # PyTorch's prod_backward: a zero in the input makes result/self useless.
    x = F.value(s["self"])
    if x.ndim == 0:
        return (g,)
    nz = int(np.count_nonzero(x == 0))
    if nz == 0:
        return (F.mul(g, F.div(s["result"], s["self"])),)
    if nz > 1 and F is NumpyOps:  # without grad mode PyTorch returns zeros for more than one zero
        return (np.zeros_like(x),)
    flat = F.view(F.contiguous(s["self"]), (-1,))
    return (F.view(_prod_safe_zeros_backward(F, g, flat), x.shape),)  # .view_as(input)


def _prod_safe_zeros_backward(F, g, flat):
    """PyTorch's prod_safe_zeros_backward along the flattened input: the exclusive cumulative
    products from the left and from the right (exact with zeros; a nan stays where torch puts it)."""
    n = np.shape(F.value(flat))[0]
    if n == 1:
        return g
    ones = np.ones(1, dtype=F.value(flat).dtype)
    normal = F.cumprod(F.cat(ones, F.narrow(flat, 0, 0, n - 1), 0), 0)
    reverse = F.flip(F.cumprod(F.cat(ones, F.flip(F.narrow(flat, 0, 1, n - 1), (0,)), 0), 0), (0,))
    return F.mul(g, F.mul(normal, reverse))


def _cumprod_backward(F, g, s):
    # numbers only (the rows of prod's double-backward graph are differentiated once, numerically):
    # d result[j] / d self[k] is the product of self[i] for i <= j, i != k (exact with zeros)
    x = np.moveaxis(np.asarray(F.value(s["self"])), s["dim"], -1)
    gm = np.moveaxis(np.asarray(F.value(g)), s["dim"], -1)
    out = np.zeros_like(x)
    for k in range(x.shape[-1]):
        others = x.copy()
        others[..., k] = 1
        partial = np.cumprod(others, axis=-1, dtype=x.dtype)
        out[..., k] = np.sum(gm[..., k:] * partial[..., k:], axis=-1, dtype=x.dtype)
    return (np.moveaxis(out, -1, s["dim"]),)


def _evenly_distribute(F, g, s):
    # evenly_distribute_backward: the gradient is shared by every element equal to the result
    # (every nan when the result is nan), as zeros.masked_fill_(mask, grad / mask.sum())
    x, r = F.value(s["self"]), F.value(s["result"])
    mask = np.isnan(x) if np.isnan(r) else np.equal(x, r)
    count = np.asarray(np.count_nonzero(mask), dtype=x.dtype)
    return (F.masked_fill(F.zeros_like(s["self"]), mask, F.div(g, count)),)


def _mean(a, axis, keepdims):
    """numpy's mean in the tensor's dtype; of nothing it is nan, as in PyTorch (without numpy's warning)."""
    a = np.asarray(a)
    if a.size == 0:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.mean(a, axis=axis, keepdims=keepdims, dtype=a.dtype)
    return np.mean(a, axis=axis, keepdims=keepdims, dtype=a.dtype)


def _axis(a, dim):
    """numpy's axis for a PyTorch dim: a 0-d tensor accepts dim 0 (or -1), numpy no axis at all."""
    return None if np.ndim(a) == 0 else dim


def _sum_backward(F, g, s):
    sizes = s["self_sym_sizes"]
    dims = normalized_dims(s["dim"], len(sizes))
    if sizes and not s["keepdim"]:
        for d in sorted(dims):
            g = F.unsqueeze(g, d)
    return F.expand(g, sizes)


def normalized_dims(dim, ndim):
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(d % ndim if ndim else 0 for d in dims)


def _numel_of_dims(sizes, dim):
    n = 1
    for d in normalized_dims(dim, len(sizes)):
        n *= sizes[d] if sizes else 1
    return n


def _softmax_backward_data(grad_output, output, dim):
    # _softmax_backward_data's kernel: output * (grad - sum(grad * output, dim))
    output = np.asarray(output)
    axis = _axis(output, dim)
    dot = np.sum(np.multiply(grad_output, output), axis=axis, keepdims=True, dtype=output.dtype)
    return np.multiply(output, np.subtract(grad_output, dot))


def _softmax(x, dim):
    x = np.asarray(x)
    dim = _axis(x, dim)
    m = np.max(x, axis=dim, keepdims=True, initial=-np.inf)  # initial: an empty x has no max
    e = np.exp(x - m)
    return np.divide(e, np.sum(e, axis=dim, keepdims=True), dtype=x.dtype)


def _clamp_forward(a, min, max):
    if min is not None:
        a = np.maximum(a, min)
    if max is not None:
        a = np.minimum(a, max)
    return a


def _clamp_mask(F, s):
    # clamp_backward: the gradient passes where min <= self <= max (bounds count as inside)
    x = s["self"]
    if s["min"] is not None and s["max"] is not None:
        return F.logical_and(F.ge(x, s["min"]), F.le(x, s["max"]))
    if s["min"] is not None:
        return F.ge(x, s["min"])
    return F.le(x, s["max"])


def input_sizes(args, params):
    x = args["self"]
    return {"self_sym_sizes": x.shape if type(x) is np.ndarray else tuple(np.shape(x))}


def input_sizes_numel(args, params):
    shape = tuple(np.shape(args["self"]))
    return {"self_sym_sizes": shape, "self_sym_numel": int(np.prod(shape, dtype=np.int64))}


def _mm_meta(args, params):
    # the strides are the tape's (Graph.context puts each input's there); a tensor made from
    # numbers alone is contiguous
    from .layout import contiguous_strides

    a, b = np.shape(args["self"]), np.shape(args["mat2"])
    return {"self_sym_sizes": a, "self_sym_strides": contiguous_strides(a),
            "mat2_sym_sizes": b, "mat2_sym_strides": contiguous_strides(b)}


def _column_major(sizes, strides) -> bool:
    # mm_mat1_backward / mm_mat2_backward: a column-major input gets its gradient column-major
    return len(strides) == 2 and strides[0] == 1 and strides[1] == sizes[0]


def _mm_backward(F, g, s):
    if _column_major(s["self_sym_sizes"], s["self_sym_strides"]):
        grad_self = F.t(F.mm(s["mat2"], F.t(g)))
    else:
        grad_self = F.mm(g, F.t(s["mat2"]))
    if _column_major(s["mat2_sym_sizes"], s["mat2_sym_strides"]):
        grad_mat2 = F.t(F.mm(F.t(g), s["self"]))
    else:
        grad_mat2 = F.mm(F.t(s["self"]), g)
    return grad_self, grad_mat2


def _inverse_perm(dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return tuple(inv)


def _pow_exponent_grad(F, g, base, exponent, result):
    # pow_backward_exponent: 0 where base == 0 and exponent >= 0, else grad * result * log(base)
    cond = F.logical_and(F.eq(base, 0), F.ge(exponent, 0))
    return F.mul(g, F.where(cond, F.zeros_like(result), F.mul(result, F.log(base))))


def _pow_scalar_base_grad(F, g, s):
    # pow_backward_exponent for a Python-number base: only a base of 0 needs the mask
    base = s["self"]
    if base == 0:
        return _pow_exponent_grad(F, g, base, s["exponent"], s["result"])
    with np.errstate(all="ignore"):
        log_base = float(np.log(np.float64(base)))  # a Scalar, as in PyTorch's C++ formula
    return F.mul(g, F.mul(s["result"], log_base))


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------

def _itself(sp, x):
    """The SymPy form of a reduction or a copy of a 0-d tensor: the tensor itself."""
    return x


def _unary(key, torch_name, forward, vjp, saves, doc, rule, **more):
    return Op(key, torch_name, ("self",), forward, vjp, saves=saves, doc=doc, unary_function=True, rules=(rule,), **more)


ROWS: list[Op] = [
    # --- arithmetic -------------------------------------------------------
    Op("add", "AddBackward0", ("self", "other"), lambda a, b, alpha=1: np.add(a, b),
       lambda F, g, s: (g, g if s["alpha"] == 1 else F.mul(g, s["alpha"])),
       params=("alpha",), saves=("alpha",), doc="a + b", rules=("grad", "grad·alpha"),
       on_floats=lambda F, a, b, alpha=1: F.add(a, b)),
    Op("sub", "SubBackward0", ("self", "other"), lambda a, b, alpha=1: np.subtract(a, b),
       lambda F, g, s: (g, F.neg(g) if s["alpha"] == 1 else F.mul(F.neg(g), s["alpha"])),
       params=("alpha",), saves=("alpha",), doc="a - b", rules=("grad", "-grad·alpha"),
       on_floats=lambda F, a, b, alpha=1: F.sub(a, b)),
    Op("rsub", "RsubBackward1", ("self",), lambda a, other, alpha=1: np.subtract(other, a),
       lambda F, g, s: (F.neg(g) if s["alpha"] == 1 else F.mul(F.neg(g), s["alpha"]),),
       params=("other", "alpha"), saves=("alpha",), doc="number - tensor", rules=("-grad·alpha",),
       on_floats=lambda F, a, other, alpha=1: F.sub(other, a)),
    Op("mul", "MulBackward0", ("self", "other"), np.multiply,
       lambda F, g, s: (F.mul(g, s["other"]), F.mul(g, s["self"])),
       saves=("other", "self"), save_when={"self": "other", "other": "self"}, doc="a * b", rules=("grad·other", "grad·self"),
       on_floats=lambda F, a, b: F.mul(a, b)),
    Op("div", "DivBackward0", ("self", "other"), np.divide,
       lambda F, g, s: (F.div(g, s["other"]),
                        F.mul(F.neg(g), F.div(F.div(s["self"], s["other"]), s["other"]))),
       saves=("other", "self"), save_when={"self": "other"}, doc="a / b", rules=("grad / other", "-grad·self / other²"),
       on_floats=lambda F, a, b: F.div(a, b)),
    Op("floor_divide", "NotImplemented", ("self", "other"), _floor_divide, _no_derivative,
       doc="a // b: values only (PyTorch has no derivative: its NotImplemented node's backward raises)",
       rules=("none", "none")),
    Op("reciprocal", "ReciprocalBackward0", ("self",), lambda a: np.divide(1, a),
       lambda F, g, s: (F.mul(F.neg(g), F.mul(s["result"], s["result"])),),
       saves=("result",), doc="1 / x", unary_function=True, rules=("-grad·result²",),
       on_floats=lambda F, a: F.div(1, a),
       sympy=lambda sp, x: 1 / x),
    Op("neg", "NegBackward0", ("self",), np.negative,
       lambda F, g, s: (F.neg(g),), doc="-x", unary_function=True, rules=("-grad",), integers="keep",
       refuses={"Bool": "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                        "invert a mask, use the `~` or `logical_not()` operator instead."},
       on_floats=lambda F, a: F.neg(a),
       sympy=lambda sp, x: -x),
    Op("pow", "PowBackward0", ("self",), lambda a, exponent: power(a, exponent),
       lambda F, g, s: (F.zeros_like(g) if s["exponent"] == 0 else
                        F.mul(g, F.mul(s["exponent"], F.pow(s["self"], s["exponent"] - 1))),),
       params=("exponent",), saves=("exponent", "self"), doc="tensor ** number", rules=("grad·exponent·self**(exponent - 1)",),
       on_floats=lambda F, a, exponent: F.pow(a, exponent),
       sympy=lambda sp, x, e: x ** e),  # the scalar path takes exponents 0, 1, 2
    Op("pow_tensor", "PowBackward1", ("self", "exponent"), power,
       lambda F, g, s: (
           F.where(F.eq(s["exponent"], 0), F.zeros_like(g),
                   F.mul(g, F.mul(s["exponent"], F.pow(s["self"], F.sub(s["exponent"], 1))))),
           _pow_exponent_grad(F, g, s["self"], s["exponent"], s["result"])),
       saves=("exponent", "result", "self"), doc="tensor ** tensor", rules=("grad·exponent·self**(exponent - 1)", "grad·result·log(self)")),
    Op("pow_scalar_base", "PowBackward2", ("exponent",), lambda e, self: power(self, e),
       lambda F, g, s: (_pow_scalar_base_grad(F, g, s),),
       params=("self",), saves=("exponent", "result", "self"), doc="number ** tensor", rules=("grad·result·log(self)",)),
    # --- elementwise functions ---------------------------------------------
    _unary("sin", "SinBackward0", np.sin, lambda F, g, s: (F.mul(g, F.cos(s["self"])),), ("self",), "sine", rule="grad·cos(self)",
           sympy=lambda sp, x: sp.sin(x)),
    _unary("cos", "CosBackward0", np.cos, lambda F, g, s: (F.mul(g, F.neg(F.sin(s["self"]))),), ("self",), "cosine", rule="-grad·sin(self)",
           sympy=lambda sp, x: sp.cos(x)),
    _unary("tan", "TanBackward0", np.tan,
           lambda F, g, s: (F.mul(g, F.add(1, F.pow(s["result"], 2))),), ("result",), "tangent", rule="grad·(1 + result²)",
           sympy=lambda sp, x: sp.tan(x)),
    _unary("exp", "ExpBackward0", np.exp, lambda F, g, s: (F.mul(g, s["result"]),), ("result",), "e ** x", rule="grad·result",
           sympy=lambda sp, x: sp.exp(x)),
    _unary("log", "LogBackward0", np.log, lambda F, g, s: (F.div(g, s["self"]),), ("self",), "natural logarithm", rule="grad / self",
           sympy=lambda sp, x: sp.log(x)),
    _unary("sqrt", "SqrtBackward0", np.sqrt,
           lambda F, g, s: (F.div(g, F.mul(2, s["result"])),), ("result",), "square root", rule="grad / (2·result)",
           sympy=lambda sp, x: sp.sqrt(x)),
    _unary("tanh", "TanhBackward0", np.tanh,
           lambda F, g, s: (F.tanh_backward(g, s["result"]),), ("result",), "hyperbolic tangent", rule="grad·(1 - result²)",
           sympy=lambda sp, x: sp.tanh(x)),
    _unary("sigmoid", "SigmoidBackward0", _sigmoid,
           lambda F, g, s: (F.sigmoid_backward(g, s["result"]),), ("result",), "1 / (1 + e ** -x)", rule="grad·(1 - result)·result",
           sympy=lambda sp, x: 1 / (1 + sp.exp(-x))),
    Op("relu", "ReluBackward0", ("self",), lambda a: np.maximum(a, np.zeros((), np.asarray(a).dtype)),
       lambda F, g, s: (F.threshold_backward(g, s["result"], 0),), saves=("result",), doc="max(x, 0)",
       unary_function=True, rules=("grad where result > 0, else 0",), on_floats=lambda F, a: F.maximum(a, 0.0),
       integers="keep", refuses={"Bool": "Boolean inputs not supported for relu"},
       sympy=lambda sp, x: sp.Piecewise((x, x > 0), (0, True))),
    _unary("abs", "AbsBackward0", np.abs, lambda F, g, s: (F.mul(g, F.sgn(s["self"])),), ("self",), "absolute value", rule="grad·sgn(self)",
           integers="keep", refuses=_kernel("abs_cpu", ("Bool",)),
           sympy=lambda sp, x: sp.Abs(x)),
    _unary("sinh", "SinhBackward0", np.sinh, lambda F, g, s: (F.mul(g, F.cosh(s["self"])),), ("self",), "hyperbolic sine", rule="grad·cosh(self)",
           sympy=lambda sp, x: sp.sinh(x)),
    _unary("cosh", "CoshBackward0", np.cosh, lambda F, g, s: (F.mul(g, F.sinh(s["self"])),), ("self",), "hyperbolic cosine", rule="grad·sinh(self)",
           sympy=lambda sp, x: sp.cosh(x)),
    _unary("asin", "AsinBackward0", np.arcsin,
           lambda F, g, s: (F.mul(g, F.rsqrt(F.add(F.mul(F.neg(s["self"]), s["self"]), 1))),), ("self",), "arcsine", rule="grad / sqrt(1 - self²)",
           sympy=lambda sp, x: sp.asin(x)),
    _unary("acos", "AcosBackward0", np.arccos,
           lambda F, g, s: (F.mul(g, F.neg(F.rsqrt(F.add(F.mul(F.neg(s["self"]), s["self"]), 1)))),), ("self",),
           "arccosine", rule="-grad / sqrt(1 - self²)",
           sympy=lambda sp, x: sp.acos(x)),
    _unary("atan", "AtanBackward0", np.arctan,
           lambda F, g, s: (F.div(g, F.add(F.mul(s["self"], s["self"]), 1)),), ("self",), "arctangent", rule="grad / (1 + self²)",
           sympy=lambda sp, x: sp.atan(x)),
    _unary("log1p", "Log1PBackward0", np.log1p, lambda F, g, s: (F.div(g, F.add(s["self"], 1)),), ("self",), "log(1 + x)", rule="grad / (1 + self)",
           sympy=lambda sp, x: sp.log(1 + x)),
    _unary("expm1", "Expm1Backward0", np.expm1, lambda F, g, s: (F.mul(g, F.add(s["result"], 1)),), ("result",), "e ** x - 1", rule="grad·(result + 1)",
           sympy=lambda sp, x: sp.exp(x) - 1),
    _unary("exp2", "Exp2Backward0", np.exp2, lambda F, g, s: (F.mul(F.mul(g, s["result"]), LN2),), ("result",), "2 ** x", rule="grad·result·ln(2)",
           sympy=lambda sp, x: sp.Integer(2) ** x),
    _unary("log2", "Log2Backward0", np.log2, lambda F, g, s: (F.div(g, F.mul(s["self"], LN2)),), ("self",), "base-2 logarithm", rule="grad / (self·ln(2))",
           sympy=lambda sp, x: sp.log(x) / sp.log(2)),
    _unary("log10", "Log10Backward0", np.log10,
           lambda F, g, s: (F.div(g, F.mul(s["self"], LN10)),), ("self",), "base-10 logarithm", rule="grad / (self·ln(10))",
           sympy=lambda sp, x: sp.log(x) / sp.log(10)),
    _unary("rsqrt", "RsqrtBackward0", lambda a: np.divide(1, np.sqrt(a)),
           lambda F, g, s: (F.mul(F.mul(-0.5, g), F.pow(s["result"], 3)),), ("result",), "1 / sqrt(x)", rule="-0.5·grad·result³",
           sympy=lambda sp, x: 1 / sp.sqrt(x)),
    _unary("erf", "ErfBackward0", _erf_forward,
           lambda F, g, s: (F.mul(F.mul(2.0 / math.sqrt(math.pi), F.exp(F.neg(F.pow(s["self"], 2)))), g),),
           ("self",), "error function", rule="grad·2/sqrt(π)·exp(-self²)",
           sympy=lambda sp, x: sp.erf(x)),
    # --- two-operand elementwise -----------------------------------------
    Op("maximum", "MaximumBackward0", ("self", "other"), np.maximum,
       lambda F, g, s: (  # where(self == other, grad / 2, grad).masked_fill_(self < other, 0)
           F.masked_fill(F.where(F.eq(s["self"], s["other"]), F.div(g, 2), g), F.lt(s["self"], s["other"]), 0),
           F.masked_fill(F.where(F.eq(s["self"], s["other"]), F.div(g, 2), g), F.gt(s["self"], s["other"]), 0)),
       saves=("other", "self"), doc="elementwise maximum", rules=("grad where self > other, grad/2 where equal, else 0", "grad where other > self, grad/2 where equal, else 0"),
       on_floats=lambda F, a, b: F.maximum(a, b),
       sympy=lambda sp, x, y: sp.Max(x, y)),
    Op("minimum", "MinimumBackward0", ("self", "other"), np.minimum,
       lambda F, g, s: (
           F.masked_fill(F.where(F.eq(s["self"], s["other"]), F.div(g, 2), g), F.gt(s["self"], s["other"]), 0),
           F.masked_fill(F.where(F.eq(s["self"], s["other"]), F.div(g, 2), g), F.lt(s["self"], s["other"]), 0)),
       saves=("other", "self"), doc="elementwise minimum", rules=("grad where self < other, grad/2 where equal, else 0", "grad where other < self, grad/2 where equal, else 0"),
       on_floats=lambda F, a, b: F.minimum(a, b),
       sympy=lambda sp, x, y: sp.Min(x, y)),
    Op("clamp", "ClampBackward1", ("self",), _clamp_forward,
       lambda F, g, s: (F.where(_clamp_mask(F, s), g, F.zeros_like(g)),),
       params=("min", "max"), saves=("max", "min", "self"), doc="clamp(x, min, max); either bound may be None", rules=("grad where min ≤ self ≤ max, else 0",)),
    # --- reductions ---------------------------------------------------------
    Op("sum", "SumBackward0", ("self",), _sum_all,
       lambda F, g, s: (F.expand(g, s["self_sym_sizes"]),),
       saves=("self_sym_sizes",), derived=input_sizes, doc="sum of all elements", rules=("grad expanded to self_sym_sizes",),
       integers="long",
       sympy=_itself),
    Op("sum_dim", "SumBackward1", ("self",),
       lambda a, dim, keepdim: np.sum(a, axis=_axis(a, dim), keepdims=keepdim, dtype=np.asarray(a).dtype),
       lambda F, g, s: (_sum_backward(F, g, s),),
       params=("dim", "keepdim"), saves=("dim", "keepdim", "self_sym_sizes"), derived=input_sizes,
       doc="sum over dim", rules=("grad expanded to self_sym_sizes",), integers="long"),
    Op("mean", "MeanBackward0", ("self",), lambda a: _mean(a, None, False),
       lambda F, g, s: (F.div(F.expand(g, s["self_sym_sizes"]), s["self_sym_numel"]),),
       saves=("self_sym_numel", "self_sym_sizes"), derived=input_sizes_numel, doc="mean of all elements", rules=("grad / self_sym_numel, expanded to self_sym_sizes",),
       refuses=_MEAN_REFUSES,
       sympy=_itself),
    Op("mean_dim", "MeanBackward1", ("self",),
       lambda a, dim, keepdim: _mean(a, _axis(a, dim), keepdim),
       lambda F, g, s: (F.div(_sum_backward(F, g, s), _numel_of_dims(s["self_sym_sizes"], s["dim"])),),
       params=("dim", "keepdim"), saves=("dim", "keepdim", "self_sym_numel", "self_sym_sizes"),
       derived=input_sizes_numel, doc="mean over dim", rules=("grad / (elements per mean), expanded to self_sym_sizes",),
       refuses=_MEAN_REFUSES),
    Op("max", "MaxBackward1", ("self",), np.max, _evenly_distribute, saves=("result", "self"),
       doc="largest element", rules=("grad / (count of result) where self = result, else 0",),
       sympy=_itself),
    Op("min", "MinBackward1", ("self",), np.min, _evenly_distribute, saves=("result", "self"),
       doc="smallest element", rules=("grad / (count of result) where self = result, else 0",),
       sympy=_itself),
    Op("prod", "ProdBackward0", ("self",), lambda a: np.prod(a, dtype=np.asarray(a).dtype), _prod_backward,
       saves=("result", "self"), doc="product of all elements", rules=("grad·result / self",), integers="long",
       sympy=_itself),
    Op("softmax", "SoftmaxBackward0", ("self",), _softmax,
       lambda F, g, s: (F.softmax_backward_data(g, s["result"], s["dim"]),),
       params=("dim",), saves=("dim", "result"), doc="softmax over dim", rules=("result·(grad - sum(grad·result, dim))",),
       refuses=_kernel("softmax_lastdim_kernel_impl")),
    Op("norm", "LinalgVectorNormBackward0", ("self",),
       lambda a: np.sqrt(np.sum(np.square(a), dtype=np.asarray(a).dtype)),
       lambda F, g, s: (  # norm_backward, ord 2: grad * (self / norm).masked_fill_(norm == 0, 0)
           F.mul(g, F.masked_fill(F.div(s["self"], s["result"]), F.eq(s["result"], 0), 0)),),
       saves=("dim", "keepdim", "ord", "result", "self"),
       derived=lambda args, params: {"dim": None, "keepdim": False, "ord": 2}, doc="2-norm", rules=("grad·self / result",),
       refuses=_NORM_REFUSES,
       sympy=lambda sp, x: sp.Abs(x)),
    # --- linear algebra -----------------------------------------------------
    Op("dot", "DotBackward0", ("self", "tensor"), np.dot,
       lambda F, g, s: (F.mul(g, s["tensor"]), F.mul(g, s["self"])),
       saves=("self", "tensor"), save_when={"self": "tensor", "tensor": "self"}, doc="1-D @ 1-D", rules=("grad·tensor", "grad·self"),
       refuses=_kernel("dot", ("Bool",))),
    Op("mv", "MvBackward0", ("self", "vec"), np.matmul,
       lambda F, g, s: (F.outer(g, s["vec"]), F.mv(F.t(s["self"]), g)),
       saves=("self", "vec"), save_when={"self": "vec", "vec": "self"}, doc="2-D @ 1-D", rules=("outer(grad, vec)", "selfᵀ @ grad")),
    Op("mm", "MmBackward0", ("self", "mat2"), np.matmul,
       _mm_backward,
       saves=("mat2", "mat2_sym_sizes", "mat2_sym_strides", "self", "self_sym_sizes", "self_sym_strides"),
       derived=_mm_meta, save_when={"self": "mat2", "mat2": "self", "self_sym_strides": "self",
                                    "mat2_sym_strides": "mat2"}, doc="2-D @ 2-D", rules=("grad @ mat2ᵀ", "selfᵀ @ grad")),
    # --- shape ----------------------------------------------------------------
    Op("permute", "PermuteBackward0", ("self",), lambda a, dims: np.transpose(a, dims),
       lambda F, g, s: (F.permute(g, _inverse_perm(s["dims"])),),
       params=("dims",), saves=("dims",), doc="x.T / x.permute(dims)", rules=("grad permuted back by the inverse of dims",)),
    Op("t", "TBackward0", ("self",), lambda a: np.swapaxes(a, -1, -2) if np.ndim(a) >= 2 else a,
       lambda F, g, s: (F.t(g),), doc="x.t()", rules=("gradᵀ",)),
    Op("transpose", "TransposeBackward0", ("self",),
       lambda a, dim0, dim1: np.swapaxes(a, dim0, dim1) if np.ndim(a) else np.asarray(a),
       lambda F, g, s: (F.transpose(g, s["dim0"], s["dim1"]),),
       params=("dim0", "dim1"), saves=("dim0", "dim1"), doc="x.transpose(d0, d1)", rules=("grad with dim0 and dim1 swapped back",)),
    Op("view", "ViewBackward0", ("self",), lambda a, shape: np.reshape(a, shape),
       lambda F, g, s: (F.reshape(g, s["self_sym_sizes"]),),
       params=("shape",), saves=("self_sym_sizes",), derived=input_sizes, doc="x.reshape(shape) / x.view(shape)", rules=("grad reshaped to self_sym_sizes",)),
    Op("reshape_alias", "ReshapeAliasBackward0", ("self",), lambda a, shape: np.reshape(a, shape),
       lambda F, g, s: (F.reshape(g, s["self_sym_sizes"]),),
       params=("shape",), saves=("self_sym_sizes",), derived=input_sizes,
       doc="reshape of a non-contiguous tensor that can still be viewed", rules=("grad reshaped to self_sym_sizes",)),
    Op("unsafe_view", "UnsafeViewBackward0", ("self",), lambda a, shape: np.reshape(a, shape),
       lambda F, g, s: (F.reshape(g, s["self_sym_sizes"]),),
       params=("shape",), saves=("self_sym_sizes",), derived=input_sizes, doc="reshape of a copy", rules=("grad reshaped to self_sym_sizes",)),
    Op("clone", "CloneBackward0", ("self",), lambda a: np.ascontiguousarray(a),
       lambda F, g, s: (g,), doc="copy (reshape of a non-contiguous tensor)", rules=("grad",),
       sympy=_itself),
    Op("unsqueeze", "UnsqueezeBackward0", ("self",), lambda a, dim: np.expand_dims(a, dim),
       lambda F, g, s: (F.squeeze(g, s["dim"]),), params=("dim",), saves=("dim",), doc="add a dim of size 1", rules=("grad squeezed at dim",)),
    # --- used by gradient rules when the second-order pass differentiates them ---------------
    # PyTorch's formulas are C++, where a number operand is a Scalar: t * 2 is mul.Scalar, not mul.
    Op("sgn", "SgnBackward0", ("self",), lambda a: _sgn(a), lambda F, g, s: (F.zeros_like(g),), saves=("result", "self"),
       doc="sign (abs's gradient rule); its own derivative is 0 for real numbers", rules=("0",)),
    Op("add_scalar", "AddBackward1", ("self",), lambda a, other, alpha=1: np.add(a, other),
       lambda F, g, s: (g,), params=("other", "alpha"), doc="tensor + Scalar (C++)", rules=("grad",)),
    Op("sub_scalar", "SubBackward1", ("self",), lambda a, other, alpha=1: np.subtract(a, other),
       lambda F, g, s: (g,), params=("other", "alpha"), doc="tensor - Scalar (C++)", rules=("grad",)),
    Op("mul_scalar", "MulBackward1", ("self",), lambda a, other: np.multiply(a, other),
       lambda F, g, s: (F.mul(g, s["other"]),), params=("other",), saves=("other",),
       doc="tensor * Scalar (C++)", rules=("grad·other",)),
    Op("div_scalar", "DivBackward1", ("self",), lambda a, other: np.divide(a, other),
       lambda F, g, s: (F.div(g, s["other"]),), params=("other",), saves=("other",),
       doc="tensor / Scalar (C++)", rules=("grad / other",)),
    Op("where", "WhereBackward0", ("self", "other"), lambda a, b, condition: np.where(condition, a, b),
       lambda F, g, s: (F.where(s["condition"], g, F.zeros_like(g)), F.where(s["condition"], F.zeros_like(g), g)),
       params=("condition",), saves=("condition",), doc="where(condition, a, b); the mask is a constant",
       rules=("grad where condition, else 0", "grad where not condition, else 0")),
    Op("expand", "ExpandBackward0", ("self",), lambda a, size: np.broadcast_to(a, size).copy(),
       lambda F, g, s: (F.sum_to(g, s["self_sym_sizes"]),),
       params=("size",), saves=("self_sym_sizes",), derived=input_sizes, doc="x.expand(size)",
       rules=("grad summed to self_sym_sizes",)),
    Op("squeeze", "SqueezeBackward4", ("self",), lambda a, dim: np.squeeze(a, dim),
       lambda F, g, s: (F.unsqueeze(g, s["dim"]),),
       params=("dim",), saves=("dim", "self_sym_sizes"), derived=input_sizes, doc="remove a dim of size 1", rules=("grad unsqueezed at dim",),
       sympy=_itself),
    # --- fused backward functions of the double-backward graph (issue 15) ------------------
    # PyTorch computes these gradient rules with one kernel each; differentiating them again gives
    # nodes of their own (derivatives.yaml's *_backward entries), which --graph double shows.
    Op("tanh_backward", "TanhBackwardBackward0", ("grad_output", "output"), NumpyOps.tanh_backward,
       lambda F, g, s: (F.tanh_backward(g, s["output"]), F.mul(g, F.mul(F.mul(-2, s["output"]), s["grad_output"]))),
       saves=("grad_output", "output"), doc="tanh's gradient rule: grad_output·(1 - output²)",
       rules=("tanh_backward(grad, output)", "grad·(-2·output·grad_output)")),
    Op("sigmoid_backward", "SigmoidBackwardBackward0", ("grad_output", "output"), NumpyOps.sigmoid_backward,
       lambda F, g, s: (F.sigmoid_backward(g, s["output"]),
                        F.mul(F.mul(g, s["grad_output"]), F.add(F.mul(-2, s["output"]), 1))),
       saves=("grad_output", "output"), doc="sigmoid's gradient rule: grad_output·(1 - output)·output",
       rules=("sigmoid_backward(grad, output)", "grad·grad_output·(1 - 2·output)")),
    Op("threshold_backward", "ThresholdBackwardBackward0", ("grad_output", "self"), NumpyOps.threshold_backward,
       lambda F, g, s: (F.threshold_backward(g, s["self"], s["threshold"]), F.zeros_like(g)),
       params=("threshold",), saves=("self", "threshold"), doc="relu's gradient rule: grad_output where self > threshold",
       rules=("grad where self > threshold, else 0", "0")),
    Op("softmax_backward_data", "SoftmaxBackwardDataBackward0", ("grad_output", "output"), _softmax_backward_data,
       lambda F, g, s: (F.softmax_backward_data(g, s["output"], s["dim"]),
                        _softmax_double_backward(F, g, s["grad_output"], s["dim"], s["output"])),
       params=("dim",), saves=("dim", "grad_output", "output"),
       doc="softmax's gradient rule: output·(grad_output - sum(grad_output·output, dim))",
       rules=("softmax_backward(grad, output)", "softmax_double_backward(grad, grad_output, output)")),
    Op("masked_fill", "MaskedFillBackward0", ("self",), lambda a, mask, value: NumpyOps.masked_fill(a, mask, value),
       lambda F, g, s: (F.masked_fill(g, s["mask"], 0),), params=("mask", "value"), saves=("mask",),
       doc="x.masked_fill(mask, number); the mask is a constant", rules=("grad where not mask, else 0",)),
    Op("masked_fill_tensor", "MaskedFillBackward1", ("self", "value"),
       lambda a, value, mask: NumpyOps.masked_fill(a, mask, value),
       lambda F, g, s: (F.masked_fill(g, s["mask"], 0), F.sum(F.where(s["mask"], g, F.zeros_like(g)))),
       params=("mask",), saves=("mask",), doc="x.masked_fill(mask, a 0-d tensor)",
       rules=("grad where not mask, else 0", "sum of grad where mask")),
    Op("squeeze_dim", "SqueezeBackward1", ("self",),
       lambda a, dim: np.squeeze(a, dim) if np.ndim(a) and np.shape(a)[dim] == 1 else a,  # (a 0-d x.squeeze(0): x)
       lambda F, g, s: (_unsqueeze_to(F, g, s["dim"], s["self_sym_sizes"]),),
       params=("dim",), saves=("dim", "self_sym_sizes"), derived=input_sizes, doc="x.squeeze(dim) (unsqueeze's gradient rule)",
       rules=("grad unsqueezed at dim",)),
    # prod's: prod_safe_zeros_backward's cumprod, cat, narrow (a slice) and flip
    Op("cumprod", "CumprodBackward0", ("self",), NumpyOps.cumprod, _cumprod_backward,
       params=("dim",), saves=("dim", "result", "self"), doc="cumulative product along dim",
       rules=("sum over j ≥ k of grad[j]·(product of self[i], i ≤ j, i ≠ k)",)),
    # (prod's graph uses CatBackward0 and SliceBackward0 too: their rows are in the indexing section)
    Op("flip", "FlipBackward0", ("self",), NumpyOps.flip, lambda F, g, s: (F.flip(g, s["dims"]),),
       params=("dims",), saves=("dims",), doc="x.flip(dims)", rules=("grad flipped back",)),
]

# --- indexing, joining, selection, batched matmul (issue 13) ----------------------------------
# A negative index, start, end or dim is saved as given (PyTorch's Python binding shows it as its
# unsigned 64-bit pattern, 18446744073709551615 for -1; the golden recorder reads it back).

#: what PyTorch saves as a slice's end when none is given (x[1:])
INT64_MAX = (1 << 63) - 1


def index_tuple(indices) -> tuple:
    """PyTorch's ``indices`` (an int64/bool array per indexed dim, None for a dim kept) as numpy's."""
    return tuple(slice(None) if i is None else i for i in indices)


def _slice_of(dim, start, end, step):
    return (slice(None),) * dim + (slice(start, end, step),)


def _index_put(x, values, indices, accumulate):
    out = np.array(x, copy=True)
    if accumulate:
        np.add.at(out, index_tuple(indices), values)
    else:
        out[index_tuple(indices)] = values
    return out


def _cat_backward(F, g, s):
    # cat_tensors_backward: each tensor's part of grad, narrowed along dim (a slice)
    grads, offset, axis = [], 0, s["axis"]
    for size in s["sizes"]:
        grads.append(F.slice(g, axis, offset, offset + size, 1))
        offset += size
    return tuple(grads)


def _stack_backward(F, g, s):
    # stack_tensors_backward: grad.unbind(dim), one select per tensor
    return tuple(F.select(g, s["axis"], k) for k in range(s["count"]))


ROWS += [
    Op("select", "SelectBackward0", ("self",),
       lambda a, dim, index: np.asarray(a)[(slice(None),) * dim + (index,)],
       lambda F, g, s: (F.select_backward(g, s["self_sym_sizes"], s["dim"], s["index"]),),
       params=("dim", "index"), saves=("dim", "index", "self_sym_sizes"), derived=input_sizes,
       doc="x[i]: the index-th slice along dim", rules=("zeros(self_sym_sizes) with grad at [index] on axis dim",)),
    Op("slice", "SliceBackward0", ("self",),
       lambda a, dim, start, end, step: np.asarray(a)[_slice_of(dim, start, end, step)],
       lambda F, g, s: (F.slice_backward(g, s["self_sym_sizes"], s["dim"], s["start"], s["end"], s["step"]),),
       params=("dim", "start", "end", "step"), saves=("dim", "end", "self_sym_sizes", "start", "step"),
       derived=input_sizes, doc="x[start:end:step] along dim",
       rules=("zeros(self_sym_sizes) with grad at [start:end:step] on axis dim",)),
    Op("alias", "AliasBackward0", ("self",), lambda a: a, lambda F, g, s: (g,),
       doc="x[...]: the same values, a new tensor", rules=("grad",)),
    Op("select_backward", "SelectBackwardBackward0", ("grad_output",),
       lambda g, input_sizes, dim, index: NumpyOps.select_backward(g, input_sizes, dim, index),
       lambda F, g, s: (F.select(g, s["dim"], s["index"]),),
       params=("input_sizes", "dim", "index"), saves=("dim", "index"),
       doc="SelectBackward0's rule (second order)", rules=("grad[index] on axis dim",)),
    Op("slice_backward", "SliceBackwardBackward0", ("grad_output",),
       lambda g, input_sizes, dim, start, end, step: NumpyOps.slice_backward(g, input_sizes, dim, start, end, step),
       lambda F, g, s: (F.slice(g, s["dim"], s["start"], s["end"], s["step"]),),
       params=("input_sizes", "dim", "start", "end", "step"), saves=("dim", "end", "start", "step"),
       doc="SliceBackward0's rule (second order)", rules=("grad[start:end:step] on axis dim",)),
    Op("cat", "CatBackward0", ("tensors",),
       lambda *arrays, dim, axis, sizes: np.concatenate(arrays, axis=axis),
       _cat_backward, params=("dim", "axis", "sizes"), saves=("dim",), hidden=("axis", "sizes"), variadic=True,
       doc="torch.cat(tensors, dim)", rules=("this tensor's part of grad split into sizes on axis axis",)),
    Op("stack", "StackBackward0", ("tensors",),
       lambda *arrays, dim, axis, count: np.stack(arrays, axis=axis),
       _stack_backward, params=("dim", "axis", "count"), saves=("dim",), hidden=("axis", "count"), variadic=True,
       doc="torch.stack(tensors, dim)", rules=("this tensor's part of grad unbound on axis axis",)),
    Op("index", "IndexBackward0", ("self",), lambda a, indices: np.asarray(a)[index_tuple(indices)],
       lambda F, g, s: (F.index_backward(g, s["self_sym_sizes"], s["indices"]),),
       params=("indices",), saves=("indices", "self_sym_sizes"), derived=input_sizes,
       doc="x[t] with an int64 or bool tensor t", rules=("zeros(self_sym_sizes) with grad added at indices",)),
    # index_backward's zeros.index_put_(indices, grad, accumulate=True): IndexBackward0's rule, a node
    # of its own in the double-backward graph (the zeros need no grad: a None edge)
    Op("index_put_impl", "IndexPutImplBackward0", ("self", "values"), _index_put,
       lambda F, g, s: (g, F.index(g, s["indices"])),  # (accumulate=True: self's gradient is grad itself)
       params=("indices", "accumulate"), saves=("accumulate", "indices"),
       doc="self.index_put_(indices, values, accumulate) (IndexBackward0's rule)",
       rules=("grad", "grad[indices]")),
    Op("bmm", "BmmBackward0", ("self", "mat2"), np.matmul,
       lambda F, g, s: (F.bmm(g, F.transpose(s["mat2"], 1, 2)), F.bmm(F.transpose(s["self"], 1, 2), g)),
       saves=("mat2", "self"), save_when={"self": "mat2", "mat2": "self"}, doc="batches of matrices: 3-D @ 3-D",
       rules=("grad @ mat2ᵀ, batch by batch", "selfᵀ @ grad, batch by batch")),
]




def _softmax_double_backward(F, grad, grad_output, dim, output):
    # softmax_double_backward: grad_output·grad - sum(output·grad_output, dim)·grad - grad_output·sum(output·grad, dim)
    return F.sub(F.sub(F.mul(grad_output, grad), F.mul(F.sum(F.mul(output, grad_output), dim, True), grad)),
                 F.mul(grad_output, F.sum(F.mul(output, grad), dim, True)))


def _unsqueeze_to(F, g, dim, sizes):
    # unsqueeze_to(grad, dim, sizes): back to sizes' rank where the squeezed dim had size 1
    if not sizes:
        return g
    d = dim % len(sizes)
    return F.unsqueeze(g, d) if sizes[d] == 1 else g


# --- torch.nn.functional, losses, more tensor functions (issue 13) -------------------------------
# Rows as PyTorch 2.13.0 records them (class names, saved values, formulas of its
# derivatives.yaml / FunctionsManual); each was recorded with torch before it was written.

#: PyTorch's Reduction enum, as its loss nodes save it (_saved_reduction)
REDUCTION = {"none": 0, "mean": 1, "sum": 2}
_SQRT_2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 * math.pi)
_GELU_BETA = math.sqrt(2.0 / math.pi)  # kBeta in PyTorch's tanh approximation
_GELU_KAPPA = 0.044715
_BCE_EPSILON = 1e-12  # binary_cross_entropy_backward's clamp of (1 - p)·p


def shape_of(x) -> tuple:
    """The shape of a value a rule reads: a numpy array or scalar, a Tensor view, a Python number."""
    return tuple(getattr(x, "shape", ()))


def _reduce(loss, reduction: int):
    loss = np.asarray(loss)
    if reduction == 1:
        return np.mean(loss, dtype=loss.dtype)
    if reduction == 2:
        return np.sum(loss, dtype=loss.dtype)
    return loss


def _loss_norm_of(reduction, x, t, numerator=1.0):
    """``numerator`` divided by the elements a mean averaged (the same number for sum and none)."""
    if reduction != 1:
        return numerator
    n = math.prod(np.broadcast_shapes(shape_of(x), shape_of(t)))
    return numerator / n if n else math.nan


def _gelu(a, approximate):
    a = np.asarray(a)
    if approximate == "tanh":
        inner = _GELU_BETA * (a + _GELU_KAPPA * a * a * a)
        return (0.5 * a * (1 + np.tanh(inner))).astype(a.dtype)
    return (a * 0.5 * (1 + _erf_forward(a / _SQRT_2))).astype(a.dtype)


def _gelu_grad(F, g, x, approximate):
    """gelu_backward(grad, self, approximate): PyTorch's kernel (GeluBackwardBackward0 in a double graph)."""
    if approximate == "tanh":  # GeluBackward0's tanh formula, as PyTorch's kernel writes it
        x_sq = F.mul(x, x)
        inner = F.mul(_GELU_BETA, F.add(x, F.mul(_GELU_KAPPA, F.mul(x_sq, x))))
        t = F.tanh(inner)
        left = F.mul(0.5, x)
        right_d = F.mul(F.mul(left, F.sub(1, F.mul(t, t))), F.mul(_GELU_BETA, F.add(1, F.mul(3 * _GELU_KAPPA, x_sq))))
        return F.mul(g, F.add(F.mul(0.5, F.add(1, t)), right_d))
    cdf = F.mul(0.5, F.add(1, F.erf(F.div(x, _SQRT_2))))
    pdf = F.div(F.exp(F.mul(-0.5, F.mul(x, x))), _SQRT_2_PI)
    return F.mul(g, F.add(cdf, F.mul(x, pdf)))


def _elu(a, alpha, scale, input_scale):
    a = np.asarray(a)
    return np.where(a > 0, a * scale, np.expm1(a * input_scale) * (alpha * scale)).astype(a.dtype)


def _elu_grad(F, g, x, alpha, scale, input_scale):
    """elu_backward(grad, alpha, scale, input_scale, is_result=False, self)."""
    coef = alpha * scale * input_scale
    inner = x if input_scale == 1 else F.mul(x, input_scale)
    positive = g if scale == 1 else F.mul(g, scale)
    return F.where(F.le(x, 0), F.mul(F.mul(g, coef), F.exp(inner)), positive)


def _silu_backward(F, g, x):
    # infinitely_differentiable_silu_backward: one sigmoid, used twice
    sigmoid = F.sigmoid(x)
    return F.mul(F.mul(g, sigmoid), F.add(1, F.mul(x, F.sub(1, sigmoid))))


def _softplus(a, beta, threshold):
    a = np.asarray(a)
    return np.where(a * beta > threshold, a, np.log1p(np.exp(a * beta)) / beta).astype(a.dtype)


def _softplus_grad(F, g, x, beta, threshold):
    """softplus_backward(grad, self, beta, threshold)."""
    z = F.exp(F.mul(x, beta))
    return F.where(F.gt(F.mul(x, beta), threshold), g, F.div(F.mul(g, z), F.add(z, 1)))


def _log_softmax(x, dim):
    x = np.asarray(x)
    dim = _axis(x, dim)
    m = np.max(x, axis=dim, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    shifted = x - m
    return (shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))).astype(x.dtype)


def _logsumexp(x, dim, keepdim):
    x = np.asarray(x)
    axes = None if x.ndim == 0 else normalized_dims(dim, x.ndim)
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isinf(m), 0, m)
    out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return (out if keepdim or x.ndim == 0 else np.squeeze(out, axes)).astype(x.dtype)


def _restore_dims(F, t, s):
    """``t`` (reduced over ``s["dim"]``) with those dims back as size 1 (restore_reduced_dims)."""
    ndim = len(shape_of(s["self"]))
    if s["keepdim"] or not ndim:
        return t
    dims = tuple(range(ndim)) if s["dim"] in (None, ()) else normalized_dims(s["dim"], ndim)
    for d in sorted(dims):
        t = F.unsqueeze(t, d)
    return t


def _mse_grad(F, g, x, t, reduction):
    """mse_loss_backward(grad, self, target, reduction) (the target's gradient swaps self and target)."""
    return F.mul(F.mul(_loss_norm_of(reduction, x, t, 2.0), F.sub(x, t)), g)


def _smooth_l1_grad(F, g, x, t, reduction, beta):
    d, norm = F.sub(x, t), _loss_norm_of(reduction, x, t)
    gn = F.mul(g, norm)
    return F.where(F.lt(d, -beta), F.neg(gn), F.where(F.gt(d, beta), gn, F.div(F.mul(d, gn), beta)))


def _huber_grad(F, g, x, t, reduction, delta):
    d, norm = F.sub(x, t), _loss_norm_of(reduction, x, t)
    gn = F.mul(g, norm)
    return F.where(F.lt(d, -delta), F.mul(gn, -delta), F.where(F.gt(d, delta), F.mul(gn, delta), F.mul(d, gn)))


def _loss_kernel(key, extra=()):
    """A pointwise loss's rule: PyTorch's ``<loss>_backward`` kernel once for self and once, with
    self and target swapped, for the target (one node each in the double-backward graph)."""
    def vjp(F, g, s):
        params = {"reduction": s["reduction"], **{name: s[name] for name in extra}}
        return (F.fused(key, g, s["self"], s["target"], **params),
                F.fused(key, g, s["target"], s["self"], **params))
    return vjp


def _with_weight(F, t, weight):
    return t if weight is None else F.mul(t, weight)


def _bce(p, t, reduction, weight):
    p = np.asarray(p)
    loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))
    if weight is not None:
        loss = loss * weight
    return _reduce(np.asarray(loss, dtype=p.dtype), reduction)


def _bce_grad(F, g, p, t, weight, reduction):
    """binary_cross_entropy_backward(grad, self, target, weight, reduction): PyTorch's kernel."""
    gn = F.mul(g, _loss_norm_of(reduction, p, t))
    grad = F.div(F.mul(gn, F.sub(p, t)), F.clamp_min(F.mul(F.sub(1, p), p), _BCE_EPSILON))
    return _with_weight(F, grad, weight)


def _mean_div(F, t, reduction, like):
    """``t.div_(like.numel())`` for the mean (DivBackward1: the count is a C++ Scalar)."""
    return F.div(t, math.prod(shape_of(like))) if reduction == 1 else t


def _bce_backward(F, g, s):
    # self: the fused kernel; target: binary_cross_entropy_target_backward, -logit(self)·grad
    p, t, w = s["self"], s["target"], s["weight"]
    grad_target = _with_weight(F, F.mul(F.neg(F.logit(p)), g), w)
    return (F.fused("binary_cross_entropy_backward", g, p, t, weight=w, reduction=s["reduction"]),
            _mean_div(F, grad_target, s["reduction"], t))


def _bce_logits(x, t, reduction, weight, pos_weight):
    x = np.asarray(x)
    max_val = np.maximum(-x, 0)
    softplus = np.log(np.exp(-max_val) + np.exp(-x - max_val)) + max_val  # log(1 + e^-x), stably
    log_weight = 1 if pos_weight is None else (pos_weight - 1) * t + 1
    loss = (1 - t) * x + log_weight * softplus
    if weight is not None:
        loss = loss * weight
    return _reduce(np.asarray(loss, dtype=x.dtype), reduction)


def _bce_logits_backward(F, g, s):
    # binary_cross_entropy_with_logits_backward and _target_backward (FunctionsManual, composites)
    x, t, pw, w, reduction = s["self"], s["target"], s["pos_weight"], s["weight"], s["reduction"]
    if pw is None:
        grad_self = F.sub(F.sigmoid(x), t)
        grad_target = F.mul(F.neg(x), g)
    else:
        pt = F.mul(pw, t)
        grad_self = F.sub(F.mul(F.sub(F.add(pt, 1), t), F.sigmoid(x)), pt)
        grad_target = F.mul(F.sub(F.log_sigmoid(F.neg(x)), F.mul(F.log_sigmoid(x), pw)), g)
    grad_self = _with_weight(F, F.mul(grad_self, g), w)
    grad_target = _with_weight(F, grad_target, w)
    return _mean_div(F, grad_self, reduction, x), _mean_div(F, grad_target, reduction, t)


def nll_coefficients(shape, target, weight, ignore_index):
    """-weight[target] at each sample's target class (0 elsewhere and for ignored samples), and the
    total weight of the samples counted: ∂loss/∂self of nll_loss with reduction='sum'."""
    self_2d = len(shape) == 2
    classes = shape[-1]
    target = np.asarray(target).reshape(-1)
    w = np.ones(classes) if weight is None else np.asarray(weight, dtype=np.float64)
    coef = np.zeros((len(target), classes))
    total = 0.0
    for n, c in enumerate(target.tolist()):
        if c == ignore_index:
            continue
        coef[n, c] = -w[c]
        total += w[c]
    return (coef if self_2d else coef.reshape(shape)), total


def _nll(x, target, weight, reduction, ignore_index):
    x = np.asarray(x)
    coef, total = nll_coefficients(x.shape, target, weight, ignore_index)
    per_sample = np.sum(coef * x, axis=-1) if x.ndim == 2 else np.sum(coef * x)
    if reduction == 0:
        return np.asarray(per_sample, dtype=x.dtype)
    summed = np.sum(per_sample)
    return np.asarray(summed / total if reduction == 1 else summed, dtype=x.dtype)


def _nll_derived(args, params):
    x = args["self"]
    _, total = nll_coefficients(shape_of(x), params["target"], params["weight"], params["ignore_index"])
    dtype = np.asarray(x).dtype
    # PyTorch leaves total_weight 0 for reduction='none' of a batch (N, C), not of one sample (C,)
    none_of_batch = params["reduction"] == 0 and len(shape_of(x)) == 2
    return {"total_weight": np.asarray(0.0 if none_of_batch else total, dtype=dtype)}


def _nll_grad(grad_output, self, target, weight, reduction, ignore_index, total_weight):
    """nll_loss_backward(grad, self, target, weight, reduction, ignore_index, total_weight)."""
    coef, _ = nll_coefficients(shape_of(self), target, weight, ignore_index)
    dtype = np.asarray(total_weight).dtype
    if reduction == 1:  # only the samples counted are written (an ignored one's 0 stays 0, as torch's kernel)
        with np.errstate(all="ignore"):
            coef = np.where(coef != 0, coef / float(total_weight), 0.0)
    g = grad_output
    if reduction == 0 and len(shape_of(self)) == 2:
        g = np.expand_dims(g, 1)
    return np.multiply(g, coef.astype(dtype))


def _nll_backward(F, g, s):
    return (F.fused("nll_loss_backward", g, s["self"], target=s["target"], weight=s["weight"],
                    reduction=s["reduction"], ignore_index=s["ignore_index"], total_weight=F.value(s["total_weight"])),)


def _clamp_tensor_backward(F, g, s):
    # clamp_backward and clamp_backward_min_max: where(pred, grad, 0) for self and each bound given
    x, lo, hi = s["self"], s["min"], s["max"]
    zero = F.zeros_like(F.value(g))
    if lo is not None and hi is not None:
        pred = F.logical_and(F.ge(x, lo), F.le(x, hi))
        grad_min = F.where(F.logical_and(F.lt(x, lo), F.lt(lo, hi)), g, zero)
        grad_max = F.where(F.logical_or(F.gt(x, hi), F.lt(hi, lo)), g, zero)
        return F.where(pred, g, zero), grad_min, grad_max
    if lo is not None:
        return F.where(F.ge(x, lo), g, zero), F.where(F.lt(x, lo), g, zero), None
    return F.where(F.le(x, hi), g, zero), None, F.where(F.gt(x, hi), g, zero)


def _norm_dim(a, ord, dim, keepdim):
    a = np.asarray(a)
    axes = normalized_dims(dim, a.ndim) if a.ndim else None
    if ord == 2:
        out = np.sqrt(np.sum(np.square(a), axis=axes, keepdims=keepdim, dtype=a.dtype))
    elif ord == 0:  # the number of nonzero elements
        out = np.sum(np.not_equal(a, 0), axis=axes, keepdims=keepdim, dtype=a.dtype)
    elif math.isinf(ord):
        out = (np.amax if ord > 0 else np.amin)(np.abs(a), axis=axes, keepdims=keepdim)
    else:
        out = np.sum(np.abs(a) ** ord, axis=axes, keepdims=keepdim, dtype=a.dtype) ** (1.0 / ord)
    return np.asarray(out, dtype=a.dtype)


def _norm_dim_backward(F, g, s):
    # linalg_vector_norm_backward for ord 1, 2 and any other finite ord ≥ 1
    x, ord = s["self"], s["ord"]
    g, norm = _restore_dims(F, g, s), _restore_dims(F, s["result"], s)
    if ord == 0:  # norm_backward returns an undefined tensor: no gradient at all (x.grad stays None)
        return (None,)
    if ord == 1:
        return (F.mul(F.sgn(x), g),)
    if math.isinf(ord):  # sgn(self) * ((grad / mask.sum(dim, true)) * mask), mask: |self| == norm or nan
        ax = np.abs(F.value(x))
        mask = np.logical_or(np.equal(ax, F.value(norm)), np.isnan(ax))
        dims = tuple(range(mask.ndim)) if s["dim"] in (None, ()) else normalized_dims(s["dim"], mask.ndim)
        count = np.sum(mask, axis=dims if mask.ndim else None, keepdims=True, dtype=np.int64)
        return (F.mul(F.sgn(x), F.mul(F.div(g, count), mask)),)
    if ord < 1:  # self.sgn() * self.abs().pow_(p - 1).masked_fill_(self == 0, 0) * grad * norm.pow(1 - p)
        scaled = F.mul(F.sgn(x), F.masked_fill(F.pow(F.abs(x), ord - 1), F.eq(F.value(x), 0), 0))
        return (F.mul(F.mul(scaled, g), F.pow(norm, 1 - ord)),)
    if ord == 2:  # grad * (self / norm).masked_fill_(norm == 0, 0)
        return (F.mul(g, F.masked_fill(F.div(x, norm), F.eq(F.value(norm), 0), 0)),)
    # self_scaled * (grad / norm.pow(p - 1)).masked_fill_(norm == 0, 0)
    scaled = F.mul(F.sgn(x), F.pow(F.abs(x), ord - 1)) if ord < 2 else F.mul(x, F.pow(F.abs(x), ord - 2))
    return (F.mul(scaled, F.masked_fill(F.div(g, F.pow(norm, ord - 1)), F.eq(F.value(norm), 0), 0)),)


def _strides(m) -> tuple:
    m = np.asarray(m)
    return tuple(s // m.itemsize for s in m.strides) if m.itemsize else ()


def _addmm_meta(args, params):
    # as _mm_meta: the strides are the tape's (Graph.context puts each input's there)
    from .layout import contiguous_strides

    a, b = np.shape(args["mat1"]), np.shape(args["mat2"])
    return {"mat1_sym_sizes": a, "mat1_sym_strides": contiguous_strides(a),
            "mat2_sym_sizes": b, "mat2_sym_strides": contiguous_strides(b)}


def _addmm_backward(F, g, s):
    # the bias's gradient is grad·beta (the engine sums it to the bias's shape); mat1's and mat2's
    # are mm's (mm_mat1_backward / mm_mat2_backward, with their column-major branch)
    as_mm = {"self": s["mat1"], "mat2": s["mat2"], "self_sym_sizes": s["mat1_sym_sizes"],
             "self_sym_strides": s["mat1_sym_strides"], "mat2_sym_sizes": s["mat2_sym_sizes"],
             "mat2_sym_strides": s["mat2_sym_strides"]}
    grad_mat1, grad_mat2 = _mm_backward(F, g, as_mm)
    if s["alpha"] != 1:
        grad_mat1, grad_mat2 = F.mul(grad_mat1, s["alpha"]), F.mul(grad_mat2, s["alpha"])
    return (g if s["beta"] == 1 else F.mul(g, s["beta"])), grad_mat1, grad_mat2


def _var(a, dim, correction, keepdim, root: bool = False):
    """var (``root``: std) as ATen's CPU kernel computes it: accumulated in double, the square
    root taken in double, then rounded to the tensor's dtype once (so std of float32 values
    near 1e24 is finite where their variance overflows float32)."""
    a = np.asarray(a)
    axes = None if dim is None or a.ndim == 0 else normalized_dims(dim, a.ndim)
    n = a.size if axes is None else math.prod(a.shape[d] for d in axes)
    dof = max(0, n - (1 if correction is None else correction))
    wide = a.astype(np.float64)
    mean = np.mean(wide, axis=axes, keepdims=True)
    sq = np.sum(np.square(wide - mean), axis=axes, keepdims=keepdim or a.ndim == 0)
    out = np.divide(sq, dof)
    return np.asarray(np.sqrt(out) if root else out, dtype=a.dtype)


def _var_backward(F, g, s):
    # var_backward: (2 / (N - correction))·grad·(self - self.mean(dim, keepdim=True))
    x = s["self"]
    shape = shape_of(x)
    axes = tuple(range(len(shape))) if s["dim"] is None else normalized_dims(s["dim"], len(shape))
    n = math.prod(shape[d] for d in axes) if shape else 1
    dof = max(0, n - (1 if s["correction"] is None else s["correction"]))
    if shape:
        g = _restore_dims(F, g, dict(s, dim=axes))
        centred = F.sub(x, F.mean(x, axes, True))
    else:
        centred = F.sub(x, x)
    return (F.mul(F.mul(g, 2.0 / dof if dof else math.inf), centred),)


def _std_backward(F, g, s):
    result = s["result"]
    scaled = F.where(F.eq(result, 0), F.zeros_like(F.value(result)), F.div(g, F.mul(result, 2)))
    return _var_backward(F, scaled, s)


def _amax_backward(F, g, s):
    # scale_grad_by_count: ties share the gradient evenly
    x = s["self"]
    shape = shape_of(x)
    dims = tuple(range(len(shape))) if s["dim"] in (None, ()) else normalized_dims(s["dim"], len(shape))
    ctx = dict(s, dim=dims)
    result = _restore_dims(NumpyOps, F.value(s["result"]), ctx) if shape else F.value(s["result"])
    mask = np.equal(F.value(x), result)
    count = np.sum(mask, axis=dims if shape else None, keepdims=True)
    return (F.mul(F.div(_restore_dims(F, g, ctx), count.astype(np.asarray(result).dtype)), mask.astype(np.asarray(result).dtype)),)


def _max_dim_derived(args, params):
    a = np.asarray(args["self"])
    dim = params["dim"]
    pick = np.argmax if params["which"] == "max" else np.argmin
    idx = np.asarray(pick(a, axis=dim % a.ndim) if a.ndim else 0, dtype=np.int64)
    if params["keepdim"] and a.ndim:
        idx = np.expand_dims(idx, dim % a.ndim)
    return {"indices": idx, "self_sym_sizes": a.shape}


def _max_dim(a, dim, keepdim, which):
    a = np.asarray(a)
    if a.ndim == 0:
        return a
    return (np.max if which == "max" else np.min)(a, axis=dim % a.ndim, keepdims=keepdim)


def _max_dim_backward(F, g, s):
    # value_selecting_reduction_backward: the gradient goes to the index each value came from
    sizes = s["self_sym_sizes"]
    if not sizes:
        return (g,)
    d = s["dim"] % len(sizes)
    idx = np.asarray(s["indices"])
    if not s["keepdim"]:
        idx = np.expand_dims(idx, d)
        g = F.unsqueeze(g, d)
    mask = np.arange(sizes[d]).reshape((-1,) + (1,) * (len(sizes) - 1 - d)) == idx
    return (F.where(mask, F.expand(g, sizes), np.zeros(sizes, dtype=np.asarray(F.value(g)).dtype)),)


def _repeat_backward(F, g, s):
    sizes, repeats = s["self_sym_sizes"], s["repeats"]
    lead = len(repeats) - len(sizes)
    padded = (1,) * lead + tuple(sizes)
    split = []
    for r, n in zip(repeats, padded):
        split += [r, n]
    summed = F.sum(F.reshape(g, split), tuple(range(0, 2 * len(padded), 2)))
    return (F.reshape(summed, sizes),)


def _atan2_backward(F, g, s):
    # atan2_backward, with 1 / (self² + other²) taken as 0 where both are 0 (as PyTorch gives)
    x, y = s["self"], s["other"]
    denominator = F.add(F.mul(x, x), F.mul(y, y))
    recip = F.where(F.eq(denominator, 0), F.zeros_like(F.value(denominator)), F.div(1, denominator))
    return F.mul(F.mul(g, y), recip), F.mul(F.mul(g, F.neg(x)), recip)


def _round(a, decimals=0):
    return np.round(a, decimals) if decimals else np.round(a)


def _zero_rule(F, g, s):
    return (F.zeros_like(F.value(g)),)


ROWS += [
    # --- activations (torch.nn.functional) ---------------------------------------------------
    Op("leaky_relu", "LeakyReluBackward0", ("self",),
       lambda a, negative_slope: np.where(np.asarray(a) > 0, a, np.multiply(a, negative_slope)),
       lambda F, g, s: (F.fused("leaky_relu_backward", g, s["self"], negative_slope=s["negative_slope"]),),
       params=("negative_slope",), saves=("negative_slope", "self"), doc="F.leaky_relu(x, negative_slope)",
       rules=("grad where self > 0, else grad·negative_slope",), refuses=_kernel("leaky_relu_cpu"),
       sympy=lambda sp, x, slope=None: sp.Piecewise((x, x > 0), ((sp.Rational(1, 100) if slope is None else slope) * x, True))),
    Op("elu", "EluBackward0", ("self",), _elu,
       lambda F, g, s: (F.fused("elu_backward", g, s["self"], alpha=s["alpha"], scale=s["scale"],
                                input_scale=s["input_scale"], is_result=False),), params=("alpha", "scale", "input_scale"),
       saves=("alpha", "input_scale", "scale", "self"), doc="F.elu(x, alpha)",
       rules=("grad·scale where self > 0, else grad·alpha·scale·input_scale·exp(self·input_scale)",),
       refuses=_kernel("elu_cpu"),
       sympy=lambda sp, x, alpha=1: sp.Piecewise((x, x > 0), (alpha * (sp.exp(x) - 1), True))),
    Op("gelu", "GeluBackward0", ("self",), _gelu,
       lambda F, g, s: (F.fused("gelu_backward", g, s["self"], approximate=s["approximate"]),), params=("approximate",),
       saves=("approximate", "self"), doc="F.gelu(x, approximate='none' | 'tanh')",
       rules=("grad·(Φ(self) + self·φ(self)), Φ and φ the normal cdf and pdf (for the tanh approximation: "
              "the derivative of its tanh formula)",), refuses=_kernel("GeluKernelImpl"),
       sympy=lambda sp, x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2),
    Op("silu", "SiluBackward0", ("self",), lambda a: np.multiply(a, _sigmoid(a)),
       lambda F, g, s: (_silu_backward(F, g, s["self"]),),
       saves=("self",), doc="F.silu(x) = x·sigmoid(x)",
       rules=("grad·sigmoid(self)·(1 + self·(1 - sigmoid(self)))",), refuses=_kernel("silu_cpu"),
       sympy=lambda sp, x: x / (1 + sp.exp(-x))),
    Op("softplus", "SoftplusBackward0", ("self",), _softplus,
       lambda F, g, s: (F.fused("softplus_backward", g, s["self"], beta=s["beta"], threshold=s["threshold"]),),
       params=("beta", "threshold"),
       saves=("beta", "self", "threshold"), doc="F.softplus(x, beta, threshold)",
       rules=("grad where self·beta > threshold, else grad·z / (z + 1) with z = exp(self·beta)",),
       refuses=_kernel("softplus_cpu"),
       sympy=lambda sp, x: sp.log(1 + sp.exp(x))),
    Op("log_softmax", "LogSoftmaxBackward0", ("self",), _log_softmax,
       lambda F, g, s: (F.fused("log_softmax_backward_data", g, s["result"], dim=s["dim"]),),
       params=("dim",), saves=("dim", "result"), doc="F.log_softmax(x, dim)",
       rules=("grad - exp(result)·sum(grad, dim)",), refuses=_kernel("log_softmax_lastdim_kernel_impl")),
    Op("logsumexp", "LogsumexpBackward0", ("self",), _logsumexp,
       lambda F, g, s: (F.mul(_restore_dims(F, g, s), F.exp(F.sub(s["self"], _restore_dims(F, s["result"], s)))),),
       params=("dim", "keepdim"), saves=("dim", "keepdim", "result", "self"), doc="torch.logsumexp(x, dim)",
       rules=("grad·exp(self - result)",), integers="float",
       sympy=lambda sp, x, dim=0: x),
    # --- losses --------------------------------------------------------------------------------
    Op("mse_loss", "MseLossBackward0", ("self", "target"),
       lambda a, t, reduction: _reduce(np.square(np.subtract(a, t)), reduction), _loss_kernel("mse_loss_backward"),
       params=("reduction",), saves=("reduction", "self", "target"), doc="F.mse_loss(input, target)",
       rules=("2·(self - target)·grad (÷ the number of elements for the mean)",
              "-2·(self - target)·grad (÷ the number of elements for the mean)"), refuses=_kernel("mse_cpu"),
       sympy=lambda sp, x, y: (x - y) ** 2),
    Op("smooth_l1_loss", "SmoothL1LossBackward0", ("self", "target"),
       lambda a, t, reduction, beta: _reduce(np.where(np.abs(np.subtract(a, t)) < beta,
                                                     0.5 * np.square(np.subtract(a, t)) / (beta or 1),
                                                     np.abs(np.subtract(a, t)) - 0.5 * beta), reduction),
       _loss_kernel("smooth_l1_loss_backward", ("beta",)), params=("reduction", "beta"), saves=("beta", "reduction", "self", "target"),
       doc="F.smooth_l1_loss(input, target, beta)",
       rules=("grad·(self - target) / beta where |self - target| < beta, else ±grad (÷ the number of elements "
              "for the mean)", "the negative of the input's gradient"), refuses=_kernel("smooth_l1_cpu")),
    Op("huber_loss", "HuberLossBackward0", ("self", "target"),
       lambda a, t, reduction, delta: _reduce(np.where(np.abs(np.subtract(a, t)) < delta,
                                                      0.5 * np.square(np.subtract(a, t)),
                                                      delta * (np.abs(np.subtract(a, t)) - 0.5 * delta)), reduction),
       _loss_kernel("huber_loss_backward", ("delta",)), params=("reduction", "delta"), saves=("delta", "reduction", "self", "target"),
       doc="F.huber_loss(input, target, delta)",
       rules=("grad·(self - target) where |self - target| ≤ delta, else ±grad·delta (÷ the number of "
              "elements for the mean)", "the negative of the input's gradient"),
       refuses=dict(_kernel("huber_cpu"), mixed="Found dtype Long but expected {float}")),
    Op("binary_cross_entropy", "BinaryCrossEntropyBackward0", ("self", "target"), _bce, _bce_backward,
       params=("reduction", "weight"), saves=("reduction", "self", "target", "weight"),
       doc="F.binary_cross_entropy(p, target, weight)",
       rules=("grad·(self - target) / max((1 - self)·self, 1e-12) (× the weights if given; ÷ the number of "
              "elements for the mean)", "grad·(log(1 - self) - log(self)) (× the weights if given; ÷ the number "
              "of elements for the mean)"), refuses=_kernel("binary_cross_entropy")),
    Op("binary_cross_entropy_with_logits", "BinaryCrossEntropyWithLogitsBackward0", ("self", "target"),
       _bce_logits, _bce_logits_backward, params=("reduction", "weight", "pos_weight"),
       saves=("pos_weight", "reduction", "self", "target", "weight"),
       doc="F.binary_cross_entropy_with_logits(x, target, weight, pos_weight)",
       rules=("grad·(sigmoid(self) - target) (with a positive-class weight w: grad·((w·target + 1 - "
              "target)·sigmoid(self) - w·target); × the weights if given; ÷ the number of elements for the mean)",
              "-grad·self (with a positive-class weight w: grad·((w - 1)·softplus(-self) - self); × the weights "
              "if given; ÷ the number of elements for the mean)"),
       refuses={"mixed": "result type {float} can't be cast to the desired output type Long"},
       sympy=lambda sp, x, t: (1 - t) * x + sp.log(1 + sp.exp(-x))),
    Op("nll_loss", "NllLossBackward0", ("self",), _nll, _nll_backward,
       params=("target", "weight", "reduction", "ignore_index"),
       saves=("ignore_index", "reduction", "self", "target", "total_weight", "weight"), derived=_nll_derived,
       doc="F.nll_loss(log_probs, target)",
       rules=("-grad at each sample's target class (× its class weight if given; ÷ total_weight for the mean)",),
       refuses=_kernel("nll_loss_out_frame")),
    # --- more tensor functions ----------------------------------------------------------------
    Op("clamp_min", "ClampMinBackward0", ("self",), lambda a, min: np.maximum(a, min),
       lambda F, g, s: (F.where(F.ge(s["self"], s["min"]), g, F.zeros_like(F.value(g))),),
       params=("min",), saves=("min", "self"), doc="x.clamp_min(min)", rules=("grad where self ≥ min, else 0",),
       sympy=lambda sp, x, lo: sp.Max(x, lo)),
    Op("clamp_max", "ClampMaxBackward0", ("self",), lambda a, max: np.minimum(a, max),
       lambda F, g, s: (F.where(F.le(s["self"], s["max"]), g, F.zeros_like(F.value(g))),),
       params=("max",), saves=("max", "self"), doc="x.clamp_max(max)", rules=("grad where self ≤ max, else 0",),
       sympy=lambda sp, x, hi: sp.Min(x, hi)),
    Op("clamp_min_tensor", "ClampMinBackward1", ("self", "min"), np.maximum,
       lambda F, g, s: (F.where(F.ge(s["self"], s["min"]), g, F.zeros_like(F.value(g))),
                        F.where(F.lt(s["self"], s["min"]), g, F.zeros_like(F.value(g)))),
       saves=("min", "self"), doc="x.clamp_min(tensor)",
       rules=("grad where self ≥ min, else 0", "grad where self < min, else 0")),
    Op("clamp_max_tensor", "ClampMaxBackward1", ("self", "max"), np.minimum,
       lambda F, g, s: (F.where(F.le(s["self"], s["max"]), g, F.zeros_like(F.value(g))),
                        F.where(F.gt(s["self"], s["max"]), g, F.zeros_like(F.value(g)))),
       saves=("max", "self"), doc="x.clamp_max(tensor)",
       rules=("grad where self ≤ max, else 0", "grad where self > max, else 0")),
    Op("clamp_tensor", "ClampBackward0", ("self", "min", "max"), _clamp_forward, _clamp_tensor_backward,
       saves=("max", "min", "self"), doc="clamp(x, min, max) with tensor bounds (a missing one None)",
       rules=("grad where min ≤ self ≤ max, else 0", "grad where self < min (and min < max), else 0",
              "grad where self > max (or max < min), else 0")),
    Op("norm_dim", "LinalgVectorNormBackward0", ("self",), _norm_dim, _norm_dim_backward,
       params=("ord", "dim", "keepdim"), saves=("dim", "keepdim", "ord", "result", "self"),
       doc="torch.linalg.vector_norm(x, ord, dim, keepdim) (F.normalize's norm)",
       rules=("grad·self / result for the 2-norm (the 1-norm: grad·sgn(self); a p-norm: "
              "grad·self·|self|^(p-2) / result^(p-1))",), refuses=_NORM_REFUSES),
    Op("addmm", "AddmmBackward0", ("self", "mat1", "mat2"),
       lambda c, a, b, beta=1, alpha=1: np.add(c, np.matmul(a, b)),
       _addmm_backward, params=("beta", "alpha"),
       saves=("alpha", "beta", "mat1", "mat1_sym_sizes", "mat1_sym_strides", "mat2", "mat2_sym_sizes", "mat2_sym_strides"),
       derived=_addmm_meta, save_when={"mat1": "mat2", "mat2": "mat1", "mat1_sym_strides": "mat1",
                                       "mat2_sym_strides": "mat2"}, doc="bias + mat1 @ mat2 (F.linear)",
       rules=("grad summed to self's shape", "grad @ mat2ᵀ", "mat1ᵀ @ grad")),
    Op("squeeze_all", "SqueezeBackward0", ("self",), lambda a: np.squeeze(a),
       lambda F, g, s: (F.reshape(g, s["self_sym_sizes"]),), saves=("self_sym_sizes",), derived=input_sizes,
       doc="x.squeeze()", rules=("grad reshaped to self_sym_sizes",)),
    # squeeze(dim) is issue 15's squeeze_dim row (SqueezeBackward1)
    Op("squeeze_dims", "SqueezeBackward2", ("self",),
       lambda a, dim: np.squeeze(a, tuple(d for d in normalized_dims(dim, np.ndim(a)) if np.shape(a)[d] == 1))
       if np.ndim(a) else a,
       lambda F, g, s: (F.reshape(g, s["self_sym_sizes"]),), params=("dim",), saves=("dim", "self_sym_sizes"),
       derived=input_sizes, doc="x.squeeze((d0, d1))", rules=("grad reshaped to self_sym_sizes",)),
    Op("repeat", "RepeatBackward0", ("self",),
       lambda a, repeats: np.tile(a, repeats), _repeat_backward, params=("repeats",),
       saves=("repeats", "self_sym_sizes"), derived=input_sizes, doc="x.repeat(*repeats)",
       rules=("grad summed over the repeated copies",)),
    Op("var", "VarBackward0", ("self",), _var, _var_backward, params=("dim", "correction", "keepdim"),
       saves=("correction", "dim", "keepdim", "self"), doc="x.var(dim, correction)",
       rules=("grad·2·(self - mean(self)) / (N - correction)",), refuses=_VAR_REFUSES),
    Op("std", "StdBackward0", ("self",), lambda a, dim, correction, keepdim: _var(a, dim, correction, keepdim, root=True),
       _std_backward, params=("dim", "correction", "keepdim"), saves=("correction", "dim", "keepdim", "result", "self"),
       doc="x.std(dim, correction)", rules=("grad·(self - mean(self)) / ((N - correction)·result)",),
       refuses=_VAR_REFUSES),
    Op("amax", "AmaxBackward0", ("self",),
       lambda a, dim, keepdim: np.amax(a, axis=None if dim == () or np.ndim(a) == 0 else normalized_dims(dim, np.ndim(a)),
                                       keepdims=keepdim),
       _amax_backward, params=("dim", "keepdim"), saves=("dim", "keepdim", "result", "self"),
       doc="x.amax(dim)", rules=("grad / (count of result) where self = result, else 0",),
       sympy=_itself),
    Op("amin", "AminBackward0", ("self",),
       lambda a, dim, keepdim: np.amin(a, axis=None if dim == () or np.ndim(a) == 0 else normalized_dims(dim, np.ndim(a)),
                                       keepdims=keepdim),
       _amax_backward, params=("dim", "keepdim"), saves=("dim", "keepdim", "result", "self"),
       doc="x.amin(dim)", rules=("grad / (count of result) where self = result, else 0",),
       sympy=_itself),
    Op("max_dim", "MaxBackward0", ("self",), _max_dim, _max_dim_backward, params=("dim", "keepdim", "which"),
       saves=("dim", "indices", "keepdim", "self_sym_sizes"), derived=_max_dim_derived,
       doc="x.max(dim).values", rules=("grad at indices along dim, else 0",)),
    Op("min_dim", "MinBackward0", ("self",), _max_dim, _max_dim_backward, params=("dim", "keepdim", "which"),
       saves=("dim", "indices", "keepdim", "self_sym_sizes"), derived=_max_dim_derived,
       doc="x.min(dim).values", rules=("grad at indices along dim, else 0",)),
    Op("atan2", "Atan2Backward0", ("self", "other"), np.arctan2, _atan2_backward,
       saves=("other", "self"), doc="torch.atan2(y, x)",
       rules=("grad·other / (other² + self²)", "-grad·self / (other² + self²)"),
       sympy=lambda sp, y, x: sp.atan2(y, x)),
    Op("floor", "FloorBackward0", ("self",), np.floor, _zero_rule, doc="floor(x); its gradient is 0", rules=("0",),
       refuses=_kernel("floor_vml_cpu", ("Bool",))),
    Op("ceil", "CeilBackward0", ("self",), np.ceil, _zero_rule, doc="ceil(x); its gradient is 0", rules=("0",),
       refuses=_kernel("ceil_vml_cpu", ("Bool",))),
    Op("round", "RoundBackward0", ("self",), _round, _zero_rule, doc="round(x), half to even; its gradient is 0",
       rules=("0",), refuses=_kernel("round_vml_cpu", ("Bool",))),
    Op("round_decimals", "RoundBackward1", ("self",), _round, _zero_rule, params=("decimals",),
       doc="round(x, decimals=d); its gradient is 0", rules=("0",), refuses=_kernel("round_cpu")),
    Op("sign", "SignBackward0", ("self",), _sign, _zero_rule, doc="sign(x); its gradient is 0", rules=("0",)),
]



# --- the fused backward kernels of the F. functions (their double-backward nodes) -------------------
# PyTorch computes these functions' gradients with one kernel each (derivatives.yaml's
# ``*_backward`` entries); with create_graph=True each kernel call is one node of the
# double-backward graph (GeluBackwardBackward0, MseLossBackwardBackward0, ...), whose own rule is
# derivatives.yaml's entry for the kernel, with FunctionsManual.cpp's *_double_backward formulas.
# The first-order rows above call them through ``F.fused(key, ...)``.

def _type_as(F, mask, like):
    """``mask.type_as(like)``: a constant 0/1 tensor of ``like``'s dtype."""
    return np.asarray(F.value(mask)).astype(np.asarray(F.value(like)).dtype)


def _logit(x):
    x = np.asarray(x)
    return np.log(np.divide(x, np.subtract(1, x)), dtype=x.dtype)


def _log_sigmoid(x):
    x = np.asarray(x)
    return np.asarray(np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))), dtype=x.dtype)


def _log_sigmoid_buffer(args, params):
    x = np.asarray(args["self"])
    return {"buffer": np.exp(-np.abs(x)).astype(x.dtype)}


def _log_sigmoid_backward(F, g, s):
    # log_sigmoid_backward(grad, self, buffer): (max_deriv - sign·buffer / (1 + buffer))·grad
    x, z = F.value(s["self"]), s["buffer"]
    negative = np.less(x, 0)
    max_deriv, sign = negative.astype(z.dtype), np.where(negative, 1, -1).astype(z.dtype)
    return (F.mul(F.sub(max_deriv, F.mul(sign, F.div(z, F.add(z, 1)))), g),)


def _logit_backward(F, g, s):
    # infinitely_differentiable_logit_backward (eps None): grad / (self·(1 - self)) inside [0, 1], else nan
    x = s["self"]
    inside = F.logical_and(F.ge(x, 0.0), F.le(x, 1.0))
    nan = np.full((), np.nan, dtype=np.asarray(F.value(x)).dtype)
    return (F.where(inside, F.div(g, F.mul(x, F.sub(1.0, x))), nan),)


def _elu_kernel_backward(F, g, s):
    x, go = s["self_or_result"], s["grad_output"]
    params = {k: s[k] for k in ("alpha", "scale", "input_scale", "is_result")}
    scaled = F.mul(F.mul(g, go), s["input_scale"])  # elu_double_backward
    double = F.mul(F.fused("elu_backward", scaled, x, **params), _type_as(F, F.lt(x, 0), g))
    return F.fused("elu_backward", g, x, **params), double


def _gelu_double_backward(F, ggi, go, x, approximate):
    if approximate == "tanh":
        inner = F.mul(_GELU_BETA, F.add(x, F.mul(_GELU_KAPPA, F.pow(x, 3))))
        tanh_inner, sech_inner = F.tanh(inner), F.div(1, F.cosh(inner))
        f, g = F.mul(0.5, x), F.sub(1, F.mul(tanh_inner, tanh_inner))
        h = F.mul(_GELU_BETA, F.add(1, F.mul(F.mul(3 * _GELU_KAPPA, x), x)))
        f_prime_gh = F.mul(F.mul(0.5, g), h)
        g_prime = F.mul(F.mul(F.mul(2, sech_inner), F.mul(F.neg(sech_inner), tanh_inner)), h)
        g_prime_fh = F.mul(F.mul(f, h), g_prime)
        h_prime_fg = F.mul(F.mul(f, g), F.mul(F.mul(6 * _GELU_KAPPA, x), _GELU_BETA))
        return F.mul(F.mul(ggi, go), F.add(F.add(F.mul(2, f_prime_gh), g_prime_fh), h_prime_fg))
    x_sq = F.mul(x, x)
    pdf = F.mul(1 / _SQRT_2_PI, F.exp(F.mul(-0.5, x_sq)))
    return F.mul(F.mul(ggi, go), F.sub(F.mul(2, pdf), F.mul(x_sq, pdf)))


def _softplus_double_backward(F, g, x, beta, threshold):
    z = F.mul(x, beta)
    sig = F.sigmoid(z)
    return F.mul(F.mul(F.mul(F.mul(g, F.sub(1, sig)), sig), _type_as(F, F.lt(z, threshold), g)), beta)


def _log_softmax_kernel_backward(F, g, s):
    go, out, dim = s["grad_output"], s["output"], s["dim"]
    return (F.sub(g, F.sum(F.mul(g, F.exp(out)), dim, True)),
            F.mul(F.mul(F.neg(F.sum(go, dim, True)), F.exp(out)), g))


def _loss_double(F, g, x, t, reduction, factor):
    """grad·factor (÷ the elements for the mean): mse/smooth_l1/huber_loss_double_backward."""
    out = F.mul(g, factor)
    return F.div(out, math.prod(shape_of(x))) if reduction == 1 else out


def _loss_kernel_rule(key, factor, grad_output_rule=None):
    """derivatives.yaml's entry of a loss kernel: grad_output (the kernel again, or its own rule),
    self: the double backward of grad·grad_output, target: its negative."""
    def vjp(F, g, s):
        x, t, go = s["self"], s["target"], s["grad_output"]
        extra = {k: s[k] for k in ("beta", "delta") if k in s}
        gg = (grad_output_rule(F, g, s) if grad_output_rule is not None
              else F.fused(key, g, x, t, reduction=s["reduction"], **extra))
        double = _loss_double(F, F.mul(g, go), x, t, s["reduction"], factor(F, s))
        return gg, double, F.neg(double)
    return vjp


def _smooth_l1_factor(F, s):
    if s["beta"] == 0:
        return 0.0
    return F.div(_type_as(F, F.lt(F.abs(F.sub(s["self"], s["target"])), s["beta"]), s["self"]), s["beta"])


def _huber_factor(F, s):
    return _type_as(F, F.lt(F.abs(F.sub(s["self"], s["target"])), s["delta"]), s["self"])


def _huber_grad_output(F, g, s):
    # huber_loss_double_backward_grad_output
    x, t, red, delta = s["self"], s["target"], s["reduction"], s["delta"]
    if red == 0:
        return F.fused("huber_loss_backward", g, x, t, reduction=red, delta=delta)
    ones = np.ones(shape_of(s["grad_output"]), dtype=np.asarray(F.value(x)).dtype)
    return F.sum(F.mul(F.fused("huber_loss_backward", ones, x, t, reduction=red, delta=delta), g))


def _bce_kernel_backward(F, g, s):
    # binary_cross_entropy_double_backward, _double_backward_target and _double_backward_grad_output
    go, x, t, w, red = s["grad_output"], s["self"], s["target"], s["weight"], s["reduction"]
    eps = _BCE_EPSILON
    g_i = F.div(F.add(F.sub(F.mul(x, x), F.mul(F.mul(2, x), t)), t),
                F.mul(F.pow(F.add(x, eps), 2), F.pow(F.add(F.sub(1, x), eps), 2)))
    g_i = _mean_div(F, _with_weight(F, F.mul(g_i, F.mul(g, go)), w), red, x)
    g_t = _with_weight(F, F.mul(F.neg(g), go), w)
    g_t = _mean_div(F, F.div(g_t, F.clamp_min(F.mul(F.sub(1, x), x), eps)), red, t)
    g_o = F.mul(F.div(F.sub(x, t), F.mul(F.add(x, eps), F.add(F.sub(1, x), eps))), g)
    return _mean_div(F, _with_weight(F, g_o, w), red, x), g_i, g_t


def _nll_kernel_backward(F, g, s):
    # grad_output: nll_loss(grad, target, weight, reduction, ignore_index); self: zeros
    value = _nll(F.value(g), s["target"], s["weight"], s["reduction"], s["ignore_index"])
    return value, F.zeros_like(F.value(g))


ROWS += [
    Op("leaky_relu_backward", "LeakyReluBackwardBackward0", ("grad_output", "self"),
       lambda go, x, negative_slope: NumpyOps.where(NumpyOps.gt(x, 0), go, NumpyOps.mul(go, negative_slope)),
       lambda F, g, s: (F.fused("leaky_relu_backward", g, s["self"], negative_slope=s["negative_slope"]),
                        F.zeros_like(F.value(g))),
       params=("negative_slope",), saves=("negative_slope", "self"),
       doc="leaky_relu's gradient rule: grad_output where self > 0, else grad_output·negative_slope",
       rules=("leaky_relu_backward(grad, self)", "0")),
    Op("elu_backward", "EluBackwardBackward0", ("grad_output", "self_or_result"),
       lambda go, x, alpha, scale, input_scale, is_result: _elu_grad(NumpyOps, go, x, alpha, scale, input_scale),
       _elu_kernel_backward, params=("alpha", "scale", "input_scale", "is_result"),
       saves=("alpha", "grad_output", "input_scale", "is_result", "scale", "self_or_result"),
       doc="elu's gradient rule", rules=("elu_backward(grad, self_or_result)",
                                         "elu_backward(grad·grad_output·input_scale, self_or_result) where self_or_result < 0, else 0")),
    Op("gelu_backward", "GeluBackwardBackward0", ("grad_output", "self"),
       lambda go, x, approximate: _gelu_grad(NumpyOps, go, x, approximate),
       lambda F, g, s: (F.fused("gelu_backward", g, s["self"], approximate=s["approximate"]),
                        _gelu_double_backward(F, g, s["grad_output"], s["self"], s["approximate"])),
       params=("approximate",), saves=("approximate", "grad_output", "self"), doc="gelu's gradient rule",
       rules=("gelu_backward(grad, self)", "grad·grad_output·gelu''(self)")),
    Op("softplus_backward", "SoftplusBackwardBackward0", ("grad_output", "self"),
       lambda go, x, beta, threshold: _softplus_grad(NumpyOps, go, x, beta, threshold),
       lambda F, g, s: (F.fused("softplus_backward", g, s["self"], beta=s["beta"], threshold=s["threshold"]),
                        _softplus_double_backward(F, F.mul(g, s["grad_output"]), s["self"], s["beta"], s["threshold"])),
       params=("beta", "threshold"), saves=("beta", "grad_output", "self", "threshold"), doc="softplus's gradient rule",
       rules=("softplus_backward(grad, self)",
              "grad·grad_output·beta·σ(self·beta)·(1 - σ(self·beta)) where self·beta < threshold, else 0")),
    Op("log_softmax_backward_data", "LogSoftmaxBackwardDataBackward0", ("grad_output", "output"),
       lambda go, out, dim: NumpyOps.sub(go, NumpyOps.mul(NumpyOps.exp(out), NumpyOps.sum(go, dim, True))),
       _log_softmax_kernel_backward, params=("dim",), saves=("dim", "grad_output", "output"),
       doc="log_softmax's gradient rule: grad_output - exp(output)·sum(grad_output, dim)",
       rules=("grad - sum(grad·exp(output), dim)", "-sum(grad_output, dim)·exp(output)·grad")),
    Op("mse_loss_backward", "MseLossBackwardBackward0", ("grad_output", "self", "target"),
       lambda go, x, t, reduction: _mse_grad(NumpyOps, go, x, t, reduction),
       _loss_kernel_rule("mse_loss_backward", lambda F, s: 2), params=("reduction",),
       saves=("grad_output", "reduction", "self", "target"), doc="mse_loss's gradient rule",
       rules=("mse_loss_backward(grad, self, target)", "2·grad·grad_output (÷ the elements for the mean)",
              "-2·grad·grad_output (÷ the elements for the mean)")),
    Op("smooth_l1_loss_backward", "SmoothL1LossBackwardBackward0", ("grad_output", "self", "target"),
       lambda go, x, t, reduction, beta: _smooth_l1_grad(NumpyOps, go, x, t, reduction, beta),
       _loss_kernel_rule("smooth_l1_loss_backward", _smooth_l1_factor), params=("reduction", "beta"),
       saves=("beta", "grad_output", "reduction", "self", "target"), doc="smooth_l1_loss's gradient rule",
       rules=("smooth_l1_loss_backward(grad, self, target)",
              "grad·grad_output / beta where |self - target| < beta, else 0 (÷ the elements for the mean)",
              "the negative of self's")),
    Op("huber_loss_backward", "HuberLossBackwardBackward0", ("grad_output", "self", "target"),
       lambda go, x, t, reduction, delta: _huber_grad(NumpyOps, go, x, t, reduction, delta),
       _loss_kernel_rule("huber_loss_backward", _huber_factor, _huber_grad_output), params=("reduction", "delta"),
       saves=("delta", "grad_output", "reduction", "self", "target"), doc="huber_loss's gradient rule",
       rules=("sum of grad·huber_loss_backward(1, self, target)",
              "grad·grad_output where |self - target| < delta, else 0 (÷ the elements for the mean)",
              "the negative of self's")),
    Op("binary_cross_entropy_backward", "BinaryCrossEntropyBackwardBackward0", ("grad_output", "self", "target"),
       lambda go, x, t, weight, reduction: _bce_grad(NumpyOps, go, x, t, weight, reduction),
       _bce_kernel_backward, params=("weight", "reduction"),
       saves=("grad_output", "reduction", "self", "target", "weight"), doc="binary_cross_entropy's gradient rule",
       rules=("grad·(self - target) / ((self + ε)·(1 - self + ε))",
              "grad·grad_output·(self² - 2·self·target + target) / ((self + ε)²·(1 - self + ε)²)",
              "-grad·grad_output / max((1 - self)·self, ε)")),
    Op("nll_loss_backward", "NllLossBackwardBackward0", ("grad_output", "self"), _nll_grad, _nll_kernel_backward,
       params=("target", "weight", "reduction", "ignore_index", "total_weight"),
       saves=("ignore_index", "reduction", "target", "weight"), hidden=("total_weight",),
       doc="nll_loss's gradient rule: -grad_output at each sample's target class",
       rules=("nll_loss(grad, target)", "0")),
    # what the composite rules of binary_cross_entropy(_with_logits) call
    Op("logit", "LogitBackward0", ("self",), lambda a, eps=None: _logit(a), _logit_backward, params=("eps",),
       saves=("eps", "self"), doc="log(self / (1 - self)) (binary_cross_entropy's target gradient)",
       rules=("grad / (self·(1 - self))",)),
    Op("log_sigmoid", "LogSigmoidBackward0", ("self",), lambda a: _log_sigmoid(a), _log_sigmoid_backward,
       saves=("buffer", "self"), derived=_log_sigmoid_buffer,
       doc="log(sigmoid(self)) (binary_cross_entropy_with_logits' target gradient with pos_weight)",
       rules=("grad·(1 - sigmoid(self))",)),
]

def _swap_perm(ndim, d0, d1):
    if ndim == 0:
        return ()  # a 0-d tensor's transpose(0, -1) is itself
    perm = list(range(ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return tuple(perm)


def _saving_plan(op: Op) -> tuple:
    plan = []
    for name in sorted(op.saves):
        if name in op.inputs:
            source, arg = "input", op.inputs.index(name)
        elif name == "result":
            source, arg = "result", None
        elif name in op.params:
            source, arg = "param", name
        else:
            source, arg = "derived", None
        slot = op.save_when.get(name)
        plan.append((name, source, arg, None if slot is None else op.inputs.index(slot)))
    return tuple(plan)


for _row in ROWS:
    object.__setattr__(_row, "plan", _saving_plan(_row))
    if not _row.integers:
        object.__setattr__(_row, "integers", "float" if _row.unary_function else "keep")

OPS: dict[str, Op] = {row.key: row for row in ROWS}
assert len(OPS) == len(ROWS), "duplicate op key"

#: Elementwise one-tensor functions callable by name: sin(x), x.sin(), torch.sin(x).
UNARY_FUNCTIONS = {row.key: row for row in ROWS if row.unary_function}


def saved_values(op: Op, args: dict, params: dict, result) -> dict:
    """Every value the gradient rule reads (``_saved_*`` names), keyed by name, sorted."""
    derived = op.derived(args, params) if op.derived is not None else {}
    saved = {}
    for name in sorted(op.saves):
        # looked up as in one pool of args, then params, then result, then derived values
        if name in derived:
            saved[name] = derived[name]
        elif name == "result":
            saved[name] = result
        elif name in params:
            saved[name] = params[name]
        else:
            saved[name] = args[name]
    for name in op.hidden:
        saved[name] = params[name] if name in params else derived[name]
    return saved


_LazyNumpy.deferring = False  # the table is built: from here on, numpy is imported where it is used
