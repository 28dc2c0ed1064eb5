"""Long work (optimizing, rendering) in the background: one job at a time per studio, and so per
project. A second start while one runs is refused with a message that names the running job; every
tab sees the same job, its stage and progress, and can cancel it.

Cancelling works through the pipeline's `on_progress(stage, done, total)`: the next call raises
`Cancelled`, which unwinds the work like Ctrl-C does (the optimizer saves its checkpoint on any
exception; a render's temporary file is removed), so finished work stays in the project.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import MusividError
from ..progress import ProgressFn

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised from `on_progress` when the user cancelled the job (not a MusividError: nothing failed)."""


class Busy(MusividError):
    """A job is already running (the HTTP layer answers 409)."""


@dataclass
class Job:
    """What the page shows of a job (`as_json`)."""

    id: int
    kind: str  # "make", "optimize", "variants", "rewrite", "render", "preview", "thumbnails"
    label: str  # for people: "re-rolling line 3 (2 new variants)"
    state: str = "running"  # running | done | failed | cancelled
    stage: str = ""  # the pipeline's current stage: decode, optimize, render...
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    message: str = ""  # the result (done) or the error (failed)
    result: Any = None  # what the job function returned, for the page (JSON-able)
    log: list[str] = field(default_factory=list)  # the pipeline's messages during this job
    cancel_requested: bool = False
    error: MusividError | None = field(default=None, repr=False)  # why it failed (the command reports it)

    def as_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "label": self.label, "state": self.state, "stage": self.stage,
                "done": self.done, "total": self.total, "started": self.started, "finished": self.finished,
                "elapsed": (self.finished or time.time()) - self.started, "message": self.message,
                "result": self.result, "log": self.log[-12:], "cancel_requested": self.cancel_requested}


class _JobLog(logging.Handler):
    """The `musivid` logger's records from the job's own thread, into the job's log."""

    def __init__(self, job: Job, thread: int) -> None:
        super().__init__(logging.INFO)
        self.job, self.thread = job, thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            prefix = "warning: " if record.levelno >= logging.WARNING else ""
            self.job.log.append(prefix + record.getMessage())


class Jobs:
    """The one background job slot. `start` runs `fn(on_progress)` in a thread; `fn` returns
    (message, result) for the page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._count = 0

    @property
    def current(self) -> Job | None:
        """The running job, or the last one (finished, failed or cancelled); None before the first."""
        return self._job

    def busy(self) -> bool:
        return self._job is not None and self._job.state == "running"

    def start(self, kind: str, label: str, fn: Callable[[ProgressFn], tuple[str, Any]]) -> Job:
        with self._lock:
            if self.busy():
                j = self._job
                raise Busy(f"{j.label} is running (started {time.strftime('%H:%M:%S', time.localtime(j.started))}): "
                           "wait for it to finish or cancel it first")
            self._count += 1
            job = Job(self._count, kind, label)
            self._cancel = threading.Event()
            cancel = self._cancel

            def on_progress(stage: str, done: int, total: int) -> None:
                if cancel.is_set():
                    raise Cancelled()
                job.stage, job.done, job.total = stage, done, total

            self._job = job
            self._thread = threading.Thread(target=self._run, args=(job, fn, on_progress), name=f"musivid-job-{job.id}",
                                            daemon=True)
            self._thread.start()
            return job

    def _run(self, job: Job, fn, on_progress: ProgressFn) -> None:
        handler = _JobLog(job, threading.get_ident())
        logger = logging.getLogger("musivid")
        logger.addHandler(handler)
        try:
            job.message, job.result = fn(on_progress)
            job.state = "done"
        except Cancelled:
            job.state, job.message = "cancelled", "cancelled: the finished work is kept in the project"
        except MusividError as e:
            job.error = e
            job.state, job.message = "failed", str(e)
        except Exception as e:  # noqa: BLE001 - a bug: shown on the page, with the traceback in the log
            log.error("%s failed:\n%s", job.label, traceback.format_exc())
            job.error = MusividError(f"{job.label} failed: {type(e).__name__}: {e}")
            job.state, job.message = "failed", f"{type(e).__name__}: {e}"
        finally:
            logger.removeHandler(handler)
            job.finished = time.time()

    def cancel(self) -> Job | None:
        """Ask the running job to stop at its next progress report; returns it (None if none runs)."""
        with self._lock:
            if not self.busy():
                return None
            self._job.cancel_requested = True
            self._cancel.set()
            return self._job

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running job to end; True if none runs any more."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        return not self.busy()
