"""Parser tables: input → S-expression, and errors with their columns."""

import random

import pytest

from gradviz.errors import ParseError
from gradviz.parser import parse, postorder, to_sexpr, tokenize

PRECEDENCE = [
    # (expression, S-expression) — checked against Python's precedence chart
    ("u*v + u**2", "(+ (* u v) (** u 2))"),
    ("-x**2", "(neg (** x 2))"),             # ** binds tighter than unary minus on its left
    ("2**3**2", "(** 2 (** 3 2))"),          # ** is right-associative
    ("2**-x", "(** 2 (neg x))"),             # unary minus allowed as **'s right operand
    ("2**-x**2", "(** 2 (neg (** x 2)))"),
    ("-x*y", "(* (neg x) y)"),               # unary binds tighter than *
    ("a - b - c", "(- (- a b) c)"),          # left-associative
    ("a / b / c", "(/ (/ a b) c)"),
    ("a - b + c", "(+ (- a b) c)"),
    ("a + b * c", "(+ a (* b c))"),
    ("a * b + c", "(+ (* a b) c)"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("a @ b + c", "(+ (@ a b) c)"),
    ("a * b @ c", "(@ (* a b) c)"),
    ("--x", "(neg (neg x))"),
    ("+x", "(pos x)"),
    ("-(-(-x))", "(neg (neg (neg x)))"),
    ("x.sum()**2", "(** (.sum x) 2)"),       # postfix binds tighter than **
    ("-x.sum()", "(neg (.sum x))"),
    ("(a+b).sum()", "(.sum (+ a b))"),
    ("x.pow(2)", "(.pow x 2)"),
    ("torch.sin(x)", "(torch.sin x)"),
    ("torch.nn.functional.relu(x)", "(torch.nn.functional.relu x)"),
    ("sin(x)*cos(x)", "(* (sin x) (cos x))"),
    ("sum(M, dim=1)", "(sum M dim=1)"),
    ("M.sum(1, keepdim=True)", "(.sum M 1 keepdim=True)"),
    ("M.T @ v", "(@ (.T M) v)"),
    ("M.reshape(3, 2)", "(.reshape M 3 2)"),
    ("2.5e-3 * x", "(* 0.0025 x)"),
    ("1e999 * x", "(* inf x)"),
    (".5 + x", "(+ 0.5 x)"),
    ("2. * x", "(* 2.0 x)"),
    ("pi * e", "(* pi e)"),
    ("x.sin().exp()", "(.exp (.sin x))"),
    # subscripts bind as calls and attributes do (postfix), slices are their items
    ("x[0]", "([] x 0)"),
    ("x[-1]", "([] x (neg 1))"),
    ("x[1:3]", "([] x (: 1 3 None))"),
    ("x[::2]", "([] x (: None None 2))"),
    ("x[1:]", "([] x (: 1 None None))"),
    ("x[:2]", "([] x (: None 2 None))"),
    ("x[:]", "([] x (: None None None))"),
    ("x[1:2:3]", "([] x (: 1 2 3))"),
    ("x[i+1:2*j]", "([] x (: (+ i 1) (* 2 j) None))"),
    ("W[:, 0]", "([] W (: None None None) 0)"),
    ("M[0, 1]", "([] M 0 1)"),
    ("M[0][1]", "([] ([] M 0) 1)"),
    ("x[None]", "([] x None)"),
    ("x[..., 0]", "([] x Ellipsis 0)"),
    ("M[:, None]", "([] M (: None None None) None)"),
    ("x[0,]", "([] x (tuple 0))"), ("x // 2 * 3", "(* (// x 2) 3)"), ("-x // 2", "(// (neg x) 2)"), ("x[:,]", "([] x (tuple (: None None None)))"), ("x[0, 1,]", "([] x 0 1)"),
    ("-x[0]**2", "(neg (** ([] x 0) 2))"),     # x[0] binds tighter than ** and unary minus
    ("x[0].sum()[None]", "([] (.sum ([] x 0)) None)"),
    ("f(x)[0]", "([] (f x) 0)"),
    ("(x + y)[0]", "([] (+ x y) 0)"),
    ("M.T[0]", "([] (.T M) 0)"),
    ("x[y[0]]", "([] x ([] y 0))"),
    # list and tuple literals
    ("[a, b]", "(list a b)"),
    ("[[1, 2], [3, 4]]", "(list (list 1 2) (list 3 4))"),
    ("[]", "(list)"),
    ("[a,]", "(list a)"),
    ("(0, 1)", "(tuple 0 1)"),
    ("(a,)", "(tuple a)"),
    ("torch.cat([x, y], dim=0)", "(torch.cat (list x y) dim=0)"),
    ("x.sum((0, 1))", "(.sum x (tuple 0 1))"),
    ("[a, b][0]", "([] (list a b) 0)"),
    # comparisons: below arithmetic, as in Python
    ("x + 1 > y", "(> (+ x 1) y)"),
    ("a < b", "(< a b)"),
    ("a <= -b", "(<= a (neg b))"),
    ("a >= b ** 2", "(>= a (** b 2))"),
    ("a == b + 1", "(== a (+ b 1))"),
    ("a * 2 != b @ c", "(!= (* a 2) (@ b c))"),
    ("(a < b) == c", "(== (< a b) c)"),
    ("torch.where(x > 0, x, 0.)", "(torch.where (> x 0) x 0.0)"),
    ("clamp(x, None, 1)", "(clamp x None 1)"),
    ("(a < b) < c", "(< (< a b) c)"),         # a parenthesized comparison is an operand, not a chain
    ("f(a < b, c < d)", "(f (< a b) (< c d))"),
    ("sigmoid(W @ x0 + b).sum() + y", "(+ (.sum (sigmoid (+ (@ W x0) b))) y)"),
    ("x . sum ( ) * 2", "(* (.sum x) 2)"),
    ("f(-x) + g(a ** 2, -b)", "(+ (f (neg x)) (g (** a 2) (neg b)))"),
    ("x.pow(-y).T", "(.T (.pow x (neg y)))"),
    ("f(x)[0] + x.sum(dim=0)[1]", "(+ ([] (f x) 0) ([] (.sum x dim=0) 1))"),
]


@pytest.mark.parametrize("source,expected", PRECEDENCE)
def test_precedence_and_associativity(source, expected):
    assert to_sexpr(parse(source)) == expected


ERRORS = [
    # (expression, message fragment, 1-based column)
    ("x +* y", "unexpected '*'", 4),
    ("2x", "invalid number", 1),
    ("sin(x", "never closed", 4),
    ("x)", "unmatched ')'", 2),
    ("(x + 1", "never closed", 1),
    ("u*v +", "operand is missing", 6),
    ("x y", "missing an operator", 3),
    ("x[]", "empty subscript", 3),
    ("x[0", "'[' was never closed", 2),
    ("[a, b", "'[' was never closed", 1),
    ("x[1:2:3:4]", "at most two ':'", 8),
    ("x:1", "only allowed inside a subscript", 2),
    ("[a:b]", "only allowed inside a subscript", 3),
    ("x[0)", "')' does not close the '['", 4),
    ("(x]", "']' does not close the '('", 3),
    ("x[,]", "unexpected ','", 3),
    ("a < b < c", "chained comparisons", 7),
    ("a < b + c < d", "chained comparisons", 11),
    ("x < < y", "unexpected '<'", 5),
    ("'a'", "strings", 1),
    ("lambda: 1", "keyword 'lambda'", 1),
    ("__import__('os')", "dunder", 1),
    ("x.__class__", "dunder", 3),
    ("x % 2", "'%'", 3),
    ("x ^ 2", "use **", 3),
    ("(,)", "unexpected ','", 2),
    ("a = 1", "'='", 3),
    ("os.system", "attribute access '.system'", 3),
    ("x.grad", "attribute access '.grad'", 2),
    ("x $ 1", "unexpected '$'", 3),
    ("()", "empty parentheses", 2),
    ("f(x)(y)", "calling the result", 5),
    ("007", "leading zeros", 1),
    ("x = = 1", "'='", 3),
    # calls and methods: the parser's own loop reads name(, .name( and a call's ',' and ')'
    ("x.sum(", "operand is missing", 7),
    ("x.sum(1", "'(' was never closed", 6),
    ("x.", "expected a method name after '.'", 3),
    ("x.1", "unexpected '.1'", 2),
    ("x.__a()", "dunder", 3),
    ("x.foo + 1", "attribute access '.foo'", 2),
    ("x.sum)", "attribute access '.sum'", 2),
    ("f(x,", "operand is missing", 5),
    ("f(x, dim=1, 2)", "positional argument after keyword argument", 13),
    ("f(dim=1, dim=2)", "keyword argument repeated: dim", 10),
    ("f(x]", "']' does not close the '(' at column 2", 4),
    ("x.sum(1]", "']' does not close the '(' at column 6", 8),
    ("x.sum(]", "unexpected ']'", 7),
    ("x.sum()()", "calling the result", 8),
    ("[x, y)", "')' does not close the '['", 6),
    ("a < b == c", "chained comparisons", 7),
    ("a < -b < c", "chained comparisons", 8),
    ("f(a < b < c)", "chained comparisons", 9),
]


@pytest.mark.parametrize("source,fragment,column", ERRORS)
def test_errors_name_the_problem_and_column(source, fragment, column):
    with pytest.raises(ParseError) as info:
        parse(source)
    assert fragment in info.value.message
    assert info.value.column == column
    rendered = info.value.render().splitlines()
    # the expression echoed with a caret under the column
    assert rendered[1].strip() == source.strip()
    assert rendered[2].index("^") == rendered[1].index(source[0]) + column - 1


LIMIT_ERRORS = [
    # (expression, limits, message fragment, 1-based column): the limit's error at the token past it
    ("x.sum()", {"max_depth": 0}, "nesting deeper than 0 levels", 6),
    ("sin()", {"max_depth": 0}, "nesting deeper than 0 levels", 4),
    ("f(x.sum(y))", {"max_depth": 1}, "nesting deeper than 1 levels", 8),
    ("x == y", {"max_terms": 1}, "more than 1 terms", 6),   # (the count before parsing passes x ==)
    ("f(x == y)", {"max_terms": 1}, "more than 1 terms", 8),
    ("x == 2", {"max_terms": 1}, "more than 1 terms", 6),
]


@pytest.mark.parametrize("source,limits,fragment,column", LIMIT_ERRORS)
def test_limit_errors_name_the_column(source, limits, fragment, column):
    with pytest.raises(ParseError) as info:
        parse(source, **limits)
    assert fragment in info.value.message
    assert info.value.column == column


WITHIN_LIMITS = [
    # (expression, limits): a call or method that has closed is no level deeper any more
    ("f() * g() * ((x))", {"max_depth": 2}),
    ("x.sum().exp() * ((x))", {"max_depth": 2}),
    ("f(x) + g(y, z) + ((w))", {"max_depth": 2}),
    ("x.pow(2) + (-w)", {"max_depth": 2}),
    ("f(x == y)", {"max_terms": 2}),
]


@pytest.mark.parametrize("source,limits", WITHIN_LIMITS)
def test_within_limits(source, limits):
    assert parse(source, **limits).end == len(source)


SPANS = [
    # (expression, the source text of every node, in post-order): calls, methods and parentheses
    ("sigmoid(W @ x0 + b).sum() + y",
     ["W", "x0", "W @ x0", "b", "W @ x0 + b", "sigmoid(W @ x0 + b)", "sigmoid(W @ x0 + b).sum()", "y",
      "sigmoid(W @ x0 + b).sum() + y"]),
    ("f()", ["f()"]),
    ("x.sum( )", ["x", "x.sum( )"]),
    ("x.T.sum(1, dim=0)", ["x", "x.T", "1", "0", "x.T.sum(1, dim=0)"]),
    ("torch.sin(x).pow(2)", ["x", "torch.sin(x)", "2", "torch.sin(x).pow(2)"]),
    ("(a + b).sum(dim=1)", ["a", "b", "(a + b)", "1", "(a + b).sum(dim=1)"]),
    ("max(x, 0).values", ["x", "0", "max(x, 0)", "max(x, 0).values"]),
    ("g(a, b=c).exp() * 2", ["a", "c", "g(a, b=c)", "g(a, b=c).exp()", "2", "g(a, b=c).exp() * 2"]),
]


@pytest.mark.parametrize("source,texts", SPANS)
def test_spans_of_calls_and_methods(source, texts):
    assert [source[node.start:node.end] for node in postorder(parse(source))] == texts


def test_empty():
    with pytest.raises(ParseError, match="empty"):
        parse("   ")


def test_spans_cover_source_text():
    src = "(u + v) * w.sum()"
    tree = parse(src)
    assert src[tree.start:tree.end] == src
    left, right = tree.args
    assert src[left.start:left.end] == "(u + v)"
    assert src[right.start:right.end] == "w.sum()"


def test_nodes_are_immutable():
    tree = parse("x + 1")
    with pytest.raises(AttributeError):
        tree.op = "-"


def test_100k_terms_without_recursion():
    src = " + ".join(f"x{i}*x{i + 1}" for i in range(100_000))
    tree = parse(src)
    assert tree.kind == "binary" and tree.op == "+"


@pytest.mark.parametrize("depth", [1000, 20000])
def test_deep_nesting(depth):
    src = "(" * depth + "x" + ")" * depth
    assert to_sexpr(parse(src)) == "x"
    src = "-" * depth + "x"
    assert parse(src).kind == "unary"
    src = "sin(" * depth + "x" + ")" * depth
    assert parse(src).kind == "call"


def test_long_power_tower_is_right_associative():
    src = "**".join(["2"] * 5000)
    tree = parse(src)
    assert tree.args[0].value == 2 and tree.args[1].op == "**"


def test_depth_limit_is_a_clear_error():
    with pytest.raises(ParseError, match="nesting deeper than 100"):
        parse("(" * 101 + "x" + ")" * 101, max_depth=100)


def test_term_limit_is_a_clear_error():
    with pytest.raises(ParseError, match="more than 10 terms"):
        parse("+".join(["x"] * 11), max_terms=10)


def test_tokenizer_positions():
    toks = list(tokenize("x**2 + 1"))
    assert toks == [("name", "x", 0), ("op", "**", 1), ("number", "2", 3), ("op", "+", 5),
                    ("number", "1", 7), ("end", "", 8)]


def test_every_dotted_constant_the_parser_reads_has_a_value():
    from gradviz.graph import CONSTANTS
    from gradviz.parser import _DOTTED_CONSTANTS

    assert _DOTTED_CONSTANTS <= set(CONSTANTS)
    assert {"pi", "e"} <= set(CONSTANTS)


# --- the chunked tokenizer against the one-match-at-a-time reading --------------------------
def _tokens_or_error(tokens):
    out = []
    try:
        for t in tokens:
            out.append(t)
    except ParseError as e:
        out.append(("error", str(e)))
    return out


_TOKEN_PIECES = ["x0", "y", "1", "2", " ", "\t", "e", "E", ".", "+", "-", "*", "**", "/", "//", "@", "(", ")",
                 ",", "=", "==", "[", "]", "{", "%", "<", ">=", "~", "&", "|", "^", ":", ":=", "->", ";", "!",
                 "'", '"', "'a'", "\\", "`", "$", "?", "#", "_", "é", "٣", "1e5", "2x", ".5", "1.", "1.e3",
                 "...", "sum", "\n"]


@pytest.mark.parametrize("seed", range(4))
def test_chunked_tokens_are_the_one_match_at_a_time_tokens(seed):
    """Every text, good or bad: the same tokens and the same error at the same place as
    _tokens_from, which reads one match at a time and says what is wrong."""
    from gradviz.parser import _tokens_from

    rng = random.Random(seed)
    for _ in range(5000):
        text = "".join(rng.choice(_TOKEN_PIECES) for _ in range(rng.randint(0, 14)))
        assert _tokens_or_error(tokenize(text)) == _tokens_or_error(_tokens_from(text, 0)), repr(text)


@pytest.mark.parametrize("n", [4094, 4095, 4096, 4097, 8192])
@pytest.mark.parametrize("tail", ["", " ", "   ", " $", "2x", " 1.5", "'s'", "é"])
def test_chunked_tokens_across_a_chunks_end(n, tail):
    from gradviz.parser import _tokens_from

    text = " + ".join(["x"] * (n // 2)) + tail
    assert _tokens_or_error(tokenize(text)) == _tokens_or_error(_tokens_from(text, 0))
