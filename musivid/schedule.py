"""Segments + beats → keyframes, and the curves that move the picture with the music: the time
warp of the glide between keyframes, and the pace and size of the walk around them."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .config import ScheduleConfig
from .errors import InputError


@dataclass(frozen=True)
class Word:
    """A word (or, for scripts without spaces, a character or token) with its time in the song."""

    text: str
    start: float  # seconds
    end: float

    def to_json(self) -> list:
        return [self.text, round(self.start, 4), round(self.end, 4)]


@dataclass(frozen=True)
class Segment:
    """One lyric line with its time span in the song: from when it starts to be sung to when its
    singing ends (for timed lyrics without that knowledge, until the next line starts)."""

    index: int
    text: str
    start: float  # seconds
    end: float
    words: tuple[Word, ...] = ()  # word-level timing where known (alignment, enhanced LRC)

    def to_json(self) -> dict:
        d = {"index": self.index, "text": self.text, "start": round(self.start, 4), "end": round(self.end, 4)}
        if self.words:
            d["words"] = [w.to_json() for w in self.words]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Segment":
        return cls(int(d["index"]), d["text"], float(d["start"]), float(d["end"]),
                   tuple(Word(t, float(a), float(b)) for t, a, b in d.get("words", ())))


@dataclass(frozen=True)
class Keyframe:
    """The moment a segment's image is shown exactly."""

    segment: int  # index into the segments
    time: float  # seconds (snapped to a beat where one is near)
    snapped: bool  # whether it moved to a beat

    def to_json(self) -> dict:
        return {"segment": self.segment, "time": round(self.time, 4), "snapped": self.snapped}


def spread_evenly(texts: list[str], duration: float) -> list[Segment]:
    """Untimed lines: equal shares of the song (used when no alignment is available)."""
    n = len(texts)
    edges = np.linspace(0.0, duration, n + 1)
    return [Segment(i, t, float(edges[i]), float(edges[i + 1])) for i, t in enumerate(texts)]


def from_times(texts: list[str], starts: list[float], duration: float, gaps: Sequence[float] = (),
               words: Sequence[Sequence[Word]] | None = None) -> list[Segment]:
    """Timed lines: each lasts until the next one starts, or until the first gap mark (an empty
    timed LRC line: no lyric from then) after its start; the last until the end. `words` (one
    tuple per text) become the segments' word times, each word ending by its line's end (a word
    whose end is unknown is given as inf)."""
    order = sorted(range(len(texts)), key=lambda i: starts[i])
    marks = np.sort(np.asarray(list(gaps), dtype=float))
    segs = []
    for k, i in enumerate(order):
        end = starts[order[k + 1]] if k + 1 < len(order) else duration
        after = marks[marks > starts[i]]
        if len(after):
            end = min(end, float(after[0]))
        end = float(max(min(end, duration), starts[i]))
        ws = tuple(Word(w.text, w.start, min(w.end, end)) for w in (words[i] if words else ()))
        segs.append(Segment(k, texts[i], float(starts[i]), end, ws))
    return segs


def excerpt(segments: list[Segment], t0: float, t1: float) -> list[Segment]:
    """The segments heard in [t0, t1), timed from t0 (for an excerpt's captions)."""
    return [Segment(s.index, s.text, max(0.0, s.start - t0), min(s.end, t1) - t0) for s in segments
            if s.end > t0 and s.start < t1]


def retime(segments: list[Segment], index: int, start: float, duration: float | None = None) -> list[Segment]:
    """The segments with segment `index` moved to start at `start` s. Its words and end move with
    it (the end stops at the next line's start, or the song's `duration`; an end that touched the
    next line stays there), and the line before ends no later than the new start (it follows the
    start when the two touched). Lines keep their order: a start outside (previous start, next
    start) is an InputError."""
    seg = segments[index]
    prev = segments[index - 1] if index > 0 else None
    nxt = segments[index + 1] if index + 1 < len(segments) else None
    lo, hi = (prev.start if prev else 0.0), (nxt.start if nxt else duration)
    if (start <= lo if prev else start < lo) or (hi is not None and start >= hi):
        after = f"after line {index}'s start ({lo:.2f} s)" if prev else "from 0 s"
        before = f"before line {index + 2}'s start ({hi:.2f} s)" if nxt else \
            "before the end of the song" + (f" ({hi:.2f} s)" if hi is not None else "")
        raise InputError(f"start {start:.2f} s for line {index + 1}: must be {after} and {before}: "
                         "lines keep their order")
    delta = start - seg.start
    end = seg.end + delta if hi is None else hi if abs(seg.end - hi) < 1e-3 else min(seg.end + delta, hi)
    end = max(start, end)

    def clip(words, a, b):
        return tuple(dataclasses.replace(w, start=min(max(w.start, a), b), end=min(max(w.end, a), b)) for w in words)

    out = list(segments)
    moved = tuple(dataclasses.replace(w, start=w.start + delta, end=w.end + delta) for w in seg.words)
    out[index] = dataclasses.replace(seg, start=float(start), end=float(end), words=clip(moved, start, end))
    if prev is not None and (prev.end > start or abs(prev.end - seg.start) < 1e-3):
        out[index - 1] = dataclasses.replace(prev, end=float(start), words=clip(prev.words, prev.start, start))
    return out


def keyframes(segments: list[Segment], beats: np.ndarray, cfg: ScheduleConfig = ScheduleConfig(),
              fps: float | None = None) -> list[Keyframe]:
    """Each segment's keyframe at its start, moved to the nearest beat within cfg.snap_window_s.

    Keyframes stay in order and at least one frame apart: a snap that would cross or collide
    with the previous keyframe is not taken.
    """
    beats = np.asarray(beats, dtype=float)
    min_gap = 1.0 / fps if fps else 1e-3
    out: list[Keyframe] = []
    for seg in segments:
        t = seg.start
        snapped = False
        if len(beats):
            j = int(np.argmin(np.abs(beats - t)))
            if abs(beats[j] - t) <= cfg.snap_window_s:
                t, snapped = float(beats[j]), True
        if out and t < out[-1].time + min_gap:
            t, snapped = max(seg.start, out[-1].time + min_gap), False
        out.append(Keyframe(seg.index, float(t), snapped))
    return out


def warp(frame_times: np.ndarray, t0: float, t1: float, envelope: np.ndarray, fps: float,
         reactivity: float) -> np.ndarray:
    """Interpolation parameter u in [0, 1] for frames between keyframes at t0 and t1.

    Linear time blended with the cumulative percussive energy over [t0, t1]: with reactivity 1
    the picture moves only when the music hits, with 0 it glides evenly.
    """
    lin = np.clip((frame_times - t0) / max(t1 - t0, 1e-9), 0.0, 1.0)
    if reactivity <= 0 or len(envelope) == 0:
        return lin
    # energy up to and including frame i's own: the jump of a hit lands on the frame it is heard in
    cum = np.cumsum(envelope.astype(np.float64) + 1e-6) / fps  # at i / fps
    grid = np.arange(len(cum)) / fps
    c = np.interp(frame_times, grid, cum)
    c0, c1 = np.interp([t0, t1], grid, cum)
    perc = np.clip((c - c0) / max(c1 - c0, 1e-12), 0.0, 1.0)
    return (1.0 - reactivity) * lin + reactivity * perc


# ---- the walk: motion everywhere, returning to each keyframe ----------------------------------------

def title_from_stem(stem: str) -> str:
    """A prompt from an audio file's name: "01 - Northern_Lights (remaster)" → "Northern Lights"."""
    t = re.sub(r"[_]+", " ", stem)
    t = re.sub(r"[\(\[][^\)\]]*[\)\]]", " ", t)  # (Official Video), [2011 remaster]
    t = re.sub(r"^\s*\d{1,3}\s*(?:[-.)]\s*|\s+)", "", t)  # a leading track number
    t = " ".join(t.replace(" - ", ", ").split()).strip(" -.,")
    return t or stem


def intro_title(cfg: ScheduleConfig, stem: str, kfs: list[Keyframe]) -> str | None:
    """The prompt of the intro's title image, or None when the intro shows none: it is not asked
    for, the music drives nothing (reactivity 0), or the first line comes too soon for it. (The
    caller cuts it to CLIP's length, as every line: lyrics.clip_text.)"""
    if cfg.intro != "title" or cfg.reactivity <= 0 or not kfs or kfs[0].time < cfg.title_min_s:
        return None
    return (cfg.title or "").strip() or title_from_stem(stem)


def beat_period(tempo: float) -> float:
    """Seconds per beat; 120 BPM where the analysis found no usable tempo (silence, speech)."""
    return 60.0 / tempo if np.isfinite(tempo) and 30.0 <= tempo <= 300.0 else 0.5


def walk_pace(envelope: np.ndarray, fps: float, tempo: float, reactivity: float, pace: float) -> np.ndarray:
    """(F,) the walk's position (in knots of its random path) at each frame. It advances `pace`
    knots per beat on average: a share (1 - reactivity) evenly, the rest in proportion to the
    percussive envelope, so the picture moves on the hits."""
    env = np.asarray(envelope, dtype=np.float64)
    mean = float(env.mean()) if len(env) else 0.0
    hits = env / mean if mean > 0 else np.ones_like(env)
    speed = pace / beat_period(tempo) * ((1.0 - reactivity) + reactivity * hits)  # knots per second
    return np.cumsum(speed) / fps  # frame i has moved by its own frame's speed: the jump lands on the hit


def smooth01(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def walk_size(key_frames: np.ndarray, n_frames: int, fps: float, loudness: np.ndarray, tempo: float,
              cfg: ScheduleConfig, title: bool = False) -> np.ndarray:
    """(F,) the walk's angle (radians) at each frame: `walk` x reactivity, scaled by loudness
    (`energy`), zero at every keyframe frame (and at frame 0 when a title image opens the video)
    and rising over `settle_beats` beats away from them. Before the first line (without a title)
    the intro drifts in from `drift` times as far, or holds still; after the last line the outro
    drifts out to `drift` times as far, or holds still."""
    f = np.arange(n_frames, dtype=np.float64)
    base = cfg.walk * cfg.reactivity * (1.0 - cfg.energy + cfg.energy * np.asarray(loudness, dtype=np.float64))
    kf = np.asarray(key_frames, dtype=np.float64)
    if not len(kf) or not np.any(base > 0):
        return np.zeros(n_frames, np.float32)
    anchors = np.concatenate([[0.0], kf]) if title else kf
    j = np.searchsorted(anchors, f)  # the nearest anchor is anchors[j - 1] or anchors[j]
    last_a = len(anchors) - 1
    dist = np.minimum(np.abs(f - anchors[np.clip(j - 1, 0, last_a)]), np.abs(anchors[np.clip(j, 0, last_a)] - f))
    settle = cfg.settle_beats * beat_period(tempo) * fps  # frames
    w = smooth01(dist / settle) if settle > 0 else (dist > 0).astype(np.float64)
    first, last = kf[0], kf[-1]
    intro, outro = f < first, f > last
    if not title:
        w[intro] = 0.0 if cfg.intro == "none" else w[intro] * (1 + (cfg.drift - 1) * smooth01(1 - f[intro] / first))
    if cfg.outro == "none":
        w[outro] = 0.0
    else:
        w[outro] *= 1 + (cfg.drift - 1) * smooth01((f[outro] - last) / max(n_frames - 1 - last, 1.0))
    return (base * w).astype(np.float32)
