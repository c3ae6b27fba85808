"""The backward pass, as PyTorch's engine runs it.

Starting from the root with a gradient of ones (or the given grad_output), each
backward function runs once all gradients for its output have arrived; its
gradient rule (from the op table) sends one gradient along each
``next_functions`` entry, where it is *added* into that function's input buffer
(never overwritten: a variable used twice receives both contributions).
AccumulateGrad adds into the leaf's ``.grad``.

Ready functions run in PyTorch's priority order: the most recently created
(highest ``sequence_nr``) first, AccumulateGrad as soon as it is ready. That is a
reverse topological order; dependency counts replace recursion, so depth is
unlimited.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from .graph import BackwardFunction, Graph, Tensor
from .ops import NumpyOps


@dataclass(slots=True)  # one per function: a million of them at a million terms
class Step:
    """One backward function's execution: the gradient it received and what it sent on."""

    function: BackwardFunction
    grad_in: np.ndarray
    #: per next_functions entry: the gradient sent (None where the entry is None)
    grads_out: list = field(default_factory=list)
    #: for AccumulateGrad: the leaf's .grad before and after adding grad_in
    before: np.ndarray | None = None
    after: np.ndarray | None = None


def dependencies(functions) -> dict[int, int]:
    """How many edges point at each function (PyTorch's compute_dependencies)."""
    deps: dict[int, int] = {}
    for fn in functions:
        for nxt in fn.next_functions:
            if nxt is not None:
                deps[id(nxt)] = deps.get(id(nxt), 0) + 1
    return deps


def backward(graph: Graph, grad_output=None, retain_grad: bool = False, F=NumpyOps,
             record_steps: bool = True) -> list[Step]:
    """Run backward from ``graph.root``; fill leaves' ``.grad`` and return the executed steps.

    ``grad_output`` is the starting gradient (default: ones, valid only for a
    one-element output). ``retain_grad`` keeps every intermediate's gradient on
    its tensor, as ``retain_grad()`` would. ``F`` is the ops namespace the gradient
    rules run with: :class:`NumpyOps` computes numbers; any other namespace (the
    second-order pass's ``gradviz.higher.GraphOps``) may return Tensors, which are
    then added and reduced through ``F`` too, as ``create_graph=True`` does.
    ``record_steps=False`` keeps no Step records (a large graph's JSON needs none).
    """
    root = graph.root
    if root is None:
        return []
    dtype = graph.output.data.dtype
    out_shape = graph.output.data.shape
    if grad_output is None:
        start = np.ones(out_shape, dtype=dtype)
    else:
        start = np.asarray(np.broadcast_to(np.asarray(grad_output, dtype=dtype), out_shape), dtype=dtype).copy()

    deps = dependencies(graph.functions)
    buffers: dict[int, np.ndarray] = {id(root): start}
    counter = itertools.count()
    numeric = F is NumpyOps
    ready = [(-root.sequence_nr, next(counter), root)]
    steps: list[Step] = []

    with np.errstate(all="ignore"):
        while ready:
            _, _, fn = heapq.heappop(ready)
            grad = buffers.pop(id(fn))
            if fn.variable is not None:  # AccumulateGrad
                leaf: Tensor = fn.variable
                before = leaf.grad
                if numeric:
                    leaf.grad = grad.copy() if before is None else np.add(before, grad, dtype=dtype)
                else:
                    leaf.grad = grad if before is None else F.add(before, grad)
                if record_steps:
                    steps.append(Step(fn, grad, [], before, leaf.grad))
                continue
            if retain_grad and fn.output is not None:
                fn.output.grad = grad
                fn.output.retains_grad = True
            needed = [nxt is not None for nxt in fn.next_functions]
            grads = fn.op.vjp(F, grad, fn.context) if any(needed) else ()
            sent = []
            for nxt, g, shape in zip(fn.next_functions, grads, fn.input_shapes):
                if nxt is None:
                    sent.append(None)
                    continue
                if numeric:
                    g = np.asarray(g)
                    if g.shape != shape:
                        g = F.sum_to(np.broadcast_to(g, np.broadcast_shapes(g.shape, shape)), shape)
                    if g.dtype != dtype:
                        g = g.astype(dtype)
                else:
                    g = _conform(F, g, shape, dtype)
                sent.append(g)
                key = id(nxt)
                prev = buffers.get(key)
                if numeric:
                    buffers[key] = g if prev is None else np.add(prev, g, dtype=dtype)
                else:
                    buffers[key] = g if prev is None else F.add(prev, g)
                deps[key] -= 1
                if deps[key] == 0:
                    heapq.heappush(ready, (-nxt.sequence_nr, next(counter), nxt))
            if record_steps:
                steps.append(Step(fn, grad, sent))
    if retain_grad and graph.output.grad_fn is not None:
        graph.output.grad = start
        graph.output.retains_grad = True
    return steps


def _conform(F, g, shape, dtype):
    """A gradient that may be a Tensor, brought to its input's shape through ``F`` (graph mode)."""
    if not isinstance(g, Tensor):
        g = np.asarray(g, dtype=dtype)
    gshape = tuple(np.shape(g))
    if gshape != tuple(shape):
        g = F.sum_to(F.expand(g, np.broadcast_shapes(gshape, shape)), shape)
    return g
