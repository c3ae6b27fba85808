"""The one place that turns numbers into text for people.

Tensor values are written exactly as PyTorch prints them (``torch/_tensor_str.py``,
recorded in ``tests/fixtures/torch_print.json``): one mode for the whole tensor —
whole numbers as ``4.``, otherwise ``precision`` decimals ``0.9093``/``2.5000``, or
scientific ``1.0000e-05`` when the magnitudes span more than 1000x, exceed 1e8 or go
below 1e-4 — every element padded to the widest, rows on lines of ``linewidth``
characters, and a tensor of more than ``threshold`` elements summarized to its
``edgeitems`` first and last items per dimension (``...`` between). The options are
PyTorch's :func:`torch.set_printoptions`: :func:`set_printoptions` and the context
manager :func:`printoptions` set them here (the CLI's ``--precision``,
``--threshold``, ``--edgeitems``).

Every view writes a tensor's value this way, on one line where it has one line for it
(``format_tensor(v, one_line=True)``): the summary ``f(u=1., v=2.) = 3.``, the tree, the
``--steps`` text and its rules with the numbers filled in (``grad·other = 1.·2. = 2.``). A 0-d
tensor is written ``4.``, what PyTorch prints inside ``tensor(4.)`` (as the tables, the tree and
the pictures write it); a Python number the expression gave (an exponent, the ``2`` of ``2*x``)
is written as Python writes it (:func:`format_saved`: ``2``, ``2.5``).

:func:`format_math` writes numbers as a formula would (``3``, ``2.5``, ``[1, 2.5]``): the JSON's
``steps[].rules[].numbers`` strings (a contract, kept as they are), SymPy's values and the
gradient check's errors (numbers, not tensors).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace

from .graph import TensorValue
from .ops import np
from .shapes import format_shape

__all__ = ["PrintOptions", "get_printoptions", "set_printoptions", "printoptions", "tensor_str",
           "tensor_repr", "format_tensor", "format_math", "format_saved", "format_shape", "abbreviate"]


@dataclass(frozen=True)
class PrintOptions:
    """PyTorch's print options (``torch.set_printoptions``), with its defaults."""

    precision: int = 4
    threshold: int = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_options = PrintOptions()


def get_printoptions() -> PrintOptions:
    """The print options in force."""
    return _options


def set_printoptions(precision: int | None = None, threshold: int | None = None, edgeitems: int | None = None,
                     linewidth: int | None = None, sci_mode: bool | None = None) -> None:
    """Set the print options, as ``torch.set_printoptions`` does (None keeps an option as it is,
    except ``sci_mode``, where None means PyTorch's automatic choice)."""
    global _options
    changes = {k: v for k, v in dict(precision=precision, threshold=threshold, edgeitems=edgeitems,
                                     linewidth=linewidth).items() if v is not None}
    for name, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    _options = replace(_options, sci_mode=sci_mode, **changes)


@contextlib.contextmanager
def printoptions(**options):
    """``with printoptions(precision=2): ...``: the options for the block, restored after."""
    global _options
    before = _options
    try:
        set_printoptions(**options)
        yield _options
    finally:
        _options = before


def format_tensor(value, max_items: int | None = None, one_line: bool = False) -> str:
    """A tensor's values as PyTorch prints them inside ``tensor(...)``: ``4.``, ``[1., 2.]``, matrices
    one row a line. ``max_items`` (default: the print threshold) summarizes a larger tensor;
    ``one_line`` joins the rows (``[[1., 2.], [3., 4.]]``) for a view that has one line for it."""
    if max_items is None:
        text = tensor_str(value)
    else:
        with printoptions(threshold=max_items):
            text = tensor_str(value)
    if one_line and type(value) is not float:
        text = " ".join(text.split()).replace("[ ", "[")
    return text


def tensor_repr(value, dtype: str = "float32") -> str:
    """``repr(tensor)`` as PyTorch writes it for a tensor of ``value``: ``tensor([1., 2.])``,
    ``tensor(4., dtype=torch.float64)``, ``tensor([], size=(2, 0))``."""
    a = value if type(value) is float else np.asarray(value)
    shape = () if type(value) is float else a.shape
    suffixes = []
    if (0 in shape and len(shape) != 1) or (0 not in shape and _options.edgeitems == 0):
        suffixes.append(f"size={format_shape(shape)}")
    if dtype != "float32":
        suffixes.append(f"dtype=torch.{dtype}")
    indent = len("tensor(")
    text = "tensor(" + tensor_str(value, indent=indent)
    last = len(text) - text.rfind("\n") + 1  # (PyTorch's _add_suffixes)
    for suffix in suffixes:
        if last + len(suffix) + 2 > _options.linewidth:
            text += ",\n" + " " * indent + suffix
            last = indent + len(suffix)
        else:
            text += ", " + suffix
            last += len(suffix) + 2
    return text + ")"


def format_math(value, max_items: int | None = None) -> str:
    """The same values as a formula writes them, on one line: ``3``, ``0.9093``, ``2.5``, ``[1, 2.5]``."""
    opts = _options if max_items is None else replace(_options, threshold=max_items)
    if type(value) is float:
        return _MathElement(_float_mode(value, opts), opts)(value)
    a = np.asarray(value)
    if a.dtype == np.bool_ or a.dtype.kind in "iu":
        return str(a.tolist())
    if a.dtype.kind != "f":
        return str(value)
    summarize = a.size > opts.threshold
    shown = _summarized(a, opts.edgeitems) if summarize else a
    fmt = _MathElement(_Formatter(shown, opts).mode, opts)
    if a.ndim == 0:
        return fmt(a[()])
    text = np.array2string(a, separator=", ", formatter={"float_kind": fmt}, max_line_width=10 ** 9,
                           threshold=opts.threshold if summarize else a.size + 1, edgeitems=max(opts.edgeitems, 1))
    text = " ".join(text.split()).replace("[ ", "[")
    return text + (" " + format_shape(a.shape) if summarize or a.size == 0 else "")


def format_saved(value, max_items: int | None = None) -> str:
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
    if isinstance(value, tuple) and any(v is None or isinstance(v, np.ndarray) for v in value):
        # IndexBackward0's indices: a tensor per indexed dim, None for a dim kept
        return "(" + ", ".join(format_saved(v, max_items) for v in value) + ("," if len(value) == 1 else "") + ")"
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


# --------------------------------------------------------------------------- PyTorch's printing


def tensor_str(value, indent: int = 0) -> str:
    """What PyTorch prints between ``tensor(`` and ``)`` for ``value`` (``_tensor_str``), its later
    lines indented for text that starts ``indent`` characters in."""
    opts = _options
    if type(value) is float:  # a 0-d tensor's value as the graph holds it
        return _Formatter.of_float(value, opts).format(value)
    a = np.asarray(value)
    if a.size == 0:
        return "[]"
    summarize = a.size > opts.threshold
    fmt = _Formatter(_summarized(a, opts.edgeitems) if summarize else a, opts)
    if a.ndim == 0:
        return fmt.format(a[()])
    return _nested(a, indent, summarize, fmt, opts)


class _Formatter:
    """PyTorch's ``_Formatter``: the mode (int, fixed, sci) and width one tensor's elements share."""

    def __init__(self, a, opts: PrintOptions):
        self.opts = opts
        self.floating = a.dtype.kind == "f"
        self.mode, self.width = "int", 1
        if not self.floating:
            self.width = max((len(str(v)) for v in a.ravel().tolist()), default=1)
            return
        flat = a.ravel()
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size:  # (none: PyTorch keeps the int mode, whatever sci_mode says)
            mags = np.abs(vals.astype(np.float64))
            self._choose(bool(np.all(vals == np.ceil(vals))), float(mags.min()), float(mags.max()), vals.tolist())

    @classmethod
    def of_float(cls, x: float, opts: PrintOptions) -> "_Formatter":
        """The formatter of a 0-d tensor, without numpy."""
        self = cls.__new__(cls)
        self.opts, self.floating, self.mode, self.width = opts, True, "int", 1
        if math.isfinite(x) and x != 0:
            self._choose(x == math.ceil(x), abs(x), abs(x), [x])
        return self

    def _choose(self, whole: bool, lo: float, hi: float, vals: list) -> None:
        p, sci = self.opts.precision, self.opts.sci_mode
        if sci is None:
            sci = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        if sci:
            self.mode, self.width = "sci", max(len(f"{v:.{p}e}") for v in vals)
        elif whole:
            self.mode, self.width = "int", max(len(f"{v:.0f}") + 1 for v in vals)
        else:
            self.mode, self.width = "fixed", max(len(f"{v:.{p}f}") for v in vals)

    def format(self, value) -> str:
        """One element, padded on the left to the tensor's width."""
        if not self.floating:
            text = str(value.item() if hasattr(value, "item") else value)
        else:
            x, p = float(value), self.opts.precision
            if self.mode == "sci":
                text = f"{x:{self.width}.{p}e}"
            elif self.mode == "int":
                text = f"{x:.0f}" + ("" if math.isinf(x) or math.isnan(x) else ".")
            else:
                text = f"{x:.{p}f}"
        return " " * (self.width - len(text)) + text


def _summarized(a, edge: int):
    """The elements a summarized print shows (``get_summarized_data``): PyTorch picks its mode from these."""
    if a.ndim == 1:
        return a if a.shape[0] <= 2 * edge else np.concatenate([a[:edge], a[a.shape[0] - edge:]])
    if edge == 0:
        return a[:0]
    for axis, n in enumerate(a.shape):
        if n > 2 * edge:
            a = np.concatenate([a.take(range(edge), axis), a.take(range(n - edge, n), axis)], axis)
    return a


def _nested(a, indent: int, summarize: bool, fmt: _Formatter, opts: PrintOptions) -> str:
    """``_tensor_str_with_formatter``: a vector on lines of ``linewidth``, higher dimensions as rows
    (the recursion is over dimensions, a handful at most)."""
    edge = opts.edgeitems
    if a.ndim == 1:
        per_line = max(1, (opts.linewidth - indent) // (fmt.width + 2))
        n = a.shape[0]
        if summarize and not edge:
            data = ["..."]
        elif summarize and n > 2 * edge:
            data = [fmt.format(v) for v in a[:edge]] + [" ..."] + [fmt.format(v) for v in a[n - edge:]]
        else:
            data = [fmt.format(v) for v in a]
        lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    n = a.shape[0]
    if summarize and n > 2 * edge:
        rows = [_nested(a[i], indent + 1, summarize, fmt, opts) for i in range(edge)] + ["..."] + \
               [_nested(a[i], indent + 1, summarize, fmt, opts) for i in range(n - edge, n)]
    else:
        rows = [_nested(a[i], indent + 1, summarize, fmt, opts) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


# --------------------------------------------------------------------------- as a formula writes it


class _MathElement:
    """One element as a formula writes it: no padding, trailing zeros dropped (``2.5``, ``3``)."""

    def __init__(self, mode: str, opts: PrintOptions):
        self.mode, self.p = mode, opts.precision

    def __call__(self, x) -> str:
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if self.mode == "sci":
            mantissa, _, exponent = f"{x:.{self.p}e}".partition("e")
            return _trim(mantissa) + "e" + exponent
        if self.mode == "int":
            return f"{x:.0f}" if x != 0 else "0"
        return _trim(f"{x:.{self.p}f}")


def _trim(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _float_mode(x: float, opts: PrintOptions) -> str:
    return _Formatter.of_float(x, opts).mode
