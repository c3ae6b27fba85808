"""Errors gradviz reports to the user.

Every error a user can cause is a :class:`GradvizError`; the CLI prints its
``message`` (one line, or the expression with a caret for parse errors) and
exits with ``exit_code`` (2: bad input or usage).
"""

from __future__ import annotations


class GradvizError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def render(self) -> str:
        """The text shown to the user (may span lines, e.g. a caret under a column)."""
        return self.message


class ParseError(GradvizError):
    """The expression text is not valid; ``column`` is 1-based (None if unknown)."""

    def __init__(self, message: str, source: str | None = None, column: int | None = None):
        if column is not None and "column" not in message:
            message = f"{message} at column {column}"
        super().__init__(message)
        self.source = source
        self.column = column

    def render(self) -> str:
        if self.source is None or self.column is None or "\n" in self.source:
            return self.message
        src = self.source
        col = self.column
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
        return f"{self.message}\n  {window}\n  {' ' * caret_at}^"


class EvalError(GradvizError):
    """The expression parsed but cannot be evaluated (missing value, shape mismatch...)."""


class RenderError(GradvizError):
    """A view cannot be produced (e.g. PNG asked for and no Graphviz 'dot' installed)."""


class UsageError(GradvizError):
    """Command-line options that do not fit together or cannot be read."""
