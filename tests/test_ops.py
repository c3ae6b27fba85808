"""Generated from the op table: every row's gradient rule against central finite differences
(float64), and its human rule text (what ``--steps`` shows, numbers filled in) against the number
the rule computes.

Each row needs one sample below (inputs and params at a point where the function is smooth);
a row added to gradviz/ops.py without one fails ``test_every_row_has_a_sample``, so adding an
op is one row there and one sample here.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from gradviz.ops import INT64_MAX, OPS, ROWS, UNARY_FUNCTIONS, NumpyOps, saved_values
from gradviz.steps import fill_numbers, printed_text

R = np.random.default_rng(0)
V = np.array([0.3, -0.7, 1.1])
M = np.array([[0.4, -1.2, 0.8], [1.5, 0.2, -0.6]])
P = np.array([0.9, 1.3, 0.6])  # positive
U = np.array([0.2, -0.4, 0.5])  # inside (-1, 1)

# key -> (inputs by slot, params). Scalars (0-d) where the rule text can be checked with numbers.
SAMPLES = {
    "add": ({"self": 0.7, "other": -1.3}, {"alpha": 1}),
    "sub": ({"self": 0.7, "other": -1.3}, {"alpha": 1}),
    "rsub": ({"self": 0.7}, {"other": 2.0, "alpha": 1}),
    "mul": ({"self": 0.7, "other": -1.3}, {}),
    "div": ({"self": 0.7, "other": -1.3}, {}),
    "reciprocal": ({"self": 0.7}, {}),
    "neg": ({"self": 0.7}, {}),
    "pow": ({"self": 0.7}, {"exponent": 3}),
    "pow_tensor": ({"self": 0.7, "exponent": 1.6}, {}),
    "pow_scalar_base": ({"exponent": 0.7}, {"self": 2.5}),
    "sin": ({"self": 0.7}, {}),
    "cos": ({"self": 0.7}, {}),
    "tan": ({"self": 0.7}, {}),
    "exp": ({"self": 0.7}, {}),
    "log": ({"self": 0.7}, {}),
    "sqrt": ({"self": 0.7}, {}),
    "tanh": ({"self": 0.7}, {}),
    "sigmoid": ({"self": 0.7}, {}),
    "relu": ({"self": V}, {}),
    "abs": ({"self": -0.7}, {}),
    "sinh": ({"self": 0.7}, {}),
    "cosh": ({"self": 0.7}, {}),
    "asin": ({"self": 0.3}, {}),
    "acos": ({"self": 0.3}, {}),
    "atan": ({"self": 0.7}, {}),
    "log1p": ({"self": 0.7}, {}),
    "expm1": ({"self": 0.7}, {}),
    "exp2": ({"self": 0.7}, {}),
    "log2": ({"self": 0.7}, {}),
    "log10": ({"self": 0.7}, {}),
    "rsqrt": ({"self": 0.7}, {}),
    "erf": ({"self": 0.7}, {}),
    "maximum": ({"self": V, "other": U}, {}),
    "minimum": ({"self": V, "other": U}, {}),
    "clamp": ({"self": V}, {"min": -0.5, "max": 0.9}),
    "sum": ({"self": M}, {}),
    "sum_dim": ({"self": M}, {"dim": (1,), "keepdim": False}),
    "mean": ({"self": M}, {}),
    "mean_dim": ({"self": M}, {"dim": (0,), "keepdim": True}),
    "max": ({"self": V}, {}),
    "min": ({"self": V}, {}),
    "prod": ({"self": P}, {}),
    "softmax": ({"self": M}, {"dim": 1}),
    "norm": ({"self": V}, {}),
    "dot": ({"self": V, "tensor": P}, {}),
    "mv": ({"self": M, "vec": V}, {}),
    "mm": ({"self": M, "mat2": M.T.copy()}, {}),
    "permute": ({"self": M}, {"dims": (1, 0)}),
    "t": ({"self": M}, {}),
    "transpose": ({"self": M}, {"dim0": 0, "dim1": 1}),
    "view": ({"self": M}, {"shape": (3, 2)}),
    "reshape_alias": ({"self": M}, {"shape": (6,)}),
    "unsafe_view": ({"self": M}, {"shape": (3, 2)}),
    "clone": ({"self": M}, {}),
    "floor_divide": ({"self": V, "other": U}, {}),
    "unsqueeze": ({"self": V}, {"dim": 1}),
    "sgn": ({"self": V}, {}),
    "add_scalar": ({"self": 0.7}, {"other": 2.0, "alpha": 1}),
    "sub_scalar": ({"self": 0.7}, {"other": 2.0, "alpha": 1}),
    "mul_scalar": ({"self": 0.7}, {"other": 2.0}),
    "div_scalar": ({"self": 0.7}, {"other": 2.0}),
    "where": ({"self": V, "other": U}, {"condition": np.array([True, False, True])}),
    "expand": ({"self": np.array([[0.3], [-0.8]])}, {"size": (2, 3)}),
    "squeeze": ({"self": np.array([[0.3, -0.8, 1.2]])}, {"dim": 0}),
    # the fused backward functions of the double-backward graph (issue 15)
    "tanh_backward": ({"grad_output": V, "output": U}, {}),
    "sigmoid_backward": ({"grad_output": V, "output": U}, {}),
    "threshold_backward": ({"grad_output": V, "self": U}, {"threshold": 0}),
    "softmax_backward_data": ({"grad_output": M, "output": np.abs(M) / 3}, {"dim": 1}),
    "masked_fill": ({"self": V}, {"mask": np.array([True, False, True]), "value": 0}),
    "masked_fill_tensor": ({"self": V, "value": np.array(0.4)}, {"mask": np.array([True, False, True])}),
    "squeeze_dim": ({"self": np.array([[0.3, -0.8, 1.2]])}, {"dim": 0}),
    "cumprod": ({"self": np.array([0.9, 0.0, 1.3, -0.6])}, {"dim": 0}),
    "flip": ({"self": M}, {"dims": (0,)}),
    # --- indexing, joining, selection, batched matmul (issue 13)
    "select": ({"self": M}, {"dim": 1, "index": -1}),
    "slice": ({"self": M}, {"dim": 1, "start": 1, "end": INT64_MAX, "step": 1}),
    "alias": ({"self": V}, {}),
    "select_backward": ({"grad_output": V}, {"input_sizes": (2, 3), "dim": 0, "index": 1}),
    "slice_backward": ({"grad_output": M[:, :2].copy()}, {"input_sizes": (2, 3), "dim": 1, "start": 0,
                                                          "end": 2, "step": 1}),
    "cat": ({"tensors": [V, P, U[:2]]}, {"dim": 0, "axis": 0, "sizes": (3, 3, 2)}),
    "stack": ({"tensors": [V, P]}, {"dim": -1, "axis": 1, "count": 2}),
    "bmm": ({"self": np.stack([M, 2 * M]), "mat2": np.stack([M.T, M.T - 1])}, {}),
    "index": ({"self": M}, {"indices": (None, np.array([2, 0, 2]))}),
    "index_put_impl": ({"self": np.zeros((2, 3)), "values": M}, {"indices": (None, np.array([2, 0, 2])),
                                                                 "accumulate": True}),
    # --- torch.nn.functional, losses, more tensor functions (issue 13)
    "leaky_relu": ({"self": V}, {"negative_slope": 0.2}),
    "elu": ({"self": V}, {"alpha": 0.7, "scale": 1, "input_scale": 1}),
    "gelu": ({"self": V}, {"approximate": "none"}),
    "silu": ({"self": 0.7}, {}),
    "softplus": ({"self": V}, {"beta": 2, "threshold": 20}),
    "log_softmax": ({"self": M}, {"dim": 1}),
    "logsumexp": ({"self": M}, {"dim": (1,), "keepdim": False}),
    "mse_loss": ({"self": V, "target": U}, {"reduction": 1}),
    "smooth_l1_loss": ({"self": V, "target": U}, {"reduction": 2, "beta": 0.5}),
    "huber_loss": ({"self": V, "target": U}, {"reduction": 1, "delta": 0.5}),
    "binary_cross_entropy": ({"self": np.array([0.2, 0.6, 0.9]), "target": np.array([0.1, 0.5, 0.7])},
                             {"reduction": 1, "weight": None}),
    "binary_cross_entropy_with_logits": ({"self": V, "target": np.array([0.1, 0.5, 0.7])},
                                         {"reduction": 1, "weight": None, "pos_weight": np.array([1.0, 2.0, 3.0])}),
    "nll_loss": ({"self": M}, {"target": np.array([0, 2]), "weight": np.array([1.0, 2.0, 3.0]), "reduction": 1,
                               "ignore_index": -100}),
    "clamp_min": ({"self": V}, {"min": 0.1}),
    "clamp_max": ({"self": V}, {"max": 0.1}),
    "clamp_min_tensor": ({"self": V, "min": U}, {}),
    "clamp_max_tensor": ({"self": V, "max": U}, {}),
    "clamp_tensor": ({"self": np.array([0.3, -0.8, 1.7, -2.0]), "min": np.array([0.0, -1.0, 0.5, -1.0]),
                      "max": np.array([1.0, 0.0, 1.0, 0.5])}, {}),
    "norm_dim": ({"self": M}, {"ord": 2.0, "dim": (1,), "keepdim": False}),
    "addmm": ({"self": np.array([0.1, -0.2]), "mat1": M, "mat2": M.T.copy()}, {"beta": 1, "alpha": 1}),
    "squeeze_all": ({"self": np.array([[0.3], [-0.8]])}, {}),
    "squeeze_dims": ({"self": np.array([[[0.3], [-0.8]]])}, {"dim": (0, 2)}),
    "repeat": ({"self": V}, {"repeats": (2, 2)}),
    "var": ({"self": M}, {"dim": (1,), "correction": 1, "keepdim": False}),
    "std": ({"self": M}, {"dim": None, "correction": 0, "keepdim": False}),
    "amax": ({"self": M}, {"dim": (1,), "keepdim": False}),
    "amin": ({"self": M}, {"dim": (), "keepdim": False}),
    "max_dim": ({"self": M}, {"dim": 1, "keepdim": False, "which": "max"}),
    "min_dim": ({"self": M}, {"dim": 0, "keepdim": True, "which": "min"}),
    "atan2": ({"self": 0.7, "other": -1.3}, {}),
    "floor": ({"self": V}, {}),
    "ceil": ({"self": V}, {}),
    "round": ({"self": V}, {}),
    "round_decimals": ({"self": V}, {"decimals": 1}),
    "sign": ({"self": V}, {}),
    # --- the fused backward kernels of the F. functions (their double-backward nodes)
    "leaky_relu_backward": ({"grad_output": P, "self": V}, {"negative_slope": 0.2}),
    "elu_backward": ({"grad_output": P, "self_or_result": V},
                     {"alpha": 0.7, "scale": 1.5, "input_scale": 2.0, "is_result": False}),
    "gelu_backward": ({"grad_output": P, "self": V}, {"approximate": "none"}),
    "softplus_backward": ({"grad_output": P, "self": V}, {"beta": 2, "threshold": 1}),
    "log_softmax_backward_data": ({"grad_output": M, "output": -np.abs(M) - 0.5}, {"dim": 1}),
    "mse_loss_backward": ({"grad_output": np.array(0.8), "self": V, "target": U}, {"reduction": 1}),
    "smooth_l1_loss_backward": ({"grad_output": P, "self": V, "target": U}, {"reduction": 0, "beta": 0.5}),
    "huber_loss_backward": ({"grad_output": np.array(0.8), "self": V, "target": U}, {"reduction": 2, "delta": 0.5}),
    "binary_cross_entropy_backward": ({"grad_output": np.array(0.8), "self": np.array([0.2, 0.6, 0.9]),
                                       "target": np.array([0.1, 0.5, 0.7])},
                                      {"weight": np.array([1.0, 2.0, 0.5]), "reduction": 1}),
    "nll_loss_backward": ({"grad_output": np.array(0.8), "self": M},
                          {"target": np.array([0, 2]), "weight": np.array([1.0, 2.0, 3.0]), "reduction": 1,
                           "ignore_index": -100, "total_weight": np.array(4.0)}),
    "logit": ({"self": np.array([0.2, 0.6, 0.9])}, {"eps": None}),
    "log_sigmoid": ({"self": V}, {}),
}

#: rows whose function is piecewise constant: the rule gives 0 and so do finite differences
STEP_FUNCTIONS = {"sgn", "floor", "ceil", "round", "round_decimals", "sign"}
#: rows PyTorch has no derivative for (values only; the tracer refuses them with grad)
NO_DERIVATIVE = {"floor_divide"}


def test_a_row_without_a_derivative_says_so():
    with pytest.raises(NotImplementedError, match="floor_divide"):
        OPS["floor_divide"].vjp(NumpyOps, 1.0, {})


def test_every_row_has_a_sample():
    assert set(SAMPLES) == set(OPS), f"rows without a sample: {sorted(set(OPS) - set(SAMPLES))}"


def _arrays(inputs):
    """The sample's tensors by slot; a variadic row's list as slots ``tensors[0]``, ``tensors[1]``..."""
    out = {}
    for k, v in inputs.items():
        if isinstance(v, list):
            out.update({f"{k}[{j}]": np.asarray(x, dtype=np.float64) for j, x in enumerate(v)})
        else:
            out[k] = np.asarray(v, dtype=np.float64)
    return out


def _slots(op, args):
    return list(args) if op.variadic else list(op.inputs)


def _forward(op, args, params):
    with np.errstate(all="ignore"):
        return np.asarray(op.forward(*[args[s] for s in _slots(op, args)], **params), dtype=np.float64)


def _vjp(op, args, params, grad):
    result = _forward(op, args, params)
    context = saved_values(op, args, params, result)
    with np.errstate(all="ignore"):
        return [np.broadcast_to(np.asarray(g, dtype=np.float64), np.shape(args[s])) if np.ndim(g) == 0 else
                np.asarray(g, dtype=np.float64) for s, g in zip(_slots(op, args), op.vjp(NumpyOps, grad, context))]


@pytest.mark.parametrize("key", [row.key for row in ROWS if row.key not in NO_DERIVATIVE])
def test_gradient_rule_matches_finite_differences(key):
    op = OPS[key]
    inputs, params = SAMPLES[key]
    args = _arrays(inputs)
    out = _forward(op, args, params)
    grad = R.uniform(0.5, 1.5, size=out.shape)
    rule = _vjp(op, args, params, grad)
    eps = 1e-6
    for slot, computed in zip(_slots(op, args), rule):
        x = args[slot]
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            up, down = dict(args), dict(args)
            up[slot], down[slot] = x.copy(), x.copy()
            up[slot][idx] += eps
            down[slot][idx] -= eps
            numeric[idx] = np.sum(grad * (_forward(op, up, params) - _forward(op, down, params))) / (2 * eps)
        if computed.shape != x.shape and len(computed.shape) >= len(x.shape):
            computed = NumpyOps.sum_to(computed, x.shape)  # what the engine does (addmm's bias)
        assert computed.shape == x.shape, f"{key}: the rule's gradient for {slot} has shape {computed.shape}"
        np.testing.assert_allclose(computed, numeric, rtol=1e-5, atol=1e-7,
                                   err_msg=f"{key} ({op.torch_name}): d/d{slot}")


# The rule text with numbers filled in, read as arithmetic (sympy, on our own formulas only).
_READABLE = [(r"·", "*"), (r"²", "**2"), (r"³", "**3"), (r"π", "pi"), (r"\bln\(", "log("),
             (r"\bsgn\(", "sign(")]


def _read_formula(text: str):
    sympy = pytest.importorskip("sympy")
    for pattern, repl in _READABLE:
        text = re.sub(pattern, repl, text)
    try:
        return float(sympy.sympify(text, locals={"pi": sympy.pi, "sign": sympy.sign,
                                                 "sigmoid": lambda v: 1 / (1 + sympy.exp(-v))}))
    except (sympy.SympifyError, TypeError, SyntaxError):
        return None


SCALAR_ROWS = [key for key, (inputs, _) in SAMPLES.items() if key not in NO_DERIVATIVE and
               all(not isinstance(v, list) and np.ndim(v) == 0 for v in inputs.values())]


@pytest.mark.parametrize("key", SCALAR_ROWS)
def test_rule_text_gives_the_rules_numbers(key):
    op = OPS[key]
    inputs, params = SAMPLES[key]
    args = _arrays(inputs)
    result = _forward(op, args, params)
    context = saved_values(op, args, params, result)
    grad = np.float64(1.25)
    rule = _vjp(op, args, params, grad)
    for slot, formula, computed in zip(op.inputs, op.rules, rule):
        filled = fill_numbers(formula, context, grad)
        assert filled is not None, f"{key}: no numbers filled into {formula!r}"
        value = _read_formula(filled)
        assert value is not None, f"{key}: the filled rule {filled!r} does not read as arithmetic"
        assert math.isclose(value, float(computed), rel_tol=1e-4, abs_tol=1e-6), (
            f"{key} ({op.torch_name}): {formula} = {filled} = {value}, but the rule computes {float(computed)}")
        # as the views print it (tensors as PyTorch prints them: 1.2500, 2.): the same arithmetic
        shown = _read_formula(fill_numbers(formula, context, grad, printed_text))
        assert shown is not None and math.isclose(shown, value, rel_tol=1e-3, abs_tol=1e-3), (key, formula)


def test_most_scalar_rules_are_checked():
    assert len(SCALAR_ROWS) >= 35, SCALAR_ROWS


# --symbolic reads each row's SymPy form (Op.sympy): a unary function row needs one, and every form
# must be the row's function: its value and its derivatives are the forward's and the rule's.
def test_every_unary_function_row_has_a_sympy_form():
    missing = sorted(key for key, row in UNARY_FUNCTIONS.items() if row.sympy is None)
    assert not missing, f"unary function rows without a SymPy form (Op.sympy): {missing}"


SYMPY_ROWS = [key for key in SCALAR_ROWS if OPS[key].sympy is not None and not SAMPLES[key][1]]


def test_most_rows_forms_are_checked():
    assert len(SYMPY_ROWS) >= 25, SYMPY_ROWS


@pytest.mark.parametrize("key", SYMPY_ROWS)
def test_sympy_form_is_the_rows_function_and_its_rule(key):
    sp = pytest.importorskip("sympy")
    op = OPS[key]
    inputs, params = SAMPLES[key]
    args = _arrays(inputs)
    symbols = [sp.Symbol(slot, real=True) for slot in op.inputs]
    point = {s: sp.Float(float(args[slot]), 30) for s, slot in zip(symbols, op.inputs)}
    form = op.sympy(sp, *symbols)
    assert math.isclose(float(form.subs(point)), float(_forward(op, args, params)), rel_tol=1e-12, abs_tol=1e-12), key
    rule = _vjp(op, args, params, np.float64(1.0))
    for s, slot, computed in zip(symbols, op.inputs, rule):
        derivative = float(sp.diff(form, s).subs(point))
        assert math.isclose(derivative, float(computed), rel_tol=1e-9, abs_tol=1e-12), (
            f"{key} ({op.torch_name}): d/d{slot} of {form} is {derivative}, the rule computes {float(computed)}")
