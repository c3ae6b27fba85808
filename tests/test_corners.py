"""Issue 15: PyTorch's truth in the corners, as gradviz's CLI and API show it.

The numbers and graphs are PyTorch 2.13.0's, recorded in tests/fixtures/torch_golden.json (the
"corners" cases of tests/oracle/record_golden.py; test_golden.py compares them); these tests
hold what the fixtures cannot: the CLI's exit code and message for what PyTorch refuses, and
saved values as the JSON document shows them.
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

import gradviz
from gradviz.cli import main

M = "M=[[1,2,3],[4,5,6]]"


def run(*args):
    return CliRunner().invoke(main, list(args))


def document(*args) -> dict:
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.splitlines()[-1])


def saved_of(doc: dict, name: str) -> dict:
    return next(f["saved"] for f in doc["graph"]["functions"] if f["name"] == name)


# What PyTorch (or Python, before it) refuses: one clear message, exit 2, never a traceback.
REFUSED = [
    (["M * 2", "--at", M, "--grad-output", "[1,2,3]"], "Mismatch in shape"),
    (["M * 2", "--at", M, "--grad-output", "[[1,2,3]]"], "Mismatch in shape"),
    (["sum(M, 1, 1)", "--at", M], "'keepdim' must be bool"),
    (["M.sum(1, keepdim=0)", "--at", M], "'keepdim' must be bool"),
    (["M.mean(1, keepdim=1)", "--at", M], "'keepdim' must be bool"),
    (["x * 10 ** 40", "--at", "x=1"], "int too big to convert"),
    (["x * 2 ** 64", "--at", "x=1"], "int too big to convert"),
    (["clamp(x, 2 ** 64)", "--at", "x=1"], "int too big to convert"),
    (["x + 10 ** 40", "--at", "x=1"], "int too big to convert"),
    (["sum(x, dim=0, dim=0)", "--at", "x=[1,2]"], "keyword argument repeated: dim"),
    (["max(x)", "--at", "x=[]"], "empty tensor"),
    (["min(x)", "--at", "x=[]"], "empty tensor"),
]


@pytest.mark.parametrize("args,message", REFUSED, ids=[a[0] + " " + a[-1] for a, _ in REFUSED])
def test_what_pytorch_refuses_is_one_clear_error(args, message):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr
    assert "Traceback" not in r.output and "internal error" not in r.output


@pytest.mark.parametrize("expr", ["s.transpose(0, -1)", "transpose(s, 0, 0)", "s.transpose(-1, -1)"])
def test_transpose_of_a_0d_tensor(expr):
    doc = document(expr, "--at", "s=1.5")
    assert doc["output"]["grad_fn"] == "TransposeBackward0" and doc["output"]["data"] == 1.5
    assert doc["inputs"]["s"]["grad"] == 1.0


@pytest.mark.parametrize("expr,at,saved", [
    ("x.sum(-1)", "x=[1,2,3]", ("SumBackward1", "dim", [-1])),
    ("softmax(x, -1)", "x=[1,2,3]", ("SoftmaxBackward0", "dim", -1)),
    ("x.unsqueeze(-1)", "x=[1,2,3]", ("UnsqueezeBackward0", "dim", -1)),
    ("M.transpose(-1, -2)", M, ("TransposeBackward0", "dim0", -1)),
    ("M.transpose(-1, -2)", M, ("TransposeBackward0", "dim1", -2)),
    ("M.mean(-2)", M, ("MeanBackward1", "dim", [-2])),
])
def test_negative_dims_are_saved_as_given(expr, at, saved):
    name, key, value = saved
    assert saved_of(document(expr, "--at", at, "--grad-output", "ones"), name)[key] == value


def test_nan_and_empty_tensors():
    nan = math.nan
    for fn in ("max", "min"):
        assert gradviz.trace(f"{fn}(x)", at={"x": [nan, 1, 2]}).grads["x"].tolist() == [1, 0, 0]
    g = gradviz.trace("prod(x)", at={"x": [nan, 0, 1]}).grads["x"].tolist()
    assert g[0] == 0 and math.isnan(g[1]) and math.isnan(g[2])
    t = gradviz.trace("prod(x)", at={"x": []})
    assert float(t.value) == 1.0 and t.grads["x"].shape == (0,)


def _golden_ok_cases():
    from test_golden import OK_CASES

    return [c for c in OK_CASES if "strides" in c["result"]]


@pytest.mark.parametrize("case", _golden_ok_cases(), ids=lambda c: c["expr"])
def test_output_strides_are_pytorchs(case):
    """Every golden case's output strides (memory layout) as PyTorch's ``tensor.stride()``."""
    from test_golden import run_case

    t = run_case(case)
    assert list(t.graph.strides_of(t.graph.output_index)) == case["result"]["strides"]
