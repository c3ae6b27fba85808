"""The least a pure-Python program does per term of the chain's ``--json``: a floor to read
gradviz's phases (bench/phases.py) against.

Not gradviz, and not a faster gradviz: the bare work the chain ``x0*x1 + x1*x2 + ...`` needs,
each step the cheapest way CPython offers, with none of what makes a tool of it (no op table,
no errors checked, no other syntax, no views, no parentheses or spans kept):

1. tokens: one regular-expression match per token, kept as (kind, text, position);
2. trace: a precedence decision per operator; each product and sum rounded to float32 and
   appended to the tape's columns (op, operands, requires_grad, value, shape, span);
3. backward: one reversed loop over the tape, each entry's rule on floats rounded to float32,
   the gradients added;
4. JSON: each function and tensor entry formatted by one %-template, the floats' texts by
   ``repr`` (cheaper than float32's shortest text, which gradviz must write).

Each step runs in one process, timed in CPU time (``time.process_time``), best of ``--repeat``:

    python bench/floor.py --n 100000
"""

from __future__ import annotations

import argparse
import gc
import re
import time
from array import array

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>[-+*/]))")
_POWER = {"+": 10, "-": 10, "*": 20, "/": 20}
_FUNCTION = ('{"id":"f%d","name":"%s","next_functions":["f%d","f%d"],"saved":{"other":%s,"self":%s},'
             '"tensor":"t%d"}')
_TENSOR = ('{"id":"t%d","name":null,"span":[%d,%d],"data":%s,"shape":[],"requires_grad":true,'
           '"is_leaf":false,"grad_fn":"f%d","grad":null}')
_LEAF = ('{"id":"t%d","name":"%s","span":null,"data":%s,"shape":[],"requires_grad":true,"is_leaf":true,'
         '"grad_fn":null,"grad":%s}')


def tokens(source: str) -> list:
    return [(m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup)) for m in _TOKEN.finditer(source)]


def trace(toks: list, names: list, values: list) -> tuple:
    """The tape of the chain: leaves first, then each product and sum in the order reduced."""
    r = array("f", [0.0])
    n = len(names)
    index = dict(zip(names, range(n)))
    value = [float(v) for v in values]
    op, a, b = [None] * n, array("q", [-2]) * n, array("q", [-2]) * n
    req, shape, start, end = bytearray(b"\x01" * n), [()] * n, array("q", [-1]) * n, array("q", [-1]) * n
    stack, ops = [], []

    def reduce():
        o = ops.pop()
        j = stack.pop()
        i = stack.pop()
        r[0] = value[i] * value[j] if o == "*" else value[i] + value[j]
        k = len(value)
        value.append(r[0])
        op.append(o)
        a.append(i)
        b.append(j)
        req.append(1)
        shape.append(())
        start.append(start[i] if i >= n else 0)
        end.append(0)
        stack.append(k)

    for kind, text, pos in toks:
        if kind == "name":
            stack.append(index[text])
        else:
            while ops and _POWER[ops[-1]] >= _POWER[text]:
                reduce()
            ops.append(text)
    while ops:
        reduce()
    return op, a, b, value, start, end


def backward(op, a, b, value, n_leaves: int) -> list:
    r = array("f", [0.0])
    grad = [0.0] * len(value)
    grad[-1] = 1.0
    for k in range(len(value) - 1, n_leaves - 1, -1):
        g = grad[k]
        i, j = a[k], b[k]
        if op[k] == "*":
            r[0] = grad[i] + g * value[j]
            grad[i] = r[0]
            r[0] = grad[j] + g * value[i]
            grad[j] = r[0]
        else:
            r[0] = grad[i] + g
            grad[i] = r[0]
            r[0] = grad[j] + g
            grad[j] = r[0]
    return grad


def json_text(op, a, b, value, start, end, names: list, grad: list) -> int:
    """The functions and tensors entries (depth-first ids taken as tape indices: no walk)."""
    n = len(names)
    pieces = []
    add = pieces.append
    for k in range(len(value) - 1, n - 1, -1):
        if op[k] == "*":
            add(_FUNCTION % (k, "MulBackward0", a[k], b[k], repr(value[b[k]]), repr(value[a[k]]), k))
        else:
            add(_FUNCTION % (k, "AddBackward0", a[k], b[k], "1", "1", k))
    for k in range(n):
        add(_LEAF % (k, names[k], repr(value[k]), repr(grad[k])))
    for k in range(n, len(value)):
        add(_TENSOR % (k, start[k], end[k], repr(value[k]), k))
    return len(",".join(pieces))


def _best(repeat: int, run):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = run()
        best = min(best, time.process_time() - t)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="products in the chain")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each step (best shown)")
    args = ap.parse_args(argv)
    n = args.n
    names = [f"x{i}" for i in range(n + 1)]
    values = [((i * 7) % 16 + 1) / 8 for i in range(n + 1)]
    source = " + ".join(f"x{i}*x{i + 1}" for i in range(n))
    gc.disable()
    t_tok, toks = _best(args.repeat, lambda: tokens(source))
    t_trace, tape = _best(args.repeat, lambda: trace(toks, names, values))
    op, a, b, value, start, end = tape
    t_back, grad = _best(args.repeat, lambda: backward(op, a, b, value, len(names)))
    t_json, _ = _best(args.repeat, lambda: json_text(op, a, b, value, start, end, names, grad))
    us = [t / n * 1e6 for t in (t_tok, t_trace, t_back, t_json)]
    print("| N | tokens | trace | backward | JSON | total |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {n:,} | " + " | ".join(f"{u:.1f}" for u in us) + f" | {sum(us):.1f} |")
    print("\nµs per term, CPU time of one process, best of", args.repeat, "runs: the floor of the work alone.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
