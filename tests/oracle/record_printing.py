"""Record tests/fixtures/torch_print.json: how PyTorch prints a table of tensors.

Run from the repo root:   python -m tests.oracle.record_printing   (needs torch)

Each case is a tensor (its values, shape and dtype) and print options
(``torch.set_printoptions``); torch's ``repr`` of it is recorded, and
``tests/test_numbers.py`` compares :func:`gradviz.numbers.tensor_repr` with it.
Deterministic: the values come from a seeded generator and are stored as given to torch.
"""
from __future__ import annotations

import json
import os
import sys

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import numpy as np  # noqa: E402
import torch  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torch_print.json")
DEFAULTS = dict(precision=4, threshold=1000, edgeitems=3, linewidth=80, sci_mode=None)


def build_cases():
    rng = np.random.default_rng(17)
    cases = []

    def add(values, dtype="float32", **options):
        cases.append({"values": np.asarray(values, dtype=np.float64).tolist(), "shape":
                      list(np.shape(values)), "dtype": dtype, "options": options})

    for x in (4.0, 0.0, -0.0, 2.5, -1.5, 0.9093, 1e-5, 123456789.0, 1e8, 3e9, float("inf"),
              float("-inf"), float("nan"), 1 / 3, 100.0, -7.0):
        add(x)
        add(x, "float64")
    add([1.0, 2.0, 3.0])
    add([[1.0, 2.0], [3.0, 4.0]])
    add([-1.5, 2.0])
    add([0.5, 1000.0])
    add([0.5, 999.0])
    add([float("nan"), 1.0])
    add([0.0, float("inf"), -2.5])
    add([1.0, -10.0, 100.0])
    add([1.0, 1001.0])
    add([0.0, 0.0])
    add([-0.0, 1.0])
    add([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9], [1.0, 1.1, -1.2]])  # the 4x3
    for scale in (1e-6, 1e-3, 1.0, 100.0, 1e9):
        add(rng.normal(size=5) * scale)
        add(rng.normal(size=(3, 4)) * scale, "float64")
    add(np.round(rng.normal(size=6) * 10))
    add(np.arange(1000) / 10)  # at the threshold: whole
    add(np.arange(1001) / 10)  # above it: corners
    add(np.arange(30) * 1.5)  # wraps at the line width
    add(rng.normal(size=(40, 30)))  # summarized matrix
    add(rng.normal(size=(2, 3, 4)))
    add(rng.normal(size=(12, 3, 30)))
    add(np.ones((100, 100)))
    add(np.zeros((2, 0)))
    add(np.zeros((0,)))
    add(np.zeros((0, 3)), "float64")
    add(np.arange(12.0).reshape(4, 3) / 7)
    # print options
    m = rng.normal(size=(4, 3))
    for p in (0, 1, 2, 6, 8):
        add(m, precision=p)
        add(1 / 3, precision=p)
    for t in (1, 5, 11, 12):
        add(m, threshold=t)
    for e in (0, 1, 2):
        add(np.arange(20) / 3, threshold=5, edgeitems=e)
        add(rng.normal(size=(6, 7)), threshold=5, edgeitems=e)
    for w in (20, 40, 200):
        add(np.arange(30) / 7, linewidth=w)
    add(m, sci_mode=True)
    add([1.0, 1e5], sci_mode=False)
    add([1e-6, 1.0], sci_mode=False)
    add(2.0, sci_mode=True)
    return cases


def record(case) -> str:
    torch.set_printoptions(**{**DEFAULTS, **case["options"]})
    try:
        values = np.asarray(case["values"], dtype=np.float64).reshape(case["shape"])
        t = torch.tensor(values, dtype=getattr(torch, case["dtype"]))
        return repr(t)
    finally:
        torch.set_printoptions(**DEFAULTS)


def main() -> None:
    cases = build_cases()
    for c in cases:
        c["repr"] = record(c)
    data = {"torch": torch.__version__, "cases": cases}
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
