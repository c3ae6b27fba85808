"""The backward engine against itself, bit for bit: the fast path for tensor entries (a rule's
context read off the tape through its row's plan, engine._tape_plan) against the same pass
reading every context through graph.context; and what a pass keeps for the pictures without
its Steps record (engine.Received) against the record, on every golden case and random
expressions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from expressions import EXPRESSIONS, VALUES, trace_or_reject
from gradviz import engine
from gradviz.engine import Received
from gradviz.tracing import trace_source
from gradviz.render import dot, terminal
from gradviz.result import coerce_values, trace_command
from test_golden import OK_CASES, at_values, case_id

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


class _NeverOwned:
    """engine._Run.owned as if no buffer were ever the pass's own: every sum a new array."""

    def __init__(self, n: int = 0):
        pass

    def __getitem__(self, k):
        return 0

    def __setitem__(self, k, v):
        pass


SUMMED_CASES = [  # (expression, values, dtype): a leaf or an intermediate receives three or more gradients
    ("(x + x + x + x).sum()", {"x": [0.3, -0.7, 1.1]}, "float32"),  # AddBackward0 sends one array twice
    ("sigmoid(W @ x + b).sum() + sigmoid(W @ y + b).sum() + sigmoid(W @ x + b).sum()",
     {"W": W, "b": [0.1, -0.3], "x": [0.3, -0.7, 1.1], "y": [1.5, 0.2, -0.6]}, "float32"),
    ("(h * h + h + h * 3).sum() + (h + h).sum()", {"h": [[0.1, 0.2], [1.5, -2.5]]}, "float64"),
    ("(exp(v) + v + v).sum() + (v * v).sum()", {"v": [1e30, -0.0, 3.0]}, "float32"),
    ("(x.sum() * x + x).sum() + x.sum()", {"x": [0.5, 0.25, -2.0]}, "float32"),
]


def _summed(expr, values, dtype, in_place: bool, record: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not in_place:
            m.setattr(engine, "bytearray", _NeverOwned, raising=False)
        g = trace_source(expr, coerce_values(values), dtype=dtype)
        steps = engine.backward(g, None, record_steps=record)
    grads = {g.name_of(i): v for i, v in g.grad.items()}
    return grads, ([(s.grad_in, s.grads_out, s.before, s.after) for s in steps] if record else [])


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("expr, values, dtype", SUMMED_CASES)
def test_gradients_added_into_the_passs_own_arrays_are_the_new_arrays_sums(expr, values, dtype, record, monkeypatch):
    """A buffer the pass made by adding two gradients takes the next ones in place: the same
    gradients and the same recorded steps, bit for bit, as when every sum is a new array (an
    array a rule sent, or one it sent twice, is never added into)."""
    grads, steps = _summed(expr, values, dtype, True, record, monkeypatch)
    want_grads, want_steps = _summed(expr, values, dtype, False, record, monkeypatch)
    assert grads.keys() == want_grads.keys() and grads
    for name in grads:
        assert _same_gradient(grads[name], want_grads[name]), name
    assert len(steps) == len(want_steps)
    for k, (got, want) in enumerate(zip(steps, want_steps)):
        assert _same_gradient(got[0], want[0]), f"step {k} grad_in"
        assert len(got[1]) == len(want[1]) and all(map(_same_gradient, got[1], want[1])), f"step {k} sent"
        assert _same_gradient(got[2], want[2]) and _same_gradient(got[3], want[3]), f"step {k} .grad"


def render(renderable) -> str:
    console = Console(width=80, color_system=None, record=True)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def _same_gradient(a, b) -> bool:
    """The same object kind and the same numbers bit for bit (nan equal to nan)."""
    if a is None or b is None:
        return a is None and b is None
    if type(a) is not type(b):
        return False
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("case", [c for c in OK_CASES if c["result"].get("backward")], ids=case_id)
def test_received_gives_every_edge_as_the_steps_record(case):
    """What the pictures read of a pass without its Steps record (engine.Received: what arrived
    into each function, the rule applied again for an edge) is what the record holds, bit for bit."""
    kwargs = dict(at=at_values(case["at"]), no_grad=case["no_grad"], dtype=case["dtype"],
                  grad_output=case.get("grad_output"))
    recorded = trace_command(case["expr"], record_steps=True, **kwargs)
    light = trace_command(case["expr"], record_steps=False, keep_received=True, **kwargs)
    assert isinstance(light.steps, Received)
    g, steps = recorded.graph, recorded.steps
    for i in range(len(g)):
        if g.op[i] is None and not g.req[i]:
            continue
        assert _same_gradient(light.steps.received(i), steps.received(i)), f"received by entry {i}"
        for slot in range(len(g.operands(i)) if g.op[i] is not None else 0):
            assert _same_gradient(light.steps.along(i, slot), steps.along(i, slot)), f"entry {i}, slot {slot}"
    for name, grad in recorded.grads.items():
        assert _same_gradient(light.grads[name], grad), f"grad of {name}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_pictures_read_the_same_from_a_pass_without_its_steps_record(expr, values):
    """A pass kept as what arrived into each function (engine.Received: the pictures' record,
    the command line's for every view but the steps) draws the tree and the diagram the
    Steps record draws, to the byte."""
    at = dict(zip(["x", "y", "z"], values))
    trace_or_reject(expr, at)
    recorded = trace_command(expr, at=at, record_steps=True)
    light = trace_command(expr, at=at, record_steps=False, keep_received=True)
    assert isinstance(light.steps, Received)
    assert render(terminal.backward_tree(light)) == render(terminal.backward_tree(recorded))
    assert dot.to_digraph(light).source == dot.to_digraph(recorded).source


@pytest.mark.parametrize("expr, at, entry, sent", [
    ("x * y", {"x": 2.0, "y": 3.0}, 2, (3.0, 2.0)),  # MulBackward0: grad·other, grad·self
    ("x * 3", {"x": 2.0}, 1, (3.0, None)),  # (the number's slot: no edge)
    ("x", {"x": 2.0}, 0, ()),  # the output a leaf: its AccumulateGrad sends nothing
    # norm of order 0: the rule's gradient is undefined (ATen's undefined tensor), sent along no edge
    ("F.normalize(v, p=0, dim=0).sum()", {"v": [0.5, -1.0, 2.0]}, None, None),
])
def test_received_answers_per_function(expr, at, entry, sent):
    t = trace_command(expr, at=at, record_steps=False, keep_received=True)
    r, g = t.steps, t.graph
    assert bool(r) and r.position(g.root_index) is None  # no execution order is kept
    assert r.received(len(g)) is None  # (past the tape)
    if entry is None:  # the norm: what it sends is None on its slot
        norm = next(i for i in range(len(g)) if g.op[i] is not None and g.op[i].torch_name == "LinalgVectorNormBackward0")
        assert r.received(norm) is not None and r.along(norm, 0) is None
        return
    assert tuple(r.along(entry, k) for k in range(len(sent))) == sent
    assert r.along(entry, len(sent)) is None
