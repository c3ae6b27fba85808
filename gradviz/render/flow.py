"""What flowed where during backward, read from ``trace.steps`` for the renderers.

``tensor.grad`` of an intermediate is None after backward (as in PyTorch), so the
gradient on each edge of the backward graph comes from the recorded steps:
``Step.grads_out[i]`` is what a function sent along ``next_functions[i]`` and
``Step.grad_in`` is the sum of everything that arrived into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Flow:
    """The gradients of one backward pass, keyed by function identity."""

    #: (id(function), i) -> gradient sent along function.next_functions[i]
    sent: dict = field(default_factory=dict)
    #: id(function) -> gradient that arrived into the function (summed over its incoming edges)
    received: dict = field(default_factory=dict)
    #: the gradient backward started with at the root (ones for a scalar output), or None
    start: object = None

    def along(self, fn, i):
        """The gradient ``fn`` sent along ``fn.next_functions[i]`` (None if backward did not run)."""
        return self.sent.get((id(fn), i))


def flow(trace) -> Flow:
    """Collect the per-edge gradients of ``trace``'s backward pass."""
    out = Flow()
    root = trace.graph.root
    for step in trace.steps:
        fn = step.function
        out.received[id(fn)] = step.grad_in
        for i, g in enumerate(step.grads_out):
            if g is not None:
                out.sent[(id(fn), i)] = g
    if root is not None:
        out.start = out.received.get(id(root))
    return out


def incoming_counts(functions) -> dict:
    """id(function) -> how many next_functions entries point at it."""
    counts: dict = {}
    for fn in functions:
        for nxt in fn.next_functions:
            if nxt is not None:
                counts[id(nxt)] = counts.get(id(nxt), 0) + 1
    return counts


def tensor_text(graph, tensor) -> str:
    """A tensor's name, or the sub-expression it holds without redundant outer parentheses."""
    text = graph.text_of(tensor)
    while len(text) >= 2 and text[0] == "(" and text[-1] == ")" and _closes_at_end(text):
        text = text[1:-1].strip()
    return text


def _closes_at_end(text: str) -> bool:
    """True when the '(' at text[0] is closed by the ')' at the very end."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False
