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
    """The gradviz command."""
    import sys

    try:
        from .cli import main

        main()
    except Interrupted as exc:  # before the command took over (importing click, ...)
        for signum in STOP_SIGNALS:
            _signal.signal(signum, _signal.SIG_IGN)
        try:
            sys.stderr.write(f"error: {exc.render()}\n")
            sys.stderr.flush()
        except (OSError, AttributeError, ValueError):
            pass
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    entry()
