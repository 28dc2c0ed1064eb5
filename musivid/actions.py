"""Every action on an existing project (the CLI's variants, pick and render commands, the studio's
edits, the Python API): every line with its variants (`project_lines`), add variants of a line,
pick the one a line shows, render the video, re-time a line (nothing is optimized again), re-word
it (that line only is optimized), preview the glide from one keyframe to the next, optimize
whatever is missing, redraw the thumbnails.

Each takes a project directory, reads and writes it only through
Project's accessors, and reports to `on_progress(stage, done, total)`; an exception raised from
`on_progress` stops the work and keeps what is finished (the optimizer saves its checkpoint). Those
that may load a model take `models`, a ModelCache that keeps them loaded for the next action (the
studio holds one for its whole life).

One writer at a time: every action that changes a project holds the project lock while it runs
(see project.locked), whoever calls it (the CLI, the studio, the Python API); a second writer gets
ProjectBusyError naming the holder's PID, and nothing is written. After every change the storyboard
(PROJECT/storyboard.png) is drawn again: from the thumbnails (redraw_storyboard, no model loaded)
when no image is new.

A choice is per line: lines with the same words share their latents (optimized once) but each shows
its own pick (Project.shown_variant with the line); picking or re-rolling one of them leaves the
others' images as they were unless `all_repeats`.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from . import project as proj
from .config import collect_errors
from .errors import InputError
from .images.models.cache import ModelCache
from .pipeline import VideoResult, draw_storyboard, open_project, render_session
from .progress import ProgressFn
from .project import Project, latent_key, latent_settings
from .pipeline import check_font
from .project.checks import check_output, own_output
from .project.provenance import claimed
from .runner import optimize_pending, pending, wanted
from .song.segments import Segment
from .video.motion import Keyframe

log = logging.getLogger(__name__)


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
    shown: int | None  # the variant the video shows: the line's pick, else its words', else the best-scoring
    picked: bool  # whether `shown` was picked by hand
    repeats: tuple[int, ...] = ()  # the other lines (1-based) with the same words (they share the variants)
    prompt: str | None = None  # its own image prompt (what its image shows instead of its words); None: its words


@dataclass(frozen=True)
class Picked:
    """What `pick_variant` changed."""

    line: int  # 1-based, as named
    text: str  # its words
    variant: int
    changed: tuple[int, ...]  # the lines (1-based) that now show `variant`: the line, and with all_repeats its repeats
    kept: tuple[tuple[int, int], ...]  # (line, variant) of every other line with the same words: its image is kept


@dataclass(frozen=True)
class NewVariants:
    """What `add_variants` made."""

    line: int  # 1-based, as named
    text: str  # its words
    variants: list[int]  # the new variant numbers
    lines: tuple[int, ...]  # the lines (1-based) that may show a new variant: the line, with all_repeats its repeats
    kept: tuple[tuple[int, int], ...]  # (line, variant) of every other line with the same words: its image is kept


def _line_texts(project: Project) -> list[str]:
    """Every line's target key (session.Line.prompt): what keys its latents, and what makes two
    lines repeats (the same words and image prompt)."""
    from .session import lines_of

    return [ln.prompt for ln in lines_of(project)]


def project_lines(project: Project) -> list[LineInfo]:
    """Every lyric line of an open project with its keyframe and finished variants (under the
    project's current settings) and the variant it shows (its own choice). Reads only."""
    from .session import lines_of

    s = project.settings
    lkey = latent_settings(s.optimize, s.models)
    kfs = {k.segment: k for k in project.keyframes()}
    lines = lines_of(project)
    texts = [ln.prompt for ln in lines]
    out = []
    for ln, text in zip(lines, texts):
        seg = ln.segment
        have = []
        for v in project.variants_of(text, lkey):
            key = latent_key(lkey, text, v)
            info, thumb = project.latent_info(key), project.thumbnail_file(key)
            have.append(VariantInfo(v, info.score, info.steps, thumb if thumb.is_file() else None))
        shown = project.shown_variant(text, lkey, line=seg.index)
        repeats = tuple(i + 1 for i, t in enumerate(texts) if t == text and i != seg.index)
        out.append(LineInfo(seg.index + 1, seg, kfs.get(seg.index), have, shown,
                            shown is not None and project.picked(text, seg.index) == shown, repeats, ln.image_prompt))
    return out


def storyboard_rows(project: Project, max_variants: int = 8) -> list:
    """The storyboard's rows (video.storyboard.Row) as the project has it now: every line's first
    `max_variants` variants with their thumbnails (PROJECT/thumbs/, drawn when they were
    optimized), the one each line shows chosen. A missing or unreadable thumbnail is a warning and
    an empty cell. Reads only; loads no model."""
    from .session import lines_of
    from .video.storyboard import Row, Variant, read_png

    s = project.settings
    lkey = latent_settings(s.optimize, s.models)
    rows, missing = [], []
    for ln in lines_of(project):
        seg, text = ln.segment, ln.prompt
        have = []
        for v in project.variants_of(text, lkey)[:max_variants]:
            key = latent_key(lkey, text, v)
            data = project.thumbnail(key)
            image = read_png(data) if data is not None else None
            if image is None:
                missing.append(f"{seg.index + 1} (variant {v})")
            have.append(Variant(v, project.latent_info(key).score, image))
        rows.append(Row(seg.index + 1, seg.start, seg.text, have, project.shown_variant(text, lkey, line=seg.index),
                        ln.image_prompt))
    if missing:
        log.warning("%s: %d thumbnail(s) missing or unreadable (line %s): drawn as empty cells in the storyboard; "
                    "open the project in `musivid studio` to draw them again", project.root, len(missing),
                    ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else ""))
    return rows


def redraw_storyboard(project: Project) -> Path:
    """PROJECT/storyboard.png drawn again from the thumbnails (see storyboard_rows): current after a
    pick, a re-timed or re-worded line, without loading a model."""
    from .video.storyboard import write_storyboard

    s = project.settings
    return write_storyboard(storyboard_rows(project), project.root / "storyboard.png", s.models.untrained,
                            s.render.font)


def _writes_project(fn):
    """An action that writes an existing project: it must be one (checked before the lock, so no
    lock file lands in a directory that is no project), and it holds the project lock while `fn`
    runs (ProjectBusyError, with nothing written, while another writer holds it)."""
    @functools.wraps(fn)
    def run(project_dir: str | Path, *args, **kwargs):
        Project.open(project_dir, must_exist=True)
        with proj.locked(project_dir):
            return fn(project_dir, *args, **kwargs)

    return run


@_writes_project
def optimize_project(project_dir: str | Path, *, device: str | None = None, offline: bool = False,
                     on_progress: ProgressFn | None = None, models: ModelCache | None = None) -> int:
    """Optimize every line's missing variants (an interrupted run continues from its checkpoint),
    then redraw the storyboard and thumbnails. Returns how many latents were optimized."""
    session = open_project(project_dir, device=device, offline=offline, on_progress=on_progress, models=models)
    n = optimize_pending(session)
    draw_storyboard(session)
    return n


@_writes_project
def draw_thumbnails(project_dir: str | Path, *, device: str | None = None, offline: bool = False,
                    on_progress: ProgressFn | None = None, models: ModelCache | None = None) -> Path:
    """Redraw the storyboard and every variant's thumbnail (PROJECT/thumbs/); returns the storyboard."""
    return draw_storyboard(open_project(project_dir, device=device, offline=offline, on_progress=on_progress,
                                        models=models))


@_writes_project
def retime_line(project_dir: str | Path, line: int, start: float) -> Segment:
    """Move 1-based lyric line `line` to start at `start` seconds (see schedule.retime): its keyframe
    follows it, to the nearest beat; nothing is optimized again. Returns the line as now timed."""
    from .video.motion import keyframes
    from .song.segments import retime

    session = open_project(project_dir)
    session.line(line)  # an InputError naming the range if there is no such line
    segments = retime(session.segments, line - 1, start, session.audio.duration)  # an InputError if the order breaks
    p, s = session.project, session.settings
    p.edit_line(line - 1, start=start)
    p.set_keyframes(keyframes(segments, session.rhythm.beats, s.schedule, s.render.fps))  # as a session places them
    p.save()  # one write: no reader sees the new start without its keyframe
    redraw_storyboard(p)  # the line's time
    return segments[line - 1]


@_writes_project
def rewrite_line(project_dir: str | Path, line: int, text: str, *, device: str | None = None,
                 offline: bool = False, on_progress: ProgressFn | None = None,
                 models: ModelCache | None = None) -> list[int]:
    """Give 1-based lyric line `line` new words (for its images and its caption): only that line is
    optimized, its usual number of variants for the new text; the old text's latents stay in the
    project (writing it back costs nothing). A variant picked for that line's old words is dropped
    (with a warning). Returns the variant numbers the line now has."""
    from .text import clean_line

    text = clean_line(text)  # as lyrics are read: no control characters, escapes or invisible formatting
    if not text:
        raise InputError(f"line {line}: the new text is empty: give the words of the line")
    p = Project.open(project_dir, must_exist=True)
    if not 1 <= line <= len(p.segments()):
        raise InputError(f"line {line}: the project has lines 1 to {len(p.segments())}")
    p.edit_line(line - 1, text=text)
    p.line_pick(line - 1, _line_texts(p)[line - 1])  # a pick made for its old words: dropped, warned
    p.save()
    session = open_project(project_dir, device=device, offline=offline, on_progress=on_progress, models=models)
    optimize_pending(session, wanted(session, [session.line(line)]))
    draw_storyboard(session)
    return session.project.variants_of(session.line(line).prompt, session.lkey)


@_writes_project
def set_line_prompt(project_dir: str | Path, line: int, prompt: str | None, *, device: str | None = None,
                    offline: bool = False, progress: bool = False, on_progress: ProgressFn | None = None,
                    models: ModelCache | None = None) -> list[int]:
    """Give 1-based lyric line `line` its own image prompt (what its image shows instead of its
    words; `[classes: ...]` and `[avoid: ...]` inside it apply to that line), or with None clear
    it (the image follows the words). `[image: FILE]` / `[image: FILE:WEIGHT]` inside it add
    reference images for that line: a relative FILE is read from the current folder, and each file
    is checked now and recorded with its absolute path and digest. The caption keeps the words.
    Only that line is optimized; every other line's latents stay as they are. Returns the variant
    numbers the line now has."""
    from .images.targets import line_target, resolve_line_images
    from .text import clean_line

    p = Project.open(project_dir, must_exist=True)
    segs = p.segments()
    if not 1 <= line <= len(segs):
        raise InputError(f"--line {line}: the project has lines 1 to {len(segs)}")
    if prompt is not None:
        prompt = " ".join(clean_line(prompt).split())
        if not prompt:
            raise InputError(f"line {line}: the new prompt is empty: give the image prompt, or --clear to clear it")
        prompt = resolve_line_images(prompt, Path.cwd(), f"line {line}")  # a bad [image:] file: refused here
        line_target(segs[line - 1].text, prompt, p.settings.direction, line)  # bad [classes:]: refused here
    p.set_line_prompt(line - 1, prompt)
    p.line_pick(line - 1, _line_texts(p)[line - 1])  # a pick made for its old image: dropped, warned
    p.save()
    session = open_project(project_dir, device=device, offline=offline, progress=progress, on_progress=on_progress,
                           models=models)
    optimize_pending(session, wanted(session, [session.line(line)]))
    draw_storyboard(session)
    return session.project.variants_of(session.line(line).prompt, session.lkey)


@_writes_project
def set_direction(project_dir: str | Path, *, style: str | None = None, avoid: str | None = None,
                  classes: str | None = None, device: str | None = None, offline: bool = False,
                  on_progress: ProgressFn | None = None, models: ModelCache | None = None) -> int:
    """Change the video's style, text to avoid or classes (None: keep it; "": none) and optimize
    every line for it (a line whose target did not change keeps its latents). Returns how many
    latents were optimized."""
    from .images.targets import class_indices

    p = Project.open(project_dir, must_exist=True)
    s = p.settings
    changes = {k: " ".join(v.split()) for k, v in (("style", style), ("avoid", avoid), ("classes", classes))
               if v is not None}
    with collect_errors():
        direction = dataclasses.replace(s.direction, **changes)
    if direction.classes:
        class_indices(direction.classes)  # an unknown name: one line with the closest ones
    if direction == s.direction:
        return 0
    p.set_settings(dataclasses.replace(s, direction=direction))
    p.save()
    session = open_project(project_dir, device=device, offline=offline, on_progress=on_progress, models=models)
    n = optimize_pending(session)
    draw_storyboard(session)
    return n


def preview_transition(project_dir: str | Path, line: int, output: str | Path, *, margin: float = 0.5,
                       device: str | None = None, offline: bool = False, on_progress: ProgressFn | None = None,
                       models: ModelCache | None = None) -> VideoResult:
    """A short clip of the glide from line `line`'s keyframe to the next line's (from `margin` s
    before the first to `margin` s after the second), with the variants the video shows, written to
    `output`. The project's outputs and choices stay as they are.

    Opening the project may write its index (what changed in the inputs' timing or the keyframes),
    so that much holds the project lock: while another command writes the project the preview is
    refused (ProjectBusyError); the render itself reads only finished latent files and runs
    unlocked, so a preview never holds up a writer."""
    from .video.interpolate import frame_range

    Project.open(project_dir, must_exist=True)
    with proj.locked(project_dir):
        session = open_project(project_dir, device=device, offline=offline, on_progress=on_progress, models=models)
    session.line(line)  # an InputError naming the range if there is no such line
    kfs, duration = session.keyframes, session.audio.duration
    t0 = max(0.0, kfs[line - 1].time - margin)
    t1 = min(duration, (kfs[line].time if line < len(kfs) else duration) + margin)
    return render_session(session, Path(output), frame_range(duration, session.settings.render.fps, t0, t1 - t0),
                          record=False)


# ---- the Python API's project commands (the CLI's variants, pick, render) ----------------------------

@_writes_project
def add_variants(project_dir: str | Path, line: int, count: int, *, all_repeats: bool = False,
                 device: str | None = None, offline: bool = False, progress: bool = False,
                 on_progress: ProgressFn | None = None, models: ModelCache | None = None) -> NewVariants:
    """Optimize `count` new variants of 1-based lyric line `line` (every other line stays as it is)
    and redraw the storyboard. The other lines with the same words share the new variants but keep
    the image they showed (it becomes their pick) unless `all_repeats`: then they show what the line
    shows. Returns the new variant numbers and what the repeats kept."""
    if not 1 <= count <= 64:
        raise InputError(f"--count {count}: must be from 1 to 64")
    session = open_project(project_dir, device=device, offline=offline, progress=progress, on_progress=on_progress,
                           models=models)
    text = session.line(line).prompt
    p, i, lkey = session.project, line - 1, session.lkey
    repeats = [ln.index for ln in session.lines if ln.prompt == text and ln.index != i]
    if all_repeats:
        for j in repeats:  # they take the line's own choice, whatever theirs was
            p.pick_line(j, text, p.line_pick(i, text))
        kept = ()
    else:
        kept = tuple((j + 1, p.shown_variant(text, lkey, line=j)) for j in repeats)
        for j, (_, v) in zip(repeats, kept):
            if v is not None and p.line_pick(j, text) != v:  # a better-scoring new variant would replace it
                p.pick_line(j, text, v)
    p.save()  # before optimizing: an interrupted re-roll changes no other line either
    start = max(p.variants_of(text, lkey), default=-1) + 1
    new = pending(session, text, range(start, start + count))
    optimize_pending(session, new)
    draw_storyboard(session)
    return NewVariants(line, session.lines[i].segment.text, [q.variant for q in new],
                       tuple(j + 1 for j in sorted([i] + repeats if all_repeats else [i])),
                       tuple((ln, v) for ln, v in kept if v is not None))


@_writes_project
def pick_variant(project_dir: str | Path, line: int, variant: int, *, all_repeats: bool = False) -> Picked:
    """Choose the variant the video shows for 1-based lyric line `line`, and for that line only:
    the other lines with the same words keep their image unless `all_repeats`. Redraws the storyboard
    from the thumbnails (no model is loaded). Returns which lines changed and which kept theirs."""
    p = Project.open(project_dir, must_exist=True)
    segs = p.segments()
    if not 1 <= line <= len(segs):
        raise InputError(f"--line {line}: the project has lines 1 to {len(segs)}")
    texts = _line_texts(p)
    text, i = texts[line - 1], line - 1
    s = p.settings
    lkey = latent_settings(s.optimize, s.models)
    have = p.variants_of(text, lkey)
    if variant not in have:
        raise InputError(f"--variant {variant}: line {line} has variants {have}: "
                         f"make more with `musivid variants {project_dir} --line {line}`")
    repeats = [j for j, t in enumerate(texts) if t == text and j != i]
    before = {j: p.shown_variant(text, lkey, line=j) for j in repeats}
    changed = [i] + (repeats if all_repeats else [])
    for j in changed:
        p.pick_line(j, text, variant)
    for j in ([] if all_repeats else repeats):
        if p.line_pick(j, text) != before[j] and before[j] != variant:  # it would follow the words' pick below
            p.pick_line(j, text, before[j])
    p.pick(text, variant)  # the words' pick: for a line with these words and no pick of its own, and the title
    p.save()
    redraw_storyboard(p)
    return Picked(line, segs[i].text, variant, tuple(j + 1 for j in sorted(changed)),
                  () if all_repeats else tuple((j + 1, before[j]) for j in repeats))


@_writes_project
def render_project(project_dir: str | Path, output: str | Path | None = None, *, fps: float | None = None,
                   size: int | None = None, captions: str | bool | None = None, crf: int | None = None,
                   preset: str | None = None, font: str | None = None, device: str | None = None,
                   offline: bool = False, overwrite: bool = False, start: float = 0.0, duration: float | None = None,
                   save: bool = False, progress: bool = False, on_progress: ProgressFn | None = None,
                   models: ModelCache | None = None, aspect: str | None = None, fill: str | None = None,
                   caption_size: float | None = None, caption_position: str | None = None,
                   **motion: float | str | None) -> VideoResult:
    """Render the video from a project without optimizing anything (missing latents are an error).
    fps/size/aspect/fill/captions ("none" | "line" | "karaoke")/caption_size/caption_position/font/
    crf/preset (RenderConfig's) and the motion (ScheduleConfig's
    reactivity, pulse, walk, energy, intro, outro...) given as keywords override the project's
    settings for this render (with `save`, for later renders too).

    The project's video is its last whole render (at first: PROJECT's name + .mp4); a render to
    another `output`, or an excerpt (`start`/`duration`), is a one-off: the project neither records
    it nor later replaces it."""
    from .video.interpolate import frame_range

    p = Project.open(project_dir, must_exist=True)
    own = own_video(p)
    out = Path(output) if output is not None else own
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the output must be an .mp4 file: pass -o NAME.mp4")
    inputs = [f.path if f else None for f in (p.input("audio"), p.input("lyrics"))]
    check_output(out, inputs, p, overwrite)
    changes = {k: v for k, v in dict(fps=fps, size=size, captions=captions, crf=crf, preset=preset, font=font,
                                     aspect=aspect, fill=fill, caption_size=caption_size,
                                     caption_position=caption_position).items() if v is not None}
    motion = {k: v for k, v in motion.items() if v is not None}
    with collect_errors():  # every bad value in one message
        ren = dataclasses.replace(p.settings.render, **changes)
        sch = dataclasses.replace(p.settings.schedule, **motion) if motion else None
    check_font(ren.font)  # before any model is loaded or anything written
    with claimed(out):
        check_output(out, inputs, p, overwrite)  # again, as the output's one writer
        session = open_project(project_dir, device=device, render=ren if changes else None, schedule=sch,
                               offline=offline, save=save, progress=progress, on_progress=on_progress, models=models)
        frames = frame_range(session.audio.duration, ren.fps, start, duration)
        record = frames is None and out.resolve() == own.resolve()
        if not record:
            log.info("%s is a one-off render: the project's own video stays %s", out, own)
        return render_session(session, out, frames, record=record)


def own_video(p: Project) -> Path:
    """Where `musivid render PROJECT` writes the project's video: its last whole render, unless
    that file is another project's (this project is a copy, or was moved: the recorded path names
    the original's video) or is gone from a place the project is not beside; else PROJECT's name
    + .mp4, beside the project."""
    recorded, beside = own_output(p), p.root.with_suffix(".mp4")
    if recorded is not None and (recorded.exists() or proj.default_dir(recorded).resolve() == p.root.resolve()):
        return recorded
    if p.output("video") is not None and p.output("video") != beside.resolve():
        log.info("%s is not this project's video (the project was copied or moved): writing %s", p.output("video"),
                 beside)
    return beside
