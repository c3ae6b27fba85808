"""gradviz.from_torch: a graph PyTorch built, read into the tape, against the expression path and real models.

Skipped as a whole where torch is not installed (gradviz never needs it).
"""

import json
import math
import os
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


#: every third usable golden case (kept fast; every op row appears)
GOLDEN = [c for c in CASES if _usable(c)][::3]


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
    assert "grad_self = grad·exponent·self**(exponent - 1) = 1.4·2·1**(2 - 1) = 2.8" in text  # PowBackward0's row


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


def test_rnn_unrolled_1000_steps_no_recursion():
    torch.manual_seed(0)
    cell = torch.nn.RNNCell(3, 4)
    h = torch.zeros(1, 4)
    x = torch.randn(1, 3)
    for _ in range(1000):
        h = cell(x, h)
    loss = h.sum()
    t = gradviz.from_torch(loss, params=cell)
    loss.backward()
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(t.grads[name], p.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert t.graph.function_count() > 4000


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
