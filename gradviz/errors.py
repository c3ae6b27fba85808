"""Errors gradviz reports to the user.

Every error a user can cause is a :class:`GradvizError`; the CLI prints its
``message`` (one line, or the expression with a caret for parse errors) and
exits with ``exit_code`` (2: bad input or usage).
"""

from __future__ import annotations

import re

_AT_COLUMN = re.compile(r"\bat column (\d+)")


class GradvizError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""

    exit_code = 2
    #: what the JSON error document calls it (``"error": {"kind": ...}``)
    kind = "usage"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def column(self) -> int | None:
        """The 1-based column in the expression the message names ("at column 5"), or None."""
        m = _AT_COLUMN.search(self.message)
        return int(m.group(1)) if m else None

    def render(self) -> str:
        """The text shown to the user (may span lines, e.g. a caret under a column); user
        text in it has its control characters escaped (see :func:`printable`)."""
        return printable(self.message)


class ParseError(GradvizError):
    """The expression text is not valid; ``column`` is 1-based (None if unknown)."""

    kind = "parse"
    column = None  # set per instance

    def __init__(self, message: str, source: str | None = None, column: int | None = None):
        if column is not None and "column" not in message:
            message = f"{message} at column {column}"
        super().__init__(message)
        self.source = source
        self.column = column

    def render(self) -> str:
        if self.source is None or self.column is None or "\n" in self.source:
            return printable(self.message)
        # The caret goes under the escaped text: a control character shows as \x1b, 4 columns.
        col = len(printable(self.source[: self.column - 1])) + 1
        src = printable(self.source)
        # Long expressions: show a window around the column so the caret stays readable.
        if len(src) > 76:
            start = max(0, col - 1 - 38)
            end = min(len(src), start + 76)
            prefix = "..." if start > 0 else ""
            suffix = "..." if end < len(src) else ""
            window = prefix + src[start:end] + suffix
            caret_at = len(prefix) + (col - 1 - start)
        else:
            window, caret_at = src, col - 1
        return f"{printable(self.message)}\n  {window}\n  {' ' * caret_at}^"


class EvalError(GradvizError):
    """The expression parsed but cannot be evaluated (missing value, shape mismatch...)."""

    kind = "eval"


class RenderError(GradvizError):
    """A view cannot be produced (e.g. PNG asked for and no Graphviz 'dot' installed)."""

    kind = "render"


class UsageError(GradvizError):
    """Command-line options that do not fit together or cannot be read."""


def error_document(message: str, kind: str, line: int | None = None, column: int | None = None) -> dict:
    """The ``gradviz/1`` document --json prints for an error (the schema's ``error_document``)."""
    return {"schema": "gradviz/1", "error": {"message": message, "line": line, "column": column, "kind": kind}}


def document_of(exc: BaseException, line: int | None = None) -> dict:
    """:func:`error_document` for an exception: a GradvizError, a resource limit, or a bug."""
    if isinstance(exc, GradvizError):
        if line is None and exc.kind in ("parse", "eval"):
            line = 1  # the one expression
        return error_document(exc.message, exc.kind, line, exc.column)
    if isinstance(exc, (RecursionError, MemoryError)):
        return error_document(LIMIT_MESSAGES[type(exc)], "limit", line)
    return error_document(internal_message(exc), "internal", line)


LIMIT_MESSAGES = {
    RecursionError: "the input is nested too deeply to process",
    MemoryError: "out of memory: the input is too large (see the --max-* limits)",
}


def internal_message(exc: BaseException) -> str:
    """The one line for a bug in gradviz (never a traceback)."""
    return f"internal error ({type(exc).__name__}: {exc}); please report it"


def printable(text: str) -> str:
    """``text`` with what a terminal would act on instead of show escaped as Python does
    (``\\x1b``, ``\\x00``, ``\\u202e``): control and format characters, line and
    paragraph separators, lone surrogates (undecodable bytes in argv). An error message
    echoing the user's text must not set the terminal's title or hide part of itself."""
    if text.isprintable():  # the common case, and fast
        return text
    import unicodedata

    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch) in _ESCAPED else ch for ch in text)


#: Unicode categories escaped: control, format (bidi overrides), surrogate, private use,
#: unassigned, line and paragraph separators
_ESCAPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived (see :func:`raise_interrupted`).

    A BaseException, so that click does not turn it into "Aborted!" and library code does
    not catch it as an error; ``finally`` blocks run on the way out (the ``-o`` temporary
    is removed). The command line reports it in one line and exits 128 + the signal number.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def render(self) -> str:
        import signal

        name = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}
        return f"{name.get(self.signum, 'stopped')} ({signal.Signals(self.signum).name})"


def raise_interrupted(signum, frame):
    """A signal handler: raise :class:`Interrupted` where the program is."""
    raise Interrupted(signum)
