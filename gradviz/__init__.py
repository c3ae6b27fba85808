"""gradviz: see what PyTorch's autograd does with an expression — no PyTorch needed.

    >>> import gradviz
    >>> t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    >>> float(t.value), float(t.grads["u"]), float(t.grads["v"])
    (3.0, 4.0, 1.0)
"""

from .errors import EvalError, GradvizError, ParseError, RenderError
from .result import Trace, trace

__all__ = ["trace", "Trace", "GradvizError", "ParseError", "EvalError", "RenderError"]
__version__ = "0.1.0"
