"""int64 and bool tensors (issue 13): PyTorch's type promotion, in every view. Values, dtypes,
graphs and gradients against PyTorch are in the golden fixtures (tests/oracle/record_golden.py,
``integer_cases``); here the messages of what PyTorch refuses (exit 2), the views, the gradient
check and the Hessian of int64 tensors mixed with float ones."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradviz
from gradviz.cli import main
from gradviz.errors import EvalError

T = "t=tensor([1, 2, 0, -3])"
AT = {"t": np.array([1, 2, 0, -3]), "x": [1.5, -2.0, 3.0, 0.5], "k": np.array(3)}


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _at(expr):
    return {k: v for k, v in AT.items() if k in expr}


@pytest.mark.parametrize("expr,dtype", [
    ("t * 2", "int64"), ("t + t", "int64"), ("t / 2", "float32"), ("t * 2.5", "float32"), ("t.sum()", "int64"),
    ("(t > 0).sum()", "int64"), ("(t > 0) + (t > 0)", "bool"), ("2 ** t", "int64"), ("t ** t", "int64"),
    ("sin(t)", "float32"), ("abs(t)", "int64"), ("torch.clamp(t, 0.5)", "float32"), ("t * k", "int64"),
    ("torch.logsumexp(t, 0)", "float32"), ("t * 2 ** 63", "int64"), ("t // 2", "int64"), ("t // 2.5", "float32"),
])
def test_integer_results_keep_pytorchs_dtype_in_both_runs(expr, dtype):
    for run_dtype in ("float32", "float64"):
        t = gradviz.trace(expr, at=_at(expr), dtype=run_dtype)
        assert str(np.asarray(t.output.data).dtype) == dtype, run_dtype
        assert not t.output.requires_grad


def test_integer_power_and_wrapping_are_atens():
    np.testing.assert_array_equal(gradviz.trace("t ** t", at=_at("t")).output.data, [1, 4, 1, 0])
    np.testing.assert_array_equal(gradviz.trace("(-2) ** t", at=_at("t")).output.data, [-2, 4, 1, 0])
    big = gradviz.trace("t * 2 ** 63", at=_at("t")).output.data
    np.testing.assert_array_equal(big, [-(1 << 63), 0, 0, -(1 << 63)])


@pytest.mark.parametrize("expr,message", [
    ("t ** -1", "Integers to negative integer powers are not allowed."),
    ("t.mean()", "mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
                 "dtype. Got: Long"),
    ("(t > 0).mean()", "Got: Bool"),
    ("t.var()", "std and var only support floating point and complex dtypes"),
    ("t.norm()", "linalg.vector_norm: Expected a floating point or complex tensor as input. Got Long"),
    ("softmax(t, 0)", "\"softmax_lastdim_kernel_impl\" not implemented for 'Long'"),
    ("F.gelu(t)", "\"GeluKernelImpl\" not implemented for 'Long'"),
    ("F.mse_loss(t, t)", "\"mse_cpu\" not implemented for 'Long'"),
    ("F.huber_loss(x, t)", "Found dtype Long but expected Float"),
    ("-(t > 0)", "Negation, the `-` operator, on a bool tensor is not supported"),
    ("(t > 0) - (t > 0)", "with two bool tensors is not supported"),
    ("t - True", "with a bool tensor is not supported"),
    ("abs(t > 0)", "\"abs_cpu\" not implemented for 'Bool'"),
    ("relu(t > 0)", "Boolean inputs not supported for relu"),
    ("t // 0", "ZeroDivisionError"),
    ("x // 2", "the derivative for 'floor_divide' is not implemented"),
])
def test_what_pytorch_refuses_is_one_clear_message_and_exit_2(expr, message):
    with pytest.raises(EvalError) as info:
        gradviz.trace(expr, at=_at(expr))
    assert message in str(info.value)
    args = [expr, "--at", ",".join(f"{k}=tensor({json.dumps(np.asarray(v).tolist())})" if k != "x" else
                                   f"{k}={json.dumps(v)}" for k, v in _at(expr).items())]
    result = run(*args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_int64_inputs_cannot_require_grad():
    result = run("t * 2", "--at", "t=tensor([1, 2], requires_grad=True)")
    assert result.exit_code == 2 and "floating point" in result.output


def test_mixed_int64_and_float_in_every_view(tmp_path):
    expr, at = "(t * x ** 2).sum() / k", [T + ",x=[1.5,-2,3,0.5],k=tensor(3)"]
    result = run(expr, "--at", *at, "--steps", "--check")
    assert result.exit_code == 0, result.output
    assert "Gradient check: passed" in result.output and "MulBackward0" in result.output
    doc = json.loads(run(expr, "--at", *at, "--json").output)
    assert doc["inputs"]["t"]["data"] == [1, 2, 0, -3] and doc["inputs"]["t"]["requires_grad"] is False
    mul = next(f for f in doc["graph"]["functions"] if f["name"] == "MulBackward0")
    assert mul["next_functions"][0] is None
    out = tmp_path / "g.svg"
    assert run(expr, "--at", *at, "-o", str(out)).exit_code == 0 and "DivBackward0" in out.read_text()
    t = gradviz.trace(expr, at=_at(expr))
    np.testing.assert_allclose(t.grads["x"], 2 * np.array([1, 2, 0, -3]) * np.array(AT["x"]) / 3, rtol=1e-6)
    result = run(expr, "--at", *at, "--order", "2")
    assert result.exit_code == 0, result.output


def test_hessian_with_int64_operands_matches_pytorch():
    torch = pytest.importorskip("torch")
    from gradviz.higher import second_order

    expr = "(t * x ** 3).sum() + (x ** k).sum() + (x[t[:2]] ** 2).sum()"
    ours = second_order(gradviz.trace(expr, at=_at("txk"), dtype="float64")).hessian["x"]["x"]
    t, k = torch.tensor([1, 2, 0, -3]), torch.tensor(3)
    theirs = torch.autograd.functional.hessian(
        lambda x: (t * x ** 3).sum() + (x ** k).sum() + (x[t[:2]] ** 2).sum(), torch.tensor(AT["x"], dtype=torch.float64))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)


def test_symbolic_says_what_it_cannot_do():
    result = run("(t * x).sum()", "--at", T + ",x=[1,2,3,4]", "--symbolic")
    assert result.exit_code == 0 and "not available" in result.output
