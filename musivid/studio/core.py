"""The studio's actions on one project, whatever the transport: quick ones (pick a variant, move a
line) answer at once; long ones (optimize, re-roll, re-word, render, preview) run as the one
background job. Every change goes through musivid.pipeline / musivid.actions, which write the same
files with the same atomic writes as the command line, under the same project lock, so the two can
be used in turn: while a command writes the project, a quick action is refused (ProjectBusyError,
naming its PID; HTTP 409), and so is a job started then (checked as it starts; one the command
starts meanwhile ends failed with that message).

A studio opened on audio makes the project as its first job. When that fails, `failure()` is the
error: served by `server.serve`, the studio then says on the page that it stops, and stops once a
page has fetched the failed state (or after a grace period), and the command reports the error."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import actions as edit, pipeline
from ..config import RunSettings
from ..errors import InputError, MusividError
from ..progress import ProgressFn
from ..project import Project, index_file, is_project, locked
from .access import new_token
from .jobs import Busy, Job, Jobs
from .view import file_url, preview_file, project_view

log = logging.getLogger(__name__)

JOB_KINDS = ("make", "optimize", "variants", "rewrite", "prompt", "style", "render", "preview", "thumbnails")


@dataclass(frozen=True)
class MakeRequest:
    """Make (or resume) the project from these inputs when the studio starts, as `musivid AUDIO
    [LYRICS]` would, but stopping before the render: the user picks first."""

    audio: Path
    lyrics: Path | None
    settings: RunSettings
    accept_truncated: bool = False  # use audio that decodes shorter than it says (with a warning)


class Studio:
    """One project directory, its access token and its job slot."""

    def __init__(self, project_dir: str | Path, *, make: MakeRequest | None = None, device: str | None = None,
                 offline: bool = False, token: str | None = None):
        self.root = Path(project_dir).resolve()
        if make is None and not is_project(self.root):
            raise InputError(f"{project_dir}: not a musivid project (no project.json): give the <song>.musivid "
                             "directory of a run, or an AUDIO file (and LYRICS) to start one")
        if make is None:
            Project.open(self.root)  # a damaged project.json stops here, before anything is served
        self.token = token or new_token()
        self.jobs = Jobs()
        self.make, self.device, self.offline = make, device, offline
        self.models = pipeline.ModelCache()  # loaded by the first job that needs them, kept for the next ones
        self._write = threading.Lock()  # one writer at a time: quick actions and job starts
        self.stop_on_failure = False  # serve(): a failed make stops the studio (the page is told)
        self._failure_reported = False  # /api/state has answered with the failed make
        self.failure_shown = threading.Event()  # ... and a page has fetched the project after that
        logger = logging.getLogger("musivid")
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # the page shows what is happening (each job's log)

    # ---- reading ------------------------------------------------------------------------------
    def view(self) -> dict:
        out = project_view(self.root)
        if self._failure_reported:
            self.failure_shown.set()  # a page has the failed state and the project as it is
        return out

    def state(self) -> dict:
        """What a page polls: the job, the project's version (changes when anyone saves it) and,
        when the studio stops because the project could not be made, why."""
        index = index_file(self.root)
        job = self.jobs.current
        failed = self.failure()
        stopping = None
        if failed is not None and self.stop_on_failure:
            self._failure_reported = True
            stopping = ("the studio stops: the project could not be made (the reason is above and in the "
                        "terminal): fix it and run the command again")
        return {"job": job.as_json() if job else None,
                "version": index.stat().st_mtime_ns if index.is_file() else 0, "stopping": stopping}

    def failure(self) -> MusividError | None:
        """Why making the project failed (None while it runs, when it worked or was cancelled, and
        for a studio opened on a project)."""
        job = self.jobs.current
        if job is None or job.kind != "make" or job.state != "failed":
            return None
        return job.error or MusividError(job.message)

    # ---- quick actions --------------------------------------------------------------------------
    def _idle(self) -> None:
        if self.jobs.busy():
            raise Busy(f"{self.jobs.current.label} is running: wait for it to finish or cancel it first")

    def _unlocked(self) -> None:
        """ProjectBusyError (naming its PID) while another command writes the project: a job is
        refused at once (409) rather than started to fail."""
        if self.root.is_dir():
            with locked(self.root):
                pass

    def pick(self, line: int, variant: int, all_repeats: bool = False) -> edit.Picked:
        """That line only (with `all_repeats`, every line with the same words); ProjectBusyError while
        another command writes the project."""
        with self._write:
            self._idle()
            return edit.pick_variant(self.root, line, variant, all_repeats=all_repeats)

    def retime(self, line: int, start: float) -> dict:
        with self._write:
            self._idle()
            seg = edit.retime_line(self.root, line, start)
            return {"line": line, "start": seg.start, "end": seg.end}

    # ---- jobs -----------------------------------------------------------------------------------
    def begin(self) -> Job | None:
        """What starts with the studio: making the project from its inputs, or drawing the
        thumbnails a project made before they existed lacks."""
        if self.make is not None:
            return self.start("make")
        view = self.view()
        if view.get("missing_thumbnails"):
            return self.start("thumbnails")
        return None

    def start(self, kind: str, *, line: int | None = None, count: int = 2, text: str | None = None) -> Job:
        """Start a background job (see JOB_KINDS); Busy if one runs."""
        if kind not in JOB_KINDS:
            raise InputError(f"{kind!r}: not a job: one of {', '.join(JOB_KINDS)}")
        if kind in ("variants", "rewrite", "prompt", "preview") and line is None:
            raise InputError(f"a {kind} job needs a line number")
        label, fn = self._job(kind, line, count, text)
        with self._write:
            if not self.jobs.busy():  # (a job of ours holds the lock itself: Busy names it)
                self._unlocked()
            return self.jobs.start(kind, label, fn)

    def _job(self, kind: str, line: int | None, count: int, text: str | None
             ) -> tuple[str, Callable[[ProgressFn], tuple[str, Any]]]:
        root, kw = self.root, {"device": self.device, "offline": self.offline, "models": self.models}
        if kind == "make":
            if self.make is None:
                raise InputError("this studio was opened on a project, not on audio: use 'optimize'")
            mk = self.make

            def run(op):
                pipeline.make_video(mk.audio, mk.lyrics, settings=mk.settings, project_dir=root, render=False,
                                    accept_truncated=mk.accept_truncated, on_progress=op, models=self.models)
                return "the project is ready: pick variants, then render", None
            return f"making the project from {mk.audio.name}", run
        if kind == "optimize":
            def run(op):
                n = edit.optimize_project(root, on_progress=op, **kw)
                return (f"optimized {n} latent(s)" if n else "every line was already optimized"), None
            return "optimizing the missing lines", run
        if kind == "variants":
            def run(op):
                res = edit.add_variants(root, line, count, on_progress=op, **kw)
                kept = "".join(f"; line {ln} keeps variant {v}" for ln, v in res.kept)
                return (f"line {line}: new variants {', '.join(map(str, res.variants))}{kept}",
                        {"line": line, "variants": res.variants, "kept": [list(k) for k in res.kept]})
            return f"re-rolling line {line} ({count} new variant{'s' if count != 1 else ''})", run
        if kind == "rewrite":
            def run(op):
                have = edit.rewrite_line(root, line, text or "", on_progress=op, **kw)
                return f"line {line}: new words, variants {', '.join(map(str, have))}", {"line": line}
            return f"re-wording line {line}", run
        if kind == "prompt":  # text "" (or none): cleared, the image follows the words
            def run(op):
                have = edit.set_line_prompt(root, line, text.strip() if text and text.strip() else None,
                                            on_progress=op, **kw)
                what = "new image prompt" if text and text.strip() else "image prompt cleared"
                return f"line {line}: {what}, variants {', '.join(map(str, have))}", {"line": line}
            return f"setting the image prompt of line {line}", run
        if kind == "style":  # the whole video's style: every line is optimized again
            def run(op):
                n = edit.set_direction(root, style=text or "", on_progress=op, **kw)
                return (f"new style: optimized {n} latent(s)" if n else "the style is unchanged"), None
            return "changing the video's style", run
        if kind == "render":
            def run(op):
                res = edit.render_project(root, on_progress=op, **kw)
                note = " [UNTRAINED random weights: preview only]" if res.untrained else ""
                return f"wrote {res.video} ({res.frames} frames){note}", {"video": str(res.video)}
            return "rendering the video", run
        if kind == "preview":
            def run(op):
                out = preview_file(root, line)
                out.parent.mkdir(exist_ok=True)
                res = edit.preview_transition(root, line, out, on_progress=op, **kw)
                return (f"preview from line {line} ({res.frames} frames)",
                        {"line": line, "url": file_url(root, out)})
            return f"previewing the transition from line {line}", run
        def run(op):  # thumbnails
            edit.draw_thumbnails(root, on_progress=op, **kw)
            return "thumbnails drawn", None
        return "drawing the thumbnails", run

    def cancel(self) -> Job | None:
        return self.jobs.cancel()

    def close(self, timeout: float = 120.0) -> None:
        """Stop: cancel a running job and wait for it to unwind (its finished work is saved)."""
        if self.jobs.cancel() is not None:
            log.info("cancelling %s: the finished work is kept", self.jobs.current.label)
        self.jobs.wait(timeout)
