"""The backward pass's fast path for tensor entries (a rule's context read off the tape through
its row's plan, engine._tape_plan) against the same pass reading every context through
graph.context: the same gradients, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz import engine
from gradviz.graph import trace_source
from gradviz.result import coerce_values

W = [[0.25, -0.5, 0.125], [0.5, 0.375, -0.25]]
CASES = [  # (expression, values, dtype)
    ("sigmoid(W @ x + b).sum() + sigmoid(W @ y + b).sum()",
     {"W": W, "b": [0.1, -0.3], "x": [0.3, -0.7, 1.1], "y": [1.5, 0.2, -0.6]}, "float32"),
    ("sigmoid(W @ x + b).sum() * 3", {"W": W, "b": [0.1, -0.3], "x": [0.3, -0.7, 1.1]}, "float64"),
    ("(W * b).sum(0).sum() + (W + b).sum(1, keepdim=True).sum()",
     {"W": [[1.0, 2.0], [3.0, -4.0]], "b": [0.5, -1.5]}, "float32"),
    ("tanh(W @ x).sum() + (x * x).sum()", {"W": W, "x": [0.3, -0.7, 1.1]}, "float32"),
    ("(exp(x) / 0.0).sum() + x.sum()", {"x": [1.0, -0.0, 2.0]}, "float32"),
    ("(x.sum() * x).sum() + x.sum() * 2", {"x": [0.5, 0.25, -2.0]}, "float64"),
]


def _grads(expr, values, dtype, plans: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not plans:
            m.setattr(engine, "_tape_plan", lambda op: None)
        g = trace_source(expr, coerce_values(values), dtype=dtype)
        engine.backward(g, None, record_steps=False)
    return {g.name_of(i): np.asarray(v) for i, v in g.grad.items()}


@pytest.mark.parametrize("expr, values, dtype", CASES)
def test_plans_give_the_contexts_gradients_bit_for_bit(expr, values, dtype, monkeypatch):
    fast = _grads(expr, values, dtype, True, monkeypatch)
    general = _grads(expr, values, dtype, False, monkeypatch)
    assert fast.keys() == general.keys() and fast
    for name in fast:
        assert fast[name].dtype == general[name].dtype
        assert fast[name].tobytes() == general[name].tobytes(), name


@pytest.mark.parametrize("key, sources", [("sum", (4,)), ("sum_dim", (3, 3, 4)), ("mv", (0, 1)),
                                          ("sigmoid", (2,)), ("add", (3,))])
def test_a_sums_sizes_are_read_off_the_tape(key, sources):
    from gradviz.ops import OPS

    assert tuple(sorted(source for _, source, _ in engine._tape_plan(OPS[key]))) == sources
