"""Issue 16's attacks, each bounded in time and memory: what -o points at, memory that is never
freed, a batch line that fails, stdout and stdin faults, signals, hostile input text.

SAFETY: gradviz runs as root here. No test points it at a real device or system path: the
device nodes and FIFOs are made in tmp_path (a rename over /dev/null would destroy it).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradviz import output
from gradviz.cli import main

ROOT = Path(__file__).resolve().parents[1]
UV = ["u*v + u**2", "--at", "u=1,v=2"]
MEMORY_LIMIT = 3 * 2**30  # address space of every gradviz subprocess
IS_ROOT = os.geteuid() == 0


def run(*args, input=None, env=None):
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def _limits(extra=None):
    def preexec():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        if extra is not None:
            extra()
    return preexec


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


def gradviz(*args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, preexec=None, timeout=60, env=None,
            prelude=None):
    """Run ``python -m gradviz ARGS`` (or ``prelude`` code, then the command) in a subprocess
    limited in memory; return (returncode, stdout bytes, stderr text)."""
    cmd = [sys.executable, "-m", "gradviz", *args]
    if prelude is not None:
        cmd = [sys.executable, "-c", prelude + "\nfrom gradviz.__main__ import entry\nimport sys\n"
               "sys.argv = ['gradviz'] + sys.argv[1:]\nentry()", *args]
    p = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=timeout,
                       env=env or _env(), preexec_fn=_limits(preexec))
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def peak_rss_kb(*args) -> int:
    """The peak resident memory (KB) of one gradviz subprocess run (its own, from wait4)."""
    p = subprocess.Popen([sys.executable, "-m", "gradviz", *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=_env(), preexec_fn=_limits())
    timer = threading.Timer(120, p.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.returncode == 0, err
    return usage.ru_maxrss


# ------------------------------------------------------------------------------------------
# 1. -o never destroys what it points at


def _char_device(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null


@pytest.mark.skipif(not IS_ROOT, reason="mknod needs root")
def test_o_a_device_is_written_through_not_replaced(tmp_path):
    dev = tmp_path / "null"
    _char_device(dev)
    r = run(*UV, "--format", "json", "-o", str(dev))
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(dev.lstat().st_mode) and dev.lstat().st_rdev == os.makedev(1, 3)
    assert "character device" in r.stderr and "written in place" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_o_a_fifo_gets_the_whole_document(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = run(*UV, "-o", str(fifo))
    assert r.exit_code == 0, r.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    reader.join(10)
    assert json.loads(got[0])["output"]["data"] == 3.0
    assert "FIFO" in r.stderr


@pytest.mark.parametrize("dangling", [False, True])
def test_o_a_symlink_is_followed_and_its_target_replaced(tmp_path, dangling):
    target, link = tmp_path / "t.json", tmp_path / "l.json"
    if not dangling:
        target.write_text("old")
        target.chmod(0o600)
    link.symlink_to("t.json")
    r = run(*UV, "-o", str(link))
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and os.readlink(link) == "t.json"
    assert json.loads(target.read_text())["output"]["data"] == 3.0
    if not dangling:
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "symbolic link" in r.stderr and str(target) in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.json", "t.json"]


def test_o_a_symlink_loop_is_a_clear_error(tmp_path):
    (tmp_path / "a.json").symlink_to("b.json")
    (tmp_path / "b.json").symlink_to("a.json")
    r = run(*UV, "-o", str(tmp_path / "a.json"))
    assert r.exit_code == 2 and "cannot write" in r.stderr and "symbolic links" in r.stderr
    assert (tmp_path / "a.json").is_symlink() and (tmp_path / "b.json").is_symlink()


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444, 0o755])
def test_o_an_existing_file_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "f.json"
    path.write_text("old")
    path.chmod(mode)
    assert run(*UV, "-o", str(path)).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert json.loads(path.read_text())["output"]["data"] == 3.0


@pytest.mark.skipif(not IS_ROOT, reason="giving a file away needs root")
def test_o_an_existing_file_keeps_its_owner(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")
    os.chown(path, 4321, 4322)
    assert run(*UV, "-o", str(path)).exit_code == 0
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (4321, 4322)


def test_o_a_hard_link_is_said(tmp_path):
    path, other = tmp_path / "f.json", tmp_path / "g.json"
    path.write_text("old")
    os.link(path, other)
    r = run(*UV, "-o", str(path))
    assert r.exit_code == 0 and "hard links" in r.stderr
    assert other.read_text() == "old"


def test_o_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    path.write_text("old")
    real = os.write

    def full_after_a_bit(fd, data):  # the disk fills up half-way through the document
        if len(data) > 10:
            real(fd, bytes(data[:10]))
            raise OSError(28, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(output.os, "write", full_after_a_bit)
    r = run(*UV, "-o", str(path))
    assert r.exit_code == 2 and "cannot write" in r.stderr and "No space left" in r.stderr
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def _pieces_then(failure):
    yield b'{"a":'
    yield b"1"
    if failure is not None:
        raise failure
    yield b"}\n"


@pytest.mark.parametrize("kind", ["new", "existing", "fifo"])
def test_o_written_piece_by_piece_is_the_whole_of_them(tmp_path, kind):
    """A document given as pieces (a large graph's JSON) is written as their concatenation."""
    path = tmp_path / "f.json"
    got = []
    if kind == "existing":
        path.write_text("old")
    if kind == "fifo":
        os.mkfifo(path)
        reader = threading.Thread(target=lambda: got.append(path.read_bytes()), daemon=True)
        reader.start()
    output.write_output(str(path), _pieces_then(None))
    if kind == "fifo":
        reader.join(10)
        assert got == [b'{"a":1}\n']
    else:
        assert path.read_bytes() == b'{"a":1}\n'


@pytest.mark.parametrize("failure", [RuntimeError("made half-way"), KeyboardInterrupt()])
def test_o_pieces_that_fail_half_way_leave_the_old_file_and_no_temporary(tmp_path, failure):
    path = tmp_path / "f.json"
    path.write_text("old")
    with pytest.raises(type(failure)):
        output.write_output(str(path), _pieces_then(failure))
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


@pytest.mark.parametrize("args", [["--json", "-o", "{out}"], ["-o", "{out}"], ["--json", "-o", "-"]])
def test_o_json_is_the_bytes_of_json_on_stdout(tmp_path, args):
    expected = run(*UV, "--json").stdout_bytes
    out = tmp_path / "f.json"
    r = run(*UV, *[a.format(out=out) for a in args])
    assert r.exit_code == 0
    assert (r.stdout_bytes if "-" in args else out.read_bytes()) == expected


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("name, removed", [
    (f".f.json.gradviz-{_dead_pid()}-abcd_123.tmp", True),  # its process is gone
    (f".f.json.gradviz-{os.getppid()}-abcd_123.tmp", False),  # a live process: maybe writing now
    (".g.json.gradviz-1-abcd_123.tmp", False),  # another path's
    (".f.json.abcd_123.tmp", True),  # the older naming, an hour old (set below)
    ("f.json.tmp", False),  # not gradviz's naming
])
def test_o_removes_stale_temporaries_of_its_own_naming(tmp_path, name, removed):
    path = tmp_path / "f.json"
    stale = tmp_path / name
    stale.write_text("half a document")
    os.utime(stale, (time.time() - 7200,) * 2)
    r = run(*UV, "-o", str(path))
    assert r.exit_code == 0
    assert stale.exists() is not removed
    assert ("interrupted gradviz run" in r.stderr) is removed


def test_o_a_fresh_temporary_of_the_older_naming_is_kept(tmp_path):
    stale = tmp_path / ".f.json.abcd_123.tmp"
    stale.write_text("maybe being written")
    assert run(*UV, "-o", str(tmp_path / "f.json")).exit_code == 0
    assert stale.exists()


# ------------------------------------------------------------------------------------------
# 2. each batch line's and each check's graph is freed


def test_a_batch_frees_each_lines_graph(tmp_path):
    values = tmp_path / "v.json"
    values.write_text(json.dumps({"v": [float(i % 7) for i in range(60_000)]}))
    rss = {}
    for n in (8, 80):
        batch = tmp_path / f"b{n}.txt"
        batch.write_text("sum(v*v + v)\n" * n)
        rss[n] = peak_rss_kb("-f", str(batch), "--at-file", str(values), "--format", "table")
    # each line keeps ~1 MB of arrays: 72 more lines kept were ~70 MB more (the collector was
    # paused for the whole process); freed, the peak stays where it was
    assert rss[80] - rss[8] < 25_000, rss


def test_check_frees_its_traces(tmp_path):
    n = 120
    expr = tmp_path / "e.txt"
    expr.write_text(" + ".join(f"x{i}*x{i}" for i in range(n)))
    at = ",".join(f"x{i}={i % 5 + 1}" for i in range(n))
    plain = peak_rss_kb("-f", str(expr), "--at", at, "--json")
    checked = peak_rss_kb("-f", str(expr), "--at", at, "--check", "--json")
    assert checked - plain < 20_000, (plain, checked)  # 240 traces kept were ~50 MB


# ------------------------------------------------------------------------------------------
# 3. one failing line never stops the batch, and leaves no partial document


def _lines(stdout: str) -> list[dict]:
    # "\n" only: the documents may hold U+2028 or \x85, which str.splitlines() splits on
    return [json.loads(line) for line in stdout.split("\n")[:-1]]  # every line parses


def test_the_issues_batch_runs_every_line(tmp_path):
    f = tmp_path / "b.txt"
    f.write_text('x*2\n{"expression": "sum(y)", "at": {"y": [[]]}}\nx*3\n')
    r = CliRunner().invoke(main, ["-f", str(f), "--at", "x=1", "--json"])
    docs = _lines(r.stdout)
    assert len(docs) == 3
    assert docs[0]["output"]["data"] == 2.0 and docs[2]["output"]["data"] == 3.0
    assert "error" in docs[1] or docs[1]["output"]["data"] == 0.0


FAILURES = [
    # (exception a line raises, exit code, fragment of its error record)
    (RuntimeError("a bug"), 3, "internal error (RuntimeError: a bug)"),
    (MemoryError(), 2, "too large"),
    (RecursionError(), 2, "nested too deeply"),
    (KeyError("k"), 3, "internal error (KeyError"),
]


@pytest.mark.parametrize("exc, code, fragment", FAILURES)
@pytest.mark.parametrize("where", ["compute", "document"])
def test_a_line_that_fails_becomes_its_error_record(monkeypatch, exc, code, fragment, where):
    from gradviz import cli

    class HalfWritten:  # the result, but its document fails after its first piece
        def __init__(self, result):
            self.result = result

        def __getattr__(self, name):
            return getattr(self.result, name)

        def write_json(self, stream):
            stream.write('{"schema":"gradviz/1","expression":')
            raise exc

    real = cli.compute

    def compute(expr, *a, **k):
        if expr == "x*9":
            if where == "compute":
                raise exc
            return HalfWritten(real(expr, *a, **k))
        return real(expr, *a, **k)

    monkeypatch.setattr(cli, "compute", compute)
    r = CliRunner().invoke(main, ["-f", "-", "--at", "x=1", "--json"], input="x*2\nx*9\nx*3\n")
    assert r.exit_code == code
    docs = _lines(r.stdout)
    assert [d.get("expression") for d in docs] == ["x*2", None, "x*3"]
    assert docs[1]["error"]["line"] == 2 and fragment in docs[1]["error"]["message"]
    assert "error: line 2: " in r.stderr and "Traceback" not in r.stderr


def test_a_line_out_of_memory_under_a_limit(tmp_path):
    f = tmp_path / "b.txt"
    f.write_text("x*2\nsum(w.reshape(1,-1) * w.reshape(-1,1))\nx*3\n")
    values = tmp_path / "at.json"
    values.write_text(json.dumps({"x": 1, "w": [1.0] * 40_000}))  # 1.6·10⁹ elements: 6.4 GB
    code, out, err = gradviz("-f", str(f), "--at-file", str(values), "--json", timeout=120)
    docs = _lines(out.decode())
    assert len(docs) == 3 and docs[2]["output"]["data"] == 3.0
    assert "error" in docs[1] and code == 2, err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------
# 6. stdout and stdin faults: exit 2 and one line; a reader that leaves: quiet, exit 0

BATCH = "x*2\n" * 3000


def _close(fd):
    return lambda: os.close(fd)


@pytest.mark.parametrize("args", [[*UV, "--json"], UV, [*UV, "--format", "dot"], ["-f", "-", "--at", "x=1"],
                                  ["-f", "-", "--at", "x=1", "--json"]])
def test_stdout_closed_is_exit_2(tmp_path, args):
    src = tmp_path / "in.txt"
    src.write_text(BATCH)
    with open(src, "rb") as inp:
        code, _, err = gradviz(*args, stdout=None, stdin=inp, preexec=_close(1))
    assert code == 2 and err.strip() == "error: cannot write to stdout: it is closed (write to a file with -o PATH)"


@pytest.mark.skipif(not IS_ROOT, reason="mknod needs root")
@pytest.mark.parametrize("args, stdin", [
    ([*UV, "--json"], None), (UV, None), ([*UV, "--steps"], None), ([*UV, "--format", "dot"], None),
    (["-f", "-", "--at", "x=1", "--json"], BATCH), (["-f", "-", "--at", "x=1"], BATCH),
], ids=["json", "terminal", "steps", "dot", "batch-json", "batch-terminal"])
def test_stdout_on_a_full_disk_is_exit_2(tmp_path, args, stdin):
    full = tmp_path / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a private /dev/full
    src = None
    if stdin is not None:
        src = tmp_path / "in.txt"
        src.write_text(stdin)
    with open(full, "wb") as out, open(src or os.devnull, "rb") as inp:
        code, _, err = gradviz(*args, stdout=out, stdin=inp)
    assert code == 2 and err.strip().splitlines()[-1] == "error: cannot write to stdout: No space left on device"
    assert "Traceback" not in err and "please report" not in err


@pytest.mark.parametrize("args", [["-f", "-", "--at", "x=1"], ["x", "--at-file", "-"]])
def test_stdin_closed_is_exit_2(args):
    code, _, err = gradviz(*args, stdin=None, preexec=_close(0))
    assert code == 2 and "stdin is closed" in err and "Traceback" not in err


@pytest.mark.parametrize("args, stdin", [
    ([*UV, "--steps"], None), (UV, None), ([*UV, "--json"], None), ([*UV, "--format", "dot"], None),
    (["-f", "-", "--at", "x=1"], BATCH), (["-f", "-", "--at", "x=1", "--json"], BATCH),
    (["-f", "-", "--at", "x=1", "--steps"], BATCH),
], ids=["steps", "terminal", "json", "dot", "batch-terminal", "batch-json", "batch-steps"])
def test_a_broken_pipe_is_quiet_and_exit_0(tmp_path, args, stdin):
    src = tmp_path / "in.txt"
    src.write_text(stdin or "")
    r, w = os.pipe()
    os.close(r)  # the reader has already left
    try:
        with open(src, "rb") as inp:
            code, _, err = gradviz(*args, stdout=w, stdin=inp)
    finally:
        os.close(w)
    assert (code, err) == (0, "")


# ------------------------------------------------------------------------------------------
# 7. signals: one line, exit 128 + N, no temporary left; a killed run's is cleaned next time

SLOW_FSYNC = "import os, time\nos.fsync = lambda fd: time.sleep(60)\n"  # -o waits with its temporary


def _start_slow_write(path: Path) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", SLOW_FSYNC + "from gradviz.__main__ import entry\nimport sys\n"
         "sys.argv = ['gradviz'] + sys.argv[1:]\nentry()", *UV, "-o", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), preexec_fn=_limits())
    deadline = time.monotonic() + 30
    while not any(n.endswith(".tmp") for n in os.listdir(path.parent)):
        assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() is not None else ""
        time.sleep(0.01)
    return p


@pytest.mark.parametrize("signum, code, message", [
    (signal.SIGTERM, 143, "error: terminated (SIGTERM)"),
    (signal.SIGINT, 130, "error: interrupted (SIGINT)"),
    (signal.SIGHUP, 129, "error: hung up (SIGHUP)"),
])
def test_a_signal_during_an_o_write_leaves_no_temporary(tmp_path, signum, code, message):
    path = tmp_path / "f.json"
    path.write_text("old")
    p = _start_slow_write(path)
    p.send_signal(signum)
    out, err = p.communicate(timeout=30)
    assert p.returncode == code and err.decode().strip() == message
    assert sorted(n.name for n in tmp_path.iterdir()) == ["f.json"] and path.read_text() == "old"


#: the signal arrives the moment the temporary exists, before the writer holds its name
SIGNAL_AT_MKSTEMP = ("import os, signal, tempfile\n_mkstemp = tempfile.mkstemp\n"
                     "def mkstemp(*a, **k):\n    made = _mkstemp(*a, **k)\n"
                     "    os.kill(os.getpid(), signal.SIGTERM)\n    return made\n"
                     "tempfile.mkstemp = mkstemp\n")


def test_a_signal_as_the_temporary_is_made_leaves_none(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")
    p = subprocess.run(
        [sys.executable, "-c", SIGNAL_AT_MKSTEMP + "from gradviz.__main__ import entry\nimport sys\n"
         "sys.argv = ['gradviz'] + sys.argv[1:]\nentry()", *UV, "-o", str(path)],
        capture_output=True, env=_env(), preexec_fn=_limits(), timeout=60)
    assert p.returncode == 143 and p.stderr.decode().strip() == "error: terminated (SIGTERM)"
    assert sorted(n.name for n in tmp_path.iterdir()) == ["f.json"] and path.read_text() == "old"


def test_a_killed_writes_temporary_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "f.json"
    p = _start_slow_write(path)
    p.kill()
    p.communicate(timeout=30)
    assert len(list(tmp_path.iterdir())) == 1  # SIGKILL cannot be caught: the temporary stays
    code, _, err = gradviz(*UV, "-o", str(path))
    assert code == 0 and "removed 1 temporary file" in err
    assert sorted(n.name for n in tmp_path.iterdir()) == ["f.json"]


def test_ctrl_c_at_any_moment_is_one_line_and_exit_130():
    # -S: no site-packages .pth files to process, so that the interpreter's own start-up
    # (which no program can guard) is short; gradviz's handlers are set before click is imported
    env = _env(PYTHONPATH=f"{ROOT}{os.pathsep}{sysconfig.get_paths()['purelib']}")
    seen = []
    for delay in (0.03, 0.05, 0.08, 0.12, 0.2, 0.3):
        p = subprocess.Popen([sys.executable, "-S", "-m", "gradviz", "sum(x*x)", "--at", "x=[1,2,3]", "--steps"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=_limits())
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=30)[1].decode()
        assert "Aborted!" not in err
        if "Traceback" in err:  # only inside the interpreter's start-up, never in gradviz or click
            assert "gradviz/cli.py" not in err and "click" not in err, err
        if p.returncode == 130:
            assert err == "error: interrupted (SIGINT)\n"
        seen.append(p.returncode)
    assert 130 in seen, seen


# ------------------------------------------------------------------------------------------
# 8. input text: control characters escaped, BOM accepted, lines split on \n only, COLUMNS=0

CONTROL = ["\x1b]0;TITLE\x07", "\x00", "\x9b31m", "\u202e", "\u2028", "\x08", "\udcff"]


@pytest.mark.parametrize("ch", CONTROL)
@pytest.mark.parametrize("where", ["expression", "at", "function"])
def test_error_messages_escape_control_characters(ch, where):
    args = {"expression": ["--at", "x=1", "--", f"x*2 + {ch} y"],
            "at": ["x*2", "--at", f"x=1{ch}"],
            "function": ["--at", "x=1", "--", f"sin{ch}(x)"]}[where]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 or ch.isspace()  # "1\u2028" is a number, "sin\u2028(x)" a call
    text = r.stderr
    assert not any(c in text for c in ch if not c.isprintable()), text
    if not ch.isspace():  # the parser skips whitespace (U+2028): nothing to echo
        assert "\\x" in text or "\\u" in text


def test_the_caret_stays_under_an_escaped_character():
    r = run("--at", "x=1", "--", "x*2 + \x1b y")
    lines = r.stderr.splitlines()
    assert lines[1].strip() == "x*2 + \\x1b y"
    assert lines[2].index("^") == lines[1].index("\\x1b")


def test_a_batch_header_escapes_control_characters(tmp_path):
    f = tmp_path / "b.txt"
    f.write_text("x*2\nx*\x1c3\n", encoding="utf-8")  # \x1c is whitespace to the parser
    r = run("-f", str(f), "--at", "x=1")
    assert r.exit_code == 0, r.output
    assert "\x1c" not in r.stdout and "── line 2: x*\\x1c3" in r.stdout


@pytest.mark.parametrize("option", ["-f", "--at-file"])
def test_a_utf8_bom_is_accepted(tmp_path, option):
    f = tmp_path / "in.txt"
    if option == "-f":
        f.write_bytes("\ufeffu*v + u**2\n".encode("utf-8"))
        r = run("-f", str(f), "--at", "u=1,v=2", "--json")
    else:
        f.write_bytes("\ufeff{\"u\": 1, \"v\": 2}".encode("utf-8"))
        r = run(*UV[:1], "--at-file", str(f), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["output"]["data"] == 3.0


def test_a_bom_on_stdin_is_accepted():
    r = CliRunner().invoke(main, ["-f", "-", "--at", "x=2", "--json"], input="\ufeffx*2\nx*3\n".encode())
    assert r.exit_code == 0, r.output
    assert [d["output"]["data"] for d in _lines(r.stdout)] == [4.0, 6.0]


@pytest.mark.parametrize("sep", ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_batch_lines_are_split_on_newline_only(tmp_path, sep):
    f = tmp_path / "b.txt"
    f.write_text(f"x*2\nx*{sep}3\r\nsin(\n", encoding="utf-8")
    r = run("-f", str(f), "--at", "x=1", "--json")
    docs = _lines(r.stdout)
    assert len(docs) == 3 and docs[1]["output"]["data"] == 3.0
    assert docs[2]["error"]["line"] == 3 and "error: line 3:" in r.stderr


@pytest.mark.parametrize("columns", ["0", "1", "19", "abc", "-5", ""])
def test_any_columns_still_draws_the_view(columns):
    r = run(*UV, env={"COLUMNS": columns})
    assert r.exit_code == 0
    assert len(r.stdout.splitlines()) > 10 and "∂f/∂u = 4" in r.stdout
