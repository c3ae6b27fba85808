"""A parsed list literal as a tensor's value, with the dtype ``torch.tensor`` infers.

``torch.tensor([0, 2])`` is int64, ``torch.tensor([0., 2])`` the default dtype (float32),
``torch.tensor([True, False])`` bool; a ragged list is PyTorch's ValueError. The expression
language (``torch.tensor([...])`` as a constant) and the ``--at "t=tensor([0, 2])"`` input
form share this one conversion, so both mean exactly what ``torch.tensor`` means.

Nested lists are walked with an explicit stack (a list nested 100,000 deep is text a user can
write; no recursion).
"""

from __future__ import annotations

#: torch.tensor refuses ints outside int64 ("Overflow when unpacking long long")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class LiteralError(ValueError):
    """A list that is no tensor (ragged, or holding something other than numbers)."""


def inferred_dtype(flat: list) -> str:
    """torch.tensor's dtype for these numbers: bool if all are bools, int64 if all are ints
    (or bools), else float32 (PyTorch's default dtype); an empty list is float32."""
    if flat and all(type(v) is bool for v in flat):
        return "bool"
    if flat and all(type(v) is int or type(v) is bool for v in flat):
        return "int64"
    return "float32"


def flatten(data) -> tuple:
    """``(flat numbers, shape)`` of a number or a nested list/tuple of numbers, checked as
    torch.tensor checks it (every sub-list at a depth of the same length)."""
    if not isinstance(data, (list, tuple)):
        _check_number(data)
        return [data], ()
    shape: list = []
    flat: list = []
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple)):
            if depth == len(shape):
                if flat:  # numbers already seen at this depth: a list where a number was
                    raise LiteralError(f"expected a number at depth {depth}, got a list")
                shape.append(len(item))
            elif depth > len(shape) or len(item) != shape[depth]:
                got = len(item)
                raise LiteralError(f"expected sequence of length {shape[depth]} at dim {depth} (got {got})"
                                   if depth < len(shape) else "the list's nesting is ragged")
            stack.extend((x, depth + 1) for x in reversed(item))
        else:
            if depth != len(shape):
                raise LiteralError(f"expected sequence of length {shape[depth]} at dim {depth} (got a number)"
                                   if depth < len(shape) else "the list's nesting is ragged")
            _check_number(item)
            flat.append(item)
    return flat, tuple(shape)


def _check_number(v) -> None:
    if type(v) not in (int, float, bool):
        what = "a tensor" if hasattr(v, "shape") else type(v).__name__
        raise LiteralError(f"a tensor literal holds numbers only, got {what} (to join tensors use "
                           f"torch.stack or torch.cat)")
    if type(v) is int and not INT64_MIN <= v <= INT64_MAX:
        raise LiteralError("Overflow when unpacking long long: the int is out of int64's range")


def tensor_literal(data, float_dtype: str = "float32"):
    """``(numpy array, dtype name)`` for ``torch.tensor(data)``: ints int64, bools bool, floats
    ``float_dtype`` (PyTorch's default dtype, float32). Raises :class:`LiteralError`."""
    import numpy as np

    from .limits import MAX_DIMS

    flat, shape = flatten(data)
    if len(shape) > MAX_DIMS:
        raise LiteralError(f"a list nested {len(shape)} deep is a tensor of {len(shape)} dimensions, more than "
                           f"the limit of {MAX_DIMS}")
    dtype = inferred_dtype(flat)
    if dtype == "float32":
        dtype = float_dtype
        with np.errstate(over="ignore"):  # 1e300 in float32 is inf, as torch.tensor makes it
            values = np.array([float(v) for v in flat], dtype=np.float64).astype(dtype)
    else:
        values = np.array(flat, dtype=dtype)
    return values.reshape(shape), dtype
