"""The command line: options, exit codes, clear errors, batch mode, and fuzzing."""

import json
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradviz.cli import main, split_assignments


def run(*args, input=None):
    runner = CliRunner()
    return runner.invoke(main, list(args), input=input, catch_exceptions=False)


def doc_of(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


LECTURE = [
    # (expression, --at, value, grads) — the lecture's three examples
    ("x**2", "x=2", 4.0, {"x": 4.0}),
    ("x**2 + 2*x + 1", "x=2", 9.0, {"x": 6.0}),
    ("u*v + u**2", "u=1,v=2", 3.0, {"u": 4.0, "v": 1.0}),
]


@pytest.mark.parametrize("expr,at,value,grads", LECTURE)
def test_lecture_examples_json(expr, at, value, grads):
    doc = doc_of(run(expr, "--at", at, "--json"))
    assert doc["output"]["data"] == value
    assert {k: v["grad"] for k, v in doc["inputs"].items()} == grads


def test_expression_starting_with_minus():
    doc = doc_of(run("-x**2", "--at", "x=2", "--json"))
    assert doc["output"]["data"] == -4.0 and doc["inputs"]["x"]["grad"] == -4.0
    assert doc["output"]["grad_fn"] == "NegBackward0"


def test_expression_after_double_dash():
    doc = doc_of(run("--at", "x=2", "--json", "--", "-x"))
    assert doc["output"]["data"] == -2.0


def test_negative_at_value_is_a_value():
    doc = doc_of(run("x*2", "--at", "x=-1.5", "--json"))
    assert doc["output"]["data"] == -3.0


def test_repeatable_at_and_no_grad():
    doc = doc_of(run("c*x + y", "--at", "c=3", "--at", "x=2,y=1", "--no-grad", "c", "--json"))
    assert doc["inputs"]["c"]["grad"] is None and doc["inputs"]["c"]["requires_grad"] is False
    assert doc["inputs"]["x"]["grad"] == 3.0


def test_dtype_float64():
    doc = doc_of(run("x/3", "--at", "x=1", "--dtype", "float64", "--json"))
    assert doc["dtype"] == "float64" and doc["output"]["data"] == 1 / 3


def test_file_and_stdin(tmp_path):
    f = tmp_path / "e.txt"
    f.write_text("u*v + u**2\n")
    assert doc_of(run("-f", str(f), "--at", "u=1,v=2", "--json"))["output"]["data"] == 3.0
    assert doc_of(run("-f", "-", "--at", "u=1,v=2", "--json", input="u*v\n"))["output"]["data"] == 2.0


def test_at_file(tmp_path):
    f = tmp_path / "in.json"
    f.write_text(json.dumps({"W": [[1, 2], [3, 4]], "x": [1, -1]}))
    doc = doc_of(run("(W @ x).sum()", "--at-file", str(f), "--json"))
    assert doc["output"]["data"] == -2.0
    assert doc["inputs"]["W"]["grad"] == [[1.0, -1.0], [1.0, -1.0]]


def test_list_values_keep_their_commas():
    assert split_assignments("x=[1,2],y=3,W=[[1,2],[3,4]]") == ["x=[1,2]", "y=3", "W=[[1,2],[3,4]]"]
    doc = doc_of(run("(x*y).sum()", "--at", "x=[1,2],y=3", "--json"))
    assert doc["inputs"]["x"]["grad"] == [3.0, 3.0] and doc["inputs"]["y"]["grad"] == 3.0


def test_plain_output_lists_value_partials_and_graph():
    r = run("u*v + u**2", "--at", "u=1,v=2")
    assert r.exit_code == 0
    for text in ("3", "4", "AddBackward0", "MulBackward0", "PowBackward0", "AccumulateGrad"):
        assert text in r.stdout


BAD = [
    # (args, fragment of the one-line message)
    (["u*v", "--at", "u=1"], "v at column 3 has no value: add --at v=..."),
    (["sine(x)", "--at", "x=1"], "did you mean 'sin'"),
    (["x +* 2", "--at", "x=1"], "column 4"),
    (["x", "--at", "x=abc"], "x=abc is not a number"),
    (["x", "--at", "x"], "expected NAME=VALUE"),
    (["x", "--at", "x=[1,2"], "not a number or a list"),
    (["x", "--at", "x=[[1,2],[3]]"], "ragged"),
    (["x", "--at", 'x=["a"]'], "is not a number"),
    (["x + y", "--at", "x=[1,2,3],y=[1,2]"], "cannot be broadcast"),
    (["x @ y", "--at", "x=[1,2,3],y=[1,2]"], "cannot be multiplied"),
    (["__import__('os')"], "dunder"),
    (["x.__class__", "--at", "x=1"], "dunder"),
    (["lambda: 0"], "keyword 'lambda'"),
    (["'rm -rf'"], "strings are not supported"),
    (["x[1]", "--at", "x=[1]"], "index 1 is out of bounds for dimension 0 with size 1"),
    (["x[0:1, 0]", "--at", "x=[1]"], "too many indices"),
    (["x", "--at", "x=1", "--max-elements", "0"], "Invalid value"),
    ([], "no expression given"),
    (["9**9**9**9"], "too large"),
    (["9**999"], "constant too large"),
    (["9**999", "--json"], "constant too large"),
    (["1" + "0" * 400 + "*1", "--json"], "constant too large"),
    (["1/0 * x", "--at", "x=1"], "division by zero"),
    (["sin(2)"], "needs a tensor"),
    (["x.foo()", "--at", "x=1"], "unknown method"),
    (["(" * 50 + "x" + ")" * 50, "--at", "x=1", "--max-depth", "10"], "nesting deeper than 10"),
    (["x", "--at", "x=[" + ",".join(["1"] * 30) + "]", "--max-elements", "10"], "limit of 10 elements"),
]


@pytest.mark.parametrize("args,fragment", BAD)
def test_bad_input_is_one_clear_error_and_exit_2(args, fragment):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert fragment in r.stderr
    assert "Traceback" not in r.output + r.stderr
    if "--json" in args:  # a program asking for JSON gets the error as a gradviz/1 document
        doc = json.loads(r.stdout)
        assert doc["schema"] == "gradviz/1" and fragment in doc["error"]["message"]
    else:
        assert r.stdout == ""


def test_caret_under_the_column():
    r = run("x +* 2", "--at", "x=1")
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: ")
    assert lines[2].index("^") == lines[1].index("*")


def test_unused_at_is_a_warning():
    r = run("x", "--at", "x=1,y=2", "--json")
    assert r.exit_code == 0
    assert "y" in r.stderr and "not used" in r.stderr
    json.loads(r.stdout)


def test_non_scalar_output_says_how_to_start_backward():
    r = run("W * 2", "--at", "W=[[1,2],[3,4]]", "--json")
    assert r.exit_code == 0
    assert "backward needs a scalar" in r.stderr and "--grad-output ones" in r.stderr
    doc = json.loads(r.stdout)
    assert doc["inputs"]["W"]["grad"] is None and doc["output"]["shape"] == [2, 2]
    doc = doc_of(run("W * 2", "--at", "W=[[1,2],[3,4]]", "--grad-output", "ones", "--json"))
    assert doc["inputs"]["W"]["grad"] == [[2.0, 2.0], [2.0, 2.0]]
    doc = doc_of(run("W * 2", "--at", "W=[[1,2],[3,4]]", "--grad-output", "[[1,0],[0,1]]", "--json"))
    assert doc["inputs"]["W"]["grad"] == [[2.0, 0.0], [0.0, 2.0]]


def test_batch_json_lines(tmp_path):
    f = tmp_path / "exprs.txt"
    f.write_text("x**2\n# a comment\n\nu*v + u**2\nsin(\n"
                 '{"expression": "a*b", "at": {"a": 2, "b": 3}, "no_grad": ["b"]}\n')
    r = CliRunner().invoke(main, ["-f", str(f), "--at", "x=2,u=1,v=2", "--json"])
    assert r.exit_code == 2
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(docs) == 4
    assert docs[0]["output"]["data"] == 4.0 and list(docs[0]["inputs"]) == ["x"]
    assert docs[1]["inputs"]["u"]["grad"] == 4.0
    assert docs[2] == {"schema": "gradviz/1", "error": {"line": 5, "message": docs[2]["error"]["message"],
                                                        "column": 5, "kind": "parse"}}
    assert docs[3]["inputs"]["a"]["grad"] == 3.0 and docs[3]["inputs"]["b"]["grad"] is None


def test_batch_all_good_exits_0():
    r = CliRunner().invoke(main, ["-f", "-", "--at", "x=2", "--json"], input="x*2\nx*3\n")
    assert r.exit_code == 0
    assert [json.loads(line)["output"]["data"] for line in r.stdout.splitlines()] == [4.0, 6.0]


def test_help_lists_limits():
    r = run("--help")
    for opt in ("--max-terms", "--max-depth", "--max-elements", "--at", "--no-grad", "--json", "--dtype"):
        assert opt in r.stdout


def test_deep_nesting_through_the_whole_pipeline():
    for src in ["(" * 1000 + "x" + ")" * 1000, "sin(" * 3000 + "x" + ")" * 3000, "-" * 3000 + "x"]:
        doc = doc_of(run(src, "--at", "x=0.5", "--json"))
        assert doc["inputs"]["x"]["grad"] is not None


# ---------------------------------------------------------------------------
# Fuzzing: whatever arrives, exit 0 or 2 with a message, never a traceback.
# ---------------------------------------------------------------------------

VALID = ["u*v + u**2", "x**2 + 2*x + 1", "sigmoid(w*x + b)", "torch.sin(x).exp() / (1 + x**2)",
         "mean(relu(W @ v))", "-x**-2", "(x - y) ** 2", "log(x) * sqrt(y)", "2**x**0.5", "x.pow(3).sum()"]
AT = ["--at", "u=1,v=2,x=0.5,y=-1,w=2,b=0.1", "--at", "W=[[1,2],[3,4]],v=[1,-1]"]
EXTRA_TOKENS = ["(", ")", "**", "*", "-", "+", "/", "@", ",", ".", "=", "[", "]", "9**9**9**9", "1e999", "x",
                "sin", "torch.", "__import__", "'s'", "\x00", "é", "λ", "∂", "1e-999", "0", "lambda", " "]

CASES_RUN = {"n": 0}


def _check(args, input=None):
    start = time.monotonic()
    r = CliRunner().invoke(main, args, input=input, catch_exceptions=True)
    CASES_RUN["n"] += 1
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code in (0, 2), (args, r.exit_code, r.output)
    assert "Traceback" not in r.output
    if r.exit_code == 2:
        assert r.stderr.strip(), "an error needs a message"
    assert time.monotonic() - start < 10


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=60))
def test_fuzz_random_text(text):
    _check(["--json", *AT, "--", text])


@st.composite
def mutated(draw):
    tokens = draw(st.sampled_from(VALID)).replace("(", " ( ").replace(")", " ) ").split()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens.insert(i, draw(st.one_of(st.sampled_from(EXTRA_TOKENS), st.text(min_size=1, max_size=3))))
    return " ".join(tokens)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=mutated())
def test_fuzz_mutated_expressions(expr):
    _check(["--json", *AT, "--", expr])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(st.text(max_size=20), st.floats().map(repr), st.integers().map(str)))
def test_fuzz_at_values(value):
    _check(["x*2", "--json", "--at", f"x={value}"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(mutated(), st.text(max_size=30)), max_size=5))
def test_fuzz_batch(lines):
    _check(["-f", "-", "--json", *AT], input="\n".join(lines) + "\n")


def test_report_fuzz_count():
    # Printed with -rA / -s; the count ran in this session (for the closing note).
    print(f"fuzz cases run: {CASES_RUN['n']}")


def test_a_huge_input_is_inf_without_numpy_warnings():
    r = run("x*2", "--at", "x=1e300", "--format", "tree")
    assert r.exit_code == 0, r.output
    assert "inf" in r.stdout
    assert "Warning" not in r.stderr


# --- the command's end: flushed output, the exit code, no interpreter teardown ---------------

@pytest.mark.parametrize("code, status, stderr", [
    (None, 0, ""), (0, 0, ""), (1, 1, ""), (2, 2, ""), (130, 130, ""), (-1, 1, ""),
    ("boom", 1, "boom\n"),
])
def test_end_exits_with_the_code_after_flushing(monkeypatch, capsys, code, status, stderr):
    import os

    import gradviz.__main__ as entry_module

    ended = []

    class Ended(Exception):
        pass

    def fake_exit(n):
        ended.append(n)
        raise Ended

    monkeypatch.setattr(os, "_exit", fake_exit)
    print("pending", end="")  # still in the buffer: _end must flush it before the process ends
    with pytest.raises(Ended):
        entry_module._end(code)
    assert ended == [status]
    out, err = capsys.readouterr()
    assert out == "pending" and err == stderr


def test_command_output_is_whole_with_the_fast_end(tmp_path):
    """A real process: stdout redirected to a file holds the whole document, the exit code is the
    command's (the end skips the interpreter's teardown, never the output)."""
    import subprocess
    import sys

    expr = " + ".join(f"x{i}*x{i + 1}" for i in range(300))
    at = ",".join(f"x{i}={i % 5}" for i in range(301))
    out = tmp_path / "doc.json"
    with open(out, "wb") as fh:
        proc = subprocess.run([sys.executable, "-m", "gradviz", expr, "--at", at, "--json"], stdout=fh,
                              stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["inputs"]["x1"]["grad"] == 0.0 + 2.0  # x0 + x2 = 0 + 2
    bad = subprocess.run([sys.executable, "-m", "gradviz", "x +", "--at", "x=1"], capture_output=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith(b"error: ") and bad.stdout == b""
