"""A ``gradviz/1`` document read back into a graph (``gradviz --from-json FILE``).

A graph exported where PyTorch is installed (``from_torch(loss).write_json(...)``) can be drawn
where it is not; an expression's document reads back too. Every function of the document becomes
an imported entry of the tape (:class:`gradviz.graph.ImportedOp`, with gradviz's op row of that
name when it has one), every tensor an entry at its own index, and the gradients measured on the
edges (``grad_in``/``grads_out``, or the ``"steps"`` of a ``--steps`` document) the backward
pass's record, so every view draws it as it was. Nothing is re-computed: the numbers are the
document's. A document that is not ``gradviz/1`` is refused with one clear message.
"""

from __future__ import annotations

from .engine import Steps
from .errors import UsageError
from .graph import DTYPE_NAMES, Graph, ImportedFunction, imported_op
from .ops import np

__all__ = ["read_document", "DocumentError"]

#: top-level sections the graph itself is rebuilt from (the others are carried as they are)
_CORE = ("schema", "expression", "dtype", "producer", "output", "inputs", "graph", "backward_error")


class DocumentError(UsageError):
    """The document is not a gradviz/1 result document."""


def read_document(doc, where: str = "the document"):
    """The :class:`gradviz.result.Trace` a ``gradviz/1`` document describes."""
    try:
        return _read(doc, where)
    except DocumentError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0] if str(exc) else ""
        raise DocumentError(f"{where} is not a valid gradviz/1 document ({type(exc).__name__}: {detail})") from None


def _read(doc, where: str):
    from .result import Trace

    if not isinstance(doc, dict) or doc.get("schema") != "gradviz/1":
        raise DocumentError(f"{where} is not a gradviz/1 document (no \"schema\": \"gradviz/1\")")
    if "error" in doc:
        raise DocumentError(f"{where} is an error document: {doc['error'].get('message', '')}")
    dtype, producer = doc["dtype"], doc.get("producer", "expression")
    if dtype not in DTYPE_NAMES or producer not in ("expression", "torch"):
        raise DocumentError(f"{where}: unknown dtype {dtype!r} or producer {producer!r}")
    graph = Graph(_text(doc["expression"], "expression"), dtype)
    graph.producer = producer
    section = doc["graph"]
    tensors, functions = _list(section, "tensors"), _list(section, "functions")
    index = {_id(t, "t"): k for k, t in enumerate(tensors)}
    fn_tensor = {}  # function id -> its tensor's index
    for f in functions:
        fn_tensor[_id(f, "f")] = index[f["tensor"]]
    by_tensor = {index[f["tensor"]]: f for f in functions if f["name"] != "AccumulateGrad"}
    names = {name: None for name in doc["inputs"]}
    for k, t in enumerate(tensors):
        _tensor_entry(graph, k, t, by_tensor.get(k), fn_tensor, names)
    root = section["root"]
    graph.root_index = None if root is None else fn_tensor[root]
    graph.output_index = _output(graph, doc, tensors)
    if graph.order() and len(graph.order()) != len(functions):
        raise DocumentError(f"{where}: {len(functions)} functions listed but {len(graph.order())} reached from the root")
    steps = _steps(graph, doc, functions, fn_tensor) if graph.root_index is not None else []
    result = Trace(graph, steps, doc.get("backward_error"), [])
    result.extras.update((k, v) for k, v in doc.items() if k not in _CORE and k != "steps")
    return result


def _tensor_entry(graph: Graph, k: int, t: dict, fn: dict | None, fn_tensor: dict, names: dict) -> None:
    shape = tuple(int(n) for n in t["shape"])
    value = _value(graph, t["data"], shape)
    name = t["name"]
    if fn is None:  # a leaf (or a constant): no function of its own
        graph.append_imported(None, value, shape, bool(t["requires_grad"]),
                              name=name if name is not None and name in names else None)
    else:
        entry = ImportedFunction(tuple(None if j is None else fn_tensor[j] for j in fn["next_functions"]),
                                 module=fn.get("module"))
        meta = fn.get("saved_tensors") or {}
        op = imported_op(_text(fn["name"], "function name"))
        tensor_names = _tensor_saves(op) | set(meta)
        entry.saved = {key: _saved(graph, v, key in tensor_names) for key, v in (fn.get("saved") or {}).items()}
        entry.saved_meta = {key: (tuple(m["shape"]), str(m["dtype"])) for key, m in meta.items()}
        graph.append_imported(op, value, shape, bool(t["requires_grad"]), entry)
    span = t.get("span")
    if span is not None:
        graph.start[k], graph.end[k] = int(span[0]), int(span[1])
    if t.get("grad") is not None:
        graph.grad[k] = _value(graph, t["grad"], shape)
        if fn is not None:
            graph.retained.add(k)


def _output(graph: Graph, doc: dict, tensors: list) -> int:
    """The output's entry: the root function's tensor, else the last tensor of the output's shape."""
    if graph.root_index is not None:
        return graph.root_index
    shape = tuple(doc["output"]["shape"])
    for k in range(len(tensors) - 1, -1, -1):
        if graph.shape[k] == shape:
            return k
    raise DocumentError("the document has no tensor of the output's shape")


def _steps(graph: Graph, doc: dict, functions: list, fn_tensor: dict) -> Steps:
    """The backward pass's record: the document's "steps" (--steps), else the gradients measured
    on each function (a torch document), in PyTorch's order (later-created functions first)."""
    steps = Steps(graph)
    if isinstance(doc.get("steps"), list):
        for s in doc["steps"]:
            i = fn_tensor[s["function"]]
            shape = graph.shape[i]
            if s["name"] == "AccumulateGrad":
                before = s.get("grad_before")
                steps.add_accumulate(i, _value(graph, s["grad_in"], shape),
                                     None if before is None else _value(graph, before, shape),
                                     _value(graph, s["grad_after"], shape))
            else:
                nexts = graph.next_functions(i)
                sent = tuple(None if j is None or v is None else _value(graph, v, graph.shape[j])
                             for j, v in zip(nexts, s.get("grads_out") or ()))
                steps.add(i, _value(graph, s["grad_in"], shape), sent)
        return steps
    measured = {fn_tensor[f["id"]]: f for f in functions if "grad_in" in f}
    if not measured:
        return steps
    pending = graph.dependency_counts()
    for i in sorted(measured, reverse=True):
        f = measured[i]
        e = graph.imported[i]
        e.grad_in = None if f["grad_in"] is None else _value(graph, f["grad_in"], graph.shape[i])
        e.grads_out = tuple(None if j is None or v is None else _value(graph, v, graph.shape[j])
                            for j, v in zip(e.next_functions, f.get("grads_out") or [None] * len(e.next_functions)))
        steps.add(i, e.grad_in, e.grads_out)
        for j, sent in zip(e.next_functions, e.grads_out):
            if j is not None and graph.op[j] is None and sent is not None:
                pending[j] -= 1
                if pending[j] == 0:
                    steps.add_accumulate(j, graph.grad.get(j), None, graph.grad.get(j))
    return steps


def _tensor_saves(op) -> set:
    """The saved names an op row takes from a tensor (an input or the result)."""
    row = op.row
    if row is None:
        return set()
    return {name for name, source, _, _ in row.plan if source in ("input", "result")}


def _saved(graph: Graph, v, is_tensor: bool):
    """A saved value as the tape holds it: a tensor's as an array, sizes as tuples, numbers as given."""
    if v is None:
        return None
    if is_tensor:
        if isinstance(v, list) and v and all(isinstance(x, list) for x in v) and _ragged(v):
            return tuple(_array(graph, x) for x in v)  # a list of tensors
        return _array(graph, v)
    if isinstance(v, list):
        return tuple(_saved(graph, x, False) for x in v)
    if isinstance(v, str) and v in _SPECIAL:
        return _SPECIAL[v]
    return v


def _ragged(v: list) -> bool:
    try:
        np.asarray(v, dtype=float)
        return False
    except ValueError:
        return True


_SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _array(graph: Graph, data):
    if isinstance(data, bool) or (isinstance(data, list) and _all_bools(data)):
        return np.asarray(data, dtype=bool)
    if isinstance(data, int) or (isinstance(data, list) and _all_ints(data)):
        a = np.asarray(data)
        if a.dtype.kind == "i":
            return a.astype(np.int64)
    return np.asarray(_floats(data), dtype=graph.np_dtype)


def _all_bools(data) -> bool:
    flat = np.asarray(data, dtype=object).ravel()
    return flat.size > 0 and all(type(x) is bool for x in flat)


def _all_ints(data) -> bool:
    flat = np.asarray(data, dtype=object).ravel()
    return flat.size > 0 and all(type(x) is int for x in flat)


def _value(graph: Graph, data, shape: tuple):
    """A tensor's data as the tape holds it: a Python float for a 0-d tensor, else an array."""
    if data is None:
        return None
    a = np.asarray(_floats(data), dtype=graph.np_dtype)
    if a.shape != shape:
        if a.size == int(np.prod(shape, dtype=np.int64)):
            a = a.reshape(shape)
        else:
            raise DocumentError(f"data of shape {a.shape} for a tensor of shape {shape}")
    return float(a) if a.ndim == 0 else a


def _floats(data):
    """Nested lists with the schema's strings for nan and infinities made floats (no recursion)."""
    if isinstance(data, str):
        return _SPECIAL[data]
    if not isinstance(data, list):
        return data
    if all(not isinstance(x, (list, str)) for x in data):
        return data
    out = list(data)
    stack = [out]
    while stack:
        level = stack.pop()
        for k, x in enumerate(level):
            if isinstance(x, str):
                level[k] = _SPECIAL[x]
            elif isinstance(x, list):
                level[k] = list(x)
                stack.append(level[k])
    return out


def _list(section: dict, key: str) -> list:
    v = section[key]
    if not isinstance(v, list):
        raise DocumentError(f"\"graph\".\"{key}\" must be a list")
    return v


def _id(entry: dict, prefix: str) -> str:
    v = entry["id"]
    if not isinstance(v, str) or not v.startswith(prefix):
        raise DocumentError(f"the id {v!r} is not a {'tensor' if prefix == 't' else 'function'} id")
    return v


def _text(v, what: str) -> str:
    if not isinstance(v, str):
        raise DocumentError(f"the {what} must be a string")
    return v
