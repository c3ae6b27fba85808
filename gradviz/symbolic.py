"""Derivative formulas with SymPy (``--symbolic``), checked against autograd's numbers.

The SymPy expression is built from the parsed expression tree, node by node in
post-order (no recursion, and never from a string: no ``sympify``/``eval``).
Each partial derivative is simplified (SymPy's ``simplify`` for small formulas; a
cheaper ``cancel`` + ``factor_terms`` for larger ones, as ``simplify`` can take tens
of seconds), evaluated at the point in float64 (IEEE inf/nan, as PyTorch computes)
and compared with the gradient backward computed; a disagreement is reported, not hidden.

SymPy is imported here only, and this module only when ``--symbolic`` is asked
for, so other runs do not pay its start-up. Scalar inputs only: for tensor
inputs the result says so.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .graph import CONSTANTS
from .ops import ROWS
from .parser import function_name
from .parser import iter_postorder

#: expressions with more nodes than this get no formulas (SymPy gets slow)
MAX_NODES = 400
#: derivatives with more operations than this get a cheaper tidy-up than simplify(), which can take
#: tens of seconds on a 50-operation formula
SIMPLIFY_MAX_OPS = 20
#: the formulas' time budget in seconds (where a timer can run: the main thread); past it the
#: section says it gave up and the rest of the document is written
BUDGET_SECONDS = 10.0
#: powers with a larger integer exponent (or numbers with more digits) are not simplified:
#: simplify() expands (x+y)**1000000 into a million terms
MAX_SIMPLIFY_EXPONENT = 64
MAX_NUMBER_DIGITS = 200
#: autograd vs the formula's value: as torch.autograd.gradcheck's tolerances, by dtype
TOLERANCE = {"float32": (1e-3, 1e-5), "float64": (1e-7, 1e-10)}


@dataclass
class Symbolic:
    """Formulas for the output and each partial, their values at the point, and the comparison.

    ``output`` (SymPy expression or None), ``grads`` (name → simplified
    derivative), ``values`` (name → float at the point), ``autograd`` (name →
    float from backward), ``agrees`` (name → bool), ``error`` (why there are no
    formulas, or None).
    """

    output: object = None
    grads: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    autograd: dict = field(default_factory=dict)
    agrees: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True when there are formulas and every one agrees with autograd."""
        return self.error is None and all(self.agrees.values())


class Unsupported(Exception):
    """The expression uses something the symbolic path does not model."""


def _functions(sp):
    """name → builder taking SymPy arguments: each op row's own form (``Op.sympy``; a row added
    with one works here too), and the functions that are not one row."""
    fns = {row.key: partial(row.sympy, sp) for row in ROWS if row.sympy is not None}
    fns.update({
        "square": lambda x: x ** 2,  # pow(x, 2)
        "contiguous": lambda x: x,  # of a 0-d tensor: itself
        "l1_loss": lambda x, y: sp.Abs(x - y),  # (x - y).abs().mean()
    })
    return fns


_POSITIONAL = {"pow": ("input", "exponent"), "clamp": ("input", "min", "max"),
               "maximum": ("input", "other"), "minimum": ("input", "other"),
               "where": ("condition", "input", "other")}
_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow}
_RELATIONS = {"<": "StrictLessThan", "<=": "LessThan", ">": "StrictGreaterThan", ">=": "GreaterThan",
              "==": "Eq", "!=": "Ne"}
#: what the language has that a formula of scalars does not: "not available for ..."
_NOT_SYMBOLIC = {"subscript": "indexing x[...]", "slice": "slices", "list": "lists", "tuple": "tuples"}


def _number(sp, value):
    if isinstance(value, str):  # reduction='sum', approximate='tanh': not a formula's number
        raise Unsupported(f"symbolic formulas are not available for string arguments ({value!r})")
    if isinstance(value, bool):
        return sp.Integer(int(value))
    if isinstance(value, int):
        return sp.Integer(value)
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    return sp.Rational(repr(value))  # exact: 0.1 is 1/10, so formulas simplify exactly


def _rational_float(r) -> float:
    """p/q as Python's int true division rounds it (inf past the float range)."""
    try:
        return int(r.p) / int(r.q)
    except OverflowError:
        return math.inf if (r.p > 0) else -math.inf


def to_sympy(tree, symbols: dict):
    """The SymPy expression of a parsed tree; ``symbols`` maps input names to SymPy symbols."""
    import sympy as sp

    fns = _functions(sp)
    results: dict = {}
    for node in iter_postorder(tree):
        kind = node.kind
        if kind == "number":
            value = _number(sp, node.value)
        elif kind == "name":
            value = _name_value(sp, node.op, symbols)
        elif kind == "unary":
            x = results.pop(id(node.args[0]))
            value = -x if node.op == "-" else x
        elif kind == "binary":
            b = _as_number(sp, results.pop(id(node.args[1])))
            a = _as_number(sp, results.pop(id(node.args[0])))
            value = _binary_value(sp, node.op, a, b)
        elif kind == "call":
            kw = {k: results.pop(id(v)) for k, v in reversed(node.kwargs)}
            args = [results.pop(id(a)) for a in reversed(node.args)][::-1]
            value = _call_value(sp, fns, function_name(node.op), args, kw)
        elif kind == "attr" and node.op == "T":
            value = results.pop(id(node.args[0]))  # .T of a scalar is the scalar
        elif kind in _NOT_SYMBOLIC:
            raise Unsupported(f"not available for {_NOT_SYMBOLIC[kind]} (symbolic formulas are of scalars)")
        else:
            raise Unsupported(f"'{node.op}' is not supported symbolically")
        results[id(node)] = value
    out = results.pop(id(tree))
    if isinstance(out, sp.core.relational.Relational):
        raise Unsupported("not available for a comparison: its bool output has no derivatives")
    return out


def _name_value(sp, name: str, symbols: dict):
    """An input's symbol, or a constant's exact value (pi, e)."""
    if name in symbols:
        return symbols[name]
    if name == "pi":
        return sp.pi
    if name == "e":
        return sp.E
    if name in CONSTANTS:  # pragma: no cover - every constant is listed above
        return _number(sp, CONSTANTS[name])
    raise Unsupported(f"'{name}' has no value")


def _binary_value(sp, op: str, a, b):
    """``a op b`` for an arithmetic operator or a comparison (a condition for torch.where)."""
    if op in _ARITHMETIC:
        value = _ARITHMETIC[op](a, b)
    elif op in _RELATIONS:  # a condition for torch.where (issue 13)
        value = getattr(sp, _RELATIONS[op])(a, b)
    else:
        raise Unsupported(f"operator '{op}' (scalars only)")
    if value.is_Rational and value.q is not None and value.q != 1 and max(abs(value.p), value.q).bit_length() > 1100:
        # 2**15000/3**9500: beyond a float's digits the constant is the float Python folds
        # it to (the tracer's value), not an exact fraction of 4,500-digit numbers
        value = _number(sp, _rational_float(value))
    return value


def _call_value(sp, fns: dict, name: str, args: list, kw: dict):
    """``name(*args, **kw)`` as a formula; where() and clamp() as the pieces PyTorch takes."""
    if name in _POSITIONAL:
        names = _POSITIONAL[name]
        bound = dict(zip(names, args))
        bound.update(kw)
        args = [bound.get(n) for n in names]
        kw = {}
    if kw:
        raise Unsupported(f"keyword arguments of {name}()")
    if name == "where":  # the else branch at ties, as torch.where takes it
        cond, a, b = args
        if not isinstance(cond, sp.core.relational.Relational):
            raise Unsupported("not available for where() without a comparison as its condition")
        return sp.Piecewise((_as_number(sp, a), cond), (_as_number(sp, b), True))
    if name == "clamp":
        # PyTorch passes the gradient at the bounds too (min <= x <= max)
        x, lo, hi = args
        pieces = []
        if lo is not None:
            pieces.append((lo, x < lo))
        if hi is not None:
            pieces.append((hi, x > hi))
        return sp.Piecewise(*pieces, (x, True))
    if name in fns:
        return fns[name](*args)
    raise Unsupported(f"symbolic formulas are not available for {name}()")


def _as_number(sp, value):
    """A comparison used as a number (x * (x > 1)) is 1 where it holds, else 0, as a bool tensor is."""
    if isinstance(value, sp.core.relational.Relational):
        return sp.Piecewise((1, value), (0, True))
    return value


def _has_large_numbers(d) -> bool:
    """True when ``d`` has a power with a large exponent or a number of many digits, which
    simplify() and cancel() would expand (``(x+y)**1000000``, ``(x+1)**1e300``)."""
    import sympy as sp

    for e in sp.preorder_traversal(d):
        if e.is_Pow and e.exp.is_Number and abs(e.exp) > MAX_SIMPLIFY_EXPONENT:
            return True
        if e.is_Rational and max(abs(e.p), abs(e.q)).bit_length() > MAX_NUMBER_DIGITS * 3.33:
            return True
    return False


def tidy(d):
    """``d`` simplified: ``simplify`` when it is small, else ``cancel`` + ``factor_terms`` (fast);
    as it is when it holds large exponents or numbers (simplifying would expand them)."""
    import sympy as sp

    if _has_large_numbers(d):
        return d
    ops = sp.count_ops(d)
    if ops <= SIMPLIFY_MAX_OPS:
        return sp.simplify(d)
    try:
        r = sp.factor_terms(sp.cancel(d))
    except Exception:  # cancel refuses some forms (e.g. Piecewise): keep the derivative as it is
        return d
    return r if sp.count_ops(r) <= ops else d


def _as_float(value) -> float:
    try:
        c = complex(value)
    except (TypeError, ValueError):
        return math.nan
    if c.imag != 0 and not math.isnan(c.imag):
        return math.nan  # a complex value: PyTorch's real arithmetic gives nan there
    return c.real


class _Fallback(Exception):
    pass


def _float_rules(sp):
    """SymPy class → the float64 function it evaluates to (numpy: IEEE inf/nan, no exceptions)."""
    heaviside = lambda x, h0=0.5: np.where(x > 0, 1.0, np.where(x < 0, 0.0, h0))  # noqa: E731
    return {
        sp.sin: np.sin, sp.cos: np.cos, sp.tan: np.tan, sp.exp: np.exp, sp.log: np.log,
        sp.sinh: np.sinh, sp.cosh: np.cosh, sp.tanh: np.tanh, sp.asin: np.arcsin, sp.acos: np.arccos,
        sp.atan: np.arctan, sp.asinh: np.arcsinh, sp.acosh: np.arccosh, sp.atanh: np.arctanh,
        sp.sec: lambda x: 1 / np.cos(x), sp.csc: lambda x: 1 / np.sin(x), sp.cot: lambda x: 1 / np.tan(x),
        sp.sech: lambda x: 1 / np.cosh(x), sp.csch: lambda x: 1 / np.sinh(x),
        sp.coth: lambda x: 1 / np.tanh(x),
        sp.erf: lambda x: math.erf(x) if math.isfinite(x) else (np.sign(x) if not math.isnan(x) else x),
        sp.Abs: np.abs, sp.sign: np.sign, sp.Heaviside: heaviside,
        sp.Max: lambda *a: np.max(a), sp.Min: lambda *a: np.min(a),
        sp.StrictGreaterThan: np.greater, sp.GreaterThan: np.greater_equal,
        sp.StrictLessThan: np.less, sp.LessThan: np.less_equal,
        sp.Equality: np.equal, sp.Unequality: np.not_equal,
        sp.And: lambda *a: all(a), sp.Or: lambda *a: any(a), sp.Not: lambda a: not a,
    }


def evaluate(expr, point: dict) -> float:
    """``expr`` at ``point`` (symbol → float) in float64 arithmetic, as PyTorch would compute it.

    IEEE rules rather than exact ones: ``1/(2*sqrt(x))`` at 0 is inf (SymPy says
    complex infinity), ``log(-1)`` is nan. The tree is walked with an explicit stack.
    Expressions with parts this walk does not know fall back to SymPy's evalf.
    """
    import sympy as sp
    from sympy.functions.elementary.piecewise import ExprCondPair

    rules = _float_rules(sp)
    values: dict = {}
    stack = [(expr, False)]
    try:
        with np.errstate(all="ignore"):
            while stack:
                e, ready = stack.pop()
                if e in values:
                    continue
                if not ready:
                    stack.append((e, True))
                    stack.extend((a, False) for a in e.args if a not in values)
                    continue
                args = [values[a] for a in e.args]
                if e in point:
                    v = point[e]
                elif e is sp.true or e is sp.false:
                    v = bool(e)
                elif e is sp.zoo:
                    v = math.nan
                elif e.is_Number or e.is_NumberSymbol:
                    v = float(e)
                elif isinstance(e, sp.Add):
                    v = math.fsum(args) if all(map(math.isfinite, args)) else sum(args)
                elif isinstance(e, sp.Mul):
                    v = float(np.prod(np.array(args, dtype=np.float64)))
                elif isinstance(e, sp.Pow):
                    v = float(np.power(np.float64(args[0]), np.float64(args[1])))
                elif isinstance(e, sp.Piecewise):
                    v = next((val for val, cond in args if cond), math.nan)
                elif isinstance(e, ExprCondPair):
                    v = tuple(args)
                elif type(e) in rules:
                    v = rules[type(e)](*args)
                    v = bool(v) if isinstance(v, (bool, np.bool_)) else float(v)
                else:
                    raise _Fallback(type(e).__name__)
                values[e] = v
    except _Fallback:
        return _as_float(expr.evalf(subs=point))
    return float(values[expr])


class _OverBudget(BaseException):
    """Raised by the timer inside SymPy (a BaseException: SymPy's ``except Exception`` lets it by)."""


class _budget:
    """A time budget for the block: a timer (SIGALRM) where one can be set, else none."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.previous = None

    def __enter__(self):
        import signal
        import threading

        if self.seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            def expired(signum, frame):
                raise _OverBudget()

            self.previous = signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def symbolic(trace, budget: float = BUDGET_SECONDS) -> Symbolic:
    """Formulas for ``trace``'s output and its partials, evaluated and compared with autograd.

    Never raises for what the expression holds: past the time ``budget`` (seconds), or when
    SymPy cannot build, simplify or write a formula (nested too deeply, a number too long to
    print), the result's ``error`` says so.
    """
    try:
        with _budget(budget):
            out = _symbolic(trace)
            # written here, inside the budget: str() of a 5,000-digit number fails
            str(out.output), [str(d) for d in out.grads.values()]
            return out
    except _OverBudget:
        return Symbolic(error=f"gave up: the formulas took longer than {budget:g} s")
    except RecursionError:
        return Symbolic(error="gave up: the expression is nested too deeply for SymPy")
    except MemoryError:
        return Symbolic(error="gave up: out of memory building the formulas")
    except ValueError as exc:
        if "digits" in str(exc):
            return Symbolic(error="gave up: a number in the formulas has more than 4300 digits")
        raise


def _symbolic(trace) -> Symbolic:
    from .parser import parse

    g = trace.graph
    names = [n for n, t in g.inputs.items()]
    for n in names:
        if g.inputs[n].data.ndim != 0:
            return Symbolic(error=f"symbolic formulas are for scalar inputs only; {n} has shape "
                                  f"{tuple(g.inputs[n].shape)}")
    if trace.backward_error:
        return Symbolic(error=f"no gradients to compare: {trace.backward_error}")
    tree = parse(g.source, max_terms=max(len(g.source), 1), max_depth=max(len(g.source), 1))
    count = sum(1 for _ in iter_postorder(tree))
    if count > MAX_NODES:
        return Symbolic(error=f"the expression has {count} nodes; symbolic formulas are limited to {MAX_NODES}")

    import sympy as sp

    symbols = {n: sp.Symbol(n, real=True) for n in names}
    try:
        f = to_sympy(tree, symbols)
    except Unsupported as exc:
        return Symbolic(error=str(exc))
    used = f.free_symbols
    point = {symbols[n]: float(g.inputs[n].data) for n in names}
    rtol, atol = TOLERANCE.get(g.dtype, TOLERANCE["float32"])
    out = Symbolic(output=f)
    for n in names:
        t = g.inputs[n]
        if not t.requires_grad or symbols[n] not in used:
            continue
        d = tidy(sp.diff(f, symbols[n]))
        out.grads[n] = d
        value = evaluate(d, point)
        auto = float(t.grad) if t.grad is not None else math.nan
        out.values[n] = value
        out.autograd[n] = auto
        out.agrees[n] = bool(np.isclose(value, auto, rtol=rtol, atol=atol, equal_nan=True))
    return out


def symbolic_json(result: Symbolic) -> dict:
    """The ``"symbolic"`` section of the JSON document."""
    from .values import number

    return {
        "output": str(result.output) if result.output is not None else None,
        "grads": {n: str(d) for n, d in result.grads.items()},
        "values": {n: number(v) for n, v in result.values.items()},
        "autograd": {n: number(v) for n, v in result.autograd.items()},
        "agrees": dict(result.agrees),
        "passed": result.passed,
        "error": result.error,
    }
