"""One run over a project: prepare inputs, optimize what is missing, render. Used by pipeline.py
and the `variants`/`pick`/`render` commands."""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import project as proj
from .audio import Audio, decode
from .errors import InputError, MusividError
from .lyrics import check_times, clip_text, load as load_lyrics
from .rhythm import Rhythm, analyze
from .schedule import Keyframe, Segment, keyframes as make_keyframes

log = logging.getLogger(__name__)

default_dir = proj.default_dir


@dataclass
class Job:
    project: proj.Project
    settings: object  # RunSettings
    reporter: object  # Reporter
    audio: Audio
    segments: list[Segment]
    rhythm: Rhythm
    keyframes: list[Keyframe]
    device: torch.device
    amp: torch.dtype | None
    timings: dict[str, float] = field(default_factory=dict)
    _clip: object = None
    _gen: object = None

    @property
    def lkey(self) -> dict:
        """The settings that key this run's latents (see project.latent_key)."""
        return proj.latent_settings(self.settings.optimize, self.settings.models)

    def models(self):
        """(CLIP, generator), each loaded once, when first needed."""
        return self.clip(), self.generator()

    def clip(self):
        return self._load("_clip", "load_clip")

    def generator(self):
        """BigGAN alone: rendering and the storyboard need no CLIP."""
        return self._load("_gen", "load_biggan")

    def _load(self, attr: str, loader: str):
        """Load a model once (models.load.<loader>) and record how long it took."""
        if getattr(self, attr) is None:
            from .models import load

            t = time.monotonic()
            model = getattr(load, loader)(self.settings.models, self.device, progress=self.settings.progress,
                                          on_warning=self.reporter.warn)
            setattr(self, attr, model)
            self.timings[f"{loader}_s"] = time.monotonic() - t
        return getattr(self, attr)

    def clip_texts(self) -> list[str]:
        return [clip_text(s.text)[0] for s in self.segments]


def prepare(pdir: Path, audio_path: Path, lyrics_path: Path | None, settings, reporter=None) -> Job:
    from .interpolate import frame_count
    from .pipeline import UNTRAINED_NOTE, Reporter, resolve_device

    rep = reporter or Reporter()
    device, amp = resolve_device(settings.device)
    t0 = time.monotonic()
    audio = decode(audio_path, settings.rhythm.sample_rate)
    lyrics = check_times(load_lyrics(lyrics_path), audio.duration) if lyrics_path else None
    p = proj.Project.open(pdir)
    inputs = {"audio": proj.Project.describe_input(audio_path),
              "lyrics": proj.Project.describe_input(lyrics_path)}
    timing_key = {"inputs": [inputs["audio"]["sha256"], inputs["lyrics"] and inputs["lyrics"]["sha256"]],
                  "asr": settings.asr, "whisper_model": settings.whisper_model}
    cached = p.data.get("timing")
    if cached and cached.get("key") == timing_key:
        segments = [Segment(**s) for s in cached["segments"]]
        method = cached["method"]
    else:
        res = _timing(lyrics, audio, settings, rep)
        segments, method = res.segments, res.method
        for w in res.warnings:
            rep.warn(w)
        p.data["timing"] = {"key": timing_key, "method": method, "segments": [s.to_json() for s in segments]}
    if lyrics is not None and not lyrics.timed and method == "even":
        rep.warn("plain lyrics without a speech recogniser: lines are spread evenly over the song")
    for s in segments:
        if clip_text(s.text)[1]:
            rep.warn(f"line {s.index + 1} is longer than CLIP can read: cut to its first "
                     f"{len(clip_text(s.text)[0])} characters for the image (captions keep it whole)")
    t1 = time.monotonic()
    n_frames = frame_count(audio.duration, settings.render.fps)
    rhythm = analyze(audio, settings.render.fps, n_frames, settings.rhythm)
    kfs = make_keyframes(segments, rhythm.beats, settings.schedule, settings.render.fps)
    p.data.update(inputs=inputs, settings=proj.settings_to_json(settings), untrained=settings.models.untrained,
                  keyframes=[k.to_json() for k in kfs], tempo=round(rhythm.tempo, 3))
    p.save()
    if settings.models.untrained:
        rep.warn(UNTRAINED_NOTE)
    rep.info(f"{audio_path.name}: {audio.duration:.2f} s, {len(segments)} lines ({method}), "
             f"{rhythm.tempo:.1f} BPM, {len(rhythm.beats)} beats")
    return Job(p, settings, rep, audio, segments, rhythm, kfs, device, amp,
               {"decode_and_timing_s": t1 - t0, "rhythm_s": time.monotonic() - t1})


def _timing(lyrics, audio, settings, rep):
    from . import timing

    align = None
    if (lyrics is None or not lyrics.timed) and settings.asr != "none":
        align = timing.aligner(settings.asr, settings.whisper_model, rep, required=lyrics is None)
    return timing.segments_for(lyrics, audio, align=align)


def wanted(job: Job) -> list[tuple[str, int]]:
    """(clip text, variant) pairs the project should have: variants 0..V-1 of every line."""
    texts = list(dict.fromkeys(job.clip_texts()))
    return [(t, v) for t in texts for v in range(job.settings.optimize.variants)]


def optimize_pending(job: Job, extra: list[tuple[str, int]] | None = None) -> int:
    """Bring every wanted (text, variant) to the configured number of steps: new ones from
    scratch, ones finished with fewer steps from their saved state, an interrupted batch from
    its checkpoint. Returns how many latents were optimized."""
    from .optimize import OptimState
    from .rng import seed_for

    p, s = job.project, job.settings
    lkey, steps = job.lkey, s.optimize.steps
    groups: dict[int, list] = {}  # start step -> [(text, variant, key, state | None)]
    for t, v in dict.fromkeys(wanted(job) + (extra or [])):
        key = proj.latent_key(lkey, t, v)
        done = p.data["latents"][key]["steps"] if p.has_latent(key) else None
        if done == steps:
            continue
        state = p.latent_state(key) if done is not None and done < steps else None
        groups.setdefault(state.step if state is not None else 0, []).append((t, v, key, state))
    if not groups:
        p.clear_checkpoint()
        job.reporter.info("all lines already optimized: nothing to do")
        return 0
    ck = p.load_checkpoint()
    total = 0
    for start, items in sorted(groups.items()):
        keys = [k for _, _, k, _ in items]
        state = OptimState.stack([st for *_, st in items]) if start > 0 else None
        if ck is not None and set(keys) <= set(ck[0]) and ck[1].step > start:
            state = ck[1].select([ck[0].index(k) for k in keys])
            job.reporter.info(f"resuming from checkpoint at step {state.step}/{steps}")
        elif start > 0:
            job.reporter.info(f"continuing {len(items)} latent(s) from step {start}/{steps}")
        seeds = [seed_for(s.optimize.seed, t, v) for t, v, _, _ in items]
        _run_group(job, [(t, v) for t, v, _, _ in items], keys, seeds, state)
        total += len(items)
    p.clear_checkpoint()
    return total


def _run_group(job: Job, todo, keys, seeds, state) -> None:
    from .optimize import optimize, snapshot

    p, s = job.project, job.settings
    clip, gen = job.models()
    job.reporter.info(f"optimizing {len(todo)} latent(s) ({len({t for t, _ in todo})} line(s)) "
                      f"for {s.optimize.steps} steps on {job.device}")
    last = {}

    def on_step(info):
        last["info"] = info
        if info.checkpoint_due:
            p.save_checkpoint(keys, snapshot(info.state))

    t = time.monotonic()
    try:
        res = optimize(gen, clip, [t_ for t_, _ in todo], seeds, s.optimize, state=state, device=job.device,
                       amp_dtype=job.amp, progress=s.progress, callback=on_step)
    except KeyboardInterrupt:
        if "info" in last:
            p.save_checkpoint(keys, snapshot(last["info"].state))
        raise
    job.timings["optimize_s"] = job.timings.get("optimize_s", 0.0) + time.monotonic() - t
    job.timings["optimize_steps_run"] = job.timings.get("optimize_steps_run", 0) + res.steps_run
    for i, ((text, v), key) in enumerate(zip(todo, keys)):
        p.save_latent(key, text, v, res.state.select([i]), s.optimize.steps)
    p.save()


def chosen_variant(job: Job, text: str) -> tuple[int, dict]:
    """The picked variant of a line, else its best-scoring one."""
    p, lkey = job.project, job.lkey
    have = p.variants_of(text, lkey)
    if not have:
        raise MusividError(f"line {text[:40]!r} has no optimized latents: run the full command "
                           "(without `render`) first")
    picked = p.data["picked"].get(text)
    if picked is not None and picked in have:
        v = picked
    else:
        v = max(have, key=lambda vv: p.data["latents"][proj.latent_key(lkey, text, vv)]["score"])
    return v, p.load_latent(proj.latent_key(lkey, text, v))


def add_variants(job: Job, line: int, count: int) -> list[int]:
    """`count` new variants of 1-based lyric line `line`; other lines untouched."""
    if not 1 <= line <= len(job.segments):
        raise InputError(f"--line {line}: the project has lines 1 to {len(job.segments)}")
    if count < 1:
        raise InputError(f"--count {count}: must be 1 or more")
    text = job.clip_texts()[line - 1]
    have = job.project.variants_of(text, job.lkey)
    start = max(have, default=-1) + 1
    new = [(text, v) for v in range(start, start + count)]
    optimize_pending(job, extra=new)
    return [v for _, v in new]


def render_job(job: Job, out: Path):
    from .interpolate import frame_count, plan
    from .pipeline import UNTRAINED_NOTE, VideoResult
    from .render import render, write_srt
    from .storyboard import write_storyboard

    s = job.settings
    t = time.monotonic()
    texts = job.clip_texts()
    chosen = [chosen_variant(job, texts[k.segment]) for k in job.keyframes]
    kz = torch.stack([c[1]["z"] for c in chosen]).float()
    kc = torch.sigmoid(torch.stack([c[1]["cls"] for c in chosen]).float())
    n = frame_count(job.audio.duration, s.render.fps)
    fplan = plan(job.keyframes, n, s.render.fps, job.rhythm.envelope, s.schedule.reactivity)
    gen = job.generator()
    meta = {"title": f"musivid: {job.audio.path.stem}", "comment": "made with musivid"}
    if s.models.untrained:
        meta = {"title": f"{UNTRAINED_NOTE} [{job.audio.path.stem}]", "comment": UNTRAINED_NOTE}
    res = render(gen, fplan, kz, kc, job.audio.path, out, s.render, truncation=s.optimize.truncation,
                 device=job.device, amp_dtype=job.amp, envelope=job.rhythm.envelope, pulse=s.schedule.pulse,
                 captions=[seg.text for seg in job.segments] if s.render.captions else None,
                 metadata=meta, progress=s.progress)
    srt = out.with_suffix(".srt")
    write_srt(job.segments, srt)
    job.timings["render_s"] = time.monotonic() - t
    try:
        write_storyboard(job, job.project.root / "storyboard.png")
    except MusividError as e:
        job.reporter.warn(f"storyboard not written: {e}")
    scores = [c[1]["score"] for c in chosen]
    job.project.data["chosen"] = [{"segment": k.segment, "text": job.segments[k.segment].text, "variant": c[0],
                                   "score": round(float(c[1]["score"]), 6)} for k, c in zip(job.keyframes, chosen)]
    job.project.data["outputs"] = {"video": str(out.resolve()), "srt": str(srt.resolve())}
    job.project.save()
    return VideoResult(out, srt, job.project.root, job.segments, job.keyframes, scores,
                       s.models.untrained, res.frames, dict(job.timings))


def open_job(pdir: Path, reporter=None, progress: bool = False, **overrides) -> Job:
    """Re-open a project for `variants`/`pick`/`render` with the settings it was made with."""
    p = proj.Project.open(pdir, must_exist=True)
    d = p.data
    settings = proj.settings_from_json(d["settings"], progress)
    if overrides:
        settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    audio = Path(d["inputs"]["audio"]["path"])
    lyr = d["inputs"].get("lyrics")
    if not audio.is_file():
        raise InputError(f"{audio}: the project's audio file is gone: put it back or start a new project")
    return prepare(pdir, audio, Path(lyr["path"]) if lyr else None, settings, reporter)
