"""Where the time of a large --json run goes: each phase in one process, µs per term.

Not a test: it prints a markdown table. The phases are the ones ``gradviz -f F --at-file A --json``
runs in turn — the --at values made numbers (coerce), the parser driving the tracer (parse +
trace, which includes tokenizing; tokenizing alone is shown too), the backward pass, and the JSON
document written to a file — each timed in CPU time of this process (``time.process_time``: the
machine may be shared) and the best of ``--repeat`` runs shown.

    python bench/phases.py                      # the four bench workloads
    python bench/phases.py --n 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import GENERAL_MAX_N, TENSOR_MAX_N, write_chain  # noqa: E402

from gradviz import engine, parser  # noqa: E402
from gradviz.tracing import trace_source  # noqa: E402
from gradviz.render import jsondoc  # noqa: E402
from gradviz.result import Trace, coerce_values  # noqa: E402

PHASES = ("tokenize", "coerce", "parse + trace", "backward", "JSON")
WORKLOADS = (("mul", "x0*x1 + x1*x2 + ..."), ("sin", "sin(x0)*x1 + ..."),
             ("maximum", "maximum(x0, x1)*x1 + ..."), ("tensor", "sigmoid(W @ x0 + b).sum() + ..."))


def _best(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def phases(expr: str, at: dict, repeat: int, out_path: str) -> dict:
    """CPU seconds of each phase (best of ``repeat``) for one expression and its values."""
    limits = dict(max_terms=10**9, max_depth=10**9)
    values = {}
    times = {"tokenize": _best(repeat, lambda: sum(1 for _ in parser.tokenize(expr))),
             "coerce": _best(repeat, lambda: values.update(coerce_values(at)))}
    times["parse + trace"] = _best(repeat, lambda: trace_source(expr, values, **limits))
    graphs = [trace_source(expr, values, **limits) for _ in range(repeat)]  # backward changes its graph
    times["backward"] = _best(repeat, lambda: engine.backward(graphs.pop(), None, record_steps=False))
    # a graph per run: the JSON pays for the functions' depth-first order, which a graph keeps once made
    results = []
    for _ in range(repeat):
        graph = trace_source(expr, values, **limits)
        engine.backward(graph, None, record_steps=False)
        results.append(Trace(graph, [], None, []))

    def write():
        with open(out_path, "w", encoding="utf-8") as fh:
            for piece in jsondoc.iter_json(results.pop()):
                fh.write(piece)
    times["JSON"] = _best(repeat, write)
    times["bytes"] = os.path.getsize(out_path)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=GENERAL_MAX_N, help="terms (the tensor workload: at most 10,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each phase (best shown)")
    args = ap.parse_args(argv)
    gc.disable()  # as the command runs these phases (gradviz.collector.gc_paused)
    print(f"| workload | N | {' | '.join(PHASES)} | total | JSON bytes/term |")
    print("|---|---:|" + "---:|" * (len(PHASES) + 2))
    with tempfile.TemporaryDirectory(prefix="gradviz-phases-") as tmp:
        for kind, label in WORKLOADS:
            n = min(args.n, TENSOR_MAX_N) if kind == "tensor" else args.n
            expr_path, at_path = write_chain(tmp, n, kind)
            with open(expr_path) as fh:
                expr = fh.read().strip()
            with open(at_path) as fh:
                at = json.load(fh)
            t = phases(expr, at, args.repeat, os.path.join(tmp, "out.json"))
            total = sum(t[p] for p in PHASES if p != "tokenize")  # parse + trace includes tokenizing
            cells = " | ".join(f"{t[p] * 1e6 / n:.1f}" for p in PHASES)
            print(f"| `{label}` | {n:,} | {cells} | {total * 1e6 / n:.1f} | {t['bytes'] / n:.0f} |", flush=True)
    print("\nµs per term, CPU time of one process, best of", args.repeat, "runs; parse + trace includes tokenize.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
