"""The JSON document (schema ``gradviz/1``): the public contract for programs.

Every document is strict JSON: nan and ±inf are written as the strings "NaN",
"Infinity" and "-Infinity". The same input gives byte-identical output: ids are
assigned deterministically and keys are written in a fixed order.
"""

from __future__ import annotations

import json
import math

import numpy as np

SCHEMA = "gradviz/1"


def number(x):
    """A float32/float64 value as the shortest decimal that reads back to it, or a string for nan/inf."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, np.float32):
        f = float(str(x))  # shortest repr that round-trips in float32 (0.1, not 0.10000000149)
    else:
        f = float(x)
    if math.isfinite(f):
        return f
    if math.isnan(f):
        return "NaN"
    return "Infinity" if f > 0 else "-Infinity"


def array(a):
    """A numpy array (or number) as a number or nested lists of numbers."""
    if a is None:
        return None
    if isinstance(a, (int, float, np.integer, np.floating, bool, np.bool_)):
        return number(a)
    a = np.asarray(a)
    if a.ndim == 0:
        return number(a[()])
    if a.dtype == np.float64:
        flat = [number(v) for v in a.ravel().tolist()]
    elif a.dtype.kind == "f":
        flat = [number(v) for v in a.ravel()]
    else:
        flat = [number(v) for v in a.ravel().tolist()]
    # rebuild the nesting iteratively (no recursion over dimensions' sizes)
    for size in reversed(a.shape[1:]):
        flat = [flat[i:i + size] for i in range(0, len(flat), size)]
    return flat


def saved_value(v):
    """A saved attribute: arrays as data, tuples (sizes, dims) as lists, numbers as given."""
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        return [saved_value(x) for x in v]  # shallow: sizes/dims are flat tuples of ints
    if isinstance(v, np.ndarray):
        return array(v)
    return number(v)


def tensor_entry(t, graph) -> dict:
    node = t.node
    return {
        "id": t.id,
        "name": t.name,
        "span": None if t.name or node is None else [node.start, node.end],
        "data": array(t.data),
        "shape": list(t.data.shape),
        "requires_grad": bool(t.requires_grad),
        "is_leaf": bool(t.is_leaf),
        "grad_fn": t.grad_fn.id if t.grad_fn is not None and t.grad_fn.id else None,
        "grad": array(t.grad),
    }


def function_entry(fn) -> dict:
    entry = {
        "id": fn.id,
        "name": fn.name,
        "next_functions": [n.id if n is not None else None for n in fn.next_functions],
    }
    if fn.variable is not None:
        entry["variable"] = fn.variable.name
        entry["tensor"] = fn.variable.id
    else:
        entry["saved"] = {k: saved_value(v) for k, v in fn.saved.items()}
        entry["tensor"] = fn.output.id if fn.output is not None else None
    return entry


def document(result) -> dict:
    """The ``gradviz/1`` document for a :class:`gradviz.result.Trace`."""
    g = result.graph
    out = g.output
    doc = {
        "schema": SCHEMA,
        "expression": g.source,
        "dtype": g.dtype,
        "output": {
            "data": array(out.data),
            "shape": list(out.data.shape),
            "requires_grad": bool(out.requires_grad),
            "grad_fn": out.grad_fn.name if out.grad_fn is not None else None,
        },
        "inputs": {
            name: {
                "data": array(t.data),
                "shape": list(t.data.shape),
                "requires_grad": bool(t.requires_grad),
                "grad": array(t.grad),
            }
            for name, t in g.inputs.items()
        },
        "graph": {
            "root": g.root.id if g.root is not None else None,
            "functions": [function_entry(fn) for fn in g.functions],
            "tensors": [tensor_entry(t, g) for t in g.tensors],
        },
    }
    if result.backward_error:
        doc["backward_error"] = result.backward_error
    doc.update(result.extras)
    return doc


def dumps(doc: dict) -> str:
    """Serialize a document: one line, strict JSON (no NaN literals), stable key order."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
