"""Keyframe latents → per-frame latents: slerp for z, convex mixing for class vectors, easing.

Pure functions on CPU tensors. Frame i is shown at i / fps; a song of duration D has exactly
round(D · fps) frames, computed once for the whole song (never per segment, which drifts).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError
from .schedule import Keyframe, warp


def frame_count(duration: float, fps: float) -> int:
    return max(1, int(round(duration * fps)))


def frame_range(duration: float, fps: float, start: float = 0.0, length: float | None = None
                ) -> tuple[int, int] | None:
    """Frames [first, last) of the excerpt [start, start + length) of a song; None: the whole song."""
    if start == 0.0 and length is None:
        return None
    if not 0.0 <= start < duration:
        raise InputError(f"--start {start:g}: must be from 0 to the song's length ({duration:.2f} s)")
    if length is not None and length <= 0:
        raise InputError(f"--duration {length:g}: must be more than 0 seconds")
    n = frame_count(duration, fps)
    first = min(n - 1, round(start * fps))
    last = n if length is None else min(n, max(first + 1, round((start + length) * fps)))
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
    """Which keyframe pair and parameter each frame uses. Cheap: (F,) arrays only."""

    left: np.ndarray  # (F,) keyframe index
    right: np.ndarray  # (F,) keyframe index
    u: np.ndarray  # (F,) in [0, 1]
    segment: np.ndarray  # (F,) index of the lyric segment current at that frame (captions)

    def __len__(self) -> int:
        return len(self.u)

    def keyframes_used(self, frames: tuple[int, int] | None = None) -> set[int]:
        """Indices of the keyframes whose images the frames [first, last) (all: None) are made of."""
        first, last = frames or (0, len(self))
        return set(self.left[first:last].tolist()) | set(self.right[first:last].tolist())


def plan(keyframes: list[Keyframe], n_frames: int, fps: float, envelope: np.ndarray,
         reactivity: float = 0.5, ease: bool = True) -> FramePlan:
    """Before the first keyframe the first image holds; after the last, the last one."""
    t = np.arange(n_frames) / fps
    times = np.array([k.time for k in keyframes])
    k = len(keyframes)
    idx = np.searchsorted(times, t, side="right") - 1  # last keyframe at or before t
    left = np.clip(idx, 0, k - 1)
    right = np.clip(idx + 1, 0, k - 1)
    u = np.zeros(n_frames)
    for j in range(k - 1):  # a loop over keyframes, not frames
        m = idx == j
        if m.any():
            u[m] = warp(t[m], times[j], times[j + 1], envelope, fps, reactivity)
    u[idx < 0] = 0.0
    u[idx >= k - 1] = 0.0
    if ease:
        u = smoothstep(torch.from_numpy(u)).numpy()
    seg_of = np.array([kf.segment for kf in keyframes])
    return FramePlan(left, right, u, seg_of[np.clip(idx, 0, k - 1)])


def frame_latents(p: FramePlan, frames: slice, kz: torch.Tensor, kc: torch.Tensor,
                  envelope: np.ndarray | None = None, pulse: float = 0.0,
                  pulse_dir: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, classes) for a slice of frames. kz (K, ...) keyframe z; kc (K, C) class vectors.

    `pulse` nudges z along a fixed direction by the percussive envelope (a kick on onsets)."""
    sl = range(*frames.indices(len(p)))
    left = torch.as_tensor(p.left[sl.start:sl.stop], dtype=torch.long)
    right = torch.as_tensor(p.right[sl.start:sl.stop], dtype=torch.long)
    u = torch.as_tensor(p.u[sl.start:sl.stop], dtype=torch.float32)
    z = slerp(kz[left], kz[right], u.view(-1, *([1] * (kz.dim() - 2))) if kz.dim() > 2 else u)
    c = mix_classes(kc[left], kc[right], u)
    if pulse and envelope is not None and pulse_dir is not None:
        e = torch.as_tensor(envelope[sl.start:sl.stop], dtype=torch.float32)
        z = z + pulse * e.view(-1, *([1] * (z.dim() - 1))) * pulse_dir
    return z, c


@dataclass(frozen=True)
class FrameLatents:
    """The latents of every frame of a song, made on demand from the frame plan and the keyframe
    latents: what render.render draws. kz (K, ...) keyframe z; kc (K, C) class vectors."""

    plan: FramePlan
    kz: torch.Tensor
    kc: torch.Tensor
    envelope: np.ndarray | None = None  # (F,) percussive strength per frame, for the pulse
    pulse: float = 0.0

    def __len__(self) -> int:
        return len(self.plan)

    def latents(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, classes) of frames [lo, hi)."""
        pdir = pulse_direction(tuple(self.kz.shape[1:]), 1234) if self.pulse else None
        return frame_latents(self.plan, slice(lo, hi), self.kz, self.kc, self.envelope, self.pulse, pdir)


def pulse_direction(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(shape, generator=g)
    return d / d.norm() * math.sqrt(d.numel())
