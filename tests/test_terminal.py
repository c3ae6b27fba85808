"""Snapshot tests for gradviz.render.terminal: rich renderables drawn at 80 columns, no color."""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
from rich.console import Console

import gradviz
from gradviz.graph import Graph
from gradviz.render import terminal
from gradviz.numbers import abbreviate, format_math, format_saved, format_tensor


def draw(renderable, width: int = 80) -> str:
    console = Console(width=width, color_system=None, file=io.StringIO(), highlight=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


# ----------------------------------------------------------------------------- the lecture's examples

SEEDS = {
    "x_squared": (
        "x**2", {"x": 2},
        """\
f(x=2.) = 4.
∂f/∂x = 4.""",
        """\
tensor  data  grad  requires_grad  is_leaf  grad_fn
─────────────────────────────────────────────────────────
x       2.    4.    True           True     None
x**2    4.    None  True           False    PowBackward0""",
        """\
Backward graph  (on each edge: gradient ▶ the function it flows into)
x**2 = 4.
└── 1. ▶ PowBackward0  exponent=2 self=2.
    └── 4. ▶ AccumulateGrad → x.grad = 4.""",
    ),
    "quadratic": (
        "x**2 + 2*x + 1", {"x": 2},
        """\
f(x=2.) = 9.
∂f/∂x = 6.""",
        """\
tensor          data  grad  requires_grad  is_leaf  grad_fn
─────────────────────────────────────────────────────────────────
x               2.    6.    True           True     None
x**2            4.    None  True           False    PowBackward0
2*x             4.    None  True           False    MulBackward0
x**2 + 2*x      8.    None  True           False    AddBackward0
x**2 + 2*x + 1  9.    None  True           False    AddBackward0""",
        """\
Backward graph  (on each edge: gradient ▶ the function it flows into)
x**2 + 2*x + 1 = 9.
└── 1. ▶ AddBackward0  alpha=1
    ├── 1. ▶ AddBackward0  alpha=1
    │   ├── 1. ▶ PowBackward0  exponent=2 self=2.
    │   │   └── 4. ▶ AccumulateGrad → x.grad (1 of 2, summed below)
    │   └── 1. ▶ MulBackward0  other=2 self=None
    │       ├── 2. ▶ AccumulateGrad → x.grad = 4. + 2. = 6.
    │       └── None (this input needs no grad)
    └── None (this input needs no grad)""",
    ),
    "partial_uv": (
        "u*v + u**2", {"u": 1, "v": 2},
        """\
f(u=1., v=2.) = 3.
∂f/∂u = 4.
∂f/∂v = 1.""",
        """\
tensor      data  grad  requires_grad  is_leaf  grad_fn
─────────────────────────────────────────────────────────────
u           1.    4.    True           True     None
v           2.    1.    True           True     None
u*v         2.    None  True           False    MulBackward0
u**2        1.    None  True           False    PowBackward0
u*v + u**2  3.    None  True           False    AddBackward0""",
        """\
Backward graph  (on each edge: gradient ▶ the function it flows into)
u*v + u**2 = 3.
└── 1. ▶ AddBackward0  alpha=1
    ├── 1. ▶ MulBackward0  other=2. self=1.
    │   ├── 2. ▶ AccumulateGrad → u.grad (1 of 2, summed below)
    │   └── 1. ▶ AccumulateGrad → v.grad = 1.
    └── 1. ▶ PowBackward0  exponent=2 self=1.
        └── 2. ▶ AccumulateGrad → u.grad = 2. + 2. = 4.""",
    ),
}


@pytest.mark.parametrize("name", SEEDS)
def test_summary(name):
    expr, at, summary, _, _ = SEEDS[name]
    assert draw(terminal.summary(gradviz.trace(expr, at=at))) == summary


@pytest.mark.parametrize("name", SEEDS)
def test_tensors_table(name):
    expr, at, _, table, _ = SEEDS[name]
    text = draw(terminal.tensors_table(gradviz.trace(expr, at=at)))
    lines = text.splitlines()
    assert lines[0] == "Tensors"
    # Title, header, rule and one row per tensor; a caption may follow (compared elsewhere).
    assert "\n".join(lines[1:1 + len(table.splitlines())]) == table


@pytest.mark.parametrize("name", SEEDS)
def test_backward_tree(name):
    expr, at, _, _, tree = SEEDS[name]
    assert draw(terminal.backward_tree(gradviz.trace(expr, at=at))) == tree


@pytest.mark.parametrize("name", SEEDS)
def test_report_is_summary_table_tree_within_80_columns(name):
    expr, at, summary, table, tree = SEEDS[name]
    text = draw(terminal.report(gradviz.trace(expr, at=at)))
    assert text.startswith(summary + "\n\nTensors\n" + table)
    assert text.endswith(tree)
    assert max(len(line) for line in text.splitlines()) <= 80


# ----------------------------------------------------------------------------- other shapes of graph

def test_no_grad_input_in_summary_and_tree():
    t = gradviz.trace("w*x + b", at={"w": 2, "x": 3, "b": 1}, no_grad=["x"])
    assert draw(terminal.summary(t)) == (
        "f(w=2., x=3., b=1.) = 7.\n"
        "∂f/∂w = 3.\n"
        "∂f/∂x not computed (x has requires_grad=False)\n"
        "∂f/∂b = 1."
    )
    assert draw(terminal.backward_tree(t)).splitlines()[2:] == [
        "└── 1. ▶ AddBackward0  alpha=1",
        "    ├── 1. ▶ MulBackward0  other=3. self=None",
        "    │   ├── 3. ▶ AccumulateGrad → w.grad = 3.",
        "    │   └── None (this input needs no grad)",
        "    └── 1. ▶ AccumulateGrad → b.grad = 1.",
    ]


def test_output_without_grad():
    t = gradviz.trace("x*2", at={"x": 3}, no_grad=["x"])
    assert draw(terminal.summary(t)) == "f(x=3.) = 6.\nno gradients: the output does not require grad"
    assert draw(terminal.backward_tree(t)) == (
        "Backward graph\nx*2 = 6.\n└── no backward graph: the output does not require grad"
    )


def test_leaf_used_three_times_shows_each_contribution_and_the_sum():
    t = gradviz.trace("x*x*x", at={"x": 2})
    lines = [line for line in draw(terminal.backward_tree(t)).splitlines() if "x.grad" in line]
    assert len(lines) == 3
    assert lines[0].endswith("4. ▶ AccumulateGrad → x.grad (1 of 3, summed below)")
    assert lines[1].endswith("4. ▶ AccumulateGrad → x.grad (2 of 3, summed below)")
    assert lines[2].endswith("4. ▶ AccumulateGrad → x.grad = 4. + 4. + 4. = 12.")


def test_vectors_fit_80_columns():
    t = gradviz.trace("sigmoid(W @ x + b).sum()", at={"W": [[1, -1], [0.5, 2]], "x": [1, 2], "b": [0, -1]})
    text = draw(terminal.report(t))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "∂f/∂W = [[0.1966, 0.3932], [0.0285, 0.0569]]" in text
    assert "W.grad = [[0.1966, 0.3932], [0.0285, 0.0569]]" in text
    # A number is never cut in two by wrapping in the table.
    assert "[[1.0000," in text and "-1.0000]," in text


def _shared_function_trace():
    """f = g + g where g = x*y is one tensor (so one MulBackward0 reached twice): built with the
    tracer directly, as the expression language has no way to name g."""
    from gradviz.engine import backward
    from gradviz.tracer import Tracer
    from gradviz.ops import OPS
    from gradviz.result import Trace

    graph = Graph("g + g", "float32")
    tr = Tracer(graph)
    x, y = tr.leaf("x", 2.0, True), tr.leaf("y", 3.0, True)
    g = tr.apply(OPS["mul"], (x, y))
    f = tr.apply(OPS["add"], (g, g), {"alpha": 1}, types.SimpleNamespace(start=0, end=5))
    graph.output_index = graph.root_index = f.index
    return Trace(graph, backward(graph), None, [])


def test_shared_function_is_expanded_once_and_referenced_after():
    lines = draw(terminal.backward_tree(_shared_function_trace())).splitlines()
    assert lines[1:] == [
        "g + g = 12.",
        "└── 1. ▶ AddBackward0  alpha=1",
        "    ├── 1. ▶ MulBackward0  other=3. self=2.  (1 of 2)",
        "    │   ├── 6. ▶ AccumulateGrad → x.grad = 6.",
        "    │   └── 4. ▶ AccumulateGrad → y.grad = 4.",
        "    └── 1. ▶ MulBackward0 (f1, expanded above)  receives 1. + 1. = 2.",
    ]


def test_deep_graph_is_cut_without_recursion():
    n = 3000  # far deeper than Python's recursion limit would allow a recursive walk
    expr = " + ".join(f"x*{i}" for i in range(1, n + 1))
    t = gradviz.trace(expr, at={"x": 1})
    # the budget and depth alone (collapsing the repeated terms: below)
    text = draw(terminal.backward_tree(t, max_nodes=60, max_depth=6, collapse=False))
    assert "│   │   │   │   │   │   └── … deeper levels hidden" in text
    assert "x.grad = sum of 3000 = 4501500." in text  # the last edge into x: every contribution summed
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = draw(terminal.backward_tree(t, max_nodes=10, max_depth=100, collapse=False)).splitlines()
    assert lines[-1] == "… more not shown: 10 lines drawn of a graph with 6000 functions (--max-nodes)"
    assert len(lines) == 10 + 3


def test_long_table_is_cut_and_says_so():
    expr = " + ".join(f"x{i}" for i in range(50))
    t = gradviz.trace(expr, at={f"x{i}": i for i in range(50)})
    lines = draw(terminal.tensors_table(t, max_rows=10)).splitlines()
    assert lines[3].startswith("x0 ") and lines[11].startswith("x8 ")  # the first 9 rows, then the output
    assert lines[12].startswith("x0 + x1 + x2") and "1225." in lines[12]  # the whole sub-expression, folded
    assert lines[13] == f"showing 10 of {len(t.graph.tensors)} tensors (--format json lists all)"


def test_many_inputs_in_summary():
    t = gradviz.trace(" + ".join(f"x{i}" for i in range(12)), at={f"x{i}": 1 for i in range(12)})
    text = draw(terminal.summary(t))
    assert text.splitlines()[0] == "f(x0=1., x1=1., x2=1., x3=1., x4=1., x5=1., x6=1., x7=1., …) = 12."
    assert text.splitlines()[-1] == "… 4 more inputs (see --format json)"


@pytest.mark.parametrize("expr, at, first", [
    ("u*v + u**2", {"u": 1, "v": 2}, "f(u=1., v=2.) = 3."),
    ("((w*x + b - y)**2).mean()", {"w": 2, "b": 1, "x": [1, 2, 3], "y": [2, 4, 6]},
     "f(w=2., b=1., x=[1., 2., 3.], y=[2., 4., 6.]) = 1."),  # within 80 columns: the values stay
    ("sigmoid(W @ x + b).sum()", {"W": [[1, 2], [3, 4]], "x": [0.5, -1], "b": [0.1, 0.2]},
     "f(W=[[1., 2.], [3., 4.]], x=[0.5000, -1.0000], b=[0.1000, 0.2000]) = 0.2889"),
    # too long for the values: the names alone, so the output's value stays on the first line
    ("cross_entropy(W @ x + b, tensor(1))", {"W": [[1, 2], [3, 4], [5, 6]], "x": [0.5, -1], "b": [0, 0, 0]},
     "f(W, x, b) = 1.4076"),
    (" + ".join(f"x{i}*x{i}" for i in range(12)), {f"x{i}": 0.25 for i in range(12)}, "f(x0, x1, x2, x3, x4, x5, x6, x7, …) = 0.7500"),
])
def test_summary_first_line_keeps_the_value(expr, at, first):
    lines = draw(terminal.summary(gradviz.trace(expr, at=at))).splitlines()
    assert lines[0] == first and len(lines[0]) <= 80


# ----------------------------------------------------------------------------- numbers, one way

@pytest.mark.parametrize("value, torch_text, math_text", [
    (4.0, "4.", "4"),
    (0.9092974, "0.9093", "0.9093"),
    (2.5, "2.5000", "2.5"),
    (-1.0, "-1.", "-1"),
    (-0.0, "-0.", "0"),
    (0.0, "0.", "0"),
    (float("inf"), "inf", "inf"),
    (float("-inf"), "-inf", "-inf"),
    (float("nan"), "nan", "nan"),
    (1e-5, "1.0000e-05", "1e-05"),
    (123456789.0, "1.2346e+08", "1.2346e+08"),
    ([1.0, 2.0, 3.0], "[1., 2., 3.]", "[1, 2, 3]"),
    ([[1.0, 2.0], [3.0, 4.0]], "[[1., 2.],\n [3., 4.]]", "[[1, 2], [3, 4]]"),
    ([-1.5, 2.0], "[-1.5000,  2.0000]", "[-1.5, 2]"),
    ([0.5, 1000.0], "[5.0000e-01, 1.0000e+03]", "[5e-01, 1e+03]"),
    ([float("nan"), 1.0], "[nan, 1.]", "[nan, 1]"),
])
def test_numbers_as_pytorch_prints_them(value, torch_text, math_text):
    a = np.asarray(value, dtype=np.float32)
    assert format_tensor(a) == torch_text
    assert format_math(a) == math_text


def test_long_arrays_are_summarized_beyond_the_threshold():
    assert "..." not in format_tensor(np.arange(1000, dtype=np.float32) / 10)
    assert format_tensor(np.arange(1001, dtype=np.float32) / 10, one_line=True) == (
        "[0.0000, 0.1000, 0.2000, ..., 99.8000, 99.9000, 100.0000]")
    assert format_tensor(np.ones((100, 100), dtype=np.float32), one_line=True) == (
        "[[1., 1., 1., ..., 1., 1., 1.], [1., 1., 1., ..., 1., 1., 1.], [1., 1., 1., ..., 1., 1., 1.], ..., "
        "[1., 1., 1., ..., 1., 1., 1.], [1., 1., 1., ..., 1., 1., 1.], [1., 1., 1., ..., 1., 1., 1.]]")
    assert format_tensor(np.zeros((2, 0), dtype=np.float32)) == "[]"


@pytest.mark.parametrize("value, text", [
    (None, "None"), (2, "2"), (2.5, "2.5"), (True, "True"), ((1, 0), "(1, 0)"), ((3,), "(3,)"),
    (np.float32(2.0), "2."), (np.asarray([1.0, 2.5], dtype=np.float32), "[1.0000, 2.5000]"),
])
def test_saved_values(value, text):
    assert format_saved(value) == text


def test_abbreviate_cuts_in_the_middle():
    assert abbreviate("short", 10) == "short"
    assert abbreviate("a  b\n c", 10) == "a b c"
    cut = abbreviate("sigmoid(w*x + b) * very_long_name", 20)
    assert len(cut) == 20 and "…" in cut and cut.startswith("sigmoid(")
    assert len(abbreviate("x" * 1_000_000, 30)) == 30


def test_numbers_match_pytorch_printing():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cases = [rng.normal(size=5) * scale for scale in (1e-6, 1e-3, 1, 100, 1e9)]
    cases += [np.round(rng.normal(size=4) * 10), np.array([0.0, np.inf, -2.5]), np.array(7.0)]
    for case in cases:
        t = torch.tensor(case, dtype=torch.float32)
        expected = "\n".join(line[len("tensor("):] for line in str(t)[:-1].split("\n"))
        assert format_tensor(case.astype(np.float32) if case.ndim else float(case)) == expected


def test_tensor_table_shows_shapes_and_full_class_names():
    import io

    from rich.console import Console

    from gradviz.render.terminal import tensors_table

    t = gradviz.trace("mean(sigmoid(W @ x + b))",
                      at={"W": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], "x": [1, 2, 3], "b": [0.1, -0.1]})
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None).print(tensors_table(t))
    text = buf.getvalue()
    for shape in ("(2, 3)", "(3,)", "(2,)", "()"):
        assert shape in text
    for name in ("MvBackward0", "AddBackward0", "SigmoidBackward0", "MeanBackward0"):
        assert name in text
    assert max(len(line) for line in text.splitlines()) <= 80


# ----------------------------------------------------------------------------- collapsing repeated structure

def _products(n: int) -> tuple[str, dict]:
    """Issue 7's chain ``x0*x1 + x1*x2 + ...`` of ``n`` products."""
    return " + ".join(f"x{i}*x{i + 1}" for i in range(n)), {f"x{i}": 0.5 + (i % 7) / 8 for i in range(n + 1)}


def test_chain_of_products_collapses_to_a_few_lines():
    t = gradviz.trace(*_products(666))
    assert draw(terminal.backward_tree(t)) == """\
Backward graph  (on each edge: gradient ▶ the function it flows into)
x0*x1 + x1*x2 + x2*x3 + x3*x4 + x…x665 + x665*x666 = 519.8438
└── 1. ▶ AddBackward0  alpha=1
    ├── 1. ▶ AddBackward0  alpha=1
    │   ├── 1. ▶ AddBackward0  alpha=1
    │   │   ├── 1. ▶ ⋯ 659 more × AddBackward0 ← MulBackward0(AccumulateGrad,
    │   │   │   AccumulateGrad)  (1976 functions hidden)
    │   │   │   └── 1. ▶ AddBackward0  alpha=1
    │   │   │       ├── 1. ▶ AddBackward0  alpha=1
    │   │   │       │   ├── 1. ▶ AddBackward0  alpha=1
    │   │   │       │   │   ├── 1. ▶ MulBackward0  other=0.6250 self=0.5000
    │   │   │       │   │   │   ├── 0.6250 ▶ AccumulateGrad → x0.grad = 0.6250
    │   │   │       │   │   │   └── 0.5000 ▶ AccumulateGrad → x1.grad (1 of 2,
    │   │   │       │   │   │       summed below)
    │   │   │       │   │   └── 1. ▶ MulBackward0  other=0.7500 self=0.6250
    │   │   │       │   │       ├── 0.7500 ▶ AccumulateGrad → x1.grad = 0.5000 +
    │   │   │       │   │       │   0.7500 = 1.2500
    │   │   │       │   │       └── 0.6250 ▶ AccumulateGrad → x2.grad (1 of 2,
    │   │   │       │   │           summed below)
    │   │   │       │   └── 1. ▶ MulBackward0  other=0.8750 self=0.7500
    │   │   │       │       ├── 0.8750 ▶ AccumulateGrad → x2.grad = 0.6250 +
    │   │   │       │       │   0.8750 = 1.5000
    │   │   │       │       └── 0.7500 ▶ AccumulateGrad → x3.grad (1 of 2,
    │   │   │       │           summed below)
    │   │   │       └── 1. ▶ MulBackward0  other=1. self=0.8750
    │   │   │           ├── 1. ▶ AccumulateGrad → x3.grad = 0.7500 + 1. = 1.7500
    │   │   │           └── 0.8750 ▶ AccumulateGrad → x4.grad = sum of 2 = 2.
    │   │   └── 1. ▶ MulBackward0  other=1.2500 self=1.1250
    │   │       ├── 1.2500 ▶ AccumulateGrad → x663.grad = sum of 2 = 2.2500
    │   │       └── 1.1250 ▶ AccumulateGrad → x664.grad (1 of 2, summed below)
    │   └── 1. ▶ MulBackward0  other=0.5000 self=1.2500
    │       ├── 0.5000 ▶ AccumulateGrad → x664.grad = 1.1250 + 0.5000 = 1.6250
    │       └── 1.2500 ▶ AccumulateGrad → x665.grad (1 of 2, summed below)
    └── 1. ▶ MulBackward0  other=0.6250 self=0.5000
        ├── 0.6250 ▶ AccumulateGrad → x665.grad = 1.2500 + 0.6250 = 1.8750
        └── 0.5000 ▶ AccumulateGrad → x666.grad = 0.5000
⋯ collapsed repeated structure hides 1976 of 1998 functions (--max-nodes)"""


@pytest.mark.parametrize("expr, at, line, footer", [
    ("x" + "*y" * 400, {"x": 1, "y": 1.001},
     "1.0030 ▶ ⋯ 394 more × MulBackward0 ← AccumulateGrad  (394 functions hidden)",
     "⋯ collapsed repeated structure hides 394 of 402 functions (--max-nodes)"),
    (" + ".join(f"sin(x{i})" for i in range(200)), {f"x{i}": 0.5 for i in range(200)},
     "1. ▶ ⋯ 193 more × AddBackward0 ← SinBackward0(AccumulateGrad)  (579 functions hidden)",
     "⋯ collapsed repeated structure hides 579 of 599 functions (--max-nodes)"),
    ("tanh(" * 60 + "x" + "*w)" * 60, {"x": 1, "w": 0.5},
     "0.1250 ▶ ⋯ 54 more × (TanhBackward0 → MulBackward0 ← AccumulateGrad)  (108 functions hidden)",
     "⋯ collapsed repeated structure hides 108 of 122 functions (--max-nodes)"),
    (" + ".join("sin(" * 40 + f"x{i}" + ")" * 40 for i in range(30)), {f"x{i}": 1 for i in range(30)},
     "1. ▶ ⋯ 23 more × AddBackward0 ← 40 nested SinBackward0(AccumulateGrad)  (966 functions hidden)",
     "⋯ 8 collapsed runs of repeated structure hide 1204 of 1259 functions (--max-nodes)"),
])
def test_repeated_motifs_collapse_to_one_line(expr, at, line, footer):
    lines = draw(terminal.backward_tree(gradviz.trace(expr, at=at)), width=160).splitlines()
    assert sum(line in text for text in lines) == 1
    assert footer in lines
    assert len(lines) < 100


def test_non_repetitive_big_tree_falls_back_to_the_budget():
    terms = [f"x{i}*x{i + 1}" for i in range(256)]
    while len(terms) > 1:  # summed pairwise: nothing repeats along a chain
        terms = [f"({terms[i]} + {terms[i + 1]})" for i in range(0, len(terms), 2)]
    t = gradviz.trace(terms[0], at={f"x{i}": 1 for i in range(257)})
    text = draw(terminal.backward_tree(t))
    assert "⋯" not in text and text == draw(terminal.backward_tree(t, collapse=False))
    assert text.splitlines()[-1] == "… more not shown: 100 lines drawn of a graph with 768 functions (--max-nodes)"
    assert "… deeper levels hidden" in draw(terminal.backward_tree(t, max_depth=3))


def test_small_trees_are_drawn_as_they_are():
    t = gradviz.trace(*_products(20))  # 79 lines: within the default budget of 100
    assert draw(terminal.backward_tree(t)) == draw(terminal.backward_tree(t, collapse=False))
    assert "⋯" not in draw(terminal.report(t))


def test_collapsing_a_long_chain_needs_no_recursion():
    n = 20_000
    t = gradviz.trace(*_products(n))
    lines = draw(terminal.backward_tree(t)).splitlines()
    assert len(lines) == 37  # as for 666 products: 22 functions drawn
    assert f"⋯ {n - 1 - 6} more × AddBackward0" in "\n".join(lines)
    assert lines[-1] == f"⋯ collapsed repeated structure hides {3 * n - 22} of {3 * n} functions (--max-nodes)"


# ----------------------------------------------------------------------------- snapshots at fixed widths (issue 17)

SNAPSHOTS = {
    "uv": ("u*v + u**2", {"u": 1, "v": 2}),
    "layer": ("mean(sigmoid(W @ x + b))", {"W": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], "x": [1, 2, 3],
                                           "b": [0.1, -0.1]}),
    "long_names": ("tanh(a*b + c**2) + tanh(a*b + c**2 + 1) * tanh(a*b + c**2 + 2)", {"a": 1, "b": 2, "c": 0.5}),
}


@pytest.mark.parametrize("width", [40, 80, 200])
@pytest.mark.parametrize("name", SNAPSHOTS)
def test_tensors_table_snapshot(name, width):
    """The Tensors table at 40, 80 and 200 columns, color off (GRADVIZ_UPDATE_GOLDEN=1 rewrites)."""
    import io
    import os
    from pathlib import Path

    from rich.console import Console

    expr, at = SNAPSHOTS[name]
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    console.print(terminal.tensors_table(gradviz.trace(expr, at=at)))
    text = "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"
    path = Path(__file__).parent / "golden" / f"tensors_{name}_{width}.txt"
    if os.environ.get("GRADVIZ_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
    assert max(len(line) for line in text.splitlines()) <= width
    if width == 200 and name == "long_names":  # room for every sub-expression in full: three different tensors, three labels
        assert all(s in text for s in ("tanh(a*b + c**2 + 1)", "tanh(a*b + c**2 + 2)", "a*b + c**2 + 1"))
