"""The "learn from it" analyses of a trace: steps, second order, symbolic, gradient check.

:func:`analyse` runs the ones asked for, puts their JSON sections in
``trace.extras`` (merged into the document's top level) and returns a
:class:`Learned` for the terminal renderer (:mod:`gradviz.render.learn`). Each
analysis's module is imported only when it is asked for (SymPy only for
``symbolic``).

JSON sections (all optional, present only when asked for):

``"steps"`` (``--steps``): a list, one entry per backward function in execution order::

    {"step": 1, "function": "f0", "name": "MulBackward0", "grad_in": 1.0,
     "received": [{"from": null, "grad": 1.0}],          # from: function id; null = the starting gradient
     "rules": [{"input": "self", "formula": "grad·other", "numbers": "1·2", "grad": 2.0}, ...],
     "next_functions": ["f1", "f2"], "grads_out": [2.0, 1.0]}
    {"step": 4, "function": "f2", "name": "AccumulateGrad", "variable": "u", "grad_in": 4.0,
     "received": [{"from": "f4", "grad": 2.0}, {"from": "f1", "grad": 2.0}],
     "grad_before": null, "grad_after": 4.0}

  ``rules`` has one entry per input that needs grad (``numbers`` is null when a value read is a
  tensor of several elements); ``grad`` is the rule's value, ``grads_out`` what was sent along
  each next_functions entry after summing back to the input's shape (null for a None entry).

``"hessian"`` (``--order 2``): ``{"u": {"u": 2.0, "v": 1.0}, "v": {"u": 1.0, "v": 0.0}}`` over the
inputs that require grad; ``hessian[a][b]`` has shape ``a.shape + b.shape`` (nested lists for
tensors), as ``torch.autograd.functional.hessian`` returns it.

``"double_backward"`` (``--graph double``): the graph of the gradients computed with
``create_graph=True``: ``{"roots": {"u": "f0", ...}, "grads": {"u": "t3", ...}, "functions": [...],
"tensors": [...]}``; functions and tensors as in ``graph``; a root or grad is null when that
gradient does not depend on any input (a constant).

``"symbolic"`` (``--symbolic``): ``{"output": "u**2 + u*v", "grads": {"u": "2*u + v", "v": "u"},
"values": {"u": 4.0, ...}, "autograd": {"u": 4.0, ...}, "agrees": {"u": true, ...}, "passed": true,
"error": null}``; SymPy's text; ``error`` says why there are no formulas (e.g. tensor inputs).

``"check"`` (``--check``): ``{"passed": true, "max_abs_error": 1.4e-10, "max_rel_error": 1.4e-10,
"eps": 1e-06, "atol": 1e-05, "rtol": 0.001, "partials": [{"input": "u", "index": [],
"analytical": 4.0, "numerical": 4.0000000001, "abs_error": ..., "rel_error": ..., "passed": true}]}``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Learned:
    """What :func:`analyse` computed (None for what was not asked for)."""

    steps: bool = False
    retain_grad: bool = False
    second: object = None  # gradviz.higher.SecondOrder
    hessian: bool = False
    double: bool = False
    symbolic: object = None  # gradviz.symbolic.Symbolic
    check: object = None  # gradviz.check.CheckResult

    @property
    def failed(self) -> bool:
        """True when the gradient check failed (the CLI exits with 1)."""
        return self.check is not None and not self.check.passed


def analyse(trace, steps: bool = False, order: int = 1, graph: str = "forward",
            symbolic: bool = False, check: bool = False, retain_grad: bool = False,
            json: bool = True) -> Learned:
    """Run the analyses asked for on ``trace``; fill ``trace.extras``; return what was found.

    ``retain_grad`` only records that the trace was made with it (for the footnote);
    ``json=False`` skips building the ``"steps"`` section (long for a long pass) when
    no JSON document will be written.
    """
    out = Learned(steps=steps, retain_grad=retain_grad)
    if steps and json:
        from .steps import steps_json

        trace.extras["steps"] = steps_json(trace)
    if order == 2 or graph == "double":
        from .higher import double_backward_json, hessian_json, second_order

        out.second = second_order(trace)
        if order == 2:
            out.hessian = True
            trace.extras["hessian"] = hessian_json(out.second)
        if graph == "double":
            out.double = True
            trace.extras["double_backward"] = double_backward_json(out.second)
    if symbolic:
        from .symbolic import symbolic as run_symbolic, symbolic_json

        out.symbolic = run_symbolic(trace)
        trace.extras["symbolic"] = symbolic_json(out.symbolic)
    if check:
        from .check import check_json, gradient_check

        out.check = gradient_check(trace)
        trace.extras["check"] = check_json(out.check)
    return out

