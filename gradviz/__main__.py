"""python -m gradviz, and the gradviz command (:func:`entry`)."""

import signal
import sys

from .errors import Interrupted, raise_interrupted


def entry() -> None:
    """The gradviz command. Ctrl-C and SIGTERM raise :class:`Interrupted` from the start,
    before click and the rest are imported: one line and exit 130 (143), never a traceback."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, raise_interrupted)
    try:
        from .cli import main

        main()
    except Interrupted as exc:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        try:
            sys.stderr.write(f"error: {exc.render()}\n")
            sys.stderr.flush()
        except (OSError, AttributeError, ValueError):
            pass
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    entry()
