"""The graph's second producer: a backward graph PyTorch has built, read into gradviz's tape.

``from_torch(loss, params=model)`` walks ``loss.grad_fn`` with an explicit stack (an RNN
unrolled over thousands of steps is a deep graph, not a deep recursion), keeping every grad_fn
object alive while it walks (Python reuses the ids of dead ones). Per node it reads PyTorch's
class name, ``next_functions`` (None entries kept, in order), every ``_saved_*`` attribute
(a custom Function's ``saved_tensors`` and its ``ctx`` attributes too) and, for an
AccumulateGrad, its ``variable``. Then it runs backward once more (``retain_graph=True``) with
a hook on every node, which measures the gradient each node received and sent along each of
its edges, and each leaf's gradient — through ``torch.autograd.grad``, so the user's ``.grad``
is not touched unless ``accumulate=True``.

The tape gets one entry per leaf (AccumulateGrad's variable) and one per backward function
(:class:`gradviz.graph.ImportedOp`, with gradviz's op row of that name when it has one), and the
result is the same :class:`gradviz.result.Trace` that ``gradviz.trace`` returns: every view
reads it. PyTorch is never imported by gradviz itself: only here, when asked, from what the
user has installed.
"""

from __future__ import annotations

import sys
from typing import Mapping

from .engine import Steps
from .errors import GradvizError, UsageError
from .graph import Graph, ImportedFunction, imported_op
from .ops import np
from .shapes import format_shape

__all__ = ["from_torch", "torch_module", "TorchReader"]


class TorchMissing(GradvizError):
    """from_torch / record were called where PyTorch is not installed."""


def torch_module():
    """The user's torch (imported only now, and only here), or a clear error when it is missing."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    try:
        import torch
    except ImportError:
        raise TorchMissing("gradviz.from_torch needs PyTorch, which is not installed here "
                           "(gradviz itself never needs it: install torch where your model runs, "
                           "export with --json, and draw it anywhere with gradviz --from-json)") from None
    return torch


def from_torch(output, params=None, inputs=None, *, grad_output=None, accumulate: bool = False,
               record=None, max_saved_elements: int | None = None):
    """The backward graph PyTorch built for ``output``, with every value and gradient on it.

    ``output``: a tensor with a ``grad_fn`` (usually the loss). ``params``: a dict of name ->
    tensor, or an ``nn.Module`` (its ``named_parameters()``), naming the leaves; ``inputs``: a
    dict of name -> tensor (or a list of tensors) naming other leaves; the rest are named by
    their shape. ``grad_output``: the starting gradient for a non-scalar output (a tensor,
    or "ones"). ``accumulate=True`` runs an ordinary ``backward`` that adds into the leaves'
    ``.grad``; by default their ``.grad`` is left as it was. ``record``: a
    :class:`gradviz.recording.Recording` of the forward pass (intermediate values, module paths).
    ``max_saved_elements``: saved tensors larger than this keep only their shape and dtype.
    The measuring pass is a real backward: hooks the user put on the graph (a tensor's
    ``retain_grad()``, a module's backward hooks) run during it as in any backward, so a retained
    intermediate's ``.grad`` is set by it.

    Returns a :class:`gradviz.result.Trace` (terminal view, SVG, JSON, Jupyter).
    """
    from .collector import gc_paused
    from .result import Trace

    torch = torch_module()
    if not isinstance(output, torch.Tensor):
        raise UsageError(f"from_torch needs a torch.Tensor (e.g. the loss), not {type(output).__name__}")
    with gc_paused():
        names, named = _leaf_names(torch, params, inputs)
        reader = TorchReader(torch, output, names, record, max_saved_elements, named)
        graph = reader.read()
        steps, error = reader.measure(grad_output, accumulate)
    return Trace(graph, steps, error, reader.warnings)


def _leaf_names(torch, params, inputs) -> tuple[dict, dict]:
    """id(tensor) -> name, from ``params`` (a dict or an nn.Module) and then ``inputs``; and
    id(tensor) -> the tensor (kept alive, so that the ids stay theirs)."""
    names: dict = {}
    named: dict = {}
    for what, given in (("params", params), ("inputs", inputs)):
        if given is None:
            continue
        if isinstance(given, torch.nn.Module):
            items = list(given.named_parameters())
        elif isinstance(given, Mapping):
            items = list(given.items())
        elif isinstance(given, (list, tuple)):
            items = [(f"{what}[{k}]", t) for k, t in enumerate(given)]
        else:
            raise UsageError(f"from_torch: {what} must be a dict of name -> tensor"
                             f"{' or an nn.Module' if what == 'params' else ' or a list of tensors'}, "
                             f"not {type(given).__name__}")
        for name, t in items:
            if not isinstance(t, torch.Tensor):
                raise UsageError(f"from_torch: {what}[{name!r}] is not a tensor")
            names.setdefault(id(t), str(name))
            named[id(t)] = t
    return names, named


class TorchReader:
    """One reading of a torch graph into a gradviz tape: :meth:`read` the structure and values,
    then :meth:`measure` the gradients."""

    def __init__(self, torch, output, names: dict, record=None, max_saved_elements: int | None = None,
                 named: dict | None = None):
        self.torch = torch
        self.output = output
        self.names = names
        self.named = named or {}  # id -> the named tensor (those needing no grad are shown as such)
        self.record = record
        self.max_saved = max_saved_elements
        self.warnings: list[str] = []
        dtype = "float64" if output.dtype == torch.float64 else "float32"
        self.graph = Graph("", dtype)
        self.graph.producer = "torch"
        self.nodes: list = []  # every grad_fn reached, kept alive while the reader lives
        self.entry: dict = {}  # grad_fn -> its entry on the tape
        self.leaves: list = []  # (entry, the leaf tensor), in tape order
        self._arrays: dict = {}  # a saved tensor's storage key -> its array (a weight is saved by many)
        self._saved_attrs: dict = {}  # grad_fn class -> its _saved_* attribute names

    # --- structure --------------------------------------------------------------------------
    def read(self) -> Graph:
        """Walk the graph (no recursion) and fill the tape."""
        out, g = self.output, self.graph
        root = out.grad_fn
        if root is None:  # a leaf, or a tensor that needs no grad: one entry, as trace() makes
            name = self.names.get(id(out), "output")
            i = g.append_imported(None, self.tape_value(out), tuple(out.shape), bool(out.requires_grad), name=name)
            g.output_index = i
            if out.requires_grad:
                g.root_index = i
                self.leaves.append((i, out))
            return g
        nodes = self._walk(root)
        accumulate = [fn for fn in nodes if hasattr(fn, "variable")]
        functions = [fn for fn in nodes if not hasattr(fn, "variable")]
        for fn in self._leaf_order(accumulate):
            var = fn.variable
            self.entry[fn] = g.append_imported(None, self.tape_value(var), tuple(var.shape), True,
                                               name=self._leaf_name(var))
            self.leaves.append((self.entry[fn], var))
        reached = {id(fn.variable) for fn in accumulate}
        for key, t in self.named.items():  # named tensors the output does not reach: leaves without an edge
            if key not in reached and t is not out:
                g.append_imported(None, self.tape_value(t), tuple(t.shape), bool(t.requires_grad),
                                  name=self._leaf_name(t))
        # Functions in creation order (PyTorch's sequence_nr), so inputs come before their users.
        functions.sort(key=lambda fn: fn._sequence_nr())
        for fn in functions:
            self.entry[fn] = len(g.value) + 0
            g.append_imported(imported_op(type(fn).__name__), None, (), True, ImportedFunction(()))
        for fn in functions:
            i = self.entry[fn]
            e = g.imported[i]
            e.next_functions = tuple(None if nxt is None else self.entry[nxt] for nxt, _ in fn.next_functions)
            e.saved, e.saved_meta = self._saved(fn)
            value = self._known_value(fn, e.saved)
            if value is not None:
                g.value[i], g.shape[i] = value
        i = self.entry[root]
        g.value[i], g.shape[i] = self.tape_value(out), tuple(out.shape)
        g.output_index = g.root_index = i
        if self.record is not None:
            self.nodes_by_entry = {i: fn for fn, i in self.entry.items()}
            self.record.annotate(self)
        return g

    def _walk(self, root) -> list:
        """Every grad_fn reachable from ``root``, depth-first, each once (an explicit stack)."""
        seen, nodes = {root}, [root]
        stack = [root]
        while stack:
            fn = stack.pop()
            for nxt, _ in reversed(fn.next_functions):
                if nxt is not None and nxt not in seen:
                    seen.add(nxt)
                    nodes.append(nxt)
                    stack.append(nxt)
        self.nodes = nodes
        return nodes

    def _leaf_order(self, accumulate: list) -> list:
        """AccumulateGrads: named ones in the order their names were given, then the rest as reached."""
        order = {k: n for n, k in enumerate(self.names)}
        return sorted(accumulate, key=lambda fn: order.get(id(fn.variable), len(order)))

    def _leaf_name(self, var) -> str:
        name = self.names.get(id(var))
        if name is None:
            name = format_shape(tuple(var.shape))  # as torchviz names an unnamed leaf: by its shape
        taken = self.graph.input_index
        if name in taken:
            k = 2
            while f"{name} #{k}" in taken:
                k += 1
            name = f"{name} #{k}"
        return name

    def _known_value(self, fn, saved: dict):
        """A function's output value when the graph holds it: recorded, or saved as ``result``."""
        if self.record is not None:
            value = self.record.value_of(self, fn)
            if value is not None:
                return value
        result = saved.get("result")
        if isinstance(result, np.ndarray):
            return (float(result) if result.ndim == 0 else result), tuple(result.shape)
        return None

    # --- values -----------------------------------------------------------------------------
    def tape_value(self, t):
        """A tensor's value as the tape holds it: a Python float for a 0-d tensor, else an array
        (floats in the graph's dtype; a copy, never the tensor's own memory)."""
        a = self._array(t)
        if a.ndim == 0 and a.dtype.kind == "f":
            return float(a)
        return a

    def _array(self, t):
        torch = self.torch
        t = t.detach()
        if t.is_complex():
            raise UsageError("from_torch: complex tensors are not supported")
        if t.dtype.is_floating_point:
            t = t.to(torch.float64 if self.graph.dtype == "float64" else torch.float32)
        return t.cpu().numpy().copy()

    def _saved(self, fn) -> tuple[dict, dict]:
        """Every ``_saved_*`` attribute (without the prefix) and each saved tensor's shape and dtype."""
        saved, meta = {}, {}
        attrs = self._saved_attrs.get(type(fn))
        if attrs is None:  # the same for every node of a class: looked up once
            attrs = self._saved_attrs[type(fn)] = [a for a in dir(fn) if a.startswith("_saved_")]
        for attr in attrs:
            try:
                v = getattr(fn, attr)
            except RuntimeError as exc:  # freed by a backward() without retain_graph
                raise UsageError(f"from_torch: {type(fn).__name__}.{attr} cannot be read ({_first_line(exc)}); "
                                 "call from_torch before backward(), or backward(retain_graph=True)") from None
            name = attr[len("_saved_"):]
            saved[name] = self._saved_value(v, name, meta)
        if isinstance(fn, self.torch.autograd.function.BackwardCFunction):
            try:
                tensors = fn.saved_tensors
            except RuntimeError as exc:
                raise UsageError(f"from_torch: {type(fn).__name__}.saved_tensors cannot be read "
                                 f"({_first_line(exc)}); call from_torch before backward()") from None
            saved["saved_tensors"] = self._saved_value(tuple(tensors), "saved_tensors", meta)
            for key, v in vars(fn).items():  # what forward put on ctx (ctx.k = 3)
                if not key.startswith("_") and isinstance(v, (int, float, bool, str, tuple, type(None))):
                    saved.setdefault(key, v)
        return saved, meta

    def _saved_value(self, v, name: str, meta: dict):
        torch = self.torch
        if isinstance(v, torch.Tensor):
            meta[name] = (tuple(v.shape), str(v.dtype).replace("torch.", ""))
            if self.max_saved is not None and v.numel() > self.max_saved:
                return None
            return self._saved_array(v)
        if isinstance(v, (tuple, list)):
            if any(isinstance(x, torch.Tensor) for x in v):
                meta[name] = (tuple(tuple(x.shape) for x in v if isinstance(x, torch.Tensor)),
                              str(next(x for x in v if isinstance(x, torch.Tensor)).dtype).replace("torch.", ""))
                return tuple(self._saved_array(x) if isinstance(x, torch.Tensor) else _plain(x) for x in v)
            return tuple(_plain(x) for x in v)
        return _plain(v)

    def _saved_array(self, t):
        key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype, t._version) if t.numel() else None
        a = self._arrays.get(key) if key is not None else None
        if a is None:
            a = self._array(t)
            if key is not None:
                self._arrays[key] = a
        return a

    # --- gradients --------------------------------------------------------------------------
    def measure(self, grad_output=None, accumulate: bool = False):
        """Run backward once more with a hook on every node: the gradient on every edge and each
        leaf's grad. Returns (the steps, why backward did not run or None)."""
        torch, out, g = self.torch, self.output, self.graph
        if g.root_index is None:
            return [], None
        start = _start(torch, out, grad_output)
        if start is None:
            return [], (f"output has shape {tuple(out.shape)}; backward needs a scalar: "
                        f"pass grad_output=torch.ones_like(output) (or 'ones')")
        fired: list = []
        handles = []
        try:
            for fn, i in self.entry.items():
                if i in g.imported:
                    handles.append(fn.register_hook(_recorder(fired, i)))
            leaves = [t for _, t in self.leaves]
            before = [t.grad.detach().clone() if t.grad is not None else None for t in leaves] if accumulate else None
            # A scalar's ones are left to torch: given grad_outputs, its first call in a process
            # imports its symbolic-shapes module (sympy: a second or more).
            given = None if grad_output is None else start
            if accumulate:
                out.backward(given, retain_graph=True)
                grads = [t.grad for t in leaves]
            else:
                grads = torch.autograd.grad(out, leaves, given, retain_graph=True, allow_unused=True)
        finally:
            for h in handles:
                h.remove()
        return self._steps(fired, start, grads, before), None

    def _steps(self, fired: list, start, grads, before) -> Steps:
        """The backward pass's record, as the engine keeps it, from what the hooks saw."""
        g = self.graph
        steps = Steps(g)
        leaf_grad = {i: (None if grad is None else self.tape_value(grad)) for (i, _), grad in zip(self.leaves, grads)}
        leaf_before = {i: (None if b is None else self.tape_value(b)) for (i, _), b in zip(self.leaves, before or ())}
        for i, grad in leaf_grad.items():
            g.grad[i] = grad
        if g.op[g.root_index] is None:  # the output is a leaf: its AccumulateGrad is the whole pass
            i = g.root_index
            steps.add_accumulate(i, self.tape_value(start), leaf_before.get(i), leaf_grad[i])
            return steps
        pending = g.dependency_counts()
        for i, grad_outputs, grad_inputs in fired:
            e = g.imported[i]
            received = [None if x is None else self.tape_value(x) for x in grad_outputs]
            e.grad_in = received[0] if received else None
            if e.grad_in is not None and not g.shape[i] and g.value[i] is None:
                g.shape[i] = tuple(np.shape(e.grad_in))
            elif e.grad_in is not None and g.value[i] is None:
                g.shape[i] = tuple(e.grad_in.shape)
            e.grads_out = tuple(None if j is None or x is None else self.tape_value(x)
                                for j, x in zip(e.next_functions, grad_inputs))
            steps.add(i, e.grad_in, e.grads_out)
            for j, sent in zip(e.next_functions, e.grads_out):
                if j is not None and g.op[j] is None and sent is not None:
                    pending[j] -= 1
                    if pending[j] == 0:  # AccumulateGrad runs the moment its last gradient arrives
                        steps.add_accumulate(j, _difference(leaf_grad[j], leaf_before.get(j)),
                                             leaf_before.get(j), leaf_grad[j])
        return steps


def _recorder(fired: list, i: int):
    def hook(grad_inputs, grad_outputs):
        fired.append((i, tuple(grad_outputs), tuple(grad_inputs)))
    return hook


def _start(torch, out, grad_output):
    """The gradient backward starts with, as a tensor; None when the output is not a scalar and
    none was given."""
    if grad_output is None:
        return torch.ones_like(out) if out.numel() == 1 else None
    if isinstance(grad_output, str):
        if grad_output != "ones":
            raise UsageError(f"grad_output must be a tensor or 'ones', not {grad_output!r}")
        return torch.ones_like(out)
    start = torch.as_tensor(grad_output, dtype=out.dtype, device=out.device)
    try:
        return start.expand(out.shape).clone()
    except RuntimeError:
        raise UsageError(f"grad_output has shape {tuple(start.shape)} but the output has shape "
                         f"{tuple(out.shape)}") from None


def _difference(after, before):
    """What AccumulateGrad added: the leaf's grad after, less what it had before (None: nothing)."""
    if before is None or after is None:
        return after
    return after - before


def _plain(v):
    """A non-tensor saved value as a Python value: numbers as numbers, sizes as tuples of ints."""
    if type(v) is int and v >= 1 << 63:
        return v - (1 << 64)  # PyTorch shows a negative dim saved as an unsigned int (2**64 - 1 for -1)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x) for x in v)
    name = type(v).__name__
    if name == "SymInt":
        return int(v)
    if name == "SymFloat":
        return float(v)
    if name == "SymBool":
        return bool(v)
    return str(v).replace("torch.", "")  # a dtype, device, layout, memory format...


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
