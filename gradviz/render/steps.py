"""The backward pass step by step (``--steps``) in the terminal: one block per backward function,
in PyTorch's execution order, with what it received, the rule it applied with the numbers filled
in, and what it sent on.

The steps are read by :func:`gradviz.steps.describe` (the engine's record as data); this module
only draws them (:func:`steps_view`, a rich renderable; nothing prints here).
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ..ops import np
from ..steps import StepView, describe, printed_grad
from .flow import tensor_text
from ..numbers import abbreviate

__all__ = ["steps_view"]

STYLES = {"function": "bold cyan", "accumulate": "magenta", "grad": "yellow", "leaf": "bold blue",
          "note": "dim italic", "none": "dim"}


def _where(trace, fn, width=28) -> str:
    """What a function is about: its leaf's name, or the sub-expression its output holds."""
    if fn.variable is not None:
        return fn.variable.name or fn.variable.id
    if fn.output is None:
        return ""
    return abbreviate(tensor_text(trace.graph, fn.output), width)


def _sum_line(received) -> str:
    grads = [g for _, g in received]
    if len(grads) < 2 or any(np.size(g) > 1 for g in grads):
        return ""
    parts = [printed_grad(g) for g in grads]
    return " + ".join([parts[0]] + [f"({p})" if p.startswith("-") else p for p in parts[1:]])


def _step_text(trace, v: StepView) -> Text:
    """One step of the view: the function, the gradient it received, then what its rules computed
    and what it sent on (an AccumulateGrad: its leaf's ``.grad`` before and after)."""
    fn = v.function
    is_acc = fn.variable is not None
    t = Text()
    t.append(f"{v.index:>2}. ")
    t.append(fn.name, style=STYLES["accumulate" if is_acc else "function"])
    where = _where(trace, fn)
    if where:
        t.append(f"  ({where})")
    _append_received(t, v)
    if is_acc:
        _append_accumulated(t, v)
        return t
    if fn.op is not None and fn.op.key == "imported" and fn.op.row is None:
        t.append(f"\n    no rule text is available for {fn.name} (gradviz has no op row for it); "
                 "the gradients are PyTorch's, measured", style=STYLES["note"])
    _append_rules(t, v.rules)
    _append_sent(t, trace, fn, v.grads_out)
    return t


def _append_received(t: Text, v: StepView) -> None:
    """``grad = 2. + 2. = 4.`` and where it came from."""
    t.append("\n    grad = ")
    summed = _sum_line(v.received)
    if summed:
        t.append(summed + " = ")
    t.append(printed_grad(v.grad_in), style=STYLES["grad"])
    senders = [src for src, _ in v.received]
    if senders == [None]:
        t.append("  (the starting gradient)", style=STYLES["note"])
    elif len(senders) > 1:
        counts: dict = {}
        for src in senders:
            name = src.name if src is not None else "the start"
            counts[name] = counts.get(name, 0) + 1
        names = ", ".join(n if c == 1 else f"{n} ×{c}" for n, c in counts.items())
        t.append(f"  (from {names}: added up first)", style=STYLES["note"])
    elif senders and senders[0] is not None:
        t.append(f"  (from {senders[0].name})", style=STYLES["note"])


def _append_accumulated(t: Text, v: StepView) -> None:
    """An AccumulateGrad's ``u.grad = before + grad = after`` (or ``(was None)``)."""
    leaf = v.function.variable.name or v.function.variable.id
    t.append(f"\n    {leaf}.grad = ")
    if v.before is None:
        t.append(printed_grad(v.after), style=STYLES["grad"])
        t.append("  (was None)", style=STYLES["note"])
    else:
        t.append(f"{printed_grad(v.before)} + {printed_grad(v.grad_in)} = ")
        t.append(printed_grad(v.after), style=STYLES["grad"])


def _append_rules(t: Text, rules: list) -> None:
    """``grad_self = grad·other = 1.·2. = 2.`` per rule (and the sum back to the input's shape)."""
    for r in rules:
        t.append(f"\n    grad_{r.input} = {r.formula} = ")
        if r.shown is not None and r.shown != printed_grad(r.value):
            t.append(f"{r.shown} = ")
        t.append(printed_grad(r.value), style=STYLES["grad"])
        if np.shape(r.sent) != np.shape(r.value):
            t.append(f", summed to shape {_shape(r.sent)}: {printed_grad(r.sent)}")


def _append_sent(t: Text, trace, fn, grads_out: list) -> None:
    """``sends 2. → MulBackward0 (u*v), nothing → None``: one entry per next_functions entry."""
    sends = []
    for nxt, g in zip(fn.next_functions, grads_out):
        if nxt is None:
            sends.append(("None", None))
        else:
            where = _where(trace, nxt, 16)
            sends.append((nxt.name + (f" ({where})" if where else ""), g))
    if not sends:
        return
    t.append("\n    sends ")
    for i, (label, g) in enumerate(sends):
        if i:
            t.append(", ")
        if g is None:
            t.append("nothing → None", style=STYLES["none"])
        else:
            t.append(printed_grad(g), style=STYLES["grad"])
            t.append(f" → {label}")


def _shape(v) -> str:
    s = tuple(np.shape(v))
    return "(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


def steps_view(trace, max_steps: int = 60) -> Group:
    """The backward pass, one block per function in PyTorch's execution order."""
    title = Text("Backward pass, step by step", style="bold")
    title.append("  (in PyTorch's execution order)", style=STYLES["note"])
    if trace.backward_error:
        return Group(title, Text(f"backward did not run: {trace.backward_error}", style=STYLES["note"]))
    if not trace.steps:
        return Group(title, Text("no backward pass: the output does not require grad", style=STYLES["note"]))
    count = len(trace.steps)
    shown = describe(trace, limit=count if count <= max_steps else max_steps - 1, shown=True)
    parts = [title]
    parts.extend(_step_text(trace, v) for v in shown)
    if len(shown) < count:
        parts.append(Text(f"… {count - len(shown)} more steps (the JSON has all: --json --steps)",
                          style=STYLES["note"]))
    return Group(*parts)
