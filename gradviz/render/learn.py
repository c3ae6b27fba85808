"""Terminal renderables for ``--steps``, ``--retain-grad``, ``--order 2``, ``--graph double``,
``--symbolic`` and ``--check`` (what :func:`gradviz.learn.analyse` found). Nothing prints here."""

from __future__ import annotations

import math

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..numbers import format_math, format_tensor

__all__ = ["learn_view", "hessian_table", "double_backward_view", "symbolic_view", "check_view", "pretty"]

NOTE = "dim italic"
OK, BAD = "green", "bold red"


def hessian_table(second) -> Group:
    """The Hessian as a table: one row per input, one column per input."""
    names = list(second.hessian)
    title = Text("Hessian ∂²f/∂row∂column", style="bold")
    title.append("  (by differentiating the backward graph)", style=NOTE)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("")
    for b in names:
        table.add_column(b, overflow="fold")
    for a in names:
        table.add_row(a, *(format_tensor(second.hessian[a][b]) for b in names))  # as PyTorch prints them
    if not names:
        return Group(title, Text("no input requires grad", style=NOTE))
    return Group(title, table)


def double_backward_view(trace, second) -> Group:
    """Each input's gradient as a graph of its own (the double-backward graph), as terminal trees."""
    from .terminal import backward_tree

    parts = [Text("Double-backward graph", style="bold")
             .append("  (create_graph=True: each gradient is itself a graph)", style=NOTE)]
    for name, double in second.traces().items():
        if double.graph.root is None:
            value = second.grads[name]
            parts.append(Text(f"∂f/∂{name} = {format_tensor(value, one_line=True) if value is not None else 'None'}")
                         .append("  (a constant: no grad_fn, so its derivatives are 0)", style=NOTE))
            continue
        parts.append(backward_tree(double))
    return Group(*parts)


def pretty(expr) -> str:
    """A formula for people: ``2·u + v`` (SymPy's text with ``·`` for multiplication)."""
    text = str(expr)
    return text.replace("**", "\0").replace("*", "·").replace("\0", "**")


def symbolic_view(result) -> Group:
    """``∂f/∂u = 2·u + v = 4`` per input, with ✓ or the mismatch against autograd."""
    title = Text("Symbolic derivatives", style="bold").append("  (SymPy, from the parsed expression)", style=NOTE)
    if result.error:
        error = result.error
        return Group(title, Text(error if error.startswith("not available") else f"not available: {error}", style=NOTE))
    lines = [title, Text(f"f = {pretty(result.output)}")]
    for name, d in result.grads.items():
        t = Text(f"∂f/∂{name} = {pretty(d)} = {format_math(result.values[name])}")
        if result.agrees[name]:
            t.append("  ✓ autograd agrees", style=OK)
        else:
            # SymPy's value is a formula's number (``4``); autograd's a tensor's, as PyTorch prints it
            t.append(f"  ✗ autograd gives {format_tensor(result.autograd[name])}: MISMATCH", style=BAD)
        lines.append(t)
    if not result.grads:
        lines.append(Text("no input requires grad", style=NOTE))
    return Group(*lines)


def _err(x: float) -> str:
    return "nan" if math.isnan(x) else format_math(x)


def check_view(result, max_failures: int = 10) -> Group:
    """The gradient check's verdict, errors and the partials that failed."""
    verdict = Text("passed", style=OK) if result.passed else Text("FAILED", style=BAD)
    head = Text("Gradient check: ", style="bold").append(verdict)
    head.append(f"  max abs error {_err(result.max_abs_error)}, max rel error {_err(result.max_rel_error)}")
    lines = [head, Text(f"(every partial vs central differences in float64, eps={result.eps:g}; "
                        f"passes when |error| <= {result.atol:g} + {result.rtol:g}·|numerical|)", style=NOTE)]
    failed = [p for p in result.partials if not p.passed]
    for p in failed[:max_failures]:
        where = p.input + (str(list(p.index)) if p.index else "")
        lines.append(Text(f"  ∂f/∂{where}: autograd {_err(p.analytical)}, finite differences "
                          f"{_err(p.numerical)}", style=BAD))
    if len(failed) > max_failures:
        lines.append(Text(f"  … {len(failed) - max_failures} more failing partials (--json lists all)", style=NOTE))
    return Group(*lines)


def learn_view(trace, learned, double_graph: bool = True) -> Group:
    """Everything asked for, in the order of the options' help: steps, Hessian, graph, symbolic, check.

    ``double_graph=False`` leaves out the double-backward graphs (when the caller draws them itself).
    The --retain-grad footnote is the Tensors table's (:func:`gradviz.render.terminal.grad_note`).
    """
    from .steps import steps_view

    parts = []
    if learned.steps:
        parts.append(steps_view(trace))
    if learned.hessian:
        parts.append(hessian_table(learned.second))
    if learned.double and double_graph:
        parts.append(double_backward_view(trace, learned.second))
    if learned.symbolic is not None:
        parts.append(symbolic_view(learned.symbolic))
    if learned.check is not None:
        parts.append(check_view(learned.check))
    spaced = []
    for p in parts:
        spaced.append(Text(""))
        spaced.append(p)
    return Group(*spaced)
