"""The one graph: a flat tape of tensors, their backward functions at the same index.

Every tensor is one entry of the :class:`Graph` (the tape): its op row (:mod:`gradviz.ops`),
its operands (tensor indices, or a Python number in a tensor slot), its params,
requires_grad, its value, shape and the span of source it came from. A tensor that requires
grad has exactly one backward function, addressed by the same index: its ``grad_fn`` when an
op made it, or the ``AccumulateGrad`` of a leaf. Functions are created in tensor order,
which is the order of PyTorch's ``sequence_nr``; ``next_functions`` need not be stored (an
operand that requires grad leads to its own function, one that does not to None).

The producers append to it — the expression tracer (:mod:`gradviz.tracer`, driven by
:mod:`gradviz.tracing`), the second-order pass, an import of a real PyTorch graph — and the
consumers only read it (the engine, the analyses, the renderers).

PyTorch's vocabulary — :class:`Tensor` (data, grad, grad_fn, is_leaf, requires_grad) and
:class:`BackwardFunction` (name, next_functions, saved...) — are views of one entry,
created on demand (``graph.tensor(i)``, ``graph.function(i)``) and kept, so a view is the
same object every time it is asked for.
"""

from __future__ import annotations

import math
from array import array
from typing import Iterator, Sequence

from . import layout
from .errors import EvalError
from .ops import FLOAT_OPS, OPS, Op, np, saved_values

DTYPE_NAMES = ("float32", "float64")
#: named numbers: Python-number constants, as PyTorch's torch.pi / torch.inf are Python floats
CONSTANTS = {"pi": math.pi, "e": math.e, "torch.pi": math.pi, "torch.e": math.e, "torch.inf": math.inf,
             "torch.nan": math.nan}

Number = (int, float)
EMPTY_PARAMS: dict = {}
ALPHA_PARAMS = {"alpha": 1}


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
        self.params.append(EMPTY_PARAMS)
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
        derived, args = EMPTY_PARAMS, None
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


def iter_edges(functions: Sequence[BackwardFunction]) -> Iterator[tuple]:
    """(function, input index, next function) for every non-None next_functions entry."""
    for fn in functions:
        for i, nxt in enumerate(fn.next_functions):
            if nxt is not None:
                yield fn, i, nxt
