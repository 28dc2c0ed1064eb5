"""Every action on an existing project (the CLI's variants, pick and render commands, the studio's
edits, the Python API): every line with its variants (`project_lines`), add variants of a line,
pick the one a line shows, render the video, re-time a line (nothing is optimized again), re-word
it (that line only is optimized), preview the glide from one keyframe to the next, optimize
whatever is missing, redraw the thumbnails.

Each takes a project directory, reads and writes it only through
Project's accessors, and reports to `on_progress(stage, done, total)`; an exception raised from
`on_progress` stops the work and keeps what is finished (the optimizer saves its checkpoint).
"""
from __future__ import annotations

import dataclasses
import functools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import project as proj
from .errors import InputError
from .pipeline import (Job, VideoResult, draw_storyboard, line_text, open_project, optimize_pending, render_job)
from .progress import ProgressFn
from .project import Project, latent_key, latent_settings
from .project.checks import check_output
from .song.segments import Segment
from .video.motion import Keyframe


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
    from .song.lyrics import clip_text

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
    from .video.motion import keyframes
    from .song.segments import retime

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
    from .video.interpolate import frame_range

    job = open_project(project_dir, device=device, offline=offline, on_progress=on_progress)
    line_text(job, line)
    kfs, duration = job.keyframes, job.audio.duration
    t0 = max(0.0, kfs[line - 1].time - margin)
    t1 = min(duration, (kfs[line].time if line < len(kfs) else duration) + margin)
    return render_job(job, Path(output), frame_range(duration, job.settings.render.fps, t0, t1 - t0), record=False)


# ---- the Python API's project commands (the CLI's variants, pick, render) ----------------------------

def _writes_project(fn):
    """An entry point that writes an existing project: it must be one (checked before the lock, so
    no lock file lands in a directory that is no project), and it is locked while `fn` runs."""
    @functools.wraps(fn)
    def run(project_dir: str | Path, *args, **kwargs):
        Project.open(project_dir, must_exist=True)
        with proj.locked(project_dir):
            return fn(project_dir, *args, **kwargs)

    return run


@_writes_project
def add_variants(project_dir: str | Path, line: int, count: int, *, device: str | None = None,
                 offline: bool = False, progress: bool = False, on_progress: ProgressFn | None = None) -> list[int]:
    """Optimize `count` new variants of 1-based lyric line `line` (every other line stays as it is)
    and redraw the storyboard. Returns the new variant numbers."""
    if not 1 <= count <= 64:
        raise InputError(f"--count {count}: must be from 1 to 64")
    job = open_project(project_dir, device=device, offline=offline, progress=progress, on_progress=on_progress)
    text = line_text(job, line)
    start = max(job.project.variants_of(text, job.lkey), default=-1) + 1
    new = [(text, v) for v in range(start, start + count)]
    optimize_pending(job, extra=new)
    draw_storyboard(job)
    return [v for _, v in new]


@_writes_project
def pick_variant(project_dir: str | Path, line: int, variant: int) -> str:
    """Choose the variant the video shows for 1-based lyric line `line`. Returns the line's text."""
    from .song.lyrics import clip_text

    p = Project.open(project_dir, must_exist=True)
    segs = p.segments()
    if not 1 <= line <= len(segs):
        raise InputError(f"--line {line}: the project has lines 1 to {len(segs)}")
    text = clip_text(segs[line - 1].text)[0]
    s = p.settings
    have = p.variants_of(text, proj.latent_settings(s.optimize, s.models))
    if variant not in have:
        raise InputError(f"--variant {variant}: line {line} has variants {have}: "
                         f"make more with `musivid variants {project_dir} --line {line}`")
    p.pick(text, variant)
    p.save()
    return segs[line - 1].text


@_writes_project
def render_project(project_dir: str | Path, output: str | Path | None = None, *, fps: float | None = None,
                   size: int | None = None, captions: str | bool | None = None, crf: int | None = None,
                   preset: str | None = None, font: str | None = None, device: str | None = None,
                   offline: bool = False, overwrite: bool = False, start: float = 0.0, duration: float | None = None,
                   save: bool = False, progress: bool = False, on_progress: ProgressFn | None = None,
                   **motion: float | str | None) -> VideoResult:
    """Render the video from a project without optimizing anything (missing latents are an error).
    fps/size/captions ("none" | "line" | "karaoke")/font/crf/preset and the motion (ScheduleConfig's
    reactivity, pulse, walk, energy, intro, outro...) given as keywords override the project's
    settings for this render (with `save`, for later renders too)."""
    from .video.interpolate import frame_range

    p = Project.open(project_dir, must_exist=True)
    out = Path(output) if output is not None else (p.output("video") or Path(project_dir).with_suffix(".mp4"))
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the output must be an .mp4 file: pass -o NAME.mp4")
    inputs = [f.path if f else None for f in (p.input("audio"), p.input("lyrics"))]
    check_output(out, inputs, p, overwrite)
    changes = {k: v for k, v in dict(fps=fps, size=size, captions=captions, crf=crf, preset=preset, font=font).items()
               if v is not None}
    ren = dataclasses.replace(p.settings.render, **changes)
    motion = {k: v for k, v in motion.items() if v is not None}
    sch = dataclasses.replace(p.settings.schedule, **motion) if motion else None
    job = open_project(project_dir, device=device, render=ren if changes else None, schedule=sch, offline=offline,
                       save=save, progress=progress, on_progress=on_progress)

    return render_job(job, out, frame_range(job.audio.duration, ren.fps, start, duration))
