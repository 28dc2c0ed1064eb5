"""A run's session: one project opened with its inputs analysed, as frozen data.

    plan = pipeline.plan_run(...)            every check and resolution, once, before any work
    session = open_session(plan.project_dir, plan.inputs, ...)   (under the project lock)
        -> Session(lines, title, keyframes, rhythm, audio, settings, compute, models, log)

A `Line` is one image the video needs: a lyric line (with its segment, the words CLIP reads, its
timing confidence, its language and the latent keys of its variants) or the intro's title image (a
line of its own kind, with no segment). Only the `ModelCache` and the `RunLog` inside a session
change while it runs; everything else is fixed when it opens.
"""
from __future__ import annotations

import dataclasses
import enum
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import project as proj
from .config import Compute, RunSettings
from .errors import InputError, MusividError
from .images.models.cache import ModelCache
from .progress import RunLog
from .project import Project
from .song.segments import Segment
from .video.motion import Keyframe

log = logging.getLogger(__name__)


class LineKind(enum.Enum):
    LYRIC = "lyric"  # a lyric line: shown while it is sung, with its caption
    TITLE = "title"  # the intro's title image: the song's name, before the first line


@dataclass(frozen=True)
class Line:
    """One image the video needs, and what decides it."""

    kind: LineKind
    number: int | None  # 1-based lyric line number; None: not a lyric line (the title)
    segment: Segment | None  # when it is sung (None: the title)
    prompt: str  # what its image is optimized for, as one string: images.targets.Target.key (its words,
    # cut to what CLIP can read, when nothing else directs it); keys its latents, seeds and picks
    confidence: float | None  # 0..1: how sure the timing is of its place (1 for LRC); None: not measured
    language: str | None  # ISO 639-1 code from its script (text.line_language); None: not told by the script
    keys: tuple[str, ...]  # latent keys of variants 0..V-1 (lines with the same target share them)
    target: Any = None  # images.targets.Target: what the optimizer reads (prompt, style, avoid, images, classes)
    image_prompt: str | None = None  # the line's own image prompt (after ` | ` or set by hand); None: its words

    @property
    def index(self) -> int | None:
        """0-based segment index of a lyric line; None for the title."""
        return self.number - 1 if self.number is not None else None

    @property
    def label(self) -> str:
        return f"line {self.number}" if self.kind is LineKind.LYRIC else "the intro's title image"


@dataclass(frozen=True)
class Shown:
    """The variant a line shows, with its latent."""

    line: Line
    variant: int
    latent: proj.SavedLatent


@dataclass(frozen=True)
class Session:
    """An open project with its inputs analysed: what optimizing and rendering work from."""

    project: Project
    settings: RunSettings
    audio: Any  # song.audio.Audio
    rhythm: Any  # song.rhythm.Rhythm
    lines: tuple[Line, ...]  # the lyric lines, in order
    title: Line | None  # the intro's title image; None: no title intro
    keyframes: tuple[Keyframe, ...]
    compute: Compute
    timing_method: str
    models: ModelCache = field(default_factory=ModelCache)
    log: RunLog = field(default_factory=RunLog)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)  # frame plans, computed once

    @property
    def segments(self) -> list[Segment]:
        return [ln.segment for ln in self.lines]

    @property
    def lkey(self) -> dict:
        """The settings that key this run's latents (see project.latent_key)."""
        return proj.latent_settings(self.settings.optimize, self.settings.models)

    @property
    def device(self):
        return self.compute.device

    @property
    def amp(self):
        return self.compute.amp

    def line(self, number: int) -> Line:
        """1-based lyric line `number` (an InputError naming the range if there is none)."""
        if not 1 <= number <= len(self.lines):
            raise InputError(f"--line {number}: the project has lines 1 to {len(self.lines)}")
        return self.lines[number - 1]

    def model(self, kind: str):
        """"clip" or "biggan", loaded once, when first needed."""
        what = "CLIP" if kind == "clip" else "BigGAN"
        return self.models.get(kind, self.settings.models, self.device, self.amp, progress=self.log.progress,
                               loading=lambda name: self.log.stage(f"load_{kind}", f"loading {what} ({name})"))

    def shown(self, line: Line) -> Shown | None:
        """The variant `line` shows (picked, else the best-scoring) and its latent; None if it has none."""
        v = self.project.shown_variant(line.prompt, self.lkey, line=line.index)
        if v is None:
            return None
        return Shown(line, v, self.project.load_latent(proj.latent_key(self.lkey, line.prompt, v)))

    def frame_plan(self, with_title: bool):
        """The whole song's video.interpolate.FramePlan (rows 0..K-1: the keyframes; K: the title
        image when `with_title`), computed once per session."""
        if with_title not in self._memo:
            from .video.interpolate import frame_count, song_plan

            r, fps = self.rhythm, self.settings.render.fps
            n = frame_count(self.audio.duration, fps)
            self._memo[with_title] = song_plan(list(self.keyframes), n, fps, r.envelope(fps, n), r.loudness(fps, n),
                                               r.tempo, self.settings.schedule, with_title)
        return self._memo[with_title]

    def rows(self, with_title: bool) -> list[Line]:
        """The line each row of the frame plan shows: the keyframes' lines, then the title."""
        return [self.lines[kf.segment] for kf in self.keyframes] + ([self.title] if with_title else [])


def make_lines(segments: list[Segment], settings: RunSettings,
               confidence: Sequence[float | None] = (), prompts: Sequence[str | None] = ()) -> tuple[Line, ...]:
    """The lyric lines of `segments`, with their targets (their words, or their own image prompts
    `prompts[i]`, under the settings' direction), languages and latent keys."""
    from .images.targets import line_target
    from .song.lyrics import clip_text
    from .text import line_language

    lkey = proj.latent_settings(settings.optimize, settings.models)
    out = []
    for i, s in enumerate(segments):
        own = prompts[i] if i < len(prompts) else None
        target = line_target(s.text, own, settings.direction, s.index + 1)
        prompt, cut = clip_text(target.prompt)
        if cut:
            log.warning("line %d is longer than CLIP can read: cut to its first %d characters for the image "
                        "(captions keep it whole)", s.index + 1, len(prompt))
        target = dataclasses.replace(target, prompt=prompt)
        keys = tuple(proj.latent_key(lkey, target.key, v) for v in range(settings.optimize.variants))
        out.append(Line(LineKind.LYRIC, s.index + 1, s, target.key, confidence[i] if i < len(confidence) else None,
                        line_language(s.text), keys, target, own))
    return tuple(out)


def lines_of(p: Project, settings: RunSettings | None = None) -> tuple[Line, ...]:
    """The lyric lines of an open project as its settings and image prompts make them now (no
    timing confidence): what keys each line's latents. Reads only."""
    segments = p.segments()
    return make_lines(segments, settings or p.settings, prompts=p.line_prompts(len(segments)))


def make_title(settings: RunSettings, song: Path, keyframes: list[Keyframe]) -> Line | None:
    """The intro's title image as a line of its own kind (None: the schedule has no title intro)."""
    from .song.lyrics import clip_text
    from .video.motion import intro_title

    from .text import clean_line

    title = intro_title(settings.schedule, song.stem, keyframes)
    if title is None or not clean_line(title):
        return None
    from .images.targets import line_target

    target = line_target(clip_text(clean_line(title))[0], None, settings.direction)
    lkey = proj.latent_settings(settings.optimize, settings.models)
    return Line(LineKind.TITLE, None, None, target.key, None, None,
                tuple(proj.latent_key(lkey, target.key, v) for v in range(settings.optimize.variants)), target)


def shown_or_fail(session: Session, line: Line) -> Shown:
    s = session.shown(line)
    if s is None:
        raise MusividError(f"{line.label} ({line.prompt[:40]!r}) has no optimized latents: run the full command "
                           "(without `render`) first")
    return s


def with_settings(session: Session, settings: RunSettings) -> Session:
    return dataclasses.replace(session, settings=settings, _memo={})


# ---- opening a session ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Inputs:
    """A run's inputs, checked and read once: the song decoded, the lyrics parsed (and their LRC
    times checked against the song's length)."""

    audio_path: Path
    lyrics_path: Path | None
    audio: Any  # song.audio.Audio
    lyrics: Any  # song.lyrics.Lyrics | None (None: the song is transcribed)
    accept_truncated: bool = False


def read_inputs(audio_path: Path, lyrics_path: Path | None, lyrics, sample_rate: int, run_log: RunLog, *,
                accept_truncated: bool = False) -> Inputs:
    """Decode the song and check the (already parsed) lyrics' times against its length."""
    from .song.audio import decode
    from .song.lyrics import check_times

    with run_log.stage("decode", f"reading {audio_path.name}"):
        audio = decode(audio_path, sample_rate, accept_truncated=accept_truncated)
    if lyrics is not None:
        lyrics = check_times(lyrics, audio.duration)
    return Inputs(audio_path, lyrics_path, audio, lyrics, accept_truncated)


def lyric_prompts(lyrics, segments: Sequence[Segment]) -> list[str | None]:
    """The image prompts the lyrics give (song.lyrics.LyricLine.prompt), one per timed segment:
    each segment is the next lyric line with its words (alignment leaves out lines not sung);
    none where the lyrics were transcribed. A prompt's `[image: FILE]` files (relative to the
    lyrics' folder) are written with their absolute paths and digests
    (images.targets.resolve_line_images)."""
    from .images.targets import lyrics_folder, resolve_line_images

    if lyrics is None or not any(ln.prompt for ln in lyrics.lines):
        return []
    out, k = [], 0
    for seg in segments:
        while k < len(lyrics.lines) and lyrics.lines[k].text != seg.text:
            k += 1
        if k == len(lyrics.lines):
            log.warning("the timed lines do not follow the lyrics' lines: their image prompts (after ' | ') are not "
                        "used")
            return []
        prompt = lyrics.lines[k].prompt
        if prompt and "[" in prompt:
            prompt = resolve_line_images(prompt, lyrics_folder(lyrics), f"{lyrics.path}: line {k + 1}")
        out.append(prompt)
        k += 1
    return out


def open_session(project_dir: Path, inputs: Inputs, settings: RunSettings, compute: Compute, *, persist: bool = True,
                 models: ModelCache | None = None, run_log: RunLog | None = None) -> Session:
    """Open (or create) the project and analyse the inputs: time the lyrics, find the beats, place
    the keyframes (timing and beats are cached in the project). With `persist` the inputs,
    settings and keyframes become the project's; without, they are this session's only. The
    project is written only when something in it changed."""
    from .images.models.load import choose_clip
    from .song.timing import VERSION as TIMING_VERSION
    from .video.motion import keyframes as make_keyframes

    run_log = run_log if run_log is not None else RunLog()
    p = Project.open(project_dir)
    audio = inputs.audio
    audio_in = proj.InputFile.of(inputs.audio_path)
    lyrics_in = proj.InputFile.of(inputs.lyrics_path) if inputs.lyrics_path else None
    t = settings.timing
    timing_key = {"inputs": [audio_in.sha256, lyrics_in and lyrics_in.sha256], "asr": t.asr,
                  "whisper_model": t.whisper_model, "method": TIMING_VERSION}
    cached = p.cached_timing(timing_key)
    if cached is not None:
        segments, method, confidence = cached.segments, cached.method, cached.confidence
    else:
        from .song.timing import time_lyrics

        res = time_lyrics(inputs.lyrics, audio, settings.timing, settings.models, compute.device.type,
                          lambda name, message: run_log.stage(name, message, log))
        segments, method, confidence = res.segments, res.method, res.confidence
        p.set_timing(timing_key, method, segments, audio.duration, tuple(confidence))
    edited = p.edited(segments, audio.duration)  # lines re-timed or re-worded by hand (the studio)
    confidence = [c if i < len(edited) and edited[i].text == segments[i].text else None  # a re-worded line: unknown
                  for i, c in enumerate(confidence)]
    rhythm_key = {"audio": audio_in.sha256, "rhythm": dataclasses.asdict(settings.rhythm)}
    rhythm = p.cached_rhythm(rhythm_key)
    if rhythm is None:
        from .song.rhythm import analyze

        with run_log.stage("rhythm", f"analysing the beat of {inputs.audio_path.name}", log):
            rhythm = analyze(audio, settings.rhythm)
        p.set_rhythm(rhythm_key, rhythm)
    choice = choose_clip(settings.models, [s.text for s in edited])  # still "auto" only for transcribed lyrics
    if choice.models != settings.models:
        settings = dataclasses.replace(settings, models=choice.models)
        log.info(choice.reason)
    kfs = make_keyframes(edited, rhythm.beats, settings.schedule, settings.render.fps)
    p.set_lyric_prompts(lyric_prompts(inputs.lyrics, segments))
    if persist:
        p.set_inputs(audio_in, lyrics_in)
        p.set_settings(settings)
        p.set_keyframes(kfs)
        p.set_accept_truncated(inputs.accept_truncated)
    p.save()  # only what changed
    if settings.models.untrained:
        log.warning(proj.UNTRAINED_NOTE)
    log.info("%s: %.2f s, %d lines (%s), %.1f BPM, %d beats", inputs.audio_path.name, audio.duration, len(edited),
             method, rhythm.tempo, len(rhythm.beats))
    return Session(p, settings, audio, rhythm, make_lines(edited, settings, confidence, p.line_prompts(len(edited))),
                   make_title(settings, inputs.audio_path, kfs), tuple(kfs), compute, method,
                   models if models is not None else ModelCache(), run_log)
