"""The one place that turns numbers into text for people.

Tensor values are written as PyTorch prints them (``torch/_tensor_str.py``): one
mode is chosen for the whole tensor — whole numbers as ``4.``, otherwise four
decimals ``0.9093``/``2.5000``, or scientific ``1.0000e-05`` when the magnitudes
span more than 1000x, exceed 1e8 or go below 1e-4 — and ``nan``, ``inf``,
``-inf`` as themselves. Unlike PyTorch, arrays are written on one line and
without padding (``[[1., 2.], [3., 4.]]``), and long ones are abbreviated with
``...`` and followed by their shape: ``[0.1000, 0.2000, ..., 99.9000] (1000,)``.

:func:`format_math` writes the same numbers as a formula would (``3``, ``2.5``)
for the one-line summary ``f(u=1, v=2) = 3``.
"""

from __future__ import annotations

import math
import re

from ..graph import TensorValue
from ..ops import np
from ..shapes import format_shape

__all__ = ["format_tensor", "format_math", "format_saved", "format_shape", "abbreviate"]

PRECISION = 4
#: arrays with more elements than this are abbreviated
MAX_ITEMS = 6

_NEWLINES = re.compile(r",?\n\s*")


def format_tensor(value, max_items: int = MAX_ITEMS) -> str:
    """A tensor's values as PyTorch prints them, on one line: ``4.``, ``0.9093``, ``[1., 2.]``."""
    return _format(value, max_items, math_style=False)


def format_math(value, max_items: int = MAX_ITEMS) -> str:
    """The same values as a formula writes them: ``3``, ``0.9093``, ``2.5``, ``[1, 2.5]``."""
    return _format(value, max_items, math_style=True)


def format_saved(value, max_items: int = MAX_ITEMS) -> str:
    """A value PyTorch saves on a backward node: a tensor, a Python number, a tuple of ints, None."""
    if type(value) is TensorValue:
        return format_tensor(float(value), max_items)
    if value is None or isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # A Python number stays a Python number (PyTorch shows ``_saved_exponent`` as 2.5).
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (tuple, list)) and all(type(v) is int or isinstance(v, np.integer) for v in value):
        return format_shape(int(v) for v in value) if isinstance(value, tuple) else str([int(v) for v in value])
    return format_tensor(value, max_items)


def abbreviate(text: str, width: int) -> str:
    """``text`` on one line, cut in the middle with ``…`` when longer than ``width``."""
    if len(text) > 4 * width + 16:
        text = text[: 2 * width] + " … " + text[-2 * width:]  # the middle is cut below anyway
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    tail = (width - 1) // 3
    return text[: width - 1 - tail] + "…" + (text[-tail:] if tail else "")


# --------------------------------------------------------------------------- internals


def _shown(a: np.ndarray, edge: int) -> np.ndarray:
    """The elements an abbreviated print shows (PyTorch picks its mode from these only)."""
    for axis, n in enumerate(a.shape):
        if n > 2 * edge:
            a = np.concatenate([a.take(range(edge), axis), a.take(range(n - edge, n), axis)], axis)
    return a


def _mode(values: np.ndarray) -> str:
    """PyTorch's _Formatter choice for a float tensor: 'int', 'fixed' or 'sci'."""
    flat = values.astype(np.float64, copy=False).ravel()
    finite = flat[np.isfinite(flat) & (flat != 0)]
    if finite.size == 0:
        return "int"
    mags = np.abs(finite)
    lo, hi = mags.min(), mags.max()
    if np.all(finite == np.ceil(finite)):
        return "sci" if hi / lo > 1000.0 or hi > 1.0e8 else "int"
    return "sci" if hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4 else "fixed"


def _element_formatter(mode: str, math_style: bool):
    def fmt(x) -> str:
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if mode == "sci":
            text = f"{x:.{PRECISION}e}"
            if math_style:
                mantissa, _, exponent = text.partition("e")
                text = _trim(mantissa) + "e" + exponent
            return text
        if mode == "int":
            if math_style:
                return f"{x:.0f}" if x != 0 else "0"
            return f"{x:.0f}."
        text = f"{x:.{PRECISION}f}"
        return _trim(text) if math_style else text

    return fmt


def _trim(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _float_mode(x: float) -> str:
    """:func:`_mode` of one value (a 0-d tensor), without numpy."""
    if x != x or x in (math.inf, -math.inf) or x == 0:
        return "int"
    m = abs(x)
    if x == math.ceil(x):
        return "sci" if m > 1.0e8 else "int"
    return "sci" if m > 1.0e8 or m < 1.0e-4 else "fixed"


def _format(value, max_items: int, math_style: bool) -> str:
    if type(value) is float:  # a 0-d tensor's value as the graph holds it
        return _element_formatter(_float_mode(value), math_style)(value)
    a = np.asarray(value)
    if a.dtype == np.bool_:
        return str(a.tolist()) if a.ndim else str(bool(a))
    if a.dtype.kind in "iu":
        if a.ndim == 0:
            return str(int(a))
        a = a.astype(np.float64)
        fmt = lambda x: str(int(x))  # noqa: E731 - integers print as integers
    elif a.dtype.kind != "f":
        return str(value)
    else:
        fmt = None
    long = a.size > max_items
    edge = 3 if a.ndim == 1 else 1
    if fmt is None:
        fmt = _element_formatter(_mode(_shown(a, edge) if long else a), math_style)
    if a.ndim == 0:
        return fmt(a[()])
    text = np.array2string(
        a,
        separator=", ",
        formatter={"float_kind": fmt},
        threshold=max_items if long else a.size + 1,
        edgeitems=edge,
        max_line_width=10**9,
    )
    text = _NEWLINES.sub(", ", text)
    if long or a.size == 0:
        text += " " + format_shape(a.shape)
    return text
