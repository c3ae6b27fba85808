"""Every op × operand kind against golden fixtures recorded from real PyTorch 2.13.0.

The fixtures come from tests/oracle/record_golden.py (run it with torch installed to
re-record). These tests need no torch: they compare values, grads, the backward graph's
class names and order, saved values and the engine's execution order.
"""

import json
import math
import os

import numpy as np
import pytest

import gradviz
from gradviz.errors import GradvizError
from gradviz.render.jsondoc import array, saved_value

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "torch_golden.json")
with open(FIXTURE) as fh:
    CASES = json.load(fh)["cases"]


def graph_str(fn) -> str:
    """PyTorch-style Name[child, ...] string, built with an explicit stack."""
    out = []
    stack = [fn]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if item is None:
            out.append("None")
            continue
        if item.variable is not None:
            out.append(f"AccumulateGrad({item.variable.name})")
            continue
        out.append(item.name + "[")
        todo = []
        for i, nxt in enumerate(item.next_functions):
            if i:
                todo.append(", ")
            todo.append(nxt)
        todo.append("]")
        stack.extend(reversed(todo))
    return "".join(out)


def to_float(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return v


def assert_close(ours, theirs, what, rtol=2e-5, atol=1e-6):
    theirs_arr = np.asarray(_floats(theirs), dtype=np.float64)
    ours_arr = np.asarray(_floats(ours), dtype=np.float64)
    assert ours_arr.shape == theirs_arr.shape, f"{what}: shape {ours_arr.shape} != {theirs_arr.shape}"
    np.testing.assert_allclose(ours_arr, theirs_arr, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def _floats(v):
    if isinstance(v, list):
        return [_floats(x) for x in v]
    if isinstance(v, bool):
        return float(v)
    return to_float(v)


def at_values(at: dict) -> dict:
    """A case's inputs as gradviz takes them: the fixture's "NaN"/"Infinity" strings as floats, and
    {"int64": [...]} as an int64 tensor (class targets)."""
    return {name: np.array(v["int64"], dtype=np.int64) if isinstance(v, dict) else _floats(v)
            for name, v in at.items()}


def run_case(case):
    return gradviz.trace(
        case["expr"], at=at_values(case["at"]), no_grad=case["no_grad"], dtype=case["dtype"],
        grad_output=case.get("grad_output"),
    )


def case_id(case):
    return f"{case['expr']}@{','.join(f'{k}={v}' for k, v in case['at'].items())}" + (
        f"[{case['dtype']}]" if case["dtype"] != "float32" else "")


# PyTorch accepts these, gradviz's language deliberately does not (subscripts, tuples,
# named-tuple fields): they must be clear errors, not wrong answers.
UNSUPPORTED = ()
OK_CASES = [c for c in CASES if not c["result"].get("error") and not any(u in c["expr"] for u in UNSUPPORTED)]
ERROR_CASES = [c for c in CASES if c["result"].get("error") or any(u in c["expr"] for u in UNSUPPORTED)]


@pytest.mark.parametrize("case", OK_CASES, ids=case_id)
def test_values_and_grads(case):
    res = case["result"]
    t = run_case(case)
    assert_close(array(t.value), res["value"], "value")
    assert list(t.output.shape) == res["shape"]
    assert str(np.asarray(t.output.data).dtype) == res["dtype"], "dtype"  # int64/bool constants, promotion
    assert t.output.requires_grad == res["requires_grad"]
    if res.get("backward"):
        for name, g in res["grads"].items():
            ours = t.grads[name]
            if g is None:
                assert ours is None, f"grad of {name} should be None"
            else:
                assert ours is not None, f"grad of {name} missing"
                assert_close(array(ours), g, f"grad of {name}")
    else:
        assert all(v is None for v in t.grads.values())


@pytest.mark.parametrize("case", [c for c in OK_CASES if c["result"].get("graph_str")], ids=case_id)
def test_graph_names_and_order(case):
    res = case["result"]
    t = run_case(case)
    assert t.output.grad_fn is not None
    assert graph_str(t.graph.root) == res["graph_str"]
    if res.get("exec_order") and res.get("backward"):
        ours = [s.function.name if s.function.variable is None else f"AccumulateGrad({s.function.variable.name})"
                for s in t.steps]
        assert ours == res["exec_order"]


@pytest.mark.parametrize("case", [c for c in OK_CASES if c["result"].get("nodes")], ids=case_id)
def test_saved_values(case):
    """Every node's _saved_* values: names, None-ness, and numbers (PyTorch's DFS order = ours)."""
    t = run_case(case)
    theirs = [n for n in case["result"]["nodes"] if "AccumulateGrad" not in n["name"]]
    ours = [f for f in t.graph.functions if f.variable is None]
    assert [f.name for f in ours] == [n["name"] for n in theirs]
    for fn, node in zip(ours, theirs):
        expected = {k[len("_saved_"):]: v for k, v in node.get("saved", {}).items()}
        assert sorted(fn.saved) == sorted(expected), f"{fn.name} saved names"
        for key, value in expected.items():
            mine = saved_value(fn.saved[key])
            if value is None:
                assert mine is None, f"{fn.name}._saved_{key} should be None"
            elif isinstance(value, str) and value not in ("NaN", "Infinity", "-Infinity"):  # gelu's approximate
                assert mine == value, f"{fn.name}._saved_{key}: {mine!r} != {value!r}"
            elif isinstance(value, list) and any(x is None for x in value):  # IndexBackward0's indices
                assert mine == value, f"{fn.name}._saved_{key}: {mine} != {value}"
            elif isinstance(value, (bool, int)) or (isinstance(value, list) and all(isinstance(x, int) for x in value)):
                assert mine == value, f"{fn.name}._saved_{key}: {mine} != {value}"
            else:
                assert_close(mine, value, f"{fn.name}._saved_{key}")


@pytest.mark.parametrize("case", [c for c in OK_CASES if c["result"].get("leaf")], ids=case_id)
def test_output_that_is_a_leaf(case):
    t = run_case(case)
    assert t.output.is_leaf and t.output.grad_fn is None


@pytest.mark.parametrize("case", ERROR_CASES, ids=case_id)
def test_pytorch_errors_are_clear_errors(case):
    with pytest.raises(GradvizError):
        run_case(case)

