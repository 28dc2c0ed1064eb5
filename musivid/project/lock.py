"""The project lock: one writer at a time for a project directory, whoever it is (a CLI
command, the studio, the Python API)."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError, ProjectBusyError
from ..files import remove_dead_temps, write_error

log = logging.getLogger(__name__)

LOCK = ".lock"


@contextmanager
def locked(root: str | Path) -> Iterator[None]:
    """Hold the project's lock while a command writes it: an OS-level lock (flock) on ROOT/.lock,
    which the kernel releases when the holder ends, however it ends, so a lock left by a killed
    process is simply taken over. The file holds the holder's PID, for the message a second
    writer gets (ProjectBusyError). Taking over a killed holder's lock removes the files it left
    half-written: in the project, and beside it (where its outputs go by default) those its PID
    names (files.temp_beside). A directory this call made and nothing but the lock went into (a
    command that failed before writing anything) is removed on the way out."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; commands are not kept apart there
        yield
        return
    root = Path(root)
    created = not root.exists()
    path = root / LOCK
    for attempt in range(2):  # twice: a failed first run may remove the directory it made meanwhile
        try:
            root.mkdir(exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            break
        except FileNotFoundError:
            if attempt:
                raise
        except OSError as e:
            err = write_error(e, path, "the project lock")
            if err is not None:
                raise err from None
            raise InputError(f"{root}: cannot write in the project directory ({e.strerror}): check its "
                             "permissions, or copy the project somewhere writable") from None
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise ProjectBusyError(f"{root}: another musivid command (PID {pid}) is writing this project: wait for it "
                                   "to finish, or stop it, then run this command again") from None
        held = True
        left = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if left and left != str(os.getpid()):
            log.info("the project lock was left by process %s, which ended without releasing it: taking it over", left)
            for tmp in [*root.glob(".*.part"), *root.glob("latents/.*.part")]:  # its half-written files
                tmp.unlink(missing_ok=True)
            for d in (root / "thumbs", root / "checkpoints"):
                remove_dead_temps(d)
            if left.isdigit():
                remove_dead_temps(root.resolve().parent, pid=int(left))  # its video or captions, half-written
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            err = write_error(e, path, "the project lock", 16)
            if err is None:
                raise
            raise err from None
        yield
    finally:
        if held:
            os.ftruncate(fd, 0)  # released cleanly: an empty file (a PID left in it means a killed holder)
            if created and [p.name for p in root.iterdir()] == [LOCK]:  # removed while still held
                path.unlink(missing_ok=True)
                try:
                    root.rmdir()
                except OSError:
                    pass
        os.close(fd)  # closing releases the flock
