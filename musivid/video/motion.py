"""Segments + beats → keyframes, and the curves that move the picture with the music: the time
warp of the glide between keyframes, and the pace and size of the walk around them."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..config import ScheduleConfig
from ..song.segments import Segment


@dataclass(frozen=True)
class Keyframe:
    """The moment a segment's image is shown exactly."""

    segment: int  # index into the segments
    time: float  # seconds (snapped to a beat where one is near)
    snapped: bool  # whether it moved to a beat

    def to_json(self) -> dict:
        return {"segment": self.segment, "time": round(self.time, 4), "snapped": self.snapped}


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
