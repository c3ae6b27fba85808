"""--order 2 (the Hessian by differentiating the backward graph) and --graph double, against PyTorch."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradviz
from expressions import EXPRESSIONS, VALUES, trace_or_reject, used_names
from gradviz.cli import main
from gradviz.errors import EvalError
from gradviz.higher import double_backward_json, hessian_json, second_order
from test_golden import graph_str


# --------------------------------------------------------------------------- without PyTorch


@pytest.mark.parametrize("expr,at,expected", [
    ("x**2", {"x": 2}, {"x": {"x": 2.0}}),
    ("x**2 + 2*x + 1", {"x": 2}, {"x": {"x": 2.0}}),
    ("u*v + u**2", {"u": 1, "v": 2}, {"u": {"u": 2.0, "v": 1.0}, "v": {"u": 1.0, "v": 0.0}}),
    ("x**3", {"x": 2}, {"x": {"x": 12.0}}),
    ("2*x", {"x": 2}, {"x": {"x": 0.0}}),
])
def test_lecture_hessians(expr, at, expected):
    assert hessian_json(second_order(gradviz.trace(expr, at=at))) == expected


def test_tensor_hessian_shapes_are_input_shape_plus_input_shape():
    h = second_order(gradviz.trace("(v*v).sum()*u", at={"u": 2, "v": [1, 2]})).hessian
    assert h["u"]["u"].shape == () and h["u"]["v"].shape == (2,) and h["v"]["u"].shape == (2,)
    np.testing.assert_array_equal(h["v"]["v"], [[4, 0], [0, 4]])
    np.testing.assert_array_equal(h["u"]["v"], [2, 4])
    assert hessian_json(second_order(gradviz.trace("(v*v).sum()", at={"v": [1, 2]}))) == \
        {"v": {"v": [[2.0, 0.0], [0.0, 2.0]]}}


def test_no_grad_inputs_are_left_out():
    h = second_order(gradviz.trace("u*v*v", at={"u": 1, "v": 2}, no_grad=["u"])).hessian
    assert list(h) == ["v"] and float(h["v"]["v"]) == 2.0


def test_the_trace_is_left_untouched():
    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    before = t.to_json()
    second_order(t)
    assert t.to_json() == before


def test_refuses_non_scalar_outputs_and_too_many_elements():
    with pytest.raises(EvalError, match="needs a scalar output"):
        second_order(gradviz.trace("v*2", at={"v": [1, 2]}, grad_output="ones"))
    with pytest.raises(EvalError, match="more than the limit of 3"):
        second_order(gradviz.trace("(v*v).sum()", at={"v": [1, 2, 3, 4]}), max_elements=3)


def test_double_backward_graph_is_a_graph_of_its_own():
    so = second_order(gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}))
    assert graph_str(so.graphs["u"].root) == (
        "AddBackward0[MulBackward0[None, MulBackward1[PowBackward0[AccumulateGrad(u)]]], "
        "MulBackward0[None, AccumulateGrad(v)]]")
    assert graph_str(so.graphs["v"].root) == "MulBackward0[None, AccumulateGrad(u)]"
    assert float(so.grads["u"].data) == 4.0 and so.grads["u"].name == "∂f/∂u"
    doc = double_backward_json(so)
    assert doc["roots"] == {"u": "f0", "v": "f7"}
    ids = {f["id"] for f in doc["functions"]}
    assert all(n in ids for f in doc["functions"] for n in f["next_functions"] if n is not None)
    assert [t["name"] for t in doc["tensors"] if t["id"] in doc["grads"].values()] == ["∂f/∂v", "∂f/∂u"]
    json.dumps(doc, allow_nan=False)


def test_a_constant_gradient_has_no_graph():
    so = second_order(gradviz.trace("2*x + y", at={"x": 1, "y": 1}))
    assert so.graphs["x"].root is None and not isinstance(so.grads["x"], gradviz.graph.Tensor)
    assert double_backward_json(so)["roots"] == {"x": None, "y": None}


def test_double_backward_traces_draw_with_the_existing_renderers():
    from gradviz.render.dot import dot_source

    traces = second_order(gradviz.trace("x**2", at={"x": 2})).traces()
    assert traces["x"].graph.root.name == "MulBackward0"
    assert "∂f/∂x" in dot_source(traces["x"])


def test_cli_order_2_and_graph_double():
    r = CliRunner().invoke(main, ["u*v + u**2", "--at", "u=1,v=2", "--order", "2", "--graph", "double", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["hessian"] == {"u": {"u": 2.0, "v": 1.0}, "v": {"u": 1.0, "v": 0.0}}
    assert set(doc["double_backward"]) == {"roots", "grads", "functions", "tensors"}
    r = CliRunner().invoke(main, ["x**2", "--at", "x=2", "--order", "2", "--graph", "double"])
    assert r.exit_code == 0, r.output
    assert "Hessian" in r.stdout and "MulBackward1" in r.stdout
    r = CliRunner().invoke(main, ["v*2", "--at", "v=[1,2]", "--grad-output", "ones", "--order", "2"])
    assert r.exit_code == 2 and "needs a scalar output" in r.output


# --------------------------------------------------------------------------- against PyTorch


def torch_hessian(expr, at, dtype):
    torch = pytest.importorskip("torch")
    from oracle.torch_oracle import make_namespace

    names = list(at)
    tdtype = getattr(torch, dtype)

    def f(*xs):
        return eval(expr, {}, make_namespace(dict(zip(names, xs))))  # noqa: S307 - test oracle

    inputs = tuple(torch.tensor(at[n], dtype=tdtype) for n in names)
    h = torch.autograd.functional.hessian(f, inputs)
    return {a: {b: h[i][j].numpy() for j, b in enumerate(names)} for i, a in enumerate(names)}


def assert_hessians_match(expr, at, dtype, rtol, atol):
    ours = second_order(gradviz.trace(expr, at=at, dtype=dtype)).hessian
    theirs = torch_hessian(expr, at, dtype)
    for a in at:
        for b in at:
            np.testing.assert_allclose(ours[a][b], theirs[a][b], rtol=rtol, atol=atol, equal_nan=True,
                                       err_msg=f"∂²/∂{a}∂{b} of {expr}")


HESSIAN_CASES = [
    ("x**2", {"x": 2.0}), ("x**2 + 2*x + 1", {"x": 2.0}), ("u*v + u**2", {"u": 1.0, "v": 2.0}),
    ("sin(u)*v", {"u": 0.5, "v": 2.0}), ("tanh(u*v)/v", {"u": 0.5, "v": 2.0}), ("u**v", {"u": 1.5, "v": 2.0}),
    ("2**u * exp(v)", {"u": 0.5, "v": 0.3}), ("sqrt(u) + log(v) - 1/u", {"u": 0.5, "v": 0.3}),
    ("relu(u*v) + abs(u) + sigmoid(v)", {"u": 0.5, "v": -0.3}),
    ("asin(u)*acos(u) + atan(u*u)", {"u": 0.3}),
    ("erf(u)*rsqrt(v) + log1p(v)*expm1(u) + exp2(u)*log2(v)*log10(v)", {"u": 0.3, "v": 1.7}),
    ("maximum(u, v)*minimum(u*v, u) + clamp(u*v, -1, 0.5)", {"u": 0.3, "v": 1.7}),
    ("cosh(u)*sinh(v)*tan(u)", {"u": 0.3, "v": 1.7}),
    ("(v*v).sum() * u", {"u": 0.5, "v": [1.0, 2.0, 3.0]}),
    ("(M @ v).sum()**2", {"M": [[1.0, 2.0], [3.0, 4.0]], "v": [0.5, -1.0]}),
    ("v.prod()", {"v": [1.0, 2.0, 3.0]}), ("v.prod()", {"v": [1.0, 0.0, 3.0]}), ("v.prod()", {"v": [0.0, 2.0, 0.0]}),
    ("v.max()*u", {"u": 2.0, "v": [1.0, 3.0, 2.0]}),
    ("(softmax(v, 0)*v).sum()", {"v": [0.1, 0.5, -0.2]}), ("v.norm()", {"v": [3.0, 4.0]}),
    ("(M*v).mean()**2", {"M": [[1.0, 2.0], [3.0, 4.0]], "v": [0.5, -1.0]}),
    ("(M.T @ M).sum() + (M.sum(0)**2).sum()", {"M": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]}),
    ("(v @ v) * (M @ v).mean(0)", {"M": [[1.0, -2.0], [0.5, 4.0]], "v": [0.5, -1.0]}),
]


@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-9, 1e-12), ("float32", 1e-4, 1e-5)])
@pytest.mark.parametrize("expr,at", HESSIAN_CASES)
def test_hessians_match_pytorch(expr, at, dtype, rtol, atol):
    assert_hessians_match(expr, at, dtype, rtol, atol)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_random_hessians_match_pytorch(expr, values):
    pytest.importorskip("torch")
    at = {n: v for n, v in zip(["x", "y", "z"], values) if n in used_names(expr)}
    trace_or_reject(expr, at, dtype="float64")
    assert_hessians_match(expr, at, "float64", 1e-7, 1e-9)


def _torch_double_graph(expr, at, wrt):
    torch = pytest.importorskip("torch")
    from oracle.torch_oracle import make_namespace

    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in at.items()}
    names = {id(t): n for n, t in leaves.items()}
    out = eval(expr, {}, make_namespace(leaves))  # noqa: S307 - test oracle
    (g,) = torch.autograd.grad(out, [leaves[wrt]], create_graph=True)
    parts, stack = [], [g.grad_fn]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif item is None:
            parts.append("None")
        elif hasattr(item, "variable"):
            parts.append(f"AccumulateGrad({names[id(item.variable)]})")
        else:
            parts.append(item.name() + "[")
            todo = []
            for i, (nxt, _) in enumerate(item.next_functions):
                if i:
                    todo.append(", ")
                todo.append(nxt)
            stack.extend(reversed(todo + ["]"]))
    return "".join(parts)


DOUBLE_GRAPH_CASES = [
    "x**2", "x**3", "x*y + x**2", "sin(x)*y", "cos(x)", "tan(x)", "exp(x)", "log(x)", "sqrt(x)",
    "abs(x)*x", "sinh(x)", "cosh(x)", "asin(x/2)", "acos(x/2)", "atan(x)", "log1p(x)", "expm1(x)", "exp2(x)",
    "log2(x)", "log10(x)", "rsqrt(x)", "erf(x)", "x/y", "2/x", "1-x", "x-y", "x**y", "2**x", "-x*y",
    "clamp(x*y, 0, 5)",
    # PyTorch's fused backward kernels: TanhBackwardBackward0, SigmoidBackwardBackward0,
    # ThresholdBackwardBackward0, MaskedFillBackward0 (tests/test_double_graph.py has many more)
    "tanh(x)", "sigmoid(x)", "relu(x)*x", "maximum(x, y)*x",
]


@pytest.mark.parametrize("expr", DOUBLE_GRAPH_CASES)
def test_double_backward_graph_matches_pytorch(expr):
    at = {"x": 1.5, "y": 2.0}
    at = {n: v for n, v in at.items() if n in expr}
    so = second_order(gradviz.trace(expr, at=at))
    for name in at:
        assert graph_str(so.graphs[name].root) == _torch_double_graph(expr, at, name), f"∂f/∂{name}"


def test_terminal_snapshot():
    from rich.console import Console

    from gradviz.render.learn import hessian_table

    console = Console(width=80, color_system=None, record=True)
    console.print(hessian_table(second_order(gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}))))
    text = "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"
    assert text == (
        "Hessian ∂²f/∂row∂column  (by differentiating the backward graph)\n"
        "     u    v\n"
        "─────────────\n"
        " u   2.   1.\n"  # as PyTorch prints tensor(2.)
        " v   1.   0.\n")
