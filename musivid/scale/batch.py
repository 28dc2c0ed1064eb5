"""Many songs at once: an album on the workers of a workers.Pool (Ray actors on a cluster).

    songs = find_songs([Path("album/")])               # audio files with their lyrics beside them
    with open_pool(settings.models, workers=8) as pool:
        results = run_batch(songs, Path("out"), settings, pool)

Every song is one task on a worker that needs one GPU (or the CPU), and every worker loads the
models once and keeps them for all its songs (make_video(models=host.models), a ModelCache). Outputs go under OUTDIR:
`NAME.mp4`, `NAME.srt` and the project `NAME.musivid/`. A song that fails does not stop the
others. A re-run skips the songs that are finished (their video exists and their project says it
was made from the same inputs and settings) and resumes the others from their projects. On a
cluster, the songs and OUTDIR must be on a filesystem every node sees at the same path.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

from .. import project as proj
from ..config import RunSettings
from ..errors import InputError, MusividError
from ..files import sha256_file
from .workers import relay

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".mp3", ".wav", ".flac", ".m4a", ".ogg", ".opus", ".aac", ".wma", ".aiff", ".aif",
                  ".mp4", ".mkv", ".webm", ".mov")
LYRICS_SUFFIXES = (".lrc", ".txt")  # in this order of preference
REPORT_EVERY_S = 30.0  # a running stage is reported again at most this often
STAGES = {"weights": "checking weights", "decode": "decoding", "load_whisper": "loading Whisper",
          "timing": "timing the lyrics", "rhythm": "finding the beat", "load_clip": "loading CLIP",
          "load_biggan": "loading BigGAN", "optimize": "optimizing", "render": "rendering",
          "storyboard": "drawing the storyboard"}  # pipeline stage -> what the progress line says


@dataclass(frozen=True)
class Song:
    audio: Path
    lyrics: Path | None  # None: the song is transcribed

    @property
    def name(self) -> str:
        return self.audio.stem


@dataclass(frozen=True)
class SongResult:
    song: str
    status: str  # "done", "skipped" (finished before), "failed"
    lines: int
    seconds: float
    output: Path | None
    error: str = ""


@dataclass(frozen=True)
class StageEvent:
    """A song's progress in its worker: `stage` at `done` of `total`."""

    song: str
    stage: str
    done: int
    total: int


def find_songs(paths: list[Path]) -> list[Song]:
    """The songs in `paths`: audio files, and the audio files directly inside directories. A
    song's lyrics are the .lrc (else .txt) file beside it with the same base name."""
    if not paths:
        raise InputError("no songs given: pass audio files or a directory of them")
    audio: list[Path] = []
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
                           and not f.name.startswith("."))
            if not found:
                raise InputError(f"{p}: holds no audio file ({', '.join(AUDIO_SUFFIXES[:5])}, ...)")
            audio += found
        else:
            audio.append(p)
    songs, names = [], {}
    for a in dict.fromkeys(x.resolve() for x in audio):
        if a.stem in names:
            raise InputError(f"{a} and {names[a.stem]} would both write {a.stem}.mp4: rename one, or run them "
                             "into different output directories")
        names[a.stem] = a
        lyrics = next((a.with_suffix(s) for s in LYRICS_SUFFIXES if a.with_suffix(s).is_file()), None)
        songs.append(Song(a, lyrics))
    return songs


def outputs(song: Song, outdir: Path) -> tuple[Path, Path]:
    """(video, project directory) of a song under OUTDIR."""
    video = outdir / f"{song.name}.mp4"
    return video, proj.default_dir(video)


def finished(song: Song, outdir: Path, settings: RunSettings) -> bool:
    """The song's video exists and its project says it was rendered, in full, from the same
    inputs (by content) and settings, with every line's latents at the configured steps."""
    from ..images.models.load import choose_clip
    from ..session import lines_of

    video, pdir = outputs(song, outdir)
    if not video.is_file() or not proj.is_project(pdir):
        return False
    try:
        p = proj.Project.open(pdir)
        # clip "auto" is the CLIP the song's lyrics chose; device, checkpointing and micro-batches
        # do not change a video (the provenance digest leaves them out)
        settings = dataclasses.replace(settings, models=choose_clip(settings.models, [s.text for s in p.segments()]).models)
        if p.output("video") != video.resolve() or proj.settings_digest(p.settings) != proj.settings_digest(settings):
            return False
        audio, lyrics = p.input("audio"), p.input("lyrics")
        if audio is None or audio.sha256 != sha256_file(song.audio):
            return False
        if (lyrics is None) != (song.lyrics is None) or (lyrics and lyrics.sha256 != sha256_file(song.lyrics)):
            return False
        keys = {k for line in lines_of(p, settings) for k in line.keys}  # what each line's image is optimized for
        return bool(keys) and len(p.chosen()) > 0 and all(
            (info := p.latent_info(k)) is not None and info.steps == settings.optimize.steps for k in keys)
    except (MusividError, OSError, KeyError, ValueError, TypeError):
        return False  # an unreadable project is not a finished one: the run says why


def render_song(host, emit, song: Song, outdir: Path, settings: RunSettings, overwrite: bool) -> SongResult:
    """In a worker: make one song's video with the worker's models; emits StageEvents."""
    from ..pipeline import make_video

    t = time.monotonic()
    video, pdir = outputs(song, outdir)
    last = {"stage": None, "t": 0.0}

    def on_progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != last["stage"] or now - last["t"] >= REPORT_EVERY_S:
            last.update(stage=stage, t=now)
            emit(StageEvent(song.name, stage, done, total))

    if not song.audio.is_file():  # on a cluster: this node does not see the file
        raise InputError(f"{song.audio}: not found on this worker's machine: put the songs and the output "
                         "directory on a filesystem every node mounts at the same path")
    res = make_video(song.audio, song.lyrics, video, settings, project_dir=pdir, overwrite=overwrite,
                     on_progress=on_progress, models=host.models)
    return SongResult(song.name, "done", len(res.segments), time.monotonic() - t, res.video)


def run_batch(songs: list[Song], outdir: Path, settings: RunSettings, pool, *, overwrite: bool = False) -> list[SongResult]:
    """Make every song's video on the pool's workers, one song per worker at a time. Returns one
    SongResult per song, in the order given; a failed song has status "failed" and its error."""
    outdir = outdir.absolute()  # workers (Ray actors) need not share this process's working directory
    outdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, SongResult] = {}
    todo = []
    for s in songs:
        if finished(s, outdir, settings):
            results[s.name] = SongResult(s.name, "skipped", len(proj.Project.open(outputs(s, outdir)[1]).segments()),
                                         0.0, outputs(s, outdir)[0])
            log.info("%s: finished before, skipped", s.name)
        else:
            todo.append(s)
    total = len(songs)
    count = threading.Lock()

    def n_done() -> str:
        return f"[{len(results)}/{total} done]"

    current: dict[int, str] = {}  # worker -> the song it makes

    def on_event(worker, ev) -> None:  # from the pool's threads
        with count:
            if isinstance(ev, StageEvent):
                part = f" {ev.done}/{ev.total}" if ev.total > 1 and 0 < ev.done < ev.total else ""
                log.info("%s: %s%s %s", ev.song, STAGES.get(ev.stage, ev.stage), part, n_done())
            else:
                relay(ev, current.get(worker, f"worker {worker + 1}"))

    pool.on_event = on_event
    # the workers' device: each sees only its own GPU, as "cuda"
    run_settings = dataclasses.replace(settings, device=pool.spec.device)
    free, running = list(range(pool.size))[::-1], {}
    started: dict[str, float] = {}
    queue = list(todo)
    while queue or running:
        while free and queue:
            i, song = free.pop(), queue.pop(0)
            started[song.name] = time.monotonic()
            current[i] = song.name
            log.info("%s: started on worker %d %s", song.name, i + 1, n_done())
            running[pool.submit(i, render_song, song, outdir, run_settings, overwrite)] = (i, song)
        finished_now, _ = wait(running, return_when=FIRST_COMPLETED)
        for f in finished_now:
            i, song = running.pop(f)
            free.append(i)
            try:
                res = f.result()
            except Exception as e:  # noqa: BLE001 - one song's failure does not stop the others
                secs = time.monotonic() - started[song.name]
                res = SongResult(song.name, "failed", 0, secs, None, str(e) or type(e).__name__)
            with count:
                results[song.name] = res
                if res.status == "failed":
                    log.warning("%s: failed: %s %s", song.name, res.error, n_done())
                else:
                    log.info("%s: done in %.1f s (%d lines) %s", song.name, res.seconds, res.lines, n_done())
    return [results[s.name] for s in songs]


def summary(results: list[SongResult]) -> str:
    """The table the CLI prints: song, status, lines, seconds, output (or the error)."""
    rows = [("song", "status", "lines", "seconds", "output")]
    for r in results:
        rows.append((r.song, r.status, str(r.lines) if r.status != "failed" else "-",
                     f"{r.seconds:.1f}" if r.status != "skipped" else "-",
                     str(r.output) if r.output else r.error))
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    ok = sum(r.status != "failed" for r in results)
    lines.append(f"{ok}/{len(results)} songs done" + (f", {len(results) - ok} failed" if ok < len(results) else ""))
    return "\n".join(lines)


def raise_if_failed(results: list[SongResult]) -> None:
    failed = [r.song for r in results if r.status == "failed"]
    if failed:
        raise MusividError(f"{len(failed)} song(s) failed: {', '.join(failed)} (see the table); fix them and run "
                           "the same command again: finished songs are skipped")
