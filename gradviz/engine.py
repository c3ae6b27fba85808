"""The backward pass, as PyTorch's engine runs it, on the graph's tape.

Starting from the root with a gradient of ones (or the given grad_output), each
backward function runs once all gradients for its output have arrived; its
gradient rule (from the op table) sends one gradient along each
``next_functions`` entry, where it is *added* into that function's input buffer
(never overwritten: a variable used twice receives both contributions).
AccumulateGrad adds into the leaf's ``.grad``.

PyTorch's engine runs ready functions by priority: the highest ``sequence_nr``
first, AccumulateGrad (the highest priority) as soon as it is ready. A function's
inputs are always created before it, so on the tape that is plain descending index
order over the functions that receive a gradient — one loop over the entries,
reversed, and no recursion — with each leaf's AccumulateGrad run the moment its
last gradient has arrived.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from .graph import BackwardFunction, Graph, ImportedOp, Tensor, depth_first
from .tracer import Tracer
from .ops import FLOAT_OPS, NumpyOps, QuietNumpy, input_sizes, np


@dataclass(slots=True)  # one per function: a million of them at a million terms
class Step:
    """One backward function's execution: the gradient it received and what it sent on."""

    function: BackwardFunction
    grad_in: object
    #: per next_functions entry: the gradient sent (None where the entry is None)
    grads_out: list = field(default_factory=list)
    #: for AccumulateGrad: the leaf's .grad before and after adding grad_in
    before: object = None
    after: object = None
    #: per input slot: what the gradient rule computed, before it was summed back to the
    #: input's shape (the ``--steps`` view shows both)
    computed: list = field(default_factory=list)


class Steps:
    """The backward pass's record: one entry per function executed, in PyTorch's execution order,
    kept as columns (a million-term pass keeps no object per function); ``steps[k]`` and
    iteration make a :class:`Step` when asked for. Gradients are as the tape holds them (a
    0-d one is a Python float)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.function = array("q")  # per entry: the function's index on the tape
        self.grad_in: list = []
        self.sent: list = []  # per entry: what went along each next_functions entry (a tuple)
        #: per entry: what the rule computed, before summing back (the same tuple as ``sent``
        #: when nothing was summed: most entries, so a large pass keeps one tuple, not two); for
        #: an AccumulateGrad, which computes nothing, the leaf's .grad (before, after)
        self.computed: list = []
        #: per tape index: its function's entry, -1 where none ran (an array, not a dict of
        #: a million ints)
        self._entry = array("q", [-1]) * len(graph.value)

    def add(self, i: int, grad_in, sent: tuple = (), computed: tuple = ()) -> None:
        entry = self._entry
        if i >= len(entry):  # the graph grew since (a second-order pass appends to it)
            entry.extend(array("q", [-1]) * (i + 1 - len(entry)))
        entry[i] = len(self.function)
        self.function.append(i)
        self.grad_in.append(grad_in)
        self.sent.append(sent)
        if computed is not sent and len(computed) == len(sent):
            for c, s in zip(computed, sent):
                if c is not s:
                    break
            else:
                computed = sent  # nothing was summed back: one tuple for both
        self.computed.append(computed)

    def add_accumulate(self, i: int, grad_in, before, after) -> None:
        self.add(i, grad_in)
        self.computed[-1] = (before, after)

    def __len__(self) -> int:
        return len(self.function)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        k = range(len(self))[k]
        i, computed = self.function[k], self.computed[k]
        before = after = None
        if self.graph.op[i] is None and computed:  # an AccumulateGrad (add_accumulate)
            (before, after), computed = computed, ()
        return Step(self.graph.function(i), self.grad_in[k], list(self.sent[k]), before, after, list(computed))

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def position(self, i: int) -> int | None:
        """The entry of function ``i`` (its place in the execution order), None if it did not run."""
        entry = self._entry
        k = entry[i] if 0 <= i < len(entry) else -1
        return None if k < 0 else k

    def along(self, i: int, slot: int):
        """What function ``i`` sent along ``next_functions[slot]`` (None if it did not run)."""
        k = self.position(i)
        if k is None or slot >= len(self.sent[k]):
            return None
        return self.sent[k][slot]

    def received(self, i: int):
        """Everything that arrived into function ``i``, summed (None if it did not run)."""
        k = self.position(i)
        return None if k is None else self.grad_in[k]


class Received:
    """What the pictures read of a backward pass, without a :class:`Steps` record: the gradient
    that arrived into each function (summed), kept per tape index as the pass left it; what a
    function sent along an edge is its rule applied to that again (:class:`Rules`, as the pass
    applied it), for the few edges a picture draws. No execution order is kept: ``position`` is
    None (the numbered pictures of ``--steps`` read a :class:`Steps` record)."""

    def __init__(self, graph: Graph, received: list):
        self.graph = graph
        self._received = received
        self._sent: dict = {}  # tape index -> what it sent (a tuple), once asked

    def __bool__(self) -> bool:
        return True  # (backward ran)

    def position(self, i: int) -> None:
        return None

    def along(self, i: int, slot: int):
        """What function ``i`` sent along ``next_functions[slot]`` (None if it did not run)."""
        sent = self._sent.get(i)
        if sent is None:
            grad = self.received(i)
            rules = Rules(self.graph)
            try:
                sent = () if grad is None or not rules.has_rule(i) else rules.sent(i, grad)
            finally:
                rules.close()
            self._sent[i] = sent
        return sent[slot] if slot < len(sent) else None

    def received(self, i: int):
        """Everything that arrived into function ``i``, summed (None if it did not run)."""
        return self._received[i] if 0 <= i < len(self._received) else None


def backward(graph: Graph, grad_output=None, retain_grad: bool = False, F=NumpyOps,
             record_steps: bool = True, root: int | None = None, keep_received: bool = False):
    """Run backward from ``root`` (default: the graph's); fill leaves' ``.grad``; return the steps.

    ``grad_output`` is the starting gradient (default: ones, valid only for a
    one-element output). ``retain_grad`` keeps every intermediate's gradient on
    its tensor, as ``retain_grad()`` would. ``F`` is the ops namespace the gradient
    rules run with: :class:`NumpyOps` computes numbers; any other namespace (the
    second-order pass's ``gradviz.higher.GraphOps``) may return Tensors, which are
    then added and reduced through ``F`` too, as ``create_graph=True`` does.
    ``record_steps=False`` keeps no Step records (a large graph's JSON needs none); with
    ``keep_received`` it returns a :class:`Received` instead: what arrived into each function,
    all the pictures read of a pass (a million-term tree needs no Step record).
    """
    if root is None:
        root = graph.root_index
    if root is None:
        return []
    run = _Run(graph, F, record_steps)
    run.keep_received = keep_received and not record_steps and run.numeric
    try:
        steps = _backward(graph, run, root, grad_output, retain_grad)
    finally:
        run.finish()
    return Received(graph, run.buffers) if run.keep_received else steps


def _backward(graph: Graph, run: "_Run", root: int, grad_output, retain_grad: bool) -> list[Step]:
    start = run.start(root, grad_output)
    buffers = run.buffers = [None] * len(graph.value)  # per tape index: its input buffer
    run.owned = bytearray(len(graph.value))
    buffers[root] = start
    if graph.op[root] is None:  # the output is a leaf itself: its AccumulateGrad is the root
        run.accumulate(root, start)
        return run.steps
    run.count_leaf_edges(root)
    ops, on_floats = graph.op, graph.on_floats
    fast = run.numeric and not retain_grad and not graph.has_context_overrides()
    # run.execute_floats, inline: the commonest entry of a large graph (a 0-d rule on floats)
    a, b, values, req, params, consts = graph.a, graph.b, graph.value, graph.req, graph.params, graph.consts
    pending, SF, add, accumulate = run.pending, run.SF, run.SF.add, run.accumulate
    record = run.steps.add if run.record else None
    execute = run.executor()
    clear = not run.keep_received  # (kept: what arrived into each function, for the pictures)
    for i in range(root, -1, -1):
        grad = buffers[i]
        if grad is None:
            continue
        if clear:
            buffers[i] = None
        op = ops[i]
        if op is None:
            accumulate(i, grad)
        elif fast and on_floats[i]:
            x, y = a[i], b[i]
            ctx = {}
            for name, source, arg, _ in op.plan:
                if source == "input":
                    k = x if arg == 0 else y
                    ctx[name] = values[k] if k >= 0 else SF.cast(consts[(i, arg)])
                elif source == "result":
                    ctx[name] = values[i]
                else:
                    ctx[name] = params[i][arg]
            grads = op.vjp(SF, grad, ctx)
            if record is not None:
                run.record_floats(i, grad, grads)
            if x >= 0 and req[x]:
                out = grads[0]
                prev = buffers[x]
                buffers[x] = out if prev is None else add(prev, out)
                if pending[x]:  # (only while steps are recorded)
                    run.edge_done(x)
            if y >= 0 and req[y]:
                out = grads[1] if len(grads) > 1 else None
                prev = buffers[y]
                buffers[y] = out if prev is None else add(prev, out)
                if pending[y]:  # (only while steps are recorded)
                    run.edge_done(y)
        else:
            if retain_grad:
                run.retain(i, grad)
            execute(i, op, grad)
    if retain_grad and graph.op[graph.output_index] is not None:
        run.retain(graph.output_index, start)
    return run.steps


class _Run:
    """One backward pass's state: the input buffers, the leaves' pending edges, the steps."""

    def __init__(self, graph: Graph, F, record_steps: bool):
        self.graph = graph
        self.F = F
        self.numeric = F is NumpyOps
        self.SF = FLOAT_OPS[graph.dtype]
        self.record = record_steps
        self.steps = Steps(graph) if record_steps else []
        self.buffers: list = []  # per tape index: the gradients arrived (summed) or None
        #: per tape index: a leaf's edges still to deliver a gradient (an array, not a dict of a
        #: million leaves; filled in by count_leaf_edges)
        self.pending = array("q")
        #: per tape index: 1 where the buffer is an array this pass made by adding two gradients
        #: (what arrives next is added into it; a rule's result may be shared, e.g. an add's)
        self.owned = bytearray()
        self.quiet_numpy = QuietNumpy()
        self.quiet = self.quiet_numpy.on
        self.dtype = None  # numpy's dtype object of the graph's values, once an array is met
        #: a function's context set by the second-order pass (none during a pass of numbers)
        self.overrides = graph.has_context_overrides()
        self.plans: dict = {}  # id of an op row -> its _tape_plan (None: read by graph.context)
        #: the entries with a plan are read through it (numbers, no context set by the second-order pass)
        self.planned = self.numeric and not self.overrides
        self.keep_received = False  # leave each function's arrived gradient in its buffer

    def finish(self) -> None:
        self.quiet_numpy.restore()

    def start(self, root: int, grad_output):
        g = self.graph
        shape = g.shape[root]
        if not (self.numeric and type(g.value[root]) is float and grad_output is None):
            self.quiet()
        floats = self.numeric and type(g.value[root]) is float
        if grad_output is None:
            return 1.0 if floats else np.ones(shape, dtype=g.np_dtype)
        dtype = g.np_dtype
        start = np.asarray(np.broadcast_to(np.asarray(grad_output, dtype=dtype), shape), dtype=dtype).copy()
        return float(start) if floats else start

    def count_leaf_edges(self, root: int) -> None:
        """Each leaf's edges still to deliver a gradient (``pending``), where they are counted."""
        g = self.graph
        pending = self.pending = array("q", bytes(8 * len(g.value)))
        if not self.record and self.numeric:
            # Numbers alone: a leaf's buffer is complete when the loop reaches its index (every
            # function using it comes later on the tape), where it is accumulated — the same sums,
            # without counting the edges (nor finding the functions' order) first
            return
        # PyTorch runs each AccumulateGrad as soon as its last gradient has arrived: the steps'
        # order, and the order in which a graph-recording F records the leaves' additions
        order = g.order() if root == g.root_index else depth_first(g, root)
        op, a, b, req, more = g.op, g.a, g.b, g.req, g.more
        for i in order:
            if op[i] is None:
                continue
            for k in (g.operands(i) if more and i in more else (a[i], b[i])):
                if k >= 0 and req[k] and op[k] is None:
                    pending[k] += 1

    def edge_done(self, leaf: int) -> None:
        """One of ``leaf``'s pending edges delivered: its AccumulateGrad runs once all have."""
        pending = self.pending
        pending[leaf] -= 1
        if pending[leaf] == 0:
            self.accumulate(leaf, self.buffers[leaf])
            self.buffers[leaf] = None

    def retain(self, i: int, grad) -> None:
        """``retain_grad()``: entry ``i`` keeps the gradient it received as its ``.grad``."""
        self.graph.grad[i] = grad
        self.graph.retained.add(i)

    def accumulate(self, leaf: int, grad) -> None:
        """AccumulateGrad: add ``grad`` into the leaf's ``.grad``."""
        g = self.graph
        before = g.grad.get(leaf)
        if not self.numeric:
            after = grad if before is None else self.F.add(before, grad)
        elif type(grad) is float:
            after = grad if before is None else self.SF.add(before, grad)
        elif before is None:
            after = grad.copy()
        else:
            after = np.add(before, grad, dtype=g.np_dtype)
        g.grad[leaf] = after
        if self.record:
            self.steps.add_accumulate(leaf, grad, before, after)

    def executor(self):
        """A function ``execute(i, op, grad)``: run function ``i``'s gradient rule (``op``) on
        ``grad`` and send the results along its edges. The commonest entry of a tensor graph (one
        or two tensor slots, a rule computing numbers from the tape's own values, read through
        the row's plan: graph.context's values) runs in it with the pass's state bound once;
        any other in :meth:`_execute_other`."""
        if not self.planned:
            return self._execute_other
        g, plans, make_plan, other, F = self.graph, self.plans, _tape_plan, self._execute_other, self.F
        a, b, req, values, shapes, on_floats, more, params = g.a, g.b, g.req, g.value, g.shape, g.on_floats, g.more, g.params
        buffers, pending, deliver, nothing, sent_to = self.buffers, self.pending, self._deliver, self._nothing, self._sent
        record = self.steps.add if self.record else None

        dtype = ndarray = None  # (numpy's, once an entry is met: a pass on floats alone imports no numpy)

        def execute(i: int, op, grad) -> None:
            nonlocal dtype, ndarray
            plan = plans.get(id(op), False)
            if plan is False:
                plan = plans[id(op)] = make_plan(op)
            x, y = a[i], b[i]
            need_x = x >= 0 and req[x]
            need_y = y >= 0 and req[y]
            if plan is None or x == -1 or y == -1 or not (need_x or need_y) or on_floats[i] or (more and i in more):
                return other(i, op, grad)
            if dtype is None:
                dtype, ndarray = self.dtype if self.dtype is not None else self._numpy_dtype(), np.ndarray
            ctx = {}
            for name, source, arg in plan:  # (source: see _tape_plan)
                if source == 3:
                    ctx[name] = params[i][arg]
                    continue
                v = values[x if source == 0 or source == 4 else y if source == 1 else i]
                if source == 4:  # ops.input_sizes: the first slot's sizes
                    ctx[name] = v.shape if type(v) is ndarray else tuple(np.shape(v))
                elif type(v) is float:  # a 0-d tensor on the tape: see _scalar
                    ctx[name] = self._scalar(i, v)
                else:
                    ctx[name] = v
            grads = op.vjp(F, self._scalar(i, grad) if type(grad) is float else grad, ctx)
            n = len(grads)
            sent_x = grads[0] if need_x and n else None  # (_sent, inline where it changes nothing)
            if sent_x is not None and not (type(sent_x) is ndarray and sent_x.dtype is dtype
                                           and sent_x.shape == shapes[x] and type(values[x]) is not float):
                sent_x = sent_to(sent_x, x, dtype, dtype.type)
            sent_y = grads[1] if need_y and n > 1 else None
            if sent_y is not None and not (type(sent_y) is ndarray and sent_y.dtype is dtype
                                           and sent_y.shape == shapes[y] and type(values[y]) is not float):
                sent_y = sent_to(sent_y, y, dtype, dtype.type)
            if record is not None:  # recorded before the AccumulateGrads it makes ready run
                record(i, grad, (sent_x,) if y == -2 else (sent_x, sent_y), tuple(grads))
            if sent_x is not None:
                if buffers[x] is None and not pending[x]:  # (an intermediate's first gradient)
                    buffers[x] = sent_x
                else:
                    deliver(x, sent_x)
            elif need_x:
                nothing(x)
            if sent_y is not None:
                if buffers[y] is None and not pending[y]:
                    buffers[y] = sent_y
                else:
                    deliver(y, sent_y)
            elif need_y:
                nothing(y)
        return execute

    def _execute_other(self, i: int, op, grad) -> None:
        """:meth:`executor`'s function for an entry whose context is more than its plan reads off the tape."""
        g = self.graph
        if not self.numeric or type(op) is ImportedOp or g.on_floats[i] or (g.more and i in g.more) \
                or (self.overrides and g.context_override(i) is not None):
            self._execute_general(i, op, grad)
            return
        req = g.req
        x, y = g.a[i], g.b[i]
        need_x = x >= 0 and req[x]
        need_y = y >= 0 and req[y]
        sent_x = sent_y = None
        grads = ()
        if need_x or need_y:
            self.quiet()
            values = g.value
            dtype = self.dtype if self.dtype is not None else self._numpy_dtype()
            scalar = dtype.type
            if type(grad) is float:
                if Tracer.use_floats and type(values[i]) is float:  # a 0-d entry: numpy's scalars
                    grads = op.vjp(self.F, scalar(grad), g.context_scalars(i))
                else:
                    grads = op.vjp(self.F, np.asarray(grad, dtype=dtype), g.context(i))
            else:
                grads = op.vjp(self.F, grad, g.context(i))
            n = len(grads)
            if need_x and n:
                sent_x = self._sent(grads[0], x, dtype, scalar)
            if need_y and n > 1:
                sent_y = self._sent(grads[1], y, dtype, scalar)
        if self.record:  # recorded before the AccumulateGrads it makes ready run
            self.steps.add(i, grad, (sent_x,) if y == -2 else (sent_x, sent_y), tuple(grads))
        if sent_x is not None:
            self._deliver(x, sent_x)
        elif need_x:
            self._nothing(x)
        if sent_y is not None:
            self._deliver(y, sent_y)
        elif need_y:
            self._nothing(y)

    def _sent(self, out, k: int, dtype, scalar):
        """What a rule's result ``out`` sends to input ``k``: :meth:`_conform`'s, without its
        steps where ``out`` already is in its input's shape and dtype (an array; numpy's scalar
        of the dtype for a 0-d input, which the tape holds as a float)."""
        if out is None:  # no gradient (undefined in ATen)
            return None
        t = type(out)
        if t is np.ndarray:
            if out.dtype == dtype and out.shape == self.graph.shape[k] and type(self.graph.value[k]) is not float:
                return out
        elif t is scalar and type(self.graph.value[k]) is float:
            return float(out)
        return self._conform(out, k)

    def _numpy_dtype(self):
        """numpy's dtype object of the graph's values, made once (a pass on floats alone never
        makes it: numpy is imported only when an array is met)."""
        self.quiet()  # (so a pass that has its dtype has numpy's warnings off)
        self.dtype = np.dtype(self.graph.np_dtype)
        return self.dtype

    def _scalar(self, i: int, v: float):
        """A 0-d tensor's value (a float on the tape) as entry ``i``'s rule reads it: numpy's scalar
        in a 0-d entry (one whose own value is a float), else a 0-d array."""
        if type(self.graph.value[i]) is float and Tracer.use_floats:
            return self.dtype.type(v)
        return np.asarray(v, dtype=self.dtype)

    def _execute_general(self, i: int, op, grad) -> None:
        """:meth:`executor`'s function for any entry: any number of slots, constants among them, an imported
        function (no rule), a graph-recording ``F``, a context set by the second-order pass."""
        g = self.graph
        req = g.req
        slots = g.operands(i)
        needed = [k >= 0 and req[k] for k in slots]
        grads = self._rule(i, op, grad) if any(needed) else ()
        sent = [None] * len(slots)
        for n, out in enumerate(grads):
            if n < len(slots) and needed[n] and out is not None:  # None: no gradient (undefined in ATen)
                sent[n] = self._conform(out, slots[n])
        if self.record:  # recorded before the AccumulateGrads it makes ready run
            self.steps.add(i, grad, tuple(sent), tuple(grads))
        for k, out, need in zip(slots, sent, needed):
            if out is not None:
                self._deliver(k, out)
            elif need:
                self._nothing(k)

    def record_floats(self, i: int, grad: float, grads) -> None:
        """The step of a float entry (see the inline loop in :func:`_backward`)."""
        g = self.graph
        x, y, req = g.a[i], g.b[i], g.req
        sent = (grads[0] if x >= 0 and req[x] else None,)
        if y != -2 and len(grads) > 1:
            sent += (grads[1] if y >= 0 and req[y] else None,)
        self.steps.add(i, grad, sent, grads if type(grads) is tuple else tuple(grads))

    def _rule(self, i: int, op, grad):
        g = self.graph
        override = g.context_override(i)
        if override is not None:  # the second-order pass's context
            self.quiet()
            return op.vjp(self.F, grad, override)
        if self.numeric and g.on_floats[i]:
            return op.vjp(self.SF, grad, g.context(i, floats=True))
        self.quiet()
        if type(grad) is float:
            if self.numeric and Tracer.use_floats and type(g.value[i]) is float:
                return op.vjp(self.F, g.np_dtype(grad), g.context_scalars(i))  # a 0-d entry
            grad = np.asarray(grad, dtype=g.np_dtype)
        return op.vjp(self.F, grad, g.context(i))

    def _conform(self, out, k: int):
        """The gradient for input ``k``, in its shape and dtype (broadcasting summed back)."""
        g = self.graph
        shape = g.shape[k]
        if not self.numeric:
            return _conform_graph(self.F, out, shape, g.np_dtype)
        if type(out) is float:
            return out
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if out.shape != shape:
            out = NumpyOps.sum_to(np.broadcast_to(out, np.broadcast_shapes(out.shape, shape)), shape)
        dtype = self.dtype if self.dtype is not None else self._numpy_dtype()
        if out.dtype != dtype:
            out = out.astype(dtype)
        if type(g.value[k]) is float:
            return float(out)
        return out

    def _deliver(self, k: int, out) -> None:
        """Add ``out`` into input ``k``'s buffer; run a leaf's AccumulateGrad once it has all."""
        buffers = self.buffers
        prev = buffers[k]
        if prev is None:
            buffers[k] = out
        elif not self.numeric:
            buffers[k] = self.F.add(prev, out)
        elif type(prev) is float and type(out) is float:
            buffers[k] = self.SF.add(prev, out)
        elif self.owned[k]:  # an array this pass made (below): no one else holds it, added into
            np.add(prev, out, out=prev)
        else:
            total = buffers[k] = np.add(prev, out, dtype=self.graph.np_dtype if self.dtype is None else self.dtype)
            if type(total) is np.ndarray:  # (not numpy's scalar of two 0-d arrays)
                self.owned[k] = 1
        pending = self.pending
        count = pending[k]
        if count:
            pending[k] = count - 1
            if count == 1:
                self.accumulate(k, buffers[k])
                buffers[k] = None

    def _nothing(self, k: int) -> None:
        """An edge along which the rule sent no gradient (ATen's undefined tensor, e.g. a norm of
        order 0): nothing is added; a leaf whose last edge this was accumulates what it has (its
        .grad stays None if nothing came, as PyTorch leaves it)."""
        pending = self.pending
        if pending[k]:
            pending[k] -= 1
            if pending[k] == 0 and self.buffers[k] is not None:
                self.accumulate(k, self.buffers[k])
                self.buffers[k] = None


def _tape_plan(op) -> tuple | None:
    """What op row ``op``'s context is, read off the tape: per saved value (name, source, arg) with
    source 0 / 1 the tensor in the first / second slot, 2 the result, 3 the param ``arg``, 4 the
    first slot's sizes (:func:`ops.input_sizes`, a sum's); None when it is more (other derived
    values, hidden params, strides, a row without a plan, more slots)."""
    sizes = op.derived is input_sizes and op.inputs[:1] == ("self",) if type(op) is not ImportedOp else False
    if type(op) is ImportedOp or (op.derived is not None and not sizes) or op.hidden or op.variadic \
            or len(op.plan) != len(op.saves) or any(name.endswith("_sym_strides") for name in op.saves):
        return None
    plan = []
    for name, source, arg, _ in op.plan:
        if source == "derived" and sizes and name == "self_sym_sizes":
            plan.append((name, 4, None))
        elif source == "input" and arg <= 1 and name not in op.params:
            plan.append((name, arg, None))
        elif source == "result":
            plan.append((name, 2, None))
        elif source == "param":
            plan.append((name, 3, arg))
        else:
            return None
    return tuple(plan)


def _plan_context(g: Graph, i: int, plan: tuple, cast) -> dict:
    """``g.context(i)`` read through the row's :func:`_tape_plan` (both slots tensors), each 0-d
    tensor value (a float on the tape) made ``cast(v)``: a 0-d array, or numpy's scalar."""
    values, x, y = g.value, g.a[i], g.b[i]
    ctx = {}
    for name, source, arg in plan:
        if source == 3:
            ctx[name] = g.params[i][arg]
            continue
        v = values[x if source == 0 or source == 4 else y if source == 1 else i]
        if source == 4:  # ops.input_sizes: the first slot's sizes
            ctx[name] = v.shape if type(v) is np.ndarray else tuple(np.shape(v))
        else:
            ctx[name] = cast(v) if type(v) is float else v
    return ctx


def _conform_graph(F, g, shape, dtype):
    """A gradient that may be a Tensor, brought to its input's shape through ``F`` (graph mode)."""
    if not isinstance(g, Tensor):
        g = np.asarray(g, dtype=dtype)
    gshape = tuple(np.shape(g))
    if gshape != tuple(shape):
        full = np.broadcast_shapes(gshape, shape)
        if full != gshape:  # a gradient smaller than its input (a rule's 0-d result): expanded first
            g = F.expand(g, full)
        g = F.sum_to(g, shape)
    return g


class Rules:
    """One function's gradient rule applied to a gradient of the caller's choosing, as the engine
    applies it (:meth:`_Run.executor`: the rule, then each result summed back to its input's
    shape), without running a pass or touching any ``.grad``: the path analysis
    (:mod:`gradviz.paths`) carries one path's gradient with it. Close it when done."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._run = _Run(graph, NumpyOps, record_steps=False)

    def has_rule(self, i: int) -> bool:
        """True when entry ``i`` is a function gradviz has a rule for (not an AccumulateGrad, nor a
        function imported from PyTorch, whose gradients were measured, not computed)."""
        op = self.graph.op[i]
        return op is not None and op.vjp is not None

    def unit(self, i: int):
        """A gradient of ones for entry ``i``'s output, as the engine starts with one."""
        g = self.graph
        return 1.0 if type(g.value[i]) is float else np.ones(g.shape[i], dtype=g.np_dtype)

    def sent(self, i: int, grad) -> tuple:
        """What function ``i`` sends along each next_functions entry for the incoming ``grad``
        (None where an entry is None)."""
        g, run = self.graph, self._run
        slots = g.operands(i)
        needed = [k >= 0 and g.req[k] for k in slots]
        if not any(needed):
            return (None,) * len(slots)
        grads = run._rule(i, g.op[i], grad)
        # (a rule's None: no gradient, ATen's undefined tensor, sent along no edge)
        return tuple(run._conform(grads[n], k) if needed[n] and n < len(grads) and grads[n] is not None else None
                     for n, k in enumerate(slots))

    def close(self) -> None:
        self._run.finish()
