"""Paths from the output to a leaf (gradviz/paths.py): every path counted, the first listed with
each edge's local gradient and what flows along the path alone; the contributions add up to the
engine's .grad, for numbers and tensors alike, and the bounds say when they were hit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradviz
from gradviz.paths import leaf_paths, paths_json

from expressions import EXPRESSIONS, VALUES, trace_or_reject

TENSOR = {"W": [[1, 2], [3, 4]], "x": [1, -1], "b": [0, 1]}

# expression, point, leaf, number of paths, the hops' local gradients of each path (None: a Jacobian)
CASES = [
    ("u*v + u**2", {"u": 1, "v": 2}, "u", [[1.0, 2.0], [1.0, 2.0]]),
    ("u*v + u**2", {"u": 1, "v": 2}, "v", [[1.0, 1.0]]),
    ("x*x*x", {"x": 2}, "x", [[2.0, 2.0], [2.0, 2.0], [4.0]]),  # 4 + 4 + 4 = 3x²
    # a zero gradient arriving (z = 0): the locals are still the rules' numbers
    ("(x*y)*z", {"x": 3, "y": 2, "z": 0}, "x", [[0.0, 2.0]]),
    ("sin(x)*0 + x", {"x": 1}, "x", [[1.0, 0.0, float(np.cos(np.float32(1)))], [1.0]]),
    ("mean(sigmoid(W @ x + b))", TENSOR, "x", [[None, None, None, None]]),
    ("sum(W @ x) + sum(x*x)", TENSOR, "x", [[1.0, None, None]] * 3),  # (the 0-d Add: a number)
]


@pytest.mark.parametrize("expr,at,leaf,locals_", CASES)
def test_paths_locals_and_sum(expr, at, leaf, locals_):
    t = gradviz.trace(expr, at=at)
    lp = leaf_paths(t)[leaf]
    assert lp.count == len(locals_) and lp.complete
    assert [[h.local for h in p.hops] for p in lp.paths] == [pytest.approx(x) if None not in x else x for x in locals_]
    # each path: its last hop reaches the leaf's AccumulateGrad, each hop goes on from the one before
    for p in lp.paths:
        assert p.hops[0].function == t.graph.root_index and p.hops[-1].to == lp.function
        assert all(a.to == b.function for a, b in zip(p.hops, p.hops[1:]))
        if p.product is not None:
            assert p.contribution == pytest.approx(p.product * lp.start)
    np.testing.assert_allclose(np.asarray(lp.total), np.asarray(t.graph.grad[lp.function]), rtol=1e-6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_contributions_add_up_to_the_engines_grad(expr, values):
    t = trace_or_reject(expr, dict(zip(["x", "y", "z"], values)), dtype="float64")
    for name, lp in leaf_paths(t).items():
        assert lp.complete and lp.count == len(lp.paths)
        assert lp.total == pytest.approx(t.grads[name], rel=1e-9, abs=1e-12)


def test_tensor_paths_carry_a_vector_jacobian_product():
    t = gradviz.trace("sum(W @ x) + sum(x*x)", at=TENSOR)
    lp = leaf_paths(t)["x"]
    contributions = sorted(np.asarray(p.contribution).tolist() for p in lp.paths)
    # W^T·1 = [4, 6], and x*x's two edges each x = [1, -1]
    assert contributions == [[1.0, -1.0], [1.0, -1.0], [4.0, 6.0]]
    assert np.asarray(lp.total).tolist() == t.grads["x"].tolist() == [6.0, 4.0]


def test_bounds_are_said():
    t = gradviz.trace(" + ".join(["x"] * 40) + " + y*x", at={"x": 1, "y": 2})
    lp = leaf_paths(t, max_paths=32)["x"]
    assert lp.count == 41 and len(lp.paths) == 32 and not lp.complete and lp.computed
    assert lp.total == 32.0  # the listed paths' sum, said as such
    # past the work bound a leaf keeps its count but lists nothing
    few = leaf_paths(t, max_work=50)
    assert few["x"].computed and not few["y"].computed and few["y"].count == 1 and few["y"].paths == []
    doc = paths_json(t, max_work=50)
    assert doc["max_work"] == 50 and doc["leaves"]["y"]["computed"] is False


def test_count_is_exact_past_floats():
    # a leaf used at every level of a long chain of functions that each use it twice is reached along
    # 2**n paths; the count is a Python integer
    expr = "x"
    for _ in range(12):
        expr = f"({expr})*x"
    t = gradviz.trace(expr, at={"x": 1})
    assert leaf_paths(t)["x"].count == 13


def test_json_ids_and_values():
    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    doc = paths_json(t)["leaves"]["u"]
    assert doc["function"] == "f2" and doc["count"] == 2 and doc["complete"]
    assert doc["paths"][0] == {"hops": [["f0", 0, 1.0], ["f1", 0, 2.0]], "product": 2.0, "contribution": 2.0}
    assert doc["sum"] == doc["grad"] == 4.0
    assert set(doc["on"]) == {"f0", "f1", "f4", "f2"}


def test_no_backward_no_paths():
    t = gradviz.trace("c*2", at={"c": 1}, no_grad=["c"])
    assert leaf_paths(t) == {} and paths_json(t)["leaves"] == {}


def test_imported_graph_says_why():
    torch = pytest.importorskip("torch")
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    t = gradviz.from_torch((w * w).sum())
    lp = next(iter(leaf_paths(t).values()))
    assert lp.count == 2 and lp.paths == [] and "read from PyTorch" in lp.reason
