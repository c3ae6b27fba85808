"""gradviz.from_torch + SVG against torchviz's make_dot + render, on the same real tensors.

Not a test: it prints a markdown table (wall time of each phase, the process's peak memory).

    pip install torch==2.13.0            # the PyTorch side (CPU build)
    pip install torchviz --no-deps       # optional: torchviz (it renders through the system 'dot')
    python bench/bench_from_torch.py     # every row (a minute or two)
    python bench/bench_from_torch.py --runs 3

Each row is its own process (``--one MODEL TOOL``), so that its peak memory (``ru_maxrss``,
read with ``os.wait4``) is its own; the figures are the median of ``--runs`` processes. The
models are written here with plain torch.nn:

* ``block``: one transformer block (attention, layernorm, GELU, softmax, cross-entropy),
* ``encoder26``: ``nn.TransformerEncoder`` of 26 layers (~2,000 backward functions).

gradviz draws at most 300 functions by default (``max_nodes``, the nearest to the output,
what it left out said in a note); the ``gradviz all`` rows draw every function as torchviz
does. torchviz's own render needs the system ``dot``: where it is missing its DOT is laid out
by gradviz's embedded Graphviz instead (the same layout engine), and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def build(name: str):
    """(model, loss) for a model name, deterministic."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    if name == "block":
        class Attention(nn.Module):
            def __init__(self, d, heads):
                super().__init__()
                self.heads, self.qkv, self.proj = heads, nn.Linear(d, 3 * d), nn.Linear(d, d)

            def forward(self, x):
                b, n, d = x.shape
                q, k, v = (t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)
                           for t in self.qkv(x).chunk(3, dim=-1))
                att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
                return self.proj((att @ v).transpose(1, 2).reshape(b, n, d))

        class Block(nn.Module):
            def __init__(self, d=16, vocab=10):
                super().__init__()
                self.embed, self.ln1, self.attn = nn.Embedding(vocab, d), nn.LayerNorm(d), Attention(d, 2)
                self.ln2, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)
                self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

            def forward(self, tokens):
                x = self.embed(tokens)
                x = x + self.attn(self.ln1(x))
                return self.head(x + self.ff(self.ln2(x)))

        model = Block()
        tokens = torch.randint(0, 10, (2, 8))
        logits = model(tokens)
        return model, F.cross_entropy(logits.reshape(-1, 10), tokens.reshape(-1))
    if name == "encoder26":
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        model = nn.TransformerEncoder(layer, 26, enable_nested_tensor=False)
        return model, model(torch.randn(2, 6, 16)).pow(2).mean()
    raise SystemExit(f"unknown model {name!r}")


def one(name: str, tool: str) -> dict:
    """One measurement, in this process: phase -> seconds (and what was drawn)."""
    t0 = time.perf_counter()
    model, loss = build(name)
    out: dict = {"build": time.perf_counter() - t0}
    if tool.startswith("gradviz"):
        import gradviz
        from gradviz.render.dot import dot_source
        from gradviz.render.svg import render

        import torch

        # One plain backward first (what a training step pays for it, for comparison).
        t0 = time.perf_counter()
        torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
        out["backward"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        t = gradviz.from_torch(loss, params=model)
        out["read"] = time.perf_counter() - t0
        out["functions"] = t.graph.function_count()
        t0 = time.perf_counter()
        source = dot_source(t, max_nodes=10 ** 6 if tool == "gradviz-all" else 300)
        out["dot"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        svg = render(source, "svg")
        out["svg"] = time.perf_counter() - t0
        out["svg_bytes"] = len(svg)
        t0 = time.perf_counter()
        out["json_bytes"] = len(t.to_json())
        out["json"] = time.perf_counter() - t0
        return out
    from torchviz import make_dot

    t0 = time.perf_counter()
    dot = make_dot(loss, params=dict(model.named_parameters()))
    out["read"] = time.perf_counter() - t0  # make_dot walks the graph and writes the DOT
    out["dot"] = 0.0
    t0 = time.perf_counter()
    if shutil.which("dot"):
        svg = dot.pipe(format="svg")
        out["renderer"] = "system dot"
    else:  # torchviz cannot render here: its DOT through the same Graphviz, embedded
        from gradviz.render.svg import render

        svg = render(dot.source, "svg")
        out["renderer"] = "embedded (no system dot)"
    out["svg"] = time.perf_counter() - t0
    out["svg_bytes"] = len(svg)
    return out


def measure(name: str, tool: str, runs: int) -> dict:
    rows = []
    for _ in range(runs):
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen([sys.executable, __file__, "--one", name, tool], stdout=subprocess.PIPE,
                                    stderr=err, text=True)
            text = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)  # (reaped here: its own peak memory)
            proc.returncode = status
            err.seek(0)
            lines = err.read().strip().splitlines()
        if status != 0:
            return {"error": (lines[-1] if lines else f"exit status {status}")[:160]}
        row = json.loads(text)
        row["peak_mb"] = usage.ru_maxrss / 1024
        rows.append(row)
    return {k: statistics.median(r[k] for r in rows) if isinstance(rows[0][k], (int, float)) else rows[0][k]
            for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "TOOL"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    try:
        import torchviz  # noqa: F401
        tools = ["gradviz", "gradviz-all", "torchviz"]
    except ImportError:
        tools = ["gradviz", "gradviz-all"]
        print("torchviz is not installed (pip install torchviz --no-deps): its rows are left out\n")
    print("| graph | tool | functions | a plain backward, first (s) | read graph (s) | DOT (s) | SVG layout (s) "
          "| read + DOT + SVG (s) | SVG | peak RSS |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("block", "encoder26"):
        for tool in tools:
            r = measure(name, tool, args.runs)
            if "error" in r:
                print(f"| {name} | {tool} | {r['error']} ||||||||")
                continue
            label = {"gradviz": "gradviz (300 nearest)", "gradviz-all": "gradviz (all drawn)",
                     "torchviz": f"torchviz make_dot + {r.get('renderer', '')}"}[tool]
            total = r["read"] + r["dot"] + r["svg"]
            backward = f"{r['backward']:.2f}" if "backward" in r else "—"
            print(f"| {name} | {label} | {r.get('functions', '')} | {backward} | {r['read']:.2f} | {r['dot']:.2f} | "
                  f"{r['svg']:.2f} | {total:.2f} | {r['svg_bytes'] / 1e3:.0f} kB | {r['peak_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
