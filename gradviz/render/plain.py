"""A plain-text listing: value, each partial derivative, the backward graph as indented text."""

from __future__ import annotations

from ..graph import BackwardFunction
from .numbers import format_tensor as fmt


def graph_lines(root: BackwardFunction | None) -> list[str]:
    """The backward graph from ``root``, one line per edge, indented by depth (no recursion)."""
    if root is None:
        return ["(no backward graph: the output does not require grad)"]
    lines = []
    stack = [(root, 0)]
    while stack:
        fn, depth = stack.pop()
        label = fn.name + (f" ({fn.variable.name})" if fn.variable is not None else "")
        lines.append("  " * depth + label)
        for nxt in reversed(fn.next_functions):
            if nxt is None:
                stack.append((None, depth + 1))
            else:
                stack.append((nxt, depth + 1))
        while stack and stack[-1][0] is None:
            _, d = stack.pop()
            lines.append("  " * d + "None")
    return lines


def listing(result) -> str:
    g = result.graph
    args = ", ".join(f"{n}={fmt(t.data)}" for n, t in g.inputs.items())
    out = [f"f({args}) = {fmt(g.output.data)}"]
    for name, t in g.inputs.items():
        out.append(f"df/d{name} = {fmt(t.grad) if t.grad is not None else 'None'}")
    out.append("backward graph:")
    out.extend("  " + line for line in graph_lines(g.root))
    return "\n".join(out)
