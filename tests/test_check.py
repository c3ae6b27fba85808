"""--check: every partial against central finite differences in float64, like torch.autograd.gradcheck."""

import json
import math

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import gradviz
from expressions import EXPRESSIONS, VALUES, trace_or_reject, used_names
from gradviz.check import ATOL, EPS, RTOL, check_json, gradient_check
from gradviz.cli import main
from gradviz.errors import EvalError
from gradviz.render.learn import check_view


def render(renderable) -> str:
    console = Console(width=80, color_system=None, record=True)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def test_tolerances_are_gradchecks():
    assert (EPS, ATOL, RTOL) == (1e-6, 1e-5, 1e-3)


@pytest.mark.parametrize("expr,at,partials", [
    ("x**2", {"x": 2}, [("x", (), 4.0)]),
    ("x**2 + 2*x + 1", {"x": 2}, [("x", (), 6.0)]),
    ("u*v + u**2", {"u": 1, "v": 2}, [("u", (), 4.0), ("v", (), 1.0)]),
    ("(M @ v).sum()", {"M": [[1, 2], [3, 4]], "v": [1, -1]},
     [("M", (0, 0), 1.0), ("M", (0, 1), -1.0), ("M", (1, 0), 1.0), ("M", (1, 1), -1.0),
      ("v", (0,), 4.0), ("v", (1,), 6.0)]),
])
def test_lecture_examples_pass(expr, at, partials):
    result = gradient_check(gradviz.trace(expr, at=at))
    assert result.passed
    assert [(p.input, p.index, p.analytical) for p in result.partials] == partials
    for p in result.partials:
        assert math.isclose(p.numerical, p.analytical, rel_tol=1e-6, abs_tol=1e-8)
    assert result.max_abs_error < 1e-8 and result.max_rel_error < 1e-8


def test_a_failure_is_reported():
    result = gradient_check(gradviz.trace("sqrt(x)", at={"x": 0}))  # inf vs nan (sqrt(-eps))
    assert not result.passed and math.isnan(result.max_abs_error)
    doc = check_json(result)
    assert doc["passed"] is False and doc["max_abs_error"] == "NaN"
    assert doc["partials"][0]["analytical"] == "Infinity"
    json.dumps(doc, allow_nan=False)
    text = render(check_view(result))
    assert "Gradient check: FAILED" in text and "∂f/∂x: autograd inf, finite differences nan" in text


def test_a_kink_within_eps_fails_like_gradcheck():
    result = gradient_check(gradviz.trace("relu(x)", at={"x": 1e-7}, dtype="float64"))
    assert not result.passed and result.max_abs_error > 0.4


def test_grad_output_is_what_is_checked_for_non_scalar_outputs():
    t = gradviz.trace("v*v", at={"v": [1, 2]}, grad_output=[1, 10])
    for result in (gradient_check(t, grad_output=[1, 10]), gradient_check(t)):
        assert result.passed and [p.analytical for p in result.partials] == [2.0, 40.0]
    r = CliRunner().invoke(main, ["v*v", "--at", "v=[1,2]", "--grad-output", "[1,10]", "--check", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["check"]["passed"] is True
    with pytest.raises(EvalError, match="needs a scalar output"):
        gradient_check(gradviz.trace("v*v", at={"v": [1, 2]}))


def test_no_grad_inputs_are_not_checked():
    result = gradient_check(gradviz.trace("u*v", at={"u": 1, "v": 2}, no_grad=["v"]))
    assert [p.input for p in result.partials] == ["u"]


def test_cli_exit_codes():
    r = CliRunner().invoke(main, ["u*v + u**2", "--at", "u=1,v=2", "--check", "--json"])
    assert r.exit_code == 0, r.output
    check = json.loads(r.stdout)["check"]
    assert check["passed"] is True and check["max_abs_error"] < 1e-8 and check["max_rel_error"] < 1e-8
    r = CliRunner().invoke(main, ["sqrt(x)", "--at", "x=0", "--check", "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["check"]["passed"] is False
    r = CliRunner().invoke(main, ["sqrt(x)", "--at", "x=0", "--check"])
    assert r.exit_code == 1 and "Gradient check: FAILED" in r.stdout
    r = CliRunner().invoke(main, ["x*x", "--at", "x=3", "--check"])
    assert r.exit_code == 0 and "Gradient check: passed" in r.stdout


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_random_smooth_expressions_pass(expr, values):
    t = trace_or_reject(expr, dict(zip(["x", "y", "z"], values)))
    result = gradient_check(t)
    assert result.passed, (expr, check_json(result))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_verdict_matches_torch_gradcheck(expr, values):
    torch = pytest.importorskip("torch")
    from oracle.torch_oracle import make_namespace

    at = {n: v for n, v in zip(["x", "y", "z"], values) if n in used_names(expr)}
    t = trace_or_reject(expr, at, dtype="float64")
    names = list(at)

    def f(*xs):
        return eval(expr, {}, make_namespace(dict(zip(names, xs))))  # noqa: S307 - test oracle

    inputs = tuple(torch.tensor(at[n], dtype=torch.float64, requires_grad=True) for n in names)
    theirs = torch.autograd.gradcheck(f, inputs, eps=EPS, atol=ATOL, rtol=RTOL, raise_exception=False)
    assert gradient_check(t).passed == theirs


@pytest.mark.parametrize("expr,at", [
    ("relu(x)", {"x": 1e-7}), ("abs(x) * y", {"x": -2e-7, "y": 3.0}), ("sqrt(x)", {"x": 0.0}),
    ("x**2 * y", {"x": 1.5, "y": -2.0}), ("clamp(x, 0, 1)", {"x": 1.0 + 1e-7}),
])
def test_verdict_matches_torch_gradcheck_at_kinks(expr, at):
    torch = pytest.importorskip("torch")
    from oracle.torch_oracle import make_namespace

    names = list(at)

    def f(*xs):
        return eval(expr, {}, make_namespace(dict(zip(names, xs))))  # noqa: S307 - test oracle

    inputs = tuple(torch.tensor(at[n], dtype=torch.float64, requires_grad=True) for n in names)
    theirs = torch.autograd.gradcheck(f, inputs, eps=EPS, atol=ATOL, rtol=RTOL, raise_exception=False)
    assert gradient_check(gradviz.trace(expr, at=at, dtype="float64")).passed == theirs
