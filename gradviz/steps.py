"""The backward pass step by step (``--steps``) as data: what each backward function received,
the rule it applied with the numbers filled in, and what it sent on.

:func:`describe` reads ``trace.steps`` (the engine's record, in PyTorch's execution
order) into :class:`StepView` objects; :func:`steps_json` writes those as the JSON
``"steps"`` list, :func:`steps_printed` as the page's printed numbers, and
:func:`gradviz.render.steps.steps_view` draws them. Gradients that arrive at a function
from several edges are added in its input buffer before it runs (PyTorch's InputBuffer), so
a leaf used twice shows ``2. + 2. = 4.``. Nothing is recomputed: the rules' values are the
engine's.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

from .graph import TensorValue
from .ops import np
from .numbers import format_math, format_saved, format_tensor, get_printoptions

__all__ = ["StepView", "RuleView", "describe", "steps_json", "steps_printed", "fill_numbers", "printed_text",
           "printed_grad"]

#: formulas get numbers filled in only when every value they read has this few elements
_SUBSTITUTE_MAX = 1
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass
class RuleView:
    """One input's gradient rule: ``grad_<input> = formula = numbers = value``."""

    input: str
    formula: str
    #: the formula with the values filled in as a formula writes them (``1·2``; None for tensors):
    #: the JSON's ``numbers``, a contract that stays as it is
    numbers: str | None
    value: object  # what the rule computed
    sent: object  # what was sent (the value summed back to the input's shape)
    #: the same with the values as PyTorch prints them (``1.·2``: a tensor's ``1.``, a Python number's
    #: ``2``), for the views
    shown: str | None = None


@dataclass
class StepView:
    """One executed backward function, ready to render."""

    index: int  # 1-based, in execution order
    function: object  # the BackwardFunction
    grad_in: object
    #: (sending function or None for the starting gradient, gradient), in the order they arrived
    received: list = field(default_factory=list)
    rules: list = field(default_factory=list)  # RuleView per input that needs grad
    grads_out: list = field(default_factory=list)  # per next_functions entry (None where None)
    before: object = None  # AccumulateGrad: the leaf's .grad before and after
    after: object = None


def describe(trace, limit: int | None = None, shown: bool = False) -> list[StepView]:
    """The backward pass of ``trace`` as :class:`StepView` objects, in execution order (the first ``limit``);
    ``shown`` also writes each rule with its numbers as the views print them (:attr:`RuleView.shown`).

    A 0-d gradient stays as the engine recorded it, the tape's Python float (the dtype's exact
    value): its text is the same as the 0-d array's, and a number expression's steps need no numpy."""
    arrived: dict = {}
    root = trace.graph.root
    views = []
    steps = trace.steps if limit is None else trace.steps[:limit]
    for i, step in enumerate(steps, 1):
        fn = step.function
        grad_in, sent = step.grad_in, list(step.grads_out)
        received = arrived.pop(id(fn), None)
        if received is None:
            received = [(None, grad_in)] if fn is root else []
        view = StepView(i, fn, grad_in, received, grads_out=sent, before=step.before, after=step.after)
        if fn.op is not None:
            view.rules = _rules(fn, grad_in, list(step.computed), sent, shown)
        for nxt, g in zip(fn.next_functions, sent):
            if nxt is not None and g is not None:
                arrived.setdefault(id(nxt), []).append((fn, g))
        views.append(view)
    return views


def _rules(fn, grad_in, computed, grads_out, shown_too: bool = False) -> list[RuleView]:
    op = fn.op
    if op.key == "imported":  # read from PyTorch: the rule of gradviz's row of that name, if any,
        op = op.row  # with the gradients PyTorch computed (measured, not recomputed)
        if op is None:
            return []
        computed = grads_out
    needed = [nxt is not None for nxt in fn.next_functions]
    out = []
    slots, rules = op.inputs, op.rules
    if op.variadic:  # torch.cat / torch.stack: one rule for every tensor of the list
        slots = [f"{op.inputs[0]}[{k}]" for k in range(len(needed))]
        rules = rules * len(needed)
    context = _context(fn)
    shown = _as_printed(fn, context) if shown_too else None
    for slot, formula, need, value, sent in zip(slots, rules, needed, computed, grads_out):
        if not need:
            continue
        numbers = fill_numbers(formula, context, grad_in, _number_text)
        view = fill_numbers(formula, shown, _tensor(grad_in), printed_text) if numbers is not None and shown_too else None
        out.append(RuleView(slot, formula, numbers, value, sent, view))
    return out


def _context(fn) -> dict:
    """What the rule read, with 0-d tensor values as the tape's floats (unless a caller set it)."""
    override = fn.graph.context_override(fn.index)
    return override if override is not None else fn.graph.context(fn.index, floats=True)


def _small(v) -> bool:
    if v is None or isinstance(v, (bool, int, float, tuple, list, str)):
        return True
    return np.size(v) <= _SUBSTITUTE_MAX


def _as_printed(fn, context: dict) -> dict:
    """``context`` with each 0-d tensor's value marked (a :class:`TensorValue`, printed ``2.``) apart
    from the Python numbers the rule reads (an exponent, alpha, the ``2`` of ``2*x``: printed ``2``)."""
    g, i = fn.graph, fn.index
    op = g.op[i]
    plan = getattr(op, "plan", None)
    if plan is None or g.context_override(i) is not None:  # imported (marked already) or Tensors
        return context
    marked = dict(context)
    operands = g.operands(i)
    for name, source, arg, _ in plan:
        v = marked.get(name)
        if type(v) is not float:
            continue
        if source == "result" or (source == "input" and operands[arg] >= 0):
            marked[name] = TensorValue(v)
        elif source == "input":  # a Python number in a tensor slot: shown as given
            marked[name] = g.consts[(i, arg)]
    return marked


def _tensor(v):
    """A gradient: a tensor (a 0-d one's value as the tape's float, marked)."""
    return TensorValue(v) if type(v) is float else v


def fill_numbers(formula: str, context: dict, grad, number_text=None) -> str | None:
    """``grad·other`` → ``1·2`` (each value written by ``number_text``); None when a value read is a
    tensor of several elements."""
    number_text = number_text or _number_text
    parts, alone = _formula_parts(formula)
    names = [p for p in parts[1::2] if p == "grad" or p in context]
    if not names or not all(_small(grad if n == "grad" else context[n]) for n in names):
        return None
    out = list(parts)
    for k in range(1, len(parts), 2):
        name = parts[k]
        if name == "grad":
            v = grad
        elif name in context:
            v = context[name]
        else:
            continue
        s = number_text(v)
        # a negative number inside a formula keeps its sign to itself: 1·(-2), (-2)²
        if s.startswith("-") and not alone:
            s = f"({s})"
        out[k] = s
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _formula_parts(formula: str) -> tuple:
    """A rule's text cut at its names: (text, name, text, name, ..., text), and whether the formula
    is one name alone (a negative number is then not put in parentheses)."""
    parts, pos = [], 0
    for m in _IDENT.finditer(formula):
        parts += [formula[pos:m.start()], m.group()]
        pos = m.end()
    parts.append(formula[pos:])
    return tuple(parts), len(parts) == 3 and formula.strip() == parts[1]


def _number_text(v) -> str:
    """A value in the JSON's ``numbers``: as a formula writes it (``1``, ``0.5``)."""
    if isinstance(v, float):  # a 0-d tensor's value on the tape, or a Python number
        return _float_text(v, math.copysign(1.0, v), get_printoptions())
    if v is None:
        return "None"
    if type(v) is int or type(v) is bool:  # a Python number as given (what format_math writes)
        return str(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, (np.ndarray, np.generic)) and np.size(v) == 1:
        v = np.asarray(v).reshape(())
        return _scalar_text(v.dtype.str, v.item(), get_printoptions())
    return format_math(v)


@functools.lru_cache(maxsize=4096)
def _float_text(value: float, sign: float, options) -> str:
    # the same few numbers recur in every step of a long pass; ``sign`` keeps -0.0 apart from 0.0,
    # ``options`` (the print options in force) a --precision 2 apart from the default
    return format_math(float(value))


@functools.lru_cache(maxsize=4096)
def _scalar_text(dtype: str, value, options) -> str:
    # the same few numbers recur in every step of a long pass (1, the inputs): format each once
    return format_math(np.asarray(value, dtype=dtype))


def printed_text(v) -> str:
    """A value in the views: a tensor's as PyTorch prints it (``4.``, ``[0.5000, 0.5000]``, whole up to
    the print threshold, on one line), a Python number as Python writes it (``2``, ``2.5``)."""
    if type(v) is TensorValue:
        return _tensor_text(float(v), math.copysign(1.0, v), get_printoptions())
    if v is None or type(v) in (bool, int, float, str, tuple):  # (numpy's scalars are tensors' values)
        return format_saved(v)
    return format_tensor(v, one_line=True)


@functools.lru_cache(maxsize=4096)
def _tensor_text(value: float, sign: float, options) -> str:
    # (cached as _float_text is)
    return format_tensor(value)


def printed_grad(v) -> str:
    """A gradient in the views: always a tensor's value, as PyTorch prints it."""
    return printed_text(_tensor(v))


# --------------------------------------------------------------------------- JSON


def steps_json(trace, views: list | None = None) -> list[dict]:
    """The ``"steps"`` list of the JSON document (see the README for its shape); ``views``: the
    trace's :func:`describe` when the caller has it already (the page reads it twice)."""
    from .values import array as _array, f32_text, f64_text

    text = f32_text if trace.graph.dtype == "float32" else f64_text

    def array(v):  # a 0-d gradient (a float on the tape) as its dtype's number, without numpy
        if type(v) is not float:
            return _array(v)
        t = text(v)
        return t[1:-1] if t.startswith('"') else float(t)

    out = []
    for v in describe(trace) if views is None else views:
        fn = v.function
        entry = {
            "step": v.index,
            "function": fn.id,
            "name": fn.name,
            "grad_in": array(v.grad_in),
            "received": [{"from": src.id if src is not None else None, "grad": array(g)} for src, g in v.received],
        }
        if fn.variable is not None:
            entry["variable"] = fn.variable.name
            entry["grad_before"] = array(v.before)
            entry["grad_after"] = array(v.after)
        else:
            entry["rules"] = [
                {"input": r.input, "formula": r.formula, "numbers": r.numbers, "grad": array(r.value)}
                for r in v.rules
            ]
            entry["next_functions"] = [n.id if n is not None else None for n in fn.next_functions]
            entry["grads_out"] = [array(g) for g in v.grads_out]
        out.append(entry)
    return out


def steps_printed(trace, views: list | None = None) -> list[dict]:
    """The steps' values as the views print them (PyTorch's printing, one line each), for the page
    to show beside the document's numbers: per step ``received``, ``grad_in``, ``grads_out``,
    ``grad_before``/``grad_after`` and each rule with its numbers (``shown``; None for tensors).
    ``views``: the trace's ``describe(trace, shown=True)`` when the caller has it already."""
    def text(v):
        return None if v is None else printed_grad(v)

    out = []
    for v in describe(trace, shown=True) if views is None else views:
        entry = {"received": [text(g) for _, g in v.received], "grad_in": text(v.grad_in)}
        if v.function.variable is not None:
            entry["grad_before"], entry["grad_after"] = text(v.before), text(v.after)
        else:
            entry["rules"] = [{"shown": r.shown, "grad": text(r.value)} for r in v.rules]
            entry["grads_out"] = [text(g) for g in v.grads_out]
        out.append(entry)
    return out
