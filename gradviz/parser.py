"""Expression text → tokens → immutable expression tree.

The language is the arithmetic subset of Python/PyTorch: numbers, names,
``+ - * / ** @``, unary ``-``/``+``, comparisons ``< <= > >= == !=``, parentheses,
calls ``sin(x)`` and ``torch.sin(x)``, methods ``x.sum()``, keyword arguments ``dim=1``,
the attribute ``x.T``, subscripts ``x[0]``, ``M[:, 1:3]``, ``x[None, ...]``, list literals
``[a, b]`` and tuples ``(0, 1)`` (as arguments), ``None`` and ``...``.

The parser is an operator-precedence (shunting-yard) loop with explicit
stacks, never recursion: Python's own ``ast.parse`` dies with RecursionError
near 10,000 terms, and gradviz takes inputs of a million.

Binding powers, read against Python's precedence chart (highest binds tightest)::

    x.f()  x.T  f(x) x[i] postfix, tighter than everything
    **                    40, right-associative; its right operand may be unary: 2**-x
    -x  +x                30, prefix; lower than ** on its left: -x**2 is -(x**2)
    *  /  @               20, left-associative
    +  -                  10, left-associative
    <  <=  >  >=  ==  !=   5, below arithmetic (x + 1 > y is (x + 1) > y); a chained
                          comparison (a < b < c) is refused with a clear message
"""

from __future__ import annotations

import re
from itertools import chain, islice
from operator import itemgetter
from typing import Iterable, Iterator

from .errors import ParseError

from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS  # noqa: E402

BINARY = {  # symbol -> (binding power, right-associative)
    "+": (10, False),
    "-": (10, False),
    "*": (20, False),
    "/": (20, False),
    "//": (20, False),
    "@": (20, False),
    "**": (40, True),
    "<": (5, False),
    "<=": (5, False),
    ">": (5, False),
    ">=": (5, False),
    "==": (5, False),
    "!=": (5, False),
}
COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
UNARY_POWER = 30
_COMPARISON_POWER = 5
ATTRIBUTES = frozenset({"T", "values"})  # attributes (not method calls): x.T, x.max(0).values

_KEYWORDS = frozenset(
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try "
    "while with yield".split()
)

#: names read by :meth:`_Parser.name` in full (the rest, followed by one of
#: _PLAIN_NAME_FOLLOWERS, are plain operands: the loop reads them itself)
_SPECIAL_NAMES = _KEYWORDS | {"torch", "F"}
_PLAIN_NAME_FOLLOWERS = frozenset(BINARY) | {",", ")", "]", ""}
#: operators after an operand that first reduce what binds at least as tightly: the binary ones
#: (with their binding power) and what ends a group or a part of one (power 0: everything)
_REDUCING = {**BINARY, ",": (0, False), ")": (0, False), "]": (0, False), ":": (0, False)}

_TOKEN = re.compile(
    r"""
    \s*  # whitespace before a token is skipped by the same match
    (?:
        (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>'[^'\\\n]*'|"[^"\\\n]*")
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op>\*\*|//|==|!=|<=|>=|->|:=|\.\.\.|[-+*/@().,=\[\]{}%<>~&|^:;!'"\\`$?\#])
    )
    """,
    re.VERBOSE,
)
_SPACE = re.compile(r"\s*")

#: :data:`_TOKEN`'s tokens, for :func:`tokenize`'s chunks: one group per kind, read by number,
#: the commonest first (names, then operators: '-', ':' and '.' only where they do not start
#: '->', ':=' or a number, as _TOKEN reads them). A number is matched whole (the lookahead and
#: back-reference: no backtracking into it, as _TOKEN matches it) and only when no letter,
#: digit or '_' follows it (else '?': "2x"). What _TOKEN refuses or does not match is '?' too,
#: read again by _TOKEN. Every character but whitespace is in some token and trailing
#: whitespace ends with the end, so no match backtracks over a run of whitespace.
_CHUNK_TOKEN = re.compile(
    r"""
    \s*
    (?:
        ([A-Za-z_][A-Za-z_0-9]*)
      | (\*\*|//|==|!=|<=|>=|\.\.\.|-(?!>)|:(?!=)|\.(?!\d)|[+*/@(),=\[\]<>~&|!\\`$?])
      | (?=((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))\3(?!\w)
      | (?=\.?\d)(\S)
      | ('[^'\\\n]*'|"[^"\\\n]*")
      | (->|:=|[%{};'"\#^])
      | (\S)
      | (\Z)
    )
    """,
    re.VERBOSE,
)
_CHUNK_KINDS = (None, "name", "op", "number", "?", "string", "?", "?", "end")
_CHUNK = 4096  # tokens read at a time
_kind = itemgetter(0)

_UNSUPPORTED_OPS = {
    "%": "operator '%' is not supported",
    "{": "'{' is not supported",
    "}": "'}' is not supported",
    ";": "';' is not supported: write one expression",
    "'": "unterminated string (strings are plain 'text' without backslashes)",
    '"': "unterminated string (strings are plain \"text\" without backslashes)",
    "#": "comments are not supported inside an expression",
    ":=": "assignment expressions are not supported",
    "->": "'->' is not supported",
    "^": "operator '^' is not supported (use ** for powers)",
}


FUNCTION_PREFIXES = ("torch.nn.functional.", "F.", "torch.special.", "torch.linalg.", "torch.")
#: ``F.name(`` after ``import torch.nn.functional as F``: F is read as that namespace only in a call
#: dotted names that are numbers, not calls (their values: graph.CONSTANTS)
_DOTTED_CONSTANTS = frozenset({"torch.pi", "torch.e", "torch.inf", "torch.nan"})
_F_CALL = re.compile(r"\s*\.\s*[A-Za-z_]\w*\s*\(")


def function_name(name: str) -> str:
    """The function a called name means: torch.sin, torch.nn.functional.relu... are sin, relu."""
    for prefix in FUNCTION_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def tokenize(source: str) -> Iterator[tuple]:
    """The tokens of ``source`` as ``(kind, text, pos)`` — kind 'number', 'name', 'string', 'op' or
    'end', pos 0-based — ending with an 'end' token; ParseError (when read) on bad text.

    A chunk of tokens is read at a time by one regular expression (:data:`_CHUNK_TOKEN`); from
    the first text it does not take as it stands (a refused operator, a number glued to a name,
    a character of no token), :func:`_tokens_from` reads on and says what is wrong."""
    return chain.from_iterable(_chunks(source))


def _chunks(source: str) -> Iterator[Iterable[tuple]]:
    matches = _CHUNK_TOKEN.finditer(source)
    kinds = _CHUNK_KINDS
    while True:
        chunk = [(kinds[k := m.lastindex], m[k], m.start(k)) for m in islice(matches, _CHUNK)]
        if "?" in map(_kind, chunk):
            first = list(map(_kind, chunk)).index("?")
            yield chunk[:first]
            yield _tokens_from(source, chunk[first][2])
            return
        if chunk[-1][0] == "end":
            if len(chunk) > 1 and chunk[-2][0] == "end":  # (trailing whitespace, then the empty end)
                chunk.pop()
            yield chunk
            return
        yield chunk


def _tokens_from(source: str, pos: int) -> Iterator[tuple]:
    """The tokens from ``pos`` on, one match at a time, raising ParseError on bad text."""
    n = len(source)
    match = _TOKEN.match
    while True:
        m = match(source, pos)
        if m is None:
            pos = _SPACE.match(source, pos).end()
            if pos == n:
                break
            raise ParseError(f"unexpected character {source[pos]!r}", source, pos + 1)
        kind = m.lastgroup
        text = m.group(kind)
        pos = m.start(kind)
        if kind == "number":
            # "2x" or "1e5e" : a number glued to a name is not Python.
            end = m.end()
            if end < n and (source[end].isalnum() or source[end] == "_"):
                raise ParseError(
                    f"invalid number {source[pos:end + 1]!r} (missing '*'?)", source, pos + 1
                )
            yield ("number", text, pos)
        elif kind == "name" or kind == "string":
            yield (kind, text, pos)
        elif kind == "op":
            if text in _UNSUPPORTED_OPS:
                raise ParseError(_UNSUPPORTED_OPS[text], source, pos + 1)
            yield ("op", text, pos)
        pos = m.end()
    yield ("end", "", n)


class Node:
    """An immutable expression-tree node.

    kind:  'number' (value; also True/False, None and Ellipsis for ``...``), 'name' (name),
           'unary' (op, args=(operand,)), 'binary' (op, args=(left, right)), 'call' (op =
           function name, args, kwargs, method=True when written ``receiver.op(...)``; the
           receiver is args[0]), 'attr' (op = attribute name, args=(receiver,)),
           'subscript' (op '[]', args=(receiver, *items)), 'slice' (op ':', args=(start,
           stop, step), a missing part the number None), 'list' and 'tuple' (args=items).
    start/end: the 0-based half-open span of source text the node covers
           (including its parentheses), so ``source[start:end]`` is its text.
    """

    __slots__ = ("kind", "op", "args", "kwargs", "value", "method", "start", "end")

    def __init__(self, kind, op=None, args=(), kwargs=(), value=None, method=False, start=0, end=0):
        # Written through the slots' own descriptors (bound below the class): __setattr__
        # refuses every write, and object.__setattr__ per field was a third of parse time.
        _set_kind(self, kind)
        _set_op(self, op)
        _set_args(self, args if type(args) is tuple else tuple(args))
        _set_kwargs(self, kwargs if type(kwargs) is tuple else tuple(kwargs))
        _set_value(self, value)
        _set_method(self, method)
        _set_start(self, start)
        _set_end(self, end)

    def __setattr__(self, key, value):
        raise AttributeError("expression nodes are immutable")

    def with_span(self, start: int, end: int) -> "Node":
        """A copy covering a wider span (used when parentheses close around it)."""
        return Node(self.kind, self.op, self.args, self.kwargs, self.value, self.method, start, end)

    @property
    def column(self) -> int:
        """1-based column where the node starts."""
        return self.start + 1

    def __repr__(self) -> str:
        return f"Node({to_sexpr(self)})"


_set_kind, _set_op, _set_args, _set_kwargs, _set_value, _set_method, _set_start, _set_end = (
    getattr(Node, slot).__set__ for slot in ("kind", "op", "args", "kwargs", "value", "method", "start", "end")
)


def postorder(root: Node) -> list[Node]:
    """Every node after its children (kwargs' values after positional args), as a list, iteratively."""
    # Visit each node before its children, last child first; that order reversed is the
    # post-order (children left to right, then the node), with one push per node.
    order = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.args)
        if node.kwargs:
            stack.extend(value for _, value in node.kwargs)
    order.reverse()
    return order


def iter_postorder(root: Node) -> Iterator[Node]:
    """Yield every node after its children (kwargs' values after positional args), iteratively."""
    yield from postorder(root)


def to_sexpr(root: Node) -> str:
    """S-expression of a tree, e.g. ``(+ (* u v) (** u 2))``: the parser tests' notation."""
    out: dict[int, str] = {}
    for node in iter_postorder(root):
        if node.kind == "number":
            s = repr(node.value)
        elif node.kind == "name":
            s = node.op
        elif node.kind == "attr":
            s = f"(.{node.op} {out.pop(id(node.args[0]))})"
        else:
            parts = [out.pop(id(a)) for a in node.args]
            parts += [f"{k}={out.pop(id(v))}" for k, v in node.kwargs]
            head = node.op if node.kind != "call" else (("." if node.method else "") + node.op)
            if node.kind == "unary":
                head = "neg" if node.op == "-" else "pos"
            s = "(" + " ".join([head] + parts) + ")"
        out[id(node)] = s
    return out[id(root)]


# Operator-stack entries (plain tuples keep the loop fast):
#   ("bin", symbol, power, right_assoc, pos)
#   ("un", symbol, power, pos)
#   ("paren", pos)
#   ("call", name, pos, method, receiver_or_None, args_list, kwargs_list, pending_kw)


#: Python refuses longer integer literals (sys.int_info.default_max_str_digits)
MAX_INT_DIGITS = 4300


def _number(text: str, source: str, pos: int):
    if any(c in text for c in ".eE"):
        return float(text)  # 1e999 is inf, as in Python
    if len(text) > 1 and text[0] == "0" and text.strip("0"):
        raise ParseError(f"leading zeros in {text!r} are not allowed (as in Python)", source, pos + 1)
    if len(text) > MAX_INT_DIGITS:
        raise ParseError(f"integer literal of {len(text)} digits: the limit is {MAX_INT_DIGITS} "
                         f"(as in Python)", source, pos + 1)
    return int(text)


# An operand after the first follows an operator, a ',' or a call's '(': their count bounds the terms.
_OPERAND_AFTER = "+-*/@,([:<>="
# The operands themselves, for an exact count when that bound is over the limit: numbers, and names
# that are not called (f(x)), not after a '.' (x.sum(), torch.sin) and not torch.
_TERM = re.compile(r"(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
                   r"|(?<![\w.])(?!(?:torch|True|False|None)\b)[A-Za-z_]\w*(?!\w|\s*[(=])")


def check_terms(source: str, max_terms: int) -> None:
    """Refuse a text with more than ``max_terms`` numbers and names before parsing any of it.

    The parser counts too, but only after building the tree that far (2.4 GB at 5 million terms);
    this count costs a few ``str.count`` calls, and one regex scan when those cannot decide.
    """
    bound = 1 + sum(source.count(c) for c in _OPERAND_AFTER)
    if bound <= max_terms:
        return
    terms, pos, n = 0, 0, len(source)
    while pos < n:  # in chunks cut where no token continues, so that findall's lists stay small
        cut = min((i for i in (source.find(c, pos + (1 << 20)) for c in " (*") if i >= 0), default=n)
        terms += len(_TERM.findall(source, pos, cut))
        if terms > max_terms:
            raise ParseError(f"expression has more than {max_terms} terms")
        pos = cut


def parse(
    source: str,
    max_terms: int = DEFAULT_MAX_TERMS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    names: set | None = None,
    builder=None,
):
    """Parse ``source`` into a :class:`Node` tree (or whatever ``builder`` makes of it).

    Raises :class:`ParseError` naming the problem and its 1-based column.
    ``max_terms`` bounds the number of operands (numbers and names);
    ``max_depth`` bounds nesting (parentheses, calls, prefix operators).
    ``names``, when given, receives every name used as an operand (the inputs the expression
    reads), so that a caller need not walk the tree again for them.
    ``builder`` receives each reduction as it happens (:class:`TreeBuilder`'s methods, in
    post-order); the tracer is one, so a large expression is traced without a tree.
    """
    if not source.strip():
        raise ParseError("empty expression")
    check_terms(source, max_terms)
    return _Parser(source, max_terms, max_depth, names, builder or TREE).run()


class TreeBuilder:
    """What the parser makes of each reduction, in post-order: here, the :class:`Node` tree.

    Every method gets the operands already built and the span of source text; what it returns
    is an operand, which must have ``start`` and ``end``."""

    def number(self, value, start: int, end: int) -> Node:
        return Node("number", None, (), (), value, False, start, end)

    def name(self, name: str, start: int, end: int) -> Node:
        return Node("name", name, (), (), None, False, start, end)

    def unary(self, op: str, operand, start: int, end: int) -> Node:
        return Node("unary", op, (operand,), (), None, False, start, end)

    def binary(self, op: str, left, right, start: int, end: int) -> Node:
        return Node("binary", op, (left, right), (), None, False, start, end)

    def call(self, name: str, args: list, kwargs: list, method: bool, start: int, end: int) -> Node:
        return Node("call", name, args, kwargs, None, method, start, end)

    def attr(self, name: str, receiver, start: int, end: int) -> Node:
        return Node("attr", name, (receiver,), (), None, False, start, end)

    def paren(self, operand, start: int, end: int) -> Node:
        """Parentheses closed around ``operand``: it covers them."""
        return operand.with_span(start, end)

    def subscript(self, receiver, items: list, start: int, end: int) -> Node:
        """``receiver[items]``: each item an operand or a :meth:`slice`."""
        return Node("subscript", "[]", [receiver] + items, (), None, False, start, end)

    def slice(self, lo, hi, step, start: int, end: int) -> Node:
        """``lo:hi:step`` inside a subscript (a missing part is the number None)."""
        return Node("slice", ":", (lo, hi, step), (), None, False, start, end)

    def list(self, items: list, start: int, end: int) -> Node:
        return Node("list", "list", items, (), None, False, start, end)

    def tuple(self, items: list, start: int, end: int) -> Node:
        return Node("tuple", "tuple", items, (), None, False, start, end)


TREE = TreeBuilder()


class _Span:
    """An operand that is only its span (what :data:`NO_TREE` builds)."""

    __slots__ = ("start", "end")

    def __init__(self, start: int, end: int):
        self.start = start
        self.end = end


class _NoTree:
    """A builder that keeps nothing but spans: a syntax check (and the names read), no tree."""

    def _span(self, *args):  # every reduction: (..., start, end)
        return _Span(args[-2], args[-1])

    number = name = unary = binary = call = attr = subscript = slice = list = tuple = _span

    def paren(self, operand, start, end):
        operand.start, operand.end = start, end
        return operand


NO_TREE = _NoTree()


_ITEM_KINDS = frozenset({"subscript", "slice", "list", "tuple"})


def replay(root: Node, builder):
    """Drive ``builder`` from a tree, as the parser drove it (spans already cover parentheses)."""
    values: list = []
    push, pop = values.append, values.pop
    for node in postorder(root):
        kind = node.kind
        if kind == "binary":
            b = pop()
            push(builder.binary(node.op, pop(), b, node.start, node.end))
        elif kind == "name":
            push(builder.name(node.op, node.start, node.end))
        elif kind == "number":
            push(builder.number(node.value, node.start, node.end))
        elif kind == "unary":
            push(builder.unary(node.op, pop(), node.start, node.end))
        elif kind == "attr":
            push(builder.attr(node.op, pop(), node.start, node.end))
        elif kind in _ITEM_KINDS:  # subscript, slice, list, tuple: their args, in order
            items = [pop() for _ in node.args][::-1]
            if kind == "subscript":
                push(builder.subscript(items[0], items[1:], node.start, node.end))
            elif kind == "slice":
                push(builder.slice(*items, node.start, node.end))
            else:
                push(getattr(builder, kind)(items, node.start, node.end))
        else:  # call
            kwargs = [(k, pop()) for k, _ in reversed(node.kwargs)][::-1]
            args = [pop() for _ in node.args][::-1]
            push(builder.call(node.op, args, kwargs, node.method, node.start, node.end))
    return pop()


class _Parser:
    """The operator-precedence loop's state: an operand stack, an operator stack (entries
    ``("bin", op, power, right, pos)``, ``("un", op, power, pos)``, ``("paren", pos)``,
    ``("call", name, start, method, receiver, args, kwargs, pending keyword)`` and the item
    groups ``["tuple", pos, items]``, ``["list", pos, items]``, ``["sub", pos, receiver, items,
    slice parts or None]``), the tokens with one token of lookahead, and the limits."""

    def __init__(self, source: str, max_terms: int, max_depth: int, names: set | None, builder):
        self.builder = builder
        self.source = source
        self.max_terms = max_terms
        self.max_depth = max_depth
        self.add_name = names.add if names is not None else None
        self.operands: list[Node] = []
        self.ops: list[tuple] = []
        self.depth = 0
        self.terms = 0
        self.tokens = tokenize(source)
        self.lookahead: tuple | None = None

    def err(self, msg: str, pos: int) -> ParseError:
        return ParseError(msg, self.source, pos + 1)

    def advance(self) -> tuple:
        if self.lookahead is not None:
            t, self.lookahead = self.lookahead, None
            return t
        return next(self.tokens)

    def peek(self) -> tuple:
        if self.lookahead is None:
            self.lookahead = next(self.tokens)
        return self.lookahead

    def too_many_terms(self, pos: int) -> ParseError:
        return self.err(f"expression has more than {self.max_terms} terms", pos)

    def chained(self, pos: int) -> ParseError:
        """A comparison after a comparison (a < b < c): Python chains them, PyTorch's tensors cannot."""
        return self.err("chained comparisons (a < b < c) are not supported: write each comparison on its "
                        "own, e.g. torch.where(a < b, ...)", pos)

    def enter(self, pos: int) -> None:
        """One level deeper (a parenthesis, a call, a sign), within the limit."""
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.err(f"nesting deeper than {self.max_depth} levels", pos)

    # --- reductions ----------------------------------------------------------------
    def reduce_top(self) -> None:
        ops, operands = self.ops, self.operands
        entry = ops.pop()
        if entry[0] == "bin":
            right = operands.pop()
            left = operands.pop()
            operands.append(self.builder.binary(entry[1], left, right, left.start, right.end))
        else:  # unary
            operand = operands.pop()
            operands.append(self.builder.unary(entry[1], operand, entry[3], operand.end))

    def comparison_reduced(self) -> bool:
        """Whether a comparison would reduce a comparison (a < b < c): one is among the operators
        above the innermost group (a comparison, the loosest operator, reduces all of them)."""
        for entry in reversed(self.ops):
            if entry[0] != "bin" and entry[0] != "un":
                return False
            if entry[2] == _COMPARISON_POWER:
                return True
        return False

    def reduce_group(self) -> tuple:
        """Reduce down to the innermost '(' or call marker and return that marker."""
        ops = self.ops
        while ops and ops[-1][0] in ("bin", "un"):
            self.reduce_top()
        if not ops:
            return ()
        return ops[-1]

    # --- the loop ------------------------------------------------------------------
    def run(self) -> Node:
        """The loop. The commonest tokens are read here, the rest by the methods below: a plain
        name (an input: an operator, ',', ')', ']' or the end follows it), a binary operator or a
        closer with the reductions it makes (a million-term sum is little else), a call's ',' or
        ')', a call ``name(`` and a method ``.name(``. No token is looked ahead at the top of a turn."""
        ops, operands, tokens, builder = self.ops, self.operands, self.tokens, self.builder
        push, pop, pop_op, push_op = operands.append, operands.pop, ops.pop, ops.append
        binary, name_operand, add_name = builder.binary, builder.name, self.add_name
        max_terms = self.max_terms
        tok, expect_operand = next(tokens), True
        while True:
            kind, text, pos = tok
            if expect_operand:
                if kind == "name" and text not in _SPECIAL_NAMES:
                    nxt = next(tokens)
                    if nxt[1] in _PLAIN_NAME_FOLLOWERS and (text[0] != "_" or text[:2] != "__"):
                        push(name_operand(text, pos, pos + len(text)))
                        if add_name is not None:
                            add_name(text)
                        self.terms += 1
                        if self.terms > max_terms:
                            raise self.too_many_terms(pos)
                        tok, expect_operand = nxt, False
                        continue  # (the follower is the next turn's token)
                    expect_operand = self.name_before(text, pos, nxt)
                else:
                    expect_operand = self.operand(tok)
                if not expect_operand and self.terms > max_terms:
                    raise self.too_many_terms(pos)
            elif text in _REDUCING and kind == "op":
                power, right = _REDUCING[text]
                chained = power == _COMPARISON_POWER and self.comparison_reduced()
                while ops:  # reduce what binds at least as tightly (reduce_top, inline)
                    top = ops[-1]
                    tk = top[0]
                    if (tk != "bin" and tk != "un") or top[2] < power or (top[2] == power and right):
                        break
                    pop_op()
                    b = pop()
                    if tk == "bin":
                        a = pop()
                        push(binary(top[1], a, b, a.start, b.end))
                    else:
                        push(builder.unary(top[1], b, top[3], b.end))
                if chained:
                    raise self.chained(pos)
                if power:
                    push_op(("bin", text, power, right, pos))
                    expect_operand = True
                elif (text == "," or text == ")") and ops and ops[-1][0] == "call":
                    expect_operand = self.close_call(ops[-1], text, pos)  # a call's argument ends
                else:
                    expect_operand = self.after_operand(tok)
            elif text == "." and kind == "op":
                expect_operand = self.method_or_attribute()
            elif kind == "end":
                self.finish()
                break
            else:
                expect_operand = self.after_operand(tok)
            tok = self.lookahead or next(tokens)
            self.lookahead = None
        assert len(operands) == 1, "parser invariant"
        return operands[0]

    def name_before(self, text: str, pos: int, nxt: tuple) -> bool:
        """A name that is not a plain operand, ``nxt`` the token after it: a call ``name(``, or
        what :meth:`name` reads. True while an operand is still expected."""
        if nxt[1] == "(" and nxt[0] == "op" and text[:2] != "__":
            return self.open_call(text, pos, nxt[2])
        self.lookahead = nxt
        return self.name(text, pos)

    def operand(self, tok: tuple) -> bool:
        """Read a token where an operand is expected; True while an operand is still expected."""
        kind, text, pos = tok
        if kind == "number":
            self.terms += 1
            self.operands.append(self.builder.number(_number(text, self.source, pos), pos, pos + len(text)))
            return False
        if kind == "name":
            return self.name(text, pos)
        if kind == "string":
            return self.string(text, pos)
        if kind == "op" and text in ("-", "+"):
            self.enter(pos)
            self.ops.append(("un", text, UNARY_POWER, pos))
            return True
        if kind == "op" and text == "(":
            self.enter(pos)
            self.ops.append(("paren", pos))
            return True
        if kind == "op":
            expecting = self.operand_op(text, pos)
            if expecting is not None:
                return expecting
        if kind == "end":
            raise self.err("unexpected end of expression (an operand is missing)", pos)
        if kind == "op" and text == ")" and self.ops and self.ops[-1][0] == "paren":
            raise self.err("empty parentheses '()'", pos)
        raise self.err(f"unexpected {text!r} (expected a number, name or '(')", pos)

    def string(self, text: str, pos: int) -> bool:
        """A string literal: only as a call's whole argument (reduction='sum'), as PyTorch takes them."""
        nxt = self.peek()
        if not (self.ops and self.ops[-1][0] == "call") or not (nxt[0] == "op" and nxt[1] in (",", ")")):
            raise self.err("strings are not supported here: a string is only a call's whole argument, "
                           "e.g. reduction='sum'", pos)
        self.operands.append(self.builder.number(text[1:-1], pos, pos + len(text)))
        return False

    def name(self, text: str, pos: int) -> bool:
        """A name as an operand: True/False, a keyword argument, a call (maybe dotted), an input."""
        ops, operands, err, peek, advance = self.ops, self.operands, self.err, self.peek, self.advance
        if text in ("True", "False", "None"):
            value = None if text == "None" else text == "True"
            operands.append(self.builder.number(value, pos, pos + len(text)))
            return False
        if text in _KEYWORDS:
            raise err(f"keyword {text!r} is not supported", pos)
        if text.startswith("__"):
            raise err(f"name {text!r} is not allowed (no dunder names)", pos)
        # keyword argument "dim=1" at the start of a call argument
        if ops and ops[-1][0] == "call" and ops[-1][7] is None:
            nxt = peek()
            if nxt[0] == "op" and nxt[1] == "=":
                if any(k == text for k, _ in ops[-1][6]):  # Python's SyntaxError
                    raise err(f"keyword argument repeated: {text}", pos)
                advance()
                ops.append(ops.pop()[:7] + (text,))
                return True
        # dotted function name: torch.sin(x), torch.nn.functional.relu(x)
        name, name_end = text, pos + len(text)
        nxt = peek()
        dotted = text == "torch" or (text == "F" and _F_CALL.match(self.source, name_end) is not None)
        while dotted and nxt[0] == "op" and nxt[1] == ".":
            advance()
            part = advance()
            if part[0] != "name":
                raise err("expected a name after '.'", part[2])
            if part[1].startswith("__"):
                raise err(f"attribute {part[1]!r} is not allowed (no dunder names)", part[2])
            name += "." + part[1]
            name_end = part[2] + len(part[1])
            nxt = peek()
        if nxt[0] == "op" and nxt[1] == "(":
            advance()
            return self.open_call(name, pos, nxt[2])
        if "." in name and name not in _DOTTED_CONSTANTS:
            raise err(f"attribute access {name!r} is not supported (only torch.<function>(...) calls "
                      f"and the constants {', '.join(sorted(_DOTTED_CONSTANTS))})", pos)
        self.terms += 1
        operands.append(self.builder.name(name, pos, name_end))
        if self.add_name is not None:
            self.add_name(name)
        return False

    def open_call(self, name: str, pos: int, paren: int) -> bool:
        """The call ``name(`` (its '(' read, at ``paren``, and no token looked ahead); True when
        its first argument follows."""
        self.enter(paren)
        nxt = next(self.tokens)
        if nxt[1] == ")" and nxt[0] == "op":  # name()
            self.depth -= 1
            self.operands.append(self.builder.call(name, [], [], False, pos, nxt[2] + 1))
            return False
        self.lookahead = nxt
        self.ops.append(("call", name, pos, False, None, [], [], None))
        return True

    def after_operand(self, tok: tuple) -> bool:
        """Read a token after an operand that :meth:`run` leaves (what binds tighter reduced):
        ',', ')' or ']' closing a group, '[', ':', or a misplaced token; True when an operand
        follows."""
        kind, text, pos = tok
        if kind == "op" and text in (",", ")", "]"):
            return self.close(text, pos)
        if kind == "op" and text == "[":
            self.enter(pos)
            self.ops.append(["sub", pos, self.operands.pop(), [], None])
            return True
        if kind == "op" and text == ":":
            marker = self.reduce_group()
            self.slice_part(marker, self.operands.pop(), pos)
            return True
        if kind == "op" and text == "(":
            raise self.err("unexpected '(' (calling the result of an expression is not supported)", pos)
        if kind in ("number", "name"):
            raise self.err(f"unexpected {text!r} (missing an operator before it?)", pos)
        if kind == "op" and text == "=":
            raise self.err("unexpected '=' (keyword arguments go inside a call: sum(x, dim=0))", pos)
        raise self.err(f"unexpected {text!r}", pos)

    def method_or_attribute(self) -> bool:
        """``.name(...)`` on the operand just read, or ``.T`` (the '.' read, and no token looked
        ahead); True when a first argument follows."""
        tokens = self.tokens
        kind, name, pos = next(tokens)
        if kind != "name":
            raise self.err("expected a method name after '.'", pos)
        if name[0] == "_" and name[:2] == "__":
            raise self.err(f"attribute {name!r} is not allowed (no dunder names)", pos)
        receiver = self.operands.pop()
        nxt = next(tokens)
        if nxt[1] == "(" and nxt[0] == "op":
            self.enter(nxt[2])
            nxt = next(tokens)
            if nxt[1] == ")" and nxt[0] == "op":  # .name()
                self.depth -= 1
                self.operands.append(self.builder.call(name, [receiver], [], True, receiver.start, nxt[2] + 1))
                return False
            self.lookahead = nxt
            self.ops.append(("call", name, receiver.start, True, receiver, [], [], None))
            return True
        self.lookahead = nxt
        if name not in ATTRIBUTES:
            raise self.err(f"attribute access '.{name}' is not supported (only .T and method calls)", pos - 1)
        self.operands.append(self.builder.attr(name, receiver, receiver.start, pos + len(name)))
        return False

    def operand_op(self, text: str, pos: int):
        """An operator token where an operand is expected that still makes sense there: a list
        ``[``, ``...``, or what ends an empty part of a subscript, list or tuple (``x[:2]``,
        ``x[1:]``, ``[a, b,]``, ``(a,)``, ``[]``). True/False as :meth:`operand`; None when
        the token is not one of these."""
        ops, operands, builder = self.ops, self.operands, self.builder
        if text == "[":
            self.enter(pos)
            ops.append(["list", pos, []])
            return True
        if text == "...":
            operands.append(builder.number(Ellipsis, pos, pos + 3))
            return False
        top = ops[-1] if ops else ()
        kind = top[0] if top else None
        if kind == "sub" and text == ":":
            self.slice_part(top, builder.number(None, pos, pos), pos)
            return True
        if kind == "sub" and text in (",", "]") and top[4] is not None:  # a slice's last part is empty
            operands.append(builder.number(None, pos, pos))
            return self.close(text, pos)
        if kind == "sub" and text == "]" and top[3]:  # x[0,]: a tuple index, as Python reads it
            if len(top[3]) == 1:  # x[:,] is x[(slice(None),)], not x[:] (PyTorch: an alias, not a slice)
                top[3] = [builder.tuple(top[3], top[3][0].start, pos)]
            return self.close_group(top, pos)
        if kind == "sub" and text == "]":
            raise self.err("empty subscript '[]'", pos)
        if (kind == "list" and text == "]") or (kind == "tuple" and text == ")"):  # [] and [a,] (a,)
            return self.close_group(top, pos)
        return None

    def slice_part(self, marker, value, pos: int) -> None:
        """A ':' inside a subscript: ``value`` is the part before it."""
        if not marker or marker[0] != "sub":
            raise self.err("':' is only allowed inside a subscript, e.g. x[1:3]", pos)
        parts = marker[4]
        if parts is None:
            marker[4] = [value]
        elif len(parts) == 1:
            parts.append(value)
        else:
            raise self.err("a slice has at most two ':' (start:stop:step)", pos)

    def close(self, text: str, pos: int) -> bool:
        """',', ')' or ']' after an operand; True when another argument or item follows."""
        ops, operands, err = self.ops, self.operands, self.err
        marker = self.reduce_group()
        if not marker:
            raise err(f"unmatched {text!r}", pos)
        kind = marker[0]
        closer = "]" if kind in ("list", "sub") else ")"
        if text != "," and text != closer:
            raise err(f"{text!r} does not close the {'[' if closer == ']' else '('!r} at column "
                      f"{marker[1] + 1 if kind != 'call' else self.source.find('(', marker[2]) + 1}", pos)
        if kind == "paren":
            inner = operands.pop()
            if text == ",":  # (a, ...: a tuple
                ops[-1] = ["tuple", marker[1], [inner]]
                return True
            ops.pop()
            self.depth -= 1
            operands.append(self.builder.paren(inner, marker[1], pos + 1))
            return False
        if kind == "call":
            return self.close_call(marker, text, pos)
        value = operands.pop()
        if kind == "sub" and marker[4] is not None:
            parts = marker[4] + [value]
            marker[4] = None
            while len(parts) < 3:
                parts.append(self.builder.number(None, value.end, value.end))
            value = self.builder.slice(*parts, parts[0].start, value.end)
        marker[-2 if kind == "sub" else -1].append(value)
        if text == ",":
            return True
        return self.close_group(marker, pos)

    def close_group(self, marker, pos: int) -> bool:
        """The ']' or ')' that closes a subscript, list or tuple at ``pos``."""
        self.ops.pop()
        self.depth -= 1
        kind, builder = marker[0], self.builder
        if kind == "sub":
            receiver = marker[2]
            self.operands.append(builder.subscript(receiver, marker[3], receiver.start, pos + 1))
        else:
            self.operands.append(getattr(builder, kind)(marker[2], marker[1], pos + 1))
        return False

    def close_call(self, marker, text: str, pos: int) -> bool:
        """',' or ')' after a call's argument (what binds tighter reduced); True when another
        argument follows."""
        _, name, start, method, receiver, args, kwargs, pending = marker
        value = self.operands.pop()
        if pending is not None:
            kwargs.append((pending, value))
        else:
            if kwargs:
                raise self.err("positional argument after keyword argument", value.start)
            args.append(value)
        if text == ",":
            if pending is not None:
                self.ops[-1] = marker[:7] + (None,)  # the keyword argument has its value
            return True
        self.ops.pop()
        self.depth -= 1
        if method:
            args.insert(0, receiver)  # (the marker's own list: nothing else holds it)
        self.operands.append(self.builder.call(name, args, kwargs, method, start, pos + 1))
        return False

    def finish(self) -> None:
        marker = self.reduce_group()
        if marker:
            kind = marker[0]
            where = marker[2] if kind == "call" else marker[1]
            if kind == "call":
                where = self.source.find("(", where)  # point at the call's '(' rather than its name
            bracket = "[" if kind in ("list", "sub") else "("
            raise self.err(f"'{bracket}' was never closed", where)
