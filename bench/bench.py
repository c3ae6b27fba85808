"""gradviz against PyTorch on the same work, in one run: start-up, scale, a large SVG.

Not a test: it prints markdown tables of wall times, peak memory and ratios.

    python bench/bench.py                    # everything, N up to 1,000,000 terms
    python bench/bench.py --max-n 100000     # a quicker run
    python bench/bench.py --runs 3 --no-torch

Every measurement is a whole process (``gradviz`` as a user runs it, or a python
script doing the same work with torch); peak memory is that process's own
``ru_maxrss`` (from ``os.wait4``). PyTorch parts run only where ``torch`` (and, for
the diagram, ``torchviz``) can be imported; see bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

EXPR = "u*v + u**2"
AT = "u=1,v=2"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
SVG_FUNCTIONS = 2_000  # backward functions in the large diagram
GENERAL_MAX_N = 100_000  # largest N of the function tables
TENSOR_MAX_N = 10_000  # largest N of the tensor table (each term is five small-array ops)

# The lecture's example as a PyTorch user writes it.
TORCH_SCRIPT = """
import torch
u = torch.tensor(1., requires_grad=True)
v = torch.tensor(2., requires_grad=True)
f = u*v + u**2
f.backward()
print(f"f = {f.item()}, df/du = {u.grad.item()}, df/dv = {v.grad.item()}")
"""

# torchviz's way to the same picture: make_dot, then Graphviz renders it (when 'dot' exists).
TORCHVIZ_SCRIPT = """
import sys, torch, torchviz
u = torch.tensor(1., requires_grad=True)
v = torch.tensor(2., requires_grad=True)
f = u*v + u**2
dot = torchviz.make_dot(f, params={"u": u, "v": v})
if sys.argv[1] == "render":
    dot.render(sys.argv[2], format="svg", cleanup=True)
else:
    dot.source  # make_dot only: no Graphviz 'dot' program to render with
"""

# The scale workload in PyTorch: the same leaves and the same left-to-right graph,
# x0*x1 + x1*x2 + ..., built in a Python loop; backward. Import and file reading excluded.
TORCH_SCALE_SCRIPT = """
import json, sys, time
import torch
n = int(sys.argv[1])
with open(sys.argv[2]) as fh:
    values = json.load(fh)
start = time.perf_counter()
xs = [torch.tensor(values[f"x{i}"], requires_grad=True) for i in range(n + (sys.argv[3] != "tensor"))]
if sys.argv[3] == "sin":
    f = torch.sin(xs[0]) * xs[1]
    for i in range(1, n):
        f = f + torch.sin(xs[i]) * xs[i + 1]
elif sys.argv[3] == "maximum":
    f = torch.maximum(xs[0], xs[1]) * xs[1]
    for i in range(1, n):
        f = f + torch.maximum(xs[i], xs[i + 1]) * xs[i + 1]
elif sys.argv[3] == "tensor":
    W = torch.tensor(values["W"], requires_grad=True)
    b = torch.tensor(values["b"], requires_grad=True)
    f = torch.sigmoid(W @ xs[0] + b).sum()
    for i in range(1, n):
        f = f + torch.sigmoid(W @ xs[i] + b).sum()
else:
    f = xs[0] * xs[1]
    for i in range(1, n):
        f = f + xs[i] * xs[i + 1]
built = time.perf_counter()
f.backward()
done = time.perf_counter()
print(json.dumps({"forward": built - start, "backward": done - built, "value": f.item()}))
"""

TORCHVIZ_SCALE_SCRIPT = """
import json, sys, time
import torch, torchviz
n = int(sys.argv[1])
with open(sys.argv[2]) as fh:
    values = json.load(fh)
xs = [torch.tensor(values[f"x{i}"], requires_grad=True) for i in range(n + 1)]
f = xs[0] * xs[1]
for i in range(1, n):
    f = f + xs[i] * xs[i + 1]
start = time.perf_counter()
dot = torchviz.make_dot(f)
if sys.argv[3] == "render":
    dot.render(sys.argv[4], format="svg", cleanup=True)
else:
    dot.source
print(json.dumps({"make_dot": time.perf_counter() - start}))
"""


class Run:
    """One finished process: wall seconds, peak RSS in bytes, exit code, its stdout/stderr, and its
    CPU seconds in user and in system mode (the system's: page faults, on these VMs ~10-25 µs each)."""

    def __init__(self, wall, rss, code, out, err, user=0.0, system=0.0):
        self.wall, self.rss, self.code, self.out, self.err = wall, rss, code, out, err
        self.user, self.system = user, system

    @property
    def ok(self) -> bool:
        return self.code == 0


def run(cmd, env, cwd=None, timeout=None, mem_limit=None, keep_stdout=False) -> Run:
    """Run ``cmd`` to completion; its own peak memory comes from wait4 (not the bench's)."""

    def limit():
        if mem_limit:
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out if keep_stdout else subprocess.DEVNULL, stderr=err,
                                env=env, cwd=cwd, preexec_fn=limit)
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_maxrss * 1024, code, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"), usage.ru_utime, usage.ru_stime)


def median_run(cmd, env, runs, cwd=None) -> Run:
    """The run with the median wall time of ``runs`` (after one discarded warm-up run)."""
    run(cmd, env, cwd=cwd)  # warm-up: file cache, bytecode cache
    results = sorted((run(cmd, env, cwd=cwd) for _ in range(runs)), key=lambda r: r.wall)
    failed = [r for r in results if not r.ok]
    if failed:
        return failed[0]
    return results[len(results) // 2]


def gradviz_command() -> list[str]:
    """The installed console script beside this interpreter (a pyenv shim would add ~0.15 s)."""
    beside = os.path.join(os.path.dirname(sys.executable), "gradviz")
    if os.path.exists(beside):
        return [beside]
    return [sys.executable, "-m", "gradviz"]


def child_env(bytecode_dir: str | None) -> dict:
    """The environment for measured processes.

    With ``bytecode_dir``, Python caches compiled modules there (as an installed package has
    them); PYTHONDONTWRITEBYTECODE would otherwise make every run recompile gradviz.
    """
    env = dict(os.environ)
    if bytecode_dir:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode_dir
    return env


def importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# ---------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------


#: term templates: "mul" is arithmetic (0-d values as Python floats on the tape), "sin" calls a
#: function (numpy's sin on the float, for numpy's bits), "maximum" a function of two tensors
#: (floats too), "tensor" small matrices and vectors (numpy arrays: W is 3x3, x_i and b 3)
TERMS = {"mul": "x{i}*x{j}", "sin": "sin(x{i})*x{j}", "maximum": "maximum(x{i}, x{j})*x{j}",
         "tensor": "sigmoid(W @ x{i} + b).sum()"}


def write_chain(directory: str, n: int, kind: str = "mul") -> tuple[str, str]:
    """x0*x1 + x1*x2 + ... (n products; sin(x0)*x1 + ... for "sin", ...) and values for x0..xn."""
    expr = os.path.join(directory, f"{'chain' if kind == 'mul' else kind}_{n}.txt")
    at = os.path.join(directory, f"{'tensor' if kind == 'tensor' else 'chain'}_{n}.json")
    if not os.path.exists(expr):
        with open(expr, "w") as fh:
            fh.write(" + ".join(TERMS[kind].format(i=i, j=i + 1) for i in range(n)))
            fh.write("\n")
    if not os.path.exists(at):
        with open(at, "w") as fh:
            # multiples of 1/8: exact in float32, so both sides start from the same numbers
            if kind == "tensor":
                values = {"W": [[0.25, -0.5, 0.125], [0.5, 0.375, -0.25], [-0.125, 0.25, 0.5]],
                          "b": [0.125, -0.25, 0.375]}
                values.update({f"x{i}": [(i % 7) / 8 - 0.25, (i % 5) / 8, 0.5 - (i % 3) / 8] for i in range(n)})
                json.dump(values, fh)
            else:
                json.dump({f"x{i}": 0.5 + (i % 7) / 8 for i in range(n + 1)}, fh)
    return expr, at


def cold_start(gv, env, runs, tmp, torch_ok, torchviz_ok, dot_ok) -> list[tuple]:
    rows = []
    torch_run = median_run([sys.executable, "-c", TORCH_SCRIPT], env, runs) if torch_ok else None
    for label, extra in ((f'`gradviz "{EXPR}" --at {AT}`', []), (f'`gradviz "{EXPR}" --at {AT} --json`', ["--json"])):
        rows.append((label, median_run(gv + [EXPR, "--at", AT] + extra, env, runs),
                     "torch script" if torch_ok else None, torch_run))
    svg = median_run(gv + [EXPR, "--at", AT, "-o", "f.svg"], env, runs, cwd=tmp)
    viz = None
    viz_label = None
    if torchviz_ok:
        mode = "render" if dot_ok else "source"
        viz = median_run([sys.executable, "-c", TORCHVIZ_SCRIPT, mode, os.path.join(tmp, "torchviz_f")], env, runs)
        viz_label = "torchviz make_dot + render" if dot_ok else "torchviz make_dot (no `dot` to render)"
    rows.append((f'`gradviz "{EXPR}" --at {AT} -o f.svg`', svg, viz_label, viz))
    return rows


def scale(gv, env, sizes, tmp, torch_ok, mem_limit, timeout, kind: str = "mul", runs: int = 1) -> list[tuple]:
    """Per N: gradviz's and PyTorch's runs, the median of ``runs`` (one run from a million terms on)."""
    rows = []
    for n in sizes:
        expr, at = write_chain(tmp, n, kind)
        print(f"  {kind} N = {n:,} ...", file=sys.stderr, flush=True)
        count = runs if n < 1_000_000 else 1
        mine = _median([run(gv + ["-f", expr, "--at-file", at, "--json"], env, timeout=timeout, mem_limit=mem_limit)
                        for _ in range(count)], lambda r: r.wall)
        theirs = None
        if torch_ok:
            theirs = _median([run([sys.executable, "-c", TORCH_SCALE_SCRIPT, str(n), at, kind], env, timeout=timeout,
                                  mem_limit=mem_limit, keep_stdout=True) for _ in range(count)], _torch_time)
        rows.append((n, mine, theirs))
    return rows


def views(gv, env, sizes, tmp, mem_limit, timeout) -> list[tuple]:
    """Per N: the terminal tree and the SVG of the chain (both read the same graph as --json)."""
    rows = []
    for n in sizes:
        expr, at = write_chain(tmp, n)
        print(f"  views N = {n:,} ...", file=sys.stderr, flush=True)
        tree = run(gv + ["-f", expr, "--at-file", at, "--format", "tree"], env, timeout=timeout, mem_limit=mem_limit)
        svg = run(gv + ["-f", expr, "--at-file", at, "-o", os.path.join(tmp, f"big_{n}.svg")], env,
                  timeout=timeout, mem_limit=mem_limit)
        rows.append((n, tree, svg))
    return rows


def _torch_time(r: Run) -> float:
    parts = json.loads(r.out.strip().splitlines()[-1])
    return parts["forward"] + parts["backward"]


def _median(results: list, key) -> Run:
    """The run with the median ``key`` among those that succeeded (else the first)."""
    ok = sorted((r for r in results if r.ok), key=key)
    return ok[(len(ok) - 1) // 2] if ok else results[0]


def scale_table(rows) -> None:
    print("| N | gradviz wall | µs/term | peak RSS | PyTorch fwd + bwd | µs/term | peak RSS | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, mine, theirs in rows:
        their_time = None
        if theirs is not None and theirs.ok:
            their_time = _torch_time(theirs)
        per_mine = f"{mine.wall / n * 1e6:.1f}" if mine.ok else "–"
        per_theirs = f"{their_time / n * 1e6:.1f}" if their_time else "–"
        print(f"| {n:,} | {secs(mine)} | {per_mine} | {mb(mine)} | {secs(theirs, their_time)} | {per_theirs} "
              f"| {mb(theirs)} | {ratio(their_time, mine.wall if mine.ok else None)} |", flush=True)


def large_svg(gv, env, tmp, torchviz_ok, dot_ok, timeout) -> tuple:
    n = SVG_FUNCTIONS // 3  # n products: n Mul + (n - 1) Add + (n + 1) AccumulateGrad functions
    expr, at = write_chain(tmp, n)
    out = os.path.join(tmp, "big.svg")
    mine = run(gv + ["-f", expr, "--at-file", at, "-o", out], env, timeout=timeout)
    size = os.path.getsize(out) if os.path.exists(out) else None
    viz = None
    if torchviz_ok:
        mode = "render" if dot_ok else "source"
        viz = run([sys.executable, "-c", TORCHVIZ_SCALE_SCRIPT, str(n), at, mode, os.path.join(tmp, "torchviz_big")],
                  env, timeout=timeout, keep_stdout=True)
    return n, mine, size, viz


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def secs(r: Run | None, value: float | None = None) -> str:
    if r is None:
        return "–"
    if not r.ok:
        return failure(r)
    return f"{(r.wall if value is None else value):.3f} s"


def mb(r: Run | None) -> str:
    return "–" if r is None or not r.ok else f"{r.rss / 2**20:.0f} MB"


def cpu(r: Run | None) -> str:
    return "–" if r is None or not r.ok else f"{r.user:.1f} / {r.system:.1f} s"


def failure(r: Run) -> str:
    last = (r.err.strip().splitlines() or [f"exit {r.code}"])[-1]
    if r.code < 0:
        last = f"killed by signal {-r.code}"
    return f"failed ({last[:60]})"


def ratio(theirs: float | None, mine: float | None) -> str:
    if not theirs or not mine:
        return "–"
    return f"{theirs / mine:.1f}×"


def machine() -> str:
    load = os.getloadavg()
    try:
        import numpy

        np_version = numpy.__version__
    except ImportError:
        np_version = "?"
    torch_version = "not installed"
    if importable("torch"):
        torch_version = run([sys.executable, "-c", "import torch; print(torch.__version__)"], os.environ,
                            keep_stdout=True).out.strip()
    cpu = platform.processor() or platform.machine()
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
            f"Python {platform.python_version()}, numpy {np_version}, torch {torch_version}; "
            f"load average at start {load[0]:.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per cold-start command (median shown)")
    ap.add_argument("--max-n", type=int, default=SIZES[-1], help="largest expression size to run")
    ap.add_argument("--scale-runs", type=int, default=3, help="runs per scale row below 1,000,000 (median shown)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    ap.add_argument("--mem-limit-gb", type=float, default=12.0,
                    help="address-space limit for each scale run (a runaway run fails instead of swapping)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is killed")
    ap.add_argument("--env-bytecode", action="store_true",
                    help="keep the environment's PYTHONDONTWRITEBYTECODE (every run recompiles gradviz)")
    args = ap.parse_args(argv)

    gv = gradviz_command()
    torch_ok = not args.no_torch and importable("torch")
    torchviz_ok = torch_ok and importable("torchviz")
    dot_ok = shutil.which("dot") is not None
    sizes = [n for n in SIZES if n <= args.max_n]
    mem_limit = int(args.mem_limit_gb * 2**30) if args.mem_limit_gb else None

    print(f"Machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="gradviz-bench-") as tmp:
        env = child_env(None if args.env_bytecode else os.path.join(tmp, "pycache"))
        print(f"gradviz: {' '.join(gv)}", file=sys.stderr)

        print(f"### Cold start (whole process, median of {args.runs} runs)\n")
        print("| gradviz command | wall | peak RSS | PyTorch equivalent | wall | peak RSS | speed-up |")
        print("|---|---:|---:|---|---:|---:|---:|")
        for label, mine, their_label, theirs in cold_start(gv, env, args.runs, tmp, torch_ok, torchviz_ok, dot_ok):
            print(f"| {label} | {secs(mine)} | {mb(mine)} | {their_label or '–'} | {secs(theirs)} | {mb(theirs)} "
                  f"| {ratio(theirs.wall if theirs and theirs.ok else None, mine.wall if mine.ok else None)} |")

        print(f"\n### Scale: x0*x1 + x1*x2 + ... (N products), median of {args.scale_runs} runs (one at 1,000,000)\n")
        print("gradviz: `gradviz -f chain.txt --at-file chain.json --json > /dev/null` (whole process: "
              "start-up, read, parse, forward, backward, JSON). PyTorch: the same leaves and graph built "
              "in a Python loop, then backward (import and file reading excluded; peak RSS includes the import).\n")
        scale_table(scale(gv, env, sizes, tmp, torch_ok, mem_limit, args.timeout, runs=args.scale_runs))

        smaller = [n for n in sizes if n <= GENERAL_MAX_N]
        print(f"\n### Scale with a function: sin(x0)*x1 + sin(x1)*x2 + ... (N terms), median of {args.scale_runs} runs\n")
        print("`sin` (forward and gradient rule) runs numpy on the tape's float; same measurement as above.\n")
        scale_table(scale(gv, env, smaller, tmp, torch_ok, mem_limit, args.timeout, kind="sin", runs=args.scale_runs))
        print(f"\n### A function of two tensors: maximum(x0, x1)*x1 + ... (N terms), median of {args.scale_runs} runs\n")
        print("maximum selects between floats (no numpy); same measurement as above.\n")
        scale_table(scale(gv, env, smaller, tmp, torch_ok, mem_limit, args.timeout, kind="maximum",
                          runs=args.scale_runs))
        print(f"\n### Tensors: sigmoid(W @ x0 + b).sum() + ... (N terms, W 3x3), median of {args.scale_runs} runs\n")
        print("Every value a small numpy array (W @ x_i is MvBackward0); same measurement as above.\n")
        scale_table(scale(gv, env, [n for n in smaller if n <= TENSOR_MAX_N], tmp, torch_ok, mem_limit,
                          args.timeout, kind="tensor", runs=args.scale_runs))

        print("\n### Views of the chain: `--format tree` and `-o big.svg` (whole process, one run each)\n")
        print("| N | tree wall | user / sys | peak RSS | svg wall | user / sys | peak RSS |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for n, tree, svg in views(gv, env, sizes, tmp, mem_limit, args.timeout):
            print(f"| {n:,} | {secs(tree)} | {cpu(tree)} | {mb(tree)} | {secs(svg)} | {cpu(svg)} | {mb(svg)} |")

        print(f"\n### SVG of a {SVG_FUNCTIONS:,}-node graph\n")
        n, mine, size, viz = large_svg(gv, env, tmp, torchviz_ok, dot_ok, args.timeout)
        note = " ".join(line.strip() for line in mine.err.splitlines() if line.strip())[:160]
        print("| command | wall | peak RSS | output |")
        print("|---|---:|---:|---|")
        print(f"| `gradviz -f chain_{n}.txt --at-file chain_{n}.json -o big.svg` | {secs(mine)} | {mb(mine)} "
              f"| {f'{size / 1024:.0f} KB' if size else '–'}{'; ' + note if note else ''} |")
        if viz is not None:
            what = "make_dot + render" if dot_ok else "make_dot only (no `dot` to render)"
            part = json.loads(viz.out.strip().splitlines()[-1])["make_dot"] if viz.ok else None
            print(f"| torchviz {what}, same graph | {secs(viz)} | {mb(viz)} "
                  f"| {f'{part:.3f} s of it in make_dot' if part is not None else ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
