"""DOT text, built with method calls: the part of the ``graphviz`` package's ``Digraph`` that the
diagrams use, writing the same text byte for byte (tests/test_dot.py compares the two).

Importing the ``graphviz`` package costs ~10 ms (its rendering backends, subprocess and the
Jupyter integration), a tenth of a whole ``-o f.svg`` run; gradviz renders with the embedded
Graphviz (render/svg.py) and only needs the text.

Quoting follows ``graphviz.quoting.quote``: a DOT ID (a name or a numeral) that is not a keyword
stays bare; an HTML-like ``<...>`` stays as it is unless it is :func:`nohtml`; anything else is
put in double quotes, with quotes not already escaped escaped. Attributes given as keyword
arguments are written sorted by name, as ``graphviz`` writes a plain dict's.
"""

from __future__ import annotations

import contextlib
import re

__all__ = ["Digraph", "NoHtml", "nohtml", "quote"]

_HTML = re.compile(r"<.*>$", re.DOTALL)
_ID = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*|-?(\.[0-9]+|[0-9]+(\.[0-9]*)?))$")
_KEYWORDS = frozenset({"node", "edge", "graph", "digraph", "subgraph", "strict"})
_UNESCAPED_QUOTE = re.compile(r'(?P<escaped_backslashes>(?:\\{2})*)\\?(?P<literal_quote>")')


class NoHtml(str):
    """A string whose ``<...>`` is text, not a DOT HTML-like label."""

    __slots__ = ()


def nohtml(s: str) -> NoHtml:
    """``s`` quoted as text even when it starts with ``<`` and ends with ``>``."""
    return NoHtml(s)


def quote(identifier: str) -> str:
    """``identifier`` as a DOT ID: bare when it may be, else in double quotes."""
    if _HTML.match(identifier) and not isinstance(identifier, NoHtml):
        return identifier
    if not _ID.match(identifier) or identifier.lower() in _KEYWORDS:
        return '"' + _UNESCAPED_QUOTE.sub(r"\g<escaped_backslashes>\\\g<literal_quote>", identifier) + '"'
    return identifier


def _quote_edge(identifier: str) -> str:
    node, _, rest = identifier.partition(":")
    parts = [quote(node)]
    if rest:
        port, _, compass = rest.partition(":")
        parts.append(quote(port))
        if compass:
            parts.append(compass)
    return ":".join(parts)


def _a_list(label: str | None, attrs: dict) -> str:
    items = [f"label={quote(label)}"] if label is not None else []
    items += [f"{quote(k)}={quote(v)}" for k, v in sorted(attrs.items()) if v is not None]
    return " ".join(items)


def _attr_list(label: str | None, attrs: dict) -> str:
    content = _a_list(label, attrs)
    return f" [{content}]" if content else ""


class Digraph:
    """A directed graph's DOT text: ``node``, ``edge``, ``attr``, ``subgraph`` append lines to
    ``body``; ``source`` is the whole text."""

    def __init__(self, name: str | None = None, *, graph_attr: dict | None = None,
                 node_attr: dict | None = None, edge_attr: dict | None = None):
        self.name = name
        self.graph_attr = dict(graph_attr or {})
        self.node_attr = dict(node_attr or {})
        self.edge_attr = dict(edge_attr or {})
        self.body: list[str] = []

    def node(self, name: str, label: str | None = None, **attrs) -> None:
        self.body.append(f"\t{quote(name)}{_attr_list(label, attrs)}\n")

    def edge(self, tail_name: str, head_name: str, label: str | None = None, **attrs) -> None:
        self.body.append(f"\t{_quote_edge(tail_name)} -> {_quote_edge(head_name)}{_attr_list(label, attrs)}\n")

    def attr(self, kw: str | None = None, **attrs) -> None:
        """A graph attribute statement (``kw`` None), or one for every graph/node/edge."""
        if kw is not None and kw.lower() not in ("graph", "node", "edge"):
            raise ValueError(f"attr statement must target graph, node, or edge: {kw!r}")
        if attrs:
            line = _a_list(None, attrs) if kw is None else f"{kw}{_attr_list(None, attrs)}"
            self.body.append(f"\t{line}\n")

    def subgraph(self, graph: "Digraph | None" = None, name: str | None = None, **attrs):
        """Add ``graph``'s text as a subgraph; with no graph, a context manager yielding a new
        subgraph (named ``name``) that is added when the ``with`` block ends."""
        if graph is None:
            sub = Digraph(name, graph_attr=attrs.get("graph_attr"), node_attr=attrs.get("node_attr"),
                          edge_attr=attrs.get("edge_attr"))
            return self._adding(sub)
        self.body += [f"\t{line}" for line in graph._lines(subgraph=True)]
        return None

    @contextlib.contextmanager
    def _adding(self, sub: "Digraph"):
        yield sub
        self.subgraph(sub)

    def _lines(self, subgraph: bool = False):
        name = quote(self.name) + " " if self.name else ""
        yield (f"subgraph {name}{{\n" if self.name else "{\n") if subgraph else f"digraph {name}{{\n"
        for kw in ("graph", "node", "edge"):
            attrs = getattr(self, f"{kw}_attr")
            if attrs:
                yield f"\t{kw}{_attr_list(None, attrs)}\n"
        yield from self.body
        yield "}\n"

    @property
    def source(self) -> str:
        return "".join(self._lines())

    def __str__(self) -> str:
        return self.source
