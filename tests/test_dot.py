"""Tests for gradviz.render.dot: DOT golden files, escaping, limits, and the SVG it becomes.

Regenerate the golden files after an intended change with
``GRADVIZ_UPDATE_GOLDEN=1 python -m pytest tests/test_dot.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import gradviz
from gradviz.graph import Graph
from gradviz.render.dot import dot_source, record_field, to_digraph

GOLDEN = Path(__file__).parent / "golden"
SVG_NS = "{http://www.w3.org/2000/svg}"

CASES = {
    "x_squared": ("x**2", {"x": 2}, (), "LR"),
    "quadratic": ("x**2 + 2*x + 1", {"x": 2}, (), "LR"),
    "partial_uv": ("u*v + u**2", {"u": 1, "v": 2}, (), "LR"),
    "partial_uv_tb": ("u*v + u**2", {"u": 1, "v": 2}, (), "TB"),
    "neuron": ("sigmoid(w*x + b)", {"w": 0.5, "x": 2, "b": -1}, (), "LR"),
    "no_grad_input": ("w*x + b", {"w": 2, "x": 3, "b": 1}, ("x",), "LR"),
    "no_grad_output": ("c*2 + 1", {"c": 3}, ("c",), "LR"),
    "layer": ("sigmoid(W @ x + b).sum()", {"W": [[1, -1], [0.5, 2]], "x": [1, 2], "b": [0, -1]}, (), "LR"),
}


@pytest.fixture(autouse=True)
def _cache(gradviz_cache_dir):
    """Renders in this module use the session's temporary wasm cache."""


def svg_texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)  # raises if not well-formed XML
    assert root.tag == SVG_NS + "svg"
    return [el.text or "" for el in root.iter(SVG_NS + "text")]


def render_svg(source: str) -> bytes:
    from gradviz.render.svg import render

    return render(source, "svg", renderer="embedded")


# ----------------------------------------------------------------------------- golden files

@pytest.mark.parametrize("name", CASES)
def test_dot_matches_golden_file(name):
    expr, at, no_grad, rankdir = CASES[name]
    source = dot_source(gradviz.trace(expr, at=at, no_grad=no_grad), rankdir=rankdir)
    path = GOLDEN / f"{name}.dot"
    if os.environ.get("GRADVIZ_UPDATE_GOLDEN"):
        path.write_text(source, encoding="utf-8")
    assert source == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_golden_dot_renders_with_every_name_and_value(name):
    expr, at, no_grad, rankdir = CASES[name]
    t = gradviz.trace(expr, at=at, no_grad=no_grad)
    texts = [" ".join(x.split()) for x in svg_texts(render_svg(dot_source(t, rankdir=rankdir)))]
    for fn in t.graph.functions:
        assert fn.name in texts
    for leaf in t.graph.inputs.values():
        title = leaf.name + (f"  shape {tuple(leaf.shape)}" if leaf.data.ndim else "")
        assert title.replace("  ", " ") in texts
        _assert_lines("data", leaf.data, texts)
    _assert_lines("data", t.output.data, texts)


def _assert_lines(name, value, texts):
    """``name = value`` is drawn as PyTorch prints the value: on one line, or the name over the rows."""
    from gradviz.numbers import format_tensor

    text = format_tensor(value)
    lines = [f"{name} = {text}"] if "\n" not in text else [f"{name} ="] + text.split("\n")
    for line in lines:
        assert " ".join(line.split()) in texts


def test_same_input_gives_same_bytes():
    t1 = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    t2 = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    assert dot_source(t1) == dot_source(t2)
    assert render_svg(dot_source(t1)) == render_svg(dot_source(t2))


def test_picture_content_for_the_lecture_example():
    """Leaves show name, data and grad; functions their saved values; edges the gradient."""
    source = dot_source(gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}))
    assert 't0 [label="u|data = 1.\\l|grad = 4.\\l"' in source
    assert 'f1 [label="MulBackward0|of u*v|other = 2.\\lself = 1.\\l"' in source
    assert "f0 -> t4 [label=\" 1. \"]" in source  # the output sends 1 into AddBackward0
    assert "f2 -> f1 [label=\" 2. \"]" in source  # MulBackward0 sends v·1 = 2 to u's AccumulateGrad
    assert "f2 -> f4 [label=\" 2. \"]" in source  # PowBackward0 sends 2u = 2 there too
    assert "t0 -> f2 [label=\" += 4. \"]" in source  # and u.grad gets their sum
    assert source.count("AccumulateGrad") >= 2


def test_rankdir_tb_turns_the_records():
    lr = dot_source(gradviz.trace("x**2", at={"x": 2}), rankdir="LR")
    tb = dot_source(gradviz.trace("x**2", at={"x": 2}), rankdir="TB")
    assert 'label="x|data = 2.\\l|grad = 4.\\l"' in lr and "rankdir=LR" in lr
    assert 'label="{x|data = 2.\\l|grad = 4.\\l}"' in tb and "rankdir=TB" in tb
    with pytest.raises(ValueError):
        dot_source(gradviz.trace("x**2", at={"x": 2}), rankdir="RL")


def test_no_grad_input_is_dimmed_and_joined_to_its_function():
    source = dot_source(gradviz.trace("w*x + b", at={"w": 2, "x": 3, "b": 1}, no_grad=["x"]))
    assert 't1 [label="x|data = 3.\\l|requires_grad=False"' in source
    assert "style=\"filled,dashed\"" in source
    assert 't1 -> f1 [color="#cbd5e1" dir=none style=dashed]' in source  # x → MulBackward0, no gradient


def test_cut_graph_says_what_was_hidden():
    expr = " + ".join(f"x{i}*x{i + 1}" for i in range(40))
    t = gradviz.trace(expr, at={f"x{i}": 1 for i in range(41)})
    source = dot_source(t, max_nodes=20, collapse=False)  # the budget alone (collapsing: below)
    assert f"{len(t.graph.functions) - 20} of {len(t.graph.functions)} backward functions not drawn" in source
    assert len(re.findall(r"^\t+f\d+ \[", source, re.M)) == 20
    assert '_more [label="…"' in source
    texts = svg_texts(render_svg(source))
    assert "…" in texts


def test_long_numbers_and_arrays_stay_readable():
    t = gradviz.trace("x.sum() * y", at={"x": list(range(1001)), "y": 123456789.123})
    source = dot_source(t)
    assert "(1001,)" in source and "..." in source  # above PyTorch's threshold: the corners
    assert "1.2346e+08" in source
    assert all(len(line) < 400 for line in source.splitlines())
    assert svg_texts(render_svg(source))


def test_long_expression_is_abbreviated_on_its_node():
    expr = " + ".join(f"x*{i}" for i in range(1, 200))
    source = dot_source(gradviz.trace(expr, at={"x": 1}), max_nodes=10)
    out_line = next(line for line in source.splitlines() if "data = 19900." in line)
    assert "…" in out_line and len(out_line.split("|")[0]) < 80


# ----------------------------------------------------------------------------- escaping

@pytest.mark.parametrize("text, field", [
    ("plain", "plain"),
    ("a < b", "a \\< b"),
    ("{x}", "\\{x\\}"),
    ("p|q", "p\\|q"),
    ('say "hi"', 'say "hi"'),  # quotes are the graphviz package's job
    ("back\\slash", "back\\\\slash"),
    ("two\nlines", "two lines"),
])
def test_record_field_escapes_record_syntax(text, field):
    assert record_field(text) == field


NASTY_NAME = 'a<b>{c}|"q"\\'
NASTY_SAVED = 'x < y | {z} "w" >'
NASTY_SOURCE = '<f>|{"g"}'


def _nasty_trace():
    """A graph whose names, saved values and expression hold every DOT/record metacharacter
    (built with the tracer directly: the expression language has no such names)."""
    from gradviz.engine import backward
    from gradviz.tracer import Tracer
    from gradviz.ops import OPS
    from gradviz.result import Trace

    graph = Graph(NASTY_SOURCE, "float32")
    tr = Tracer(graph)
    leaf = tr.leaf(NASTY_NAME, 2.0, True)
    out = tr.apply(OPS["mul"], (leaf, 2.0), {}, types.SimpleNamespace(start=0, end=len(NASTY_SOURCE), args=(), kwargs=()))
    graph.output_index = graph.root_index = out.index
    steps = backward(graph)
    graph.consts[(out.index, 1)] = NASTY_SAVED  # what the function shows as its saved "other"
    return Trace(graph, steps, None, [])


@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_metacharacters_survive_into_the_svg(rankdir):
    source = to_digraph(_nasty_trace(), rankdir=rankdir).source
    texts = svg_texts(render_svg(source))
    assert NASTY_NAME in texts
    assert f"other = {NASTY_SAVED}" in texts
    assert NASTY_SOURCE in texts
    assert "grad = 2." in texts and "MulBackward0" in texts


def test_digraph_object_is_returned_not_printed(capsys):
    d = to_digraph(gradviz.trace("x**2", at={"x": 2}))
    assert type(d).__name__ == "Digraph"
    assert capsys.readouterr() == ("", "")


def test_jupyter_shows_a_trace_as_svg(monkeypatch):
    t = gradviz.trace("x**2", at={"x": 2})
    svg = t._repr_svg_()
    assert isinstance(svg, str) and "PowBackward0" in svg_texts(svg.encode("utf-8"))

    from gradviz.errors import RenderError
    from gradviz.render import svg as svg_module

    def broken(*args, **kwargs):
        raise RenderError("no Graphviz here")

    monkeypatch.setattr(svg_module, "render", broken)
    assert t._repr_svg_() is None  # Jupyter then falls back to the text repr


# ----------------------------------------------------------------------------- collapsing repeated structure

def products(n: int) -> tuple[str, dict]:
    """Issue 7's chain ``x0*x1 + x1*x2 + ...`` of ``n`` products (about 3n backward functions)."""
    return " + ".join(f"x{i}*x{i + 1}" for i in range(n)), {f"x{i}": 0.5 + (i % 7) / 8 for i in range(n + 1)}


def balanced_sum(n: int) -> tuple[str, dict]:
    """``n`` products summed pairwise, ``(a + b) + (c + d)``: big, but no motif repeats along a chain."""
    terms = [f"x{i}*x{i + 1}" for i in range(n)]
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" for i in range(0, len(terms), 2)]
    return terms[0], {f"x{i}": 1 for i in range(n + 1)}


def _each(pattern: str, n: int) -> tuple[str, dict]:
    return " + ".join(pattern.format(i=i) for i in range(n)), {f"x{i}": 0.5 for i in range(n)}


_CHAIN_A = " + ".join(f"a{i}*a{i + 1}" for i in range(40))
_CHAIN_B = " + ".join(f"b{i}*b{i + 1}" for i in range(50))

#: name: (expression, values, max_nodes, [(repetitions hidden, motif, functions hidden) per run], functions drawn)
COLLAPSES = {
    "products": (*products(666), 300, [
        (659, "AddBackward0 ← MulBackward0(AccumulateGrad, AccumulateGrad)", 1976)], 22),
    "power_by_products": ("x" + "*y" * 400, {"x": 1, "y": 1.001}, 300, [
        (394, "MulBackward0 ← AccumulateGrad", 394)], 8),
    "sin_terms": (*_each("sin(x{i})", 200), 300, [
        (193, "AddBackward0 ← SinBackward0(AccumulateGrad)", 579)], 20),
    "constant_factors": (" + ".join(f"x*{i}" for i in range(1, 400)), {"x": 1}, 300, [
        (392, "AddBackward0 ← MulBackward0(AccumulateGrad, None)", 784)], 14),
    "period_two": ("tanh(" * 60 + "x" + "*w)" * 60, {"x": 1, "w": 0.5}, 100, [
        (54, "(TanhBackward0 → MulBackward0 ← AccumulateGrad)", 108)], 14),
    "two_chains": (f"sin({_CHAIN_A}) * cos({_CHAIN_B})",
                   {**{f"a{i}": 0.5 for i in range(41)}, **{f"b{i}": 0.5 for i in range(51)}}, 100, [
        (33, "AddBackward0 ← MulBackward0(AccumulateGrad, AccumulateGrad)", 98),
        (43, "AddBackward0 ← MulBackward0(AccumulateGrad, AccumulateGrad)", 128)], 47),
    "nested_chains": (*_each("sin(" * 40 + "x{i}" + ")" * 40, 30), 300, [
        (23, "AddBackward0 ← 40 nested SinBackward0(AccumulateGrad)", 966)] + [(34, "SinBackward0", 34)] * 7, 55),
}


def _drawn(source: str, prefix: str) -> int:
    return len(re.findall(rf"^\t+{prefix}\d+ \[", source, re.M))  # (a folded picture: in a cluster)


def _notes(source: str) -> list[str]:
    return source.rsplit('label="', 1)[1].split("\\l")[:-1]


@pytest.mark.parametrize("name", COLLAPSES)
def test_repeated_structure_is_collapsed_and_the_note_says_what_was_hidden(name):
    expr, at, max_nodes, runs, drawn = COLLAPSES[name]
    t = gradviz.trace(expr, at=at)
    source = dot_source(t, max_nodes=max_nodes)
    total = len(t.graph.functions)
    assert _drawn(source, "f") == drawn and _drawn(source, "c") == len(runs)
    notes = _notes(source)
    for repetitions, motif, hidden in runs[:3]:
        assert f"⋯ {repetitions} more repetitions of {motif} drawn as one node ({hidden} backward functions)" in notes
    assert f"{total - drawn} of {total} backward functions not drawn (see --max-nodes, --depth)" in notes
    assert sum(hidden for _, _, hidden in runs) == total - drawn  # nothing else was cut
    assert "_more [" not in source  # no edge was cut by the budget


def test_collapsed_node_says_what_it_stands_for_and_where_the_chain_goes_on():
    t = gradviz.trace(*products(666))
    source = dot_source(t, rankdir="LR")  # (record labels read left to right: no braces)
    assert ('c0 [label="⋯ 659 more ×|AddBackward0\\l← MulBackward0(AccumulateGrad, AccumulateGrad)\\l'
            '|1976 backward functions not drawn"') in source
    assert 'style="filled,dashed"' in source
    # First three and last three repetitions: f0 f1 f2 → c0 → f662 f663 f664, each with its product.
    assert "c0 -> f2 [label=\" 1. \"]" in source and "f662 -> c0 [label=\" 1. \"]" in source
    assert '\tf0 [label="AddBackward0|alpha = 1\\l"' in source  # the output's function: the output says what
    for i in (1, 2, 662, 663, 664):
        assert f"\tf{i} [label=\"AddBackward0|of " in source  # each says which sum it differentiates
    assert source.count('"AddBackward0|') == 6 and source.count('"MulBackward0|') == 7
    assert "dashed orange ⋯: the middle of a run of repeated structure, collapsed into one node" in _notes(source)
    texts = svg_texts(render_svg(source))
    assert "⋯ 659 more ×" in texts and "1976 backward functions not drawn" in texts
    assert "x666" in texts and "x0" in texts and "x333" not in texts


def test_non_repetitive_big_graph_falls_back_to_the_budget_and_depth():
    t = gradviz.trace(*balanced_sum(256))
    total = len(t.graph.functions)  # 255 sums, 256 products, 257 AccumulateGrads
    source = dot_source(t)
    assert _drawn(source, "f") == 300 and _drawn(source, "c") == 0 and "⋯" not in source
    assert f"{total - 300} of {total} backward functions not drawn (see --max-nodes, --depth)" in _notes(source)
    assert source == dot_source(t, collapse=False)
    shallow = dot_source(t, max_depth=3)
    assert _drawn(shallow, "f") == 1 + 2 + 4 + 8 and shallow.count('[label="…"') == 16


def test_small_graphs_are_drawn_as_they_are():
    """Under the budget nothing is collapsed, however repetitive (the golden files cover the rest)."""
    t = gradviz.trace(*products(40))  # 120 functions
    source = dot_source(t)
    assert source == dot_source(t, collapse=False) and "⋯" not in source and "not drawn" not in source
    for expr, at, no_grad, rankdir in CASES.values():
        traced = gradviz.trace(expr, at=at, no_grad=no_grad)
        assert dot_source(traced, rankdir=rankdir) == dot_source(traced, rankdir=rankdir, collapse=False)


def test_collapsing_is_deterministic_and_iterative():
    n = 20_000  # a chain far deeper than Python's recursion limit
    t = gradviz.trace(*products(n))
    source = dot_source(t)
    assert source == dot_source(t)
    assert _drawn(source, "f") == 22 and _drawn(source, "c") == 1
    assert f"⋯ {n - 1 - 6} more repetitions of AddBackward0" in source


@pytest.mark.parametrize("keys, single, runs", [
    ([0] * 10, None, [(0, 1, 10)]),
    ([5] + [0] * 9, None, [(1, 1, 9)]),  # a different head is not part of the run
    ([0] * 8 + [1] * 8, None, [(0, 1, 8), (8, 1, 8)]),
    ([0] * 7, None, []),  # too short: 3 kept on each side would leave 1 to hide
    ([0, 1] * 8, None, [(0, 2, 8)]),
    ([0, 1] * 7, None, []),
    ([0, 0, 1] * 8, None, [(0, 3, 8)]),  # the shortest period that repeats enough
    (list(range(8)) * 8, None, [(0, 8, 8)]),
    (list(range(9)) * 9, None, []),  # longer than MAX_PERIOD
    ([0] * 20, [True] * 5 + [False] + [True] * 14, [(5, 1, 15)]),  # a function with two parents starts a run
])
def test_runs_along_a_chain(keys, single, runs):
    from gradviz.render.collapse import KEEP, MIN_HIDDEN, _runs

    single = single or [True] * len(keys)
    assert list(_runs(keys, single, 2 * KEEP + MIN_HIDDEN)) == runs


# ----------------------------------------------------------------------------- orientation (issue 17, item 8)

MLP = ("mean(tanh(W2 @ tanh(W1 @ x + b1) + b2))",
       {"W1": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, -0.8, 0.9], [-0.1, 0.2, -0.3]], "x": [1, 2, 3],
        "b1": [0.1, -0.1, 0.2, -0.2], "W2": [[0.5, -0.5, 0.25, -0.25], [1, 2, 3, 4]], "b2": [0.01, -0.01]})


def _aspect(source: str) -> float:
    m = re.search(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"', render_svg(source))
    return float(m.group(1)) / float(m.group(2))


@pytest.mark.parametrize("expr, at", [MLP, ("x**2 + 2*x + 1", {"x": 2})], ids=["mlp", "quadratic"])
def test_orientation_keeps_nearer_a_slides_proportions(expr, at):
    import math

    t = gradviz.trace(expr, at=at)
    auto = _aspect(dot_source(t))
    both = [_aspect(dot_source(t, rankdir=r)) for r in ("LR", "TB")]
    assert abs(math.log(auto / (16 / 9))) <= min(abs(math.log(a / (16 / 9))) for a in both) + 1e-9
    assert "rankdir=LR" in dot_source(t, rankdir="LR")  # an explicit rankdir is kept


LAYER = ("mean(sigmoid(W @ x + b))", {"W": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], "x": [1, 2, 3], "b": [0.1, -0.1]})


@pytest.mark.parametrize("expr, at, low, high", [
    (*MLP, 1.3, 2.0),  # a two-layer network: one column per layer, side by side (13.5:1 left to right)
    (*LAYER, 0.95, 2.0),  # four places long: two columns (0.67 top to bottom alone)
], ids=["mlp", "layer"])
def test_a_long_chain_is_folded_into_columns_to_keep_a_slides_proportions(expr, at, low, high):
    t = gradviz.trace(expr, at=at)
    source = dot_source(t)
    assert "cluster_band1" in source and "rankdir=TB" in source
    assert low <= _aspect(source) <= high
    # every arrow drawn (Graphviz draws none between two records of one rank), each once
    svg = render_svg(source).decode()
    drawn = re.findall(r'<g id="(?:edge|reversed)\d+" class="edge">\n<title>[^<]*</title>\n<path', svg)
    assert len(drawn) == len(re.findall(r" -> ", source)) - source.count("style=invis")
    for rankdir in ("LR", "TB"):  # --rankdir draws it unfolded
        assert "cluster_band" not in dot_source(t, rankdir=rankdir)


@pytest.mark.parametrize("expr, at", [("u*v + u**2", {"u": 1, "v": 2}), ("x**2 + 2*x + 1", {"x": 2}),
                                      ("sigmoid(w*x + b)", {"w": 0.5, "x": 2, "b": -1})])
def test_small_graphs_are_drawn_without_a_folded_band(expr, at):
    assert "cluster_band" not in dot_source(gradviz.trace(expr, at=at))


def test_a_folded_picture_keeps_its_arrows_tails_on_the_input_side_for_the_page():
    from gradviz.render.html import graph_svg

    t = gradviz.trace(*MLP)
    def pairs(svg):
        return sorted(re.findall(r'data-tail="([^"]*)" data-head="([^"]*)"', svg))
    folded, plain = graph_svg(t), graph_svg(t, rankdir="TB")
    assert "reversed" in dot_source(t) and pairs(folded) == pairs(plain)


def test_functions_are_ranked_by_depth_from_the_output():
    source = dot_source(gradviz.trace("sin(a*b) + cos(a) * b", at={"a": 1, "b": 2}), rankdir="LR")
    groups = re.findall(r"\{\n\t\trank=same\n((?:\t\t\w+\n)+)\t\}", source)
    assert groups and all(len(g.split()) >= 2 for g in groups)


@pytest.mark.parametrize("expr, at", [
    balanced_sum(256),  # large, and nothing repeats as a chain or as a block
    ("mean(tanh(W2 @ tanh(W1 @ x + b1) + b2))", MLP[1]),  # two layers: a block needs three repetitions
    ("u*v + u**2", {"u": 1, "v": 2}),
])
def test_an_expression_without_repetition_is_not_collapsed(expr, at):
    from gradviz.render.collapse import collapse_view

    t = gradviz.trace(expr, at=at)
    view = collapse_view(t.graph.root)
    assert view.collapsed == [] and view.hidden == 0
    assert all(view.next_functions(fn) == fn.next_functions for fn in t.graph.functions)


# --- render/dotlang.py writes what the graphviz package's Digraph writes -----------------------

QUOTING_CASES = ["x", "_a1", "-1.5", ".5", "1.", "node", "Graph", "a b", 'say "hi"', 'already \\"q\\"',
                 "back\\\\slash", "<b>html</b>", "<not html>", "tab\there", "ünï", "", "a:b", "f0:p:n",
                 "x\\l", "line\nbreak", "-", "1e5"]


@pytest.mark.parametrize("text", QUOTING_CASES)
def test_dotlang_quotes_as_graphviz(text):
    import graphviz

    from gradviz.render import dotlang

    for make in (str, dotlang.nohtml):
        ours, theirs = dotlang.Digraph("g"), graphviz.Digraph("g")
        for d, wrap in ((ours, make), (theirs, graphviz.nohtml if make is dotlang.nohtml else str)):
            d.attr(rankdir="LR", label=wrap(text))
            d.attr("node", shape="box", fontname=wrap(text))
            d.node(text or "empty", wrap(text), tooltip=wrap(text), color="red")
            d.edge(text or "e", "b:" + (text or "p"), label=wrap(text), weight="2")
            with d.subgraph(name="cluster_" + (text or "c"), graph_attr={"label": wrap(text)}) as sub:
                sub.node("inner", wrap(text))
                with sub.subgraph() as same:
                    same.attr(rank="same")
                    same.node("deep")
        assert ours.source == theirs.source


DOTLANG_CASES = [
    ("u*v + u**2", {"u": 1, "v": 2}, {}),
    ("u*v + u**2", {"u": 1, "v": 2}, {"tensors": "all", "rankdir": "TB"}),
    ("sigmoid(W @ x + b).sum()", {"W": [[1, -1], [0.5, 2]], "x": [1, 2], "b": [0, -1]}, {"steps": True}),
    (" + ".join(f"x{i}*x{i + 1}" for i in range(40)), {f"x{i}": i % 3 for i in range(41)}, {}),
    ("tanh(a*b + a**2) / (1 + exp(-b))", {"a": 0.5, "b": -2}, {"legend": False}),
]


@pytest.mark.parametrize("expr, at, options", DOTLANG_CASES)
def test_diagrams_are_byte_identical_to_the_graphviz_package(monkeypatch, expr, at, options):
    import graphviz

    from gradviz.render import dotlang

    t = gradviz.trace(expr, at=at, steps=bool(options.pop("steps", False)))
    ours = to_digraph(t, **options).source
    monkeypatch.setattr(dotlang, "Digraph", graphviz.Digraph)
    monkeypatch.setattr(dotlang, "nohtml", graphviz.nohtml)
    assert to_digraph(t, **options).source == ours


def test_dotlang_refuses_what_graphviz_refuses():
    from gradviz.render import dotlang

    with pytest.raises(ValueError):
        dotlang.Digraph().attr("cluster", color="red")
