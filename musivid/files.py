"""File helpers every layer uses: atomic writes (temp file beside the target, then rename),
writability checks before slow work, and content hashes.

A write either leaves the complete new file under the final name or nothing at all: a crash, an
exception or a signal in the middle never leaves a partial file there, and the temporary file is
removed on the way out. A full disk (or quota), a read-only file system or an I/O error while
writing is one WriteError line (what, where, how much was needed and how much is free). The
temporary file's name holds its writer's PID (`.NAME.PID-xxxx.SUFFIX.part`): one that SIGKILL left
is removed by the next write of the same file, once its writer is gone (never a live process's).

Signals: the command line (never the library) installs `on_signal` for SIGINT, SIGTERM and SIGHUP.
It raises `Interrupted` at the next Python instruction, so every `finally` and `except
BaseException` runs (temp files are removed, the optimizer saves its checkpoint). A signal that
arrives inside `critical()` (a temp file made but not yet owned by a `finally`) waits for the end
of the section; one that arrives while the first is being handled is ignored, so the clean-up is
not cut short. The first signal to arrive decides (the message, the exit code): Python runs
pending handlers by signal number, not by arrival, so with `signal_order(fd)` (the read end of the
pipe given to signal.set_wakeup_fd, where the interpreter writes each signal's number as it
arrives) `on_signal` takes the earliest one from there.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError, Interrupted, WriteError


def default_mode() -> int:
    """What a plainly created file gets (0o666 less the umask); mkstemp would leave 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in chunks (weight files are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def temp_beside(path: Path) -> Path:
    """A new empty temporary file in `path`'s directory, named `.NAME.PID-xxxx.SUFFIX.part` (PID: this
    process, so that `remove_dead_temps` knows whose it is), with normal permissions (the caller
    removes or renames it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.{os.getpid()}-",
                               suffix=path.suffix + ".part")
    os.fchmod(fd, default_mode())
    os.close(fd)
    return Path(tmp)


_TEMP = re.compile(r"\.(?P<stem>.*)\.(?P<pid>\d+)-[^.]+(?P<suffix>\.[^.]*)?\.part")


def temp_owner(name: str) -> int | None:
    """The PID in a name made by `temp_beside` (None: not such a name)."""
    m = _TEMP.fullmatch(name)
    return int(m["pid"]) if m else None


def process_alive(pid: int) -> bool:
    """Whether a process with this PID exists (one of another user counts: it is not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists
        return True
    return True


def remove_dead_temps(directory: str | os.PathLike, of: str | os.PathLike | None = None,
                      pid: int | None = None) -> list[Path]:
    """Remove the temporary files `temp_beside` made in `directory` (only those of the file `of`,
    if given; only those of process `pid`, if given) whose process is gone: what a SIGKILL left.
    A live process's file is never touched. Returns what was removed."""
    directory, gone = Path(directory), []
    try:
        names = [e.name for e in os.scandir(directory) if e.name.endswith(".part")]
    except OSError:
        return gone
    for name in names:
        m = _TEMP.fullmatch(name)
        if m is None or (of is not None and (m["stem"], m["suffix"] or "") != (Path(of).stem, Path(of).suffix)):
            continue
        owner = int(m["pid"])
        if owner == os.getpid() or (pid is not None and owner != pid) or process_alive(owner):
            continue
        try:
            (directory / name).unlink()
            gone.append(directory / name)
        except OSError:
            pass
    return gone


# ---- a write that cannot be done: full disk, quota, read-only file system, I/O error --------------

DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system", errno.EIO: "input/output error"}


def size_text(n: int) -> str:
    """A byte count for a person: 950 bytes, 12 KB, 3.4 MB, 1.2 GB."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{round(n / scale)} {unit}"
    return f"{n} bytes"


def describe(path: Path) -> str:
    """What a file is, for a message: the video, the captions, an image..."""
    return {".mp4": "the video", ".srt": "the captions", ".png": "an image", ".json": "a JSON file",
            ".pt": "a tensor file", ".md": "a report"}.get(path.suffix.lower(), "a file")


def write_error(e: BaseException, path: str | os.PathLike | None = None, what: str | None = None,
                size: int | None = None, written: int | None = None) -> WriteError | None:
    """The one-line WriteError for an OSError that means the disk (not the program) refused the
    write: full, over quota, read-only, failing. None for any other error. `size`: the bytes being
    written (the space needed), `written`: how far a write of unknown size got."""
    code = getattr(e, "errno", None)
    if not isinstance(e, OSError) or code not in DISK_ERRORS:
        return None
    path = Path(path if path is not None else (e.filename or "?"))
    what = what or describe(path)
    facts = [DISK_ERRORS[code]]
    if size is not None:
        facts.append(f"{size_text(size)} to write")
    elif written:
        facts.append(f"{size_text(written)} written when it failed")
    try:
        free = shutil.disk_usage(path.parent if not path.is_dir() else path).free
        facts.append(f"{size_text(free)} free")
    except OSError:
        pass
    if code in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space there (or choose another location)"
    elif code == errno.EROFS:
        fix = "choose a writable location"
    else:
        fix = "check that disk (or choose another location)"
    return WriteError(f"{path}: cannot write {what} ({'; '.join(facts)}): {fix}, then run the same command "
                      "again; nothing finished is lost")


@contextmanager
def atomic_output(path: str | os.PathLike, what: str | None = None, size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it is renamed onto `path` only if the block succeeds
    and removed in every other case (an exception, a signal). The temporary files of killed
    writers of `path` are removed first; a disk that refuses the write is a WriteError naming
    `what` (default: from the suffix) and `size` (the bytes being written, if known)."""
    path = Path(path)
    tmp = None
    try:
        remove_dead_temps(path.parent, of=path)
        with critical():  # a signal now would leave the new temp file to nobody
            tmp = temp_beside(path)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        written = None
        if tmp is not None:
            try:
                written = tmp.stat().st_size
            except OSError:
                pass
        err = write_error(e, path, what, size, written)
        if err is None:
            raise
        raise err from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to the (temporary) file `path`, flushed to the disk."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str | None = None) -> None:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    with atomic_output(path, what, len(data)) as tmp:
        write_file(tmp, data)


def atomic_write_text(path: str | os.PathLike, text: str, what: str | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), what)


def atomic_torch_save(obj: Any, path: str | os.PathLike, what: str | None = None) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue(), what)


def check_writable(path: str | os.PathLike, option: str = "-o") -> None:
    """Fail early (before any slow work) if the file `path` cannot be written: try it for real,
    since permission bits alone do not tell (root, read-only mounts)."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise InputError(f"{path}: is a directory: give a file name, e.g. {option} {path / 'video.mp4'}")
    if not parent.exists():
        raise InputError(f"{parent}: output directory does not exist: create it or choose another {option}")
    if not parent.is_dir():
        raise InputError(f"{parent}: is not a directory: choose another {option}")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".musivid-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{parent}: output directory is not writable ({e.strerror}): choose another {option}") from None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same resolved path, or (both existing) the same inode,
    so a hard link or a case-insensitive file system does not hide an input."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def looks_like_path(value: str) -> bool:
    """A model option that names a local path rather than a registry/hub name ("small",
    "org/model"): absolute, relative with ./ ../ or ~, or with more than one separator."""
    return value.startswith(("/", ".", "~")) or value.count("/") > 1 or "\\" in value or Path(value).exists()


# ---- signals --------------------------------------------------------------------------------------

_signals: dict[str, Any] = {"depth": 0, "pending": None, "raised": None, "order": None}


@contextmanager
def critical() -> Iterator[None]:
    """A few instructions no signal may cut (see the module docstring): a signal handled by
    `on_signal` meanwhile is raised when the section ends."""
    _signals["depth"] += 1
    try:
        yield
    finally:
        _signals["depth"] -= 1
        if _signals["depth"] == 0 and _signals["pending"] is not None:
            signum, _signals["pending"] = _signals["pending"], None
            _signals["raised"] = signum
            raise Interrupted(signum)


def signal_order(fd: int | None) -> None:
    """Where `on_signal` learns which signal came first: the (non-blocking) read end of the pipe
    whose write end the command line gave signal.set_wakeup_fd; None: forget it."""
    _signals["order"] = fd


def _first_arrived(signum: int) -> int:
    """The earliest of the signals waiting for `on_signal`, as the wakeup pipe recorded them (the
    pipe is drained); `signum` where that is not known."""
    import signal

    fd = _signals["order"]
    try:
        data = os.read(fd, 512) if fd is not None else b""
    except OSError:  # nothing in it (a signal that arrived on another thread may not be written yet)
        data = b""
    for b in data:
        if b == signum or (0 < b < signal.NSIG and signal.getsignal(b) is on_signal):
            return b
    return signum


def on_signal(signum: int, frame: Any = None) -> None:
    """The handler the command line installs for SIGINT, SIGTERM and SIGHUP: raise Interrupted for
    the first signal that arrived, unless inside `critical()` (then at its end) or already stopping
    (then ignored, until `reset_signals`)."""
    first = _first_arrived(signum)
    if _signals["raised"] is not None or _signals["pending"] is not None:
        return
    if _signals["depth"]:
        _signals["pending"] = first
        return
    _signals["raised"] = first
    raise Interrupted(first)


def hold_signals() -> None:
    """Ignore every later signal (the command ended and its process is exiting: nothing is left to
    stop); the signal that stopped it, if one did, keeps its exit code."""
    if _signals["raised"] is None:
        _signals["raised"] = 0


def reset_signals() -> None:
    """Forget a handled signal (the command line calls this when a command ends)."""
    _signals.update(depth=0, pending=None, raised=None)
