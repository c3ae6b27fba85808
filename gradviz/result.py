"""``trace()``: text and a point in, a traced and differentiated graph out."""

from __future__ import annotations

import numbers
import re
import sys
from typing import Mapping, Sequence

from .collector import gc_paused  # noqa: F401  (also imported from here)
from .engine import Step, backward
from .errors import EvalError, GradvizError, UsageError
from .graph import DTYPES, Graph
from .operators import node_text
from .tracing import trace_source
from .ops import np
from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_TERMS, MAX_DIMS
from .parser import NO_TREE, parse
from .shapes import format_shape  # noqa: F401 (part of this module's names)


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
        #: what the analyses asked of trace() found (a :class:`gradviz.learn.Learned`), or None
        self.learned = None

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

    def grad(self, name: str):
        """An input's ``.grad`` as the graph holds it (a Python float for a 0-d input, an array,
        or None), without numpy."""
        return self.graph.grad.get(self.graph.input_index[name])

    @property
    def grads(self) -> dict:
        """Each input's ``.grad`` after backward: a Python float for a 0-d input, a numpy array
        otherwise, None for an input that needs no grad (or that the output does not depend on)."""
        out = {}
        for name, t in self.graph.inputs.items():
            g = self.graph.grad.get(t.index)
            if g is not None and type(g) is not float:
                g = np.asarray(g)
                g = float(g) if g.ndim == 0 else g
            out[name] = g
        return out

    @property
    def hessian(self) -> dict | None:
        """With ``order=2``: ``hessian[a][b]`` = ∂²f/∂a∂b (a float for 0-d inputs, else an array of
        shape ``a.shape + b.shape``); None otherwise."""
        if self.learned is None or self.learned.second is None:
            return None
        return {a: {b: float(h) if np.ndim(h) == 0 else h for b, h in row.items()}
                for a, row in self.learned.second.hessian.items()}

    @property
    def check(self):
        """With ``check=True``: the gradient check (:class:`gradviz.check.CheckResult`, ``.passed``)."""
        return None if self.learned is None else self.learned.check

    @property
    def symbolic(self):
        """With ``symbolic=True``: the formulas (:class:`gradviz.symbolic.Symbolic`, ``.grads``)."""
        return None if self.learned is None else self.learned.symbolic

    def to_dict(self) -> dict:
        """The ``gradviz/1`` document as Python objects."""
        from .render.jsondoc import document

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

    def html(self, **options) -> str:
        """The interactive page (``-o graph.html``) as HTML text: one self-contained file; the
        options are :func:`gradviz.render.html.page`'s (``rankdir``, ``max_nodes``...)."""
        from .paths import paths_json
        from .render.html import page

        return page(self, paths_json(self), **options)

    def _repr_html_(self) -> str | None:
        """Jupyter shows a trace as its interactive page, in a sandboxed iframe of its own (None, so
        the SVG or plain repr, if it cannot be drawn)."""
        from .errors import RenderError
        from .render.html import iframe

        try:
            return iframe(self.html())
        except RenderError:
            return None

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a trace as its annotated backward graph (None, so plain repr, if it cannot be drawn)."""
        from .errors import RenderError

        try:
            return self.svg()
        except RenderError:
            return None

    # --- the views, as the command line makes them (issue 17) --------------------------------

    def dot(self, rankdir: str | None = None, tensors: str = "leaves", graph: str | None = None,
            max_nodes: int = 300, max_depth: int | None = None) -> str:
        """The diagram as Graphviz DOT text (``gradviz EXPR --format dot``).

        ``rankdir`` "LR" or "TB" (default: the one nearer a slide's 16:9); ``tensors`` "leaves" or
        "all" (every tensor with data, grad, grad_fn, is_leaf, requires_grad); ``graph``
        "forward" or "double" (each gradient's graph and the Hessian; needs ``order=2``; the
        default is "double" when the trace was made with ``order=2``). The arrows are numbered
        when the trace was made with ``steps=True``.
        """
        from .render.dot import dot_source, double_backward_digraph

        learned = self.learned
        steps = bool(learned is not None and learned.steps)
        if graph is None:
            graph = "double" if learned is not None and learned.second is not None else "forward"
        if graph not in ("forward", "double"):
            raise UsageError(f"graph must be 'forward' or 'double', not {_short(graph)}")
        options = dict(rankdir=rankdir or "auto", max_nodes=max_nodes, tensors=tensors, steps=steps)
        try:
            if graph == "double":
                if learned is None or learned.second is None:
                    raise UsageError("graph='double' needs the second-order pass: trace(..., order=2)")
                return double_backward_digraph(learned.second, **options).source
            return dot_source(self, max_depth=max_depth, **options)
        except ValueError as exc:  # a rankdir or tensors the renderer does not know
            raise UsageError(str(exc)) from None

    def svg(self, background: str = "white", **options) -> str:
        """The diagram as SVG text (drawn by the embedded Graphviz; nothing to install). ``options``
        are :meth:`dot`'s."""
        from .render.svg import render

        return render(self.dot(**options), "svg", background=background).decode("utf-8")

    def png(self, scale: float | None = None, dpi: float | None = None, background: str = "white",
            **options) -> bytes:
        """The diagram as PNG bytes: ``scale`` pixels per CSS pixel (default 2) or ``dpi``."""
        from .render.svg import render

        return render(self.dot(**options), "png", scale=scale, dpi=dpi, background=background)

    def pdf(self, background: str = "white", **options) -> bytes:
        """The diagram as PDF bytes (vector, text kept as text)."""
        from .render.svg import render

        return render(self.dot(**options), "pdf", background=background)

    def text(self, width: int = 80) -> str:
        """The terminal view (summary, Tensors table, backward graph, what the analyses found) as
        plain text ``width`` columns wide."""
        import io

        from rich.console import Console, Group

        from .render.terminal import report

        parts = [report(self)]
        if self.learned is not None:
            from .render.learn import learn_view

            parts.append(learn_view(self, self.learned))
        console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
        console.print(Group(*parts))
        return console.file.getvalue()

    def save(self, path, **options) -> None:
        """Write a view to ``path``, its format from the suffix: .svg .png .pdf .dot/.gv .json .txt
        (and .html where the interactive page is available). ``options`` go to that view's method
        (e.g. ``scale=3`` for .png, ``tensors="all"``). A file is replaced atomically."""
        import os

        from .output import write_output

        suffix = os.path.splitext(os.fspath(path))[1].lower()
        makers = {".svg": self.svg, ".png": self.png, ".pdf": self.pdf, ".dot": self.dot, ".gv": self.dot,
                  ".json": self.to_json, ".txt": self.text}
        if hasattr(self, "html"):
            makers[".html"] = self.html
        if suffix not in makers:
            raise UsageError(f"save({os.fspath(path)!r}): cannot tell the format from the suffix; use one of "
                             + ", ".join(sorted(makers)))
        data = makers[suffix](**options)
        write_output(os.fspath(path), data.encode("utf-8") if isinstance(data, str) else data)


def coerce_value(name: str, value, max_elements: int = DEFAULT_MAX_ELEMENTS):
    """Check an input value (number or rectangular nested lists of numbers); return it as floats.

    Raises EvalError naming the input when it is not a number, ragged, or too large.
    """
    if type(value) is list and 0 < len(value) <= max_elements:  # the commonest: a list of floats
        for item in value:
            if type(item) is not float:
                break
        else:
            return np.array(value, dtype=np.float64)
    numpy = sys.modules.get("numpy")  # a numpy value can only have come from numpy once it is loaded
    if numpy is not None and isinstance(value, numpy.generic) and value.dtype.kind in "fiu":
        value = value.item()  # np.float32(2), np.int64(2): numbers
    if _is_ndarray(value):
        if value.size > max_elements:
            raise EvalError(f"--at {name}: {value.size} elements is more than the limit of {max_elements}")
        if value.dtype.kind not in "fiu":
            raise EvalError(f"--at {name}: values must be numbers")
        if value.ndim > MAX_DIMS:
            raise EvalError(f"--at {name}: more than {MAX_DIMS} dimensions")
        return value
    if isinstance(value, bool):
        raise EvalError(f"--at {name}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise EvalError(f"--at {name}: {node_text(value)} is too large") from None
    if not isinstance(value, (list, tuple)):
        raise EvalError(f"--at {name}: {_short(value)} is not a number or a list of numbers")
    _check_nested(name, value, max_elements)
    try:
        return np.array(value, dtype=np.float64)
    except (OverflowError, ValueError):
        raise EvalError(f"--at {name}: not a rectangular list of numbers") from None


def _check_nested(name: str, value, max_elements: int) -> None:
    """Nested lists of numbers, walked level by level (no recursion): rectangular, at most
    MAX_DIMS deep and max_elements in all, or the EvalError naming the input."""
    shape = []
    level = [value]
    while True:
        if len(shape) > MAX_DIMS:
            raise EvalError(f"--at {name}: more than {MAX_DIMS} dimensions")
        first = level[0]
        if not isinstance(first, (list, tuple)):
            for item in level:
                if isinstance(item, bool) or not isinstance(item, (int, float, np.integer, np.floating)):
                    raise EvalError(f"--at {name}: {_short(item)} is not a number")
            return
        n = len(first)
        for item in level:
            if not isinstance(item, (list, tuple)) or len(item) != n:
                raise EvalError(f"--at {name}: the nested lists are ragged (every row needs the same length)")
        shape.append(n)
        if n == 0:
            return
        level = [x for item in level for x in item]
        if len(level) > max_elements:
            raise EvalError(f"--at {name}: more than the limit of {max_elements} elements")


def coerce_values(at: dict, max_elements: int = DEFAULT_MAX_ELEMENTS) -> dict:
    """:func:`coerce_value` of every input of ``at``; a million numbers made floats at once."""
    kinds = set(map(type, at.values()))
    if kinds <= {float}:
        return dict(at)
    if kinds <= {float, int}:
        try:
            return dict(zip(at, map(float, at.values())))
        except OverflowError:
            pass  # (coerce_value names the input too large for a float)
    return {name: coerce_value(name, v, max_elements) for name, v in at.items()}


def value_size(value) -> int:
    """The number of elements an input value will have (1 for a number), without converting it;
    a ragged list counts along its first rows (coerce_value refuses it later)."""
    if _is_ndarray(value):
        return int(value.size)
    size = 1
    while isinstance(value, (list, tuple)):
        size *= len(value)
        if not value:
            break
        value = value[0]
    return size


def _short(value) -> str:
    """A value for a message: its repr, cut short (and huge ints by their size)."""
    if type(value) is int:
        return node_text(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _check_arguments(expr, at, no_grad, dtype, retain_grad, limits: dict, flags: dict) -> None:
    """trace()'s arguments, each refused by name when it has the wrong type."""
    if not isinstance(expr, str):
        raise UsageError(f"expr must be a string like 'u*v + u**2', not {_short(expr)}")
    if at is not None and not isinstance(at, Mapping):
        raise UsageError(f"at must be a dict of input name -> number or list, not {_short(at)}")
    for name in at or {}:
        if not isinstance(name, str):
            raise UsageError(f"at: the input name {_short(name)} is not a string")
    if isinstance(no_grad, str) or not isinstance(no_grad, (list, tuple, set, frozenset)) \
            or not all(isinstance(n, str) for n in no_grad):
        raise UsageError(f"no_grad must be a list of input names, not {_short(no_grad)}")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise UsageError(f"dtype must be 'float32' or 'float64', not {_short(dtype)}")
    for name, value in flags.items():
        if not isinstance(value, bool) and type(value).__name__ != "bool_":  # numpy's too
            raise UsageError(f"{name} must be True or False, not {_short(value)}")
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise UsageError(f"{name} must be a positive integer, not {_short(value)}")


def _is_ndarray(value) -> bool:
    numpy = sys.modules.get("numpy")  # an array can only have come from numpy once it is loaded
    return numpy is not None and isinstance(value, numpy.ndarray)


def trace(
    expr: str,
    at: Mapping[str, object] | None = None,
    no_grad: Sequence[str] = (),
    dtype: str = "float32",
    order: int = 1,
    symbolic: bool = False,
    check: bool = False,
    steps: bool = False,
    retain_grad: bool = False,
    grad_output=None,
    *,
    max_terms: int = DEFAULT_MAX_TERMS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    drop_unused: bool = False,
    record_steps: bool = True,
) -> Trace:
    """Trace ``expr`` at ``at`` as PyTorch would, run backward, and return a :class:`Trace`.

    ``at`` maps input names to numbers or nested lists (or numpy arrays); inputs named in
    ``no_grad`` get ``requires_grad=False``; ``dtype`` is "float32" (PyTorch's default) or
    "float64"; ``grad_output`` ("ones" or numbers) starts backward for a non-scalar output;
    ``retain_grad`` keeps every intermediate's grad, as ``retain_grad()`` does. The analyses of
    the command line, each off by default: ``order=2`` (the Hessian, ``.hessian``, and the
    double-backward graphs, ``.svg(graph="double")``), ``symbolic`` (SymPy's formulas,
    ``.symbolic``), ``check`` (finite differences, ``.check.passed``), ``steps`` (the backward
    pass step by step in ``.to_json()``; the pictures number their arrows).

    Bad input raises a :class:`gradviz.GradvizError` subclass (``ParseError``, ``EvalError``,
    ``UsageError``) whose message names the argument (``at['x']``, ``grad_output``).
    ``drop_unused`` leaves out inputs the expression does not use (else they stay leaves, with a
    warning in ``.warnings``); ``record_steps=False`` keeps no record of the backward pass
    (faster, for ``.to_json()`` alone).
    """
    for name, value in dict(symbolic=symbolic, check=check, steps=steps).items():
        if not isinstance(value, bool):
            raise _api_error(UsageError(f"{name} must be True or False, not {_short(value)}"))
    if order not in (1, 2) or isinstance(order, bool):
        raise _api_error(UsageError(f"order must be 1 or 2, not {_short(order)}"))
    try:
        result = trace_command(expr, at=at, no_grad=no_grad, dtype=dtype, grad_output=grad_output,
                        retain_grad=retain_grad, max_terms=max_terms, max_depth=max_depth,
                        max_elements=max_elements, drop_unused=drop_unused,
                        record_steps=record_steps or steps or check or symbolic or order == 2)
        result.warnings = [_api_words(w) for w in result.warnings]
        if result.backward_error:
            result.backward_error = _api_words(result.backward_error)
        if steps or order == 2 or symbolic or check or retain_grad:
            from .learn import analyse

            result.learned = analyse(result, steps=steps, order=order, graph="double" if order == 2 else "forward",
                                     symbolic=symbolic, check=check, retain_grad=retain_grad)
    except GradvizError as exc:
        raise _api_error(exc) from None
    return result


#: what the command line's words become in the API's messages (first match wins, in order)
_API_WORDS = [
    (re.compile(r"add --at (\w+)=\.\.\."), r"give \1 in at={'\1': ...}"),
    (re.compile(r"--at (\w+)=\.\.\."), r"at['\1']"),
    (re.compile(r"--at (\w+)"), r"at['\1']"),
    (re.compile(r"--no-grad (\w+)"), r"no_grad '\1'"),
    (re.compile(r"--grad-output ones"), "grad_output='ones'"),
    (re.compile(r"--order 2"), "order=2"),
    (re.compile(r"--check"), "check=True"),
    (re.compile(r"--([a-z]+(?:-[a-z]+)*)"), lambda m: m.group(1).replace("-", "_")),
]


def _api_words(text: str) -> str:
    """A message written for the command line, in the API's words (arguments, not flags)."""
    for pattern, repl in _API_WORDS:
        text = pattern.sub(repl, text)
    return text


def _api_error(exc: GradvizError) -> GradvizError:
    """``exc`` with its message in the API's words (same class, same column)."""
    exc.message = _api_words(exc.message)
    exc.args = (exc.message,)
    return exc


def trace_command(
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
    keep_received: bool = False,
) -> Trace:
    """:func:`trace` without the analyses, its messages in the command line's words (``--at x``):
    parse ``expr``, evaluate it at ``at`` like PyTorch, run backward, return a :class:`Trace`.

    ``at`` maps input names to numbers or nested lists; inputs in ``no_grad`` get
    ``requires_grad=False``; ``dtype`` is "float32" (PyTorch's default) or "float64".
    ``grad_output`` (array-like or "ones") starts backward for a non-scalar output.
    Inputs the expression does not use are kept as leaves with a warning, as in a torch
    script, or silently left out with ``drop_unused`` (batch mode's shared values).
    ``record_steps=False`` skips keeping the backward pass's steps (``Trace.steps`` stays
    empty), which only the step-by-step and edge-gradient views read; with ``keep_received``
    ``Trace.steps`` is an :class:`gradviz.engine.Received` instead, all the pictures read.
    Raises :class:`gradviz.errors.GradvizError` subclasses for bad input.
    """
    with gc_paused():
        _check_arguments(expr, at, no_grad, dtype, retain_grad,
                         dict(max_terms=max_terms, max_depth=max_depth, max_elements=max_elements),
                         dict(retain_grad=retain_grad, drop_unused=drop_unused, record_steps=record_steps))
        max_terms, max_depth, max_elements = int(max_terms), int(max_depth), int(max_elements)
        at = dict(at or {})
        values = coerce_values(at, max_elements)
        limits = dict(max_terms=max_terms, max_depth=max_depth)
        used: set = set()
        if drop_unused:  # the inputs a line reads, known before any leaf is made
            parse(expr, names=used, builder=NO_TREE, **limits)
            values = {name: v for name, v in values.items() if name in used}
            at = {name: v for name, v in at.items() if name in used}
            no_grad = [name for name in no_grad if name in used]
        try:
            # The parser drives the tracer directly: no expression tree is kept.
            graph = trace_source(expr, values, no_grad=no_grad, dtype=dtype, max_elements=max_elements,
                                 names=used, **limits)
        except EvalError:
            # A syntax error anywhere is reported before an evaluation error, as Python compiles
            # before it runs: read the rest of the text for one.
            parse(expr, builder=NO_TREE, **limits)
            raise
        warnings = [f"warning: --at {name}=... is not used by the expression" for name in at if name not in used]
        warnings += [f"warning: --no-grad {name} is not used by the expression" for name in no_grad
                     if name not in used]
        del values, at  # on the tape now (a million inputs' dicts let go before backward)
        steps, backward_error = _backward(graph, grad_output, max_elements, retain_grad, record_steps,
                                          keep_received)
        return Trace(graph, steps, backward_error, warnings)


def _backward(graph: Graph, grad_output, max_elements: int, retain_grad: bool, record_steps: bool,
              keep_received: bool = False):
    """Run backward from the graph's root: (the steps, None), or ([], why it could not run)."""
    if graph.root_index is None:
        return [], None
    out_shape = graph.shape[graph.output_index]
    start = _start_gradient(grad_output, out_shape, max_elements)
    if start is None and _numel(out_shape) != 1:
        return [], (f"output has shape {tuple(out_shape)}; backward needs a scalar: "
                    f"wrap it in sum(...) or pass --grad-output ones")
    return backward(graph, start, retain_grad=retain_grad, record_steps=record_steps,
                    keep_received=keep_received), None


def _start_gradient(grad_output, shape: tuple, max_elements: int):
    """The gradient backward starts with: None for the default (ones for a scalar output), else
    ``grad_output`` ("ones" or numbers) checked against the output's shape."""
    if grad_output is None:
        return None
    if isinstance(grad_output, str):
        if grad_output != "ones":
            raise EvalError(f"--grad-output must be 'ones' or a list of numbers, not {grad_output!r}")
        return np.ones(shape)
    start = np.asarray(coerce_value("grad-output", grad_output, max_elements), dtype=np.float64)
    if start.shape != tuple(shape):  # PyTorch's backward(gradient) broadcasts nothing
        raise EvalError(f"--grad-output has shape {tuple(start.shape)} but the output has shape {tuple(shape)} "
                        f"(PyTorch: Mismatch in shape)")
    return start


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
