"""The JSON document (schema ``gradviz/1``): the public contract for programs.

Every document is strict JSON: nan and ±inf are written as the strings "NaN",
"Infinity" and "-Infinity". The same input gives byte-identical output: ids are
assigned deterministically and keys are written in a fixed order.
"""

from __future__ import annotations

import json
import math
from array import array as _array
from typing import Iterator

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
_F32 = _array("f", [0.0])
_SMALLEST_NORMAL_F32 = 1.1754943508222875e-38


def _str(s) -> str:
    return "null" if s is None else _string(s)


def _bool(b) -> str:
    return "true" if b else "false"


def f32_text(v: float) -> str:
    """A float32 value's JSON text: the shortest decimal that reads back to it in float32
    (numpy's ``str(np.float32(v))``: 0.1, not 0.10000000149); nan and ±inf as the strings
    the schema uses."""
    if v != v:
        return '"NaN"'
    if v == 0:
        return repr(v)  # 0.0 or -0.0
    if v in (math.inf, -math.inf):
        return '"Infinity"' if v > 0 else '"-Infinity"'
    a = abs(v)
    if a < _SMALLEST_NORMAL_F32 or math.frexp(a)[0] == 0.5:
        return _f32_text_careful(v)
    # A float32 interval here is symmetric, so if p digits read back, so do p + 1: find the
    # shortest from 8 down (most values need 8 or 9 digits).
    b = _F32
    f8 = float("%.8g" % v)
    b[0] = f8
    if b[0] != v:
        return repr(float("%.9g" % v))
    f7 = float("%.7g" % v)
    b[0] = f7
    if b[0] != v:
        return repr(f8)
    # Six significant digits are always finer than a float32 interval is wide, so when the
    # shortest has at most 6 digits it is '%.6g' (which drops trailing zeros).
    f6 = float("%.6g" % v)
    b[0] = f6
    return repr(f6 if b[0] == v else f7)


def _f32_text_careful(v: float) -> str:
    """f32_text for subnormals (coarser than 6 digits) and powers of two (whose interval is
    twice as wide above as below): every digit count, the nearest decimal first."""
    b = _F32
    for p in range(1, 10):
        s = "%.*e" % (p - 1, v)
        f = float(s)
        b[0] = f
        if b[0] == v:
            return repr(f)
        mantissa, exponent = s.split("e")
        digits = int(mantissa.replace(".", ""))
        e = int(exponent) - (p - 1)
        for d in ((digits - 1, digits + 1) if v > 0 else (digits + 1, digits - 1)):
            f = float(f"{d}e{e}")
            b[0] = f
            if b[0] == v:
                return repr(f)
    return repr(float("%.9g" % v))


def f64_text(v: float) -> str:
    """A float64 value's JSON text (nan and ±inf as the schema's strings)."""
    if v != v:
        return '"NaN"'
    if v in (math.inf, -math.inf):
        return '"Infinity"' if v > 0 else '"-Infinity"'
    return repr(v)


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
    return dumps(saved_value(v))


def dumps(doc) -> str:
    """Serialize a document: one line, strict JSON (no NaN literals), stable key order."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).translate(_LINE_SAFE)


_MEMO = 1 << 16  # distinct values whose text is remembered while writing a document


class _Values:
    """Tensor values' text for one document: the tape's floats (remembered, as a leaf's value is
    written up to four times) and arrays."""

    def __init__(self, dtype: str):
        self.text = f32_text if dtype == "float32" else f64_text
        self.memo: dict = {}
        #: id of an array the graph holds (alive while the document is written) -> its text:
        #: a weight matrix is saved by every function that uses it
        self.arrays: dict = {}

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

    def array_text(self, a) -> str:
        """``dumps(array(a))``, written directly for float arrays."""
        if a.size == 0 or a.ndim == 0 or a.dtype.kind != "f":
            return dumps(array(a))
        if (a.dtype.itemsize == 4) != (self.text is f32_text):  # a float32 constant in a float64 run
            return dumps(array(a))
        text, memo_get = self.text, self.memo.get
        items = [memo_get(x) or text(x) for x in a.ravel().tolist()]
        for size in reversed(a.shape[1:]):
            items = ["[" + ",".join(items[k:k + size]) + "]" for k in range(0, len(items), size)]
        return "[" + ",".join(items) + "]"


def _shape_text(shape) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def iter_json(result, batch: int = 4096) -> Iterator[str]:
    """The ``gradviz/1`` document's text in pieces of ``batch`` entries, read from the graph's tape
    (a million-term document never exists whole in memory)."""
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
    yield ",".join(
        f'{_string(name)}:{{"data":{value(g.value[i])},"shape":{_shape_text(g.shape[i])},'
        f'"requires_grad":{_bool(g.req[i])},"grad":{value(g.grad.get(i))}}}'
        for name, i in g.input_index.items())
    yield f'}},"graph":{{"root":{"null" if g.root_index is None else chr(34) + "f0" + chr(34)},"functions":['
    order = g.order()
    functions = _Functions(g, fpos, value)
    for lo in range(0, len(order), batch):
        yield ("," if lo else "") + ",".join(functions.texts(order[lo:lo + batch]))
    yield '],"tensors":['
    n = len(g.value)
    for lo in range(0, n, batch):
        yield ("," if lo else "") + ",".join(_tensor_texts(g, range(lo, min(lo + batch, n)), fpos, value))
    yield "]}"
    if result.backward_error:
        yield f',"backward_error":{dumps(result.backward_error)}'
    for key, section in result.extras.items():
        yield f",{dumps(key)}:{dumps(section)}"
    yield "}"


class _Functions:
    """The graph's functions' entries as text, with what is the same for every use of an op row
    (its name's text; the saved values' text when they are only its params) written once."""

    def __init__(self, g, fpos, value):
        self.g, self.fpos, self.value = g, fpos, value
        self.fixed: dict = {}  # (id of the op, id of its params dict) -> the saved values' text

    def texts(self, indices) -> list[str]:
        g, fpos, value = self.g, self.fpos, self.value
        ops, a, b, req, values, consts, params = g.op, g.a, g.b, g.req, g.value, g.consts, g.params
        fixed = self.fixed
        memo_get = value.memo.get
        parts = []
        for i in indices:
            op = ops[i]
            if op is None:
                parts.append(f'{{"id":"f{fpos[i]}","name":"AccumulateGrad","next_functions":[],'
                             f'"variable":{_str(g.name_of(i))},"tensor":"t{i}"}}')
                continue
            if op.key == "imported":
                parts.append(_imported_text(g, i, fpos, value))
                continue
            x, y = a[i], b[i]
            nexts = f'"f{fpos[x]}"' if x >= 0 and req[x] else "null"
            if y != -2:
                nexts += f',"f{fpos[y]}"' if y >= 0 and req[y] else ",null"
            slots = g.operands(i) if g.more and i in g.more else None  # three or more tensor slots
            if g.more and i in g.more:  # torch.cat of three or more tensors
                nexts += "".join(f',"f{fpos[k]}"' if k >= 0 and req[k] else ",null" for k in g.more[i])
            p = params[i]
            key = (id(op), id(p))
            saved = fixed.get(key)
            if saved is None:
                texts = []
                only_params = True
                for name, source, arg, when in op.plan:
                    if name[0] == "_":  # read by the rule, not shown
                        continue
                    if when is not None:
                        only_params = False
                        k = x if when == 0 else y if when == 1 else slots[when]
                        if not (k >= 0 and req[k]):  # unsaved: a SymInt list reads back as ()
                            texts.append(f'"{name}":[]' if name.endswith("_sym_strides") else f'"{name}":null')
                            continue
                    if source == "input":
                        only_params = False
                        k = x if arg == 0 else y if arg == 1 else slots[arg]
                        if k >= 0:
                            v = values[k]
                            vt = memo_get(v) if type(v) is float else None
                            texts.append(f'"{name}":{vt or value(v)}')
                        else:
                            texts.append(f'"{name}":{saved_text(consts[(i, arg)])}')
                    elif source == "result":
                        only_params = False
                        texts.append(f'"{name}":{value(values[i])}')
                    elif source == "param":
                        texts.append(f'"{name}":{saved_text(p[arg])}')
                    else:
                        only_params = False
                        texts.append(f'"{name}":{saved_text(g.context(i)[name])}')
                saved = ",".join(texts)
                if only_params and len(fixed) < 256:
                    fixed[key] = saved
            parts.append(_FUNCTION % (fpos[i], op.torch_name, nexts, saved, i))
        return parts


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



# The commonest tensor entry: a 0-d result of an op that needs grad, reached from the root.
_OP_TENSOR = ('{"id":"t%d","name":null,"span":[%d,%d],"data":%s,"shape":[],"requires_grad":true,'
              '"is_leaf":false,"grad_fn":"f%d","grad":null}')


def _tensor_texts(g, indices, fpos, value) -> list[str]:
    ops, req, values, shapes, starts, ends, grads = g.op, g.req, g.value, g.shape, g.start, g.end, g.grad
    name_of, labels, input_names = g.name_of, g.names, g.input_names
    n_inputs = len(input_names)
    memo_get = value.memo.get
    parts = []
    append = parts.append
    for i in indices:
        v = values[i]
        vt = memo_get(v) if type(v) is float else None
        if vt is None:
            vt = value(v)
        start = starts[i]
        if (i >= n_inputs and not labels and start >= 0 and ops[i] is not None and req[i]
                and not shapes[i] and fpos is not None and fpos[i] >= 0 and i not in grads):
            append(_OP_TENSOR % (i, start, ends[i], vt, fpos[i]))
            continue
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
