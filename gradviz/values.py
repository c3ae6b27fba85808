"""Values as JSON-ready Python objects: numbers (nan and ±inf as the schema's strings), arrays as
nested lists, saved attributes as given. The analyses build their JSON sections with these; the
one JSON writer, :mod:`gradviz.render.jsondoc`, writes them."""

from __future__ import annotations

import math

from .ops import np


def number(x):
    """A float32/float64 value as the shortest decimal that reads back to it, or a string for nan/inf."""
    if isinstance(x, np.float32):  # the common case first
        f = float(str(x))  # shortest repr that round-trips in float32 (0.1, not 0.10000000149)
    elif isinstance(x, (bool, np.bool_)):
        return bool(x)
    elif isinstance(x, (int, np.integer)):
        return int(x)
    else:
        f = float(x)
    if math.isfinite(f):
        return f
    if math.isnan(f):
        return "NaN"
    return "Infinity" if f > 0 else "-Infinity"


def array(a):
    """A numpy array (or number) as a number or nested lists of numbers."""
    if a is None:
        return None
    if type(a) is np.ndarray and not a.shape:  # the common case first: a 0-d tensor
        return number(a[()])
    if isinstance(a, (int, float, np.integer, np.floating, bool, np.bool_)):
        return number(a)
    a = np.asarray(a)
    if a.ndim == 0:
        return number(a[()])
    if a.size == 0:
        return a.tolist()  # [[], [], []]: nested empty lists, no numbers
    if a.dtype == np.float64:
        flat = [number(v) for v in a.ravel().tolist()]
    elif a.dtype.kind == "f":
        flat = [number(v) for v in a.ravel()]
    else:
        flat = [number(v) for v in a.ravel().tolist()]
    # rebuild the nesting iteratively (no recursion over dimensions' sizes)
    for size in reversed(a.shape[1:]):
        flat = [flat[i:i + size] for i in range(0, len(flat), size)]
    return flat


def saved_value(v):
    """A saved attribute: arrays as data, tuples (sizes, dims) as lists, numbers as given."""
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        return [saved_value(x) for x in v]  # shallow: sizes/dims are flat tuples of ints
    if isinstance(v, np.ndarray):
        return array(v)
    if isinstance(v, str):  # GeluBackward0's approximate
        return v
    return number(v)


def tensor_entry(t, graph=None) -> dict:
    """A Tensor view's entry (small documents: the double-backward section)."""
    span = t.span
    return {
        "id": t.id,
        "name": t.name,
        "span": None if t.name or span is None else list(span),
        "data": array(t.data),
        "shape": list(t.shape),
        "requires_grad": bool(t.requires_grad),
        "is_leaf": bool(t.is_leaf),
        "grad_fn": t.grad_fn.id if t.grad_fn is not None and t.grad_fn.id else None,
        "grad": array(t.grad),
    }


def function_entry(fn) -> dict:
    """A BackwardFunction view's entry (small documents: the double-backward section)."""
    entry = {
        "id": fn.id,
        "name": fn.name,
        "next_functions": [n.id if n is not None else None for n in fn.next_functions],
    }
    if fn.variable is not None:
        entry["variable"] = fn.variable.name
        entry["tensor"] = fn.variable.id
    else:
        entry["saved"] = {k: saved_value(v) for k, v in fn.saved.items()}
        entry["tensor"] = fn.output.id if fn.output is not None else None
    return entry
