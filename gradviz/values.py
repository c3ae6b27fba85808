"""Values as JSON-ready Python objects: numbers (nan and ±inf as the schema's strings), arrays as
nested lists, saved attributes as given; and a float's JSON number text (:func:`f32_text`,
:func:`f64_text`). The analyses build their JSON sections with these; the one JSON writer,
:mod:`gradviz.render.jsondoc`, writes them."""

from __future__ import annotations

import math
from array import array as _array

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


# ---------------------------------------------------------------------------
# Floats as JSON number text (read by the document's writer, the steps record and the paths)
# ---------------------------------------------------------------------------

_F32 = _array("f", [0.0])


SMALLEST_NORMAL_F32 = 1.1754943508222875e-38


#: every float32 power of two, both signs (their interval is twice as wide above as below)
POWERS_OF_TWO_F32 = frozenset(s * math.ldexp(1.0, e) for e in range(-149, 128) for s in (1.0, -1.0))


_POW2_TEXT: dict = {}  # a power of two -> its f32_text, once asked for


def f32_text(v: float) -> str:
    """A float32 value's JSON text: the shortest decimal that reads back to it in float32
    (numpy's ``str(np.float32(v))``: 0.1, not 0.10000000149); nan and ±inf as the strings
    the schema uses."""
    if v != v:
        return '"NaN"'
    if v == 0:
        return repr(v)  # 0.0 or -0.0
    if v in POWERS_OF_TWO_F32:  # (their texts are remembered: a graph's values are often powers of two)
        t = _POW2_TEXT.get(v)
        if t is None:
            t = _POW2_TEXT[v] = _f32_text_careful(v)
        return t
    if -SMALLEST_NORMAL_F32 < v < SMALLEST_NORMAL_F32:
        return _f32_text_careful(v)  # a subnormal
    if v in (math.inf, -math.inf):
        return '"Infinity"' if v > 0 else '"-Infinity"'
    # A float32 interval here is symmetric, so if p digits read back, so do p + 1: the shortest
    # is found from 7 (most values need 7 or 8 digits). Six significant digits are always finer
    # than a float32 interval is wide, so when the shortest has at most 6 digits it is '%.6g'
    # (which drops trailing zeros).
    b = _F32
    s = "%.7g" % v
    b[0] = float(s)
    if b[0] == v:
        t = "%.6g" % v
        b[0] = float(t)
        return repr_of_g_text(t) if b[0] == v else repr_of_g_text(s)
    s = "%.8g" % v
    b[0] = float(s)
    return repr_of_g_text(s) if b[0] == v else repr_of_g_text("%.9g" % v)


def repr_of_g_text(s: str) -> str:
    """``repr(float(s))`` for ``s`` a '%.{p}g' text (p <= 9), without the float: its digits are
    repr's (no shorter decimal is that near), only the notation may differ — '%g' writes an
    integer without '.0' and switches to an exponent at 10**p, repr at 10**16."""
    if "e" not in s:
        return s if "." in s else s + ".0"
    if s[-3] == "-" or s[-3:] >= "+16":  # e-XX (below 1e-4 for both), or e+16 and beyond
        return s
    return repr(float(s))


def _f32_text_careful(v: float) -> str:
    """f32_text for subnormals (coarser than 6 digits) and powers of two (whose interval is
    twice as wide above as below): every digit count, the nearest decimal first."""
    b = _F32
    for p in range(1, 10):
        s = "%.*e" % (p - 1, v)
        f = float(s)
        b[0] = f
        if b[0] == v:
            return repr(f)
        mantissa, exponent = s.split("e")
        digits = int(mantissa.replace(".", ""))
        e = int(exponent) - (p - 1)
        for d in ((digits - 1, digits + 1) if v > 0 else (digits + 1, digits - 1)):
            f = float(f"{d}e{e}")
            b[0] = f
            if b[0] == v:
                return repr(f)
    return repr(float("%.9g" % v))


def f64_text(v: float) -> str:
    """A float64 value's JSON text (nan and ±inf as the schema's strings)."""
    if v != v:
        return '"NaN"'
    if v in (math.inf, -math.inf):
        return '"Infinity"' if v > 0 else '"-Infinity"'
    return repr(v)
