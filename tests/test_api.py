"""The Python API (issue 17, item 10): gradviz.trace's arguments match the CLI's options, the
result's views match the CLI's files, errors speak of arguments, and the names are listed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz
from gradviz.cli import main

UV = ("u*v + u**2", {"u": 1, "v": 2})


@pytest.fixture(autouse=True)
def _cache(gradviz_cache_dir):
    """Renders use the session's temporary wasm cache."""


def cli(*args) -> str:
    r = CliRunner().invoke(main, list(args), env={"NO_COLOR": "1"}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_names_are_listed_and_documented():
    for name in ("trace", "Trace", "from_torch", "set_printoptions", "printoptions", "GradvizError",
                 "ParseError", "EvalError", "RenderError", "UsageError"):
        assert name in gradviz.__all__ and name in dir(gradviz)
    for name in ("trace", "Trace", "set_printoptions", "printoptions", "GradvizError"):
        assert getattr(gradviz, name).__doc__
    for method in ("svg", "png", "pdf", "dot", "save", "to_json", "text", "grads", "hessian"):
        assert getattr(gradviz.Trace, method).__doc__


def test_grads_are_floats_for_0d_and_arrays_otherwise():
    t = gradviz.trace("x.sum() * y", at={"x": [1, 2], "y": 3})
    assert type(t.grads["y"]) is float and t.grads["y"] == 3.0
    assert isinstance(t.grads["x"], np.ndarray) and t.grads["x"].tolist() == [3.0, 3.0]
    t = gradviz.trace("sin(x)", at={"x": 2.0})  # a numpy-computed 0-d gradient: still a float
    assert type(t.grads["x"]) is float
    assert gradviz.trace("x*c", at={"x": 1, "c": 2}, no_grad=["c"]).grads["c"] is None


def test_views_are_the_clis():
    t = gradviz.trace(*UV)
    assert t.dot() == cli(UV[0], "--at", "u=1,v=2", "--format", "dot")
    assert t.dot(rankdir="TB", tensors="all") == cli(UV[0], "--at", "u=1,v=2", "--format", "dot", "--rankdir",
                                                     "TB", "--tensors", "all")
    assert t.svg().startswith("<?xml") and "MulBackward0" in t.svg()
    assert t._repr_svg_() == t.svg()
    assert t.png()[:8] == b"\x89PNG\r\n\x1a\n" and t.pdf()[:5] == b"%PDF-"
    assert json.loads(t.to_json())["schema"] == "gradviz/1"


def test_analyses_match_the_clis_options():
    t = gradviz.trace(*UV, order=2, steps=True, check=True, symbolic=True)
    assert t.hessian == {"u": {"u": 2.0, "v": 1.0}, "v": {"u": 1.0, "v": 0.0}}
    assert t.check.passed and t.symbolic.agrees == {"u": True, "v": True}
    doc = json.loads(t.to_json())
    assert {"steps", "hessian", "check", "symbolic"} <= set(doc)
    assert "subgraph cluster_u" in t.dot() and "step 1: " in t.dot(graph="forward")
    with pytest.raises(gradviz.UsageError, match="order=2"):
        gradviz.trace(*UV).dot(graph="double")


def test_save_by_suffix(tmp_path):
    t = gradviz.trace(*UV)
    for suffix, start in ((".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"digraph"),
                          (".json", b'{"schema"'), (".txt", "f(u=1., v=2.) = 3.".encode())):
        path = tmp_path / f"g{suffix}"
        t.save(path)
        assert path.read_bytes().startswith(start), suffix
    t.save(tmp_path / "big.png", scale=1)
    with pytest.raises(gradviz.UsageError, match="suffix"):
        t.save(tmp_path / "g.bmp")


@pytest.mark.parametrize("kwargs, words", [
    (dict(expr="x*y", at={"x": 1}), "give y in at={'y': ...}"),
    (dict(expr="x", at={"x": "a"}), "at['x']: 'a' is not a number"),
    (dict(expr="x", at={"x": [1, 2]}, grad_output=[1, 2, 3]), "grad_output has shape (3,)"),
    (dict(expr="x", at={"x": [1, 2]}), "pass grad_output='ones'"),
    (dict(expr="x", at={"x": 1}, order=3), "order must be 1 or 2"),
    (dict(expr="x", at={"x": 1}, check="yes"), "check must be True or False"),
])
def test_errors_speak_of_arguments_not_flags(kwargs, words):
    try:
        t = gradviz.trace(**kwargs)
    except gradviz.GradvizError as exc:
        message = str(exc)
    else:
        message = t.backward_error
    assert words in message and "--" not in message


def test_print_options_are_torchs():
    t = gradviz.trace("x * 0.123456", at={"x": 1})
    with gradviz.printoptions(precision=2):
        assert "data = 0.12" in t.dot()
    assert "data = 0.1235" in t.dot()
