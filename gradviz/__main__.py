"""python -m gradviz, and the gradviz command (:func:`entry`).

Ctrl-C, SIGTERM and SIGHUP raise :class:`gradviz.errors.Interrupted` from the moment this
module is imported, before click and the rest are: one line and exit 128 + N, never a
traceback (``_signal``, not ``signal``, which would import enum first).
"""

import _signal

from .errors import Interrupted, raise_interrupted

STOP_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)
for _signum in STOP_SIGNALS:
    _signal.signal(_signum, raise_interrupted)


def entry() -> None:
    """The gradviz command: runs it, then ends the process (:func:`_end`)."""
    import sys

    code = 0
    try:
        from .cli import main

        main()
    except SystemExit as exc:  # the command's own end: sys.exit(code)
        code = exc.code
    except Interrupted as exc:  # before the command took over (importing click, ...)
        for signum in STOP_SIGNALS:
            _signal.signal(signum, _signal.SIG_IGN)
        try:
            sys.stderr.write(f"error: {exc.render()}\n")
            sys.stderr.flush()
        except (OSError, AttributeError, ValueError):
            pass
        code = exc.exit_code
    _end(code)


def _end(code) -> None:
    """Exit with ``code`` (as ``sys.exit`` reads it) once stdout and stderr are flushed, without
    the interpreter's teardown: every file gradviz writes is already closed (output.py writes and
    closes before it renames), so the teardown would only free memory the system frees anyway and
    run wasmtime's finalizers: 10-20 ms of a 50-130 ms run, seconds after a million-term graph."""
    import os
    import sys

    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): the message on stderr, exit 1
        try:
            sys.stderr.write(f"{code}\n")
        except (OSError, AttributeError, ValueError):
            pass
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # cli.main flushed stdout and reported any failure already
            pass
    os._exit(code & 0xFF if code >= 0 else 1)


if __name__ == "__main__":
    entry()
