"""Runs a project: audio + lyrics → segments → keyframes → optimized latents → video.

The only module that knows the order of the stages. `musivid song.mp3 lyrics.txt`, in order:

    make_video(audio, lyrics, output, settings)
      plan_run(...)               every check and resolution once, before any work: the output,
                                  the inputs (the lyrics parsed once), the project directory, the
                                  CLIP (by the lyrics' language), the device, the weights; then
                                  the song decoded (RunPlan)
      session.open_session(...)   under the project lock: timing, beats, keyframes (Session)
      runner.optimize_pending(...)  the latents the video needs that are not finished
      render_session(...)         frames on the device → H.264 + the song, the .srt, the storyboard

The actions on an existing project (variants, pick, render, the studio's edits) are in actions.py.
Messages for the user go to the `musivid` logger (INFO: what is happening, WARNING: what the user
should know); long loops show a bar when `progress` is on; `on_progress(stage, done, total)` is
called as work advances (the studio shows it). Nothing here prints.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import project as proj
from .config import Compute, ModelConfig, RenderConfig, RunSettings, ScheduleConfig, TimingConfig, resolve_device
from .errors import InputError
from .images.models.cache import ModelCache
from .progress import ProgressFn, RunLog
from .project import Chosen, Project
from .project.checks import check_inputs, check_output, check_project_dir, default_output
from .project.provenance import claimed, video_metadata
from . import runner as runs
from .runner import Runner, wanted
from .images.targets import check_direction
from .session import Inputs, Session, open_session, read_inputs, shown_or_fail

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class VideoResult:
    video: Path
    srt: Path
    project: Path
    segments: list  # [Segment]
    keyframes: list  # [Keyframe]
    scores: list[float]  # the shown variant's CLIP score per rendered keyframe
    untrained: bool
    frames: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    optimize_steps: int = 0  # optimizer steps run


@dataclass(frozen=True)
class RunPlan:
    """A run, every check passed and every choice made, before any work is done."""

    inputs: Inputs
    output: Path
    project_dir: Path
    settings: RunSettings  # the CLIP resolved where the lyrics tell ("auto" stays only for transcription)
    compute: Compute
    frames: tuple[int, int] | None  # the excerpt's frames [first, last); None: the whole song
    render: bool


# ---- planning -------------------------------------------------------------------------------------

def plan_run(audio: Path, lyrics: Path | None, output: Path | None, settings: RunSettings, *,
             project_dir: Path | None = None, overwrite: bool = False, start: float = 0.0,
             duration: float | None = None, render: bool = True, accept_truncated: bool = False,
             run_log: RunLog | None = None) -> RunPlan:
    """Every check before any work, cheapest first, each once; nothing is written until they all
    pass. Then the song is decoded and the missing weights are fetched."""
    from .images.models.load import check_models, choose_clip
    from .video.interpolate import frame_range

    run_log = run_log if run_log is not None else RunLog()
    out = output if output is not None else default_output(audio, [lyrics])
    pdir = project_dir if project_dir is not None else proj.default_dir(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the output must be an .mp4 file: pass -o NAME.mp4")
    lyr = check_inputs(audio, lyrics, settings.models, settings.timing.whisper_model)  # the one parse
    settings = dataclasses.replace(settings, direction=check_direction(settings.direction, lyr))
    check_project_dir(pdir, [audio, lyrics])
    choice = choose_clip(settings.models, [ln.text for ln in lyr.lines] if lyr else None)  # clip "auto"
    chose, settings = choice.models != settings.models, dataclasses.replace(settings, models=choice.models)
    existing = Project.open(pdir)  # a damaged project.json stops here, in one line
    existing = existing if existing.exists else None
    if render:
        check_output(out, [audio, lyrics], existing, overwrite)
    check_font(settings.render.font)
    compute = resolve_device(settings.device)  # the one resolution
    check_models(settings.models, run_log.progress, fetch=False)  # offline: every weight file is cached
    inputs = read_inputs(audio, lyrics, lyr, settings.rhythm.sample_rate, run_log, accept_truncated=accept_truncated)
    frames = frame_range(inputs.audio.duration, settings.render.fps, start, duration)
    lines = len(inputs.lyrics.lines) if inputs.lyrics is not None else None  # None: transcribed, not known yet
    check_lines(lines, inputs.audio.duration, settings.render.fps, lyrics)
    settings = fit_memory(settings, compute, lines)
    with run_log.stage("weights"):
        check_models(settings.models, run_log.progress)  # fetches what is missing
    if chose:
        log.info(choice.reason)  # said once every check has passed
    return RunPlan(inputs, out, pdir, settings, compute, frames, render)


MIN_FRAMES_PER_LINE = 2  # a line shown for less than this is no line: its keyframe and the next's collide


def check_lines(lines: int | None, duration: float, fps: float, lyrics: Path | None) -> None:
    """Every lyric line needs MIN_FRAMES_PER_LINE frames of the video (an image and the glide to
    the next): more lines than that are refused, with the numbers, before anything is written."""
    from .video.interpolate import frame_count

    n = frame_count(duration, fps)
    most = n // MIN_FRAMES_PER_LINE
    if lines is not None and lines > most:
        raise InputError(f"{lyrics}: {lines} lyric lines for a {duration:.2f} s song of {n} frames at {fps:g} fps: "
                         f"each line needs at least {MIN_FRAMES_PER_LINE} frames, so at most {most} lines fit: "
                         "give this song's lyrics (or raise --fps)")


def fit_memory(settings: RunSettings, compute: Compute, lines: int | None) -> RunSettings:
    """The optimizer's memory estimated before its first step (images.optimize.step_memory): the
    micro-batch lowered to what the device's free memory holds (said in the log), a --micro-batch
    that cannot fit lowered too, and a run that cannot fit even one latent per micro-batch refused
    in one line. `lines`: the lyric lines (None: not known before transcription)."""
    from .images.optimize import MIB, available_memory, step_memory

    opt = settings.optimize
    free = available_memory(compute.device)
    if free is None:
        return settings
    need = step_memory(settings.models, opt.cutouts, compute.device.type)
    fits = need.largest_batch(free)
    where = "GPU" if compute.device.type == "cuda" else "machine"
    if fits < 1:
        raise InputError(f"--cutouts {opt.cutouts}: one latent's optimizer step needs about "
                         f"{need.total(1) / 1024 / MIB:.1f} GiB, more than the {free / 1024 / MIB:.1f} GiB this {where} "
                         "has free: lower --cutouts, use smaller models, or free memory")
    latents = None if lines is None else (lines + 1) * opt.variants  # every line's variants and the title's
    wanted = opt.micro_batch or latents
    if wanted is not None and wanted <= fits:
        return settings
    log.info("optimizing at most %d latents at a time (about %.1f GiB each batch, of %.1f GiB free)%s", fits,
             need.total(fits) / 1024 / MIB, free / 1024 / MIB,
             f": --micro-batch {opt.micro_batch} would not fit" if opt.micro_batch else "")
    return dataclasses.replace(settings, optimize=dataclasses.replace(opt, micro_batch=fits))


def check_font(font: str | None) -> None:
    """A --font must be a font file musivid can read (video.fonts.check_font), before any work."""
    if font:
        from .video.fonts import check_font as readable

        readable(font)


# ---- rendering ------------------------------------------------------------------------------------

def frame_source(session: Session, frames: tuple[int, int] | None = None):
    """The video.interpolate.FrameLatents the video (or the excerpt `frames`) is drawn from, and
    the session.Shown of every row of the frame plan it uses (the title's row: the last)."""
    import torch

    from .video.interpolate import FrameLatents

    with_title = session.title is not None
    if with_title:
        plan = session.frame_plan(True)
        title_row = len(session.keyframes)
        if title_row in plan.keyframes_used(frames) and session.shown(session.title) is None:
            log.warning("the intro's title image is not optimized in this project: the intro drifts into the first "
                        "line (run the full command to make it)")
            with_title = False
    plan = session.frame_plan(with_title)
    rows = session.rows(with_title)
    chosen = {k: shown_or_fail(session, rows[k]) for k in sorted(plan.keyframes_used(frames))}
    filler = next(iter(chosen.values())).latent  # for rows no rendered frame uses (an excerpt)
    lat = [chosen[k].latent if k in chosen else filler for k in range(len(session.keyframes) + 1)]
    kz = torch.stack([x.z for x in lat]).float()
    kc = torch.sigmoid(torch.stack([x.cls for x in lat]).float())
    s = session.settings
    return FrameLatents(plan, kz, kc, plan.envelope, s.schedule.pulse, s.optimize.seed), chosen


def render_session(session: Session, out: Path, frames: tuple[int, int] | None = None,
                   record: bool = True) -> VideoResult:
    """Render the video (or the excerpt `frames`) from the project's latents, with its .srt. With
    `record` it becomes the project's video (its outputs and what it showed are recorded, the
    storyboard redrawn); a one-off render (`record=False`: another -o, an excerpt, a preview)
    leaves the project as it is."""
    from .video.captions import caption_track, write_srt
    from .video.render import render

    s = session.settings
    source, chosen = frame_source(session, frames)
    gen = session.model("biggan")
    meta = video_metadata(s, session.audio.path.stem, session.project.root,  # AI-generated, how, which project
                          [ln.image_prompt for ln in session.lines])
    n = (frames[1] - frames[0]) if frames else len(source)
    log.info("rendering %d frames at %g fps, %s%s", n, s.render.fps,
             f"{s.render.size} px" if s.render.aspect == "1:1" else "{}x{}".format(*s.render.frame),
             f" (excerpt {frames[0] / s.render.fps:.2f}-{frames[1] / s.render.fps:.2f} s)" if frames else "")
    segments = session.segments
    with session.log.stage("render"):
        # captions follow the lyric timing, frame-exact; an untrained preview's frames carry its mark
        overlay = caption_track(segments, s.render, s.models.untrained)
        res = render(gen, source, session.audio.path, out, s.render, truncation=s.optimize.truncation,
                     amp_dtype=session.amp, overlay=overlay, metadata=meta, frames=frames,
                     progress=session.log.progress, untrained=s.models.untrained,
                     callback=lambda done, total: session.log.report("render", done, total))
    srt = out.with_suffix(".srt")
    write_srt(segments, srt, s.render.fps, frames)  # the same frames as the burned-in captions
    shown = [Chosen(kf.segment, segments[kf.segment].text, chosen[k].variant, float(chosen[k].latent.score))
             for k, kf in enumerate(session.keyframes) if k in chosen]
    if record:
        draw_storyboard(session)
        session.project.set_chosen(shown)
        session.project.set_outputs(out, srt)
        session.project.save()
    return VideoResult(out, srt, session.project.root, segments, list(session.keyframes), [c.score for c in shown],
                       s.models.untrained, res.frames, dict(session.log.seconds), session.log.optimize_steps)


def draw_storyboard(session: Session, max_variants: int = 8) -> Path:
    """PROJECT/storyboard.png: every line's variants (the first `max_variants`) and scores; and
    every variant's thumbnail in PROJECT/thumbs/ (the studio shows them)."""
    import torch

    from .video.storyboard import THUMB, Row, Variant, png, write_storyboard

    lkey, p = session.lkey, session.project
    items = []  # (line number, variant, saved latent, key), each key once
    for ln in session.lines:
        for v in p.variants_of(ln.prompt, lkey):
            key = proj.latent_key(lkey, ln.prompt, v)
            if (lat := p.try_latent(key)) is not None:
                items.append((ln.number, v, lat, key))
    gen = session.model("biggan")
    images = []
    with session.log.stage("storyboard"):
        for lo in range(0, len(items), 16):
            part = items[lo:lo + 16]
            z = torch.stack([it[2].z for it in part]).float()
            c = torch.sigmoid(torch.stack([it[2].cls for it in part]).float())
            images += list(gen.images_uint8(z, c, session.settings.optimize.truncation, THUMB, session.amp))
        for (_, _, _, key), img in zip(items, images):
            p.save_thumbnail(key, png(img))
        rows = []
        for ln in session.lines:
            have = [Variant(v, lat.score, img) for (n, v, lat, _), img in zip(items, images) if n == ln.number]
            rows.append(Row(ln.number, ln.segment.start, ln.segment.text, have[:max_variants],
                            p.shown_variant(ln.prompt, lkey, line=ln.index),
                            ln.image_prompt))
        return write_storyboard(rows, p.root / "storyboard.png", session.settings.models.untrained,
                                session.settings.render.font)


# ---- entry points ---------------------------------------------------------------------------------

def make_video(audio: str | Path, lyrics: str | Path | None = None, output: str | Path | None = None,
               settings: RunSettings | None = None, *, project_dir: str | Path | None = None,
               overwrite: bool = False, start: float = 0.0, duration: float | None = None, render: bool = True,
               accept_truncated: bool = False, progress: bool = False, on_progress: ProgressFn | None = None,
               runner: Runner | None = None, models: ModelCache | None = None) -> VideoResult | None:
    """Render AUDIO (+ LYRICS) to a music video: what `musivid AUDIO [LYRICS]` does.

    audio: any audio file, or a video whose sound track is used.
    lyrics: .txt (one line per lyric line; aligned with Whisper), .lrc (timed, used as given), or
        None (the song is transcribed).
    output: the .mp4 to write (default: AUDIO's name with .mp4); it becomes the project's video
        (an excerpt does not). An existing file is replaced only if it is this project's own video,
        or with overwrite=True; never an input.
    settings: models, optimizer, render and timing settings (musivid.RunSettings; default: the
        defaults of every setting).
    project_dir: where the run's state lives (default: OUTPUT's name + .musivid). Running again
        resumes: finished lines are not optimized again, an interrupted run continues.
    start, duration: render only this excerpt of the song, in seconds (a quick preview); only the
        lines it shows are optimized.
    accept_truncated: use an audio file that decodes shorter than it says it is (with a warning)
        instead of refusing it.
    render: False stops after optimizing (and drawing the storyboard) and returns None.
    progress: show progress bars on stderr; on_progress(stage, done, total) is called as work
        advances. Messages go to the `musivid` logger.
    runner: optimizes the pending latents elsewhere (scale.shard.Sharder: over several devices);
        models: a ModelCache that keeps the loaded models for the next call (a batch's worker, the
        studio).

    Returns a VideoResult (paths, segments, keyframes, scores, frame count, timings).
    Raises InputError for bad input, ModelUnavailableError when weights cannot be had (both before
    anything is written), ProjectBusyError when another process writes the project, MusividError
    for other failures; KeyboardInterrupt keeps the finished work.
    """
    run_log = RunLog(progress, on_progress)
    plan = plan_run(Path(audio), Path(lyrics) if lyrics is not None else None,
                    Path(output) if output is not None else None, settings or RunSettings(),
                    project_dir=Path(project_dir) if project_dir is not None else None, overwrite=overwrite,
                    start=start, duration=duration, render=render, accept_truncated=accept_truncated, run_log=run_log)
    with claimed(plan.output) if plan.render else contextlib.nullcontext(), proj.locked(plan.project_dir):
        if plan.render:  # again, as the output's one writer: a run to the same -o may have finished meanwhile
            check_output(plan.output, [plan.inputs.audio_path, plan.inputs.lyrics_path],
                         Project.open(plan.project_dir), overwrite)
        session = open_session(plan.project_dir, plan.inputs, plan.settings, plan.compute, models=models,
                               run_log=run_log)
        lines = None  # the whole song: every line and the title
        if plan.frames is not None:  # an excerpt: the lines its frames show
            with_title = session.title is not None
            rows = session.rows(with_title)
            lines = [rows[k] for k in session.frame_plan(with_title).keyframes_used(plan.frames)]
        runs.optimize_pending(session, wanted(session, lines), runner)
        if not plan.render:
            draw_storyboard(session)
            return None
        return render_session(session, plan.output, plan.frames, record=plan.frames is None)


def align_lyrics(audio: str | Path, lyrics: str | Path | None, output: str | Path, *, asr: str = "faster-whisper",
                 whisper_model: str | None = None, srt: bool = False, offline: bool = False, device: str = "auto",
                 overwrite: bool = False, accept_truncated: bool = False, keep_prompts: bool = False):
    """Time plain lyrics against the song (or transcribe it, without lyrics) and write them as
    LRC to `output` (and an .srt beside it) for the user to check and correct. Only the words are
    aligned and written; with `keep_prompts` the LRC keeps each line's image prompt (` | PROMPT`).
    Returns the timing.TimingResult."""
    from .song import timing
    from .video.captions import write_lrc, write_srt

    audio, out = Path(audio), Path(output)
    lyrics = Path(lyrics) if lyrics is not None else None
    if out.suffix.lower() != ".lrc":
        raise InputError(f"{out}: the output must be an .lrc file: pass -o NAME.lrc")
    lyr = check_inputs(audio, lyrics, whisper=whisper_model)
    check_output(out, [audio, lyrics], None, overwrite, (".srt",) if srt else ())
    compute = resolve_device(device)
    run_log = RunLog()
    inputs = read_inputs(audio, lyrics, lyr, timing.SR, run_log, accept_truncated=accept_truncated)
    res = timing.time_lyrics(inputs.lyrics, inputs.audio, TimingConfig(asr=asr, whisper_model=whisper_model),
                             ModelConfig(offline=offline), compute.device.type,
                             lambda name, message: run_log.stage(name, message, log), required=True)
    write_lrc(res.segments, out)
    if keep_prompts:
        from .files import atomic_write_text
        from .session import lyric_prompts
        from .song.lyrics import lrc_with_prompts

        prompts = lyric_prompts(inputs.lyrics, res.segments)
        if any(prompts):
            atomic_write_text(out, lrc_with_prompts(out.read_text(encoding="utf-8"), prompts))
    if srt:
        write_srt(res.segments, out.with_suffix(".srt"))
    return res


def open_project(project_dir: str | Path, *, device: str | None = None, render: RenderConfig | None = None,
                 schedule: ScheduleConfig | None = None, offline: bool = False, save: bool = False,
                 progress: bool = False, on_progress: ProgressFn | None = None,
                 models: ModelCache | None = None) -> Session:
    """Re-open a project with the settings it was made with. A different device, render or motion
    settings, and offline mode, apply to this session only; the project keeps its own settings
    (with `save`, the render and motion settings become the project's). Its inputs must still be
    where they were. Writes the project only if something in it changed (a re-timing, `save`)."""
    p = Project.open(project_dir, must_exist=True)
    settings = kept = p.settings
    changes = {k: v for k, v in (("device", device), ("render", render), ("schedule", schedule)) if v is not None}
    settings = dataclasses.replace(settings, **changes)
    if offline:
        settings = dataclasses.replace(settings, models=dataclasses.replace(settings.models, offline=True))
    audio, lyrics = p.input("audio"), p.input("lyrics")
    if audio is None or not audio.path.is_file():
        raise InputError(f"{audio.path if audio else project_dir}: the project's audio file is gone: put it back "
                         "or start a new project")
    if lyrics is not None and not lyrics.path.is_file():
        raise InputError(f"{lyrics.path}: the project's lyrics file is gone: put it back or start a new project")
    lyrics_path = lyrics.path if lyrics else None
    lyr = check_inputs(audio.path, lyrics_path)
    compute = resolve_device(settings.device)
    run_log = RunLog(progress, on_progress)
    inputs = read_inputs(audio.path, lyrics_path, lyr, settings.rhythm.sample_rate, run_log,
                         accept_truncated=p.accept_truncated)
    session = open_session(Path(project_dir), inputs, settings, compute, persist=save or (not changes and not offline),
                           models=models, run_log=run_log)
    if save and (device or offline):  # where this session runs is not a project setting
        session.project.set_settings(dataclasses.replace(settings, device=kept.device, models=kept.models))
        session.project.save()
    return session

