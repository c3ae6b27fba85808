"""--symbolic: SymPy formulas built from the parsed tree, evaluated and checked against autograd."""

import json
import math
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import gradviz
from expressions import EXPRESSIONS, VALUES, trace_or_reject
from gradviz.cli import main
from gradviz.render.learn import pretty, symbolic_view
from gradviz.symbolic import MAX_NODES, symbolic, symbolic_json

sympy = pytest.importorskip("sympy")


def render(renderable) -> str:
    console = Console(width=80, color_system=None, record=True)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


@pytest.mark.parametrize("expr,at,output,grads,values", [
    ("x**2", {"x": 2}, "x**2", {"x": "2*x"}, {"x": 4.0}),
    ("x**2 + 2*x + 1", {"x": 2}, "x**2 + 2*x + 1", {"x": "2*x + 2"}, {"x": 6.0}),
    ("u*v + u**2", {"u": 1, "v": 2}, "u**2 + u*v", {"u": "2*u + v", "v": "u"}, {"u": 4.0, "v": 1.0}),
])
def test_lecture_formulas(expr, at, output, grads, values):
    doc = symbolic_json(symbolic(gradviz.trace(expr, at=at)))
    assert doc["output"] == output and doc["grads"] == grads and doc["values"] == values
    assert doc["autograd"] == values and doc["passed"] is True and doc["error"] is None
    assert all(doc["agrees"].values())


def test_terminal_view():
    text = render(symbolic_view(symbolic(gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}))))
    assert text == (
        "Symbolic derivatives  (SymPy, from the parsed expression)\n"
        "f = u**2 + u·v\n"
        "∂f/∂u = 2·u + v = 4  ✓ autograd agrees\n"
        "∂f/∂v = u = 1  ✓ autograd agrees\n")


def test_pretty_uses_a_dot_for_multiplication_and_keeps_powers():
    u, v = sympy.symbols("u v")
    assert pretty(2 * u + v) == "2·u + v"
    assert pretty(u ** 2 * v) == "u**2·v"


@pytest.mark.parametrize("expr,at,grad", [
    ("sigmoid(x)", {"x": 0.5}, None), ("relu(x)", {"x": 0}, "Piecewise((1, x > 0), (0, True))"),
    ("abs(x)", {"x": 0}, "sign(x)"), ("sqrt(x)", {"x": 0}, "1/(2*sqrt(x))"), ("1/x", {"x": 0}, "-1/x**2"),
    ("log(x)", {"x": -1}, "1/x"), ("maximum(x, y)", {"x": 1, "y": 1}, "Heaviside(x - y)"),
    ("clamp(x, 0, 1)", {"x": 1}, None), ("torch.exp2(x) + x.pow(exponent=3) + 2**-x", {"x": 0.5}, None),
    ("log2(x) * log10(x) + log1p(x) + expm1(x) + rsqrt(x)", {"x": 0.7}, None),
    ("square(x) + reciprocal(x) + erf(x) + atan(x) + asin(x/2) + acos(x/3)", {"x": 0.7}, None),
    ("x * pi + e", {"x": 1}, "pi"), ("sinh(x)*cosh(x)*tan(x)*tanh(x)", {"x": 0.3}, None),
])
def test_functions_and_domain_edges_agree_with_autograd(expr, at, grad):
    """Edge values are compared in IEEE arithmetic, as PyTorch computes: sqrt'(0) = inf, log(-1)' = -1."""
    result = symbolic(gradviz.trace(expr, at=at, dtype="float64"))
    assert result.error is None
    assert result.passed, symbolic_json(result)
    if grad is not None:
        assert str(result.grads["x"]) == grad


def test_a_mismatch_is_reported_not_hidden():
    # PyTorch's x**x at 0 has grad 0 (its pow rule masks base 0); the formula x**x*(log(x) + 1) is -inf there
    result = symbolic(gradviz.trace("x**x", at={"x": 0}))
    assert result.agrees == {"x": False} and not result.passed
    assert result.values["x"] == -math.inf and result.autograd["x"] == 0.0
    assert "✗ autograd gives 0.: MISMATCH" in render(symbolic_view(result))


def test_tensor_inputs_are_not_supported_and_say_so():
    doc = symbolic_json(symbolic(gradviz.trace("(v*v).sum()", at={"v": [1, 2]})))
    assert doc["error"] == "symbolic formulas are for scalar inputs only; v has shape (2,)"
    assert doc["output"] is None and doc["passed"] is False


def test_no_grad_inputs_stay_symbols_without_a_partial():
    doc = symbolic_json(symbolic(gradviz.trace("u*v", at={"u": 1, "v": 2}, no_grad=["v"])))
    assert doc["grads"] == {"u": "v"}


def test_large_expressions_are_refused_with_a_reason():
    expr = " + ".join(f"x*{i}" for i in range(MAX_NODES))
    assert "limited to" in symbolic(gradviz.trace(expr, at={"x": 1})).error


def test_never_parses_strings(monkeypatch):
    """The SymPy expression is built from the tree: sympify/parse_expr are never called."""
    def refuse(*args, **kwargs):
        raise AssertionError("a string was parsed")

    monkeypatch.setattr(sympy, "sympify", refuse)
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", refuse)
    result = symbolic(gradviz.trace("sin(x)*y + x**y", at={"x": 1.5, "y": 2}))
    assert result.passed


def test_deep_nesting_does_not_recurse_in_gradviz():
    expr = "x" + "".join(f" + (x*{i}" for i in range(90)) + ")" * 90
    assert symbolic(gradviz.trace(expr, at={"x": 1}, dtype="float64")).passed


def test_sympy_is_imported_only_when_asked():
    def sympy_imports(*args):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "gradviz", *args],
                             capture_output=True, text=True, check=False)
        return out.stderr.count("sympy")

    assert sympy_imports("x", "--at", "x=1", "--json") == 0
    assert sympy_imports("--help") == 0
    assert sympy_imports("x*x", "--at", "x=1", "--steps", "--order", "2", "--check", "--json") == 0
    assert sympy_imports("x", "--at", "x=1", "--symbolic", "--json") > 0


def test_cli_symbolic():
    r = CliRunner().invoke(main, ["u*v + u**2", "--at", "u=1,v=2", "--symbolic", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["symbolic"]["grads"] == {"u": "2*u + v", "v": "u"}
    r = CliRunner().invoke(main, ["u*v + u**2", "--at", "u=1,v=2", "--symbolic"])
    assert "∂f/∂u = 2·u + v = 4  ✓ autograd agrees" in r.stdout


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_random_expressions_agree_with_autograd(expr, values):
    t = trace_or_reject(expr, dict(zip(["x", "y", "z"], values)), dtype="float64")
    result = symbolic(t)
    assert result.error is None
    assert result.passed, (expr, symbolic_json(result))
