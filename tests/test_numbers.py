"""gradviz.numbers against PyTorch's own printing (tests/fixtures/torch_print.json,
recorded by ``python -m tests.oracle.record_printing``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gradviz.numbers import (format_math, format_tensor, get_printoptions, printoptions,
                                    set_printoptions, tensor_repr)

FIXTURE = Path(__file__).parent / "fixtures" / "torch_print.json"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


def _value(case):
    a = np.asarray(case["values"], dtype=np.float64).reshape(case["shape"]).astype(case["dtype"])
    return float(a) if a.ndim == 0 else a  # a 0-d value is a Python float on the tape


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['dtype']}{c['shape']}{c['options'] or ''}")
def test_tensor_repr_is_torchs(case):
    with printoptions(**case["options"]):
        assert tensor_repr(_value(case), case["dtype"]) == case["repr"]


@pytest.mark.parametrize("case", [c for c in CASES if not c["shape"]][:20], ids=str)
def test_a_0d_array_prints_as_its_float(case):
    a = np.asarray(case["values"], dtype=case["dtype"])
    with printoptions(**case["options"]):
        assert tensor_repr(a, case["dtype"]) == case["repr"]


def test_the_issues_4x3_matrix_is_printed_whole():
    m = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9], [1.0, 1.1, -1.2]], dtype=np.float32)
    assert format_tensor(m) == ("[[ 0.1000, -0.2000,  0.3000],\n [ 0.4000,  0.5000, -0.6000],\n"
                                " [ 0.7000,  0.8000,  0.9000],\n [ 1.0000,  1.1000, -1.2000]]")
    assert "..." not in format_tensor(np.arange(1000, dtype=np.float32))
    assert "..." in format_tensor(np.arange(1001, dtype=np.float32))


@pytest.mark.parametrize("value, text", [
    (4.0, "4"), (2.5, "2.5"), (0.0, "0"), (float("nan"), "nan"), (1e-5, "1e-05"),
    (np.array([1.0, 2.5], dtype=np.float32), "[1, 2.5]"),
    (np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), "[[1, 2], [3, 4]]"),
])
def test_math_style(value, text):
    assert format_math(value) == text


def test_options_are_scoped_and_checked():
    before = get_printoptions()
    with printoptions(precision=2, threshold=5):
        assert format_tensor(1 / 3) == "0.33"
        assert format_math(np.arange(10, dtype=np.float32)) == "[0, 1, 2, ..., 7, 8, 9] (10,)"
    assert get_printoptions() == before
    with pytest.raises(ValueError):
        set_printoptions(precision=-1)
    assert math.isclose(float(format_tensor(2 / 3)), 0.6667)
