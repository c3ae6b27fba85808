"""Hypothesis strategies of random scalar expressions, shared by the "learn from it" tests
(steps, Hessian, symbolic, gradient check). Values stay away from kinks and domain edges,
so every function is smooth where it is evaluated."""

from hypothesis import strategies as st

NAMES = ["x", "y", "z"]
SMOOTH_UNARY = ["sin", "cos", "tanh", "sigmoid", "atan", "erf"]
POSITIVE_UNARY = ["log", "sqrt", "log1p", "log2", "log10", "rsqrt"]  # applied to x*x + 1
NUMBERS = ["2", "0.5", "3", "1.5"]


def _leaf():
    return st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(NUMBERS))


def _extend(children):
    binop = st.tuples(children, st.sampled_from(["+", "-", "*"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    div = st.tuples(children, children).map(lambda t: f"({t[0]} / ({t[1]}*{t[1]} + 1))")
    power = st.tuples(children, st.sampled_from(["2", "3"])).map(lambda t: f"({t[0]}) ** {t[1]}")
    tpow = st.tuples(children, children).map(lambda t: f"(({t[0]})*({t[0]}) + 1) ** sin({t[1]})")
    spow = children.map(lambda c: f"(2 ** tanh({c}))")
    unary = st.tuples(st.sampled_from(SMOOTH_UNARY), children).map(lambda t: f"{t[0]}({t[1]})")
    bounded = st.tuples(st.sampled_from(["exp", "sinh", "cosh", "expm1", "exp2"]), children).map(
        lambda t: f"{t[0]}(tanh({t[1]}))")
    positive = st.tuples(st.sampled_from(POSITIVE_UNARY), children).map(lambda t: f"{t[0]}(({t[1]})**2 + 1)")
    neg = children.map(lambda c: f"-{c}")
    method = st.tuples(children, st.sampled_from(["sin", "cos", "tanh", "sigmoid"])).map(
        lambda t: f"({t[0]}).{t[1]}()")
    rsub = children.map(lambda c: f"(1 - {c})")
    rdiv = children.map(lambda c: f"(2 / ({c}*{c} + 1))")
    return st.one_of(binop, div, power, tpow, spow, unary, bounded, positive, neg, method, rsub, rdiv)


#: smooth scalar expressions over x, y, z (and numbers)
EXPRESSIONS = st.recursive(_leaf(), _extend, max_leaves=8)
#: input values in [-2, 2], at least 0.1 away from 0, with three decimals
VALUES = st.floats(min_value=0.1, max_value=2.0, allow_nan=False).flatmap(
    lambda v: st.sampled_from([round(v, 3), -round(v, 3)]))


def used_names(expr: str) -> list:
    """The input names an expression text mentions (names are single letters here)."""
    return [n for n in NAMES if n in expr]


def trace_or_reject(expr: str, at: dict, **kwargs):
    """``gradviz.trace`` of a generated expression; Hypothesis rejects the example when PyTorch
    would refuse it too (a function called on a number alone, e.g. ``sin(2)``) or when the
    output does not depend on any input."""
    import gradviz
    from hypothesis import reject

    try:
        t = gradviz.trace(expr, at=at, **kwargs)
    except gradviz.GradvizError:
        reject()
    if t.graph.output.grad_fn is None:
        reject()
    return t
