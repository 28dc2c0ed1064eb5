"""Line-level work on an existing project, beside pipeline's entry points (the studio uses them):
every line with its variants (`project_lines`), re-time a line (nothing is optimized again),
re-word it (that line only is optimized), preview the glide from one keyframe to the next,
optimize whatever is missing, redraw the thumbnails.

Like pipeline's entry points, each takes a project directory, reads and writes it only through
Project's accessors, and reports to `on_progress(stage, done, total)`; an exception raised from
`on_progress` stops the work and keeps what is finished (the optimizer saves its checkpoint).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import InputError
from .pipeline import (Job, ProgressFn, VideoResult, draw_storyboard, line_text, open_project, optimize_pending,
                       render_job)
from .project import Project, latent_key, latent_settings
from .schedule import Keyframe, Segment


@dataclass(frozen=True)
class VariantInfo:
    """One finished variant of a line."""

    variant: int
    score: float  # CLIP score (cosine similarity of image and line)
    steps: int  # optimizer steps it was given
    thumbnail: Path | None  # PROJECT/thumbs/<key>.png, None until drawn


@dataclass(frozen=True)
class LineInfo:
    """A lyric line as the project has it now: timing (line edits applied), keyframe, variants."""

    line: int  # 1-based
    segment: Segment
    keyframe: Keyframe | None  # None before the project's first full run
    variants: list[VariantInfo]
    shown: int | None  # the variant the video shows: the picked one, else the best-scoring
    picked: bool  # whether `shown` was picked by hand


def project_lines(project: Project) -> list[LineInfo]:
    """Every lyric line of an open project with its keyframe and finished variants (under the
    project's current settings). Reads only."""
    from .lyrics import clip_text

    s = project.settings
    lkey = latent_settings(s.optimize, s.models)
    kfs = {k.segment: k for k in project.keyframes()}
    out = []
    for seg in project.segments():
        text = clip_text(seg.text)[0]
        have = []
        for v in project.variants_of(text, lkey):
            key = latent_key(lkey, text, v)
            info, thumb = project.latent_info(key), project.thumbnail_file(key)
            have.append(VariantInfo(v, info.score, info.steps, thumb if thumb.is_file() else None))
        shown = project.shown_variant(text, lkey)
        out.append(LineInfo(seg.index + 1, seg, kfs.get(seg.index), have, shown,
                            shown is not None and project.picked(text) == shown))
    return out


@contextmanager
def models_kept() -> Iterator[None]:
    """Within the block, a model loaded by one job stays loaded for the next ones (keyed by model
    settings and device) instead of being loaded again by every job: for a long-lived process, the
    studio. One job at a time."""
    outer = Job.kept_models
    Job.kept_models = {} if outer is None else outer
    try:
        yield
    finally:
        Job.kept_models = outer


def optimize_project(project_dir: str | Path, *, device: str | None = None, offline: bool = False,
                     on_progress: ProgressFn | None = None) -> int:
    """Optimize every line's missing variants (an interrupted run continues from its checkpoint),
    then redraw the storyboard and thumbnails. Returns how many latents were optimized."""
    job = open_project(project_dir, device=device, offline=offline, on_progress=on_progress)
    n = optimize_pending(job)
    draw_storyboard(job)
    return n


def draw_thumbnails(project_dir: str | Path, *, device: str | None = None, offline: bool = False,
                    on_progress: ProgressFn | None = None) -> Path:
    """Redraw the storyboard and every variant's thumbnail (PROJECT/thumbs/); returns the storyboard."""
    return draw_storyboard(open_project(project_dir, device=device, offline=offline, on_progress=on_progress))


def retime_line(project_dir: str | Path, line: int, start: float) -> Segment:
    """Move 1-based lyric line `line` to start at `start` seconds (see schedule.retime): its keyframe
    follows it, to the nearest beat; nothing is optimized again. Returns the line as now timed."""
    from .schedule import keyframes, retime

    job = open_project(project_dir)
    line_text(job, line)
    segments = retime(job.segments, line - 1, start, job.audio.duration)  # an InputError if the order would break
    job.project.edit_line(line - 1, start=start)
    s = job.settings
    job.project.set_keyframes(keyframes(segments, job.rhythm.beats, s.schedule, s.render.fps))  # as prepare places them
    job.project.save()  # one write: no reader sees the new start without its keyframe
    return segments[line - 1]


def rewrite_line(project_dir: str | Path, line: int, text: str, *, device: str | None = None,
                 offline: bool = False, on_progress: ProgressFn | None = None) -> list[int]:
    """Give 1-based lyric line `line` new words (for its images and its caption): only that line is
    optimized, its usual number of variants for the new text; the old text's latents stay in the
    project (writing it back costs nothing). Returns the variant numbers the line now has."""
    text = " ".join(text.split())
    if not text:
        raise InputError(f"line {line}: the new text is empty: give the words of the line")
    p = Project.open(project_dir, must_exist=True)
    if not 1 <= line <= len(p.segments()):
        raise InputError(f"line {line}: the project has lines 1 to {len(p.segments())}")
    p.edit_line(line - 1, text=text)
    p.save()
    job = open_project(project_dir, device=device, offline=offline, on_progress=on_progress)
    optimize_pending(job, lines={line - 1})
    draw_storyboard(job)
    return job.project.variants_of(line_text(job, line), job.lkey)


def preview_transition(project_dir: str | Path, line: int, output: str | Path, *, margin: float = 0.5,
                       device: str | None = None, offline: bool = False,
                       on_progress: ProgressFn | None = None) -> VideoResult:
    """A short clip of the glide from line `line`'s keyframe to the next line's (from `margin` s
    before the first to `margin` s after the second), with the variants the video shows, written to
    `output`. The project's outputs and choices stay as they are."""
    from .interpolate import frame_range

    job = open_project(project_dir, device=device, offline=offline, on_progress=on_progress)
    line_text(job, line)
    kfs, duration = job.keyframes, job.audio.duration
    t0 = max(0.0, kfs[line - 1].time - margin)
    t1 = min(duration, (kfs[line].time if line < len(kfs) else duration) + margin)
    return render_job(job, Path(output), frame_range(duration, job.settings.render.fps, t0, t1 - t0), record=False)
