"""--steps (the backward pass step by step) and --retain-grad (intermediates' grad), against PyTorch."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import gradviz
from expressions import EXPRESSIONS, VALUES, trace_or_reject, used_names
from gradviz.cli import main
from gradviz.ops import ROWS
from gradviz.render import terminal
from gradviz.render.steps import steps_view
from gradviz.render.terminal import grad_note
from gradviz.steps import describe, steps_json


def render(renderable) -> str:
    console = Console(width=80, color_system=None, record=True)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


# --------------------------------------------------------------------------- the op table


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.key)
def test_every_op_row_has_one_rule_per_input(row):
    assert len(row.rules) == len(row.inputs)
    assert all(isinstance(r, str) and r for r in row.rules)


# --------------------------------------------------------------------------- the lecture's examples

SNAPSHOT_UV = """\
Backward pass, step by step  (in PyTorch's execution order)
 1. AddBackward0  (u*v + u**2)
    grad = 1.  (the starting gradient)
    grad_self = grad = 1.
    grad_other = grad·alpha = 1.·1 = 1.
    sends 1. → MulBackward0 (u*v), 1. → PowBackward0 (u**2)
 2. PowBackward0  (u**2)
    grad = 1.  (from AddBackward0)
    grad_self = grad·exponent·self**(exponent - 1) = 1.·2·1.**(2 - 1) = 2.
    sends 2. → AccumulateGrad (u)
 3. MulBackward0  (u*v)
    grad = 1.  (from AddBackward0)
    grad_self = grad·other = 1.·2. = 2.
    grad_other = grad·self = 1.·1. = 1.
    sends 2. → AccumulateGrad (u), 1. → AccumulateGrad (v)
 4. AccumulateGrad  (u)
    grad = 2. + 2. = 4.  (from PowBackward0, MulBackward0: added up first)
    u.grad = 4.  (was None)
 5. AccumulateGrad  (v)
    grad = 1.  (from MulBackward0)
    v.grad = 1.  (was None)
"""

SNAPSHOT_QUADRATIC = """\
Backward pass, step by step  (in PyTorch's execution order)
 1. AddBackward0  (x**2 + 2*x + 1)
    grad = 1.  (the starting gradient)
    grad_self = grad = 1.
    sends 1. → AddBackward0 (x**2 + 2*x), nothing → None
 2. AddBackward0  (x**2 + 2*x)
    grad = 1.  (from AddBackward0)
    grad_self = grad = 1.
    grad_other = grad·alpha = 1.·1 = 1.
    sends 1. → PowBackward0 (x**2), 1. → MulBackward0 (2*x)
 3. MulBackward0  (2*x)
    grad = 1.  (from AddBackward0)
    grad_self = grad·other = 1.·2 = 2.
    sends 2. → AccumulateGrad (x), nothing → None
 4. PowBackward0  (x**2)
    grad = 1.  (from AddBackward0)
    grad_self = grad·exponent·self**(exponent - 1) = 1.·2·2.**(2 - 1) = 4.
    sends 4. → AccumulateGrad (x)
 5. AccumulateGrad  (x)
    grad = 2. + 4. = 6.  (from MulBackward0, PowBackward0: added up first)
    x.grad = 6.  (was None)
"""

SNAPSHOT_SQUARE = """\
Backward pass, step by step  (in PyTorch's execution order)
 1. PowBackward0  (x**2)
    grad = 1.  (the starting gradient)
    grad_self = grad·exponent·self**(exponent - 1) = 1.·2·2.**(2 - 1) = 4.
    sends 4. → AccumulateGrad (x)
 2. AccumulateGrad  (x)
    grad = 4.  (from PowBackward0)
    x.grad = 4.  (was None)
"""


@pytest.mark.parametrize("expr,at,expected", [
    ("x**2", {"x": 2}, SNAPSHOT_SQUARE),
    ("x**2 + 2*x + 1", {"x": 2}, SNAPSHOT_QUADRATIC),
    ("u*v + u**2", {"u": 1, "v": 2}, SNAPSHOT_UV),
])
def test_terminal_snapshot(expr, at, expected):
    assert render(steps_view(gradviz.trace(expr, at=at))) == expected


def test_leaf_used_twice_adds_before_accumulating():
    text = render(steps_view(gradviz.trace("x*x", at={"x": 2})))
    assert "grad_self = grad·other = 1.·2. = 2." in text
    assert "grad = 2. + 2. = 4.  (from MulBackward0 ×2: added up first)" in text
    assert "x.grad = 4.  (was None)" in text


def test_negative_numbers_keep_their_sign_and_tensors_show_values():
    text = render(steps_view(gradviz.trace("sin(x)/y - 1/x", at={"x": 1, "y": -2})))
    assert "grad_self = grad / other = 1. / (-2.) = -0.5000" in text
    assert "grad_other = -grad·self / other² = -1.·0.8415 / (-2.)² = -0.2104" in text
    assert "grad = 1. + (-0.2702) = 0.7298" in text
    text = render(steps_view(gradviz.trace("(v*w).sum() / 2", at={"v": [1, 2, 3], "w": 2})))
    assert "grad_other = grad·self = [0.5000, 1.0000, 1.5000], summed to shape (): 3." in text


def test_steps_json_shape():
    doc = steps_json(gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}))
    assert [s["name"] for s in doc] == ["AddBackward0", "PowBackward0", "MulBackward0",
                                        "AccumulateGrad", "AccumulateGrad"]
    assert [s["step"] for s in doc] == [1, 2, 3, 4, 5]
    mul = doc[2]
    assert mul["rules"] == [
        {"input": "self", "formula": "grad·other", "numbers": "1·2", "grad": 2.0},
        {"input": "other", "formula": "grad·self", "numbers": "1·1", "grad": 1.0},
    ]
    assert mul["grads_out"] == [2.0, 1.0] and mul["received"] == [{"from": "f0", "grad": 1.0}]
    acc_u = doc[3]
    assert acc_u["variable"] == "u" and acc_u["grad_before"] is None and acc_u["grad_after"] == 4.0
    assert [r["grad"] for r in acc_u["received"]] == [2.0, 2.0]
    assert doc[0]["received"] == [{"from": None, "grad": 1.0}]
    json.dumps(doc, allow_nan=False)


def test_tensor_values_are_not_substituted():
    doc = steps_json(gradviz.trace("(M @ v).sum()", at={"M": [[1, 2], [3, 4]], "v": [1, -1]}))
    mv = next(s for s in doc if s["name"] == "MvBackward0")
    assert [r["numbers"] for r in mv["rules"]] == [None, None]
    assert mv["rules"][0]["grad"] == [[1.0, -1.0], [1.0, -1.0]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_steps_are_consistent_with_the_backward_pass(expr, values):
    """Each step's grad_in is the sum of what arrived; each rule's value is what was sent."""
    t = trace_or_reject(expr, dict(zip(["x", "y", "z"], values)))
    views = describe(t)
    assert len(views) == len(t.steps)
    for v in views:
        if v.received:
            total = v.received[0][1]
            for _, g in v.received[1:]:
                total = np.add(total, g, dtype=np.float32)
            np.testing.assert_allclose(total, v.grad_in, rtol=1e-6)
        for r in v.rules:
            np.testing.assert_allclose(np.asarray(r.value, dtype=np.float32), r.sent, rtol=1e-6, equal_nan=True)
    render(steps_view(t))


# --------------------------------------------------------------------------- --retain-grad


def test_intermediates_grad_is_none_without_retain_grad_and_the_footnote_says_why():
    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    assert [x.grad is None for x in t.graph.tensors] == [False, False, True, True, True]
    text = " ".join(render(terminal.tensors_table(t)).split())
    assert "grad is None on intermediates: PyTorch keeps .grad on leaves (see --retain-grad)" in text


def test_retain_grad_keeps_every_intermediate():
    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}, retain_grad=True)
    assert [float(x.grad) for x in t.graph.tensors] == [4.0, 1.0, 1.0, 1.0, 1.0]
    assert all(x.retains_grad for x in t.graph.tensors if not x.is_leaf)
    assert grad_note(t) == "grad of intermediates: kept by --retain-grad (retain_grad())"


def test_no_footnote_without_intermediates():
    assert grad_note(gradviz.trace("x", at={"x": 1})) is None


def test_cli_steps_and_retain_grad():
    r = CliRunner().invoke(main, ["u*v + u**2", "--at", "u=1,v=2", "--steps", "--retain-grad", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert len(doc["steps"]) == 5
    assert [x["grad"] for x in doc["graph"]["tensors"]] == [4.0, 1.0, 1.0, 1.0, 1.0]
    r = CliRunner().invoke(main, ["x*x", "--at", "x=2", "--steps"])
    assert r.exit_code == 0, r.output
    assert "grad = 2. + 2. = 4." in r.stdout and "Backward pass, step by step" in r.stdout


# --------------------------------------------------------------------------- against PyTorch


def _torch_retained(expr, at, dtype):
    """PyTorch's gradient into each backward node (what retain_grad() keeps on its output), by our ids.

    The two graphs have the same shape (the golden and oracle tests check it), so they are
    walked side by side; a pre-hook on each PyTorch node records the gradient it receives.
    """
    torch = pytest.importorskip("torch")
    from oracle.torch_oracle import make_namespace

    ours = gradviz.trace(expr, at=at, dtype=dtype, retain_grad=True)
    leaves = {n: torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True) for n, v in at.items()}
    out = eval(expr, {}, make_namespace(leaves))  # noqa: S307 - test oracle on our own strategy's text
    received, hooks, pairs = {}, [], []
    stack, seen = [(ours.graph.root, out.grad_fn)], set()
    while stack:
        fn, tfn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        assert fn.name == tfn.name().split("::")[-1]
        if fn.variable is None:
            pairs.append(fn)
            hooks.append(tfn.register_prehook(lambda g, _id=id(fn): received.__setitem__(_id, g[0].detach())))
        for nxt, (tnxt, _) in zip(fn.next_functions, tfn.next_functions):
            stack.append((nxt, tnxt))
    out.backward()
    for h in hooks:
        h.remove()
    return ours, pairs, received


@pytest.mark.parametrize("expr,at", [
    ("x**2", {"x": 2.0}), ("x**2 + 2*x + 1", {"x": 2.0}), ("u*v + u**2", {"u": 1.0, "v": 2.0}),
    ("sin(u)*v/(u + 1) - exp(v)", {"u": 0.5, "v": -1.5}),
])
def test_retained_grads_match_pytorch_seeds(expr, at):
    ours, pairs, received = _torch_retained(expr, at, "float32")
    for fn in pairs:
        np.testing.assert_allclose(fn.output.grad, received[id(fn)].numpy(), rtol=1e-5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_retained_grads_match_pytorch_random(expr, values):
    pytest.importorskip("torch")
    at = {n: v for n, v in zip(["x", "y", "z"], values) if n in used_names(expr)}
    trace_or_reject(expr, at, dtype="float64")
    ours, pairs, received = _torch_retained(expr, at, "float64")
    for fn in pairs:
        np.testing.assert_allclose(fn.output.grad, received[id(fn)].numpy(), rtol=1e-9, atol=1e-12)


def test_steps_json_writes_float32_values_as_float32_text():
    # 0-d gradients are Python floats on the tape; the section still writes the dtype's shortest text
    doc = steps_json(gradviz.trace("x*y", at={"x": 0.1, "y": 0.3}))
    mul = doc[0]
    assert [r["grad"] for r in mul["rules"]] == [0.3, 0.1]
    assert mul["grads_out"] == [0.3, 0.1]
    text = gradviz.trace("x*y", at={"x": 0.1, "y": 0.3})
    from gradviz.learn import analyse

    analyse(text, steps=True)
    assert '"grads_out":[0.3,0.1]' in text.to_json()


def test_the_steps_print_arrays_as_pytorch_does_with_the_print_options():
    # whole up to the threshold (PyTorch's 1,000: no cut at 6 items), its edgeitems beyond
    t = gradviz.trace("sum(v*v)", at={"v": list(range(1, 9))})
    assert "v.grad = [2., 4., 6., 8., 10., 12., 14., 16.]" in " ".join(render(steps_view(t)).split())
    with gradviz.printoptions(threshold=5, edgeitems=2, precision=2):
        text = " ".join(render(steps_view(gradviz.trace("sum(v*v)", at={"v": [0.5] * 8}))).split())
    assert "sends [1., 1., ..., 1., 1.] → MulBackward0 (v*v)" in text
    assert "grad_self = grad·other = [0.50, 0.50, ..., 0.50, 0.50]" in text
