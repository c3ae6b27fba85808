"""0-d work on the tape's floats at scale against a live PyTorch: long generated expressions,
every input's gradient compared.

tests/test_floats.py proves the floats equal to the numpy reference byte for byte; this file
checks the large-graph behaviour directly against PyTorch, where a wrong accumulation order or
a lost contribution shows up: thousands of terms, every input used several times, float32.
Arithmetic must match bit for bit (PyTorch's CPU kernels round + - * / exactly as IEEE does,
and its engine adds contributions in the order gradviz's does); with functions such as sin,
whose float32 implementations differ by an ulp between libraries, to a few ulps.
"""

from __future__ import annotations

import json
import random
import struct

import pytest

torch = pytest.importorskip("torch")

import gradviz  # noqa: E402

# term template (Python side, torch side): xs[i] is torch's leaf for x{i}
ARITHMETIC = [
    ("x{a}*x{b}", lambda xs, a, b: xs[a] * xs[b]),
    ("x{a}/x{b}", lambda xs, a, b: xs[a] / xs[b]),
    ("(x{a} - x{b})*x{a}", lambda xs, a, b: (xs[a] - xs[b]) * xs[a]),
    ("x{a}**2*0.5", lambda xs, a, b: xs[a] ** 2 * 0.5),
    ("3/x{b}", lambda xs, a, b: 3 / xs[b]),
    ("-x{a}*x{b}", lambda xs, a, b: -xs[a] * xs[b]),
]
FUNCTIONS = [
    ("sin(x{a})*x{b}", lambda xs, a, b: torch.sin(xs[a]) * xs[b]),
    ("x{a}.exp()/x{b}", lambda xs, a, b: xs[a].exp() / xs[b]),
    ("torch.tanh(x{a}*x{b})", lambda xs, a, b: torch.tanh(xs[a] * xs[b])),
    ("x{a}**3", lambda xs, a, b: xs[a] ** 3),
]


def _expression(templates, terms: int, inputs: int, seed: int):
    rng = random.Random(seed)
    picks = [(rng.choice(templates), rng.randrange(inputs), rng.randrange(inputs)) for _ in range(terms)]
    text = " + ".join(t[0].format(a=a, b=b) for t, a, b in picks)
    values = {f"x{i}": rng.choice([-1, 1]) * rng.uniform(0.25, 4.0) for i in range(inputs)}
    return text, values, picks


def _torch(values, picks, inputs: int):
    xs = [torch.tensor(values[f"x{i}"], dtype=torch.float32, requires_grad=True) for i in range(inputs)]
    assert torch.get_default_dtype() == torch.float32
    f = None
    for (_, fn), a, b in picks:
        term = fn(xs, a, b)
        f = term if f is None else f + term
    f.backward()
    return f.item(), [x.grad.item() if x.grad is not None else None for x in xs]


def _f32(x):
    """A JSON number (the shortest text of a float32) back to its float32 value."""
    return None if x is None else struct.unpack("f", struct.pack("f", x))[0]


def _fast(text, values):
    doc = json.loads(gradviz.trace(text, at=values, record_steps=False).to_json())
    return _f32(doc["output"]["data"]), [_f32(doc["inputs"][f"x{i}"]["grad"]) for i in range(len(values))]


@pytest.mark.parametrize("seed", range(3))
def test_long_arithmetic_matches_pytorch_bit_for_bit(seed):
    text, values, picks = _expression(ARITHMETIC, terms=3000, inputs=200, seed=seed)
    value, grads = _fast(text, values)
    t_value, t_grads = _torch(values, picks, 200)
    assert value == t_value
    assert grads == t_grads


@pytest.mark.parametrize("seed", range(2))
def test_long_expressions_with_functions_match_pytorch(seed):
    text, values, picks = _expression(ARITHMETIC + FUNCTIONS, terms=2000, inputs=150, seed=seed)
    value, grads = _fast(text, values)
    t_value, t_grads = _torch(values, picks, 150)
    assert value == pytest.approx(t_value, rel=1e-5, abs=1e-5)
    for i, (g, t) in enumerate(zip(grads, t_grads)):
        assert (g is None) == (t is None), f"x{i}"
        if g is not None:
            assert g == pytest.approx(t, rel=1e-4, abs=1e-4), f"x{i}: {g} vs PyTorch {t}"
