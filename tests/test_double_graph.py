"""The double-backward graph (``--graph double``) node for node against PyTorch's, live.

For each expression of the table and each input, ``torch.autograd.grad(out, [x], create_graph=True)``
returns the gradient as a tensor whose grad_fn is the root of PyTorch's double-backward graph;
gradviz's second-order pass (gradviz/higher.py) must build the same graph: class names and
next_functions order, written ``Name[next, ...]``. Skipped without torch.

``python -m tests.test_double_graph`` (from the repo root, torch installed) prints how many
cases match and each one that does not.
"""

from __future__ import annotations

import functools
import os
import sys

import pytest

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

S = {"x": 1.5, "y": -0.7}
V = {"v": [0.5, -1.2, 2.0], "w": [1.5, 0.3, -0.4]}
MAT = {"M": [[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]], "K": [[1.0, -0.5], [2.0, 0.25], [-1.0, 3.0]],
       "A": [[1.0, 2.0], [-0.5, 3.0]]}

UNARY = ["sin", "cos", "tan", "exp", "tanh", "sigmoid", "relu", "abs", "sinh", "cosh", "atan", "erf", "expm1",
         "exp2", "square"]
POSITIVE = ["log", "sqrt", "log1p", "log2", "log10", "rsqrt"]
UNIT = ["asin", "acos"]


def _cases():
    cases = []
    add = cases.append
    for f in UNARY:
        add((f"{f}(x)", S))
        add((f"{f}(x) * y", S))
        add((f"{f}(v).sum()", V))
        add((f"({f}(M) * M).sum()", MAT))
    for f in POSITIVE:
        add((f"{f}(x)", S))
        add((f"{f}(abs(v) + 1).sum()", V))
    for f in UNIT:
        add((f"{f}(x / 2)", S))
        add((f"{f}(v / 3).sum()", V))
    for op in ["+", "-", "*", "/"]:
        add((f"(x {op} y) * x", S))
        add((f"(v {op} w).sum() * (v * w).sum()", V))
        add((f"((M {op} 2) * M).sum()", MAT))
        add((f"((2 {op} v) * v).sum()", V))
    for e in ["x**2", "x**3", "x**0.5 * y", "x**y", "2**x", "x**-1", "x**1", "x**0 * y", "v.pow(3).sum()",
              "(v ** w).abs().sum()", "(abs(v) ** 2.5).sum()", "(2 ** v).sum()", "-x * y", "1 / x", "2 / (v * w).sum()",
              "(v * 2).sum() ** 2", "(v / w).sum()", "(w / v).sum()", "1 - x * y"]:
        add((e, {**S, **V}))
    # broadcasting: the reduction back to the input's shape
    for e in ["sum(s * v)", "sum(s * v * v)", "sum((s + v) ** 2)", "sum(v / s)", "sum(s / v)", "(s * M).sum()",
              "(b * M * M).sum()", "(c * M * M).sum()", "(M * v).sum() * s"]:
        add((e, {"s": 2.0, "v": [1.0, 2.0, 3.0], "M": MAT["M"], "b": [1.0, -2.0, 0.5], "c": [[2.0], [-1.0]]}))
    # reductions
    for e in ["v.sum() ** 2", "v.mean() ** 2", "(v * v).mean()", "(M * M).sum(0).sum()", "(M * M).sum(1).sum()",
              "(M * M).sum(-1).sum()", "(M * M).sum(1, keepdim=True).sum()", "(M * M).mean(0).sum()",
              "(M * M).mean(-1, keepdim=True).sum()", "(M.sum(0) ** 2).sum()", "(M.mean(1) ** 2).sum()",
              "(v * v).max()", "(v * v).min()", "max(v * w)", "(M * M).max()", "v.prod()", "(v * w).prod()",
              "(M * M).prod()", "v.norm()", "(v * w).norm()", "M.norm()", "v.norm() * v.sum()",
              "softmax(v, 0).max()", "(softmax(v, 0) * w).sum()", "(softmax(M, 1) * M).sum()",
              "(softmax(M, -1) * M).sum()", "(softmax(M, 0) * M).sum()", "softmax(v * v, 0).max()",
              "v.max() ** 2", "(v * w).max() * v.sum()", "max(v) * min(v)", "v.min() ** 2", "(M * M).max() ** 2",
              "v.mean() * v.sum()", "(M * M).mean() ** 2", "M.mean(0).sum() ** 2", "(M.sum(0) * v).sum() ** 2",
              "v.norm() ** 2", "(M * M).norm()", "v.prod() * v.sum()", "(v * w).prod() ** 2",
              "(softmax(v, -1) * softmax(w, 0)).sum()", "(softmax(M.T, 0) * K).sum()"]:
        add((e, {**V, **MAT}))
    for at in [[2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]:
        add(("v.prod()", {"v": at}))
        add(("(v * v).prod()", {"v": at}))
    for at in [[3.0, 1.0, 3.0], [1.0, 1.0, 1.0]]:
        add(("(v * v).max()", {"v": at}))
    add(("v.norm()", {"v": [0.0, 0.0, 0.0]}))
    # elementwise two-tensor functions and clamp
    for e in ["maximum(x, y) * x", "minimum(x, y) * x", "maximum(x, x) * x", "(maximum(v, w) * v).sum()",
              "(minimum(v, w) * w).sum()", "clamp(x * y, -1, 5)", "clamp(x * x, min=0) * x", "clamp(x, max=1) * x",
              "(clamp(v, -1, 1) * v).sum()", "(relu(v) * v).sum()", "(abs(v) * v).sum()"]:
        add((e, {**S, **V}))
    # linear algebra
    for e in ["v @ w", "(v @ w) ** 2", "(M @ v).sum()", "((M @ v) ** 2).sum()", "(M @ K).sum()", "((M @ K) ** 2).sum()",
              "(M @ M.T).sum()", "((M @ M.T) ** 2).sum()", "(M.T @ M).sum()", "(K.T @ K).sum()", "(M.T @ A).sum()",
              "((M.T @ A) ** 2).sum()", "(A @ M).sum()", "((A @ M) ** 2).sum()", "sum(sin(v @ M.T))",
              "sum(sin(w @ K))", "(v @ M.T @ A).sum()", "(M.t() @ A).sum()", "(M.transpose(0, 1) @ A).sum()",
              "((M @ v) * (M @ v)).sum()", "torch.mm(M, K).sum() ** 2", "torch.mv(M, v).sum() ** 2", "v.dot(w) ** 2",
              "sum(sin(M @ K))", "sum(sin(K @ M))", "sum(sin(M.T @ A))", "((M.T + K) @ A).sum() ** 2",
              "sum(sin(A @ A))", "sum(sin(A.T @ A))", "sum(sin(A @ A.T))", "sum(sin(M @ M.T @ A))",
              "sum(sin(v @ K @ A))", "sum(sin(M.T @ (M @ K)))", "(tanh(M @ v) * (M @ v)).sum()"]:
        add((e, {**V, **MAT}))
    # shapes
    for e in ["(M.T * M.T).sum()", "(M.reshape(3, 2) ** 2).sum()", "(M.T.reshape(6) ** 2).sum()",
              "(M.view(6) ** 2).sum()", "(M.flatten() ** 2).sum()", "(M.T.contiguous() ** 2).sum()",
              "(M.unsqueeze(0) ** 2).sum()", "(M.unsqueeze(-1) ** 2).sum()", "(v.unsqueeze(1) * v).sum()",
              "(M.transpose(0, 1) ** 2).sum()", "(M.transpose(-1, -2) ** 2).sum()", "(M.t() ** 2).sum()",
              "(M.T.reshape(3, 2) ** 2).sum()", "(M.T.flatten() ** 2).sum()", "sin(M.T).sum()",
              "(sin(M).T.reshape(6) * v.sum()).sum()"]:
        add((e, {**V, **MAT}))
    # chains of several ops
    for e in ["sin(x) * cos(y) + x * y", "exp(sin(x)) * y", "log(sigmoid(x * y))", "sqrt(x * x + y * y)",
              "tanh(tanh(x)) * y", "sigmoid(x) * sigmoid(y)", "relu(x * y) * x", "mean(sigmoid(M @ v + b))",
              "mean(tanh(M @ v) ** 2)", "sum(relu(M @ v) * b)", "sum(softmax(M @ v, 0) * b)",
              "(sigmoid(M) * tanh(M)).sum()", "sum(exp(v) / sum(exp(v)))"]:
        add((e, {**S, **V, **MAT, "b": [0.5, -1.0]}))
    # a 0-d operand times a vector: its gradient summed to 0-d is SumBackward0 (ATen's sum_to)
    add(("(v[1] * v[1:3]).sum()", {"v": [1.0, 2.0, 3.0]}))
    add(("(v[0] * v).sum() * v[2]", {"v": [1.0, 2.0, 3.0]}))
    return cases


# --- torch.nn.functional: each F. function's double-backward graph, with PyTorch's fused
# backward-of-backward nodes (GeluBackwardBackward0, MseLossBackwardBackward0, ...). Each case
# is (expression, inputs, inputs without grad); {"int64": [...]} is a class target.
FX = [0.5, -1.2, 2.0, 0.0]
FY = [1.0, 0.3, -0.4, 0.5]
FM = [[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]]
FP = [0.2, 0.7, 0.5, 0.9]
FT = [0.0, 1.0, 0.3, 1.0]
FW = [1.0, 2.0, 0.5, 3.0]
ACTIVATIONS = ["F.relu({})", "F.leaky_relu({})", "F.leaky_relu({}, 0.2)", "F.elu({})", "F.elu({}, alpha=0.5)",
               "F.gelu({})", "F.gelu({}, approximate='tanh')", "F.silu({})", "F.softplus({})",
               "F.softplus({}, beta=2, threshold=1)", "F.sigmoid({})", "F.tanh({})", "torch.relu({})"]
POINTWISE_LOSSES = ["F.mse_loss", "F.l1_loss", "F.smooth_l1_loss", "F.huber_loss"]


def _functional_cases():
    cases = []
    add = cases.append
    xy = {"x": FX, "y": FY, "s": 0.7}
    for act in ACTIVATIONS:
        a = act.format("x")
        for e in [f"{a}.sum()", f"({a} ** 2).sum()", f"({a} * y).sum()"]:
            add((e, xy, ()))
        add((f"{act.format('s')} * s", xy, ()))
    m = {"M": FM, "x": FX, "y": FY}
    for e in ["(F.softmax(x, 0) * y).sum()", "(F.softmax(M, dim=1) ** 2).sum()", "F.log_softmax(x, 0).sum()",
              "(F.log_softmax(x, 0) * y).sum()", "(F.log_softmax(M, 1) * M).sum()", "(F.log_softmax(M, dim=0) ** 2).sum()",
              "torch.logsumexp(x, 0)", "torch.logsumexp(M, 1).sum()", "(torch.logsumexp(M, 1, keepdim=True) ** 2).sum()",
              "(F.dropout(x, p=0.0) ** 2).sum()",
              # a norm of order 0 sends no gradient (ATen's undefined tensor): no zero added anywhere
              "(F.normalize(M, p=0) * M).sum()", "F.normalize(M, p=0, dim=0).sum()", "(F.normalize(x, p=0, dim=0) * y).sum()"]:
        add((e, m, ()))
    for loss in POINTWISE_LOSSES:
        for r in ["", ", reduction='sum'"]:
            add((f"{loss}(x, y{r})", xy, ()))
            add((f"{loss}(x, y{r})", xy, ("y",)))
        add((f"{loss}(x, y, reduction='none').sum()", xy, ()))
        add((f"({loss}(x, y, reduction='none') ** 2).sum()", xy, ()))
        add((f"{loss}(x, y) * x.sum()", xy, ()))
        add((f"{loss}(x, s)", xy, ()))
    for e in ["F.smooth_l1_loss(x, y, beta=0.5)", "F.huber_loss(x, y, delta=0.5)", "F.huber_loss(x, y, delta=2.0) ** 2",
              "F.smooth_l1_loss(x, y, beta=2.0) * y.sum()"]:
        add((e, xy, ()))
    # |self - target| exactly beta / delta: the kink
    add(("F.smooth_l1_loss(x, y, beta=0.5) + F.huber_loss(x, y, delta=0.5)", {"x": [1.0, 0.0], "y": [0.5, 0.5]}, ()))
    pt = {"p": FP, "t": FT, "w": FW, "x": FX}
    for r in ["", ", reduction='sum'", ", reduction='none').sum("]:
        add((f"F.binary_cross_entropy(p, t{r})", pt, ()))
        add((f"F.binary_cross_entropy(p, t{r})", pt, ("t",)))
        add((f"F.binary_cross_entropy(p, t, weight=w{r})", pt, ("w",)))
        add((f"F.binary_cross_entropy_with_logits(x, t{r})", pt, ()))
        add((f"F.binary_cross_entropy_with_logits(x, t, weight=w{r})", pt, ("w",)))
        add((f"F.binary_cross_entropy_with_logits(x, t, pos_weight=w{r})", pt, ("w",)))
        add((f"F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=w{r})", pt, ("w", "t")))
    add(("F.binary_cross_entropy(p, t) * p.sum()", pt, ()))
    # p at 0 and 1: the kernels' clamps (values inf/nan, the graph PyTorch's)
    add(("F.binary_cross_entropy(p, t)", {"p": [0.0, 1.0, 0.5], "t": [0.5, 0.5, 0.5]}, ()))
    add(("F.binary_cross_entropy_with_logits(x, t)", {"x": [50.0, -50.0], "t": [0.0, 1.0]}, ("t",)))
    add(("F.binary_cross_entropy_with_logits(x, t) * x.sum()", pt, ()))
    c = {"M": FM, "c": {"int64": [2, 0]}, "w": [1.0, 2.0, 0.5], "q": [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]],
         "x": [0.5, -1.0, 2.0], "k": {"int64": 1}}
    for e in ["F.nll_loss(M, c)", "F.nll_loss(M, c, reduction='sum') * M.sum()", "F.nll_loss(M, c, weight=w)",
              "F.nll_loss(M, c, ignore_index=0)", "F.nll_loss(M, c, reduction='none').sum()",
              "(F.nll_loss(M, c, reduction='none') ** 2).sum()", "F.nll_loss(F.log_softmax(M, dim=1), c)",
              "F.cross_entropy(M, c)", "F.cross_entropy(M, c, reduction='sum')", "F.cross_entropy(M, c, weight=w)",
              "F.cross_entropy(M, c, ignore_index=2)", "F.cross_entropy(M, c, reduction='none').sum()",
              "F.cross_entropy(M, c) ** 2", "F.cross_entropy(x, k)", "F.nll_loss(x, k)",
              "F.cross_entropy(M, q)", "F.cross_entropy(M, q, reduction='sum')", "F.cross_entropy(M, q, weight=w)"]:
        add((e, c, ("w", "q")))
    add(("F.cross_entropy(M, q)", c, ("w",)))
    n = {"M": FM, "x": FX, "Z": [[0.0, 0.0], [1.0, 2.0]]}
    for e in ["F.normalize(M).sum()", "(F.normalize(M) * M).sum()", "(F.normalize(M, dim=0) * M).sum()",
              "(F.normalize(M, p=1.0) * M).sum()", "(F.normalize(M, p=3.0) * M).sum()", "(F.normalize(M, p=1.5) * M).sum()",
              "(F.normalize(x, dim=0) ** 2).sum()", "(F.normalize(Z) * 2).sum()"]:
        add((e, n, ()))
    lin = {"M": FM, "K": [[1.0, 0.5, 0.2], [0.3, -1.0, 2.0]], "b": [0.1, 0.2], "x": [1.0, -1.0, 0.5]}
    for e in ["(F.linear(M, K, b) ** 2).sum()", "(F.linear(M, K) ** 2).sum()", "(F.linear(x, K, b) ** 2).sum()",
              "F.relu(F.linear(M, K, b)).sum()", "F.mse_loss(F.linear(M, K, b), F.linear(M, K))"]:
        add((e, lin, ()))
    return cases


CASES = [(e, at, ()) for e, at in _cases()] + _functional_cases()


def _used(expr: str, at: dict) -> dict:
    import re

    names = set(re.findall(r"[A-Za-z_]\w*", expr))
    return {k: v for k, v in at.items() if k in names}


def _graph_text(fn, name_of) -> str:
    """``Name[next, ...]`` of a PyTorch grad_fn or a gradviz BackwardFunction, iteratively."""
    if fn is None:
        return "None"
    parts, stack = [], [fn]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif item is None:
            parts.append("None")
        else:
            leaf = name_of(item)
            if leaf is not None:
                parts.append(f"AccumulateGrad({leaf})")
                continue
            name = item.name() if callable(item.name) else item.name
            nexts = [n[0] if isinstance(n, tuple) else n for n in item.next_functions]
            parts.append(name + "[")
            todo = []
            for i, nxt in enumerate(nexts):
                if i:
                    todo.append(", ")
                todo.append(nxt)
            stack.extend(reversed(todo + ["]"]))
    return "".join(parts)


def second_order_of(expr: str, at: dict, dtype: str = "float64", no_grad=()):
    import gradviz
    from gradviz.higher import second_order
    from test_golden import at_values

    return second_order(gradviz.trace(expr, at=at_values(at), no_grad=list(no_grad), dtype=dtype))


def gradviz_double_graphs(expr: str, at: dict, dtype: str = "float64", no_grad=()) -> dict:
    """Input name -> gradviz's double-backward graph, for each input that requires grad."""
    so = second_order_of(expr, at, dtype, no_grad)

    def leaf(fn):
        return fn.variable.name if fn.variable is not None else None

    return {n: _graph_text(g.root, leaf) for n, g in so.graphs.items()}


def compare(expr: str, at: dict, no_grad=()) -> dict:
    """Input name -> (gradviz's graph, PyTorch's) for each input where they differ."""
    from oracle.torch_oracle import torch_double_graphs

    theirs = torch_double_graphs(expr, at, no_grad=no_grad)
    ours = gradviz_double_graphs(expr, at, no_grad=no_grad)
    return {n: (ours.get(n), theirs.get(n)) for n in set(ours) | set(theirs) if ours.get(n) != theirs.get(n)}


IDS = [f"{e}@{','.join(_used(e, at))}" + (f"-no_grad={','.join(ng)}" if ng else "") for e, at, ng in CASES]


@pytest.mark.parametrize("expr,at,no_grad", CASES, ids=IDS)
def test_double_backward_graph_is_pytorchs(expr, at, no_grad):
    pytest.importorskip("torch")
    diffs = compare(expr, _used(expr, at), no_grad)
    assert not diffs, "\n".join(f"∂/∂{n}:\n  gradviz {o}\n  PyTorch {t}" for n, (o, t) in diffs.items())


def main() -> int:
    differ = saved_differ = 0
    for expr, at, no_grad in CASES:
        at = _used(expr, at)
        try:
            diffs = compare(expr, at, no_grad)
        except Exception as exc:  # noqa: BLE001 - a report, not a test
            diffs = {"?": (f"{type(exc).__name__}: {exc}", "")}
        if diffs:
            differ += 1
            for n, (o, t) in diffs.items():
                print(f"DIFF {expr}  ∂/∂{n}\n  gradviz {o}\n  PyTorch {t}")
            continue
        saved = saved_differences(expr, at, no_grad)
        if saved:
            saved_differ += 1
            print(f"SAVED {expr}\n  " + "\n  ".join(saved))
    print(f"{len(CASES) - differ} of {len(CASES)} double-backward cases match PyTorch's graph ({differ} differ); "
          f"of those, {len(CASES) - differ - saved_differ} also in every saved value ({saved_differ} differ)")
    return 0



def _walk_as_the_oracle(root) -> list:
    """gradviz's functions in the order torch_oracle's _collect_dag lists PyTorch's (each function
    where it is first popped), so that node k is compared with node k."""
    order, seen, stack = [], set(), [root] if root is not None else []
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        order.append(fn)
        stack.extend(nxt for nxt in reversed(fn.next_functions) if nxt is not None and id(nxt) not in seen)
    return order


def saved_mismatches(root, nodes: list, label: str = "", rtol: float = 1e-6) -> list:
    """Where the functions reachable from ``root`` (a gradviz BackwardFunction) differ from the
    oracle's flat DAG ``nodes`` (torch_oracle's "nodes"): names in order, then saved names and values
    (sizes, dims and strides exactly; tensors and numbers within float64 rounding)."""
    from gradviz.render.jsondoc import saved_value
    from test_golden import assert_close

    mine = [f for f in _walk_as_the_oracle(root) if f.variable is None]
    theirs = [e for e in nodes if "variable" not in e]
    if [f.name for f in mine] != [e["name"] for e in theirs]:
        return [f"{label}nodes {[f.name for f in mine]} != {[e['name'] for e in theirs]}"]
    out = []
    for fn, node in zip(mine, theirs):
        expected = {k[len("_saved_"):]: v for k, v in node["saved"].items()}
        if sorted(fn.saved) != sorted(expected):
            out.append(f"{label}{fn.name} saves {sorted(fn.saved)}, PyTorch {sorted(expected)}")
            continue
        for key, value in expected.items():
            ours = saved_value(fn.saved[key])
            try:
                if value is None or isinstance(value, (bool, int)) or (isinstance(value, str) and value not in ("NaN", "Infinity", "-Infinity")) or (
                        isinstance(value, list) and all(isinstance(x, int) for x in value)) or (
                        isinstance(value, list) and any(x is None for x in value)):  # indices, None per dim kept
                    assert ours == value
                else:
                    assert_close(ours, value, key, rtol=rtol, atol=rtol * 1e-3)
            except AssertionError:
                out.append(f"{label}{fn.name}._saved_{key} = {ours}, PyTorch {value}")
    return out


def saved_differences(expr: str, at: dict, no_grad=()) -> list:
    """Where the saved values of gradviz's double-backward nodes differ from PyTorch's."""
    from oracle.torch_oracle import torch_double_nodes

    so = second_order_of(expr, at, "float64", no_grad)
    theirs = torch_double_nodes(expr, at, no_grad=no_grad)
    out = []
    for n in theirs:
        out += saved_mismatches(so.graphs[n].root, theirs[n], f"∂/∂{n}: ")
    return out


@pytest.mark.parametrize("expr,at,no_grad", CASES, ids=IDS)
def test_double_backward_saved_values_are_pytorchs(expr, at, no_grad):
    pytest.importorskip("torch")
    diffs = saved_differences(expr, _used(expr, at), no_grad)
    assert not diffs, "\n".join(diffs)


if __name__ == "__main__":
    sys.exit(main())


@functools.lru_cache(maxsize=1)
def _golden_double_cases():
    import json

    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch_golden.json")) as fh:
        return [c for c in json.load(fh)["cases"] if "double_graphs" in c["result"]]


@pytest.mark.parametrize("case", _golden_double_cases(), ids=lambda c: f"{c['expr']}@{c['at']}[{c['dtype']}]"
                         + (f"-no_grad={','.join(c['no_grad'])}" if c["no_grad"] else ""))
def test_recorded_double_backward_graphs(case):
    """The golden fixtures' double-backward graphs (recorded from PyTorch; no torch needed here)."""
    ours = gradviz_double_graphs(case["expr"], case["at"], case["dtype"], case["no_grad"])
    assert ours == case["result"]["double_graphs"]


@pytest.mark.parametrize("case", [c for c in _golden_double_cases() if "double_nodes" in c["result"]],
                         ids=lambda c: f"{c['expr']}@{c['at']}[{c['dtype']}]")
def test_recorded_double_backward_saved_values(case):
    """The saved values of the recorded double-backward nodes (the F. functions' fused nodes among
    them), without torch: float32 within float32 rounding."""
    so = second_order_of(case["expr"], case["at"], case["dtype"], case["no_grad"])
    rtol = 1e-5 if case["dtype"] == "float32" else 1e-6
    diffs = []
    for n, nodes in case["result"]["double_nodes"].items():
        diffs += saved_mismatches(so.graphs[n].root, nodes, f"∂/∂{n}: ", rtol=rtol)
    assert not diffs, "\n".join(diffs)


# --- random compositions of the F. functions, live against PyTorch ---------------------------------

def _functional_expressions():
    """Random vector expressions over x and y (3 elements each) made of the F. functions, closed by
    a reduction or a loss: a scalar whose double-backward graph holds their fused nodes."""
    from hypothesis import strategies as st

    unary = ["F.relu({})", "F.leaky_relu({}, 0.2)", "F.elu({})", "F.gelu({})", "F.gelu({}, approximate='tanh')",
             "F.silu({})", "F.softplus({})", "F.softplus({}, beta=2, threshold=1)", "F.sigmoid({})", "F.tanh({})",
             "F.softmax({}, 0)", "F.log_softmax({}, 0)", "F.normalize({}, dim=0)", "F.dropout({}, p=0.0)"]
    closing = ["{a}.sum()", "({a} * {b}).sum()", "F.mse_loss({a}, {b})", "F.l1_loss({a}, {b})",
               "F.smooth_l1_loss({a}, {b}, beta=0.5)", "F.huber_loss({a}, {b}, reduction='sum')",
               "torch.logsumexp({a}, 0)", "F.binary_cross_entropy_with_logits({a}, torch.sigmoid({b}))",
               "F.binary_cross_entropy(torch.sigmoid({a}), torch.sigmoid({b}), reduction='sum')",
               "F.cross_entropy({a}, torch.tensor(1))", "F.nll_loss(F.log_softmax({a}, 0), torch.tensor(2))",
               "F.mse_loss({a}, {b}, reduction='none').sum() * {b}.sum()"]

    def extend(children):
        fn = st.tuples(st.sampled_from(unary), children).map(lambda t: t[0].format(t[1]))
        op = st.tuples(children, st.sampled_from(["+", "-", "*"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        return st.one_of(fn, fn, op)

    vectors = st.recursive(st.sampled_from(["x", "y"]), extend, max_leaves=4)
    return st.tuples(st.sampled_from(closing), vectors, vectors).map(lambda t: t[0].format(a=t[1], b=t[2]))


def _random_functional_case(expr, values):
    from hypothesis import assume

    from oracle.torch_oracle import torch_double_graphs

    at = {"x": list(values[:3]), "y": list(values[3:])}
    at = {k: v for k, v in at.items() if k in expr}
    try:
        theirs = torch_double_graphs(expr, at)
    except RuntimeError:  # PyTorch refuses it (a loss of shapes it does not take): no case
        assume(False)
    return at, theirs


@pytest.mark.skipif(not __import__("importlib").util.find_spec("torch"), reason="needs torch")
def test_random_functional_double_graphs():
    """Random F. compositions: graphs node for node, saved values and the Hessian, against PyTorch."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from test_hessian import assert_hessians_match

    values = st.tuples(*[st.floats(0.1, 2.0).flatmap(lambda v: st.sampled_from([round(v, 3), -round(v, 3)]))
                         for _ in range(6)])

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(expr=_functional_expressions(), values=values)
    def check(expr, values):
        at, theirs = _random_functional_case(expr, values)
        ours = gradviz_double_graphs(expr, at)
        assert ours == theirs, expr
        assert not saved_differences(expr, at), expr
        assert_hessians_match(expr, at, "float64", 1e-7, 1e-9)

    check()
