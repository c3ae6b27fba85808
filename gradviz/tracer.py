"""The tracer: what appends an entry to the graph's tape — a leaf, a constant, or an op row
applied forward to its operands (:meth:`Tracer.apply`), as PyTorch records each operation it runs.

Values of 0-d tensors are Python floats holding the dtype's exact value (float32 values
rounded as numpy rounds them): arithmetic on them runs the op rows' ``on_floats`` forwards on
floats, which give numpy's bits (tests/test_ops.py checks it); everything else runs the
rows' numpy forwards. numpy is imported only when a row needs it. What the expression's syntax
means (operators, functions called by name) is decided above this, in
:mod:`gradviz.operators` and :mod:`gradviz.functions`; the parser drives it all from
:mod:`gradviz.tracing`.
"""

from __future__ import annotations

import math
from array import array
from functools import partial
from typing import Sequence

from . import layout
from .errors import EvalError
from .graph import EMPTY_PARAMS, BackwardFunction, Graph, Tensor
from .ops import FLOAT_OPS, Op, QuietNumpy, Refused, np
from .parser import Node
from .shapes import format_shape

_BIG_INT = 1 << 53  # beyond this an int's conversion to float32 could round twice


_PLAIN_NUMBERS = frozenset({float, int})
_NO_SLOTS = array("q", [-2])  # a leaf's operand slots
_NO_SPANS = array("q", [-1])  # a leaf's span


class Tracer:
    """Applies op rows to tensors, appending to the graph as PyTorch builds it."""

    #: 0-d arithmetic on Python floats through the rows' ``on_floats`` forwards (False: every value
    #: through numpy, the reference the tests hold the floats to)
    use_floats = True
    #: no op may make a tensor of more elements (checked from the shapes, before computing)
    max_elements: int | None = None

    def __init__(self, graph: Graph, cached_views: bool = False):
        self.graph = graph
        self.F = FLOAT_OPS[graph.dtype]
        self._quiet = QuietNumpy()
        self._array_dtype = None  # numpy's dtype object of the run (once an array is traced)
        self._ndarray = None  # numpy.ndarray (once an array is traced: numpy is imported by then)
        # The expression tracer hands out short-lived views (a million-term expression keeps
        # none); the second-order pass keeps the ones it makes (its results are the grads).
        self.view = graph.tensor if cached_views else partial(Tensor, graph)
        g = graph  # the tape's columns, appended to (never replaced) for each entry
        self.appends = (g.op.append, g.a.append, g.b.append, g.params.append, g.req.append, g.value.append,
                        g.shape.append, g.start.append, g.end.append, g.on_floats.append)

    def quiet_numpy(self) -> None:
        """inf and nan are values, as in PyTorch: numpy's warnings off until :meth:`finish`."""
        self._quiet.on()

    def finish(self) -> None:
        self._quiet.restore()

    def leaf(self, name: str, value, requires_grad: bool) -> Tensor:
        """An input: a number (kept as a float of the dtype) or an array."""
        g = self.graph
        if type(value) is float or type(value) is int:
            v, shape = self.F.cast(value), ()
        elif getattr(value, "dtype", None) is not None and value.dtype.kind in "iu":
            # an integer tensor (class targets: tensor([0, 2])) is int64, as torch.tensor makes it,
            # and cannot require grad; a 0-d one stays an array (the tape's floats are float tensors)
            v = np.asarray(value, dtype=np.int64)
            shape, requires_grad = tuple(v.shape), False
        else:
            self.quiet_numpy()  # 1e300 in float32 is inf, as torch.tensor makes it
            data = np.asarray(value, dtype=g.np_dtype)
            v, shape = (float(data), ()) if data.ndim == 0 else (data, data.shape)
        i = self._append(None, -2, -2, EMPTY_PARAMS, requires_grad, v, shape, None, 0)
        if i == len(g.input_names):
            g.input_names.append(name)
        else:
            g.names[i] = name
        g.input_index[name] = i
        return self.view(i)

    def leaves(self, at: dict, no_grad) -> None:
        """:meth:`leaf` for every input of ``at`` in turn (those in ``no_grad`` need no grad); when
        they are all numbers (a million of them, say), their entries appended column by column."""
        g = self.graph
        values = list(at.values())
        if g.value or g.names or not set(map(type, values)) <= _PLAIN_NUMBERS:
            for name, value in at.items():
                self.leaf(name, value, requires_grad=name not in no_grad)
            return
        n = len(values)
        names = list(at)
        g.value.extend(self.F.cast_all(values))
        g.input_names.extend(names)
        g.input_index.update(zip(names, range(n)))
        g.op.extend([None] * n)
        g.a.extend(_NO_SLOTS * n)
        g.b.extend(_NO_SLOTS * n)
        g.params.extend([EMPTY_PARAMS] * n)
        g.req.extend(bytes(name not in no_grad for name in names) if no_grad else b"\x01" * n)
        g.shape.extend([()] * n)
        g.start.extend(_NO_SPANS * n)
        g.end.extend(_NO_SPANS * n)
        g.on_floats.extend(bytes(n))

    def constant(self, value, node) -> Tensor:
        """A constant expression's value as a 0-d tensor (PyTorch would hold a Python number)."""
        try:
            v = self.F.cast(value)
        except OverflowError:  # an int beyond any float, e.g. 9**999
            raise EvalError("the expression is a constant too large for a float tensor") from None
        return self.view(self._append(None, -2, -2, EMPTY_PARAMS, False, v, (), node, 0))

    def constant_tensor(self, value, node) -> Tensor:
        """A tensor that needs no grad made inside the expression (``torch.tensor([0, 2])``,
        ``x > 0``): an array of its own dtype (a 0-d one of the run's dtype a Python float)."""
        g = self.graph
        if value.ndim == 0 and value.dtype == g.np_dtype:
            return self.view(self._append(None, -2, -2, EMPTY_PARAMS, False, float(value), (), node, 0))
        return self.view(self._append(None, -2, -2, EMPTY_PARAMS, False, value, tuple(value.shape), node, 0))

    def _append(self, op, x, y, params, req, value, shape, node, on_floats) -> int:
        i = len(self.graph.value)
        add_op, add_a, add_b, add_params, add_req, add_value, add_shape, add_start, add_end, add_on_floats \
            = self.appends
        add_op(op)
        add_a(x)
        add_b(y)
        add_params(params)
        add_req(req)
        add_value(value)
        add_shape(shape)
        if node is None:
            add_start(-1)
            add_end(-1)
        else:
            add_start(node.start)
            add_end(node.end)
        add_on_floats(on_floats)
        return i

    def apply(self, op: Op, operands: Sequence, params: dict = EMPTY_PARAMS, node: Node | None = None) -> Tensor:
        """Run ``op`` forward on ``operands`` (Tensors, or constants in tensor slots)."""
        if type(operands[0]) is Tensor and len(operands) <= 2 and not op.variadic:
            out = self._apply_arrays(op, operands, params, node)
            if out is not None:
                return out
        g = self.graph
        values, req = g.value, g.req
        slots = []
        floats = op.on_floats is not None and self.use_floats
        needs = False
        for o in operands:
            if type(o) is Tensor:
                k = o.index
                slots.append(k)
                needs = needs or req[k]
                if floats and type(values[k]) is not float:
                    floats = False
            else:
                slots.append(-1)
                if floats and (type(o) is not float and (type(o) is not int or not -_BIG_INT <= o <= _BIG_INT)):
                    floats = False
        result = None
        if floats:
            F = self.F
            cast = F.cast
            try:
                args = [values[k] if k >= 0 else cast(o) for k, o in zip(slots, operands)]
                ps = {p: (cast(v) if type(v) is int or type(v) is float else v) for p, v in params.items()} \
                    if params else EMPTY_PARAMS
                result = op.on_floats(F, *args, **ps)
                shape = ()
            except (ValueError, OverflowError):  # e.g. x ** 3: numpy's power gives numpy's bits
                result = None
        if result is None:
            floats = False
            if len(slots) > 1 and self.max_elements is not None:
                self._check_size(op, operands, node)  # only ops of several tensors make larger ones
            result, shape = self._numpy_forward(op, slots, operands, params, node)
        i = self._append(op, slots[0], slots[1] if len(slots) > 1 else -2, params, needs, result, shape,
                         node, floats)
        if len(slots) > 2:
            g.more[i] = tuple(slots[2:])
        for k, o in enumerate(slots):
            if o < 0:
                g.consts[(i, k)] = operands[k]
        if shape and (op.key in layout.VIEWS or g.layout or -1 in slots):
            self._layout(op, i, slots, operands, params, shape)
        return self.view(i)

    def _apply_arrays(self, op: Op, operands: Sequence, params: dict, node) -> Tensor | None:
        """:meth:`apply` for the commonest tensor entry: one or two Tensors whose values are arrays
        of the run's dtype (the second may be 0-d: a float). The same entry, appended without the
        checks that cannot apply (no integer tensor, no constant, no promotion); None when the
        operands are of another kind (the general path decides)."""
        g = self.graph
        x = operands[0].index
        vx = g.value[x]
        if type(vx) is float:
            return self._apply_zero_d(op, x, vx, operands, params, node)
        ndarray = self._ndarray
        if ndarray is None:  # no array yet in this run
            ndarray = self._ndarray = np.ndarray
            self._array_dtype = np.dtype(g.np_dtype)
        dt = self._array_dtype
        # (``is`` first: numpy's arrays of a built-in dtype share its one dtype object)
        if type(vx) is not ndarray or (vx.dtype is not dt and vx.dtype != dt):
            return None
        req = g.req
        if len(operands) == 1:
            y = -2
            needs = req[x]
            self._quiet.on()
            try:
                result = op.forward(vx, **params)
            except Refused as refused:
                raise EvalError(f"{refused}{_at_column(node)}") from None
        else:
            other = operands[1]
            if type(other) is not Tensor:
                return None
            y = other.index
            vy = g.value[y]
            if type(vy) is float:
                if not self.use_floats:
                    return None
                vy = dt.type(vy)  # numpy's scalar of the dtype, as _numpy_forward makes it
            elif type(vy) is not ndarray or (vy.dtype is not dt and vy.dtype != dt):
                return None
            if self.max_elements is not None and (g.shape[x] != g.shape[y] or op.key == "mm") \
                    and op.key not in _NOT_LARGER:
                self._check_size(op, operands, node)
            needs = req[x] or req[y]
            self._quiet.on()
            try:
                result = op.forward(vx, vy, **params)
            except Refused as refused:
                raise EvalError(f"{refused}{_at_column(node)}") from None
        if type(result) is ndarray and result.dtype is dt and result.shape:
            shape = result.shape  # the commonest result: an array of the run's dtype
        elif type(result) is dt.type:  # numpy's scalar of the dtype (a sum): a 0-d float
            result, shape = float(result), ()
        else:
            result, shape = _array_result(result, dt)
        i = self._append(op, x, y, params, needs, result, shape, node, 0)
        if shape and (g.layout or op.key in layout.VIEWS):
            self._layout(op, i, (x, y) if y != -2 else (x,), operands, params, shape)
        return self.view(i)

    def _apply_zero_d(self, op: Op, x: int, vx: float, operands: Sequence, params: dict, node) -> Tensor | None:
        """:meth:`apply` for one or two 0-d tensors (their values floats; the first, entry ``x``, is
        ``vx``): the row's ``on_floats`` forward on the floats, or (a row without one, sin) its numpy
        forward on numpy's scalar of the dtype. The same entry as the general path appends; None
        when the operands are of another kind or the float forward gives up (the general path
        decides)."""
        g = self.graph
        if len(operands) == 1:
            y = -2
            needs = g.req[x]
        else:
            other = operands[1]
            if type(other) is not Tensor or type(g.value[other.index]) is not float:
                return None
            y = other.index
            needs = g.req[x] or g.req[y]
        if not self.use_floats:
            return None
        if op.on_floats is not None:
            F = self.F
            cast = F.cast
            ps = {p: (cast(v) if type(v) is int or type(v) is float else v) for p, v in params.items()} \
                if params else EMPTY_PARAMS
            try:
                result = op.on_floats(F, vx, **ps) if y == -2 else op.on_floats(F, vx, g.value[y], **ps)
            except (ValueError, OverflowError):  # e.g. x ** 3: numpy's power gives numpy's bits
                return None
            return self.view(self._append(op, x, y, params, needs, result, (), node, 1))
        if y != -2:
            return None
        scalar = g.np_dtype  # numpy's scalar of the dtype, as _numpy_forward makes it
        self._quiet.on()
        try:
            result = op.forward(scalar(vx), **params)
        except Refused as refused:
            raise EvalError(f"{refused}{_at_column(node)}") from None
        if type(result) is not scalar:
            return None  # another dtype (int64, bool...): the general path's promotion rules
        return self.view(self._append(op, x, y, params, needs, float(result), (), node, 0))

    def _layout(self, op: Op, i: int, slots, operands, params, shape) -> None:
        """Record entry ``i``'s strides when they are not contiguous (gradviz.layout's rules)."""
        g = self.graph
        key = op.key
        if key in layout.CONTIGUOUS:
            return
        if key in layout.VIEWS:
            x = slots[0]
            strides = layout.VIEWS[key](g.shape[x], g.strides_of(x), params, shape)
        else:
            if not any(k in g.layout if k >= 0 else getattr(o, "ndim", 0) for k, o in zip(slots, operands)):
                return  # contiguous operands (and numbers): a contiguous result
            pairs = []
            for k, o in zip(slots, operands):
                if k >= 0:
                    pairs.append((g.shape[k], g.strides_of(k)))
                else:  # a constant: a number, or an array the second-order pass computed (its own strides)
                    pairs.append(layout.array_layout(o))
            if key in layout.SCALAR_OPERAND:  # ATen wraps the Python number into a 0-d operand
                pairs.append(((), ()))
            try:
                elementwise = tuple(shape) == tuple(np.broadcast_shapes(*[s for s, _ in pairs]))
            except ValueError:  # operands that do not broadcast (addmm's bias, mat1, mat2)
                elementwise = False
            if not elementwise:
                return  # not elementwise: a new tensor
            strides = layout.elementwise_strides(pairs, shape)
        if strides != layout.contiguous_strides(shape):
            g.layout[i] = strides

    def _check_size(self, op: Op, operands: Sequence, node: Node | None) -> None:
        shapes = [o.shape if type(o) is Tensor else () for o in operands]
        if op.variadic:  # torch.cat / torch.stack: as many elements as all the tensors together
            size = sum(math.prod(s) for s in shapes)
            if size > self.max_elements:
                raise EvalError(f"the result of {op.key}() would have {size} elements, more than the limit "
                                f"of {self.max_elements} (--max-elements)")
            return
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
            raise EvalError(f"the result{where} would have shape {format_shape(shape)}: {size} elements, more "
                            f"than the limit of {self.max_elements} (--max-elements)")

    def _numpy_forward(self, op, slots, operands, params, node=None):
        self.quiet_numpy()
        g = self.graph
        dtype = g.np_dtype
        # a 0-d value as numpy's scalar of the dtype (numpy's bits, at a fraction of a 0-d array's
        # cost); the numpy reference (use_floats off) makes 0-d arrays
        scalar = dtype if self.use_floats else partial(np.asarray, dtype=dtype)
        arrays = []
        for k, o in zip(slots, operands):
            if k >= 0:
                v = g.value[k]
                arrays.append(scalar(v) if type(v) is float else v)
            else:
                arrays.append(o)  # Python numbers stay weak scalars (numpy 2 keeps the tensor's dtype)
        kind = _integer_kind(arrays)
        if kind is not None:
            arrays = _integer_operands(op, kind, arrays, node)
        try:
            result = np.asarray(op.forward(*arrays, **params))
        except Refused as refused:
            raise EvalError(f"{refused}{_at_column(node)}") from None
        if result.dtype.kind in "biu":  # int64 and bool constants stay so (torch.tensor([0, 2])[0])
            return result, tuple(result.shape)
        promoted = _promoted(arrays, dtype)
        if result.dtype != promoted:
            result = result.astype(promoted)
        if promoted != dtype:  # constants of another dtype (a float32 torch.tensor in a float64 run)
            return result, tuple(result.shape)
        if result.ndim == 0:
            return float(result), ()
        return result, tuple(result.shape)

    def edge(self, value) -> BackwardFunction | None:
        """Where a gradient for this operand goes: its grad_fn, its AccumulateGrad, or None."""
        if type(value) is not Tensor or not self.graph.req[value.index]:
            return None
        return self.graph.function(value.index)


def _array_result(result, dt) -> tuple:
    """An array forward's result as the tape holds it, with its shape: numpy's scalar of the run's
    dtype ``dt`` (a sum) or a 0-d array a Python float; int64 and bool results as they are (a 0-d
    one an array); any other float dtype cast to ``dt``."""
    if type(result) is dt.type:
        return float(result), ()
    if type(result) is not np.ndarray:
        result = np.asarray(result)
    shape = result.shape
    rdt = result.dtype
    if rdt != dt and rdt.kind in "biu":
        return result, shape
    if rdt != dt:
        result = result.astype(dt)
    return (float(result), ()) if not shape else (result, shape)


#: products of two tensors never larger than their operands (:meth:`Tracer._check_size` lets them pass)
_NOT_LARGER = frozenset({"dot", "mv"})


def _integer_kind(arrays: list) -> str | None:
    """The computation dtype PyTorch's type promotion gives an op when it involves an integer tensor:
    "Long" or "Bool" (integer tensors and Python ints or bools), "mixed" (a floating tensor with an
    integer one), "float" (integer tensors and a Python float: t * 2.5); None without integer tensors."""
    integer = floating = long = number_float = number_int = False
    for a in arrays:
        d = getattr(a, "dtype", None)
        if d is None:
            number_float = number_float or type(a) is float
            number_int = number_int or type(a) is int
        elif d.kind == "f":
            floating = True
        elif d.kind in "biu":
            integer = True
            long = long or d.kind != "b"
    if not integer:
        return None
    if floating:
        return "mixed"
    if number_float:
        return "float"
    return "Long" if long or number_int else "Bool"


_WRAP = 1 << 64


def _integer_operands(op: Op, kind: str, arrays: list, node) -> list:
    """An op's operands when an integer tensor is among them, as PyTorch computes: what it refuses a
    clear error; integers cast to the floating dtype the op computes in (sin(t) and t * x in float32
    or the float tensor's dtype); a mask summed as int64; a Python int of uint64's range wrapped to int64."""
    message = op.refuses.get(kind)
    if message:
        floating = TORCH_DTYPE_NAMES.get(str(_promoted(arrays, None)), "Float")
        raise EvalError(f"{message.replace('{float}', floating)}{_at_column(node)}")
    if kind == "mixed" or kind == "float" or op.integers == "float":
        target = _promoted(arrays, None)
        return [a.astype(target) if getattr(a, "dtype", None) is not None and a.dtype.kind in "biu" else a
                for a in arrays]
    if kind == "Bool" and op.integers == "long":
        return [a.astype(np.int64) if getattr(a, "dtype", None) is not None else a for a in arrays]
    if kind == "Long":  # an int64 computation takes Python ints up to 2**64 - 1 as their int64 bits
        return [a - _WRAP if type(a) is int and a >= 1 << 63 else a for a in arrays]
    return arrays


def _at_column(node) -> str:
    return f" at column {node.column}" if node is not None else ""


def _promoted(arrays: list, dtype):
    """The floating dtype of an op's result as PyTorch promotes: the widest float among its tensors
    (a float32 constant in a float64 run stays float32 alone; ints alone give the default, float32)."""
    found = None
    for a in arrays:
        d = getattr(a, "dtype", None)
        if d is not None and d.kind == "f":
            if d == dtype or d.itemsize == 8:
                return d  # the run's dtype, or float64: the widest there is
            found = d if found is None or d.itemsize > found.itemsize else found
    return np.dtype(np.float32) if found is None else found


#: PyTorch's names of the dtypes, as its messages print them
TORCH_DTYPE_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}


def dtype_name(t: Tensor, _names: dict = {}) -> str:
    v = t.graph.value[t.index]
    if type(v) is float:
        return t.graph.dtype
    dtype = v.dtype
    name = _names.get(dtype)  # str() of a dtype costs microseconds: once per dtype
    if name is None:
        name = _names[dtype] = str(dtype)
    return name
