"""torch.nn.functional, losses and the more tensor functions of issue 13, in every view.

The graphs, saved values and gradients are checked against PyTorch in the golden fixtures
(tests/oracle/record_golden.py, its issue-13 section) and live in tests/test_torch_oracle.py;
here: the names as people write them, the errors, and each op through the CLI's views, the
finite-difference check and the Hessian (against torch.autograd.functional.hessian when torch
is importable)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz
from gradviz.cli import main
from gradviz.errors import GradvizError
from gradviz.functions import FUNCTIONS
from gradviz.namespaces import FUNCTIONAL, supported
from gradviz.parser import parse

V = [-1.4, 0.3, 0.7, 2.2]  # away from the kinks (finite differences are checked at these)
Y = [0.5, 0.1, 1.2, 2.4]
M = [[1.0, -2.0, 3.0], [0.5, 0.7, -1.0]]
W = [[0.3, -0.1, 0.2], [0.0, 0.4, -0.5]]
AT = {"x": V, "y": Y, "M": M, "W": W, "b": [0.1, -0.2], "p": [0.2, 0.5, 0.9, 0.6], "t": np.array([2, 0]),
      "q": [0.0, 1.0, 1.0, 0.5], "A": [[[1.0, 2.0]], [[3.0, -4.0]]]}

#: one expression per new op (and composite), scalar-valued
OPS = [
    "F.leaky_relu(x, 0.2).sum()", "F.elu(x).sum()", "F.gelu(x).sum()", "F.gelu(x, approximate='tanh').sum()",
    "F.silu(x).sum()", "F.softplus(x).sum()", "(F.log_softmax(M, dim=1) * M).sum()", "torch.logsumexp(M, 1).sum()",
    "F.linear(M, W, b).sum()", "F.linear(M, W).sum()",
    "F.mse_loss(x, y)", "F.l1_loss(x, y)", "F.smooth_l1_loss(x, y, beta=0.5)", "F.huber_loss(x, y, delta=0.5)",
    "F.binary_cross_entropy(p, q)", "F.binary_cross_entropy_with_logits(x, q)", "F.nll_loss(M, t)",
    "F.cross_entropy(M, t)", "F.cross_entropy(M, t, reduction='sum')", "(F.normalize(M) * M).sum()",
    "F.dropout(x, p=0.0).sum()", "(A.squeeze() * 2).sum()", "(A.squeeze(1) * 2).sum()", "(M.permute(1, 0) * 2).sum()",
    "(x.expand(2, 4) * 2).sum()", "(x.repeat(2, 2) * 2).sum()", "(torch.outer(x, y) * 2).sum()", "x.var()",
    "M.std(1).sum()", "M.amax(1).sum()", "M.amin(0).sum()", "M.max(1).values.sum()", "M.min(1).values.sum()",
    "torch.atan2(x, y + 1).sum()", "(x.floor() * x).sum()", "(x.ceil() * x).sum()", "(x.round() * x).sum()",
    "(x.sign() * x).sum()", "x.clamp_min(0.5).sum()", "x.clamp_max(0.5).sum()",
    # issue 13's last gaps: bmm by name, label smoothing, normalize's p below 1, clamp's tensor bounds
    "(torch.bmm(A, A.transpose(1, 2)) ** 2).sum()", "F.cross_entropy(M, t, label_smoothing=0.1)",
    "F.cross_entropy(M, W.abs(), label_smoothing=0.2)", "F.cross_entropy(M, t, label_smoothing=0.1, weight=torch.tensor([1., 2., 0.5]))",
    "(F.normalize(M, p=0.5) * M).sum()", "(F.normalize(M, p=-1) * M).sum()", "torch.clamp(x, y - 1, y).sum()",
    "(x.clamp(min=y) * x).sum()",
]


def _used(expr):
    names: set = set()
    parse(expr, names=names)
    return {k: v for k, v in AT.items() if k in names}


@pytest.mark.parametrize("expr", OPS)
def test_every_view_of_every_op(expr, tmp_path):
    at = _used(expr)
    t = gradviz.trace(expr, at=at)
    doc = json.loads(t.to_json())
    assert doc["schema"] == "gradviz/1" and doc["output"]["grad_fn"] is not None
    args = [expr, "--at", ",".join(f"{k}={_text(v)}" for k, v in at.items())]
    r = CliRunner().invoke(main, args + ["--steps"])
    assert r.exit_code == 0, r.output
    assert t.graph.root.name in r.output and "Backward pass, step by step" in r.output
    r = CliRunner().invoke(main, args + ["--check"])
    assert r.exit_code == 0, r.output


def _text(v):
    if isinstance(v, np.ndarray) and v.dtype.kind == "i":
        return f"tensor({v.tolist()})"
    return json.dumps(v)


@pytest.mark.parametrize("expr", ["F.cross_entropy(M, t)", "F.linear(M, W, b).sum()", "M.max(1).values.sum()"])
def test_svg_of_new_ops(expr, tmp_path):
    out = tmp_path / "g.svg"
    at = _used(expr)
    r = CliRunner().invoke(main, [expr, "--at", ",".join(f"{k}={_text(v)}" for k, v in at.items()), "-o", str(out)])
    assert r.exit_code == 0, r.output
    svg = out.read_text()
    assert gradviz.trace(expr, at=at).graph.root.name in svg


# --- the names people write -------------------------------------------------------------------

@pytest.mark.parametrize("expr", ["F.relu(x).sum()", "torch.nn.functional.relu(x).sum()", "torch.relu(x).sum()",
                                  "relu(x).sum()", "x.relu().sum()"])
def test_relu_by_every_name(expr):
    assert gradviz.trace(expr, at={"x": V}).graph.root.next_functions[0].name == "ReluBackward0"


@pytest.mark.parametrize("expr,fragment", [
    ("torch.nn.functional.sin(x)", "torch.nn.functional has no function 'sin'"),
    ("F.sin(x)", "torch.nn.functional has no function 'sin'"),
    ("torch.special.sin(x)", "torch.special has no function 'sin'"),
    ("torch.linalg.sum(x)", "torch.linalg has no function 'sum'"),
    ("torch.mse_loss(x, y)", "torch has no function 'mse_loss'"),
    ("F.conv1d(x, x)", "gradviz does not support F.conv1d yet"),
    ("torch.nn.functional.hardtanh(x)", "gradviz does not support torch.nn.functional.hardtanh yet"),
    ("torch.cumsum(x, 0)", "gradviz does not support torch.cumsum yet"),
    ("x.cumsum(0)", "gradviz does not support the method Tensor.cumsum() yet"),
    ("x.frobnicate()", "unknown method 'frobnicate'"),
    ("hardtanh(x)", "gradviz does not support hardtanh yet"),
    ("F.dropout(x)", "dropout with p=0.5 in training mode is random"),
    ("F.dropout(x, 0.3, True)", "is random"),
    ("F.relu(x, inplace=True)", "unexpected keyword argument"),
    ("F.elu(x, inplace=True)", "inplace=True) is not supported"),
    ("F.mse_loss(x, y, reduction='avg')", "reduction must be 'none', 'mean' or 'sum'"),
    ("F.mse_loss(x, y, reduction=1)", "reduction must be"),
    ("F.mse_loss(x, y, True)", "deprecated size_average"),
    ("F.gelu(x, approximate='fast')", "approximate must be 'none' or 'tanh'"),
    ("F.cross_entropy(M, t, label_smoothing=1.5)", "label_smoothing must be between 0.0 and 1.0. Got: 1.5"),
    ("torch.bmm(M, M)", "batch1 must be a 3D tensor"),
    ("torch.clamp(x, y, 1.5)", "clamp() received an invalid combination of arguments - got (Tensor, Tensor, float)"),
    ("F.nll_loss(M, u)", "Target 3 is out of bounds"),
    ("F.nll_loss(M, y)", "expected scalar type Long"),
    ("F.cross_entropy(M, 1)", "cross_entropy() needs a tensor argument, not the number 1, at column 1 (write tensor(1)"),
    ("F.cross_entropy(M, [1, 2])", "cross_entropy() needs a tensor argument, not a list, at column 1"),
    ("F.binary_cross_entropy(x, y)", "between 0 and 1"),
    ("M.max(1) + 1", "use max(dim).values"),
    ("M.max(1)", "returns (values, indices)"),
    ("M.max(1).indices", "'.indices' is not supported"),
    ("x.values", "'.values' is for the result of max(dim)"),
    ("F.linear(M, M.T, b)", "do not fit"),
    ("x.expand(2, 3)", "does not fit"),
    ("M.permute(0, 0)", "don't match or repeat"),
    ("sum('x')", "needs a tensor"),
])
def test_clear_errors(expr, fragment):
    at = {"x": V, "y": Y, "M": M, "W": W, "b": [0.1, -0.2], "u": np.array([0, 3]), "t": np.array([2, 0])}
    with pytest.raises(GradvizError) as info:
        gradviz.trace(expr, at={k: v for k, v in at.items() if k in expr})
    assert fragment in str(info.value)


def test_an_input_named_F_keeps_its_methods():
    t = gradviz.trace("F.sum() * 2", at={"F": [1.0, 2.0]})
    assert float(t.value) == 6.0


def test_supported_names_are_pytorch_names():
    ns = supported(FUNCTIONS)
    assert {"relu", "gelu", "mse_loss", "cross_entropy", "linear", "normalize"} <= set(ns["torch.nn.functional"])
    assert set(ns["torch.nn.functional"]) <= FUNCTIONAL


def test_dropout_is_the_input_itself():
    t = gradviz.trace("F.dropout(x, training=False)", at={"x": V}, grad_output="ones")
    assert t.output.is_leaf and t.output.name == "x"


def test_symbolic_is_available_or_says_so():
    r = CliRunner().invoke(main, ["F.gelu(x) + F.mse_loss(x, y)", "--at", "x=0.5,y=2.", "--symbolic"])
    assert r.exit_code == 0 and "autograd agrees" in r.output
    r = CliRunner().invoke(main, ["F.huber_loss(x, y)", "--at", "x=0.5,y=2.", "--symbolic"])
    assert r.exit_code == 0 and "not available for huber_loss()" in r.output


# --- second order: the Hessian against torch.autograd.functional.hessian ------------------------

HESSIAN_CASES = [
    ("F.gelu(x).sum()", {"x": V}), ("F.gelu(x, approximate='tanh').sum()", {"x": V}), ("F.silu(x).sum()", {"x": V}),
    ("F.softplus(x, beta=2).sum()", {"x": V}), ("F.elu(x).sum() * x.sum()", {"x": V}),
    ("F.leaky_relu(x, 0.2).sum() * x.sum()", {"x": V}), ("(F.log_softmax(M, 1) * M).sum()", {"M": M}),
    ("torch.logsumexp(M, 1).sum()", {"M": M}), ("F.mse_loss(x, y)", {"x": V, "y": Y}),
    ("F.smooth_l1_loss(x, y, beta=2.0)", {"x": V, "y": Y}), ("F.huber_loss(x, y, delta=2.0)", {"x": V, "y": Y}),
    ("F.binary_cross_entropy(p, q)", {"p": [0.2, 0.5, 0.9], "q": [0.1, 0.5, 0.7]}),
    ("F.binary_cross_entropy_with_logits(x, q)", {"x": [0.5, -1.0, 2.0], "q": [0.1, 0.5, 0.7]}),
    ("F.cross_entropy(M, q)", {"M": M, "q": [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]}),
    ("F.linear(M, W, b).pow(2).sum()", {"M": M, "W": W, "b": [0.1, -0.2]}),
    ("(F.normalize(M) * M).sum()", {"M": M}), ("x.var() * x.sum()", {"x": V}), ("M.std(1).sum()", {"M": M}),
    ("M.amax(1).sum() * M.sum()", {"M": M}), ("M.max(1).values.sum() * M.sum()", {"M": M}),
    ("torch.atan2(x, y + 1).sum()", {"x": V, "y": Y}), ("(x.repeat(2) * x.repeat(2)).sum()", {"x": V}),
    ("(torch.outer(x, y) ** 2).sum()", {"x": V, "y": Y}), ("(x.clamp_min(0.5) ** 2).sum()", {"x": V}),
    ("(torch.bmm(A, A.transpose(1, 2)) ** 2).sum()", {"A": [[[1.0, 2.0]], [[3.0, -4.0]]]}),
    ("F.cross_entropy(M, q, label_smoothing=0.2)", {"M": M, "q": [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]}),
    ("(F.normalize(M, p=0.5) * M).sum()", {"M": M}), ("(F.normalize(M, p=-1) * M).sum()", {"M": M}),
    ("(torch.clamp(x, y - 1, y) ** 2).sum()", {"x": V, "y": Y}), ("(x.clamp(max=y) ** 3).sum()", {"x": V, "y": Y}),
]


@pytest.mark.parametrize("expr,at", HESSIAN_CASES)
def test_hessians_match_pytorch(expr, at):
    from test_hessian import assert_hessians_match

    assert_hessians_match(expr, at, "float64", 1e-9, 1e-12)


@pytest.mark.parametrize("kwargs", ["", ", label_smoothing=0.1", ", label_smoothing=0.3, reduction='sum'",
                                    ", label_smoothing=0.1, weight=w", ", label_smoothing=0.1, ignore_index=0"])
def test_hessian_of_class_targets(kwargs):
    torch = pytest.importorskip("torch")
    from gradviz.higher import second_order

    expr = f"F.cross_entropy(M, t{kwargs})"
    ours = second_order(gradviz.trace(expr, at={"M": M, "t": np.array([2, 0]), "w": [1.0, 2.0, 0.5]}, no_grad=["w"],
                                      dtype="float64")).hessian["M"]["M"]
    names = {"F": torch.nn.functional, "t": torch.tensor([2, 0]), "w": torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)}
    theirs = torch.autograd.functional.hessian(lambda m: eval(expr, dict(names, M=m)),  # noqa: S307 - test oracle
                                               torch.tensor(M, dtype=torch.float64))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)
