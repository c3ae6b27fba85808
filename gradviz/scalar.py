"""The scalar fast path: large arithmetic expressions on number inputs, without numpy.

``gradviz -f chain.txt --at-file values.json --json`` on a million-term ``x0*x1 + x1*x2 + ...``
is a million tiny 0-d tensors. The general path (parser → tree → tracer → engine → JSON) builds
an object per node and runs a numpy call per value; here the same work is done in one pass over
the tokens with flat lists and Python floats:

* the tokens are read with one regular expression and evaluated as the operator-precedence
  loop reduces them (post-order, so tensors are created in the order the tracer creates them);
* values and gradients are Python floats rounded to the dtype by the op rows' ``scalar``
  forwards and the scalar ops namespaces (:class:`gradviz.ops.Float32Ops`), which give numpy's
  bits exactly; the gradient rules are the rows' own ``vjp``;
* backward runs in PyTorch's priority order, as :mod:`gradviz.engine` does;
* the ``gradviz/1`` JSON is written entry by entry, byte-identical to the general path's
  (tests/test_scalar.py compares the two on every eligible golden case and random expressions).

It takes only what it can answer exactly: inputs that are numbers, and ``+ - * /``, unary
``-``/``+``, parentheses and ``** 0|1|2``. Anything else — another operator or function, a list
input, a name without a value, a syntax error, a limit exceeded — makes :func:`fast_trace` return
None, and the general path runs (and reports any error with its own message). numpy is never
imported here: a small ``--json`` run starts in about half the time.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from array import array
from typing import Iterator, Mapping, Sequence

from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS
from .ops import OPS, SCALAR_OPS, saved_values
from .parser import _KEYWORDS

SCHEMA = "gradviz/1"


class _Unsupported(Exception):
    """Not for this path: the general path decides (and reports any error)."""


# One token per match, with the whitespace before it: (space, number, name, operator).
# Numbers and names are the general tokenizer's (ASCII digits only: anything else falls back).
_TOKEN = re.compile(
    r"(\s*)(?:([0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
    r"|([A-Za-z_][A-Za-z_0-9]*)|(\*\*|[-+*/()]))"
)
_SPACES = re.compile(r"\s*")
_BINARY = {"+": (10, False), "-": (10, False), "*": (20, False), "/": (20, False), "**": (40, True)}
_UNARY_POWER = 30
_EXPONENTS = (0, 1, 2)  # tensor ** number for these only: numpy's power is then exact (1, x, x·x)
_CHUNK = 1 << 20  # tokenize about a megabyte of text at a time
_ALPHA = {"alpha": 1}

_ADD, _SUB, _RSUB, _MUL, _DIV, _RECIPROCAL, _NEG, _POW = (
    OPS[k] for k in ("add", "sub", "rsub", "mul", "div", "reciprocal", "neg", "pow"))


def _plan(op) -> tuple:
    """Where each saved name of ``op`` comes from, in ``saved_values``' order: (name, source, arg),
    source being "input" (arg = slot index), "param" (arg = name) or "result"."""
    if op.derived is not None:
        raise AssertionError(f"{op.key}: the scalar path has no derived values")
    args = {slot: ("input", i) for i, slot in enumerate(op.inputs)}
    params = {p: ("param", p) for p in op.params}
    saved = saved_values(op, args, params, ("result", None))
    when = {name: op.inputs.index(slot) for name, slot in op.save_when.items()}
    return tuple((name, src[0], src[1], when.get(name)) for name, src in saved.items())


_PLANS = {op.key: _plan(op) for op in (_ADD, _SUB, _RSUB, _MUL, _DIV, _RECIPROCAL, _NEG, _POW)}


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


_string = json.encoder.encode_basestring  # a str as a JSON string, as json.dumps(ensure_ascii=False)


# ---------------------------------------------------------------------------
# Parse, trace and differentiate in one pass.
# ---------------------------------------------------------------------------


class ScalarTrace:
    """What :func:`fast_trace` computed: flat lists of tensors and backward functions.

    Tensors are numbered in creation order (the inputs first); functions in creation order,
    AccumulateGrad nodes among them. ``to_json``/``write_json`` give the general path's
    document byte for byte.
    """

    def __init__(self, source: str, dtype: str):
        self.source = source
        self.dtype = dtype
        self.warnings: list[str] = []
        self.backward_error = None
        self.extras: dict = {}
        self.names: list[str] = []  # the inputs (tensors 0..len-1), in --at order
        self.kept: list[bool] = []  # per input: in the document (batch mode drops unused ones)
        self.grads: list = []  # per input: its .grad (None when it has none)
        self.data: list[float] = []  # per tensor
        self.req: list[bool] = []  # per tensor: requires_grad
        self.fn: list = []  # per tensor: the function that made it (None for leaves and no-grad results)
        self.start: list = []  # per tensor: its source span (None for inputs)
        self.end: list = []
        self.f_op: list = []  # per function: the op row (None for AccumulateGrad)
        self.f_in: list = []  # per function: per input slot, a tensor index or a (number,) tuple
        self.f_params: list = []
        self.f_next: list = []  # per function: next_functions as function indices (or None)
        self.f_out: list = []  # per function: its output tensor (AccumulateGrad: its variable)
        self.output = -1
        self.root = None
        self.order: list[int] = []  # functions reachable from the root, depth-first (their ids' order)

    # --- the Trace interface the CLI uses -------------------------------------------------

    @property
    def expression(self) -> str:
        return self.source

    @property
    def value(self) -> float:
        return self.data[self.output]

    def to_json(self) -> str:
        return "".join(self.iter_json())

    def write_json(self, stream) -> None:
        for piece in self.iter_json():
            stream.write(piece)

    # --- the document ---------------------------------------------------------------------

    def iter_json(self, batch: int = 2000) -> Iterator[str]:
        data, req, fn, start, end = self.data, self.req, self.fn, self.start, self.end
        text = f32_text if self.dtype == "float32" else f64_text
        texts: list = [None] * len(data)  # each tensor's data text, written once, used up to 4 times

        def value(k: int) -> str:
            t = texts[k]
            if t is None:
                t = texts[k] = text(data[k])
            return t

        n_inputs = len(self.names)
        dropped = [0] * (n_inputs + 1)  # inputs left out before each input
        for i, kept in enumerate(self.kept):
            dropped[i + 1] = dropped[i] + (not kept)
        shift = dropped[n_inputs]

        def tid(k: int) -> str:
            return f'"t{k - (dropped[k] if k < n_inputs else shift)}"'

        fid = {f: f'"f{i}"' for i, f in enumerate(self.order)}
        grads = self.grads

        def grad_text(k: int) -> str:
            if k < n_inputs and grads[k] is not None:
                return text(grads[k])
            return "null"

        out = self.output
        out_fn = fn[out]
        yield (f'{{"schema":"{SCHEMA}","expression":{_string(self.source)},"dtype":"{self.dtype}",'
               f'"output":{{"data":{value(out)},"shape":[],"requires_grad":{_bool(req[out])},'
               f'"grad_fn":{_string(self.f_op[out_fn].torch_name) if out_fn is not None else "null"}}},'
               f'"inputs":{{')
        yield ",".join(
            f'{_string(name)}:{{"data":{value(k)},"shape":[],"requires_grad":{_bool(req[k])},"grad":{grad_text(k)}}}'
            for k, name in enumerate(self.names) if self.kept[k])
        root = "null" if self.root is None else fid[self.root]
        yield f'}},"graph":{{"root":{root},"functions":['
        f_op, f_in, f_params, f_next, f_out = self.f_op, self.f_in, self.f_params, self.f_next, self.f_out
        names = self.names

        def function(f: int) -> str:
            op = f_op[f]
            nexts = ",".join(["null" if n is None else fid[n] for n in f_next[f]])
            head = f'{{"id":{fid[f]},"name":{_string(op.torch_name) if op else _ACCUMULATE},"next_functions":[{nexts}]'
            if op is None:
                v = f_out[f]
                return f'{head},"variable":{_string(names[v])},"tensor":{tid(v)}}}'
            slots = f_in[f]
            saved = []
            for name, source, arg, when in _PLANS[op.key]:
                if when is not None and not _needs(slots[when], req):
                    saved.append(f'"{name}":null')
                elif source == "input":
                    s = slots[arg]
                    saved.append(f'"{name}":{value(s) if type(s) is int else number_text(s[0])}')
                elif source == "param":
                    saved.append(f'"{name}":{number_text(f_params[f][arg])}')
                else:  # result
                    saved.append(f'"{name}":{value(f_out[f])}')
            return f'{head},"saved":{{{",".join(saved)}}},"tensor":{tid(f_out[f])}}}'

        yield from _batched(map(function, self.order), batch)
        yield '],"tensors":['

        def tensor(k: int) -> str:
            if k < n_inputs:
                return (f'{{"id":{tid(k)},"name":{_string(names[k])},"span":null,"data":{value(k)},"shape":[],'
                        f'"requires_grad":{_bool(req[k])},"is_leaf":true,"grad_fn":null,"grad":{grad_text(k)}}}')
            f = fn[k]
            return (f'{{"id":{tid(k)},"name":null,"span":[{start[k]},{end[k]}],"data":{value(k)},"shape":[],'
                    f'"requires_grad":{_bool(req[k])},"is_leaf":{_bool(f is None)},'
                    f'"grad_fn":{"null" if f is None else fid[f]},"grad":null}}')

        kept = self.kept
        yield from _batched((tensor(k) for k in range(len(data)) if k >= n_inputs or kept[k]), batch)
        yield "]}}"


_ACCUMULATE = _string("AccumulateGrad")


def _bool(b) -> str:
    return "true" if b else "false"


def _needs(slot, req) -> bool:
    return type(slot) is int and req[slot]


def _batched(texts, batch: int) -> Iterator[str]:
    separator = ""
    chunk = []
    for t in texts:
        chunk.append(t)
        if len(chunk) >= batch:
            yield separator + ",".join(chunk)
            separator = ","
            chunk = []
    if chunk:
        yield separator + ",".join(chunk)


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
    warnings show; None means "use gradviz.trace", which then raises any error.
    """
    if dtype not in SCALAR_OPS:
        return None
    try:
        return _trace(expr, dict(at or {}), no_grad, dtype, max_terms, max_depth, drop_unused)
    except _Unsupported:
        return None


def _trace(source, at, no_grad, dtype, max_terms, max_depth, drop_unused) -> ScalarTrace:
    F = SCALAR_OPS[dtype]
    cast = F.cast
    st = ScalarTrace(source, dtype)
    no_grad_names = list(no_grad)
    no_grad = set(no_grad_names)
    names = list(at)
    index = {}
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
        st.data.append(cast(v))
        st.req.append(name not in no_grad)
    n_inputs = len(names)
    data, req, fn, start, end = st.data, st.req, st.fn, st.start, st.end
    fn.extend([None] * n_inputs)
    start.extend([None] * n_inputs)
    end.extend([None] * n_inputs)
    used = [False] * n_inputs
    f_op, f_in, f_params, f_next, f_out = st.f_op, st.f_in, st.f_params, st.f_next, st.f_out
    accumulator = [None] * n_inputs

    def edge(slot):
        """Where a gradient for this operand goes (graph.Tracer.edge)."""
        if type(slot) is not int or not req[slot]:
            return None
        f = fn[slot]
        if f is not None:
            return f
        f = accumulator[slot]
        if f is None:
            f = accumulator[slot] = len(f_op)
            f_op.append(None)
            f_in.append(())
            f_params.append(None)
            f_next.append(())
            f_out.append(slot)
        return f

    def apply(op, slots: tuple, params: dict, s: int, e: int) -> int:
        """Run a row forward (graph.Tracer.apply): one new tensor, and a function if it needs grad."""
        args = [data[x] if type(x) is int else cast(x[0]) for x in slots]
        needs = False
        for x in slots:
            if type(x) is int and req[x]:
                needs = True
        if params:
            result = op.scalar(F, *args, **{k: cast(v) for k, v in params.items()})
        else:
            result = op.scalar(F, *args)
        k = len(data)
        data.append(result)
        req.append(needs)
        start.append(s)
        end.append(e)
        if needs:
            nexts = tuple([edge(x) for x in slots])  # may create AccumulateGrad functions first
            f = len(f_op)
            f_op.append(op)
            f_in.append(slots)
            f_params.append(params)
            f_next.append(nexts)
            f_out.append(k)
            fn.append(f)
        else:
            fn.append(None)
        return k

    def operand_number(value):
        # Python numbers in tensor operations: exact in the dtype's conversion, as numpy's
        if type(value) is int and not -(1 << 53) <= value <= 1 << 53:
            raise _Unsupported
        return (value,)

    def binary(sym: str, a: tuple, b: tuple) -> tuple:
        """An operand for ``a sym b`` (graph._binary): (is_tensor, value, start, end, created)."""
        ta, va, s, _, _ = a
        tb, vb, _, e, _ = b
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
            return (False, value, s, e, ())
        if ta and tb:
            x, y = va, vb
        elif ta:
            x, y = va, operand_number(vb)
        else:
            x, y = operand_number(va), vb
        if sym == "+":
            k = apply(_ADD, (x, y) if ta else (y, x), _ALPHA, s, e)
        elif sym == "-":
            k = apply(_SUB, (x, y), _ALPHA, s, e) if ta else apply(_RSUB, (y,), {"other": va, "alpha": 1}, s, e)
        elif sym == "*":
            k = apply(_MUL, (x, y) if ta else (y, x), {}, s, e)
        elif sym == "/":
            if ta:
                k = apply(_DIV, (x, y), {}, s, e)
            else:  # number / tensor is tensor.reciprocal() * number
                r = apply(_RECIPROCAL, (y,), {}, s, e)
                k = apply(_MUL, (r, x), {}, s, e)
                return (True, k, s, e, (r, k))
        else:  # **
            if not ta or tb or type(vb) not in (int, float) or vb not in _EXPONENTS:
                raise _Unsupported
            k = apply(_POW, (x,), {"exponent": vb}, s, e)
        return (True, k, s, e, (k,))

    # --- the operator-precedence loop (parser.parse's, for this grammar) ---------------------
    operands: list[tuple] = []
    ops: list[tuple] = []  # ("b", symbol, power, right) | ("u", symbol, pos) | ("(", pos)
    depth = terms = 0
    expect_operand = True
    pos = 0
    n = len(source)

    def reduce_top():
        entry = ops.pop()
        if entry[0] == "b":
            b = operands.pop()
            a = operands.pop()
            operands.append(binary(entry[1], a, b))
        else:
            a = operands.pop()
            p = entry[2]
            if entry[1] == "+":
                operands.append((a[0], a[1], p, a[3], ()))  # +x is x itself
            elif a[0]:
                k = apply(_NEG, (a[1],), {}, p, a[3])
                operands.append((True, k, p, a[3], (k,)))
            else:
                operands.append((False, -a[1], p, a[3], ()))

    findall = _TOKEN.findall
    while pos < n:
        stop = source.find(" ", pos + _CHUNK)
        stop = n if stop < 0 else stop
        for space, num, name, op in findall(source, pos, stop):
            at_ = pos + len(space)
            text = num or name or op
            pos = at_ + len(text)
            if expect_operand:
                if name:
                    i = index.get(name)
                    if i is None or name in _KEYWORDS or name.startswith("__"):
                        raise _Unsupported
                    used[i] = True
                    terms += 1
                    operands.append((True, i, at_, pos, ()))
                    expect_operand = False
                elif num:
                    if "." in num or "e" in num or "E" in num:
                        value = float(num)
                    elif len(num) > 1 and num[0] == "0":
                        raise _Unsupported  # leading zeros: an error in the general path
                    else:
                        value = int(num)
                    if pos < n and (source[pos].isalnum() or source[pos] == "_"):
                        raise _Unsupported  # "2x"
                    terms += 1
                    operands.append((False, value, at_, pos, ()))
                    expect_operand = False
                elif op == "-" or op == "+":
                    depth += 1
                    ops.append(("u", op, at_))
                elif op == "(":
                    depth += 1
                    ops.append(("(", at_))
                else:
                    raise _Unsupported
                if terms > max_terms or depth > max_depth:
                    raise _Unsupported
            elif op in _BINARY:
                power, right = _BINARY[op]
                while ops:
                    top = ops[-1]
                    if top[0] == "b":
                        p = top[2]
                    elif top[0] == "u":
                        p = _UNARY_POWER
                    else:
                        break
                    if p > power or (p == power and not right):
                        reduce_top()
                    else:
                        break
                ops.append(("b", op, power, right))
                expect_operand = True
            elif op == ")":
                while ops and ops[-1][0] != "(":
                    reduce_top()
                if not ops:
                    raise _Unsupported
                p = ops.pop()[1]
                depth -= 1
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
        if ops[-1][0] == "(":
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
    st.root = fn[out] if fn[out] is not None else edge(out)
    st.order = _depth_first(st.root, f_next, len(f_op))
    st.grads = [None] * n_inputs
    if st.root is not None:
        _backward(st, F)
    return st


def _depth_first(root, f_next, count: int) -> list[int]:
    """Functions reachable from ``root`` in depth-first pre-order (graph.walk_functions)."""
    if root is None:
        return []
    seen = bytearray(count)
    seen[root] = 1
    order = []
    stack = [root]
    while stack:
        f = stack.pop()
        order.append(f)
        for nxt in reversed(f_next[f]):
            if nxt is not None and not seen[nxt]:
                seen[nxt] = 1
                stack.append(nxt)
    return order


def _backward(st: ScalarTrace, F) -> None:
    """engine.backward on the flat lists: the same order, the same additions, the same rules."""
    f_op, f_in, f_params, f_next, f_out = st.f_op, st.f_in, st.f_params, st.f_next, st.f_out
    data, grads = st.data, st.grads
    cast, add = F.cast, F.add
    deps = [0] * len(f_op)
    for f in st.order:
        for nxt in f_next[f]:
            if nxt is not None:
                deps[nxt] += 1
    buffers: dict[int, float] = {st.root: 1.0}
    counter = 0
    ready = [(-math.inf if f_op[st.root] is None else -st.root, 0, st.root)]
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        _, _, f = pop(ready)
        g = buffers.pop(f)
        op = f_op[f]
        if op is None:  # AccumulateGrad
            v = f_out[f]
            before = grads[v]
            grads[v] = g if before is None else add(before, g)
            continue
        slots = f_in[f]
        context = {}
        for name, source, arg, _ in _PLANS[op.key]:
            if source == "input":
                s = slots[arg]
                context[name] = data[s] if type(s) is int else cast(s[0])
            elif source == "param":
                context[name] = f_params[f][arg]
            else:
                context[name] = data[f_out[f]]
        sent = op.vjp(F, g, context)
        for nxt, g in zip(f_next[f], sent):
            if nxt is None:
                continue
            prev = buffers.get(nxt)
            buffers[nxt] = g if prev is None else add(prev, g)
            deps[nxt] -= 1
            if deps[nxt] == 0:
                counter += 1
                push(ready, (-math.inf if f_op[nxt] is None else -nxt, counter, nxt))
