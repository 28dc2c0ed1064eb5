"""File helpers every layer uses: atomic writes (temp file beside the target, then rename),
writability checks before slow work, and content hashes.

A write either leaves the complete new file under the final name or nothing at all: a crash, an
exception or a signal in the middle never leaves a partial file there, and the temporary file is
removed on the way out.

Signals: the command line (never the library) installs `on_signal` for SIGINT, SIGTERM and SIGHUP.
It raises `Interrupted` at the next Python instruction, so every `finally` and `except
BaseException` runs (temp files are removed, the optimizer saves its checkpoint). A signal that
arrives inside `critical()` (a temp file made but not yet owned by a `finally`) waits for the end
of the section; one that arrives while the first is being handled is ignored, so the clean-up is
not cut short.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError, Interrupted


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
    """A new empty temporary file in `path`'s directory, named `.NAME.xxxx.SUFFIX.part`, with
    normal permissions (the caller removes or renames it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".part")
    os.fchmod(fd, default_mode())
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it is renamed onto `path` only if the block succeeds
    and removed in every other case (an exception, a signal)."""
    path = Path(path)
    tmp = None
    try:
        with critical():  # a signal now would leave the new temp file to nobody
            tmp = temp_beside(path)
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


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

_signals = {"depth": 0, "pending": None, "raised": None}


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


def on_signal(signum: int, frame: Any = None) -> None:
    """The handler the command line installs for SIGINT, SIGTERM and SIGHUP: raise Interrupted,
    unless inside `critical()` (then at its end) or already stopping (then ignored)."""
    if _signals["raised"] is not None or _signals["pending"] is not None:
        return
    if _signals["depth"]:
        _signals["pending"] = signum
        return
    _signals["raised"] = signum
    raise Interrupted(signum)


def reset_signals() -> None:
    """Forget a handled signal (the command line calls this when a command ends)."""
    _signals.update(depth=0, pending=None, raised=None)
