"""``trace()``: text and a point in, a traced and differentiated graph out."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .collector import gc_paused  # noqa: F401  (also imported from here)
from .engine import Step, backward
from .errors import EvalError
from .graph import DTYPES, Graph, trace_tree
from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_TERMS
from .parser import parse


class Trace:
    """The result of :func:`trace`: output, inputs, their grads, the backward graph.

    Attributes: ``graph`` (:class:`gradviz.graph.Graph`), ``output`` (Tensor),
    ``inputs`` (name → leaf Tensor), ``grads`` (name → numpy array or None),
    ``steps`` (the backward pass, one :class:`gradviz.engine.Step` per function
    executed), ``backward_error`` (why backward did not run, or None).
    """

    def __init__(self, graph: Graph, steps: list[Step], backward_error: str | None, warnings: list[str]):
        self.graph = graph
        self.steps = steps
        self.backward_error = backward_error
        self.warnings = warnings
        #: extra top-level JSON sections added by optional analyses (hessian, symbolic, check...)
        self.extras: dict = {}

    @property
    def expression(self) -> str:
        return self.graph.source

    @property
    def output(self):
        return self.graph.output

    @property
    def inputs(self):
        return self.graph.inputs

    @property
    def value(self):
        """The output's data (a numpy array; 0-d for a scalar)."""
        return self.graph.output.data

    @property
    def grads(self) -> dict:
        """Each input's ``.grad`` after backward (None for inputs that need no grad)."""
        return {name: t.grad for name, t in self.graph.inputs.items()}

    def to_dict(self) -> dict:
        """The ``gradviz/1`` document as Python objects."""
        from .render.jsondoc import document

        with gc_paused():
            return document(self)

    def to_json(self) -> str:
        """The ``gradviz/1`` JSON document, byte-identical to ``gradviz EXPR --json``."""
        from .render.jsondoc import iter_json

        with gc_paused():
            return "".join(iter_json(self))

    def write_json(self, stream) -> None:
        """Write :meth:`to_json`'s text to a text ``stream`` piece by piece (for large graphs:
        the whole document never exists in memory at once)."""
        from .render.jsondoc import iter_json

        with gc_paused():
            for piece in iter_json(self):
                stream.write(piece)

    def __repr__(self) -> str:
        return f"<gradviz.Trace {self.graph.source!r}: output shape {self.graph.output.shape}>"

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a trace as its annotated backward graph (None, so plain repr, if it cannot be drawn)."""
        from .errors import RenderError
        from .render.dot import dot_source
        from .render.svg import render

        try:
            return render(dot_source(self), "svg").decode("utf-8")
        except RenderError:
            return None


def coerce_value(name: str, value, max_elements: int = DEFAULT_MAX_ELEMENTS):
    """Check an input value (number or rectangular nested lists of numbers); return it as floats.

    Raises EvalError naming the input when it is not a number, ragged, or too large.
    """
    if isinstance(value, np.ndarray):
        if value.size > max_elements:
            raise EvalError(f"--at {name}: {value.size} elements is more than the limit of {max_elements}")
        if value.dtype.kind not in "fiu":
            raise EvalError(f"--at {name}: values must be numbers")
        return value
    if isinstance(value, bool):
        raise EvalError(f"--at {name}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise EvalError(f"--at {name}: {value} is too large") from None
    if not isinstance(value, (list, tuple)):
        raise EvalError(f"--at {name}: {value!r} is not a number or a list of numbers")
    # Walk the nesting level by level (iteratively) to find the shape and check it is rectangular.
    shape = []
    level = [value]
    count = 0
    while True:
        first = level[0]
        if isinstance(first, (list, tuple)):
            n = len(first)
            for item in level:
                if not isinstance(item, (list, tuple)) or len(item) != n:
                    raise EvalError(f"--at {name}: the nested lists are ragged (every row needs the same length)")
            shape.append(n)
            if n == 0:
                break
            next_level = [x for item in level for x in item]
            count = len(next_level)
            if count > max_elements:
                raise EvalError(f"--at {name}: more than the limit of {max_elements} elements")
            level = next_level
        else:
            for item in level:
                if isinstance(item, bool) or not isinstance(item, (int, float)):
                    raise EvalError(f"--at {name}: {item!r} is not a number")
            break
    if len(shape) > 8:
        raise EvalError(f"--at {name}: more than 8 dimensions")
    try:
        return np.array(value, dtype=np.float64)
    except (OverflowError, ValueError):
        raise EvalError(f"--at {name}: not a rectangular list of numbers") from None


def _used_names(tree) -> set:
    from .parser import iter_postorder

    return {n.op for n in iter_postorder(tree) if n.kind == "name"}


def trace(
    expr: str,
    at: Mapping[str, object] | None = None,
    no_grad: Sequence[str] = (),
    dtype: str = "float32",
    grad_output=None,
    retain_grad: bool = False,
    max_terms: int = DEFAULT_MAX_TERMS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    drop_unused: bool = False,
    record_steps: bool = True,
) -> Trace:
    """Parse ``expr``, evaluate it at ``at`` like PyTorch, run backward, return a :class:`Trace`.

    ``at`` maps input names to numbers or nested lists; inputs in ``no_grad`` get
    ``requires_grad=False``; ``dtype`` is "float32" (PyTorch's default) or "float64".
    ``grad_output`` (array-like or "ones") starts backward for a non-scalar output.
    Inputs the expression does not use are kept as leaves with a warning, as in a torch
    script, or silently left out with ``drop_unused`` (batch mode's shared values).
    ``record_steps=False`` skips keeping the backward pass's steps (``Trace.steps`` stays
    empty), which only the step-by-step and edge-gradient views read.
    Raises :class:`gradviz.errors.GradvizError` subclasses for bad input.
    """
    with gc_paused():
        if dtype not in DTYPES:
            raise EvalError(f"unknown dtype {dtype!r}: use float32 or float64")
        at = dict(at or {})
        values = {name: coerce_value(name, v, max_elements) for name, v in at.items()}
        tree = parse(expr, max_terms=max_terms, max_depth=max_depth)
        warnings = []
        used = _used_names(tree)
        if drop_unused:
            values = {name: v for name, v in values.items() if name in used}
            at = {name: v for name, v in at.items() if name in used}
            no_grad = [name for name in no_grad if name in used]
        for name in at:
            if name not in used:
                warnings.append(f"warning: --at {name}=... is not used by the expression")
        for name in no_grad:
            if name not in used:
                warnings.append(f"warning: --no-grad {name} is not used by the expression")
        graph = trace_tree(tree, expr, values, no_grad=no_grad, dtype=dtype)

        backward_error = None
        steps: list[Step] = []
        out = graph.output
        if graph.root is not None:
            start = None
            if grad_output is not None:
                if isinstance(grad_output, str):
                    if grad_output != "ones":
                        raise EvalError(
                            f"--grad-output must be 'ones' or a list of numbers, not {grad_output!r}"
                        )
                    start = np.ones(out.shape)
                else:
                    start = np.asarray(coerce_value("grad-output", grad_output, max_elements), dtype=np.float64)
                    try:
                        np.broadcast_to(start, out.shape)
                    except ValueError:
                        raise EvalError(
                            f"--grad-output has shape {tuple(start.shape)} but the output has shape {tuple(out.shape)}"
                        ) from None
            elif out.data.size != 1:
                backward_error = (
                    f"output has shape {tuple(out.shape)}; backward needs a scalar: "
                    f"wrap it in sum(...) or pass --grad-output ones"
                )
            if backward_error is None:
                steps = backward(graph, start, retain_grad=retain_grad, record_steps=record_steps)
        return Trace(graph, steps, backward_error, warnings)


def format_shape(shape) -> str:
    """(2, 3), (3,), () — as Python writes tuples."""
    shape = tuple(shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


