"""0-d values as Python floats on the tape against the same work done in numpy: byte-identical JSON.

The tracer keeps 0-d values as Python floats and runs arithmetic rows (``+ - * /``, unary
minus, ``** 0|1|2``) through their ``scalar`` forwards and the float ops namespaces
(:class:`gradviz.ops.Float32Ops`), and their gradient rules on floats too; everything else runs
numpy. ``Tracer.use_floats = False`` makes every value go through numpy: the reference. Both
must give the same document byte for byte, the same warnings, and raise on the same inputs.
The tests (the cases the former scalar fast path was checked on, now tests of the one path):

* a table of hand-picked cases, each marked "handle" (answered on floats end to end), "none"
  (an error, or work numpy does) or "maybe" (either);
* every golden case (tests/fixtures/torch_golden.json) whose inputs are all numbers;
* a hypothesis property over random expressions in the fast path's grammar;
* ``f32_text`` against numpy's shortest float32 text, over every power of two, random bit
  patterns, subnormals and familiar values;
* the schema, and the CLI: ``--json`` byte-identical either way, and arithmetic without
  importing numpy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from importlib import resources

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradviz
from gradviz.tracer import Tracer
from gradviz.render.jsondoc import _number_text, f32_text, number

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INF, NAN = math.inf, math.nan


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------

def first_difference(fast: str, general: str) -> str:
    """Where two documents part: the position and both texts around it."""
    i = len(os.path.commonprefix([fast, general]))
    lo = max(0, i - 80)
    return (f"first difference at character {i} (lengths {len(fast)} and {len(general)}):\n"
            f"  fast:    ...{fast[lo:i + 80]!r}\n"
            f"  general: ...{general[lo:i + 80]!r}")


def fast_trace(expr, at, no_grad=(), dtype="float32", drop_unused=False, **limits):
    """The one path, floats on; None where it raises (what the former fast path's decline was)."""
    try:
        return gradviz.trace(expr, at=at, no_grad=no_grad, dtype=dtype, drop_unused=drop_unused,
                             record_steps=False, **limits)
    except gradviz.GradvizError:
        return None


def general_trace(expr, at, no_grad=(), dtype="float32", drop_unused=False, **limits):
    """The reference: the same path with every value through numpy."""
    Tracer.use_floats = False
    try:
        return gradviz.trace(expr, at=at, no_grad=no_grad, dtype=dtype, drop_unused=drop_unused,
                             record_steps=False, **limits)
    finally:
        Tracer.use_floats = True


def on_floats(result) -> bool:
    """Every value of the graph is a Python float, and the arithmetic was computed on floats
    (x ** 3 and functions such as sin run numpy's forward on the float, for numpy's bits)."""
    g = result.graph
    return all(type(v) is float for v in g.value) and all(
        g.on_floats[i] for i in range(len(g))
        if g.op[i] is not None and g.op[i].on_floats is not None and g.op[i].key != "pow")


def compare(expr, at, no_grad=(), dtype="float32", drop_unused=False, **limits):
    """Run both paths; assert the fast one declines where the general one raises and agrees
    byte for byte where it answers. Return the fast result (None when it declined)."""
    try:
        general = general_trace(expr, at, no_grad, dtype, drop_unused, **limits)
    except gradviz.GradvizError as e:
        fast = fast_trace(expr, at, no_grad=no_grad, dtype=dtype, drop_unused=drop_unused, **limits)
        assert fast is None, (
            f"{expr!r} at {at!r}: the general path raises {type(e).__name__}({e}) but fast_trace "
            f"answered {fast.to_json()[:300]!r}")
        return None
    fast = fast_trace(expr, at, no_grad=no_grad, dtype=dtype, drop_unused=drop_unused, **limits)
    if fast is None:
        return None
    expected = general.to_json()
    got = fast.to_json()
    assert got == expected, f"{expr!r} at {at!r} no_grad={no_grad!r} {dtype}: " + first_difference(got, expected)
    assert fast.warnings == general.warnings, f"{expr!r}: warnings {fast.warnings!r} != {general.warnings!r}"
    assert fast.backward_error == general.backward_error
    return fast


# ---------------------------------------------------------------------------
# 1. Hand-picked cases
# ---------------------------------------------------------------------------

HANDLE, NONE, MAYBE = "handle", "none", "maybe"

CHAIN = " + ".join(f"x{i}*x{i + 1}" for i in range(40))
CHAIN_AT = {f"x{i}": (i % 7 - 3) * 0.37 + 0.1 for i in range(41)}
SPREAD = " + ".join(f"{c}*x" for c in ("1e-8", "1", "3", "1e8", "0.1", "-1e8", "7e-3", "2.5e10", "-2.5e10"))
LONG_SUM = " + ".join(f"x*{k / 10}" for k in range(1, 60))
FLT_MAX = float(np.finfo(np.float32).max)

# (expression, inputs, options, expectation)
CASES = [
    # --- the lecture ---
    ("x**2", {"x": 2}, {}, HANDLE),
    ("x**2 + 2*x + 1", {"x": 2}, {}, HANDLE),
    ("u*v + u**2", {"u": 1, "v": 2}, {}, HANDLE),
    ("u*v + u**2", {"u": 1.0, "v": 2.0}, {"dtype": "float64"}, HANDLE),
    # --- numbers and tensors mixed: which side, which op ---
    ("2*x", {"x": 3}, {}, HANDLE),
    ("x*2", {"x": 3}, {}, HANDLE),
    ("x/3", {"x": 1}, {}, HANDLE),
    ("3/x", {"x": 7}, {}, HANDLE),
    ("(3/x)", {"x": 7}, {}, HANDLE),
    ("((3)/(x))", {"x": 7}, {}, HANDLE),
    ("1 - x", {"x": 0.25}, {}, HANDLE),
    ("x - 0.1", {"x": 1}, {}, HANDLE),
    ("0.1*x + y", {"x": 1, "y": 2}, {}, HANDLE),
    ("0.1 + x", {"x": 0.2}, {}, HANDLE),
    ("x + 0.1", {"x": 0.2}, {"dtype": "float64"}, HANDLE),
    ("-x", {"x": 2}, {}, HANDLE),
    ("+x", {"x": 2}, {}, HANDLE),
    ("-(x*y)", {"x": 2, "y": 3}, {}, HANDLE),
    ("+(x*y)", {"x": 2, "y": 3}, {}, HANDLE),
    ("(+(x*y))", {"x": 2, "y": 3}, {}, HANDLE),
    ("-x**2", {"x": 3}, {}, HANDLE),
    ("--x", {"x": 3}, {}, HANDLE),
    ("-+-x", {"x": 3}, {}, HANDLE),
    ("- -x", {"x": 3}, {}, HANDLE),
    ("-2*x", {"x": 3}, {}, HANDLE),
    ("2*-x", {"x": 3}, {}, HANDLE),
    ("x*-2", {"x": 3}, {}, HANDLE),
    ("x - -1", {"x": 3}, {}, HANDLE),
    ("x-+1", {"x": 3}, {}, HANDLE),
    ("1-(-x)", {"x": 3}, {}, HANDLE),
    ("-(2)*x", {"x": 3}, {}, HANDLE),
    ("x", {"x": 5}, {}, HANDLE),
    ("(x)", {"x": 5}, {}, HANDLE),
    ("((x+y))*x", {"x": 2, "y": 3}, {}, HANDLE),
    ("(x*y)*(x+y)", {"x": 2, "y": 3}, {}, HANDLE),
    ("x*x", {"x": 3}, {}, HANDLE),
    ("x*x*x", {"x": 3}, {}, HANDLE),
    ("x+x+x+x", {"x": 3}, {}, HANDLE),
    ("(x+x)*(x+x)", {"x": 3}, {}, HANDLE),
    ("x/y/x", {"x": 3, "y": 5}, {}, HANDLE),
    # --- powers 0, 1, 2 ---
    ("x**0", {"x": 3}, {}, HANDLE),
    ("x**1", {"x": 3}, {}, HANDLE),
    ("x**2.0", {"x": 3}, {}, HANDLE),
    ("x**0.0", {"x": 3}, {}, HANDLE),
    ("x**1.0", {"x": 3}, {}, HANDLE),
    ("x**2", {"x": 0.1}, {"dtype": "float64"}, HANDLE),
    ("x**(2)", {"x": 3}, {}, HANDLE),
    ("x**+2", {"x": 3}, {}, HANDLE),
    ("x**2.", {"x": 3}, {}, HANDLE),
    ("x**1e0", {"x": 3}, {}, HANDLE),
    ("x**(1+1)", {"x": 3}, {}, MAYBE),
    ("x**-0", {"x": 3}, {}, MAYBE),
    ("x**-0.0", {"x": 0.0}, {}, MAYBE),
    ("x**0", {"x": 0.0}, {}, HANDLE),
    ("x**0.0", {"x": 0.0}, {}, HANDLE),
    ("x**1", {"x": 0.0}, {}, HANDLE),
    ("x**1", {"x": INF}, {}, HANDLE),
    ("x**2", {"x": NAN}, {}, HANDLE),
    ("x**0", {"x": NAN}, {}, HANDLE),
    ("x**2", {"x": 1e20}, {}, HANDLE),        # float32 overflow
    ("x**2", {"x": 1e-30}, {}, HANDLE),       # float32 underflow to a subnormal / 0
    ("x**2", {"x": 1e200}, {"dtype": "float64"}, HANDLE),
    ("x**2", {"x": 1e-200}, {"dtype": "float64"}, HANDLE),
    ("(x*y)**2", {"x": 2, "y": 3}, {}, HANDLE),
    ("(-x)**2", {"x": 2}, {}, HANDLE),
    ("x**2**1", {"x": 3}, {}, MAYBE),         # 2**1 is folded by the general path
    # --- division by zero, 0/0 ---
    ("x/0", {"x": 1}, {}, HANDLE),
    ("x/0.0", {"x": -1}, {}, HANDLE),
    ("x/-0.0", {"x": 1}, {}, HANDLE),
    ("x/y", {"x": 1, "y": 0}, {}, HANDLE),
    ("x/y", {"x": 0, "y": 0}, {}, HANDLE),
    ("x/y", {"x": 0.0, "y": 0.0}, {"dtype": "float64"}, HANDLE),
    ("1/x", {"x": 0}, {}, HANDLE),
    ("1/x", {"x": -0.0}, {}, HANDLE),
    ("0/x", {"x": 0}, {}, HANDLE),
    ("x/(3-3)", {"x": 1}, {}, HANDLE),
    ("x*(0/0)", {"x": 1}, {}, NONE),         # constant division by zero: the general path's error
    ("x*(1/(3-3))", {"x": 1}, {}, NONE),
    ("0/0", {}, {}, NONE),
    # --- overflow, inf, nan, -0.0, subnormals ---
    ("3e38*x", {"x": 2}, {}, HANDLE),
    ("x*3e38", {"x": -2}, {}, HANDLE),
    ("x + y", {"x": 3e38, "y": 3e38}, {}, HANDLE),
    ("x/y", {"x": 3e38, "y": 1e-10}, {}, HANDLE),
    ("(x*1e30)*(y*1e30)", {"x": 1, "y": 1}, {}, HANDLE),
    ("x*y", {"x": 1e200, "y": 1e200}, {"dtype": "float64"}, HANDLE),
    ("x*1e400", {"x": 1}, {}, HANDLE),
    ("x*(1e308*10)", {"x": 1}, {}, HANDLE),
    ("x*(1e400-1e400)", {"x": 1}, {}, HANDLE),
    ("x*1e-400", {"x": 1}, {}, HANDLE),
    ("x*1e-46", {"x": 1}, {}, HANDLE),
    ("x*3.4028235677973366e38", {"x": 1}, {}, HANDLE),   # the float32 midpoint above FLT_MAX: inf
    ("x*3.4028235677973362e38", {"x": 1}, {}, HANDLE),   # just below it: FLT_MAX
    ("x", {"x": 3.4028235677973366e38}, {}, HANDLE),
    ("x", {"x": FLT_MAX}, {}, HANDLE),
    ("x*2", {"x": INF}, {}, HANDLE),
    ("x*0", {"x": INF}, {}, HANDLE),
    ("x - x", {"x": INF}, {}, HANDLE),
    ("x*y", {"x": INF, "y": 0}, {}, HANDLE),
    ("x + 1", {"x": NAN}, {}, HANDLE),
    ("-x", {"x": NAN}, {}, HANDLE),
    ("x*y", {"x": NAN, "y": -INF}, {}, HANDLE),
    ("x/y", {"x": INF, "y": INF}, {}, HANDLE),
    ("x/y", {"x": -INF, "y": 0.0}, {"dtype": "float64"}, HANDLE),
    ("x*1", {"x": -0.0}, {}, HANDLE),
    ("x+0", {"x": -0.0}, {}, HANDLE),
    ("x-0.0", {"x": -0.0}, {}, HANDLE),
    ("-x", {"x": 0.0}, {}, HANDLE),
    ("0-x", {"x": 0.0}, {}, HANDLE),
    ("x*x", {"x": -0.0}, {}, HANDLE),
    ("x*-0.0", {"x": 1}, {}, HANDLE),
    ("x", {"x": 1e-40}, {}, HANDLE),
    ("x*y", {"x": 1e-40, "y": 1e-40}, {}, HANDLE),
    ("x/3", {"x": 1e-45}, {}, HANDLE),
    ("x*1e-40 + y", {"x": 3, "y": 1e-45}, {}, HANDLE),
    ("x*0.5", {"x": 5e-324}, {"dtype": "float64"}, HANDLE),
    ("x + y", {"x": 2.2250738585072014e-308, "y": -2.225073858507201e-308}, {"dtype": "float64"}, HANDLE),
    # --- numbers written in every way, integers large and huge ---
    ("x*.5 + x*5. + x*1.e3 + x*1E+3 + x*1e-3", {"x": 1}, {}, HANDLE),
    ("x*0.1000000000000000055511151231257827", {"x": 1}, {}, HANDLE),
    ("x*(0.1+0.2)", {"x": 1}, {}, HANDLE),
    ("x*(1/3)", {"x": 1}, {}, HANDLE),
    ("x*(7/7)", {"x": 1}, {}, HANDLE),
    ("x*(3-3)", {"x": 1}, {}, HANDLE),
    ("(2*3)*x", {"x": 1}, {}, HANDLE),
    ("x*(2*3)", {"x": 1}, {}, HANDLE),
    ("x + 16777217", {"x": 0}, {}, HANDLE),               # 2**24 + 1: not a float32
    ("16777217 - x", {"x": 0}, {}, HANDLE),
    ("x*123456789012", {"x": 1}, {}, HANDLE),
    ("x*9007199254740992", {"x": 1}, {}, HANDLE),         # 2**53
    ("x*9007199254740993", {"x": 1}, {}, MAYBE),          # 2**53 + 1
    ("x*99999999999999999999", {"x": 1}, {}, MAYBE),
    ("x*1000000000000000000000000000000", {"x": 1}, {}, NONE),   # 10**30 in a tensor op
    ("x + 1" + "0" * 400, {"x": 1}, {}, NONE),            # too large for a float: the general path's error
    ("x*1" + "0" * 400 + "*1.0", {"x": 1}, {}, NONE),
    ("x", {"x": 16777217}, {}, HANDLE),                   # an int input
    ("x", {"x": 2 ** 60 + 1}, {}, HANDLE),
    ("x", {"x": 2 ** 60 + 1}, {"dtype": "float64"}, HANDLE),
    ("x*2", {"x": 2 ** 1023}, {}, HANDLE),
    ("x", {"x": 10 ** 400}, {}, NONE),                    # too large: the general path's error
    ("x", {"x": 2 ** 1024}, {}, NONE),
    ("x", {"x": 2 ** 1024 - 1}, {}, NONE),
    ("x*2", {"x": np.float64(1.5)}, {}, MAYBE),           # numpy numbers as inputs
    ("x*2", {"x": np.float32(1.5)}, {}, MAYBE),
    ("x*2", {"x": np.int64(3)}, {}, MAYBE),
    ("x*2", {"x": [1.5]}, {}, NONE),
    ("x*2", {"x": (1.5,)}, {}, NONE),
    ("00*x", {"x": 1}, {}, MAYBE),
    ("x*1_000", {"x": 1}, {}, NONE),
    ("x*1e5e", {"x": 1}, {}, NONE),
    ("x*2.x", {"x": 1}, {}, NONE),
    # --- whitespace ---
    ("  x\t*\ny  ", {"x": 2, "y": 3}, {}, HANDLE),
    ("x" + " " * 100 + "+" + " " * 100 + "y", {"x": 2, "y": 3}, {}, HANDLE),
    ("\x0bx\x0c+\ry", {"x": 2, "y": 3}, {}, MAYBE),
    ("x\u3000+\u00a0y", {"x": 2, "y": 3}, {}, MAYBE),
    ("x \u2028* y\u2003", {"x": 2, "y": 3}, {}, MAYBE),
    ("( x ) * ( ( y ) )", {"x": 2, "y": 3}, {}, HANDLE),
    ("x * * 2", {"x": 1}, {}, NONE),
    # --- requires_grad=False inputs ---
    ("c*x", {"c": 3, "x": 2}, {"no_grad": ["c"]}, HANDLE),
    ("x*c", {"c": 3, "x": 2}, {"no_grad": ["c"]}, HANDLE),
    ("c/x", {"c": 3, "x": 2}, {"no_grad": ["c"]}, HANDLE),
    ("x/c", {"c": 3, "x": 2}, {"no_grad": ["c"]}, HANDLE),
    ("c*2", {"c": 3}, {"no_grad": ["c"]}, HANDLE),       # output needs no grad: null root
    ("c", {"c": 3}, {"no_grad": ["c"]}, HANDLE),
    ("-c + c**2", {"c": 3}, {"no_grad": ["c"]}, HANDLE),
    ("u*v + u**2", {"u": 1, "v": 2}, {"no_grad": ["v"]}, HANDLE),
    ("u*v + u**2", {"u": 1, "v": 2}, {"no_grad": ["u"]}, HANDLE),
    ("u*v + u**2", {"u": 1, "v": 2}, {"no_grad": ["u", "v"]}, HANDLE),
    ("x*y + y", {"x": 1, "y": 2}, {"no_grad": ["y", "y"]}, HANDLE),
    ("x + y", {"x": 1, "y": 2}, {"no_grad": ["y"], "dtype": "float64"}, HANDLE),
    ("x", {"x": 1}, {"no_grad": ["q"]}, HANDLE),          # a --no-grad name without a value
    # --- unused inputs: warnings, or left out (batch mode) ---
    ("x*2", {"x": 1, "y": 2}, {}, HANDLE),
    ("x*2", {"y": 2, "x": 1, "z": 3}, {"no_grad": ["z"]}, HANDLE),
    ("x*2", {"y": 2, "x": 1, "z": 3}, {"drop_unused": True}, HANDLE),
    ("x*y", {"a": 1, "x": 2, "b": 3, "y": 4, "c": 5}, {"drop_unused": True, "no_grad": ["b", "y"]}, HANDLE),
    ("y*x", {"a": 1, "x": 2, "b": 3, "y": 4}, {"drop_unused": True}, HANDLE),
    ("x", {"é": 1, "x": 2}, {}, MAYBE),
    ("x", {"x": 1, "bad name": 2}, {}, MAYBE),
    ("x", {"x": 1, 'q"\\\n\u2028\x00é': 2}, {}, MAYBE),   # an input name JSON must escape
    ("x*2", {"x": 1.5, "": 2}, {}, MAYBE),
    # --- input order, names that are also constants or functions ---
    ("x*y", {"y": 3, "x": 2}, {}, HANDLE),
    ("pi*x", {"pi": 2, "x": 1}, {}, MAYBE),
    ("e*x", {"e": 2, "x": 1}, {}, MAYBE),
    ("sin*x", {"sin": 2, "x": 1}, {}, MAYBE),
    ("torch*x", {"torch": 2, "x": 1}, {}, MAYBE),
    ("T*x", {"T": 2, "x": 1}, {}, HANDLE),
    ("_a1*B_", {"_a1": 2, "B_": 1}, {}, HANDLE),
    ("x*e", {"x": 1}, {}, MAYBE),
    # --- many terms, repeated leaves, float32 accumulation order ---
    (CHAIN, CHAIN_AT, {}, HANDLE),
    (CHAIN, CHAIN_AT, {"dtype": "float64"}, HANDLE),
    (CHAIN, CHAIN_AT, {"no_grad": ["x3", "x17"]}, HANDLE),
    ("x*1e-8 + x + x*3 + x*1e8", {"x": 1}, {}, HANDLE),
    ("x + x*1e8 - x*1e8 + x*1e-8", {"x": 1.5}, {}, HANDLE),
    ("x*1e8 + x*1e-8 - x*1e8 + x", {"x": 1.5}, {"dtype": "float64"}, HANDLE),
    (SPREAD, {"x": 0.3}, {}, HANDLE),
    (SPREAD, {"x": 0.3}, {"dtype": "float64"}, HANDLE),
    (LONG_SUM, {"x": 0.1}, {}, HANDLE),
    ("(x+y)*(x-y)*(x*y) + x/y - y/x", {"x": 0.7, "y": -1.3}, {}, HANDLE),
    ("x*y*z + x*y + y*z + z*x + x + y + z", {"x": 0.1, "y": 0.2, "z": 0.3}, {}, HANDLE),
    ("x" + " + x" * 300, {"x": 0.1}, {}, HANDLE),
    ("x" + " * x" * 50, {"x": 1.01}, {}, HANDLE),
    ("(" * 60 + "x" + ")" * 60, {"x": 1}, {}, HANDLE),
    ("-" * 60 + "x", {"x": 1}, {}, HANDLE),
    # --- limits: declined where the general path refuses ---
    ("x+y", {"x": 1, "y": 2}, {"max_terms": 1}, NONE),
    ("x+y", {"x": 1, "y": 2}, {"max_terms": 2}, HANDLE),
    ("((x))", {"x": 1}, {"max_depth": 1}, NONE),
    ("((x))", {"x": 1}, {"max_depth": 2}, HANDLE),
    ("--x", {"x": 1}, {"max_depth": 1}, NONE),
    ("-(-(x))", {"x": 1}, {"max_depth": 4}, HANDLE),
    ("-(-(x))", {"x": 1}, {"max_depth": 3}, NONE),
    ("-x + -y + -z", {"x": 1, "y": 2, "z": 3}, {"max_depth": 2}, NONE),  # unary operators count for good
    ("-x + -y + -z", {"x": 1, "y": 2, "z": 3}, {"max_depth": 3}, HANDLE),
    ("x+1+2", {"x": 1}, {"max_terms": 3}, HANDLE),
    ("x+1+2", {"x": 1}, {"max_terms": 2}, NONE),
    ("(" * 3000 + "x*2" + ")" * 3000, {"x": 1}, {}, HANDLE),
    ("-" * 3000 + "x", {"x": 1}, {}, HANDLE),
    # --- functions of one tensor: numpy's own forward and rule, on numpy scalars ---
    ("sin(x)", {"x": 1}, {}, HANDLE),
    ("sin (x) * cos((y))", {"x": 0.3, "y": 0.7}, {}, HANDLE),
    ("exp(x) + log(x) + sqrt(x) + tanh(x) + sigmoid(x) + relu(x) + abs(x)", {"x": 0.5}, {}, HANDLE),
    ("relu(x) + abs(x)", {"x": 0.0}, {}, HANDLE),
    ("asin(x/2) + acos(x/3) + atan(x) + sinh(x) + cosh(x) + tan(x)", {"x": 0.5}, {}, HANDLE),
    ("log1p(x) + expm1(x) + exp2(x) + log2(x) + log10(x) + rsqrt(x) + erf(x)", {"x": 0.7}, {}, HANDLE),
    ("reciprocal(x) + neg(x)", {"x": 3}, {}, HANDLE),
    ("log(x) + sqrt(-x) + exp(1000*x)", {"x": 0.0}, {}, HANDLE),  # -inf, nan, inf: no warnings
    ("sin(sin(sin(x)))*y", {"x": 2, "y": 3}, {"no_grad": ["x"]}, HANDLE),
    ("-sin(x)**2", {"x": 1.1}, {}, HANDLE),
    ("sin(x)", {"x": 1}, {"max_depth": 0}, NONE),
    ("sin(x)", {"x": 1, "sin": 2}, {}, NONE),  # an input named like a function: the general path
    ("sin(2)", {}, {}, NONE),
    ("sin(x, 1)", {"x": 1}, {}, NONE),
    ("sin()", {"x": 1}, {}, NONE),
    ("sin", {"x": 1}, {}, NONE),
    ("sin(x)(x)", {"x": 1}, {}, NONE),
    ("sum(x)", {"x": 1}, {}, NONE),
    ("square(x)", {"x": 1}, {}, NONE),
    # --- selection on floats: maximum/minimum/relu with nan and signed zeros, as numpy's ---
    ("maximum(x, y)*y", {"x": 1, "y": 2}, {}, HANDLE),
    ("maximum(x, y)*y", {"x": 2, "y": 2}, {}, HANDLE),          # equal: the gradient is shared
    ("maximum(x, y) + minimum(x, y)", {"x": -0.0, "y": 0.0}, {}, HANDLE),
    ("maximum(x, y) + minimum(x, y)", {"x": 0.0, "y": -0.0}, {}, HANDLE),
    ("maximum(x, y)*minimum(y, x)", {"x": NAN, "y": 1}, {}, HANDLE),
    ("torch.maximum(x, y)*x", {"x": 1, "y": NAN}, {"dtype": "float64"}, HANDLE),
    ("minimum(x, 2*y)*y", {"x": INF, "y": -INF}, {}, HANDLE),
    ("relu(x)*x + x.relu()", {"x": -0.0}, {}, HANDLE),
    ("relu(x)*x", {"x": NAN}, {}, HANDLE),
    ("relu(x - 1)*relu(1 - x)", {"x": 1}, {}, HANDLE),
    # --- not the fast path's: it must decline ---
    ("x.sin()", {"x": 1}, {}, HANDLE),
    ("x .sin ( ).cos()*y + (x*y).exp()", {"x": 0.1, "y": 0.2}, {}, HANDLE),
    ("-x.sin() + sin(x).tanh()", {"x": 1}, {}, HANDLE),
    ("torch.sin(x)", {"x": 1}, {}, HANDLE),
    ("torch.nn.functional.relu(x) + torch.special.erf(x)", {"x": 0.3}, {}, HANDLE),
    ("torch . sin(x)", {"x": 1}, {}, MAYBE),
    ("x.T", {"x": 1}, {}, NONE),
    ("x.sin(1)", {"x": 1}, {}, NONE),
    ("x.sum()", {"x": 1}, {}, NONE),
    ("torch.foo(x)", {"x": 1}, {}, NONE),
    ("torch.sin", {"x": 1}, {}, NONE),
    ("2 .sin()", {}, {}, NONE),
    ("torch.__class__(x)", {"x": 1}, {}, NONE),
    ("x**3", {"x": 2}, {}, HANDLE),
    ("x**0.5", {"x": 2}, {}, HANDLE),
    ("x**-1", {"x": 2}, {}, HANDLE),
    ("x**y", {"x": 2, "y": 2}, {}, NONE),
    ("x**True", {"x": 2}, {}, NONE),
    ("2**x", {"x": 2}, {}, NONE),
    ("x@y", {"x": 1, "y": 2}, {}, NONE),
    ("x.T", {"x": 1}, {}, NONE),
    ("x*2", {"x": [1, 2]}, {}, NONE),
    ("x*2", {"x": [[1.0]]}, {}, NONE),
    ("x*y", {"x": 1, "y": [1, 2]}, {}, NONE),
    ("x*y", {"x": 1}, {}, NONE),              # y has no value
    ("pi*x", {"x": 1}, {}, NONE),
    ("x +", {"x": 1}, {}, NONE),
    ("(x", {"x": 1}, {}, NONE),
    ("x)", {"x": 1}, {}, NONE),
    ("()", {}, {}, NONE),
    ("x y", {"x": 1, "y": 2}, {}, NONE),
    ("2x", {"x": 1}, {}, NONE),
    ("x//2", {"x": 1}, {}, NONE),
    ("x%2", {"x": 1}, {}, NONE),
    ("x $+ y", {"x": 1, "y": 2}, {}, NONE),
    ("x + y $", {"x": 1, "y": 2}, {}, NONE),
    ("x + yé", {"x": 1, "y": 2}, {}, NONE),
    ("x*٣", {"x": 1}, {}, MAYBE),             # a non-ASCII digit: the general tokenizer reads it
    ("", {}, {}, NONE),
    ("   ", {"x": 1}, {}, NONE),
    ("True*x", {"x": 1}, {}, NONE),
    ("None*x", {"x": 1}, {}, NONE),
    ("__x*2", {"__x": 1}, {}, NONE),
    ("x", {"x": True}, {}, NONE),
    ("x", {"x": False}, {}, NONE),
    ("x", {"x": "1"}, {}, NONE),
    ("x", {"x": None}, {}, NONE),
    ("x*2", {"x": 1}, {"dtype": "float16"}, NONE),
    ("2+3", {}, {}, MAYBE),                    # a constant: nothing to differentiate
    ("2+3", {"x": 1}, {}, MAYBE),
]


def _case_id(i, case):
    expr = case[0] if len(case[0]) <= 30 else case[0][:27] + "..."
    return f"{i}:{expr}"


@pytest.mark.parametrize("expr,at,options,expect",
                         [pytest.param(*c, id=_case_id(i, c)) for i, c in enumerate(CASES)])
def test_table_case(expr, at, options, expect):
    fast = compare(expr, at, **options)
    if expect == HANDLE:
        assert fast is not None and on_floats(fast), f"{expr!r} at {at!r} {options!r}: not answered on floats"


def test_chunked_tokenizing_keeps_spans():
    # More than a megabyte of text, split wherever the tokenizer's chunks end.
    expr = "x" + "".join(" " * (997 + k % 13) + ("+ x" if k % 3 else "* y") for k in range(1100))
    assert compare(expr, {"x": 0.5, "y": 1.25}) is not None


LONG_SPACES = "x" + " " * ((1 << 20) + 7) + "+ y" + " " * ((1 << 20) - 3) + "*y" + " " * 200_000
SPACES_THEN_BAD = "x +" + " " * 200_000 + "$ y"


def test_long_runs_of_whitespace_take_linear_time():
    """Whitespace runs across a tokenizer chunk's end, trailing whitespace, and whitespace before
    a character the path does not take are each read once (the general path takes milliseconds).
    Run in a subprocess with a time limit, so that a tokenizer that rescans a run from every
    position in it fails here instead of hanging."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import gradviz\n"
            "def run(e):\n"
            "    try: return gradviz.trace(e, at={'x': 0.5, 'y': 1.25}).to_json()\n"
            "    except gradviz.ParseError: return 'None'\n"
            "sys.stdout.write('\\n'.join(run(e) for e in json.load(sys.stdin)))")
    try:
        r = subprocess.run([sys.executable, "-c", code, ROOT], input=json.dumps([LONG_SPACES, SPACES_THEN_BAD]),
                           capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("tracing long runs of spaces ('x' + 1 MB of spaces + '+ y' ..., 200,000 trailing "
                    "spaces, 200,000 spaces before '$') took over 10 s (the tokenizer rescans whitespace: "
                    "quadratic); the general path takes milliseconds")
    assert r.returncode == 0, r.stderr[-2000:]
    long_spaces, bad = r.stdout.split("\n")
    expected = general_trace(LONG_SPACES, {"x": 0.5, "y": 1.25}).to_json()
    assert long_spaces == expected, first_difference(long_spaces, expected)
    assert bad == "None"
    with pytest.raises(gradviz.ParseError):
        general_trace(SPACES_THEN_BAD, {"x": 0.5, "y": 1.25})


# ---------------------------------------------------------------------------
# 2. Every golden case with number inputs
# ---------------------------------------------------------------------------

def _golden_scalar_cases():
    with open(os.path.join(ROOT, "tests", "fixtures", "torch_golden.json")) as fh:
        cases = json.load(fh)["cases"]
    return [c for c in cases
            if c.get("grad_output") is None
            and all(type(v) in (int, float) for v in c["at"].values())]


GOLDEN = _golden_scalar_cases()


def test_golden_cases_with_number_inputs():
    handled = []
    for case in GOLDEN:
        fast = compare(case["expr"], case["at"], no_grad=case["no_grad"], dtype=case["dtype"])
        if fast is not None:
            handled.append(case["expr"])
    # The lecture's examples are among them; most golden cases use functions the path declines.
    assert "x**2" in handled and "u*v + u**2" in handled
    assert len(handled) >= 20, handled


# ---------------------------------------------------------------------------
# 3. Random expressions in the fast path's grammar
# ---------------------------------------------------------------------------

# An expression is drawn with its binding power (atom 100, ** 40, unary 30, * / 20, + - 10)
# and rendered with the parentheses its tree needs (plus random extra ones), so the text
# parses back to the drawn tree: numbers never meet numbers in ** or a division by zero.
ATOM, POW, UNARY, MUL, ADD = 100, 40, 30, 20, 10
POWER = {"+": ADD, "-": ADD, "*": MUL, "/": MUL}

_space = st.sampled_from(["", "", " ", "  ", "\t"])
_int_literal = st.integers(0, 20).map(str)
_float_literal = st.sampled_from(["0.5", "0.1", "1e-3", "2.5e10", "1.5", "0.0", ".5", "2.", "3.25", "1e-30", "7e20"])
_literal = st.one_of(_int_literal, _float_literal)
_nonzero_literal = _literal.filter(lambda s: float(s) != 0)


def _paren(text_power):
    text, _ = text_power
    return (f"({text})", ATOM)


def _wrap(text_power, needed: bool):
    return _paren(text_power) if needed else text_power


@st.composite
def _number(draw):
    """A number subexpression: a literal, a negated literal, or literals folded by + - * /."""
    kind = draw(st.integers(0, 3))
    if kind <= 1:
        return (draw(_literal), ATOM)
    if kind == 2:
        return ("-" + draw(_literal), UNARY)
    op = draw(st.sampled_from("+-*/"))
    right = draw(_nonzero_literal if op == "/" else _literal)
    node = (f"{draw(_literal)}{op}{right}", POWER[op])
    return _paren(node) if draw(st.booleans()) else node


FUNCTIONS = ["sin", "cos", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "atan", "erf",
             "reciprocal", "neg", "log1p", "expm1", "rsqrt"]


TORCH_FUNCTIONS = ["torch.sin", "torch.exp", "torch.nn.functional.relu", "torch.special.erf"]


def _binary(op, left, right, space):
    p = POWER[op]
    left = _wrap(left, left[1] < p)
    right = _wrap(right, right[1] <= p)
    return (f"{left[0]}{space}{op}{space}{right[0]}", p)


def _extend(tensors):
    ops = st.sampled_from("+-*/")
    both = st.builds(lambda op, a, b, s: _binary(op, a, b, s), ops, tensors, tensors, _space)
    left = st.builds(lambda op, a, b, s: _binary(op, a, b, s), ops, tensors, _number(), _space)
    right = st.builds(lambda op, a, b, s: _binary(op, a, b, s), ops, _number(), tensors, _space)
    unary = st.builds(lambda sign, a: (sign + _wrap(a, a[1] < UNARY)[0], UNARY), st.sampled_from("-+"), tensors)
    power = st.builds(lambda a, e: (_wrap(a, a[1] < ATOM)[0] + "**" + e, POW), tensors,
                      st.sampled_from(["0", "1", "2", "0.0", "1.0", "2.0", "2.", "(2)", "+2", "1e0",
                                       "3", "0.5", "(-1)", "-2.5", "1e10"]))
    paren = tensors.map(_paren)
    call = st.builds(lambda f, a: (f"{f}({a[0]})", ATOM), st.sampled_from(FUNCTIONS + TORCH_FUNCTIONS), tensors)
    method = st.builds(lambda f, a: (_wrap(a, a[1] < ATOM)[0] + f".{f}()", ATOM), st.sampled_from(FUNCTIONS), tensors)
    two = st.builds(lambda f, a, b: (f"{f}({a[0]}, {b[0]})", ATOM),
                    st.sampled_from(["maximum", "minimum", "torch.maximum"]), tensors, tensors)
    return st.one_of(both, left, right, unary, power, paren, call, method, two)


_names = st.sampled_from(["x", "y", "z"]).map(lambda n: (n, ATOM))
expressions = st.recursive(_names, _extend, max_leaves=20).map(lambda tp: tp[0])

_values = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([0.0, -0.0, 1e-40, -1e-45, 1e-20, 3e38, -3e38, 1e20, 0.1, 1 / 3, 2.5e10, 16777217.0,
                     1e300, 5e-324, INF, -INF, NAN]),
    st.floats(-1e6, 1e6),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions,
       values=st.fixed_dictionaries({"x": _values, "y": _values, "z": _values}),
       dtype=st.sampled_from(["float32", "float64"]),
       no_grad=st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=3),
       drop_unused=st.booleans())
def test_random_expressions_match_the_general_path(expr, values, dtype, no_grad, drop_unused):
    fast = fast_trace(expr, values, no_grad=no_grad, dtype=dtype, drop_unused=drop_unused)
    try:
        general = general_trace(expr, values, no_grad, dtype, drop_unused)
    except gradviz.GradvizError as e:
        assert fast is None, f"{expr!r}: the general path raises {e} but fast_trace answered"
        return
    assert fast is not None, f"fast_trace declined {expr!r} at {values!r} ({dtype}, no_grad={no_grad})"
    expected, got = general.to_json(), fast.to_json()
    assert got == expected, f"{expr!r} at {values!r} no_grad={no_grad!r} {dtype}: " + first_difference(got, expected)
    assert fast.warnings == general.warnings


# ---------------------------------------------------------------------------
# 4. f32_text: numpy's shortest float32 text
# ---------------------------------------------------------------------------

def numpy_f32_text(v: float) -> str:
    return _number_text(number(np.float32(v)))


def _check_f32_texts(values) -> None:
    bad = []
    for v in values:
        if f32_text(v) != numpy_f32_text(v):
            bad.append(v)
            if len(bad) >= 10:
                break
    assert not bad, "f32_text differs from numpy for: " + ", ".join(
        f"{v!r} (bits {np.float32(v).view(np.uint32):#010x}): {f32_text(v)} != {numpy_f32_text(v)}" for v in bad)


def test_f32_text_powers_of_two():
    values = [s * math.ldexp(1.0, e) for e in range(-149, 128) for s in (1.0, -1.0)]
    # their neighbours too: the interval below a power of two is half the one above
    nxt = np.float32(values).view(np.uint32)
    neighbours = np.concatenate([nxt - 1, nxt + 1]).view(np.float32)
    neighbours = neighbours[np.isfinite(neighbours)]
    _check_f32_texts(values + neighbours.astype(np.float64).tolist())


def test_f32_text_random_bit_patterns():
    rng = np.random.default_rng(20240601)
    bits = rng.integers(0, 1 << 32, size=200_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    _check_f32_texts(x[np.isfinite(x)].astype(np.float64).tolist())


def test_f32_text_subnormals():
    rng = np.random.default_rng(7)
    bits = rng.integers(1, 1 << 23, size=50_000, dtype=np.uint64).astype(np.uint32)
    bits[::2] |= np.uint32(1 << 31)  # half of them negative
    edge = np.array([1, 2, 3, (1 << 23) - 1, 1 << 23, (1 << 23) + 1], dtype=np.uint32)
    x = np.concatenate([bits, edge, edge | np.uint32(1 << 31)]).view(np.float32)
    _check_f32_texts(x.astype(np.float64).tolist())


def test_f32_text_familiar_values():
    nice = [0.0, -0.0, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 0.1 + 0.2, 1.0, -1.0, 2.0, 0.5, 1e-45, 1.4e-45, 1e-40,
            1.1754943508222875e-38, FLT_MAX, -FLT_MAX, 16777216.0, 16777217.0, 1e10, 123456789.0, 3.14159265,
            math.pi, math.e, 1e38, 9.999999e-39, 100.0, 1e7, 1e8, 1e16, 1e-7, 0.001, 2.5e10, 6.02214076e23,
            1e-5, 5e-5, 9.5e-6, 65504.0, 0.7, 1.7, 4.35, 1e-3 * 3]
    _check_f32_texts([float(np.float32(v)) for v in nice])
    assert f32_text(0.0) == "0.0" and f32_text(-0.0) == "-0.0"
    assert f32_text(float(np.float32(0.1))) == "0.1"
    for special in (INF, -INF, NAN):
        assert f32_text(special) == numpy_f32_text(special)


# ---------------------------------------------------------------------------
# 5. The schema
# ---------------------------------------------------------------------------

SCHEMA = json.loads(resources.files("gradviz.schema").joinpath("gradviz-1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _strict_loads(text):
    def bad(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=bad)


@pytest.mark.parametrize("expr,at,options", [
    ("u*v + u**2", {"u": 1, "v": 2}, {}),
    ("1/x", {"x": 0}, {}),                       # inf value, -inf grad
    ("x/y", {"x": 0, "y": 0}, {}),               # nan
    ("c*2", {"c": 3}, {"no_grad": ["c"]}),       # null root
    ("x", {"x": 5}, {}),                         # the output is a leaf
    ("x*2", {"x": 1, "y": 2}, {"drop_unused": True}),
    ("x*y - 3/x", {"x": 0.1, "y": 1e-40}, {"dtype": "float64"}),
])
def test_fast_document_matches_the_schema(expr, at, options):
    fast = fast_trace(expr, at, **options)
    assert fast is not None
    text = fast.to_json()
    assert "\n" not in text
    VALIDATOR.validate(_strict_loads(text))


def test_write_json_streams_the_same_text():
    # the CLI writes --json with write_json (piece by piece): the same bytes as to_json
    import io

    for expr, at in ((CHAIN, CHAIN_AT), ("x" + " + x" * 5000, {"x": 0.1}), ("c*2", {"c": 3})):
        fast = fast_trace(expr, at, no_grad=["c"])
        buf = io.StringIO()
        fast.write_json(buf)
        assert buf.getvalue() == fast.to_json() == general_trace(expr, at, ["c"]).to_json()


# ---------------------------------------------------------------------------
# 6. The command line
# ---------------------------------------------------------------------------

def _invoke(args, stdin=None):
    from click.testing import CliRunner

    from gradviz.cli import main

    return CliRunner().invoke(main, args, input=stdin)


def test_cli_json_computes_arithmetic_on_floats(monkeypatch):
    import gradviz.result

    made = []
    real = gradviz.result.Trace.__init__

    def spy(self, graph, *args, **kwargs):
        made.append(graph)
        real(self, graph, *args, **kwargs)

    monkeypatch.setattr(gradviz.result.Trace, "__init__", spy)
    r = _invoke(["u*v + u**2", "--at", "u=1,v=2", "--json"])
    assert r.exit_code == 0, r.output
    assert r.stdout == general_trace("u*v + u**2", {"u": 1, "v": 2}).to_json() + "\n"
    g = made[0]
    assert all(type(v) is float for v in g.value) and all(g.on_floats[i] for i in range(len(g)) if g.op[i])


BATCH = "\n".join([
    "u*v + u**2",
    "# a comment",
    "",
    "x/y",
    "x*1e-8 + x + x*3 + x*1e8",
    '{"expression": "c*x", "at": {"c": 3, "x": 2}, "no_grad": ["c"]}',
    '{"expression": "x - 0.1", "at": {"x": 0.3}}',
    "sin(x)",                # the general path
    "x +",                   # an error line
    "q*2",                   # no value
])


@pytest.mark.parametrize("args,stdin", [
    (["u*v + u**2", "--at", "u=1,v=2", "--json"], None),
    (["x/y", "--at", "x=1,y=0", "--json"], None),
    (["x*y", "--at", "x=nan,y=inf", "--json"], None),
    (["x*y", "--at", "x=-0.0,y=1e-40", "--json"], None),
    (["c*x", "--at", "c=3,x=2", "--no-grad", "c", "--json"], None),
    (["x*2", "--at", "x=1,y=2", "--json"], None),                        # a warning on stderr
    (["x**2 + 2*x + 1", "--at", "x=0.1", "--dtype", "float64", "--json"], None),
    (["--at", "x=2", "--json", "--", "-x"], None),
    (["-f", "-", "--at", "u=1,v=2,x=0.5,y=0.25", "--json"], BATCH),     # batch: unused inputs dropped
    (["-f", "-", "--at", "u=1,v=2,x=0.5,y=0.25", "--json", "--dtype", "float64"], BATCH),
    (["-f", "-", "--at", "x=1", "--json"], "x*y\nx+2\n"),
    (["x+y", "--at", "x=1,y=2", "--json", "--max-terms", "1"], None),  # the general path's error
    (["-(-(x))", "--at", "x=1", "--json", "--max-depth", "3"], None),
])
def test_cli_output_is_the_numpy_references(monkeypatch, args, stdin):
    fast = _invoke(args, stdin)
    monkeypatch.setattr(Tracer, "use_floats", False)
    general = _invoke(args, stdin)
    assert fast.exit_code == general.exit_code, (fast.output, general.output)
    assert fast.stdout == general.stdout, first_difference(fast.stdout, general.stdout)
    assert fast.stderr == general.stderr


@pytest.mark.parametrize("options", [
    ["-o", "{out}"],
    ["--json", "-o", "{out}"],
    ["--format", "json", "-o", "{out}"],
    ["--format", "json"],
    ["--json", "--max-nodes", "1"],
])
def test_cli_json_files_and_formats(monkeypatch, tmp_path, options):
    def run(name):
        out = str(tmp_path / name)
        args = ["u*v + u**2 - 3/u", "--at", "u=0.1,v=2"] + [o.format(out=out) for o in options]
        r = _invoke(args)
        assert r.exit_code == 0, r.output
        return r.stdout, (open(out).read() if os.path.exists(out) else None)

    fast = run("fast.json")
    monkeypatch.setattr(Tracer, "use_floats", False)
    general = run("general.json")
    assert fast == general


def test_cli_json_on_a_scalar_expression_does_not_import_numpy():
    """`gradviz EXPR --at ... --json` on number inputs and arithmetic never imports numpy
    (about half the start-up time)."""
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "gradviz", "u*v + u**2", "--at", "u=1,v=2",
                        "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == gradviz.trace("u*v + u**2", at={"u": 1, "v": 2}).to_json() + "\n"
    imported = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")]
    numpy_modules = [m for m in imported if m == "numpy" or m.startswith("numpy.")]
    assert not numpy_modules, (
        "numpy was imported by `gradviz \"u*v + u**2\" --at u=1,v=2 --json`, which must be "
        f"answered without numpy; imported: {numpy_modules[:5]}; all imports: {imported}")
