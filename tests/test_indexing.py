"""Indexing and slicing, comparisons and torch.where, torch.cat/torch.stack, torch.tensor constants
(issue 13): the errors PyTorch raises as clear messages (exit 2), every view, second order and the
gradient check. Graph, values and saved values against PyTorch are in the golden fixtures
(tests/oracle/record_golden.py, ``issue13_cases``); here what the fixtures do not hold."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz
from gradviz.cli import main
from gradviz.errors import EvalError, ParseError
from gradviz.higher import second_order
from gradviz.literals import LiteralError, flatten, tensor_literal
from test_golden import graph_str

AT = {"v": [1.0, -2.0, 3.0, 0.5], "M": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "x": 2.0, "c": [5.0, 0.5, 7.0, -1.0]}


def _at(expr):
    return {k: v for k, v in AT.items() if k in expr}


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("expr,message", [
    ("v[4]", "index 4 is out of bounds for dimension 0 with size 4"),
    ("v[-5]", "index -5 is out of bounds for dimension 0 with size 4"),
    ("M[0, 3]", "index 3 is out of bounds for dimension 1 with size 3"),
    ("M[2]", "index 2 is out of bounds for dimension 0 with size 2"),
    ("v[0, 0]", "too many indices for tensor of dimension 1"),
    ("x[0]", "invalid index of a 0-dim tensor"),
    ("x[1:]", "slice() cannot be applied to a 0-dim tensor"),
    ("v[::-1]", "step must be greater than zero"),
    ("v[::0]", "slice step cannot be zero"),
    ("v[1.5]", "only integers, slices"),
    ("v[v]", "tensors used as indices must be long, int, byte or bool tensors"),
    ("v[torch.tensor([5])]", "index 5 is out of bounds for dimension 0 with size 4"),
    ("v[torch.tensor([True, False])]", "The shape of the mask [2] at index 0 does not match"),
    ("v[True]", "boolean indices"),
    ("M[..., ..., 0]", "single ellipsis"),
    ("2[0]", "cannot be subscripted"),
    ("v[0:x]", "slice indices must be integers"),
    ("torch.where(v, v, v)", "where expected condition to be a boolean tensor, but got a tensor with dtype Float"),
    ("torch.where(v > 0, v, M)", "cannot be broadcast"),
    ("torch.cat([v, M])", "Tensors must have same number of dimensions: got 1 and 2"),
    ("torch.cat([v, v], dim=1)", "Dimension out of range (expected to be in range of [-1, 0], but got 1)"),
    ("torch.cat([])", "expected a non-empty list of Tensors"),
    ("torch.cat([x, x])", "zero-dimensional tensor (at position 0) cannot be concatenated"),
    ("torch.cat(v)", "needs a list of tensors"),
    ("torch.cat([v, 1])", "expected Tensor as element 1"),
    ("torch.stack([v, M[0]])", "stack expects each tensor to be equal size, but got [4] at entry 0 and [3] at entry 1"),
    ("torch.stack([v, v], dim=2)", "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("torch.tensor([[1., 2.], [3]])", "expected sequence of length 2 at dim 1 (got 1)"),
    ("torch.tensor(2**70)", "Overflow"),
    ("torch.tensor([x, x])", "numbers only"),
    ("torch.tensor([1.], requires_grad=True)", "give the input a name"),
    ("None + x", "cannot be applied to None"),
    ("-[x]", "cannot be applied to a list"),
    ("[1, 2][5]", "list index 5 out of range"),
    ("x[None] @ torch.tensor([1.])", "same dtype"),
])
def test_pytorch_errors_are_one_clear_message_and_exit_2(expr, message):
    with pytest.raises(EvalError) as info:
        gradviz.trace(expr, at=_at(expr), dtype="float64" if "@" in expr else "float32")
    assert message in str(info.value)
    result = run(expr, *[a for k, v in _at(expr).items() for a in ("--at", f"{k}={json.dumps(v)}")],
                 *(["--dtype", "float64"] if "@" in expr else []))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("expr", ["a < b < c", "x[0", "x[1:2:3:4]", "x[]", "[x:1]"])
def test_syntax_errors_exit_2(expr):
    with pytest.raises(ParseError):
        gradviz.trace(expr, at={"a": 1, "b": 2, "c": 3, "x": [1.0]})
    assert run(expr, "--at", "a=1,b=2,c=3,x=[1]").exit_code == 2


def test_comparisons_are_bool_tensors_without_grad_fn():
    t = gradviz.trace("v > 0.5", at=_at("v"))
    assert t.output.data.dtype == np.bool_ and t.output.grad_fn is None and not t.output.requires_grad
    np.testing.assert_array_equal(t.output.data, [True, False, True, False])
    assert gradviz.trace("2 < 3", at={}).value == 1  # two numbers compare in Python
    doc = json.loads(t.to_json())
    assert doc["output"]["data"] == [True, False, True, False] and doc["graph"]["root"] is None


def test_constants_keep_torch_tensors_dtype():
    assert gradviz.trace("torch.tensor([0, 2])", at={}).output.data.dtype == np.int64
    assert gradviz.trace("torch.tensor([0., 2])", at={}).output.data.dtype == np.float32
    assert gradviz.trace("torch.tensor([True])", at={}).output.data.dtype == np.bool_
    t = gradviz.trace("(v * torch.tensor([0, 1, 2, 3])).sum()", at=_at("v"))
    np.testing.assert_array_equal(t.grads["v"], [0, 1, 2, 3])
    assert t.graph.root.next_functions[0].saved["other"].dtype == np.int64


def test_literals_are_walked_without_recursion():
    deep = "[" * 5000 + "1.5" + "]" * 5000
    with pytest.raises(EvalError, match="5000 dimensions, more than the limit of 32"):
        gradviz.trace(f"torch.tensor({deep}) * x", at={"x": 2.0})
    t = gradviz.trace("torch.tensor(" + "[" * 30 + "1.5" + "]" * 30 + ") * x", at={"x": 2.0})
    assert t.output.shape == (1,) * 30 and float(t.output.data.reshape(())) == 3.0
    nested = [1.5]
    for _ in range(4999):
        nested = [nested]
    flat, shape = flatten(nested)
    assert flat == [1.5] and shape == (1,) * 5000
    with pytest.raises(LiteralError):
        tensor_literal([[1, 2], [3]])


def test_deep_literal_is_refused_over_the_dims_limit_not_crashing():
    result = run("torch.tensor(" + "[" * 40 + "1." + "]" * 40 + ") * x", "--at", "x=2")
    assert result.exit_code in (0, 2) and "Traceback" not in result.output
    result = run("x" + "[None]" * 40, "--at", "x=2")
    assert result.exit_code == 2 and "dimensions" in result.output


def test_cat_of_three_tensors_has_three_next_functions_in_every_view(tmp_path):
    t = gradviz.trace("torch.cat([v, c, v * 2]).sum()", at=_at("vc"), no_grad=["c"])
    assert graph_str(t.graph.root) == "SumBackward0[CatBackward0[AccumulateGrad(v), None, " \
                                      "MulBackward0[AccumulateGrad(v), None]]]"
    doc = json.loads(t.to_json())
    cat = next(f for f in doc["graph"]["functions"] if f["name"] == "CatBackward0")
    assert len(cat["next_functions"]) == 3 and cat["next_functions"][1] is None and cat["saved"] == {"dim": 0}
    np.testing.assert_array_equal(t.grads["v"], [3, 3, 3, 3])
    out = tmp_path / "cat.svg"
    assert run("torch.cat([v, c, v * 2]).sum()", "--at", "v=[1,2],c=[3,4]", "--no-grad", "c", "-o", str(out)).exit_code == 0
    svg = out.read_text()
    assert "CatBackward0" in svg and svg.count("AccumulateGrad") >= 1


def test_tensor_indices_and_their_second_order():
    t = gradviz.trace("(M[:, torch.tensor([0, 2, 2])] * 2).sum()", at=_at("M"))
    np.testing.assert_array_equal(t.grads["M"], [[2, 0, 4], [2, 0, 4]])
    index = t.graph.root.next_functions[0].next_functions[0]
    assert index.name == "IndexBackward0" and index.saved["indices"][0] is None
    result = run("(v[torch.tensor([0, 2, 2])] ** 2).sum()", "--at", "v=[1,2,3,4]", "--order", "2", "--graph", "double")
    assert result.exit_code == 0 and "IndexPutImplBackward0" in result.output
    so = second_order(gradviz.trace("(v[v > 0] ** 3).sum()", at={"v": [1.0, -2.0, 3.0]}, dtype="float64"))
    np.testing.assert_array_equal(so.hessian["v"]["v"], np.diag([6.0, 0.0, 18.0]))
    put = so.graphs["v"].root
    assert put.name == "IndexPutImplBackward0" and put.next_functions[0] is None
    assert put.saved["accumulate"] is True and put.saved["indices"][0].dtype == np.bool_


def test_steps_show_the_rules_with_numbers():
    result = run("v[-1] * 5 + torch.stack([x, x]).sum()", "--at", "v=[1,2,3],x=2", "--steps")
    assert result.exit_code == 0
    assert "zeros((3,)) with 5. at [(-1)] on axis 0 = [0., 0., 5.]" in " ".join(result.output.split())
    assert "grad_tensors[1]" in result.output


@pytest.mark.parametrize("expr", [
    "v[1] * v[2]", "(v[1:] * v[:3]).sum()", "(M[0] * M[1]).sum() * x", "torch.cat([v, v * v]).prod()",
    "(torch.stack([v, v * v]) ** 2).sum()", "torch.where(v > 0, v * v, v).sum()", "M[:, 1:].sum() ** 2",
    "(M[None, 0] * v[:3]).sum()", "torch.where(x > 1, x ** 3, x)",
])
def test_gradient_check_passes(expr):
    result = run(expr, *[a for k, v in _at(expr).items() for a in ("--at", f"{k}={json.dumps(v)}")], "--check")
    assert result.exit_code == 0, result.output
    assert "Gradient check: passed" in result.output


@pytest.mark.parametrize("expr", [
    "v[1] * v[2]", "(v[1:] * v[:3]).sum()", "(M[0] * M[1]).sum()", "torch.cat([v, v * v]).prod()",
    "(torch.stack([v, v * v]) ** 2).sum()", "torch.where(v > 0, v * v, v).sum()", "(M[..., 1] ** 3).sum()",
    "(M[:, None] * M[0]).sum() * x", "torch.where(v >= 0.5, v ** 3, -v).sum()",
    "(v[torch.tensor([0, 2, 2])] ** 3).sum()", "(M[M > 2] ** 3).sum()", "(M[:, torch.tensor([1, 0])] * M[:, 1:]).prod()",
    "(v[:,] ** 3).sum() + (M[:2,] * M).sum() ** 2",
])
def test_hessians_match_pytorch(expr):
    from test_hessian import assert_hessians_match

    assert_hessians_match(expr, _at(expr), "float64", 1e-9, 1e-12)


@pytest.mark.parametrize("expr,wrt", [("(v[1:3] * v[0:2]).sum() + v[0] * v[3]", "v"), ("(torch.stack([v, v]) ** 2).sum()", "v"),
                                      ("(torch.cat([v, v]) ** 2).sum()", "v"),
                                      ("(torch.where(v > 0, v, 0.) ** 2).sum()", "v")])
def test_double_backward_graph_matches_pytorch(expr, wrt):
    from test_hessian import _torch_double_graph

    so = second_order(gradviz.trace(expr, at=_at(expr)))
    assert graph_str(so.graphs[wrt].root) == _torch_double_graph(expr, _at(expr), wrt)


def test_symbolic_where_and_comparisons():
    from gradviz.symbolic import symbolic

    s = symbolic(gradviz.trace("torch.where(x > 1, x, x * x) * (x < 3)", at={"x": 2.0}))
    assert s.error is None and s.agrees == {"x": True}
    assert "not available for" in symbolic(gradviz.trace("torch.stack([x, x]).sum()", at={"x": 2.0})).error
    assert "not available for" in symbolic(gradviz.trace("x > 1", at={"x": 2.0})).error


# --- 3-D tensors and batched matmul (item 4): graphs and values are in the golden fixtures ----------
def _batched(*names):
    from oracle.record_golden import BATCHED_SHAPES, _arange

    return {n: _arange(*BATCHED_SHAPES[n]) for n in names}


@pytest.mark.parametrize("expr,names", [
    ("((A @ B) ** 2).sum()", "AB"), ("((A @ W) ** 2).sum()", "AW"), ("((u @ A) ** 2).sum()", "uA"),
    ("((X @ A) ** 2).sum()", "XA"), ("((C @ B) ** 2).sum()", "CB"), ("(A.transpose(0, 1) @ w).pow(3).sum()", "Aw"),
])
def test_batched_hessians_match_pytorch(expr, names):
    from test_hessian import assert_hessians_match

    assert_hessians_match(expr, _batched(*names), "float64", 1e-9, 1e-11)


@pytest.mark.parametrize("expr,names", [("((A @ B) ** 2).sum()", "AB"), ("((A @ W) ** 2).sum()", "AW"),
                                        ("((X @ A) ** 2).sum()", "XA")])
def test_batched_double_backward_graph_matches_pytorch(expr, names):
    from test_hessian import _torch_double_graph

    at = _batched(*names)
    so = second_order(gradviz.trace(expr, at=at))
    for wrt in at:
        assert graph_str(so.graphs[wrt].root) == _torch_double_graph(expr, at, wrt), wrt


def test_batched_gradient_check_and_views(tmp_path):
    at = _batched("A", "B")
    args = [a for k, v in at.items() for a in ("--at", f"{k}={json.dumps(v)}")]
    result = run("((A @ B) ** 2).sum()", *args, "--check", "--steps")
    assert result.exit_code == 0 and "Gradient check: passed" in result.output and "BmmBackward0" in result.output
    out = tmp_path / "bmm.svg"
    assert run("(A @ B).sum()", *args, "-o", str(out)).exit_code == 0 and "BmmBackward0" in out.read_text()
    doc = json.loads(gradviz.trace("(A @ B).sum()", at=at).to_json())
    bmm = next(f for f in doc["graph"]["functions"] if f["name"] == "BmmBackward0")
    assert sorted(bmm["saved"]) == ["mat2", "self"] and len(bmm["next_functions"]) == 2
