"""Expression text → tokens → immutable expression tree.

The language is the arithmetic subset of Python/PyTorch: numbers, names,
``+ - * / ** @``, unary ``-``/``+``, parentheses, calls ``sin(x)`` and
``torch.sin(x)``, methods ``x.sum()``, keyword arguments ``dim=1`` and the
attribute ``x.T``.

The parser is an operator-precedence (shunting-yard) loop with explicit
stacks, never recursion: Python's own ``ast.parse`` dies with RecursionError
near 10,000 terms, and gradviz takes inputs of a million.

Binding powers, read against Python's precedence chart (highest binds tightest)::

    x.f()  x.T  f(x)      postfix, tighter than everything
    **                    40, right-associative; its right operand may be unary: 2**-x
    -x  +x                30, prefix; lower than ** on its left: -x**2 is -(x**2)
    *  /  @               20, left-associative
    +  -                  10, left-associative
"""

from __future__ import annotations

import re
from typing import Iterator

from .errors import ParseError

from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TERMS  # noqa: E402

BINARY = {  # symbol -> (binding power, right-associative)
    "+": (10, False),
    "-": (10, False),
    "*": (20, False),
    "/": (20, False),
    "@": (20, False),
    "**": (40, True),
}
UNARY_POWER = 30
ATTRIBUTES = frozenset({"T"})  # the only attribute (not method call) the language has

_KEYWORDS = frozenset(
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try "
    "while with yield".split()
)

_TOKEN = re.compile(
    r"""
    \s*  # whitespace before a token is skipped by the same match
    (?:
        (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op>\*\*|//|==|!=|<=|>=|->|:=|[-+*/@().,=\[\]{}%<>~&|^:;!'"\\`$?\#])
    )
    """,
    re.VERBOSE,
)
_SPACE = re.compile(r"\s*")

_UNSUPPORTED_OPS = {
    "//": "floor division '//' is not supported",
    "%": "operator '%' is not supported",
    "[": "subscripts and lists ('[') are not supported in expressions",
    "]": "unexpected ']'",
    "{": "'{' is not supported",
    "}": "'}' is not supported",
    ":": "':' is not supported (no slices, lambdas or annotations)",
    ";": "';' is not supported: write one expression",
    "'": "strings are not supported",
    '"': "strings are not supported",
    "#": "comments are not supported inside an expression",
    ":=": "assignment expressions are not supported",
    "->": "'->' is not supported",
    "^": "operator '^' is not supported (use ** for powers)",
    "==": "comparisons are not supported",
    "!=": "comparisons are not supported",
    "<": "comparisons are not supported",
    ">": "comparisons are not supported",
    "<=": "comparisons are not supported",
    ">=": "comparisons are not supported",
}


FUNCTION_PREFIXES = ("torch.nn.functional.", "torch.special.", "torch.linalg.", "torch.")


def function_name(name: str) -> str:
    """The function a called name means: torch.sin, torch.nn.functional.relu... are sin, relu."""
    for prefix in FUNCTION_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def tokenize(source: str) -> Iterator[tuple]:
    """Yield the tokens of ``source`` as ``(kind, text, pos)`` — kind 'number', 'name', 'op' or
    'end', pos 0-based — ending with an 'end' token; raise ParseError on bad text."""
    pos = 0
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
        elif kind == "name":
            yield ("name", text, pos)
        elif kind == "op":
            if text in _UNSUPPORTED_OPS:
                raise ParseError(_UNSUPPORTED_OPS[text], source, pos + 1)
            yield ("op", text, pos)
        pos = m.end()
    yield ("end", "", n)


class Node:
    """An immutable expression-tree node.

    kind:  'number' (value), 'name' (name), 'unary' (op, args=(operand,)),
           'binary' (op, args=(left, right)), 'call' (op = function name, args,
           kwargs, method=True when written ``receiver.op(...)``; the receiver is
           args[0]), 'attr' (op = attribute name, args=(receiver,)).
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
_OPERAND_AFTER = "+-*/@,("
# The operands themselves, for an exact count when that bound is over the limit: numbers, and names
# that are not called (f(x)), not after a '.' (x.sum(), torch.sin) and not torch.
_TERM = re.compile(r"(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
                   r"|(?<![\w.])(?!(?:torch|True|False)\b)[A-Za-z_]\w*(?!\w|\s*[(=])")


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
) -> Node:
    """Parse ``source`` into a :class:`Node` tree.

    Raises :class:`ParseError` naming the problem and its 1-based column.
    ``max_terms`` bounds the number of operands (numbers and names);
    ``max_depth`` bounds nesting (parentheses, calls, prefix operators).
    ``names``, when given, receives every name used as an operand (the inputs the expression
    reads), so that a caller need not walk the tree again for them.
    """
    add_name = names.add if names is not None else None
    if not source.strip():
        raise ParseError("empty expression")
    check_terms(source, max_terms)
    operands: list[Node] = []
    ops: list[tuple] = []
    depth = 0
    terms = 0
    expect_operand = True

    def err(msg: str, pos: int) -> ParseError:
        return ParseError(msg, source, pos + 1)

    def reduce_top() -> None:
        entry = ops.pop()
        if entry[0] == "bin":
            right = operands.pop()
            left = operands.pop()
            operands.append(Node("binary", entry[1], (left, right), (), None, False, left.start, right.end))
        else:  # unary
            operand = operands.pop()
            operands.append(Node("unary", entry[1], (operand,), start=entry[3], end=operand.end))

    def reduce_while(power: int, right_assoc: bool) -> None:
        while ops:
            top = ops[-1]
            if top[0] == "bin":
                p = top[2]
            elif top[0] == "un":
                p = top[2]
            else:
                break
            if p > power or (p == power and not right_assoc):
                reduce_top()
            else:
                break

    def reduce_group() -> tuple:
        """Reduce down to the innermost '(' or call marker and return that marker."""
        while ops and ops[-1][0] in ("bin", "un"):
            reduce_top()
        if not ops:
            return ()
        return ops[-1]

    tokens = tokenize(source)
    tok = next(tokens)
    lookahead: tuple | None = None

    def advance() -> tuple:
        nonlocal lookahead
        if lookahead is not None:
            t, lookahead = lookahead, None
            return t
        return next(tokens)

    def peek() -> tuple:
        nonlocal lookahead
        if lookahead is None:
            lookahead = next(tokens)
        return lookahead

    while True:
        kind, text, pos = tok
        if expect_operand:
            if kind == "number":
                terms += 1
                operands.append(Node("number", value=_number(text, source, pos), start=pos, end=pos + len(text)))
                expect_operand = False
            elif kind == "name":
                if text in ("True", "False"):
                    operands.append(Node("number", value=text == "True", start=pos, end=pos + len(text)))
                    expect_operand = False
                    tok = advance()
                    continue
                if text in _KEYWORDS:
                    raise err(f"keyword {text!r} is not supported", pos)
                if text.startswith("__"):
                    raise err(f"name {text!r} is not allowed (no dunder names)", pos)
                # keyword argument "dim=1" at the start of a call argument
                if ops and ops[-1][0] == "call" and ops[-1][7] is None:
                    nxt = peek()
                    if nxt[0] == "op" and nxt[1] == "=":
                        advance()
                        entry = ops.pop()
                        if entry[7] is not None:
                            raise err("expected a value after '='", pos)
                        ops.append(entry[:7] + (text,))
                        tok = advance()
                        continue
                # dotted function name: torch.sin(x), torch.nn.functional.relu(x)
                name, name_end = text, pos + len(text)
                nxt = peek()
                while text == "torch" and nxt[0] == "op" and nxt[1] == ".":
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
                    depth += 1
                    if depth > max_depth:
                        raise err(f"nesting deeper than {max_depth} levels", nxt[2])
                    ops.append(("call", name, pos, False, None, [], [], None))
                    if peek()[0] == "op" and peek()[1] == ")":
                        close = advance()
                        depth -= 1
                        ops.pop()
                        operands.append(Node("call", name, (), (), start=pos, end=close[2] + 1))
                        expect_operand = False
                    # else: stay expecting the first argument
                else:
                    if "." in name:
                        raise err(
                            f"attribute access {name!r} is not supported (only torch.<function>(...) calls)",
                            pos,
                        )
                    terms += 1
                    operands.append(Node("name", name, (), (), None, False, pos, name_end))
                    if add_name is not None:
                        add_name(name)
                    expect_operand = False
            elif kind == "op" and text in ("-", "+"):
                depth += 1
                if depth > max_depth:
                    raise err(f"nesting deeper than {max_depth} levels", pos)
                ops.append(("un", text, UNARY_POWER, pos))
            elif kind == "op" and text == "(":
                depth += 1
                if depth > max_depth:
                    raise err(f"nesting deeper than {max_depth} levels", pos)
                ops.append(("paren", pos))
            elif kind == "end":
                raise err("unexpected end of expression (an operand is missing)", pos)
            elif kind == "op" and text == ")" and ops and ops[-1][0] == "paren":
                raise err("empty parentheses '()'", pos)
            else:
                raise err(f"unexpected {text!r} (expected a number, name or '(')", pos)
            if terms > max_terms:
                raise err(f"expression has more than {max_terms} terms", pos)
            tok = advance()
            continue

        # --- after an operand: operator, postfix, ',' or ')' ---
        if kind == "op" and text in BINARY:
            power, right = BINARY[text]
            reduce_while(power, right)
            ops.append(("bin", text, power, right, pos))
            expect_operand = True
        elif kind == "op" and text == ".":
            part = advance()
            if part[0] != "name":
                raise err("expected a method name after '.'", part[2])
            if part[1].startswith("__"):
                raise err(f"attribute {part[1]!r} is not allowed (no dunder names)", part[2])
            receiver = operands.pop()
            nxt = peek()
            if nxt[0] == "op" and nxt[1] == "(":
                advance()
                depth += 1
                if depth > max_depth:
                    raise err(f"nesting deeper than {max_depth} levels", nxt[2])
                ops.append(("call", part[1], receiver.start, True, receiver, [], [], None))
                if peek()[0] == "op" and peek()[1] == ")":
                    close = advance()
                    depth -= 1
                    ops.pop()
                    operands.append(
                        Node("call", part[1], (receiver,), (), method=True, start=receiver.start, end=close[2] + 1)
                    )
                else:
                    expect_operand = True
            else:
                if part[1] not in ATTRIBUTES:
                    raise err(f"attribute access '.{part[1]}' is not supported (only .T and method calls)",
                              part[2] - 1)
                operands.append(
                    Node("attr", part[1], (receiver,), start=receiver.start, end=part[2] + len(part[1]))
                )
        elif kind == "op" and text in (",", ")"):
            marker = reduce_group()
            if not marker:
                raise err(f"unmatched {text!r}", pos)
            if marker[0] == "paren":
                if text == ",":
                    raise err("tuples are not supported (',' outside a call)", pos)
                ops.pop()
                depth -= 1
                inner = operands.pop()
                operands.append(inner.with_span(marker[1], pos + 1))
            else:
                _, name, start, method, receiver, args, kwargs, pending = marker
                value = operands.pop()
                if pending is not None:
                    kwargs.append((pending, value))
                else:
                    if kwargs:
                        raise err("positional argument after keyword argument", value.start)
                    args.append(value)
                if text == ",":
                    ops[-1] = marker[:7] + (None,)
                    expect_operand = True
                else:
                    ops.pop()
                    depth -= 1
                    all_args = ([receiver] if method else []) + args
                    operands.append(
                        Node("call", name, all_args, kwargs, method=method, start=start, end=pos + 1)
                    )
        elif kind == "end":
            marker = reduce_group()
            if marker:
                where = marker[1] if marker[0] == "paren" else marker[2]
                if marker[0] == "call":
                    # point at the call's '(' rather than its name
                    where = source.find("(", where)
                raise err("'(' was never closed", where)
            break
        elif kind == "op" and text == "(":
            raise err("unexpected '(' (calling the result of an expression is not supported)", pos)
        elif kind in ("number", "name"):
            raise err(f"unexpected {text!r} (missing an operator before it?)", pos)
        elif kind == "op" and text == "=":
            raise err("unexpected '=' (keyword arguments go inside a call: sum(x, dim=0))", pos)
        else:
            raise err(f"unexpected {text!r}", pos)
        tok = advance()

    assert len(operands) == 1, "parser invariant"
    return operands[0]
