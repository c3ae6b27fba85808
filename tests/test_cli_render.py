"""The CLI's views and output files: --format, -o, --renderer, --rankdir, color, atomic writes."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from gradviz.cli import main

SVG_NS = "{http://www.w3.org/2000/svg}"
UV = ["u*v + u**2", "--at", "u=1,v=2"]


@pytest.fixture(autouse=True)
def _cache(gradviz_cache_dir):
    """SVG renders use the session's temporary wasm cache."""


@pytest.fixture
def no_dot_on_path(tmp_path, monkeypatch):
    """PATH holds only an empty folder: there is no system Graphviz 'dot'."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def run(args, env=None):
    env = {"NO_COLOR": "1", **(env or {})}
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def svg_texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)  # raises if not well-formed XML
    assert root.tag == SVG_NS + "svg"
    return [(el.text or "").strip() for el in root.iter(SVG_NS + "text")]


# ----------------------------------------------------------------------------- --format

def test_default_view_is_summary_table_and_tree():
    r = run(UV)
    assert r.exit_code == 0
    assert r.output.startswith("f(u=1., v=2.) = 3.\n∂f/∂u = 4.\n∂f/∂v = 1.\n")
    assert "Tensors" in r.output and "requires_grad" in r.output
    assert "└── 2. ▶ AccumulateGrad → u.grad = 2. + 2. = 4." in r.output


def test_format_table():
    r = run([*UV, "--format", "table"])
    assert r.exit_code == 0
    assert r.output.startswith("Tensors")
    assert "Backward graph" not in r.output and "f(u=1" not in r.output


def test_format_tree():
    r = run([*UV, "--format", "tree"])
    assert r.exit_code == 0
    assert r.output.startswith("Backward graph")
    assert "Tensors" not in r.output


@pytest.mark.parametrize("args", [["--format", "json"], ["--json"], ["--json", "--format", "json"]])
def test_format_json(args):
    r = run([*UV, *args])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert doc["schema"] == "gradviz/1" and doc["inputs"]["u"]["grad"] == 4.0


def test_format_dot():
    r = run([*UV, "--format", "dot", "--rankdir", "TB"])
    assert r.exit_code == 0
    assert r.output.startswith("digraph gradviz {") and "rankdir=TB" in r.output


def test_format_svg_to_stdout():
    r = run([*UV, "--format", "svg"])
    assert r.exit_code == 0
    assert "AddBackward0" in svg_texts(r.stdout_bytes)


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_png_pdf_without_system_dot(fmt, magic, no_dot_on_path, tmp_path):
    r = run([*UV, "-o", str(tmp_path / f"g.{fmt}")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / f"g.{fmt}").read_bytes().startswith(magic)
    r = run([*UV, "--renderer", "system", "-o", str(tmp_path / f"h.{fmt}")])
    assert r.exit_code == 2
    assert "Graphviz" in r.output and "install" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / f"h.{fmt}").exists()


def test_json_and_another_format_conflict():
    r = run([*UV, "--json", "--format", "tree"])
    assert r.exit_code == 2 and "pick one" in r.output


# ----------------------------------------------------------------------------- -o

def test_o_svg_is_well_formed_with_every_node_name_and_value(tmp_path):
    path = tmp_path / "f.svg"
    r = run([*UV, "-o", str(path)])
    assert r.exit_code == 0 and r.output == ""
    texts = svg_texts(path.read_bytes())
    for expected in ["u", "v", "data = 1.", "data = 2.", "grad = 4.", "grad = 1.",  # leaves
                     "u*v + u**2", "data = 3.",  # the output
                     "AddBackward0", "MulBackward0", "PowBackward0", "AccumulateGrad",  # functions
                     "alpha = 1", "exponent = 2",  # saved values
                     "+= 4.", "+= 1.", "2."]:  # gradients on the edges
        assert expected in texts, expected


def test_o_svg_works_with_no_dot_on_path(no_dot_on_path, tmp_path):
    path = tmp_path / "f.svg"
    r = run([*UV, "-o", str(path)])
    assert r.exit_code == 0, r.output
    assert "MulBackward0" in svg_texts(path.read_bytes())


@pytest.mark.parametrize("ext, check", [
    ("dot", lambda b: b.startswith(b"digraph gradviz {")),
    ("json", lambda b: json.loads(b)["output"]["data"] == 3.0),
    ("gv", lambda b: b.startswith(b"digraph")),
])
def test_o_format_from_extension(tmp_path, ext, check):
    path = tmp_path / f"graph.{ext}"
    r = run([*UV, "-o", str(path)])
    assert r.exit_code == 0
    assert check(path.read_bytes())


def test_o_text_view_to_file_has_no_escape_codes(tmp_path):
    path = tmp_path / "view.txt"
    r = run([*UV, "--format", "tree", "-o", str(path)], env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert r.exit_code == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith("Backward graph") and "\x1b" not in text


def test_o_dash_writes_svg_to_stdout():
    r = run([*UV, "-o", "-"])
    assert r.exit_code == 0
    assert "PowBackward0" in svg_texts(r.stdout_bytes)


def test_o_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "f.svg"
    path.write_text("old")
    assert run([*UV, "-o", str(path)]).exit_code == 0
    assert path.read_bytes().startswith(b"<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.svg"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # the usual permissions, not mkstemp's 0600


@pytest.mark.parametrize("target, message", [
    ("missing-folder/f.svg", "cannot write"),
    ("f.unknown", "cannot tell the format"),
])
def test_o_bad_path_is_a_clear_error(tmp_path, target, message):
    r = run([*UV, "-o", str(tmp_path / target)])
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output


def test_o_into_a_read_only_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        r = run([*UV, "-o", str(folder / "f.svg")])
    finally:
        folder.chmod(0o700)
    assert r.exit_code == 2 and "cannot write" in r.output


def test_o_is_a_directory(tmp_path):
    r = run([*UV, "--format", "svg", "-o", str(tmp_path)])
    assert r.exit_code == 2 and "cannot write" in r.output


def test_format_must_match_extension(tmp_path):
    r = run([*UV, "--format", "dot", "-o", str(tmp_path / "f.svg")])
    assert r.exit_code == 2 and "does not match" in r.output


def test_renderer_system_without_dot_fails_clearly(no_dot_on_path, tmp_path):
    r = run([*UV, "--renderer", "system", "-o", str(tmp_path / "f.svg")])
    assert r.exit_code == 2 and "Graphviz" in r.output


def test_max_nodes_limits_the_diagram(tmp_path):
    expr = " + ".join(f"x*{i}" for i in range(1, 60))
    path = tmp_path / "g.dot"
    r = run([expr, "--at", "x=1", "--max-nodes", "10", "-o", str(path)])
    assert r.exit_code == 0
    assert "backward functions not drawn" in path.read_text()


# ----------------------------------------------------------------------------- color

def test_no_color_means_no_escape_codes():
    r = run(UV, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert r.exit_code == 0 and "\x1b" not in r.output


def test_color_when_forced_onto_a_terminal():
    """The counterpart of the test above, so it proves something: styles do reach a terminal."""
    r = run(UV, env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert r.exit_code == 0 and "\x1b[" in r.output


def test_piped_output_has_no_escape_codes():
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    out = subprocess.run([sys.executable, "-m", "gradviz", *UV], capture_output=True, env=env, check=True).stdout
    assert b"\x1b" not in out and "∂f/∂u = 4".encode() in out


# ----------------------------------------------------------------------------- start-up cost

@pytest.mark.parametrize("args", [["--help"], [*UV, "--json"]])
def test_help_and_json_do_not_import_rendering_libraries(args):
    code = (
        "import os, runpy, sys\n"
        "os._exit = sys.exit  # the command ends the process itself: come back here instead\n"
        f"sys.argv = ['gradviz', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('gradviz', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('rich', 'graphviz', 'wasmtime') if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_depth_limits_the_tree_and_the_diagram():
    from click.testing import CliRunner

    from gradviz.cli import main

    args = ["sin(cos(tanh(exp(x))))*y", "--at", "x=0.1,y=2", "--depth", "2"]
    r = CliRunner().invoke(main, [*args, "--format", "tree"])
    assert r.exit_code == 0 and "deeper levels hidden" in r.stdout
    assert "CosBackward0" in r.stdout and "TanhBackward0" not in r.stdout
    r = CliRunner().invoke(main, [*args, "--format", "dot"])
    assert r.exit_code == 0 and "CosBackward0" in r.stdout and "TanhBackward0" not in r.stdout
    assert "--depth" in r.stdout


# ----------------------------------------------------------------------------- issue 17: every option in every output

def _dot(args) -> str:
    r = run([*args, "--format", "dot"])
    assert r.exit_code == 0, r.output
    return r.output


def test_tensors_all_draws_every_tensor_with_the_lectures_five_attributes():
    source = _dot(["x**2", "--at", "x=2", "--tensors", "all", "--rankdir", "LR"])
    # x (a leaf) and y = x**2 (the output), as the lecture's slide shows them
    assert "x|data = 2.\\lgrad = 4.\\lgrad_fn = None\\lis_leaf = True\\lrequires_grad = True\\l" in source
    assert "x**2|data = 4.\\lgrad = None\\lgrad_fn = \\<PowBackward0\\>\\lis_leaf = False" in source
    inner = _dot([*UV, "--tensors", "all"])
    assert "u*v|data = 2.\\lgrad = None\\lgrad_fn = \\<MulBackward0\\>" in inner  # an intermediate
    assert 'f1 -> t2 [color="#60a5fa" dir=none penwidth=1.6 style=dotted' in inner  # joined to its grad_fn


def test_functions_say_what_they_differentiate_and_constants_enter_where_used():
    source = _dot(["2*x + x**2", "--at", "x=2"])
    assert '"MulBackward0|of 2*x|other = 2\\lself = None\\l"' in source
    assert '"PowBackward0|of x**2|exponent = 2\\lself = 2.\\l"' in source
    assert re.search(r'cf\d+_1 \[label=2 .*\n.*cf\d+_1 -> f\d+ \[label=" other "', source)  # the 2, as "other"


def test_steps_number_the_arrows_in_execution_order():
    source = _dot([*UV, "--steps"])
    assert 'label=" start: 1. "' in source
    for k in range(1, 6):
        assert f"step {k}: " in source
    assert "step 6" not in source
    assert "numbered by the step that sent it" in source


def test_retain_grad_shows_the_intermediates_grads():
    source = _dot([*UV, "--retain-grad"])
    assert "u*v|data = 2.\\lgrad = 1.\\l" in source and "u**2|data = 1.\\lgrad = 1.\\l" in source


def test_graph_double_draws_every_gradient_with_values_and_the_hessian():
    source = _dot([*UV, "--order", "2", "--graph", "double"])
    assert "subgraph cluster_u" in source and "subgraph cluster_v" in source
    assert "∂²f/∂u∂u = 2.\\l∂²f/∂u∂v = 1.\\l∂²f/∂v∂u = 1.\\l∂²f/∂v∂v = 0.\\l" in source
    assert 'u_t0 [label="u|data = 1.\\l|grad = 2.\\l"' in source  # backward from ∂f/∂u leaves H[u][u] in u.grad
    assert re.search(r'u_f\d+ -> u_f\d+ \[label=" 2. "\]', source)  # values on the edges


def test_check_with_o_prints_its_verdict(tmp_path):
    out = tmp_path / "sq.svg"
    r = run(["x**2", "--at", "x=2", "--check", "-o", str(out)])
    assert r.exit_code == 0 and out.exists()
    assert "Gradient check: passed" in r.output


def test_print_options_reach_every_view():
    r = run(["x * 0.123456", "--at", "x=1", "--precision", "2", "--format", "dot"])
    assert "0.12" in r.output and "0.1235" not in r.output
    r = run(["x.sum()", "--at", "x=[1,2,3,4,5,6,7,8]", "--threshold", "4", "--edgeitems", "1", "--format", "table"])
    assert "[1.,  ..., 8.]" in r.output  # PyTorch's summary, its " ..." item and all


@pytest.mark.parametrize("width", [40, 80, 200])
def test_tensors_table_uses_the_width_it_has(width):
    from rich.console import Console

    import gradviz
    from gradviz.render.terminal import tensors_table

    t = gradviz.trace("mean(sigmoid(W @ x + b))", at={"W": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], "x": [1, 2, 3],
                                                      "b": [0.1, -0.1]})
    console = Console(width=width, color_system=None, record=True, file=open(os.devnull, "w"))
    console.print(tensors_table(t))
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    for word in ("MvBackward0", "SigmoidBackward0", "MeanBackward0", "requires_grad", "is_leaf"):
        assert word in text  # nothing dropped at any width
    assert "sigmoid(W @ x + b)" in text  # the sub-expression in full
    assert "[ 0.4000,  0.5000, -0.6000]]" in text  # PyTorch's rows, unbroken
    note = [line for line in text.splitlines() if line.startswith("grad is None")]
    assert len(note) == 1 and len(note[0]) <= 80 or width < 80
