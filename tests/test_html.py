"""The interactive page (render/html.py) without a browser: one self-contained file (nothing it
could fetch), the --json document embedded with its steps, every node tagged with its id, the
CLI's -o x.html / --format html, Jupyter's iframe. tests/test_browser.py runs it in Chromium."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import gradviz
from gradviz.cli import main
from gradviz.render.html import _json_script, document_text, inline_svg, page_document

LECTURE = [
    ("x**2", {"x": 2}),
    ("x**2 + 2*x + 1", {"x": 2}),
    ("u*v + u**2", {"u": 1, "v": 2}),
]
TENSOR = ("mean(sigmoid(W @ x + b))", {"W": [[1, 2], [3, 4]], "x": [1, -1], "b": [0, 1]})
CASES = LECTURE + [TENSOR]


@pytest.fixture(autouse=True)
def _cache(gradviz_cache_dir):
    """Renders use the session's temporary wasm cache."""


class _Page(HTMLParser):
    """What a browser would load from a page: every tag with its attributes, the scripts' text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: dict = {}
        self._script = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "script":
            self._script = attrs.get("id", f"#{len(self.scripts)}")
            self.scripts[self._script] = ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self.scripts[self._script] += data


def parsed(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    p.close()
    return p


def cli_json(expr, at, *extra) -> dict:
    at_text = ",".join(f"{k}={json.dumps(v)}" for k, v in at.items())
    r = CliRunner().invoke(main, [expr, "--at", at_text, "--json", "--steps", *extra], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def pages():
    return {expr: gradviz.trace(expr, at=at).html() for expr, at in CASES}


@pytest.mark.parametrize("expr,at", CASES)
def test_self_contained(pages, expr, at):
    html = pages[expr]
    assert html.startswith("<!DOCTYPE html>")
    # no address of any kind: nothing to fetch, online or off (fonts are data: URLs)
    outside_data = re.sub(r"data:[a-z/+-]+;base64,[A-Za-z0-9+/=]*", "", html)
    assert not re.search(r"https?:|//[A-Za-z0-9]|file:|ftp:", outside_data)
    p = parsed(html)
    for tag, attrs in p.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base"), tag
        for name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            assert name not in attrs, (tag, name)
        if tag == "script":
            assert attrs.get("type") in (None, "application/json")
    assert "@import" not in html
    assert [u for u in re.findall(r"url\(([^)]*)\)", html) if not u.startswith("data:")] == []
    # the browser is told so too
    assert "default-src 'none'" in html


@pytest.mark.parametrize("expr,at", CASES)
def test_document_is_the_json_one(pages, expr, at):
    p = parsed(pages[expr])
    embedded = json.loads(p.scripts["gv-document"])
    assert embedded == cli_json(expr, at)
    assert [s["step"] for s in embedded["steps"]] == list(range(1, len(embedded["steps"]) + 1))


@pytest.mark.parametrize("expr,at", CASES)
def test_every_node_carries_its_document_id(pages, expr, at):
    p = parsed(pages[expr])
    doc = json.loads(p.scripts["gv-document"])
    ids = {f["id"] for f in doc["graph"]["functions"]} | {t["id"] for t in doc["graph"]["tensors"]}
    nodes = [a["data-id"] for tag, a in p.tags if tag == "g" and a.get("class") == "node"]
    # the rest are the Python numbers drawn where they enter (cf0_1: f0's argument 1)
    assert nodes and all(n in ids or re.fullmatch(r"cf\d+_[01]", n) for n in nodes)
    # every function the engine ran is drawn (these graphs are under the node budget)
    assert {s["function"] for s in doc["steps"]} <= set(nodes)
    edges = [(a["data-tail"], a["data-head"]) for tag, a in p.tags if tag == "g" and a.get("class") == "edge"]
    assert edges and all((t in ids or re.fullmatch(r"cf\d+_[01]", t)) and h in ids for t, h in edges)
    # no titles left to pop up as tooltips over the inspector, no namespace addresses
    assert "<title>" not in pages[expr].split("</title>", 1)[1]


def test_json_script_cannot_be_closed_early():
    text = _json_script("x", {"expression": "</script><script>alert(1)</script>", "s": "<!--"})
    assert text.count("</script>") == 1 and text.endswith("</script>")
    body = text[len('<script type="application/json" id="x">'):-len("</script>")]
    assert json.loads(body)["expression"] == "</script><script>alert(1)</script>"


def test_inline_svg_ids_and_prologue():
    svg = ('<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"\n "x.dtd">\n<!-- c -->\n'
           '<svg width="10pt" height="5pt" viewBox="0 0 10 5" xmlns="http://www.w3.org/2000/svg" '
           'xmlns:xlink="http://www.w3.org/1999/xlink">\n<g id="graph0" class="graph">\n<title>gradviz</title>\n'
           '<g id="node1" class="node">\n<title>f0</title>\n<g id="a_node1"><a xlink:title="MulBackward0">'
           '<path/></a></g></g>\n<g id="edge1" class="edge">\n<title>t0&#45;&gt;f0</title>\n<path/></g></g></svg>')
    out = inline_svg(svg)
    assert out.startswith('<svg viewBox="0 0 10 5">')
    assert '<g class="node" data-id="f0">' in out and '<g class="edge" data-tail="t0" data-head="f0">' in out
    assert "title" not in out and "http" not in out and "<!" not in out


def test_page_document_adds_steps_only_when_missing():
    t = gradviz.trace("x*x", at={"x": 3})
    doc = page_document(t)
    assert json.loads(document_text(t)) == doc
    assert [s["name"] for s in doc["steps"]] == ["MulBackward0", "AccumulateGrad"]
    assert doc["steps"][1]["received"] == [{"from": "f0", "grad": 3.0}, {"from": "f0", "grad": 3.0}]
    assert "steps" not in t.to_dict()  # the trace itself is left as it was


@pytest.mark.parametrize("expr, at", [("x*x", {"x": 3}), ("sin(x)*exp(y) / (1 + x**2)", {"x": 0.3, "y": -1.5}),
                                       ("sigmoid(W @ x).sum()", {"W": [[1, 2], [3, 4]], "x": [0.5, -1]})])
def test_page_document_is_the_json_writers_text_with_steps(expr, at):
    # one JSON writer: the page's document is, byte for byte, what --steps --json writes
    from gradviz.render.jsondoc import iter_json

    with_steps = gradviz.trace(expr, at=at, steps=True)
    assert document_text(gradviz.trace(expr, at=at)) == "".join(iter_json(with_steps))


def test_no_backward():
    # the output needs no grad: no steps, the page still says so
    t = gradviz.trace("c*2", at={"c": 1}, no_grad=["c"])
    doc = json.loads(parsed(t.html()).scripts["gv-document"])
    assert doc["graph"]["root"] is None and "steps" not in doc


def test_retain_grad_and_order_2(tmp_path):
    out = tmp_path / "g.html"
    r = CliRunner().invoke(main, ["u*v + u**2", "--at", "u=1,v=2", "--order", "2", "--retain-grad", "-o", str(out)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    p = parsed(html)
    doc = json.loads(p.scripts["gv-document"])
    assert doc["hessian"] == {"u": {"u": 2.0, "v": 1.0}, "v": {"u": 1.0, "v": 0.0}}
    assert any(t["grad"] is not None and not t["is_leaf"] for t in doc["graph"]["tensors"])
    graphs = [a["data-graph"] for tag, a in p.tags if tag == "div" and "data-graph" in a]
    assert graphs == ["", "u", "v"]  # the backward graph, then each gradient's double-backward graph
    expected = cli_json("u*v + u**2", {"u": 1, "v": 2}, "--order", "2", "--retain-grad")
    assert doc == expected
    # what the double-backward graphs' nodes show: --graph double's section, and each pass's steps
    double = json.loads(p.scripts["gv-double"])
    graph_double = cli_json("u*v + u**2", {"u": 1, "v": 2}, "--graph", "double")["double_backward"]
    assert {k: v for k, v in double.items() if k != "steps"} == graph_double
    assert [s["name"] for s in double["steps"]["v"]] == ["MulBackward0", "AccumulateGrad"]
    assert double["steps"]["u"][-1]["grad_after"] == 2.0  # d(df/du)/du: the Hessian's entry
    ids = {f["id"] for f in double["functions"]} | {t["id"] for t in double["tensors"]}
    nodes = [a["data-id"] for tag, a in p.tags if tag == "g" and a.get("class") == "node"]
    assert ids & set(nodes)


def test_paths_data_in_the_page():
    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    data = json.loads(parsed(t.html()).scripts["gv-path-data"])
    from gradviz.paths import paths_json

    assert data == json.loads(json.dumps(paths_json(t)))
    assert data["leaves"]["u"]["sum"] == 4.0


@pytest.mark.parametrize("args", [["-o", "{dir}/g.html"], ["-o", "{dir}/g.htm"], ["--format", "html", "-o", "{dir}/g.html"]])
def test_cli_writes_the_page(tmp_path, args):
    args = [a.format(dir=tmp_path) for a in args]
    r = CliRunner().invoke(main, ["x**2", "--at", "x=2", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    html = open(args[-1], encoding="utf-8").read()
    assert json.loads(parsed(html).scripts["gv-document"])["inputs"]["x"]["grad"] == 4.0


def test_cli_html_to_stdout_and_mismatch(tmp_path):
    r = CliRunner().invoke(main, ["x**2", "--at", "x=2", "--format", "html", "-o", "-"], catch_exceptions=False)
    assert r.exit_code == 0 and r.stdout.startswith("<!DOCTYPE html>")
    r = CliRunner().invoke(main, ["x**2", "--at", "x=2", "--format", "html", "-o", str(tmp_path / "g.svg")])
    assert r.exit_code == 2 and "--format html does not match" in r.output
    r = CliRunner().invoke(main, ["x**2", "--at", "x=2", "--background", "transparent", "-o", str(tmp_path / "g.html")])
    assert r.exit_code == 2


def test_jupyter_iframe():
    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    a, b = t._repr_html_(), t._repr_html_()
    assert a.startswith("<iframe") and 'sandbox="allow-scripts"' in a and "allow-same-origin" not in a
    ids = [re.search(r'id="([^"]+)"', x).group(1) for x in (a, b)]
    assert ids[0] != ids[1]  # several on one notebook page
    srcdoc = re.search(r'srcdoc="([^"]*)"', a).group(1)
    import html as _html

    assert _html.unescape(srcdoc) == t.html()
    assert t._repr_svg_().lstrip().startswith("<?xml")  # the SVG stays available


def test_large_graph_page_is_collapsed_and_small():
    expr = " + ".join(f"x{i}*x{i + 1}" for i in range(400))  # 1,200 backward functions
    t = gradviz.trace(expr, at={f"x{i}": 1.0 + i / 100 for i in range(401)})
    html = t.html()
    p = parsed(html)
    doc = json.loads(p.scripts["gv-document"])
    assert len(doc["steps"]) == len(doc["graph"]["functions"]) == 1200
    nodes = [a["data-id"] for tag, a in p.tags if tag == "g" and a.get("class") == "node"]
    assert any(n.startswith("c") for n in nodes)  # a collapsed run, as in the SVG
    assert len(html.encode()) < 1_500_000
    assert "data-expanded=" not in html  # over EXPAND_MAX: no second layout


def test_collapsed_runs_expanded_layout():
    from gradviz.render.html import EXPAND_MAX

    expr = " + ".join(f"x{i}*x{i + 1}" for i in range(120))  # 360 functions: collapsed, and expandable
    t = gradviz.trace(expr, at={f"x{i}": 1.0 for i in range(121)})
    p = parsed(t.html())
    doc = json.loads(p.scripts["gv-document"])
    drawings, current = {}, None
    for tag, a in p.tags:
        if tag == "div" and "data-graph" in a:
            current = "expanded" if "data-expanded" in a else "drawn"
        elif tag == "g" and a.get("class") == "node":
            drawings.setdefault(current, []).append(a["data-id"])
    assert any(n.startswith("c") and n[1:].isdigit() for n in drawings["drawn"])
    # the expanded layout draws every function of the document, and nothing collapsed
    assert {f["id"] for f in doc["graph"]["functions"]} <= set(drawings["expanded"])
    assert not any(n[0] == "c" and n[1:].isdigit() for n in drawings["expanded"])
    assert len(doc["graph"]["functions"]) <= EXPAND_MAX
    # a graph drawn whole has nothing to expand
    assert "data-expanded=" not in gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}).html()


def test_save_html(tmp_path):
    t = gradviz.trace("x**2", at={"x": 2})
    t.save(tmp_path / "g.html")
    html = (tmp_path / "g.html").read_text(encoding="utf-8")
    assert json.loads(parsed(html).scripts["gv-document"]) == page_document(t)
