"""The one shape formatter: ``(2, 3)``, ``(3,)``, ``()`` — as Python writes tuples (and PyTorch's
messages write sizes)."""

from __future__ import annotations


def format_shape(shape) -> str:
    """``(2, 3)``, ``(3,)``, ``()``."""
    shape = tuple(shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
