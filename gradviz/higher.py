"""Second derivatives by differentiating the backward graph (``create_graph=True``).

PyTorch computes a Hessian by running backward once with ``create_graph=True``,
so that the gradient computation is itself recorded as a graph of tensors with
grad_fns, and then running backward again from each gradient. gradviz does the
same with the same op rows: :class:`GraphOps` is an ops namespace ``F`` whose
methods apply op rows through a :class:`gradviz.tracer.Tracer` instead of
computing bare numbers, and the first backward is run with it. Each input's
gradient is then a Tensor whose ``grad_fn`` is the root of its *double-backward
graph*; a numeric backward from it (once per element) gives one row of the
Hessian.

The double-backward graph is built from gradviz's gradient rules, written as
PyTorch's ``derivatives.yaml`` and ``FunctionsManual.cpp`` write them, with numbers as
C++ Scalars (``t * 2`` is ``MulBackward1``), so its nodes are PyTorch's. Rules PyTorch
computes with one fused kernel record one node of their own, as PyTorch's do: the rule
calls ``F.fused(key, ...)`` with a kernel row of the table (``TanhBackwardBackward0``,
``SigmoidBackwardBackward0``, ``ThresholdBackwardBackward0`` for relu,
``SoftmaxBackwardDataBackward0``, and the F. functions' ``LeakyReluBackwardBackward0``,
``EluBackwardBackward0``, ``GeluBackwardBackward0``, ``SoftplusBackwardBackward0``,
``LogSoftmaxBackwardDataBackward0``, ``MseLossBackwardBackward0``,
``SmoothL1LossBackwardBackward0``, ``HuberLossBackwardBackward0``,
``BinaryCrossEntropyBackwardBackward0``, ``NllLossBackwardBackward0``); ``MaskedFillBackward0/1``
in maximum, norm and max; a broadcast gradient is reduced as ATen's ``sum_to``; reshapes of a gradient are
views, aliases or copies as its strides allow; prod's rule is ``prod_safe_zeros_backward``'s
cumprod/cat/flip graph. tests/test_double_graph.py compares the graphs with PyTorch's.
"""

from __future__ import annotations

import numpy as np

from .engine import backward
from .errors import EvalError
from .graph import BackwardFunction, Selection, Tensor, walk_functions
from .operators import reshape_tensor
from .tracing import trace_source
from .tracer import Tracer
from .ops import OPS, NumpyOps, normalized_dims

#: --order 2 runs one backward per input element; more than this is refused.
MAX_HESSIAN_ELEMENTS = 256

def _grad_tensor(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _val(x):
    return x.data if isinstance(x, Tensor) else x


def _is_number(x) -> bool:
    """A Python number: a Scalar in PyTorch's C++ formulas. numpy scalars are values computed
    from constant tensors (numpy's ops on 0-d arrays return them), so they stay tensors."""
    return isinstance(x, (int, float)) and not isinstance(x, (bool, np.generic))


class GraphOps:
    """``F`` for gradient rules that records what it computes as graph nodes.

    Operands are Tensors (recorded), numpy arrays (constant tensors that need no
    grad: ``None`` in next_functions) or Python numbers. When no operand is a
    Tensor requiring grad the result is a plain number (:class:`NumpyOps`), as
    PyTorch records nothing then. Masks (``eq``, ``lt``...) are constants: their
    derivative is zero in every order.
    """

    def __init__(self, tracer: Tracer):
        self.tr = tracer

    def _apply(self, key, tensors, params=None):
        return self.tr.apply(OPS[key], tensors, params or {})

    # --- arithmetic, dispatched as ATen's C++ operators do (the formulas are C++) ---
    # t * 2 and 2 * t are mul.Scalar (MulBackward1); 2 - t and 2 / t fill a tensor with the
    # number and subtract/divide in place (SubBackward0/DivBackward0 with a None entry);
    # a constant tensor keeps its operand position.
    def _scalar_or_tensor(self, key, np_fn, a, b, params, commutative):
        if not (_grad_tensor(a) or _grad_tensor(b)):
            return np_fn(_val(a), _val(b))
        if _grad_tensor(a) and _is_number(b):
            return self._apply(key + "_scalar", (a,), dict(params, other=b))
        if _grad_tensor(b) and _is_number(a):
            if commutative:
                return self._apply(key + "_scalar", (b,), dict(params, other=a))
            a = np.full(b.shape, a, dtype=b.data.dtype)
        return self._apply(key, (a, b), params)

    def add(self, a, b):
        return self._scalar_or_tensor("add", np.add, a, b, {"alpha": 1}, True)

    def sub(self, a, b):
        return self._scalar_or_tensor("sub", np.subtract, a, b, {"alpha": 1}, False)

    def mul(self, a, b):
        return self._scalar_or_tensor("mul", np.multiply, a, b, {}, True)

    def div(self, a, b):
        return self._scalar_or_tensor("div", np.divide, a, b, {}, False)

    def neg(self, x):
        return self._apply("neg", (x,)) if _grad_tensor(x) else np.negative(_val(x))

    def pow(self, x, exponent):
        tx, te = _grad_tensor(x), _grad_tensor(exponent)
        if not (tx or te):
            return np.power(_val(x), _val(exponent))
        if tx and not te and _is_number(exponent):
            return self._apply("pow", (x,), {"exponent": exponent})
        if te and not tx and _is_number(x):
            return self._apply("pow_scalar_base", (exponent,), {"self": x})
        return self._apply("pow_tensor", (x, exponent))

    # --- elementwise functions -----------------------------------------------------
    def _unary(self, key, np_fn, x):
        return self._apply(key, (x,)) if _grad_tensor(x) else np_fn(_val(x))

    def exp(self, x):
        return self._unary("exp", np.exp, x)

    def log(self, x):
        return self._unary("log", np.log, x)

    def sin(self, x):
        return self._unary("sin", np.sin, x)

    def cos(self, x):
        return self._unary("cos", np.cos, x)

    def sinh(self, x):
        return self._unary("sinh", np.sinh, x)

    def cosh(self, x):
        return self._unary("cosh", np.cosh, x)

    def sqrt(self, x):
        return self._unary("sqrt", np.sqrt, x)

    def rsqrt(self, x):
        return self._unary("rsqrt", NumpyOps.rsqrt, x)

    def sgn(self, x):
        return self._unary("sgn", NumpyOps.sgn, x)

    # used by the issue-13 rows (activations, losses)
    def tanh(self, x):
        return self._unary("tanh", np.tanh, x)

    def sigmoid(self, x):
        return self._unary("sigmoid", NumpyOps.sigmoid, x)

    def erf(self, x):
        return self._unary("erf", NumpyOps.erf, x)

    def abs(self, x):
        return self._unary("abs", np.abs, x)

    def clamp_min(self, x, min):
        if not _grad_tensor(x):
            return NumpyOps.clamp_min(_val(x), min)
        return self._apply("clamp_min", (x,), {"min": min})

    def mean(self, x, dim=None, keepdim=False):
        if not _grad_tensor(x):
            return NumpyOps.mean(_val(x), dim, keepdim)
        if dim is None:
            return self._apply("mean", (x,))
        return self._apply("mean_dim", (x,), {"dim": normalized_dims(dim, x.ndim), "keepdim": bool(keepdim)})

    # --- constants ------------------------------------------------------------------
    def value(self, x):
        return np.asarray(_val(x))

    def where(self, mask, a, b):
        if not (_grad_tensor(a) or _grad_tensor(b)):
            return np.where(mask, _val(a), _val(b))
        return self._apply("where", (a, b), {"condition": np.asarray(mask)})

    def eq(self, a, b):
        return np.equal(_val(a), _val(b))

    def lt(self, a, b):
        return np.less(_val(a), _val(b))

    def gt(self, a, b):
        return np.greater(_val(a), _val(b))

    def ge(self, a, b):
        return np.greater_equal(_val(a), _val(b))

    def le(self, a, b):
        return np.less_equal(_val(a), _val(b))

    def logical_and(self, a, b):
        return np.logical_and(a, b)

    def logical_or(self, a, b):
        return np.logical_or(a, b)

    def zeros_like(self, x):
        return np.zeros_like(_val(x))

    # --- shapes and reductions -------------------------------------------------------
    def expand(self, x, shape):
        if not _grad_tensor(x):  # a constant keeps an expand's strides (0 where broadcast), as PyTorch's
            return np.broadcast_to(_val(x), shape)
        return self._apply("expand", (x,), {"size": tuple(shape)})

    def reshape(self, x, shape):
        """``grad.reshape(shape)``: a view, an alias or a copy, as the strides allow (as the tracer's)."""
        if not _grad_tensor(x):
            return np.reshape(_val(x), shape)
        return reshape_tensor(self.tr, x, np.empty(x.shape, dtype=np.int8).reshape(shape).shape)

    def view(self, x, shape):
        if not _grad_tensor(x):
            return np.reshape(_val(x), shape)
        return self._apply("view", (x,), {"shape": tuple(shape)})

    def transpose(self, x, dim0, dim1):
        if not _grad_tensor(x):
            return NumpyOps.transpose(_val(x), dim0, dim1)
        return self._apply("transpose", (x,), {"dim0": dim0, "dim1": dim1})

    # --- PyTorch's fused backward kernels: one node each (the table's *_backward rows) -------
    def fused(self, key, *tensors, **params):
        """PyTorch's fused kernel ``key`` (a row of the table: tanh_backward, gelu_backward,
        mse_loss_backward...) on ``tensors``: one node, as ``create_graph=True`` records it; a
        plain number when no operand requires grad."""
        if not any(_grad_tensor(t) for t in tensors):
            return OPS[key].forward(*[_val(t) for t in tensors], **params)
        return self._apply(key, tensors, params)

    def tanh_backward(self, grad_output, output):
        return self.fused("tanh_backward", grad_output, output)

    def sigmoid_backward(self, grad_output, output):
        return self.fused("sigmoid_backward", grad_output, output)

    def threshold_backward(self, grad_output, x, threshold):
        return self.fused("threshold_backward", grad_output, x, threshold=threshold)

    def softmax_backward_data(self, grad_output, output, dim):
        return self.fused("softmax_backward_data", grad_output, output, dim=dim)

    # what binary_cross_entropy(_with_logits)'s composite rules call
    def logit(self, x):
        return self._apply("logit", (x,), {"eps": None}) if _grad_tensor(x) else NumpyOps.logit(_val(x))

    def log_sigmoid(self, x):
        return self._unary("log_sigmoid", NumpyOps.log_sigmoid, x)

    # prod's rule (prod_safe_zeros_backward): cumprod, cat, narrow and flip
    def contiguous(self, x):
        if not _grad_tensor(x) or self.tr.graph.is_contiguous(x.index):
            return x
        return self._apply("clone", (x,))

    def cumprod(self, x, dim):
        return self._apply("cumprod", (x,), {"dim": dim}) if _grad_tensor(x) else NumpyOps.cumprod(_val(x), dim)

    def cat(self, a, b, dim):
        if not (_grad_tensor(a) or _grad_tensor(b)):
            return NumpyOps.cat(_val(a), _val(b), dim)
        sizes = (np.shape(_val(a))[dim], np.shape(_val(b))[dim])
        return self._apply("cat", (a, b), {"dim": dim, "axis": dim % np.ndim(_val(a)), "sizes": sizes})

    def narrow(self, x, dim, start, length):
        if not _grad_tensor(x):
            return NumpyOps.narrow(_val(x), dim, start, length)
        return self._apply("slice", (x,), {"dim": dim, "start": start, "end": start + length, "step": 1})

    def flip(self, x, dims):
        return self._apply("flip", (x,), {"dims": tuple(dims)}) if _grad_tensor(x) else np.flip(_val(x), dims)

    def masked_fill(self, x, mask, value):
        """``x.masked_fill(mask, value)``: MaskedFillBackward1 when the value is a tensor that needs
        grad (evenly_distribute_backward's masked_fill_), MaskedFillBackward0 for a number."""
        mask = np.asarray(mask)
        if _grad_tensor(value):
            return self._apply("masked_fill_tensor", (x, value), {"mask": mask})
        if not _grad_tensor(x):
            return NumpyOps.masked_fill(_val(x), mask, _val(value))
        return self._apply("masked_fill", (x,), {"mask": mask, "value": _val(value)})

    def unsqueeze(self, x, dim):
        if not _grad_tensor(x):
            return np.expand_dims(_val(x), dim)
        return self._apply("unsqueeze", (x,), {"dim": dim})

    def squeeze(self, x, dim):
        if not _grad_tensor(x):
            return np.squeeze(_val(x), dim)
        return self._apply("squeeze_dim", (x,), {"dim": dim})  # squeeze.dim: SqueezeBackward1

    def permute(self, x, dims):
        if not _grad_tensor(x):
            return np.transpose(_val(x), dims)
        return self._apply("permute", (x,), {"dims": tuple(dims)})

    def t(self, x):
        if not _grad_tensor(x):
            return NumpyOps.t(_val(x))
        return self._apply("t", (x,))

    def sum(self, x, dim=None, keepdim=False):
        if not _grad_tensor(x):
            return NumpyOps.sum(_val(x), dim, keepdim)
        if dim is None:
            return self._apply("sum", (x,))
        return self._apply("sum_dim", (x,), {"dim": normalized_dims(dim, x.ndim), "keepdim": bool(keepdim)})

    def prod(self, x):
        return self._apply("prod", (x,)) if _grad_tensor(x) else NumpyOps.prod(_val(x))

    def sum_to(self, x, shape):
        """Reduce a broadcast gradient back to ``shape`` as ATen's ``sum_to``: everything to a 0-d
        shape is sum() (SumBackward0); else a sum over dims, kept, then a view for leading dims."""
        if not _grad_tensor(x):
            return NumpyOps.sum_to(_val(x), shape)
        shape = tuple(shape)
        if x.shape == shape:
            return x
        if not shape:
            return self._apply("sum", (x,))
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1
        )
        if axes:
            x = self._apply("sum_dim", (x,), {"dim": axes, "keepdim": True})
        return self.view(x, shape) if lead > 0 else x

    def mm(self, a, b):
        if not (_grad_tensor(a) or _grad_tensor(b)):
            return np.matmul(_val(a), _val(b))
        return self._apply("mm", (a, b))

    def index_backward(self, g, sizes, indices):
        """index_backward: ``zeros(sizes).index_put_(indices, grad, accumulate=True)``
        (IndexPutImplBackward0, its zeros a constant)."""
        if not _grad_tensor(g):
            return NumpyOps.index_backward(_val(g), sizes, indices)
        zeros = np.zeros(sizes, dtype=g.data.dtype)
        return self._apply("index_put_impl", (zeros, g), {"indices": indices, "accumulate": True})

    def index(self, x, indices):
        if not _grad_tensor(x):
            return NumpyOps.index(_val(x), indices)
        return self._apply("index", (x,), {"indices": indices})

    def bmm(self, a, b):
        if not (_grad_tensor(a) or _grad_tensor(b)):
            return np.matmul(_val(a), _val(b))
        return self._apply("bmm", (a, b))

    def mv(self, a, b):
        if not (_grad_tensor(a) or _grad_tensor(b)):
            return np.matmul(_val(a), _val(b))
        return self._apply("mv", (a, b))

    def outer(self, a, b):
        # torch.outer(a, b) is a.reshape(a.size(0), 1) * b (mv's rule for the matrix)
        return self.mul(self.reshape(a, (np.shape(_val(a))[0], 1)), b)

    # --- indexing (issue 13): select/slice and their rules' own rows ------------------
    def select(self, x, dim, index):
        if not _grad_tensor(x):
            return NumpyOps.select(_val(x), dim, index)
        return self._apply("select", (x,), {"dim": dim, "index": index})

    def slice(self, x, dim, start, end, step):
        if not _grad_tensor(x):
            return NumpyOps.slice(_val(x), dim, start, end, step)
        return self._apply("slice", (x,), {"dim": dim, "start": start, "end": end, "step": step})

    def select_backward(self, g, sizes, dim, index):
        if not _grad_tensor(g):
            return NumpyOps.select_backward(_val(g), sizes, dim, index)
        return self._apply("select_backward", (g,), {"input_sizes": tuple(sizes), "dim": dim, "index": index})

    def slice_backward(self, g, sizes, dim, start, end, step):
        if not _grad_tensor(g):
            return NumpyOps.slice_backward(_val(g), sizes, dim, start, end, step)
        return self._apply("slice_backward", (g,), {"input_sizes": tuple(sizes), "dim": dim, "start": start,
                                                    "end": end, "step": step})


class SecondOrder:
    """The result of :func:`second_order`.

    ``grads``: input name → its first-order gradient as computed with
    ``create_graph=True`` (a Tensor with a grad_fn, or a constant array when the
    gradient does not depend on any input); ``hessian``: name → name → array of
    shape ``input_a.shape + input_b.shape``; ``graphs``: name → :class:`Graph`
    whose root is that gradient's grad_fn (None when it has none), sharing one
    set of ids; ``functions`` and ``tensors``: the union of those graphs; ``trace_type``: the
    class of the trace differentiated (:class:`gradviz.result.Trace`), which :meth:`traces` makes.
    """

    def __init__(self, grads, hessian, graphs, functions, tensors, trace_type):
        self.grads = grads
        self.hessian = hessian
        self.graphs = graphs
        self.functions = functions
        self.tensors = tensors
        # (given, not imported: gradviz.result sits above the analyses and imports them)
        self.trace_type = trace_type
        #: name -> the record of the first numeric backward run from that gradient (engine.Steps)
        self.steps: dict = {}

    def traces(self) -> dict:
        """name → a :class:`gradviz.result.Trace` whose graph is that input's double-backward graph.

        The graph's root is the gradient's grad_fn, so every renderer that takes a trace
        (the terminal tree, DOT/SVG) draws it; its steps are those of the numeric backward
        run from the gradient (from its first element, for a tensor input).
        """
        make = self.trace_type
        return {n: make(g, self.steps.get(n, []), None, []) for n, g in self.graphs.items()}


def hessian_json(second) -> dict:
    """``{"u": {"u": 2.0, "v": 1.0}, ...}``: numbers, or nested lists for tensor inputs."""
    from .values import array

    return {a: {b: array(h) for b, h in row.items()} for a, row in second.hessian.items()}


def double_backward_json(second) -> dict:
    """The double-backward graph: roots per input, then functions and tensors as in ``graph``."""
    from .values import function_entry, tensor_entry

    return {
        "roots": {n: g.root.id if g.root is not None else None for n, g in second.graphs.items()},
        "grads": {n: t.id if isinstance(t, Tensor) and t.id else None for n, t in second.grads.items()},
        "functions": [function_entry(fn) for fn in second.functions],
        "tensors": [tensor_entry(t, None) for t in second.tensors],
    }


def _tensor_of(fn: BackwardFunction) -> Tensor:
    """The tensor whose gradient flows into ``fn`` (its leaf, or the output it produced)."""
    return fn.variable if fn.variable is not None else fn.output


def _graph_context(fn: BackwardFunction) -> dict:
    """``fn.context`` with the inputs and result that require grad as Tensors, not numbers."""
    ctx = dict(fn.context)
    for slot, nxt in zip(fn.op.inputs, fn.next_functions):
        if nxt is not None and slot in ctx:
            ctx[slot] = _tensor_of(nxt)
    if "result" in ctx and fn.output is not None:
        ctx["result"] = fn.output
    return ctx


def second_order(trace, max_elements: int = MAX_HESSIAN_ELEMENTS) -> SecondOrder:
    """The Hessian of ``trace``'s output over its inputs, and the double-backward graphs.

    Re-traces the expression at the same point (so ``trace`` is left untouched),
    runs backward with :class:`GraphOps` (``create_graph=True``), then one numeric
    backward per element of each input's gradient. Raises :class:`EvalError`
    for a non-scalar output or more than ``max_elements`` input elements.
    """
    from .parser import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS

    g0 = trace.graph
    if g0.output.data.size != 1:
        raise EvalError(f"--order 2 needs a scalar output; this output has shape {tuple(g0.output.shape)} "
                        f"(wrap it in sum(...))")
    names = [n for n, t in g0.inputs.items() if t.requires_grad]
    total = sum(g0.inputs[n].data.size for n in names)
    if total > max_elements:
        raise EvalError(f"--order 2 runs one backward pass per input element: {total} elements is more "
                        f"than the limit of {max_elements}")
    source = g0.source
    graph = trace_source(source, {n: t.data for n, t in g0.inputs.items()},
                         no_grad=[n for n, t in g0.inputs.items() if not t.requires_grad], dtype=g0.dtype,
                         max_terms=max(DEFAULT_MAX_TERMS, len(source)), max_depth=max(DEFAULT_MAX_DEPTH, len(source)))
    leaves = graph.inputs
    tr, grads = _create_graph(graph, names)
    steps: dict = {}
    hessian, roots = _hessian(graph, tr, grads, names, steps)

    # Name each gradient for the renderers (the tensor torch.autograd.grad would return).
    for a in names:
        if isinstance(grads[a], Tensor):
            label = f"∂f/∂{a}"
            grads[a].name = label if grads[a].name is None else f"{grads[a].name} = {label}"
    functions = _union_functions(roots.values())
    for i, fn in enumerate(functions):
        fn.id = f"f{i}"
    shown = _tensors_of(functions)
    for i, t in enumerate(shown):
        t.id = f"t{i}"
    graphs = {a: Selection(grads[a] if isinstance(grads[a], Tensor) else graph.output, leaves, shown, roots[a],
                           walk_functions(roots[a]), source, graph.dtype) for a in names}
    second = SecondOrder(grads, hessian, graphs, functions, shown, type(trace))
    second.steps = steps
    return second


def _create_graph(graph, names: list) -> tuple:
    """backward with ``create_graph=True``: (the tracer that recorded it, name → each input's
    gradient, a Tensor with a grad_fn or a constant)."""
    grads: dict = {n: None for n in names}
    tr = None
    leaves = graph.inputs
    if graph.root is not None:
        # The gradient computation appends to the same graph, after the forward entries (as
        # PyTorch's later sequence numbers), with the same leaves' AccumulateGrad nodes.
        tr = Tracer(graph, cached_views=True)
        ops_fns = [fn for fn in graph.functions if fn.op is not None]
        for fn in ops_fns:
            fn.context = _graph_context(fn)
        try:
            backward(graph, None, F=GraphOps(tr), record_steps=False)
        finally:
            tr.finish()
            for fn in ops_fns:
                fn.context = None
        for n in names:
            grads[n] = leaves[n].grad
    for t in leaves.values():
        t.grad = None
    return tr, grads


def _hessian(graph, tr, grads: dict, names: list, steps: dict) -> tuple:
    """One numeric backward per element of each gradient (row a[j] of the Hessian): (name → name →
    array, name → the gradient's grad_fn or None); ``steps[name]`` keeps the first pass's record."""
    leaves = graph.inputs
    dtype = graph.output.data.dtype
    hessian: dict = {}
    roots: dict = {}
    for a in names:
        ga = grads[a]
        shape_a = leaves[a].shape
        rows = {b: np.zeros((int(np.prod(shape_a, dtype=np.int64)),) + leaves[b].shape, dtype=dtype) for b in names}
        root = tr.edge(ga) if (tr is not None and _grad_tensor(ga)) else None
        roots[a] = root
        if root is not None:
            for j in range(ga.data.size):
                onehot = np.zeros(ga.data.size, dtype=dtype)
                onehot[j] = 1
                record = backward(graph, onehot.reshape(ga.shape), root=root.index, record_steps=j == 0)
                if j == 0:
                    steps[a] = record
                for b in names:
                    if leaves[b].grad is not None:
                        rows[b][j] = leaves[b].grad
                    leaves[b].grad = None
        hessian[a] = {b: rows[b].reshape(shape_a + leaves[b].shape) for b in names}
    return hessian, roots


def _union_functions(roots) -> list:
    """Every function reachable from any root, depth-first from each root in turn, each once."""
    seen: set = set()
    out = []
    for root in roots:
        for fn in walk_functions(root):
            if id(fn) not in seen:
                seen.add(id(fn))
                out.append(fn)
    return out


def _tensors_of(functions) -> list:
    """The tensors the functions produce or accumulate into, in creation order."""
    found = {}
    for fn in functions:
        t = _tensor_of(fn)
        if t is not None:
            found[id(t)] = t
    order = {id(t): i for i, t in enumerate(found.values())}
    return sorted(found.values(), key=lambda t: (t.grad_fn.sequence_nr if t.grad_fn is not None else -1,
                                                 order[id(t)]))
