"""Record tests/fixtures/torch_golden.json from PyTorch (the test oracle).

Run from the repo root:   python -m tests.oracle.record_golden
(or: python tests/oracle/record_golden.py). Output is deterministic:
sorted keys, indent=1, strict JSON (nan/inf as "NaN"/"Infinity"/"-Infinity").
"""
from __future__ import annotations

import json
import os
import re
import sys

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import torch  # noqa: E402

from tests.oracle.torch_oracle import torch_double_graphs, torch_double_nodes, torch_trace  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torch_golden.json")

V = [1.0, -2.0, 3.0]
M = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def case(expr, at, no_grad=(), dtype="float32", grad_output=None, tag=None):
    c = {"expr": expr, "at": at, "no_grad": list(no_grad), "dtype": dtype}
    if grad_output is not None:
        c["grad_output"] = grad_output
    if tag:
        c["tag"] = tag
    return c


def build_cases():
    cs = []
    add = cs.append
    # --- the lecture
    add(case("x**2", {"x": 2.0}, tag="lecture"))
    add(case("x**2 + 2*x + 1", {"x": 2.0}, tag="lecture"))
    add(case("u*v + u**2", {"u": 1.0, "v": 2.0}, tag="lecture"))

    # --- binary ops x operand kinds
    xy = {"x": 2.0, "y": 3.0}
    for op in ["+", "-", "*", "/", "**"]:
        add(case("x %s y" % op, xy, tag="binary"))                       # t (+) t
        for n in ["2", "2.5", "1"]:
            add(case("x %s %s" % (op, n), {"x": 2.0}, tag="binary"))      # t (+) number
            add(case("%s %s x" % (n, op), {"x": 2.0}, tag="binary"))      # number (+) t
        add(case("x %s c" % op, {"x": 2.0, "c": 3.0}, ["c"], tag="binary"))  # t (+) no-grad
        add(case("c %s x" % op, {"x": 2.0, "c": 3.0}, ["c"], tag="binary"))  # no-grad (+) t
        add(case("c %s d" % op, {"c": 2.0, "d": 3.0}, ["c", "d"], tag="binary"))  # no grad at all
        add(case("x %s x" % op, {"x": 2.0}, tag="binary"))
    for e in ["-x", "+x", "x * (1 + 0.5**2)", "-x * y", "x - -y", "2 * x * 3",
              "x / y / 2", "(x + 1) * (x - 1)", "x * pi", "e ** x", "x.neg()"]:
        add(case(e, xy, tag="unary/misc"))

    # --- every function
    fn_points = {
        "sin": [0.5, 1.7, -0.3], "cos": [0.5, 1.7, -0.3], "tan": [0.5, 1.7, -0.3],
        "exp": [0.5, 1.7, -0.3], "log": [0.5, 1.7], "sqrt": [0.5, 1.7],
        "tanh": [0.5, 1.7, -0.3], "sigmoid": [0.5, 1.7, -0.3], "relu": [0.5, 1.7, -0.3],
        "abs": [0.5, 1.7, -0.3], "sinh": [0.5, 1.7, -0.3], "cosh": [0.5, 1.7, -0.3],
        "asin": [0.5, -0.3], "acos": [0.5, -0.3], "atan": [0.5, 1.7, -0.3],
        "log1p": [0.5, 1.7, -0.3], "expm1": [0.5, 1.7, -0.3], "exp2": [0.5, 1.7, -0.3],
        "log2": [0.5, 1.7], "log10": [0.5, 1.7], "rsqrt": [0.5, 1.7], "erf": [0.5, 1.7, -0.3],
        "square": [0.5, 1.7, -0.3],
    }
    for f, pts in fn_points.items():
        for p in pts:
            add(case("%s(x)" % f, {"x": p}, tag="function"))
        add(case("torch.%s(x)" % f, {"x": 0.5}, tag="function"))
        add(case("x.%s()" % f, {"x": 0.5}, tag="function"))
    for e in ["x.pow(2)", "torch.pow(x, 2)", "pow(x, 2)", "pow(x, 2.5)", "pow(2, x)", "pow(x, y)",
              "x.exp()", "x.sum()", "x.mean()", "sum(x)", "mean(x)", "torch.sin(x)",
              "sin(x)**2 + cos(x)**2", "exp(sin(x))", "log(sigmoid(x))", "sqrt(x*x + y*y)",
              "maximum(x, y)", "minimum(x, y)", "max(x)", "min(x)", "prod(x)",
              "clamp(x, 0, 1)", "clamp(x, min=0)", "clamp(x, max=1)", "clamp(x, -1, 0)"]:
        add(case(e, {"x": 0.5, "y": 1.5}, tag="function"))
    add(case("asin(x)", {"x": 1.7}, tag="function-domain"))
    add(case("acos(x)", {"x": 1.7}, tag="function-domain"))
    add(case("log(x)", {"x": -0.3}, tag="function-domain"))
    add(case("sqrt(x)", {"x": -0.3}, tag="function-domain"))

    # --- edge values
    for e, at in [("sqrt(x)", {"x": 0.0}), ("x**0.5", {"x": 0.0}), ("x**2", {"x": 0.0}),
                  ("abs(x)", {"x": 0.0}), ("relu(x)", {"x": 0.0}), ("log(x)", {"x": -1.0}),
                  ("log(x)", {"x": 0.0}), ("1/x", {"x": 0.0}), ("x**x", {"x": 0.0}),
                  ("x**0", {"x": 2.0}), ("x**0", {"x": 0.0}), ("0**x", {"x": 2.0}),
                  ("0**x", {"x": 0.0}), ("2**x", {"x": 0.0}), ("x**-1", {"x": 0.0}),
                  ("x**1", {"x": 2.0}), ("x**-2", {"x": 2.0}), ("rsqrt(x)", {"x": 0.0}),
                  ("log2(x)", {"x": 0.0}), ("x/x", {"x": 0.0}), ("clamp(x, 0, 1)", {"x": 0.0}),
                  ("clamp(x, 0, 1)", {"x": 1.0}), ("maximum(x, y)", {"x": 1.0, "y": 1.0}),
                  ("minimum(x, y)", {"x": 1.0, "y": 1.0}), ("exp(x)", {"x": 100.0}),
                  ("tan(x)", {"x": 1.5707963267948966})]:
        add(case(e, at, tag="edge"))
    for e, at in [("c**x", {"c": 0.0, "x": 2.0}), ("c**x", {"c": 0.0, "x": 0.0}),
                  ("c**x", {"c": -2.0, "x": 2.0}), ("x**c", {"x": 0.0, "c": 0.0}),
                  ("x**c", {"x": 0.0, "c": 2.0})]:
        add(case(e, at, ["c"], tag="edge"))
    add(case("torch.sin(2)", {}, tag="error"))
    add(case("sin(2.0)", {}, tag="error"))
    add(case("x @ x", {"x": 2.0}, tag="error"))
    add(case("v + w", {"v": V, "w": [1.0, 2.0]}, tag="error"))

    # --- shared leaves
    for e in ["x*x", "x*x*x", "x + x", "x * x + x", "sin(x)*cos(x)", "(x*y)*(x+y)",
              "sin(sin(x)) + x*y", "x*y + sin(sin(x))"]:
        add(case(e, {"x": 0.5, "y": 1.5}, tag="shared"))
    add(case("u*v + u**2", {"u": 1.0, "v": 2.0}, tag="shared"))

    # --- float64 variants
    for e, at in [("x**2 + 2*x + 1", {"x": 2.0}), ("u*v + u**2", {"u": 1.0, "v": 2.0}),
                  ("sin(x)*cos(x)", {"x": 0.5}), ("2 * x", {"x": 2.0}), ("2.5 * x", {"x": 2.0}),
                  ("2 ** x", {"x": 0.5}), ("x ** 2.5", {"x": 0.5}), ("sigmoid(x)", {"x": 0.5}),
                  ("x / 3", {"x": 1.0}), ("1 - x", {"x": 0.5}), ("v @ M.T", {"v": V, "M": M}),
                  ("v.prod()", {"v": V})]:
        add(case(e, at, dtype="float64", tag="float64"))

    # --- tensors
    vm = {"v": V, "M": M}
    for e in ["v.sum()", "v.mean()", "v @ v", "M @ v", "(M @ M.T).sum()", "(v @ M.T).sum()",
              "M.T.sum()", "(v * M).sum()", "M.sum(0).sum()", "M.sum(dim=1).sum()",
              "M.mean(1).sum()", "M.sum(1, keepdim=True).sum()", "v.max()", "v.min()",
              "v.prod()", "torch.maximum(v, 2*v).sum()", "torch.minimum(v, 2*v).sum()",
              "torch.clamp(v, 0, 1).sum()", "torch.clamp(v, min=0).sum()",
              "torch.clamp(v, max=1).sum()", "M.reshape(3, 2).sum()", "M.T.reshape(6).sum()",
              "M.transpose(0, 1).sum()", "M.t().sum()", "torch.softmax(v, 0)[0]",
              "softmax(v, 0).sum()", "v.norm()", "M.norm()", "M.sum()", "M.mean()",
              "(M * M).sum()", "v.dot(v)", "torch.matmul(M, v).sum()", "torch.mm(M, M.T).sum()",
              "torch.mv(M, v).sum()", "(M @ M.T)[0, 1]", "v[1]", "M[1].sum()",
              "max(v)", "min(v)", "sum(v)", "mean(v)", "prod(v)", "v.sum(0)", "M.sum((0, 1))",
              "reshape(M, (6,)).sum()", "transpose(M, 0, 1).sum()", "(M.T @ v[:2]).sum()",
              "v.max(0).values", "M.max()", "M.amax(1).sum()", "v.abs().sum()",
              "(v ** 2).sum()", "v.pow(2).sum()", "M.view(6).sum()", "M.flatten().sum()"]:
        add(case(e, vm, tag="tensor"))
    for e in ["v @ M.T", "M @ v", "M @ M.T", "M.T", "v * M", "v * 2", "M.sum(0)", "M.sum(dim=1)",
              "M.mean(1)", "M.sum(1, keepdim=True)", "torch.maximum(v, 2*v)",
              "torch.minimum(v, 2*v)", "torch.clamp(v, 0, 1)", "torch.clamp(v, min=0)",
              "torch.clamp(v, max=1)", "M.reshape(3, 2)", "M.T.reshape(6)", "M.transpose(0, 1)",
              "M.t()", "torch.softmax(v, 0)", "exp(v)", "v + 1", "M - v", "v / M", "M ** 2",
              "sigmoid(M)", "M.T.contiguous()", "M.view(3, 2)", "M.unsqueeze(0)", "v.unsqueeze(1) * v"]:
        add(case(e, vm, grad_output="ones", tag="tensor-nonscalar"))
    add(case("M @ M.T", vm, grad_output=[[1.0, 2.0], [3.0, 4.0]], tag="tensor-nonscalar"))
    add(case("v * 2", vm, grad_output=[1.0, 0.5, -1.0], tag="tensor-nonscalar"))
    add(case("v * 2", vm, tag="tensor-nonscalar-nobackward"))
    add(case("(A + B).sum()", {"A": [[1.0], [2.0]], "B": [[10.0, 20.0, 30.0]]}, tag="tensor"))
    add(case("A + B", {"A": [[1.0], [2.0]], "B": [[10.0, 20.0, 30.0]]}, grad_output="ones",
             tag="tensor-nonscalar"))
    add(case("(A * B).sum()", {"A": [[1.0], [2.0]], "B": [10.0, 20.0, 30.0]}, tag="tensor"))
    for vv, tag in [([1.0, 0.0, 3.0], "one zero"), ([1.0, 0.0, 0.0], "two zeros"),
                    ([2.0, 3.0, 4.0], "no zero")]:
        add(case("v.prod()", {"v": vv}, tag="tensor prod " + tag))
    add(case("v.max()", {"v": [3.0, 1.0, 3.0]}, tag="tensor max ties"))
    add(case("v.min()", {"v": [1.0, 1.0, 3.0]}, tag="tensor min ties"))
    add(case("max(v)", {"v": [3.0, 3.0, 3.0]}, tag="tensor max ties"))
    add(case("v.norm()", {"v": [0.0, 0.0]}, tag="tensor norm zero"))
    add(case("M @ v", {"M": M, "v": V}, ["M"], tag="tensor"))
    add(case("(M @ v).sum()", {"M": M, "v": V}, ["v"], tag="tensor"))
    add(case("mean(sigmoid(W @ x + b))",
             {"W": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], "x": [1.0, 2.0, 3.0], "b": [0.1, -0.1]},
             tag="mlp"))
    add(case("mean(sigmoid(W @ x + b))",
             {"W": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], "x": [1.0, 2.0, 3.0], "b": [0.1, -0.1]},
             ["x"], tag="mlp"))
    # reshape of a non-contiguous but viewable tensor (ReshapeAliasBackward0), .T on 0-D/1-D,
    # view of a transposed matrix, flatten of a transposed matrix (clone + unsafe view)
    for e in ["(M.T.reshape(3, 2) * 2).sum()", "M.T.view(3, 2).sum()", "M.T.flatten().sum()",
              "v.T.sum()", "(v @ M.T @ M).sum()", "(M.T @ M @ v).sum()", "M.T.T.sum()"]:
        add(case(e, vm, tag="tensor-shape"))
    add(case("x.T", {"x": 2.0}, tag="tensor-shape"))
    for e in ["x.sum(0)", "x.mean(0)", "x.sum(0, keepdim=True)", "softmax(x, 0)", "x.pow(3).sum(0)"]:
        add(case(e, {"x": 2.0}, tag="scalar-dim"))
    cs.extend(corner_cases())
    cs.extend(functional_cases())
    return cs


# --- torch.nn.functional, losses, more tensor functions (issue 13) ----------------------------------
# Every new op x operand kind (inputs that require grad, a target/operand that does not, Python
# numbers where the op takes them) x dtype, with edge values: ties for max/amax/clamp, zeros for
# log (bce at 0 and 1), kinks (relu-family at 0, smooth_l1/huber at |d| = beta), out-of-range targets.

FX = [-1.5, 0.0, 0.7, 2.0]            # crosses 0: the activations' kinks
FY = [0.5, 0.0, 1.2, 2.0]              # ties with FX at index 3 (losses' d = 0)
FP = [0.2, 0.5, 0.9, 0.999]            # probabilities
FT = [0.0, 1.0, 1.0, 0.5]              # targets in [0, 1]
FM = [[1.0, -2.0, 3.0], [0.5, 0.5, -1.0]]
FW = [[0.3, -0.1, 0.2], [0.0, 0.4, -0.5]]
FB = [0.1, -0.2]
CLS = {"int64": [2, 0]}


def _both(add, expr, at, no_grad=(), tag="functional", grad_output=None):
    for dtype in ("float32", "float64"):
        add(case(expr, at, no_grad, dtype=dtype, grad_output=grad_output, tag=tag))


def _activation_cases(add):
    x = {"x": FX}
    for e in ["F.relu(x).sum()", "F.leaky_relu(x).sum()", "F.leaky_relu(x, 0.2).sum()",
              "F.leaky_relu(x, negative_slope=1).sum()", "F.elu(x).sum()", "F.elu(x, alpha=0.5).sum()",
              "F.gelu(x).sum()", "F.gelu(x, approximate='tanh').sum()", "F.gelu(x, approximate='none').sum()",
              "F.silu(x).sum()", "F.softplus(x).sum()", "F.softplus(x, beta=2, threshold=1).sum()",
              "F.sigmoid(x).sum()", "F.tanh(x).sum()", "(F.softmax(x, dim=0) * x).sum()",
              "(F.log_softmax(x, 0) * x).sum()", "torch.logsumexp(x, 0)", "x.logsumexp(0)",
              "torch.nn.functional.relu(x).sum()", "torch.nn.functional.gelu(x).sum()",
              "(gelu(x) + silu(x)).sum()", "torch.special.logsumexp(x, 0)", "torch.special.expit(x).sum()"]:
        _both(add, e, x)
    for e in ["F.relu(x)", "F.gelu(x, approximate='tanh')", "F.log_softmax(x, dim=0)", "F.elu(x)"]:
        _both(add, e, x, grad_output="ones")
    s = {"s": 0.5}
    for e in ["F.gelu(s)", "F.silu(s)", "F.softplus(s)", "F.elu(s)", "F.leaky_relu(s)", "torch.logsumexp(s, 0)"]:
        _both(add, e, s)
    for e in ["F.leaky_relu(s)", "F.elu(s)", "F.gelu(s)", "F.softplus(s, beta=1, threshold=0)"]:
        add(case(e, {"s": 0.0}, tag="functional edge"))
    m = {"M": FM}
    for e in ["(F.log_softmax(M, dim=1) * M).sum()", "(F.log_softmax(M, -1) * M).sum()", "(F.softmax(M) * M).sum()",
              "torch.logsumexp(M, dim=1).sum()", "torch.logsumexp(M, 1, keepdim=True).sum()",
              "torch.logsumexp(M, -1).sum()"]:
        _both(add, e, m)


def _loss_cases(add):
    xy = {"x": FX, "y": FY}
    for loss in ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"]:
        for r in ["", ", reduction='sum'", ", reduction='mean'"]:
            _both(add, f"F.{loss}(x, y{r})", xy)
            add(case(f"F.{loss}(x, y{r})", xy, ["y"], tag="functional"))
        add(case(f"F.{loss}(x, y, reduction='none')", xy, grad_output="ones", tag="functional"))
    for e in ["F.smooth_l1_loss(x, y, beta=0.5)", "F.smooth_l1_loss(x, y, beta=2.0)", "F.smooth_l1_loss(x, y, beta=0.0)",
              "F.huber_loss(x, y, delta=0.5)", "F.huber_loss(x, y, delta=2)", "F.smooth_l1_loss(x, y, beta=1.5)",
              "F.mse_loss(x, s)", "F.mse_loss(s, x)"]:
        _both(add, e, dict(xy, s=0.3))
    add(case("F.smooth_l1_loss(x, y, beta=-1.0)", xy, tag="error"))
    add(case("F.huber_loss(x, y, delta=0.0)", xy, tag="error"))
    add(case("F.mse_loss(x, y, reduction='avg')", xy, tag="error"))
    # |d| exactly beta / delta: the kink
    add(case("F.smooth_l1_loss(x, y, beta=0.5)", {"x": [1.0, 0.0], "y": [0.5, 0.5]}, tag="functional edge"))
    add(case("F.huber_loss(x, y, delta=0.5)", {"x": [1.0, 0.0], "y": [0.5, 0.5]}, tag="functional edge"))
    pt = {"p": FP, "t": FT, "w": [1.0, 2.0, 0.5, 3.0]}
    for r in ["", ", reduction='sum'"]:
        _both(add, f"F.binary_cross_entropy(p, t{r})", pt, ["t", "w"])
        _both(add, f"F.binary_cross_entropy(p, t{r})", pt, ["w"])
        _both(add, f"F.binary_cross_entropy(p, t, weight=w{r})", pt, ["t", "w"])
        _both(add, f"F.binary_cross_entropy_with_logits(x, t{r})", dict(pt, x=FX), ["t", "w"])
        _both(add, f"F.binary_cross_entropy_with_logits(x, t{r})", dict(pt, x=FX), ["w"])
        _both(add, f"F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=w{r})", dict(pt, x=FX), ["t", "w"])
        _both(add, f"F.binary_cross_entropy_with_logits(x, t, pos_weight=w{r})", dict(pt, x=FX), ["w"])
    add(case("F.binary_cross_entropy(p, t, reduction='none')", pt, ["w"], grad_output="ones", tag="functional"))
    add(case("F.binary_cross_entropy_with_logits(x, t, reduction='none')", dict(pt, x=FX), ["w"], grad_output="ones",
             tag="functional"))
    # zeros for log: p at 0 and 1 (log clamped at -100 in the value, the gradient's clamp at 1e-12)
    for p in ([0.0, 1.0, 0.5], [1.0, 1.0, 0.0]):
        add(case("F.binary_cross_entropy(p, t)", {"p": p, "t": [0.5, 0.5, 0.5]}, tag="functional edge"))
        add(case("F.binary_cross_entropy(p, t)", {"p": p, "t": [0.0, 1.0, 1.0]}, ["t"], tag="functional edge"))
    add(case("F.binary_cross_entropy(p, t)", {"p": [1.5, 0.5], "t": [0.0, 1.0]}, ["t"], tag="error"))
    add(case("F.binary_cross_entropy(p, t)", {"p": [0.5, 0.5], "t": [1.0]}, ["t"], tag="error"))
    add(case("F.binary_cross_entropy_with_logits(x, t)", {"x": [50.0, -50.0], "t": [0.0, 1.0]}, ["t"],
             tag="functional edge"))


def _class_cases(add):
    m, w = {"M": FM, "c": CLS, "w": [1.0, 2.0, 0.5]}, ["w"]
    for e in ["F.cross_entropy(M, c)", "F.cross_entropy(M, c, reduction='sum')", "F.cross_entropy(M, c, weight=w)",
              "F.cross_entropy(M, c, weight=w, reduction='sum')", "F.nll_loss(F.log_softmax(M, dim=1), c)",
              "F.nll_loss(M, c)", "F.nll_loss(M, c, reduction='sum')", "F.nll_loss(M, c, weight=w)",
              "F.nll_loss(M, c, ignore_index=0)", "F.cross_entropy(M, c, ignore_index=2)",
              "F.cross_entropy(M, c, reduction='none').sum()", "torch.nn.functional.cross_entropy(M, c)"]:
        _both(add, e, m, w)
    add(case("F.cross_entropy(M, c, reduction='none')", m, w, grad_output="ones", tag="functional"))
    add(case("F.nll_loss(M, c, weight=w, reduction='none')", m, w, grad_output="ones", tag="functional"))
    v = {"x": [0.5, -1.0, 2.0], "k": {"int64": 1}}
    for e in ["F.cross_entropy(x, k)", "F.nll_loss(x, k)", "F.nll_loss(x, k, reduction='none')"]:
        _both(add, e, v)
    q = {"M": FM, "q": [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]], "w": [1.0, 2.0, 0.5]}
    for e in ["F.cross_entropy(M, q)", "F.cross_entropy(M, q, reduction='sum')", "F.cross_entropy(M, q, weight=w)"]:
        _both(add, e, q, ["q", "w"])
        add(case(e, q, ["w"], tag="functional"))
    add(case("F.cross_entropy(M, q, reduction='none')", q, ["q", "w"], grad_output="ones", tag="functional"))
    add(case("F.cross_entropy(x, q)", {"x": [0.5, -1.0, 2.0], "q": [0.2, 0.3, 0.5]}, ["q"], tag="functional"))
    # out-of-range and wrong-kind targets
    add(case("F.cross_entropy(M, c)", {"M": FM, "c": {"int64": [0, 3]}}, tag="error"))
    add(case("F.nll_loss(M, c)", {"M": FM, "c": {"int64": [-1, 0]}}, tag="error"))
    add(case("F.nll_loss(M, c)", {"M": FM, "c": [0.0, 2.0]}, ["c"], tag="error"))
    add(case("F.cross_entropy(M, c)", {"M": FM, "c": {"int64": [0, 1, 2]}}, tag="error"))


def _linear_cases(add):
    at = {"M": FM, "W": FW, "b": FB, "x": [1.0, -1.0, 0.5], "s": 0.25}
    for e in ["F.linear(M, W, b).sum()", "F.linear(M, W).sum()", "F.linear(x, W, b).sum()", "F.linear(x, W).sum()",
              "F.linear(M, W, s).sum()", "(F.linear(M, W, b) ** 2).sum()", "torch.nn.functional.linear(x, W, b).sum()",
              "F.relu(F.linear(M, W, b)).sum()", "F.mse_loss(F.linear(M, W, b), F.linear(M, W))"]:
        _both(add, e, at)
    add(case("F.linear(M, W, b)", at, grad_output="ones", tag="functional"))
    a3 = dict(at, A=[[[1.0, -1.0, 0.5], [2.0, 0.0, 1.0]], [[0.5, 0.5, 0.5], [-1.0, 2.0, 0.0]]])
    for e in ["F.linear(A, W, b).sum()", "F.linear(A, W).sum()", "(F.linear(A, W, b) ** 2).sum()"]:
        _both(add, e, a3)
    add(case("F.linear(A, W, b).sum()", a3, ["A"], tag="functional"))
    add(case("F.linear(M, W, b).sum()", at, ["b"], tag="functional"))
    add(case("F.linear(M, W, b).sum()", at, ["M"], tag="functional"))
    add(case("F.linear(M, W, b).sum()", at, ["W"], tag="functional"))
    add(case("F.linear(M, M.T, b)", at, tag="error"))


def _shape_function_cases(add):
    a3 = {"A": [[[1.0, 2.0]], [[3.0, -4.0]]], "M": FM, "x": FX, "y": FY, "c": [0.1, 0.2, 0.3, 0.4]}
    for e in ["(A.squeeze() * 2).sum()", "(A.squeeze(1) * 2).sum()", "(A.squeeze(0) * 2).sum()",
              "(A.squeeze(-2) * 2).sum()", "(torch.squeeze(A) * 2).sum()", "(M.squeeze() * 2).sum()",
              "(M.permute(1, 0) * 2).sum()", "(A.permute(2, 0, 1) * 2).sum()", "(A.permute(-1, 0, 1) * 2).sum()",
              "(x.expand(2, 4) * 2).sum()", "(x.expand(3, -1) * 2).sum()", "(x.expand(4) * 2).sum()",
              "(x.repeat(2) * x.repeat(2)).sum()", "(x.repeat(2, 2) * 2).sum()", "(M.repeat(1, 2) * 2).sum()",
              "(torch.outer(x, y) * 2).sum()", "(x.outer(y) * 2).sum()", "(torch.outer(x, c) * 2).sum()",
              "x.var()", "x.var(correction=0)", "x.var(unbiased=False)", "M.var(1).sum()", "M.var(dim=0).sum()",
              "M.var(dim=1, keepdim=True, correction=0).sum()", "x.std()", "M.std(1).sum()", "torch.std(M)",
              "torch.var(M, 1).sum()", "M.std(dim=1, correction=2).sum()",
              "M.amax(1).sum()", "M.amax().sum()", "M.amin(0, keepdim=True).sum()", "x.amax()", "torch.amax(M, 0).sum()",
              "M.max(1).values.sum()", "M.max(dim=0).values.sum()", "M.min(1).values.sum()",
              "M.max(1, keepdim=True).values.sum()", "x.max(0).values", "torch.max(M, 1).values.sum()",
              "torch.min(M, dim=0).values.sum()", "torch.max(x, y).sum()",
              "torch.atan2(x, y).sum()", "x.atan2(y).sum()", "torch.atan2(x, c).sum()",
              "(torch.floor(x) * x).sum()", "(x.ceil() * x).sum()", "(x.round() * x).sum()",
              "(x.round(decimals=1) * x).sum()", "(x.sign() * x).sum()", "(torch.sign(x) + x).sum()",
              "x.clamp_min(0.5).sum()", "torch.clamp_max(x, 0.5).sum()", "x.clamp_min(0).sum()",
              "M.sum(1).sum()", "M.mean(dim=1).sum()", "M.sum((0, 1))", "M.sum(dim=(0, 1), keepdim=True).sum()",
              "M.mean((0, 1))", "M.amax((0, 1))", "M.amin(dim=(1,)).sum()", "(torch.permute(A, (2, 0, 1)) * 2).sum()",
              "(A.squeeze((0, 1)) * 2).sum()", "(x.expand((2, 4)) * 2).sum()", "M.var((0, 1))",
              "M.std(dim=(0, 1), correction=0)", "torch.logsumexp(M, (0, 1))", "M.max(1)[0].sum()",
              "torch.min(M, 0)[0].sum()", "(x.repeat((2,)) * 2).sum()", "M.sum(-1).sum()", "(M.permute((-1, 0)) * 2).sum()"]:
        _both(add, e, a3, ["c"], tag="tensor functions")
    # ties: max/min/amax/amin, clamp_min/clamp_max at the bound
    t = {"T": [[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], "x": [0.5, 1.0, 0.5]}
    for e in ["T.max(1).values.sum()", "T.min(1).values.sum()", "T.amax(1).sum()", "T.amin(1).sum()",
              "T.amax().sum()", "T.max(0).values.sum()", "x.clamp_min(0.5).sum()", "x.clamp_max(0.5).sum()",
              "x.round().sum()", "(x.round() * x).sum()", "x.clamp_min(m).sum()", "torch.clamp_max(x, m).sum()",
              "(x.clamp_min(s) * 2).sum()"]:
        _both(add, e, dict(t, m=[1.0, 1.0, 0.2], s=0.5), tag="tensor functions ties")
    add(case("x.clamp_min(m).sum()", dict(t, m=[1.0, 1.0, 0.2]), ["m"], tag="tensor functions ties"))
    add(case("(x.round() * x).sum()", {"x": [0.5, 1.5, 2.5, -0.5]}, tag="tensor functions ties"))
    add(case("torch.atan2(x, y)", {"x": [0.0, 0.0], "y": [0.0, 1.0]}, grad_output="ones", tag="tensor functions edge"))
    add(case("x.var()", {"x": [2.0]}, tag="tensor functions edge"))
    add(case("x.std()", {"x": [2.0, 2.0]}, tag="tensor functions edge"))
    add(case("s.var()", {"s": 1.5}, tag="tensor functions edge"))
    add(case("s.squeeze() * 2", {"s": 1.5}, tag="tensor functions edge"))
    add(case("s.amax()", {"s": 1.5}, tag="tensor functions edge"))
    for e in ["x.expand(2, 3)", "M.permute(0, 0)", "x.repeat()", "M.squeeze(2)", "M.max(2)"]:
        add(case(e, {"x": FX, "M": FM}, tag="error"))


def _namespace_cases(add):
    x = {"x": FX}
    for e in ["torch.nn.functional.sin(x)", "torch.special.sin(x)", "torch.linalg.sum(x)", "F.conv1d(x, x)"]:
        add(case(e, x, tag="error"))
    for e in ["F.dropout(x, p=0.0).sum()", "F.dropout(x, training=False).sum()", "(F.dropout(x, 0.5, False) * 2).sum()",
              "(torch.dropout(x, 0.0, True) * 2).sum()", "F.normalize(M).sum()", "(F.normalize(M) * M).sum()",
              "(F.normalize(M, dim=0) * M).sum()", "(F.normalize(M, p=1.0) * M).sum()", "(F.normalize(x, dim=0) * x).sum()",
              "(F.normalize(M, p=3.0) * M).sum()"]:
        _both(add, e, dict(x, M=FM))
    add(case("(F.normalize(M) * 2).sum()", {"M": [[0.0, 0.0], [1.0, 2.0]]}, tag="functional edge"))


def functional_cases():
    cs = []
    add = cs.append
    _activation_cases(add)
    _loss_cases(add)
    _class_cases(add)
    _linear_cases(add)
    _shape_function_cases(add)
    _namespace_cases(add)
    return cs


# --- issue 15: PyTorch's truth in the corners (saved dims and strides, memory layout, NaN,
# empty tensors, what PyTorch refuses). An input value "NaN" is the float nan.
def corner_cases():
    cs = []
    add = cs.append
    s, v, m = {"s": 1.5}, {"v": V}, {"M": M}
    nan3 = {"x": ["NaN", 1.0, 2.0]}
    # item 4: transpose of a 0-d tensor
    for e in ["s.transpose(0, -1)", "transpose(s, 0, 0)", "s.transpose(-1, -1)", "s.transpose(0, -1) * 2"]:
        add(case(e, s, tag="corners 0-d transpose"))
    # item 5: nan in max/min/prod; item 6: empty tensors
    for e in ["max(x)", "min(x)", "x.max()", "prod(x)", "(x * 2).max()"]:
        add(case(e, nan3, tag="corners nan"))
    for at in [{"x": ["NaN", 0.0, 1.0]}, {"x": [0.0, 0.0, 0.0]}, {"x": [1.0, 0.0, 0.0]}, {"x": [2.0, 0.0, 3.0]},
               {"x": [0.0, "NaN", 0.0]}]:
        add(case("prod(x)", at, tag="corners prod zeros"))
    add(case("prod(x)", {"x": [[1.0, 0.0], [2.0, 3.0]]}, tag="corners prod zeros"))
    for e in ["prod(x)", "sum(x)", "mean(x)", "x.prod()", "max(x)", "min(x)", "(x * 2).sum()"]:
        add(case(e, {"x": []}, tag="corners empty"))
    # item 7: accepted where PyTorch or Python refuses
    add(case("M * 2", m, grad_output=[1.0, 2.0, 3.0], tag="corners refused"))
    add(case("M * 2", m, grad_output=[[1.0, 2.0, 3.0]], tag="corners refused"))
    add(case("v * 2", v, grad_output=2.0, tag="corners refused"))
    for e in ["torch.sum(M, 1, 1)", "M.sum(1, keepdim=0)", "M.mean(1, keepdim=1)", "M * 10 ** 40",
              "M * 2 ** 64", "M + 10 ** 40", "M ** (10 ** 40)", "torch.clamp(M, 2 ** 64)", "M * (-2 ** 63 - 1)",
              "torch.sum(M, dim=0, dim=0)"]:
        add(case(e, m, tag="corners refused"))
    for e in ["M * (2 ** 64 - 1)", "M * -2 ** 63", "M.sum(1, True)", "torch.sum(M, 1, True)"]:
        add(case(e, m, grad_output="ones", tag="corners accepted"))
    # item 1: negative dims are saved as given
    for e in ["v.sum(-1)", "torch.softmax(v, -1)", "v.unsqueeze(-1)", "v.unsqueeze(-2)", "M.transpose(-1, -2)",
              "M.mean(-2)", "M.sum(-1, keepdim=True)", "M.mean(-1, keepdim=True)", "torch.softmax(M, -2)",
              "M.transpose(1, -2)", "M.sum(dim=-1)"]:
        add(case(e, m if "M" in e else v, grad_output="ones", tag="corners negative dims"))
    for e in ["s.sum(-1)", "s.mean(-1)", "torch.softmax(s, -1)", "s.unsqueeze(-1).sum()", "s.unsqueeze(0).sum()"]:
        add(case(e, s, tag="corners negative dims"))
    # var/std as ATen's CPU kernel: accumulated in double, rounded once (std of values whose
    # variance overflows or underflows float32 is still finite)
    for at in [{"x": [1e24, -2e24, 3e24, 5e23]}, {"x": [3e19, 1e20, -2e19]}, {"x": [1e-30, 2e-30, 5e-31]},
               {"x": [[1e20, 3e20], [-1e20, 2e19]]}]:
        for e in ["x.std()", "x.var()", "torch.std(x, 0)", "x.std(correction=0)", "(x.std() * 2).sum()"]:
            for dt in ("float32", "float64"):
                add(case(e, at, dtype=dt, tag="corners wide accumulation"))
    # torch.inf / torch.pi / torch.e / torch.nan: Python floats, as in PyTorch (normalize's p=inf)
    for e in ["F.normalize(x, p=torch.inf, dim=0).sum()", "(F.normalize(x, p=torch.inf, dim=0) * x).sum()",
              "(F.normalize(M, p=torch.inf) * M).sum()", "(x * torch.pi + torch.e).sum()",
              "torch.clamp(x, max=torch.inf).sum()", "(x * torch.nan).sum()"]:
        for dt in ("float32", "float64"):
            at = {"M": M} if "M" in e else {"x": [1.0, -3.0, 3.0]}  # a tie for the inf-norm
            add(case(e, at, dtype=dt, tag="corners named constants"))
            if dt == "float64" and "nan" not in e:
                cs.append(dict(case(e, at, dtype=dt, tag="corners named constants double"), double=True))
    cs.extend(layout_cases())
    cs.extend(double_cases())
    return cs


def double_cases():
    """Item 8: the double-backward graph (``torch.autograd.grad(..., create_graph=True)``), recorded
    per input as "double_graphs" (tests/test_double_graph.py holds many more, live)."""
    M, v, w = [[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]], [0.5, -1.2, 2.0], [1.5, 0.3, -0.4]
    pool = {"M": M, "v": v, "w": w, "x": 1.5, "y": -0.7, "s": 2.0, "u": [1.0, 2.0]}
    cs = []
    for e in ["sum(s * v)", "sum(sin(u @ M))", "(softmax(v, 0) * w).sum()", "(softmax(M, -1) * M).sum()",
              "tanh(x) * y", "sigmoid(x) * y", "relu(x) * y", "(maximum(v, w) * v).sum()", "(minimum(v, w) * w).sum()",
              "(M @ M.T).sum()", "sum(sin(M @ M.T))", "((M @ v) ** 2).sum()", "torch.mv(M, v).sum() ** 2", "v.mean() ** 2",
              "v.max() ** 2", "v.norm()", "(v * w).norm()", "v.prod()", "(M.unsqueeze(0) ** 2).sum()",
              "(M.transpose(0, 1) ** 2).sum()", "(M.T.reshape(3, 2) ** 2).sum()", "(v.unsqueeze(1) * v).sum()",
              "(abs(v) * v).sum()", "log(sigmoid(x * y))", "mean(tanh(M @ v) ** 2)",
              # indexing with a tensor: IndexBackward0's rule is IndexPutImplBackward0 (issue 13)
              "(v[torch.tensor([0, 2])] ** 2).sum()", "(v[v > 0] ** 2).sum()", "(M[:, torch.tensor([0, 2, 2])] ** 2).sum()",
              "(M[M > 0] ** 3).sum()", "(v[torch.tensor([0, 0, 2])] ** 2).sum()",
              "(M[torch.tensor([1, 0]), torch.tensor([0, 2])] ** 2).sum()", "(M[0, torch.tensor([0, 2])] ** 2).sum()",
              "(v[torch.tensor([[0, 1], [2, 1]])] ** 2).sum() * x", "(v[torch.tensor([0, 2])] * v[1:3]).sum() ** 2",
              "sin(M[M > 0]).sum()", "(M[torch.tensor([1, 0])] * M).sum() ** 2", "(v[:,] ** 2).sum() + (M[:2,] ** 3).sum()"]:
        names = set(re.findall(r"[A-Za-z_]\w*", e))
        at = {k: x for k, x in pool.items() if k in names}
        cs.append(dict(case(e, at, dtype="float64", tag="corners double"), double=True))
    for zeros in ([2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [0.0, "NaN", 1.0]):
        cs.append(dict(case("v.prod()", {"v": zeros}, dtype="float64", tag="corners double prod zeros"), double=True))
    cs.append(case("abs(x).sum()", {"x": ["NaN", -1.0, 0.0, 2.0]}, tag="corners nan"))
    # a 0-d operand times a vector: its gradient summed back to 0-d is one SumBackward0 (ATen's sum_to)
    for e in ["(v[1] * v[1:3]).sum()", "(v[1:3] * v[1]).sum()", "(v[0] * v).sum() * v[2]", "(M[0, 1] * M[0]).sum()"]:
        at = {"v": [1.0, 2.0, 3.0]} if "v" in e else {"M": M}
        for dtype in ("float32", "float64"):
            cs.append(dict(case(e, at, dtype=dtype, tag="corners double 0-d operand"), double=True, double_nodes=True))
    return cs


def functional_double_cases():
    """The F. functions' double-backward graphs and saved values (PyTorch's fused nodes:
    GeluBackwardBackward0, MseLossBackwardBackward0, ...), float32 and float64: the cases of
    tests/test_double_graph.py's functional table, recorded with "double_nodes" too."""
    from tests.test_double_graph import _functional_cases, _used

    cs = []
    for dtype in ("float32", "float64"):
        for e, at, no_grad in _functional_cases():
            at = _used(e, at)
            c = case(e, at, [n for n in no_grad if n in at], dtype=dtype, tag="functional double")
            cs.append(dict(c, double=True, double_nodes=True))
    return cs


def layout_cases():
    """Items 2 and 3: saved strides and memory layout (views, elementwise results, copies)."""
    cs = []
    add = cs.append
    M, K, A, B = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[1.0, 2.0], [3.0, 4.0]], \
        [[1.0, 0.0], [2.0, 1.0]]
    C, v = [[1.0], [2.0], [3.0]], [1.0, -2.0, 3.0]
    T3 = [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]], [[9.0, 1.0], [2.0, 3.0]]]
    pool = {"M": M, "K": K, "A": A, "B": B, "C": C, "v": v, "T3": T3}
    for e in ["A @ B", "B @ A", "M.T.contiguous().view(6)", "M.T.contiguous().reshape(6)", "M.T.contiguous() @ A",
              "M.T + K", "(M.T + K).reshape(6)", "(M.T + K).view(6)", "(M.T + K) @ A", "torch.softmax(M.T, 0)",
              "torch.softmax(M.T, 0).reshape(6)", "torch.softmax(M.T, 0).T.view(6)", "M.T @ A", "K.T.T @ A",
              "M.T.reshape(2, 3)", "M.T.unsqueeze(0).reshape(3, 2)", "M.T.unsqueeze(1).reshape(3, 2)",
              "M.T.reshape(3, 1, 2)", "M.T.view(3, 1, 2)", "M.unsqueeze(1).flatten()", "sin(M.T) @ A", "2 * M.T",
              "M.T * v.unsqueeze(1)", "M.T + C", "C + M.T", "K + M.T", "exp(M.T).reshape(6)", "(M.T * 2).view(6)",
              "(M.T * 2).T.view(6)", "M.T.sum(1, keepdim=True)", "M.T.contiguous().T.contiguous()",
              "M.transpose(0, 1) @ A", "M.t().reshape(6)", "T3.transpose(0, 2) + T3.transpose(0, 2)",
              "T3.transpose(0, 2).reshape(12)", "T3.transpose(0, 1).reshape(3, 4)", "T3.transpose(1, 2).reshape(6, 2)",
              "T3.transpose(0, 2) * T3.transpose(1, 2).transpose(0, 1)", "T3.transpose(1, 2) + T3",
              "T3.transpose(0, 1).contiguous().view(12)", "torch.softmax(T3.transpose(0, 2), 1)",
              "M.T.unsqueeze(0) + M.T.unsqueeze(1)", "M.T.unsqueeze(2) * v", "torch.maximum(M.T, K)",
              "torch.maximum(K, M.T)", "2 ** M.T", "M.T ** 2", "1 - M.T", "(M.T @ A).T.reshape(6)",
              "v.unsqueeze(0).T + v.unsqueeze(1)", "C.T.reshape(3)", "C.T @ C", "C.T.T @ C.T",
              "T3.transpose(0, 1).transpose(1, 2) * T3.transpose(0, 2)", "T3.transpose(0, 1).transpose(1, 2).view(4, 3)",
              "T3.transpose(0, 1).transpose(1, 2).reshape(4, 3)", "M.sum(1, keepdim=True).T.reshape(2)",
              "M.view(3, 2).T @ K", "torch.mm(M.T, A)", "1 - C.T", "C.T * 2", "C.T + 1", "sin(C.T)", "C.T ** 2"]:
        at = {k: x for k, x in pool.items() if k in e.replace("T3", "") or (k == "T3" and "T3" in e)}
        add(case(e, at, [n for n in ("B",) if n in at], grad_output="ones", tag="corners layout"))
    for e in ["(A @ B).sum()", "(B @ A).sum()", "(M.T @ A).sum()", "(A @ M).sum()", "(A @ K.T).sum()",
              "((M.T + K) @ A).sum()", "(M @ M.T).sum()", "(M.T @ M).sum()"]:
        at = {k: x for k, x in pool.items() if k in e}
        add(case(e, at, [n for n in ("B",) if n in at], tag="corners layout"))
    return cs


def _torch_at(at: dict) -> dict:
    """A case's inputs for torch: the strings "NaN"/"Infinity"/"-Infinity" as floats."""
    def conv(x):
        if isinstance(x, list):
            return [conv(e) for e in x]
        return float(x) if isinstance(x, str) else x
    return {k: conv(x) for k, x in at.items()}


# --- indexing, joining, selection, batched matmul (issue 13) ---------------------------------
V4 = [1.0, -2.0, 3.0, 0.5]
C4 = [5.0, 0.5, 7.0, -1.0]

#: (expression, needs a scalar output) over v (4,), M (2, 3), x (), c (4,) without grad
INDEXING = [
    "v[0]", "v[-1]", "v[1:3].sum()", "v[::2].sum()", "v[1:].sum()", "v[:2].sum()", "v[-3:-1].sum()",
    "v[0:100].sum()", "v[:].sum()", "v[3:1].sum()", "v[5:].sum()", "v[1:3:2].sum()", "v[None].sum()",
    "v[...].sum()", "v[..., 0]", "M[:, 0].sum()", "M[0, 1]", "M[0][1]", "M[-1, 0]", "M[-1][-1]",
    "M[0].sum()", "M[1:].sum()", "M[:, 1:].sum()", "M[None, 0].sum()", "M[0, None].sum()",
    "M[:, None].sum()", "M[:, :].sum()", "M[..., 1].sum()", "M[0, ..., 1]", "M[:, ::2].sum()",
    "M[0:100, 0].sum()", "M[0, -2:].sum()", "M[None, None].sum()", "M[..., None].sum()", "M[...][0, 0]",
    "(M[0] * M[1]).sum()", "x[None].sum()", "x[...]", "x[None][0]", "v[1] * v[2]", "(v[1:] * v[:3]).sum()",
    "(v * 2)[1]", "(M @ v[:3])[1]", "(M.T[1:] @ v[1:3]).sum()", "c[0] * x", "(c[1:3] * v[:2]).sum()",
    "(v[0] * x + v[-1]) ** 2", "M[0, 1] * M[1, 2] * x", "((v[1:3] - v[0:2]) ** 2).sum()",
    "M[(0, 1)]", "M[0,]",
    # a trailing comma makes a tuple index: a full slice in a tuple is skipped (AliasBackward0)
    "v[:,].sum()", "M[:,].sum()", "v[...,].sum()", "M[:2,].sum()", "M[:5,].sum()", "v[0:,].sum()", "v[1:,].sum()",
    "v[-4:,].sum()", "M[-2:,].sum()", "v[None,].sum()", "x[...,]", "x[None,].sum()", "v[(0,)]", "M[:, 0,].sum()",
    "M[0, :,].sum()", "v[..., :,].sum()", "(v[:,] * v[:]).sum()", "v[torch.tensor([0, 2]),].sum()",
    # indexing with an int64 or bool tensor (IndexBackward0), after the basic indices
    "v[torch.tensor([0, 2])].sum()", "M[:, torch.tensor([0, 2])].sum()", "M[torch.tensor([1, 0]), 1].sum()",
    "M[torch.tensor([1, 0]), torch.tensor([0, 2])].sum()", "M[0, torch.tensor([0, 2])].sum()",
    "v[torch.tensor([0, 0, 3])].sum()", "v[torch.tensor([-1])].sum()", "v[v > 0].sum()", "M[M > 2].sum()",
    "v[torch.tensor(1)]", "(v[torch.tensor([0, 2])] * v[1:3]).sum()", "M[torch.tensor([1, 1])].sum()",
    "(M[torch.tensor([1, 0])] * M).sum()", "v[torch.tensor([[0, 1], [2, 3]])].sum()",
]
INDEXING_NONSCALAR = ["M[:, 0]", "v[1:3]", "M[0]", "M[None]", "v[...]", "M[:, 1:]"]
INDEXING_ERRORS = ["v[4]", "v[-5]", "M[2]", "M[0, 3]", "M[-3]", "v[0, 0]", "x[0]", "x[1:]", "v[::-1]",
                   "v[::0]", "v[1.5]", "M[..., ..., 0]", "v[torch.tensor([5])]", "v[torch.tensor([True, False])]",
                   "v[v]", "M[torch.tensor([0, 3])]"]
SELECTION = [
    "torch.where(v > 0, v, 0.).sum()", "torch.where(v >= 1, v, -v).sum()", "torch.where(v < 1, v * v, v).sum()",
    "torch.where(v <= 0.5, 1., v).sum()", "torch.where(v == 3, v, c).sum()", "torch.where(v != 3, c, v).sum()",
    "torch.where(x > 1, x, x * x)", "torch.where(x < 1, x, x * x)", "torch.where(v >= 0.5, v, 2 * v).sum()",
    "torch.where(v > 0.5, v, 2 * v).sum()", "torch.where(v == c, v, 3 * v).sum()", "((v > 0) * v).sum()",
    "(v * (v < c)).sum()", "torch.where(v > 0, v, v).sum()", "torch.where(v > 0, v, M[0:1, 0:1]).sum()",
    "torch.where(x > 1, 1., x)", "torch.where(c > 0, c, x).sum()", "torch.where(v > x, v, x).sum()",
    "torch.where(v + 1 > 2 * x, v, x * v).sum()", "torch.where(M > 2, M, 0.).sum()", "torch.where(x > 1, 1, 2)",
    "v > 0", "x == x", "torch.where(v > 0, c, 0.)", "torch.where(x >= 2, x ** 2, -x)",
]
SELECTION_NONSCALAR = ["torch.where(v > 0, v, 0.)", "torch.where(M > 2, M, -M)"]
SELECTION_ERRORS = ["torch.where(v, v, v)", "torch.where(v > 0, v, M)"]
JOINING = [
    "torch.cat([v, v]).sum()", "torch.cat([v, c, v]).sum()", "torch.cat([M, M], dim=1).sum()",
    "torch.cat([M, M], 1).sum()", "torch.cat([v]).sum()", "torch.cat([x[None], v]).sum()",
    "torch.cat([M, M], -1).sum()", "torch.cat([M, M], dim=-2).sum()", "torch.cat((v, v)).sum()",
    "(torch.cat([v, v * v]) * torch.cat([c, c])).sum()", "torch.cat([v, v * v])[1:6].sum()",
    "torch.cat([v[:2], x[None], v[2:]])[2]", "torch.cat([M, M[0:1]]).sum()", "torch.cat([M, 2 * M, M * M]).sum()",
    "torch.stack([v, v]).sum()", "torch.stack([v, c, v], dim=1).sum()", "torch.stack([x, x * x]).sum()",
    "torch.stack([M, M], -1).sum()", "torch.stack([v, v * v])[1].sum()", "torch.stack([v, v], 1)[2, 1]",
    "(torch.stack([v, c]) * torch.stack([c, v])).sum()", "torch.stack([x, 2 * x, x * x]).prod()",
    "torch.stack([v]).sum()", "torch.stack([M, M], -2).sum()", "torch.cat([c, c]).sum()",
]
JOINING_NONSCALAR = ["torch.cat([v, v])", "torch.stack([v, c, v])", "torch.cat([M, M], 1)", "torch.stack([x, x * x])"]
JOINING_ERRORS = ["torch.cat([v, M])", "torch.stack([v, M[0]])", "torch.cat([v, v], dim=1)", "torch.cat([])",
                  "torch.cat([x, x])", "torch.stack([v, v], dim=2)", "torch.cat([v[None], M[:, 0:4]])"]
CONSTANTS = [
    "(v * torch.tensor([1., 2., 3., 4.])).sum()", "(v * torch.tensor([0, 1, 2, 3])).sum()", "x * torch.tensor(3)",
    "x * torch.tensor(2.5)", "torch.tensor([0, 2])", "torch.tensor([0., 2])", "torch.tensor([[1, 2], [3, 4]])",
    "(torch.tensor([[1., 2., 0.5], [3., 4., -1.]]) @ v[:3]).sum()", "(v + torch.tensor([0.5, -1.5, 2., 0.])).prod()",
    "torch.where(v > 0, v, torch.tensor([0, 1, 2, 3])).sum()", "torch.cat([v, torch.tensor([1., 2.])]).sum()",
    "(torch.tensor([True, False, True, True]) * v).sum()", "torch.tensor([])", "torch.tensor(3.5) * x",
    "(torch.tensor([0, 2]) * v[1:3]).sum()", "sin(torch.tensor([0.5, -1., 2., 0.])).sum() * x",
    "(torch.tensor([1, 2, 3, 4]) * 0.5 * v).sum()", "(sigmoid(torch.tensor([1, 0, 2, 3])) * v).sum()",
    "torch.tensor([1, 2]) + 1", "torch.tensor([1, 2]) / 2", "(torch.tensor([0.5, 2.]) * torch.tensor([1, 3])).sum()",
]
CONSTANTS_ERRORS = ["torch.tensor([[1., 2.], [3]])", "torch.tensor(2**70)"]


def issue13_cases():
    """Indexing and slicing, comparisons and torch.where, torch.cat/stack, torch.tensor constants:
    each in float32 and float64, with the operand kinds (leaf, no-grad leaf, intermediate)."""
    at = {"v": V4, "M": M, "x": 2.0, "c": C4}
    cs = []
    for dtype in ("float32", "float64"):
        for group, tag in ((INDEXING, "indexing"), (SELECTION, "selection"), (JOINING, "joining"),
                           (CONSTANTS, "constant")):
            for e in group:
                cs.append(case(e, _used(e, at), ["c"] if "c" in _names(e) else (), dtype=dtype, tag=tag))
        for group, tag in ((INDEXING_NONSCALAR, "indexing"), (SELECTION_NONSCALAR, "selection"),
                           (JOINING_NONSCALAR, "joining")):
            for e in group:
                cs.append(case(e, _used(e, at), ["c"] if "c" in _names(e) else (), dtype=dtype,
                               grad_output="ones", tag=tag + "-nonscalar"))
        for group in (INDEXING_ERRORS, SELECTION_ERRORS, JOINING_ERRORS, CONSTANTS_ERRORS):
            for e in group:
                cs.append(case(e, _used(e, at), dtype=dtype, tag="issue13-error"))
    # ties and edges: where at equal values, a slice past the end, an index at each end
    for e, a in [("torch.where(v >= x, v, x).sum()", {"v": [2.0, 1.0, 2.0, 3.0], "x": 2.0}),
                 ("torch.where(v > x, v, x).sum()", {"v": [2.0, 1.0, 2.0, 3.0], "x": 2.0}),
                 ("torch.where(v == x, v * x, v).sum()", {"v": [2.0, 2.0, 0.0], "x": 2.0}),
                 ("torch.where(v > 0, v.log(), v).sum()", {"v": [0.0, 1.0, -1.0]}),
                 ("v[-1] + v[0]", {"v": [1.5]}), ("v[0:0].sum()", {"v": [1.0, 2.0]})]:
        cs.append(case(e, a, tag="issue13-edge"))
    return cs


# --- int64 and bool tensors (issue 13): PyTorch's type promotion, the integer results it keeps, the
# computations it refuses. t an int64 vector (with a zero and a negative), k a 0-d int64, m an int64
# matrix, x a float vector that requires grad; a mask is t > 0.
INT_AT = {"t": {"int64": [1, 2, 0, -3]}, "k": {"int64": 3}, "m": {"int64": [[1, 2], [0, -3]]},
          "x": [1.5, -2.0, 3.0, 0.5], "s": [0.5, 1.0]}
INTEGERS = [
    # arithmetic with numbers and tensors; true division and Python floats give the default dtype
    "t * 2", "2 * t", "t + t", "t - t", "t * t", "t + 1", "1 + t", "t - 1", "1 - t", "-t", "+t", "t ** 2", "2 ** t",
    "t ** t", "t ** 0", "(-2) ** t", "0 ** t", "t ** 2.5", "2.5 ** t", "t * 2.5", "t + 0.5", "t / 2", "t / t", "2 / t",
    "t / 0", "t * True", "k * 2", "k / 2", "k + 0.5", "k ** 2", "2 ** k", "k * k", "t * k", "t / k", "t * 2 ** 63",
    "t * (2 ** 64 - 1)", "t + 2 ** 62", "t - 2 ** 63", "t * 4611686018427387904", "m * 2", "m @ m", "t @ t", "m @ t[:2]",
    "t[:2] @ m", "t.dot(t)", "torch.outer(t, t)", "m.T", "m.t()", "m.reshape(4)", "m.view(4)", "m.flatten()",
    "m.permute(1, 0)", "t.unsqueeze(1)", "t.expand(2, 4)", "t.repeat(2)", "m.transpose(0, 1)", "t[1:]",
    "t[0]", "t[0] * 2", "t[0] / 2", "t[0] + t[1]", "m[0, 1]", "m[:, 0]",
    # floor division: int64 stays int64 (rounded toward -inf), a Python float or a float tensor gives floats
    "t // 2", "t // -2", "t // 2.5", "k // 2", "m // 2", "(t > 0) // 1", "(x * (t // 2)).sum()", "t[:2] // t[:2]",
    # reductions: sums and products stay int64, of a mask too
    "t.sum()", "t.sum(0)", "m.sum(1)", "m.sum((0, 1))", "t.prod()", "t.max()", "t.min()", "t.amax()", "t.amin()",
    "t.max(0).values", "m.max(1).values", "m.amax(1)", "(t > 0).sum()", "(t > 0).prod()", "(t > 0).sum(0)",
    "(t > 0).max()", "t.sum() * 2", "-t.sum()",
    # elementwise functions: integer-valued ones keep int64, the rest compute in float32
    "abs(t)", "t.abs()", "relu(t)", "torch.neg(t)", "torch.sign(t)", "torch.floor(t)", "torch.ceil(t)", "torch.round(t)",
    "t.square()", "sin(t)", "exp(t)", "t.sqrt()", "sigmoid(t)", "tanh(t)", "t.log()", "t.reciprocal()", "t.rsqrt()",
    "t.exp2()", "t.erf()", "torch.logsumexp(t, 0)", "torch.atan2(t, t)", "torch.clamp(t, 0, 1)", "torch.clamp(t, 0.5)",
    "t.clamp(max=1.5)", "t.clamp_min(0)", "t.clamp_min(0.5)", "t.clamp_max(1.5)", "torch.maximum(t, t)",
    "torch.minimum(t, t)",
    # masks
    "(t > 0) * 2", "(t > 0) + (t > 0)", "(t > 0) * (t > 0)", "(t > 0) / 2", "(t > 0) + 1", "(t > 0) * 2.5",
    "(t > 0) ** 2", "torch.sign(t > 0)", "sin(t > 0)", "torch.clamp(t > 0, 0, 1)", "torch.where(t > 0, t, 0)",
    "torch.where(t > 0, 2, 2.5)", "torch.where(t > 0, t, 2.5)", "torch.cat([t, t])", "torch.stack([t, t])",
    "torch.cat([t > 0, t])",
    # int64 with float tensors that require grad: the float's dtype, a None edge for the int64 operand
    "(t * x).sum()", "(x * t).sum()", "(t + x).sum()", "(x - t).sum()", "(t - x).sum()", "(x / t).sum()", "(t / x).sum()",
    "(x ** t).sum()", "(t ** x).sum()", "x.pow(t).sum()", "(k * x).sum()", "(x ** k).sum()", "(x + k).sum()",
    "(t[0] * x).sum()", "(t.sum() / x).sum()", "x.sum() * t.sum()", "(x.sum() ** t.sum())", "(t.sum() ** x).sum()",
    "torch.where(t > 0, x, t).sum()", "torch.where(t > 0, t, x).sum()", "torch.cat([t, x]).sum()",
    "torch.stack([t, x]).sum()", "torch.maximum(t, x).sum()", "torch.minimum(x, t).sum()", "torch.atan2(t, x).sum()",
    "torch.outer(t, x).sum()", "F.mse_loss(x, t)", "F.l1_loss(x, t)", "F.smooth_l1_loss(x, t)", "((t > 0) * x).sum()",
    "(x * torch.tensor([1, 2, 3, 4])).sum()", "(x[t[:2]] * t[:2]).sum()", "x[k] * k", "(torch.tensor([1, 2]) * s).sum()",
    "(s * m[0]).sum()",
]
#: what PyTorch refuses of integer tensors
INTEGERS_ERRORS = [
    "t ** -1", "t ** -2", "k ** -1", "t.mean()", "m.mean(1)", "(t > 0).mean()", "t.var()", "m.var(1)", "t.std()",
    "t.norm()", "softmax(t, 0)", "F.log_softmax(t, 0)", "F.gelu(t)", "F.silu(t)", "F.leaky_relu(t)", "F.elu(t)",
    "F.softplus(t)", "F.normalize(t, dim=0)", "F.mse_loss(t, t)", "F.l1_loss(t, t)", "F.smooth_l1_loss(t, t)",
    "F.huber_loss(t, t)", "F.huber_loss(x, t)", "F.binary_cross_entropy_with_logits(x, t)", "t.round(decimals=1)",
    "abs(t > 0)", "relu(t > 0)", "-(t > 0)", "(t > 0) - (t > 0)", "(t > 0) - 1", "1 - (t > 0)", "t - True",
    "torch.floor(t > 0)", "(t > 0) @ (t > 0)", "t @ x", "t * 10 ** 30", "F.nll_loss(m, t[2:3].repeat(2))",
    "F.cross_entropy(m, t[:2].abs())", "t // 0", "2 // t", "(x // 2).sum()", "(x // t).sum()", "(t // x).sum()",
]


# --- issue 13, closing the gaps: torch.bmm by name, label_smoothing, normalize with any p, clamp with
# tensor bounds (ties at the bounds, bounds crossed, broadcast bounds)
GAP_AT = {"M": [[1.0, -2.0, 3.0], [0.5, 0.5, -1.0]], "c": {"int64": [2, 0]}, "q": [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]],
          "w": [1.0, 2.0, 0.5], "v": [0.5, -1.0, 2.0], "k": {"int64": 1}, "p": [0.2, 0.3, 0.5],
          "A": [[[1.0, 2.0], [3.0, 4.0]], [[0.5, -1.0], [2.0, 0.0]]], "B": [[[1.0, 0.0], [2.0, -1.0]], [[0.0, 1.0], [1.0, 1.0]]],
          "x": [-1.5, 0.0, 0.7, 2.0], "lo": [0.0, 0.0, 1.0, 1.0], "hi": [1.0, 0.5, 1.0, 3.0], "Z": [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
          "r": [0.0, 1.0, 0.5], "col": [[0.0], [1.0]], "s": 0.5}
GAPS = ["torch.bmm(A, B)", "A.bmm(B)", "(torch.bmm(A, A) ** 2).sum()", "torch.bmm(A, B.transpose(1, 2))"]
for _ls in ("0.1", "0.0", "1.0", "0.25", "-0.1"):
    GAPS += [f"F.cross_entropy(M, c, label_smoothing={_ls}{x})" for x in
             ("", ", reduction='sum'", ", reduction='none'", ", weight=w", ", ignore_index=0", ", weight=w, ignore_index=2",
              ", weight=w, reduction='sum'", ", weight=w, reduction='none'")]
    GAPS += [f"F.cross_entropy(M, q, label_smoothing={_ls}{x})" for x in ("", ", reduction='sum'", ", weight=w",
                                                                          ", reduction='none'")]
    GAPS += [f"F.cross_entropy(v, k, label_smoothing={_ls})", f"F.cross_entropy(v, k, label_smoothing={_ls}, ignore_index=1)",
             f"F.cross_entropy(v, p, label_smoothing={_ls})"]
for _p in ("0.5", "0", "-1", "-0.5", "0.25", "1.5", "3", "1", "2"):
    GAPS += [f"(F.normalize(M, p={_p}) * M).sum()", f"F.normalize(M, p={_p}, dim=0)", f"F.normalize(Z, p={_p})",
             f"F.normalize(v, p={_p}, dim=0)"]
GAPS += ["torch.clamp(x, min=lo)", "torch.clamp(x, lo, hi)", "x.clamp(max=hi)", "torch.clamp(x, min=lo, max=hi)",
         "torch.clamp(x, hi, lo)", "x.clamp(lo)", "torch.clamp(M, r)", "torch.clamp(M, max=col)", "torch.clamp(x, x)",
         "torch.clamp(x, x, x)", "torch.clamp(x, torch.tensor([0., 0., 1., 1.]), hi)", "torch.clamp(M, col, r)",
         "(torch.clamp(x, lo, hi) ** 2).sum()", "torch.clamp(x, lo, hi).sum() * x.sum()"]
GAPS_NO_GRAD = {"c", "k", "w", "q", "p"}
GAPS_ERRORS = ["torch.bmm(A, B[0])", "torch.bmm(M, B)", "torch.bmm(A, M.unsqueeze(0))", "F.cross_entropy(M, c, label_smoothing=1.5)",
               "torch.clamp(x, lo, 1.5)", "torch.clamp(x, 0.5, hi)", "torch.clamp(x, r)"]


def gap_cases():
    """bmm by name, label smoothing, normalize's p, clamp's tensor bounds: float32 and float64, the bounds with
    and without grad (issue 13)."""
    cs = []
    for dtype in ("float32", "float64"):
        for e in GAPS:
            at = _used(e, GAP_AT)
            cs.append(case(e, at, sorted(GAPS_NO_GRAD & set(at)), dtype=dtype, grad_output="ones", tag="gaps"))
        for e in GAPS_ERRORS:
            cs.append(case(e, _used(e, GAP_AT), dtype=dtype, tag="gaps-error"))
    for e in ["torch.clamp(x, lo, hi)", "x.clamp(max=hi)", "F.cross_entropy(M, q, label_smoothing=0.2)"]:
        cs.append(case(e, _used(e, GAP_AT), ["lo", "hi"] if "lo" in e else [], grad_output="ones", tag="gaps"))
    for e, no_grad in [("torch.bmm(A, B)", ["A"]), ("torch.bmm(A, B)", ["B"]), ("torch.clamp(x, lo, hi)", ["x"]),
                       ("torch.clamp(x, lo, hi)", ["x", "hi"])]:
        for dtype in ("float32", "float64"):
            cs.append(case(e, _used(e, GAP_AT), no_grad, dtype=dtype, grad_output="ones", tag="gaps"))
    for e, at in [("F.cross_entropy(M, c, label_smoothing=0.1)", dict(GAP_AT, c={"int64": [0, 3]})),
                  ("F.cross_entropy(M, c, label_smoothing=0.1)", dict(GAP_AT, c={"int64": [-1, 0]})),
                  ("F.cross_entropy(M, c, label_smoothing=0.1)", dict(GAP_AT, c={"int64": [0, 1, 2]}))]:
        cs.append(case(e, _used(e, at), tag="gaps-error"))
    # the functions of the first lecture in float64 too (every op x dtype)
    for f, x in [("sin", 0.5), ("cos", 0.5), ("tan", 0.5), ("exp", 0.5), ("log", 0.5), ("sqrt", 0.5), ("tanh", 0.5),
                 ("sigmoid", 0.5), ("relu", -0.3), ("abs", -0.3), ("sinh", 0.5), ("cosh", 0.5), ("asin", 0.5),
                 ("acos", 0.5), ("atan", 0.5), ("log1p", 0.5), ("expm1", 0.5), ("exp2", 0.5), ("log2", 0.5),
                 ("log10", 0.5), ("rsqrt", 0.5), ("erf", 0.5), ("square", 0.5), ("reciprocal", 0.5)]:
        e = f"torch.{f}(x)"
        cs.append(case(e, {"x": x}, dtype="float64", tag="float64"))
        cs.append(case(e, {"x": [0.0, x, 1.5]}, dtype="float64", grad_output="ones", tag="float64"))
    for e in ["v @ v", "v.dot(v)", "(v @ v) * v.sum()"]:
        cs.append(case(e, {"v": [0.5, -1.0, 2.0]}, dtype="float64", tag="float64"))
    for e in ["(torch.bmm(A, B) ** 2).sum()", "(torch.clamp(x, lo, hi) ** 2).sum()", "(torch.clamp(x, min=lo) ** 2).sum()",
              "(F.normalize(M, p=0.5) * M).sum()", "(F.normalize(M, p=-1) * M).sum()",
              "F.cross_entropy(M, q, label_smoothing=0.2)"]:
        cs.append(dict(case(e, _used(e, GAP_AT), dtype="float64", tag="gaps double"), double=True))
    return cs


def integer_cases():
    """int64 and bool tensors in arithmetic, reductions and functions (issue 13): float32 and float64 runs."""
    cs = []
    for dtype in ("float32", "float64"):
        for e in INTEGERS:
            cs.append(case(e, _used(e, INT_AT), dtype=dtype, grad_output="ones", tag="integers"))
        for e in INTEGERS_ERRORS:
            cs.append(case(e, _used(e, INT_AT), dtype=dtype, tag="integers-error"))
    return cs


def _arange(*shape):
    """Distinct values of ``shape`` (k/7 - 1), for batched matmul cases."""
    n = 1
    for d in shape:
        n *= d
    flat = [k / 7 - 1 for k in range(n)]
    for d in reversed(shape[1:]):
        flat = [flat[i:i + d] for i in range(0, len(flat), d)]
    return flat


BATCHED_SHAPES = {"A": (2, 3, 4), "B": (2, 4, 5), "C": (1, 3, 4), "D": (1, 4, 5), "W": (4, 5), "w": (4,), "u": (3,),
                  "X": (2, 3), "G": (3, 4), "E": (1, 1, 3, 4), "F": (2, 2, 3, 4), "H": (2, 5, 4)}
#: 3-D @ 3-D, 3-D @ 2-D, 3-D @ 1-D, 1-D @ 3-D, 2-D @ 3-D, batches of one and broadcast batches, with
#: strided operands; each with every operand requiring grad, then the first, then the second not
BATCHED = ["A @ B", "C @ B", "A @ D", "C @ D", "A @ W", "A @ w", "u @ A", "X @ A", "G @ B", "E @ B", "F @ B",
           "A @ H.transpose(1, 2)", "A.transpose(1, 2) @ A", "A.transpose(0, 1) @ W", "A.transpose(0, 1) @ w",
           "A @ B[0]", "A @ B.transpose(1, 2).transpose(1, 2)", "torch.matmul(A, W)", "(A @ B).sum()",
           "((A @ B) ** 2).sum()", "(A @ W @ W.T).sum()"]
#: every existing op on a 3-D tensor
THREE_D = ["A.sum()", "A.sum(1)", "A.sum(-1, keepdim=True)", "A.mean()", "A.mean(0)", "A.T", "A.transpose(0, 2)",
           "A.reshape(6, 4)", "A.view(2, 12)", "A.transpose(0, 1).reshape(12, 2)", "softmax(A, -1)", "A.max()",
           "A.min()", "A.prod()", "sigmoid(A)", "A * W[None, 0:3, 0:4]", "A + w", "A * X[:, :, None]",
           "A.unsqueeze(1)", "A.flatten()", "A.norm()", "torch.maximum(A, 2 * A)", "torch.clamp(A, 0, 1)", "A[0]",
           "A[:, 1:, ::2]", "A[..., 0]", "A[None]", "torch.cat([A, A], 1)", "torch.stack([A, A], -1)",
           "torch.where(A > 0, A, 0.)", "exp(A) / A.exp().sum(-1, keepdim=True)", "A ** 2", "2 ** A", "A ** A",
           "A.transpose(1, 2).contiguous()", "A.transpose(0, 1).flatten()", "A - A.mean(-1, keepdim=True)",
           "A.abs().sum(2)", "A.T.reshape(24)", "relu(A - 0.5) * A"]
BATCHED_ERRORS = ["A @ A", "u @ B", "A @ u", "A.t()", "F @ A"]


def batched_cases():
    """3-D tensors and batched matmul (issue 13, item 4), float32 and float64."""
    at = {n: _arange(*s) for n, s in BATCHED_SHAPES.items()}
    cs = []
    for dtype in ("float32", "float64"):
        for e in BATCHED:
            names = [n for n in BATCHED_SHAPES if n in _names(e)]
            for no_grad in ([], names[:1], names[1:2]):
                cs.append(case(e, _used(e, at), no_grad, dtype=dtype, grad_output="ones", tag="batched"))
        for e in THREE_D:
            cs.append(case(e, _used(e, at), dtype=dtype, grad_output="ones", tag="3-d"))
        for e in BATCHED_ERRORS:
            cs.append(case(e, _used(e, at), dtype=dtype, tag="batched-error"))
    return cs


def _names(expr):
    import re
    return set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", expr))


def _used(expr, at):
    names = _names(expr)
    return {k: v for k, v in at.items() if k in names}


def main(path=OUT):
    cases = []
    for c in build_cases() + issue13_cases() + batched_cases() + functional_double_cases() + integer_cases() + gap_cases():
        r = torch_trace(c["expr"], _torch_at(c["at"]), no_grad=c["no_grad"], dtype=c["dtype"],
                        grad_output=c.get("grad_output"))
        if c.pop("double", False):
            r["double_graphs"] = torch_double_graphs(c["expr"], _torch_at(c["at"]), dtype=c["dtype"],
                                                     no_grad=c["no_grad"])
        if c.pop("double_nodes", False):
            r["double_nodes"] = torch_double_nodes(c["expr"], _torch_at(c["at"]), dtype=c["dtype"],
                                                   no_grad=c["no_grad"])
        cases.append(dict(c, result=r))
    data = {"torch_version": torch.__version__, "cases": cases}
    text = json.dumps(data, sort_keys=True, indent=1, allow_nan=False, ensure_ascii=True)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    n_err = sum(1 for c in cases if c["result"].get("error"))
    print("wrote %d cases (%d with error) to %s" % (len(cases), n_err, os.path.normpath(path)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else OUT)
