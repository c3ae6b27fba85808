"""The JSON document (schema ``gradviz/1``): the public contract for programs.

Every document is strict JSON: nan and ±inf are written as the strings "NaN",
"Infinity" and "-Infinity". The same input gives byte-identical output: ids are
assigned deterministically and keys are written in a fixed order.
"""

from __future__ import annotations

import json
import math
import sys
from array import array as _array
from bisect import bisect_left
from itertools import compress, repeat
from operator import attrgetter, eq, is_ as _is, itemgetter, lt as _lt, not_ as _not
from typing import Iterator

from ..values import POWERS_OF_TWO_F32, SMALLEST_NORMAL_F32, f32_text, f64_text, repr_of_g_text  # noqa: F401 (numbers' JSON texts)
from ..values import array, function_entry, number, saved_value, tensor_entry  # noqa: F401 (re-exported)

SCHEMA = "gradviz/1"


def document(result) -> dict:
    """The ``gradviz/1`` document for a :class:`gradviz.result.Trace`, as Python objects
    (read back from the one writer's text, so the two never differ)."""
    return json.loads("".join(iter_json(result)))


# ---------------------------------------------------------------------------
# Numbers as JSON text. A large graph is millions of 0-d tensors: their values are Python
# floats on the tape, written here without numpy (f32_text gives numpy's shortest float32
# text, ``str(np.float32(v))``, exactly: tests/test_jsondoc.py checks it).
# ---------------------------------------------------------------------------

#: characters that are valid raw in a JSON string but end a line for some readers (Python's
#: str.splitlines, JavaScript before ES2019): escaped, so every document is one line of JSON Lines
_LINE_SAFE = {c: f"\\u{c:04x}" for c in [*range(0x80, 0xA0), 0x2028, 0x2029]}


def _string(s: str) -> str:
    """A str as a quoted JSON string (what dumps writes)."""
    return json.encoder.encode_basestring(s).translate(_LINE_SAFE)


def _str(s) -> str:
    return "null" if s is None else _string(s)


def _bool(b) -> str:
    return "true" if b else "false"


def _f32_texts(values: list) -> list:
    """``[f32_text(v) for v in values]``, each digit count tried for all the values at once."""
    n = len(values)
    np = sys.modules.get("numpy")
    if np is not None and n >= 64:  # numpy is there (a run with arrays): it finds the digit counts
        return _f32_texts_numpy(np, values)
    if n < 8 or not (math.isfinite(sum(values)) and min(map(abs, values)) >= SMALLEST_NORMAL_F32
                     and POWERS_OF_TWO_F32.isdisjoint(values) and _array("f", values).tolist() == values):
        # nan, inf, zeros, subnormals, powers of two; a value that is not a float32's
        return list(map(f32_text, values))
    s7, ok7 = _f32_round_trips("%.7g", values)
    if any(ok7):
        texts7 = list(compress(s7, ok7))
        # A text of at most 7 characters has at most 6 significant digits ('%.6g''s number, then),
        # or is an integer below 10**7 (spaced 1 or finer in float32: no 6 digits read back to it)
        maybe6 = list(map(_lt, repeat(7), map(len, texts7)))
        if any(maybe6):
            s6, ok6 = _f32_round_trips("%.6g", list(compress(compress(values, ok7), maybe6)))
            seven = compress(compress(texts7, maybe6), map(_not, ok6))  # (the texts of 7 digits, not 6)
            by6 = map(next, map([seven, compress(s6, ok6)].__getitem__, ok6))
            by7 = list(map(next, map([compress(texts7, map(_not, maybe6)), by6].__getitem__, maybe6)))
        else:
            by7 = texts7
    else:
        by7 = []
    if all(ok7):
        texts = by7
    else:
        longer = list(compress(values, map(_not, ok7)))
        s8, ok8 = _f32_round_trips("%.8g", longer)
        if all(ok8):
            by8 = s8
        else:
            s9 = ("%.9g\0" * (len(ok8) - sum(ok8)) % tuple(compress(longer, map(_not, ok8)))).split("\0")
            by8 = list(map(next, map([iter(s9), compress(s8, ok8)].__getitem__, ok8)))
        texts = list(map(next, map([iter(by8), iter(by7)].__getitem__, ok7)))
    joined = "\0".join(texts)
    if "e" in joined or joined.count(".") != n:  # an exponent, an integer: repr's notation
        return list(map(repr_of_g_text, texts))
    return texts


_P10 = [10.0 ** k for k in range(23)]  # the powers of ten a float64 holds exactly


def _f32_texts_numpy(np, values: list) -> list:
    """_f32_texts with numpy finding each value's digit count, all at once: a p-digit candidate is
    the value scaled by a power of ten (exact) and rounded — exactly '%.{p}g' unless the scaled
    value is within a hair of .5 — read back as the correctly rounded float64 (a product or
    quotient of exact operands) and then float32, as float() and the float32 store do. The texts
    are then '%.{p}g' as f32_text writes them, in one formatting call. Values near a tie, too far
    from 1 for exact powers of ten, or not ordinary (nan, inf, zeros, subnormals, powers of two,
    not a float32's) are left to f32_text."""
    v = np.array(values, dtype=np.float64)
    f = v.astype(np.float32)
    a = np.abs(v)
    with np.errstate(all="ignore"):
        slow = ~(np.isfinite(v) & (f.astype(np.float64) == v) & (a >= SMALLEST_NORMAL_F32)
                 & ((f.view(np.uint32) & np.uint32(0x7FFFFF)) != 0))
        a[slow] = 1.0
        k = np.floor(np.log10(a)).astype(np.int64)
        p10 = np.array(_P10)
        ok = {}
        for p in (6, 7, 8):
            s = (p - 1) - k
            slow |= (s > 22) | (s < -22)
            e = np.clip(np.abs(s), 0, 22)
            up = s >= 0
            scaled = np.where(up, v * p10[e], v / p10[e])
            c = np.rint(scaled)
            slow |= np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 2.0 ** -20  # near a tie
            lo = 10.0 ** (p - 1)
            slow |= ~((np.abs(c) >= lo) & (np.abs(c) < lo * 10))  # not p digits (log10 off, a carry)
            back = np.where(up, c / p10[e], c * p10[e])
            ok[p] = back.astype(np.float32) == f
    digits = np.where(ok[7], np.where(ok[6], 6, 7), np.where(ok[8], 8, 9))
    digits[slow] = 0
    args = values
    if slow.any():
        args = list(values)
        for k in np.flatnonzero(slow).tolist():
            args[k] = f32_text(values[k])
    texts = ("\0".join(map(_DIGITS.__getitem__, digits.tolist())) % tuple(args)).split("\0")
    joined = "\0".join(texts)
    if "e" in joined or joined.count(".") != len(texts):  # an exponent, an integer: repr's notation
        return [t if t[0] == '"' else repr_of_g_text(t) for t in texts]
    return texts


_DIGITS = ("%s", None, None, None, None, None, "%.6g", "%.7g", "%.8g", "%.9g")  # by digit count (0: a text)


def _f32_round_trips(template: str, values: list) -> tuple:
    """The values' texts by ``template`` ('%.{p}g'), and whether each reads back in float32."""
    texts = (template.replace("g", "g\0") * len(values) % tuple(values)).split("\0")
    texts.pop()
    return texts, list(map(eq, _array("f", map(float, texts)), _array("f", values)))


def _number_text(v) -> str:
    """The JSON text of what :func:`number` returns."""
    if type(v) is float:
        return repr(v)  # as json writes a float
    if type(v) is bool:
        return _bool(v)
    if type(v) is str:
        return '"' + v + '"'  # "NaN", "Infinity", "-Infinity"
    return repr(v)  # an int


def saved_text(v) -> str:
    """A saved attribute's JSON text: ``dumps(saved_value(v))``."""
    if v is None:
        return "null"
    t = type(v)
    if t is int:
        return repr(v)
    if t is float:
        return f64_text(v)
    if t is bool:
        return _bool(v)
    if t is tuple and all(type(x) is int for x in v):  # sizes, dims
        return "[" + ",".join(map(repr, v)) + "]"
    return dumps(saved_value(v))


def dumps(doc) -> str:
    """Serialize a document: one line, strict JSON (no NaN literals), stable key order."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).translate(_LINE_SAFE)


_MEMO = 1 << 16  # distinct values whose text is remembered while writing a document
_FLOAT_OR_NONE = frozenset((float, type(None)))
_FLOAT = {float}
_shape, _dtype = attrgetter("shape"), attrgetter("dtype")
_BOOLS = ("false",) + ("true",) * 255  # a requires_grad byte's text


class _Values:
    """Tensor values' text for one document: the tape's floats (remembered, as a leaf's value is
    written up to four times) and arrays."""

    def __init__(self, dtype: str):
        self.text = f32_text if dtype == "float32" else f64_text
        self.memo: dict = {None: "null"}  # (None: no value, as a tensor without grad)
        #: id of an array the graph holds (alive while the document is written) -> its text:
        #: a weight matrix is saved by every function that uses it
        self.arrays: dict = {id(None): "null"}
        self.shapes: dict = {(): "[]"}  # shape -> its text

    def __call__(self, v) -> str:
        if type(v) is float:
            memo = self.memo
            t = memo.get(v)
            if t is None:
                t = self.text(v)
                if v == v and v != 0 and len(memo) < _MEMO:  # 0.0 and -0.0 are equal keys
                    memo[v] = t
            return t
        if v is None:
            return "null"
        t = self.arrays.get(id(v))
        if t is None:
            t = self.arrays[id(v)] = self.array_text(v)
        return t

    def texts(self, values: list) -> list:
        """``[self(v) for v in values]``, a batch at a time: the remembered ones looked up in one
        go, the others' text made together (floats; arrays of one shape)."""
        kinds = set(map(type, values))
        floats = kinds <= _FLOAT_OR_NONE
        if not floats and float in kinds:  # floats and arrays (a batch of tensors): each kind together
            is_float = list(map(_is, map(type, values), repeat(float)))
            texts = self.texts(list(compress(values, is_float)))
            others = self.texts(list(compress(values, map(_not, is_float))))
            return list(map(next, map([iter(others), iter(texts)].__getitem__, is_float)))
        # (an array the graph holds is remembered by id: no float alive has its id)
        out = list(map(self.memo.get, values)) if floats else list(map(self.arrays.get, map(id, values)))
        if None in out:
            is_missing = list(map(_is, out, repeat(None)))
            items = list(compress(values, is_missing))
            texts = self._float_texts(items) if floats else self._arrays_texts(items)
            if len(items) == len(out):
                return texts
            known = compress(out, map(_not, is_missing))
            return list(map(next, map([known, iter(texts)].__getitem__, is_missing)))
        return out

    def _float_texts(self, floats: list) -> list:
        """The texts of floats not remembered yet (then remembered): each distinct one once."""
        if self.text is not f32_text or len(floats) < 8:
            return list(map(self, floats))
        distinct = dict.fromkeys(floats)
        if len(distinct) < len(floats):  # (0.0 and -0.0 are one key: zeros are written apart)
            distinct.pop(0.0, None)
            keys = list(distinct)
            table = dict(zip(keys, self._float_texts(keys) if len(keys) >= 8 else list(map(self, keys))))
            texts = list(map(table.get, floats))
            if None in texts:  # zeros (and nan: a key only as itself)
                is_missing = list(map(_is, texts, repeat(None)))
                rest = map(f32_text, compress(floats, is_missing))
                texts = list(map(next, map([compress(texts, map(_not, is_missing)), rest].__getitem__, is_missing)))
            return texts
        texts = _f32_texts(floats)
        memo = self.memo
        if len(memo) < _MEMO:
            memo.update(zip(floats, texts))
            memo.pop(0.0, None)  # 0.0 and -0.0 are equal keys
        return texts

    def _arrays_texts(self, arrays: list) -> list:
        """The texts of arrays (and other values but floats), remembered by id: float arrays of
        one shape and dtype together, their elements' texts made at once and put in a template
        of the shape."""
        f32 = self.text is f32_text
        try:
            kinds = set(zip(map(_shape, arrays), map(_dtype, arrays)))
        except AttributeError:  # (None, a number)
            kinds = None
        if kinds is not None and len(kinds) == 1:
            groups = {kinds.pop(): arrays}
        else:
            groups = {}
            for a in arrays:
                groups.setdefault((getattr(a, "shape", None), getattr(a, "dtype", None)), []).append(a)
        for (shape, dtype), group in list(groups.items()):
            if not (shape and dtype is not None and dtype.kind == "f" and (dtype.itemsize == 4) == f32
                    and group[0].size and len(group) > 1):
                for a in group:
                    self(a)
                del groups[(shape, dtype)]
        memo = self.arrays
        for (shape, dtype), group in groups.items():
            import numpy as np  # (imported already: these are its arrays)

            items = self.texts(np.concatenate(group, axis=None).tolist())
            template = "[" + ",".join(["%s"] * shape[-1]) + "]"
            for size in reversed(shape[:-1]):
                template = "[" + ",".join([template] * size) + "]"
            memo.update(zip(map(id, group), ("\0".join([template] * len(group)) % tuple(items)).split("\0")))
        return list(map(memo.__getitem__, map(id, arrays)))

    def shape_texts(self, shapes: list) -> list:
        """The shapes' texts (remembered: a graph has few distinct shapes)."""
        memo = self.shapes
        out = list(map(memo.get, shapes))
        if None in out:
            index = out.index
            k = index(None)
            try:
                while True:
                    shape = shapes[k]
                    t = memo.get(shape)
                    if t is None:
                        t = _shape_text(shape)
                        if len(memo) < 1024:
                            memo[shape] = t
                    out[k] = t
                    k = index(None, k + 1)
            except ValueError:
                pass
        return out

    def array_text(self, a) -> str:
        """``dumps(array(a))``, written directly for float arrays."""
        if a.size == 0 or a.ndim == 0 or a.dtype.kind != "f":
            return dumps(array(a))
        if (a.dtype.itemsize == 4) != (self.text is f32_text):  # a float32 constant in a float64 run
            return dumps(array(a))
        items = self.texts(a.ravel().tolist())
        for size in reversed(a.shape[1:]):
            items = ["[" + ",".join(items[k:k + size]) + "]" for k in range(0, len(items), size)]
        return "[" + ",".join(items) + "]"


def _shape_text(shape) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _plain_names(names) -> bool:
    """Whether every name is written as itself in quotes (ASCII letters, digits and '_': nothing
    to escape), so that its text needs no encoder."""
    joined = "".join(names)
    return joined.isascii() and (joined.isidentifier() or joined == "")


def _string_parts(names: list, plain: bool) -> list:
    """The parts of _fill_parts that write ``names`` as JSON strings: quotes around each plain
    name (in the template), or each name's text."""
    return ['"', ("s", names), '"'] if plain else [("s", [_string(n) for n in names])]


def _batches(lo: int, hi: int, batch: int, cut: int = -1):
    """[lo, hi) in ranges of at most ``batch``, none across ``cut``."""
    for a, b in ((lo, cut), (cut, hi)) if lo < cut < hi else ((lo, hi),):
        for start in range(a, b, batch):
            yield start, min(start + batch, b)


def _fill_each(template: str, columns: list) -> list[str]:
    """``[template % row for row in zip(*columns)]``, in one formatting call (no entry holds a NUL:
    every string in the document is escaped)."""
    n, width = len(columns[0]), len(columns)
    flat = [None] * (n * width)
    for k, column in enumerate(columns):
        flat[k::width] = column
    return ("\0".join([template] * n) % tuple(flat)).split("\0")


def _fill(template: str, columns: list) -> str:
    """``",".join(template % row for row in zip(*columns))``, in one formatting call."""
    n, width = len(columns[0]), len(columns)
    flat = [None] * (n * width)
    for k, column in enumerate(columns):
        flat[k::width] = column
    return ",".join([template] * n) % tuple(flat)


def iter_json(result, batch: int = 4096, extras: dict | None = None) -> Iterator[str]:
    """The ``gradviz/1`` document's text in pieces of ``batch`` entries, read from the graph's tape
    (a million-term document never exists whole in memory). ``extras``: the sections after the
    graph (the analyses' data), when not ``result.extras``."""
    g = result.graph
    value = _Values(g.dtype)
    out = g.output_index
    fpos = g.function_ids()
    out_fn = g.op[out] is not None and g.req[out]
    # "producer" only for a graph the expression tracer did not make (expression documents stay as they were)
    producer = "" if g.producer == "expression" else f',"producer":{_string(g.producer)}'
    yield (f'{{"schema":"{SCHEMA}","expression":{_string(g.source)},"dtype":"{g.dtype}"{producer},'
           f'"output":{{"data":{value(g.value[out])},"shape":{_shape_text(g.shape[out])},'
           f'"requires_grad":{_bool(g.req[out])},'
           f'"grad_fn":{_string(g.op[out].torch_name) if out_fn else "null"}}},"inputs":{{')
    plain = _plain_names(g.input_index)  # (the inputs' names: input_names and late ones)
    names = list(g.input_index)
    indices = list(g.input_index.values())
    values, shapes, req, grads = g.value, g.shape, g.req, g.grad
    for lo, hi in _batches(0, len(names), batch):
        idx = indices[lo:hi]
        yield ("," if lo else "") + _fill_parts(hi - lo, [
            *_string_parts(names[lo:hi], plain), ':{"data":', ("s", value.texts(list(map(values.__getitem__, idx)))),
            ',"shape":', ("s", value.shape_texts(list(map(shapes.__getitem__, idx)))),
            ',"requires_grad":', ("s", list(map(_BOOLS.__getitem__, map(req.__getitem__, idx)))),
            ',"grad":', ("s", value.texts(list(map(grads.get, idx)))), "}"])
    del names, indices
    yield f'}},"graph":{{"root":{"null" if g.root_index is None else chr(34) + "f0" + chr(34)},"functions":['
    order = g.order()
    functions = _Functions(g, fpos, value, plain)
    for lo, hi in _batches(0, len(order), batch):
        yield ("," if lo else "") + functions.texts(order[lo:hi], lo)
    yield '],"tensors":['
    tensors = _Tensors(g, fpos, value, plain)
    for lo, hi in _batches(0, len(g.value), batch, len(g.input_names)):
        yield ("," if lo else "") + tensors.texts(lo, hi)
    yield "]}"
    if result.backward_error:
        yield f',"backward_error":{dumps(result.backward_error)}'
    for key, section in (result.extras if extras is None else extras).items():
        yield f",{dumps(key)}:"
        yield from _section_pieces(section, batch)
    yield "}"


def _section_pieces(section, batch: int) -> Iterator[str]:
    """``dumps(section)`` in pieces: a list (the --steps record, one item per function run) a
    batch of items at a time, so a large one's text never exists whole."""
    if type(section) is not list or len(section) <= batch:
        yield dumps(section)
        return
    for lo in range(0, len(section), batch):
        yield ("[" if lo == 0 else ",") + ",".join(map(dumps, section[lo:lo + batch]))
    yield "]"


_ACCUMULATE = '{"id":"f%d","name":"AccumulateGrad","next_functions":[],"variable":%s,"tensor":"t%d"}'


class _Functions:
    """The graph's functions' entries as text, with what is the same for every use of an op row
    and its params (its name's text; the saved values that are params) written once."""

    def __init__(self, g, fpos, value, plain: bool):
        self.g, self.fpos, self.value = g, fpos, value
        #: (id of the op, id of its params dict) -> how its entries are written (see _spec)
        self.specs: dict = {}
        #: an input's AccumulateGrad names it as itself in quotes (no labels, plain names)
        self.plain_inputs = plain and not g.names

    def _spec(self, op, p) -> tuple:
        """How an op row's entries with params ``p`` are written: (kind, template, plan, head,
        saved). kind 0: every saved value shown is a param (``saved``, written once here); 1: some
        are tensors, each plan item (its '"name":' text, source 0 input / 1 result / 2 param /
        3 context, slot, slot whose grad decides whether it is saved or None, the text when it is
        not); 2: the general case (an imported op, three or more tensor slots); 3: AccumulateGrad."""
        if op is None:
            return (3,)
        if op.key == "imported":
            return (2,)
        head = '{"id":"f%d","name":"' + op.torch_name.replace("%", "%%") + '","next_functions":['
        plan = []
        for name, source, arg, when in op.plan:
            if name[0] == "_":  # read by the rule, not shown
                continue
            if (when is not None and when > 1) or (source == "input" and arg > 1):
                return (2,)
            unsaved = f'"{name}":[]' if name.endswith("_sym_strides") else f'"{name}":null'
            if source == "param":
                plan.append((f'"{name}":{saved_text(p[arg])}', 2, arg, when, unsaved))
            else:
                plan.append((f'"{name}":', 0 if source == "input" else 1 if source == "result" else 3,
                             arg, when, unsaved))
        if all(item[1] == 2 and item[3] is None for item in plan):
            saved = ",".join(item[0] for item in plan).replace("%", "%%")
            return (0, head + '%s],"saved":{' + saved + '},"tensor":"t%d"}', (), head, saved)
        return (1, head + '%s],"saved":{%s},"tensor":"t%d"}', tuple(plan), head, None, op)

    def texts(self, indices, k: int) -> str:
        """The entries of the functions at ``indices`` (positions k, k + 1, ... of the order),
        joined: grouped by op row (then params), each group in one formatting call, then put
        back in order."""
        n = len(indices)
        if n < 2:
            return ",".join(self._each(indices, range(k, k + n)))
        g = self.g
        ops = itemgetter(*indices)(g.op)
        positions = range(k, k + n)
        if all(map(_is, ops, repeat(ops[0]))):
            return self._by_params(ops[0], list(indices), positions, False)
        ids = list(map(id, ops))
        groups = dict(zip(ids, ops))
        if len(groups) > 16:
            return ",".join(self._each(indices, positions))
        parts = []
        for op in groups.values():
            mask = list(map(_is, ops, repeat(op)))
            parts.append(iter(self._by_params(op, list(compress(indices, mask)), list(compress(positions, mask)), True)))
        code = dict(zip(groups, range(len(groups))))
        return ",".join(map(next, map(parts.__getitem__, map(code.__getitem__, ids))))

    def _by_params(self, op, J: list, positions, split: bool):
        """The entries of functions ``J`` of one op row (at ``positions``), by params: joined, or
        with ``split`` a list."""
        params = self.g.params
        ps = itemgetter(*J)(params) if len(J) > 1 else (params[J[0]],)
        specs = self.specs
        p = ps[0]
        if all(map(_is, ps, repeat(p))):
            key = (id(op), id(p))
            spec = specs.get(key)
            if spec is None:
                spec = self._spec(op, p)
                if len(specs) < 256:
                    specs[key] = spec
            return self._group(spec, J, positions, split)
        pid = list(map(id, ps))
        groups = dict(zip(pid, ps))
        if len(groups) > 16:
            texts = self._each(J, positions)
            return texts if split else ",".join(texts)
        parts = []
        for p in groups.values():
            spec = self._spec(op, p)
            mask = list(map(_is, ps, repeat(p)))
            parts.append(iter(self._group(spec, list(compress(J, mask)), list(compress(positions, mask)), True)))
        code = dict(zip(groups, range(len(groups))))
        texts = map(next, map(parts.__getitem__, map(code.__getitem__, pid)))
        return list(texts) if split else ",".join(texts)

    def _group(self, spec, J: list, positions, split: bool):
        """The entries of functions ``J`` (at ``positions``) of one op row and params: columns of
        their values, one formatting call."""
        kind = spec[0]
        g = self.g
        n = len(J)
        if n < 2 or kind == 2 or (kind != 3 and g.more and not g.more.keys().isdisjoint(J)):
            return self._each_text(J, positions, split)
        take = itemgetter(*J)
        if kind == 3:
            if self.plain_inputs and max(J) < len(g.input_names):
                return _fill_parts(n, ['{"id":"f', ("d", positions), '","name":"AccumulateGrad","next_functions":[],'
                                       '"variable":"', ("s", take(g.input_names)), '","tensor":"t', ("d", J), '"}'], split)
            return self._each_text(J, positions, split)
        fpos, req = self.fpos, g.req
        X = take(g.a)
        Y = take(g.b)
        # whether every entry's first (second) slot holds a tensor that requires grad
        grad_x = min(X) >= 0 and 0 not in itemgetter(*X)(req)
        parts = ['{"id":"f', ("d", positions), spec[3][len('{"id":"f%d'):].replace("%%", "%")]
        if grad_x:
            parts += ['"f', ("d", itemgetter(*X)(fpos)), '"']
        else:
            parts.append(("s", ['"f%d"' % fpos[x] if x >= 0 and req[x] else "null" for x in X]))
        none = Y.count(-2)
        grad_y = False
        if none:
            if none != n:
                return self._each_text(J, positions, split)
        else:
            grad_y = min(Y) >= 0 and 0 not in itemgetter(*Y)(req)
            if grad_y:
                parts += [',"f', ("d", itemgetter(*Y)(fpos)), '"']
            else:
                parts.append(("s", [',"f%d"' % fpos[y] if y >= 0 and req[y] else ",null" for y in Y]))
        parts.append('],"saved":{')
        if kind == 0:
            parts.append(spec[4].replace("%%", "%"))
        else:
            saved = self._saved_parts(spec, J, X, Y, grad_x, grad_y)
            if saved is None:
                return self._each_text(J, positions, split)
            parts += saved
        parts += ['},"tensor":"t', ("d", J), '"}']
        return _fill_parts(n, parts, split)

    def _saved_parts(self, spec, J: list, X, Y, grad_x: bool, grad_y: bool):
        """The parts of :meth:`_group` that write the saved values of functions ``J`` (first slots
        ``X``, second ``Y``; ``grad_x``/``grad_y`` whether every one requires grad) of a kind-1 spec,
        or None where the entries differ in a way the columns do not show (written one at a time)."""
        req, values = self.g.req, self.g.value
        parts = []
        for pre, source, arg, when, unsaved in spec[2]:
            if parts:
                parts.append(",")
            if when is not None and not (grad_x if when == 0 else grad_y):
                if any(w >= 0 and req[w] for w in (X if when == 0 else Y)):  # saved for some only
                    return None
                parts.append(unsaved)
                continue
            if source == 2:
                parts.append(pre)
                continue
            if source == 0:
                K = X if arg == 0 else Y
                if not (grad_x if arg == 0 else grad_y) and min(K) < 0:  # a constant in that slot
                    return None
            elif source == 1:
                K = J
            else:  # derived from the context: only an input's sizes (sum, mean, reshape...) here
                column = self._sizes_texts(spec[5], pre, X, grad_x)
                if column is None:
                    return None
                parts += [pre, ("s", column)]
                continue
            parts += [pre, ("s", self.value.texts(list(itemgetter(*K)(values))))]
        return parts

    def _sizes_texts(self, op, pre: str, X, grad_x: bool):
        """The texts of ``self_sym_sizes`` (``self_sym_numel``) of entries whose first slots are
        ``X``, for the rows that derive only these from their input ("self", the first slot):
        its shape (its number of elements); None for any other derived value."""
        from .. import ops

        if not ((op.derived is ops.input_sizes and pre == '"self_sym_sizes":') or (
                op.derived is ops.input_sizes_numel and pre in ('"self_sym_sizes":', '"self_sym_numel":'))):
            return None
        if not op.inputs or op.inputs[0] != "self" or not (grad_x or min(X) >= 0):
            return None
        shapes = [tuple(getattr(v, "shape", ())) for v in itemgetter(*X)(self.g.value)]
        if pre == '"self_sym_numel":':
            return list(map(str, map(math.prod, shapes)))
        return self.value.shape_texts(shapes)

    def _each_text(self, J, positions, split: bool):
        texts = self._each(J, positions)
        return texts if split else ",".join(texts)

    def _each(self, indices, positions) -> list[str]:
        """The entries of the functions at ``indices`` (at ``positions``), one at a time."""
        g, fpos, value = self.g, self.fpos, self.value
        ops, a, b, req, values, consts, params = g.op, g.a, g.b, g.req, g.value, g.consts, g.params
        more, input_names = g.more, g.input_names
        n_inputs = len(input_names) if self.plain_inputs else 0
        specs = self.specs
        memo_get = value.memo.get
        parts = []
        append = parts.append
        for i, k in zip(indices, positions):
            op = ops[i]
            if op is None:
                if i < n_inputs:
                    append(f'{{"id":"f{k}","name":"AccumulateGrad","next_functions":[],'
                           f'"variable":"{input_names[i]}","tensor":"t{i}"}}')
                else:
                    append(f'{{"id":"f{k}","name":"AccumulateGrad","next_functions":[],'
                           f'"variable":{_str(g.name_of(i))},"tensor":"t{i}"}}')
                continue
            p = params[i]
            spec = specs.get((id(op), id(p)))
            if spec is None:
                spec = self._spec(op, p)
            kind = spec[0]
            if kind == 2 or (more and i in more):
                append(self._general_text(i, k))
                continue
            x, y = a[i], b[i]
            nexts = f'"f{fpos[x]}"' if x >= 0 and req[x] else "null"
            if y != -2:
                nexts += f',"f{fpos[y]}"' if y >= 0 and req[y] else ",null"
            if kind == 0:
                append(spec[1] % (k, nexts, i))
                continue
            texts = []
            for pre, source, arg, when, unsaved in spec[2]:
                if when is not None:
                    j = x if when == 0 else y
                    if not (j >= 0 and req[j]):  # unsaved: a SymInt list reads back as ()
                        texts.append(unsaved)
                        continue
                if source == 0:
                    j = x if arg == 0 else y
                    if j >= 0:
                        v = values[j]
                        vt = memo_get(v) if type(v) is float else None
                        texts.append(pre + (vt or value(v)))
                    else:
                        texts.append(pre + saved_text(consts[(i, arg)]))
                elif source == 2:
                    texts.append(pre)
                elif source == 1:
                    texts.append(pre + value(values[i]))
                else:
                    texts.append(f'{pre}{saved_text(g.context(i)[pre[1:-2]])}')
            append(spec[1] % (k, nexts, ",".join(texts), i))
        return parts

    def _general_text(self, i: int, k: int) -> str:
        """Any function's entry (an imported one; one of three or more tensor slots)."""
        g, fpos, value = self.g, self.fpos, self.value
        op, req, values = g.op[i], g.req, g.value
        if op.key == "imported":
            return _imported_text(g, i, fpos, value)
        x, y = g.a[i], g.b[i]
        nexts = f'"f{fpos[x]}"' if x >= 0 and req[x] else "null"
        if y != -2:
            nexts += f',"f{fpos[y]}"' if y >= 0 and req[y] else ",null"
        slots = g.operands(i) if g.more and i in g.more else None  # three or more tensor slots
        if slots is not None:  # torch.cat of three or more tensors
            nexts += "".join(f',"f{fpos[j]}"' if j >= 0 and req[j] else ",null" for j in g.more[i])
        p = g.params[i]
        texts = []
        for name, source, arg, when in op.plan:
            if name[0] == "_":  # read by the rule, not shown
                continue
            if when is not None:
                j = x if when == 0 else y if when == 1 else slots[when]
                if not (j >= 0 and req[j]):  # unsaved: a SymInt list reads back as ()
                    texts.append(f'"{name}":[]' if name.endswith("_sym_strides") else f'"{name}":null')
                    continue
            if source == "input":
                j = x if arg == 0 else y if arg == 1 else slots[arg]
                if j >= 0:
                    texts.append(f'"{name}":{value(values[j])}')
                else:
                    texts.append(f'"{name}":{saved_text(g.consts[(i, arg)])}')
            elif source == "result":
                texts.append(f'"{name}":{value(values[i])}')
            elif source == "param":
                texts.append(f'"{name}":{saved_text(p[arg])}')
            else:
                texts.append(f'"{name}":{saved_text(g.context(i)[name])}')
        return _FUNCTION % (k, op.torch_name, nexts, ",".join(texts), i)


_FUNCTION = '{"id":"f%d","name":"%s","next_functions":[%s],"saved":{%s},"tensor":"t%d"}'


def _imported_text(g, i: int, fpos, value) -> str:
    """An imported function's entry (from_torch, --from-json): as an op row's, plus what only an
    imported graph holds — each saved tensor's shape and dtype, the gradients measured on its
    edges, the module that made its output."""
    e = g.imported[i]
    nexts = ",".join("null" if j is None else f'"f{fpos[j]}"' for j in e.next_functions)
    saved = ",".join(f"{_string(k)}:{_saved_text(v, value)}" for k, v in e.saved.items())
    text = (f'{{"id":"f{fpos[i]}","name":{_string(g.op[i].torch_name)},"next_functions":[{nexts}],'
            f'"saved":{{{saved}}},"tensor":"t{i}"')
    if e.saved_meta:
        meta = ",".join(f'{_string(k)}:{{"shape":{_shapes_text(shape)},"dtype":{_string(dtype)}}}'
                        for k, (shape, dtype) in e.saved_meta.items())
        text += f',"saved_tensors":{{{meta}}}'
    if e.grad_in is not None:
        text += f',"grad_in":{value(e.grad_in)}'
    if e.grads_out is not None:
        text += ',"grads_out":[' + ",".join(value(v) for v in e.grads_out) + "]"
    if e.module:
        text += f',"module":{_string(e.module)}'
    return text + "}"


def _shapes_text(shape) -> str:
    """A shape, or a list of shapes (a saved list of tensors)."""
    if all(type(n) is int for n in shape):
        return _shape_text(shape)
    return "[" + ",".join(_shape_text(s) for s in shape) + "]"


def _saved_text(v, value) -> str:
    """A saved value of an imported function: a tensor's values as the tape's, else as given."""
    if hasattr(v, "dtype") and getattr(v, "ndim", 0) > 0:
        return value(v)
    if type(v) is str:
        return _string(v)  # e.g. GELU's approximate="none"
    if type(v) is tuple and any(type(x) is str or hasattr(x, "dtype") for x in v):
        return "[" + ",".join(_saved_text(x, value) for x in v) + "]"  # (a saved list of tensors: one level)
    return saved_text(v)


# The tensors' entries of the two common kinds, a batch in one formatting call: an input (a
# leaf, named, no span) and the result of an op that needs grad, reached from the root.
_LEAF_TENSOR = ('{"id":"t%d","name":%s,"span":null,"data":%s,"shape":%s,"requires_grad":%s,'
                '"is_leaf":true,"grad_fn":null,"grad":%s}')
_OP_TENSOR = ('{"id":"t%d","name":null,"span":[%d,%d],"data":%s,"shape":%s,"requires_grad":true,'
              '"is_leaf":false,"grad_fn":"f%d","grad":%s}')


class _Tensors:
    """The tensors' entries as text, a batch of consecutive tensors at a time."""

    def __init__(self, g, fpos, value, plain: bool):
        self.g, self.fpos, self.value, self.plain = g, fpos, value, plain
        self.labels = sorted(g.names)  # tensors named otherwise than as an input
        n_inputs = len(g.input_names)
        self.grads = sorted(i for i in g.grad if i >= n_inputs)  # (retained grads, late inputs')
        self.none_id = id(None)

    def texts(self, lo: int, hi: int) -> str:
        g, value = self.g, self.value
        labels = self.labels
        if not labels or bisect_left(labels, lo) == bisect_left(labels, hi):
            ops = g.op[lo:hi]
            kinds = set(map(id, ops))
            if hi <= len(g.input_names) and kinds == {self.none_id}:
                names = g.input_names[lo:hi]
                if "" not in names:  # (an empty name has a span)
                    return _fill_parts(hi - lo, [
                        '{"id":"t', ("d", range(lo, hi)), '","name":', *_string_parts(names, self.plain),
                        ',"span":null,"data":', ("s", value.texts(g.value[lo:hi])),
                        ',"shape":', ("s", value.shape_texts(g.shape[lo:hi])),
                        ',"requires_grad":', ("s", list(map(_BOOLS.__getitem__, g.req[lo:hi]))),
                        ',"is_leaf":true,"grad_fn":null,"grad":', ("s", value.texts(list(map(g.grad.get, range(lo, hi))))),
                        "}"])
            elif (self.none_id not in kinds and self.fpos is not None and g.req.count(0, lo, hi) == 0
                  and min(g.start[lo:hi]) >= 0):
                fpos = self.fpos[lo:hi]
                if min(fpos) >= 0:
                    grads = self.grads
                    return _fill_parts(hi - lo, [
                        '{"id":"t', ("d", range(lo, hi)), '","name":null,"span":[', ("d", g.start[lo:hi]),
                        ",", ("d", g.end[lo:hi]), '],"data":', ("s", value.texts(g.value[lo:hi])),
                        ',"shape":', ("s", value.shape_texts(g.shape[lo:hi])),
                        ',"requires_grad":true,"is_leaf":false,"grad_fn":"f', ("d", fpos), '","grad":',
                        ("s", value.texts(list(map(g.grad.get, range(lo, hi)))))
                        if grads and bisect_left(grads, lo) != bisect_left(grads, hi) else "null",
                        "}"])
        return ",".join(_tensor_texts(g, range(lo, hi), self.fpos, value))


def _fill_parts(n: int, parts: list, split: bool = False):
    """``n`` entries' text, from literal text and columns ("d", ints) or ("s", texts); a column of
    one text throughout is written into the template. Joined by "," (or, with ``split``, a list)."""
    template, columns = [], []
    for part in parts:
        if type(part) is str:
            template.append(part.replace("%", "%%"))
            continue
        code, column = part
        if code == "s" and column.count(column[0]) == n:
            template.append(column[0].replace("%", "%%"))
        else:
            template.append("%" + code)
            columns.append(column)
    template = "".join(template)
    if not columns:
        return [template.replace("%%", "%")] * n if split else ",".join([template.replace("%%", "%")] * n)
    return _fill_each(template, columns) if split else _fill(template, columns)


def _tensor_texts(g, indices, fpos, value) -> list[str]:
    """Any tensors' entries, one at a time."""
    ops, req, values, shapes, starts, ends, grads = g.op, g.req, g.value, g.shape, g.start, g.end, g.grad
    name_of, labels, input_names = g.name_of, g.names, g.input_names
    n_inputs = len(input_names)
    parts = []
    append = parts.append
    for i in indices:
        vt = value(values[i])
        start = starts[i]
        name = name_of(i) if labels else (input_names[i] if i < n_inputs else None)
        has_fn = ops[i] is not None and req[i]
        grad = grads.get(i)
        append(f'{{"id":"t{i}","name":{"null" if name is None else _string(name)},'
               f'"span":{"null" if name or start < 0 else f"[{start},{ends[i]}]"},'
               f'"data":{vt},"shape":{_shape_text(shapes[i]) if shapes[i] else "[]"},'
               f'"requires_grad":{"true" if req[i] else "false"},'
               f'"is_leaf":{"false" if has_fn else "true"},'
               f'"grad_fn":{chr(34) + "f" + str(fpos[i]) + chr(34) if has_fn and fpos is not None and fpos[i] >= 0 else "null"},'
               f'"grad":{"null" if grad is None else value(grad)}}}')
    return parts
