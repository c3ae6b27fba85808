"""gradviz: see what PyTorch's autograd does with an expression — no PyTorch needed.

    >>> import gradviz
    >>> t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    >>> float(t.value), float(t.grads["u"]), float(t.grads["v"])
    (3.0, 4.0, 1.0)
"""

from .errors import EvalError, GradvizError, ParseError, RenderError

__all__ = ["trace", "Trace", "from_torch", "record", "GradvizError", "ParseError", "EvalError", "RenderError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # trace and Trace bring numpy (~70 ms to import): loaded on first use, so that the CLI,
    # which imports this package, answers --help without paying for it.
    if name in ("trace", "Trace"):
        from . import result

        return getattr(result, name)
    if name == "from_torch":  # a graph PyTorch built (uses the torch the user has; gradviz never needs it)
        from .torch_import import from_torch

        return from_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
