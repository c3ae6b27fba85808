"""The one graph: a flat tape of tensors, their backward functions at the same index, and the tracer.

Tracing walks the expression tree in post-order (iteratively) and, like PyTorch running the
same expression, either folds Python-number arithmetic in Python or applies an op row from
:mod:`gradviz.ops` to tensors. Every tensor is one entry of the :class:`Graph` (the tape):
its op row, its operands (tensor indices, or a Python number in a tensor slot), its params,
requires_grad, its value, shape and the expression node it holds. A tensor that requires
grad has exactly one backward function, addressed by the same index: its ``grad_fn`` when an
op made it, or the ``AccumulateGrad`` of a leaf. Functions are created in tensor order,
which is the order of PyTorch's ``sequence_nr``; ``next_functions`` need not be stored (an
operand that requires grad leads to its own function, one that does not to None).

Values of 0-d tensors are Python floats holding the dtype's exact value (float32 values
rounded as numpy rounds them): arithmetic on them runs the op rows' ``on_floats`` forwards on
floats, which give numpy's bits (tests/test_ops.py checks it); everything else runs the
rows' numpy forwards. numpy is imported only when a row needs it.

PyTorch's vocabulary — :class:`Tensor` (data, grad, grad_fn, is_leaf, requires_grad) and
:class:`BackwardFunction` (name, next_functions, saved...) — are views of one entry,
created on demand (``graph.tensor(i)``, ``graph.function(i)``) and kept, so a view is the
same object every time it is asked for.
"""

from __future__ import annotations

import math
from array import array
from functools import partial
from typing import Callable, Iterator, Sequence

from . import layout
from .errors import EvalError
from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS, MAX_DIMS
from .ops import INT64_MAX, OPS, FLOAT_OPS, UNARY_FUNCTIONS, Op, QuietNumpy, Refused, np, saved_values
from .parser import COMPARISONS as _COMPARISONS, Node, function_name, parse, replay
from .shapes import format_shape

DTYPE_NAMES = ("float32", "float64")
#: named numbers: Python-number constants, as PyTorch's torch.pi / torch.inf are Python floats
CONSTANTS = {"pi": math.pi, "e": math.e, "torch.pi": math.pi, "torch.e": math.e, "torch.inf": math.inf,
             "torch.nan": math.nan}

Number = (int, float)
_EMPTY: dict = {}
_ALPHA = {"alpha": 1}
_BIG_INT = 1 << 53  # beyond this an int's conversion to float32 could round twice


def numpy_dtype(dtype: str):
    """numpy's dtype for "float32" / "float64" (imports numpy)."""
    import numpy

    return getattr(numpy, dtype)


class _Dtypes:
    """``DTYPES[name]``: numpy's dtype, looked up (and numpy imported) only when asked for."""

    def __contains__(self, name) -> bool:
        return name in DTYPE_NAMES

    def __getitem__(self, name):
        if name not in DTYPE_NAMES:
            raise KeyError(name)
        return numpy_dtype(name)

    def __iter__(self):
        return iter(DTYPE_NAMES)


DTYPES = _Dtypes()


class TensorValue(float):
    """A 0-d tensor's value among saved values, as the tape holds it (a Python float), marked so
    that views show it as a tensor (``2.``) and not as a Python number PyTorch saved (``2``)."""

    __slots__ = ()


class ImportedOp:
    """The ``op`` column's entry for a backward function another producer read (``from_torch``, a
    ``gradviz/1`` document) instead of the tracer: PyTorch's class name, and gradviz's op row of
    that name when it has one (``row``: its rule is shown). One per class name; what the entry
    itself holds is in ``Graph.imported[i]`` (an :class:`ImportedFunction`)."""

    __slots__ = ("torch_name", "row")
    key = "imported"
    inputs: tuple = ()
    plan: tuple = ()
    save_when: dict = {}
    on_floats = None
    vjp = None
    unary_function = False
    saves = ("*",)  # the views show what the entry saved (it is in Graph.imported)

    def __init__(self, torch_name: str, row: Op | None = None):
        self.torch_name = torch_name
        self.row = row

    @property
    def rules(self) -> tuple:
        return self.row.rules if self.row is not None else ()

    @property
    def doc(self) -> str:
        return self.row.doc if self.row is not None else ""

    def __repr__(self) -> str:
        return f"ImportedOp({self.torch_name!r})"


class ImportedFunction:
    """What the tape holds of one imported backward function: ``next_functions`` (entry indices,
    None for a None entry, in PyTorch's order), ``saved`` (name without ``_saved_`` -> a Python
    number, tuple, None, or a numpy array for a tensor; ``saved_tensors`` of a custom Function as
    ``saved_tensors``), ``saved_meta`` (name -> (shape, dtype) of each saved tensor), the measured
    gradients ``grad_in`` (what arrived, summed) and ``grads_out`` (one per next_functions entry,
    None where nothing was sent), and ``module`` (the module path that made the output, or None)."""

    __slots__ = ("next_functions", "saved", "saved_meta", "grad_in", "grads_out", "module")

    def __init__(self, next_functions: tuple, saved: dict | None = None, saved_meta: dict | None = None,
                 module: str | None = None):
        self.next_functions = tuple(next_functions)
        self.saved = saved if saved is not None else {}
        self.saved_meta = saved_meta if saved_meta is not None else {}
        self.grad_in = None
        self.grads_out = None
        self.module = module


def imported_op(torch_name: str, _cache: dict = {}) -> ImportedOp:
    """The :class:`ImportedOp` for a class name (the same object for the same name), with gradviz's
    op row of that name when there is one."""
    op = _cache.get(torch_name)
    if op is None:
        if not _cache.get("_rows"):
            rows: dict = {}
            for row in OPS.values():
                rows.setdefault(row.torch_name, row)
            _cache["_rows"] = rows
        op = _cache[torch_name] = ImportedOp(torch_name, _cache["_rows"].get(torch_name))
    return op


class Tensor:
    """A view of one tensor of the graph, with the five attributes the lecture names.

    ``data`` (numpy array), ``grad`` (array or None), ``grad_fn`` (the
    :class:`BackwardFunction` that produced it, None for leaves), ``is_leaf``,
    ``requires_grad``. ``name`` is the input's name for leaves; ``node`` is the
    span of source text it holds (for showing its text); ``index`` its entry.
    """

    __slots__ = ("graph", "index", "_id")

    def __init__(self, graph: "Graph", index: int):
        self.graph = graph
        self.index = index
        self._id = None

    @property
    def id(self) -> str:
        return self._id if self._id is not None else f"t{self.index}"

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    @property
    def data(self):
        g = self.graph
        v = g.value[self.index]
        if type(v) is float:
            return np.asarray(v, dtype=g.np_dtype)
        return v

    @data.setter
    def data(self, value) -> None:
        self.graph.value[self.index] = value

    @property
    def value(self):
        """The value as stored: a Python float for a 0-d tensor, else a numpy array."""
        return self.graph.value[self.index]

    @property
    def grad(self):
        g = self.graph.grad.get(self.index)
        if type(g) is float:
            return np.asarray(g, dtype=self.graph.np_dtype)
        return g

    @property
    def grad_value(self):
        """``grad`` as the graph holds it: a Python float for a 0-d tensor, an array, or None."""
        return self.graph.grad.get(self.index)

    @grad.setter
    def grad(self, value) -> None:
        if value is None:
            self.graph.grad.pop(self.index, None)
        else:
            self.graph.grad[self.index] = value

    @property
    def requires_grad(self) -> bool:
        return bool(self.graph.req[self.index])

    @property
    def is_leaf(self) -> bool:
        g = self.graph
        return g.op[self.index] is None or not g.req[self.index]

    @property
    def grad_fn(self) -> "BackwardFunction | None":
        g = self.graph
        i = self.index
        if g.op[i] is None or not g.req[i]:
            return None
        return g.function(i)

    @property
    def name(self) -> str | None:
        return self.graph.name_of(self.index)

    @name.setter
    def name(self, value) -> None:
        self.graph.names[self.index] = value

    @property
    def span(self) -> tuple | None:
        """The 0-based half-open span of source text of the sub-expression the tensor holds
        (None for an input, or a tensor made by a gradient rule)."""
        g = self.graph
        start = g.start[self.index]
        return None if start < 0 else (start, g.end[self.index])

    @property
    def retains_grad(self) -> bool:
        return self.index in self.graph.retained

    @property
    def shape(self) -> tuple:
        return self.graph.shape[self.index]

    @property
    def ndim(self) -> int:
        return len(self.graph.shape[self.index])

    def __repr__(self) -> str:
        fn = self.grad_fn
        fn = f", grad_fn=<{fn.name}>" if fn is not None else ""
        return f"Tensor({self.name or self.id}, data={self.data!r}{fn})"


class BackwardFunction:
    """A view of a node of the backward graph (what ``tensor.grad_fn`` points to).

    ``name`` is PyTorch's class name (MulBackward0, AccumulateGrad...);
    ``next_functions`` lists, per tensor input in PyTorch's order, the function
    its gradient flows to, or None for an input that needs no grad. ``saved``
    holds what PyTorch saves on the node (``_saved_self``, ``_saved_exponent``...).
    AccumulateGrad nodes have ``variable`` (the leaf) and no op.
    ``sequence_nr`` orders execution as PyTorch's engine does (later nodes first).
    """

    __slots__ = ("graph", "index", "_id", "_context", "_next")

    def __init__(self, graph: "Graph", index: int):
        self.graph = graph
        self.index = index
        self._id = None
        self._context = None
        self._next = None  # next_functions, once asked for (an entry's operands never change)

    @property
    def id(self) -> str:
        if self._id is not None:
            return self._id
        pos = self.graph.function_ids()
        return f"f{pos[self.index]}" if pos is not None and pos[self.index] >= 0 else ""

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    @property
    def op(self) -> Op | None:
        return self.graph.op[self.index]

    @property
    def name(self) -> str:
        op = self.graph.op[self.index]
        return "AccumulateGrad" if op is None else op.torch_name

    @property
    def next_functions(self) -> tuple:
        nexts = self._next
        if nexts is None:
            g = self.graph
            nexts = self._next = tuple(None if k is None else g.function(k) for k in g.next_functions(self.index))
        return nexts

    @property
    def variable(self) -> Tensor | None:
        g = self.graph
        return g.tensor(self.index) if g.op[self.index] is None else None

    @property
    def output(self) -> Tensor | None:
        g = self.graph
        return g.tensor(self.index) if g.op[self.index] is not None else None

    @property
    def saved(self) -> dict:
        """What PyTorch keeps as ``_saved_<name>`` (None where it saves nothing; Python numbers as given)."""
        return self.graph.saved(self.index)

    @property
    def saved_raw(self) -> dict:
        """``saved`` as the tape holds it (a 0-d tensor's value a :class:`TensorValue`): what the
        views show, without making numpy arrays."""
        return self.graph.saved(self.index, floats=True)

    @property
    def context(self) -> dict:
        """Every value the gradient rule reads (``saved`` with nothing left out)."""
        if self._context is not None:
            return self._context
        return self.graph.context(self.index)

    @context.setter
    def context(self, value) -> None:
        self._context = value

    @property
    def input_shapes(self) -> tuple:
        return self.graph.input_shapes(self.index)

    @property
    def sequence_nr(self):
        # PyTorch gives AccumulateGrad the highest priority (sequence_nr UINT64_MAX).
        return math.inf if self.graph.op[self.index] is None else self.index

    def __repr__(self) -> str:
        return f"<{self.name} {self.id}>"


class Graph:
    """The traced graph, as a tape: one entry per tensor, in creation order.

    Columns (index = tensor = its backward function): ``op`` (the op row; None for a leaf
    or a constant), ``a``/``b`` (the first and second operand: a tensor index, ``-1`` for a
    constant in that tensor slot — a Python number, kept in ``consts`` — or ``-2`` for no
    such slot), ``params``, ``req`` (requires_grad), ``value``, ``shape``, ``node``,
    ``on_floats`` (1 when the value was computed on Python floats by the row's ``on_floats`` forward).
    ``grad`` holds the leaves' (and retained) gradients, ``input_names`` the inputs' names.

    For the renderers it reads as before: ``output``, ``inputs``, ``root``, ``tensors`` and
    ``functions`` (views, in creation and depth-first order), ``source``, ``dtype``.
    """

    def __init__(self, source: str, dtype: str):
        if dtype not in DTYPE_NAMES:
            raise EvalError(f"unknown dtype {dtype!r}: use float32 or float64")
        self.source = source
        self.dtype = dtype
        self.op: list = []
        self.a = array("q")
        self.b = array("q")
        self.params: list = []
        self.consts: dict = {}  # (index, slot) -> the constant in a tensor slot
        #: index -> the tensor slots after the second, for the few ops of three or more tensor
        #: operands (addmm: bias, mat1, mat2); as ``a``/``b``: an index, or -1 for a constant
        self.more: dict = {}
        self.req = bytearray()
        self.on_floats = bytearray()
        self.value: list = []
        self.shape: list = []
        #: index -> strides, for the tensors whose strides are not contiguous_strides(shape)
        #: (a transposed view, an elementwise result that follows one): see :meth:`strides_of`
        self.layout: dict = {}
        self.start = array("q")  # the span of source text each tensor holds (-1: none)
        self.end = array("q")
        self.grad: dict = {}
        self.input_names: list = []  # the inputs' names: the inputs are the first entries
        self.names: dict = {}  # index -> a name given otherwise (a label, an input created late)
        self.input_index: dict = {}  # name -> index, in order of first use
        self.retained: set = set()
        self.output_index = -1
        self.root_index: int | None = None  # where backward starts (None: nothing needs grad)
        #: which producer made the graph: "expression" (the tracer) or "torch" (gradviz.from_torch)
        self.producer = "expression"
        #: index -> ImportedFunction, for entries whose op is an ImportedOp (an imported graph)
        self.imported: dict = {}
        self._np_dtype = None
        self._tensor_views: dict = {}
        self._function_views: dict = {}
        self._order = None  # depth-first order from the root (array of indices)
        self._fpos = None
        self._functions = None

    # --- size and numpy ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.value)

    @property
    def np_dtype(self):
        """numpy's dtype of the values (imports numpy)."""
        dtype = self._np_dtype
        if dtype is None:
            dtype = self._np_dtype = numpy_dtype(self.dtype)
        return dtype

    # --- views ---------------------------------------------------------------------------
    def tensor(self, i: int) -> Tensor:
        """The :class:`Tensor` view of entry ``i`` (the same object each time)."""
        t = self._tensor_views.get(i)
        if t is None:
            t = self._tensor_views[i] = Tensor(self, i)
        return t

    def function(self, i: int) -> BackwardFunction:
        """The :class:`BackwardFunction` view of entry ``i``'s function."""
        fn = self._function_views.get(i)
        if fn is None:
            fn = self._function_views[i] = BackwardFunction(self, i)
        return fn

    @property
    def output(self) -> Tensor:
        return self.tensor(self.output_index)

    @property
    def inputs(self) -> dict:
        """name -> leaf Tensor, in order of first use."""
        return {name: self.tensor(i) for name, i in self.input_index.items()}

    @property
    def root(self) -> BackwardFunction | None:
        """Where backward starts: the output's grad_fn, the AccumulateGrad of an output that is
        itself a leaf requiring grad, or None when the output needs no grad."""
        return None if self.root_index is None else self.function(self.root_index)

    @property
    def tensors(self) -> list:
        """Every Tensor, in creation order (ids t0, t1, ...)."""
        return [self.tensor(i) for i in range(len(self.value))]

    @property
    def functions(self) -> list:
        """Every BackwardFunction reachable from the root, in depth-first order (ids f0, f1, ...)."""
        if self._functions is None:
            self._functions = [self.function(i) for i in self.order()]
        return self._functions

    def order(self) -> array:
        """The functions reachable from the root, depth-first pre-order, as indices."""
        if self._order is None:
            self._order = depth_first(self, self.root_index)
        return self._order

    def function_ids(self):
        """Per entry: its function's position in :meth:`order` (-1 when not reachable)."""
        if self._fpos is None:
            if self.root_index is None:
                return None
            pos = array("q", [-1]) * len(self.value)
            for k, i in enumerate(self.order()):
                pos[i] = k
            self._fpos = pos
        return self._fpos

    def function_count(self) -> int:
        """How many backward functions are reachable from the root."""
        return len(self.order())

    def edge_count(self) -> int:
        """How many next_functions entries the reachable functions have (None entries too)."""
        next_functions = self.next_functions
        return sum(len(next_functions(i)) for i in self.order())

    def dependency_counts(self) -> dict:
        """Function index -> how many edges point at it (PyTorch's compute_dependencies)."""
        counts: dict = {}
        get = counts.get
        if self.imported or self.more:
            next_functions = self.next_functions
            for i in self.order():
                for j in next_functions(i):
                    if j is not None:
                        counts[j] = get(j, 0) + 1
            return counts
        op, a, b, req = self.op, self.a, self.b, self.req  # two slots at most: read the tape
        for i in self.order():
            if op[i] is not None:
                x, y = a[i], b[i]
                if x >= 0 and req[x]:
                    counts[x] = get(x, 0) + 1
                if y >= 0 and req[y]:
                    counts[y] = get(y, 0) + 1
        return counts

    def context_override(self, i: int):
        """The context a caller set on function ``i``'s view (the second-order pass gives the
        rules Tensors to record), or None: the rule reads the tape's own values."""
        view = self._function_views.get(i)
        return None if view is None else view._context

    def has_context_overrides(self) -> bool:
        return any(view._context is not None for view in self._function_views.values())

    # --- imported entries (gradviz.from_torch, --from-json) -----------------------------------
    def append_imported(self, op: ImportedOp | None, value, shape: tuple, requires_grad: bool = True,
                        entry: ImportedFunction | None = None, name: str | None = None) -> int:
        """Append one entry read from another producer: a leaf (``op`` None; ``name`` its input
        name) or an imported function's output (``op`` an :class:`ImportedOp`, ``entry`` what it
        holds). ``value`` may be None (not known). Returns the entry's index."""
        i = len(self.value)
        self.op.append(op)
        self.a.append(-2)
        self.b.append(-2)
        self.params.append(_EMPTY)
        self.req.append(1 if requires_grad else 0)
        self.value.append(value)
        self.shape.append(tuple(shape))
        self.start.append(-1)
        self.end.append(-1)
        self.on_floats.append(0)
        if op is not None:
            self.imported[i] = entry if entry is not None else ImportedFunction(())
        if name is not None:
            if i == len(self.input_names):
                self.input_names.append(name)
            else:
                self.names[i] = name
            self.input_index[name] = i
        return i

    # --- one entry -----------------------------------------------------------------------
    def strides_of(self, i: int) -> tuple:
        """Tensor ``i``'s strides in elements, as PyTorch's ``tensor.stride()`` (see gradviz.layout)."""
        strides = self.layout.get(i)
        return strides if strides is not None else layout.contiguous_strides(self.shape[i])

    def is_contiguous(self, i: int) -> bool:
        """``tensor.is_contiguous()`` for tensor ``i``."""
        return i not in self.layout or layout.is_contiguous(self.shape[i], self.layout[i])

    def operands(self, i: int) -> tuple:
        """The tensor slots of entry ``i``: tensor indices, or -1 for a constant (none for an
        imported function: its inputs are its next_functions)."""
        if self.imported and i in self.imported:
            return ()
        b = self.b[i]
        if b == -2:
            return (self.a[i],)
        if self.more and i in self.more:
            return (self.a[i], b) + self.more[i]
        return (self.a[i], b)

    def next_functions(self, i: int) -> tuple:
        """Function ``i``'s next_functions as indices (None for no edge)."""
        op = self.op[i]
        if op is None:
            return ()
        if type(op) is ImportedOp:
            return self.imported[i].next_functions
        req = self.req
        x, y = self.a[i], self.b[i]
        first = x if x >= 0 and req[x] else None
        if y == -2:
            return (first,)
        if self.more and i in self.more:
            return tuple(k if k >= 0 and req[k] else None for k in self.operands(i))
        return (first, y if y >= 0 and req[y] else None)

    def slot_value(self, i: int, slot: int, as_array: bool = True):
        """The value in tensor slot ``slot`` of entry ``i`` (a constant cast to the dtype, as
        PyTorch wraps a Python number into a 0-d tensor)."""
        k = self.a[i] if slot == 0 else self.b[i] if slot == 1 else self.more[i][slot - 2]
        if k >= 0:
            v = self.value[k]
        else:
            v = self.consts[(i, slot)]
            if isinstance(v, Number) and not isinstance(v, bool):
                v = FLOAT_OPS[self.dtype].cast(v)
        if as_array and type(v) is float:
            return np.asarray(v, dtype=self.np_dtype)
        return v

    def context(self, i: int, floats: bool = False) -> dict:
        """Every value entry ``i``'s gradient rule reads, keyed by saved name.

        Tensor values are 0-d arrays (or, with ``floats``, the Python floats the tape holds)."""
        op = self.op[i]
        if type(op) is ImportedOp:
            return self._imported_saved(i, floats)
        params = self.params[i]
        derived, args = _EMPTY, None
        if op.derived is not None or len(op.plan) != len(op.saves):
            args = {}  # (a loop: a comprehension costs a call of its own)
            for k, slot in enumerate(op.inputs):
                args[slot] = self.slot_value(i, k, not floats)
            if len(op.plan) != len(op.saves):  # a row made outside the table (no plan)
                return self._saved_strides(op, i, saved_values(op, args, params, self._result_value(i, floats)))
            derived = op.derived(args, params)
        # saved_values' lookup through the row's plan (derived values, then result, then
        # params, then inputs), each input read once off the tape
        saved = {}
        for name, source, arg, _ in op.plan:
            if source == "input" and args is None and name not in params:  # (derived is empty)
                k = self.a[i] if arg == 0 else self.b[i] if arg == 1 else self.more[i][arg - 2]
                v = self.value[k] if k >= 0 else self.slot_value(i, arg, False)
                if not floats and type(v) is float:
                    v = np.asarray(v, dtype=self.np_dtype)
            elif name in derived:
                v = derived[name]
            elif source == "result":
                v = self.value[i]
                if not floats and type(v) is float:
                    v = np.asarray(v, dtype=self.np_dtype)
            elif name in params:
                v = params[name]
            elif source != "input":
                raise KeyError(name)
            else:
                v = args[name]
            saved[name] = v
        for name in op.hidden:
            saved[name] = params[name] if name in params else derived[name]
        return self._saved_strides(op, i, saved) if op.key in _SAVES_STRIDES else saved

    def _result_value(self, i: int, floats: bool = False):
        """Entry ``i``'s value as its rule reads it (a 0-d one a 0-d array unless ``floats``)."""
        v = self.value[i]
        return np.asarray(v, dtype=self.np_dtype) if not floats and type(v) is float else v

    def _saved_strides(self, op: Op, i: int, saved: dict) -> dict:
        """``saved`` with <input>_sym_strides the input's strides on the tape."""
        if op.key in _SAVES_STRIDES:
            slots = self.operands(i)
            for k, slot in enumerate(op.inputs):
                j = slots[k]
                if j >= 0 and slot + "_sym_strides" in saved:
                    saved[slot + "_sym_strides"] = self.strides_of(j)
        return saved

    def context_scalars(self, i: int) -> dict:
        """:meth:`context` with each 0-d tensor value as numpy's scalar of the dtype (for a numpy
        rule on a 0-d entry: numpy's bits at a fraction of a 0-d array's cost)."""
        ctx = self.context(i, floats=True)
        scalar = self.np_dtype
        for name, source, _, _ in self.op[i].plan:
            if (source == "input" or source == "result") and type(ctx[name]) is float:
                ctx[name] = scalar(ctx[name])
        return ctx

    def saved(self, i: int, floats: bool = False) -> dict:
        """What PyTorch shows as ``_saved_*`` on function ``i``: the context, with a Python number
        PyTorch wrapped shown as given, and None where PyTorch saves nothing. With ``floats``,
        0-d tensor values are :class:`TensorValue` floats instead of numpy arrays."""
        op = self.op[i]
        if op is None:
            return {}
        if type(op) is ImportedOp:
            return self._imported_saved(i, floats)
        saved = self.context(i, floats=floats)
        if floats:  # mark the values that come from tensors (not a Python number as given)
            for name, source, arg, _ in op.plan:
                v = saved.get(name)
                if type(v) is float and (source == "result" or (source == "input" and self.operands(i)[arg] >= 0)):
                    saved[name] = TensorValue(v)
        for name in op.hidden:  # kept for the rule, not shown by PyTorch (CatBackward0's sizes)
            del saved[name]
        for k, slot in enumerate(op.inputs):
            if slot in saved and (i, k) in self.consts and self.operands(i)[k] < 0:
                saved[slot] = self.consts[(i, k)]
        if op.save_when:
            req, nexts = self.req, self.operands(i)
            for name, slot in op.save_when.items():
                j = nexts[op.inputs.index(slot)]
                if not (j >= 0 and req[j]):
                    # an unsaved SymInt list reads back as (), an unsaved tensor as None
                    saved[name] = () if name.endswith("_sym_strides") else None
        return saved

    def _imported_saved(self, i: int, floats: bool) -> dict:
        """An imported function's saved values (with ``floats``, a 0-d float tensor's value as a
        :class:`TensorValue`, as the views show the tracer's)."""
        saved = dict(self.imported[i].saved)
        if floats:
            for name, v in saved.items():
                if type(v) is np.ndarray and v.ndim == 0 and v.dtype.kind == "f":
                    saved[name] = TensorValue(float(v))
        return saved

    def input_shapes(self, i: int) -> tuple:
        if self.imported and i in self.imported:
            return tuple(() if j is None else self.shape[j] for j in self.imported[i].next_functions)
        out = []
        for k, j in enumerate(self.operands(i)):
            if j >= 0:
                out.append(self.shape[j])
            else:
                c = self.consts[(i, k)]
                out.append(tuple(np.shape(c)) if not isinstance(c, Number) else ())
        return tuple(out)

    def name_of(self, i: int) -> str | None:
        """Entry ``i``'s name: an input's, or a label given to it (None for most tensors)."""
        if self.names:
            name = self.names.get(i)
            if name is not None:
                return name
        return self.input_names[i] if i < len(self.input_names) else None

    def text_of(self, tensor: Tensor) -> str:
        """The name of a leaf, or the source text of the sub-expression a tensor holds."""
        if tensor.name:
            return tensor.name
        span = tensor.span
        if span is None:
            entry = self.imported.get(tensor.index) if self.imported else None
            if entry is not None and entry.module:
                return entry.module  # an imported output: the module that made it
            if entry is not None and tensor.index == self.output_index:
                return "output"
            return tensor.id
        return self.source[span[0]:span[1]].strip()


#: the rows that save an input's strides (``self_sym_strides``...)
_SAVES_STRIDES = frozenset(row.key for row in OPS.values() if any(n.endswith("_sym_strides") for n in row.saves))


class Selection:
    """Part of a graph shown on its own (a double-backward graph): its own output, root,
    tensors and functions, read as a :class:`Graph` is."""

    def __init__(self, output: Tensor, inputs: dict, tensors: list, root, functions: list,
                 source: str, dtype: str):
        self.output = output
        self.inputs = inputs
        self.tensors = tensors
        self.root = root
        self.functions = functions
        self.source = source
        self.dtype = dtype

    def text_of(self, tensor: Tensor) -> str:
        return tensor.graph.text_of(tensor)

    def function_count(self) -> int:
        return len(self.functions)

    def edge_count(self) -> int:
        return sum(len(fn.next_functions) for fn in self.functions)

    def dependency_counts(self) -> dict:
        counts: dict = {}
        for fn in self.functions:
            for nxt in fn.next_functions:
                if nxt is not None:
                    counts[nxt.index] = counts.get(nxt.index, 0) + 1
        return counts


def depth_first(graph: Graph, root: int | None) -> array:
    """Every function reachable from ``root``, in depth-first pre-order, each once (no recursion)."""
    order = array("q")
    if root is None:
        return order
    if graph.imported or graph.more:  # entries of any number of next_functions
        return _depth_first_imported(graph, root)
    op, a, b, req = graph.op, graph.a, graph.b, graph.req
    seen = bytearray(len(graph.value))
    seen[root] = 1
    stack = [root]
    push, visit = stack.append, order.append
    while stack:
        f = stack.pop()
        while True:  # down the first slots: the next entry visited is the first slot's, unpushed
            visit(f)
            if op[f] is None:
                break
            y = b[f]
            if y >= 0 and req[y] and not seen[y]:
                seen[y] = 1
                push(y)
            f = a[f]
            if f < 0 or not req[f] or seen[f]:
                break
            seen[f] = 1
    return order


def _depth_first_imported(graph: Graph, root: int) -> array:
    """:func:`depth_first` on a graph with imported functions (any number of next_functions each),
    in the same order: an entry is marked when pushed, its first next function popped first."""
    order = array("q")
    seen = bytearray(len(graph.value))
    seen[root] = 1
    stack = [root]
    next_functions = graph.next_functions
    while stack:
        f = stack.pop()
        order.append(f)
        for j in reversed(next_functions(f)):
            if j is not None and not seen[j]:
                seen[j] = 1
                stack.append(j)
    return order


def walk_functions(root: BackwardFunction | None) -> list[BackwardFunction]:
    """Every function reachable from ``root`` (a view), depth-first, each once (no recursion)."""
    if root is None:
        return []
    g = root.graph
    return [g.function(i) for i in depth_first(g, root.index)]


# ---------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------


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
        self._appends = (g.op.append, g.a.append, g.b.append, g.params.append, g.req.append, g.value.append,
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
        i = self._append(None, -2, -2, _EMPTY, requires_grad, v, shape, None, 0)
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
        g.params.extend([_EMPTY] * n)
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
        return self.view(self._append(None, -2, -2, _EMPTY, False, v, (), node, 0))

    def constant_tensor(self, value, node) -> Tensor:
        """A tensor that needs no grad made inside the expression (``torch.tensor([0, 2])``,
        ``x > 0``): an array of its own dtype (a 0-d one of the run's dtype a Python float)."""
        g = self.graph
        if value.ndim == 0 and value.dtype == g.np_dtype:
            return self.view(self._append(None, -2, -2, _EMPTY, False, float(value), (), node, 0))
        return self.view(self._append(None, -2, -2, _EMPTY, False, value, tuple(value.shape), node, 0))

    def _append(self, op, x, y, params, req, value, shape, node, on_floats) -> int:
        i = len(self.graph.value)
        add_op, add_a, add_b, add_params, add_req, add_value, add_shape, add_start, add_end, add_on_floats \
            = self._appends
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

    def apply(self, op: Op, operands: Sequence, params: dict = _EMPTY, node: Node | None = None) -> Tensor:
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
                    if params else _EMPTY
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
                if params else _EMPTY
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


#: tensor (+ - * /) tensor: the row and its params (one shared dict, never changed)
_TENSOR_ARITHMETIC = {"+": (OPS["add"], _ALPHA), "-": (OPS["sub"], _ALPHA), "*": (OPS["mul"], _EMPTY),
                      "/": (OPS["div"], _EMPTY)}


def _broadcast_check(a: Tensor, b: Tensor, node: Node, source: str):
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


def _binary(tr: Tracer, op: str, a, b, node: Node, source: str):
    """Dispatch a binary operator as PyTorch's Tensor dunder methods do."""
    ta, tb = type(a) is Tensor, type(b) is Tensor
    if ta and tb and (op == "@" or op in _TENSOR_ARITHMETIC):  # the commonest: two tensors' W @ x, x + b
        if op == "@":
            return _matmul(tr, a, b, node, source)
        shapes = tr.graph.shape
        if shapes[a.index] != shapes[b.index]:
            _broadcast_check(a, b, node, source)
        if op == "-":
            _bool_subtraction(a, b, node)
        row, params = _TENSOR_ARITHMETIC[op]
        return tr.apply(row, (a, b), params, node)
    if not (ta and tb):
        _operand_check(a, node)
        _operand_check(b, node)
    # (two 0-d float tensors' + - * /: TraceBuilder.binary has appended those itself)
    if (not ta and type(a) not in _NUMBER_TYPES) or (not tb and type(b) not in _NUMBER_TYPES):
        raise EvalError(f"operator {op!r} cannot be applied to {_what(b if ta or type(a) in _NUMBER_TYPES else a)} "
                        f"at column {node.column}")
    if op in _COMPARISONS:
        return compare(tr, op, a, b, node, source)
    if not ta and not tb:
        return _fold(op, a, b, node)
    if op == "//":
        if (ta and a.requires_grad) or (tb and b.requires_grad):
            raise EvalError(f"the derivative for 'floor_divide' is not implemented (PyTorch records a NotImplemented "
                            f"node: its backward raises) at column {node.column}; give the operands --no-grad")
        return tr.apply(OPS["floor_divide"], (a, b), _EMPTY, node)
    if op == "@":
        if not (ta and tb):
            raise EvalError(f"'@' needs two tensors at column {node.column}")
        return _matmul(tr, a, b, node, source)
    if ta and tb:
        if a.shape != b.shape:
            _broadcast_check(a, b, node, source)
    else:
        _to_float(b if ta else a, node)  # a Python int too large for a float is PyTorch's overflow error
    if op == "+":
        return tr.apply(OPS["add"], (a, b) if ta else (b, a), _ALPHA, node)
    if op == "-":
        _bool_subtraction(a, b, node)
        if ta:
            return tr.apply(OPS["sub"], (a, b), _ALPHA, node)
        return tr.apply(OPS["rsub"], (b,), {"other": a, "alpha": 1}, node)
    if op == "*":
        return tr.apply(OPS["mul"], (a, b) if ta else (b, a), _EMPTY, node)
    if op == "/":
        if ta:
            return tr.apply(OPS["div"], (a, b), _EMPTY, node)
        # number / tensor is tensor.reciprocal() * number in PyTorch
        recip = tr.apply(OPS["reciprocal"], (b,), _EMPTY, node)
        return tr.apply(OPS["mul"], (recip, a), _EMPTY, node)
    if op == "**":
        if ta and tb:
            return tr.apply(OPS["pow_tensor"], (a, b), _EMPTY, node)
        if ta:
            return tr.apply(OPS["pow"], (a,), {"exponent": b}, node)
        return tr.apply(OPS["pow_scalar_base"], (b,), {"self": a}, node)
    raise EvalError(f"unsupported operator {op!r} at column {node.column}")


_NUMBER_TYPES = (int, float, bool)


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


def _what(value) -> str:
    """A value that is not an operand, named for a message."""
    if value is None:
        return "None"
    if value is Ellipsis:
        return "'...'"
    if type(value) is _Slice:
        return "a slice (':' belongs inside a subscript)"
    return f"a {type(value).__name__}" if type(value) in (list, tuple) else repr(value)


#: the Python ints PyTorch's scalar path converts (int64 or uint64); beyond, OverflowError
_SCALAR_INTS = (-(1 << 63), (1 << 64) - 1)


def _operand_check(value, node) -> None:
    """An operand that is neither a tensor nor a number (max(dim)'s (values, indices), a string)."""
    if type(value) is ValuesIndices:
        raise EvalError(f"{value.name}(dim) returns (values, indices): use {value.name}(dim).values "
                        f"at column {node.column}")
    if isinstance(value, str):
        raise EvalError(f"{value!r} is not a tensor or a number at column {node.column}")


def _to_float(value, node: Node):
    if type(value) is int and not _SCALAR_INTS[0] <= value <= _SCALAR_INTS[1]:
        raise EvalError(f"the number {node_text(value)} at column {node.column} is too large for a tensor "
                        f"operation (PyTorch: OverflowError, int too big to convert)")
    try:
        return float(value)
    except OverflowError:
        raise EvalError(f"the number at column {node.column} is too large for a tensor operation") from None


def _matmul(tr: Tracer, a: Tensor, b: Tensor, node: Node, source: str):
    """torch.matmul's dispatch on ranks."""
    g = tr.graph
    sa, sb = g.shape[a.index], g.shape[b.index]
    da, db = len(sa), len(sb)
    if da == 0 or db == 0:
        raise EvalError(f"'@' needs tensors of at least one dimension, got shapes {format_shape(sa)} and "
                        f"{format_shape(sb)} at column {node.column}")
    ka, kb = g.value[a.index].dtype, g.value[b.index].dtype  # (arrays: neither is 0-d)
    if ka is not kb and ka != kb:
        ka, kb = _dtype_of(a), _dtype_of(b)
        if ka != kb:  # matmul does not promote (a float32 torch.tensor([...]) in a float64 run)
            raise EvalError(f"'@' needs tensors of the same dtype, got {TORCH_DTYPE_NAMES.get(ka, ka)} and "
                            f"{TORCH_DTYPE_NAMES.get(kb, kb)} at column {node.column}")
    if da == 1 and db == 1:
        if sa != sb:
            raise _matmul_mismatch(sa, sb, node, source)
        return tr.apply(OPS["dot"], (a, b), _EMPTY, node)
    if da == 2 and db == 1:
        if sa[1] != sb[0]:
            raise _matmul_mismatch(sa, sb, node, source)
        return tr.apply(OPS["mv"], (a, b), _EMPTY, node)
    if da == 2 and db == 2:
        if sa[1] != sb[0]:
            raise _matmul_mismatch(sa, sb, node, source)
        return tr.apply(OPS["mm"], (a, b), _EMPTY, node)
    if da == 1 and db == 2:
        if sa[0] != sb[0]:
            raise _matmul_mismatch(sa, sb, node, source)
        row = tr.apply(OPS["unsqueeze"], (a,), {"dim": 0}, node)
        prod = tr.apply(OPS["mm"], (row, b), _EMPTY, node)
        return tr.apply(OPS["squeeze"], (prod,), {"dim": 0}, node)
    return matmul_batched(tr, a, b, node, lambda: _matmul_mismatch(sa, sb, node, source))


def _matmul_mismatch(sa: tuple, sb: tuple, node, source: str) -> EvalError:
    return EvalError(f"shapes {format_shape(sa)} and {format_shape(sb)} cannot be multiplied with '@' "
                     f"in '{source[node.start:node.end].strip()}' at column {node.column}")


# ---------------------------------------------------------------------------
# Functions callable by name: sin(x), torch.sin(x), x.sin()
# ---------------------------------------------------------------------------

FunctionImpl = Callable[..., object]


def _sig(node: Node, args, kwargs, positional: Sequence[str], defaults: dict | None = None) -> dict:
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
    """A dim checked against ``ndim`` and kept as given (PyTorch saves -1 as -1: rules normalise)."""
    d = _int_arg(value, "dim", node)
    if d is None:
        return None
    n = max(ndim, 1)
    if not -n <= d < n:
        raise EvalError(f"dim {d} is out of range for a tensor of {ndim} dimensions at column {node.column}")
    return d


def _fn_unary(row: Op):
    def impl(tr, node, args, kwargs, source):
        # the commonest call, sin(x) or x.sin(): one argument, nothing to bind
        x = args[0] if len(args) == 1 and not kwargs else _sig(node, args, kwargs, ("input",))["input"]
        if type(x) is not Tensor:
            # torch.sin(2) is a TypeError in PyTorch: its functions take tensors, not numbers
            raise EvalError(f"{node.op}() needs a tensor argument, not the number {x!r} at column {node.column} "
                            f"(PyTorch's functions take tensors: give the value a name and --at)")
        return tr.apply(row, (x,), _EMPTY, node)
    return impl


def _fn_pow(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "exponent"))
    return _binary(tr, "**", b["input"], b["exponent"], node, source)


def _fn_square(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    return _binary(tr, "**", b["input"], 2, node, source)


def _fn_reduce(plain: str, with_dim: str):
    def impl(tr, node, args, kwargs, source):
        if len(args) == 1 and not kwargs and type(args[0]) is Tensor:  # x.sum(): the whole tensor
            return tr.apply(OPS[plain], (args[0],), _EMPTY, node)
        b = _sig(node, args, kwargs, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        x = _tensor_arg(b["input"], node.op, node)
        if b["dim"] is None:
            if b["keepdim"]:
                raise EvalError(f"keepdim needs a dim at column {node.column}")
            return tr.apply(OPS[plain], (x,), _EMPTY, node)
        if type(b["keepdim"]) is not bool:  # PyTorch's TypeError: sum(M, 1, 1) is refused
            raise EvalError(f"{node.op}(): argument 'keepdim' must be bool (True or False), not "
                            f"{_type_name(b['keepdim'])} at column {node.column}")
        dims = b["dim"] if isinstance(b["dim"], (tuple, list)) else (b["dim"],)
        dim = tuple(_dim_arg(d, x.ndim, node) for d in dims)  # (issue 13: a tuple of dims too)
        if len({d % max(x.ndim, 1) for d in dim}) != len(dim):
            raise EvalError(f"dim {b['dim']!r} appears more than once at column {node.column}")
        # PyTorch saves dim as a list (the IntArrayRef overload)
        return tr.apply(OPS[with_dim], (x,), {"dim": dim, "keepdim": b["keepdim"]}, node)
    return impl


def _type_name(value) -> str:
    return "Tensor" if isinstance(value, Tensor) else type(value).__name__


def _fn_full_reduce(key: str):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input",))
        x = _tensor_arg(b["input"], node.op, node)
        if key != "prod" and math.prod(x.shape) == 0:  # prod([]) is 1, as in PyTorch
            raise EvalError(f"{node.op}() of an empty tensor: PyTorch needs a dim to reduce over "
                            f"at column {node.column}")
        return tr.apply(OPS[key], (x,), _EMPTY, node)
    return impl


def _fn_two(key: str):
    def impl(tr, node, args, kwargs, source):
        if len(args) == 2 and not kwargs:  # the commonest call, maximum(x, y): nothing to bind
            x, y = args
        else:
            b = _sig(node, args, kwargs, ("input", "other"))
            x, y = b["input"], b["other"]
        if type(x) is not Tensor or type(y) is not Tensor:
            raise EvalError(f"{node.op}() needs two tensors at column {node.column}")
        shapes = tr.graph.shape
        if shapes[x.index] != shapes[y.index]:
            _broadcast_check(x, y, node, source)
        return tr.apply(OPS[key], (x, y), _EMPTY, node)
    return impl


def _fn_clamp(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "min", "max"), {"min": None, "max": None})
    x = _tensor_arg(b["input"], "clamp", node)
    lo, hi = b["min"], b["max"]
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):
        return _clamp_tensors(tr, node, x, lo, hi, source)
    for v in (lo, hi):
        if v is not None and not isinstance(v, Number):
            raise EvalError(f"clamp() bounds must be numbers at column {node.column}")
        if v is not None:
            _to_float(v, node)  # clamp(x, 2**2000) overflows in PyTorch too
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
            _broadcast_check(x, v, node, source)
    return tr.apply(OPS["clamp_tensor"], (x, lo, hi), _EMPTY, node)


def _fn_bmm(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "mat2"))
    a, m = _tensor_arg(b["input"], "bmm", node), _tensor_arg(b["mat2"], "bmm", node)
    for t, which in ((a, "batch1"), (m, "batch2")):
        if t.ndim != 3:
            raise EvalError(f"{which} must be a 3D tensor at column {node.column}")
    if m.shape[:2] != (a.shape[0], a.shape[2]):
        raise EvalError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, {a.shape[2]}] "
                        f"but got: [{m.shape[0]}, {m.shape[1]}] (at column {node.column})")
    ka, km = _dtype_of(a), _dtype_of(m)
    if ka != km:
        raise EvalError(f"expected scalar type {TORCH_DTYPE_NAMES.get(ka, ka)} but found "
                        f"{TORCH_DTYPE_NAMES.get(km, km)} at column {node.column}")
    return tr.apply(OPS["bmm"], (a, m), _EMPTY, node)


def _fn_reshape(tr, node, args, kwargs, source):
    if not args:
        raise EvalError(f"reshape() needs a tensor at column {node.column}")
    x = _tensor_arg(args[0], "reshape", node)
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
    copy = tr.apply(OPS["clone"], (x,), _EMPTY, node)
    return tr.apply(OPS["unsafe_view"], (copy,), {"shape": target}, node)


def _fn_transpose(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim0", "dim1"))
    x = _tensor_arg(b["input"], "transpose", node)
    d0 = _dim_arg(b["dim0"], x.ndim, node)
    d1 = _dim_arg(b["dim1"], x.ndim, node)
    return tr.apply(OPS["transpose"], (x,), {"dim0": d0, "dim1": d1}, node)


def _fn_t(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = _tensor_arg(b["input"], "t", node)
    if x.ndim > 2:
        raise EvalError(f"t() expects a tensor with at most 2 dimensions at column {node.column}")
    return tr.apply(OPS["t"], (x,), _EMPTY, node)


def _fn_softmax(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim"))
    x = _tensor_arg(b["input"], "softmax", node)
    return tr.apply(OPS["softmax"], (x,), {"dim": _dim_arg(b["dim"], x.ndim, node)}, node)


def _fn_matmul(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "other"))
    return _binary(tr, "@", b["input"], b["other"], node, source)


def _fn_linalg(key: str, ranks: tuple):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input", "other"))
        x, y = _tensor_arg(b["input"], node.op, node), _tensor_arg(b["other"], node.op, node)
        if (x.ndim, y.data.ndim) != ranks:
            raise EvalError(f"{node.op}() expects tensors of {ranks[0]} and {ranks[1]} dimensions, got shapes "
                            f"{format_shape(x.shape)} and {format_shape(y.shape)} at column {node.column}")
        return _matmul(tr, x, y, node, source)
    return impl


def _fn_unsqueeze(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim"))
    x = _tensor_arg(b["input"], "unsqueeze", node)
    d = _int_arg(b["dim"], "dim", node)
    n = x.ndim + 1
    if n > MAX_DIMS:
        raise EvalError(f"unsqueeze() would make a tensor of {n} dimensions, more than the limit of {MAX_DIMS} "
                        f"at column {node.column}")
    if not -n <= d < n:
        raise EvalError(f"dim {d} is out of range for unsqueeze at column {node.column}")
    return tr.apply(OPS["unsqueeze"], (x,), {"dim": d}, node)  # saved as given (-1 stays -1)


def _fn_flatten(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = _tensor_arg(b["input"], "flatten", node)
    if x.ndim == 1:
        return x  # flatten of a vector is the vector itself
    return _fn_reshape(tr, node, [x, -1], {}, source)


def _fn_contiguous(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = _tensor_arg(b["input"], "contiguous", node)
    if tr.graph.is_contiguous(x.index):
        return x  # already contiguous: the same tensor
    return tr.apply(OPS["clone"], (x,), _EMPTY, node)


def _fn_norm(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    return tr.apply(OPS["norm"], (_tensor_arg(b["input"], "norm", node),), _EMPTY, node)


def _fn_reciprocal(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input",))
    x = b["input"]
    if not isinstance(x, Tensor):
        return _fold("/", 1, x, node)
    return tr.apply(OPS["reciprocal"], (x,), _EMPTY, node)


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

# --- indexing, joining, selection (issue 13) --------------------------------------------------
# x[0], x[1:3], M[:, 0], x[None], x[...] as PyTorch's Tensor.__getitem__ builds them (select,
# slice, unsqueeze, alias: one op each, applied left to right); comparisons (bool tensors, no
# grad_fn); torch.where, torch.cat, torch.stack; torch.tensor([...]) as a constant.


class _Slice:
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
    if type(item) is _Slice:
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
        result = tr.apply(OPS["alias"], (x,), _EMPTY, node)
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
        return tr.apply(OPS["alias"], (x,), _EMPTY, node)
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


def _slice(tr: Tracer, node, x: Tensor, dim: int, sl: _Slice, optimize: bool) -> Tensor:
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
        _broadcast_check(a, b, node, source)
    tr.quiet_numpy()
    result = getattr(np, _COMPARE_NUMPY[op])(a.data if ta else a, b.data if tb else b)
    return tr.constant_tensor(np.asarray(result), node)


def _fn_where(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("condition", "input", "other"))
    cond, x, y = b["condition"], b["input"], b["other"]
    if not isinstance(cond, Tensor):
        raise EvalError(f"where() needs a boolean tensor as its condition, e.g. torch.where(x > 0, x, 0.), "
                        f"at column {node.column}")
    mask = np.asarray(cond.data)
    if mask.dtype != np.bool_:
        kind = _dtype_of(cond)
        raise EvalError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                        f"{TORCH_DTYPE_NAMES.get(kind, kind)} at column {node.column} (compare it: x > 0)")
    for v in (x, y):
        if not isinstance(v, Tensor) and type(v) not in _NUMBER_TYPES:
            raise EvalError(f"where() takes tensors or numbers, not {_what(v)}, at column {node.column}")
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
            raise EvalError(f"{fname}(): expected Tensor as element {k} in argument 0, but got {_what(t)} "
                            f"at column {node.column}")
    return list(value)


def _join_dim(value, ndim: int, node) -> int:
    dim = _int_arg(value, "dim", node)
    if not -ndim <= dim < ndim:
        raise EvalError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got "
                        f"{dim}) at column {node.column}")
    return dim


def _fn_cat(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("tensors", "dim"), {"dim": 0})
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
    b = _sig(node, args, kwargs, ("tensors", "dim"), {"dim": 0})
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

    b = _sig(node, args, kwargs, ("data", "requires_grad"), {"requires_grad": False})
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


#: PyTorch's names of the dtypes, as its messages print them
TORCH_DTYPE_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}


def _dtype_of(t: Tensor, _names: dict = {}) -> str:
    v = t.graph.value[t.index]
    if type(v) is float:
        return t.graph.dtype
    dtype = v.dtype
    name = _names.get(dtype)  # str() of a dtype costs microseconds: once per dtype
    if name is None:
        name = _names[dtype] = str(dtype)
    return name


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
    t2 = (tr.apply(OPS["t"], (a,), _EMPTY, node) if a.ndim == 2 else a) if transpose else b
    if t1.shape[-1] != t2.shape[0]:
        raise mismatch()
    out_shape = t1.shape[:-1]
    folded = reshape_tensor(tr, t1, (math.prod(out_shape), t1.shape[-1]), node)
    if t2.ndim == 1:
        return tr.apply(OPS["unsafe_view"], (tr.apply(OPS["mv"], (folded, t2), _EMPTY, node),),
                        {"shape": out_shape}, node)
    out = tr.apply(OPS["unsafe_view"], (tr.apply(OPS["mm"], (folded, t2), _EMPTY, node),),
                   {"shape": out_shape + (t2.shape[1],)}, node)
    if transpose:  # output.mT().contiguous()
        out = tr.apply(OPS["transpose"], (out,), {"dim0": -2, "dim1": -1}, node)
        if not tr.graph.is_contiguous(out.index):
            out = tr.apply(OPS["clone"], (out,), _EMPTY, node)
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
    out = tr.apply(OPS["bmm"], (a, b), _EMPTY, node)
    if db == 1:
        out = tr.apply(OPS["squeeze_dim"], (out,), {"dim": -1}, node)
    shape = batch + ((n,) if da > 1 else ()) + ((p,) if db > 1 else ())
    return tr.apply(OPS["unsafe_view"], (out,), {"shape": shape}, node)


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
    _to_float(value, node)
    return value


def _given_dim(value, ndim: int, node):
    """A dim checked against the rank but kept as given (PyTorch saves -1 as -1)."""
    d = _int_arg(value, "dim", node)
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
        b = _sig(node, args, kwargs, ("input",) + positional, defaults)
        x = _tensor_arg(b["input"], node.op, node)
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
    b = _sig(node, args, kwargs, ("input", "alpha", "inplace"), {"alpha": 1.0, "inplace": False})
    x = _tensor_arg(b["input"], node.op, node)
    _fn_inplace_flag(b["inplace"], "inplace", node)
    return tr.apply(OPS["elu"], (x,), {"alpha": _number_arg(b["alpha"], "alpha", node), "scale": 1,
                                       "input_scale": 1}, node)


def _fn_softmax_like(key: str):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input", "dim"), {"dim": None})
        x = _tensor_arg(b["input"], node.op, node)
        dim = b["dim"]
        if dim is None:  # PyTorch's implicit dim (_get_softmax_dim), with a warning
            dim = 0 if x.ndim in (0, 1, 3) else 1
        return tr.apply(OPS[key], (x,), {"dim": _given_dim(dim, x.ndim, node)}, node)
    return impl


def _fn_logsumexp(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim", "keepdim"), {"keepdim": False})
    x = _tensor_arg(b["input"], node.op, node)
    return tr.apply(OPS["logsumexp"], (x,), {"dim": _dims_arg(b["dim"], x.ndim, node),
                                             "keepdim": _bool_arg(b["keepdim"], "keepdim", node)}, node)


def _loss_operands(node, b, source):
    x = _tensor_arg(b["input"], node.op, node)
    t = _tensor_arg(b["target"], node.op, node)
    _broadcast_check(x, t, node, source)
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
    b = _sig(node, args, kwargs, positional, defaults)
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
    diff = tr.apply(OPS["sub"], (x, t), _ALPHA, node)
    loss = tr.apply(OPS["abs"], (diff,), _EMPTY, node)
    if reduction == 0:
        return loss
    return tr.apply(OPS["mean" if reduction == 1 else "sum"], (loss,), _EMPTY, node)


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
    target = _tensor_arg(b["target"], node.op, node)
    weight = _constant_arg(b["weight"], "weight", node)
    ignore = _int_arg(b["ignore_index"], "ignore_index", node)
    _class_targets(x, target, weight, ignore, node)
    params = {"target": np.asarray(target.data), "weight": weight, "reduction": _reduction_arg(b["reduction"], node),
              "ignore_index": ignore}
    return tr.apply(OPS["nll_loss"], (x,), params, node)


def _fn_nll_loss(tr, node, args, kwargs, source):
    b = _loss_sig(node, args, kwargs, _NLL_SIGNATURE, _NLL_DEFAULTS)
    return _nll_loss(tr, node, _tensor_arg(b["input"], node.op, node), b)


def _fn_cross_entropy(tr, node, args, kwargs, source):
    b = _loss_sig(node, args, kwargs, _NLL_SIGNATURE + ("label_smoothing",), dict(_NLL_DEFAULTS, label_smoothing=0.0))
    x = _tensor_arg(b["input"], node.op, node)
    target = _tensor_arg(b["target"], node.op, node)
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
    prod = tr.apply(OPS["mul"], (log_p, target), _EMPTY, node)
    if weight is not None:
        prod = tr.apply(OPS["mul"], (prod, np.reshape(weight, (1, -1)) if x.ndim == 2 else weight), _EMPTY, node)
    if reduction == 0:
        summed = tr.apply(OPS["sum_dim"], (prod,), {"dim": (x.ndim - 1,), "keepdim": False}, node)
        return tr.apply(OPS["neg"], (summed,), _EMPTY, node)
    neg = tr.apply(OPS["neg"], (tr.apply(OPS["sum"], (prod,), _EMPTY, node),), _EMPTY, node)
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
        OPS["mul"], (log_p, np.reshape(weight, (1, -1)) if log_p.ndim == 2 else weight), _EMPTY, node)
    summed = tr.apply(OPS["sum_dim"], (terms,), {"dim": (log_p.ndim - 1,), "keepdim": False}, node)
    smooth = tr.apply(OPS["masked_fill"], (tr.apply(OPS["neg"], (summed,), _EMPTY, node),),
                      {"mask": ignored, "value": 0.0}, node)
    if reduction != 0:
        smooth = tr.apply(OPS["sum"], (smooth,), _EMPTY, node)
    if reduction == 1:
        counted = target[~ignored] if target.ndim else target[None][~ignored[None]]
        total = np.asarray(np.sum(weight[counted]), dtype=weight.dtype) if weight is not None else \
            np.asarray(counted.size, dtype=np.int64)
        smooth = tr.apply(OPS["div"], (smooth, total), _EMPTY, node)
    first = tr.apply(OPS["mul_scalar"], (nll,), {"other": 1 - smoothing}, node)
    second = tr.apply(OPS["mul_scalar"], (smooth,), {"other": smoothing / classes}, node)
    return tr.apply(OPS["add"], (first, second), _ALPHA, node)


def _fn_linear(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "weight", "bias"), {"bias": None})
    x, w = _tensor_arg(b["input"], "linear", node), _tensor_arg(b["weight"], "linear", node)
    bias = b["bias"]
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise EvalError(f"linear(): input {format_shape(x.shape)} and weight {format_shape(w.shape)} do not fit "
                        f"(weight is (out_features, in_features)) at column {node.column}")
    if bias is not None:
        bias = _tensor_arg(bias, "linear", node)
        if bias.ndim > 1 or (bias.ndim == 1 and bias.shape[0] not in (1, w.shape[0])):
            raise EvalError(f"linear(): bias of shape {format_shape(bias.shape)} does not fit {w.shape[0]} outputs "
                            f"at column {node.column}")
    if bias is None:  # input.matmul(weight.t()), whatever the input's rank
        return _matmul(tr, x, tr.apply(OPS["t"], (w,), _EMPTY, node), node, source)
    # with a bias PyTorch flattens any input but a matrix to (-1, in_features), then transposes the weight
    flat = x if x.ndim == 2 else tr.apply(OPS["view"], (x,), {"shape": (-1, x.shape[-1])}, node)
    wt = tr.apply(OPS["t"], (w,), _EMPTY, node)
    out = tr.apply(OPS["addmm"], (bias, flat, wt), {"beta": 1, "alpha": 1}, node)
    if x.ndim == 2:
        return out
    return tr.apply(OPS["view"], (out,), {"shape": x.shape[:-1] + (w.shape[0],)}, node)


def _fn_normalize(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "p", "dim", "eps"), {"p": 2.0, "dim": 1, "eps": 1e-12})
    x = _tensor_arg(b["input"], "normalize", node)
    p = _number_arg(b["p"], "p", node)  # any p, as linalg.vector_norm takes it (0: the count of nonzeros)
    dim = _given_dim(b["dim"], x.ndim, node)
    norm = tr.apply(OPS["norm_dim"], (x,), {"ord": float(p), "dim": (dim,), "keepdim": True}, node)
    clamped = tr.apply(OPS["clamp_min"], (norm,), {"min": _number_arg(b["eps"], "eps", node)}, node)
    expanded = tr.apply(OPS["expand"], (clamped,), {"size": x.shape}, node)
    return tr.apply(OPS["div"], (x, expanded), _EMPTY, node)


def _fn_dropout(tr, node, args, kwargs, source):
    third = "train" if node.op == "torch.dropout" else "training"
    b = _sig(node, args, kwargs, ("input", "p", third, "inplace"), {"p": 0.5, third: True, "inplace": False})
    x = _tensor_arg(b["input"], "dropout", node)
    p = _number_arg(b["p"], "p", node)
    _fn_inplace_flag(b["inplace"], "inplace", node)
    if not 0 <= p <= 1:
        raise EvalError(f"dropout probability has to be between 0 and 1, but got {p!r} at column {node.column}")
    if p == 0 or not _bool_arg(b[third], third, node):
        return x  # a no-op, as in eval mode: PyTorch returns the input itself
    raise EvalError(f"dropout with p={p!r} in training mode is random: gradviz shows it with p=0 or "
                    f"{third}=False at column {node.column}")


def _fn_squeeze(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "dim"), {"dim": None})
    x = _tensor_arg(b["input"], "squeeze", node)
    if b["dim"] is None:
        return tr.apply(OPS["squeeze_all"], (x,), _EMPTY, node)
    if isinstance(b["dim"], (tuple, list)):
        return tr.apply(OPS["squeeze_dims"], (x,), {"dim": _dims_arg(b["dim"], x.ndim, node)}, node)
    return tr.apply(OPS["squeeze_dim"], (x,), {"dim": _given_dim(b["dim"], x.ndim, node)}, node)


def _fn_permute(tr, node, args, kwargs, source):
    if not args:
        raise EvalError(f"permute() needs a tensor at column {node.column}")
    x = _tensor_arg(args[0], "permute", node)
    rest = list(args[1:]) + ([kwargs.pop("dims")] if "dims" in kwargs else [])
    if kwargs:
        raise EvalError(f"permute() got an unexpected keyword argument {next(iter(kwargs))!r} at column {node.column}")
    dims = tuple(_given_dim(d, x.ndim, node) for d in _sizes_arg(rest, "dims", node)) if x.ndim or rest else ()
    if len(dims) != x.ndim or sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise EvalError(f"permute(): the number of dims don't match or repeat: {dims} for a tensor of "
                        f"{x.ndim} dimensions at column {node.column}")
    return tr.apply(OPS["permute"], (x,), {"dims": dims}, node)


def _fn_expand(tr, node, args, kwargs, source):
    x = _tensor_arg(args[0] if args else None, "expand", node)
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
    x = _tensor_arg(args[0] if args else None, "repeat", node)
    repeats = _sizes_arg(list(args[1:]) + ([kwargs["repeats"]] if "repeats" in kwargs else []), "repeats", node)
    if len(repeats) < x.ndim or any(r < 0 for r in repeats):
        raise EvalError(f"repeat(): give at least one non-negative count per dimension ({x.ndim}) "
                        f"at column {node.column}")
    return tr.apply(OPS["repeat"], (x,), {"repeats": repeats}, node)


def _fn_outer(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "vec2"))
    x, y = _tensor_arg(b["input"], "outer", node), _tensor_arg(b["vec2"], "outer", node)
    if x.ndim != 1 or y.ndim != 1:
        raise EvalError(f"outer() needs two vectors, got shapes {format_shape(x.shape)} and "
                        f"{format_shape(y.shape)} at column {node.column}")
    column = tr.apply(OPS["view"], (x,), {"shape": (x.shape[0], 1)}, node)  # x.reshape(-1, 1) * y
    return tr.apply(OPS["mul"], (column, y), _EMPTY, node)


def _fn_var_std(key: str):
    def impl(tr, node, args, kwargs, source):
        b = _sig(node, args, kwargs, ("input", "dim", "unbiased", "keepdim", "correction"),
                 {"dim": None, "unbiased": None, "keepdim": False, "correction": None})
        x = _tensor_arg(b["input"], node.op, node)
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
        b = _sig(node, args, kwargs, ("input", "dim", "keepdim"), {"dim": (), "keepdim": False})
        x = _tensor_arg(b["input"], node.op, node)
        dim = () if b["dim"] in ((), []) else _dims_arg(b["dim"], x.ndim, node)
        if x.data.size == 0:
            raise EvalError(f"{node.op}() of an empty tensor at column {node.column}")
        return tr.apply(OPS[key], (x,), {"dim": dim, "keepdim": _bool_arg(b["keepdim"], "keepdim", node)}, node)
    return impl


class ValuesIndices:
    """What ``x.max(dim)`` returns: PyTorch's named tuple (values, indices); ``.values`` is the tensor."""

    __slots__ = ("values", "indices", "name")

    def __init__(self, values: Tensor, indices, name: str):
        self.values = values
        self.indices = indices
        self.name = name


def _fn_max_min(which: str):
    full = _fn_full_reduce(which)
    two = _fn_two("maximum" if which == "max" else "minimum")

    def impl(tr, node, args, kwargs, source):
        if len(args) + len(kwargs) <= 1:
            return full(tr, node, args, kwargs, source)
        second = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("dim"))
        if isinstance(second, Tensor):  # torch.max(a, b) is maximum(a, b)
            return two(tr, node, args, kwargs, source)
        b = _sig(node, args, kwargs, ("input", "dim", "keepdim"), {"keepdim": False})
        x = _tensor_arg(b["input"], node.op, node)
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
        b = _sig(node, args, kwargs, ("input", name))
        x = _tensor_arg(b["input"], node.op, node)
        if isinstance(b[name], Tensor):  # ClampMinBackward1 / ClampMaxBackward1: the bound gets a gradient too
            _broadcast_check(x, b[name], node, source)
            return tr.apply(OPS[key + "_tensor"], (x, b[name]), _EMPTY, node)
        return tr.apply(OPS[key], (x,), {name: _number_arg(b[name], name, node)}, node)
    return impl


def _fn_round(tr, node, args, kwargs, source):
    b = _sig(node, args, kwargs, ("input", "decimals"), {"decimals": 0})
    x = _tensor_arg(b["input"], "round", node)
    decimals = _int_arg(b["decimals"], "decimals", node)
    if "decimals" in kwargs:  # round(x, decimals=d) is the second overload, even for d = 0
        return tr.apply(OPS["round_decimals"], (x,), {"decimals": decimals}, node)
    if args[1:]:
        raise EvalError(f"round() takes decimals as a keyword (round(x, decimals=1)) at column {node.column}")
    return tr.apply(OPS["round"], (x,), _EMPTY, node)


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
            _operand_check(output, out)
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
        self.appends, self.F, self.req, self.use_floats = tr._appends, tr.F, tr.graph.req, tr.use_floats
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
        if type(x) is not Tensor and type(x) not in _NUMBER_TYPES:
            raise EvalError(f"unary {op!r} cannot be applied to {_what(x)} at column {node.column}")
        if op == "+":
            return self._made(node, x)  # +x is x itself (no node), as in PyTorch
        return self._made(node, self.tr.apply(OPS["neg"], (x,), _EMPTY, node) if type(x) is Tensor else -x)

    def binary(self, op: str, left: _Operand, right: _Operand, start: int, end: int) -> _Operand:
        values = self.graph.value
        k = len(values)
        i, j = left.index, right.index
        if i >= 0 and j >= 0 and op in _TENSOR_ARITHMETIC:
            # the commonest entry, two 0-d tensors' arithmetic on floats: apply's entry, appended
            # here without its general checks
            vx, vy = values[i], values[j]
            if type(vx) is float and type(vy) is float and self.use_floats:
                row, params = _TENSOR_ARITHMETIC[op]
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
        return self._made(node, _binary(self.tr, op, self.value(left), self.value(right), node, self.source))

    def call(self, name: str, args: list, kwargs: list, method: bool, start: int, end: int) -> _Operand:
        node = _Operand(None, start, end, name, method)
        if name.startswith("F.") and "F" in self.graph.input_index:  # an input named F: F.sum() is its method
            receiver = _Operand(None, start, start + 1, "F", False, 0, 0, self.graph.input_index["F"])
            return self.call(name[2:], [receiver] + list(args), kwargs, True, start, end)
        impl = self.impls.get((name, method))
        if impl is None:
            impl = self.impls[name, method] = _resolve(name, method, node)
        node.lo = len(self.graph.value)
        value = self.value
        return self._made(node, impl(self.tr, node, [value(a) for a in args],
                                     {k: value(v) for k, v in kwargs} if kwargs else {}, self.source))

    def attr(self, name: str, receiver: _Operand, start: int, end: int) -> _Operand:
        node = _Operand(None, start, end, name, False, len(self.graph.value))
        return self._made(node, _attribute(self.tr, node, self.value(receiver)))

    def subscript(self, receiver: _Operand, items: list, start: int, end: int) -> _Operand:
        node = _Operand(None, start, end, "[]", False, len(self.graph.value))
        value = self.value
        return self._made(node, subscript(self.tr, node, value(receiver), [value(item) for item in items]))

    def slice(self, lo: _Operand, hi: _Operand, step: _Operand, start: int, end: int) -> _Operand:
        return _Operand(_Slice(self.value(lo), self.value(hi), self.value(step), start), start, end, ":")

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
    x = _tensor_arg(x, ".T", node)
    # PyTorch permutes with the dims reversed, also for 0-D, 1-D and 3-D or more (where it warns)
    return tr.apply(OPS["permute"], (x,), {"dims": tuple(range(x.ndim))[::-1]}, node)


def iter_edges(functions: Sequence[BackwardFunction]) -> Iterator[tuple]:
    """(function, input index, next function) for every non-None next_functions entry."""
    for fn in functions:
        for i, nxt in enumerate(fn.next_functions):
            if nxt is not None:
                yield fn, i, nxt
