"""The JSON document (schema ``gradviz/1``): the public contract for programs.

Every document is strict JSON: nan and ±inf are written as the strings "NaN",
"Infinity" and "-Infinity". The same input gives byte-identical output: ids are
assigned deterministically and keys are written in a fixed order.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Iterator

import numpy as np

SCHEMA = "gradviz/1"


def number(x):
    """A float32/float64 value as the shortest decimal that reads back to it, or a string for nan/inf."""
    if isinstance(x, np.float32):  # the common case first
        f = float(str(x))  # shortest repr that round-trips in float32 (0.1, not 0.10000000149)
    elif isinstance(x, (bool, np.bool_)):
        return bool(x)
    elif isinstance(x, (int, np.integer)):
        return int(x)
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
    if type(a) is np.ndarray and not a.shape:  # the common case first: a 0-d tensor
        return number(a[()])
    if isinstance(a, (int, float, np.integer, np.floating, bool, np.bool_)):
        return number(a)
    a = np.asarray(a)
    if a.ndim == 0:
        return number(a[()])
    if a.size == 0:
        return a.tolist()  # [[], [], []]: nested empty lists, no numbers
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


class Lazy:
    """A big part of a document — the inputs, the graph's functions or its tensors — kept as
    its items and how to write one, so that :func:`iter_json` can write it a batch at a time
    and a million-term document never exists whole in memory.

    ``entry(item)`` is the item's dict; ``text(item)`` is exactly ``dumps(entry(item))``.
    For an object (``inputs``) the items are ``(name, item)`` pairs.
    """

    __slots__ = ("items", "entry", "text", "is_object")

    def __init__(self, items, entry, text, is_object: bool = False):
        self.items = items
        self.entry = entry
        self.text = text
        self.is_object = is_object

    def materialize(self):
        if self.is_object:
            return {name: self.entry(item) for name, item in self.items}
        return [self.entry(item) for item in self.items]


def input_entry(t) -> dict:
    return {
        "data": array(t.data),
        "shape": list(t.data.shape),
        "requires_grad": bool(t.requires_grad),
        "grad": array(t.grad),
    }


def document(result, lazy: bool = False) -> dict:
    """The ``gradviz/1`` document for a :class:`gradviz.result.Trace`.

    With ``lazy``, ``inputs``, ``graph.functions`` and ``graph.tensors`` are :class:`Lazy`
    (for :func:`iter_json`); otherwise every part is plain dicts and lists.
    """
    g = result.graph
    out = g.output
    texts = _Texts()
    inputs = Lazy(g.inputs.items(), input_entry, texts.input, is_object=True)
    functions = Lazy(g.functions, function_entry, texts.function)
    tensors = Lazy(g.tensors, lambda t: tensor_entry(t, g), texts.tensor)
    if not lazy:
        inputs, functions, tensors = inputs.materialize(), functions.materialize(), tensors.materialize()
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
        "inputs": inputs,
        "graph": {
            "root": g.root.id if g.root is not None else None,
            "functions": functions,
            "tensors": tensors,
        },
    }
    if result.backward_error:
        doc["backward_error"] = result.backward_error
    doc.update(result.extras)
    return doc


# ---------------------------------------------------------------------------
# The entries' text, written directly. A large graph is millions of 0-d tensors and
# their functions: building a dict for each and encoding it cost three times as much
# as writing the text. Each method of _Texts returns exactly ``dumps`` of its entry
# (tests/test_jsondoc.py checks it on every golden expression) and falls back to
# that for anything but 0-d values.
# ---------------------------------------------------------------------------

_string = json.encoder.encode_basestring  # a str as a quoted JSON string (what dumps writes)


def _str(s) -> str:
    return "null" if s is None else _string(s)


def _bool(b) -> str:
    return "true" if b else "false"


class _Texts:
    """Writes entries' text, remembering each 0-d array's (a leaf's value is written as its
    tensor's data, its input's data and the saved self/other of every function using it)."""

    def __init__(self):
        self.memo: dict[int, str] = {}  # id of a live 0-d array -> its text

    def scalar(self, a) -> str | None:
        """``dumps(array(a))`` for None or a 0-d value; None for anything else."""
        if a is None:
            return "null"
        if type(a) is np.ndarray:
            if a.shape:
                return None
            text = self.memo.get(id(a))
            if text is None:
                text = self.memo[id(a)] = _number_text(number(a[()]))
            return text
        if not isinstance(a, (int, float, np.integer, np.floating, bool, np.bool_)):
            return None
        return _number_text(number(a))

    def tensor(self, t) -> str:
        """``dumps(tensor_entry(t, None))``."""
        data, grad = self.scalar(t.data), self.scalar(t.grad)
        if data is None or grad is None or t.data.shape:
            return dumps(tensor_entry(t, None))
        node = t.node
        span = "null" if t.name or node is None else f"[{node.start},{node.end}]"
        grad_fn = t.grad_fn.id if t.grad_fn is not None and t.grad_fn.id else None
        return (f'{{"id":{_string(t.id)},"name":{_str(t.name)},"span":{span},"data":{data},"shape":[],'
                f'"requires_grad":{_bool(t.requires_grad)},"is_leaf":{_bool(t.is_leaf)},'
                f'"grad_fn":{_str(grad_fn)},"grad":{grad}}}')

    def function(self, fn) -> str:
        """``dumps(function_entry(fn))``."""
        nexts = ",".join(["null" if n is None else _string(n.id) for n in fn.next_functions])
        head = f'{{"id":{_string(fn.id)},"name":{_string(fn.name)},"next_functions":[{nexts}]'
        if fn.variable is not None:
            return f'{head},"variable":{_str(fn.variable.name)},"tensor":{_str(fn.variable.id)}}}'
        saved = []
        for k, v in fn.saved.items():
            text = None if isinstance(v, (tuple, list)) else self.scalar(v)
            saved.append(f"{_str(k)}:{dumps(saved_value(v)) if text is None else text}")
        tensor = fn.output.id if fn.output is not None else None
        return f'{head},"saved":{{{",".join(saved)}}},"tensor":{_str(tensor)}}}'

    def input(self, t) -> str:
        """``dumps(input_entry(t))``."""
        data, grad = self.scalar(t.data), self.scalar(t.grad)
        if data is None or grad is None or t.data.shape:
            return dumps(input_entry(t))
        return f'{{"data":{data},"shape":[],"requires_grad":{_bool(t.requires_grad)},"grad":{grad}}}'


def _number_text(v) -> str:
    """The JSON text of what :func:`number` returns."""
    if type(v) is float:
        return repr(v)  # as json writes a float
    if type(v) is bool:
        return _bool(v)
    if type(v) is str:
        return '"' + v + '"'  # "NaN", "Infinity", "-Infinity"
    return repr(v)  # an int


def dumps(doc: dict) -> str:
    """Serialize a document: one line, strict JSON (no NaN literals), stable key order."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def iter_json(result, batch: int = 1000) -> Iterator[str]:
    """``dumps(document(result))`` in pieces, byte for byte, holding one batch of entries at a time.

    Objects are written key by key (descending into those that hold a :class:`Lazy` part) and
    Lazy parts ``batch`` entries at a time; everything else is one :func:`dumps` call.
    """
    stack = [iter(document(result, lazy=True).items())]
    yield "{"
    first = True
    while stack:
        for key, value in stack[-1]:
            yield ("" if first else ",") + dumps(key) + ":"
            first = False
            if isinstance(value, Lazy):
                yield from _lazy_pieces(value, batch)
            elif isinstance(value, dict) and any(isinstance(v, Lazy) for v in value.values()):
                yield "{"
                stack.append(iter(value.items()))
                first = True
                break
            else:
                yield dumps(value)
        else:  # this object is finished
            stack.pop()
            yield "}"
            first = False


def _lazy_pieces(part: Lazy, batch: int) -> Iterator[str]:
    text = part.text
    if part.is_object:
        texts = (f"{_string(name)}:{text(item)}" for name, item in part.items)
    else:
        texts = map(text, part.items)
    yield "{" if part.is_object else "["
    separator = ""
    while True:
        chunk = list(itertools.islice(texts, batch))
        if not chunk:
            break
        yield separator + ",".join(chunk)
        separator = ","
    yield "}" if part.is_object else "]"
