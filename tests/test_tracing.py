"""The tracer (gradviz/tracing.py, gradviz/tracer.py): the parser driving it directly and a tree replayed through it
make the same graph, spans included; the tape's views."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import gradviz
from gradviz.tracing import trace_source, trace_tree
from gradviz.parser import parse
from gradviz.result import Trace, coerce_value
from test_golden import at_values

ROOT = os.path.dirname(os.path.abspath(__file__))


def _golden():
    with open(os.path.join(ROOT, "fixtures", "torch_golden.json")) as fh:
        return json.load(fh)["cases"]


def test_replayed_tree_and_direct_parse_give_the_same_graph():
    count = 0
    for case in _golden():
        at = {k: coerce_value(k, v) for k, v in at_values(case["at"]).items()}
        try:
            direct = trace_source(case["expr"], at, case["no_grad"], case["dtype"])
        except gradviz.GradvizError:
            continue
        replayed = trace_tree(parse(case["expr"]), case["expr"], at, case["no_grad"], case["dtype"])
        assert Trace(direct, [], None, []).to_json() == Trace(replayed, [], None, []).to_json(), case["expr"]
        count += 1
    assert count > 300


@pytest.mark.parametrize("expr,spans", [
    ("(x*y) + 1", {"x*y": (0, 5), "(x*y) + 1": (0, 9)}),
    ("((x*y))", {"x*y": (0, 7)}),
    ("2/(x)", {"2/(x)": (0, 5)}),          # reciprocal and mul: both the division's text
    ("(-x)*y", {"-x": (0, 4), "(-x)*y": (0, 6)}),
    ("sin((x))", {"sin((x))": (0, 8)}),
])
def test_spans_cover_parentheses_as_the_tree_does(expr, spans):
    t = gradviz.trace(expr, at={"x": 2.0, "y": 3.0})
    doc = json.loads(t.to_json())
    got = {expr[s:e] if (s, e) != (0, len(expr)) else expr: (s, e)
           for s, e in (tuple(x["span"]) for x in doc["graph"]["tensors"] if x["span"])}
    for text, span in spans.items():
        assert span in got.values(), (text, got)


def test_a_syntax_error_comes_before_an_evaluation_error():
    with pytest.raises(gradviz.ParseError):
        gradviz.trace("q * (x +", at={"x": 1})  # q has no value, but the text is not an expression


def test_views_are_made_on_demand_and_kept():
    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}, record_steps=False)  # as for --json
    g = t.graph
    assert len(g._tensor_views) <= 1 and not g._function_views  # the output's, at most: none per tensor
    assert g.root is g.root and g.output.grad_fn is g.root
    assert [fn.name for fn in g.functions] == ["AddBackward0", "MulBackward0", "AccumulateGrad",
                                               "AccumulateGrad", "PowBackward0"]
    assert type(g.value[g.output_index]) is float and float(t.value) == 3.0
    assert isinstance(t.inputs["u"].grad, np.ndarray) and t.inputs["u"].grad == 4


@pytest.mark.parametrize("expr, at", [
    ("u*v + u**2", {"u": 1, "v": 2}),
    ("x*x*x - 2*x + x/3", {"x": 1.5}),
    ("sigmoid(W @ x + b).sum()", {"W": [[1, -1], [0.5, 2]], "x": [1, 2], "b": [0, -1]}),
    ("torch.cat([a, b, a]).sum() * c", {"a": [1.0, 2.0], "b": [3.0], "c": 2.0}),
    ("(a + 1) * 2", {"a": 1.0}),
])
def test_dependency_counts_read_from_the_tape_equal_the_next_functions_walk(expr, at):
    import gradviz

    g = gradviz.trace(expr, at=at).graph
    walk: dict = {}
    for i in g.order():
        for j in g.next_functions(i):
            if j is not None:
                walk[j] = walk.get(j, 0) + 1
    assert g.dependency_counts() == walk and walk
