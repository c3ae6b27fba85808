"""Gradient check (``--check``): every partial against central finite differences.

As ``torch.autograd.gradcheck`` does: in float64, with a step ``eps = 1e-6``,
each partial ``∂f/∂x[i] ≈ (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps)``; a
partial passes when ``|analytical - numerical| <= atol + rtol·|numerical|``
(``atol = 1e-5``, ``rtol = 1e-3``). The analytical gradients come from a float64
trace at the same point, and each perturbed value from tracing the expression
again at the perturbed point (no backward needed there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import EvalError
from .tracing import trace_tree

EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3
#: two traces per input element: refuse more elements than this
MAX_CHECK_ELEMENTS = 4096


@dataclass
class Partial:
    """One partial derivative compared: input name, element index, both values, errors."""

    input: str
    index: tuple
    analytical: float
    numerical: float
    abs_error: float
    rel_error: float
    passed: bool


@dataclass
class CheckResult:
    """All partials compared, the largest errors, and whether every partial passed."""

    partials: list = field(default_factory=list)
    eps: float = EPS
    atol: float = ATOL
    rtol: float = RTOL

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.partials)

    @property
    def max_abs_error(self) -> float:
        return _max(p.abs_error for p in self.partials)

    @property
    def max_rel_error(self) -> float:
        return _max(p.rel_error for p in self.partials)


def _max(values) -> float:
    """The largest value; nan if any is nan (a nan partial is the worst error there is)."""
    out = 0.0
    for v in values:
        if math.isnan(v):
            return math.nan
        out = max(out, v)
    return out


def _errors(a: float, n: float, atol: float, rtol: float):
    if math.isnan(a) or math.isnan(n):
        return math.nan, math.nan, False
    if a == n:  # equal, including equal infinities
        return 0.0, 0.0, True
    diff = abs(a - n)
    rel = diff / abs(n) if n != 0 else math.inf
    return diff, rel, bool(diff <= atol + rtol * abs(n))


def gradient_check(trace, grad_output=None, eps: float = EPS, atol: float = ATOL, rtol: float = RTOL,
                   max_elements: int = MAX_CHECK_ELEMENTS) -> CheckResult:
    """Compare ``trace``'s partials with central differences in float64.

    For an output of several elements, what backward computes is the gradient of
    ``sum(grad_output * f)``; that is what is checked (``grad_output`` as given
    to :func:`gradviz.trace`; by default the gradient backward started with). Raises :class:`EvalError` when there is nothing to
    check against (a non-scalar output without ``grad_output``) or too many elements.
    """
    from .parser import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS, parse
    from .engine import backward

    g0 = trace.graph
    names = [n for n, t in g0.inputs.items() if t.requires_grad]
    total = sum(g0.inputs[n].data.size for n in names)
    if total > max_elements:
        raise EvalError(f"--check traces the expression twice per input element: {total} elements is more "
                        f"than the limit of {max_elements}")
    weights = _weights(trace, grad_output)

    source = g0.source
    tree = parse(source, max_terms=max(DEFAULT_MAX_TERMS, len(source)),
                 max_depth=max(DEFAULT_MAX_DEPTH, len(source)))
    point = {n: t.data if t.data.dtype.kind in "iu" else np.asarray(t.data, dtype=np.float64)  # int64 targets stay
             for n, t in g0.inputs.items()}
    no_grad = [n for n, t in g0.inputs.items() if not t.requires_grad]

    # analytical: a float64 trace and backward at the same point
    graph = trace_tree(tree, source, point, no_grad=no_grad, dtype="float64")
    if graph.root is not None:
        backward(graph, weights)
    analytical = {n: graph.inputs[n].grad for n in names}

    def f(at) -> float:
        out = trace_tree(tree, source, at, no_grad=no_grad, dtype="float64").output.data
        with np.errstate(all="ignore"):
            return float(np.sum(weights * out))

    result = CheckResult(eps=eps, atol=atol, rtol=rtol)
    for n in names:
        base = point[n]
        grad = analytical[n]
        for index in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[index] += eps
            minus[index] -= eps
            with np.errstate(all="ignore"):
                numerical = (f({**point, n: plus}) - f({**point, n: minus})) / (2 * eps)
            a = float(grad[index]) if grad is not None else 0.0  # no path to the output: 0
            abs_err, rel_err, ok = _errors(a, numerical, atol, rtol)
            result.partials.append(Partial(n, tuple(int(i) for i in index), a, numerical, abs_err, rel_err, ok))
    return result


def _weights(trace, grad_output):
    """The gradient backward started with, as float64 weights of the output's elements."""
    g0 = trace.graph
    out_shape = g0.output.shape
    if grad_output is None and trace.steps:
        grad_output = np.asarray(trace.steps[0].grad_in, dtype=np.float64)  # what backward started with
    if grad_output is None:
        if g0.output.data.size != 1:
            raise EvalError(f"--check needs a scalar output (this one has shape {tuple(out_shape)}) "
                            f"or --grad-output")
        return np.ones(out_shape, dtype=np.float64)
    if isinstance(grad_output, str):
        return np.ones(out_shape, dtype=np.float64)
    return np.broadcast_to(np.asarray(grad_output, dtype=np.float64), out_shape)


def check_json(result: CheckResult) -> dict:
    """The ``"check"`` section of the JSON document."""
    from .values import number

    return {
        "passed": result.passed,
        "max_abs_error": number(result.max_abs_error),
        "max_rel_error": number(result.max_rel_error),
        "eps": result.eps,
        "atol": result.atol,
        "rtol": result.rtol,
        "partials": [
            {"input": p.input, "index": list(p.index), "analytical": number(p.analytical),
             "numerical": number(p.numerical), "abs_error": number(p.abs_error),
             "rel_error": number(p.rel_error), "passed": p.passed}
            for p in result.partials
        ],
    }
