"""The JSON document is a contract: valid against the shipped schema, strict, deterministic."""

import json
from importlib import resources

import jsonschema
import pytest

import gradviz

SCHEMA = json.loads(resources.files("gradviz.schema").joinpath("gradviz-1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

CASES = [
    ("u*v + u**2", {"u": 1, "v": 2}, ()),
    ("x**2", {"x": 2}, ()),
    ("log(x)", {"x": -1}, ()),            # nan value
    ("1/x", {"x": 0}, ()),                # inf value, -inf grad
    ("c * x", {"c": 3, "x": 2}, ("c",)),
    ("c * 2", {"c": 3}, ("c",)),          # output needs no grad
    ("2 + 3", {}, ()),                    # constant
    ("x", {"x": 5}, ()),                  # output is a leaf
    ("mean(sigmoid(W @ x + b))", {"W": [[1, 2], [3, 4]], "x": [1, -1], "b": [0.5, 0.5]}, ()),
    ("W * 2", {"W": [[1, 2], [3, 4]]}, ()),  # non-scalar output: backward_error
]


def strict_loads(text):
    def bad(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=bad)


@pytest.mark.parametrize("expr,at,no_grad", CASES)
def test_document_matches_schema_and_is_strict(expr, at, no_grad):
    text = gradviz.trace(expr, at=at, no_grad=no_grad).to_json()
    doc = strict_loads(text)
    VALIDATOR.validate(doc)
    assert "\n" not in text


@pytest.mark.parametrize("expr,at,no_grad", CASES)
def test_same_input_gives_identical_bytes(expr, at, no_grad):
    a = gradviz.trace(expr, at=at, no_grad=no_grad).to_json()
    b = gradviz.trace(expr, at=at, no_grad=no_grad).to_json()
    assert a == b


def test_seed_example_document():
    doc = json.loads(gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}).to_json())
    assert doc["output"] == {"data": 3.0, "shape": [], "requires_grad": True, "grad_fn": "AddBackward0"}
    assert doc["inputs"]["u"]["grad"] == 4.0 and doc["inputs"]["v"]["grad"] == 1.0
    fns = {f["id"]: f for f in doc["graph"]["functions"]}
    root = fns[doc["graph"]["root"]]
    assert root["name"] == "AddBackward0" and root["saved"] == {"alpha": 1}
    mul, pow_ = (fns[i] for i in root["next_functions"])
    assert mul["name"] == "MulBackward0" and pow_["name"] == "PowBackward0"
    assert pow_["saved"]["exponent"] == 2
    # one shared AccumulateGrad for u
    assert mul["next_functions"][0] == pow_["next_functions"][0]
    assert fns[mul["next_functions"][0]]["variable"] == "u"
    tensors = {t["id"]: t for t in doc["graph"]["tensors"]}
    assert tensors[root["tensor"]]["data"] == 3.0


def test_special_values_are_strings():
    doc = json.loads(gradviz.trace("1/x", at={"x": 0}).to_json())
    assert doc["output"]["data"] == "Infinity"
    assert doc["inputs"]["x"]["grad"] == "-Infinity"
    doc = json.loads(gradviz.trace("log(x)", at={"x": -1}).to_json())
    assert doc["output"]["data"] == "NaN"


def test_no_grad_output_has_null_root_and_grads():
    doc = json.loads(gradviz.trace("c * 2", at={"c": 3}, no_grad=["c"]).to_json())
    assert doc["graph"]["root"] is None
    assert doc["inputs"]["c"]["grad"] is None
    assert doc["output"]["grad_fn"] is None


def test_float32_numbers_are_shortest():
    doc = json.loads(gradviz.trace("x * 1", at={"x": 0.1}).to_json())
    assert doc["output"]["data"] == 0.1
    doc = json.loads(gradviz.trace("x * 1", at={"x": 0.1}, dtype="float64").to_json())
    assert doc["output"]["data"] == 0.1 and doc["dtype"] == "float64"


def test_nested_lists_for_tensors():
    doc = json.loads(gradviz.trace("(W * 2).sum()", at={"W": [[1, 2], [3, 4]]}).to_json())
    assert doc["inputs"]["W"]["data"] == [[1.0, 2.0], [3.0, 4.0]]
    assert doc["inputs"]["W"]["grad"] == [[2.0, 2.0], [2.0, 2.0]]
    assert doc["inputs"]["W"]["shape"] == [2, 2]


def _golden_traces():
    import os

    path = os.path.join(os.path.dirname(__file__), "fixtures", "torch_golden.json")
    with open(path) as fh:
        cases = json.load(fh)["cases"]
    for case in cases:
        try:
            yield case["expr"], gradviz.trace(case["expr"], at=case["at"], no_grad=case["no_grad"],
                                              dtype=case["dtype"], grad_output=case.get("grad_output"))
        except gradviz.GradvizError:
            continue


def _document_from_views(t) -> dict:
    """The document built the slow, independent way: dicts from the PyTorch-worded views
    (Tensor, BackwardFunction) and gradviz.values, as the double-backward section is."""
    from gradviz.values import array, function_entry, tensor_entry

    g, out = t.graph, t.graph.output
    doc = {
        "schema": "gradviz/1", "expression": g.source, "dtype": g.dtype,
        "output": {"data": array(out.data), "shape": list(out.shape), "requires_grad": out.requires_grad,
                   "grad_fn": out.grad_fn.name if out.grad_fn is not None else None},
        "inputs": {name: {"data": array(x.data), "shape": list(x.shape), "requires_grad": x.requires_grad,
                          "grad": array(x.grad)} for name, x in g.inputs.items()},
        "graph": {"root": g.root.id if g.root is not None else None,
                  "functions": [function_entry(fn) for fn in g.functions],
                  "tensors": [tensor_entry(x) for x in g.tensors]},
    }
    if t.backward_error:
        doc["backward_error"] = t.backward_error
    return doc


def test_streamed_text_is_the_views_document_byte_for_byte():
    # iter_json writes entries' text from the tape directly (templates, memoized values) and in
    # batches; it must be exactly the document the views give, for every op and operand kind.
    from gradviz.render.jsondoc import dumps, iter_json

    count = 0
    for expr, t in _golden_traces():
        expected = dumps(_document_from_views(t))
        assert t.to_json() == expected, expr
        assert "".join(iter_json(t, batch=2)) == expected, expr
        count += 1
    assert count > 300


def test_write_json_streams_the_same_text():
    import io

    t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    buf = io.StringIO()
    t.write_json(buf)
    assert buf.getvalue() == t.to_json()


@pytest.mark.parametrize("expr,at,options", [
    ("u*v + u**2", {"u": 1, "v": 2}, ["--steps", "--order", "2", "--graph", "double", "--symbolic", "--check"]),
    ("x*x", {"x": 3}, ["--steps", "--check", "--retain-grad"]),
    ("(W @ v).sum()", {"W": [[1, 2], [3, 4]], "v": [1, -1]}, ["--steps", "--order", "2", "--symbolic", "--check"]),
    ("log(x)", {"x": -1}, ["--steps", "--check", "--symbolic"]),
])
def test_every_optional_section_matches_the_schema(expr, at, options):
    from click.testing import CliRunner

    from gradviz.cli import main

    at_arg = ",".join(f"{k}={json.dumps(v).replace(' ', '')}" for k, v in at.items())
    r = CliRunner().invoke(main, [expr, "--at", at_arg, "--json", *options])
    assert r.exit_code in (0, 1), r.output
    doc = strict_loads(r.stdout)
    VALIDATOR.validate(doc)


def test_documents_are_one_line_even_for_line_separators_in_strings():
    # U+2028, U+2029 and C1 controls are valid raw in JSON strings, but str.splitlines splits there
    from gradviz.render.jsondoc import dumps

    for text in ("a\u2028b", "a\u2029b", "a\x85b", "a\x9fb"):
        line = dumps({"message": text, "nested": [text]})
        assert line.splitlines() == [line] and json.loads(line) == {"message": text, "nested": [text]}


def test_streamed_text_is_the_same_for_any_batch_size():
    # the writer groups a batch's entries by op row and params and formats each group at once;
    # every batch size (groups of one, batches that cut a run of inputs) gives the same text
    from gradviz.render.jsondoc import iter_json

    count = 0
    for expr, t in _golden_traces():
        expected = t.to_json()
        for batch in (1, 3, 7):
            assert "".join(iter_json(t, batch=batch)) == expected, (expr, batch)
        count += 1
    assert count > 300


@pytest.mark.parametrize("expr,at,no_grad,dtype", [
    # inputs of one op with and without grad, constants in a slot, a saved value unsaved for some
    ("a*b + c*d + a*2 + 3*b + c*c", {"a": 1, "b": 2, "c": 3, "d": 4}, ("b",), "float32"),
    ("(x*y).sum() + (y*z).sum() + (x*3).sum()", {"x": [1, 2], "y": [3, 4], "z": [5, 6]}, ("z",), "float32"),
    ("x**2 + x**3 + y**2 + (x+y)**0.5 + sin(x)*y", {"x": 0.1, "y": 0.2}, (), "float64"),
    ("sigmoid(W @ v + b).sum() + sigmoid(W @ u + b).sum()",
     {"W": [[0.1, 0.2], [0.3, 0.4]], "v": [1e-40, -1], "u": [3, 4], "b": [0.5, 0.5]}, ("u",), "float32"),
    ("log(x) + 1/y + x*y + torch.maximum(x, y)*x", {"x": -1, "y": 0}, (), "float32"),
])
def test_grouped_entries_match_the_views(expr, at, no_grad, dtype):
    from gradviz.render.jsondoc import dumps, iter_json

    t = gradviz.trace(expr, at=at, no_grad=no_grad, dtype=dtype)
    expected = dumps(_document_from_views(t))
    for batch in (1, 2, 5, 4096):
        assert "".join(iter_json(t, batch=batch)) == expected, batch


def test_f32_text_is_numpys_for_many_bit_patterns():
    # f32_text against str(np.float32(v)) read back: random bit patterns over every exponent,
    # subnormals, powers of two and their neighbours, short binary fractions, 7-digit decimals
    import math

    import numpy as np

    from gradviz.render.jsondoc import f32_text

    rng = np.random.default_rng(11)
    bits = [rng.integers(0, 1 << 32, size=100_000, dtype=np.uint64).astype(np.uint32),
            rng.integers(1, 1 << 23, size=20_000, dtype=np.uint64).astype(np.uint32),  # subnormals
            (rng.integers(0, 256, size=20_000, dtype=np.uint64).astype(np.uint32) << np.uint32(23))]  # powers of two
    pow2 = np.concatenate(bits[2:])
    bits.append(pow2 + np.uint32(1))
    bits.append(pow2 - np.uint32(1))
    x = np.concatenate(bits).view(np.float32)
    x = np.concatenate([x, -x])
    short = np.float32([m * math.ldexp(1.0, e) for m in range(1, 64) for e in range(-40, 40)])
    decimals = np.float32(rng.integers(1, 10**7, size=20_000) * 10.0 ** rng.integers(-40, 38, size=20_000))
    values = np.concatenate([x, short, decimals])
    values = values[np.isfinite(values)]
    bad = [v for v in values.astype(np.float64).tolist()
           if f32_text(v) != repr(float(str(np.float32(v))))]
    assert not bad, bad[:10]


@pytest.mark.parametrize("with_numpy", [True, False])
def test_batch_float32_texts_are_f32_text(with_numpy, monkeypatch):
    # _f32_texts (a batch's new values: numpy finds the digit counts when it is imported, else
    # each digit count is tried for all at once) writes exactly what f32_text writes
    import math
    import sys

    import numpy as np

    from gradviz.render.jsondoc import _f32_texts, f32_text

    rng = np.random.default_rng(5)
    bits = rng.integers(0, 1 << 32, size=60_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    sig = (1 / (1 + np.exp(-rng.normal(size=20_000)))).astype(np.float32)
    halves = np.float32(rng.integers(1, 10**6, size=10_000) + 0.5)  # ties at the last digit
    decimals = np.float32(rng.integers(1, 10**7, size=10_000) * 10.0 ** rng.integers(-30, 30, size=10_000))
    values = np.concatenate([x, sig, halves, decimals]).astype(np.float64).tolist()
    values += [0.0, -0.0, math.nan, math.inf, -math.inf, 0.1, 1 / 3, 1e300] * 50  # (the last three: not float32's)
    rng.shuffle(values)
    expected = list(map(f32_text, values))
    if not with_numpy:
        monkeypatch.setitem(sys.modules, "numpy", None)
    got = []
    for lo in range(0, len(values), 4096):
        got += _f32_texts(values[lo:lo + 4096])
    monkeypatch.undo()
    bad = [(v, e, t) for v, e, t in zip(values, expected, got) if e != t]
    assert not bad, bad[:10]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("pattern", ["fa", "af", "faN", "aaf", "ffa", "Naf"])
def test_a_batch_of_floats_and_arrays_is_each_values_text(dtype, pattern):
    """_Values.texts on a mixed batch (floats, arrays of two shapes, None) in the order given:
    each value's own text, as the document writes one value at a time."""
    import numpy as np

    from gradviz.render.jsondoc import _Values

    rng = np.random.default_rng(len(pattern))
    kinds = {"f": lambda k: [0.1, -0.0, float("nan"), 1.0, 3.25e-39, 7.0][k % 6] * (1 + k),
             "a": lambda k: rng.normal(size=(3,) if k % 2 else (2, 2)).astype(dtype),
             "N": lambda k: None}
    values = [kinds[pattern[k % len(pattern)]](k) for k in range(200)]
    expected = [_Values(dtype)(v) for v in values]
    assert _Values(dtype).texts(values) == expected
