"""gradviz: see what PyTorch's autograd does with an expression — no PyTorch needed.

    >>> import gradviz
    >>> t = gradviz.trace("u*v + u**2", at={"u": 1, "v": 2})
    >>> t.value.item(), t.grads
    (3.0, {'u': 4.0, 'v': 1.0})
    >>> t.save("graph.svg")  # doctest: +SKIP

The API: :func:`trace` (an expression at a point → a :class:`Trace`, with ``.svg()``,
``.png()``, ``.dot()``, ``.save(path)``, ``.to_json()``...), :func:`from_torch` (a graph PyTorch
built), :func:`set_printoptions` / :func:`printoptions` (how numbers are printed, as
``torch.set_printoptions``), and the errors, all subclasses of :class:`GradvizError`.
"""

from .errors import EvalError, GradvizError, ParseError, RenderError, UsageError

__all__ = ["trace", "Trace", "from_torch", "record", "set_printoptions", "printoptions",
           "GradvizError", "ParseError", "EvalError", "RenderError", "UsageError"]
__version__ = "0.1.0"

#: public name -> (module, attribute), imported on first use: trace and Trace bring numpy
#: (~70 ms), so that the CLI, which imports this package, answers --help without paying for it.
#: Add a name here and in __all__.
_LAZY = {
    "trace": (".result", "trace"),
    "Trace": (".result", "Trace"),
    "from_torch": (".torch_import", "from_torch"),  # uses the torch the user has; gradviz never needs it
    "record": (".recording", "record"),  # with gradviz.record() as rec: around a forward pass
    "set_printoptions": (".numbers", "set_printoptions"),
    "printoptions": (".numbers", "printoptions"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module, __name__), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
