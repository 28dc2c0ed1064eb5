"""Runs a project: audio + lyrics → segments → keyframes → optimized latents → video.

The only module that knows the order of the stages. Entry points (also the Python API):

    make_video(audio, lyrics, output, settings)   everything `musivid AUDIO [LYRICS]` does
    add_variants(project_dir, line, count)        `musivid variants`
    pick_variant(project_dir, line, variant)      `musivid pick`
    render_project(project_dir, output, ...)      `musivid render`

Messages for the user go to the `musivid` logger (INFO: what is happening, WARNING: what the user
should know); long loops show a bar when `progress` is on; `on_progress(stage, done, total)` is
called as work advances (the studio shows it). Nothing here prints.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from . import project as proj
from .config import ModelConfig, RenderConfig, RunSettings, ScheduleConfig, TimingConfig, resolve_device
from .errors import InputError, MusividError
from .progress import ProgressFn, timed_stage
from .project.checks import check_inputs, check_output, check_project_dir, default_output
from .project import UNTRAINED_NOTE, Chosen, Project

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


@dataclass
class Job:
    """An open project with its inputs analysed: what optimizing and rendering work from."""

    project: Project
    settings: RunSettings
    audio: Any  # audio.Audio
    segments: list  # [Segment]
    rhythm: Any  # rhythm.Rhythm
    keyframes: list  # [Keyframe]
    device: Any  # torch.device
    amp: Any  # torch.dtype | None: the models' compute dtype (bf16 on CUDA; None: float32)
    progress: bool = False
    on_progress: ProgressFn | None = None
    timings: dict[str, float] = field(default_factory=dict)
    _models: dict[Any, Any] = field(default_factory=dict)  # (kind, ModelConfig, device, dtype) -> model
    runner: Any = None  # optimizes a group of latents instead of _run_group: shard.Sharder (several devices)
    kept_models: ClassVar[dict | None] = None  # models shared by every job while set (edit.models_kept)

    @property
    def lkey(self) -> dict:
        """The settings that key this run's latents (see project.latent_key)."""
        return proj.latent_settings(self.settings.optimize, self.settings.models)

    def clip_texts(self) -> list[str]:
        from .song.lyrics import clip_text

        return [clip_text(s.text)[0] for s in self.segments]

    @property
    def title(self) -> str | None:
        """The prompt of the intro's title image (optimized like a line), or None: no title intro."""
        from .song.lyrics import clip_text
        from .video.motion import intro_title

        title = intro_title(self.settings.schedule, self.audio.path.stem, self.keyframes)
        return clip_text(title)[0] if title is not None else None

    def model(self, kind: str):
        """"clip" or "biggan", loaded once, when first needed."""
        cache = self._models if Job.kept_models is None else Job.kept_models
        key = (kind, self.settings.models, str(self.device), self.amp)
        if key not in cache:
            from .images.models import load

            loader = {"clip": load.load_clip, "biggan": load.load_biggan}[kind]
            m = self.settings.models
            name = "(tiny, untrained)" if m.untrained else {"clip": m.clip_path or m.clip,
                                                          "biggan": m.biggan_path or m.biggan}[kind]
            with self.stage(f"load_{kind}", f"loading {'CLIP' if kind == 'clip' else 'BigGAN'} {name}"):
                cache[key] = loader(self.settings.models, self.device, self.amp, progress=self.progress)
        return cache[key]

    @contextmanager
    def stage(self, name: str, message: str | None = None) -> Iterator[None]:
        with timed_stage(self.timings, name, message, self.on_progress):
            yield

    def report(self, stage: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(stage, done, total)


def _stager(timings: dict[str, float], on_progress: ProgressFn | None):
    return lambda name, message: timed_stage(timings, name, message, on_progress, log)


# ---- inputs ---------------------------------------------------------------------------------------

def prepare(project_dir: Path, audio_path: Path, lyrics_path: Path | None, settings: RunSettings, *,
            persist: bool = True, audio=None, accept_truncated: bool = False, progress: bool = False,
            on_progress: ProgressFn | None = None) -> Job:
    """Open (or create) the project and analyse the inputs: decode the audio (unless given as
    `audio`), time the lyrics, find the beats, place the keyframes. Timing and beats are cached in
    the project. With `persist` the settings and keyframes become the project's; without, they
    are this run's only."""
    from .song.audio import decode
    from .song.lyrics import check_times, clip_text
    from .images.models.load import choose_clip
    from .video.motion import keyframes as make_keyframes
    from .song.timing import VERSION as TIMING_VERSION

    timings: dict[str, float] = {}
    device, amp = resolve_device(settings.device)
    lyrics = check_inputs(audio_path, lyrics_path)
    if audio is None:
        with timed_stage(timings, "decode", f"reading {audio_path.name}", on_progress):
            audio = decode(audio_path, settings.rhythm.sample_rate, accept_truncated=accept_truncated)
    if lyrics is not None:
        lyrics = check_times(lyrics, audio.duration)
    p = Project.open(project_dir)
    audio_in = proj.InputFile.of(audio_path)
    lyrics_in = proj.InputFile.of(lyrics_path) if lyrics_path else None
    t = settings.timing
    timing_key = {"inputs": [audio_in.sha256, lyrics_in and lyrics_in.sha256], "asr": t.asr,
                  "whisper_model": t.whisper_model, "method": TIMING_VERSION}
    cached = p.cached_timing(timing_key)
    if cached is not None:
        segments, method = cached
    else:
        from .song.timing import time_lyrics

        res = time_lyrics(lyrics, audio, settings.timing, settings.models, device.type,
                              _stager(timings, on_progress))
        segments, method = res.segments, res.method
        p.set_timing(timing_key, method, segments, audio.duration)
    segments = p.edited(segments, audio.duration)  # lines re-timed or re-worded by hand (the studio)
    for s in segments:
        text, cut = clip_text(s.text)
        if cut:
            log.warning("line %d is longer than CLIP can read: cut to its first %d characters for the image "
                        "(captions keep it whole)", s.index + 1, len(text))
    rhythm_key = {"audio": audio_in.sha256, "rhythm": dataclasses.asdict(settings.rhythm)}
    rhythm = p.cached_rhythm(rhythm_key)
    if rhythm is None:
        from .song.rhythm import analyze

        with timed_stage(timings, "rhythm", f"analysing the beat of {audio_path.name}", on_progress):
            rhythm = analyze(audio, settings.rhythm)
        p.set_rhythm(rhythm_key, rhythm)
    models, why = choose_clip(settings.models, [s.text for s in segments])  # "auto": by the lyrics' language
    if models != settings.models:
        settings = dataclasses.replace(settings, models=models)
        log.info(why)
    kfs = make_keyframes(segments, rhythm.beats, settings.schedule, settings.render.fps)
    if persist:
        p.set_inputs(audio_in, lyrics_in)
        p.set_settings(settings)
        p.set_keyframes(kfs)
        p.set_accept_truncated(accept_truncated)
    p.save()
    if settings.models.untrained:
        log.warning(UNTRAINED_NOTE)
    log.info("%s: %.2f s, %d lines (%s), %.1f BPM, %d beats", audio_path.name, audio.duration, len(segments),
             method, rhythm.tempo, len(rhythm.beats))
    return Job(p, settings, audio, segments, rhythm, kfs, device, amp, progress, on_progress, timings)


# ---- optimizing -----------------------------------------------------------------------------------

def wanted(job: Job, lines: set[int] | None = None) -> list[tuple[str, int]]:
    """(clip text, variant) pairs the project should have: variants 0..V-1 of every line (or of the
    segment indices in `lines`; -1: the intro's title image) and of the title."""
    texts = [t for i, t in enumerate(job.clip_texts()) if lines is None or i in lines]
    texts += [job.title] if job.title and (lines is None or -1 in lines) else []
    return [(t, v) for t in dict.fromkeys(texts) for v in range(job.settings.optimize.variants)]


def optimize_pending(job: Job, extra: list[tuple[str, int]] | None = None, lines: set[int] | None = None) -> int:
    """Bring every wanted (text, variant) to the configured number of steps: new ones from
    scratch, ones finished with fewer steps from their saved state, an interrupted batch from
    its checkpoint. Returns how many latents were optimized."""
    from .images.optimize import OptimState
    from .rng import seed_for

    p, s = job.project, job.settings
    lkey, steps = job.lkey, s.optimize.steps
    groups: dict[int, list] = {}  # start step -> [(text, variant, key, state | None)]
    for t, v in dict.fromkeys(wanted(job, lines) + (extra or [])):
        key = proj.latent_key(lkey, t, v)
        info = p.latent_info(key)
        saved = p.try_latent(key) if info is not None else None  # unreadable: forgotten, optimized again
        if saved is not None and info.steps == steps:
            continue
        state = saved.state if saved is not None and info.steps < steps else None
        groups.setdefault(state.step if state is not None else 0, []).append((t, v, key, state))
    if not groups:
        p.clear_checkpoint()
        log.info("all lines already optimized: nothing to do")
        return 0
    ck = p.load_checkpoint()
    total = 0
    for start, items in sorted(groups.items()):
        keys = [k for _, _, k, _ in items]
        state = OptimState.stack([st for *_, st in items]) if start > 0 else None
        if ck is not None and set(keys) <= set(ck[0]) and ck[1].step > start:
            state = ck[1].select([ck[0].index(k) for k in keys])
            log.info("resuming from checkpoint at step %d/%d", state.step, steps)
        elif start > 0:
            log.info("continuing %d latent(s) from step %d/%d", len(items), start, steps)
        seeds = [seed_for(s.optimize.seed, t, v) for t, v, _, _ in items]
        (job.runner or _run_group)(job, [(t, v) for t, v, _, _ in items], keys, seeds, state)
        total += len(items)
    p.clear_checkpoint()
    return total


def _run_group(job: Job, todo: list[tuple[str, int]], keys: list[str], seeds: list[int], state) -> None:
    from .images.optimize import optimize, snapshot

    p, s = job.project, job.settings
    clip, gen = job.model("clip"), job.model("biggan")
    log.info("optimizing %d latent(s) (%d line(s)) for %d steps on %s", len(todo), len({t for t, _ in todo}),
             s.optimize.steps, job.device)
    last = {}

    def on_step(info):
        last["info"] = info
        if info.checkpoint_due:
            p.save_checkpoint(keys, snapshot(info.state))
        job.report("optimize", info.step, info.steps)

    try:
        with job.stage("optimize"):
            res = optimize(gen, clip, [t for t, _ in todo], seeds, s.optimize, state=state, device=job.device,
                           amp_dtype=job.amp, progress=job.progress, callback=on_step)
        job.timings["optimize_steps"] = job.timings.get("optimize_steps", 0) + res.steps_run
        for i, ((text, v), key) in enumerate(zip(todo, keys)):
            p.save_latent(key, text, v, res.state.select([i]), s.optimize.steps)
        p.save()
    except BaseException:  # an interrupt (or a crash), even while saving, keeps the steps done so far
        if "info" in last:
            p.save_checkpoint(keys, snapshot(last["info"].state))
        raise


def chosen_variant(job: Job, text: str) -> tuple[int, proj.SavedLatent]:
    """The shown variant of a line and its latent."""
    v = job.project.shown_variant(text, job.lkey)
    if v is None:
        raise MusividError(f"line {text[:40]!r} has no optimized latents: run the full command "
                           "(without `render`) first")
    return v, job.project.load_latent(proj.latent_key(job.lkey, text, v))


def line_text(job: Job, line: int) -> str:
    """The CLIP text of 1-based lyric line `line` (an InputError if there is no such line)."""
    if not 1 <= line <= len(job.segments):
        raise InputError(f"--line {line}: the project has lines 1 to {len(job.segments)}")
    return job.clip_texts()[line - 1]


# ---- rendering ------------------------------------------------------------------------------------

def _plan(job: Job, title: bool):
    from .video.interpolate import frame_count, song_plan

    r, fps = job.rhythm, job.settings.render.fps
    n = frame_count(job.audio.duration, fps)
    return song_plan(job.keyframes, n, fps, r.envelope(fps, n), r.loudness(fps, n), r.tempo, job.settings.schedule,
                     title)


def frame_source(job: Job, frames: tuple[int, int] | None = None):
    """The interpolate.FrameLatents the video (or the excerpt `frames`) is drawn from, and the
    (variant, SavedLatent) shown at each keyframe row it uses (row K: the intro's title image)."""
    import torch

    from .video.interpolate import FrameLatents

    s = job.settings
    title = job.title if job.title and job.project.shown_variant(job.title, job.lkey) is not None else None
    if job.title and not title:
        log.warning("the intro's title image is not optimized in this project: the intro drifts into the first "
                    "line (run the full command to make it)")
    texts = [job.clip_texts()[kf.segment] for kf in job.keyframes] + [title]  # per keyframe row; K: the title
    fplan = _plan(job, title is not None)
    chosen = {k: chosen_variant(job, texts[k]) for k in sorted(fplan.keyframes_used(frames))}
    filler = next(iter(chosen.values()))[1]  # for keyframes no rendered frame uses (an excerpt)
    lat = [chosen[k][1] if k in chosen else filler for k in range(len(job.keyframes) + 1)]
    kz = torch.stack([x.z for x in lat]).float()
    kc = torch.sigmoid(torch.stack([x.cls for x in lat]).float())
    return FrameLatents(fplan, kz, kc, fplan.envelope, s.schedule.pulse, s.optimize.seed), chosen


def render_job(job: Job, out: Path, frames: tuple[int, int] | None = None, record: bool = True) -> VideoResult:
    """Render the video (or the excerpt `frames`) from the project's latents, with its .srt and
    the storyboard; `record=False` (a preview) leaves the project's outputs and choices as they are."""
    from .video.captions import CaptionTrack, write_srt
    from .video.render import render

    s = job.settings
    source, chosen = frame_source(job, frames)
    gen = job.model("biggan")
    meta = proj.video_metadata(s, job.audio.path.stem)  # AI-generated, by what, how to make it again
    n = (frames[1] - frames[0]) if frames else len(source)
    log.info("rendering %d frames at %g fps, %d px%s", n, s.render.fps, s.render.size,
             f" (excerpt {frames[0] / s.render.fps:.2f}-{frames[1] / s.render.fps:.2f} s)" if frames else "")
    with job.stage("render"):
        overlay = (CaptionTrack(job.segments, s.render.fps, s.render.captions, s.render.font)
                   if s.render.captions != "none" else None)  # captions follow the lyric timing, frame-exact
        res = render(gen, source, job.audio.path, out, s.render, truncation=s.optimize.truncation,
                     amp_dtype=job.amp, overlay=overlay, metadata=meta, frames=frames, progress=job.progress,
                     callback=lambda done, total: job.report("render", done, total))
    srt = out.with_suffix(".srt")
    write_srt(job.segments, srt, s.render.fps, frames)  # the same frames as the burned-in captions
    shown = [Chosen(kf.segment, job.segments[kf.segment].text, chosen[k][0], float(chosen[k][1].score))
             for k, kf in enumerate(job.keyframes) if k in chosen]
    if record:
        draw_storyboard(job)
        job.project.set_chosen(shown)
        job.project.set_outputs(out, srt)
        job.project.save()
    return VideoResult(out, srt, job.project.root, job.segments, job.keyframes, [c.score for c in shown],
                       s.models.untrained, res.frames, dict(job.timings))


def draw_storyboard(job: Job, max_variants: int = 8) -> Path:
    """PROJECT/storyboard.png: every line's variants (the first `max_variants`) and scores; and
    every variant's thumbnail in PROJECT/thumbs/ (the studio shows them)."""
    import torch

    from .video.storyboard import THUMB, Row, Variant, png, write_storyboard

    lkey, p = job.lkey, job.project
    items = []  # (segment, variant, saved latent, key)
    for seg, text in zip(job.segments, job.clip_texts()):
        for v in p.variants_of(text, lkey):
            key = proj.latent_key(lkey, text, v)
            if (lat := p.try_latent(key)) is not None:
                items.append((seg.index, v, lat, key))
    gen = job.model("biggan")
    images = []
    with job.stage("storyboard"):
        for lo in range(0, len(items), 16):
            part = items[lo:lo + 16]
            z = torch.stack([it[2].z for it in part]).float()
            c = torch.sigmoid(torch.stack([it[2].cls for it in part]).float())
            images += list(gen.images_uint8(z, c, job.settings.optimize.truncation, THUMB, job.amp))
        for (_, _, _, key), img in zip(items, images):
            p.save_thumbnail(key, png(img))
        rows = []
        for seg, text in zip(job.segments, job.clip_texts()):
            have = [Variant(v, lat.score, img) for (si, v, lat, _), img in zip(items, images) if si == seg.index]
            have = have[:max_variants]
            rows.append(Row(seg.index + 1, seg.start, seg.text, have, p.shown_variant(text, lkey)))
        return write_storyboard(rows, job.project.root / "storyboard.png", job.settings.models.untrained,
                                job.settings.render.font)


# ---- entry points ---------------------------------------------------------------------------------

def make_video(audio: str | Path, lyrics: str | Path | None = None, output: str | Path | None = None,
               settings: RunSettings | None = None, *, project_dir: str | Path | None = None,
               overwrite: bool = False, start: float = 0.0, duration: float | None = None, render: bool = True,
               accept_truncated: bool = False, progress: bool = False, on_progress: ProgressFn | None = None,
               runner: Any = None, models: dict[Any, Any] | None = None) -> VideoResult | None:
    """Render AUDIO (+ LYRICS) to a music video: what `musivid AUDIO [LYRICS]` does.

    audio: any audio file, or a video whose sound track is used.
    lyrics: .txt (one line per lyric line; aligned with Whisper), .lrc (timed, used as given), or
        None (the song is transcribed).
    output: the .mp4 to write (default: AUDIO's name with .mp4). An existing file is replaced only
        if it is this project's own last video, or with overwrite=True; never an input.
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
    runner: optimizes the pending latents over several devices (shard.Sharder); models: a dict
        that keeps the loaded models for the next call (musivid.scale.batch: once per worker).

    Returns a VideoResult (paths, segments, keyframes, scores, frame count, timings).
    Raises InputError for bad input, ModelUnavailableError when weights cannot be had (both before
    anything is written), ProjectBusyError when another process writes the project, MusividError
    for other failures; KeyboardInterrupt keeps the finished work.
    """
    from .song.audio import decode
    from .video.interpolate import frame_range
    from .song.lyrics import check_times
    from .images.models.load import check_models, choose_clip

    settings = settings or RunSettings()
    audio_path = Path(audio)
    lyrics_path = Path(lyrics) if lyrics is not None else None
    out = Path(output) if output is not None else default_output(audio_path, [lyrics_path])
    pdir = Path(project_dir) if project_dir is not None else proj.default_dir(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the output must be an .mp4 file: pass -o NAME.mp4")
    # every check before any work, cheapest first; nothing is written until they all pass
    lyr = check_inputs(audio_path, lyrics_path, settings.models, settings.timing.whisper_model)
    check_project_dir(pdir, [audio_path, lyrics_path])
    model_cfg = choose_clip(settings.models, [ln.text for ln in lyr.lines] if lyr else None)[0]  # clip "auto"
    existing = Project.open(pdir) if (pdir / "project.json").is_file() else None
    if render:
        check_output(out, [audio_path, lyrics_path], existing, overwrite)
    resolve_device(settings.device)
    check_models(model_cfg, progress, fetch=False)  # offline: every weight file is cached
    timings: dict[str, float] = {}
    with timed_stage(timings, "decode", f"reading {audio_path.name}", on_progress):
        decoded = decode(audio_path, settings.rhythm.sample_rate, accept_truncated=accept_truncated)
    if lyr is not None:
        check_times(lyr, decoded.duration)
    frame_range(decoded.duration, settings.render.fps, start, duration)
    with timed_stage(timings, "weights", None, on_progress):
        check_models(model_cfg, progress)  # fetches what is missing
    with proj.locked(pdir):
        job = prepare(pdir, audio_path, lyrics_path, settings, audio=decoded, accept_truncated=accept_truncated,
                      progress=progress, on_progress=on_progress)
        job.timings.update(timings)
        job.runner, job._models = runner, (job._models if models is None else models)
        frames = frame_range(job.audio.duration, settings.render.fps, start, duration)
        used = _plan(job, job.title is not None).keyframes_used(frames) if frames else None
        lines = {job.keyframes[k].segment if k < len(job.keyframes) else -1 for k in used} if frames else None
        optimize_pending(job, lines=lines)
        if not render:
            draw_storyboard(job)
            return None
        return render_job(job, out, frames)


def align_lyrics(audio: str | Path, lyrics: str | Path | None, output: str | Path, *, asr: str = "faster-whisper",
                 whisper_model: str | None = None, srt: bool = False, offline: bool = False, device: str = "auto",
                 overwrite: bool = False, accept_truncated: bool = False):
    """Time plain lyrics against the song (or transcribe it, without lyrics) and write them as
    LRC to `output` (and an .srt beside it) for the user to check and correct. Returns the
    timing.TimingResult."""
    from .song import timing
    from .song.audio import decode
    from .video.captions import write_lrc, write_srt
    from .song.lyrics import check_times

    audio, out = Path(audio), Path(output)
    lyrics = Path(lyrics) if lyrics is not None else None
    if out.suffix.lower() != ".lrc":
        raise InputError(f"{out}: the output must be an .lrc file: pass -o NAME.lrc")
    lyr = check_inputs(audio, lyrics, whisper=whisper_model)
    check_output(out, [audio, lyrics], None, overwrite, (".srt",) if srt else ())
    dev, _ = resolve_device(device)
    a = decode(audio, timing.SR, accept_truncated=accept_truncated)
    lyr = check_times(lyr, a.duration) if lyr is not None else None
    res = timing.time_lyrics(lyr, a, TimingConfig(asr=asr, whisper_model=whisper_model),
                             ModelConfig(offline=offline), dev.type, _stager({}, None), required=True)
    write_lrc(res.segments, out)
    if srt:
        write_srt(res.segments, out.with_suffix(".srt"))
    return res


def open_project(project_dir: str | Path, *, device: str | None = None, render: RenderConfig | None = None,
                 schedule: ScheduleConfig | None = None, offline: bool = False, save: bool = False,
                 progress: bool = False, on_progress: ProgressFn | None = None) -> Job:
    """Re-open a project with the settings it was made with. A different device, render or motion
    settings, and offline mode, apply to this session only; the project keeps its own settings
    (with `save`, the render and motion settings become the project's). Its inputs must still be
    where they were."""
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
    job = prepare(Path(project_dir), audio.path, lyrics.path if lyrics else None, settings,
                  persist=save or (not changes and not offline), accept_truncated=p.accept_truncated,
                  progress=progress, on_progress=on_progress)
    if save and (device or offline):  # where this session runs is not a project setting
        job.project.set_settings(dataclasses.replace(settings, device=kept.device, models=kept.models))
        job.project.save()
    return job
