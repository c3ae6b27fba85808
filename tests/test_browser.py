"""The interactive page in a real browser: Debian's Chromium, driven by Playwright.

For the lecture's three examples, a tensor example and a graph of about 300 nodes: the page
loads with no network request and no console error; stepping visits exactly the document's
``steps`` order with that step's function highlighted (class ``active``); hovering a node
shows its full value; after the last step each leaf's grad is the JSON's. Screenshots of a
few steps go to the test's temporary folder (samples/page.png is one of them).
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

import gradviz

CHROMIUM = os.environ.get("GRADVIZ_CHROMIUM", "/usr/bin/chromium")
if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

LECTURE = [
    ("x**2", {"x": 2}),
    ("x**2 + 2*x + 1", {"x": 2}),
    ("u*v + u**2", {"u": 1, "v": 2}),
]
TENSOR = ("mean(sigmoid(W @ x + b))", {"W": [[1, 2], [3, 4]], "x": [1, -1], "b": [0, 1]})
#: 70 terms: 70 SinBackward0, 70 MulBackward0, 69 AddBackward0, 71 AccumulateGrad (280 functions, drawn whole)
BIG = (" + ".join(f"sin(x{i})*x{i + 1}" for i in range(70)), {f"x{i}": 0.5 + i / 64 for i in range(71)})


@pytest.fixture(autouse=True)
def _cache(gradviz_cache_dir):
    """Renders use the session's temporary wasm cache."""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Loaded:
    """A page opened from a file, with every request and console message it made."""

    def __init__(self, browser, path):
        self.url = path.as_uri()
        self.page = browser.new_page(viewport={"width": 1280, "height": 760})
        self.requests, self.errors = [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.set_default_timeout(10_000)
        self.page.goto(self.url)
        self.page.wait_for_function("window.gradviz !== undefined")
        # a large graph opens zoomed in around the output: show all of it, as a reader would
        self.page.click("#gv-fit")

    def js(self, code, arg=None):
        return self.page.evaluate(code, arg)

    def active(self):
        return self.js("[...document.querySelectorAll('#gv-view .active')].map(e => e.dataset.id)")


def open_page(browser, tmp_path, expr, at, name="page.html"):
    t = gradviz.trace(expr, at=at)
    path = tmp_path / name
    path.write_text(t.html(), encoding="utf-8")
    return Loaded(browser, path), json.loads(t.to_json()), t


def py_number(text: str) -> float:
    """A number as the page writes it (``4.``, ``0.25``, ``nan``)."""
    return float(text.rstrip("."))


def check_loaded_quietly(p: Loaded):
    assert p.requests == [p.url]  # the page itself, and nothing else
    assert p.errors == []


@pytest.mark.parametrize("expr,at", LECTURE + [TENSOR], ids=["x2", "quadratic", "uv", "tensor"])
def test_page_steps_as_the_engine_ran(browser, tmp_path, expr, at):
    p, plain, t = open_page(browser, tmp_path, expr, at)
    doc = p.js("window.gradviz.document")
    order = [s["function"] for s in doc["steps"]]
    assert order == [s.function.id for s in t.steps] and order
    # the document is --json's (plus the steps section)
    assert {k: v for k, v in doc.items() if k != "steps"} == plain
    assert p.js("window.gradviz.step") == 0 and p.active() == []
    p.page.locator("#gv-view").focus()
    for k, fid in enumerate(order, 1):
        p.page.keyboard.press("ArrowRight")
        assert p.js("window.gradviz.step") == k
        assert p.active() == [fid]
        assert p.page.inner_text("#gv-counter") == f"step {k} / {len(order)}"
        if k == 1:
            p.page.screenshot(path=str(tmp_path / "step1.png"))
    p.page.keyboard.press("ArrowRight")  # past the end: stays at the last step
    assert p.js("window.gradviz.step") == len(order)
    p.page.keyboard.press("ArrowLeft")
    assert p.js("window.gradviz.step") == len(order) - 1
    # goto(n) from a script, and the jump box
    assert p.js("window.gradviz.goto(2)") == 2 and p.active() == [order[1]]
    p.page.fill("#gv-jump", "1")
    p.page.dispatch_event("#gv-jump", "change")
    assert p.js("window.gradviz.step") == 1 and p.active() == [order[0]]
    check_loaded_quietly(p)
    p.page.close()


@pytest.mark.parametrize("expr,at", LECTURE + [TENSOR], ids=["x2", "quadratic", "uv", "tensor"])
def test_hover_and_leaf_grads(browser, tmp_path, expr, at):
    p, plain, t = open_page(browser, tmp_path, expr, at)
    doc = p.js("window.gradviz.document")
    steps = doc["steps"]
    for name, entry in plain["inputs"].items():
        leaf = next(x for x in doc["graph"]["tensors"] if x["name"] == name and x["is_leaf"])
        p.page.hover(f'#gv-view g.node[data-id="{leaf["id"]}"]')
        shown = p.page.inner_text('#gv-inspect [data-field="data"]')
        assert numbers(shown) == flat(entry["data"])  # every element, untruncated
        # the leaf's AccumulateGrad step: its contributions added, 2 + 2 = 4 for a leaf used twice
        k = next(s["step"] for s in steps if s.get("variable") == name)
        p.js(f"window.gradviz.goto({k})")
        acc = p.page.inner_text('#gv-step [data-field="accumulate"]')
        received = [r["grad"] for r in steps[k - 1]["received"]]
        if len(received) > 1:
            assert acc.endswith("= " + printed(entry["grad"]))  # as the terminal and the picture print it
            assert acc.count(" + ") == len(received) - 1
        assert acc.split("= ")[-1] == printed(entry["grad"])
    # after the last step every leaf's box shows its grad, the JSON's
    p.js(f"window.gradviz.goto({len(steps)})")
    for name, entry in plain["inputs"].items():
        leaf = next(x for x in doc["graph"]["tensors"] if x["name"] == name and x["is_leaf"])
        p.page.click(f'#gv-view g.node[data-id="{leaf["id"]}"]')
        assert numbers(p.page.inner_text('#gv-inspect [data-field="grad"]')) == flat(entry["grad"])
        if not isinstance(entry["grad"], list):
            box = p.js(f"""[...document.querySelectorAll('#gv-view g.node[data-id="{leaf["id"]}"] text')]
                          .map(e => e.textContent).find(s => s.startsWith('grad = '))""")
            assert py_number(box[len("grad = "):]) == pytest.approx(entry["grad"], rel=1e-4)
    p.js("window.gradviz.goto(0)")  # before backward: no leaf has a grad yet
    boxes = p.js("""[...document.querySelectorAll('#gv-view g.node text')].map(e => e.textContent)
                    .filter(s => s.startsWith('grad = '))""")
    assert boxes and set(boxes) == {"grad = None"}
    check_loaded_quietly(p)
    p.page.close()


def test_step_cards_print_numbers_as_the_terminal_does(browser, tmp_path):
    p, _, _ = open_page(browser, tmp_path, "u*v + u**2", {"u": 1, "v": 2})
    p.js("window.gradviz.goto(3)")  # MulBackward0
    rules = p.page.inner_text("#gv-step")
    assert "grad_self = grad·other = 1.·2. = 2." in rules and "grad_other = grad·self = 1.·1. = 1." in rules
    p.js("window.gradviz.goto(4)")  # u's AccumulateGrad
    assert p.page.inner_text('#gv-step [data-field="accumulate"]') == "u.grad = 2. + 2. = 4."
    check_loaded_quietly(p)
    p.page.close()


def fmt(v) -> str:
    return f"{int(v)}." if float(v).is_integer() else repr(v)


def printed(v) -> str:
    """A float32 value of the document as gradviz's views print it (PyTorch's printing, one line)."""
    import numpy as np

    from gradviz.numbers import format_tensor

    return format_tensor(float(v) if not isinstance(v, list) else np.array(v, dtype=np.float32), one_line=True)


def flat(v) -> list[float]:
    out, stack = [], [v]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(reversed(x))
        else:
            out.append(float(x))
    return out


def numbers(text: str) -> list[float]:
    import re

    return [float(m) for m in re.findall(r"-?(?:\d+\.?\d*(?:e[-+]?\d+)?|inf|nan)", text)]


def test_big_graph(browser, tmp_path):
    p, plain, t = open_page(browser, tmp_path, *BIG)
    doc = p.js("window.gradviz.document")
    assert len(doc["graph"]["functions"]) == 280
    order = [s["function"] for s in doc["steps"]]
    seen = p.js("""() => { const out = [];
        for (let k = 1; k <= window.gradviz.steps; k++) {
          window.gradviz.goto(k);
          out.push([window.gradviz.step, [...document.querySelectorAll('#gv-view .active')].map(e => e.dataset.id)]);
        } return out; }""")
    assert seen == [[k, [fid]] for k, fid in enumerate(order, 1)]
    x0 = next(x for x in doc["graph"]["tensors"] if x["name"] == "x0")
    p.page.hover(f'#gv-view g.node[data-id="{x0["id"]}"]')
    assert numbers(p.page.inner_text('#gv-inspect [data-field="grad"]')) == [plain["inputs"]["x0"]["grad"]]
    check_loaded_quietly(p)
    p.page.close()


def test_paths_forward_theme_and_collapsed(browser, tmp_path):
    p, plain, t = open_page(browser, tmp_path, "u*v + u**2", {"u": 1, "v": 2})
    p.page.select_option("#gv-paths", "u")
    text = p.page.inner_text("#gv-pathinfo")
    assert "2 paths" in text and "sum: 2. + 2. = 4." in text
    assert len(p.js("[...document.querySelectorAll('#gv-view g.edge.gv-on-path')]")) == 5
    # forward mode: the tensors in creation order
    p.page.select_option("#gv-mode", "forward")
    p.js("window.gradviz.forward(3)")
    assert p.page.inner_text("#gv-counter") == "tensor 3 / 5"
    assert "u*v" in p.page.inner_text("#gv-step")
    # the expression and the nodes, both ways
    p.page.click('#gv-view g.node[data-id="f4"]')
    assert p.js("window.gradviz.highlighted()") == ["u**2"]
    p.page.click('#gv-view g.node[data-id="t0"]')
    assert p.js("window.gradviz.highlighted()") == ["u", "u"]  # each use of the leaf
    # and the other way: clicking a part of the expression finds its nodes
    box = p.page.locator("#gv-expr").bounding_box()
    p.page.mouse.click(box["x"] + 4, box["y"] + box["height"] / 2)  # on the first "u"
    assert p.js("[...document.querySelectorAll('#gv-view .gv-hit')].map(e => e.dataset.id).sort()") == ["f2", "t0"]
    p.page.click("#gv-theme")
    assert p.js("document.getElementById('gv').dataset.theme") in ("light", "dark")
    check_loaded_quietly(p)
    p.page.close()
    # a collapsed run: its node stands for the hidden functions' steps, and lists them
    expr = " + ".join(f"x{i}*x{i + 1}" for i in range(120))
    p, plain, t = open_page(browser, tmp_path, expr, {f"x{i}": 1.0 for i in range(121)}, "big.html")
    hidden = p.js("""() => { const d = window.gradviz.document, drawn = new Set(
        [...document.querySelectorAll('#gv-view .gv-svg:not([hidden]) g.node')].map(e => e.dataset.id));
        return d.steps.filter(s => !drawn.has(s.function)).map(s => s.step); }""")
    assert hidden
    p.js(f"window.gradviz.goto({hidden[0]})")
    assert [a[0] for a in p.active()] == ["c"]
    p.page.hover("#gv-view g.node.active")
    assert "collapsed run" in p.page.inner_text("#gv-inspect")
    assert "click it to expand" in p.page.inner_text('#gv-inspect [data-field="expand-hint"]')
    p.page.screenshot(path=str(tmp_path / "collapsed.png"))
    # a click expands the runs in the graph itself: every function drawn, the step shown stays shown
    p.page.click("#gv-view g.node.active")
    assert p.js("window.gradviz.expanded") is True
    assert p.js("window.gradviz.step") == hidden[0]
    fid = plain_steps(p)[hidden[0] - 1]
    assert p.active() == [fid]
    drawn = set(p.js("[...document.querySelectorAll('#gv-view .gv-svg:not([hidden]) g.node')].map(e => e.dataset.id)"))
    assert {f["id"] for f in plain["graph"]["functions"]} <= drawn
    assert not any(d[0] == "c" and d[1:].isdigit() for d in drawn)
    p.page.screenshot(path=str(tmp_path / "expanded.png"))
    # stepping in the expanded layout visits every function itself
    order = plain_steps(p)
    seen = p.js("""() => { const out = [];
        for (let k = 1; k <= window.gradviz.steps; k++) {
          window.gradviz.goto(k);
          out.push([...document.querySelectorAll('#gv-view .active')].map(e => e.dataset.id));
        } return out; }""")
    assert seen == [[f] for f in order]
    # a hidden function's node, hovered, shows its values; its leaf's grad is the JSON's
    p.page.hover(f'#gv-view .gv-svg:not([hidden]) g.node[data-id="{order[hidden[0] - 1]}"]')
    assert "runs at" in p.page.inner_text("#gv-inspect")
    x60 = next(x for x in plain["graph"]["tensors"] if x["name"] == "x60")
    p.page.hover(f'#gv-view .gv-svg:not([hidden]) g.node[data-id="{x60["id"]}"]')
    assert numbers(p.page.inner_text('#gv-inspect [data-field="grad"]')) == [plain["inputs"]["x60"]["grad"]]
    # and collapsing again swaps the SVG's drawing back
    p.page.click("#gv-collapse")
    assert p.js("window.gradviz.expanded") is False
    p.js(f"window.gradviz.goto({hidden[0]})")
    assert [a[0] for a in p.active()] == ["c"]
    assert p.page.is_hidden("#gv-collapse")
    check_loaded_quietly(p)
    p.page.close()


def plain_steps(p) -> list:
    return [s["function"] for s in p.js("window.gradviz.document.steps")]


def test_too_large_to_expand_says_so(browser, tmp_path):
    expr = " + ".join(f"x{i}*x{i + 1}" for i in range(200))  # 600 functions: over EXPAND_MAX
    p, plain, t = open_page(browser, tmp_path, expr, {f"x{i}": 1.0 for i in range(201)}, "large.html")
    node = p.page.locator("#gv-view g.node[data-id='c0']")
    node.hover()
    assert "--max-nodes 600" in p.page.inner_text('#gv-inspect [data-field="expand-hint"]')
    node.click()
    assert p.js("window.gradviz.expanded") is False and "collapsed run" in p.page.inner_text("#gv-inspect")
    check_loaded_quietly(p)
    p.page.close()


def test_order_2_and_retain_grad(browser, tmp_path):
    from gradviz.learn import analyse

    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}, retain_grad=True)
    learned = analyse(t, order=2, retain_grad=True)
    path = tmp_path / "order2.html"
    path.write_text(t.html(second=learned.second), encoding="utf-8")
    p = Loaded(browser, path)
    cells = p.js("[...document.querySelectorAll('#gv-hessian td')].map(e => e.textContent)")
    assert cells == ["2.", "1.", "1.", "0."]
    # each gradient's double-backward graph, one at a time
    assert p.js("[...document.querySelectorAll('#gv-graph option')].map(o => o.value)") == ["", "u", "v"]
    p.page.select_option("#gv-graph", "u")
    shown = p.js("[...document.querySelectorAll('#gv-view .gv-svg')].filter(g => !g.hidden).map(g => g.dataset.graph)")
    assert shown == ["u"]
    # intermediates' grads, as retain_grad() keeps them
    p.page.select_option("#gv-graph", "")
    p.page.click("#gv-fit")
    p.page.click('#gv-view g.node[data-id="f1"]')
    assert p.page.inner_text('#gv-inspect [data-field="grad"]') == "1."
    check_loaded_quietly(p)
    p.page.close()


@pytest.mark.parametrize("expr,at", [("u*v + u**2", {"u": 1, "v": 2}), ("sin(x)*y*y", {"x": 0.5, "y": 2})])
def test_double_backward_nodes_inspectable(browser, tmp_path, expr, at):
    """--order 2: every node of each gradient's double-backward graph shows what it is, with data-id."""
    from gradviz.learn import analyse
    from gradviz.render.html import double_document

    t = gradviz.trace(expr, at=at)
    learned = analyse(t, order=2)
    path = tmp_path / "double.html"
    path.write_text(t.html(second=learned.second), encoding="utf-8")
    data = double_document(learned.second)
    fns = {f["id"]: f for f in data["functions"]}
    tensors = {x["id"]: x for x in data["tensors"]}
    p = Loaded(browser, path)
    hessian = p.js("window.gradviz.document.hessian")
    for name in at:
        p.page.select_option("#gv-graph", name)
        p.page.click("#gv-fit")
        sel = f'#gv-view .gv-svg[data-graph="{name}"] g.node'
        ids = p.js(f"[...document.querySelectorAll('{sel}')].map(e => e.dataset.id)")
        assert ids and all(i in fns or i in tensors or re.fullmatch(r"cf\d+_\d", i) for i in ids), ids
        steps = {st["function"]: st for st in data["steps"][name]}
        for i in ids:
            if i not in fns and i not in tensors:
                continue
            p.page.hover(f'{sel}[data-id="{i}"]')
            shown = p.page.inner_text("#gv-inspect")
            assert f"double-backward graph of \u2202f/\u2202{name}" in shown
            f = fns.get(i) or fns.get(tensors[i]["grad_fn"] or "")
            if i in tensors:
                assert numbers(p.page.inner_text('#gv-inspect [data-field="data"]')) == flat(tensors[i]["data"])
            if f is not None and f["name"] != "AccumulateGrad":
                saved = [v for v in f["saved"].values() if v is not None and not isinstance(v, str)]
                assert [numbers(x) for x in p.js("[...document.querySelectorAll('#gv-inspect [data-field=saved]')]"
                                                  ".map(e => e.textContent)") if x != "None"] == \
                    [flat(v) for v in saved if flat(v)]
                if f["id"] in steps:  # its rule, with this pass's numbers
                    assert all(r["formula"] in shown for r in steps[f["id"]]["rules"])
            leaf = tensors.get(i)
            if leaf is not None and leaf["is_leaf"] and f is None:
                # what reached the leaf in the backward pass from this gradient: the Hessian's entry
                got = p.page.inner_text('#gv-inspect [data-field="pass-grad"]')
                assert numbers(got) == pytest.approx([hessian[name][leaf["name"]]], rel=1e-6)
    check_loaded_quietly(p)
    p.page.close()


def test_two_in_one_notebook(browser, tmp_path):
    """Jupyter's _repr_html_: each trace in a sandboxed iframe of its own; two on one page work."""
    a = gradviz.trace("x**2", at={"x": 2})._repr_html_()
    b = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})._repr_html_()
    path = tmp_path / "notebook.html"
    path.write_text(f"<!DOCTYPE html><html><body><div>{a}</div><div>{b}</div></body></html>", encoding="utf-8")
    p = Loaded.__new__(Loaded)
    p.url = path.as_uri()
    p.page = browser.new_page(viewport={"width": 1280, "height": 1400})
    p.requests, p.errors = [], []
    p.page.on("request", lambda r: p.requests.append(r.url))
    p.page.on("console", lambda m: p.errors.append(m.text) if m.type in ("error", "warning") else None)
    p.page.goto(p.url)
    frames = [f for f in p.page.frames if f != p.page.main_frame]
    assert len(frames) == 2
    for f, expr, n in zip(frames, ["x**2", "u*v + u**2"], [2, 5]):
        f.wait_for_function("window.gradviz !== undefined")
        assert f.evaluate("window.gradviz.document.expression") == expr
        assert f.evaluate("window.gradviz.steps") == n
        assert f.evaluate(f"window.gradviz.goto({n})") == n
    # the page around them is left alone: no script of theirs reached it
    assert p.js("window.gradviz === undefined")
    assert all(u == p.url or u.startswith("about:") for u in p.requests), p.requests
    assert p.errors == []
    p.page.close()
