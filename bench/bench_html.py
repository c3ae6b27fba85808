"""The interactive page (``-o graph.html``) on a 2,000-node graph: its size, writing it against
writing the SVG, its first paint and each backward step in Chromium.

Not a test: it prints a markdown table with the targets of issue 12 beside each figure.

    python bench/bench_html.py               # 3 runs of each command, every step timed
    python bench/bench_html.py --runs 5 --functions 2000

Writing is a whole process (``gradviz -f chain.txt --at-file chain.json -o big.html`` against
``-o big.svg``, median of ``--runs``); first paint and steps are measured in Debian's Chromium,
driven by Playwright (``/usr/bin/chromium``; set ``GRADVIZ_CHROMIUM`` for another). First paint
is the browser's first-contentful-paint entry, from the start of navigation; a step is
``gradviz.goto(k)`` with the style and layout it causes (forced at once, so they are counted).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHROMIUM = os.environ.get("GRADVIZ_CHROMIUM", "/usr/bin/chromium")
TARGETS = {"size": 2_000_000, "paint": 1.0, "step": 0.050, "ratio": 1.5}
KINDS = {"mul": "x{i}*x{j}", "sin": "sin(x{i})*x{j}"}


def write_chain(directory: str, functions: int, kind: str) -> tuple[str, str, int]:
    """A sum of products with about ``functions`` backward functions, and its inputs."""
    per_term = 3 if kind == "mul" else 4  # Mul + Add + AccumulateGrad (+ Sin)
    n = functions // per_term
    expr = os.path.join(directory, f"{kind}_{n}.txt")
    at = os.path.join(directory, f"{kind}_{n}.json")
    with open(expr, "w") as fh:
        fh.write(" + ".join(KINDS[kind].format(i=i, j=i + 1) for i in range(n)) + "\n")
    with open(at, "w") as fh:
        json.dump({f"x{i}": 0.5 + (i % 7) / 8 for i in range(n + 1)}, fh)
    return expr, at, n


def wall(cmd: list[str], runs: int) -> float:
    """Median wall time of ``cmd`` (after one warm-up run, which also fills the wasm cache)."""
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_browser(path: str, every: int) -> dict:
    """First paint, the page's own readiness and each step's time, in Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("file://" + path)
        page.wait_for_function("window.gradviz !== undefined")
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        paint = page.evaluate("""(() => {
            const p = performance.getEntriesByName('first-contentful-paint')[0];
            const n = performance.getEntriesByType('navigation')[0];
            return {fcp: p ? p.startTime : null, load: n.loadEventEnd}; })()""")
        steps = page.evaluate("""(every) => {
            const out = [], n = window.gradviz.steps;
            for (let k = 1; k <= n; k += every) {
              const t = performance.now();
              window.gradviz.goto(k);
              document.body.getBoundingClientRect();
              const a = document.querySelector('#gv-view .active');
              if (a) { a.getBBox(); }
              out.push(performance.now() - t);
            }
            return out; }""", every)
        browser.close()
    return {"paint": paint, "steps": steps, "errors": errors}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--functions", type=int, default=2000)
    ap.add_argument("--every", type=int, default=1, help="time every Nth step (default: all)")
    args = ap.parse_args(argv)
    gv = [sys.executable, "-m", "gradviz"]
    print("| graph | page size | write -o .html | write -o .svg | ratio | first paint | load | "
          "step median | step p95 | step max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        env_cache = os.path.join(tmp, "cache")
        os.environ.setdefault("GRADVIZ_CACHE_DIR", env_cache)
        # the two 2,000-function chains (drawn collapsed, as the SVG is), one drawn whole, and one
        # collapsed but small enough for the page to hold it laid out expanded too (html.EXPAND_MAX)
        for kind, functions in [("mul", args.functions), ("sin", args.functions), ("sin", 280), ("mul", 360)]:
            expr, at, n = write_chain(tmp, functions, kind)
            html, svg = os.path.join(tmp, f"{kind}_{n}.html"), os.path.join(tmp, f"{kind}_{n}.svg")
            t_html = wall(gv + ["-f", expr, "--at-file", at, "-o", html], args.runs)
            t_svg = wall(gv + ["-f", expr, "--at-file", at, "-o", svg], args.runs)
            size = os.path.getsize(html)
            b = in_browser(html, args.every) if os.path.exists(CHROMIUM) else None
            fns = json.loads(subprocess.run(gv + ["-f", expr, "--at-file", at, "--json"], check=True,
                                                  capture_output=True).stdout)["graph"]["functions"]
            label = f"`{KINDS[kind].format(i=0, j=1)} + ...` ({len(fns):,} functions)"
            if len(fns) <= 300:
                label += ", drawn whole"
            elif len(fns) <= 500:
                label += ", collapsed + expanded layout"
            if b is None:
                print(f"| {label} | {size / 1e6:.2f} MB | {t_html:.2f} s | {t_svg:.2f} s | {t_html / t_svg:.2f}× "
                      f"| (no Chromium) | | | | |")
                continue
            st = sorted(b["steps"])
            fcp = b["paint"]["fcp"]
            print(f"| {label} | {size / 1e6:.2f} MB | {t_html:.2f} s | {t_svg:.2f} s | {t_html / t_svg:.2f}× | "
                  f"{'n/a' if fcp is None else f'{fcp / 1000:.2f} s'} | {b['paint']['load'] / 1000:.2f} s | "
                  f"{statistics.median(st):.1f} ms | {st[int(len(st) * 0.95) - 1]:.1f} ms | {st[-1]:.1f} ms |")
            if b["errors"]:
                print(f"\npage errors: {b['errors']}\n")
    print(f"\nTargets (issue 12): page ≤ {TARGETS['size'] / 1e6:g} MB, first paint ≤ {TARGETS['paint']:g} s, "
          f"each step ≤ {TARGETS['step'] * 1000:g} ms, writing the page ≤ {TARGETS['ratio']:g}× writing the SVG.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
