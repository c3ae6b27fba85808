"""The scalar fast path: large expressions on number inputs, in flat arrays.

``gradviz -f chain.txt --at-file values.json --json`` on a million-term ``x0*x1 + x1*x2 + ...``
is a million tiny 0-d tensors. The general path (parser → tree → tracer → engine → JSON) builds
an object per node and runs a numpy call per value; here the same work is done in one pass over
the tokens, with one array entry per tensor:

* the tokens are read with one regular expression and evaluated as the operator-precedence
  loop reduces them (post-order, so tensors are created in the order the tracer creates them);
* arithmetic values and gradients are Python floats rounded to the dtype by the op rows'
  ``scalar`` forwards and the scalar ops namespaces (:class:`gradviz.ops.Float32Ops`), which
  give numpy's bits exactly; the gradient rules are the rows' own ``vjp``;
* functions of one tensor (``sin(x)``, ``exp(x)``...) and ``x ** 3`` run their rows' own numpy
  forward and rule on numpy scalars (numpy is imported only then);
* backward runs in PyTorch's priority order, as :mod:`gradviz.engine` does;
* the ``gradviz/1`` JSON is written entry by entry, byte-identical to the general path's
  (tests/test_scalar.py compares the two on tables, every eligible golden case and random
  expressions).

It takes only what it can answer exactly: inputs that are numbers; ``+ - * /``, unary
``-``/``+``, parentheses, ``tensor ** number``, and the one-tensor functions as ``f(x)``,
``torch.f(x)`` or ``x.f()``. Anything else — tensors, ``@``, reductions, other methods and
attributes, a name without a value,
a syntax error, a limit exceeded — makes :func:`fast_trace` return None, and the general path
runs (and reports any error with its own message). An arithmetic ``--json`` run never imports
numpy, so it starts in about half the time.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from array import array
from typing import Iterator, Mapping, Sequence

from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS
from .ops import OPS, SCALAR_OPS, UNARY_FUNCTIONS, NumpyOps, saved_values
from .parser import _KEYWORDS, BINARY, MAX_INT_DIGITS, UNARY_POWER, check_terms, function_name

SCHEMA = "gradviz/1"


class _Unsupported(Exception):
    """Not for this path: the general path decides (and reports any error)."""


# One token per match, with the whitespace before it: (space, number, name, operator, other).
# Numbers and names are the general tokenizer's (ASCII digits only: anything else falls back).
# Every run of whitespace ends in a token, another character or the end, so no match is ever
# retried from a later position (which made long runs of spaces quadratic).
# A name may be dotted after "torch" (torch.sin, torch.nn.functional.relu); an operator may be a
# method call without arguments, ".sin()".
_TOKEN = re.compile(
    r"(\s*)(?:([0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
    r"|(torch(?:\.[A-Za-z_][A-Za-z_0-9]*)+|[A-Za-z_][A-Za-z_0-9]*)"
    r"|(\*\*|\.\s*[A-Za-z_][A-Za-z_0-9]*\s*\(\s*\)|[-+*/()])|(\S)|\Z)"
)
_SPACES = re.compile(r"\s*")
_EXPONENTS = (0, 1, 2)  # tensor ** these in Python floats (numpy's power is then exact); others in numpy
_CHUNK = 1 << 20  # tokenize about a megabyte of text at a time
_ALPHA = {"alpha": 1}


class _Row:
    """An op row as this path stores it: the row, its code, and which parameter (if any) holds
    the Python number of the operation (``x - 2`` keeps 2 in slot ``other``; ``2 - x``, rsub,
    keeps it as the parameter ``other``; ``x ** 2`` as ``exponent``)."""

    __slots__ = ("op", "code", "number_param", "plan", "name_text", "context", "numpy", "fixed_saved")

    def __init__(self, code: int, key: str, number_param: str | None, numpy: bool = False):
        self.op = OPS[key]
        self.code = code
        self.number_param = number_param
        #: the row's own numpy forward and rule, run on numpy scalars (sin, exp, x**3...: only
        #: numpy gives numpy's bits); always so for rows without a ``scalar`` forward
        self.numpy = numpy or self.op.scalar is None
        if self.numpy and (self.op.inputs != ("self",) or set(self.op.params) - {number_param}):
            raise AssertionError(f"{key}: the scalar path runs one-tensor rows only")
        self.plan = _plan(self.op)
        self.name_text = _string(self.op.torch_name)
        #: the plan for the gradient rule's values: (name, kind) with kind 0/1 an input slot,
        #: 2 the result, 3 alpha (always 1), 4 the operation's number (``other``, ``exponent``)
        self.context = tuple(
            (name, arg if source == "input" else 2 if source == "result" else 3 if arg == "alpha" else 4)
            for name, source, arg, _ in self.plan)
        if any(name == "alpha" and self.params(None).get("alpha") != 1 for name, _ in self.context):
            raise AssertionError("alpha is 1 in every row this path runs")
        #: the saved values' text when it is the same for every use of the row (add: alpha=1)
        self.fixed_saved = None
        if all(kind == 3 for _, kind in self.context) and not any(when is not None for *_, when in self.plan):
            self.fixed_saved = ",".join(f'"{name}":1' for name, _ in self.context)

    def params(self, number) -> dict:
        """The row's parameters, as graph._binary passes them."""
        key = self.op.key
        if key in ("add", "sub"):
            return _ALPHA
        if key == "rsub":
            return {"other": number, "alpha": 1}
        if key == "pow":
            return {"exponent": number}
        return {}


def _plan(op) -> tuple:
    """Where each saved name of ``op`` comes from, in ``saved_values``' order:
    (name, source, arg, save_when slot) with source "input" (arg = slot index), "param"
    (arg = its name) or "result"."""
    if op.derived is not None:
        raise AssertionError(f"{op.key}: the scalar path has no derived values")
    args = {slot: ("input", i) for i, slot in enumerate(op.inputs)}
    params = {p: ("param", p) for p in op.params}
    saved = saved_values(op, args, params, ("result", None))
    when = {name: op.inputs.index(slot) for name, slot in op.save_when.items()}
    return tuple((name, src[0], src[1], when.get(name)) for name, src in saved.items())


_string = json.encoder.encode_basestring  # a str as a JSON string, as json.dumps(ensure_ascii=False)
_ALPHA = {"alpha": 1}
# code 0 is a leaf (an input); a tensor's code says which row made it
_ROWS = (None,) + tuple(_Row(i + 1, key, param) for i, (key, param) in enumerate(
    (("add", None), ("sub", None), ("rsub", "other"), ("mul", None), ("div", None),
     ("reciprocal", None), ("neg", None), ("pow", "exponent"))
    + tuple((key, None) for key in UNARY_FUNCTIONS if key not in ("reciprocal", "neg"))))
_ROWS += (_Row(len(_ROWS), "pow", "exponent", numpy=True),)  # x ** 3, x ** 0.5...: numpy's power
_ADD, _SUB, _RSUB, _MUL, _DIV, _RECIPROCAL, _NEG, _POW = _ROWS[1:9]
_POW_NUMPY = _ROWS[-1]
_TENSOR_TENSOR = {"+": _ADD, "-": _SUB, "*": _MUL, "/": _DIV}
#: functions called by name, f(x), with one tensor: graph.FUNCTIONS' one-row entries
_CALLS = {row.op.key: row for row in _ROWS[1:] if row.op.key in UNARY_FUNCTIONS}


class _NumpyScalarOps:
    """``F`` for the numpy rows' rules: each call runs :class:`gradviz.ops.NumpyOps` on numpy
    scalars of the dtype (Python numbers become what numpy makes of a weak scalar), and gives
    back a Python float (or bool, for masks). numpy is imported only when such a row is used;
    its floating-point warnings are off while the scalar path runs, as the general path's are.
    """

    def __init__(self, dtype: str):
        import numpy

        self._numpy = numpy
        self.scalar = getattr(numpy, dtype)
        self.saved_errors = numpy.seterr(all="ignore")

    def restore(self) -> None:
        self._numpy.seterr(**self.saved_errors)

    def forward(self, row: _Row, x: float, params: dict):
        return float(row.op.forward(self.scalar(x), **params))

    def __getattr__(self, name: str):
        rule = getattr(NumpyOps, name)
        scalar, asarray, bool_ = self.scalar, self._numpy.asarray, self._numpy.bool_

        def op(*args):
            r = asarray(rule(*[scalar(a) if type(a) is float or type(a) is int else a for a in args]))
            return bool(r) if r.dtype == bool_ else float(r)

        setattr(self, name, op)
        return op


# ---------------------------------------------------------------------------
# Numbers as JSON text, as gradviz.render.jsondoc writes them.
# ---------------------------------------------------------------------------

_F32 = array("f", [0.0])
_SMALLEST_NORMAL_F32 = 1.1754943508222875e-38


def f32_text(v: float) -> str:
    """A float32 value's JSON text: the shortest decimal that reads back to it in float32
    (numpy's ``str(np.float32(v))``: 0.1, not 0.10000000149), as a JSON number; nan and ±inf
    as the strings the schema uses."""
    if v != v:
        return '"NaN"'
    if v == 0:
        return repr(v)  # 0.0 or -0.0
    if v in (math.inf, -math.inf):
        return '"Infinity"' if v > 0 else '"-Infinity"'
    a = abs(v)
    if a < _SMALLEST_NORMAL_F32 or math.frexp(a)[0] == 0.5:
        return _f32_text_careful(v)
    # A float32 interval here is symmetric, so if p digits read back, so do p + 1: find the
    # shortest from 8 down (most values need 8 or 9 digits).
    b = _F32
    f8 = float("%.8g" % v)
    b[0] = f8
    if b[0] != v:
        return repr(float("%.9g" % v))
    f7 = float("%.7g" % v)
    b[0] = f7
    if b[0] != v:
        return repr(f8)
    # Six significant digits are always finer than a float32 interval is wide, so when the
    # shortest has at most 6 digits it is '%.6g' (which drops trailing zeros).
    f6 = float("%.6g" % v)
    b[0] = f6
    return repr(f6 if b[0] == v else f7)


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
    if v != v:
        return '"NaN"'
    if v in (math.inf, -math.inf):
        return '"Infinity"' if v > 0 else '"-Infinity"'
    return repr(v)


def number_text(x) -> str:
    """A Python number as given (a saved int or float parameter)."""
    if type(x) is int:
        return repr(x)
    return f64_text(float(x))


# ---------------------------------------------------------------------------
# Parse, trace and differentiate in one pass.
# ---------------------------------------------------------------------------



_MEMO = 1 << 16  # distinct values whose text is remembered while writing a document


class ScalarTrace:
    """What :func:`fast_trace` computed, as flat arrays with one entry per tensor.

    Tensors are numbered in creation order, the inputs first. A tensor that requires grad has
    exactly one backward function, numbered as the tensor: an input's AccumulateGrad, or the
    ``grad_fn`` of an operation's result. So functions are created in tensor order, which is
    the order PyTorch's ``sequence_nr`` gives them, and ``next_functions`` need not be stored:
    an operand that requires grad leads to its own function, one that does not to None.
    ``to_json``/``write_json`` give the general path's document byte for byte.
    """

    def __init__(self, source: str, dtype: str):
        self.source = source
        self.dtype = dtype
        self.warnings: list[str] = []
        self.backward_error = None
        self.extras: dict = {}
        self.names: list[str] = []  # the inputs, in --at order (tensors 0 .. len - 1)
        self.kept: list[bool] = []  # per input: in the document (batch mode drops unused ones)
        self.grads: list = []  # per input: its .grad after backward (None when it has none)
        self.data = array("d")  # per tensor: its value (a float32 value when the dtype is)
        self.req = bytearray()  # per tensor: requires_grad
        self.code = bytearray()  # per tensor: the _ROWS index of the row that made it (0: an input)
        self.a = array("q")  # per tensor: its first operand, a tensor (-1 for an input)
        self.b = array("q")  # its second: a tensor, -1 for a Python number, -2 for none
        self.numbers: dict[int, object] = {}  # tensor -> the Python number of its operation
        self.start = array("q")  # per tensor: the span of source text it holds (-1 for inputs)
        self.end = array("q")
        self.output = -1
        self.root: int | None = None  # the function backward starts from (None: nothing needs grad)
        self.order = array("q")  # functions reachable from the root, depth-first: ids f0, f1, ...

    @property
    def expression(self) -> str:
        return self.source

    @property
    def value(self) -> float:
        """The output's value."""
        return self.data[self.output]

    def grad(self, name: str):
        """An input's ``.grad`` (a float, or None)."""
        return self.grads[self.names.index(name)]

    def next_functions(self, f: int) -> tuple:
        """Function ``f``'s next_functions, as function numbers (None for no edge)."""
        if self.code[f] == 0:
            return ()
        x, y, req = self.a[f], self.b[f], self.req
        first = x if req[x] else None
        if y == -2:
            return (first,)
        return (first, y if y >= 0 and req[y] else None)

    def to_json(self) -> str:
        """The ``gradviz/1`` document, byte-identical to the general path's ``Trace.to_json()``."""
        return "".join(self.iter_json())

    def write_json(self, stream) -> None:
        for piece in self.iter_json():
            stream.write(piece)

    def iter_json(self, batch: int = 4096) -> Iterator[str]:
        """The document in pieces of ``batch`` entries (it never exists whole in memory)."""
        data, req, code, a, b, numbers = self.data, self.req, self.code, self.a, self.b, self.numbers
        start, end, names, grads, kept = self.start, self.end, self.names, self.grads, self.kept
        text = f32_text if self.dtype == "float32" else f64_text
        memo: dict[float, str] = {}

        def value(v: float) -> str:
            t = memo.get(v)
            if t is None:
                t = text(v)
                if v == v and v != 0 and len(memo) < _MEMO:  # 0.0 and -0.0 are equal keys
                    memo[v] = t
            return t

        n_inputs = len(names)
        dropped = [0] * (n_inputs + 1)  # inputs left out before each input
        for i in range(n_inputs):
            dropped[i + 1] = dropped[i] + (not kept[i])
        shift = dropped[n_inputs]
        fpos = array("q", bytes(8 * len(data)))
        for i, f in enumerate(self.order):
            fpos[f] = i

        def grad_text(k: int) -> str:
            g = grads[k]
            return "null" if g is None else value(g)

        quoted = [_string(name) for name in names]
        memo_get = memo.get
        # the inputs' texts, each used up to four times (input, tensor, every function saving it)
        data_text = [value(data[k]) for k in range(n_inputs)]
        grad_text = [grad_text(k) for k in range(n_inputs)]

        out = self.output
        yield (f'{{"schema":"{SCHEMA}","expression":{_string(self.source)},"dtype":"{self.dtype}",'
               f'"output":{{"data":{value(data[out])},"shape":[],"requires_grad":{_bool(req[out])},'
               f'"grad_fn":{_ROWS[code[out]].name_text if code[out] and req[out] else "null"}}},"inputs":{{')
        yield ",".join(
            f'{quoted[k]}:{{"data":{data_text[k]},"shape":[],"requires_grad":{_bool(req[k])},'
            f'"grad":{grad_text[k]}}}'
            for k in range(n_inputs) if kept[k])
        yield f'}},"graph":{{"root":{"null" if self.root is None else chr(34) + "f0" + chr(34)},"functions":['

        order = self.order
        for lo in range(0, len(order), batch):
            parts = []
            for f in order[lo:lo + batch]:
                c = code[f]
                if c == 0:
                    parts.append(f'{{"id":"f{fpos[f]}","name":"AccumulateGrad","next_functions":[],'
                                 f'"variable":{quoted[f]},"tensor":"t{f - dropped[f]}"}}')
                    continue
                row = _ROWS[c]
                x, y = a[f], b[f]
                nexts = f'"f{fpos[x]}"' if req[x] else "null"
                if y != -2:
                    nexts += f',"f{fpos[y]}"' if y >= 0 and req[y] else ",null"
                saved = row.fixed_saved
                if saved is not None:
                    parts.append(f'{{"id":"f{fpos[f]}","name":{row.name_text},"next_functions":[{nexts}],'
                                 f'"saved":{{{saved}}},"tensor":"t{f - shift}"}}')
                    continue
                saved = []
                for name, source, arg, when in row.plan:
                    if when is not None and not ((x if when == 0 else y) >= 0 and req[x if when == 0 else y]):
                        saved.append(f'"{name}":null')
                    elif source == "input":
                        slot = x if arg == 0 else y
                        if slot < 0:
                            saved.append(f'"{name}":{number_text(numbers[f])}')
                        elif slot < n_inputs:
                            saved.append(f'"{name}":{data_text[slot]}')
                        else:
                            v = data[slot]
                            saved.append(f'"{name}":{memo_get(v) or value(v)}')
                    elif source == "param":
                        saved.append(f'"{name}":{number_text(row.params(numbers.get(f))[arg])}')
                    else:  # the result
                        saved.append(f'"{name}":{value(data[f])}')
                parts.append(f'{{"id":"f{fpos[f]}","name":{row.name_text},"next_functions":[{nexts}],'
                             f'"saved":{{{",".join(saved)}}},"tensor":"t{f - shift}"}}')
            yield ("," if lo else "") + ",".join(parts)
        yield '],"tensors":['

        first = True
        for lo in range(0, len(data), batch):
            parts = []
            for k in range(lo, min(lo + batch, len(data))):
                if k < n_inputs:
                    if kept[k]:
                        parts.append(
                            f'{{"id":"t{k - dropped[k]}","name":{quoted[k]},"span":null,'
                            f'"data":{data_text[k]},"shape":[],"requires_grad":{_bool(req[k])},'
                            f'"is_leaf":true,"grad_fn":null,"grad":{grad_text[k]}}}')
                    continue
                v = data[k]
                t = memo_get(v) or value(v)
                if req[k]:
                    parts.append(
                        f'{{"id":"t{k - shift}","name":null,"span":[{start[k]},{end[k]}],'
                        f'"data":{t},"shape":[],"requires_grad":true,"is_leaf":false,'
                        f'"grad_fn":"f{fpos[k]}","grad":null}}')
                else:
                    parts.append(
                        f'{{"id":"t{k - shift}","name":null,"span":[{start[k]},{end[k]}],'
                        f'"data":{t},"shape":[],"requires_grad":false,"is_leaf":true,'
                        f'"grad_fn":null,"grad":null}}')
            if parts:
                yield ("" if first else ",") + ",".join(parts)
                first = False
        yield "]}}"


def _bool(b) -> str:
    return "true" if b else "false"


def fast_trace(
    expr: str,
    at: Mapping[str, object] | None = None,
    no_grad: Sequence[str] = (),
    dtype: str = "float32",
    max_terms: int = DEFAULT_MAX_TERMS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    drop_unused: bool = False,
) -> ScalarTrace | None:
    """Trace ``expr`` at ``at`` on the scalar fast path; None when it is not for this path.

    Arguments as :func:`gradviz.trace`'s (without a start gradient: the output is a scalar).
    A result is what ``gradviz.trace(..., record_steps=False)`` gives, as far as its JSON and
    warnings show; None means "use gradviz.trace", which then raises any error (except a
    --max-terms ParseError, raised here before any work, as gradviz.trace would raise it).
    """
    if dtype not in SCALAR_OPS or not isinstance(expr, str):
        return None
    check_terms(expr, max_terms)  # before any work (the general path's ParseError)
    numpy_ops: list = []  # the numpy rows' F, once one is used
    try:
        return _trace(expr, dict(at or {}), list(no_grad), dtype, max_terms, max_depth, drop_unused, numpy_ops)
    except _Unsupported:
        return None
    finally:
        for ops in numpy_ops:
            ops.restore()


def _trace(source, at, no_grad_names, dtype, max_terms, max_depth, drop_unused, numpy_ops) -> ScalarTrace:
    F = SCALAR_OPS[dtype]
    cast = F.cast
    st = ScalarTrace(source, dtype)
    no_grad = set(no_grad_names)
    names = list(at)
    index = {}
    data, req, code, a_, b_, numbers, start, end = st.data, st.req, st.code, st.a, st.b, st.numbers, st.start, st.end
    for i, name in enumerate(names):
        v = at[name]
        if type(v) is int:
            try:
                v = float(v)
            except OverflowError:
                raise _Unsupported from None
        elif type(v) is not float:
            raise _Unsupported  # lists, bools, arrays: the general path
        index[name] = i
        data.append(cast(v))
        req.append(name not in no_grad)
    n_inputs = len(names)
    code.extend(bytes(n_inputs))
    for column in (a_, b_, start, end):
        column.extend([-1] * n_inputs)
    used = [False] * n_inputs

    def apply(row: _Row, x: int, y: int, number, s: int, e: int) -> int:
        """graph.Tracer.apply for one row: x is a tensor, y a tensor, -1 (``number``) or -2 (none)."""
        xv = data[x]
        if row.numpy:
            if not numpy_ops:
                numpy_ops.append(_NumpyScalarOps(dtype))
            params = row.params(number) if row.number_param else {}
            result = cast(numpy_ops[0].forward(row, xv, params))
            needs = req[x]
        elif row.number_param is not None:
            params = row.params(number)
            result = row.op.scalar(F, xv, **{k: cast(v) for k, v in params.items()})
            needs = req[x]
        elif y == -2:
            result = row.op.scalar(F, xv)
            needs = req[x]
        elif y == -1:
            result = row.op.scalar(F, xv, cast(number))
            needs = req[x]
        else:
            result = row.op.scalar(F, xv, data[y])
            needs = req[x] or req[y]
        k = len(data)
        data.append(result)
        req.append(needs)
        code.append(row.code)
        a_.append(x)
        b_.append(y)
        start.append(s)
        end.append(e)
        if number is not None:
            numbers[k] = number
        return k

    def binary(sym: str, left: tuple, right: tuple) -> tuple:
        """The operand ``left sym right`` gives (graph._binary): (is_tensor, value, start, end, created)."""
        ta, va, s, _, _ = left
        tb, vb, _, e, _ = right
        if not ta and not tb:
            try:
                if sym == "+":
                    value = va + vb
                elif sym == "-":
                    value = va - vb
                elif sym == "*":
                    value = va * vb
                elif sym == "/" and vb != 0:
                    value = va / vb
                else:
                    raise _Unsupported  # ** and division by zero: the general path folds and reports
            except (OverflowError, ZeroDivisionError):
                raise _Unsupported from None
            if type(value) is int and value.bit_length() > 1100:
                raise _Unsupported  # growing ints: the general path bounds them
            return (False, value, s, e, ())
        if ta and tb and sym != "**":  # the common case, apply() inlined: tensor (+ - * /) tensor
            row = _TENSOR_TENSOR[sym]
            k = len(data)
            data.append(row.op.scalar(F, data[va], data[vb]))
            req.append(req[va] or req[vb])
            code.append(row.code)
            a_.append(va)
            b_.append(vb)
            start.append(s)
            end.append(e)
            return (True, k, s, e, (k,))
        number = None
        if not (ta and tb):
            number = vb if ta else va
            if type(number) is int and not -(1 << 53) <= number <= 1 << 53:
                raise _Unsupported  # its conversion to the dtype could round twice
        if sym == "+":
            k = apply(_ADD, va, vb if tb else -1, number, s, e) if ta else apply(_ADD, vb, -1, number, s, e)
        elif sym == "-":
            k = apply(_SUB, va, vb if tb else -1, number, s, e) if ta else apply(_RSUB, vb, -2, number, s, e)
        elif sym == "*":
            k = apply(_MUL, va, vb if tb else -1, number, s, e) if ta else apply(_MUL, vb, -1, number, s, e)
        elif sym == "/":
            if ta:
                k = apply(_DIV, va, vb if tb else -1, number, s, e)
            else:  # number / tensor is tensor.reciprocal() * number
                r = apply(_RECIPROCAL, vb, -2, None, s, e)
                k = apply(_MUL, r, -1, number, s, e)
                return (True, k, s, e, (r, k))
        else:  # **
            if not ta or tb:
                raise _Unsupported  # tensor ** tensor, number ** tensor: the general path
            k = apply(_POW if vb in _EXPONENTS else _POW_NUMPY, va, -2, vb, s, e)
        return (True, k, s, e, (k,))

    # --- the operator-precedence loop (parser.parse's, for this grammar) ---------------------
    operands: list[tuple] = []  # (is_tensor, tensor index or number, start, end, tensors it made)
    ops: list[tuple] = []  # ("b", symbol, power, right) | ("u", symbol, pos) | ("(", pos)
    depth = terms = 0
    expect_operand = True
    call_paren = False  # a function's name was read: its '(' comes next
    pos = 0
    n = len(source)

    def reduce_top():
        entry = ops.pop()
        if entry[0] == "b":
            right = operands.pop()
            operands.append(binary(entry[1], operands.pop(), right))
            return
        is_t, v, _, e, created = operands.pop()
        p = entry[2]
        if entry[1] == "+":
            operands.append((is_t, v, p, e, ()))  # +x is x itself
        elif is_t:
            k = apply(_NEG, v, -2, None, p, e)
            operands.append((True, k, p, e, (k,)))
        else:
            operands.append((False, -v, p, e, ()))

    findall = _TOKEN.findall
    while pos < n:
        stop = source.find(" ", pos + _CHUNK)
        stop = n if stop < 0 else stop
        for space, num, name, op, other in findall(source, pos, stop):
            here = pos + len(space)
            text = num or name or op
            if not text:
                if other:
                    raise _Unsupported  # a character this path does not take
                pos = here  # whitespace at the end of the chunk
                continue
            pos = here + len(text)
            if expect_operand:
                if name:
                    i = index.get(name)
                    if i is None:  # a function call, f(x), or something for the general path
                        row = _CALLS.get(function_name(name))
                        if row is None or _SPACES.match(source, pos).end() != source.find("(", pos):
                            raise _Unsupported
                        depth += 1
                        ops.append(("c", row, here))
                        call_paren = True
                        if depth > max_depth:
                            raise _Unsupported
                        continue
                    if name in _KEYWORDS or name.startswith("__"):
                        raise _Unsupported
                    used[i] = True
                    terms += 1
                    operands.append((True, i, here, pos, ()))
                    expect_operand = False
                elif num:
                    if "." in num or "e" in num or "E" in num:
                        value = float(num)
                    elif len(num) > 1 and num[0] == "0" or len(num) > MAX_INT_DIGITS:
                        raise _Unsupported  # leading zeros, 4,301 digits: an error in the general path
                    else:
                        value = int(num)
                    if pos < n and (source[pos].isalnum() or source[pos] == "_"):
                        raise _Unsupported  # "2x"
                    terms += 1
                    operands.append((False, value, here, pos, ()))
                    expect_operand = False
                elif op == "-" or op == "+":
                    depth += 1
                    ops.append(("u", op, here))
                elif op == "(":
                    if call_paren:  # the call's own parenthesis, counted with the call
                        call_paren = False
                        continue
                    depth += 1
                    ops.append(("(", here))
                else:
                    raise _Unsupported
                if terms > max_terms or depth > max_depth:
                    raise _Unsupported
            elif op in BINARY:  # ("@" never comes: it is not among this path's tokens)
                power, right = BINARY[op]
                while ops:
                    top = ops[-1]
                    kind = top[0]
                    if kind == "b":
                        p = top[2]
                    elif kind == "u":
                        p = UNARY_POWER
                    else:  # "(" or a call
                        break
                    if p > power or (p == power and not right):
                        reduce_top()
                    else:
                        break
                ops.append(("b", op, power, right))
                expect_operand = True
            elif op[:1] == ".":  # x.f(): the function of the operand just read
                row = _CALLS.get(op[1:op.index("(")].strip())
                is_t, v, p, _, _ = operands.pop()
                if row is None or not is_t or depth + 1 > max_depth:
                    raise _Unsupported
                k = apply(row, v, -2, None, p, pos)
                operands.append((True, k, p, pos, (k,)))
            elif op == ")":
                while ops and ops[-1][0] in "bu":
                    reduce_top()
                if not ops:
                    raise _Unsupported
                marker = ops.pop()
                depth -= 1
                if marker[0] == "c":  # f(x): one tensor argument
                    is_t, v, _, _, _ = operands.pop()
                    if not is_t:
                        raise _Unsupported  # torch.sin(2) is an error in the general path
                    p = marker[2]
                    k = apply(marker[1], v, -2, None, p, pos)
                    operands.append((True, k, p, pos, (k,)))
                    continue
                p = marker[1]
                is_t, v, _, _, created = operands.pop()
                for k in created:  # the tensors of the node the parentheses enclose get their span
                    start[k] = p
                    end[k] = pos
                operands.append((is_t, v, p, pos, created))
            else:
                raise _Unsupported  # an operand after an operand, or '(' after one (a call)
        if pos < stop:  # only whitespace may be left: else a character this path does not take
            pos = _SPACES.match(source, pos, stop).end()
            if pos != stop:
                raise _Unsupported
    if expect_operand:
        raise _Unsupported
    while ops:
        if ops[-1][0] in "(c":
            raise _Unsupported
        reduce_top()
    is_t, out, _, _, _ = operands.pop()
    if not is_t:
        raise _Unsupported  # a constant expression

    # --- inputs: unused ones warned about or dropped (result.trace) --------------------------
    st.names = names
    if drop_unused:
        st.kept = used
    else:
        st.kept = [True] * n_inputs
        used_names = {name for i, name in enumerate(names) if used[i]}
        st.warnings = [f"warning: --at {name}=... is not used by the expression"
                       for i, name in enumerate(names) if not used[i]]
        st.warnings += [f"warning: --no-grad {name} is not used by the expression"
                        for name in no_grad_names if name not in used_names]
    st.output = out
    st.root = out if req[out] else None
    st.grads = [None] * n_inputs
    if st.root is not None:
        st.order = _depth_first(st)
        _backward(st, F, numpy_ops[0] if numpy_ops else None)
    return st


def _depth_first(st: ScalarTrace) -> array:
    """Functions reachable from the root in depth-first pre-order (graph.walk_functions)."""
    code, a, b, req = st.code, st.a, st.b, st.req
    seen = bytearray(len(code))
    seen[st.root] = 1
    order = array("q")
    stack = [st.root]
    while stack:
        f = stack.pop()
        order.append(f)
        if code[f]:
            y = b[f]
            if y >= 0 and req[y] and not seen[y]:
                seen[y] = 1
                stack.append(y)
            x = a[f]
            if req[x] and not seen[x]:
                seen[x] = 1
                stack.append(x)
    return order


def _backward(st: ScalarTrace, F, numpy_ops=None) -> None:
    """engine.backward on the arrays: the same order, the same additions, the rows' own rules."""
    code, a, b, req, data, numbers, grads = st.code, st.a, st.b, st.req, st.data, st.numbers, st.grads
    cast, add = F.cast, F.add
    deps = array("q", bytes(8 * len(code)))
    for f in st.order:
        if code[f]:
            deps[a[f]] += req[a[f]]
            y = b[f]
            if y >= 0 and req[y]:
                deps[y] += 1
    # Ready operations run latest-created first (engine.backward's -sequence_nr order): the
    # queue holds -f. An input's AccumulateGrad runs as soon as its last gradient has arrived,
    # before any operation (PyTorch gives it the highest priority); it only stores that sum in
    # the input's .grad, so it is done right there instead of through the queue.
    root = st.root
    if code[root] == 0:  # the output is an input itself
        grads[root] = 1.0
        return
    buffers: dict[int, float] = {root: 1.0}
    ready = [-root]
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        f = -pop(ready)
        g = buffers.pop(f)
        c = code[f]
        row = _ROWS[c]
        x, y = a[f], b[f]
        context = {}
        for name, kind in row.context:
            if kind == 0:
                context[name] = data[x]
            elif kind == 1:
                context[name] = data[y] if y >= 0 else cast(numbers[f])
            elif kind == 2:
                context[name] = data[f]
            else:
                context[name] = 1 if kind == 3 else numbers[f]
        if row.numpy:  # the rule on numpy scalars; what it sends is the dtype's, as the engine makes it
            sent = [cast(g) for g in row.op.vjp(numpy_ops, g, context)]
        else:
            sent = row.op.vjp(F, g, context)
        for slot, g in zip((x, y), sent):
            if slot < 0 or not req[slot]:
                continue
            prev = buffers.get(slot)
            buffers[slot] = g if prev is None else add(prev, g)
            deps[slot] -= 1
            if deps[slot] == 0:
                if code[slot] == 0:  # AccumulateGrad: the input's .grad is the sum
                    grads[slot] = buffers.pop(slot)
                else:
                    push(ready, -slot)
