"""What flowed where during backward, read from ``trace.steps`` for the renderers.

``tensor.grad`` of an intermediate is None after backward (as in PyTorch), so the
gradient on each edge of the backward graph comes from the recorded steps:
``Step.grads_out[i]`` is what a function sent along ``next_functions[i]`` and
``Step.grad_in`` is the sum of everything that arrived into it.
"""

from __future__ import annotations


class Flow:
    """The gradients of one backward pass, looked up per function (built in one pass over the steps)."""

    def __init__(self, trace):
        self._steps = trace.steps  # the engine's record (empty when backward did not run)
        root = trace.graph.root
        #: the gradient backward started with at the root (ones for a scalar output), or None
        self.start = self.received(root) if root is not None else None

    def along(self, fn, i):
        """The gradient ``fn`` sent along ``fn.next_functions[i]`` (None if backward did not run)."""
        return self._steps.along(fn.index, i) if self._steps else None

    def step(self, fn):
        """The 1-based step of the backward pass at which ``fn`` ran (None if it did not run)."""
        k = self._steps.position(fn.index) if self._steps else None
        return None if k is None else k + 1

    def received(self, fn):
        """Everything that arrived into ``fn`` during backward, summed (None if it did not run)."""
        return self._steps.received(fn.index) if self._steps else None


def flow(trace) -> Flow:
    """The per-edge gradients of ``trace``'s backward pass."""
    return Flow(trace)


def tensor_text(graph, tensor) -> str:
    """A tensor's name, or the sub-expression it holds without redundant outer parentheses."""
    text = graph.text_of(tensor)
    if len(text) > 10_000:
        return text  # shown abbreviated anyway; not worth scanning
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
