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

import numpy as np
import pytest

import gradviz
from gradviz.engine import Step
from gradviz.graph import BackwardFunction, Graph, Tensor
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
    texts = svg_texts(render_svg(dot_source(t, rankdir=rankdir)))
    joined = "\n".join(texts)
    for fn in t.graph.functions:
        assert fn.name in texts
    for leaf in t.graph.inputs.values():
        title = leaf.name + (f"  shape {tuple(leaf.shape)}" if leaf.data.ndim else "")
        assert title.replace("  ", " ") in [x.replace("  ", " ") for x in texts]
        assert "data = " + _fmt(leaf.data) in texts
    assert "data = " + _fmt(t.output.data) in texts


def _fmt(a):
    from gradviz.render.numbers import format_tensor

    return format_tensor(a, 6)


def test_same_input_gives_same_bytes():
    t1 = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    t2 = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    assert dot_source(t1) == dot_source(t2)
    assert render_svg(dot_source(t1)) == render_svg(dot_source(t2))


def test_picture_content_for_the_lecture_example():
    """Leaves show name, data and grad; functions their saved values; edges the gradient."""
    source = dot_source(gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}))
    assert 't0 [label="u|data = 1.|grad = 4."' in source
    assert 'f1 [label="MulBackward0|other = 2.\\lself = 1.\\l"' in source
    assert "f0 -> t4 [label=\" 1. \"]" in source  # the output sends 1 into AddBackward0
    assert "f2 -> f1 [label=\" 2. \"]" in source  # MulBackward0 sends v·1 = 2 to u's AccumulateGrad
    assert "f2 -> f4 [label=\" 2. \"]" in source  # PowBackward0 sends 2u = 2 there too
    assert "t0 -> f2 [label=\" += 4. \"]" in source  # and u.grad gets their sum
    assert source.count("AccumulateGrad") >= 2


def test_rankdir_tb_turns_the_records():
    lr = dot_source(gradviz.trace("x**2", at={"x": 2}), rankdir="LR")
    tb = dot_source(gradviz.trace("x**2", at={"x": 2}), rankdir="TB")
    assert 'label="x|data = 2.|grad = 4."' in lr and "rankdir=LR" in lr
    assert 'label="{x|data = 2.|grad = 4.}"' in tb and "rankdir=TB" in tb
    with pytest.raises(ValueError):
        dot_source(gradviz.trace("x**2", at={"x": 2}), rankdir="RL")


def test_no_grad_input_is_dimmed_and_joined_to_its_function():
    source = dot_source(gradviz.trace("w*x + b", at={"w": 2, "x": 3, "b": 1}, no_grad=["x"]))
    assert 't1 [label="x|data = 3.|requires_grad=False"' in source
    assert "style=\"filled,dashed\"" in source
    assert 't1 -> f1 [color="#cbd5e1" dir=none style=dashed]' in source  # x → MulBackward0, no gradient


def test_cut_graph_says_what_was_hidden():
    expr = " + ".join(f"x{i}*x{i + 1}" for i in range(40))
    t = gradviz.trace(expr, at={f"x{i}": 1 for i in range(41)})
    source = dot_source(t, max_nodes=20)
    assert f"{len(t.graph.functions) - 20} of {len(t.graph.functions)} backward functions not drawn" in source
    assert len(re.findall(r"^\tf\d+ \[", source, re.M)) == 20
    assert '_more [label="…"' in source
    texts = svg_texts(render_svg(source))
    assert "…" in texts


def test_long_numbers_and_arrays_stay_readable():
    t = gradviz.trace("x.sum() * y", at={"x": list(range(1000)), "y": 123456789.123})
    source = dot_source(t)
    assert "(1000,)" in source and "..." in source
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
    """A hand-made graph whose names, saved values and expression hold every DOT/record metacharacter."""
    leaf = Tensor(np.float32(2.0), requires_grad=True, name=NASTY_NAME)
    acc = BackwardFunction("AccumulateGrad", variable=leaf)
    fn = BackwardFunction("MulBackward0", next_functions=[acc, None],
                          saved={"other": NASTY_SAVED, "self": np.float32(2.0)})
    out = Tensor(np.float32(4.0), requires_grad=True, grad_fn=fn,
                 node=types.SimpleNamespace(start=0, end=len(NASTY_SOURCE), args=(), kwargs=()))
    fn.output = out
    leaf.grad = np.float32(2.0)
    leaf.id, out.id, fn.id, acc.id = "t0", "t1", "f0", "f1"
    graph = Graph(out, {NASTY_NAME: leaf}, [leaf, out], fn, [fn, acc], NASTY_SOURCE, "float32")
    steps = [Step(fn, np.float32(1.0), [np.float32(2.0), None]), Step(acc, np.float32(2.0), [], None, leaf.grad)]
    return types.SimpleNamespace(graph=graph, steps=steps, backward_error=None, warnings=[], extras={})


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
