"""--at values in every form Python writes or PyTorch prints (issue 13, item 5's --at part)."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz
from gradviz.cli import NoGradValue, main, parse_at, parse_value
from gradviz.errors import UsageError


@pytest.mark.parametrize("text,expected", [
    ("2", 2), ("-1.5e3", -1500.0), (".5", 0.5), ("-0.", -0.0), ("1e-3", 0.001), ("1.", 1.0), ("+2", 2),
    ("[1., 2.]", [1.0, 2.0]), ("[0, 2]", [0, 2]), ("[[1., 2.], [3., 4.]]", [[1.0, 2.0], [3.0, 4.0]]),
    ("[ [1 , 2 ] ,\n  [3, 4] ]", [[1, 2], [3, 4]]), ("[1., 2.,]", [1.0, 2.0]), ("[]", []),
    ("tensor([1., 2.])", [1.0, 2.0]), ("tensor(3.)", 3.0), ("tensor([[1., 2.], [3., 4.]], requires_grad=True)",
                                                            [[1.0, 2.0], [3.0, 4.0]]),
    ("tensor([1.0000, 2.5000],\n       requires_grad=True)", [1.0, 2.5]),
    ("[nan, inf, -inf]", None), ("tensor([1., 2.], dtype=torch.float32)", None),
])
def test_value_forms(text, expected):
    value = parse_value("x", text)
    if expected is None:
        assert isinstance(value, list)
        return
    assert value == expected and type(value) is type(expected)
    if isinstance(expected, float):
        assert str(value) == str(expected)  # -0. keeps its sign


@pytest.mark.parametrize("text,shape", [("tensor([0, 2])", (2,)), ("tensor(1)", ()), ("tensor([[0], [1]])", (2, 1)),
                                        ("tensor([0, 2], dtype=torch.int64)", (2,))])
def test_integer_tensors_are_int64(text, shape):
    value = parse_value("t", text)
    assert isinstance(value, np.ndarray) and value.dtype == np.int64 and value.shape == shape


def test_requires_grad_false_marks_the_input():
    value = parse_value("x", "tensor([1., 2.], requires_grad=False)")
    assert isinstance(value, NoGradValue) and value.value == [1.0, 2.0]


@pytest.mark.parametrize("text,fragment", [
    ("[1 2]", "',' is missing"), ("[1, [2]", "unclosed"), ("abc", "is not a number"), ("1_000", "is not a number"),
    ("[1]]", "unmatched"), ("tensor([1., 2.], grad=1)", "requires_grad=/dtype="), ("__import__('os')", "not a number"),
    ("tensor([1., 2.], dtype=torch.bool)", "not supported"), ("tensor([0, 1], requires_grad=True)", "floating point"),
    ("tensor([1.5], dtype=torch.int64)", "needs integers"), ("[,1]", "unexpected ','"),
])
def test_bad_values_are_one_clear_usage_error(text, fragment):
    with pytest.raises(UsageError, match=None) as info:
        parse_value("x", text)
    assert fragment in str(info.value)


def test_parse_at_splits_on_top_level_commas_only():
    at = parse_at(["x=tensor([1., 2.], requires_grad=True),t=tensor([0, 1]),s=.5"])
    assert at["x"] == [1.0, 2.0] and at["s"] == 0.5 and at["t"].dtype == np.int64


def test_cli_class_targets_and_no_grad_tensor():
    r = CliRunner().invoke(main, ["F.cross_entropy(z, t)", "--at", "z=[[1., 2., 3.], [1., 0., -1.]],t=tensor([2, 0])",
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    assert '"t":{"data":[2,0],"shape":[2],"requires_grad":false' in r.output
    r = CliRunner().invoke(main, ["(x * y).sum()", "--at", "x=[1., 2.],y=tensor([3., 4.], requires_grad=False)",
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    assert '"y":{"data":[3.0,4.0],"shape":[2],"requires_grad":false' in r.output


def test_a_plain_list_of_integers_stays_floating_point():
    t = gradviz.trace("x * 2", at={"x": parse_value("x", "[0, 2]")}, grad_output="ones")
    assert t.graph.inputs["x"].data.dtype == np.float32 and t.graph.inputs["x"].requires_grad
    with pytest.raises(gradviz.GradvizError, match="expected scalar type Long"):
        gradviz.trace("F.nll_loss(z, t)", at={"z": [[0.1, 0.2], [0.3, 0.4]], "t": parse_value("t", "[0, 1]")})


@pytest.mark.parametrize("at", [
    {"x": 1.5, "y": -0.0, "z": float("nan")},          # floats: as they are
    {"x": 2, "y": 0.5, "z": -(2 ** 60)},                # ints among them: made floats
    {"x": True, "y": 1.0},                              # a bool: refused, as coerce_value refuses it
    {"x": 10 ** 400, "y": 1.0},                         # an int too large for a float: named
    {"x": [1.0, 2.0], "y": 3},                          # a list among the numbers
    {},
])
def test_coerce_values_is_coerce_value_of_each(at):
    """The inputs made numbers at once give what coerce_value gives each, or its error."""
    from gradviz.errors import EvalError
    from gradviz.result import coerce_value, coerce_values

    def each():
        return {k: coerce_value(k, v) for k, v in at.items()}

    try:
        expected = each()
    except EvalError as e:
        with pytest.raises(EvalError, match=re.escape(str(e))):
            coerce_values(at)
        return
    got = coerce_values(at)
    assert list(got) == list(expected)
    for k in at:
        assert type(got[k]) is type(expected[k])
        assert repr(got[k]) == repr(expected[k]) if not isinstance(got[k], np.ndarray) else \
            np.array_equal(got[k], expected[k])
