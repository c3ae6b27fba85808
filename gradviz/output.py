"""Writing the ``-o`` file without ever destroying what the path points at.

The command line (cli.py) is the only caller. A regular file (or a path that does not
exist yet) is replaced atomically: a temporary file beside it, written in full, then
renamed over it, so a reader sees the old content or the new, never half of it. Anything
else is written through, as a shell's ``>`` would: a rename over ``/dev/null`` or a FIFO
would put a regular file in its place. A symbolic link is followed and its target
replaced. An existing file keeps its permissions and owner.

Temporaries are named ``.NAME.gradviz-PID-XXXXXXXX.tmp``; one left by a run that was
killed (its process is gone) is removed on the next write to the same path.
"""

from __future__ import annotations

import _signal  # the C module (signal imports enum first)
import os
import re
import stat
import tempfile
import time

from .errors import UsageError

_STOP_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)  # what cli.py turns into Interrupted

#: room left in a 255-byte file name for the temporary's prefix and suffix
_NAME_ROOM = 200
#: a temporary of the older naming (.NAME.XXXXXXXX.tmp) is removed only when this old
_LEGACY_STALE_SECONDS = 3600


def write_output(path: str, data) -> list[str]:
    """Write ``data`` to ``path`` (see the module docstring); return notes for the user.

    ``data`` is bytes, or an iterable of bytes written one after another (a million-term JSON
    document is made piece by piece, never whole in memory: the temporary takes the pieces, and
    only a complete one is renamed over ``path``).

    Raises :class:`UsageError` ("cannot write PATH: reason") when it cannot be written;
    the path is then left as it was.
    """
    try:
        return _write(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write(path: str, data) -> list[str]:
    notes: list[str] = []
    target, magic, linked = _follow_links(path)
    if magic:
        # /dev/stdout, /dev/fd/N, /proc/PID/fd/N: an open file of some process, whatever it is
        _write_through(path, data)
        return notes
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "it is a folder")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_through(target, data)
        notes.append(f"note: -o {path} is {_kind(st.st_mode)}: written in place, not replaced")
        return notes
    if linked:
        notes.append(f"note: -o {path} is a symbolic link: replaced its target {target}")
    _replace(target, data, st, notes)
    return notes


def _follow_links(path: str) -> tuple[str, bool, bool]:
    """The absolute path ``path``'s symbolic links lead to (it need not exist); whether the
    way goes through /proc (a process's open file, e.g. /dev/stdout); whether ``path``
    itself was a link."""
    p = os.path.abspath(path)
    for hops in range(40):  # the kernel's own limit on links followed
        folder = os.path.realpath(os.path.dirname(p))
        p = os.path.join(folder, os.path.basename(p))
        if folder == "/proc" or folder.startswith("/proc/"):
            return p, True, hops > 0
        if not os.path.islink(p):
            return p, False, hops > 0
        p = os.path.join(folder, os.readlink(p))
    raise OSError(40, "too many levels of symbolic links")


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _write_through(path: str, data) -> None:
    """Open and write, no rename: the device, FIFO or open file stays what it is."""
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)  # a FIFO waits for its reader
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)  # e.g. /dev/stdout redirected to a file
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data) -> None:
    for chunk in (data,) if isinstance(data, (bytes, bytearray)) else data:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


def _temp_prefix(name: str) -> str:
    return f".{name[:_NAME_ROOM]}.gradviz-{os.getpid()}-"


def _replace(target: str, data, st, notes: list[str]) -> None:
    """Write a temporary beside ``target``, give it ``st``'s mode and owner, rename it over."""
    folder, name = os.path.split(target)
    removed = remove_stale_temporaries(folder, name)
    if removed:
        notes.append(f"note: removed {removed} temporary file{'s' if removed > 1 else ''} left beside "
                     f"{target} by an interrupted gradviz run")
    # A stop signal between the temporary's creation and the try below would leave it behind: the
    # signals wait (blocked) until the try has begun, where one raises and the temporary goes.
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(name), suffix=".tmp", dir=folder)
    except BaseException:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        raise
    try:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        try:
            _write_all(fd, data)
            if st is None:
                mask = os.umask(0)
                os.umask(mask)
                os.fchmod(fd, 0o666 & ~mask)  # mkstemp makes 0600; a new file gets the usual permissions
            else:
                _keep_owner(fd, st, target, notes)
                os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
                if st.st_nlink > 1:
                    notes.append(f"note: {target} had {st.st_nlink} hard links; the others keep the old content")
            os.fsync(fd)  # the content is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _keep_owner(fd: int, st, target: str, notes: list[str]) -> None:
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) == (st.st_uid, st.st_gid):
        return
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except PermissionError:
        try:
            os.fchown(fd, -1, st.st_gid)  # a member of the group may still keep that
        except PermissionError:
            pass
        notes.append(f"note: {target} now belongs to you (its owner could not be kept)")


def remove_stale_temporaries(folder: str, name: str) -> int:
    """Remove temporaries for ``name`` in ``folder`` left by gradviz runs that were killed.

    Ours: ``.NAME.gradviz-PID-XXXXXXXX.tmp`` whose process no longer exists; and the older
    naming ``.NAME.XXXXXXXX.tmp`` (no process id) once an hour old. Only regular files of
    this user. Returns how many were removed.
    """
    base = re.escape(name[:_NAME_ROOM])
    ours = re.compile(rf"\.{base}\.gradviz-(\d+)-[a-z0-9_]{{8}}\.tmp", re.S)
    legacy = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp", re.S)
    removed = 0
    try:
        entries = list(os.scandir(folder or "."))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        m = ours.fullmatch(entry.name)
        if m is None and legacy.fullmatch(entry.name) is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            continue
        if m is not None:
            if _process_exists(int(m.group(1))):
                continue  # another gradviz is writing this path right now
        elif now - st.st_mtime < _LEGACY_STALE_SECONDS:
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError:
            pass
    return removed


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True
