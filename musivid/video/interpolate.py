"""Keyframe latents → per-frame latents: slerp for z, convex mixing for class vectors, easing, and
a seeded walk on the z sphere that keeps the picture moving with the music between keyframes.

Pure functions on CPU tensors. Frame i is shown at i / fps; a song of duration D has exactly
round(D · fps) frames, computed once for the whole song (never per segment, which drifts).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import rng
from ..config import ScheduleConfig
from ..errors import InputError
from .motion import Keyframe, walk_pace, walk_size, warp


MAX_EXCERPT_S = 86_400.0  # the longest --duration taken (24 h): longer is a mistake, not a song


def frame_count(duration: float, fps: float) -> int:
    return max(1, int(round(duration * fps)))


def frame_range(duration: float, fps: float, start: float = 0.0, length: float | None = None
                ) -> tuple[int, int] | None:
    """Frames [first, last) of the excerpt [start, start + length) of a song; None: the whole song.
    An excerpt that runs past the song's end stops there; a length longer than MAX_EXCERPT_S (or
    not a number) is refused, so no frame number ever overflows."""
    if start == 0.0 and length is None:
        return None
    if not (math.isfinite(start) and 0.0 <= start < duration):
        raise InputError(f"--start {start:g}: must be from 0 to the song's length ({duration:.2f} s)")
    if length is not None and not length > 0:
        raise InputError(f"--duration {length:g}: must be more than 0 seconds")
    if length is not None and not length <= MAX_EXCERPT_S:
        raise InputError(f"--duration {length:g}: must be at most {MAX_EXCERPT_S:g} seconds (an excerpt that runs "
                         "past the song's end stops there): pass the seconds to render, e.g. --duration 15")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"--fps {fps:g}: must be more than 0: pass e.g. --fps 24")
    n = frame_count(duration, fps)
    first = min(n - 1, round(start * fps))
    last = n if length is None else min(n, max(first + 1, round(min(start + length, duration) * fps)))
    return first, last


def slerp(a: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the last dim; a, b (..., D), u broadcastable to (...)."""
    u = u[..., None]
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    dot = (an * bn).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    near = so.abs() < 1e-6  # (anti)parallel: fall back to linear
    wa = torch.where(near, 1 - u, torch.sin((1 - u) * omega) / torch.where(near, 1.0, so))
    wb = torch.where(near, u, torch.sin(u * omega) / torch.where(near, 1.0, so))
    return wa * a + wb * b


def smoothstep(u: torch.Tensor) -> torch.Tensor:
    return u * u * (3 - 2 * u)


def mix_classes(a: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Class vectors (probabilities): a convex mix stays a valid vector at every frame."""
    u = u[..., None]
    return (1 - u) * a + u * b


@dataclass(frozen=True)
class FramePlan:
    """Which keyframe pair and parameter each frame uses, and the walk around them. Cheap: (F,)
    arrays only. Keyframe indices are rows of the keyframe latents: 0..K-1 the lyric keyframes,
    K the intro's title image when there is one."""

    left: np.ndarray  # (F,) keyframe index
    right: np.ndarray  # (F,) keyframe index
    u: np.ndarray  # (F,) in [0, 1]
    segment: np.ndarray  # (F,) index of the lyric segment current at that frame (captions)
    key_frames: np.ndarray | None = None  # (K,) the frame of each lyric keyframe: its image exactly
    walk: np.ndarray | None = None  # (F,) the walk's angle away from the glide (radians); None: no walk
    pace: np.ndarray | None = None  # (F,) the walk's position along its random path (knots)
    envelope: np.ndarray | None = None  # (F,) the percussive strength it was planned with (for the pulse)

    def __len__(self) -> int:
        return len(self.u)

    def keyframes_used(self, frames: tuple[int, int] | None = None) -> set[int]:
        """Indices of the keyframes whose images the frames [first, last) (all: None) are made of."""
        first, last = frames or (0, len(self))
        return set(self.left[first:last].tolist()) | set(self.right[first:last].tolist())


def keyframe_frames(keyframes: list[Keyframe], fps: float, n_frames: int) -> np.ndarray:
    """(K,) the frame that shows each keyframe's image exactly: the frame nearest its time (at most
    half a frame off), strictly increasing (keyframes are at least a frame apart) where the song's
    last frame leaves room."""
    f = np.clip(np.round(np.array([k.time for k in keyframes], dtype=np.float64) * fps), 0, n_frames - 1)
    for i in range(1, len(f)):  # float rounding of frame-apart times must not merge two keyframes
        f[i] = max(f[i], f[i - 1] + 1)
    return np.minimum(f, n_frames - 1).astype(np.int64)


def plan(keyframes: list[Keyframe], n_frames: int, fps: float, envelope: np.ndarray,
         reactivity: float = 0.5, ease: bool = True, title: bool = False) -> FramePlan:
    """The glide: from each keyframe's frame to the next one's, on the music (schedule.warp).
    Before the first keyframe the first image holds (or, with `title`, the title image at frame 0
    glides into it); after the last, the last one holds."""
    k = len(keyframes)
    kf = keyframe_frames(keyframes, fps, n_frames)
    frames, ids = kf, np.arange(k)  # the frame each row's image is shown at, and the row
    if title and kf[0] > 0:  # the title image (row K) at frame 0, before the first keyframe's
        frames, ids = np.concatenate([[0], kf]), np.concatenate([[k], np.arange(k)])
    t = np.arange(n_frames) / fps
    times = frames / fps
    idx = np.searchsorted(times, t, side="right") - 1  # last keyframe at or before t
    m = len(times)
    left = ids[np.clip(idx, 0, m - 1)]
    right = ids[np.clip(idx + 1, 0, m - 1)]
    u = np.zeros(n_frames)
    for j in range(m - 1):  # a loop over keyframes, not frames
        sel = idx == j
        if sel.any():
            u[sel] = warp(t[sel], times[j], times[j + 1], envelope, fps, reactivity)
    u[idx < 0] = 0.0
    u[idx >= m - 1] = 0.0
    if ease:
        u = smoothstep(torch.from_numpy(u)).numpy()
    seg_of = np.array([x.segment for x in keyframes])
    current = np.searchsorted(kf / fps, t, side="right") - 1  # the lyric keyframe at or before t
    return FramePlan(left, right, u, seg_of[np.clip(current, 0, k - 1)], kf)


def song_plan(keyframes: list[Keyframe], n_frames: int, fps: float, envelope: np.ndarray, loudness: np.ndarray,
              tempo: float, cfg: ScheduleConfig = ScheduleConfig(), title: bool = False) -> FramePlan:
    """The whole song's motion: the glide between keyframes (`plan`), and the beat-driven walk around
    it that keeps the picture moving in the intro, the breaks and the outro, sized by loudness, and
    back on each keyframe's image at its frame. envelope: (F,) percussive strength; loudness: (F,)
    in [0, 1] (rhythm.Rhythm.envelope / .loudness)."""
    p = dataclasses.replace(plan(keyframes, n_frames, fps, envelope, cfg.reactivity, title=title), envelope=envelope)
    size = walk_size(p.key_frames, n_frames, fps, loudness, tempo, cfg, title=title and p.key_frames[0] > 0)
    if not size.any():
        return p
    return dataclasses.replace(p, walk=size, pace=walk_pace(envelope, fps, tempo, cfg.reactivity, cfg.walk_pace))


def walk_path(pos: torch.Tensor, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """(b, *shape) the walk's random path at positions pos (b,) float64: a Catmull-Rom spline
    through standard normal knots, knot j drawn from (run seed, j) alone (rng), so any frame's
    value is the same whichever frames are computed with it."""
    j0 = torch.floor(pos)
    f = (pos - j0)[:, None]  # (b, 1)
    w = torch.cat([((-f + 2) * f - 1) * f / 2, ((3 * f - 5) * f * f + 2) / 2,
                   ((-3 * f + 4) * f + 1) * f / 2, (f - 1) * f * f / 2], dim=1).float()  # (b, 4)
    j = j0.long()[:, None] + torch.arange(-1, 3)  # (b, 4) knot numbers
    knots, where = torch.unique(j, return_inverse=True)
    seeds = (rng.seed_for(seed, "\x00walk", 0) + (knots + 2) * 0x9E3779B1) & 0xFFFFFFFF  # distinct per knot
    vec = rng.normal(seeds, 0, math.prod(shape))  # (knots, numel)
    return (w[:, :, None] * vec[where]).sum(1).view(len(pos), *shape)


def walk_z(z: torch.Tensor, path: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Turn each z row (..., D) on its sphere towards the path's direction (orthogonal to z) by
    angle x |path| / sqrt(D) (radians, at most pi/2): the norm is kept, and angle 0 is z exactly."""
    a = angle.view(-1, *([1] * (z.dim() - 1)))
    zn = z.norm(dim=-1, keepdim=True)
    zhat = z / zn.clamp_min(1e-12)
    perp = path - (path * zhat).sum(-1, keepdim=True) * zhat
    pn = perp.norm(dim=-1, keepdim=True)
    theta = (a * pn / math.sqrt(z.shape[-1])).clamp(max=math.pi / 2)
    turned = torch.cos(theta) * z + torch.sin(theta) * zn * perp / pn.clamp_min(1e-12)
    return torch.where(a > 0, turned, z)


def frame_latents(p: FramePlan, frames: slice, kz: torch.Tensor, kc: torch.Tensor,
                  envelope: np.ndarray | None = None, pulse: float = 0.0,
                  pulse_dir: torch.Tensor | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, classes) for a slice of frames. kz (K, ...) keyframe z; kc (K, C) class vectors.

    The glide, then the walk (seeded by `seed`) where the plan has one; `pulse` nudges z along a
    fixed direction by the percussive envelope (a kick on onsets)."""
    sl = range(*frames.indices(len(p)))
    left = torch.as_tensor(p.left[sl.start:sl.stop], dtype=torch.long)
    right = torch.as_tensor(p.right[sl.start:sl.stop], dtype=torch.long)
    u = torch.as_tensor(p.u[sl.start:sl.stop], dtype=torch.float32)
    z = slerp(kz[left], kz[right], u.view(-1, *([1] * (kz.dim() - 2))) if kz.dim() > 2 else u)
    c = mix_classes(kc[left], kc[right], u)
    if p.walk is not None and p.pace is not None:
        pos = torch.as_tensor(p.pace[sl.start:sl.stop], dtype=torch.float64)
        z = walk_z(z, walk_path(pos, seed, tuple(z.shape[1:])),
                   torch.as_tensor(p.walk[sl.start:sl.stop], dtype=torch.float32))
    if pulse and envelope is not None and pulse_dir is not None:
        e = torch.as_tensor(envelope[sl.start:sl.stop], dtype=torch.float32)
        z = z + pulse * e.view(-1, *([1] * (z.dim() - 1))) * pulse_dir
    return z, c


@dataclass(frozen=True)
class FrameLatents:
    """The latents of every frame of a song, made on demand from the frame plan and the keyframe
    latents: what render.render draws. kz (K, ...) keyframe z; kc (K, C) class vectors (row K: the
    title image, when the plan has one)."""

    plan: FramePlan
    kz: torch.Tensor
    kc: torch.Tensor
    envelope: np.ndarray | None = None  # (F,) percussive strength per frame, for the pulse
    pulse: float = 0.0
    seed: int = 0  # the run seed: the walk's random path comes from it (a re-render is identical)

    def __len__(self) -> int:
        return len(self.plan)

    def latents(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, classes) of frames [lo, hi)."""
        pdir = pulse_direction(tuple(self.kz.shape[1:]), 1234) if self.pulse else None
        return frame_latents(self.plan, slice(lo, hi), self.kz, self.kc, self.envelope, self.pulse, pdir, self.seed)


def pulse_direction(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(shape, generator=g)
    return d / d.norm() * math.sqrt(d.numel())
