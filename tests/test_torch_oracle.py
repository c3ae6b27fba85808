"""Random expressions compared with real PyTorch, live (skipped when torch is not importable).

Hypothesis builds expression trees from the supported operators and functions over
inputs that may or may not require grad, with Python numbers mixed in; gradviz and
PyTorch must agree on the value, every grad, the backward graph (class names and
next_functions order), every node's saved values (sizes, dims and strides exactly), the
output's strides, the order the engine executes it, and the double-backward graph
(``torch.autograd.grad(..., create_graph=True)``) node for node with its saved values.
"""

import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gradviz  # noqa: E402
from gradviz.render.jsondoc import array  # noqa: E402
from oracle.torch_oracle import torch_trace  # noqa: E402
from test_double_graph import gradviz_double_graphs, saved_mismatches  # noqa: E402
from test_golden import assert_close, graph_str  # noqa: E402

NAMES = ["x", "y", "z"]
SAFE_UNARY = ["sin", "cos", "tanh", "sigmoid", "atan", "abs", "relu", "exp", "sinh", "erf", "expm1"]
POSITIVE_UNARY = ["log", "sqrt", "log1p", "log2", "log10", "rsqrt"]  # applied to exp(...) / abs(...)+1
NUMBERS = ["2", "0.5", "3", "1.5", "1", "2.5"]


def _leaf():
    return st.one_of(st.sampled_from(NAMES), st.sampled_from(NUMBERS))


def _extend(children):
    binop = st.tuples(children, st.sampled_from(["+", "-", "*"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    div = st.tuples(children, children).map(lambda t: f"({t[0]} / (abs({t[1]}) + 1))") 
    power = st.tuples(children, st.sampled_from(["2", "3", "0.5"])).map(lambda t: f"(abs({t[0]}) ** {t[1]})")
    tpow = st.tuples(children, children).map(lambda t: f"((abs({t[0]}) + 1) ** sin({t[1]}))")
    spow = children.map(lambda c: f"(2 ** tanh({c}))")
    unary = st.tuples(st.sampled_from(SAFE_UNARY), children).map(
        lambda t: f"{t[0]}(tanh({t[1]}))" if t[0] in ("exp", "sinh", "expm1") else f"{t[0]}({t[1]})")
    positive = st.tuples(st.sampled_from(POSITIVE_UNARY), children).map(lambda t: f"{t[0]}(abs({t[1]}) + 1)")
    neg = children.map(lambda c: f"-{c}")
    method = st.tuples(children, st.sampled_from(["sin", "cos", "tanh", "sigmoid"])).map(lambda t: f"({t[0]}).{t[1]}()")
    rsub = children.map(lambda c: f"(1 - {c})")
    rdiv = children.map(lambda c: f"(2 / (abs({c}) + 1))")
    return st.one_of(binop, div, power, tpow, spow, unary, positive, neg, method, rsub, rdiv)


EXPRESSIONS = st.recursive(_leaf(), _extend, max_leaves=12)
VALUES = st.floats(min_value=-3, max_value=3, allow_nan=False).map(lambda v: round(v, 3))


def _compare(expr, at, no_grad, dtype):
    from test_golden import at_values  # {"int64": [...]}: an int64 tensor

    theirs = torch_trace(expr, at, no_grad=no_grad, dtype=dtype)
    if theirs.get("error"):
        # PyTorch refuses it (e.g. torch.tanh(2) on a Python number): gradviz gives a clear error
        with pytest.raises(gradviz.GradvizError):
            gradviz.trace(expr, at=at_values(at), no_grad=no_grad, dtype=dtype)
        return
    ours = gradviz.trace(expr, at=at_values(at), no_grad=no_grad, dtype=dtype)
    rtol, atol = (1e-9, 1e-12) if dtype == "float64" else (2e-4, 1e-5)
    assert_close(array(ours.value), theirs["value"], f"value of {expr}", rtol=rtol, atol=atol)
    assert (ours.output.grad_fn.name if ours.output.grad_fn else None) == theirs["grad_fn"]
    if theirs.get("graph_str"):
        assert graph_str(ours.graph.root) == theirs["graph_str"]
        assert not saved_mismatches(ours.graph.root, theirs["nodes"]), f"saved values of {expr}"
    if theirs.get("strides") is not None:
        assert list(ours.graph.strides_of(ours.graph.output_index)) == theirs["strides"], f"strides of {expr}"
    if theirs.get("backward"):
        for name, g in theirs["grads"].items():
            if g is None:
                assert ours.grads[name] is None
            else:
                assert_close(array(ours.grads[name]), g, f"grad {name} of {expr}", rtol=rtol * 10, atol=atol * 10)
        order = [s.function.name if s.function.variable is None else f"AccumulateGrad({s.function.variable.name})"
                 for s in ours.steps]
        if ours.output.grad_fn is not None:  # hooks see nothing when the output is a leaf
            assert order == theirs["exec_order"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES),
       no_grad=st.sets(st.sampled_from(NAMES), max_size=2), dtype=st.sampled_from(["float32", "float64"]))
def test_random_expressions_match_pytorch(expr, values, no_grad, dtype):
    at = dict(zip(NAMES, values))
    _compare(expr, at, sorted(no_grad), dtype)


@pytest.mark.parametrize("expr,at", [
    ("x**2", {"x": 2.0}),
    ("x**2 + 2*x + 1", {"x": 2.0}),
    ("u*v + u**2", {"u": 1.0, "v": 2.0}),
])
def test_lecture_examples_live(expr, at):
    _compare(expr, at, [], "float32")


TENSOR_EXPRS = [
    "(v * M).sum()", "(A + B).sum()", "(v @ v)", "(M @ v).sum()", "(M @ M.T).sum()", "(v @ M.T).sum()",
    "mean(sigmoid(M @ v + b))", "M.sum(0).sum()", "M.mean(1).sum()", "(M.T.reshape(6) * v2).sum()",
    "torch.maximum(v, 2*v).sum()", "torch.clamp(M, -1, 2).sum()", "softmax(v, 0).max()", "v.norm()",
    "v.prod()", "(M.sum(1, keepdim=True) * M).sum()", "(M.t() @ M).sum()", "M.transpose(0, 1).sum()",
]


@pytest.mark.parametrize("expr", TENSOR_EXPRS)
@given(data=st.data())
@settings(max_examples=15, deadline=None)
def test_tensor_expressions_match_pytorch(expr, data):
    def arr(shape):
        n = int(np.prod(shape))
        flat = data.draw(st.lists(VALUES, min_size=n, max_size=n))
        return np.array(flat, dtype=np.float64).reshape(shape).tolist()
    at = {"v": arr((3,)), "M": arr((2, 3)), "A": arr((2, 1)), "B": arr((1, 3)), "b": arr((2,)), "v2": arr((6,))}
    used = {k: v for k, v in at.items() if k in expr.replace("v2", "V2") or (k == "v2" and "v2" in expr)}
    _compare(expr, used, [], "float64")


def test_math_constants():
    _compare("x * pi + e", {"x": 1.0}, [], "float64")
    assert math.isclose(float(gradviz.trace("pi", at={}).value), math.pi, rel_tol=1e-6)


def _compare_double(expr, at):
    """The double-backward graph of every input, and each node's saved values, as PyTorch's."""
    from oracle.torch_oracle import torch_double_graphs, torch_double_nodes

    import gradviz.higher as higher

    try:
        graphs = torch_double_graphs(expr, at)
    except Exception:  # noqa: BLE001 - PyTorch refuses it (tanh(2), (2).sin()), or nothing needs grad
        with pytest.raises(gradviz.GradvizError):
            higher.second_order(gradviz.trace(expr, at=at, dtype="float64"))
        return
    assert gradviz_double_graphs(expr, at) == graphs, f"double-backward graph of {expr}"
    nodes = torch_double_nodes(expr, at)
    so = higher.second_order(gradviz.trace(expr, at=at, dtype="float64"))
    for name in at:
        assert not saved_mismatches(so.graphs[name].root, nodes[name], f"∂/∂{name}: "), f"saved values of {expr}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=EXPRESSIONS, values=st.tuples(VALUES, VALUES, VALUES))
def test_random_double_backward_graphs_match_pytorch(expr, values):
    at = {n: v for n, v in zip(NAMES, values) if n in set(re.findall(r"[A-Za-z_]\w*", expr))}
    assume(at)
    _compare_double(expr, at)


DOUBLE_TENSOR_EXPRS = [
    "(v * M).sum()", "(M @ v).sum() ** 2", "(M @ M.T).sum()", "sum(sin(v2 @ M))", "mean(sigmoid(M @ v + b))",
    "M.mean(1).sum() ** 2", "(M.sum(1, keepdim=True) * M).sum()", "softmax(v, 0).max()", "v.norm()", "v.prod()",
    "(tanh(M) * relu(M)).sum()", "torch.maximum(v, 2*v).sum() * v.sum()", "(M.T.reshape(6) ** 2).sum()",
]


@pytest.mark.parametrize("expr", DOUBLE_TENSOR_EXPRS)
@given(data=st.data())
@settings(max_examples=6, deadline=None)
def test_tensor_double_backward_graphs_match_pytorch(expr, data):
    def arr(shape):
        n = int(np.prod(shape))
        flat = data.draw(st.lists(VALUES, min_size=n, max_size=n, unique=True))
        return np.array(flat, dtype=np.float64).reshape(shape).tolist()
    at = {"v": arr((3,)), "M": arr((2, 3)), "b": arr((2,)), "v2": arr((2,))}
    used = {k: x for k, x in at.items() if k in set(re.findall(r"[A-Za-z_]\w*", expr))}
    _compare_double(expr, used)


# Memory layout (issue 15, item 3): random chains of views, copies, elementwise ops, reductions and
# products; the graph (ViewBackward0 / ReshapeAliasBackward0 / CloneBackward0 + UnsafeViewBackward0,
# or PyTorch's refusal of a view), the saved strides and the output's strides must be PyTorch's.
LAYOUT_LEAVES = {"M": [[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]], "K": [[1.0, -0.5], [2.0, 0.25], [-1.0, 3.0]],
                 "C": [[1.5], [-2.0], [0.5]], "v": [0.5, -1.2, 2.0]}


def _layout_extend(children):
    one = st.tuples(children, st.sampled_from([
        "{}.t()", "{}.transpose(0, -1)", "{}.unsqueeze(0)", "{}.unsqueeze(-1)", "{}.contiguous()",
        "{}.reshape(-1)", "{}.view(-1)", "{}.reshape(3, 2)", "{}.view(3, 2)", "{}.reshape(2, 3)", "{}.view(2, 3)",
        "sin({})", "({} * 2)", "(1 - {})", "softmax({}, 0)", "{}.sum(0, keepdim=True)", "{}.mean(-1)",
        "{}.flatten()", "relu({})",
    ])).map(lambda t: t[1].format(t[0]))
    two = st.tuples(children, st.sampled_from(["+", "*", "@"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    return st.one_of(one, two)


LAYOUT_EXPRESSIONS = st.recursive(st.sampled_from(["M", "K", "C", "v", "M.T", "K.T", "C.T"]), _layout_extend,
                                  max_leaves=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=LAYOUT_EXPRESSIONS)
def test_random_layouts_match_pytorch(expr):
    used = {k: v for k, v in LAYOUT_LEAVES.items() if k in set(re.findall(r"[A-Za-z_]\w*", expr))}
    try:
        gradviz.trace(expr, at=used, dtype="float64")
    except gradviz.GradvizError as exc:
        assume("not supported" not in str(exc))  # outside the language (a 3-D matmul): not a layout question
    _compare(expr, used, [], "float64")


# --- issue 13: indexing and slicing, comparisons and torch.where, torch.cat/stack, torch.tensor
# constants, batched matmul. Random expressions over vectors of 4 (v, w require grad, c does not);
# every construct keeps the shape (4,), and the top takes a scalar out of it.
VECTORS = ["v", "w", "c"]


def _vector_leaf():  # t: an int64 input (type promotion with the float vectors and numbers)
    return st.sampled_from(VECTORS + ["torch.tensor([0.5, -1., 2., 0.])", "torch.tensor([1, 0, 2, 3])", "t"])


def _vector_extend(children):
    pair = st.tuples(children, children)
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["sin", "tanh", "sigmoid", "abs"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), children).map(
            lambda t: f"torch.where({t[0]} {t[1]} {t[2]}, {t[0]}, {t[2]})"),
        st.tuples(children, st.sampled_from(["0", "0.5", "-1"]), children).map(
            lambda t: f"torch.where({t[0]} > {t[1]}, {t[2]}, {t[1]}.)".replace("..", ".")),
        pair.map(lambda t: f"({t[0]} * ({t[1]} > 0))"),
        st.tuples(children, children, st.integers(0, 4)).map(lambda t: f"torch.cat([{t[0]}[:{t[2]}], {t[1]}[{t[2]}:]])"),
        st.tuples(children, children, st.integers(0, 1)).map(lambda t: f"torch.stack([{t[0]}, {t[1]}])[{t[2]}]"),
        st.tuples(children, children, st.integers(0, 1)).map(lambda t: f"torch.stack([{t[0]}, {t[1]}], 1)[:, {t[2]}]"),
        pair.map(lambda t: f"torch.cat([{t[0]}, {t[1]}])[::2]"),
        children.map(lambda c: f"{c}[None][0]"),
        children.map(lambda c: f"{c}[...]"),
        children.map(lambda c: f"torch.cat([{c}[-1:], {c}[:-1]])"),
        # the last of issue 13: a tuple index, tensor indices, tensor clamp bounds, int64 arithmetic
        children.map(lambda c: f"{c}[:,]"),
        children.map(lambda c: f"{c}[torch.tensor([3, 0, 0, 2])]"),
        st.tuples(children, children).map(lambda t: f"torch.clamp({t[0]}, {t[1]} - 1, {t[1]})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}.clamp(min={t[1]})"),
        st.tuples(children, st.sampled_from(["2", "0.5", "t", "(t > 0)", "True"]), st.sampled_from(["*", "+", "/"])).map(
            lambda t: f"({t[0]} {t[2]} {t[1]})"),
        children.map(lambda c: f"(t ** 2 * {c})"),
    )


VECTOR_EXPRESSIONS = st.tuples(
    st.recursive(_vector_leaf(), _vector_extend, max_leaves=6),
    st.sampled_from(["{}.sum()", "{}[0]", "{}[-1] * {}[1]", "({} ** 2).sum()", "{}[1:3].prod()", "{}"]),
).map(lambda t: t[1].replace("{}", f"({t[0]})"))
#: values with ties (where's and the comparisons' edges) more often than chance
TIED = st.sampled_from([0.0, 0.5, -1.0, 1.0, 2.0]) | VALUES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=VECTOR_EXPRESSIONS, data=st.data(), dtype=st.sampled_from(["float32", "float64"]))
def test_random_indexing_and_selection_match_pytorch(expr, data, dtype):
    at = {n: data.draw(st.lists(TIED, min_size=4, max_size=4)) for n in VECTORS}
    at["t"] = {"int64": data.draw(st.lists(st.integers(-2, 2), min_size=4, max_size=4))}
    used = {k: x for k, x in at.items() if k in set(re.findall(r"[A-Za-z_]\w*", expr))}
    if "torch.tensor(" in expr or "t" in used:  # a float32 or int64 constant: sin of it is float32 arithmetic (numpy's and
        dtype = "float32"        # PyTorch's float32 sin may differ by an ulp), whatever the run's dtype
    theirs = torch_trace(expr, used, no_grad=["c"] if "c" in used else [], dtype=dtype, grad_output="ones")
    if theirs.get("error") is None and theirs.get("grad_fn") is None and theirs.get("shape"):
        assume(False)  # a non-scalar output without grad: nothing to compare beyond the value
    _compare(expr, used, ["c"] if "c" in used else [], dtype)


BATCHED_EXPRS = ["(A @ B).sum()", "((A @ W) ** 2).sum()", "(u @ A).sum()", "(X @ A).pow(2).sum()", "(C @ B).sum()",
                 "(A @ w).sum()", "(A.transpose(0, 1) @ W).sum()", "torch.where(A @ B > 0, A @ B, 0.).sum()",
                 "(A[:, 1:] @ B[..., :2]).sum()", "torch.cat([A, C], 0).sum(1).prod()", "(A @ B)[1, 2, 3]",
                 "torch.bmm(A, B).sum()", "(A.bmm(H.transpose(1, 2)) ** 2).sum()"]


@pytest.mark.parametrize("expr", BATCHED_EXPRS)
@given(data=st.data())
@settings(max_examples=6, deadline=None)
def test_batched_matmul_matches_pytorch(expr, data):
    from oracle.record_golden import BATCHED_SHAPES

    names = [n for n in BATCHED_SHAPES if n in set(re.findall(r"[A-Za-z_]\w*", expr))]
    at = {}
    for n in names:
        size = int(np.prod(BATCHED_SHAPES[n]))
        flat = data.draw(st.lists(VALUES, min_size=size, max_size=size))
        at[n] = np.array(flat, dtype=np.float64).reshape(BATCHED_SHAPES[n]).tolist()
    no_grad = data.draw(st.sets(st.sampled_from(names), max_size=1))
    # float64: in float32 numpy's and PyTorch's matrix products may round their sums differently
    _compare(expr, at, sorted(no_grad), "float64")


# --- torch.nn.functional, losses, more tensor functions (issue 13) ----------------------------------
# Random chains of activations and elementwise functions over vectors, ending in a loss or a
# reduction, with inputs that may not require grad: value, grads, graph and execution order.
FN_INNER = ["F.relu({})", "F.leaky_relu({}, 0.2)", "F.elu({}, alpha=0.5)", "F.gelu({})", "F.gelu({}, approximate='tanh')",
            "F.silu({})", "F.softplus({}, beta=2)", "F.sigmoid({})", "F.tanh({})", "{}.clamp_min(0.1)",
            "torch.clamp_max({}, 0.5)", "torch.atan2({}, y * y + 1)", "({} * {}.round())", "({} + {}.sign())",
            "F.normalize({}, dim=0)", "F.log_softmax({}, dim=0)", "{}.repeat(2)[:4]", "({} * y)", "({} - y)",
            "F.normalize({}, p=0.5, dim=0)", "torch.clamp({}, y - 1, y)",
            "{}.clamp(max=y)", "{}[:,]", "{}[torch.tensor([1, 1, 3, 0])]"]
FN_OUTER = ["{}.sum()", "F.mse_loss({}, y)", "F.l1_loss({}, y, reduction='sum')", "F.smooth_l1_loss({}, y, beta=0.5)",
            "F.huber_loss({}, y, delta=0.5)", "F.binary_cross_entropy_with_logits({}, q)",
            "F.binary_cross_entropy(torch.sigmoid({}), q, reduction='sum')", "torch.logsumexp({}, 0)", "{}.var()",
            "{}.std(correction=0)", "{}.amax()", "F.cross_entropy({}.reshape(2, 2), t)",
            "F.nll_loss(F.log_softmax({}.reshape(2, 2), dim=1), t, reduction='sum')", "{}.reshape(2, 2).max(1).values.sum()",
            "F.linear({}, W, b).sum()", "torch.outer({}, y).amin(1).sum()",
            "F.cross_entropy({}.reshape(2, 2), t, label_smoothing=0.1)",
            "F.cross_entropy({}.reshape(2, 2), t, label_smoothing=0.3, reduction='sum')",
            "F.cross_entropy({}.reshape(2, 2), torch.softmax(y.reshape(2, 2), 1), label_smoothing=0.2)",
            "F.cross_entropy({}.reshape(2, 2), t, label_smoothing=0.2, ignore_index=1)"]


def _functional_expression(inner: list, outer: str, base: str) -> str:
    expr = base
    for f in inner:
        expr = f.format(expr, expr) if f.count("{}") == 2 else f.format(expr)
    return outer.format(expr)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inner=st.lists(st.sampled_from(FN_INNER), max_size=3), outer=st.sampled_from(FN_OUTER),
       base=st.sampled_from(["x", "(x * y)", "(x + 1)"]), data=st.data(),
       no_grad=st.sets(st.sampled_from(["x", "y"]), max_size=1), dtype=st.sampled_from(["float32", "float64"]))
def test_random_functional_expressions_match_pytorch(inner, outer, base, data, no_grad, dtype):
    vec = st.lists(VALUES, min_size=4, max_size=4)
    at = {"x": data.draw(vec), "y": data.draw(vec),
          "q": data.draw(st.lists(st.floats(0, 1).map(lambda v: round(v, 3)), min_size=4, max_size=4)),
          "t": {"int64": data.draw(st.lists(st.integers(0, 1), min_size=2, max_size=2))},
          "W": [data.draw(vec) for _ in range(2)], "b": data.draw(st.lists(VALUES, min_size=2, max_size=2))}
    expr = _functional_expression(inner, outer, base)
    names = set(re.findall(r"[A-Za-z_]\w*", expr))
    at = {k: v for k, v in at.items() if k in names}
    _compare_functional(expr, at, sorted(n for n in no_grad if n in at) + [n for n in ("q", "W", "b") if n in at],
                        dtype)


def _compare_functional(expr, at, no_grad, dtype):
    from test_golden import at_values

    theirs = torch_trace(expr, at, no_grad=no_grad, dtype=dtype)
    if theirs.get("error"):
        with pytest.raises(gradviz.GradvizError):
            gradviz.trace(expr, at=at_values(at), no_grad=no_grad, dtype=dtype)
        return
    ours = gradviz.trace(expr, at=at_values(at), no_grad=no_grad, dtype=dtype)
    rtol, atol = (1e-7, 1e-10) if dtype == "float64" else (2e-4, 1e-5)
    assert_close(array(ours.value), theirs["value"], f"value of {expr}", rtol=rtol, atol=atol)
    if theirs.get("graph_str"):
        assert graph_str(ours.graph.root) == theirs["graph_str"], expr
    if theirs.get("backward"):
        for name, g in theirs["grads"].items():
            if g is None:
                assert ours.grads[name] is None, f"grad {name} of {expr}"
            else:
                assert_close(array(ours.grads[name]), g, f"grad {name} of {expr}", rtol=rtol * 10, atol=atol * 10)
        order = [s.function.name if s.function.variable is None else f"AccumulateGrad({s.function.variable.name})"
                 for s in ours.steps]
        if ours.output.grad_fn is not None:
            assert order == theirs["exec_order"], expr
