"""The command line: the only place that reads argv, prints, or writes files."""

from __future__ import annotations

import json
import os
import sys

import click

from .errors import GradvizError, UsageError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


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


def parse_value(name: str, text: str):
    """A number (``2``, ``-1.5e3``, ``nan``, ``inf``) or a JSON-style nested list (``[[1,2],[3,4]]``)."""
    text = text.strip()
    if not text:
        raise UsageError(f"--at {name}= has no value")
    if text[0] == "[":
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise UsageError(f"--at {name}={_clip(text)} is not a number or a list like [1, 2, 3]") from None
    try:
        return float(text.replace("_", "#"))  # no '1_000': keep numbers plain
    except ValueError:
        raise UsageError(f"--at {name}={_clip(text)} is not a number") from None


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "..."


def parse_at(items) -> dict:
    """All ``--at`` options into one ``{name: value}`` dict (later ones win)."""
    at: dict = {}
    for item in items:
        for part in split_assignments(item):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise UsageError(f"--at {_clip(part)}: expected NAME=VALUE, e.g. --at x=2")
            if not name.isidentifier() or not name.isascii():
                raise UsageError(f"--at {_clip(part)}: {name!r} is not a valid input name")
            at[name] = parse_value(name, value)
    return at


def read_at_file(path: str) -> dict:
    try:
        with click.open_file(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise UsageError(f"--at-file {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):
        raise UsageError(f"--at-file {path}: not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f"--at-file {path}: expected a JSON object of name -> number or list")
    for name in data:
        if not isinstance(name, str) or not name.isidentifier():
            raise UsageError(f"--at-file {path}: {name!r} is not a valid input name")
    return data


class ExprCommand(click.Command):
    """A command whose one positional argument may start with '-' (``gradviz "-x**2" --at x=2``)."""

    def parse_args(self, ctx, args):
        known = {}
        for p in self.params:
            if isinstance(p, click.Option):
                for opt in p.opts + p.secondary_opts:
                    known[opt] = not p.is_flag and not p.count
        out, i, moved = [], 0, None
        while i < len(args):
            a = args[i]
            if a == "--":
                out.extend(args[i:])
                break
            if a.startswith("-") and len(a) > 1 and moved is None:
                name = a.split("=", 1)[0]
                if name in known:
                    out.append(a)
                    if known[name] and "=" not in a and i + 1 < len(args):
                        out.append(args[i + 1])
                        i += 1
                    i += 1
                    continue
                if a[:2] in known and not a.startswith("--") and known[a[:2]]:
                    out.append(a)  # short option with its value attached: -fexprs.txt
                    i += 1
                    continue
                if not a.startswith("--") or _looks_like_expression(a):
                    moved = a  # "-x**2": the expression, not an option
                    i += 1
                    continue
            out.append(a)
            i += 1
        if moved is not None:
            if "--" in out:
                raise click.UsageError(f"got two expressions: {moved!r} and one after '--'")
            out = out + ["--", moved]
        return super().parse_args(ctx, out)


def _looks_like_expression(a: str) -> bool:
    return any(c in a for c in "*+/()@. ") or a[2:3].isdigit()


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
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read the expression from FILE ('-' for stdin).")
@click.version_option(package_name="gradviz", message="gradviz %(version)s")
def main(expression, at_items, at_file, no_grad, dtype, grad_output, as_json, file):
    """Show what PyTorch's autograd does with EXPRESSION at a point.

    \b
    Example:
      gradviz "u*v + u**2" --at u=1,v=2
      gradviz "-x**2" --at x=2 --json

    EXPRESSION uses Python/PyTorch syntax: numbers, names, + - * / ** @,
    calls like sin(x) or torch.sin(x), methods like x.pow(2) or x.sum().

    Exit codes: 0 success, 1 a --check failed, 2 bad input or usage.
    """
    try:
        code = run(expression, at_items, at_file, no_grad, dtype, grad_output, as_json, file)
    except GradvizError as exc:
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code)


def _read_expression(expression, file) -> str:
    if file is not None:
        if expression is not None:
            raise UsageError("give the expression either as an argument or with -f, not both")
        try:
            with click.open_file(file, "r", encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise UsageError(f"-f {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"-f {file}: not UTF-8 text") from None
        return text.strip()
    if expression is None:
        raise UsageError("no expression given; try: gradviz \"u*v + u**2\" --at u=1,v=2  (see --help)")
    return expression


def run(expression, at_items, at_file, no_grad, dtype, grad_output, as_json, file) -> int:
    from .result import trace

    expr = _read_expression(expression, file)
    at = read_at_file(at_file) if at_file else {}
    at.update(parse_at(at_items))
    names = [n.strip() for item in no_grad for n in item.split(",") if n.strip()]
    go = None
    if grad_output is not None:
        go = grad_output.strip() if grad_output.strip() == "ones" else parse_value("grad-output", grad_output)
        if isinstance(go, str) and go != "ones":
            raise UsageError("--grad-output must be 'ones' or a list of numbers")
    result = trace(expr, at=at, no_grad=names, dtype=dtype, grad_output=go)
    for w in result.warnings:
        click.echo(w, err=True)
    if result.backward_error:
        click.echo(f"note: {result.backward_error}", err=True)
    if as_json:
        click.echo(result.to_json())
        return EXIT_OK
    from .render.plain import listing

    click.echo(listing(result))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    main()
