"""gradviz.from_torch: a graph PyTorch built, read into the tape, against the expression path and real models.

Skipped as a whole where torch is not installed (gradviz never needs it).
"""

import functools
import json
import os
import re
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jsonschema = pytest.importorskip("jsonschema")

import gradviz  # noqa: E402
from gradviz.errors import GradvizError  # noqa: E402
from gradviz.graph import ImportedOp  # noqa: E402
from oracle.torch_oracle import make_namespace  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "torch_golden.json")
with open(FIXTURE) as fh:
    CASES = json.load(fh)["cases"]
SCHEMA = json.loads(resources.files("gradviz.schema").joinpath("gradviz-1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _usable(case) -> bool:
    r = case["result"]
    return r.get("error") is None and r.get("grad_fn") is not None and r.get("backward") and \
        not case.get("grad_output") and len(case["expr"]) < 400


def _sample(cases: list) -> list:
    """Each case that brings a backward function not seen in an earlier one, and every twelfth
    other (kept fast; every function the golden cases record appears)."""
    seen, out = set(), []
    for k, case in enumerate(cases):
        names = {n["name"] for n in case["result"]["nodes"]}
        if not names <= seen or k % 12 == 0:
            out.append(case)
            seen |= names
    return out


GOLDEN = _sample([c for c in CASES if _usable(c)])


def torch_expression(case):
    """The case's expression built in PyTorch (as tests/oracle does) and its leaves."""
    dtype = getattr(torch, case["dtype"])
    leaves = {name: torch.tensor(v, dtype=dtype, requires_grad=name not in case["no_grad"])
              for name, v in case["at"].items()}
    out = eval(case["expr"], {"__builtins__": {}}, make_namespace(leaves))  # noqa: S307 (our own fixtures)
    return out, leaves


def _plain(v):
    """A saved value for comparing: arrays and tensor values as float64 arrays, sizes as tuples."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x) for x in v)
    return np.asarray(v, dtype=np.float64)


def assert_same_saved(ours: dict, theirs: dict, what: str):
    assert sorted(ours) == sorted(theirs), f"{what}: saved names {sorted(ours)} != {sorted(theirs)}"
    for k in ours:
        a, b = _plain(ours[k]), _plain(theirs[k])
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                                       rtol=2e-5, atol=1e-6, equal_nan=True, err_msg=f"{what}.{k}")
        elif isinstance(a, tuple) and any(isinstance(x, np.ndarray) for x in a + b):  # IndexBackward0's indices
            assert len(a) == len(b) and all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a, b)), \
                f"{what}.{k}: {a!r} != {b!r}"
        else:
            assert a == b or (a != a and b != b), f"{what}.{k}: {a!r} != {b!r}"


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: c["expr"][:60])
def test_same_graph_values_and_grads_as_the_expression_path(case):
    try:
        expected = gradviz.trace(case["expr"], at=case["at"], no_grad=case["no_grad"], dtype=case["dtype"])
        out, leaves = torch_expression(case)
    except (GradvizError, KeyError, NameError):
        pytest.skip("outside the expression language (or the oracle's namespace)")
    got = gradviz.from_torch(out, inputs=leaves)
    ge, gg = expected.graph, got.graph
    fe, fg = ge.functions, gg.functions
    assert [f.name for f in fg] == [f.name for f in fe]
    assert [[n.id if n else None for n in f.next_functions] for f in fg] == \
        [[n.id if n else None for n in f.next_functions] for f in fe]
    for a, b in zip(fg, fe):
        if b.variable is not None:
            assert a.variable.name == b.variable.name
        else:
            assert isinstance(a.op, ImportedOp) and a.op.row is not None  # gradviz has a row of that name
            assert_same_saved(a.saved, b.saved, f"{case['expr']}: {b.name}")
    np.testing.assert_allclose(np.asarray(got.value, np.float64), np.asarray(expected.value, np.float64),
                               rtol=2e-5, atol=1e-6, equal_nan=True)
    for name, t in expected.inputs.items():
        ours, theirs = got.inputs[name].grad, t.grad
        assert (ours is None) == (theirs is None), name
        if theirs is not None:
            np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(theirs, np.float64),
                                       rtol=2e-5, atol=1e-6, equal_nan=True, err_msg=name)
    # the gradient on every edge, as the expression engine computed it
    for a, b in zip(fg, fe):
        for k in range(len(b.next_functions)):
            theirs = expected.steps.along(b.index, k)
            ours = got.steps.along(a.index, k)
            assert (ours is None) == (theirs is None)
            if theirs is not None:
                np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(theirs, np.float64),
                                           rtol=2e-4, atol=1e-5, equal_nan=True)
    VALIDATOR.validate(json.loads(got.to_json()))


# --------------------------------------------------------------------------- basics


def _uv():
    u = torch.tensor(1.0, requires_grad=True)
    v = torch.tensor([2.0, 3.0], requires_grad=True)
    return u, v, (u * v + u ** 2).logsumexp(0)


def test_user_grad_untouched_unless_accumulate():
    u, v, f = _uv()
    t = gradviz.from_torch(f, inputs={"u": u, "v": v})
    assert u.grad is None and v.grad is None
    f.backward(retain_graph=True)
    np.testing.assert_allclose(t.grads["u"], u.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(t.grads["v"], v.grad.numpy(), rtol=1e-6)
    before = u.grad.clone()
    t2 = gradviz.from_torch(f, inputs={"u": u, "v": v}, accumulate=True)
    np.testing.assert_allclose(u.grad.numpy(), 2 * before.numpy(), rtol=1e-6)
    np.testing.assert_allclose(t2.grads["u"], u.grad.numpy(), rtol=1e-6)  # the leaf's .grad after


def test_functions_without_an_op_row_show_name_saved_and_measured_gradients():
    # torch.dist has no op row (logsumexp, used here before, got one with issue 13)
    u = torch.tensor(1.0, requires_grad=True)
    v = torch.tensor([2.0, 3.0], requires_grad=True)
    f = torch.dist(u * v + u ** 2, torch.zeros(2))
    t = gradviz.from_torch(f, inputs={"u": u, "v": v})
    root = t.graph.root
    assert root.name == "DistBackward0" and root.op.row is None
    assert sorted(root.saved) == ["other", "p", "result", "self"]
    assert root.saved["p"] == 2
    np.testing.assert_allclose(root.saved["self"], [3.0, 4.0])
    assert t.graph.imported[root.index].saved_meta["self"] == ((2,), "float32")
    np.testing.assert_allclose(t.steps.along(root.index, 0), [0.6, 0.8], rtol=1e-6)
    from rich.console import Console
    from gradviz.render.steps import steps_view

    console = Console(width=120, color_system=None, record=True)
    console.print(steps_view(t))
    text = console.export_text()
    assert "no rule text is available for DistBackward0" in text
    assert "grad_self = grad·exponent·self**(exponent - 1) = 1.4000·2·1.**(2 - 1) = 2.8000" in text  # PowBackward0's row


def test_custom_function_saved_tensors_and_ctx():
    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            ctx.factor = 2
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * ctx.factor

    x = torch.tensor([1.0, -2.0], requires_grad=True)
    t = gradviz.from_torch(Double.apply(x).sum(), inputs={"x": x})
    fn = t.graph.root.next_functions[0]
    assert fn.name == "DoubleBackward" and fn.saved["factor"] == 2
    np.testing.assert_allclose(fn.saved["saved_tensors"][0], [1.0, -2.0])
    np.testing.assert_allclose(t.grads["x"], [2.0, 2.0])
    VALIDATOR.validate(json.loads(t.to_json()))  # a name outside the tracer's pattern is valid for torch


def test_unnamed_leaves_by_shape_and_non_scalar_output():
    a, b = torch.ones(2, 3, requires_grad=True), torch.ones(2, 3, requires_grad=True)
    t = gradviz.from_torch(a * b)
    assert list(t.inputs) == ["(2, 3)", "(2, 3) #2"]
    assert t.backward_error and "grad_output" in t.backward_error
    t = gradviz.from_torch(a * b, grad_output="ones")
    np.testing.assert_allclose(t.grads["(2, 3)"], np.ones((2, 3)))


def test_bad_arguments_are_clear_errors():
    with pytest.raises(GradvizError, match="torch.Tensor"):
        gradviz.from_torch([1, 2])
    x = torch.tensor(2.0, requires_grad=True)
    with pytest.raises(GradvizError, match="params"):
        gradviz.from_torch(x * 2, params=3)
    y = (x * x)
    y.backward()  # frees the saved values
    with pytest.raises(GradvizError, match="before backward"):
        gradviz.from_torch(y)


def test_torch_missing_is_one_clear_message():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import gradviz\n"
            "try:\n    gradviz.from_torch(1)\n"
            "except gradviz.GradvizError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("ERR gradviz.from_torch needs PyTorch"), out.stderr


# --------------------------------------------------------------------------- --from-json


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "gradviz", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_from_json_round_trip_and_views(tmp_path):
    u, v, f = _uv()
    doc = gradviz.from_torch(f, inputs={"u": u, "v": v}).to_json()
    path = tmp_path / "g.json"
    path.write_text(doc)
    out = _cli("--from-json", str(path), "--json")
    assert out.returncode == 0 and out.stdout == doc + "\n"
    out = _cli("--from-json", "-", "--format", "tree", stdin=doc)
    assert out.returncode == 0 and "LogsumexpBackward0" in out.stdout and "u.grad = 2.7311 + 2.0000" in out.stdout
    out = _cli("--from-json", str(path), "-o", str(tmp_path / "g.svg"))
    assert out.returncode == 0 and (tmp_path / "g.svg").read_text().startswith("<?xml")


def test_from_json_of_an_expression_document():
    doc = _cli("u*v + sin(u)", "--at", "u=1,v=2", "--json", "--steps").stdout
    out = _cli("--from-json", "-", "--json", "--steps", stdin=doc)
    assert out.returncode == 0 and out.stdout == doc
    out = _cli("--from-json", "-", "--steps", stdin=doc)
    assert "grad_self = grad·other" in out.stdout


@pytest.mark.parametrize("text, message", [
    ("nope", "not valid JSON"),
    ('{"schema": "gradviz/1"}', "not a valid gradviz/1 document"),
    ('{"schema": "other"}', "not a gradviz/1 document"),
    ('{"schema": "gradviz/1", "error": {"message": "m"}}', "error document"),
    ('[1]', "not a gradviz/1 document"),
])
def test_from_json_bad_documents(text, message):
    out = _cli("--from-json", "-", stdin=text)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


# --------------------------------------------------------------------------- record()


class _Block(torch.nn.Module):
    def __init__(self, n=3):
        super().__init__()
        self.fc1 = torch.nn.Linear(n, n)
        self.act = torch.nn.Tanh()

    def forward(self, x):
        return x + self.act(self.fc1(x))


def test_record_values_and_module_paths():
    torch.manual_seed(0)
    model = torch.nn.Sequential(_Block(), torch.nn.Linear(3, 2))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])
    with gradviz.record(model) as rec:  # paths named from the model (its parts are called one by one)
        hidden = model[0](x)
        loss = torch.nn.functional.cross_entropy(model[1](hidden), y)
    t = rec.graph(loss, params=model)
    g = t.graph
    modules = {fn.name: g.imported[fn.index].module for fn in g.functions if fn.variable is None}
    assert modules["TanhBackward0"] == "0.act" and modules["AddBackward0"] == "0"
    assert modules["NllLossBackward0"] is None  # outside every module
    tanh = next(fn for fn in g.functions if fn.name == "TanhBackward0")
    np.testing.assert_allclose(tanh.output.value, torch.tanh(model[0].fc1(x)).detach().numpy(), rtol=1e-6)
    add = next(fn for fn in g.functions if fn.name == "AddBackward0")
    np.testing.assert_allclose(add.output.value, hidden.detach().numpy(), rtol=1e-6)
    # weight.t() inside F.linear is not seen by the mode: it belongs to the call that used it
    assert sum(1 for fn in g.functions if fn.name == "TBackward0" and g.imported[fn.index].module == "0.fc1") == 1
    from gradviz.render.dot import dot_source

    dot = dot_source(t)
    assert 'subgraph cluster_' in dot and 'label="0.fc1"' in dot and "output = " in dot
    text = t.to_json()
    doc = json.loads(text)
    VALIDATOR.validate(doc)
    assert any(f.get("module") == "0.act" for f in doc["graph"]["functions"])
    from gradviz.import_json import read_document

    again = read_document(doc)
    assert again.to_json() == text  # the module paths and recorded values survive a round trip
    assert 'label="0.fc1"' in dot_source(again)
    page = t.html()
    assert page.lstrip().lower().startswith("<!doctype html") and "TanhBackward0" in page
    # nothing is left behind: the mode and the hooks are gone
    assert not torch.nn.modules.module._global_forward_hooks
    with gradviz.record() as rec:  # by default, paths are named from the outermost module called
        loss = model(x).sum()
    assert rec.modules[loss.grad_fn] is None and "0.fc1" in rec.modules.values()


# --------------------------------------------------------------------------- real models (plain torch.nn)

nn, F = torch.nn, torch.nn.functional


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(self.drop(x.flatten(1)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    """ResNet-34's layout (3, 4, 6, 3 basic blocks) at a tiny width: about 240 backward functions."""

    def __init__(self, width=2, classes=3, layout=(3, 4, 6, 3)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)
        blocks, cin = [], width
        for stage, count in enumerate(layout):
            for k in range(count):
                cout = width * 2 ** stage
                blocks.append(BasicBlock(cin, cout, 2 if k == 0 and stage else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.layers(F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2))
        return self.fc(x.mean((2, 3)))


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = (t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, dim=-1))
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    def __init__(self, d=8, heads=2):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(d), Attention(d, heads), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class Tiny(nn.Module):
    def __init__(self, d=8, vocab=5):
        super().__init__()
        self.embed, self.block, self.head = nn.Embedding(vocab, d), TransformerBlock(d), nn.Linear(d, vocab)

    def forward(self, tokens):
        return self.head(self.block(self.embed(tokens)))


def reference_walk(root) -> list:
    """grad_fn's graph walked on its own (an explicit stack; marked when pushed, the first next
    function popped first): (class name, positions of the next functions or None) per node."""
    pos, order, stack = {root: 0}, [], [root]
    while stack:
        fn = stack.pop()
        order.append(fn)
        for nxt, _ in reversed(fn.next_functions):
            if nxt is not None and nxt not in pos:
                pos[nxt] = -1
                stack.append(nxt)
        pos[fn] = len(order) - 1
    return [(type(fn).__name__, [None if nxt is None else pos[nxt] for nxt, _ in fn.next_functions])
            for fn in order]


def _loss(name):
    torch.manual_seed(0)
    if name == "mlp":
        model = MLP()
        return model, F.mse_loss(model(torch.randn(5, 4)), torch.randn(5, 3))
    if name == "cnn":
        model = CNN()
        model.drop.eval()  # dropout in eval: the identity (batchnorm trains, with its batch statistics)
        return model, F.cross_entropy(model(torch.randn(2, 1, 8, 8)), torch.tensor([0, 2]))
    if name == "lstm":
        model = nn.LSTMCell(2, 3)
        h = c = torch.zeros(1, 3)
        x = torch.randn(1, 2)
        for _ in range(1000):
            h, c = model(x, (h, c))
        return model, h.pow(2).sum()
    if name == "transformer":
        model = Tiny()
        logits = model(torch.tensor([[0, 3, 1, 4]]))
        return model, F.cross_entropy(logits.reshape(-1, 5), torch.tensor([3, 1, 4, 0]))
    if name == "resnet":
        model = ResNet()
        return model, F.cross_entropy(model(torch.randn(2, 3, 8, 8)), torch.tensor([0, 2]))
    if name == "transformer12":
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
        model = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)
        return model, model(torch.randn(2, 4, 8)).pow(2).mean()
    raise KeyError(name)


@functools.lru_cache(maxsize=None)
def _read(name):
    """(model, loss, from_torch of it) of a model, built once for the module (the graph is read before
    any test runs an ordinary backward on it)."""
    model, loss = _loss(name)
    return model, loss, gradviz.from_torch(loss, params=model)


def _ours(graph) -> list:
    return [(fn.name, [None if n is None else int(n.id[1:]) for n in fn.next_functions]) for fn in graph.functions]


@pytest.mark.parametrize("name, functions", [("mlp", 9), ("cnn", 15), ("lstm", 15005), ("transformer", 59),
                                             ("resnet", 230), ("transformer12", 900)])
def test_real_models(name, functions):
    from gradviz.render.dot import dot_source
    from gradviz.render.svg import render

    model, loss, t = _read(name)
    assert _ours(t.graph) == reference_walk(loss.grad_fn)
    assert t.graph.function_count() >= functions
    assert all(p.grad is None for p in model.parameters())  # from_torch left .grad alone
    loss.backward()
    for pname, p in model.named_parameters():
        np.testing.assert_allclose(t.grads[pname], p.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=pname)
    svg = render(dot_source(t), "svg").decode()
    # (the LSTM's 997 repeated steps are one node: the rest of its graph is drawn whole)
    assert svg.lstrip().startswith("<?xml") and \
        svg.count('class="node"') >= (50 if "more blocks like" in svg else min(functions, 100))
    if functions > 10_000:
        return  # (the LSTM's document is 15,000 functions: written in the bench, not here)
    doc = json.loads(t.to_json())
    assert len(doc["graph"]["functions"]) == t.graph.function_count()
    if functions < 100:  # (jsonschema takes a minute over the large ones)
        VALIDATOR.validate(doc)


def test_tiny_transformer_has_the_functions_asked_for():
    names = {fn.name for fn in _read("transformer")[2].graph.functions}
    assert {"NativeLayerNormBackward0", "GeluBackward0", "SoftmaxBackward0", "NllLossBackward0",
            "LogSoftmaxBackward0", "EmbeddingBackward0", "BmmBackward0"} <= names or \
        {"NativeLayerNormBackward0", "GeluBackward0", "SoftmaxBackward0", "NllLossBackward0"} <= names


def test_a_large_imported_diagram_writes_edge_gradients_as_xlabels():
    from gradviz.render import dot as dot_module

    t = _read("transformer")[2]
    assert "xlabel=" not in dot_module.dot_source(t)
    old = dot_module.XLABEL_FUNCTIONS
    dot_module.XLABEL_FUNCTIONS = 10
    try:
        source = dot_module.dot_source(t)
    finally:
        dot_module.XLABEL_FUNCTIONS = old
    assert "xlabel=" in source and " -> " in source
    from gradviz.render.svg import render

    assert "<svg" in render(source, "svg").decode()


# --------------------------------------------------------------------------- repeated blocks collapsed


@pytest.mark.parametrize("name, blocks", [
    # (hidden repetitions, functions in each, label, the drawn repetition's label), outermost first
    ("resnet", [(4, 13, "layers.8-11", "layers.12"), (2, 13, "layers.4-5", "layers.6"),
                (2, 13, "layers.0-1", "layers.2")]),  # stage 4 has only 2 plain blocks: nothing to hide
    ("transformer12", [(10, 76, "layers.1-10", "layers.11")]),  # layers.0 differs: its input needs no grad
    ("lstm", [(997, 15, None, None)]),  # the first step and the last differ; the weights are shared
])
def test_repeated_blocks_of_real_models_collapse(name, blocks):
    from gradviz.render.collapse import collapse_view
    from gradviz.render.flow import flow

    t = _read(name)[2]
    view = collapse_view(t.graph.root)
    assert [(c.kind, c.repetitions, c.size, c.label, c.like) for c in view.collapsed] == \
        [("block",) + b for b in blocks]
    assert view.hidden == sum(c.hidden for c in view.collapsed)
    for c in view.collapsed:
        private = sum(1 for fn in t.graph.functions if fn.variable is not None and fn.variable.name
                      and (c.label or "\0").split("-")[0] in fn.variable.name)
        assert c.hidden == c.repetitions * c.size or not private
        # the gradient on each edge out of it: the one hidden edge's, or all its exit received
        fl = flow(t)
        for i, nxt in enumerate(c.next_functions):
            got = view.along(fl, c, i)
            if len(c.sources[i]) == 1:
                np.testing.assert_array_equal(got, fl.along(*c.sources[i][0]))
            elif c.whole[i]:
                np.testing.assert_array_equal(got, fl.received(nxt))
            else:
                assert got is None


def test_a_collapsed_block_is_one_node_in_every_view():
    from rich.console import Console
    from gradviz.render import terminal
    from gradviz.render.dot import dot_source
    from gradviz.render.svg import render

    t = _read("transformer12")[2]
    source = dot_source(t)
    assert 'c0 [label="⋯ layers.1-10: 10 more blocks like layers.11|76 functions each:\\l2 NativeLayerNormBackward0' \
        in source and "|760 backward functions not drawn" in source
    assert source.count("-> c0 [") == 1 and source.count("c0 -> ") == 2  # layers.0's output; two edges from layers.11
    assert "⋯ layers.1-10: 10 more blocks like layers.11 drawn as one node (760 backward functions)\\l" in source
    assert "760 of 911 backward functions not drawn" in source
    console = Console(width=5000, color_system=None, record=True)  # (a line per edge, its gradient first)
    console.print(terminal.backward_tree(t, max_nodes=300, max_depth=100))
    text = console.export_text()
    assert text.count("⋯ layers.1-10: 10 more blocks like layers.11 (76 functions each: 2 NativeLayerNormBackward0") == 1
    assert "⋯ layers.1-10: 10 more blocks like layers.11 (c0, drawn above)" in text  # its second parent
    assert "⋯ collapsed repeated structure hides 760 of 911 functions (--max-nodes)" in text
    resnet = _read("resnet")[2]
    svg = render(dot_source(resnet, max_nodes=150), "svg").decode()
    texts = re.findall(r">([^<]*more blocks like[^<]*)<", svg)
    assert texts[3:] == ["⋯ layers.8&#45;11: 4 more blocks like layers.12", "⋯ layers.4&#45;5: 2 more blocks like layers.6",
                         "⋯ layers.0&#45;1: 2 more blocks like layers.2"]  # three nodes (after the notes)


def test_recorded_module_paths_name_the_blocks():
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                                                 6, enable_nested_tensor=False)

        def forward(self, x):
            return self.encoder(x)

    model = Model()
    with gradviz.record(model, values=False) as rec:
        loss = model(torch.randn(1, 3, 8)).sum()
    from gradviz.render.collapse import collapse_view

    view = collapse_view(rec.graph(loss).graph.root)
    assert [(c.repetitions, c.label, c.like) for c in view.collapsed] == \
        [(4, "encoder.layers.1-4", "encoder.layers.5")]
